//! Presence and live text in a room: presence is latest-value-wins and coalesced (a change
//! marks the room dirty, and at most one `presence` frame per [`presence_gap`] goes out,
//! into each member's slot for this room); live text goes through the room's typing pace
//! (see [`typing`](super::typing)) and to the other servers.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use shared::{Member, ServerMsg, Typist};

use super::{Room, RoomState, count, json_len, link::remote_slot, typing::Change};
use crate::outbox::{ConnKey, Frame, Slot};

/// The shortest time between two `presence` frames of one room.
pub(crate) const PRESENCE_EVERY: Duration = Duration::from_millis(250);

/// How many `presence` frames one room may hand out per second, all members together. A
/// room bigger than this sends presence less often than every [`PRESENCE_EVERY`]: a count
/// that changes while thousands join is told to each member every second or two, not four
/// times a second, which would cost more writes than the joins themselves.
pub(crate) const PRESENCE_DELIVERIES_PER_SEC: u32 = 5_000;

/// The time between two `presence` frames of a room of `members` local members.
pub(crate) fn presence_gap(members: usize) -> Duration {
    let spread = Duration::from_secs(1) * u32::try_from(members).unwrap_or(u32::MAX)
        / PRESENCE_DELIVERIES_PER_SEC;
    spread.max(PRESENCE_EVERY)
}

/// When the room last sent presence, and whether a change waits for the next turn.
#[derive(Debug, Default)]
pub(super) struct PresenceClock {
    pub(super) last_sent: Option<Instant>,
    /// A flush is scheduled; changes meanwhile ride along with it.
    pub(super) scheduled: bool,
}

