//! The Server-Sent Events transport (`/sse`): the same session as `/ws?v=2` over an event
//! stream and POSTs. Real servers on ports, real TCP clients for the stream and the POSTs,
//! WebSocket clients beside them in the same rooms.

use std::time::Duration;

use backend::Config;
use shared::{ClientMsg, ErrorCode, Seq, ServerMsg};
use testkit::{
    Client, RedisServer, SseClient, SseStream, TIMEOUT, TestServer, fresh_data_dir, metric, request,
};

fn send(text: &str, nonce: &str) -> ClientMsg {
    ClientMsg::Send {
        room: None,
        text: text.into(),
        nonce: Some(nonce.into()),
    }
}

fn typing(text: &str) -> ClientMsg {
    ClientMsg::Typing {
        room: None,
        text: text.into(),
    }
}

/// The ack of `nonce`, skipping everything else.
async fn ack_of(client: &mut SseClient, nonce: &str) -> Seq {
    client
        .recv_until(|m| match m {
            ServerMsg::Ack(ack) if ack.nonce == nonce => Some(ack.seq),
            _ => None,
        })
        .await
}

/// The next chat line's (seq, text), skipping everything else.
async fn line(client: &mut SseClient) -> (u64, String) {
    client
        .recv_until(|m| match m {
            ServerMsg::Message(line) => Some((line.seq.0, line.text)),
            _ => None,
        })
        .await
}

