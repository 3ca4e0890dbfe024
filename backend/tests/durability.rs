//! Durable history, acks, resume and heartbeats, through real sockets and a real SQLite file.

use std::time::Duration;

use backend::Config;
use shared::{ClientMsg, Seq, ServerMsg};
use testkit::{Client, SessionClient, TestServer, assert_gapless_once, fresh_data_dir};

fn on_disk(dir: &std::path::Path) -> Config {
    Config {
        store: backend::Store::Sqlite(dir.to_path_buf()),
        ..testkit::unlimited()
    }
}

#[tokio::test]
async fn the_ack_comes_after_commit_just_before_the_line_and_a_resend_is_not_appended() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let mut bob = server.client().await;
    alice.send_with_nonce("hola", "n-1").await;
    assert_eq!(alice.recv_ack().await, ("n-1".to_owned(), 1));
    let line = alice.recv_line().await;
    assert_eq!((line.seq.0, line.nonce.as_deref()), (1, Some("n-1")));
    assert_eq!(
        bob.recv_line().await,
        line,
        "others get the line, not the ack"
    );

    // The same nonce again (a retry after a lost ack): acked again, never appended again.
    alice.send_with_nonce("hola", "n-1").await;
    assert_eq!(alice.recv_ack().await, ("n-1".to_owned(), 1));
    alice.send_with_nonce("next", "n-2").await;
    assert_eq!(alice.recv_ack().await, ("n-2".to_owned(), 2));
    assert_eq!(
        bob.recv_line().await.text,
        "next",
        "bob never saw a second hola"
    );
    // Another client may use the same nonce string: it is only unique per sender.
    bob.send_with_nonce("mine", "n-1").await;
    assert_eq!(bob.recv_ack().await, ("n-1".to_owned(), 3));
}

#[tokio::test]
async fn a_restart_keeps_history_seq_and_resume_tokens() {
    let dir = fresh_data_dir();
    let server = TestServer::start_with(on_disk(&dir)).await;
    let mut alice = server.client().await;
    for i in 1..=3 {
        alice
            .send_with_nonce(&format!("line {i}"), &format!("n-{i}"))
            .await;
        assert_eq!(alice.recv_ack().await, (format!("n-{i}"), i));
        alice.recv_line().await;
    }
    let (token, id) = (alice.resume.clone(), alice.id.clone());
    server.stop().await;

    let server = TestServer::start_with(on_disk(&dir)).await;
    let mut newcomer = server.client().await;
    let texts: Vec<&str> = newcomer.history.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["line 1", "line 2", "line 3"]);
    assert_gapless_once(&newcomer.history);
    newcomer.send_line("after the restart").await;
    assert_eq!(
        newcomer.recv_line().await.seq,
        Seq(4),
        "seq goes on, no reuse"
    );

    // The old token still resumes the old id, and the accepted nonces are remembered.
    let (mut alice, joined) = Client::resume(&server.ws_url(), &token, &[("general", 3)]).await;
    assert_eq!(alice.id, id);
    assert!(alice.resumed);
    assert!(joined[0].resumed);
    assert_eq!(
        joined[0].lines.iter().map(|l| l.seq.0).collect::<Vec<_>>(),
        [4]
    );
    alice.send_with_nonce("line 2", "n-2").await;
    assert_eq!(alice.recv_ack().await, ("n-2".to_owned(), 2));
}

#[tokio::test]
async fn resuming_gets_exactly_the_missed_lines_and_keeps_the_id() {
    let server = TestServer::start().await;
    let alice = server.client().await;
    let mut bob = server.client().await;
    let (token, id) = (alice.resume.clone(), alice.id.clone());
    bob.send_line("before").await;
    bob.recv_line().await;
    drop(alice); // Alice has seen nothing: her last seq is 0.
    for i in 0..3 {
        bob.send_line(&format!("missed {i}")).await;
        bob.recv_line().await;
    }
    let (mut alice, joined) = Client::resume(&server.ws_url(), &token, &[("general", 1)]).await;
    assert_eq!(alice.id, id, "same public id");
    assert!(alice.resumed && joined[0].resumed);
    let texts: Vec<&str> = joined[0].lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        ["missed 0", "missed 1", "missed 2"],
        "exactly what came after seq 1"
    );
    bob.send_line("live").await;
    assert_eq!(
        alice.recv_line().await.seq,
        Seq(5),
        "then the live stream, no gap"
    );

    // A token nobody issued is a new session.
    let (stranger, _) = Client::resume(&server.ws_url(), "forged", &[("general", 0)]).await;
    assert!(!stranger.resumed);
    assert_ne!(stranger.id, id);
}

