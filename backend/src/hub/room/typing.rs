//! The pace of a room's live text: however many type, and however long their texts, the
//! room hands each member at most [`TYPING_BYTES_PER_SEC`] of `typing` frames a second (after
//! a burst of [`TYPING_BURST_BYTES`]). Past that, changes wait, one per typist: a newer text
//! replaces the waiting one, and waiting typists go out in the order they first waited. A
//! crowd typing 2,000-character texts then costs every member the same bytes a second as a
//! few people typing, and each typist's latest text still arrives.
//!
//! Pure bookkeeping over a clock the caller passes in: the room schedules the releases.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use crate::outbox::{ConnKey, Frame};

/// The bytes of `typing` frames a room sends each member per second, in the long run.
pub(crate) const TYPING_BYTES_PER_SEC: usize = 128 * 1024;

/// The bytes a room may send at once after a quiet spell.
pub(crate) const TYPING_BURST_BYTES: usize = 128 * 1024;

/// One change to one typist's live text, encoded, and what the room needs to relay it.
#[derive(Debug, Clone)]
pub(crate) struct Change<T> {
    /// The typist's slot (a user's, a guest connection's, another server's typist).
    pub slot: ConnKey,
    /// The `typing` frame.
    pub frame: Frame,
    /// Whatever the room relays beside the frame (the typist, for the other servers).
    pub with: T,
}

/// A room's typing budget and the changes waiting for it.
#[derive(Debug)]
pub(crate) struct TypingPacer<T> {
    /// Bytes that may go out now.
    tokens: usize,
    /// When `tokens` was last topped up.
    topped_at: Instant,
    /// Waiting changes by slot, and the slots in the order they first waited.
    waiting: HashMap<ConnKey, Change<T>>,
    order: VecDeque<ConnKey>,
}

impl<T> TypingPacer<T> {
    /// A full budget, nothing waiting.
    pub(crate) fn new(now: Instant) -> Self {
        TypingPacer {
            tokens: TYPING_BURST_BYTES,
            topped_at: now,
            waiting: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn top_up(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.topped_at);
        let earned = elapsed.as_secs_f64() * TYPING_BYTES_PER_SEC as f64;
        if earned >= 1.0 {
            // Whole bytes only; the fraction carries over in `topped_at`.
            let earned = earned as usize;
            self.tokens = (self.tokens + earned).min(TYPING_BURST_BYTES);
            self.topped_at = now;
        }
    }

    /// Offers a change: returned if it may go out now (nothing waits and the budget has
    /// room), else kept (replacing this slot's waiting change) for [`TypingPacer::release`].
    pub(crate) fn offer(&mut self, change: Change<T>, now: Instant) -> Option<Change<T>> {
        self.top_up(now);
        if self.order.is_empty() && change.frame.len() <= self.tokens {
            self.tokens -= change.frame.len();
            return Some(change);
        }
        let slot = change.slot;
        if self.waiting.insert(slot, change).is_none() {
            self.order.push_back(slot);
        }
        None
    }

    /// The waiting changes that fit the budget now, in order; and when to look again if
    /// some still wait.
    pub(crate) fn release(&mut self, now: Instant) -> (Vec<Change<T>>, Option<Instant>) {
        self.top_up(now);
        let mut out = Vec::new();
        while let Some(slot) = self.order.front().copied() {
            let Some(len) = self.waiting.get(&slot).map(|c| c.frame.len()) else {
                self.order.pop_front(); // Stale: cannot happen, but costs nothing to skip.
                continue;
            };
            if len > self.tokens {
                break;
            }
            self.tokens -= len;
            self.order.pop_front();
            out.extend(self.waiting.remove(&slot));
        }
        let next = self
            .order
            .front()
            .and_then(|slot| self.waiting.get(slot))
            .map(|c| {
                let short = c.frame.len().saturating_sub(self.tokens);
                now + Duration::from_secs_f64(short as f64 / TYPING_BYTES_PER_SEC as f64)
                    .max(Duration::from_millis(1))
            });
        (out, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(slot: u64, bytes: usize) -> Change<()> {
        Change {
            slot: ConnKey(slot),
            frame: Frame::for_test("x".repeat(bytes)),
            with: (),
        }
    }

    #[test]
    fn a_crowd_of_long_texts_gets_the_same_bytes_a_second_as_a_few_typists() {
        let start = Instant::now();
        let mut pacer = TypingPacer::new(start);
        let mut sent = 0;
        // 1,000 typists, each changing a 12 KB text ten times a second, for ten seconds.
        for tick in 0..100u32 {
            let now = start + Duration::from_millis(100) * tick;
            for typist in 0..1_000 {
                if let Some(c) = pacer.offer(change(typist, 12_000), now) {
                    sent += c.frame.len();
                }
            }
            let (released, _) = pacer.release(now);
            sent += released.iter().map(|c| c.frame.len()).sum::<usize>();
        }
        // Ten seconds' worth and one burst, however many offered (120 MB).
        let most = TYPING_BURST_BYTES + 10 * TYPING_BYTES_PER_SEC;
        assert!(sent <= most, "{sent} bytes went out, at most {most} may");
        assert!(
            sent >= most - 2 * 12_000,
            "the budget is used: {sent} of {most}"
        );
        // Waiting: at most one change per typist, not one per keystroke.
        assert!(pacer.waiting.len() <= 1_000 && pacer.waiting.len() > 900);
        assert_eq!(pacer.order.len(), pacer.waiting.len());
    }

    #[test]
    fn the_latest_text_waits_in_the_slot_it_first_waited_in() {
        let start = Instant::now();
        let mut pacer = TypingPacer::new(start);
        // Spend the burst.
        assert!(pacer.offer(change(1, TYPING_BURST_BYTES), start).is_some());
        assert!(pacer.offer(change(2, 10), start).is_none());
        assert!(pacer.offer(change(3, 10), start).is_none());
        let newer = Change {
            slot: ConnKey(2),
            frame: Frame::for_test("newer".to_owned()),
            with: (),
        };
        assert!(
            pacer.offer(newer, start).is_none(),
            "waits behind the others"
        );
        let (none, next) = pacer.release(start);
        assert!(none.is_empty());
        let next = next.expect("a time to look again");
        assert!(next > start && next <= start + Duration::from_millis(2));
        let (released, after) = pacer.release(start + Duration::from_millis(10));
        let got: Vec<(u64, String)> = released
            .iter()
            .map(|c| (c.slot.0, c.frame.clone().into_bytes().as_str().to_owned()))
            .collect();
        assert_eq!(got, [(2, "newer".to_owned()), (3, "x".repeat(10))]);
        assert_eq!(after, None);
        assert!(pacer.waiting.is_empty());
        // Quiet again: the next change goes straight out.
        assert!(
            pacer
                .offer(change(4, 10), start + Duration::from_secs(2))
                .is_some()
        );
    }
}
