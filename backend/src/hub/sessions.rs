//! Sessions: resume token → who (id and name), with the rules that keep the table honest.
//!
//! - A session expires after `--session-ttl` of disuse (never while one of its connections
//!   is open); the table holds at most `--max-sessions`, evicting the least recently used.
//! - Resuming rotates the token: the welcome carries a new one, and the old one keeps
//!   working for `--resume-grace` (10 minutes) from the moment it was replaced, in case the client
//!   never got the welcome (replaying it again does not extend that).
//! - One address may open at most `--new-sessions-per-min` new sessions a minute, and resume
//!   at most `--resumes-per-min` (each resume mints a token).
//! - A session whose lines may still be resent (it sent one with a nonce) is never evicted:
//!   its client would come back as someone new and its resent line would be appended twice.
//!   When only such sessions are left, new sessions are refused until some expire.
//!
//! Every change comes back as [`SessionChanges`] for the committer to make durable; a
//! connection is welcomed only once its session is on disk, so a token a client holds
//! survives any crash, and with it the id its resent nonces are recognised by.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use shared::{ConnId, DisplayName, UserId};

use super::{Session, guest_name, random_token};
use crate::{
    rate::{AddressKey, KeyedBuckets},
    store::{ResumeToken, StoredSession},
};

/// How long a replaced token still resumes its session by default, in ms.
#[cfg(test)]
const ROTATION_GRACE_MS: u64 = 10 * 60 * 1000;

/// `d` in whole ms, the unit of the table's clock.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How the session table is bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionRules {
    /// Disuse after which a session expires.
    pub ttl: Duration,
    /// How long a replaced token still resumes its session.
    pub grace: Duration,
    /// The most sessions kept.
    pub max_sessions: usize,
    /// New sessions one address may open per minute.
    pub new_per_address_per_min: u32,
    /// Resumes one address may make per minute.
    pub resumes_per_address_per_min: u32,
}

/// What to make durable after a change to the table.
#[derive(Debug, Default)]
pub(crate) struct SessionChanges {
    /// Sessions to write (new, resumed, renamed, replaced).
    pub store: Vec<StoredSession>,
    /// Sessions to delete.
    pub forget: Vec<(ResumeToken, ConnId)>,
    /// Ids with no session left: their nonces can go.
    pub ids_gone: Vec<ConnId>,
}

impl SessionChanges {
    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.store.is_empty() && self.forget.is_empty()
    }
}

/// A session opened for a connection.
pub(crate) struct Opened {
    /// The token to give the client (a fresh one when resumed).
    pub token: ResumeToken,
    /// Who the connection is.
    pub session: Session,
    /// Whether an existing session was resumed.
    pub resumed: bool,
    /// What to make durable before welcoming.
    pub changes: SessionChanges,
}

/// Why no session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenRefused {
    /// The address opened its share of new sessions this minute.
    TooManyNew,
    /// The address resumed its share of sessions this minute.
    TooManyResumes,
    /// The table is full of sessions that may not be evicted.
    Full,
}

#[derive(Debug, Clone)]
struct Entry {
    id: ConnId,
    name: DisplayName,
    last_used: u64,
    replaced: bool,
    /// The user it belongs to (none: a guest's): only their token resumes it.
    user: Option<UserId>,
}

impl Entry {
    /// A stored session as a table entry (named `guest-xxxx` if it predates names).
    fn from_stored(s: StoredSession) -> (ResumeToken, Entry) {
        let name = s.name.unwrap_or_else(|| guest_name(&s.id));
        let entry = Entry {
            id: s.id,
            name,
            last_used: s.last_used,
            replaced: s.replaced,
            user: s.user,
        };
        (s.token, entry)
    }

    fn stored(&self, token: &ResumeToken) -> StoredSession {
        StoredSession {
            token: token.clone(),
            id: self.id.clone(),
            name: Some(self.name.clone()),
            last_used: self.last_used,
            replaced: self.replaced,
            user: self.user.clone(),
        }
    }

    fn expired(&self, now: u64, rules: &SessionRules) -> bool {
        let idle = now.saturating_sub(self.last_used);
        idle >= millis(rules.ttl) || (self.replaced && idle >= millis(rules.grace))
    }
}

