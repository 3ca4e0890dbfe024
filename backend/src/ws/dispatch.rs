//! The server's one dispatch on [`ClientMsg`] ([`Connection::on_text`]) and the chat's
//! handlers: rate limits, validation, then the rooms, the hub and the committer. Refusals
//! go back to the sender as `error` frames (naming the room and the nonce they concern) and
//! the connection stays. The welcome (`welcome`), sign-in (`sign_in`) and the exercises
//! (`exercises`) are handlers of their own.

use std::time::Instant;

use shared::{
    ChangeKind, ClientMsg, DisplayName, ErrorCode, RoomName, Seq, ServerMsg, decode_client,
    limits::MAX_NONCE_CHARS,
};

mod exercises;
pub(crate) mod sign_in;
mod welcome;

use super::connection::{Connection, Flow, Refused, bad_room};
use crate::{
    auth::{Action, Forbidden},
    committer::{Job, LineJob},
    hub::{After, Greeting, JoinRefused, SessionChanges},
    metrics::TypeLabel,
    moderation::{self, Actor, Ask, is_moderator},
    outbox::{CloseReason, Frame},
    state::SendRefused,
};

/// The most lines one `load_older` returns.
const MAX_OLDER: u32 = 500;

impl Connection {
    /// Handles one text frame: the server's one dispatch on [`ClientMsg`]. Returns a close
    /// reason if the connection must end.
    pub(crate) fn on_text(&mut self, text: &str, now: Instant) -> Flow {
        let decoded = decode_client(text);
        let msg = match decoded {
            Ok(msg) => msg,
            Err(err) => {
                self.metrics.frame_in("invalid");
                return self.refuse(now, Refused::new(err.code(), err.to_string()));
            }
        };
        self.metrics.frame_in(msg.type_name());
        match msg {
            ClientMsg::Hello { .. } => self.hello_again(now),
            ClientMsg::Refresh { token } => self.refresh(&token, now),
            ClientMsg::Typing { room, text } => self.typing(room.as_deref(), text, now),
            ClientMsg::Send { room, text, nonce } => {
                self.append(room.as_deref(), text, nonce, None, now)
            }
            ClientMsg::Edit {
                room,
                seq,
                text,
                nonce,
            } => self.append(room.as_deref(), text, nonce, Some(Ask::Edit(seq)), now),
            ClientMsg::Delete { room, seq, nonce } => self.append(
                room.as_deref(),
                String::new(),
                nonce,
                Some(Ask::Delete(seq)),
                now,
            ),
            ClientMsg::Kick { room, user, nonce } => {
                self.moderate(room.as_deref(), ChangeKind::Kick, user, None, nonce, now)
            }
            ClientMsg::Ban {
                room,
                user,
                until,
                nonce,
            } => self.moderate(room.as_deref(), ChangeKind::Ban, user, until, nonce, now),
            ClientMsg::Unban { room, user, nonce } => {
                self.moderate(room.as_deref(), ChangeKind::Unban, user, None, nonce, now)
            }
            ClientMsg::Mute {
                room,
                user,
                until,
                nonce,
            } => self.moderate(room.as_deref(), ChangeKind::Mute, user, until, nonce, now),
            ClientMsg::Unmute { room, user, nonce } => {
                self.moderate(room.as_deref(), ChangeKind::Unmute, user, None, nonce, now)
            }
            ClientMsg::SlowMode { room, secs, nonce } => self.append(
                room.as_deref(),
                String::new(),
                nonce,
                Some(Ask::SlowMode(secs)),
                now,
            ),
            ClientMsg::Read { room, seq } => self.read(&room, seq, now),
            ClientMsg::LoadOlder {
                room,
                before,
                limit,
            } => self.load_older(room.as_deref(), before, limit, now),
            ClientMsg::Ping => self.answer(now, |_| Frame::encode(&ServerMsg::Pong)),
            ClientMsg::Join { room } => self.join_asked(&room, now),
            ClientMsg::Leave { room } => self.leave(&room, now),
            ClientMsg::SetName { name } => self.set_name(&name, now),
            ClientMsg::Members { room, offset } => self.members(&room, offset, now),
            // The exercises beside the chat (`exercises.rs`).
            ClientMsg::Echo { text } => self.echo(text, now),
            ClientMsg::Tic { n } => self.tic(n, now),
            ClientMsg::Binary { size } => self.binary(size, now),
            ClientMsg::StartTicker { ticker, every_ms } => self.start_ticker(ticker, every_ms, now),
            ClientMsg::StopTicker { ticker } => self.stop_ticker(ticker, now),
            ClientMsg::WatchProducts => self.watch_products(now),
            ClientMsg::UnwatchProducts => self.unwatch_products(now),
            ClientMsg::LoadProducts { after } => self.load_products(after, now),
            ClientMsg::AddProduct { product } => self.add_product(product, now),
            ClientMsg::DeleteProduct { id } => self.delete_product(id, now),
        }
    }

