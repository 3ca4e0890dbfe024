//! The page's one dispatch on [`ServerMsg`] ([`Connection::apply`]): one line per message,
//! each to a handler that takes the message's own struct (`shared::server`).

use leptos::prelude::*;
use shared::{ChangeKind, ChatLine, ServerMsg, Shown, server};

use super::{Connection, LiveText, Store, mark, now_ms, storage};

impl Connection {
    /// Applies one message from the server: the page's one dispatch on [`ServerMsg`].
    pub fn apply(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::Welcome(welcome) => self.welcomed(welcome),
            ServerMsg::Joined(joined) => self.joined(joined),
            // The reply to a `leave`, which the page applied when it sent it (and a `join`
            // sent since may already have superseded it): nothing left to do. With a
            // reason, a moderator put this page out.
            ServerMsg::Left(left) => self.put_out(left),
            ServerMsg::Typing(typing) => self.someone_typed(typing),
            ServerMsg::Message(line) => self.line(line),
            ServerMsg::MessageEdited(edited) => self.line(edited.into()),
            ServerMsg::MessageDeleted(deleted) => self.line(deleted.into()),
            ServerMsg::Moderation(moderation) => self.moderation(moderation),
            ServerMsg::Ack(ack) => self.acked(&ack),
            ServerMsg::Read(mark) => self.read_elsewhere(mark),
            ServerMsg::Older(older) => self.older(older),
            ServerMsg::Pong => self.timers.update_value(|t| t.unanswered = 0),
            ServerMsg::Presence(presence) => self.presence(presence),
            ServerMsg::Members(page) => self.members_page(page),
            ServerMsg::NameSet(named) => self.named(&named),
            ServerMsg::Error(e) => self.refused(e.code, e.message, e.room, e.nonce),
            ServerMsg::TokenExpiring(_) => self.refresh_token(),
            // The new token is in force: nothing changes on the page.
            ServerMsg::TokenRefreshed(_) => {}
            // The exercises' messages, to what this page does with them (nothing, on the
            // chat's page: see `Frames`).
            exercise @ (ServerMsg::Echo(_)
            | ServerMsg::Binary(_)
            | ServerMsg::Ticker(_)
            | ServerMsg::TickerStopped(_)
            | ServerMsg::Random(_)
            | ServerMsg::Products(_)
            | ServerMsg::ProductAdded(_)
            | ServerMsg::ProductRemoved(_)
            | ServerMsg::ProductRefused(_)) => (self.frames.exercise)(self, exercise),
        }
    }

    /// Applies one of the exercises' messages (`Frames::ALL`'s handler).
    pub fn apply_exercise(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::Echo(echo) => self.exercises.echoed(echo.text),
            ServerMsg::Binary(b) => self
                .exercises
                .binary_expected
                .set(Some((b.size, b.checksum))),
            ServerMsg::Ticker(t) => self.exercises.ticker_running.set(Some(t.every_ms)),
            ServerMsg::TickerStopped(_) => self.exercises.ticker_running.set(None),
            ServerMsg::Random(r) => self.exercises.random(r.ticker, r.n),
            ServerMsg::Products(page) => self.products_page(page),
            ServerMsg::ProductAdded(added) => self.exercises.added(added.product),
            ServerMsg::ProductRemoved(removed) => self.exercises.removed(removed.id),
            ServerMsg::ProductRefused(r) => self.exercises.refused(&r.code, r.errors),
            // The chat's messages go through `apply`, never here.
            _ => {}
        }
    }

    /// `welcome`: who this page is now; what was pending goes out again. (A v2 welcome
    /// carries no lines and no count: each room's come in its `joined`, which follow.)
    fn welcomed(&self, welcome: server::Welcome) {
        let state = self.state;
        let server::Welcome {
            id,
            resume,
            name,
            limits,
            greeting,
            user,
            ..
        } = welcome;
        mark("charla:welcome");
        self.transport_welcomed();
        if user.is_some() {
            // Signed in: whatever went wrong with an earlier sign-in is over.
            state.sign_in.set(None);
        }
        state.me.set(user);
        self.exercises.greeting.set(greeting);
        let resend = self
            .session
            .try_update_value(|s| s.on_welcome_at(id.clone(), resume, limits, now_ms()))
            .unwrap_or_default();
        if let Some(token) = self
            .session
            .with_value(|s| s.resume_token().map(str::to_owned))
        {
            self.keep(Store::Session, storage::RESUME, &token);
        }
        state.my_id.set(Some(id));
        if let Some(name) = name {
            state.my_name.set(name.to_string());
        }
        if let Some(limits) = limits {
            state.max_text_chars.set(limits.max_text_chars as usize);
        }
        state.status.set(super::ConnState::Connected);
        state.retry_in.set(None);
        // What was sent while offline (or never acked) goes out again now, as fast as the
        // server's limits allow; the server appends each nonce once, so a resend is never a
        // duplicate.
        for frame in resend {
            self.send_frame(&frame);
        }
        // A ticker that ran and the product list that was watched, asked for again.
        for frame in self.exercises.resubscribe() {
            self.send_frame(&frame);
        }
        self.schedule_due();
        let draft = state.draft.get_untracked();
        if !draft.is_empty() {
            self.typing(&draft);
        }
        self.sync_pending();
    }

    /// `joined`: the room as it is now (its lines appended after a resume, or replacing
    /// what the page showed).
    fn joined(&self, joined: server::Joined) {
        let state = self.state;
        let room = joined.room;
        if !state.is_joined(&room) {
            return; // Left while the join was on its way; its `left` follows.
        }
        let (lines, resumed) = (joined.lines, joined.resumed);
        let shown = self
            .session
            .try_update_value(|s| s.on_joined(room.clone(), lines, resumed));
        let view = state.room(&room);
        match shown {
            Some(Shown::Replace(lines)) => {
                view.history.set(shared::session::lines_to_show(lines));
                view.has_more.set(joined.has_more);
            }
            Some(Shown::Append(lines)) if lines.is_empty() => {}
            Some(shown @ Shown::Append(_)) => view.history.update(|h| shown.apply_to(h)),
            None => {}
        }
        // Once the lines are on the page (the DOM is updated before the next frame): the
        // benchmark measures welcome → this.
        request_animation_frame(|| mark("charla:joined-shown"));
        self.joined_read(&room, joined.read);
        view.online.set(joined.online);
        view.members.set(joined.members);
        view.private.set(joined.private);
        view.slow_mode.set(joined.slow_mode.unwrap_or(0));
        view.muted.set(joined.muted.then_some(joined.muted_until));
        view.typists.set(
            joined
                .typing
                .into_iter()
                .map(|t| LiveText {
                    from: t.from,
                    name: t.name.to_string(),
                    text: t.text,
                })
                .collect(),
        );
        self.sync_pending();
    }

    /// `typing`: someone's live text (typists are told apart by connection; the user is
    /// not shown).
    fn someone_typed(&self, typing: server::Typing) {
        if self.state.is_joined(&typing.room) {
            self.state
                .room(&typing.room)
                .set_typing(typing.from, typing.name, typing.text);
        }
    }

    /// `message`: a new line, shown once (a resent one of this page's settles it);
    /// `message_edited` and `message_deleted`: an entry applied once to the line it changes.
    fn line(&self, line: ChatLine) {
        let state = self.state;
        let room = line.room.clone();
        let settles = line.nonce.is_some();
        if let Some(line) = self.session.try_update_value(|s| s.on_line(line)).flatten() {
            let arrival = self.arrival(&room, &line);
            state.room(&room).history.update(|h| line.show_in(h));
            self.line_arrived(&room, arrival);
        }
        if settles {
            self.sync_pending();
        }
    }

    /// `moderation`: an entry of the room's log like a line (taken once, by `seq`); a
    /// slow mode is shown at the composer, and a mute of this page stops it offering to
    /// send. (A kick or a ban of this page is told by the `left` that follows.)
    fn moderation(&self, m: server::Moderation) {
        let state = self.state;
        let (room, action, secs) = (m.room.clone(), m.action, m.secs);
        let mine = m.user.as_deref().is_some_and(|u| state.is_subject(u));
        let until = m.until;
        self.line(m.into());
        if !state.is_joined(&room) {
            return;
        }
        let view = state.room(&room);
        match action {
            ChangeKind::SlowMode => view.slow_mode.set(secs.unwrap_or(0)),
            ChangeKind::Mute if mine => view.muted.set(Some(until)),
            ChangeKind::Unmute if mine => view.muted.set(None),
            _ => {}
        }
    }

    /// `left` with a reason: a moderator kicked or banned this page out of the room. The
    /// page leaves it and says so (a kicked page may join again; a banned one is refused).
    fn put_out(&self, left: server::Left) {
        let Some(reason) = left.reason else {
            return;
        };
        let room = left.room;
        if self.state.is_joined(&room) {
            self.session.update_value(|s| {
                let _ = s.leave(&room);
            });
            self.forget_room(&room);
        }
        self.state.notice.set(Some(super::Notice::PutOut {
            room,
            ban: reason == ChangeKind::Ban,
            by: left.by.unwrap_or_default(),
            until: left.until,
        }));
    }

    /// `ack`: a line of this page's is durable.
    fn acked(&self, ack: &server::Ack) {
        if self
            .session
            .try_update_value(|s| s.on_ack(&ack.nonce))
            .unwrap_or(false)
        {
            self.sync_pending();
        }
    }

    /// `older`: a page of older lines, put before the ones shown.
    fn older(&self, older: server::Older) {
        let state = self.state;
        let room = older.room;
        if !state.is_joined(&room) {
            return;
        }
        let lines = self
            .session
            .try_update_value(|s| s.on_older(&room, older.lines))
            .map(shared::session::lines_to_show)
            .unwrap_or_default();
        let view = state.room(&room);
        if !lines.is_empty() {
            view.history.update(|h| {
                h.splice(0..0, lines);
            });
        }
        view.has_more.set(older.has_more);
        self.recount(&room);
    }

    /// `presence`: who is in a room now.
    fn presence(&self, presence: server::Presence) {
        if self.state.is_joined(&presence.room) {
            let view = self.state.room(&presence.room);
            view.online.set(presence.online);
            view.members.set(presence.members);
        }
    }

    /// `members`: a page of the member list; the next one is asked for at once.
    fn members_page(&self, page: server::Members) {
        let state = self.state;
        let room = page.room;
        if !state.is_joined(&room) {
            return;
        }
        let next = page
            .offset
            .unwrap_or(0)
            .saturating_add(u32::try_from(page.members.len()).unwrap_or(u32::MAX));
        let view = state.room(&room);
        if page.offset.is_none() {
            view.members.set(Some(page.members));
        } else {
            view.members.update(|list| {
                list.get_or_insert_with(Vec::new).extend(page.members);
            });
        }
        if page.has_more {
            self.send_frame(&shared::ClientMsg::Members {
                room: room.as_str().to_owned(),
                offset: Some(next),
            });
        }
    }

    /// `name_set`: this session's name now, kept for the next visit.
    fn named(&self, named: &server::NameSet) {
        self.state.my_name.set(named.name.to_string());
        self.keep(Store::Local, storage::NAME, named.name.as_str());
    }

    /// `products`: a page of the catalog; the next one is asked for at once.
    fn products_page(&self, page: server::Products) {
        if let Some(next) = self
            .exercises
            .products_page(page.products, page.after, page.has_more)
        {
            self.send_frame(&next);
        }
    }
}
