//! Where history lines and sessions are kept: [`SqliteStore`] (durable, the default) or
//! [`MemoryStore`] (`--memory`, lost on restart).
//!
//! Only the [`Committer`](crate::committer::Committer) calls a store, from its own thread, so
//! a store may block on the disk: nothing else waits for it.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use shared::{ChatLine, ConnId, DisplayName, RoomName, Seq};

/// A store failed (disk full, file unreadable, written by a newer release, …).
#[derive(Debug, thiserror::Error)]
#[error("history store: {0}")]
pub struct StoreError(pub String);

/// A private resume token: whoever holds it gets its session's id and name back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResumeToken(pub String);

/// A session as kept: the token, the public id it gives back, and the display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The private token.
    pub token: ResumeToken,
    /// The public id.
    pub id: ConnId,
    /// The display name (none for sessions from before names).
    pub name: Option<DisplayName>,
}

/// What a store holds at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The kept lines of every room, each room's in `seq` order.
    pub lines: Vec<ChatLine>,
    /// Every session.
    pub sessions: Vec<StoredSession>,
}

/// One group commit: everything in it becomes durable together, or nothing does.
#[derive(Debug, Default)]
pub struct Batch {
    /// New lines, each room's in `seq` order.
    pub lines: Vec<ChatLine>,
    /// New or changed sessions (a session with a known token replaces it).
    pub sessions: Vec<StoredSession>,
    /// Per room, lines below this `seq` may be forgotten (the history cap).
    pub forget_below: Vec<(RoomName, Seq)>,
}

/// Keeps history lines and sessions.
pub trait HistoryStore: Send {
    /// Everything kept, for start-up.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Makes a batch durable in one transaction; returns only once it is.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
}
