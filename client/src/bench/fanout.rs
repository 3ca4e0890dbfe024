//! `fanout`: N clients in `general`, S of them sending: deliveries per second, and the
//! server's CPU per delivery. Two paces ([`Pace`]): W lines in flight per sender (the
//! server may put several of a sender's lines in one write), or gated: a sender's next line
//! goes only once every client has its previous one, so no two lines of a sender ever share
//! a write (the stricter workload: every delivery is a wake-up and a write of its own).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{sync::Notify, task::JoinSet};
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

/// How the senders of `fanout` pace their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// This many lines in flight per sender (a line acked lets the next go).
    Window(usize),
    /// A sender's next line goes once every client has received its previous one.
    Gated,
}

/// `fanout`: `clients` in `general`, `senders` of them sending `size`-byte lines at `pace`,
/// for `duration`. With [`Target::transport`] SSE, every client but the senders is on the
/// SSE transport (the senders stay on WebSockets: what is measured is the fan-out, not
/// POSTs).
pub async fn fanout(
    target: &Target,
    clients: usize,
    senders: usize,
    pace: Pace,
    size: usize,
    duration: Duration,
    server_pids: &[u32],
) -> Result<Report, String> {
    let mut report = Report::new("fanout");
    let senders = senders.min(clients);
    let (sender_sockets, _, _) = connect_all(target, senders).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let gates = Arc::new(Gates::new(sender_sockets.len(), clients));
    let transport = target.transport;
    match transport {
        crate::Transport::WebSocket => {
            let (sockets, _, _) = connect_all(target, clients - senders).await?;
            for ws in sockets {
                match pace {
                    Pace::Window(_) => count_messages(ws, delivered.clone(), &mut tasks),
                    Pace::Gated => gates.count(ws, delivered.clone(), &mut tasks),
                }
            }
        }
        crate::Transport::Sse => {
            let (receivers, _, _) =
                connect_all_with(target, clients - senders, connect_sse).await?;
            for receiver in receivers {
                let (delivered, gates) = (delivered.clone(), gates.clone());
                let gated = pace == Pace::Gated;
                tasks.spawn(receiver.read(move |frame| {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if gated {
                        gates.delivered(frame);
                    }
                }));
            }
        }
    }
    let stop_at = Instant::now() + duration;
    let cpu_before = cpu_seconds(None);
    let server_before = cpu_of(server_pids);
    let delivered_before = delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    for (index, ws) in sender_sockets.into_iter().enumerate() {
        match pace {
            Pace::Window(window) => {
                let sender = WindowedSender {
                    index,
                    window,
                    text: "x".repeat(size.max(1)),
                    stop_at,
                    delivered: delivered.clone(),
                    sent: sent.clone(),
                };
                tasks.spawn(sender.run(ws));
            }
            Pace::Gated => {
                // Each line names its sender first: a gated client counts by it.
                let prefix = format!("{index}:");
                let text = prefix.clone() + &"x".repeat(size.saturating_sub(prefix.len()).max(1));
                let (sink, stream) = ws.split();
                gates.count_stream(stream, delivered.clone(), &mut tasks);
                let gates = gates.clone();
                let sent = sent.clone();
                tasks.spawn(gates.send(index, sink, text, stop_at, sent));
            }
        }
    }
    tokio::time::sleep_until((stop_at + Duration::from_millis(200)).into()).await;
    let wall = started.elapsed();
    let deliveries = delivered.load(Ordering::Relaxed) - delivered_before;
    let lines = sent.load(Ordering::Relaxed);
    report.row("clients", clients as f64, "");
    if transport == crate::Transport::Sse {
        report.row(
            "on SSE",
            (clients - senders) as f64,
            "clients (the senders on WebSockets)",
        );
    }
    report.row("servers", (target.also.len() + 1) as f64, "");
    report.row("senders", senders as f64, "");
    match pace {
        Pace::Window(window) => report.row("window", window as f64, "lines in flight per sender"),
        Pace::Gated => report.row(
            "gated",
            1.0,
            "each line waits for every client to have the last",
        ),
    }
    report.row("line size", size as f64, "bytes");
    let what = match pace {
        Pace::Window(_) => "lines acked",
        Pace::Gated => "lines delivered to every client",
    };
    report.row(what, lines as f64, "");
    report.row("lines/s", lines as f64 / wall.as_secs_f64(), "");
    report.row("deliveries/s", deliveries as f64 / wall.as_secs_f64(), "");
    server_cpu(&mut report, server_before, server_pids, wall, deliveries);
    own_cpu(&mut report, cpu_before, wall);
    tasks.abort_all();
    Ok(report)
}

/// Where gated clients count each sender's deliveries, and wake the sender once every
/// client has its last line.
struct Gates {
    /// Per sender: deliveries of its lines so far, at every client.
    counts: Vec<AtomicU64>,
    /// Per sender: told when its last line reached every client.
    done: Vec<Notify>,
    clients: u64,
}

impl Gates {
    fn new(senders: usize, clients: usize) -> Self {
        Gates {
            counts: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            done: (0..senders).map(|_| Notify::new()).collect(),
            clients: clients as u64,
        }
    }

    /// Counts `ws`'s deliveries, by sender.
    fn count(self: &Arc<Self>, ws: Socket, delivered: Arc<AtomicU64>, tasks: &mut JoinSet<()>) {
        let (_, stream) = ws.split();
        self.count_stream(stream, delivered, tasks);
    }

    /// Counts the deliveries a stream brings, by sender.
    fn count_stream(
        self: &Arc<Self>,
        mut stream: futures_util::stream::SplitStream<Socket>,
        delivered: Arc<AtomicU64>,
        tasks: &mut JoinSet<()>,
    ) {
        let gates = self.clone();
        tasks.spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame
                    && text.starts_with(r#"{"type":"message""#)
                {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    gates.delivered(&text);
                }
            }
        });
    }

    /// One delivery: the sender named at the start of its text is woken if this was the
    /// last client its line had to reach.
    fn delivered(&self, frame: &str) {
        let Some(sender) = sender_of(frame) else {
            return;
        };
        if let Some(count) = self.counts.get(sender) {
            let now = count.fetch_add(1, Ordering::AcqRel) + 1;
            if now % self.clients == 0 {
                // A permit, if the sender is not waiting yet: the wake-up is not lost.
                self.done[sender].notify_one();
            }
        }
    }

    /// Sender `index`: a line, then waits until every client has it, until `stop_at`.
    async fn send(
        self: Arc<Self>,
        index: usize,
        mut sink: Sink,
        text: String,
        stop_at: Instant,
        sent: Arc<AtomicU64>,
    ) {
        let mut n = 0u64;
        while Instant::now() < stop_at {
            n += 1;
            let frame = send_frame(&text, format_args!("g{index}-{n}"));
            if sink.send(frame).await.is_err() {
                return;
            }
            let whole = n * self.clients;
            while self.counts[index].load(Ordering::Acquire) < whole {
                let wait = self.done[index].notified();
                if tokio::time::timeout_at(stop_at.into(), wait).await.is_err() {
                    return; // over: a line still on its way is not counted
                }
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The sender a gated line's text names (`"text":"<index>:…"`).
fn sender_of(frame: &str) -> Option<usize> {
    let at = frame.find(r#""text":""#)? + r#""text":""#.len();
    let rest = &frame[at..];
    rest[..rest.find(':')?].parse().ok()
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
