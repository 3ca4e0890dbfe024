//! Per-connection rate limits: token buckets, and the rule that closes a connection that
//! stays over its limit.

use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate_per_sec.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there (now, if one is).
    pub fn next_token_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

/// Tells when a connection has been over its limit for too long: a refusal at least once a
/// second, without a second-long pause, for `patience` in a row.
#[derive(Debug, Clone)]
pub struct Persistence {
    patience: Duration,
    /// When the current unbroken run of refusals began, and the last refusal in it.
    run: Option<(Instant, Instant)>,
}

/// A gap longer than this between two refusals ends a run.
const RUN_GAP: Duration = Duration::from_secs(1);

impl Persistence {
    /// Closes after `patience` of unbroken refusals.
    pub fn new(patience: Duration) -> Self {
        Persistence {
            patience,
            run: None,
        }
    }

    /// Records a refusal; returns `true` when the run has lasted `patience`.
    pub fn refused(&mut self, now: Instant) -> bool {
        let start = match self.run {
            Some((start, last)) if now.saturating_duration_since(last) <= RUN_GAP => start,
            _ => now,
        };
        self.run = Some((start, now));
        now.saturating_duration_since(start) >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 20, t0);
        assert_eq!((0..25).filter(|_| bucket.try_take(t0)).count(), 20);
        // 10 a second: one more every 100 ms.
        assert!(!bucket.try_take(t0 + Duration::from_millis(50)));
        assert!(bucket.try_take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(1) + Duration::from_millis(100);
        assert_eq!((0..25).filter(|_| bucket.try_take(later)).count(), 10);
        // Never more than the burst, however long it rests.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!((0..25).filter(|_| bucket.try_take(much_later)).count(), 20);
    }

    #[test]
    fn next_token_at_says_when_to_try_again() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(4, 1, t0);
        assert_eq!(bucket.next_token_at(t0), t0);
        assert!(bucket.try_take(t0));
        let next = bucket.next_token_at(t0);
        assert_eq!(next - t0, Duration::from_millis(250));
        assert!(bucket.try_take(next));
    }

    #[test]
    fn persistence_needs_an_unbroken_run() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = Persistence::new(Duration::from_secs(10));
        // Refused every 500 ms: closes once 10 s of that have passed.
        assert!((0..20).all(|i| !p.refused(ms(i * 500))));
        assert!(p.refused(ms(10_000)));
        // A pause longer than a second starts over: 4 s, a 1.5 s pause, then 10 s more.
        let mut p = Persistence::new(Duration::from_secs(10));
        assert!((0..8).all(|i| !p.refused(ms(i * 500))));
        assert!((0..20).all(|i| !p.refused(ms(5_000 + i * 500))));
        assert!(p.refused(ms(15_000)));
    }
}
