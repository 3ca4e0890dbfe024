//! Resuming under attack (issue #20, item 4), through real sockets: resumes are metered per
//! address, a replaced token's grace runs from its replacement however often it is
//! replayed, and evicting sessions at `--max-sessions` never lets a resent line be appended
//! twice.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use backend::Config;
use shared::ClientMsg;
use testkit::{Client, TestServer, unlimited};

fn hello(resume: Option<&str>) -> ClientMsg {
    ClientMsg::Hello {
        resume: resume.map(str::to_owned),
        rooms: Some([("general".to_owned(), shared::Seq(0))].into()),
        name: None,
        token: None,
    }
}

/// Resumes `token` and reads its welcome and joined; the client is closed again.
async fn resume(server: &TestServer, token: &str) -> Client {
    let mut client = Client::hello(&server.ws_url(), &hello(Some(token))).await;
    let _ = client.recv_joined().await;
    client
}

#[tokio::test]
async fn resumes_past_the_address_budget_are_closed_with_1008() {
    let server = TestServer::start_with(Config {
        resumes_per_min: 3,
        ..unlimited()
    })
    .await;
    let mut client = Client::hello(&server.ws_url(), &hello(None)).await;
    let id = client.id.clone();
    for _ in 0..3 {
        let token = client.resume.clone();
        client.close().await;
        client = resume(&server, &token).await;
        assert!(client.resumed && client.id == id);
    }
    let token = client.resume.clone();
    client.close().await;
    let refused = Client::try_hello(&format!("ws://{}/ws", server.addr), &hello(Some(&token)))
        .await
        .err();
    assert_eq!(refused, Some(Some(1008)), "the fourth resume in a minute");
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains(r#"charla_closes_total{reason="too_many_resumes"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_replaced_token_replayed_dies_when_the_grace_from_its_replacement_ends() {
    const GRACE: Duration = Duration::from_secs(3);
    let server = TestServer::start_with(Config {
        resume_grace: GRACE,
        ..unlimited()
    })
    .await;
    let first = Client::hello(&server.ws_url(), &hello(None)).await;
    let (id, old) = (first.id.clone(), first.resume.clone());
    first.close().await;
    // Resumed: `old` is replaced from now (the server replaced it before this returns).
    let second = resume(&server, &old).await;
    let replaced_by = Instant::now();
    second.close().await;

    // Replayed within the grace, it still resumes (a welcome may have been lost)...
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let replay = resume(&server, &old).await;
    assert!(replay.resumed && replay.id == id, "within the grace");
    replay.close().await;

    // ...but that replay did not restart the grace: past it, counted from the replacement,
    // the old token resumes nothing.
    let past = replaced_by + GRACE + Duration::from_millis(200);
    tokio::time::sleep_until(past.into()).await;
    let late = resume(&server, &old).await;
    assert!(
        !late.resumed,
        "the grace ended {GRACE:?} after the replacement"
    );
    assert_ne!(late.id, id);
}

#[tokio::test]
async fn evicting_sessions_never_lets_a_resent_line_be_appended_twice() {
    let server = TestServer::start_with(Config {
        max_sessions: 10,
        ..unlimited()
    })
    .await;
    // A line whose ack the client never saw: it will send it again, with its nonce.
    let mut sender = server.client_in(&["general"]).await;
    sender.send_with_nonce("una vez", "n-1").await;
    let seq = sender.recv_ack_of("n-1").await;
    let (id, token) = (sender.id.clone(), sender.resume.clone());
    sender.close().await;

    // Many newer sessions push the table past its cap: the oldest idle ones are evicted.
    for _ in 0..30 {
        let client = Client::hello(&server.ws_url(), &hello(None)).await;
        client.close().await;
    }

    let (mut back, joined) = Client::resume(&server.ws_url(), &token, &[("general", seq)]).await;
    assert!(
        back.resumed && back.id == id,
        "a session that sent a line is kept"
    );
    assert!(joined[0].lines.is_empty());
    back.send_with_nonce("una vez", "n-1").await;
    assert_eq!(
        back.recv_ack_of("n-1").await,
        seq,
        "acked again, not appended again"
    );

    let mut reader = server.client_in(&[]).await;
    let lines = reader.join("general").await.lines;
    assert_eq!(lines.len(), 1, "appended once: {lines:?}");
    assert_eq!(lines[0].seq.0, seq);
}