#[derive(Default)]
struct Table {
    by_token: HashMap<ResumeToken, Entry>,
    /// Tokens per id (a rotated session has two for a while): an id whose count reaches
    /// zero is gone, with its nonces. Counted, so forgetting a token is O(1).
    tokens_per_id: HashMap<ConnId, usize>,
    /// Open connections per id: a session in use never expires.
    live: HashMap<ConnId, usize>,
    /// Ids that sent a line with a nonce: their sessions are never evicted (see the module
    /// docs).
    nonce_holders: HashSet<ConnId>,
}

impl Table {
    fn insert(&mut self, token: ResumeToken, entry: Entry) {
        let id = entry.id.clone();
        if self.by_token.insert(token, entry).is_none() {
            *self.tokens_per_id.entry(id).or_default() += 1;
        }
    }
}

/// The table's clock: the wall clock when the server started, moved on by the monotonic
/// clock. A wall clock set forward while the server runs (NTP after a suspend, an operator's
/// typo) cannot make every offline session look idle past `--session-ttl` and delete it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionClock {
    wall_at_start: u64,
    started: Instant,
}

impl SessionClock {
    /// A clock that reads `wall_ms` now.
    pub(crate) fn starting_at(wall_ms: u64) -> Self {
        SessionClock {
            wall_at_start: wall_ms,
            started: Instant::now(),
        }
    }

