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

use shared::{Change, ChatLine, ConnId, DisplayName, ErrorCode, RoomName, Seq, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::{
    hub::{RepeatedAck, Room, SessionChanges},
    metrics::Metrics,
    outbox::RoomKey,
    store::{
        Appended, AuditEntry, Batch, HistoryStore, Revocation, RuleOp, StoredNonce, StoredRead,
    },
};

/// Nonces remembered per sender (its newest): a client resends only lines it has no ack
/// for, and never has more than a few hundred of those.
const NONCES_PER_SENDER: usize = 1_024;

/// Most jobs in one group commit.
const MAX_BATCH: usize = 4_096;
/// How the committer is sized, and a fault to inject in tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommitterConfig {
    /// Lines kept per room.
    pub history_cap: u32,
    /// Most jobs waiting before connections are told the server is busy.
    pub queue: usize,
    /// Test only: wait this long before each commit (a slow disk).
    pub stall: Option<Duration>,
}

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
    /// The signed-in user who sent it, if any.
    pub user: Option<UserId>,
    /// Set for an entry that edits or removes an earlier line (checked by whoever submits
    /// it) rather than adding one.
    pub change: Option<Change>,
    /// Whether the audit log records the entry (a moderator's doing to others).
    pub audit: bool,
    /// Told where the line went once it is durable (the server API waits for this; a
    /// WebSocket sender is acked through its room instead).
    pub reply: Option<oneshot::Sender<Result<Published, Unstored>>>,
}

/// Where a line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// Its `seq` in its room.
    pub seq: Seq,
    /// Whether it was appended now (`false`: its nonce had been accepted before, at `seq`).
    pub new: bool,
}

/// The line could not be stored (the store failed); it was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the line could not be stored")]
pub(crate) struct Unstored;

/// Users whose tokens issued before a time are refused from now on, and whom to tell once
/// that is durable.
pub(crate) struct RevokeJob {
    /// The revocation.
    pub revocation: Revocation,
    /// Told `true` once on disk.
    pub durable: oneshot::Sender<bool>,
}

/// Session changes to make durable, and whom to tell once they are.
pub(crate) struct SessionJob {
    /// What changed.
    pub changes: SessionChanges,
    /// Told `true` once the changes are on disk (`false` if the commit failed): a welcome
    /// waits for this, so a client never holds a token a crash could lose.
    pub durable: Option<oneshot::Sender<bool>>,
}

/// A read of the audit log (it is kept by the store, which only the committer calls).
pub(crate) struct AuditJob {
    /// Only this room's entries (none: every room's).
    pub room: Option<RoomName>,
    /// How many at most.
    pub limit: usize,
    /// Told the entries, newest first (none: the store failed).
    pub reply: oneshot::Sender<Option<Vec<AuditEntry>>>,
}

/// Work for the committer.
pub(crate) enum Job {
    /// Read the audit log.
    Audit(AuditJob),
    /// Append a line.
    Line(LineJob),
    /// Keep a read position (it moved forward; nobody waits for it).
    Read(StoredRead),
    /// Store or forget sessions.
    Sessions(SessionJob),
    /// Revoke a user's older tokens.
    Revoke(RevokeJob),
    /// Delete the history of rooms whose newest line is older than this (ms since the
    /// epoch: `--room-retention`); answers with their names. Their numbering is kept: a
    /// `seq` is never handed out twice while the server runs.
    Expire(u64, oneshot::Sender<Vec<RoomName>>),
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

/// (room, nonce): a sender's accepted nonce.
type NonceKey = (RoomName, String);

/// Every sender's accepted nonces, kept as long as the sender's session lives (not as long
/// as the line: the history cap has nothing to do with whether a client may resend).
#[derive(Default)]
struct Accepted {
    by_sender: HashMap<ConnId, SenderNonces>,
}

#[derive(Default)]
struct SenderNonces {
    seqs: HashMap<NonceKey, Seq>,
    /// Oldest first, to forget past [`NONCES_PER_SENDER`].
    order: VecDeque<NonceKey>,
}

impl Accepted {
    fn get(&self, sender: &ConnId, room: &RoomName, nonce: &str) -> Option<Seq> {
        let nonces = self.by_sender.get(sender)?;
        nonces.seqs.get(&(room.clone(), nonce.to_owned())).copied()
    }

