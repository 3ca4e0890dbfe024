//! The exercises beside the chat, through real sockets: the `/echo` server (text, binary,
//! limits), the `tic` named event (logged, never echoed), binary frames, random tickers (bounds
//! and cleanup), and the greeting.

#![allow(missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared::{
    ClientMsg, ErrorCode, ServerMsg,
    exercises::{GREETING, binary_pattern, checksum},
};
use testkit::{Client, ServerProcess, TestServer, metric};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

const TIMEOUT: Duration = Duration::from_secs(10);

type Socket = testkit::Socket;

async fn echo_socket(server: &TestServer) -> Socket {
    let (ws, _) =
        tokio::time::timeout(TIMEOUT, connect_async(format!("ws://{}/echo", server.addr)))
            .await
            .expect("connect in time")
            .expect("handshake");
    ws
}

/// The next data frame (pings skipped), or `None` if the socket closed.
async fn next_data(ws: &mut Socket) -> Option<Message> {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(message)) => return Some(message),
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn echo_sends_back_text_and_binary_frames_as_they_came() {
    let server = TestServer::start().await;
    let mut ws = echo_socket(&server).await;
    let frames = [
        Message::text("Mensaje 1"),
        Message::text("ñandú 🐦 {\"not\": \"parsed\"}"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(binary_pattern(16 * 1024)),
        // The exercise's largest binary frame, with its 64-bit extended length.
        Message::binary(binary_pattern(65_536)),
        Message::text(""),
    ];
    for frame in &frames {
        ws.send(frame.clone()).await.expect("send");
    }
    for frame in frames {
        assert_eq!(next_data(&mut ws).await, Some(frame));
    }
    // Closing is answered with a close, not a dropped connection.
    ws.send(Message::Close(None)).await.expect("close");
    assert!(matches!(next_data(&mut ws).await, Some(Message::Close(_))));
    server.stop().await;
}

#[tokio::test]
async fn echo_closes_on_a_frame_over_the_size_limit_with_1009() {
    let server = TestServer::start().await;
    let mut ws = echo_socket(&server).await;
    ws.send(Message::binary(vec![7u8; 64 * 1024 + 1]))
        .await
        .expect("send");
    match next_data(&mut ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn echo_refuses_a_foreign_origin_or_host_like_ws() {
    let server = TestServer::start().await;
    for (host, origin) in [
        (None, Some("http://evil.example")),
        (Some("evil.example"), None),
    ] {
        let mut request = format!("ws://{}/echo", server.addr)
            .into_client_request()
            .expect("request");
        if let Some(host) = host {
            request
                .headers_mut()
                .insert("host", HeaderValue::from_static(host));
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_static(origin));
        }
        match connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 403, "{host:?} {origin:?}");
            }
            other => panic!("expected 403, got {:?}", other.map(|_| ())),
        }
    }
    // The page's own origin is welcome, as on /ws.
    let mut request = format!("ws://{}/echo", server.addr)
        .into_client_request()
        .expect("request");
    let own = HeaderValue::from_str(&format!("http://{}", server.addr)).expect("origin");
    request.headers_mut().insert("origin", own);
    let (mut ws, _) = connect_async(request).await.expect("own origin accepted");
    ws.send(Message::text("hola")).await.expect("send");
    assert_eq!(next_data(&mut ws).await, Some(Message::text("hola")));
    server.stop().await;
}

