//! One room: its members, its kept history, who is typing, and its presence clock.
//!
//! A room is the unit of order: its lines arrive numbered and durable from the committer and
//! [`Room::publish`] fans each out under the room's own lock, so every member's wire carries
//! the room's lines in `seq` order, and two rooms never wait on one lock. Lines are kept as
//! their encoded `message` frames: a `joined`, a v1 `welcome` or an `older` page splices the
//! kept bytes into one frame instead of encoding every line again.
//!
//! Presence is latest-value-wins and coalesced: a change marks the room dirty, and at most
//! one `presence` frame per [`presence_gap`] goes out (into each member's outbox slot for
//! this room, replacing one not yet written). A join storm of N members costs O(N) frames per
//! flush, a few flushes a second (fewer in a big room), never O(N²).

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use shared::{
    ChatLine, ConnId, DisplayName, ErrorCode, Member, RoomName, Seq, ServerMsg, Typist, UserId,
    encode,
};

use crate::{
    metrics::Metrics,
    outbox::{ConnKey, Frame, Outbox, RoomKey, Slot},
};

mod typing;

use typing::{Change, TypingPacer};

/// The shortest time between two `presence` frames of one room.
pub(crate) const PRESENCE_EVERY: Duration = Duration::from_millis(250);

/// How many `presence` frames one room may hand out per second, all members together. A
/// room bigger than this sends presence less often than every [`PRESENCE_EVERY`]: a count
/// that changes while thousands join is told to each member every second or two, not four
/// times a second, which would cost more writes than the joins themselves.
pub(crate) const PRESENCE_DELIVERIES_PER_SEC: u32 = 5_000;

/// The time between two `presence` frames of a room of `members` local members.
pub(crate) fn presence_gap(members: usize) -> Duration {
    let spread = Duration::from_secs(1) * u32::try_from(members).unwrap_or(u32::MAX)
        / PRESENCE_DELIVERIES_PER_SEC;
    spread.max(PRESENCE_EVERY)
}

/// What ties a room to the other servers of a cluster (`--redis`); absent on a server that
/// is alone. The room calls it and never waits on it: the other side does the I/O and calls
/// back ([`Room::synced`], [`Room::publish`], [`Room::set_remote`], [`Room::remote_typing`]).
/// The room does not know what is on the other side.
pub(crate) trait RoomLink: Send + Sync {
    /// The room has a joiner but may be behind: catch up, then call [`Room::synced`].
    fn sync(&self, room: &Arc<Room>);
    /// The room's last member left: stop following it.
    fn release(&self, room: &Arc<Room>);
    /// Lines after `after` are missing (a later one arrived first): fetch them and
    /// [`Room::publish`] them.
    fn fill(&self, room: &Arc<Room>, after: Seq);
    /// This server's members of the room changed (coalesced, like presence).
    fn presence(&self, room: &Arc<Room>, online: u32, members: Option<Vec<Member>>);
    /// A member of this server typed.
    fn typing(&self, room: &Arc<Room>, typist: &Typist);
}

/// How rooms are sized (from the configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomConfig {
    /// Lines kept per room (and replayable).
    pub history_cap: usize,
    /// Lines in a fresh `joined` (and the most a resume replays).
    pub welcome_lines: usize,
    /// Rooms up to this many members get member lists pushed.
    pub presence_list_max: usize,
}

/// The most members one `members` reply lists (and fewer if their bytes pass the reply's
/// budget).
pub(crate) const MEMBERS_PAGE: usize = 1_000;

/// One member of a room: a connection, who it is, and where its frames go.
#[derive(Debug, Clone)]
pub(crate) struct RoomMember {
    /// The connection's public id.
    pub id: ConnId,
    /// Its display name.
    pub name: DisplayName,
    /// The signed-in user (none: a guest).
    pub user: Option<UserId>,
    /// Its outbound queue.
    pub outbox: Arc<Outbox>,
}

/// Who presence counts once: a signed-in user (however many tabs and devices), or a
/// guest's session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Someone {
    User(UserId),
    Session(ConnId),
}

impl RoomMember {
    /// This member as a typist of `text`.
    fn typist(&self, text: String) -> Typist {
        Typist {
            from: self.id.clone(),
            name: self.name.clone(),
            user: self.user.clone(),
            text,
        }
    }

    fn someone(&self) -> Someone {
        match &self.user {
            Some(user) => Someone::User(user.clone()),
            None => Someone::Session(self.id.clone()),
        }
    }

    /// The outbox slot its live text goes into: one per user (the newest tab's text wins),
    /// one per connection for a guest.
    fn typing_slot(&self, key: ConnKey) -> ConnKey {
        self.user.as_ref().map_or(key, user_key)
    }
}

/// A line kept in memory, as its encoded `message` frame.
#[derive(Debug, Clone)]
struct KeptLine {
    seq: Seq,
    message: Frame,
}

/// How a joining connection is greeted.
pub(crate) enum Greeting {
    /// A `joined` (v2, and every `join`); whether the room is private.
    Joined {
        /// The room is private (`--private-rooms`).
        private: bool,
    },
    /// A v1 `welcome`, with the room's lines as its `history` (v1 clients are in `general`).
    Welcome(Box<ServerMsg>),
}

/// A room. Shared as `Arc<Room>` by the hub's registry, its members' connections and the
/// committer's jobs.
pub(crate) struct Room {
    /// Its name.
    pub name: RoomName,
    /// Its number, for outbox slots.
    pub key: RoomKey,
    state: Mutex<RoomState>,
    /// Set once a line was submitted for it: a room with lines (even in flight) is never
    /// removed from the registry, so its history and its `seq` stay one.
    has_lines: AtomicBool,
    config: RoomConfig,
    metrics: Arc<Metrics>,
    link: Option<Arc<dyn RoomLink>>,
}

impl Drop for Room {
    fn drop(&mut self) {
        // Its kept lines leave memory with it.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.metrics.history_lines.dec_by(gauge(state.lines.len()));
    }
}