    /// Milliseconds since the epoch, as the table counts them, at `instant`.
    pub(crate) fn ms_at(&self, instant: Instant) -> u64 {
        let elapsed = instant.saturating_duration_since(self.started).as_millis();
        self.wall_at_start
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

/// The session table. See the module docs.
pub(crate) struct Sessions {
    table: Mutex<Table>,
    clock: SessionClock,
    new_sessions: KeyedBuckets<AddressKey>,
    resumes: KeyedBuckets<AddressKey>,
    rules: SessionRules,
}

impl Sessions {
    /// The table over the stored sessions, less those expired by `now_ms` (returned, to
    /// delete). `with_nonces`: the ids whose accepted nonces are remembered.
    pub(crate) fn load(
        stored: Vec<StoredSession>,
        with_nonces: &HashSet<ConnId>,
        rules: SessionRules,
        now_ms: u64,
    ) -> (Self, SessionChanges) {
        let mut table = Table::default();
        for s in stored {
            let (token, entry) = Entry::from_stored(s);
            if with_nonces.contains(&entry.id) {
                table.nonce_holders.insert(entry.id.clone());
            }
            table.insert(token, entry);
        }
        let sessions = Sessions {
            table: Mutex::new(table),
            clock: SessionClock::starting_at(now_ms),
            new_sessions: KeyedBuckets::per_minute(rules.new_per_address_per_min),
            resumes: KeyedBuckets::per_minute(rules.resumes_per_address_per_min),
            rules,
        };
        let expired = sessions.sweep(now_ms);
        (sessions, expired)
    }

    /// Now, on the table's clock (see [`SessionClock`]): what every call's `now_ms` is.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.ms_at(Instant::now())
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Plain map operations: consistent after any panic, so survive a poisoned lock.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session for a connection from `address`, signed in as `user` (none: a
    /// guest): resumes the one `token` names (with a fresh token, and `name` if given) if it
    /// is known, not expired and `user`'s, or opens a new one (named `name`, or a generated
    /// `guest-xxxx`).
    pub(crate) fn open(
        &self,
        token: Option<&str>,
        name: Option<DisplayName>,
        user: Option<&UserId>,
        address: AddressKey,
        now_ms: u64,
    ) -> Result<Opened, OpenRefused> {
        let mut table = self.lock();
        let mut changes = SessionChanges::default();
        let known = token
            .map(|t| ResumeToken(t.to_owned()))
            .and_then(|t| table.by_token.get(&t).map(|e| (t, e.clone())))
            .filter(|(_, e)| !e.expired(now_ms, &self.rules))
            // A session is only ever its own user's (or, for a guest's, a guest's).
            .filter(|(_, e)| e.user.as_ref() == user);
        let resumed = known.is_some();
        let entry = match known {
            Some((old_token, old)) => self.rotate(
                &mut table,
                old_token,
                old,
                name,
                &address,
                now_ms,
                &mut changes,
            )?,
            None => self.new_entry(name, user, &address, now_ms)?,
        };
        let token = ResumeToken(random_token(16));
        if table.by_token.len() >= self.rules.max_sessions {
            evict_oldest(&mut table, self.rules.max_sessions / 100 + 1, &mut changes);
            if !resumed && table.by_token.len() >= self.rules.max_sessions {
                return Err(OpenRefused::Full);
            }
        }
        changes.store.push(entry.stored(&token));
        *table.live.entry(entry.id.clone()).or_default() += 1;
        table.insert(token.clone(), entry.clone());
        Ok(Opened {
            token,
            session: Session {
                id: entry.id,
                name: entry.name,
            },
            resumed,
            changes,
        })
    }

    /// A resumed session under a new token: the old token lingers briefly, marked
    /// replaced (one replaced already keeps the moment it was replaced: its grace is not
    /// restarted); `name`, if given, becomes its name. Resumes are rate-limited per address.
    #[allow(clippy::too_many_arguments)] // The parts of `open` it continues, by name.
    fn rotate(
        &self,
        table: &mut Table,
        old_token: ResumeToken,
        mut old: Entry,
        name: Option<DisplayName>,
        address: &AddressKey,
        now_ms: u64,
        changes: &mut SessionChanges,
    ) -> Result<Entry, OpenRefused> {
        if !self.resumes.try_take(address, Instant::now()) {
            return Err(OpenRefused::TooManyResumes);
        }
        if !old.replaced {
            let mut replaced = old.clone();
            replaced.replaced = true;
            replaced.last_used = now_ms;
            changes.store.push(replaced.stored(&old_token));
            table.insert(old_token, replaced);
        }
        old.replaced = false;
        old.last_used = now_ms;
        if let Some(name) = name {
            old.name = name;
        }
        Ok(old)
    }

    /// A new session (named `name`, or a generated `guest-xxxx`), rate-limited per address.
    fn new_entry(
        &self,
        name: Option<DisplayName>,
        user: Option<&UserId>,
        address: &AddressKey,
        now_ms: u64,
    ) -> Result<Entry, OpenRefused> {
        if !self.new_sessions.try_take(address, Instant::now()) {
            return Err(OpenRefused::TooManyNew);
        }
        let id = ConnId::new(random_token(12));
        let name = name.unwrap_or_else(|| guest_name(&id));
        Ok(Entry {
            id,
            name,
            last_used: now_ms,
            replaced: false,
            user: user.cloned(),
        })
    }

    /// Whether `token` names a session this server holds.
    pub(crate) fn knows(&self, token: &str) -> bool {
        self.lock()
            .by_token
            .contains_key(&ResumeToken(token.to_owned()))
    }

    /// Takes in a session as the shared store has it (another server may have made it, or
    /// rotated its token): a token replaced there is replaced here too, from the moment it
    /// was replaced there.
    pub(crate) fn adopt(&self, stored: StoredSession) {
        let mut table = self.lock();
        if let Some(known) = table.by_token.get_mut(&stored.token) {
            if stored.replaced && !known.replaced {
                known.replaced = true;
                known.last_used = stored.last_used;
            }
            return;
        }
        let (token, entry) = Entry::from_stored(stored);
        table.insert(token, entry);
    }

    /// The shared store no longer holds `token` (expired or replaced for long on another
    /// server): it resumes nothing here either, unless a connection uses it now.
    pub(crate) fn forget_unshared(&self, token: &str) {
        let mut table = self.lock();
        let token = ResumeToken(token.to_owned());
        let in_use = table
            .by_token
            .get(&token)
            .is_some_and(|e| table.live.contains_key(&e.id));
        if !in_use {
            let mut changes = SessionChanges::default();
            remove(&mut table, &token, &mut changes);
        }
    }

    /// The session `id` sent a line with a nonce: it is never evicted from now on (it
    /// expires, with its nonces, after `--session-ttl` of disuse).
    pub(crate) fn holds_nonces(&self, id: &ConnId) {
        let mut table = self.lock();
        if table.tokens_per_id.contains_key(id) && !table.nonce_holders.contains(id) {
            table.nonce_holders.insert(id.clone());
        }
    }

    /// A connection of the session `token` closed: it was used until now.
    pub(crate) fn closed(&self, token: &ResumeToken, now_ms: u64) -> Option<StoredSession> {
        let mut table = self.lock();
        let entry = table.by_token.get_mut(token)?;
        entry.last_used = now_ms;
        let (id, stored) = (entry.id.clone(), entry.stored(token));
        if let Some(n) = table.live.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                table.live.remove(&id);
            }
        }
        Some(stored)
    }

    /// Changes a session's name; returns what to store.
    pub(crate) fn rename(
        &self,
        token: &ResumeToken,
        name: &DisplayName,
        now_ms: u64,
    ) -> Option<StoredSession> {
        let mut table = self.lock();
        let entry = table.by_token.get_mut(token)?;
        entry.name = name.clone();
        entry.last_used = now_ms;
        Some(entry.stored(token))
    }

    /// Forgets the sessions expired by `now_ms` (none of whose connections is open).
    pub(crate) fn sweep(&self, now_ms: u64) -> SessionChanges {
        let mut table = self.lock();
        let Table { by_token, live, .. } = &mut *table;
        let expired: Vec<ResumeToken> = by_token
            .iter()
            .filter(|(_, e)| e.expired(now_ms, &self.rules) && !live.contains_key(&e.id))
            .map(|(t, _)| t.clone())
            .collect();
        let mut changes = SessionChanges::default();
        for token in expired {
            remove(&mut table, &token, &mut changes);
        }
        changes
    }

    /// How many sessions are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().by_token.len()
    }
}

