//! A room's members and their greetings: who is in it ([`RoomMember`], each user or guest
//! session counted once), how a joiner is greeted (`joined`, or a v1 `welcome`) within its
//! reply budget, and the member list, paged.

use std::{collections::HashSet, sync::Arc};

use shared::{ConnId, DisplayName, Member, Seq, ServerMsg, Typist, UserId};

use super::{Room, RoomState, SyncState, count, history::splice_lines, json_len, link::user_key};
use crate::outbox::{ConnKey, Frame, Outbox};

/// The most members one `members` reply lists (and fewer if their bytes pass the reply's
/// budget).
pub(crate) const MEMBERS_PAGE: usize = 1_000;

/// One member of a room: a connection, who it is, and where its frames go.
#[derive(Debug, Clone)]
pub(crate) struct RoomMember {
    /// The connection's public id.
    pub id: ConnId,
    /// Its display name.
    pub name: DisplayName,
    /// The signed-in user (none: a guest).
    pub user: Option<UserId>,
    /// Its outbound queue.
    pub outbox: Arc<Outbox>,
}

/// Who presence counts once: a signed-in user (however many tabs and devices), or a
/// guest's session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Someone {
    User(UserId),
    Session(ConnId),
}

impl RoomMember {
    /// This member as a typist of `text`.
    pub(super) fn typist(&self, text: String) -> Typist {
        Typist {
            from: self.id.clone(),
            name: self.name.clone(),
            user: self.user.clone(),
            text,
        }
    }

    /// Whom the room's rules may hold: its session and its user.
    pub(crate) fn person(&self) -> crate::rules::Person<'_> {
        crate::rules::Person {
            id: &self.id,
            user: self.user.as_ref(),
        }
    }

    pub(super) fn someone(&self) -> Someone {
        match &self.user {
            Some(user) => Someone::User(user.clone()),
            None => Someone::Session(self.id.clone()),
        }
    }

    /// The outbox slot its live text goes into: one per user (the newest tab's text wins),
    /// one per connection for a guest.
    pub(super) fn typing_slot(&self, key: ConnKey) -> ConnKey {
        self.user.as_ref().map_or(key, user_key)
    }
}

/// How a joining connection is greeted.
pub(crate) enum Greeting {
    /// A `joined` (v2, and every `join`); whether the room is private.
    Joined {
        /// The room is private (`--private-rooms`).
        private: bool,
    },
    /// A v1 `welcome`, with the room's lines as its `history` (v1 clients are in `general`).
    Welcome(Box<ServerMsg>),
}

/// Where a resuming member stands: the last `seq` it holds (0: none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct After(pub Seq);

/// A joiner waiting for its room to catch up.
pub(super) struct Waiting {
    pub(super) key: ConnKey,
    pub(super) member: RoomMember,
    pub(super) after: After,
    pub(super) greeting: Greeting,
    /// Acks and refusals for it meanwhile, sent after its greeting.
    pub(super) then: Vec<Frame>,
}

