//! A room's link to this server's own file, for a server alone (SQLite): what lets quiet
//! rooms leave memory. A room that left is made again when someone joins it; like a room
//! of a cluster catching up from Redis, it holds its joiners until its lines are read back
//! ([`Room::synced`]), and a line that arrives ahead of the ones before it is filled from
//! the file. Reads run on the blocking pool; the room never waits on the disk under its
//! lock.

use std::sync::Arc;

use shared::{Member, Seq, Typist};

use super::room::{Room, RoomLink};
use crate::store::Archive;

/// See the module docs.
pub(crate) struct ArchiveLink {
    archive: Arc<Archive>,
    /// Lines a room keeps (`--history-cap`): at most that many are read back.
    history_cap: usize,
}

impl ArchiveLink {
    pub(crate) fn new(archive: Arc<Archive>, history_cap: usize) -> Self {
        ArchiveLink {
            archive,
            history_cap,
        }
    }

    /// Reads the lines `room` is missing, then hands them to it (and greets its joiners
    /// if `greet`).
    fn catch_up(&self, room: &Arc<Room>, greet: bool) {
        let archive = self.archive.clone();
        let cap = self.history_cap.max(1);
        let room = room.clone();
        tokio::task::spawn_blocking(move || {
            let after = room.last_seq();
            match archive.lines_after(&room.name, after, cap) {
                // Read back for joiners still waiting: kept, not sent again.
                Ok(lines) if greet => room.restore(lines),
                Ok(lines) => match lines.first() {
                    None => room.fill_failed(),
                    // Older lines are gone (trimmed, or expired): start at the first kept.
                    Some(first) if first.seq.0 > after.0 + 1 => room.restart_at(lines),
                    Some(_) => room.publish(lines, Vec::new()),
                },
                Err(err) => {
                    // The joiners are greeted with what memory holds rather than kept
                    // waiting for a disk that fails.
                    tracing::error!(%err, room = %room.name, "could not read a room back");
                    room.fill_failed();
                }
            }
            if greet {
                let _ = room.synced();
            }
        });
    }
}

impl RoomLink for ArchiveLink {
    fn sync(&self, room: &Arc<Room>) {
        self.catch_up(room, true);
    }

    fn release(&self, _room: &Arc<Room>) {}

    fn fill(&self, room: &Arc<Room>, _after: Seq) {
        self.catch_up(room, false);
    }

    fn presence(&self, _room: &Arc<Room>, _online: u32, _members: Option<Vec<Member>>) {}

    fn typing(&self, _room: &Arc<Room>, _typist: &Typist) {}
}