#[tokio::test]
async fn a_client_too_far_behind_gets_the_latest_page_and_is_told_so() {
    let config = Config {
        history_cap: 5,
        welcome_lines: 3,
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config).await;
    let alice = server.client().await;
    let token = alice.resume.clone();
    drop(alice);
    let mut bob = server.client().await;
    for i in 1..=8 {
        bob.send_line(&format!("l{i}")).await;
        bob.recv_line().await;
    }
    // Lines 1..=3 are gone (cap 5): a replay after 1 is impossible.
    let (alice, joined) = Client::resume(&server.ws_url(), &token, &[("general", 1)]).await;
    assert!(alice.resumed, "the session itself is known");
    assert!(
        !joined[0].resumed,
        "the reply says the client must replace its history"
    );
    let seqs: Vec<u64> = joined[0].lines.iter().map(|l| l.seq.0).collect();
    assert_eq!(seqs, [6, 7, 8]);
    assert!(joined[0].has_more);
}

#[tokio::test]
async fn older_lines_load_on_demand_page_by_page() {
    let config = Config {
        welcome_lines: 3,
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config).await;
    let mut bob = server.client().await;
    for i in 1..=8 {
        bob.send_line(&format!("l{i}")).await;
        bob.recv_line().await;
    }
    let mut alice = server.client().await;
    assert_eq!(
        alice.history.iter().map(|l| l.seq.0).collect::<Vec<_>>(),
        [6, 7, 8]
    );
    assert!(alice.has_more);
    let older = |before, limit| {
        shared::encode(&ClientMsg::LoadOlder {
            room: None,
            before: Seq(before),
            limit,
        })
    };
    alice.send_text(&older(6, 3)).await;
    match alice.recv().await {
        ServerMsg::Older(shared::server::Older {
            lines, has_more, ..
        }) => {
            assert_eq!(lines.iter().map(|l| l.seq.0).collect::<Vec<_>>(), [3, 4, 5]);
            assert!(has_more);
        }
        other => panic!("expected older, got {other:?}"),
    }
    alice.send_text(&older(3, 100)).await;
    match alice.recv().await {
        ServerMsg::Older(shared::server::Older {
            lines, has_more, ..
        }) => {
            assert_eq!(lines.iter().map(|l| l.seq.0).collect::<Vec<_>>(), [1, 2]);
            assert!(!has_more);
        }
        other => panic!("expected older, got {other:?}"),
    }
}

#[tokio::test]
async fn app_level_ping_gets_pong() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    alice.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(alice.recv().await, ServerMsg::Pong);
}

#[tokio::test]
async fn the_heartbeat_drops_a_silent_client_and_keeps_a_live_one() {
    let config = Config {
        heartbeat: std::time::Duration::from_millis(100),
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let mut watcher = server.client().await; // reads, so its WebSocket layer answers pings
    let started = std::time::Instant::now();
    let silent = server.client().await; // never reads again: never answers a ping
    // Presence is coalesced (at most 4 a second), so the watcher may never see "2": what it
    // must see is the count back at 1 once the silent client is dropped.
    watcher.await_presence("general", 1).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "not before two intervals"
    );
    drop(silent);
    // The watcher, which answered every ping, is still here ten intervals later.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1_000);
    while tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout_at(deadline, watcher.recv_raw()).await;
    }
    watcher.send_line("still here").await;
    assert_eq!(watcher.recv_line().await.text, "still here");
}

#[tokio::test]
async fn a_session_client_cut_off_mid_stream_ends_with_every_line_once() {
    let server = TestServer::start().await;
    let url = server.ws_url();
    let mut alice = SessionClient::new("alice");
    assert!(alice.connect(&url).await);
    let mut bob = server.client().await;
    for i in 0..5 {
        alice.send(&format!("a{i}")).await;
        bob.send_line(&format!("b{i}")).await;
    }
    alice.cut(); // gone without a goodbye, with some of its lines unacked
    for i in 5..10 {
        alice.send(&format!("a{i}")).await; // queued while offline
        bob.send_line(&format!("b{i}")).await;
    }
    // Bob's own ten lines are in before Alice comes back.
    let mut bobs = 0;
    while bobs < 10 {
        if bob.recv_line().await.text.starts_with('b') {
            bobs += 1;
        }
    }
    assert!(alice.connect(&url).await);
    let deadline = tokio::time::Instant::now() + testkit::TIMEOUT;
    while !alice.session.pending().is_empty() || alice.general().len() < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never caught up: {:?}",
            alice.shown
        );
        alice.pump(Duration::from_millis(50)).await;
    }
    let history = server.client().await.history;
    assert_eq!(alice.general(), history);
    assert_gapless_once(&history);
    assert_eq!(history.len(), 20);
}