#[tokio::test]
async fn echo_drops_frames_over_the_rate_and_closes_a_client_that_stays_over() {
    let server = TestServer::start_with(backend::Config {
        frame_rate: 5,
        rate_limit_close_after: 1,
        ..backend::Config::default()
    })
    .await;
    let mut ws = echo_socket(&server).await;
    for i in 0..50 {
        ws.send(Message::text(format!("flood {i}")))
            .await
            .expect("send");
    }
    // The bucket refills (5 a second): then a marker gets through, after whatever echoes
    // the flood earned.
    tokio::time::sleep(Duration::from_millis(400)).await;
    ws.send(Message::text("marker")).await.expect("send");
    let mut echoed = 0;
    loop {
        match next_data(&mut ws).await {
            Some(Message::Text(text)) if text.as_str() == "marker" => break,
            Some(Message::Text(_)) => echoed += 1,
            other => panic!("expected echoes then the marker, got {other:?}"),
        }
    }
    assert!(
        (5..=8).contains(&echoed),
        "a burst of 5 (and what refilled meanwhile) comes back, the rest is dropped: {echoed}"
    );
    // Staying over the rate for over a second closes with 1008.
    let (mut sink, mut stream) = ws.split();
    let flood = tokio::spawn(async move {
        while sink.send(Message::text("more")).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let code = tokio::time::timeout(TIMEOUT, async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(code, Some(1008));
    flood.abort();
    server.stop().await;
}

/// A v2 client in `general`.
async fn json_client(server: &TestServer) -> Client {
    server.client_in(&["general"]).await
}

#[tokio::test]
async fn the_welcome_greets_every_connection() {
    let server = TestServer::start().await;
    let v1 = server.client().await;
    assert_eq!(v1.greeting.as_deref(), Some(GREETING));
    let v2 = json_client(&server).await;
    assert_eq!(v2.greeting.as_deref(), Some(GREETING));
    server.stop().await;
}

#[tokio::test]
async fn echo_messages_come_back_on_the_json_socket() {
    let server = TestServer::start().await;
    let mut client = json_client(&server).await;
    client
        .send_msg(&ClientMsg::Echo {
            text: "Mensaje 1".into(),
        })
        .await;
    assert_eq!(
        client.recv().await,
        ServerMsg::Echo(shared::server::Echo {
            text: "Mensaje 1".into()
        })
    );
    client
        .send_msg(&ClientMsg::Echo {
            text: "x".repeat(2_001),
        })
        .await;
    client.expect_error(ErrorCode::TooLarge).await;
    server.stop().await;
}

#[tokio::test]
async fn binary_frames_of_256_b_and_64_kib_arrive_whole_with_their_checksum() {
    let server = TestServer::start().await;
    let mut client = json_client(&server).await;
    for size in shared::exercises::BINARY_SIZES {
        client.send_msg(&ClientMsg::Binary { size }).await;
        let announced = client.recv().await;
        let expected = binary_pattern(size);
        assert_eq!(
            announced,
            ServerMsg::Binary(shared::server::Binary {
                size,
                checksum: checksum(&expected)
            })
        );
        match client.recv_raw().await {
            Message::Binary(bytes) => {
                assert_eq!(bytes.len(), size as usize);
                assert_eq!(bytes.as_ref(), expected.as_slice(), "the known pattern");
            }
            other => panic!("expected one binary frame, got {other:?}"),
        }
    }
    for size in [0, 65_537] {
        client.send_msg(&ClientMsg::Binary { size }).await;
        client.expect_error(ErrorCode::BadField).await;
    }
    server.stop().await;
}

/// Reads until a `random` of `ticker`, skipping presence; returns its number.
async fn next_random(client: &mut Client, ticker: u32) -> u32 {
    loop {
        match client.recv().await {
            ServerMsg::Random(shared::server::Random { ticker: t, n }) if t == ticker => return n,
            ServerMsg::Presence(_) | ServerMsg::Random(_) => {}
            other => panic!("expected a random number, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_ticker_sends_numbers_from_1_to_1000_until_it_is_stopped() {
    let server = TestServer::start().await;
    let mut client = json_client(&server).await;
    client
        .send_msg(&ClientMsg::StartTicker {
            ticker: 1,
            every_ms: 100,
        })
        .await;
    assert_eq!(
        client.recv().await,
        ServerMsg::Ticker(shared::server::Ticker {
            ticker: 1,
            every_ms: 100
        })
    );
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let n = next_random(&mut client, 1).await;
        assert!((1..=1000).contains(&n), "{n}");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "five numbers 100 ms apart take about 500 ms, not {:?}",
        started.elapsed()
    );
    // Re-timed: the same ticker, a new interval.
    client
        .send_msg(&ClientMsg::StartTicker {
            ticker: 1,
            every_ms: 150,
        })
        .await;
    loop {
        match client.recv().await {
            ServerMsg::Ticker(shared::server::Ticker {
                ticker: 1,
                every_ms,
            }) => {
                assert_eq!(every_ms, 150);
                break;
            }
            ServerMsg::Random(shared::server::Random { ticker: 1, .. }) => {}
            other => panic!("expected the ticker's new interval, got {other:?}"),
        }
    }
    next_random(&mut client, 1).await;
    client.send_msg(&ClientMsg::StopTicker { ticker: 1 }).await;
    loop {
        match client.recv().await {
            ServerMsg::TickerStopped(shared::server::TickerStopped { ticker: 1 }) => break,
            ServerMsg::Random(shared::server::Random { ticker: 1, .. }) => {}
            other => panic!("expected ticker_stopped, got {other:?}"),
        }
    }
    // Three intervals later, an echo is the next frame: no number came after the stop.
    tokio::time::sleep(Duration::from_millis(450)).await;
    client
        .send_msg(&ClientMsg::Echo {
            text: "after".into(),
        })
        .await;
    assert_eq!(
        client.recv().await,
        ServerMsg::Echo(shared::server::Echo {
            text: "after".into()
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn tickers_are_bounded_per_connection_and_in_interval() {
    let server = TestServer::start().await;
    let mut client = json_client(&server).await;
    for every_ms in [0, 99, 3_600_001] {
        client
            .send_msg(&ClientMsg::StartTicker {
                ticker: 1,
                every_ms,
            })
            .await;
        client.expect_error(ErrorCode::BadField).await;
    }
    for ticker in 0..5 {
        client
            .send_msg(&ClientMsg::StartTicker {
                ticker,
                every_ms: 3_600_000,
            })
            .await;
        assert!(matches!(client.recv().await, ServerMsg::Ticker(_)));
    }
    client
        .send_msg(&ClientMsg::StartTicker {
            ticker: 5,
            every_ms: 1_000,
        })
        .await;
    client.expect_error(ErrorCode::TooManyTickers).await;
    // Re-timing one of the five is not a sixth.
    client
        .send_msg(&ClientMsg::StartTicker {
            ticker: 4,
            every_ms: 1_000,
        })
        .await;
    assert!(matches!(
        client.recv().await,
        ServerMsg::Ticker(shared::server::Ticker {
            ticker: 4,
            every_ms: 1_000
        })
    ));
    client.send_msg(&ClientMsg::StopTicker { ticker: 9 }).await;
    client.expect_error(ErrorCode::NotFound).await;
    let (_, metrics) = server.get("/metrics").await;
    assert_eq!(metric(&metrics, "charla_tickers"), Some(5.0));
    server.stop().await;
}

/// Polls `/metrics` until `name` reads `value`; fails after [`TIMEOUT`].
async fn await_metric(server: &TestServer, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (_, body) = server.get("/metrics").await;
        let now = metric(&body, name);
        if now == Some(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed at {now:?}, expected {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_ticker_ends_with_its_connection() {
    let server = TestServer::start_with(testkit::for_load()).await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        let mut client = json_client(&server).await;
        for ticker in 0..2 {
            client
                .send_msg(&ClientMsg::StartTicker {
                    ticker,
                    every_ms: 100,
                })
                .await;
        }
        clients.push(client);
    }
    await_metric(&server, "charla_tickers", 400.0).await;
    // Half leave politely, half just vanish (their TCP connection dropped mid-stream).
    for (i, client) in clients.into_iter().enumerate() {
        if i % 2 == 0 {
            client.close().await;
        } else {
            drop(client);
        }
    }
    await_metric(&server, "charla_tickers", 0.0).await;
    await_metric(&server, "charla_connections", 0.0).await;
    server.stop().await;
}

#[tokio::test]
async fn a_tic_is_logged_with_the_senders_id_and_never_echoed() {
    let (server, mut log) = ServerProcess::start_logged(
        std::path::Path::new(env!("CARGO_BIN_EXE_backend")),
        &["--memory"],
    )
    .await;
    let mut next_line = async || {
        tokio::time::timeout(TIMEOUT, log.recv())
            .await
            .expect("a log line in time")
            .expect("the server is still running")
    };
    let mut client = Client::hello(
        &server.ws_url(),
        &ClientMsg::Hello {
            resume: None,
            rooms: None,
            name: None,
            token: None,
        },
    )
    .await;
    client.recv_joined().await;
    for n in 1..=3 {
        client.send_msg(&ClientMsg::Tic { n }).await;
    }
    client
        .send_msg(&ClientMsg::Echo {
            text: "después".into(),
        })
        .await;
    // Frames are answered in order: the echo's is the first frame since, so no tic was.
    assert_eq!(
        client.recv().await,
        ServerMsg::Echo(shared::server::Echo {
            text: "después".into()
        })
    );
    let id = client.id.to_string();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = next_line().await;
        if line.contains("tic event") {
            assert!(
                line.contains(&id),
                "the tic's log line names its sender: {line}"
            );
            seen.push(line);
        }
    }
    for (n, line) in (1..=3).zip(&seen) {
        assert!(line.contains(&format!("TIC-{n}")), "{line}");
    }
    drop(server);
}

#[tokio::test]
async fn the_exercise_pages_are_served_where_their_sockets_are() {
    let dist = testkit::fresh_data_dir();
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(dist.join("index.html"), "<html>charla page</html>").expect("index");
    // The exercises are an app of their own, built into dist/exercises/.
    std::fs::create_dir_all(dist.join("exercises")).expect("exercises");
    std::fs::write(dist.join("exercises/index.html"), "<html>exercises</html>").expect("index");
    let server = TestServer::start_with(backend::Config {
        dist: dist.clone(),
        ..backend::Config::default()
    })
    .await;
    // A browser asking for /echo gets the page; a WebSocket client, the echo server.
    for path in shared::exercises::PAGES {
        let (status, body) = server.get(path).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "<html>exercises</html>"),
            "{path}"
        );
    }
    let mut ws = echo_socket(&server).await;
    ws.send(Message::text("hola")).await.expect("send");
    assert_eq!(next_data(&mut ws).await, Some(Message::text("hola")));
    server.stop().await;
    let _ = std::fs::remove_dir_all(dist);
}

#[tokio::test]
async fn echo_connections_are_told_when_the_server_goes_away() {
    let server = TestServer::start().await;
    let mut ws = echo_socket(&server).await;
    ws.send(Message::text("hola")).await.expect("send");
    assert_eq!(next_data(&mut ws).await, Some(Message::text("hola")));
    let stopping = tokio::spawn(server.stop());
    match next_data(&mut ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    stopping.await.expect("stopped");
}
