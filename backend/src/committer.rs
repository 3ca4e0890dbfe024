//! The committer: the one place that gives lines their `seq` (per room), makes them durable
//! in group commits, and hands them to their rooms, in order.
//!
//! Connections submit jobs without waiting (a bounded queue; full means "busy"). One thread
//! takes everything queued, assigns each line the next `seq` of its room, skips `send`s whose
//! nonce this client already got accepted in that room (their ack is repeated instead),
//! writes the whole batch in one transaction, and only then publishes it: acks and lines go
//! out after they are durable, so an acknowledged line is never lost, and under load one fsync
//! covers many lines of many rooms. SQLite has one writer anyway; what stays per room is the
//! numbering and the fan-out (each room's own lock). The rooms never wait on the disk: only
//! this thread does.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use shared::{ChatLine, ConnId, DisplayName, ErrorCode, RoomName, Seq};
use tokio::sync::{mpsc, oneshot};

use crate::{
    hub::{RepeatedAck, Room},
    metrics::Metrics,
    outbox::RoomKey,
    store::{Batch, HistoryStore, StoredSession},
};

/// Most jobs in one group commit.
const MAX_BATCH: usize = 4_096;
/// Most jobs waiting for the committer before connections are told the server is busy.
const QUEUE: usize = 65_536;

/// A line to append (unless its nonce was already accepted from this sender in this room).
pub(crate) struct LineJob {
    /// Where it goes.
    pub room: Arc<Room>,
    /// The sender.
    pub from: ConnId,
    /// The sender's display name now.
    pub name: DisplayName,
    /// The text, already validated.
    pub text: String,
    /// The sender's nonce, if any.
    pub nonce: Option<String>,
}

/// Work for the committer.
pub(crate) enum Job {
    /// Append a line.
    Line(LineJob),
    /// Remember a new session, or a known one's new name.
    Session(StoredSession),
    /// Commit what came before, then stop.
    Stop(oneshot::Sender<()>),
}

/// The queue was full: the server is overloaded, the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// A handle on the committer thread.
#[derive(Debug)]
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// (sender, nonce): how a resent line is recognised within its room.
type NonceKey = (ConnId, String);

/// What the committer must know of one room's history to continue it.
#[derive(Default)]
struct RoomSeq {
    last_seq: Seq,
    /// Nonces of kept lines → their `seq`.
    accepted: HashMap<NonceKey, Seq>,
    /// The same keys in `seq` order, to forget them with their lines.
    accepted_order: VecDeque<(Seq, NonceKey)>,
}