    /// A `kick`, `ban`, `unban`, `mute` or `unmute`: an entry of the room's log, like a
    /// line.
    fn moderate(
        &mut self,
        room: Option<&str>,
        kind: ChangeKind,
        user: String,
        until: Option<u64>,
        nonce: Option<String>,
        now: Instant,
    ) -> Flow {
        let ask = Ask::People { kind, user, until };
        self.append(room, String::new(), nonce, Some(ask), now)
    }

    /// A `read`: a signed-in user's position in a room moves forward (to the room's last
    /// entry at most); every connection of theirs, here and on the other servers, hears it,
    /// and the committer keeps it. Nothing happens for a position not further than the one
    /// held.
    fn read(&mut self, room: &str, seq: Seq, now: Instant) -> Flow {
        let room = match self.joined_room(Some(room)) {
            Ok(room) => room,
            Err(refused) => return self.refuse(now, refused),
        };
        let Some(user) = self.sign_in.user.as_ref().map(|u| u.id.clone()) else {
            let why = "read positions are kept for signed-in users";
            let refused = Refused::new(ErrorCode::Forbidden, why);
            return self.refuse(now, refused.about(Some(room.name.clone()), None));
        };
        let seq = seq.min(room.last_seq());
        if seq == Seq(0) || !self.hub.reads.advance(&user, &room.name, seq) {
            return Flow::Continue;
        }
        // Handed to the committer before anyone hears of it: a tab that saw it move sees it
        // kept by a server that then stops.
        let read = crate::store::StoredRead {
            user: user.clone(),
            room: room.name.clone(),
            seq,
        };
        if self.committer.submit(Job::Read(read)).is_err() {
            // Held here (and told to every tab) all the same; the next `read` keeps it.
            tracing::warn!(room = %room.name, "the committer is busy: a read position waits");
        }
        self.hub.tell_read(&user, &room.name, seq);
        Flow::Continue
    }

    /// A second `hello`: only the first frame may be one.
    fn hello_again(&mut self, now: Instant) -> Flow {
        self.refuse(
            now,
            Refused::new(
                ErrorCode::AlreadyWelcomed,
                "hello is only the first frame of a connection",
            ),
        )
    }

