//! Slow consumers: does a client that never reads cost the server memory, or slow down
//! everyone else?
//!
//! Runs the real server in a child process (the `backend` binary, through testkit's
//! [`ServerProcess`](testkit::ServerProcess)) so its memory can
//! be read from `/proc`, connects N clients, makes some of them never read, and has a tenth of
//! the healthy ones send lines at 10/s each (the default per-connection limit). Every healthy
//! client measures how long each line took to reach it. Prints server RSS (start, peak, end),
//! p50/p99/max delivery latency, and the server's slow-consumer closes.
//!
//! ```text
//! cargo bench -p backend --bench slow_consumers            # 200 clients, 20 s per scenario
//! CHARLA_BENCH_SENDERS=40 CHARLA_BENCH_LINE_BYTES=1800 CHARLA_BENCH_SECS=30 \
//!     cargo bench -p backend --bench slow_consumers        # enough traffic to fill a stuck client
//! ```

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use shared::{ClientMsg, ServerMsg, decode_server, encode};
use tokio::{
    net::TcpStream,
    sync::{Mutex, watch},
};
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clients = env_or("CHARLA_BENCH_CLIENTS", 200) as usize;
    let secs = env_or("CHARLA_BENCH_SECS", 20);
    let line_bytes = env_or("CHARLA_BENCH_LINE_BYTES", 1024) as usize;
    runtime.block_on(async {
        for stuck in [0, clients.div_ceil(100)] {
            scenario(clients, stuck, secs, line_bytes).await;
        }
    });
}

/// The real server as its own process, with the limits out of the way (all clients come
/// from one address) and SQLite in a fresh directory, so every run starts with an empty
/// history.
async fn start_server() -> (testkit::ServerProcess, std::path::PathBuf) {
    let data_dir = testkit::fresh_data_dir();
    let dir = data_dir.to_str().expect("a UTF-8 temporary directory");
    let args = [
        "--data-dir",
        dir,
        "--max-connections",
        "100000",
        "--max-connections-per-ip",
        "100000",
        "--max-tcp-per-ip",
        "100000",
        "--resumes-per-min",
        "1000000",
    ];
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_backend"));
    (testkit::ServerProcess::start(bin, &args).await, data_dir)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// One scenario's shape, computed before any client connects, so the header line and the
/// clients agree on how many send and how much.
struct Setup {
    clients: usize,
    stuck: usize,
    senders: usize,
    secs: u64,
    line_bytes: usize,
}

/// What every healthy client needs to send and time lines: the shared clock that the send
/// time in each line is written and read against, and how long a line is.
#[derive(Clone, Copy)]
struct Traffic {
    base: Instant,
    line_bytes: usize,
}

/// Server RSS in KiB when the traffic starts, at its highest while it runs, and once every
/// client has finished, which together show whether a stuck client makes memory grow.
struct Rss {
    start: u64,
    peak: u64,
    end: u64,
}

/// A healthy client's connection, as `connect_async` returns it.
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn scenario(clients: usize, stuck: usize, secs: u64, line_bytes: usize) {
    let (server, data_dir) = start_server().await;
    let (pid, addr) = (server.pid(), server.addr);
    let url = format!("ws://{addr}/ws");

    let base = Instant::now();
    if debug() {
        println!("  (debug) RSS before any client: {} KiB", rss_kib(pid));
    }
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let healthy = clients - stuck;
    let senders =
        (env_or("CHARLA_BENCH_SENDERS", (healthy / 10) as u64) as usize).clamp(1, healthy);
    let setup = Setup {
        clients,
        stuck,
        senders,
        secs,
        line_bytes,
    };
    let stuck_sockets = connect_stuck(addr, &url, stuck).await;
    let traffic = Traffic { base, line_bytes };
    let mut tasks = Vec::new();
    // Nobody sends until everyone is connected: the numbers are for the steady state, not
    // for welcomes carrying a history that grows while clients still join.
    let (go, ready) = tokio::sync::watch::channel(None::<Instant>);
    for n in 0..healthy {
        let (ws, _) = connect_async(&url).await.expect("connect");
        let client = healthy_client(ws, n < senders, traffic, ready.clone(), latencies.clone());
        tasks.push(tokio::spawn(client));
    }
    if debug() {
        println!(
            "  (debug) RSS with every client connected: {} KiB",
            rss_kib(pid)
        );
    }
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let _ = go.send(Some(stop_at));
    let (start, peak) = sample_rss(pid, stop_at).await;
    for task in tasks {
        let _ = task.await;
    }
    let end = rss_kib(pid);
    let metrics = get_metrics(addr).await;
    drop(stuck_sockets);
    drop(server);
    let _ = std::fs::remove_dir_all(data_dir);

    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    print_results(&setup, &Rss { start, peak, end }, &l, &metrics);
}

/// Whether to print the extra RSS readings and the whole /metrics page, which help explain
/// a surprising number but would clutter the lines docs/BENCHMARKS.md quotes.
fn debug() -> bool {
    std::env::var_os("CHARLA_BENCH_DEBUG").is_some()
}

/// Connects the clients that never read again, so the server's writes pile up for them. A
/// small receive buffer (16 KiB) stands for a stuck phone, not a loopback socket that the
/// kernel lets swallow megabytes.
async fn connect_stuck(
    addr: SocketAddr,
    url: &str,
    stuck: usize,
) -> Vec<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let mut stuck_sockets = Vec::new();
    for _ in 0..stuck {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
        let tcp = socket.connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(url, tcp)
            .await
            .expect("handshake");
        stuck_sockets.push(ws);
    }
    stuck_sockets
}

