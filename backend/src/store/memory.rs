//! History in memory: nothing to load. The rooms' own caches are the history; the store keeps
//! only what outlives a room's memory while the server runs: its rules and the audit log.

use std::collections::{BTreeMap, VecDeque};

use shared::{ChangeKind, RoomName};

use super::{AUDIT_KEEP, AuditEntry, Batch, HistoryStore, Loaded, RuleOp, StoreError, StoredRule};

/// Keeps no lines itself (the rooms cache them); lost on restart. For `--memory`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rules: BTreeMap<(RoomName, ChangeKind, String), StoredRule>,
    /// Newest first.
    audit: VecDeque<AuditEntry>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl HistoryStore for MemoryStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            rules: self.rules.values().cloned().collect(),
            ..Loaded::default()
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        for op in &batch.rules {
            match op {
                RuleOp::Put(rule) => {
                    let key = (rule.room.clone(), rule.kind, rule.user.clone());
                    self.rules.insert(key, rule.clone());
                }
                RuleOp::Lift(room, kind, user) => {
                    self.rules.remove(&(room.clone(), *kind, user.clone()));
                }
            }
        }
        for entry in &batch.audit {
            self.audit.push_front(entry.clone());
        }
        self.audit.truncate(AUDIT_KEEP);
        Ok(())
    }

    fn audit(
        &mut self,
        room: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .audit
            .iter()
            .filter(|e| room.is_none_or(|r| &e.room == r))
            .take(limit)
            .cloned()
            .collect())
    }
}