impl Committer {
    /// Starts the committer thread over `store`, continuing the history in `lines` (as
    /// loaded, every room's), keeping at most `cap` lines per room.
    pub(crate) fn start(
        store: Box<dyn HistoryStore>,
        lines: &[ChatLine],
        cap: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut rooms: HashMap<RoomName, RoomSeq> = HashMap::new();
        for line in lines {
            let room = rooms.entry(line.room.clone()).or_default();
            room.last_seq = line.seq;
            if let Some(nonce) = &line.nonce {
                room.remember(line.seq, (line.from.clone(), nonce.clone()));
            }
        }
        let sequencer = Sequencer {
            rooms,
            cap: u64::from(cap.max(1)),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("charla-committer".into())
            .spawn(move || run(store, rx, sequencer, &metrics))
            .expect("spawn the committer thread");
        Committer {
            jobs: tx,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues a job without waiting.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Busy> {
        if let Job::Line(line) = &job {
            line.room.mark_has_lines();
        }
        self.jobs.try_send(job).map_err(|_| Busy)
    }

    /// Commits everything queued so far, then stops the thread. Waits at most `timeout`.
    pub(crate) async fn stop(&self, timeout: Duration) {
        let (done, finished) = oneshot::channel();
        if self.jobs.send(Job::Stop(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, finished).await;
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.is_finished()
        {
            let _ = thread.join();
        }
    }
}

/// Every room's numbering.
struct Sequencer {
    rooms: HashMap<RoomName, RoomSeq>,
    cap: u64,
}

impl RoomSeq {
    fn remember(&mut self, seq: Seq, key: NonceKey) {
        self.accepted.insert(key.clone(), seq);
        self.accepted_order.push_back((seq, key));
    }

    /// The first `seq` still kept, with at most `cap` lines.
    fn first_kept(&self, cap: u64) -> Seq {
        Seq((self.last_seq.0 + 1).saturating_sub(cap).max(1))
    }

    fn forget_below(&mut self, below: Seq) {
        while let Some((seq, _)) = self.accepted_order.front() {
            if *seq >= below {
                break;
            }
            if let Some((_, key)) = self.accepted_order.pop_front() {
                self.accepted.remove(&key);
            }
        }
    }

    /// Undoes the `seq`s and nonces handed out since `last`, after a failed commit.
    fn roll_back_to(&mut self, last: Seq) {
        self.last_seq = last;
        while let Some((seq, _)) = self.accepted_order.back() {
            if *seq <= last {
                break;
            }
            if let Some((_, key)) = self.accepted_order.pop_back() {
                self.accepted.remove(&key);
            }
        }
    }
}

/// A batch's lines, room by room, in the order the rooms first appear.
#[derive(Default)]
struct RoomBatches {
    shares: Vec<RoomBatch>,
    index: HashMap<RoomKey, usize>,
}

/// One room's share of a batch.
struct RoomBatch {
    room: Arc<Room>,
    /// The room's last `seq` before this batch (to roll back to).
    before: Seq,
    lines: Vec<ChatLine>,
    repeats: Vec<RepeatedAck>,
}

fn run(
    mut store: Box<dyn HistoryStore>,
    mut jobs: mpsc::Receiver<Job>,
    mut seq: Sequencer,
    metrics: &Metrics,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    // Sessions of a failed commit are tried again with the next one, never dropped.
    let mut carried_sessions: Vec<StoredSession> = Vec::new();
    while let Some(first) = jobs.blocking_recv() {
        queued.push(first);
        // Group commit: take whatever else is already waiting (it queued while the last
        // commit was on disk), up to a bound.
        while queued.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => queued.push(job),
                Err(_) => break,
            }
        }
        let mut rooms = RoomBatches::default();
        let mut batch = Batch {
            sessions: std::mem::take(&mut carried_sessions),
            ..Batch::default()
        };
        let mut stop = None;
        let at = now_ms();
        for job in queued.drain(..) {
            match job {
                Job::Line(line) => seq.number(line, at, &mut rooms),
                Job::Session(session) => batch.sessions.push(session),
                Job::Stop(done) => stop = Some(done),
            }
        }
        for share in &rooms.shares {
            if let Some(last) = share.lines.last() {
                batch.lines.extend(share.lines.iter().cloned());
                let numbering = seq.rooms.entry(share.room.name.clone()).or_default();
                debug_assert_eq!(numbering.last_seq, last.seq);
                batch
                    .forget_below
                    .push((share.room.name.clone(), numbering.first_kept(seq.cap)));
            }
        }
        match store.commit(&batch) {
            Ok(()) => {
                metrics.commits.inc();
                metrics.lines_committed.inc_by(batch.lines.len() as u64);
                for (room, below) in batch.forget_below {
                    if let Some(numbering) = seq.rooms.get_mut(&room) {
                        numbering.forget_below(below);
                    }
                }
                for share in rooms.shares {
                    share.room.publish(share.lines, share.repeats);
                }
            }
            Err(err) => {
                tracing::error!(%err, lines = batch.lines.len(), "commit failed; the lines were refused");
                carried_sessions = batch.sessions;
                for mut share in rooms.shares {
                    if let Some(numbering) = seq.rooms.get_mut(&share.room.name) {
                        numbering.roll_back_to(share.before);
                    }
                    for line in &share.lines {
                        share.room.refuse(
                            &line.from,
                            line.nonce.clone(),
                            ErrorCode::Unavailable,
                            "the line could not be stored; send it again later",
                        );
                    }
                    share.repeats.retain(|r| r.seq <= share.before);
                    share.room.publish(Vec::new(), share.repeats);
                }
            }
        }
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

impl Sequencer {
    /// Gives a line the next `seq` of its room, or turns a resent nonce into a repeated ack.
    fn number(&mut self, job: LineJob, at: u64, rooms: &mut RoomBatches) {
        let numbering = self.rooms.entry(job.room.name.clone()).or_default();
        let index = *rooms.index.entry(job.room.key).or_insert_with(|| {
            rooms.shares.push(RoomBatch {
                room: job.room.clone(),
                before: numbering.last_seq,
                lines: Vec::new(),
                repeats: Vec::new(),
            });
            rooms.shares.len() - 1
        });
        let share = &mut rooms.shares[index];
        if let Some(nonce) = &job.nonce
            && let Some(done) = numbering.accepted.get(&(job.from.clone(), nonce.clone()))
        {
            share.repeats.push(RepeatedAck {
                from: job.from,
                nonce: nonce.clone(),
                seq: *done,
            });
            return;
        }
        numbering.last_seq = Seq(numbering.last_seq.0 + 1);
        if let Some(nonce) = &job.nonce {
            numbering.remember(numbering.last_seq, (job.from.clone(), nonce.clone()));
        }
        share.lines.push(ChatLine {
            room: job.room.name.clone(),
            seq: numbering.last_seq,
            from: job.from,
            name: Some(job.name),
            text: job.text,
            at,
            nonce: job.nonce,
        });
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
