//! History in memory: nothing to load, nothing to write. The rooms' own caches are the history.

use super::{Batch, HistoryStore, Loaded, StoreError};

/// Keeps nothing itself (the rooms cache the lines); lost on restart. For `--memory`.
#[derive(Debug, Default)]
pub struct MemoryStore;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore
    }
}

impl HistoryStore for MemoryStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded::default())
    }

    fn commit(&mut self, _batch: &Batch) -> Result<(), StoreError> {
        Ok(())
    }
}
