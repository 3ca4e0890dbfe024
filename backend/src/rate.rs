//! Rate limits: token buckets (per connection, and [`KeyedBuckets`] shared by every
//! connection of one address or one session, so reconnecting or opening more sockets buys no
//! more), and the rule that closes a connection that stays over its limit.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

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
        Self::with_rate(f64::from(rate_per_sec.max(1)), burst, now)
    }

    /// A full bucket refilling at `rate_per_sec` (which may be below one).
    pub fn with_rate(rate_per_sec: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate_per_sec.max(1e-6),
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

    /// Whether the bucket has refilled to its burst (nothing to remember about it).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
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

/// Token buckets by key (an address, a session), created full on first use and forgotten
/// once full again and idle, so the map stays as small as the set of active senders.
#[derive(Debug)]
pub struct KeyedBuckets<K> {
    buckets: Mutex<Buckets<K>>,
    rate: f64,
    burst: u32,
}

#[derive(Debug)]
struct Buckets<K> {
    by_key: HashMap<K, TokenBucket>,
    /// The next insert at this many keys sweeps idle full buckets; it doubles past what a
    /// sweep leaves, so many active senders cost a sweep now and then, not one per insert.
    sweep_at: usize,
}

/// Past this many keys, idle full buckets are swept on the next insert.
const SWEEP_ABOVE: usize = 4_096;

impl<K: Hash + Eq + Clone> KeyedBuckets<K> {
    /// Buckets of `rate` per second, holding `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        KeyedBuckets {
            buckets: Mutex::new(Buckets::new()),
            rate: f64::from(rate),
            burst,
        }
    }

    /// Buckets of `per_minute` a minute, holding as many.
    pub fn per_minute(per_minute: u32) -> Self {
        KeyedBuckets {
            buckets: Mutex::new(Buckets::new()),
            rate: f64::from(per_minute) / 60.0,
            burst: per_minute,
        }
    }

    /// Takes a token from `key`'s bucket if there is one.
    pub fn try_take(&self, key: &K, now: Instant) -> bool {
        // Plain numbers: consistent after any panic, so survive a poisoned lock.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.by_key.get_mut(key) {
            return bucket.try_take(now);
        }
        if buckets.by_key.len() >= buckets.sweep_at {
            buckets.by_key.retain(|_, b| !b.is_full(now));
            buckets.sweep_at = SWEEP_ABOVE.max(2 * buckets.by_key.len());
        }
        let mut bucket = TokenBucket::with_rate(self.rate, self.burst, now);
        let taken = bucket.try_take(now);
        buckets.by_key.insert(key.clone(), bucket);
        taken
    }

    /// How many keys have a bucket (for tests of the sweep).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }
}

impl<K> Buckets<K> {
    fn new() -> Self {
        Buckets {
            by_key: HashMap::new(),
            sweep_at: SWEEP_ABOVE,
        }
    }
}

/// The address a rate limit counts by: an IPv4 address, or an IPv6 /64 (one customer's
/// network, which hands its machines any address inside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(u128);

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(u128::from(u32::from(v4))),
                None => AddressKey(u128::from(v6) & !((1u128 << 64) - 1) | (1 << 127)),
            },
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
    fn keyed_buckets_share_one_bucket_per_key_and_forget_idle_full_ones() {
        let t0 = Instant::now();
        let buckets = KeyedBuckets::new(10, 5);
        let a: AddressKey = IpAddr::from([10, 0, 0, 1]).into();
        let b: AddressKey = IpAddr::from([10, 0, 0, 2]).into();
        assert_eq!((0..8).filter(|_| buckets.try_take(&a, t0)).count(), 5);
        assert_eq!((0..8).filter(|_| buckets.try_take(&b, t0)).count(), 5);
        // Up to the sweep point, all at t0 (every bucket just used, so none is full).
        for n in 0..SWEEP_ABOVE as u32 - 2 {
            buckets.try_take(&AddressKey(u128::from(n) + 1_000), t0);
        }
        let later = t0 + Duration::from_secs(10);
        buckets.try_take(&AddressKey(7), later);
        assert!(
            buckets.len() < 10,
            "full idle buckets were swept: {}",
            buckets.len()
        );
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(AddressKey::from(one), AddressKey::from(same_64));
        assert_ne!(AddressKey::from(one), AddressKey::from(other_64));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            AddressKey::from(mapped),
            AddressKey::from(IpAddr::from([10, 0, 0, 1]))
        );
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