/// Whether a room's kept lines are known to be current (always, without a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncState {
    /// Current: joiners are greeted at once.
    Synced,
    /// Catching up: joiners wait in `waiting`.
    Requested,
    /// Not followed (no member here): the next joiner asks to catch up.
    Idle,
}

/// Another server's members of a room, as it last said.
#[derive(Debug, Clone)]
struct Remote {
    online: u32,
    members: Option<Vec<Member>>,
    typing: HashMap<ConnId, Typist>,
    expires: Instant,
}

/// A joiner waiting for its room to catch up.
struct Waiting {
    key: ConnKey,
    member: RoomMember,
    after: After,
    greeting: Greeting,
    /// Acks and refusals for it meanwhile, sent after its greeting.
    then: Vec<Frame>,
}

struct RoomState {
    members: HashMap<ConnKey, RoomMember>,
    /// How many of this server's connections each user (or guest session) has here:
    /// presence counts each once.
    someones: HashMap<Someone, usize>,
    /// The non-empty live text of each typist, by typing slot (a user's, or a guest
    /// connection's), with the connection that typed it.
    typing: HashMap<ConnKey, (ConnKey, String)>,
    /// The kept history, oldest first, contiguous in `seq`.
    lines: VecDeque<KeptLine>,
    /// The last `seq` published (lines below the cap are gone, their count is not).
    last_seq: Seq,
    presence: PresenceClock,
    sync: SyncState,
    waiting: Vec<Waiting>,
    /// Lines that arrived before the ones just before them (another server's lines are on
    /// their way): delivered, in order, once the gap is filled.
    early: BTreeMap<Seq, ChatLine>,
    /// Whether a fill was asked for and has not come yet.
    filling: bool,
    /// The other servers' members, by server.
    remote: HashMap<String, Remote>,
    /// This server's members changed since the link was last told.
    local_changed: bool,
    /// The pace of live text (see [`typing`]); a change carries its typist when the other
    /// servers are to be told once it goes out.
    typing_pace: TypingPacer<Option<Typist>>,
    /// A release of waiting live text is scheduled.
    typing_scheduled: bool,
    /// Whether the room is private (as its last greeting said).
    private: bool,
}

/// When the room last sent presence, and whether a change waits for the next turn.
#[derive(Debug, Default)]
struct PresenceClock {
    last_sent: Option<Instant>,
    /// A flush is scheduled; changes meanwhile ride along with it.
    scheduled: bool,
}

/// Where a resuming member stands: the last `seq` it holds (0: none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct After(pub Seq);