    /// A `typing`: shown to the room at once, or held (newest text wins) past the frame
    /// rate.
    fn typing(&mut self, room: Option<&str>, text: String, now: Instant) -> Flow {
        let room = match self.joined_room(room) {
            Ok(room) => room,
            Err(refused) => return self.refuse(now, refused),
        };
        if let Err(why) = self.check_length(&text) {
            return self.refuse(now, why.about(Some(room.name.clone()), None));
        }
        if !text.is_empty()
            && let Err(refused) = self.not_muted(&room.name)
        {
            return self.refuse(now, refused.about(Some(room.name.clone()), None));
        }
        // Over the rate, typing is conflated, not refused: keep only the newest text.
        if self.held_typing.contains_key(&room.key) || !self.frames.try_take(now) {
            self.metrics
                .rate_limited
                .get_or_create(&TypeLabel { r#type: "typing" })
                .inc();
            self.held_typing.insert(room.key, (room, text));
            // Not refused, but a flood all the same: it counts toward the close.
            if self.over_limit.refused(now) {
                return Flow::Close(CloseReason::RateLimited);
            }
        } else {
            room.typing(self.key, text);
        }
        Flow::Continue
    }

    /// A `load_older`: a page of the room's history before `before`, within the reply
    /// budget.
    fn load_older(&mut self, room: Option<&str>, before: Seq, limit: u32, now: Instant) -> Flow {
        match self.joined_room(room) {
            Ok(room) => self.answer(now, |conn| {
                let limit = usize::try_from(limit.clamp(1, MAX_OLDER)).unwrap_or(1);
                room.older(before, limit, conn.outbox.reply_budget())
            }),
            Err(refused) => self.refuse(now, refused),
        }
    }

    /// A `join`: answered by the room's `joined` (or a typed refusal).
    fn join_asked(&mut self, room: &str, now: Instant) -> Flow {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        if let Err(refused) = self.join(room, After::default()) {
            self.send_error(refused);
        }
        Flow::Continue
    }

    /// Joins a room by the name a client gave (again, if already in it: a fresh `joined`).
    fn join(&mut self, room: &str, after: After) -> Result<(), Refused> {
        let name = RoomName::parse(room).map_err(|why| bad_room(room, &why))?;
        // Rooms a moderator put this connection out of no longer count.
        let key = self.key;
        self.rooms.retain(|_, room| room.has(key));
        if let Some(ban) = self
            .hub
            .rules
            .banned(&name, self.person(), crate::committer::now_ms())
        {
            let why = match ban.until {
                Some(until) => {
                    format!("you are banned from {name} until {until} (ms since the Unix epoch)")
                }
                None => format!("you are banned from {name}"),
            };
            return Err(Refused::new(ErrorCode::Banned, why).about(Some(name), None));
        }
        if !self.rooms.contains_key(&name) && self.rooms.len() >= self.limits.max_rooms_per_conn {
            let max = self.limits.max_rooms_per_conn;
            return Err(Refused::new(
                ErrorCode::TooManyRooms,
                format!("a connection may be in at most {max} rooms; leave one first"),
            )
            .about(Some(name), None));
        }
        if let Err(Forbidden(why)) =
            self.sign_in
                .auth
                .authorize(self.sign_in.user.as_deref(), &name, Action::Join)
        {
            // Named in the refusal, but nothing of the room is told: not its lines, not
            // its members, not whether it exists.
            return Err(Refused::new(ErrorCode::Forbidden, why).about(Some(name), None));
        }
        let member = self.member();
        let private = self.sign_in.auth.is_private(&name);
        match self
            .hub
            .join(&name, self.key, member, after, Greeting::Joined { private })
        {
            Ok(joined) => {
                self.rooms.insert(name, joined);
                Ok(())
            }
            Err(JoinRefused::RoomsFull) => Err(Refused::new(
                ErrorCode::RoomsFull,
                "the server has as many rooms as it may hold; join an existing one",
            )
            .about(Some(name), None)),
        }
    }

    /// A `leave`: out of the room, answered by `left`.
    fn leave(&mut self, room: &str, now: Instant) -> Flow {
        let room = match self.joined_room(Some(room)) {
            Ok(room) => room,
            Err(refused) => return self.refuse(now, refused),
        };
        self.answer(now, |conn| {
            conn.rooms.remove(&room.name);
            conn.held_typing.remove(&room.key);
            conn.hub.leave(&room, conn.key);
            Frame::encode(&ServerMsg::Left(shared::server::Left::reply(
                room.name.clone(),
            )))
        })
    }

    /// A `set_name`: a guest's (or a user without a name from the app) new name.
    fn set_name(&mut self, name: &str, now: Instant) -> Flow {
        if self.sign_in.user.as_ref().is_some_and(|u| u.name.is_some()) {
            let why = "your name comes from your sign-in; change it in the app";
            return self.refuse(now, Refused::new(ErrorCode::Forbidden, why));
        }
        match DisplayName::parse(name) {
            Ok(name) => self.answer(now, |conn| conn.rename(name)),
            Err(why) => self.refuse(
                now,
                Refused::new(ErrorCode::BadName, format!("bad name: {why}")),
            ),
        }
    }

    /// A `members`: a page of who is in the room, within the reply budget.
    fn members(&mut self, room: &str, offset: Option<u32>, now: Instant) -> Flow {
        match self.joined_room(Some(room)) {
            Ok(room) => self.answer(now, |conn| {
                room.members(offset.unwrap_or(0), conn.outbox.reply_budget())
            }),
            Err(refused) => self.refuse(now, refused),
        }
    }

    /// A `send`: checked, then handed to the committer (which acks it once durable).
    /// A `send` (`ask` none), `edit` or `delete`: an entry appended to the room's log once
    /// it passed the rates, the checks and (for a change) who may make it.
    fn append(
        &mut self,
        room: Option<&str>,
        text: String,
        nonce: Option<String>,
        ask: Option<Ask>,
        now: Instant,
    ) -> Flow {
        let room = match self.joined_room(room) {
            Ok(room) => room,
            Err(refused) => {
                let room = refused.room.clone();
                return self.refuse(now, refused.about(room, nonce));
            }
        };
        if let Err(refused) = self.take_send(&room.name, &nonce, now) {
            return refused;
        }
        let is_text = matches!(ask, None | Some(Ask::Edit(_)));
        if is_text && let Err(refused) = self.check_line(&text) {
            return self.refuse(now, refused.about(Some(room.name.clone()), nonce));
        }
        if is_text && let Err(refused) = self.not_muted(&room.name) {
            return self.refuse(now, refused.about(Some(room.name.clone()), nonce));
        }
        if nonce
            .as_ref()
            .is_some_and(|n| n.chars().nth(MAX_NONCE_CHARS).is_some())
        {
            // Too long to be kept, so not repeated in the refusal either.
            let why = format!("nonce is longer than {MAX_NONCE_CHARS} characters");
            let refused = Refused::new(ErrorCode::BadField, why);
            return self.refuse(now, refused.about(Some(room.name.clone()), None));
        }
        let user = self.sign_in.user.as_deref();
        let moderator = user.is_some_and(|u| is_moderator(&u.roles));
        if ask.is_none()
            && !moderator
            && let Err(wait) = self.hub.rules.take_turn(&room.name, self.person(), now)
        {
            let why = format!(
                "{} is in slow mode (one line every {} s): wait {} s",
                room.name,
                wait.secs,
                wait.left.as_secs_f64().ceil()
            );
            let refused = Refused::new(ErrorCode::SlowMode, why);
            return self.refuse(now, refused.about(Some(room.name.clone()), nonce));
        }
        let (change, audit) = match ask {
            None => (None, false),
            Some(ask) => {
                let actor = Actor::Member {
                    id: &self.who.id,
                    user: user.map(|u| &u.id),
                    moderator,
                };
                // The clock that stamped the line's `at` (the committer's wall clock).
                let now_ms = crate::committer::now_ms();
                match moderation::check(&room, ask, actor, self.limits.edit_window, now_ms) {
                    Ok(checked) => (Some(checked.change), checked.audited),
                    Err((code, why)) => {
                        let refused = Refused::new(code, why);
                        return self.refuse(now, refused.about(Some(room.name.clone()), nonce));
                    }
                }
            }
        };
        let id = self.who.id.clone();
        if nonce.is_some() && !self.told_nonces {
            // Before the line can be accepted: its client may resend it under this id.
            self.hub.sessions.holds_nonces(&id);
            self.told_nonces = true;
        }
        let job = Job::Line(LineJob {
            room: room.clone(),
            from: id,
            name: self.who.name.clone(),
            text,
            nonce: nonce.clone(),
            user: self.sign_in.user.as_ref().map(|u| u.id.clone()),
            change,
            audit,
            reply: None,
        });
        if self.committer.submit(job).is_err() {
            let refused = Refused::new(
                ErrorCode::Unavailable,
                "the server is busy; send it again later",
            );
            return self.refuse(now, refused.about(Some(room.name.clone()), nonce));
        }
        Flow::Continue
    }

    /// Takes one send from this connection's rate, then from the shared ones (its address,
    /// its session, the server's); the refusal, if one says no.
    fn take_send(
        &mut self,
        room: &RoomName,
        nonce: &Option<String>,
        now: Instant,
    ) -> Result<(), Flow> {
        let shared = if self.sends.try_take(now) {
            self.shared_sends.try_send(&self.who.id, self.address, now)
        } else {
            Err(SendRefused::Sender)
        };
        match shared {
            Ok(()) => Ok(()),
            Err(SendRefused::Sender) => {
                Err(self.rate_limited_about(now, "send", Some(room.clone()), nonce.clone()))
            }
            Err(SendRefused::Server) => {
                let refused = Refused::new(
                    ErrorCode::Unavailable,
                    "the server is at its line rate; send it again in a moment",
                )
                .about(Some(room.clone()), nonce.clone());
                self.metrics
                    .rate_limited
                    .get_or_create(&TypeLabel { r#type: "server" })
                    .inc();
                self.send_error(refused);
                Err(Flow::Continue)
            }
        }
    }

    /// Refused while a moderator has this connection muted in `room`.
    fn not_muted(&self, room: &RoomName) -> Result<(), Refused> {
        let now_ms = crate::committer::now_ms();
        match self.hub.rules.muted(room, self.person(), now_ms) {
            None => Ok(()),
            Some(mute) => Err(Refused::new(
                ErrorCode::Muted,
                match mute.until {
                    Some(until) => format!(
                        "you are muted in {room} until {until} (ms since the Unix epoch): \
                         you may read, not send"
                    ),
                    None => format!("you are muted in {room}: you may read, not send"),
                },
            )),
        }
    }

    /// Whom the rooms' rules may hold: this session and its user.
    fn person(&self) -> crate::rules::Person<'_> {
        crate::rules::Person {
            id: &self.who.id,
            user: self.sign_in.user.as_deref().map(|u| &u.id),
        }
    }

    /// Whether a line's text may be appended: not blank, within the length limit.
    fn check_line(&self, text: &str) -> Result<(), Refused> {
        if text.trim().is_empty() {
            return Err(Refused::new(ErrorCode::Empty, "a line cannot be blank"));
        }
        self.check_length(text)
    }

    /// Changes this session's name everywhere; returns the `name_set` reply.
    fn rename(&mut self, name: DisplayName) -> Frame {
        self.who.name = name.clone();
        let now = self.hub.sessions.now_ms();
        if let Some(stored) = self.hub.sessions.rename(&self.who.token, &name, now) {
            self.store_later(SessionChanges {
                store: vec![stored],
                ..SessionChanges::default()
            });
        }
        for room in self.rooms.values() {
            room.rename(self.key, &name);
        }
        Frame::encode(&ServerMsg::NameSet(shared::server::NameSet { name }))
    }

    /// When the next held-back typing update may go out, if there is one (the clock is
    /// read only then: this runs each time the connection wakes).
    pub(crate) fn held_typing_at(&mut self) -> Option<Instant> {
        if self.held_typing.is_empty() {
            return None;
        }
        Some(self.frames.next_token_at(Instant::now()))
    }

    /// Sends held-back typing updates while the rate allows.
    pub(crate) fn release_typing(&mut self, now: Instant) {
        while !self.held_typing.is_empty() && self.frames.try_take(now) {
            let Some(key) = self.held_typing.keys().next().copied() else {
                return;
            };
            if let Some((room, text)) = self.held_typing.remove(&key) {
                room.typing(self.key, text);
            }
        }
    }

    /// A binary frame: not part of the protocol.
    pub(crate) fn on_binary(&mut self, now: Instant) -> Flow {
        self.metrics.frame_in("binary");
        self.refuse(
            now,
            Refused::new(
                ErrorCode::BinaryFrame,
                "binary frames are not part of the protocol; send JSON in a text frame",
            ),
        )
    }

    /// A WebSocket ping (answered by the WebSocket layer) or pong (`kind`): within the
    /// frame rate, or it counts toward the close like any flood.
    pub(crate) fn on_ws_control(&mut self, kind: &'static str, now: Instant) -> Flow {
        if self.frames.try_take(now) {
            return Flow::Continue;
        }
        self.metrics
            .rate_limited
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        if self.over_limit.refused(now) {
            Flow::Close(CloseReason::RateLimited)
        } else {
            Flow::Continue
        }
    }
}
