//! Read positions: for each signed-in user and room, the newest entry they have read (on any
//! tab or device), as this server holds them.
//!
//! A `read {room, seq}` moves a position forward, never back ([`Reads::advance`]); the
//! connection that moved it tells every connection of the user on this server, and hands the
//! position to the committer, which keeps it with the next group commit (SQLite's `reads`
//! table; with `--redis`, the `charla:reads` hash, announced on the `charla:reads` channel so
//! every other server moves it too and tells its own connections of the user). Positions are
//! loaded at start-up, and with `--redis` read again whenever the server (re)subscribes.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use shared::{RoomName, Seq, UserId};

use crate::store::StoredRead;

/// Every signed-in user's read position in each room, on this server.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    users: Mutex<HashMap<UserId, HashMap<RoomName, Seq>>>,
}

impl Reads {
    /// The positions a store kept.
    pub(crate) fn load(rows: Vec<StoredRead>) -> Self {
        let this = Reads::default();
        for row in rows {
            this.advance(&row.user, &row.room, row.seq);
        }
        this
    }

    /// `user`'s position in `room`, if they read anything there.
    pub(crate) fn get(&self, user: &UserId, room: &RoomName) -> Option<Seq> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.get(user).and_then(|rooms| rooms.get(room)).copied()
    }

    /// Moves `user`'s position in `room` to `seq` if that is further; whether it moved.
    pub(crate) fn advance(&self, user: &UserId, room: &RoomName, seq: Seq) -> bool {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let rooms = users.entry(user.clone()).or_default();
        match rooms.get_mut(room) {
            Some(held) if *held >= seq => false,
            Some(held) => {
                *held = seq;
                true
            }
            None => {
                rooms.insert(room.clone(), seq);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_only_moves_forward() {
        let (ana, room) = (UserId::new("ana"), RoomName::general());
        let reads = Reads::load(vec![StoredRead {
            user: ana.clone(),
            room: room.clone(),
            seq: Seq(5),
        }]);
        assert_eq!(reads.get(&ana, &room), Some(Seq(5)));
        assert!(!reads.advance(&ana, &room, Seq(3)), "back: no move");
        assert!(!reads.advance(&ana, &room, Seq(5)), "same: no move");
        assert_eq!(reads.get(&ana, &room), Some(Seq(5)));
        assert!(reads.advance(&ana, &room, Seq(9)));
        assert_eq!(reads.get(&ana, &room), Some(Seq(9)));
        assert_eq!(reads.get(&UserId::new("bob"), &room), None);
    }
}