impl Room {
    /// A room over its loaded lines (oldest first, contiguous), with no members.
    pub(crate) fn new(
        name: RoomName,
        key: RoomKey,
        lines: Vec<ChatLine>,
        config: RoomConfig,
        metrics: Arc<Metrics>,
        link: Option<Arc<dyn RoomLink>>,
    ) -> Self {
        let last_seq = lines.last().map_or(Seq(0), |l| l.seq);
        let skip = lines.len().saturating_sub(config.history_cap.max(1));
        let has_lines = !lines.is_empty();
        let kept: VecDeque<KeptLine> = lines.into_iter().skip(skip).map(keep).collect();
        metrics.history_lines.inc_by(gauge(kept.len()));
        Room {
            name,
            key,
            state: Mutex::new(RoomState {
                members: HashMap::new(),
                someones: HashMap::new(),
                typing: HashMap::new(),
                lines: kept,
                last_seq,
                presence: PresenceClock::default(),
                sync: if link.is_some() {
                    SyncState::Idle
                } else {
                    SyncState::Synced
                },
                waiting: Vec::new(),
                early: BTreeMap::new(),
                filling: false,
                remote: HashMap::new(),
                local_changed: false,
                typing_pace: TypingPacer::new(Instant::now()),
                typing_scheduled: false,
                private: false,
            }),
            has_lines: AtomicBool::new(has_lines),
            config,
            metrics,
            link,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // Every change under the lock is a few map operations that leave the state
        // consistent, so a panic elsewhere must not take the room down with a poisoned lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that a line was submitted: the room must outlive its members.
    pub(crate) fn mark_has_lines(&self) {
        self.has_lines.store(true, Ordering::Relaxed);
    }

    /// Whether the registry may forget this room: nobody in it and nothing ever said.
    pub(crate) fn is_disposable(&self) -> bool {
        if self.has_lines.load(Ordering::Relaxed) {
            return false;
        }
        let state = self.lock();
        state.members.is_empty() && state.waiting.is_empty() && state.sync != SyncState::Requested
    }

    /// Whether the room may leave memory: nobody in it or waiting for it, not catching
    /// up, and its lines (if any) kept elsewhere too, to be read back when someone comes
    /// (the shared store of its link, or this server's file: `kept_on_disk`). The registry
    /// also checks that nothing else holds the room (no line of it in flight).
    pub(crate) fn is_quiet(&self, kept_on_disk: bool) -> bool {
        if self.has_lines() && self.link.is_none() && !kept_on_disk {
            return false;
        }
        let state = self.lock();
        state.members.is_empty() && state.waiting.is_empty() && state.sync != SyncState::Requested
    }

    /// Whether a line was ever submitted for it.
    pub(crate) fn has_lines(&self) -> bool {
        self.has_lines.load(Ordering::Relaxed)
    }

    /// Lines kept in memory.
    pub(crate) fn kept_lines(&self) -> usize {
        self.lock().lines.len()
    }

    /// How many connections are in the room, on every server.
    pub(crate) fn online(&self) -> usize {
        self.lock().online(self.config.presence_list_max)
    }

    /// The last `seq` this server has delivered.
    pub(crate) fn last_seq(&self) -> Seq {
        self.lock().last_seq
    }

    /// Adds a member and queues its greeting: a resume (`after` > 0, every later line still
    /// kept, and at most `welcome_lines` of them) gets exactly the lines after `after`;
    /// anyone else the latest page. Snapshot and registration happen under one lock, and the
    /// greeting is queued before the lock is released: no line can fall between the lines
    /// in the greeting and the live stream that follows it.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: ConnKey,
        member: RoomMember,
        after: After,
        greeting: Greeting,
    ) {
        let mut state = self.lock();
        if state.sync != SyncState::Synced {
            state.waiting.push(Waiting {
                key,
                member,
                after,
                greeting,
                then: Vec::new(),
            });
            if state.sync == SyncState::Idle {
                state.sync = SyncState::Requested;
                if let Some(link) = &self.link {
                    link.sync(self);
                }
            }
            return;
        }
        self.greet(&mut state, key, member, after, greeting);
        // The greeting told the joiner who is here; only the others need telling.
        self.presence_changed(&mut state, Some(key));
    }

    /// The link caught the room up: greets whoever waited. Returns false if nobody is left
    /// to greet (the room stays unfollowed: release it).
    pub(crate) fn synced(self: &Arc<Self>) -> bool {
        let mut state = self.lock();
        if state.waiting.is_empty() && state.members.is_empty() {
            state.sync = SyncState::Idle;
            return false;
        }
        state.sync = SyncState::Synced;
        let waiting = std::mem::take(&mut state.waiting);
        // A lone joiner's greeting told it who is here; several greeted in turn were not
        // told of each other.
        let only = match waiting.as_slice() {
            [one] if state.members.is_empty() => Some(one.key),
            _ => None,
        };
        for w in waiting {
            let outbox = w.member.outbox.clone();
            self.greet(&mut state, w.key, w.member, w.after, w.greeting);
            for frame in w.then {
                outbox.push(frame);
            }
        }
        self.presence_changed(&mut state, only);
        true
    }

    fn greet(
        self: &Arc<Self>,
        state: &mut RoomState,
        key: ConnKey,
        member: RoomMember,
        after: After,
        greeting: Greeting,
    ) {
        let outbox = member.outbox.clone();
        *state.someones.entry(member.someone()).or_default() += 1;
        state.members.insert(key, member);
        state.local_changed = true;
        if let Greeting::Joined { private } = greeting {
            state.private = private;
        }
        let frame = self.greeting_frame(state, &outbox, after, greeting);
        outbox.push(frame);
    }

    /// The greeting for `outbox`'s member: see [`Room::join`].
    fn greeting_frame(
        &self,
        state: &RoomState,
        outbox: &Outbox,
        after: After,
        greeting: Greeting,
    ) -> Frame {
        // The whole greeting fits the reply budget, whatever the crowd: the member list and
        // the live texts take at most a quarter of it each (a list that does not fit is left
        // out, as for a big room: `members` pages it; typists past their quarter are marked
        // with `typing_more`), the lines what is left.
        let budget = outbox.reply_budget();
        let (members, members_bytes) = match greeting {
            Greeting::Joined { .. } => {
                state.member_list_within(self.config.presence_list_max, budget / 4)
            }
            Greeting::Welcome(_) => (None, 0),
        };
        let (typing, typing_more, typing_bytes) = match greeting {
            Greeting::Joined { .. } => state.typists_within(budget / 4),
            Greeting::Welcome(_) => (Vec::new(), false, 0),
        };
        let lines_budget = budget.saturating_sub(members_bytes + typing_bytes);
        let (range, has_more, resumed) =
            state.page_for(after.0, self.config.welcome_lines, lines_budget);
        let lines: Vec<&KeptLine> = state.lines.range(range).collect();
        match greeting {
            Greeting::Joined { private } => {
                let online = count(state.online(self.config.presence_list_max));
                let shell = ServerMsg::Joined {
                    room: self.name.clone(),
                    lines: Vec::new(),
                    has_more,
                    resumed,
                    online,
                    members,
                    typing,
                    typing_more,
                    private,
                };
                splice_lines(&shell, "lines", &lines)
            }
            Greeting::Welcome(mut welcome) => {
                if let ServerMsg::Welcome {
                    has_more: more,
                    online,
                    ..
                } = welcome.as_mut()
                {
                    *more = has_more;
                    *online = count(state.online(self.config.presence_list_max));
                }
                splice_lines(&welcome, "history", &lines)
            }
        }
    }

    /// Removes a member; clears its live text for the others. Returns whether it was in.
    pub(crate) fn leave(self: &Arc<Self>, key: ConnKey) -> bool {
        let mut state = self.lock();
        let Some(member) = state.members.remove(&key) else {
            let before = state.waiting.len();
            state.waiting.retain(|w| w.key != key);
            return state.waiting.len() != before;
        };
        state.local_changed = true;
        let someone = member.someone();
        if let Some(n) = state.someones.get_mut(&someone) {
            *n -= 1;
            if *n == 0 {
                state.someones.remove(&someone);
            }
        }
        let slot = member.typing_slot(key);
        if state
            .typing
            .get(&slot)
            .is_some_and(|(typed_by, _)| *typed_by == key)
        {
            state.typing.remove(&slot);
            let cleared = member.typist(String::new());
            if let Some(link) = &self.link {
                link.typing(self, &cleared);
            }
            self.offer_typing(&mut state, slot, cleared, false);
        }
        if state.members.is_empty()
            && state.waiting.is_empty()
            && state.sync == SyncState::Synced
            && let Some(link) = &self.link
        {
            // Nobody here: stop following the room (the next joiner catches it up, the
            // other servers' members included).
            state.sync = SyncState::Idle;
            state.remote.clear();
            link.presence(self, 0, Some(Vec::new()));
            link.release(self);
            return true;
        }
        self.presence_changed(&mut state, None);
        true
    }

    /// A member's new display name: shown in the member lists from the next presence on.
    pub(crate) fn rename(self: &Arc<Self>, key: ConnKey, name: &DisplayName) {
        let mut state = self.lock();
        if let Some(member) = state.members.get_mut(&key) {
            member.name = name.clone();
            state.local_changed = true;
            self.presence_changed(&mut state, None);
        }
    }

    /// Relays a member's live text to every member, typist included. Latest value wins per
    /// (typist, room) in every outbox.
    pub(crate) fn typing(self: &Arc<Self>, key: ConnKey, text: String) {
        let mut state = self.lock();
        let Some(member) = state.members.get(&key) else {
            return;
        };
        let typist = member.typist(text.clone());
        let slot = member.typing_slot(key);
        if text.is_empty() {
            state.typing.remove(&slot);
        } else {
            state.typing.insert(slot, (key, text));
        }
        self.offer_typing(&mut state, slot, typist, true);
    }

    /// Relays `typist`'s text ("" clears it) to every member within the room's typing
    /// budget: now, or once the budget allows (a newer text of the same slot replacing it
    /// meanwhile). `tell_link`: the other servers are told when it goes out.
    fn offer_typing(
        self: &Arc<Self>,
        state: &mut RoomState,
        slot: ConnKey,
        typist: Typist,
        tell_link: bool,
    ) {
        let frame = Frame::encode(&ServerMsg::Typing {
            room: self.name.clone(),
            from: typist.from.clone(),
            name: Some(typist.name.clone()),
            user: typist.user.clone(),
            text: typist.text.clone(),
        });
        let change = Change {
            slot,
            frame,
            with: tell_link.then_some(typist),
        };
        let now = Instant::now();
        if let Some(change) = state.typing_pace.offer(change, now) {
            self.relay_typing(state, change);
        } else if !state.typing_scheduled {
            self.release_typing(state, now);
        }
    }

    /// Relays the waiting live text the budget allows now; schedules the rest.
    fn release_typing(self: &Arc<Self>, state: &mut RoomState, now: Instant) {
        let (ready, next) = state.typing_pace.release(now);
        for change in ready {
            self.relay_typing(state, change);
        }
        let Some(at) = next else {
            return;
        };
        state.typing_scheduled = true;
        // Weak: a timer does not keep a room in memory (see `Room::is_quiet`).
        let room = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let Some(room) = room.upgrade() else { return };
            let mut state = room.lock();
            state.typing_scheduled = false;
            room.release_typing(&mut state, Instant::now());
        });
    }

    /// Pushes a typing change to every member, into the typist's slot in this room (latest
    /// value wins), and to the other servers if it says so.
    fn relay_typing(self: &Arc<Self>, state: &RoomState, change: Change<Option<Typist>>) {
        if let (Some(link), Some(typist)) = (&self.link, &change.with) {
            link.typing(self, typist);
        }
        let slot = Slot::Typing {
            room: self.key,
            typist: change.slot,
        };
        for m in state.members.values() {
            m.outbox.push_latest(slot, change.frame.clone());
        }
    }

    /// Fans out durable lines of this room, in `seq` order: each sender gets the `ack` for
    /// its line (if it had a nonce) just before the line; every member gets the line.
    /// `repeats` are acks for resent nonces that were already accepted.
    ///
    /// Lines may come from several places when servers share a room (this server's
    /// committer, the others' through the link): a line already delivered is skipped, and a
    /// line that comes before the ones just before it waits until the link filled the gap.
    /// Alone, a server's lines always come in order and none of that happens.
    pub(crate) fn publish(self: &Arc<Self>, lines: Vec<ChatLine>, repeats: Vec<RepeatedAck>) {
        let mut state = self.lock();
        for repeat in repeats {
            let ack = Frame::encode(&ServerMsg::Ack {
                room: self.name.clone(),
                nonce: repeat.nonce,
                seq: repeat.seq,
            });
            state.push_to(&repeat.from, &ack);
        }
        // In order (always, alone): straight out. Ahead of a gap: held in `early`.
        let mut ready = Vec::new();
        let mut next = Seq(state.last_seq.0 + 1);
        for line in lines {
            if line.seq == next && state.early.is_empty() {
                next = Seq(next.0 + 1);
                ready.push(line);
            } else if line.seq >= next {
                state.early.insert(line.seq, line);
            }
        }
        while let Some(line) = state.early.remove(&next) {
            ready.push(line);
            next = Seq(next.0 + 1);
        }
        if !ready.is_empty() {
            state.filling = false;
        }
        if !state.early.is_empty()
            && !state.filling
            && let Some(link) = &self.link
        {
            state.filling = true;
            link.fill(self, Seq(next.0 - 1));
        }
        // The gauge moves before the lines go out, so whoever has read a line also sees it
        // counted (in /metrics).
        let cap = self.config.history_cap.max(1);
        let kept_after = (state.lines.len() + ready.len()).min(cap);
        self.metrics
            .history_lines
            .inc_by(gauge(kept_after) - gauge(state.lines.len()));
        for line in ready {
            if let Some(nonce) = &line.nonce {
                let ack = Frame::encode(&ServerMsg::Ack {
                    room: self.name.clone(),
                    nonce: nonce.clone(),
                    seq: line.seq,
                });
                state.push_to(&line.from, &ack);
            }
            state.last_seq = line.seq;
            let kept = keep(line);
            for m in state.members.values() {
                m.outbox.push(kept.message.clone());
            }
            state.lines.push_back(kept);
            if state.lines.len() > cap {
                state.lines.pop_front();
            }
        }
    }

    /// The link could not fill from `last_seq` (the shared history no longer holds those
    /// lines): the kept lines start over at `lines` (oldest first, contiguous). Only for a
    /// room nobody here follows, or one that missed more than the history cap.
    pub(crate) fn restart_at(self: &Arc<Self>, lines: Vec<ChatLine>) {
        let mut state = self.lock();
        let Some(first) = lines.first() else { return };
        self.metrics.history_lines.dec_by(gauge(state.lines.len()));
        state.lines.clear();
        state.early.retain(|seq, _| *seq >= first.seq);
        state.last_seq = Seq(first.seq.0 - 1);
        // The members here missed lines that are gone from the stream: each is told so, with
        // a `joined` that replaces what it shows of the room (nothing kept before `first`),
        // and the lines from `first` on follow as live lines.
        let private = state.private;
        for m in state.members.values() {
            let frame = self.greeting_frame(
                &state,
                &m.outbox,
                After::default(),
                Greeting::Joined { private },
            );
            m.outbox.push(frame);
        }
        drop(state);
        self.publish(lines, Vec::new());
    }

    /// Forgets the kept lines (their history expired); the numbering goes on.
    pub(crate) fn clear_history(&self) {
        let mut state = self.lock();
        self.metrics.history_lines.dec_by(gauge(state.lines.len()));
        state.lines.clear();
    }

    /// Lines read back from where they are kept, for a room nobody is in yet (it left
    /// memory and is joined again): kept, not delivered or acked again (they were, when
    /// they were new). Lines not after the last kept one are skipped; a gap before one
    /// (older lines gone) starts the kept history over at it.
    pub(crate) fn restore(&self, lines: Vec<ChatLine>) {
        let mut state = self.lock();
        let cap = self.config.history_cap.max(1);
        let before = state.lines.len();
        for line in lines {
            if line.seq <= state.last_seq {
                continue;
            }
            if line.seq.0 != state.last_seq.0 + 1 {
                state.lines.clear();
            }
            state.last_seq = line.seq;
            state.lines.push_back(keep(line));
            if state.lines.len() > cap {
                state.lines.pop_front();
            }
        }
        let last = state.last_seq;
        state.early.retain(|seq, _| *seq > last);
        self.metrics
            .history_lines
            .inc_by(gauge(state.lines.len()) - gauge(before));
    }

    /// A fill came back without the missing lines. Lines held back for it can then never
    /// be completed: the room starts over at the first of them (see [`Room::restart_at`])
    /// rather than hold them until some later line asks again.
    pub(crate) fn fill_failed(self: &Arc<Self>) {
        let mut state = self.lock();
        state.filling = false;
        if state.early.is_empty() {
            return;
        }
        let held: Vec<ChatLine> = std::mem::take(&mut state.early).into_values().collect();
        drop(state);
        self.restart_at(held);
    }

    /// What another server says of its members of this room (until `expires`).
    pub(crate) fn set_remote(
        self: &Arc<Self>,
        server: &str,
        online: u32,
        members: Option<Vec<Member>>,
        expires: Instant,
    ) {
        let mut state = self.lock();
        let typing = if online == 0 {
            state
                .remote
                .remove(server)
                .map(|r| r.typing)
                .unwrap_or_default()
        } else {
            let remote = state.remote.entry(server.to_owned()).or_insert(Remote {
                online: 0,
                members: None,
                typing: HashMap::new(),
                expires,
            });
            let same = remote.online == online && remote.members == members;
            remote.online = online;
            remote.members = members;
            remote.expires = expires;
            if same {
                return; // A heartbeat: nothing changed.
            }
            HashMap::new()
        };
        self.clear_typists(&mut state, typing.into_values());
        self.presence_changed(&mut state, None);
    }

    /// Forgets the servers that stopped saying who is here (gone without a word).
    pub(crate) fn expire_remote(self: &Arc<Self>, now: Instant) {
        let mut state = self.lock();
        let gone: Vec<String> = state
            .remote
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(server, _)| server.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for server in gone {
            if let Some(remote) = state.remote.remove(&server) {
                self.clear_typists(&mut state, remote.typing.into_values());
            }
        }
        self.presence_changed(&mut state, None);
    }

    /// A member of another server typed: relayed like a local typist's text.
    pub(crate) fn remote_typing(self: &Arc<Self>, server: &str, typist: Typist) {
        let mut state = self.lock();
        let Some(remote) = state.remote.get_mut(server) else {
            return; // Its presence comes first; typing from a server not seen is dropped.
        };
        if typist.text.is_empty() {
            remote.typing.remove(&typist.from);
        } else {
            remote.typing.insert(typist.from.clone(), typist.clone());
        }
        self.offer_typing(&mut state, remote_slot(&typist), typist, false);
    }

    /// Clears the live text of other servers' typists (their server left the room).
    fn clear_typists(
        self: &Arc<Self>,
        state: &mut RoomState,
        typists: impl Iterator<Item = Typist>,
    ) {
        for t in typists {
            let cleared = Typist {
                text: String::new(),
                ..t
            };
            self.offer_typing(state, remote_slot(&cleared), cleared, false);
        }
    }

    /// This server's members of the room, for the link's heartbeat: (online, members).
    pub(crate) fn local_presence(&self) -> (u32, Option<Vec<Member>>) {
        let state = self.lock();
        (
            count(state.someones.len()),
            state.local_member_list(self.config.presence_list_max),
        )
    }

    /// Tells the sender of a line that it was not stored.
    pub(crate) fn refuse(&self, from: &ConnId, nonce: Option<String>, code: ErrorCode, why: &str) {
        let error = Frame::encode(&ServerMsg::Error {
            code,
            message: why.to_owned(),
            room: Some(self.name.clone()),
            nonce,
        });
        self.lock().push_to(from, &error);
    }

    /// The `older` reply: up to `limit` kept lines before `before` and at most `max_bytes`
    /// of them (the newest of those), oldest first.
    pub(crate) fn older(&self, before: Seq, limit: usize, max_bytes: usize) -> Frame {
        let state = self.lock();
        let end = state.lines.partition_point(|l| l.seq < before);
        let mut start = end;
        let mut bytes = 0;
        while start > 0 && end - start < limit {
            let size = state.lines[start - 1].message.len();
            if bytes + size > max_bytes && start < end {
                break; // One line always goes, so that paging back always moves.
            }
            bytes += size;
            start -= 1;
        }
        let lines: Vec<&KeptLine> = state.lines.range(start..end).collect();
        let shell = ServerMsg::Older {
            room: self.name.clone(),
            lines: Vec::new(),
            has_more: start > 0,
        };
        splice_lines(&shell, "lines", &lines)
    }

    /// Everyone in the room (each user once), for the server API.
    pub(crate) fn member_list(&self) -> Vec<Member> {
        self.lock().member_list(usize::MAX).unwrap_or_default()
    }

    /// Up to `limit` kept lines after `after`, oldest first, as a JSON array (each line as
    /// in its `message` frame, less the `type`).
    pub(crate) fn lines_json(&self, after: Seq, limit: usize) -> String {
        let state = self.lock();
        let start = state.lines.partition_point(|l| l.seq <= after);
        let mut json = String::from("[");
        for (i, line) in state.lines.range(start..).take(limit).enumerate() {
            let Some(text) = line.message.text() else {
                continue;
            };
            if let Some(fields) = text.as_str().strip_prefix(MESSAGE_PREFIX) {
                if i > 0 {
                    json.push(',');
                }
                json.push('{');
                json.push_str(fields);
            }
        }
        json.push(']');
        json
    }

    /// The `members` reply: the members from `offset` on (by name, then id), at most
    /// [`MEMBERS_PAGE`] and `max_bytes` of them.
    pub(crate) fn members(&self, offset: u32, max_bytes: usize) -> Frame {
        let all = self.lock().member_list(usize::MAX).unwrap_or_default();
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
        let mut page = Vec::new();
        let mut bytes = 0;
        for member in all.iter().skip(from).take(MEMBERS_PAGE) {
            let size = json_len(member);
            if bytes + size > max_bytes && !page.is_empty() {
                break;
            }
            bytes += size;
            page.push(member.clone());
        }
        let has_more = from + page.len() < all.len();
        Frame::encode(&ServerMsg::Members {
            room: self.name.clone(),
            members: page,
            offset: (offset > 0).then_some(offset),
            has_more,
        })
    }

    /// Sends presence now if the room's turn has come, or schedules it for when it does.
    /// (`except`: a member the change need not be told to, if it goes out now.)
    fn presence_changed(self: &Arc<Self>, state: &mut RoomState, except: Option<ConnKey>) {
        if state.presence.scheduled {
            return; // The scheduled flush will carry this change too.
        }
        let now = Instant::now();
        let gap = presence_gap(state.members.len());
        match state.presence.last_sent {
            Some(last) if now.duration_since(last) < gap => {
                state.presence.scheduled = true;
                let room = Arc::downgrade(self);
                let at = last + gap;
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let Some(room) = room.upgrade() else { return };
                    let mut state = room.lock();
                    state.presence.scheduled = false;
                    room.flush_presence(&mut state, Instant::now(), None);
                });
            }
            _ => self.flush_presence(state, now, except),
        }
    }

    fn flush_presence(
        self: &Arc<Self>,
        state: &mut RoomState,
        now: Instant,
        except: Option<ConnKey>,
    ) {
        state.presence.last_sent = Some(now);
        if state.local_changed {
            state.local_changed = false;
            if let Some(link) = &self.link {
                let members = state.local_member_list(self.config.presence_list_max);
                link.presence(self, count(state.someones.len()), members);
            }
        }
        let frame = Frame::encode(&ServerMsg::Presence {
            room: self.name.clone(),
            online: count(state.online(self.config.presence_list_max)),
            members: state.member_list(self.config.presence_list_max),
        });
        let slot = Slot::Presence { room: self.key };
        for (key, m) in &state.members {
            if Some(*key) != except {
                m.outbox.push_latest(slot, frame.clone());
            }
        }
        self.metrics.presence_flushes.inc();
    }
}

