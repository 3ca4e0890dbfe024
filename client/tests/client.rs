//! The native client against a real server: sends come back acknowledged with their seq or
//! refused with their code; lines arrive once, in order; a client that loses its server
//! resumes (same id) when it comes back, and a line sent meanwhile is stored once.

#![allow(missing_docs)]

use std::time::Duration;

use client::{Client, Event, Options, SendError};
use shared::{ErrorCode, RoomName, Seq};
use testkit::{TestServer, fresh_data_dir, next_event as next};

const TIMEOUT: Duration = Duration::from_secs(15);

fn general() -> RoomName {
    RoomName::general()
}

#[tokio::test]
async fn a_send_is_acknowledged_with_its_seq_and_reaches_others_once() {
    let server = TestServer::start().await;
    let url = format!("ws://{}", server.addr);
    let options = Options {
        name: Some("Ana".into()),
        ..Options::default()
    };
    let (ana, mut ana_events) = Client::connect(&url, options).await.expect("connect");
    let (bob, mut bob_events) = Client::connect(&url, Options::default())
        .await
        .expect("connect");
    for events in [&mut ana_events, &mut bob_events] {
        next(events, |e| matches!(e, Event::Joined { .. }).then_some(())).await;
    }
    let first = ana.send(&general(), "hola").await.expect("stored");
    let second = ana.send(&general(), "¿qué tal?").await.expect("stored");
    assert_eq!(second, Seq(first.0 + 1));
    for expected in ["hola", "¿qué tal?"] {
        let line = next(&mut bob_events, |e| match e {
            Event::Line(line) => Some(line),
            _ => None,
        })
        .await;
        assert_eq!(line.text, expected);
        assert_eq!(line.name.map(|n| n.to_string()), Some("Ana".into()));
    }
    // Refused lines come back typed.
    let refused = ana.send(&general(), "   ").await;
    assert_eq!(
        refused.as_ref().map_err(SendError::code),
        Err(Some(ErrorCode::Empty))
    );
    let refused = ana.send(&general(), "x".repeat(2_001)).await;
    assert_eq!(
        refused.as_ref().map_err(SendError::code),
        Err(Some(ErrorCode::TooLarge))
    );
    let elsewhere = RoomName::parse("dev").expect("room");
    let refused = ana.send(&elsewhere, "hola").await;
    assert_eq!(
        refused.as_ref().map_err(SendError::code),
        Err(Some(ErrorCode::NotJoined))
    );
    ana.close().await;
    bob.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_resumes_across_a_restart_and_a_line_sent_meanwhile_is_stored_once() {
    let data_dir = fresh_data_dir();
    let config = || backend::Config {
        store: backend::Store::Sqlite(data_dir.clone()),
        ..backend::Config::default()
    };
    let server = TestServer::start_with(config()).await;
    let addr = server.addr;
    let url = format!("ws://{addr}");
    let (chat, mut events) = Client::connect(&url, Options::default())
        .await
        .expect("connect");
    let id = next(&mut events, |e| match e {
        Event::Welcome { id, .. } => Some(id),
        _ => None,
    })
    .await;
    chat.send(&general(), "before").await.expect("stored");

    server.stop().await;
    next(&mut events, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    // Sent while the server is down: it waits, then goes out once.
    let pending = tokio::spawn({
        let chat = chat.clone();
        async move { chat.send(&general(), "during").await }
    });
    let server = TestServer::start_at(addr, config()).await;
    let (resumed_id, resumed) = next(&mut events, |e| match e {
        Event::Welcome { id, resumed, .. } => Some((id, resumed)),
        _ => None,
    })
    .await;
    assert_eq!(
        (resumed_id, resumed),
        (id, true),
        "same id after the restart"
    );
    let seq = tokio::time::timeout(TIMEOUT, pending)
        .await
        .expect("acked in time")
        .expect("task")
        .expect("stored");
    assert_eq!(seq, Seq(2));

    // The history holds each line once.
    let (_, mut fresh) = Client::connect(&url, Options::default())
        .await
        .expect("connect");
    let lines = next(&mut fresh, |e| match e {
        Event::Joined { lines, .. } => Some(lines),
        _ => None,
    })
    .await;
    let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["before", "during"]);
    chat.close().await;
    server.stop().await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_with_a_clear_error() {
    let err = Client::connect("ws://127.0.0.1:9", Options::default())
        .await
        .err()
        .expect("nothing listens on port 9");
    assert!(err.to_string().contains("could not connect"), "{err}");
    let err = Client::connect("127.0.0.1:3000", Options::default())
        .await
        .err()
        .expect("not a URL");
    assert!(err.to_string().contains("not a Charla URL"), "{err}");
}
