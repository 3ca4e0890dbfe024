//! One room: the unit of order. Its lines arrive numbered and durable from the committer and
//! [`Room::publish`] fans each out under the room's own lock, so every member's wire carries
//! the room's lines in `seq` order, and two rooms never wait on one lock.
//!
//! The room is the lock and the fan-out; its parts are each their own file, most of them
//! plain state that is tested without a lock:
//! - `members`: who is in it, how a joiner is greeted (`joined`, v1 `welcome`) within its
//!   reply budget, the member list.
//! - `history`: the kept lines as encoded frames, a greeting's `Page`, `older` pages, and
//!   the splicing of kept bytes into one frame.
//! - `early`: the out-of-order buffer for lines ahead of a gap (several servers).
//! - `presence` (coalesced presence, live text) and `typing` (the room's typing pace).
//! - `link`: the link to where else its lines are (other servers, this server's file):
//!   catching up, filling gaps, starting over, the other servers' members.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use shared::{Change, ChangeKind, ChatLine, ConnId, ErrorCode, RoomName, Seq, ServerMsg, Typist};

use early::EarlyLines;
use history::{History, splice_lines};

use crate::{
    metrics::Metrics,
    outbox::{ConnKey, Frame, Outbox, RoomKey},
    reads::Reads,
    rules::Rules,
    store::RuleOp,
};

mod early;
mod history;
mod link;
mod members;
mod presence;
mod typing;

pub(crate) use link::RoomLink;
use link::{Remote, SyncState};
pub(crate) use members::{After, Greeting, RoomMember};
use members::{Someone, Waiting};
use presence::PresenceClock;

use typing::TypingPacer;

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
    /// Set once a kick or a ban put someone out: from then on a member's frames check that
    /// it is still in.
    put_out_any: AtomicBool,
    config: RoomConfig,
    metrics: Arc<Metrics>,
    link: Option<Arc<dyn RoomLink>>,
    /// Every room's bans, mutes and slow modes (this room's moderation entries change them
    /// as they are delivered).
    rules: Arc<Rules>,
    /// Every signed-in user's read position (a greeting carries the member's).
    reads: Arc<Reads>,
}

impl Drop for Room {
    fn drop(&mut self) {
        // Its kept lines leave memory with it.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.metrics
            .history_lines
            .dec_by(gauge(state.history.len()));
    }
}

struct RoomState {
    members: HashMap<ConnKey, RoomMember>,
    /// How many of this server's connections each user (or guest session) has here:
    /// presence counts each once.
    someones: HashMap<Someone, usize>,
    /// The non-empty live text of each typist, by typing slot (a user's, or a guest
    /// connection's), with the connection that typed it.
    typing: HashMap<ConnKey, (ConnKey, String)>,
    /// The kept lines and the room's numbering.
    history: History,
    presence: PresenceClock,
    sync: SyncState,
    waiting: Vec<Waiting>,
    /// Lines that arrived before the ones just before them (another server's lines are on
    /// their way): delivered, in order, once the gap is filled.
    early: EarlyLines,
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

/// The registers every room consults, kept by the hub for all rooms: who is banned or
/// muted where and each room's slow mode ([`Rules`]), and each user's read positions
/// ([`Reads`]).
#[derive(Clone, Default)]
pub(crate) struct Registers {
    /// Bans, mutes and slow modes.
    pub rules: Arc<Rules>,
    /// Read positions.
    pub reads: Arc<Reads>,
}

impl Room {
    /// A room over its loaded lines (oldest first, contiguous), with no members.
    pub(crate) fn new(
        name: RoomName,
        key: RoomKey,
        lines: Vec<ChatLine>,
        config: RoomConfig,
        metrics: Arc<Metrics>,
        link: Option<Arc<dyn RoomLink>>,
        registers: Registers,
    ) -> Self {
        let Registers { rules, reads } = registers;
        let has_lines = !lines.is_empty();
        let history = History::new(lines, config.history_cap);
        metrics.history_lines.inc_by(gauge(history.len()));
        Room {
            name,
            key,
            state: Mutex::new(RoomState {
                members: HashMap::new(),
                someones: HashMap::new(),
                typing: HashMap::new(),
                history,
                presence: PresenceClock::default(),
                sync: if link.is_some() {
                    SyncState::Idle
                } else {
                    SyncState::Synced
                },
                waiting: Vec::new(),
                early: EarlyLines::default(),
                filling: false,
                remote: HashMap::new(),
                local_changed: false,
                typing_pace: TypingPacer::new(Instant::now()),
                typing_scheduled: false,
                private: false,
            }),
            has_lines: AtomicBool::new(has_lines),
            put_out_any: AtomicBool::new(false),
            config,
            metrics,
            link,
            rules,
            reads,
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
        self.lock().history.len()
    }

    /// How many connections are in the room, on every server.
    pub(crate) fn online(&self) -> usize {
        self.lock().online(self.config.presence_list_max)
    }

    /// The kept line (or entry) at `seq`, as it is now; none once the history cap dropped it.
    pub(crate) fn line(&self, seq: Seq) -> Option<ChatLine> {
        self.lock().history.line(seq)
    }

    /// The last `seq` this server has delivered.
    pub(crate) fn last_seq(&self) -> Seq {
        self.lock().history.last_seq()
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
            let ack = Frame::encode(&ServerMsg::Ack(shared::server::Ack {
                room: self.name.clone(),
                nonce: repeat.nonce,
                seq: repeat.seq,
            }));
            state.push_to(&repeat.from, &ack);
        }
        // In order (always, alone): straight out. Ahead of a gap: held in `early`.
        let next = state.history.next_seq();
        let ready = state.early.order(next, lines);
        let next = Seq(next.0 + ready.len() as u64);
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
        let kept_after = state.history.len_with(ready.len());
        self.metrics
            .history_lines
            .inc_by(gauge(kept_after) - gauge(state.history.len()));
        for line in ready {
            if let Some(nonce) = &line.nonce {
                let ack = Frame::encode(&ServerMsg::Ack(shared::server::Ack {
                    room: self.name.clone(),
                    nonce: nonce.clone(),
                    seq: line.seq,
                }));
                state.push_to(&line.from, &ack);
            }
            let moderation = line.change.clone().filter(|c| !c.kind.changes_a_line());
            // A rule holds before anyone hears of it: whoever reads a mute and sends at
            // once is already refused.
            if let Some(op) = moderation
                .as_ref()
                .and_then(|c| RuleOp::of(&self.name, c, line.at))
            {
                self.rules.apply(&op);
            }
            let message = state.history.push(line);
            for m in state.members.values() {
                m.outbox.push(message.clone());
            }
            if let Some(change) = moderation {
                self.put_out(&mut state, &change);
            }
        }
    }

