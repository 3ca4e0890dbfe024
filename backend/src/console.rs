//! The operator's console's numbers (`/admin`): once a second the sampler reads the
//! server's counters and gauges into a [`Sample`] (rates over that second), keeps the last
//! [`WINDOW_SECS`] of them, and hands each new one to the admins' stats stream,
//! `GET /api/admin/stats` (Server-Sent Events: `history` with what is kept, then `sample`
//! every second). The API key or an admin's token opens it ([`Operator`]).
//!
//! The fan-out pays nothing for it: the counters it reads are the ones `/metrics` already
//! keeps (two more relaxed additions per written batch: frames and bytes), and the sampler
//! runs once a second whether or not a console is open (one short lock per connection to
//! sum the outboxes' backlog). Nothing is sent to anyone while no console is open.

use std::{
    collections::VecDeque,
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Extension,
    body::{Body, Bytes},
    extract::State,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt as _;
use shared::console::{Sample, WINDOW_SECS};
use tokio::sync::{broadcast, watch};

use crate::{
    cluster::{Cluster, NodeReport},
    hub::Hub,
    metrics::Metrics,
    server_api::Operator,
    state::AppState,
    ws::sse::{LongLived, event_stream},
};

/// The kept samples and the live feed.
pub(crate) struct Stats {
    kept: Mutex<VecDeque<Sample>>,
    /// This server's latest report of itself (what `GET /api/admin/nodes` lists alone).
    report: Mutex<Option<NodeReport>>,
    live: broadcast::Sender<Sample>,
    closing: watch::Sender<bool>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            kept: Mutex::new(VecDeque::with_capacity(WINDOW_SECS)),
            report: Mutex::new(None),
            live: broadcast::channel(16).0,
            closing: watch::channel(false).0,
        }
    }
}

impl Stats {
    /// The samples kept, oldest first.
    pub(crate) fn history(&self) -> Vec<Sample> {
        self.kept().iter().copied().collect()
    }

    /// Keeps `sample` (forgetting the oldest past the window) and sends it to every open
    /// stream.
    pub(crate) fn push(&self, sample: Sample) {
        {
            let mut kept = self.kept();
            if kept.len() == WINDOW_SECS {
                kept.pop_front();
            }
            kept.push_back(sample);
        }
        // No stream open: nobody to send to, and that is fine.
        let _ = self.live.send(sample);
    }

    /// Ends every stream (the server is shutting down).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The counters a sample is the difference of, read at one instant.
struct Reading {
    at: Instant,
    lines: u64,
    deliveries: u64,
    bytes_out: u64,
    slow_closes: u64,
    commits: u64,
    commit_micros: u64,
    cpu_ticks: u64,
}

impl Reading {
    fn now(metrics: &Metrics) -> Self {
        Reading {
            at: Instant::now(),
            lines: metrics.lines_committed.get(),
            deliveries: metrics.deliveries.get(),
            bytes_out: metrics.bytes_out.get(),
            slow_closes: metrics.slow_closes(),
            commits: metrics.commits.get(),
            commit_micros: metrics.commit_micros.get(),
            cpu_ticks: process::cpu_ticks(),
        }
    }

    /// The sample of the time since `before`, with the gauges as they are now.
    fn since(&self, before: &Reading, hub: &Hub, metrics: &Metrics) -> Sample {
        let secs = self.at.duration_since(before.at).as_secs_f64().max(0.001);
        // Counters only grow; a rate is per second even when a tick came late.
        let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 / secs).round() as u64;
        let commits = self.commits.saturating_sub(before.commits);
        let commit_us = self
            .commit_micros
            .saturating_sub(before.commit_micros)
            .checked_div(commits)
            .unwrap_or(0);
        let ticks = self.cpu_ticks.saturating_sub(before.cpu_ticks) as f64;
        Sample {
            at: crate::committer::now_ms(),
            connections: u64::try_from(metrics.connections.get()).unwrap_or(0),
            lines: rate(self.lines, before.lines),
            deliveries: rate(self.deliveries, before.deliveries),
            bytes_out: rate(self.bytes_out, before.bytes_out),
            backlog: hub.backlog(),
            slow_closes: self.slow_closes.saturating_sub(before.slow_closes),
            commit_us,
            rss: process::rss_bytes(),
            cpu: (ticks / process::TICKS_PER_SEC / secs * 100.0) as f32,
        }
    }
}

/// Samples the server once a second into `stats`, and, with `cluster`, tells the other
/// servers this one's load; until the task is aborted (at shutdown).
pub(crate) async fn sample_every_second(
    stats: Arc<Stats>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    cluster: Option<Arc<Cluster>>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let mut before = Reading::now(&metrics);
    loop {
        every.tick().await;
        let now = Reading::now(&metrics);
        let sample = now.since(&before, &hub, &metrics);
        stats.push(sample);
        before = now;
        let node = cluster.as_ref().map_or("this server", |c| c.node());
        let report = report_of(node, &sample, &hub);
        *stats.report.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        if let Some(cluster) = &cluster {
            // Not waited for: a slow Redis must not hold the samples back.
            let cluster = cluster.clone();
            tokio::spawn(async move {
                if cluster.report(&report).await.is_err() {
                    tracing::debug!("the node report did not reach Redis");
                }
            });
        }
    }
}

