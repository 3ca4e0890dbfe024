//! A room's link to where else its lines are ([`RoomLink`]): the other servers (Redis) or
//! this server's own file. Catching up before greeting joiners, filling gaps, starting
//! over when the shared history was trimmed, and the other servers' members and typists.

use std::{collections::HashMap, sync::Arc, time::Instant};

use shared::{ChatLine, ConnId, Member, Seq, Typist, UserId};

use super::{After, Greeting, Room, gauge};
use crate::outbox::ConnKey;

/// What ties a room to the other servers of a cluster (`--redis`); absent on a server that
/// is alone. The room calls it and never waits on it: the other side does the I/O and calls
/// back ([`Room::synced`], [`Room::publish`], [`Room::set_remote`], [`Room::remote_typing`]).
/// The room does not know what is on the other side.
pub(crate) trait RoomLink: Send + Sync {
    /// The room has a joiner but may be behind: catch up, then call [`Room::synced`].
    fn sync(&self, room: &Arc<Room>);
    /// The room's last member left: stop following it.
    fn release(&self, room: &Arc<Room>);
    /// Lines after `after` are missing (a later one arrived first): fetch them and
    /// [`Room::publish`] them.
    fn fill(&self, room: &Arc<Room>, after: Seq);
    /// This server's members of the room changed (coalesced, like presence).
    fn presence(&self, room: &Arc<Room>, online: u32, members: Option<Vec<Member>>);
    /// A member of this server typed.
    fn typing(&self, room: &Arc<Room>, typist: &Typist);
}

/// Whether a room's kept lines are known to be current (always, without a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyncState {
    /// Current: joiners are greeted at once.
    Synced,
    /// Catching up: joiners wait in `waiting`.
    Requested,
    /// Not followed (no member here): the next joiner asks to catch up.
    Idle,
}

/// Another server's members of a room, as it last said.
#[derive(Debug, Clone)]
pub(super) struct Remote {
    pub(super) online: u32,
    pub(super) members: Option<Vec<Member>>,
    pub(super) typing: HashMap<ConnId, Typist>,
    pub(super) expires: Instant,
}

impl Room {
    /// The link caught the room up: greets whoever waited. Returns false if nobody is left
    /// to greet (the room stays unfollowed: release it).
    pub(crate) fn synced(self: &Arc<Self>) -> bool {
        let mut state = self.lock();
        if state.waiting.is_empty() && state.members.is_empty() {
            state.sync = SyncState::Idle;
            return false;
        }
        state.sync = SyncState::Synced;
        let waiting = std::mem::take(&mut state.waiting);
        // A lone joiner's greeting told it who is here; several greeted in turn were not
        // told of each other.
        let only = match waiting.as_slice() {
            [one] if state.members.is_empty() => Some(one.key),
            _ => None,
        };
        for w in waiting {
            let outbox = w.member.outbox.clone();
            self.greet(&mut state, w.key, w.member, w.after, w.greeting);
            for frame in w.then {
                outbox.push(frame);
            }
        }
        self.presence_changed(&mut state, only);
        true
    }

    /// The link could not fill from `last_seq` (the shared history no longer holds those
    /// lines): the kept lines start over at `lines` (oldest first, contiguous). Only for a
    /// room nobody here follows, or one that missed more than the history cap.
    pub(crate) fn restart_at(self: &Arc<Self>, lines: Vec<ChatLine>) {
        let mut state = self.lock();
        let Some(first) = lines.first() else { return };
        let first = first.seq;
        let forgotten = state.history.restart_before(first);
        self.metrics.history_lines.dec_by(gauge(forgotten));
        state.early.drop_before(first);
        // The members here missed lines that are gone from the stream: each is told so, with
        // a `joined` that replaces what it shows of the room (nothing kept before `first`),
        // and the lines from `first` on follow as live lines.
        let private = state.private;
        for m in state.members.values() {
            let frame =
                self.greeting_frame(&state, m, After::default(), Greeting::Joined { private });
            m.outbox.push(frame);
        }
        drop(state);
        self.publish(lines, Vec::new());
    }