/// Sends `text` with `nonce` until it is acked (a real client resends what the server could
/// not take yet); returns the seq.
async fn send_until_acked(client: &mut Client, text: &str, nonce: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + testkit::TIMEOUT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{nonce} never acked"
        );
        client.send_with_nonce(text, nonce).await;
        loop {
            match client.recv().await {
                ServerMsg::Ack(shared::server::Ack { nonce: n, seq, .. }) if n == nonce => {
                    return seq.0;
                }
                ServerMsg::Error(shared::server::Error { code, nonce: n, .. }) => {
                    assert_eq!(code, shared::ErrorCode::Unavailable);
                    assert_eq!(n.as_deref(), Some(nonce), "a refusal names its nonce");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_welcomed_under_a_full_commit_queue_survive_a_restart_and_a_resend_appends_once() {
    let dir = fresh_data_dir();
    let slow_disk = Config {
        store: backend::Store::Sqlite(dir.clone()),
        commit_queue: 2,
        commit_stall: Some(Duration::from_millis(150)),
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(slow_disk).await;
    let url = server.ws_url();
    let hello = ClientMsg::Hello {
        resume: None,
        rooms: None,
        name: None,
        token: None,
    };
    // Thirty pages open at once against a disk that keeps two commits waiting at most.
    let attempts: Vec<_> = (0..30)
        .map(|_| {
            let (url, hello) = (url.clone(), hello.clone());
            tokio::spawn(async move { Client::try_hello(&url, &hello).await })
        })
        .collect();
    let mut welcomed = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(client) => welcomed.push(client),
            Err(code) => {
                assert_eq!(
                    code,
                    Some(1013),
                    "refused with 'try again later', never dropped"
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the queue was full for some");
    assert!(!welcomed.is_empty());
    // Each welcomed page says one line, resending until it is acked.
    let mut sent = Vec::new();
    for (k, client) in welcomed.iter_mut().enumerate() {
        let (text, nonce) = (format!("line {k}"), format!("k{k}"));
        client.recv_joined().await;
        let seq = send_until_acked(client, &text, &nonce).await;
        sent.push((client.resume.clone(), client.id.clone(), text, nonce, seq));
    }
    drop(welcomed);
    server.stop().await;

    // After a restart every token still resumes its id, and resending (as a page that never
    // saw its ack would) is acked with the same seq, not appended again.
    let server = TestServer::start_with(Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..testkit::unlimited()
    })
    .await;
    for (token, id, text, nonce, seq) in &sent {
        let (mut client, _) = Client::resume(&server.ws_url(), token, &[("general", 0)]).await;
        assert!(client.resumed, "a welcomed session was on disk");
        assert_eq!(&client.id, id);
        assert_eq!(send_until_acked(&mut client, text, nonce).await, *seq);
    }
    let history = server.client().await.history;
    assert_gapless_once(&history);
    assert_eq!(history.len(), sent.len(), "every line once");
}

#[tokio::test]
async fn a_resend_after_its_line_fell_past_the_history_cap_is_acked_not_appended() {
    let dir = fresh_data_dir();
    let config = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        history_cap: 3,
        ..testkit::unlimited()
    };
    let server = TestServer::start_with(config()).await;
    let mut alice = server.client().await;
    let mut bob = server.client().await;
    assert_eq!(send_until_acked(&mut alice, "mine", "a-1").await, 1);
    for i in 0..5 {
        send_until_acked(&mut bob, &format!("b{i}"), &format!("b-{i}")).await;
    }
    // Line 1 is gone from the history (cap 3), but its nonce is not forgotten.
    assert_eq!(send_until_acked(&mut alice, "mine", "a-1").await, 1);
    let token = alice.resume.clone();
    drop(alice);
    server.stop().await;
    let server = TestServer::start_with(config()).await;
    let (mut alice, _) = Client::resume(&server.ws_url(), &token, &[("general", 6)]).await;
    assert!(alice.resumed);
    assert_eq!(send_until_acked(&mut alice, "mine", "a-1").await, 1);
    let history = server.client().await.history;
    let seqs: Vec<u64> = history.iter().map(|l| l.seq.0).collect();
    assert_eq!(seqs, [4, 5, 6], "nothing was appended again");
}
