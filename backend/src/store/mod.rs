//! Where history lines and resume tokens are kept: [`SqliteStore`] (durable, the default)
//! or [`MemoryStore`] (`--memory`, lost on restart).
//!
//! Only the [`Committer`](crate::committer::Committer) calls a store, from its own thread, so
//! a store may block on the disk: nothing else waits for it.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use shared::{ChatLine, ConnId, Seq};

/// A store failed (disk full, file unreadable, …).
#[derive(Debug, thiserror::Error)]
#[error("history store: {0}")]
pub struct StoreError(pub String);

/// What a store holds at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The kept lines, oldest first.
    pub lines: Vec<ChatLine>,
    /// Resume tokens and the ids they give back.
    pub sessions: Vec<(String, ConnId)>,
}

/// One group commit: everything in it becomes durable together, or nothing does.
#[derive(Debug, Default)]
pub struct Batch {
    /// New lines, in `seq` order.
    pub lines: Vec<ChatLine>,
    /// New resume tokens.
    pub sessions: Vec<(String, ConnId)>,
    /// Lines below this `seq` may be forgotten (the history cap).
    pub forget_below: Option<Seq>,
}

/// Keeps history lines and resume tokens.
pub trait HistoryStore: Send {
    /// Everything kept, for start-up.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Makes a batch durable in one transaction; returns only once it is.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
}
