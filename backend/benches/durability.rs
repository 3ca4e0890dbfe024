//! What durability costs: the real server (SQLite, `synchronous = FULL`) on loopback.
//!
//! 1. Throughput: 20 clients send as fast as acks allow (100 in flight each); prints durable
//!    lines per second and lines per group commit (= per fsync), and the same with `--memory`.
//! 2. Latency: 10 clients at 10 sends/s each (100/s in all) for 10 s; prints p50/p99/max
//!    time from `send` to its `ack` (`CHARLA_BENCH_MEMORY=1` for the in-memory store).
//! 3. Catch-up: a client misses 1,000 lines, then resumes; prints the time from starting to
//!    connect until it holds all 1,000.
//!
//! ```text
//! cargo bench -p backend --bench durability
//! ```

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use shared::{ClientMsg, ServerMsg, decode_server, encode};
use tokio::net::TcpStream;
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // CHARLA_BENCH=latency (or throughput, catch_up) runs one part alone.
    let only = std::env::var("CHARLA_BENCH").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only == name;
    runtime.block_on(async {
        if run("throughput") {
            throughput(false).await;
            throughput(true).await;
        }
        if run("latency") {
            latency().await;
        }
        if run("catch_up") {
            catch_up().await;
        }
    });
}

/// A server (in this process, via `testkit`) with limits out of the way; it runs until the
/// benchmark exits.
async fn start(memory: bool) -> (SocketAddr, std::path::PathBuf) {
    let config = backend::Config {
        store: if memory {
            backend::Store::Memory
        } else {
            backend::Store::Sqlite(testkit::fresh_data_dir())
        },
        // Every client also receives every line; do not let that backlog cut it off here.
        outbox_bytes: 1 << 30,
        // A resume replays at most this many lines: room for the catch-up's 1,000.
        welcome_lines: 1_000,
        ..testkit::for_load()
    };
    let server = testkit::TestServer::start_with(config).await;
    let started = (server.addr, server.data_dir.clone());
    std::mem::forget(server); // keep serving: the benchmark's process ends it
    started
}

fn send(text: String, nonce: String) -> Message {
    Message::text(encode(&ClientMsg::Send {
        room: None,
        text,
        nonce: Some(nonce),
    }))
}

async fn metric(addr: SocketAddr, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut body = String::new();
    let _ = tcp.read_to_string(&mut body).await;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0.0)
}

