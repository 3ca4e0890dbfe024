//! Bad frames get a typed `error` and the connection keeps working; `from` and `seq` cannot
//! be forged; a client that does not read is cut off, not buffered for without bound.

use shared::limits::MAX_TEXT_CHARS;
use testkit::TestServer;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn each_bad_frame_gets_its_error_code_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let too_long = "é".repeat(MAX_TEXT_CHARS + 1);
    let cases: Vec<(Message, &str)> = vec![
        (Message::text("not json"), "bad_json"),
        (Message::text(r#"{"type":"send","text":"#), "bad_json"),
        (Message::text("[1,2,3]"), "bad_json"),
        (
            Message::text(r#"{"type":"shout","text":"hi"}"#),
            "unknown_type",
        ),
        (Message::text(r#"{"text":"no type"}"#), "bad_field"),
        (Message::text(r#"{"type":"send"}"#), "bad_field"),
        (Message::text(r#"{"type":"send","text":42}"#), "bad_field"),
        (Message::text(r#"{"type":"typing"}"#), "bad_field"),
        (Message::text(r#"{"type":"send","text":""}"#), "empty"),
        (Message::text(r#"{"type":"send","text":" \n\t "}"#), "empty"),
        (
            Message::text(format!(r#"{{"type":"send","text":"{too_long}"}}"#)),
            "too_large",
        ),
        (
            Message::text(format!(r#"{{"type":"typing","text":"{too_long}"}}"#)),
            "too_large",
        ),
        (Message::binary(vec![0u8, 159, 146, 150]), "binary_frame"),
    ];
    for (frame, code) in cases {
        let shown = format!("{frame:?}");
        alice.send_raw(frame).await;
        assert_eq!(
            alice.recv_error_code().await.as_str(),
            code,
            "for {:.60}",
            shown
        );
    }
    // Still connected, and nothing bad reached the history.
    alice.send_line("still here").await;
    let line = alice.recv_line().await;
    assert_eq!((line.seq.0, line.text.as_str()), (1, "still here"));
    // The longest allowed text is accepted.
    let longest = "é".repeat(MAX_TEXT_CHARS);
    alice.send_line(&longest).await;
    assert_eq!(alice.recv_line().await.text, longest);
}

#[tokio::test]
async fn a_bad_frame_from_one_client_does_not_disturb_another() {
    let server = TestServer::start().await;
    let mut mallory = server.client().await;
    let mut alice = server.client().await;
    mallory.await_presence("general", 2).await;
    mallory.send_text("{{{{").await;
    assert_eq!(
        mallory.expect_error(shared::ErrorCode::BadJson).await.room,
        None
    );
    alice.send_line("hi").await;
    assert_eq!(alice.recv_line().await.text, "hi");
    assert_eq!(mallory.recv_line().await.text, "hi");
}

#[tokio::test]
async fn from_and_seq_cannot_be_forged() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let victim = server.client().await;
    let forged = format!(
        r#"{{"type":"send","text":"it was me","from":"{}","seq":999,"at":0}}"#,
        victim.id
    );
    alice.send_text(&forged).await;
    let line = alice.recv_line().await;
    assert_eq!(line.from, alice.id);
    assert_eq!(line.seq.0, 1);
    assert!(line.at > 1_700_000_000_000, "the server stamps the time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_with_1013_and_others_get_every_line() {
    let config = backend::Config {
        outbox_bytes: 256 * 1024,
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config).await;
    let mut stuck = server.client().await; // Does not read until the server gives up on it.
    let mut sender = server.client().await;
    let url = server.ws_url();
    let mut reader = testkit::Client::connect(&url).await;

    // Enough to fill the stuck client's socket buffers and then its outbox.
    const LINES: usize = 4_000;
    let body = "x".repeat(1_900);
    let reading = tokio::spawn(async move {
        let mut last = 0;
        for _ in 0..LINES {
            last = reader.recv_line().await.seq.0;
        }
        last
    });
    // Once the server counts it as a slow consumer, the stuck client reads again: what is
    // still in its socket, then the close frame, sent within the server's grace period.
    let addr = server.addr;
    let stuck_sees = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + testkit::TIMEOUT;
        loop {
            let (_, metrics) = testkit::get(addr, "/metrics").await;
            if metrics.contains(r#"charla_closes_total{reason="slow_consumer"} 1"#) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never closed as a slow consumer"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        stuck.recv_close().await
    });
    // The sender behaves like a real client: a window of lines, then it reads their echoes.
    const WINDOW: usize = 50;
    for window in 0..LINES / WINDOW {
        for i in 0..WINDOW {
            sender
                .send_line(&format!("{} {body}", window * WINDOW + i))
                .await;
        }
        for _ in 0..WINDOW {
            sender.recv_line().await;
        }
    }
    assert_eq!(reading.await.expect("reader"), LINES as u64);
    let close = stuck_sees
        .await
        .expect("stuck client")
        .expect("close with a code");
    assert_eq!(u16::from(close.code), 1013);
    assert!(close.reason.contains("slow consumer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_again_is_hung_up_on_and_its_place_freed() {
    let config = backend::Config {
        outbox_bytes: 256 * 1024,
        // The stuck client, the sender, and 100 more once the stuck one's place is free.
        max_connections_per_ip: 101,
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config).await;
    let stuck = server.client().await; // never reads again, not even the close
    let mut sender = server.client().await;
    // Keep talking until the server has given up on the stuck client and said so (its write
    // gets a 2 s grace, then the close frame another 2 s).
    testkit::talk_until_online(
        &mut sender,
        1,
        std::time::Duration::from_secs(20),
        "the stuck client was never dropped",
    )
    .await;
    // Its place was given back: a hundred more fit under the per-address limit of 101.
    let mut more = Vec::new();
    for _ in 0..100 {
        more.push(server.client().await);
    }
    drop(stuck);
}

#[tokio::test]
async fn a_frame_over_the_size_limit_closes_with_1009_and_others_carry_on() {
    let config = backend::Config {
        max_frame_bytes: 4096,
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let mut big = server.client().await;
    let mut alice = server.client().await;
    // Just under the limit is fine: 2,000 two-byte characters, about 4,000 bytes of JSON.
    let fits = format!(r#"{{"type":"typing","text":"{}"}}"#, "é".repeat(2_000));
    assert!(fits.len() <= 4096);
    big.send_text(&fits).await;
    loop {
        match big.recv().await {
            shared::ServerMsg::Typing(shared::server::Typing { text, .. }) => {
                assert_eq!(text.chars().count(), 2_000);
                break;
            }
            shared::ServerMsg::Presence(_) => {}
            other => panic!("expected the typing echo, got {other:?}"),
        }
    }
    let over = format!(r#"{{"type":"send","text":"{}"}}"#, "a".repeat(5_000));
    big.send_text(&over).await;
    let close = big.recv_close().await.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1009);
    // Nobody else noticed, apart from the count.
    alice.await_presence("general", 1).await;
    alice.send_line("fine").await;
    let line = alice.recv_line().await;
    assert_eq!((line.seq.0, line.text.as_str()), (1, "fine"));
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let payload = vec![b'{', 0xff, 0xfe, b'}'];
    let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
    client.send_raw(Message::Frame(frame)).await;
    let close = client
        .recv_close()
        .await
        .expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1007);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_talking_but_never_reads_is_closed_when_its_writes_stall() {
    // A queue limit so high it never trips: only the stalled write can end this client.
    let config = backend::Config {
        heartbeat: std::time::Duration::from_millis(1_000),
        outbox_bytes: 1 << 30,
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config).await;
    let mut stuck = server.client().await;
    let mut sender = server.client().await;
    // The stuck client pings the app every 50 ms, so it is never silent, and reads nothing.
    let talking = tokio::spawn(async move {
        loop {
            stuck.send_text(r#"{"type":"ping"}"#).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    testkit::talk_until_online(
        &mut sender,
        1,
        std::time::Duration::from_secs(20),
        "a stalled writer was never closed",
    )
    .await;
    talking.abort();
}

#[tokio::test]
async fn a_name_that_hides_or_reverses_characters_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.client_in(&["general"]).await;
    for sneaky in ["ad\u{200B}min", "\u{202E}nimda", "ad\u{200D}min"] {
        client
            .send_msg(&shared::ClientMsg::SetName {
                name: sneaky.into(),
            })
            .await;
        client.expect_error(shared::ErrorCode::BadName).await;
    }
    // A hello asking for one gets the error and a generated name.
    let hello = shared::ClientMsg::Hello {
        resume: None,
        rooms: None,
        name: Some("ad\u{2066}min".into()),
        token: None,
    };
    let mut other = testkit::Client::hello(&server.ws_url(), &hello).await;
    assert!(
        other
            .name
            .as_ref()
            .is_some_and(|n| n.as_str().starts_with("guest-"))
    );
    other.expect_error(shared::ErrorCode::BadName).await;
}

#[tokio::test]
async fn a_hello_naming_thousands_of_rooms_gets_its_share_and_one_error() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    let rooms: std::collections::BTreeMap<String, shared::Seq> = (0..1_200)
        .map(|i| (format!("r{i}"), shared::Seq(0)))
        .collect();
    let hello = shared::ClientMsg::Hello {
        resume: None,
        rooms: Some(rooms),
        name: None,
        token: None,
    };
    let mut client = testkit::Client::hello(&server.ws_url(), &hello).await;
    // Everything the hello caused comes before the answer to a ping sent after it.
    client.send_msg(&shared::ClientMsg::Ping).await;
    let (mut joined, mut errors) = (0, Vec::new());
    loop {
        match client.recv().await {
            shared::ServerMsg::Joined(_) => joined += 1,
            shared::ServerMsg::Error(shared::server::Error { code, .. }) => errors.push(code),
            shared::ServerMsg::Pong => break,
            _ => {}
        }
    }
    assert_eq!(joined, 20, "--max-rooms-per-conn rooms joined");
    assert_eq!(
        errors,
        vec![shared::ErrorCode::TooManyRooms],
        "one error for the rest"
    );
}

#[tokio::test]
async fn a_flood_of_websocket_pongs_counts_against_the_frame_rate() {
    let server = TestServer::start_with(backend::Config {
        frame_rate: 20,
        rate_limit_close_after: 1,
        ..backend::Config::default()
    })
    .await;
    let mut client = server.client().await;
    let deadline = tokio::time::Instant::now() + testkit::TIMEOUT;
    let code = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a pong flood was never closed"
        );
        for _ in 0..50 {
            client.send_raw(Message::Pong(Default::default())).await;
        }
        if let Some(frame) = client.try_recv_close().await {
            break frame.map(|f| u16::from(f.code));
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(code, Some(1008), "closed for staying over the rate");
}
