//! Where history lines are kept. The hub calls the store under its lock, so a store must be
//! quick and must not block on I/O; [`MemoryStore`] is the one store today.

use std::collections::VecDeque;

use shared::{ChatLine, ConnId, Seq};

/// Keeps the history and hands out `seq` numbers: 1, 2, 3, … with no gaps.
pub trait HistoryStore: Send {
    /// Appends a line from `from`, giving it the next `seq`, and returns it.
    fn append(&mut self, from: ConnId, text: String, at: u64) -> ChatLine;
    /// The kept lines, oldest first.
    fn lines(&self) -> Vec<ChatLine>;
    /// How many lines are kept.
    fn len(&self) -> usize;
    /// Whether no line is kept.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// History in memory, capped: past `cap` lines the oldest go. Lost on restart.
#[derive(Debug)]
pub struct MemoryStore {
    lines: VecDeque<ChatLine>,
    cap: usize,
    /// The `seq` of the last line ever appended, kept apart from `lines` so dropping the
    /// oldest lines never reuses a number.
    last_seq: Seq,
}

impl MemoryStore {
    /// An empty store keeping at most `cap` lines (at least one).
    pub fn new(cap: u32) -> Self {
        let cap = usize::try_from(cap.max(1)).unwrap_or(usize::MAX);
        MemoryStore {
            lines: VecDeque::new(),
            cap,
            last_seq: Seq(0),
        }
    }
}

impl HistoryStore for MemoryStore {
    fn append(&mut self, from: ConnId, text: String, at: u64) -> ChatLine {
        self.last_seq = Seq(self.last_seq.0 + 1);
        let line = ChatLine {
            seq: self.last_seq,
            from,
            text,
            at,
        };
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line.clone());
        line
    }

    fn lines(&self) -> Vec<ChatLine> {
        self.lines.iter().cloned().collect()
    }

    fn len(&self) -> usize {
        self.lines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_rises_by_one_and_the_cap_drops_the_oldest() {
        let mut store = MemoryStore::new(3);
        let seqs: Vec<u64> = (0..5)
            .map(|i| store.append(ConnId::new("a"), format!("l{i}"), 0).seq.0)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        let kept: Vec<(u64, String)> = store
            .lines()
            .into_iter()
            .map(|l| (l.seq.0, l.text))
            .collect();
        assert_eq!(kept, [(3, "l2".into()), (4, "l3".into()), (5, "l4".into())]);
        assert_eq!(store.len(), 3);
    }
}
