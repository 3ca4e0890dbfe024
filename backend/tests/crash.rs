//! The promise, under fire: a line that was acknowledged is never lost and no line is shown
//! twice, across kill -9, SIGTERM and a cut connection. The server runs as a child process
//! (the real binary) where a process must die.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use testkit::{
    Client, ServerProcess, SessionClient, TIMEOUT, TestServer, assert_gapless_once, fresh_data_dir,
};
use tokio::sync::{Notify, mpsc, watch};

/// The real `backend` binary over `data_dir`.
struct Backend;

impl Backend {
    /// Rate limits out of the way and queues big enough that every client gets its whole
    /// history in one greeting (these tests are about durability).
    async fn start(data_dir: &Path) -> ServerProcess {
        let dir = data_dir.to_str().expect("a UTF-8 path");
        let args = [
            "--data-dir",
            dir,
            "--dist",
            "no-page-needed",
            "--outbox-bytes",
            "67108864",
        ];
        ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_backend")), &args).await
    }

    /// Serving the files in `dist`, with the default queue sizes.
    async fn start_serving(data_dir: &Path, dist: &Path) -> ServerProcess {
        let dir = data_dir.to_str().expect("a UTF-8 path");
        let dist = dist.to_str().expect("a UTF-8 path");
        let args = ["--data-dir", dir, "--dist", dist];
        ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_backend")), &args).await
    }
}

