//! The rules moderators set on rooms, as this server holds them: who is banned from a room
//! or muted in it (a signed-in user, or a guest's session), until when, and each room's slow
//! mode, with when each person last sent there.
//!
//! The rules come from the store at start-up ([`Rules::load`]) and change as moderation
//! entries are delivered ([`Rules::apply`], from each room's fan-out, in `seq` order) and, with
//! `--redis`, as other servers tell of theirs (the `charla:rules` channel): so every server
//! refuses a banned user's `join`, whichever server the ban was made on. A rule past its end
//! holds nothing; it is dropped the next time it is looked at.
//!
//! Nothing is looked up while no rule was ever set: one relaxed load per check.

use std::{
    collections::HashMap,
    sync::{
        PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use shared::{ChangeKind, ConnId, RoomName, UserId};

use crate::store::{RuleOp, StoredRule};

/// How long a held rule lasts: until a time (ms since the Unix epoch), or until lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hold {
    /// Its end; none: until lifted.
    pub until: Option<u64>,
}

impl Hold {
    fn holds_at(self, now_ms: u64) -> bool {
        self.until.is_none_or(|until| now_ms < until)
    }
}

/// Whom a rule may concern: a connection's session id and its signed-in user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Person<'a> {
    /// The session's public id (a guest is held by it).
    pub id: &'a ConnId,
    /// The signed-in user (held by their id, on every tab and device).
    pub user: Option<&'a UserId>,
}

impl Person<'_> {
    /// Whether a rule on `subject` (a user's id, or a session's) holds this person.
    pub(crate) fn is(&self, subject: &str) -> bool {
        self.id.as_str() == subject || self.user.is_some_and(|u| u.as_str() == subject)
    }

    /// The key its slow-mode pace is kept under: the user, or the guest's session.
    fn pace_key(&self) -> String {
        self.user
            .map_or_else(|| self.id.as_str().to_owned(), |u| u.as_str().to_owned())
    }
}

#[derive(Debug, Default)]
struct RoomRules {
    bans: HashMap<String, Hold>,
    mutes: HashMap<String, Hold>,
    /// Seconds between one person's lines (0: any pace).
    slow: u32,
    /// When each person's last line was taken, while the slow mode is on.
    last_line: HashMap<String, Instant>,
}

impl RoomRules {
    fn is_empty(&self) -> bool {
        self.bans.is_empty() && self.mutes.is_empty() && self.slow == 0
    }
}

/// Every room's rules on this server.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    rooms: RwLock<HashMap<RoomName, RoomRules>>,
    /// Set once any rule was ever set: until then, no check takes the lock.
    any: AtomicBool,
}

/// Sets `rule` in `rooms`.
fn put(rooms: &mut HashMap<RoomName, RoomRules>, rule: StoredRule) {
    let room = rooms.entry(rule.room).or_default();
    let hold = Hold { until: rule.until };
    match rule.kind {
        ChangeKind::Ban => {
            room.bans.insert(rule.user, hold);
        }
        ChangeKind::Mute => {
            room.mutes.insert(rule.user, hold);
        }
        ChangeKind::SlowMode => room.slow = rule.secs.unwrap_or(0),
        _ => {}
    }
}

/// Why a line may not go out yet (the room's slow mode): how long until it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wait {
    /// The room's interval, in seconds.
    pub secs: u32,
    /// How long is left.
    pub left: Duration,
}

impl Rules {
    /// The rules as the store kept them (those past their end are left out).
    pub(crate) fn load(rules: Vec<StoredRule>, now_ms: u64) -> Self {
        let this = Rules::default();
        this.replace(rules, now_ms);
        this
    }