/// One healthy client: it reads and times every line until its writer is done, then adds
/// its samples to the shared list, so one lock is taken per client, not per line.
async fn healthy_client(
    ws: Ws,
    sends: bool,
    traffic: Traffic,
    mut ready: watch::Receiver<Option<Instant>>,
    latencies: Arc<Mutex<Vec<f64>>>,
) {
    let (mut tx, mut rx) = ws.split();
    let mut mine = Vec::new();
    tokio::select! {
        () = record_latencies(&mut rx, traffic.base, &mut mine) => {},
        () = write_lines(&mut tx, sends, traffic, &mut ready) => {},
    }
    latencies.lock().await.extend(mine);
}

/// Reads lines until the connection ends, noting how long each took to arrive: every line
/// starts with the milliseconds since `base` at which it was sent.
async fn record_latencies(rx: &mut SplitStream<Ws>, base: Instant, mine: &mut Vec<f64>) {
    while let Some(Ok(Message::Text(text))) = rx.next().await {
        if let Ok(ServerMsg::Message(line)) = decode_server(text.as_str())
            && let Some(sent) = line
                .text
                .split(' ')
                .next()
                .and_then(|t| t.parse::<f64>().ok())
        {
            mine.push(base.elapsed().as_secs_f64() * 1000.0 - sent);
        }
    }
}

/// Waits for the go, then sends 10 lines a second until the stop time if this client is a
/// sender (or just waits if not), and gives the last lines time to arrive before the
/// client stops reading.
async fn write_lines(
    tx: &mut SplitSink<Ws, Message>,
    sends: bool,
    traffic: Traffic,
    ready: &mut watch::Receiver<Option<Instant>>,
) {
    let stop_at = match ready.wait_for(Option::is_some).await {
        Ok(stop_at) => stop_at.unwrap_or_else(Instant::now),
        Err(_) => return,
    };
    if sends {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let pad = "x".repeat(traffic.line_bytes);
        while Instant::now() < stop_at {
            tick.tick().await;
            let text = format!("{:.3} {pad}", traffic.base.elapsed().as_secs_f64() * 1000.0);
            let frame = encode(&ClientMsg::Send {
                room: None,
                text,
                nonce: None,
            });
            if tx.send(Message::text(frame)).await.is_err() {
                break;
            }
        }
    } else {
        tokio::time::sleep_until(stop_at.into()).await;
    }
    // Let the last lines arrive, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Reads the server's RSS now and every 250 ms until `stop_at`, returning the first reading
/// and the highest, since a backlog that grows shows up as a peak, not at the end.
async fn sample_rss(pid: u32, stop_at: Instant) -> (u64, u64) {
    let start_rss = rss_kib(pid);
    let mut peak_rss = start_rss;
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(rss_kib(pid));
    }
    (start_rss, peak_rss)
}

/// The value of `charla_closes_total` for one reason, as the page writes it ("0" if the
/// server never closed a connection for it and so has no such line).
fn closes(metrics: &str, reason: &str) -> String {
    let prefix = format!("charla_closes_total{{reason=\"{reason}\"}}");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("0")
        .to_owned()
}

/// The sample at fraction `p` of the sorted list (NaN when there are none, so an empty run
/// prints as such instead of panicking).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Prints one scenario's lines, in the format docs/BENCHMARKS.md quotes.
fn print_results(setup: &Setup, rss: &Rss, l: &[f64], metrics: &str) {
    let Setup {
        clients,
        stuck,
        senders,
        secs,
        line_bytes,
    } = setup;
    println!(
        "{clients} clients, {stuck} never reading; {senders} senders x 10 lines/s of {line_bytes} B for {secs} s"
    );
    println!(
        "  server RSS: start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
        rss.start as f64 / 1024.0,
        rss.peak as f64 / 1024.0,
        rss.end as f64 / 1024.0
    );
    println!(
        "  delivery to healthy clients ({} samples): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.len(),
        percentile(l, 0.50),
        percentile(l, 0.99),
        l.last().copied().unwrap_or(f64::NAN)
    );
    if debug() {
        println!("{metrics}");
    }
    println!(
        "  closed by the server: {} slow consumers, {} silent (heartbeat)",
        closes(metrics, "slow_consumer"),
        closes(metrics, "heartbeat")
    );
}

/// GET /metrics with a bare HTTP/1.1 request (no HTTP client dependency needed).
async fn get_metrics(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = tcp.read_to_string(&mut body).await;
    body
}
