//! `charla bench`: the project's own load generator. Each scenario connects real WebSocket
//! clients (spread over several source addresses, so tens of thousands fit the port range and
//! the server's per-address limits), drives the server, prints a table, and can write it as
//! JSON.
//!
//! - `fanout`: N clients in `general`, S of them sending with W lines in flight each:
//!   deliveries per second, and the server's CPU per delivery (`--server-pid`).
//! - `latency`: N clients, a fixed total send rate: send → delivery latency at every client
//!   (p50, p90, p99, p99.9, max, from an HDR histogram).
//! - `idle`: N connections opened 64 at a time and held: connects per second, handshake
//!   latency, and the server's RSS per connection (`--server-pid`).
//! - `storm`: clients chatting while the server is killed and restarted: every acked line is
//!   in the history once.
//!
//! One file per scenario; this one holds what they share (the target, the report, the
//! connections, CPU and memory readings).
//!
//! The generator measures its own CPU too, and flags a run where it, not the server, was
//! the limit (its core over 90 % busy).

mod fanout;
mod idle;
mod latency;
mod storm;

pub use fanout::{Pace, fanout};
pub use idle::idle;
pub use latency::latency;
pub use storm::storm;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::{net::TcpSocket, sync::Semaphore, task::JoinSet};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, client_async_with_config, tungstenite::Message,
};

/// One load-generator connection.
pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// More servers of the same cluster (`--redis`): connections are spread over `addr`
    /// and these, in turn.
    pub also: Vec<SocketAddr>,
    /// Source addresses to spread connections over (127.0.0.1–127.0.0.4 by default).
    pub sources: Vec<IpAddr>,
    /// How many handshakes may be in flight at once.
    pub in_flight: usize,
    /// How the clients connect (`fanout` alone can use SSE: its receivers do).
    pub transport: crate::Transport,
}

/// A scenario's results: rows of (name, value, unit), printed as a table and kept as JSON.
#[derive(Debug, Default)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    rows: Vec<(String, f64, &'static str)>,
    notes: Vec<String>,
}

impl Report {
    fn new(scenario: &str) -> Self {
        Report {
            scenario: scenario.to_owned(),
            ..Report::default()
        }
    }

    fn row(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        self.rows.push((name.into(), value, unit));
    }

    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The value of row `name`, if measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, v, _)| *v)
    }

    /// The table, as printed.
    pub fn table(&self) -> String {
        let mut out = format!("charla bench {}\n", self.scenario);
        for (name, value, unit) in &self.rows {
            let shown = if value.fract() == 0.0 && value.abs() < 1e15 {
                format!("{value:.0}")
            } else {
                format!("{value:.3}")
            };
            out.push_str(&format!("  {name:<36} {shown:>14} {unit}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("  ! {note}\n"));
        }
        out
    }

    /// The same, as JSON.
    pub fn json(&self) -> Value {
        let rows: serde_json::Map<String, Value> = self
            .rows
            .iter()
            .map(|(n, v, u)| (n.clone(), json!({ "value": v, "unit": u })))
            .collect();
        json!({ "scenario": self.scenario, "results": rows, "notes": self.notes })
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // /proc counts in USER_HZ, 100 a second on Linux.
    Some((utime + stime) / 100.0)
}

/// The CPU seconds used so far by every process in `pids` together (`None` if any is
/// unreadable, or if there are none).
pub fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| cpu_seconds(Some(*p))).sum()
}

/// A process's resident memory in bytes, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

impl Target {
    /// The server the `i`th connection goes to.
    pub fn addr_for(&self, i: usize) -> SocketAddr {
        match i % (self.also.len() + 1) {
            0 => self.addr,
            n => self.also[n - 1],
        }
    }
}

