//! Lines that arrive ahead of a gap ([`EarlyLines`]): with several servers, another
//! server's lines may still be on their way when a later one comes. Those are held, and
//! delivered in order once the gap is filled. Alone, a server's lines always come in order
//! and nothing is ever held.

use std::collections::BTreeMap;

use shared::{ChatLine, Seq};

/// The out-of-order buffer of one room.
#[derive(Debug, Default)]
pub(super) struct EarlyLines(BTreeMap<Seq, ChatLine>);

impl EarlyLines {
    /// Of `lines`, with `next` the `seq` that follows on: those that can go out now, in
    /// order (with any held ones they complete). Lines ahead of a gap are held; lines
    /// before `next` (repeats) are dropped.
    pub(super) fn order(&mut self, mut next: Seq, lines: Vec<ChatLine>) -> Vec<ChatLine> {
        let mut ready = Vec::new();
        for line in lines {
            if line.seq == next && self.0.is_empty() {
                next = Seq(next.0 + 1);
                ready.push(line);
            } else if line.seq >= next {
                self.0.insert(line.seq, line);
            }
        }
        while let Some(line) = self.0.remove(&next) {
            ready.push(line);
            next = Seq(next.0 + 1);
        }
        ready
    }

    /// Whether anything is held.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drops the held lines before `first`.
    pub(super) fn drop_before(&mut self, first: Seq) {
        self.0.retain(|seq, _| *seq >= first);
    }

    /// Every held line, oldest first; none is held afterwards.
    pub(super) fn take_all(&mut self) -> Vec<ChatLine> {
        std::mem::take(&mut self.0).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{ConnId, RoomName};

    fn line(seq: u64) -> ChatLine {
        ChatLine {
            room: RoomName::general(),
            seq: Seq(seq),
            from: ConnId::new("b"),
            name: None,
            user: None,
            text: String::new(),
            at: 0,
            nonce: None,
            edited: false,
            removed: false,
            change: None,
        }
    }

    fn seqs(lines: &[ChatLine]) -> Vec<u64> {
        lines.iter().map(|l| l.seq.0).collect()
    }

    #[test]
    fn in_order_lines_go_straight_out_and_repeats_are_dropped() {
        let mut early = EarlyLines::default();
        let ready = early.order(Seq(3), vec![line(2), line(3), line(4)]);
        assert_eq!(seqs(&ready), [3, 4]);
        assert!(early.is_empty());
    }

    #[test]
    fn lines_ahead_of_a_gap_wait_for_it_then_go_in_order() {
        let mut early = EarlyLines::default();
        assert!(early.order(Seq(1), vec![line(3), line(5)]).is_empty());
        // 4 completes nothing yet: 1 and 2 are still missing.
        assert!(early.order(Seq(1), vec![line(4)]).is_empty());
        let ready = early.order(Seq(1), vec![line(1), line(2)]);
        assert_eq!(seqs(&ready), [1, 2, 3, 4, 5]);
        assert!(early.is_empty());
    }

    #[test]
    fn held_lines_can_be_dropped_or_taken_for_a_restart() {
        let mut early = EarlyLines::default();
        let _ = early.order(Seq(1), vec![line(4), line(6), line(8)]);
        early.drop_before(Seq(6));
        assert_eq!(seqs(&early.take_all()), [6, 8]);
        assert!(early.is_empty());
    }
}
