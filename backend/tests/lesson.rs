//! The transports lesson's endpoints (`/transports/*`) against a real server: the tick
//! stream over polling, long polling, SSE and a WebSocket; the bytes each costs, counted at
//! the server's socket and equal to the bytes that crossed the wire, headers included; and
//! every bound and bad input answered with a typed error.

#![allow(missing_docs)]

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use testkit::{TIMEOUT, TestServer, request, sse::SseStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The ticks of a poll's answer, as `(n, at)`.
fn ticks(body: &Value) -> Vec<(u64, u64)> {
    body["ticks"]
        .as_array()
        .expect("a list of ticks")
        .iter()
        .map(|t| (t["n"].as_u64().expect("n"), t["at"].as_u64().expect("at")))
        .collect()
}

/// Long-polls until there is a tick after `after`; the answer's ticks.
async fn long_poll(server: &TestServer, client: &str, after: u64) -> Vec<(u64, u64)> {
    let path = format!("/transports/long-poll?c={client}&after={after}");
    let answer = request(server.addr, "GET", &path, &[], b"").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    ticks(&answer.json())
}

async fn stats(server: &TestServer, client: &str) -> Value {
    let answer = request(
        server.addr,
        "GET",
        &format!("/transports/stats?c={client}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

#[tokio::test]
async fn polls_and_long_polls_get_every_tick_once_in_order() {
    let server = TestServer::start().await;
    // The first long poll wakes the ticker and waits for its first tick.
    let first = long_poll(&server, "a", 0).await;
    assert_eq!(first.len(), 1, "the latest tick alone: {first:?}");
    let (n, at) = first[0];
    // Then each long poll answers with the ticks after the last one it saw.
    let next = long_poll(&server, "a", n).await;
    assert!(!next.is_empty());
    assert_eq!(next[0].0, n + 1, "the next tick, none skipped");
    assert!(next[0].1 >= at, "made later");
    // A poll answers at once: what came since (here, maybe nothing yet).
    let (last, _) = *next.last().expect("a tick");
    let polled = request(
        server.addr,
        "GET",
        &format!("/transports/poll?c=a&after={last}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(polled.status, 200);
    assert_eq!(polled.header("cache-control"), Some("no-store"));
    assert!(ticks(&polled.json()).iter().all(|(n, _)| *n > last));
    // Ticks are 500 ms apart: two long polls later the clock has moved about that much.
    let later = long_poll(&server, "a", last).await;
    let (n2, at2) = later[0];
    assert_eq!(n2, last + 1);
    let step = (at2 - at) as f64 / (n2 - n) as f64;
    assert!((300.0..=2_000.0).contains(&step), "{step} ms a tick");
    let stats = stats(&server, "a").await;
    assert_eq!(stats["long_poll"]["requests"], 3);
    assert_eq!(stats["poll"]["requests"], 1);
    assert_eq!(stats["sse"]["requests"], 0);
    server.stop().await;
}

#[tokio::test]
async fn the_bytes_counted_are_the_bytes_on_the_wire_headers_included() {
    let server = TestServer::start().await;
    // Wait for a tick, so the poll has one to answer with.
    long_poll(&server, "warm", 0).await;
    let head = format!(
        "GET /transports/poll?c=exact HTTP/1.1\r\nHost: {}\r\nUser-Agent: a-test-of-bytes\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut answer))
        .await
        .expect("in time")
        .expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    let counted = stats(&server, "exact").await;
    assert_eq!(counted["poll"]["requests"], 1);
    assert_eq!(
        counted["poll"]["bytes_in"].as_u64(),
        Some(head.len() as u64),
        "the request as sent, to the byte"
    );
    assert_eq!(
        counted["poll"]["bytes_out"].as_u64(),
        Some(answer.len() as u64),
        "the response as received, status line and headers included"
    );
    // Two requests on one kept-alive connection: each counted once.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let one = format!(
        "GET /transports/poll?c=kept HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    let two = format!(
        "GET /transports/poll?c=kept&after=1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    tcp.write_all(one.as_bytes()).await.expect("write");
    let mut first = vec![0; 4096];
    let read = tokio::time::timeout(TIMEOUT, tcp.read(&mut first))
        .await
        .expect("in time")
        .expect("read");
    tcp.write_all(two.as_bytes()).await.expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut rest))
        .await
        .expect("in time")
        .expect("read");
    let counted = stats(&server, "kept").await;
    assert_eq!(counted["poll"]["requests"], 2);
    assert_eq!(
        counted["poll"]["bytes_in"].as_u64(),
        Some((one.len() + two.len()) as u64)
    );
    assert_eq!(
        counted["poll"]["bytes_out"].as_u64(),
        Some((read + rest.len()) as u64)
    );
    server.stop().await;
}

#[tokio::test]
async fn the_event_stream_continues_after_last_event_id() {
    let server = TestServer::start().await;
    let (status, stream, _) = SseStream::open(server.addr, "/transports/sse?c=s", &[]).await;
    assert_eq!(status, 200);
    let mut stream = stream.expect("a stream");
    let first = stream.next().await.expect("a tick");
    let n: u64 = first.id.expect("an id");
    let tick: Value = serde_json::from_str(&first.data).expect("JSON");
    assert_eq!(tick["n"].as_u64(), Some(n));
    let second = stream.next().await.expect("a tick");
    assert_eq!(second.id, Some(n + 1));
    drop(stream);
    // Reopened after the first: the second comes again, then on.
    let last = n.to_string();
    let (status, stream, _) = SseStream::open(
        server.addr,
        "/transports/sse?c=s",
        &[("Last-Event-ID", &last)],
    )
    .await;
    assert_eq!(status, 200);
    let again = stream.expect("a stream").next().await.expect("a tick");
    assert_eq!(again.id, Some(n + 1));
    let (status, _, body) = SseStream::open(
        server.addr,
        "/transports/sse?c=s",
        &[("Last-Event-ID", "soon")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("bad_last_event_id"), "{body}");
    let counted = stats(&server, "s").await;
    // The refused one is not the lesson's traffic.
    assert_eq!(counted["sse"]["requests"], 2);
    assert!(counted["sse"]["bytes_out"].as_u64() > Some(0));
    server.stop().await;
}

#[tokio::test]
async fn the_websocket_gets_a_frame_per_tick() {
    let server = TestServer::start().await;
    let url = format!("ws://{}/transports/ws?c=w", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a tick in time")
            .expect("open")
            .expect("a frame");
        let tick: Value = serde_json::from_str(frame.to_text().expect("text")).expect("JSON");
        seen.push(tick["n"].as_u64().expect("n"));
    }
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    let counted = stats(&server, "w").await;
    assert_eq!(counted["ws"]["requests"], 1);
    // The handshake's response and three small frames.
    let out = counted["ws"]["bytes_out"].as_u64().expect("bytes out");
    assert!((150..1_000).contains(&out), "{out} B");
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_and_bounds_get_typed_errors() {
    let config = backend::Config {
        max_tcp_per_ip: 1_000,
        ..backend::Config::default()
    };
    let server = TestServer::start_with(config).await;
    for (path, code) in [
        ("/transports/poll", "bad_client"),
        ("/transports/poll?c=", "bad_client"),
        ("/transports/poll?c=a%20b", "bad_client"),
        ("/transports/long-poll?c=x&after=-1", "bad_after"),
        ("/transports/stats?c=", "bad_client"),
    ] {
        let answer = request(server.addr, "GET", path, &[], b"").await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.json()["error"], code, "{path}");
    }
    let long = "x".repeat(65);
    let answer = request(
        server.addr,
        "GET",
        &format!("/transports/poll?c={long}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(answer.status, 400);
    // Another site's page may not read the lesson.
    let answer = request(
        server.addr,
        "GET",
        "/transports/poll?c=x",
        &[("Origin", "http://evil.example")],
        b"",
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    // A WebSocket endpoint asked without an upgrade says so.
    let answer = request(server.addr, "GET", "/transports/ws?c=x", &[], b"").await;
    assert!(answer.status >= 400, "{}", answer.status);
    // At most 256 streams at once: the next one is 503 busy, and a place frees when one goes.
    let mut open = Vec::new();
    for _ in 0..backend::lesson::MAX_WAITING {
        let (status, stream, _) = SseStream::open(server.addr, "/transports/sse?c=many", &[]).await;
        assert_eq!(status, 200);
        open.push(stream);
    }
    let (status, _, body) = SseStream::open(server.addr, "/transports/sse?c=many", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("busy"), "{body}");
    open.pop();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, _, _) = SseStream::open(server.addr, "/transports/sse?c=many", &[]).await;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    server.stop().await;
}
