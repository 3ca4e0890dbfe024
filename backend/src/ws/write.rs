//! A connection's write loop: drains its [`Outbox`] in batches (feed every ready frame,
//! flush once), pings on the heartbeat, and hangs up on a client that stopped reading or
//! went silent.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, stream::SplitSink};

use super::CLOSE_GRACE;
use crate::{
    metrics::{Metrics, TypeLabel},
    outbox::{CloseReason, Frame, Outbox},
};

/// When the client last said anything (any frame counts), shared by the read loop (which
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

/// Writes the outbox's batches until the connection ends: a close was written, the client
/// went silent or stopped reading (its write made no progress for two heartbeats), or the
/// socket failed.
pub(crate) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
) {
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat.every,
        heartbeat.every,
    );
    loop {
        let batch = tokio::select! {
            batch = outbox.next_batch() => batch,
            _ = ping.tick() => {
                if heartbeat.silent() {
                    metrics.close("heartbeat");
                    return;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let close = batch.close;
        if let Some(reason) = close {
            metrics.close(reason.label());
        }
        count_frames(&metrics, &batch.frames);
        match write_batch(&mut sink, &outbox, &heartbeat, &mut ping, batch).await {
            Written::Done(true) if close.is_none() => outbox.written(),
            Written::Done(_) => return,
            Written::Closed(reason) => {
                metrics.close(reason.label());
                let close = Message::Close(Some(reason.frame()));
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
                return;
            }
            Written::Silent => {
                metrics.close("heartbeat");
                return;
            }
            Written::Stalled => {
                // It reads nothing: a close frame would not get through either.
                metrics.close("stalled");
                return;
            }
        }
    }
}

/// Counts frames out per message type once per batch, not once per frame: this is the
/// fan-out's hottest loop, and a label lookup takes a lock.
fn count_frames(metrics: &Metrics, frames: &[Frame]) {
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
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
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
enum Written {
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

    /// Whether the client has said nothing for two intervals.
    fn silent(&self) -> bool {
        self.last_heard.silent_for() > 2 * self.every
    }
}
