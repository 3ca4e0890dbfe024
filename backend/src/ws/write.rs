//! A connection's writes: each batch of its [`Outbox`] is fed frame by frame and flushed
//! once; the heartbeat says when to ping and when a client went silent; a write that makes
//! no progress hangs up on a client that stopped reading.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::extract::ws::{Message, WebSocket};
use futures_util::SinkExt;

use super::CLOSE_GRACE;
use crate::{
    metrics::{Metrics, TypeLabel},
    outbox::{CloseReason, Frame, Outbox},
};

/// When the client last said anything (any frame counts), shared by the connection (which
/// notes it) and the heartbeat (which reads it).
#[derive(Debug, Clone)]
pub(crate) struct LastHeard {
    /// Milliseconds after `started` of the last frame read.
    ms: Arc<AtomicU64>,
    started: Instant,
}

impl LastHeard {
    /// Starts the clock now, as if the client had just spoken.
    pub(crate) fn new() -> Self {
        LastHeard {
            ms: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// Notes that the client said something.
    pub(crate) fn heard(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, Ordering::Relaxed);
    }

    /// How long the client has been silent.
    fn silent_for(&self) -> Duration {
        let heard = Duration::from_millis(self.ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(heard)
    }
}

/// The server's side of the heartbeat: when to ping, and when the client last said anything.
pub(crate) struct Heartbeat {
    every: Duration,
    /// When the client last said anything.
    last_heard: LastHeard,
}

/// Counts frames out per message type once per batch, not once per frame: this is the
/// fan-out's hottest loop, and a label lookup takes a lock.
pub(super) fn count_frames(metrics: &Metrics, frames: &[Frame]) {
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for frame in frames {
        match counts.iter_mut().find(|(kind, _)| *kind == frame.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((frame.kind, 1)),
        }
    }
    for (kind, n) in counts {
        metrics
            .frames_out
            .get_or_create(&TypeLabel { r#type: kind })
            .inc_by(n);
    }
}

/// Feeds every frame of the batch, then flushes once (or sends its close). A client that
/// stops reading blocks this write; meanwhile the outbox stays bounded (it closes itself
/// past its limit, and then the write gets a last grace period), the heartbeat still
/// watches for silence, and a write that makes no progress for two heartbeats ends it even
/// if the client keeps sending.
pub(super) async fn write_batch(
    sink: &mut WebSocket,
    outbox: &Outbox,
    heartbeat: &Heartbeat,
    ping: &mut tokio::time::Interval,
    batch: crate::outbox::Batch,
) -> Written {
    let close = batch.close;
    let write = async {
        for frame in batch.frames {
            sink.feed(frame.into_message()).await?;
        }
        match close {
            // The WebSocket layer queued the answer to the client's close when it read it:
            // flushing sends it (a second close would be refused).
            Some(CloseReason::ClientClosed) | None => sink.flush().await,
            Some(reason) => sink.send(Message::Close(Some(reason.frame()))).await,
        }
    };
    tokio::pin!(write);
    let started = Instant::now();
    // Only a slow consumer is cut short: any other close (shutdown, a broken rule) lets this
    // batch finish and comes with the next one, after the frames before it.
    let mut watch_closing = close.is_none();
    loop {
        tokio::select! {
            result = &mut write => return Written::Done(result.is_ok()),
            reason = outbox.closed(), if watch_closing => {
                if reason != CloseReason::SlowConsumer {
                    watch_closing = false;
                    continue;
                }
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut write).await;
                return Written::Closed(reason);
            }
            _ = ping.tick() => {
                if heartbeat.silent() {
                    return Written::Silent;
                }
                if started.elapsed() > 2 * heartbeat.every {
                    return Written::Stalled;
                }
            }
        }
    }
}

/// How a batch's write ended.
pub(super) enum Written {
    /// Written (or failed: `false`).
    Done(bool),
    /// The outbox closed while the write was stuck.
    Closed(CloseReason),
    /// The client went silent while the write was stuck.
    Silent,
    /// The write made no progress for two heartbeats.
    Stalled,
}

impl Heartbeat {
    /// The heartbeat of a connection started at `last_heard.started`.
    pub(crate) fn new(every: Duration, last_heard: LastHeard) -> Self {
        Heartbeat { every, last_heard }
    }

    /// How often the server pings.
    pub(super) fn every(&self) -> Duration {
        self.every
    }

    /// Whether the client has said nothing for two intervals.
    pub(super) fn silent(&self) -> bool {
        self.last_heard.silent_for() > 2 * self.every
    }
}