impl Room {
    /// Sends presence now if the room's turn has come, or schedules it for when it does.
    /// (`except`: a member the change need not be told to, if it goes out now.)
    pub(super) fn presence_changed(
        self: &Arc<Self>,
        state: &mut RoomState,
        except: Option<ConnKey>,
    ) {
        if state.presence.scheduled {
            return; // The scheduled flush will carry this change too.
        }
        let now = Instant::now();
        let gap = presence_gap(state.members.len());
        match state.presence.last_sent {
            Some(last) if now.duration_since(last) < gap => {
                state.presence.scheduled = true;
                let room = Arc::downgrade(self);
                let at = last + gap;
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let Some(room) = room.upgrade() else { return };
                    let mut state = room.lock();
                    state.presence.scheduled = false;
                    room.flush_presence(&mut state, Instant::now(), None);
                });
            }
            _ => self.flush_presence(state, now, except),
        }
    }

    pub(super) fn flush_presence(
        self: &Arc<Self>,
        state: &mut RoomState,
        now: Instant,
        except: Option<ConnKey>,
    ) {
        state.presence.last_sent = Some(now);
        if state.local_changed {
            state.local_changed = false;
            if let Some(link) = &self.link {
                let members = state.local_member_list(self.config.presence_list_max);
                link.presence(self, count(state.someones.len()), members);
            }
        }
        let frame = Frame::encode(&ServerMsg::Presence(shared::server::Presence {
            room: self.name.clone(),
            online: count(state.online(self.config.presence_list_max)),
            members: state.member_list(self.config.presence_list_max),
        }));
        let slot = Slot::Presence { room: self.key };
        for (key, m) in &state.members {
            if Some(*key) != except {
                m.outbox.push_latest(slot, frame.clone());
            }
        }
        self.metrics.presence_flushes.inc();
    }

    /// Whether anyone is in the room on this server (so this server follows it).
    pub(crate) fn has_local_members(&self) -> bool {
        !self.lock().someones.is_empty()
    }

    /// This server's members of the room, for the link's heartbeat: (online, members).
    pub(crate) fn local_presence(&self) -> (u32, Option<Vec<Member>>) {
        let state = self.lock();
        (
            count(state.someones.len()),
            state.local_member_list(self.config.presence_list_max),
        )
    }

    /// Relays a member's live text to every member, typist included. Latest value wins per
    /// (typist, room) in every outbox.
    pub(crate) fn typing(self: &Arc<Self>, key: ConnKey, text: String) {
        let mut state = self.lock();
        let Some(member) = state.members.get(&key) else {
            return;
        };
        let typist = member.typist(text.clone());
        let slot = member.typing_slot(key);
        if text.is_empty() {
            state.typing.remove(&slot);
        } else {
            state.typing.insert(slot, (key, text));
        }
        self.offer_typing(&mut state, slot, typist, true);
    }

    /// Relays `typist`'s text ("" clears it) to every member within the room's typing
    /// budget: now, or once the budget allows (a newer text of the same slot replacing it
    /// meanwhile). `tell_link`: the other servers are told when it goes out.
    pub(super) fn offer_typing(
        self: &Arc<Self>,
        state: &mut RoomState,
        slot: ConnKey,
        typist: Typist,
        tell_link: bool,
    ) {
        let frame = Frame::encode(&ServerMsg::Typing(shared::server::Typing {
            room: self.name.clone(),
            from: typist.from.clone(),
            name: Some(typist.name.clone()),
            user: typist.user.clone(),
            text: typist.text.clone(),
        }));
        let change = Change {
            slot,
            frame,
            with: tell_link.then_some(typist),
        };
        let now = Instant::now();
        if let Some(change) = state.typing_pace.offer(change, now) {
            self.relay_typing(state, change);
        } else if !state.typing_scheduled {
            self.release_typing(state, now);
        }
    }

    /// Relays the waiting live text the budget allows now; schedules the rest.
    pub(super) fn release_typing(self: &Arc<Self>, state: &mut RoomState, now: Instant) {
        let (ready, next) = state.typing_pace.release(now);
        for change in ready {
            self.relay_typing(state, change);
        }
        let Some(at) = next else {
            return;
        };
        state.typing_scheduled = true;
        // Weak: a timer does not keep a room in memory (see `Room::is_quiet`).
        let room = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let Some(room) = room.upgrade() else { return };
            let mut state = room.lock();
            state.typing_scheduled = false;
            room.release_typing(&mut state, Instant::now());
        });
    }

    /// Pushes a typing change to every member, into the typist's slot in this room (latest
    /// value wins), and to the other servers if it says so.
    pub(super) fn relay_typing(
        self: &Arc<Self>,
        state: &RoomState,
        change: Change<Option<Typist>>,
    ) {
        if let (Some(link), Some(typist)) = (&self.link, &change.with) {
            link.typing(self, typist);
        }
        let slot = Slot::Typing {
            room: self.key,
            typist: change.slot,
        };
        for m in state.members.values() {
            m.outbox.push_latest(slot, change.frame.clone());
        }
    }

    /// Clears the live text of other servers' typists (their server left the room).
    pub(super) fn clear_typists(
        self: &Arc<Self>,
        state: &mut RoomState,
        typists: impl Iterator<Item = Typist>,
    ) {
        for t in typists {
            let cleared = Typist {
                text: String::new(),
                ..t
            };
            self.offer_typing(state, remote_slot(&cleared), cleared, false);
        }
    }
}

impl RoomState {
    /// Everyone typing, here and on the other servers, as long as their encoded texts fit
    /// `max_bytes`; whether some were left out; and the bytes taken.
    pub(super) fn typists_within(&self, max_bytes: usize) -> (Vec<Typist>, bool, usize) {
        let local = self
            .typing
            .values()
            .filter_map(|(k, text)| self.members.get(k).map(|m| m.typist(text.clone())));
        let remote = self
            .remote
            .values()
            .flat_map(|r| r.typing.values().cloned());
        let mut typists = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for typist in local.chain(remote) {
            let size = json_len(&typist) + 1;
            if bytes + size > max_bytes {
                more = true;
                continue; // A shorter text further on may still fit.
            }
            bytes += size;
            typists.push(typist);
        }
        (typists, more, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_rooms_get_presence_less_often() {
        assert_eq!(presence_gap(0), PRESENCE_EVERY);
        assert_eq!(presence_gap(1_000), PRESENCE_EVERY);
        assert_eq!(presence_gap(5_000), Duration::from_secs(1));
        assert_eq!(presence_gap(10_000), Duration::from_secs(2));
        // However big the room, presence frames per second stay within the budget.
        for members in [1_250, 7_000, 19_900, 100_000] {
            let per_sec = members as f64 / presence_gap(members).as_secs_f64();
            assert!(
                per_sec <= f64::from(PRESENCE_DELIVERIES_PER_SEC) + 1e-6,
                "{members}: {per_sec}"
            );
        }
    }
}