    /// Remembers a nonce; returns the one it pushed out, if any.
    fn remember(&mut self, sender: &ConnId, key: NonceKey, seq: Seq) -> Option<StoredNonce> {
        let nonces = self.by_sender.entry(sender.clone()).or_default();
        nonces.seqs.insert(key.clone(), seq);
        nonces.order.push_back(key);
        if nonces.order.len() <= NONCES_PER_SENDER {
            return None;
        }
        let (room, nonce) = nonces.order.pop_front()?;
        let seq = nonces.seqs.remove(&(room.clone(), nonce.clone()))?;
        Some(StoredNonce {
            sender: sender.clone(),
            room,
            nonce,
            seq,
        })
    }

    /// Undoes `remember` of lines that were not committed after all.
    fn unremember(&mut self, sender: &ConnId, key: &NonceKey) {
        if let Some(nonces) = self.by_sender.get_mut(sender) {
            nonces.seqs.remove(key);
            nonces.order.retain(|k| k != key);
        }
    }
}

/// What the committer must know of one room's history to continue it.
#[derive(Default)]
struct RoomSeq {
    last_seq: Seq,
}

impl Committer {
    /// Starts the committer thread over `store`, continuing the history in `lines` (as
    /// loaded, every room's), keeping at most `cap` lines per room.
    pub(crate) fn start(
        store: Box<dyn HistoryStore>,
        lines: &[ChatLine],
        nonces: Vec<StoredNonce>,
        config: CommitterConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut rooms: HashMap<RoomName, RoomSeq> = HashMap::new();
        for line in lines {
            rooms.entry(line.room.clone()).or_default().last_seq = line.seq;
        }
        let mut accepted = Accepted::default();
        for n in nonces {
            accepted.remember(&n.sender, (n.room, n.nonce), n.seq);
        }
        let sequencer = Sequencer {
            rooms,
            accepted,
            cap: u64::from(config.history_cap.max(1)),
        };
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let stall = config.stall;
        // Rooms are told of their entries from this thread, and a room may start a timer
        // then (presence held back by its pace after a kick or a ban puts members out):
        // the thread runs inside the server's runtime, so it can.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name("charla-committer".into())
            .spawn(move || {
                let _inside = runtime.as_ref().map(tokio::runtime::Handle::enter);
                run(store, rx, sequencer, stall, &metrics);
            })
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

/// Every room's numbering, and every sender's accepted nonces.
struct Sequencer {
    rooms: HashMap<RoomName, RoomSeq>,
    accepted: Accepted,
    cap: u64,
}

impl RoomSeq {
    /// The first `seq` still kept, with at most `cap` lines.
    fn first_kept(&self, cap: u64) -> Seq {
        Seq((self.last_seq.0 + 1).saturating_sub(cap).max(1))
    }
}

/// A batch's lines, room by room, in the order the rooms first appear.
#[derive(Default)]
struct RoomBatches {
    shares: Vec<RoomBatch>,
    index: HashMap<RoomKey, usize>,
}

impl RoomBatches {
    /// `room`'s share, added (with `before`, its last `seq` now) the first time it appears.
    fn share(&mut self, room: &Arc<Room>, before: Seq) -> &mut RoomBatch {
        let index = *self.index.entry(room.key).or_insert_with(|| {
            self.shares.push(RoomBatch {
                room: room.clone(),
                before,
                lines: Vec::new(),
                repeats: Vec::new(),
            });
            self.shares.len() - 1
        });
        &mut self.shares[index]
    }
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
    stall: Option<Duration>,
    metrics: &Metrics,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    // Sessions of a failed commit are tried again with the next one, never dropped.
    let mut carried = SessionChanges::default();
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
        let mut round = Round::new(std::mem::take(&mut carried), store.numbers_lines());
        for job in queued.drain(..) {
            round.take(job, &mut seq, store.as_mut());
        }
        round.seal(&mut seq);
        if let Some(stall) = stall {
            std::thread::sleep(stall);
        }
        let stop = round.stop.take();
        carried = if round.shared {
            round.commit_shared(store.as_mut(), &mut seq, metrics)
        } else {
            round.commit(store.as_mut(), &mut seq, metrics)
        };
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

/// One group commit being put together from the jobs that were waiting, then made durable
/// (or refused) as one.
struct Round {
    /// Whether the store numbers lines itself (Redis): lines go to it unnumbered.
    shared: bool,
    /// When the round started, the lines' `at`.
    at: u64,
    /// Numbered lines per room (this server numbers them).
    rooms: RoomBatches,
    /// Lines for a store that numbers them itself.
    unnumbered: Vec<LineJob>,
    batch: Batch,
    ids_gone: Vec<ConnId>,
    /// Who waits to hear that their sessions or revocations are durable.
    waiting: Vec<oneshot::Sender<bool>>,
    /// Who waits for a line's `seq` (the server API).
    answers: Vec<Answer>,
    stop: Option<oneshot::Sender<()>>,
}

impl Round {
    /// A round that starts with the sessions a failed commit left.
    fn new(carried: SessionChanges, shared: bool) -> Self {
        Round {
            shared,
            at: now_ms(),
            rooms: RoomBatches::default(),
            unnumbered: Vec::new(),
            batch: Batch {
                sessions: carried.store,
                forget_sessions: carried.forget,
                ..Batch::default()
            },
            ids_gone: carried.ids_gone,
            waiting: Vec::new(),
            answers: Vec::new(),
            stop: None,
        }
    }

    /// Adds one job (an expiry is carried out at once: it is its own transaction).
    fn take(&mut self, job: Job, seq: &mut Sequencer, store: &mut dyn HistoryStore) {
        match job {
            Job::Line(line) if self.shared => self.unnumbered.push(line),
            Job::Line(line) => seq.number(
                line,
                self.at,
                &mut self.rooms,
                &mut self.batch,
                &mut self.answers,
            ),
            Job::Revoke(job) => {
                self.batch.revocations.push(job.revocation);
                self.waiting.push(job.durable);
            }
            Job::Sessions(job) => {
                self.batch.sessions.extend(job.changes.store);
                self.batch.forget_sessions.extend(job.changes.forget);
                self.ids_gone.extend(job.changes.ids_gone);
                self.waiting.extend(job.durable);
            }
            Job::Read(read) => self.batch.reads.push(read),
            Job::Stop(done) => self.stop = Some(done),
            Job::Audit(job) => {
                let entries = store
                    .audit(job.room.as_ref(), job.limit)
                    .map_err(|err| tracing::error!(%err, "could not read the audit log"))
                    .ok();
                let _ = job.reply.send(entries);
            }
            Job::Expire(quiet_since, done) => {
                let expired = store.expire_rooms(quiet_since).unwrap_or_else(|err| {
                    tracing::error!(%err, "could not expire quiet rooms");
                    Vec::new()
                });
                let _ = done.send(expired);
            }
        }
    }

    /// Puts the numbered lines in the batch, with what the history cap lets go.
    fn seal(&mut self, seq: &mut Sequencer) {
        for share in &self.rooms.shares {
            if let Some(last) = share.lines.last() {
                self.batch.lines.extend(share.lines.iter().cloned());
                let numbering = seq.rooms.entry(share.room.name.clone()).or_default();
                debug_assert_eq!(numbering.last_seq, last.seq);
                self.batch
                    .forget_below
                    .push((share.room.name.clone(), numbering.first_kept(seq.cap)));
            }
        }
    }

    /// Commits on a store that numbers lines itself; returns the sessions to try again.
    fn commit_shared(
        self,
        store: &mut dyn HistoryStore,
        seq: &mut Sequencer,
        metrics: &Metrics,
    ) -> SessionChanges {
        let done = commit_shared(store, &self.batch, self.unnumbered, self.at, metrics);
        for waiter in self.waiting {
            let _ = waiter.send(done.is_ok());
        }
        match done {
            Ok(()) => {
                for id in &self.ids_gone {
                    seq.accepted.by_sender.remove(id);
                }
                SessionChanges::default()
            }
            Err(Unstored) => SessionChanges {
                store: self.batch.sessions,
                forget: self.batch.forget_sessions,
                ids_gone: self.ids_gone,
            },
        }
    }

    /// Commits the numbered batch; on success hands the lines to their rooms, on failure
    /// refuses them and rolls the numbering back. Returns the sessions to try again.
    fn commit(
        self,
        store: &mut dyn HistoryStore,
        seq: &mut Sequencer,
        metrics: &Metrics,
    ) -> SessionChanges {
        let started = std::time::Instant::now();
        if let Err(err) = store.commit(&self.batch) {
            tracing::error!(%err, lines = self.batch.lines.len(), "commit failed; the lines were refused");
            return self.refuse(seq);
        }
        metrics.committed(started.elapsed());
        metrics
            .lines_committed
            .inc_by(self.batch.lines.len() as u64);
        for id in &self.ids_gone {
            seq.accepted.by_sender.remove(id);
        }
        for done in self.waiting {
            let _ = done.send(true);
        }
        for share in self.rooms.shares {
            share.room.publish(share.lines, share.repeats);
        }
        for (reply, published) in self.answers {
            let _ = reply.send(Ok(published));
        }
        SessionChanges::default()
    }

    /// The commit failed: every line is refused (its sender resends it), the rooms'
    /// numbering goes back to where it was, and the sessions are kept for the next round.
    fn refuse(self, seq: &mut Sequencer) -> SessionChanges {
        for done in self.waiting {
            let _ = done.send(false);
        }
        for (reply, _) in self.answers {
            let _ = reply.send(Err(Unstored));
        }
        for mut share in self.rooms.shares {
            if let Some(numbering) = seq.rooms.get_mut(&share.room.name) {
                numbering.last_seq = share.before;
            }
            for line in &share.lines {
                if let Some(nonce) = &line.nonce {
                    seq.accepted
                        .unremember(&line.from, &(line.room.clone(), nonce.clone()));
                }
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
        SessionChanges {
            store: self.batch.sessions,
            forget: self.batch.forget_sessions,
            ids_gone: self.ids_gone,
        }
    }
}

/// One group commit on a store that numbers lines itself (several servers share it):
/// sessions first, then the lines, each numbered by the store. Lines go to their rooms once
/// the store answered (a room fills any gap another server's lines left, see `Room::publish`);
/// on failure every line is refused with `unavailable` and its sender resends it later (the
/// store recognises the nonce if the line did make it).
fn commit_shared(
    store: &mut dyn HistoryStore,
    batch: &Batch,
    jobs: Vec<LineJob>,
    at: u64,
    metrics: &Metrics,
) -> Result<(), Unstored> {
    // Numbered by the store.
    let lines: Vec<ChatLine> = jobs.iter().map(|job| job.line(Seq(0), at)).collect();
    let started = std::time::Instant::now();
    let appended = store.commit(batch).and_then(|()| store.append(&lines));
    let outcomes = match appended {
        Ok(outcomes) if outcomes.len() == lines.len() => outcomes,
        Ok(_) => {
            tracing::error!("the store answered for a different number of lines");
            refuse_all(jobs);
            return Err(Unstored);
        }
        Err(err) => {
            tracing::error!(%err, lines = lines.len(), "commit failed; the lines were refused");
            refuse_all(jobs);
            return Err(Unstored);
        }
    };
    metrics.committed(started.elapsed());
    // The rules and audit entries of the moderation entries that made it: a second write
    // (the entries' `seq`s come from the append). Should it fail, the entries stand (they
    // are in the log, and every server following the room applies them); the rule is then
    // missing only for servers that start following the room later, which is logged.
    let mut moderation = Batch::default();
    for ((job, line), outcome) in jobs.iter().zip(&lines).zip(&outcomes) {
        // Only entries with a change are looked at again (and copied): a line passes by.
        if let (Appended::New(seq), Some(_)) = (outcome, &line.change) {
            let mut line = line.clone();
            line.seq = *seq;
            moderation_of(job, &line, &mut moderation);
        }
    }
    if (!moderation.rules.is_empty() || !moderation.audit.is_empty())
        && let Err(err) = store.commit(&moderation)
    {
        tracing::error!(%err, "a moderation entry's rule or audit record could not be stored");
    }
    let mut rooms = RoomBatches::default();
    for ((mut job, mut line), outcome) in jobs.into_iter().zip(lines).zip(outcomes) {
        let published = match outcome {
            Appended::New(seq) => Published { seq, new: true },
            Appended::Repeat(seq) => Published { seq, new: false },
            Appended::Failed => {
                refuse_all(vec![job]);
                continue;
            }
        };
        if let Some(reply) = job.reply.take() {
            let _ = reply.send(Ok(published));
        }
        let share = rooms.share(&job.room, Seq(0));
        match outcome {
            Appended::New(seq) => {
                metrics.lines_committed.inc();
                line.seq = seq;
                share.lines.push(line);
            }
            Appended::Repeat(seq) => share.repeats.push(RepeatedAck {
                from: job.from,
                nonce: job.nonce.unwrap_or_default(),
                seq,
            }),
            Appended::Failed => {} // Refused above.
        }
    }
    for share in rooms.shares {
        share.room.publish(share.lines, share.repeats);
    }
    Ok(())
}

/// What a moderation entry adds to its batch: the rule it sets or lifts, and (if audited)
/// its audit entry; both durable with the entry itself.
fn moderation_of(job: &LineJob, line: &ChatLine, batch: &mut Batch) {
    let Some(change) = &line.change else {
        return;
    };
    batch.rules.extend(RuleOp::of(&line.room, change, line.at));
    if job.audit {
        batch.audit.extend(AuditEntry::of(line));
    }
}

/// Tells the sender of every line that it was not stored.
fn refuse_all(jobs: Vec<LineJob>) {
    for mut job in jobs {
        if let Some(reply) = job.reply.take() {
            let _ = reply.send(Err(Unstored));
        }
        job.room.refuse(
            &job.from,
            job.nonce,
            ErrorCode::Unavailable,
            "the line could not be stored; send it again later",
        );
    }
}

impl Sequencer {
    /// Gives a line the next `seq` of its room, or turns a resent nonce into a repeated ack.
    fn number(
        &mut self,
        mut job: LineJob,
        at: u64,
        rooms: &mut RoomBatches,
        batch: &mut Batch,
        answers: &mut Vec<Answer>,
    ) {
        let numbering = self.rooms.entry(job.room.name.clone()).or_default();
        let share = rooms.share(&job.room, numbering.last_seq);
        if let Some(nonce) = &job.nonce
            && let Some(done) = self.accepted.get(&job.from, &job.room.name, nonce)
        {
            if let Some(reply) = job.reply.take() {
                answers.push((
                    reply,
                    Published {
                        seq: done,
                        new: false,
                    },
                ));
            }
            share.repeats.push(RepeatedAck {
                from: job.from,
                nonce: nonce.clone(),
                seq: done,
            });
            return;
        }
        numbering.last_seq = Seq(numbering.last_seq.0 + 1);
        if let Some(reply) = job.reply.take() {
            answers.push((
                reply,
                Published {
                    seq: numbering.last_seq,
                    new: true,
                },
            ));
        }
        if let Some(nonce) = &job.nonce {
            let key = (job.room.name.clone(), nonce.clone());
            batch
                .forget_nonces
                .extend(self.accepted.remember(&job.from, key, numbering.last_seq));
        }
        let line = job.line(numbering.last_seq, at);
        moderation_of(&job, &line, batch);
        share.lines.push(line);
    }
}

impl LineJob {
    /// The line this job appends, at `seq`, stored at `at`.
    fn line(&self, seq: Seq, at: u64) -> ChatLine {
        ChatLine {
            room: self.room.name.clone(),
            seq,
            from: self.from.clone(),
            name: Some(self.name.clone()),
            user: self.user.clone(),
            text: self.text.clone(),
            at,
            nonce: self.nonce.clone(),
            edited: false,
            removed: false,
            change: self.change.clone(),
        }
    }
}

/// Whom to tell where a line went once its commit is done.
type Answer = (oneshot::Sender<Result<Published, Unstored>>, Published);

/// Now, in ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