async fn throughput(memory: bool) {
    const CLIENTS: usize = 20;
    const LINES: usize = 2_500;
    const WINDOW: usize = 100;
    let (addr, _dir) = start(memory).await;
    let url = format!("ws://{addr}/ws");
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let url = url.clone();
            tokio::spawn(async move {
                let (ws, _) = connect_async(&url).await.expect("connect");
                let (mut tx, mut rx) = ws.split();
                let (mut sent, mut acked) = (0, 0);
                while acked < LINES {
                    while sent < LINES && sent - acked < WINDOW {
                        tx.feed(send(format!("{n}-{sent}"), format!("{n}-{sent}")))
                            .await
                            .expect("send");
                        sent += 1;
                    }
                    tx.flush().await.expect("flush");
                    while let Some(Ok(Message::Text(text))) = rx.next().await {
                        if let Ok(ServerMsg::Ack(_)) = decode_server(text.as_str()) {
                            acked += 1;
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    let secs = started.elapsed().as_secs_f64();
    let lines = (CLIENTS * LINES) as f64;
    let commits = metric(addr, "charla_commits_total").await.max(1.0);
    println!(
        "throughput ({}): {lines} lines from {CLIENTS} clients in {secs:.2} s = {:.0} lines/s acked; {:.1} lines per commit",
        store_label(memory),
        lines / secs,
        metric(addr, "charla_lines_committed_total").await / commits
    );
}

/// How the output names the store, so the throughput and latency lines read the same.
fn store_label(memory: bool) -> &'static str {
    if memory {
        "--memory"
    } else {
        "SQLite, synchronous=FULL"
    }
}

/// A client's connection, as `connect_async` returns it.
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// When each of a client's sends left, by nonce, so its ack can be timed: the writer notes
/// the time and the reader takes it out.
type SentAt = Arc<Mutex<HashMap<String, Instant>>>;

async fn latency() {
    const CLIENTS: usize = 10;
    let memory = std::env::var_os("CHARLA_BENCH_MEMORY").is_some();
    let (addr, _dir) = start(memory).await;
    let url = format!("ws://{addr}/ws");
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(time_acks(url.clone(), n)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    println!(
        "send→ack at 100 sends/s ({}): {} samples, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        store_label(memory),
        all.len(),
        pct(0.5),
        pct(0.99),
        all[all.len() - 1]
    );
}

/// How long the latency part runs: each client sends 10 lines a second for this long.
const LATENCY_SECS: u64 = 10;

/// One latency client: a writer sends 10 lines a second while this reads, returning the
/// milliseconds from each send to its ack.
async fn time_acks(url: String, n: usize) -> Vec<f64> {
    let (ws, _) = connect_async(&url).await.expect("connect");
    let (tx, mut rx) = ws.split();
    let sent_at = SentAt::default();
    let writer = tokio::spawn(send_ticking(tx, n, sent_at.clone()));
    let mut samples = Vec::new();
    while samples.len() < (LATENCY_SECS * 10) as usize {
        let Some(Ok(Message::Text(text))) = rx.next().await else {
            break;
        };
        if let Ok(ServerMsg::Ack(shared::server::Ack { nonce, .. })) = decode_server(text.as_str())
            && let Some(at) = sent_at.lock().expect("lock").remove(&nonce)
        {
            samples.push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }
    writer.await.expect("writer");
    samples
}

/// Sends one line every 100 ms, noting each one's time just before it goes, on its own
/// task so a slow ack never delays the next send.
async fn send_ticking(mut tx: SplitSink<Ws, Message>, n: usize, sent_at: SentAt) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for i in 0..LATENCY_SECS * 10 {
        tick.tick().await;
        let nonce = format!("{n}-{i}");
        sent_at
            .lock()
            .expect("lock")
            .insert(nonce.clone(), Instant::now());
        tx.send(send(format!("line {nonce}"), nonce))
            .await
            .expect("send");
    }
}

/// How many lines the catch-up's client misses while it is away.
const MISSED: usize = 1_000;

async fn catch_up() {
    let (addr, _dir) = start(false).await;
    let url = format!("ws://{addr}/ws");
    let (token, last_seq) = say_one_line_and_leave(&url).await;
    // Still connected while the first client resumes; it closes only when this returns.
    let _other = say_missed_lines(&url).await;
    // It comes back (v2: the token and its last seq in its hello): how long until it holds
    // every missed line?
    let started = Instant::now();
    // The resumed socket is returned, not dropped, so closing it stays out of the time.
    let (got, _ws) = resume(&url, token, last_seq).await;
    assert_eq!(got, MISSED);
    println!(
        "catch-up: a resuming client received {MISSED} missed lines in {:.2} ms (connect to last line)",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

/// A client connects, says one line, notes its resume token and last seq, and goes away:
/// what it needs to resume later.
async fn say_one_line_and_leave(url: &str) -> (String, u64) {
    let (mut ws, _) = connect_async(url).await.expect("connect");
    ws.send(send("the line before".into(), "b-1".into()))
        .await
        .expect("send");
    let mut token = String::new();
    let mut last_seq = 0;
    while last_seq == 0 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match decode_server(t.as_str()) {
                Ok(ServerMsg::Welcome(shared::server::Welcome { resume, .. })) => token = resume,
                Ok(ServerMsg::Message(line)) => last_seq = line.seq.0,
                _ => {}
            },
            other => panic!("expected frames, got {other:?}"),
        }
    }
    drop(ws);
    (token, last_seq)
}

/// Meanwhile another client says 1,000 lines and waits for every ack, so all of them are
/// stored before the first client comes back. Returns its socket, still open.
async fn say_missed_lines(url: &str) -> Ws {
    let (mut other, _) = connect_async(url).await.expect("connect");
    for i in 0..MISSED {
        other
            .feed(send(
                format!("missed line {i} {}", "x".repeat(80)),
                format!("o-{i}"),
            ))
            .await
            .expect("send");
    }
    other.flush().await.expect("flush");
    let mut acks = 0;
    while acks < MISSED {
        if let Some(Ok(Message::Text(t))) = other.next().await
            && let Ok(ServerMsg::Ack(_)) = decode_server(t.as_str())
        {
            acks += 1;
        }
    }
    other
}

/// The timed part of the catch-up: resumes with the token and last seq and reads until the
/// joined that carries the missed lines. Returns how many it carried, and the socket, so
/// closing it stays out of the time.
async fn resume(url: &str, token: String, last_seq: u64) -> (usize, Ws) {
    let (mut ws, _) = connect_async(format!("{url}?v=2")).await.expect("resume");
    let hello = ClientMsg::Hello {
        resume: Some(token),
        rooms: Some([("general".to_owned(), shared::Seq(last_seq))].into()),
        name: None,
        token: None,
    };
    ws.send(Message::text(encode(&hello))).await.expect("hello");
    let mut got = 0;
    while got == 0 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match decode_server(t.as_str()) {
                Ok(ServerMsg::Welcome(shared::server::Welcome { resumed, .. })) => assert!(resumed),
                Ok(ServerMsg::Joined(shared::server::Joined { lines, resumed, .. })) => {
                    assert!(resumed);
                    got = lines.len();
                }
                other => panic!("expected welcome and joined, got {other:?}"),
            },
            other => panic!("expected welcome and joined, got {other:?}"),
        }
    }
    (got, ws)
}
