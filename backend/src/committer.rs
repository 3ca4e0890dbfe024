//! The committer: the one place that gives lines their `seq`, makes them durable in group
//! commits, and hands them to the hub, in order.
//!
//! Connections submit jobs without waiting (a bounded queue; full means "busy"). One thread
//! takes everything queued, assigns `seq`s, skips `send`s whose nonce this client already got
//! accepted (their ack is repeated instead), writes the whole batch in one transaction, and
//! only then publishes it: acks and lines go out after they are durable, so an acknowledged
//! line is never lost, and under load one fsync covers many lines. The hub never waits on
//! the disk: the only thing that waits is this thread.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use shared::{ChatLine, ConnId, Seq};
use tokio::sync::{mpsc, oneshot};

use crate::{
    hub::Hub,
    metrics::Metrics,
    store::{Batch, HistoryStore},
};

/// Most jobs in one group commit.
const MAX_BATCH: usize = 4_096;
/// Most jobs waiting for the committer before connections are told the server is busy.
const QUEUE: usize = 65_536;

/// Work for the committer.
#[derive(Debug)]
pub enum Job {
    /// Append a line (unless its nonce was already accepted from this client).
    Line {
        /// The sender.
        from: ConnId,
        /// The text, already validated.
        text: String,
        /// The sender's nonce, if any.
        nonce: Option<String>,
    },
    /// Remember a new resume token.
    Session {
        /// The private token.
        token: String,
        /// The public id it gives back.
        id: ConnId,
    },
    /// Commit what came before, then stop.
    Stop(oneshot::Sender<()>),
}

/// The queue was full: the server is overloaded, the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// A handle on the committer thread.
#[derive(Debug)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the committer must know of the history it continues.
struct Sequencer {
    last_seq: Seq,
    cap: u64,
    /// `(sender, nonce)` of kept lines → their `seq`: how a resent line is recognised.
    accepted: HashMap<(ConnId, String), Seq>,
    /// The same keys in `seq` order, to forget them with their lines.
    accepted_order: VecDeque<(Seq, (ConnId, String))>,
}

impl Committer {
    /// Starts the committer thread over `store`, continuing the history in `lines` (as
    /// loaded), keeping at most `cap` lines, publishing to `hub`.
    pub fn start(
        store: Box<dyn HistoryStore>,
        lines: &[ChatLine],
        cap: u32,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut seq = Sequencer {
            last_seq: lines.last().map_or(Seq(0), |l| l.seq),
            cap: u64::from(cap.max(1)),
            accepted: HashMap::new(),
            accepted_order: VecDeque::new(),
        };
        for line in lines {
            if let Some(nonce) = &line.nonce {
                seq.remember(line.seq, (line.from.clone(), nonce.clone()));
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("charla-committer".into())
            .spawn(move || run(store, rx, seq, hub, &metrics))
            .expect("spawn the committer thread");
        Committer {
            jobs: tx,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues a job without waiting.
    pub fn submit(&self, job: Job) -> Result<(), Busy> {
        self.jobs.try_send(job).map_err(|_| Busy)
    }

    /// Commits everything queued so far, then stops the thread. Waits at most `timeout`.
    pub async fn stop(&self, timeout: Duration) {
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

impl Sequencer {
    fn remember(&mut self, seq: Seq, key: (ConnId, String)) {
        self.accepted.insert(key.clone(), seq);
        self.accepted_order.push_back((seq, key));
    }

    /// The first `seq` still kept, once `last_seq` lines exist.
    fn first_kept(&self) -> Seq {
        Seq((self.last_seq.0 + 1).saturating_sub(self.cap).max(1))
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

fn run(
    mut store: Box<dyn HistoryStore>,
    mut jobs: mpsc::Receiver<Job>,
    mut seq: Sequencer,
    hub: Arc<Hub>,
    metrics: &Metrics,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
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
        let before = seq.last_seq;
        let mut batch = Batch::default();
        let mut repeats = Vec::new();
        let mut stop = None;
        let at = now_ms();
        for job in queued.drain(..) {
            match job {
                Job::Line { from, text, nonce } => {
                    if let Some(nonce) = nonce.as_ref()
                        && let Some(done) = seq.accepted.get(&(from.clone(), nonce.clone()))
                    {
                        repeats.push((from, nonce.clone(), *done));
                        continue;
                    }
                    seq.last_seq = Seq(seq.last_seq.0 + 1);
                    if let Some(nonce) = &nonce {
                        seq.remember(seq.last_seq, (from.clone(), nonce.clone()));
                    }
                    batch.lines.push(ChatLine {
                        seq: seq.last_seq,
                        from,
                        text,
                        at,
                        nonce,
                    });
                }
                Job::Session { token, id } => batch.sessions.push((token, id)),
                Job::Stop(done) => stop = Some(done),
            }
        }
        if !batch.lines.is_empty() {
            batch.forget_below = Some(seq.first_kept());
        }
        match store.commit(&batch) {
            Ok(()) => {
                metrics.commits.inc();
                metrics.lines_committed.inc_by(batch.lines.len() as u64);
                if let Some(below) = batch.forget_below {
                    seq.forget_below(below);
                }
                hub.publish(batch.lines, repeats);
            }
            Err(err) => {
                tracing::error!(%err, lines = batch.lines.len(), "commit failed; the lines were refused");
                seq.roll_back_to(before);
                repeats.retain(|(_, _, s)| *s <= before);
                hub.refuse(&batch.lines);
                hub.publish(Vec::new(), repeats);
            }
        }
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
