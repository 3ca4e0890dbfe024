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
    outbox::{CloseReason, Outbox},
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
        if let Some(reason) = batch.close {
            metrics.close(reason.label());
        }
        let close = batch.close;
        let frames = batch.frames;
        let metrics_ref = &metrics;
        // A client that stops reading blocks this write. The outbox stays bounded meanwhile
        // (it closes itself past its limit); when it does, or when the client has been silent
        // for two heartbeats, give the write a last grace period and hang up.
        let outcome = {
            let write = async {
                // Count per message type once per batch, not once per frame: this is the
                // fan-out's hottest loop, and a label lookup takes a lock.
                let mut counts: Vec<(&'static str, u64)> = Vec::new();
                for frame in &frames {
                    match counts.iter_mut().find(|(kind, _)| *kind == frame.kind) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((frame.kind, 1)),
                    }
                }
                for (kind, n) in counts {
                    metrics_ref
                        .frames_out
                        .get_or_create(&TypeLabel { r#type: kind })
                        .inc_by(n);
                }
                for frame in frames {
                    sink.feed(Message::Text(frame.bytes)).await?;
                }
                match close {
                    Some(reason) => sink.send(Message::Close(Some(reason.frame()))).await,
                    None => sink.flush().await,
                }
            };
            tokio::pin!(write);
            // Only a slow consumer is cut short: any other close (shutdown, a broken rule)
            // lets this batch finish and comes with the next one, after the frames before it.
            let mut watch_closing = close.is_none();
            loop {
                tokio::select! {
                    result = &mut write => break Written::Done(result.is_ok()),
                    reason = outbox.closed(), if watch_closing => {
                        if reason != CloseReason::SlowConsumer {
                            watch_closing = false;
                            continue;
                        }
                        let _ = tokio::time::timeout(CLOSE_GRACE, &mut write).await;
                        break Written::Closed(reason);
                    }
                    _ = ping.tick() => {
                        if heartbeat.silent() {
                            break Written::Silent;
                        }
                    }
                }
            }
        };
        match outcome {
            Written::Done(ok) => {
                if !ok || close.is_some() {
                    return;
                }
            }
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
