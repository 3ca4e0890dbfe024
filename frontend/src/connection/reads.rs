//! Read positions and unread counts. A room's unread count is the lines from others after
//! its read position (`RoomState::read`), so every page that holds the same position and
//! lines shows the same count. For a signed-in user the position is the server's: the room
//! in view is read up to its newest line (`read {room, seq}`), and the server tells every tab
//! and device of the user (`read`), whose counts then drop too. A guest's position is this
//! page's own. A room is only read while the page is in sight: a tab left in the background
//! reads nothing for the user's other devices.

use leptos::prelude::*;
use shared::{ChatLine, ClientMsg, RoomName, Seq, server};

use super::Connection;

/// How often, at most, the page tells the server of a room read (the first at once).
const READ_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Read positions waiting for [`READ_EVERY`] to pass, newest per room.
#[derive(Default)]
pub(super) struct ReadsDue {
    rooms: Vec<(RoomName, u64)>,
    timer: Option<TimeoutHandle>,
}

/// What a new entry does to its room's unread count.
pub(super) enum Arrival {
    /// A line from someone else after the read position: one more.
    Unread,
    /// One that does not count (this user's, or already read).
    Read,
    /// An edit, a deletion or a moderation: counted again.
    Change,
}

impl Connection {
    /// Whether `line` counts as unread once past the read position: a line (not a change,
    /// not removed) from someone else.
    fn counts(&self, line: &ChatLine) -> bool {
        line.change.is_none()
            && !line.removed
            && !self.session.with_value(|s| s.is_mine(&line.from))
            && !untrack(|| self.state.owns(line))
    }

    /// Counts a room's unread lines again, from its read position.
    pub(super) fn recount(&self, room: &RoomName) {
        let view = self.state.room(room);
        let read = view.read.get_untracked();
        let count = view.history.with_untracked(|lines| {
            lines
                .iter()
                .filter(|l| l.seq.0 > read && self.counts(l))
                .count()
        });
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if view.unread.get_untracked() != count {
            view.unread.set(count);
        }
    }

    /// What a new entry of `room` does to its count (worked out before it is shown).
    pub(super) fn arrival(&self, room: &RoomName, line: &ChatLine) -> Arrival {
        if line.change.is_some() {
            Arrival::Change
        } else if line.seq.0 > self.state.room(room).read.get_untracked() && self.counts(line) {
            Arrival::Unread
        } else {
            Arrival::Read
        }
    }

    /// A new entry, now shown in `room`: read at once if the room is in view (and the page
    /// in sight), else counted.
    pub(super) fn line_arrived(&self, room: &RoomName, arrival: Arrival) {
        if self.mark_read(room) {
            return;
        }
        match arrival {
            // A deletion may take an unread line away.
            Arrival::Change => self.recount(room),
            Arrival::Unread => self.state.room(room).unread.update(|n| *n += 1),
            Arrival::Read => {}
        }
    }

    /// Reads the room in view up to its newest line, if the page is in sight: its count goes
    /// to zero and, signed in, the server hears of it (and tells the user's other tabs).
    /// Whether the room was read.
    pub(super) fn mark_read(&self, room: &RoomName) -> bool {
        let state = self.state;
        if !state.is_in_view(room) || !state.is_joined(room) || page_hidden() {
            return false;
        }
        let view = state.room(room);
        let newest = view
            .history
            .with_untracked(|h| h.last().map_or(0, |l| l.seq.0));
        if newest > view.read.get_untracked() {
            view.read.set(newest);
            if state.me.with_untracked(Option::is_some) {
                self.tell_read(room, newest);
            }
        }
        // Read up to the newest line: nothing after it is unread.
        if view.unread.get_untracked() != 0 {
            view.unread.set(0);
        }
        true
    }

    /// Tells the server the user read `room` up to `seq`: at once if nothing was told in
    /// the last [`READ_EVERY`], else with the next tell, once that has passed (the newest
    /// position per room). A busy room in view is read at every line; the server hears of it
    /// at most twice per interval, not once per line.
    fn tell_read(&self, room: &RoomName, seq: u64) {
        let held_back = self.reads_due.with_value(|due| due.timer.is_some());
        if held_back {
            self.reads_due.update_value(|due| {
                match due.rooms.iter_mut().find(|(r, _)| r == room) {
                    Some((_, held)) => *held = seq,
                    None => due.rooms.push((room.clone(), seq)),
                }
            });
            return;
        }
        self.send_read(room, seq);
        self.hold_reads_back();
    }

    /// Holds the next positions back for [`READ_EVERY`].
    fn hold_reads_back(&self) {
        let conn = *self;
        let timer = set_timeout_with_handle(move || conn.flush_reads(), READ_EVERY).ok();
        self.reads_due.update_value(|due| due.timer = timer);
    }

    /// The interval has passed: the positions held back go out, and hold back the next.
    fn flush_reads(&self) {
        let rooms = self
            .reads_due
            .try_update_value(|due| {
                due.timer = None;
                std::mem::take(&mut due.rooms)
            })
            .unwrap_or_default();
        if rooms.is_empty() {
            return;
        }
        for (room, seq) in rooms {
            self.send_read(&room, seq);
        }
        self.hold_reads_back();
    }

    fn send_read(&self, room: &RoomName, seq: u64) {
        self.send_frame(&ClientMsg::Read {
            room: room.as_str().to_owned(),
            seq: Seq(seq),
        });
    }

    /// A room's `joined`: the server's read position (a signed-in user's), or, with none
    /// and nothing read on this page yet, the newest line shown (what was there before the
    /// page joined is not news). A position this page holds and the server does not (read
    /// while the connection was down) is told again.
    pub(super) fn joined_read(&self, room: &RoomName, server_read: Option<Seq>) {
        let view = self.state.room(room);
        let held = view.read.get_untracked();
        match server_read {
            Some(seq) if seq.0 > held => view.read.set(seq.0),
            Some(seq) if seq.0 < held && self.state.me.with_untracked(Option::is_some) => {
                self.send_read(room, held);
            }
            None if held == 0 => {
                let newest = view
                    .history
                    .with_untracked(|h| h.last().map_or(0, |l| l.seq.0));
                view.read.set(newest);
            }
            _ => {}
        }
        if !self.mark_read(room) {
            self.recount(room);
        }
    }

    /// `read`: the user read the room up to `seq` on another tab or device (or this one).
    pub(super) fn read_elsewhere(&self, mark: server::ReadMark) {
        if !self.state.is_joined(&mark.room) {
            return;
        }
        let view = self.state.room(&mark.room);
        if mark.seq.0 > view.read.get_untracked() {
            view.read.set(mark.seq.0);
            self.recount(&mark.room);
        }
    }

    /// The page came back into sight: the room in view is read now.
    pub fn page_shown(&self) {
        let room = self.state.current.get_untracked();
        self.mark_read(&room);
    }
}

/// Whether the page is out of sight (a background tab, a minimised window).
fn page_hidden() -> bool {
    document().hidden()
}
