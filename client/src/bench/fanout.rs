//! `fanout`: N clients in `general`, S of them sending with W lines in flight each: deliveries
//! per second, and the server's CPU per delivery.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// The sending half of a load-generator connection.
type Sink = futures_util::stream::SplitSink<Socket, Message>;

/// One `fanout` sender: keeps `window` lines in flight until `stop_at`, then waits for the
/// last acks. It is in `general` too, so it counts the deliveries it gets like any client.
struct WindowedSender {
    /// Which sender this is, for unique nonces.
    index: usize,
    window: usize,
    text: String,
    stop_at: Instant,
    delivered: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

impl WindowedSender {
    /// Fills the window, then sends a line for every ack until `stop_at`; returns once the
    /// window has drained (or the connection failed).
    async fn run(self, ws: Socket) {
        let (mut sink, mut stream) = ws.split();
        let mut next = 0u64;
        let mut in_flight = 0usize;
        while in_flight < self.window && Instant::now() < self.stop_at {
            next += 1;
            if !self.send(&mut sink, next).await {
                return;
            }
            in_flight += 1;
        }
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(frame) = frame else {
                continue;
            };
            if frame.starts_with(r#"{"type":"message""#) {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            } else if frame.starts_with(r#"{"type":"ack""#) {
                self.sent.fetch_add(1, Ordering::Relaxed);
                in_flight -= 1;
                if Instant::now() < self.stop_at {
                    next += 1;
                    if !self.send(&mut sink, next).await {
                        return;
                    }
                    in_flight += 1;
                } else if in_flight == 0 {
                    return;
                }
            } else if frame.starts_with(r#"{"type":"error""#) {
                // Refused (rate limits): the place in the window frees up all the same.
                in_flight = in_flight.saturating_sub(1);
            }
        }
    }

    /// Sends line `n`; `false` when the connection is gone.
    async fn send(&self, sink: &mut Sink, n: u64) -> bool {
        let frame = send_frame(&self.text, format_args!("b{}-{n}", self.index));
        sink.send(frame).await.is_ok()
    }
}

/// `fanout`: `clients` in `general`, `senders` of them sending `size`-byte lines with
/// `window` in flight each, for `duration`.
pub async fn fanout(
    target: &Target,
    clients: usize,
    senders: usize,
    window: usize,
    size: usize,
    duration: Duration,
    server_pids: &[u32],
) -> Result<Report, String> {
    let mut report = Report::new("fanout");
    let (mut sockets, _, _) = connect_all(target, clients).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let sender_sockets: Vec<Socket> = sockets.drain(..senders.min(clients)).collect();
    for ws in sockets {
        count_messages(ws, delivered.clone(), &mut tasks);
    }
    let text = "x".repeat(size.max(1));
    let stop_at = Instant::now() + duration;
    let cpu_before = cpu_seconds(None);
    let server_before = cpu_of(server_pids);
    let delivered_before = delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    for (index, ws) in sender_sockets.into_iter().enumerate() {
        let sender = WindowedSender {
            index,
            window,
            text: text.clone(),
            stop_at,
            delivered: delivered.clone(),
            sent: sent.clone(),
        };
        tasks.spawn(sender.run(ws));
    }
    tokio::time::sleep_until((stop_at + Duration::from_millis(200)).into()).await;
    let wall = started.elapsed();
    let deliveries = delivered.load(Ordering::Relaxed) - delivered_before;
    let lines = sent.load(Ordering::Relaxed);
    report.row("clients", clients as f64, "");
    report.row("servers", (target.also.len() + 1) as f64, "");
    report.row("senders", senders as f64, "");
    report.row("window", window as f64, "lines in flight per sender");
    report.row("line size", size as f64, "bytes");
    report.row("lines acked", lines as f64, "");
    report.row("lines/s", lines as f64 / wall.as_secs_f64(), "");
    report.row("deliveries/s", deliveries as f64 / wall.as_secs_f64(), "");
    server_cpu(&mut report, server_before, server_pids, wall, deliveries);
    own_cpu(&mut report, cpu_before, wall);
    tasks.abort_all();
    Ok(report)
}

/// Notes the servers' CPU use over `wall` (all of `server_pids` together, since
/// `server_before`), in all and per delivery.
fn server_cpu(
    report: &mut Report,
    server_before: Option<f64>,
    server_pids: &[u32],
    wall: Duration,
    deliveries: u64,
) {
    if let (Some(before), Some(after)) = (server_before, cpu_of(server_pids)) {
        let cpu = after - before;
        report.row(
            "server busy",
            100.0 * cpu / wall.as_secs_f64(),
            "% of a core (all servers)",
        );
        if deliveries > 0 {
            report.row(
                "server CPU per delivery",
                cpu * 1e6 / deliveries as f64,
                "µs",
            );
        }
    }
}