/// A TCP connection from `source` to `addr`.
async fn tcp_from(addr: SocketAddr, source: IpAddr) -> Result<tokio::net::TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// Connects one client from `source` to `addr` and waits for its welcome and its `joined`.
async fn connect(addr: SocketAddr, source: IpAddr) -> Result<Socket, String> {
    let tcp = tcp_from(addr, source).await?;
    let url = format!("ws://{addr}/ws?v=2");
    let (mut ws, _) =
        client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(crate::ws_config()))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    ws.send(Message::text(r#"{"type":"hello"}"#))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(text)) if text.starts_with(r#"{"type":"joined""#) => return Ok(ws),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Err("closed before joining".into())
}

/// A client on the SSE transport: the stream it reads, and the path it POSTs to.
pub(crate) struct SseReceiver {
    stream: crate::sse::EventStream,
    addr: SocketAddr,
    path: String,
}

/// Opens an SSE transport from `source` to `addr` (`POST /sse` with a `hello`, then its
/// stream) and reads up to its `joined`.
async fn connect_sse(addr: SocketAddr, source: IpAddr) -> Result<SseReceiver, String> {
    let authority = addr.to_string();
    let hello = br#"{"type":"hello"}"#;
    let opened = crate::sse::request_on(
        tcp_from(addr, source).await?,
        &authority,
        "POST",
        "/sse",
        hello,
    )
    .await
    .map_err(|e| format!("POST /sse: {e}"))?;
    let id = serde_json::from_str::<Value>(&opened.body)
        .ok()
        .and_then(|v| v["transport"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("POST /sse answered {}: {}", opened.status, opened.body))?;
    let path = format!("/sse/{id}");
    let tcp = tcp_from(addr, source).await?;
    let mut stream = crate::sse::EventStream::open_on(tcp, &authority, &path, None)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    loop {
        let event = stream.next().await.map_err(|e| format!("{path}: {e}"))?;
        if event.data.starts_with(r#"{"type":"joined""#) {
            return Ok(SseReceiver { stream, addr, path });
        }
    }
}

impl SseReceiver {
    /// Reads the stream to its end, `on_message` called with every `message`'s JSON; a
    /// heartbeat is answered with an empty POST, as a page's would be.
    pub(crate) async fn read(mut self, on_message: impl Fn(&str)) {
        let authority = self.addr.to_string();
        while let Ok(event) = self.stream.next().await {
            match event.event.as_str() {
                "message" if event.data.starts_with(r#"{"type":"message""#) => {
                    on_message(&event.data);
                }
                "ping" => {
                    let _ = crate::sse::request(&authority, "POST", &self.path, b"").await;
                }
                "close" => return,
                _ => {}
            }
        }
    }
}

/// Connects `n` clients, `in_flight` handshakes at a time; returns them with each
/// handshake's time and the wall time it all took.
async fn connect_all(
    target: &Target,
    n: usize,
) -> Result<(Vec<Socket>, Histogram<u64>, Duration), String> {
    connect_all_with(target, n, connect).await
}

/// [`connect_all`] with `connect` opening each client.
async fn connect_all_with<T, F, Fut>(
    target: &Target,
    n: usize,
    connect: F,
) -> Result<(Vec<T>, Histogram<u64>, Duration), String>
where
    T: Send + 'static,
    F: Fn(SocketAddr, IpAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(target.in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for i in 0..n {
        let gate = gate.clone();
        let source = target.sources[i % target.sources.len()];
        let connecting = connect(target.addr_for(i), source);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let t = Instant::now();
            let ws = connecting.await?;
            Ok::<_, String>((ws, t.elapsed()))
        });
    }
    let mut sockets = Vec::with_capacity(n);
    let mut handshakes = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut failures = 0;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((ws, took)) => {
                let _ = handshakes.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                sockets.push(ws);
            }
            Err(err) => {
                failures += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    if failures > 0 {
        return Err(format!(
            "{failures} of {n} clients could not connect (first: {})",
            first_error.unwrap_or_default()
        ));
    }
    Ok((sockets, handshakes, started.elapsed()))
}

fn percentiles(report: &mut Report, what: &str, h: &Histogram<u64>) {
    for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
        report.row(
            format!("{what} {label}"),
            h.value_at_quantile(q) as f64 / 1000.0,
            "ms",
        );
    }
    report.row(format!("{what} max"), h.max() as f64 / 1000.0, "ms");
}

/// Notes the generator's own CPU use over `wall`, and flags it when it was the limit.
fn own_cpu(report: &mut Report, cpu_before: Option<f64>, wall: Duration) {
    if let (Some(before), Some(after)) = (cpu_before, cpu_seconds(None)) {
        let busy = 100.0 * (after - before) / wall.as_secs_f64();
        report.row("load generator busy", busy, "% of a core");
        if busy > 90.0 {
            report.note(
                "the load generator was over 90% busy: it, not the server, may have been the limit",
            );
        }
    }
}

/// Reads every client's frames, counting `message`s (and, for senders, acks that free a
/// place in the window).
fn count_messages(ws: Socket, delivered: Arc<AtomicU64>, tasks: &mut JoinSet<()>) {
    let (_, mut stream) = ws.split();
    tasks.spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Text(text) = frame
                && text.starts_with(r#"{"type":"message""#)
            {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

/// The frame that sends `text` under `nonce`. Both are written straight into the frame, so a
/// caller's `format_args!` costs no allocation of its own.
fn send_frame(text: impl std::fmt::Display, nonce: impl std::fmt::Display) -> Message {
    Message::text(format!(
        r#"{{"type":"send","text":"{text}","nonce":"{nonce}"}}"#
    ))
}

/// Microseconds since `epoch`, the clock the benches stamp their lines with.
fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}
