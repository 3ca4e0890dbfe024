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
//!
//! The generator measures its own CPU too, and flags a run where it, not the server, was
//! the limit (its core over 90 % busy).

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

/// Connects one client from `source` to `addr` and waits for its welcome and its `joined`.
async fn connect(addr: SocketAddr, source: IpAddr) -> Result<Socket, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
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

/// Connects `n` clients, `in_flight` handshakes at a time; returns them with each
/// handshake's time and the wall time it all took.
async fn connect_all(
    target: &Target,
    n: usize,
) -> Result<(Vec<Socket>, Histogram<u64>, Duration), String> {
    let gate = Arc::new(Semaphore::new(target.in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for i in 0..n {
        let target = target.clone();
        let gate = gate.clone();
        let source = target.sources[i % target.sources.len()];
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let t = Instant::now();
            let ws = connect(target.addr_for(i), source).await?;
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

/// Send → delivery times, in µs, shared by every receiver of a `latency` run.
type Latencies = Arc<std::sync::Mutex<Histogram<u64>>>;

/// `latency`: `clients` in `general`; one sender sends `rate` lines a second for
/// `duration`, each carrying its send time; every client records send → delivery.
pub async fn latency(
    target: &Target,
    clients: usize,
    rate: u32,
    duration: Duration,
) -> Result<Report, String> {
    let mut report = Report::new("latency");
    let (mut sockets, _, _) = connect_all(target, clients + 1).await?;
    let epoch = Instant::now();
    let histogram = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new(3).map_err(|e| e.to_string())?,
    ));
    let mut tasks = JoinSet::new();
    let sender = sockets.pop().ok_or("no sender")?;
    for ws in sockets {
        time_deliveries(ws, epoch, histogram.clone(), &mut tasks);
    }
    let cpu_before = cpu_seconds(None);
    let started = Instant::now();
    let n = send_at_rate(sender, epoch, rate, started, duration, &mut tasks).await?;
    // The last lines' deliveries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wall = started.elapsed();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let histogram = histogram
        .lock()
        .map_err(|_| "a receiver panicked".to_owned())?
        .clone();
    report.row("clients", clients as f64, "");
    report.row("lines sent", n as f64, "");
    report.row("rate", f64::from(rate), "lines/s");
    report.row("deliveries measured", histogram.len() as f64, "");
    percentiles(&mut report, "send → delivery", &histogram);
    own_cpu(&mut report, cpu_before, wall);
    Ok(report)
}

/// Reads a `latency` client's frames, recording each `message`'s time since it was sent.
fn time_deliveries(ws: Socket, epoch: Instant, histogram: Latencies, tasks: &mut JoinSet<()>) {
    let (_, mut stream) = ws.split();
    tasks.spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            if !text.starts_with(r#"{"type":"message""#) {
                continue;
            }
            let Some(at) = sent_at(&text) else {
                continue;
            };
            let now = micros_since(epoch);
            if let Ok(mut all) = histogram.lock() {
                let _ = all.record(now.saturating_sub(at));
            }
        }
    });
}

/// When a `latency` line was sent: its text is `t<µs since the epoch>`.
fn sent_at(text: &str) -> Option<u64> {
    text.split(r#""text":"t"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse::<u64>().ok())
}

/// Sends `rate` lines a second from `sender` until `duration` after `started`, each
/// stamped with its send time; its acks are read (and dropped) by a task in `tasks`.
/// Returns how many lines were sent.
async fn send_at_rate(
    sender: Socket,
    epoch: Instant,
    rate: u32,
    started: Instant,
    duration: Duration,
    tasks: &mut JoinSet<()>,
) -> Result<u64, String> {
    let (mut sink, mut acks) = sender.split();
    tasks.spawn(async move { while let Some(Ok(_)) = acks.next().await {} });
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tick = tokio::time::interval(every);
    let mut n = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        n += 1;
        let at = epoch.elapsed().as_micros();
        let frame = send_frame(format_args!("t{at}"), format_args!("l{n}"));
        if sink.send(frame).await.is_err() {
            return Err("the sender's connection closed".into());
        }
    }
    Ok(n)
}