/// Waits until the transport is gone: its POSTs get 404 (each try after an event or a
/// short wait on the server's answer, never a fixed sleep before looking).
async fn until_gone(client: &SseClient, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let answer = client.post_raw(b"").await;
        if answer.status == 404 {
            assert_eq!(answer.json()["code"], "unknown_transport");
            return;
        }
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the transport did not end within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_session_runs_over_sse_and_posts_beside_a_websocket() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    let (mut ana, welcome) = SseClient::welcomed_in(server.addr, &["general"]).await;
    assert_eq!(welcome.protocol, 2);
    assert!(!welcome.resume.is_empty(), "a session to resume, as on /ws");

    let mut bea = server.client_in(&["general"]).await;
    let presence = ana
        .recv_until(|m| match m {
            ServerMsg::Presence(p) if p.online == 2 => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(presence.room.as_str(), "general");

    // Send and ack over SSE; the WebSocket client gets the line.
    ana.say(&send("hola desde SSE", "a1")).await;
    let seq = ack_of(&mut ana, "a1").await;
    let got = bea.recv_line().await;
    assert_eq!((got.seq, got.text.as_str()), (seq, "hola desde SSE"));
    assert_eq!(got.from, welcome.id);
    // The sender gets its own line too, as on the WebSocket.
    assert_eq!(line(&mut ana).await, (seq.0, "hola desde SSE".to_owned()));

    // And the other way.
    bea.send_with_nonce("hola desde WS", "b1").await;
    assert_eq!(line(&mut ana).await.1, "hola desde WS");
    bea.recv_ack_of("b1").await;
    assert_eq!(bea.recv_line().await.text, "hola desde WS");

    // Typing, both ways.
    bea.typing("escribo").await;
    let seen = ana
        .recv_until(|m| match m {
            ServerMsg::Typing(t) => Some(t.text),
            _ => None,
        })
        .await;
    assert_eq!(seen, "escribo");
    ana.say(&typing("yo también")).await;
    // (bea's own typing comes back to it first, as it does to every page in the room.)
    assert_eq!(bea.recv_typing().await.text, "escribo");
    assert_eq!(bea.recv_typing().await.text, "yo también");

    // Several frames in one POST are handled in order.
    let answer = ana
        .post(&[
            ClientMsg::Join {
                room: "otra".into(),
            },
            ClientMsg::Send {
                room: Some("otra".into()),
                text: "en otra".into(),
                nonce: Some("a2".into()),
            },
        ])
        .await;
    assert_eq!(answer.status, 202);
    let joined = ana
        .recv_until(|m| match m {
            ServerMsg::Joined(j) => Some(j),
            _ => None,
        })
        .await;
    assert_eq!(joined.room.as_str(), "otra");
    ack_of(&mut ana, "a2").await;

    // Presence: the SSE client leaving is seen by the other.
    let gone = request(server.addr, "DELETE", &ana.path(), &[], b"").await;
    assert_eq!(gone.status, 204);
    assert!(
        ana.closed().await.is_none(),
        "the stream ends after the client's close"
    );
    bea.await_presence("general", 1).await;
    until_gone(&ana, TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_reopened_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    let (mut ana, _) = SseClient::welcomed_in(server.addr, &["general"]).await;
    let mut bea = server.client_in(&["general"]).await;
    for i in 0..5 {
        bea.send_with_nonce(&format!("l{i}"), &format!("n{i}"))
            .await;
        bea.recv_ack_of(&format!("n{i}")).await;
    }
    let mut seen = vec![line(&mut ana).await, line(&mut ana).await];
    ana.cut();
    // Lines sent while the stream is down: the server may have handed some of them to the
    // dead connection before it noticed.
    for i in 5..10 {
        bea.send_with_nonce(&format!("l{i}"), &format!("n{i}"))
            .await;
        bea.recv_ack_of(&format!("n{i}")).await;
    }
    let last = ana.last_id;
    assert_eq!(ana.reopen(Some(last)).await, 200);
    while seen.len() < 10 {
        seen.push(line(&mut ana).await);
    }
    let texts: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
    assert_eq!(texts, expected, "every line once, in order");
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless: {seqs:?}"
    );

    // Reopened from before what it already confirmed: those events are forgotten.
    assert_eq!(ana.reopen(Some(1)).await, 410);
    let (status, _, body) =
        SseStream::open(server.addr, &ana.path(), &[("Last-Event-ID", "1")]).await;
    assert_eq!(status, 410);
    assert!(body.contains("stream_gone"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opened_twice_ends_the_older_and_the_newer_goes_on() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    let (mut ana, _) = SseClient::welcomed_in(server.addr, &["general"]).await;
    let mut older = ana.stream.take().expect("the first stream");
    assert_eq!(ana.reopen(Some(ana.last_id)).await, 200);
    // The older stream ends (after whatever it had already been sent: nothing new).
    while let Some(event) = older.next().await {
        assert!(
            event.id.is_none(),
            "nothing new on the older stream: {event:?}"
        );
    }
    let mut bea = server.client_in(&["general"]).await;
    bea.send_with_nonce("solo una vez", "b1").await;
    assert_eq!(line(&mut ana).await.1, "solo una vez");
    // A third stream with no Last-Event-ID asks for events long forgotten.
    let (status, _, _) = SseStream::open(server.addr, &ana.path(), &[]).await;
    assert_eq!(status, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_resent_after_a_server_restart_is_appended_once_and_the_resume_has_no_gap() {
    let dir = fresh_data_dir();
    let config = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config()).await;
    let addr = server.addr;
    let (mut ana, welcome) = SseClient::welcomed_in(addr, &["general"]).await;
    ana.say(&send("antes", "a1")).await;
    let first = ack_of(&mut ana, "a1").await;
    // "durante": sent, then the server goes before the client read its ack.
    ana.say(&send("durante", "a2")).await;
    server.stop().await;
    assert_eq!(
        ana.closed().await,
        Some(1001),
        "told the server is going away"
    );

    let server = TestServer::start_at(addr, config()).await;
    let mut bea = server.client_in(&["general"]).await;
    bea.send_with_nonce("mientras", "b1").await;
    bea.recv_ack_of("b1").await;

    // The page resumes its session on a new transport, from the last line it had, and
    // sends again what it has no ack for.
    let hello = ClientMsg::Hello {
        resume: Some(welcome.resume.clone()),
        rooms: Some([("general".to_owned(), first)].into()),
        name: None,
        token: None,
    };
    let mut ana = SseClient::open(addr, &hello).await;
    let resumed = ana
        .recv_until(|m| match m {
            ServerMsg::Welcome(w) => Some(w),
            _ => None,
        })
        .await;
    assert!(resumed.resumed);
    assert_eq!(resumed.id, welcome.id);
    let joined = ana
        .recv_until(|m| match m {
            ServerMsg::Joined(j) => Some(j),
            _ => None,
        })
        .await;
    let missed: Vec<&str> = joined.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        missed,
        ["durante", "mientras"],
        "what it missed, once, in order"
    );
    ana.say(&send("durante", "a2")).await;
    let again = ack_of(&mut ana, "a2").await;
    assert_eq!(again, joined.lines[0].seq, "the resent line keeps its seq");

    let mut carla = server.client_in(&[]).await;
    carla
        .send_msg(&ClientMsg::Join {
            room: "general".into(),
        })
        .await;
    let history = carla.recv_joined().await.lines;
    let texts: Vec<&str> = history.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["antes", "durante", "mientras"], "appended once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_new_endpoints_gets_typed_errors_and_loses_nothing() {
    let server = TestServer::start_with(Config {
        max_frame_bytes: 1024,
        ..testkit::unlimited()
    })
    .await;
    let addr = server.addr;
    let code = |r: &testkit::HttpResponse| r.json()["code"].as_str().map(str::to_owned);

    // A transport that does not exist.
    let nobody = "0123456789abcdef0123456789abcdef";
    for method in ["POST", "DELETE"] {
        let r = request(addr, method, &format!("/sse/{nobody}"), &[], b"{}").await;
        assert_eq!(
            (r.status, code(&r).as_deref()),
            (404, Some("unknown_transport"))
        );
    }
    let (status, _, body) = SseStream::open(addr, &format!("/sse/{nobody}"), &[]).await;
    assert_eq!(status, 404, "{body}");

    // Foreign origins and hosts, on every endpoint.
    let evil = [("Origin", "http://evil.example")];
    assert_eq!(request(addr, "POST", "/sse", &evil, b"").await.status, 403);
    let host = [("Host", "evil.example")];
    assert_eq!(request(addr, "POST", "/sse", &host, b"").await.status, 403);

    let (mut ana, _) = SseClient::welcomed_in(addr, &["general"]).await;
    let path = ana.path();
    assert_eq!(request(addr, "POST", &path, &evil, b"").await.status, 403);
    assert_eq!(request(addr, "DELETE", &path, &evil, b"").await.status, 403);
    let (status, _, _) = SseStream::open(addr, &path, &evil).await;
    assert_eq!(status, 403);

    // Too big, not UTF-8: refused whole, nothing taken.
    let big = serde_json::to_string(&send(&"x".repeat(2_000), "big")).expect("json");
    let r = ana.post_raw(big.as_bytes()).await;
    assert_eq!((r.status, code(&r).as_deref()), (413, Some("too_big")));
    let mut mixed = serde_json::to_string(&send("small", "s0")).expect("json");
    mixed.push('\n');
    mixed.push_str(&big);
    let r = ana.post_raw(mixed.as_bytes()).await;
    assert_eq!(r.status, 413, "one line too big refuses the whole POST");
    let r = ana.post_raw(&[0xff, 0xfe, b'\n']).await;
    assert_eq!((r.status, code(&r).as_deref()), (400, Some("bad_utf8")));

    // Not JSON: taken, and answered like on a WebSocket, over the stream.
    assert_eq!(ana.post_raw(b"{not json").await.status, 202);
    let error = ana
        .recv_until(|m| match m {
            ServerMsg::Error(e) => Some(e),
            _ => None,
        })
        .await;
    assert_eq!(error.code, ErrorCode::BadJson);

    // The connection goes on, and nothing refused above was sent.
    ana.say(&send("sigo aquí", "s1")).await;
    let acked = ana
        .recv_until(|m| match m {
            ServerMsg::Ack(ack) => Some(ack.nonce),
            _ => None,
        })
        .await;
    assert_eq!(acked, "s1", "the first ack is the line after the refusals");

    // Last-Event-ID that is not an id this stream sent.
    for bad in ["abc", "999999"] {
        let (status, _, body) = SseStream::open(addr, &path, &[("Last-Event-ID", bad)]).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("bad_last_event_id"), "{body}");
    }

    // More frames than the connection may have waiting: refused whole, none taken.
    let many: Vec<ClientMsg> = (0..65)
        .map(|i| send("uno de muchos", &format!("m{i}")))
        .collect();
    let r = ana.post(&many).await;
    assert_eq!((r.status, code(&r).as_deref()), (429, Some("busy")));
    ana.say(&send("después", "s2")).await;
    let acked = ana
        .recv_until(|m| match m {
            ServerMsg::Ack(ack) => Some(ack.nonce),
            _ => None,
        })
        .await;
    assert_eq!(acked, "s2", "none of the 65 was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_posts_is_closed_like_a_flooding_websocket() {
    let server = TestServer::start_with(Config {
        frame_rate: 5,
        rate_limit_close_after: 1,
        ..testkit::unlimited()
    })
    .await;
    let (mut ana, _) = SseClient::welcomed_in(server.addr, &["general"]).await;
    let junk: Vec<ClientMsg> = (0..20).map(|_| ClientMsg::Ping).collect();
    let flood = {
        let ana = SseClient {
            addr: ana.addr,
            transport: ana.transport.clone(),
            stream: None,
            last_id: 0,
            answer_pings: false,
            recv_buffer: None,
        };
        tokio::spawn(async move {
            // Until the server ends the transport; 429s on the way are the inbox's bound.
            loop {
                let r = ana.post(&junk).await;
                match r.status {
                    202 | 429 => tokio::task::yield_now().await,
                    404 => return,
                    other => panic!("unexpected {other}: {}", r.body),
                }
            }
        })
    };
    assert_eq!(
        ana.closed().await,
        Some(1008),
        "closed for its rate, as a WebSocket is"
    );
    tokio::time::timeout(TIMEOUT, flood)
        .await
        .expect("the flood ends with the transport")
        .expect("no panic");
    // The server is fine.
    let mut bea = server.client_in(&["general"]).await;
    bea.send_with_nonce("todo bien", "b1").await;
    bea.recv_ack_of("b1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_is_never_read_ends_its_connection_and_frees_its_place() {
    let server = TestServer::start_with(Config {
        heartbeat: Duration::from_millis(500),
        outbox_bytes: 64 * 1024,
        ..testkit::unlimited()
    })
    .await;
    let (ana, _) = SseClient::welcomed_in_with(server.addr, &["general"], Some(4096)).await;
    // `ana` keeps its stream open and never reads it again; it keeps posting (so it is not
    // silent), as a page stuck behind a proxy that buffers the stream would.
    let mut bea = server.client_in(&["general"]).await;
    let body = "z".repeat(1_900);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut n, mut ana_left) = (0, false);
    loop {
        for _ in 0..20 {
            n += 1;
            bea.send_with_nonce(&body, &format!("n{n}")).await;
        }
        // Up to the last line's ack, noting whether ana left on the way.
        let last = format!("n{n}");
        loop {
            match bea.recv().await {
                ServerMsg::Ack(ack) if ack.nonce == last => break,
                ServerMsg::Presence(p) => ana_left |= p.online == 1,
                ServerMsg::Ack(_) | ServerMsg::Message(_) => {}
                other => panic!("expected the ack of {last}, got {other:?}"),
            }
        }
        if ana.post_raw(b"").await.status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a stream never read must end its connection"
        );
    }
    let (_, metrics) = server.get("/metrics").await;
    let slow = metric(&metrics, "charla_closes_total{reason=\"slow_consumer\"}").unwrap_or(0.0)
        + metric(&metrics, "charla_closes_total{reason=\"stalled\"}").unwrap_or(0.0);
    assert!(slow >= 1.0, "closed as slow or stalled:\n{metrics}");
    // bea, reading past its own lines and acks, sees ana leave.
    while !ana_left {
        match bea.recv().await {
            ServerMsg::Presence(p) => ana_left = p.online == 1,
            ServerMsg::Message(_) | ServerMsg::Ack(_) => {}
            other => panic!("expected ana to leave, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_that_answers_pings_lives_and_a_silent_one_is_let_go() {
    let server = TestServer::start_with(Config {
        heartbeat: Duration::from_millis(300),
        http_timeout: Duration::from_millis(400),
        ..testkit::unlimited()
    })
    .await;
    let (mut ana, _) = SseClient::welcomed_in(server.addr, &["general"]).await;
    let (mut bea, _) = SseClient::welcomed_in(server.addr, &["general"]).await;
    bea.answer_pings = false;
    // Six pings answered: ana outlives many heartbeats and the HTTP deadline (400 ms) on
    // an idle stream. Meanwhile bea, who read its pings but never answered, is let go
    // after two heartbeats: ana sees her leave.
    let (mut pings, mut bea_left) = (0, false);
    while pings < 6 || !bea_left {
        let event = ana.next_event().await.expect("the stream stays open");
        pings += usize::from(event.event == "ping");
        if event.event == "message"
            && let Ok(ServerMsg::Presence(p)) = shared::decode_server(&event.data)
        {
            bea_left |= p.online == 1;
        }
    }
    assert_eq!(ana.post_raw(b"").await.status, 202);
    // bea's stream ended, with no close event (a silent client has nobody to tell), and
    // its transport is gone.
    while let Some(event) = bea.next_event().await {
        assert_ne!(
            event.event, "close",
            "a silent client gets no close: {event:?}"
        );
    }
    until_gone(&bea, TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_an_sse_client_on_one_node_chats_with_a_websocket_on_another() {
    let redis = RedisServer::start().await;
    let node = || {
        TestServer::start_with(Config {
            store: backend::Store::Redis(redis.url()),
            ..testkit::unlimited()
        })
    };
    let (a, b) = (node().await, node().await);
    let (mut ana, welcome) = SseClient::welcomed_in(a.addr, &["general"]).await;
    let mut bea: Client = b.client_in(&["general"]).await;
    ana.recv_until(|m| match m {
        ServerMsg::Presence(p) if p.online == 2 => Some(()),
        _ => None,
    })
    .await;
    ana.say(&send("desde A por SSE", "a1")).await;
    let seq = ack_of(&mut ana, "a1").await;
    let got = bea.recv_line().await;
    assert_eq!((got.seq, got.from), (seq, welcome.id));
    assert_eq!(line(&mut ana).await, (seq.0, "desde A por SSE".to_owned()));
    bea.send_with_nonce("desde B por WS", "b1").await;
    assert_eq!(
        line(&mut ana).await,
        (seq.0 + 1, "desde B por WS".to_owned())
    );
    bea.typing("tecleo").await;
    let seen = ana
        .recv_until(|m| match m {
            ServerMsg::Typing(t) => Some(t.text),
            _ => None,
        })
        .await;
    assert_eq!(seen, "tecleo");
}
