//! `cargo bench -p backend --bench join_storm`: N clients (default 5,000; `CHARLA_BENCH_CLIENTS`)
//! join one room at once, 64 handshakes in flight. Prints the total join time (first connect
//! to the last client seeing everyone) and the frames each client received: presence is
//! coalesced (at most 4 a second per room), so a storm of N joins costs O(N) frames per
//! client-second, not O(N) per join. Needs `ulimit -n` above 2 × N (server and clients share
//! this process). Asserts nothing about speed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use backend::Config;
use futures_util::{SinkExt, StreamExt};
use shared::{ClientMsg, ServerMsg, decode_server, encode};
use testkit::TestServer;
use tokio::{
    net::TcpStream,
    sync::{Barrier, Semaphore},
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, Utf8Bytes},
};

/// A client's connection, as `connect_async` returns it.
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// What one client reports once it has seen everyone: its frames and bytes received, when
/// it saw the last presence, and its socket, kept open until every client is done so no
/// close shows up in anyone's presence.
type Seen = (usize, usize, Instant, Ws);

#[tokio::main]
async fn main() {
    let clients: usize = std::env::var("CHARLA_BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let server = TestServer::start_with(Config {
        store: backend::Store::Memory,
        ..testkit::for_load()
    })
    .await;
    let url = format!("{}?v=2", server.ws_url());
    let in_flight = Arc::new(Semaphore::new(64));
    let all_joined = Arc::new(Barrier::new(clients + 1));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (url, in_flight, all_joined) = (url.clone(), in_flight.clone(), all_joined.clone());
        tasks.push(tokio::spawn(join(url, clients, in_flight, all_joined)));
    }
    all_joined.wait().await;
    let handshakes_done = started.elapsed();
    let mut per_client = Vec::with_capacity(clients);
    let mut last_seen = started;
    let mut sockets = Vec::with_capacity(clients);
    for task in tasks {
        let (frames, bytes, at, ws) = task.await.expect("client");
        per_client.push((frames, bytes));
        last_seen = last_seen.max(at);
        sockets.push(ws);
    }
    let total = last_seen.duration_since(started);
    print_summary(clients, handshakes_done, total, per_client);
    drop(sockets);
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One client of the storm: it joins the room (at most 64 handshakes at once, so the storm
/// measures the server and not the listen backlog), waits for every other client's joined,
/// then reads until presence says everyone is in.
async fn join(
    url: String,
    clients: usize,
    in_flight: Arc<Semaphore>,
    all_joined: Arc<Barrier>,
) -> Seen {
    let permit = in_flight.acquire_owned().await.expect("semaphore");
    let (ws, _) = connect_async(&url).await.expect("connect");
    let mut ws = Counted {
        ws,
        frames: 0,
        bytes: 0,
    };
    let hello = ClientMsg::Hello {
        resume: None,
        rooms: Some([("storm".to_owned(), shared::Seq(0))].into()),
        name: None,
        token: None,
    };
    ws.ws
        .send(Message::text(encode(&hello)))
        .await
        .expect("hello");
    // Until its joined arrives.
    loop {
        let t = ws.next_text("closed before joined").await;
        if let Ok(ServerMsg::Joined(_)) = decode_server(t.as_str()) {
            break;
        }
    }
    drop(permit);
    all_joined.wait().await;
    // Then until presence says everyone is in.
    let mut online = 0;
    while online < clients {
        let t = ws.next_text("closed before everyone joined").await;
        if let Ok(ServerMsg::Presence(shared::server::Presence { online: n, .. })) =
            decode_server(t.as_str())
        {
            online = n as usize;
        }
    }
    (ws.frames, ws.bytes, Instant::now(), ws.ws)
}

/// A client's socket with a count of the frames and bytes it has received, which is what
/// the storm reports: both loops in `join` read through it so neither can forget to count.
struct Counted {
    ws: Ws,
    frames: usize,
    bytes: usize,
}

impl Counted {
    /// The next text frame, counted. Anything else (a close, an error, another kind of
    /// frame) is not what a storm client expects, and the benchmark cannot go on from it.
    async fn next_text(&mut self, closed: &str) -> Utf8Bytes {
        let Some(Ok(Message::Text(t))) = self.ws.next().await else {
            panic!("{closed}");
        };
        self.frames += 1;
        self.bytes += t.len();
        t
    }
}

/// Prints the storm's lines, in the format docs/BENCHMARKS.md quotes.
fn print_summary(
    clients: usize,
    handshakes_done: Duration,
    total: Duration,
    mut per_client: Vec<(usize, usize)>,
) {
    per_client.sort_unstable();
    let frames: Vec<usize> = per_client.iter().map(|(f, _)| *f).collect();
    let sum: usize = frames.iter().sum();
    let bytes: usize = per_client.iter().map(|(_, b)| *b).sum();
    println!(
        "join storm: {clients} clients into one room, 64 handshakes in flight\n  \
         every joined received after {:.2} s; every client saw online = {clients} after {:.2} s\n  \
         frames received per client (joined + presence): min {}, median {}, max {}; \
         {sum} frames, {:.1} MB in all",
        handshakes_done.as_secs_f64(),
        total.as_secs_f64(),
        frames[0],
        frames[frames.len() / 2],
        frames[frames.len() - 1],
        bytes as f64 / 1e6,
    );
}