    /// A kick or a ban was delivered: it takes the people it names out of the room, each
    /// told why with a `left` (after the entry itself).
    fn put_out(self: &Arc<Self>, state: &mut RoomState, change: &Change) {
        if !matches!(change.kind, ChangeKind::Kick | ChangeKind::Ban) {
            return;
        }
        let Some(subject) = change.user.as_deref() else {
            return;
        };
        self.put_out_any.store(true, Ordering::Relaxed);
        // Each connection of theirs here (or waiting to be), with where its `left` goes.
        let out: Vec<(ConnKey, Arc<Outbox>)> = state
            .members
            .iter()
            .map(|(key, m)| (*key, m))
            .chain(state.waiting.iter().map(|w| (w.key, &w.member)))
            .filter(|(_, m)| m.person().is(subject))
            .map(|(key, m)| (key, m.outbox.clone()))
            .collect();
        let left = Frame::encode(&ServerMsg::Left(shared::server::Left {
            room: self.name.clone(),
            reason: Some(change.kind),
            by: change.by.clone(),
            until: change.until,
        }));
        for (key, outbox) in out {
            self.remove(state, key);
            outbox.push(left.clone());
        }
    }

    /// Forgets the kept lines (their history expired); the numbering goes on.
    pub(crate) fn clear_history(&self) {
        let forgotten = self.lock().history.clear();
        self.metrics.history_lines.dec_by(gauge(forgotten));
    }

    /// Tells the sender of a line that it was not stored.
    pub(crate) fn refuse(&self, from: &ConnId, nonce: Option<String>, code: ErrorCode, why: &str) {
        let error = Frame::encode(&ServerMsg::Error(shared::server::Error {
            code,
            message: why.to_owned(),
            room: Some(self.name.clone()),
            nonce,
        }));
        self.lock().push_to(from, &error);
    }

    /// The `older` reply: up to `limit` kept lines before `before` and at most `max_bytes`
    /// of them (the newest of those), oldest first.
    pub(crate) fn older(&self, before: Seq, limit: usize, max_bytes: usize) -> Frame {
        let state = self.lock();
        let (lines, has_more) = state.history.older(before, limit, max_bytes);
        let shell = ServerMsg::Older(shared::server::Older {
            room: self.name.clone(),
            lines: Vec::new(),
            has_more,
        });
        splice_lines(&shell, "lines", &lines)
    }

    /// Up to `limit` kept lines after `after`, oldest first, as a JSON array (each line as
    /// in its `message` frame, less the `type`).
    pub(crate) fn lines_json(&self, after: Seq, limit: usize) -> String {
        self.lock().history.lines_json(after, limit)
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

impl RoomState {}

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
    use crate::outbox::Outbox;
    use shared::{DisplayName, Member, decode_server};

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
            edited: false,
            removed: false,
            change: None,
        }
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
            Registers::default(),
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

    /// Bea joins `room` as connection 1, a newcomer; her outbox.
    fn join_bea(room: &Arc<Room>) -> Arc<Outbox> {
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
        outbox
    }

    #[tokio::test]
    async fn a_linked_room_greets_after_sync_holds_back_overtaking_lines_and_skips_repeats() {
        let link = Arc::new(Recorder::default());
        let room = linked_room(&link);
        let outbox = join_bea(&room);
        assert!(
            outbox.take().is_none(),
            "no greeting before the room caught up"
        );
        room.publish(vec![line(1, "uno")], Vec::new());
        assert!(room.synced(), "someone waited");
        let greeting = outbox.take().expect("greeted").frames;
        match decode_server(greeting[0].clone().into_bytes().as_str()) {
            Ok(ServerMsg::Joined(shared::server::Joined { lines, .. })) => {
                assert_eq!(lines.len(), 1)
            }
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
        let outbox = join_bea(&room);
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
                Ok(ServerMsg::Joined(shared::server::Joined { lines, resumed, .. })) => {
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