impl Room {
    /// Adds a member and queues its greeting: a resume (`after` > 0, every later line still
    /// kept, and at most `welcome_lines` of them) gets exactly the lines after `after`;
    /// anyone else the latest page. Snapshot and registration happen under one lock, and the
    /// greeting is queued before the lock is released: no line can fall between the lines
    /// in the greeting and the live stream that follows it.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: ConnKey,
        member: RoomMember,
        after: After,
        greeting: Greeting,
    ) {
        let mut state = self.lock();
        if state.sync != SyncState::Synced {
            state.waiting.push(Waiting {
                key,
                member,
                after,
                greeting,
                then: Vec::new(),
            });
            if state.sync == SyncState::Idle {
                state.sync = SyncState::Requested;
                if let Some(link) = &self.link {
                    link.sync(self);
                }
            }
            return;
        }
        self.greet(&mut state, key, member, after, greeting);
        // The greeting told the joiner who is here; only the others need telling.
        self.presence_changed(&mut state, Some(key));
    }

    pub(super) fn greet(
        self: &Arc<Self>,
        state: &mut RoomState,
        key: ConnKey,
        member: RoomMember,
        after: After,
        greeting: Greeting,
    ) {
        let greeted = member.clone();
        *state.someones.entry(member.someone()).or_default() += 1;
        state.members.insert(key, member);
        state.local_changed = true;
        if let Greeting::Joined { private } = greeting {
            state.private = private;
        }
        let frame = self.greeting_frame(state, &greeted, after, greeting);
        greeted.outbox.push(frame);
    }

    /// The greeting for `member`: see [`Room::join`].
    pub(super) fn greeting_frame(
        &self,
        state: &RoomState,
        member: &RoomMember,
        after: After,
        greeting: Greeting,
    ) -> Frame {
        let outbox = &member.outbox;
        // The whole greeting fits the reply budget, whatever the crowd: the member list and
        // the live texts take at most a quarter of it each (a list that does not fit is left
        // out, as for a big room: `members` pages it; typists past their quarter are marked
        // with `typing_more`), the lines what is left.
        let budget = outbox.reply_budget();
        let (members, members_bytes) = match greeting {
            Greeting::Joined { .. } => {
                state.member_list_within(self.config.presence_list_max, budget / 4)
            }
            Greeting::Welcome(_) => (None, 0),
        };
        let (typing, typing_more, typing_bytes) = match greeting {
            Greeting::Joined { .. } => state.typists_within(budget / 4),
            Greeting::Welcome(_) => (Vec::new(), false, 0),
        };
        let lines_budget = budget.saturating_sub(members_bytes + typing_bytes);
        let page = state
            .history
            .page_for(after.0, self.config.welcome_lines, lines_budget);
        let (has_more, resumed) = (page.has_more, page.resumed);
        let lines = state.history.lines(page.range);
        match greeting {
            Greeting::Joined { private } => {
                let online = count(state.online(self.config.presence_list_max));
                let slow_mode = Some(self.rules.slow_mode(&self.name)).filter(|s| *s > 0);
                let muted =
                    self.rules
                        .muted(&self.name, member.person(), crate::committer::now_ms());
                let shell = ServerMsg::Joined(shared::server::Joined {
                    room: self.name.clone(),
                    lines: Vec::new(),
                    has_more,
                    resumed,
                    online,
                    members,
                    typing,
                    typing_more,
                    private,
                    slow_mode,
                    muted: muted.is_some(),
                    muted_until: muted.and_then(|m| m.until),
                    read: member
                        .user
                        .as_ref()
                        .and_then(|u| self.reads.get(u, &self.name)),
                });
                splice_lines(&shell, "lines", &lines)
            }
            Greeting::Welcome(mut welcome) => {
                if let ServerMsg::Welcome(shared::server::Welcome {
                    has_more: more,
                    online,
                    ..
                }) = welcome.as_mut()
                {
                    *more = has_more;
                    *online = count(state.online(self.config.presence_list_max));
                }
                splice_lines(&welcome, "history", &lines)
            }
        }
    }

    /// Removes a member; clears its live text for the others. Returns whether it was in.
    pub(crate) fn leave(self: &Arc<Self>, key: ConnKey) -> bool {
        let mut state = self.lock();
        let waiting = state.waiting.len();
        self.remove(&mut state, key).is_some() || state.waiting.len() != waiting
    }

    /// Whether a connection is in the room (or waiting to be): a moderator's kick or ban
    /// takes it out without its asking.
    pub(crate) fn has(&self, key: ConnKey) -> bool {
        if !self.put_out_any.load(std::sync::atomic::Ordering::Relaxed) {
            return true; // Nobody was ever put out: no lock to take.
        }
        let state = self.lock();
        state.members.contains_key(&key) || state.waiting.iter().any(|w| w.key == key)
    }

    /// [`Room::leave`], under the lock: the member removed, if it was in (a waiting joiner
    /// is dropped too, but not returned).
    pub(super) fn remove(
        self: &Arc<Self>,
        state: &mut RoomState,
        key: ConnKey,
    ) -> Option<RoomMember> {
        let Some(member) = state.members.remove(&key) else {
            state.waiting.retain(|w| w.key != key);
            return None;
        };
        state.local_changed = true;
        let someone = member.someone();
        if let Some(n) = state.someones.get_mut(&someone) {
            *n -= 1;
            if *n == 0 {
                state.someones.remove(&someone);
            }
        }
        let slot = member.typing_slot(key);
        if state
            .typing
            .get(&slot)
            .is_some_and(|(typed_by, _)| *typed_by == key)
        {
            state.typing.remove(&slot);
            let cleared = member.typist(String::new());
            if let Some(link) = &self.link {
                link.typing(self, &cleared);
            }
            self.offer_typing(state, slot, cleared, false);
        }
        if state.members.is_empty()
            && state.waiting.is_empty()
            && state.sync == SyncState::Synced
            && let Some(link) = &self.link
        {
            // Nobody here: stop following the room (the next joiner catches it up, the
            // other servers' members included).
            state.sync = SyncState::Idle;
            state.remote.clear();
            link.presence(self, 0, Some(Vec::new()));
            link.release(self);
            return Some(member);
        }
        self.presence_changed(state, None);
        Some(member)
    }

    /// A member's new display name: shown in the member lists from the next presence on.
    pub(crate) fn rename(self: &Arc<Self>, key: ConnKey, name: &DisplayName) {
        let mut state = self.lock();
        if let Some(member) = state.members.get_mut(&key) {
            member.name = name.clone();
            state.local_changed = true;
            self.presence_changed(&mut state, None);
        }
    }

    /// Everyone in the room (each user once), for the server API.
    pub(crate) fn member_list(&self) -> Vec<Member> {
        self.lock().member_list(usize::MAX).unwrap_or_default()
    }

    /// The `members` reply: the members from `offset` on (by name, then id), at most
    /// [`MEMBERS_PAGE`] and `max_bytes` of them.
    pub(crate) fn members(&self, offset: u32, max_bytes: usize) -> Frame {
        let all = self.lock().member_list(usize::MAX).unwrap_or_default();
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
        let mut page = Vec::new();
        let mut bytes = 0;
        for member in all.iter().skip(from).take(MEMBERS_PAGE) {
            let size = json_len(member);
            if bytes + size > max_bytes && !page.is_empty() {
                break;
            }
            bytes += size;
            page.push(member.clone());
        }
        let has_more = from + page.len() < all.len();
        Frame::encode(&ServerMsg::Members(shared::server::Members {
            room: self.name.clone(),
            members: page,
            offset: (offset > 0).then_some(offset),
            has_more,
        }))
    }
}