    /// Lines read back from where they are kept, for a room nobody is in yet (it left
    /// memory and is joined again): kept, not delivered or acked again (they were, when
    /// they were new). Lines not after the last kept one are skipped; a gap before one
    /// (older lines gone) starts the kept history over at it.
    pub(crate) fn restore(&self, lines: Vec<ChatLine>) {
        let mut state = self.lock();
        let before = state.history.len();
        state.history.restore(lines);
        let next = state.history.next_seq();
        state.early.drop_before(next);
        self.metrics
            .history_lines
            .inc_by(gauge(state.history.len()) - gauge(before));
    }

    /// A fill came back without the missing lines. Lines held back for it can then never
    /// be completed: the room starts over at the first of them (see [`Room::restart_at`])
    /// rather than hold them until some later line asks again.
    pub(crate) fn fill_failed(self: &Arc<Self>) {
        let mut state = self.lock();
        state.filling = false;
        if state.early.is_empty() {
            return;
        }
        let held = state.early.take_all();
        drop(state);
        self.restart_at(held);
    }

    /// What another server says of its members of this room (until `expires`).
    pub(crate) fn set_remote(
        self: &Arc<Self>,
        server: &str,
        online: u32,
        members: Option<Vec<Member>>,
        expires: Instant,
    ) {
        let mut state = self.lock();
        let typing = if online == 0 {
            state
                .remote
                .remove(server)
                .map(|r| r.typing)
                .unwrap_or_default()
        } else {
            let remote = state.remote.entry(server.to_owned()).or_insert(Remote {
                online: 0,
                members: None,
                typing: HashMap::new(),
                expires,
            });
            let same = remote.online == online && remote.members == members;
            remote.online = online;
            remote.members = members;
            remote.expires = expires;
            if same {
                return; // A heartbeat: nothing changed.
            }
            HashMap::new()
        };
        self.clear_typists(&mut state, typing.into_values());
        self.presence_changed(&mut state, None);
    }

    /// Forgets the servers that stopped saying who is here (gone without a word).
    pub(crate) fn expire_remote(self: &Arc<Self>, now: Instant) {
        let mut state = self.lock();
        let gone: Vec<String> = state
            .remote
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(server, _)| server.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for server in gone {
            if let Some(remote) = state.remote.remove(&server) {
                self.clear_typists(&mut state, remote.typing.into_values());
            }
        }
        self.presence_changed(&mut state, None);
    }

    /// A member of another server typed: relayed like a local typist's text.
    pub(crate) fn remote_typing(self: &Arc<Self>, server: &str, typist: Typist) {
        let mut state = self.lock();
        let Some(remote) = state.remote.get_mut(server) else {
            return; // Its presence comes first; typing from a server not seen is dropped.
        };
        if typist.text.is_empty() {
            remote.typing.remove(&typist.from);
        } else {
            remote.typing.insert(typist.from.clone(), typist.clone());
        }
        self.offer_typing(&mut state, remote_slot(&typist), typist, false);
    }
}

/// The outbox slot key of a typist on another server (local connections count up from 0, so
/// the top bit keeps the two apart).
pub(super) fn remote_key(id: &ConnId) -> ConnKey {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    ConnKey(h.finish() | (1 << 63))
}

/// The outbox slot key of a signed-in user's live text in a room (all their tabs share it).
pub(super) fn user_key(user: &UserId) -> ConnKey {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    "user".hash(&mut h);
    user.hash(&mut h);
    ConnKey(h.finish() | (1 << 63))
}

/// The slot of another server's typist: its user's, or its connection id's.
pub(super) fn remote_slot(typist: &Typist) -> ConnKey {
    typist
        .user
        .as_ref()
        .map_or_else(|| remote_key(&typist.from), user_key)
}
