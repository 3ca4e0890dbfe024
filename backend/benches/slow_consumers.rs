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

use futures_util::{SinkExt, StreamExt};
use shared::{ClientMsg, ServerMsg, decode_server, encode};
use tokio::sync::Mutex;
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

async fn scenario(clients: usize, stuck: usize, secs: u64, line_bytes: usize) {
    let (server, data_dir) = start_server().await;
    let (pid, addr) = (server.pid(), server.addr);
    let url = format!("ws://{addr}/ws");

    let base = Instant::now();
    if std::env::var_os("CHARLA_BENCH_DEBUG").is_some() {
        println!("  (debug) RSS before any client: {} KiB", rss_kib(pid));
    }
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let healthy = clients - stuck;
    let senders =
        (env_or("CHARLA_BENCH_SENDERS", (healthy / 10) as u64) as usize).clamp(1, healthy);
    let mut stuck_sockets = Vec::new();
    for _ in 0..stuck {
        // Connected, and never read again: the server's writes pile up for it. A small
        // receive buffer (16 KiB) stands for a stuck phone, not a loopback socket that the
        // kernel lets swallow megabytes.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
        let tcp = socket.connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
            .await
            .expect("handshake");
        stuck_sockets.push(ws);
    }
    let mut tasks = Vec::new();
    // Nobody sends until everyone is connected: the numbers are for the steady state, not
    // for welcomes carrying a history that grows while clients still join.
    let (go, ready) = tokio::sync::watch::channel(None::<Instant>);
    for n in 0..healthy {
        let (ws, _) = connect_async(&url).await.expect("connect");
        let (mut tx, mut rx) = ws.split();
        let latencies = latencies.clone();
        let mut ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let reader = async {
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
            };
            let writer = async {
                let stop_at = match ready.wait_for(Option::is_some).await {
                    Ok(stop_at) => stop_at.unwrap_or_else(Instant::now),
                    Err(_) => return,
                };
                if n < senders {
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    let pad = "x".repeat(line_bytes);
                    while Instant::now() < stop_at {
                        tick.tick().await;
                        let text = format!("{:.3} {pad}", base.elapsed().as_secs_f64() * 1000.0);
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
            };
            tokio::select! {
                () = reader => {},
                () = writer => {},
            }
            latencies.lock().await.extend(mine);
        }));
    }
    if std::env::var_os("CHARLA_BENCH_DEBUG").is_some() {
        println!(
            "  (debug) RSS with every client connected: {} KiB",
            rss_kib(pid)
        );
    }
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let _ = go.send(Some(stop_at));
    let start_rss = rss_kib(pid);
    let mut peak_rss = start_rss;
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(rss_kib(pid));
    }
    for task in tasks {
        let _ = task.await;
    }
    let end_rss = rss_kib(pid);
    let metrics = get_metrics(addr).await;
    let closes = |reason: &str| {
        let prefix = format!("charla_closes_total{{reason=\"{reason}\"}}");
        metrics
            .lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or("0")
            .to_owned()
    };
    drop(stuck_sockets);
    drop(server);
    let _ = std::fs::remove_dir_all(data_dir);

    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{clients} clients, {stuck} never reading; {senders} senders x 10 lines/s of {line_bytes} B for {secs} s"
    );
    println!(
        "  server RSS: start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
        start_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        end_rss as f64 / 1024.0
    );
    println!(
        "  delivery to healthy clients ({} samples): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.len(),
        pct(0.50),
        pct(0.99),
        l.last().copied().unwrap_or(f64::NAN)
    );
    if std::env::var_os("CHARLA_BENCH_DEBUG").is_some() {
        println!("{metrics}");
    }
    println!(
        "  closed by the server: {} slow consumers, {} silent (heartbeat)",
        closes("slow_consumer"),
        closes("heartbeat")
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