/// An ack for a `send` whose nonce was already accepted: the line is not appended again.
#[derive(Debug, Clone)]
pub(crate) struct RepeatedAck {
    /// The sender.
    pub from: ConnId,
    /// The resent nonce.
    pub nonce: String,
    /// Where the line already is.
    pub seq: Seq,
}

impl RoomState {
    /// The lines to greet a member with (at most `max_lines` and `max_bytes` of them),
    /// whether older ones exist, and whether it resumed: exactly the lines after `after`
    /// when they all fit, else the latest page.
    fn page_for(
        &self,
        after: Seq,
        max_lines: usize,
        max_bytes: usize,
    ) -> (std::ops::Range<usize>, bool, bool) {
        let end = self.lines.len();
        // The latest lines that fit both bounds, counted from the newest.
        let mut start = end;
        let mut bytes = 0;
        while start > 0 && end - start < max_lines {
            let size = self.lines[start - 1].message.len();
            if bytes + size > max_bytes {
                break;
            }
            bytes += size;
            start -= 1;
        }
        let first_kept = self.lines.front().map_or(self.last_seq.0 + 1, |l| l.seq.0);
        let missed_from = self.lines.partition_point(|l| l.seq <= after);
        let resumable = after.0 > 0
            && after <= self.last_seq
            && after.0 + 1 >= first_kept
            && missed_from >= start;
        if resumable {
            return (missed_from..end, false, true);
        }
        (start..end, start > 0, false)
    }