/// Removes `count` of the least recently used sessions not in use.
fn evict_oldest(table: &mut Table, count: usize, changes: &mut SessionChanges) {
    let mut idle: Vec<(u64, ResumeToken)> = table
        .by_token
        .iter()
        .filter(|(_, e)| !table.live.contains_key(&e.id) && !table.nonce_holders.contains(&e.id))
        .map(|(t, e)| (e.last_used, t.clone()))
        .collect();
    let count = count.min(idle.len());
    if count == 0 {
        return;
    }
    idle.select_nth_unstable(count - 1);
    for (_, token) in idle.into_iter().take(count) {
        remove(table, &token, changes);
    }
}

fn remove(table: &mut Table, token: &ResumeToken, changes: &mut SessionChanges) {
    if let Some(entry) = table.by_token.remove(token) {
        let left = table.tokens_per_id.get_mut(&entry.id).map(|n| {
            *n -= 1;
            *n
        });
        if left == Some(0) {
            table.tokens_per_id.remove(&entry.id);
            table.nonce_holders.remove(&entry.id);
            changes.ids_gone.push(entry.id.clone());
        }
        changes.forget.push((token.clone(), entry.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;

    fn rules() -> SessionRules {
        SessionRules {
            ttl: Duration::from_millis(7 * DAY),
            grace: Duration::from_millis(ROTATION_GRACE_MS),
            max_sessions: 1_000,
            new_per_address_per_min: 5,
            resumes_per_address_per_min: 1_000,
        }
    }

    fn here() -> AddressKey {
        std::net::IpAddr::from([10, 0, 0, 1]).into()
    }

    #[test]
    fn resuming_rotates_the_token_and_the_old_one_lingers_only_briefly() {
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 0);
        let first = sessions.open(None, None, None, here(), 0).expect("new");
        assert!(!first.resumed);
        let t1 = first.token.0.clone();
        let second = sessions
            .open(Some(&t1), None, None, here(), 1_000)
            .expect("resume");
        assert!(second.resumed);
        assert_eq!(second.session.id, first.session.id);
        assert_ne!(second.token.0, t1, "a fresh token");
        // The old token still works within the grace period (the client may have missed the
        // welcome that carried the new one) ...
        let again = sessions
            .open(Some(&t1), None, None, here(), 2_000)
            .expect("resume");
        assert_eq!(again.session.id, first.session.id);
        // ... but not after it.
        let late = 2_000 + ROTATION_GRACE_MS + 1;
        let stranger = sessions
            .open(Some(&t1), None, None, here(), late)
            .expect("new");
        assert!(!stranger.resumed);
        assert_ne!(stranger.session.id, first.session.id);
        // The newest token is still good.
        let t3 = again.token.0.clone();
        assert!(
            sessions
                .open(Some(&t3), None, None, here(), late)
                .expect("resume")
                .resumed
        );
    }

    #[test]
    fn a_session_resumes_only_for_its_own_user() {
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 0);
        let alice = UserId::new("alice");
        let bob = UserId::new("bob");
        let hers = sessions
            .open(None, None, Some(&alice), here(), 0)
            .expect("new");
        let token = hers.token.0.clone();
        for (who, at) in [(Some(&bob), 10), (None, 20)] {
            let other = sessions
                .open(Some(&token), None, who, here(), at)
                .expect("new");
            assert!(!other.resumed, "{who:?} must not get alice's session");
            assert_ne!(other.session.id, hers.session.id);
        }
        let again = sessions
            .open(Some(&token), None, Some(&alice), here(), 30)
            .expect("resume");
        assert!(again.resumed);
        assert_eq!(again.session.id, hers.session.id);
        // And a guest's session is not a user's to take.
        let guest = sessions.open(None, None, None, here(), 40).expect("new");
        let taken = sessions
            .open(Some(&guest.token.0), None, Some(&alice), here(), 50)
            .expect("new");
        assert!(!taken.resumed);
    }

    #[test]
    fn sessions_expire_after_the_ttl_of_disuse_but_never_while_connected() {
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 0);
        let idle = sessions.open(None, None, None, here(), 0).expect("new");
        sessions.closed(&idle.token, 0);
        let busy = sessions.open(None, None, None, here(), 0).expect("new");
        let swept = sessions.sweep(7 * DAY + 1);
        let forgotten: Vec<_> = swept.forget.iter().map(|(t, _)| t.clone()).collect();
        assert!(forgotten.contains(&idle.token));
        assert!(!forgotten.contains(&busy.token), "in use");
        assert_eq!(swept.ids_gone, vec![idle.session.id.clone()]);
        let t = idle.token.0.clone();
        assert!(
            !sessions
                .open(Some(&t), None, None, here(), 7 * DAY + 2)
                .expect("new")
                .resumed
        );
    }

    #[test]
    fn one_address_opens_a_bounded_number_of_new_sessions_a_minute() {
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 0);
        let opened = (0..8)
            .filter(|_| sessions.open(None, None, None, here(), 0).is_ok())
            .count();
        assert_eq!(opened, 5);
        let elsewhere: AddressKey = std::net::IpAddr::from([10, 0, 0, 2]).into();
        assert!(sessions.open(None, None, None, elsewhere, 0).is_ok());
    }

    #[test]
    fn the_table_is_capped_by_evicting_the_least_recently_used() {
        let rules = SessionRules {
            max_sessions: 100,
            new_per_address_per_min: 10_000,
            ..rules()
        };
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules, 0);
        let mut tokens = Vec::new();
        for i in 0..300 {
            let opened = sessions.open(None, None, None, here(), i).expect("new");
            sessions.closed(&opened.token, i);
            tokens.push(opened.token);
        }
        assert!(sessions.len() <= 100, "{}", sessions.len());
        let newest = tokens.last().expect("one").0.clone();
        assert!(
            sessions
                .open(Some(&newest), None, None, here(), 400)
                .expect("ok")
                .resumed
        );
        let oldest = tokens[0].0.clone();
        assert!(
            !sessions
                .open(Some(&oldest), None, None, here(), 400)
                .expect("ok")
                .resumed
        );
    }

    #[test]
    fn a_replaced_token_replayed_does_not_restart_its_grace() {
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 0);
        let first = sessions.open(None, None, None, here(), 0).expect("new");
        sessions.closed(&first.token, 0);
        // Resumed at t=1 s: the first token is replaced from then on.
        let second = sessions
            .open(Some(&first.token.0), None, None, here(), 1_000)
            .expect("resume");
        sessions.closed(&second.token, 1_000);
        // Replayed every minute, the old token resumes within its grace, and only then.
        let mut t = 1_000;
        while t + 60_000 < 1_000 + ROTATION_GRACE_MS {
            t += 60_000;
            let again = sessions
                .open(Some(&first.token.0), None, None, here(), t)
                .expect("resume");
            assert!(again.resumed, "within the grace at {t} ms");
            sessions.closed(&again.token, t);
        }
        let late = sessions
            .open(
                Some(&first.token.0),
                None,
                None,
                here(),
                1_000 + ROTATION_GRACE_MS,
            )
            .expect("a new session");
        assert!(
            !late.resumed,
            "the grace ran from the replacement, not the last replay"
        );
    }

    #[test]
    fn resumes_are_metered_per_address() {
        let rules = SessionRules {
            resumes_per_address_per_min: 3,
            ..rules()
        };
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules, 0);
        let mut token = sessions
            .open(None, None, None, here(), 0)
            .expect("new")
            .token;
        for i in 0..3 {
            sessions.closed(&token, i);
            token = sessions
                .open(Some(&token.0), None, None, here(), i)
                .expect("within the budget")
                .token;
        }
        sessions.closed(&token, 10);
        assert_eq!(
            sessions.open(Some(&token.0), None, None, here(), 10).err(),
            Some(OpenRefused::TooManyResumes)
        );
        // Another address has its own budget.
        let elsewhere = AddressKey::from(std::net::IpAddr::from([10, 0, 0, 2]));
        assert!(
            sessions
                .open(Some(&token.0), None, None, elsewhere, 10)
                .expect("its own budget")
                .resumed
        );
    }

    #[test]
    fn a_session_that_sent_a_line_is_never_evicted_and_a_full_table_refuses_new_ones() {
        let rules = SessionRules {
            max_sessions: 10,
            new_per_address_per_min: 10_000,
            ..rules()
        };
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules, 0);
        // The oldest session sent a line (its ack may be lost: it will resend).
        let sender = sessions.open(None, None, None, here(), 0).expect("new");
        sessions.holds_nonces(&sender.session.id);
        sessions.closed(&sender.token, 0);
        for i in 1..100 {
            let opened = sessions.open(None, None, None, here(), i).expect("new");
            sessions.closed(&opened.token, i);
        }
        let back = sessions
            .open(Some(&sender.token.0), None, None, here(), 200)
            .expect("resumes");
        assert!(back.resumed, "its id, and so its nonces, are kept");
        assert_eq!(back.session.id, sender.session.id);
        sessions.closed(&back.token, 200);
        // Only such sessions left: a new one is refused rather than evicting them.
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules, 0);
        for i in 0..10 {
            let opened = sessions.open(None, None, None, here(), i).expect("new");
            sessions.holds_nonces(&opened.session.id);
            sessions.closed(&opened.token, i);
        }
        assert_eq!(
            sessions.open(None, None, None, here(), 20).err(),
            Some(OpenRefused::Full)
        );
    }

    #[test]
    fn a_token_replaced_on_another_server_is_replaced_here_from_then_on() {
        let (here_sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 0);
        let opened = here_sessions
            .open(None, None, None, here(), 0)
            .expect("new");
        here_sessions.closed(&opened.token, 0);
        let mut stored = opened.changes.store.last().expect("stored").clone();
        // The other server rotated it at t=5 s and says so in the shared store.
        stored.replaced = true;
        stored.last_used = 5_000;
        here_sessions.adopt(stored);
        assert!(
            here_sessions
                .open(Some(&opened.token.0), None, None, here(), 6_000)
                .expect("within the grace")
                .resumed
        );
        assert!(
            !here_sessions
                .open(
                    Some(&opened.token.0),
                    None,
                    None,
                    here(),
                    5_000 + ROTATION_GRACE_MS
                )
                .expect("new")
                .resumed
        );
    }

    #[test]
    fn the_tables_clock_moves_with_the_monotonic_clock_only() {
        let clock = SessionClock::starting_at(1_000_000);
        // Whatever the wall clock says meanwhile, a minute on the monotonic clock is a
        // minute on the table's.
        assert_eq!(clock.ms_at(clock.started), 1_000_000);
        assert_eq!(
            clock.ms_at(clock.started + std::time::Duration::from_secs(60)),
            1_060_000
        );
        // So sessions used a moment ago are not swept, however far the wall clock jumped.
        let (sessions, _) = Sessions::load(Vec::new(), &HashSet::new(), rules(), 1_000_000);
        let opened = sessions
            .open(None, None, None, here(), sessions.now_ms())
            .expect("new");
        sessions.closed(&opened.token, sessions.now_ms());
        assert!(sessions.sweep(sessions.now_ms()).forget.is_empty());
        assert_eq!(sessions.len(), 1);
    }
}