    /// Every rule is now as `rules` say (those past their end left out); the slow modes'
    /// paces are kept.
    pub(crate) fn replace(&self, rules: Vec<StoredRule>, now_ms: u64) {
        let mut rooms = self.write();
        let mut paces: HashMap<RoomName, HashMap<String, Instant>> = rooms
            .drain()
            .map(|(name, room)| (name, room.last_line))
            .collect();
        for rule in rules {
            if rule.until.is_some_and(|until| until <= now_ms) {
                continue;
            }
            put(&mut rooms, rule);
        }
        for (name, room) in rooms.iter_mut() {
            room.last_line = paces.remove(name).unwrap_or_default();
        }
        if !rooms.is_empty() {
            self.any.store(true, Ordering::Relaxed);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<RoomName, RoomRules>> {
        self.rooms.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<RoomName, RoomRules>> {
        self.rooms.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets or lifts a rule (idempotent: the same op twice is the same as once).
    pub(crate) fn apply(&self, op: &RuleOp) {
        let mut rooms = self.write();
        match op {
            RuleOp::Put(rule) => {
                self.any.store(true, Ordering::Relaxed);
                put(&mut rooms, rule.clone());
            }
            RuleOp::Lift(name, kind, user) => {
                let Some(room) = rooms.get_mut(name) else {
                    return;
                };
                match kind {
                    ChangeKind::Ban => {
                        room.bans.remove(user);
                    }
                    ChangeKind::Mute => {
                        room.mutes.remove(user);
                    }
                    ChangeKind::SlowMode => {
                        room.slow = 0;
                        room.last_line.clear();
                    }
                    _ => {}
                }
                if room.is_empty() {
                    rooms.remove(name);
                }
            }
        }
    }

    /// The hold among `holds` (a room's bans or mutes) on `person` at `now_ms`, if any.
    fn held(
        &self,
        room: &RoomName,
        person: Person<'_>,
        now_ms: u64,
        holds: fn(&RoomRules) -> &HashMap<String, Hold>,
    ) -> Option<Hold> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let rooms = self.read();
        let holds = holds(rooms.get(room)?);
        let by_user = person.user.and_then(|u| holds.get(u.as_str()));
        by_user
            .or_else(|| holds.get(person.id.as_str()))
            .copied()
            .filter(|h| h.holds_at(now_ms))
    }

    /// Whether `person` is banned from `room` at `now_ms` (and until when).
    pub(crate) fn banned(&self, room: &RoomName, person: Person<'_>, now_ms: u64) -> Option<Hold> {
        self.held(room, person, now_ms, |r| &r.bans)
    }

    /// Whether `person` is muted in `room` at `now_ms` (and until when).
    pub(crate) fn muted(&self, room: &RoomName, person: Person<'_>, now_ms: u64) -> Option<Hold> {
        self.held(room, person, now_ms, |r| &r.mutes)
    }

    /// The room's slow mode, in seconds (0: off).
    pub(crate) fn slow_mode(&self, room: &RoomName) -> u32 {
        if !self.any.load(Ordering::Relaxed) {
            return 0;
        }
        self.read().get(room).map_or(0, |r| r.slow)
    }

    /// Takes `person`'s turn to send a line to `room` at `now`: refused while the room's
    /// slow mode says their last line was too recent.
    pub(crate) fn take_turn(
        &self,
        room: &RoomName,
        person: Person<'_>,
        now: Instant,
    ) -> Result<(), Wait> {
        if self.slow_mode(room) == 0 {
            return Ok(());
        }
        let mut rooms = self.write();
        let Some(rules) = rooms.get_mut(room).filter(|r| r.slow > 0) else {
            return Ok(());
        };
        let every = Duration::from_secs(u64::from(rules.slow));
        let key = person.pace_key();
        if let Some(last) = rules.last_line.get(&key) {
            let next = *last + every;
            if now < next {
                return Err(Wait {
                    secs: rules.slow,
                    left: next - now,
                });
            }
        }
        if rules.last_line.len() >= 4_096 {
            // Only the ones still inside the interval matter.
            rules.last_line.retain(|_, at| now < *at + every);
        }
        rules.last_line.insert(key, now);
        Ok(())
    }

    /// A room's bans in force at `now_ms`: whom, and until when.
    pub(crate) fn bans(&self, room: &RoomName, now_ms: u64) -> Vec<(String, Hold)> {
        let rooms = self.read();
        let mut bans: Vec<(String, Hold)> = rooms
            .get(room)
            .map(|r| {
                r.bans
                    .iter()
                    .filter(|(_, h)| h.holds_at(now_ms))
                    .map(|(who, h)| (who.clone(), *h))
                    .collect()
            })
            .unwrap_or_default();
        bans.sort_by(|a, b| a.0.cmp(&b.0));
        bans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: ChangeKind, user: &str, until: Option<u64>, secs: Option<u32>) -> RuleOp {
        RuleOp::Put(StoredRule {
            room: RoomName::general(),
            kind,
            user: user.to_owned(),
            until,
            secs,
            by: "mod".to_owned(),
            at: 0,
        })
    }

    #[test]
    fn a_ban_holds_a_user_on_every_session_and_a_guest_by_its_own() {
        let rules = Rules::default();
        let room = RoomName::general();
        let (tab1, tab2, guest) = (ConnId::new("t1"), ConnId::new("t2"), ConnId::new("g"));
        let bob = UserId::new("bob");
        let as_bob = |id| Person {
            id,
            user: Some(&bob),
        };
        let as_guest = Person {
            id: &guest,
            user: None,
        };
        assert_eq!(rules.banned(&room, as_bob(&tab1), 0), None);
        rules.apply(&rule(ChangeKind::Ban, "bob", None, None));
        rules.apply(&rule(ChangeKind::Ban, "g", Some(1_000), None));
        assert!(rules.banned(&room, as_bob(&tab1), 5).is_some());
        assert!(rules.banned(&room, as_bob(&tab2), 5).is_some());
        assert!(rules.banned(&room, as_guest, 999).is_some());
        assert_eq!(rules.banned(&room, as_guest, 1_000), None, "its end passed");
        assert_eq!(
            rules.banned(&RoomName::parse("other").expect("room"), as_bob(&tab1), 5),
            None
        );
        rules.apply(&RuleOp::Lift(room.clone(), ChangeKind::Ban, "bob".into()));
        assert_eq!(rules.banned(&room, as_bob(&tab1), 5), None);
        assert_eq!(rules.bans(&room, 5).len(), 1);
    }

    #[test]
    fn slow_mode_spaces_one_persons_lines() {
        let rules = Rules::default();
        let room = RoomName::general();
        let (a, b) = (ConnId::new("a"), ConnId::new("b"));
        let pa = Person { id: &a, user: None };
        let pb = Person { id: &b, user: None };
        let t0 = Instant::now();
        assert_eq!(rules.take_turn(&room, pa, t0), Ok(()));
        assert_eq!(rules.take_turn(&room, pa, t0), Ok(()), "off: any pace");
        rules.apply(&rule(ChangeKind::SlowMode, "", None, Some(10)));
        assert_eq!(rules.take_turn(&room, pa, t0), Ok(()));
        assert_eq!(
            rules.take_turn(&room, pb, t0),
            Ok(()),
            "each person has a turn"
        );
        let wait = rules
            .take_turn(&room, pa, t0 + Duration::from_secs(4))
            .expect_err("too soon");
        assert_eq!((wait.secs, wait.left), (10, Duration::from_secs(6)));
        assert_eq!(
            rules.take_turn(&room, pa, t0 + Duration::from_secs(10)),
            Ok(())
        );
        rules.apply(&RuleOp::Lift(
            room.clone(),
            ChangeKind::SlowMode,
            String::new(),
        ));
        assert_eq!(
            rules.take_turn(&room, pa, t0 + Duration::from_secs(10)),
            Ok(())
        );
        assert_eq!(rules.slow_mode(&room), 0);
    }
}