    /// Who is in the room, here and on the other servers: each signed-in user once, each
    /// guest session once. (A user on two servers of a room too big for member lists is
    /// counted by each.)
    fn online(&self, list_max: usize) -> usize {
        if self.remote.is_empty() {
            return self.someones.len();
        }
        if let Some(list) = self.member_list(list_max) {
            return list.len();
        }
        self.someones.len()
            + self
                .remote
                .values()
                .map(|r| usize::try_from(r.online).unwrap_or(usize::MAX))
                .sum::<usize>()
    }

    /// Everyone typing, here and on the other servers, as long as their encoded texts fit
    /// `max_bytes`; whether some were left out; and the bytes taken.
    fn typists_within(&self, max_bytes: usize) -> (Vec<Typist>, bool, usize) {
        let local = self
            .typing
            .values()
            .filter_map(|(k, text)| self.members.get(k).map(|m| m.typist(text.clone())));
        let remote = self
            .remote
            .values()
            .flat_map(|r| r.typing.values().cloned());
        let mut typists = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for typist in local.chain(remote) {
            let size = json_len(&typist) + 1;
            if bytes + size > max_bytes {
                more = true;
                continue; // A shorter text further on may still fit.
            }
            bytes += size;
            typists.push(typist);
        }
        (typists, more, bytes)
    }