/// `idle`: opens `clients` connections (`in_flight` handshakes at a time), holds them, and
/// measures the server's memory per connection (`--server-pid`).
pub async fn idle(
    target: &Target,
    clients: usize,
    hold: Duration,
    server_pid: Option<u32>,
) -> Result<Report, String> {
    let mut report = Report::new("idle");
    let rss_before = server_pid.and_then(rss_bytes);
    let cpu_before = cpu_seconds(None);
    let (sockets, handshakes, took) = connect_all(target, clients).await?;
    report.row("connections", sockets.len() as f64, "");
    report.row("in flight", target.in_flight as f64, "handshakes");
    report.row("connects/s", clients as f64 / took.as_secs_f64(), "");
    percentiles(&mut report, "handshake", &handshakes);
    own_cpu(&mut report, cpu_before, took);
    // Let the server settle (greetings written, buffers released), then weigh it.
    tokio::time::sleep(hold).await;
    if let (Some(before), Some(after)) = (rss_before, server_pid.and_then(rss_bytes)) {
        report.row("server RSS", after / 1_048_576.0, "MiB");
        report.row(
            "server RSS per connection",
            (after - before) / clients as f64,
            "bytes",
        );
    }
    // Every connection still open after the hold.
    let mut open = 0u32;
    for mut ws in sockets {
        let alive = tokio::time::timeout(Duration::from_millis(1), ws.next())
            .await
            .map_or(true, |next| {
                matches!(
                    next,
                    Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))
                )
            });
        if alive {
            open += 1;
        }
    }
    report.row("still open after the hold", f64::from(open), "");
    if (open as usize) < clients {
        report.note(format!(
            "{} connections were dropped",
            clients - open as usize
        ));
    }
    Ok(report)
}

/// A storm client's session and what it has seen of `general`, kept in O(1): lines must
/// arrive in `seq` order, so a `seq` at or below the last one is a repeat, and one past the
/// next is a gap.
#[derive(Debug, Default)]
struct StormClient {
    token: String,
    id: String,
    last: u64,
    lines: u64,
    gaps: u64,
    repeats: u64,
    /// Reconnections answered with the latest page instead of the missed lines (the client
    /// was further behind than a greeting holds; the page loads older lines on demand).
    pages: u64,
}

/// A field's string value in a server frame (`"name":"value"`), without a full decode.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(r#""{name}":""#);
    let rest = &text[text.find(&key)? + key.len()..];
    rest.split('"').next()
}