/// This server's report of itself, from its latest sample.
fn report_of(node: &str, sample: &Sample, hub: &Hub) -> NodeReport {
    NodeReport {
        node: node.to_owned(),
        at: sample.at,
        connections: sample.connections,
        lines: sample.lines,
        deliveries: sample.deliveries,
        cpu: sample.cpu,
        rss: sample.rss,
        rooms: hub
            .rooms()
            .into_iter()
            .filter(|room| room.has_local_members())
            .map(|room| room.name.clone())
            .collect(),
    }
}

/// `GET /api/admin/nodes`: every server's latest report (alone: this one's), by name:
/// `[{"node", "at", "connections", "lines", "deliveries", "cpu", "rss", "rooms"}]`.
pub(crate) async fn nodes(_: Operator, State(app): State<AppState>) -> Response {
    let nodes = match &app.cluster {
        Some(cluster) => match cluster.nodes().await {
            Ok(nodes) => nodes,
            Err(_) => {
                let body = serde_json::json!({
                    "error": "unavailable",
                    "code": "unavailable",
                    "message": "the other servers could not be reached (Redis did not answer)",
                });
                return (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(body),
                )
                    .into_response();
            }
        },
        None => app
            .stats
            .report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .into_iter()
            .collect(),
    };
    axum::Json(nodes).into_response()
}

/// `GET /api/admin/stats`: the stats stream, for the API key or an admin's token.
pub(crate) async fn stream(
    _: Operator,
    State(app): State<AppState>,
    long_lived: Option<Extension<LongLived>>,
) -> Response {
    // A stream, not a request: the HTTP deadline does not apply (it writes every second).
    if let Some(Extension(LongLived(flag))) = long_lived {
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // Subscribed before the history is read: a sample pushed in between is in both, and
    // skipped the second time by its time.
    let live = app.stats.live.subscribe();
    let closing = app.stats.closing.subscribe();
    let history = app.stats.history();
    let newest = history.last().map_or(0, |s| s.at);
    let first = format!(
        "retry: 2000\n\nevent: history\ndata: {}\n\n",
        serde_json::to_string(&history).unwrap_or_else(|_| "[]".into())
    );
    let events = futures_util::stream::unfold(
        (live, closing, newest),
        |(mut live, mut closing, mut newest)| async move {
            loop {
                let sample = tokio::select! {
                    sample = live.recv() => sample,
                    _ = closing.wait_for(|closing| *closing) => return None,
                };
                match sample {
                    Ok(sample) if sample.at > newest => {
                        newest = sample.at;
                        let data = serde_json::to_string(&sample).unwrap_or_default();
                        let event = Bytes::from(format!("event: sample\ndata: {data}\n\n"));
                        return Some((event, (live, closing, newest)));
                    }
                    // Already sent with the history, or this reader fell behind (it gets
                    // the next one).
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    let body = futures_util::stream::iter([Bytes::from(first)])
        .chain(events)
        .map(Ok::<_, Infallible>);
    event_stream(Body::from_stream(body)).into_response()
}

/// The process's own CPU time and memory, from `/proc` (zero where there is none).
mod process {
    /// Clock ticks per second of `/proc/self/stat`'s times (`USER_HZ`, 100 on Linux).
    pub(super) const TICKS_PER_SEC: f64 = 100.0;
    /// The page size `/proc/self/statm` counts in.
    const PAGE_BYTES: u64 = 4096;

    /// User and system CPU time so far, in clock ticks.
    pub(super) fn cpu_ticks() -> u64 {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return 0;
        };
        // The command name (in parentheses) may hold spaces: count fields after it.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line; 12 and 13 after `)`.
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        field(11) + field(12)
    }

    /// Resident memory, in bytes.
    pub(super) fn rss_bytes() -> u64 {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * PAGE_BYTES)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_process_reads_its_own_memory_and_cpu_time() {
            assert!(super::rss_bytes() > 1_000_000, "some megabytes resident");
            let before = super::cpu_ticks();
            // Burn some CPU (a few tens of milliseconds) and see the ticks move.
            let started = std::time::Instant::now();
            let mut x = 1u64;
            while super::cpu_ticks() == before {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                assert!(started.elapsed().as_secs() < 10, "the ticks never moved");
            }
            std::hint::black_box(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_newest_fifteen_minutes() {
        let stats = Stats::default();
        for at in 0..(WINDOW_SECS as u64 + 10) {
            stats.push(Sample {
                at,
                ..Sample::default()
            });
        }
        let kept = stats.history();
        assert_eq!(kept.len(), WINDOW_SECS);
        assert_eq!(kept.first().map(|s| s.at), Some(10));
        assert_eq!(kept.last().map(|s| s.at), Some(WINDOW_SECS as u64 + 9));
    }
}