    /// The member list for a greeting (see [`RoomState::member_list`]), left out if its
    /// encoding passes `max_bytes`; and the bytes it takes.
    fn member_list_within(
        &self,
        list_max: usize,
        max_bytes: usize,
    ) -> (Option<Vec<Member>>, usize) {
        let Some(list) = self.member_list(list_max) else {
            return (None, 0);
        };
        let bytes = json_len(&list);
        if bytes > max_bytes {
            return (None, 0);
        }
        (Some(list), bytes)
    }

    /// Who is in the room on this server (each id once), if at most `max` ids.
    fn local_member_list(&self, max: usize) -> Option<Vec<Member>> {
        if self.members.len() > max.saturating_mul(2) {
            return None; // Clearly too big: don't even count distinct ids.
        }
        let mut seen = HashSet::new();
        let list: Vec<Member> = self
            .members
            .values()
            .filter(|m| seen.insert(m.someone()))
            .map(|m| Member {
                id: m.id.clone(),
                name: m.name.clone(),
                user: m.user.clone(),
            })
            .collect();
        (list.len() <= max).then_some(list)
    }

    /// Who is in the room on every server (each id once), if the room is at most `max` ids
    /// big (and every server could say).
    fn member_list(&self, max: usize) -> Option<Vec<Member>> {
        let mut list = self.local_member_list(max)?;
        for remote in self.remote.values() {
            list.extend(remote.members.as_ref()?.iter().cloned());
        }
        // Each user once (on whichever servers their tabs are), each guest session once.
        let someone = |m: &Member| match &m.user {
            Some(user) => Someone::User(user.clone()),
            None => Someone::Session(m.id.clone()),
        };
        let mut seen = HashSet::new();
        list.retain(|m| seen.insert(someone(m)));
        list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        if list.len() > max {
            return None;
        }
        Some(list)
    }