impl RoomState {
    /// Who is in the room, here and on the other servers: each signed-in user once, each
    /// guest session once. (A user on two servers of a room too big for member lists is
    /// counted by each.)
    pub(super) fn online(&self, list_max: usize) -> usize {
        if self.remote.is_empty() {
            return self.someones.len();
        }
        if let Some(list) = self.member_list(list_max) {
            return list.len();
        }
        self.someones.len()
            + self
                .remote
                .values()
                .map(|r| usize::try_from(r.online).unwrap_or(usize::MAX))
                .sum::<usize>()
    }

    /// The member list for a greeting (see [`RoomState::member_list`]), left out if its
    /// encoding passes `max_bytes`; and the bytes it takes.
    pub(super) fn member_list_within(
        &self,
        list_max: usize,
        max_bytes: usize,
    ) -> (Option<Vec<Member>>, usize) {
        let Some(list) = self.member_list(list_max) else {
            return (None, 0);
        };
        let bytes = json_len(&list);
        if bytes > max_bytes {
            return (None, 0);
        }
        (Some(list), bytes)
    }

    /// Who is in the room on this server (each id once), if at most `max` ids.
    pub(super) fn local_member_list(&self, max: usize) -> Option<Vec<Member>> {
        if self.members.len() > max.saturating_mul(2) {
            return None; // Clearly too big: don't even count distinct ids.
        }
        let mut seen = HashSet::new();
        let list: Vec<Member> = self
            .members
            .values()
            .filter(|m| seen.insert(m.someone()))
            .map(|m| Member {
                id: m.id.clone(),
                name: m.name.clone(),
                user: m.user.clone(),
            })
            .collect();
        (list.len() <= max).then_some(list)
    }

    /// Who is in the room on every server (each id once), if the room is at most `max` ids
    /// big (and every server could say).
    pub(super) fn member_list(&self, max: usize) -> Option<Vec<Member>> {
        let mut list = self.local_member_list(max)?;
        for remote in self.remote.values() {
            list.extend(remote.members.as_ref()?.iter().cloned());
        }
        // Each user once (on whichever servers their tabs are), each guest session once.
        let someone = |m: &Member| match &m.user {
            Some(user) => Someone::User(user.clone()),
            None => Someone::Session(m.id.clone()),
        };
        let mut seen = HashSet::new();
        list.retain(|m| seen.insert(someone(m)));
        list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        if list.len() > max {
            return None;
        }
        Some(list)
    }

    /// Pushes a frame (an ack, a refusal) to every connection of `id` in the room; one still
    /// waiting for its greeting gets it right after the greeting.
    pub(super) fn push_to(&mut self, id: &ConnId, frame: &Frame) {
        for m in self.members.values().filter(|m| &m.id == id) {
            m.outbox.push(frame.clone());
        }
        for w in self.waiting.iter_mut().filter(|w| &w.member.id == id) {
            w.then.push(frame.clone());
        }
    }
}
