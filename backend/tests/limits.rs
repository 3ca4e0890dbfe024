//! Every limit, hit through a real socket: origin, connection counts, rates, and what
//! `/metrics` says about them.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use backend::Config;
use shared::{ErrorCode, ServerMsg};
use testkit::{Client, TIMEOUT, TestServer, connect_from, get_from, try_connect, try_connect_as};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER_LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test]
async fn a_foreign_origin_gets_403_before_the_upgrade() {
    let server = TestServer::start().await;
    let own = format!("http://{}", server.addr);
    assert!(try_connect(server.addr, LOCAL, Some(&own)).await.is_ok());
    assert_eq!(
        try_connect(server.addr, LOCAL, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        try_connect(server.addr, LOCAL, Some("http://localhost:8080"))
            .await
            .err(),
        Some(403)
    );
    // No Origin: a non-browser client, allowed by default.
    assert!(try_connect(server.addr, LOCAL, None).await.is_ok());
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains(r#"charla_connections_refused_total{reason="foreign_origin"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_host_the_server_does_not_answer_to_is_refused_before_the_upgrade() {
    // DNS rebinding: evil.example now resolves to this server; the attacker's page is
    // "same origin" with the Host its browser sends.
    let server = TestServer::start().await;
    let port = server.addr.port();
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    assert_eq!(
        try_connect_as(server.addr, LOCAL, Some(&evil), Some(&evil_origin))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        try_connect_as(server.addr, LOCAL, Some(&evil), None)
            .await
            .err(),
        Some(403),
        "scripts must name the server too"
    );
    // The server's own names work, with their own origins.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let origin = format!("http://{host}");
        assert!(
            try_connect_as(server.addr, LOCAL, Some(&host), Some(&origin))
                .await
                .is_ok(),
            "{host}"
        );
    }
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains(r#"charla_connections_refused_total{reason="foreign_host"} 2"#),
        "{metrics}"
    );
    // Reads that tell about the server are refused to a rebinding page too.
    for path in ["/metrics", "/api/products"] {
        let foreign = testkit::request(server.addr, "GET", path, &[("Host", &evil)], b"").await;
        assert_eq!(foreign.status, 403, "{path}: {}", foreign.body);
        let own = testkit::request(server.addr, "GET", path, &[], b"").await;
        assert_eq!(own.status, 200, "{path}");
    }
    // --allow-host adds a public name.
    let server = TestServer::start_with(Config {
        allow_hosts: vec!["chat.example".into()],
        ..Config::default()
    })
    .await;
    assert!(
        try_connect_as(
            server.addr,
            LOCAL,
            Some("chat.example"),
            Some("https://chat.example")
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn allowed_origins_pass_and_require_origin_refuses_clients_without_one() {
    let config = Config {
        allow_origins: vec!["http://localhost:8080".into()],
        require_origin: true,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    assert!(
        try_connect(server.addr, LOCAL, Some("http://localhost:8080"))
            .await
            .is_ok()
    );
    let own = format!("http://{}", server.addr);
    assert!(
        try_connect(server.addr, LOCAL, Some(&own)).await.is_ok(),
        "own origin stays allowed"
    );
    assert_eq!(
        try_connect(server.addr, LOCAL, Some("http://localhost:9999"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(try_connect(server.addr, LOCAL, None).await.err(), Some(403));
}

#[tokio::test]
async fn connection_limits_refuse_with_429_per_address_and_503_overall() {
    let config = Config {
        max_connections: 3,
        max_connections_per_ip: 2,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let a1 = try_connect(server.addr, LOCAL, None).await.expect("first");
    let _a2 = try_connect(server.addr, LOCAL, None).await.expect("second");
    assert_eq!(try_connect(server.addr, LOCAL, None).await.err(), Some(429));
    let _b1 = try_connect(server.addr, OTHER_LOCAL, None)
        .await
        .expect("another address");
    assert_eq!(
        try_connect(server.addr, OTHER_LOCAL, None).await.err(),
        Some(503)
    );

    // A place comes back when its connection ends.
    a1.close().await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match try_connect(server.addr, LOCAL, None).await {
            Ok(_) => break,
            Err(status) => {
                assert!(
                    Instant::now() < deadline,
                    "the place never came back ({status})"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn sends_over_the_burst_get_rate_limited_and_are_dropped() {
    let server = TestServer::start().await; // 10 sends/s, burst 20
    let mut alice = server.client().await;
    for i in 0..30 {
        alice.send_line(&format!("line {i}")).await;
    }
    let (mut lines, mut limited) = (Vec::new(), 0);
    while lines.len() + limited < 30 {
        match alice.recv().await {
            ServerMsg::Message(line) => lines.push(line.text),
            ServerMsg::Error(shared::server::Error { code, .. }) => {
                assert_eq!(code.as_str(), "rate_limited");
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The burst passes whole; at most one more token refills while 30 frames go out.
    assert!((20..=22).contains(&lines.len()), "{} accepted", lines.len());
    assert_eq!(
        lines[..20],
        (0..20).map(|i| format!("line {i}")).collect::<Vec<_>>()[..]
    );
    // Dropped means dropped: a newcomer's history holds only the accepted lines.
    let bob = server.client().await;
    assert_eq!(bob.history.len(), lines.len());
}

#[tokio::test]
async fn other_frames_over_their_rate_get_rate_limited() {
    let server = TestServer::start().await; // 50 other frames/s
    let mut alice = server.client().await;
    for _ in 0..70 {
        alice.send_text("not json").await;
    }
    let mut codes = std::collections::HashMap::<ErrorCode, usize>::new();
    for _ in 0..70 {
        *codes.entry(alice.recv_error_code().await).or_default() += 1;
    }
    let bad = codes.get(&ErrorCode::BadJson).copied().unwrap_or(0);
    let limited = codes.get(&ErrorCode::RateLimited).copied().unwrap_or(0);
    assert_eq!(bad + limited, 70, "{codes:?}");
    assert!((50..=53).contains(&bad), "{codes:?}");
}

#[tokio::test]
async fn typing_over_its_rate_is_conflated_and_the_latest_text_arrives() {
    let config = Config {
        frame_rate: 5,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let mut typist = server.client().await;
    let mut watcher = server.client().await;
    for i in 0..100 {
        typist.typing(&format!("t{i}")).await;
    }
    let mut seen = Vec::new();
    loop {
        match watcher.recv().await {
            ServerMsg::Typing(shared::server::Typing { text, .. }) => {
                seen.push(text);
                if seen.last().map(String::as_str) == Some("t99") {
                    break;
                }
            }
            ServerMsg::Presence(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        seen.len() <= 10,
        "conflated: {} of 100 updates were relayed",
        seen.len()
    );
    // The typist was not told off: conflation is not a refusal.
    typist.send_line("done").await;
    loop {
        match typist.recv().await {
            ServerMsg::Message(line) => {
                assert_eq!(line.text, "done");
                break;
            }
            ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
            other => panic!("the typist got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_over_its_limit_for_too_long_is_closed_with_1008() {
    let config = Config {
        send_rate: 1,
        send_burst: 1,
        rate_limit_close_after: 1,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let mut flooder = server.client().await;
    let mut bystander = server.client().await;
    let close = tokio::time::timeout(TIMEOUT, async {
        loop {
            flooder.send_line("spam").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(frame) = flooder.try_recv_close().await {
                return frame;
            }
        }
    })
    .await
    .expect("closed within the timeout");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1008));
    // The bystander carries on; it saw only the few spam lines that were within the limit.
    bystander.send_line("still fine").await;
    let mut spam = 0;
    loop {
        match bystander.recv_line().await.text.as_str() {
            "spam" => spam += 1,
            "still fine" => break,
            other => panic!("unexpected line {other:?}"),
        }
    }
    assert!((1..=3).contains(&spam), "{spam} spam lines got through");
}

#[tokio::test]
async fn metrics_count_connections_frames_errors_and_history() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let _bob = server.client().await;
    alice.send_line("hola").await;
    alice.recv_line().await;
    alice.send_text("nope").await;
    assert_eq!(alice.recv_error_code().await, ErrorCode::BadJson);
    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "charla_connections 2",
        "charla_connections_accepted_total 2",
        r#"charla_frames_in_total{type="send"} 1"#,
        r#"charla_frames_in_total{type="invalid"} 1"#,
        r#"charla_errors_total{code="bad_json"} 1"#,
        "charla_history_lines 1",
        "charla_lines_committed_total 1",
        r#"charla_frames_out_total{type="welcome"} 2"#,
    ] {
        assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
    }
    // Two sessions and one line were made durable: in one to three group commits.
    let commits = testkit::metric(&body, "charla_commits_total").expect("commits");
    assert!((1.0..=3.0).contains(&commits), "{commits} commits");
    assert_eq!(testkit::metric(&body, "charla_rooms"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_requests_are_cut_off_and_do_not_keep_a_normal_client_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(Config {
        header_timeout: std::time::Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    // Slowloris: 1,000 connections from one address, each with half a request line.
    let mut held = Vec::new();
    for _ in 0..1_000 {
        let mut tcp = connect_from(server.addr, LOCAL).await;
        let _ = tcp.write_all(b"GET / HT").await; // a refused one may already be closed
        held.push(tcp);
    }
    // A normal client (another address) still loads the page and chats meanwhile.
    let (status, body) = get_from(server.addr, OTHER_LOCAL, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let mut alice = try_connect(server.addr, OTHER_LOCAL, None)
        .await
        .expect("a normal client connects");
    alice.send_line("still serving").await;
    assert_eq!(alice.recv_line().await.text, "still serving");
    // Every half request is closed by the server: past the per-address cap at once, the
    // others when their headers are late.
    let started = std::time::Instant::now();
    for tcp in &mut held {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
            .await
            .expect("the server closes a half request in time");
        // EOF, a reset, or a 408 and then EOF: never a held-open socket.
        if let Ok(n) = read
            && n > 0
        {
            assert!(buf.starts_with(b"HTTP/1.1 408"), "{:?}", &buf[..n]);
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains(r#"reason="too_many_tcp_from_address""#),
        "the per-address cap turned some away at accept: {metrics}"
    );
}

/// Sends `per_socket` lines with nonces on each of `clients`, then reads until each has an
/// answer to every one of its own: returns how many distinct lines were acked and the nonces
/// refused with `code`. (Every socket of a session gets the session's acks.)
async fn send_and_count(
    clients: &mut [testkit::Client],
    per_socket: usize,
    code: ErrorCode,
) -> (usize, Vec<String>) {
    for (n, client) in clients.iter_mut().enumerate() {
        for i in 0..per_socket {
            client
                .send_with_nonce(&format!("{n}/{i}"), &format!("n-{n}-{i}"))
                .await;
        }
    }
    let (mut acked, mut refused) = (std::collections::HashSet::new(), Vec::new());
    for (n, client) in clients.iter_mut().enumerate() {
        let mine = |nonce: &str| nonce.starts_with(&format!("n-{n}-"));
        let answered = |acked: &std::collections::HashSet<String>, refused: &Vec<String>| {
            acked
                .iter()
                .chain(refused)
                .filter(|nonce| mine(nonce))
                .count()
        };
        while answered(&acked, &refused) < per_socket {
            match client.recv().await {
                ServerMsg::Ack(shared::server::Ack { nonce, .. }) => {
                    acked.insert(nonce);
                }
                ServerMsg::Error(shared::server::Error {
                    code: got,
                    nonce,
                    room,
                    ..
                }) => {
                    assert_eq!(got, code);
                    assert_eq!(room.as_ref().map(|r| r.as_str()), Some("general"));
                    refused.push(nonce.expect("a refused send carries its nonce"));
                }
                ServerMsg::Message(_) | ServerMsg::Presence(_) | ServerMsg::Typing(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    (acked.len(), refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sockets_from_one_address_share_its_send_rate() {
    let server = TestServer::start().await; // 30 sends/s per address, bursts of 60
    let attacker = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let mut sockets = Vec::new();
    for _ in 0..50 {
        sockets.push(
            try_connect(server.addr, attacker, None)
                .await
                .expect("connect"),
        );
    }
    let started = Instant::now();
    // 5 each: well inside every socket's own burst (20), 250 in all.
    let (acked, refused) = send_and_count(&mut sockets, 5, ErrorCode::RateLimited).await;
    let secs = started.elapsed().as_secs_f64();
    let allowed = 60 + (30.0 * secs).ceil() as usize;
    assert!(
        acked <= allowed,
        "{acked} lines in {secs:.2} s: over the address's rate"
    );
    assert!(acked >= 60, "the address's burst goes through: {acked}");
    assert_eq!(acked + refused.len(), 250);
    // Another address is not held back by this one.
    let mut other = try_connect(server.addr, OTHER_LOCAL, None)
        .await
        .expect("connect");
    other.send_with_nonce("mine", "o-1").await;
    assert_eq!(other.recv_ack().await.0, "o-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_of_one_session_share_its_send_rate() {
    let server = TestServer::start_with(Config {
        ip_send_rate: 10_000,
        ip_send_burst: 10_000,
        ..Config::default() // 10 sends/s per session, bursts of 20
    })
    .await;
    let first = Client::resume(&server.ws_url(), "", &[("general", 0)])
        .await
        .0;
    let token = first.resume.clone();
    let mut sockets = vec![first];
    for _ in 0..3 {
        sockets.push(
            Client::resume(&server.ws_url(), &token, &[("general", 0)])
                .await
                .0,
        );
    }
    assert!(sockets.iter().all(|c| c.id == sockets[0].id), "one session");
    let started = Instant::now();
    let (acked, _) = send_and_count(&mut sockets, 15, ErrorCode::RateLimited).await;
    let secs = started.elapsed().as_secs_f64();
    assert!(
        acked <= 20 + (10.0 * secs).ceil() as usize,
        "{acked} lines in {secs:.2} s from one session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_servers_line_rate_sends_are_unavailable_not_queued() {
    let server = TestServer::start_with(Config {
        max_lines_per_sec: 5,
        ..Config::default()
    })
    .await;
    let mut clients = Vec::new();
    for n in 1..=4 {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
        clients.push(try_connect(server.addr, from, None).await.expect("connect"));
    }
    let started = Instant::now();
    let (acked, refused) = send_and_count(&mut clients, 5, ErrorCode::Unavailable).await;
    let secs = started.elapsed().as_secs_f64();
    assert!(
        acked <= 5 + (5.0 * secs).ceil() as usize,
        "{acked} in {secs:.2} s"
    );
    assert!(!refused.is_empty());
}

#[tokio::test]
async fn typing_and_websocket_ping_floods_count_toward_the_close() {
    let config = Config {
        frame_rate: 5,
        rate_limit_close_after: 1,
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    // Typing over the rate is conflated, never refused, but a flood of it still closes.
    let mut typist = server.client().await;
    let deadline = Instant::now() + TIMEOUT;
    let mut i = 0;
    let closed = loop {
        assert!(Instant::now() < deadline, "a typing flood was never closed");
        i += 1;
        typist.typing(&format!("t{i}")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(close) = typist.try_recv_close().await {
            break close;
        }
    };
    assert_eq!(closed.map(|c| u16::from(c.code)), Some(1008));

    let mut pinger = server.client().await;
    let deadline = Instant::now() + TIMEOUT;
    let closed = loop {
        assert!(Instant::now() < deadline, "a ping flood was never closed");
        pinger
            .send_raw(tokio_tungstenite::tungstenite::Message::Ping(
                vec![1].into(),
            ))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(close) = pinger.try_recv_close().await {
            break close;
        }
    };
    assert_eq!(closed.map(|c| u16::from(c.code)), Some(1008));
}

#[tokio::test]
async fn one_address_opens_a_bounded_number_of_new_sessions_a_minute_and_resuming_is_free() {
    let server = TestServer::start_with(Config {
        new_sessions_per_min: 5,
        ..Config::default()
    })
    .await;
    let mut kept = Vec::new();
    for _ in 0..5 {
        kept.push(
            try_connect(server.addr, LOCAL, None)
                .await
                .expect("welcomed"),
        );
    }
    // The sixth new session from this address this minute: closed with 1008, no welcome.
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("the upgrade itself is allowed");
    use futures_util::StreamExt as _;
    match tokio::time::timeout(TIMEOUT, ws.next()).await {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame))))) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert!(frame.reason.contains("new sessions"), "{}", frame.reason);
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    // Resuming is not a new session; another address has its own allowance.
    let token = kept[0].resume.clone();
    let (resumed, _) = Client::resume(&server.ws_url(), &token, &[("general", 0)]).await;
    assert!(resumed.resumed);
    assert!(try_connect(server.addr, OTHER_LOCAL, None).await.is_ok());
}

#[tokio::test]
async fn resuming_rotates_the_token_and_the_old_one_still_works_for_a_while() {
    let server = TestServer::start().await;
    let first = server.client().await;
    let (token, id) = (first.resume.clone(), first.id.clone());
    let (second, _) = Client::resume(&server.ws_url(), &token, &[("general", 0)]).await;
    assert_eq!(second.id, id);
    assert_ne!(second.resume, token, "a resumed session gets a fresh token");
    // A client that lost the welcome with the new token still has the old one.
    let (third, _) = Client::resume(&server.ws_url(), &token, &[("general", 0)]).await;
    assert!(third.resumed);
    assert_eq!(third.id, id);
    // And the new one works.
    let (fourth, _) = Client::resume(&server.ws_url(), &second.resume, &[("general", 0)]).await;
    assert_eq!(fourth.id, id);
}