    /// Pushes a frame (an ack, a refusal) to every connection of `id` in the room; one still
    /// waiting for its greeting gets it right after the greeting.
    fn push_to(&mut self, id: &ConnId, frame: &Frame) {
        for m in self.members.values().filter(|m| &m.id == id) {
            m.outbox.push(frame.clone());
        }
        for w in self.waiting.iter_mut().filter(|w| &w.member.id == id) {
            w.then.push(frame.clone());
        }
    }
}

/// The start of every encoded `message` frame; what follows is the line's own fields.
const MESSAGE_PREFIX: &str = r#"{"type":"message","#;

fn keep(line: ChatLine) -> KeptLine {
    let seq = line.seq;
    let message = Frame::encode(&ServerMsg::Message(line));
    debug_assert!(
        message
            .text()
            .is_some_and(|t| t.as_str().starts_with(MESSAGE_PREFIX))
    );
    KeptLine { seq, message }
}

/// `shell` (whose `field` is an empty array) with `lines` spliced into that array: each
/// line's JSON is its kept `message` frame without the `type`. Under the room's lock this
/// only shares the lines' bytes; the connection's writer assembles the frame.
fn splice_lines(shell: &ServerMsg, field: &str, lines: &[&KeptLine]) -> Frame {
    let json = encode(shell);
    let empty = format!(r#""{field}":[]"#);
    // Names before `field` are slugs and ids (no quotes inside), so the first match is it.
    let Some(at) = json.find(&empty) else {
        return Frame::encode(shell); // Unreachable for the shells above; stay correct anyway.
    };
    let split = at + empty.len() - 1;
    let bytes = lines
        .iter()
        .filter_map(|l| l.message.text().cloned())
        .collect();
    Frame::spliced(
        shell.type_name(),
        json[..split].to_owned(),
        bytes,
        MESSAGE_PREFIX.len(),
        json[split..].to_owned(),
    )
}

/// The outbox slot key of a typist on another server (local connections count up from 0, so
/// the top bit keeps the two apart).
fn remote_key(id: &ConnId) -> ConnKey {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    ConnKey(h.finish() | (1 << 63))
}

/// The outbox slot key of a signed-in user's live text in a room (all their tabs share it).
fn user_key(user: &UserId) -> ConnKey {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    "user".hash(&mut h);
    user.hash(&mut h);
    ConnKey(h.finish() | (1 << 63))
}

/// The slot of another server's typist: its user's, or its connection id's.
fn remote_slot(typist: &Typist) -> ConnKey {
    typist
        .user
        .as_ref()
        .map_or_else(|| remote_key(&typist.from), user_key)
}

/// The length of `value`'s JSON.
fn json_len(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::decode_server;

    #[test]
    fn big_rooms_get_presence_less_often() {
        assert_eq!(presence_gap(0), PRESENCE_EVERY);
        assert_eq!(presence_gap(1_000), PRESENCE_EVERY);
        assert_eq!(presence_gap(5_000), Duration::from_secs(1));
        assert_eq!(presence_gap(10_000), Duration::from_secs(2));
        // However big the room, presence frames per second stay within the budget.
        for members in [1_250, 7_000, 19_900, 100_000] {
            let per_sec = members as f64 / presence_gap(members).as_secs_f64();
            assert!(
                per_sec <= f64::from(PRESENCE_DELIVERIES_PER_SEC) + 1e-6,
                "{members}: {per_sec}"
            );
        }
    }

    fn line(seq: u64, text: &str) -> ChatLine {
        ChatLine {
            room: RoomName::general(),
            seq: Seq(seq),
            from: ConnId::new("AAAAAAAAAAAAAAAA"),
            name: DisplayName::parse("Ana").ok(),
            user: None,
            text: text.into(),
            at: 1,
            nonce: Some(format!("n-{seq}")),
        }
    }

    #[test]
    fn spliced_frames_decode_to_the_same_message_as_encoding_them_whole() {
        let lines = vec![line(1, "hola \"quoted\" ,]}"), line(2, "adiós")];
        let kept: Vec<KeptLine> = lines.iter().cloned().map(keep).collect();
        let refs: Vec<&KeptLine> = kept.iter().collect();
        let shell = ServerMsg::Older {
            room: RoomName::general(),
            lines: Vec::new(),
            has_more: true,
        };
        let spliced = splice_lines(&shell, "lines", &refs).into_bytes();
        let whole = ServerMsg::Older {
            room: RoomName::general(),
            lines: lines.clone(),
            has_more: true,
        };
        assert_eq!(spliced.as_str(), encode(&whole));
        assert_eq!(decode_server(spliced.as_str()), Ok(whole));
        let empty = splice_lines(&shell, "lines", &[]).into_bytes();
        assert_eq!(empty.as_str(), encode(&shell));
    }

    /// A link that only records what the room asked of it.
    #[derive(Default)]
    struct Recorder {
        asked: Mutex<Vec<String>>,
    }

    impl RoomLink for Recorder {
        fn sync(&self, _: &Arc<Room>) {
            self.asked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push("sync".into());
        }
        fn release(&self, _: &Arc<Room>) {
            self.asked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push("release".into());
        }
        fn fill(&self, _: &Arc<Room>, after: Seq) {
            let asked = format!("fill after {}", after.0);
            self.asked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(asked);
        }
        fn presence(&self, _: &Arc<Room>, _: u32, _: Option<Vec<Member>>) {}
        fn typing(&self, _: &Arc<Room>, _: &Typist) {}
    }

    fn linked_room(link: &Arc<Recorder>) -> Arc<Room> {
        let config = RoomConfig {
            history_cap: 100,
            welcome_lines: 100,
            presence_list_max: 10,
        };
        let link: Arc<dyn RoomLink> = link.clone();
        Arc::new(Room::new(
            RoomName::general(),
            RoomKey(0),
            Vec::new(),
            config,
            Arc::new(Metrics::new()),
            Some(link),
        ))
    }

    fn seqs_written(outbox: &Outbox) -> Vec<u64> {
        let batch = outbox.take().expect("frames");
        batch
            .frames
            .into_iter()
            .filter_map(|f| match decode_server(f.into_bytes().as_str()) {
                Ok(ServerMsg::Message(line)) => Some(line.seq.0),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_linked_room_greets_after_sync_holds_back_overtaking_lines_and_skips_repeats() {
        let link = Arc::new(Recorder::default());
        let room = linked_room(&link);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let member = RoomMember {
            id: ConnId::new("BBBBBBBBBBBBBBBB"),
            name: DisplayName::parse("Bea").expect("name"),
            user: None,
            outbox: outbox.clone(),
        };
        room.join(
            ConnKey(1),
            member,
            After::default(),
            Greeting::Joined { private: false },
        );
        assert!(
            outbox.take().is_none(),
            "no greeting before the room caught up"
        );
        room.publish(vec![line(1, "uno")], Vec::new());
        assert!(room.synced(), "someone waited");
        let greeting = outbox.take().expect("greeted").frames;
        match decode_server(greeting[0].clone().into_bytes().as_str()) {
            Ok(ServerMsg::Joined { lines, .. }) => assert_eq!(lines.len(), 1),
            other => panic!("expected joined, got {other:?}"),
        }
        // Line 3 overtakes line 2: it waits, and the link is asked to fill after 1.
        room.publish(vec![line(3, "tres")], Vec::new());
        assert!(outbox.take().is_none(), "nothing delivered past a gap");
        // Line 2 arrives (the fill): 2 and 3 go out in order; 3 again is skipped.
        room.publish(vec![line(2, "dos"), line(3, "tres")], Vec::new());
        assert_eq!(seqs_written(&outbox), vec![2, 3]);
        room.publish(vec![line(1, "uno"), line(3, "tres")], Vec::new());
        assert!(outbox.take().is_none(), "repeats are skipped");
        assert_eq!(room.last_seq(), Seq(3));
        assert!(room.leave(ConnKey(1)));
        let asked = link
            .asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(asked, ["sync", "fill after 1", "release"]);
    }

    /// A room with one member (its outbox), caught up at line 1.
    fn synced_room_with_a_member(link: &Arc<Recorder>) -> (Arc<Room>, Arc<Outbox>) {
        let room = linked_room(link);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let member = RoomMember {
            id: ConnId::new("BBBBBBBBBBBBBBBB"),
            name: DisplayName::parse("Bea").expect("name"),
            user: None,
            outbox: outbox.clone(),
        };
        room.join(
            ConnKey(1),
            member,
            After::default(),
            Greeting::Joined { private: false },
        );
        room.publish(vec![line(1, "uno")], Vec::new());
        assert!(room.synced());
        let _ = outbox.take();
        (room, outbox)
    }

    /// What was written: `joined` as (resumed, seqs), a line as its seq.
    fn written(outbox: &Outbox) -> Vec<String> {
        let batch = outbox.take().expect("frames");
        batch
            .frames
            .into_iter()
            .filter_map(|f| match decode_server(f.into_bytes().as_str()) {
                Ok(ServerMsg::Message(line)) => Some(format!("line {}", line.seq.0)),
                Ok(ServerMsg::Joined { lines, resumed, .. }) => {
                    Some(format!("joined resumed={resumed} lines={}", lines.len()))
                }
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_fill_that_finds_the_stream_trimmed_past_the_room_tells_its_members_to_start_over() {
        let link = Arc::new(Recorder::default());
        let (room, outbox) = synced_room_with_a_member(&link);
        // Lines 2..=9 are gone from the stream: the fill starts at 10.
        room.restart_at(vec![line(10, "diez"), line(11, "once")]);
        assert_eq!(
            written(&outbox),
            ["joined resumed=false lines=0", "line 10", "line 11"],
            "the member replaces what it shows, then gets the lines from 10 on"
        );
        assert_eq!(room.last_seq(), Seq(11));
    }

    #[tokio::test]
    async fn lines_held_for_a_fill_that_comes_back_empty_go_out_at_once() {
        let link = Arc::new(Recorder::default());
        let (room, outbox) = synced_room_with_a_member(&link);
        room.publish(vec![line(3, "tres"), line(4, "cuatro")], Vec::new());
        assert!(outbox.take().is_none(), "held back for line 2");
        // The stream has nothing after 1: line 2 will never come.
        room.fill_failed();
        assert_eq!(
            written(&outbox),
            ["joined resumed=false lines=0", "line 3", "line 4"]
        );
        assert_eq!(room.last_seq(), Seq(4));
    }
}