/// The final history, as a newcomer gets it.
async fn history(url: &str) -> Vec<shared::ChatLine> {
    Client::connect(url).await.history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acked_line_and_repeats_none() {
    const CLIENTS: usize = 5;
    const LINES: usize = 200;
    let dir = fresh_data_dir();
    let mut server = Backend::start(&dir).await;
    let (url_tx, url_rx) = watch::channel(server.ws_url());
    let (target_tx, target_rx) = watch::channel(0usize);
    let (done_tx, mut done_rx) = mpsc::channel(CLIENTS);
    let acked_total = Arc::new(AtomicUsize::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (url_rx, mut target_rx, done_tx, acked_total) = (
                url_rx.clone(),
                target_rx.clone(),
                done_tx.clone(),
                acked_total.clone(),
            );
            tokio::spawn(async move {
                let mut c = SessionClient::new(&format!("c{n}"));
                let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
                let mut next = 0;
                // Phase 1: send every line, keeping up to 20 unacked, resending after drops.
                loop {
                    assert!(tokio::time::Instant::now() < deadline, "client {n} stuck");
                    if !c.is_connected() {
                        let url = url_rx.borrow().clone();
                        if !c.connect(&url).await {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                    while next < LINES && c.session.pending().len() < 20 {
                        c.send(&format!("c{n}-{next}")).await;
                        next += 1;
                    }
                    if next == LINES && c.session.pending().is_empty() {
                        break;
                    }
                    let before = c.acked.len();
                    c.pump(Duration::from_millis(50)).await;
                    acked_total.fetch_add(c.acked.len() - before, Ordering::Relaxed);
                }
                done_tx.send(n).await.expect("report done");
                // Phase 2: read until holding the whole final history.
                let target = *target_rx.wait_for(|t| *t > 0).await.expect("target");
                while c.general().len() < target {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "client {n} never caught up"
                    );
                    if !c.is_connected() {
                        let url = url_rx.borrow().clone();
                        c.connect(&url).await;
                    }
                    c.pump(Duration::from_millis(50)).await;
                }
                c
            })
        })
        .collect();

    // Mid-stream: once 300 of the 1,000 lines are acknowledged, kill -9 the server.
    tokio::time::timeout(Duration::from_secs(60), async {
        while acked_total.load(Ordering::Relaxed) < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("300 acks in time");
    server.signal("KILL");
    server.wait_exit(TIMEOUT).await;
    let acked_at_kill = acked_total.load(Ordering::Relaxed);
    assert!(acked_at_kill < CLIENTS * LINES, "the kill came mid-stream");
    let server = Backend::start(&dir).await;
    url_tx.send(server.ws_url()).expect("tell the clients");

    for _ in 0..CLIENTS {
        tokio::time::timeout(Duration::from_secs(90), done_rx.recv())
            .await
            .expect("every client finished sending")
            .expect("done");
    }
    let final_history = history(&server.ws_url()).await;
    target_tx.send(final_history.len()).expect("target");
    assert_eq!(final_history.len(), CLIENTS * LINES, "every line, once");
    assert_gapless_once(&final_history);
    for client in clients {
        let c = client.await.expect("client task");
        // Every acknowledged line is where its ack said, with its nonce.
        for (nonce, seq) in &c.acked {
            let line = &final_history[usize::try_from(*seq).expect("seq") - 1];
            assert_eq!(line.nonce.as_ref(), Some(nonce));
        }
        assert_eq!(
            c.general(),
            final_history,
            "every client holds the same sequence"
        );
    }
    eprintln!(
        "kill -9 after {acked_at_kill} acks; all {} lines kept once",
        CLIENTS * LINES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_clients_with_1001_and_keeps_every_acked_line() {
    let dir = fresh_data_dir();
    let mut server = Backend::start(&dir).await;
    let mut watcher = Client::connect(&server.ws_url()).await;
    let mut sender = SessionClient::new("s");
    assert!(sender.connect(&server.ws_url()).await);
    for i in 0..50 {
        sender.send(&format!("line {i}")).await;
    }
    // Terminate while the lines are still being acknowledged.
    while sender.acked.len() < 10 {
        sender.pump(Duration::from_millis(50)).await;
    }
    server.signal("TERM");
    let close = watcher.recv_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    while sender.is_connected() {
        sender.pump(Duration::from_millis(50)).await;
    }
    let status = server.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "a clean exit within 5 s: {status}");

    let server = Backend::start(&dir).await;
    let kept = history(&server.ws_url()).await;
    assert_gapless_once(&kept);
    assert!(sender.acked.len() >= 10);
    for (nonce, seq) in &sender.acked {
        let line = &kept[usize::try_from(*seq).expect("seq") - 1];
        assert_eq!(
            line.nonce.as_ref(),
            Some(nonce),
            "acked line {seq} was kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_5_s_even_while_a_client_reads_a_file_one_byte_at_a_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = fresh_data_dir();
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).expect("mkdir");
    std::fs::write(dist.join("index.html"), "<!doctype html><title>t</title>").expect("write");
    std::fs::write(dist.join("big.bin"), vec![7u8; 64 << 20]).expect("write a 64 MiB file");
    let mut server = Backend::start_serving(&dir, &dist).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut byte = [0u8; 1];
    slow.read_exact(&mut byte)
        .await
        .expect("the download started");
    // Then one byte at a time, slowly: the response could take days.
    let trickle = tokio::spawn(async move {
        loop {
            if slow.read(&mut byte).await.map_or(true, |n| n == 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let watcher = Client::connect(&server.ws_url()).await;
    let started = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(status.success(), "a clean exit: {status}");
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    trickle.abort();
    drop(watcher);
}

/// The server process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_resumers_that_never_read_keep_the_servers_memory_bounded() {
    const LINES: usize = 1_000;
    const STUCK: usize = 100;
    // The bound stated in docs/GUARANTEES.md: each stuck client costs at most its greeting
    // (an eighth of --outbox-bytes, 128 KiB, assembled once by its writer, and the copy in its
    // socket's write buffer) and the pointers
    // in its queue; the lines themselves are shared.
    const BOUND_KIB: u64 = 40 * 1024;
    let dir = fresh_data_dir();
    let server = Backend::start_serving(&dir, Path::new("no-page-needed")).await;
    let pid = server.child.id().expect("pid");
    // A 1.9 MB history: 1,000 lines of 1,900 characters.
    let mut filler = Client::connect(&server.ws_url()).await;
    let body = "x".repeat(1_900);
    for window in 0..LINES / 50 {
        for i in window * 50..(window + 1) * 50 {
            filler
                .send_with_nonce(&format!("{i} {body}"), &format!("f-{i}"))
                .await;
        }
        filler
            .recv_ack_of(&format!("f-{}", (window + 1) * 50 - 1))
            .await;
    }
    let before = rss_kib(pid);
    // A hundred clients resume from far behind (their replay would be the whole history)
    // and never read a byte.
    use futures_util::SinkExt as _;
    let mut stuck = Vec::new();
    for _ in 0..STUCK {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?v=2", server.ws_url()))
            .await
            .expect("connect");
        let hello = shared::ClientMsg::Hello {
            resume: None,
            rooms: Some([("general".to_owned(), shared::Seq(1))].into()),
            name: None,
            token: None,
        };
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            shared::encode(&hello),
        ))
        .await
        .expect("hello");
        stuck.push(ws);
    }
    // Everyone keeps talking meanwhile: their queues fill to the limit, no further.
    for i in 0..200 {
        filler
            .send_with_nonce(&format!("more {i} {body}"), &format!("m-{i}"))
            .await;
        filler.recv_ack_of(&format!("m-{i}")).await;
    }
    let (_, metrics) = testkit::get(server.addr, "/metrics").await;
    assert!(metrics.contains("charla_connections "), "{metrics}");
    let after = rss_kib(pid);
    let growth = after.saturating_sub(before);
    eprintln!(
        "server RSS {before} KiB with the history, {after} KiB with {STUCK} stuck resumers: \
         +{growth} KiB ({} KiB each)",
        growth / STUCK as u64
    );
    assert!(growth < BOUND_KIB, "grew by {growth} KiB");
    drop(stuck);
}

/// A server reached through [`cutting_proxy`] (it answers to the proxy's address), the
/// proxy's address, and the switch that cuts every connection through it.
async fn server_behind_a_cutting_proxy() -> (TestServer, SocketAddr, Arc<Notify>) {
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_addr = proxy_listener.local_addr().expect("addr");
    let server = TestServer::start_with(backend::Config {
        allow_hosts: vec![proxy_addr.to_string()],
        ..testkit::unlimited()
    })
    .await;
    let (proxy, cut) = cutting_proxy(proxy_listener, server.addr).await;
    (server, proxy, cut)
}

/// A TCP proxy on `listener` that can cut every connection through it at once. (It passes
/// `Host` through untouched: the server must be told it answers to the proxy's address.)
async fn cutting_proxy(
    listener: tokio::net::TcpListener,
    target: SocketAddr,
) -> (SocketAddr, Arc<Notify>) {
    let addr = listener.local_addr().expect("addr");
    let cut = Arc::new(Notify::new());
    let cut_all = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let cut = cut_all.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = cut.notified() => {} // both sockets dropped: a dead network path
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_with_every_line_exactly_once() {
    let (server, proxy, cut) = server_behind_a_cutting_proxy().await;
    let via_proxy = format!("ws://{proxy}/ws");
    let mut alice = SessionClient::new("alice");
    assert!(alice.connect(&via_proxy).await);

    // Two others keep chatting the whole time.
    let others: Vec<_> = (0..2)
        .map(|n| {
            let url = server.ws_url();
            tokio::spawn(async move {
                let mut c = Client::connect(&url).await;
                for i in 0..100 {
                    let line = format!("o{n}-{i}");
                    c.send_with_nonce(&line, &line).await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                // Acks come in order: this one means all 100 lines are stored. Dropping a
                // socket with unread data resets it, and the kernel then throws away lines
                // still in its send queue: a sender is done when its last line is acked.
                c.recv_ack_of(&format!("o{n}-99")).await;
            })
        })
        .collect();
    for i in 0..30 {
        alice.send(&format!("alice-{i}")).await;
        alice.pump(Duration::from_millis(5)).await;
        if i == 10 {
            cut.notify_waiters();
            while alice.is_connected() {
                alice.pump(Duration::from_millis(50)).await;
            }
        }
        if i == 20 {
            assert!(
                alice.connect(&via_proxy).await,
                "reconnects through the proxy"
            );
        }
    }
    for other in others {
        other.await.expect("others finished");
    }
    // Alice catches up by herself (reading only: a probe connection here would add presence
    // frames to her backlog faster than she reads them).
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !alice.session.pending().is_empty() || alice.general().len() < 230 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice holds {} lines, {} pending",
            alice.general().len(),
            alice.session.pending().len()
        );
        if !alice.is_connected() {
            alice.connect(&via_proxy).await;
        }
        alice.pump(Duration::from_millis(50)).await;
    }
    let expected = history(&server.ws_url()).await;
    assert_eq!(expected.len(), 230);
    assert_eq!(alice.general(), expected, "every line once, in order");
    assert_gapless_once(&expected);
}

/// The same cut, met by the project's own client (`client` crate), which needs no help: it
/// notices the dead path, reconnects with backoff, resumes its session and resends what was
/// not acked. Every `send` returns its line's `seq` once, and the events show each line once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_crate_rides_out_a_cut_connection_by_itself() {
    let (server, proxy, cut) = server_behind_a_cutting_proxy().await;
    let via_proxy = format!("ws://{proxy}");
    let connected = client::Client::connect(&via_proxy, client::Options::default());
    let (cli, mut events) = tokio::time::timeout(TIMEOUT, connected)
        .await
        .expect("connected in time")
        .expect("connected");
    let general = shared::RoomName::general();
    let mut seqs = Vec::new();
    for i in 0..30 {
        if i == 10 {
            cut.notify_waiters(); // the line below goes out on a dead path, or waits for a new one
        }
        let sent = tokio::time::timeout(TIMEOUT, cli.send(&general, format!("c-{i}")));
        seqs.push(sent.await.expect("acked in time").expect("acked").0);
    }
    let sorted = seqs.windows(2).all(|pair| pair[0] < pair[1]);
    assert!(sorted, "one seq per line, in the order sent: {seqs:?}");

    // What the client was shown: each line once, in order, across the two connections.
    let (mut ids, mut shown) = (Vec::new(), Vec::new());
    while shown.len() < 30 {
        let event = tokio::time::timeout(TIMEOUT, events.next())
            .await
            .expect("an event in time")
            .expect("the client runs");
        match event {
            client::Event::Welcome { id, resumed, .. } => ids.push((id, resumed)),
            client::Event::Line(line) => shown.push(line.text),
            client::Event::Joined { lines, replace, .. } => {
                if replace {
                    shown.clear();
                }
                shown.extend(lines.into_iter().map(|line| line.text));
            }
            _ => {}
        }
    }
    let sent: Vec<String> = (0..30).map(|i| format!("c-{i}")).collect();
    assert_eq!(shown, sent, "every line shown once, in order");
    assert!(ids.len() >= 2, "it reconnected: {ids:?}");
    assert!(
        ids.iter().all(|(id, _)| *id == ids[0].0) && ids[1..].iter().all(|(_, resumed)| *resumed),
        "every reconnection resumed the same session: {ids:?}"
    );
    let stored: Vec<String> = history(&server.ws_url())
        .await
        .into_iter()
        .map(|line| line.text)
        .collect();
    assert_eq!(stored, sent, "the server holds every line once");
    cli.close().await;
}