/// A field's number value in a server frame (`"name":123`).
fn number(text: &str, name: &str) -> Option<u64> {
    let key = format!(r#""{name}":"#);
    let rest = &text[text.find(&key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl StormClient {
    /// Connects (resuming if it has a token, from the last `seq` seen) and reads until its
    /// `joined`; returns the socket and whether the session resumed with the same id.
    async fn connect(&mut self, target: &Target, source: IpAddr) -> Result<(Socket, bool), String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| e.to_string())?;
        let tcp = socket
            .connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let url = format!("ws://{}/ws?v=2", target.addr);
        let (mut ws, _) =
            client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(crate::ws_config()))
                .await
                .map_err(|e| e.to_string())?;
        let hello = if self.token.is_empty() {
            r#"{"type":"hello"}"#.to_owned()
        } else {
            format!(
                r#"{{"type":"hello","resume":"{}","rooms":{{"general":{}}}}}"#,
                self.token, self.last
            )
        };
        ws.send(Message::text(hello))
            .await
            .map_err(|e| e.to_string())?;
        let mut resumed = false;
        while let Some(frame) = ws.next().await {
            let Ok(Message::Text(text)) = frame else {
                return Err("closed before joining".into());
            };
            if text.starts_with(r#"{"type":"welcome""#) {
                let id = field(&text, "id").unwrap_or_default().to_owned();
                resumed = !self.id.is_empty() && id == self.id;
                self.id = id;
                if let Some(token) = field(&text, "resume") {
                    self.token = token.to_owned();
                }
            } else if text.starts_with(r#"{"type":"joined""#) {
                let exact = text.contains(r#""resumed":true"#);
                if !exact && self.lines > 0 {
                    // The latest page, not the missed lines: start over from it.
                    self.pages += 1;
                    self.lines = 0;
                }
                // The lines inside, each `{"room":…,"seq":…,…,"text":"…"}`.
                for line in text.split(r#"{"room":"#).skip(1) {
                    self.take(line);
                }
                return Ok((ws, resumed));
            }
        }
        Err("closed before joining".into())
    }

    /// One line (a `message`, or a line inside a `joined`).
    fn take(&mut self, line: &str) {
        let Some(seq) = number(line, "seq") else {
            return;
        };
        if self.lines > 0 && seq <= self.last {
            self.repeats += 1;
            return;
        }
        if self.lines > 0 && seq > self.last + 1 {
            self.gaps += seq - self.last - 1;
        }
        self.lines += 1;
        self.last = seq;
    }
}

/// Every line of `general`, oldest first, read by a new client (the latest page, then
/// `load_older` until there is no more).
async fn whole_history(target: &Target) -> Result<Vec<String>, String> {
    let mut reader = StormClient::default();
    let source = target.sources[0];
    let (mut ws, _) = reader.connect(target, source).await?;
    let mut pages: Vec<Vec<(u64, String)>> = Vec::new();
    let mut page = |text: &str| {
        let lines: Vec<(u64, String)> = text
            .split(r#"{"room":"#)
            .skip(1)
            .filter_map(|l| Some((number(l, "seq")?, field(l, "text")?.to_owned())))
            .collect();
        let oldest = lines.first().map(|(seq, _)| *seq);
        pages.push(lines);
        (oldest, text.contains(r#""has_more":true"#))
    };
    // The joined was read by connect: ask for it again by rejoining.
    ws.send(Message::text(r#"{"type":"join","room":"general"}"#))
        .await
        .map_err(|e| e.to_string())?;
    let mut next = None;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| "no history within 10 s".to_owned())?
    {
        let Ok(Message::Text(text)) = frame else {
            return Err("the history reader was closed".into());
        };
        let kind = if text.starts_with(r#"{"type":"joined""#) {
            "joined"
        } else if text.starts_with(r#"{"type":"older""#) {
            "older"
        } else {
            continue;
        };
        let (oldest, more) = page(&text);
        if kind == "joined" && next.is_some() {
            continue;
        }
        match (oldest, more) {
            (Some(oldest), true) => {
                next = Some(oldest);
                let ask = format!(r#"{{"type":"load_older","before":{oldest},"limit":500}}"#);
                ws.send(Message::text(ask))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            _ => break,
        }
    }
    let _ = ws.close(None).await;
    let mut lines: Vec<(u64, String)> = pages.into_iter().flatten().collect();
    lines.sort_by_key(|(seq, _)| *seq);
    lines.dedup_by_key(|(seq, _)| *seq);
    Ok(lines.into_iter().map(|(_, text)| text).collect())
}

/// What the storm's clients share with the tool.
#[derive(Default)]
struct StormState {
    connected: AtomicU64,
    resumed: AtomicU64,
    closed_by_server: AtomicU64,
    /// Microseconds after the restart at which the last client resumed.
    last_resume_us: AtomicU64,
    /// When the server was started again (µs after the epoch), once it was.
    restarted_us: AtomicU64,
}

/// The server a storm runs itself, so that it can kill it: `cmd` through `sh -c`.
struct StormServer {
    cmd: String,
    addr: SocketAddr,
    process: tokio::process::Child,
}

impl StormServer {
    /// Starts the server and waits until it listens on `addr`.
    async fn start(cmd: &str, addr: SocketAddr) -> Result<Self, String> {
        let process = Self::spawn(cmd)?;
        let server = StormServer {
            cmd: cmd.to_owned(),
            addr,
            process,
        };
        server.wait_up().await?;
        Ok(server)
    }

    /// Runs `cmd`; the process is killed if the storm ends early (dropped).
    fn spawn(cmd: &str) -> Result<tokio::process::Child, String> {
        tokio::process::Command::new("sh")
            .args(["-c", &format!("exec {cmd}")])
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start the server: {e}"))
    }

    /// Waits (10 s at most) until the server accepts connections.
    async fn wait_up(&self) -> Result<(), String> {
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("the server did not start listening".to_owned())
    }

    /// kill -9, and start it again at once; the restart's time goes in `restarted_us`
    /// (µs after `epoch`) before the server listens, so resumes are timed from it.
    async fn restart(&mut self, shared: &StormState, epoch: Instant) -> Result<(), String> {
        self.process.start_kill().map_err(|e| e.to_string())?;
        let _ = self.process.wait().await;
        self.process = Self::spawn(&self.cmd)?;
        shared
            .restarted_us
            .store(micros_since(epoch), Ordering::Relaxed);
        self.wait_up().await
    }

    /// Kills the server for good.
    async fn stop(mut self) {
        let _ = self.process.start_kill();
        let _ = self.process.wait().await;
    }
}

/// One storm client's task: it connects, reconnects and resumes through restarts, checks
/// what it reads, and (for a sender) sends a line every `send_every`, resending what was
/// not acked after a reconnection.
struct StormPeer {
    /// Which client this is, for unique nonces.
    index: usize,
    target: Target,
    source: IpAddr,
    /// Bounds the handshakes in flight, over every client.
    gate: Arc<Semaphore>,
    shared: Arc<StormState>,
    epoch: Instant,
    sender: bool,
    send_every: Duration,
    /// What this client has seen, published for the tool's checks after every frame.
    seen: Arc<std::sync::Mutex<StormClient>>,
    /// The nonces the server acked.
    acked: Arc<std::sync::Mutex<Vec<String>>>,
    session: StormClient,
    sent: u64,
    /// The nonces sent and not yet acked.
    pending: Vec<String>,
}

/// The sending half of a storm client's connection.
type StormSink = futures_util::stream::SplitSink<Socket, Message>;

impl StormPeer {
    /// Runs until aborted: connect, chat until the connection ends, again.
    async fn run(mut self) {
        // The page's reconnect backoff: full jitter, 250 ms doubling up to 4 s.
        let mut backoff = shared::session::Backoff::new(250, 4_000);
        let mut first = true;
        loop {
            let (ws, resumed) = self.reconnect(&mut backoff).await;
            self.count(first, resumed);
            first = false;
            self.chat(ws).await;
        }
    }

    /// Connects (one of the gate's handshakes at a time), waiting out the backoff after each
    /// failure; returns the socket and whether the session resumed with the same id.
    async fn reconnect(&mut self, backoff: &mut shared::session::Backoff) -> (Socket, bool) {
        loop {
            let permit = self.gate.clone().acquire_owned().await.ok();
            let result = self.session.connect(&self.target, self.source).await;
            drop(permit);
            match result {
                Ok(ok) => {
                    backoff.reset();
                    return ok;
                }
                Err(_) => {
                    let wait = backoff.next_delay_ms(crate::unit());
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
        }
    }

    /// Counts a connection: the first one, or a resume (and how long after the restart).
    fn count(&self, first: bool, resumed: bool) {
        if first {
            self.shared.connected.fetch_add(1, Ordering::Relaxed);
        } else if resumed {
            self.shared.resumed.fetch_add(1, Ordering::Relaxed);
            let restarted = self.shared.restarted_us.load(Ordering::Relaxed);
            let now = micros_since(self.epoch);
            if restarted > 0 {
                self.shared
                    .last_resume_us
                    .fetch_max(now.saturating_sub(restarted), Ordering::Relaxed);
            }
        }
    }

    /// Resends what was not acked, then reads (and sends, for a sender) until the
    /// connection ends.
    async fn chat(&mut self, ws: Socket) {
        let (mut sink, mut stream) = ws.split();
        // What was not acked goes again: the server appends each nonce once.
        for nonce in &self.pending {
            let _ = sink.send(send_frame(nonce, nonce)).await;
        }
        let mut tick = tokio::time::interval(self.send_every);
        loop {
            let open = tokio::select! {
                frame = stream.next() => self.on_frame(frame),
                _ = tick.tick(), if self.sender => self.send_next(&mut sink).await,
            };
            if !open {
                break;
            }
            self.publish();
        }
    }

    /// One frame: lines are checked, acks settle their nonce. `false` once the
    /// connection has ended.
    fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> bool {
        match frame {
            Some(Ok(Message::Text(text))) => {
                if text.starts_with(r#"{"type":"message""#) {
                    self.session.take(&text);
                } else if text.starts_with(r#"{"type":"ack""#)
                    && let Some(nonce) = field(&text, "nonce")
                {
                    self.pending.retain(|p| p != nonce);
                    if let Ok(mut acked) = self.acked.lock() {
                        acked.push(nonce.to_owned());
                    }
                }
                true
            }
            Some(Ok(Message::Close(frame))) => {
                if frame.is_some_and(|f| u16::from(f.code) == 1013) {
                    self.shared.closed_by_server.fetch_add(1, Ordering::Relaxed);
                }
                false
            }
            Some(Ok(_)) => true,
            Some(Err(_)) | None => false,
        }
    }

    /// Sends the next line, its nonce as its text; `false` when the connection is gone.
    async fn send_next(&mut self, sink: &mut StormSink) -> bool {
        self.sent += 1;
        let nonce = format!("s{}-{}", self.index, self.sent);
        self.pending.push(nonce.clone());
        sink.send(send_frame(&nonce, &nonce)).await.is_ok()
    }

    /// Publishes what this client has seen, for the tool's checks.
    fn publish(&self) {
        if let Ok(mut s) = self.seen.lock() {
            s.last = self.session.last;
            s.lines = self.session.lines;
            s.gaps = self.session.gaps;
            s.repeats = self.session.repeats;
            s.pages = self.session.pages;
        }
    }
}

/// The storm's clients, as the tool watches them.
struct Crowd {
    /// What each client has seen.
    seen: Vec<Arc<std::sync::Mutex<StormClient>>>,
    /// What each sender had acked.
    acked: Vec<Arc<std::sync::Mutex<Vec<String>>>>,
    tasks: JoinSet<()>,
}

impl Crowd {
    /// Starts `clients` clients, the first `senders` of them sending a line every
    /// `send_every`.
    fn spawn(
        target: &Target,
        clients: usize,
        senders: usize,
        send_every: Duration,
        shared: &Arc<StormState>,
        epoch: Instant,
    ) -> Self {
        let gate = Arc::new(Semaphore::new(target.in_flight.max(1)));
        let mut crowd = Crowd {
            seen: Vec::with_capacity(clients),
            acked: Vec::new(),
            tasks: JoinSet::new(),
        };
        for index in 0..clients {
            let sender = index < senders;
            let peer = StormPeer {
                index,
                target: target.clone(),
                source: target.sources[index % target.sources.len()],
                gate: gate.clone(),
                shared: shared.clone(),
                epoch,
                sender,
                send_every,
                seen: Arc::default(),
                acked: Arc::default(),
                session: StormClient::default(),
                sent: 0,
                pending: Vec::new(),
            };
            crowd.seen.push(peer.seen.clone());
            if sender {
                crowd.acked.push(peer.acked.clone());
            }
            crowd.tasks.spawn(peer.run());
        }
        crowd
    }

    /// Stops every client.
    async fn stop(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Every client's counts added up (lines, gaps, repeats, pages).
    fn seen(&self) -> StormClient {
        let mut all = StormClient::default();
        for seen in &self.seen {
            if let Ok(s) = seen.lock() {
                all.gaps += s.gaps;
                all.repeats += s.repeats;
                all.lines += s.lines;
                all.pages += s.pages;
            }
        }
        all
    }

    /// Every line the senders had acked.
    fn acked(&self) -> Vec<String> {
        self.acked
            .iter()
            .filter_map(|a| a.lock().ok().map(|a| a.clone()))
            .flatten()
            .collect()
    }
}

/// Polls `done` every `every` until it holds (`true`) or `within` has passed (`false`).
async fn poll_until(within: Duration, every: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// `storm`: `clients` connected to a server the tool runs itself (`server_cmd`, through
/// `sh -c`, so it can kill it); 10 of them send a line every `send_every` each. After `before`, the
/// server is killed with SIGKILL and started again; every client reconnects (backoff with
/// full jitter, as the page) and resumes, and senders resend what was not acked. Measures
/// the time from the restart until every client resumed with its id, and checks that no
/// client saw a gap or a line twice and that every acked line is in the history once.
pub async fn storm(
    target: &Target,
    clients: usize,
    server_cmd: &str,
    before: Duration,
    send_every: Duration,
) -> Result<Report, String> {
    let mut server = StormServer::start(server_cmd, target.addr).await?;
    let epoch = Instant::now();
    let shared = Arc::new(StormState::default());
    let senders = 10.min(clients.saturating_sub(1));
    let mut crowd = Crowd::spawn(target, clients, senders, send_every, &shared, epoch);
    let everyone = clients as u64;
    let connected = || shared.connected.load(Ordering::Relaxed) >= everyone;
    if !poll_until(
        Duration::from_secs(120),
        Duration::from_millis(50),
        connected,
    )
    .await
    {
        return Err("not every client connected within 120 s".into());
    }
    tokio::time::sleep(before).await;
    server.restart(&shared, epoch).await?;
    let resumed = || shared.resumed.load(Ordering::Relaxed) >= everyone;
    poll_until(Duration::from_secs(60), Duration::from_millis(20), resumed).await;
    // The senders go on a little: their resends and new lines must arrive too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    crowd.stop().await;
    let history = whole_history(target).await;
    server.stop().await;
    let check = HistoryCheck::new(&crowd.acked(), &history?);
    let mut report = Report::new("storm");
    report.row("clients", clients as f64, "");
    report.row(
        "lines sent per second, all senders",
        senders as f64 / send_every.as_secs_f64(),
        "",
    );
    storm_rows(&mut report, clients, &shared, &crowd.seen(), &check);
    Ok(report)
}

/// The history read after a storm, held against the lines the senders had acked.
struct HistoryCheck {
    acked: usize,
    /// Acked lines that are not in the history.
    lost: usize,
    /// Lines in the history more than once.
    twice: usize,
    /// Distinct lines in the history.
    distinct: usize,
}

impl HistoryCheck {
    /// Counts `acked` lines missing from `history`, and lines in it twice.
    fn new(acked: &[String], history: &[String]) -> Self {
        let observed: std::collections::HashMap<&str, usize> =
            history
                .iter()
                .fold(std::collections::HashMap::new(), |mut m, t| {
                    *m.entry(t.as_str()).or_default() += 1;
                    m
                });
        let lost = acked
            .iter()
            .filter(|n| !observed.contains_key(n.as_str()))
            .count();
        let twice = observed.values().filter(|&&n| n > 1).count();
        HistoryCheck {
            acked: acked.len(),
            lost,
            twice,
            distinct: observed.len(),
        }
    }
}

/// The storm's findings: resumes, what the history holds, what the clients saw; and a note
/// when a client did not resume or a line was lost or repeated.
fn storm_rows(
    report: &mut Report,
    clients: usize,
    shared: &StormState,
    seen: &StormClient,
    check: &HistoryCheck,
) {
    let resumed = shared.resumed.load(Ordering::Relaxed);
    report.row("resumed with the same id", resumed as f64, "");
    report.row(
        "every client resumed within",
        shared.last_resume_us.load(Ordering::Relaxed) as f64 / 1e6,
        "s of the restart",
    );
    report.row(
        "closed by the server (1013)",
        shared.closed_by_server.load(Ordering::Relaxed) as f64,
        "",
    );
    report.row("lines acked", check.acked as f64, "");
    report.row(
        "acked lines missing from the history",
        check.lost as f64,
        "",
    );
    report.row("lines in the history twice", check.twice as f64, "");
    report.row("lines in the history", check.distinct as f64, "");
    report.row("lines seen, all clients", seen.lines as f64, "");
    report.row(
        "resumes answered with the latest page",
        seen.pages as f64,
        "(too far behind; older lines on demand)",
    );
    report.row("gaps seen by clients", seen.gaps as f64, "lines");
    report.row("lines shown twice to a client", seen.repeats as f64, "");
    if resumed < clients as u64 {
        report.note(format!(
            "{} clients did not resume",
            clients as u64 - resumed
        ));
    }
    if check.lost + check.twice > 0 || seen.gaps + seen.repeats > 0 {
        report.note("LINES WERE LOST OR REPEATED");
    }
}
