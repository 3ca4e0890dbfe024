//! Where WebSockets cannot open: behind a proxy that refuses every upgrade, the client falls
//! back to the SSE transport by itself, chats and types live over it, loses nothing and
//! repeats nothing across a server restart, and moves to a WebSocket once the proxy lets
//! upgrades through — its next line exactly one `seq` on, no line seen twice.

#![allow(missing_docs)]

use std::net::SocketAddr;

use client::{Client, Event, Options, Transport};
use shared::{RoomName, Seq};
use testkit::{TestServer, fresh_data_dir, next_event, proxy::Proxy};

fn general() -> RoomName {
    RoomName::general()
}

/// Reads lines (new ones, and those a resume brings in its `joined`) until the one at
/// `seq`, its text; every line read must come after the one before it (none twice, none out
/// of order).
async fn line_at(events: &mut client::Events, last: &mut Seq, seq: Seq) -> String {
    loop {
        let lines = next_event(events, |e| match e {
            Event::Line(line) => Some(vec![line]),
            Event::Joined { lines, .. } if !lines.is_empty() => Some(lines),
            _ => None,
        })
        .await;
        for line in lines {
            assert!(
                line.seq > *last,
                "line {} came after {last}: twice or out of order",
                line.seq
            );
            *last = line.seq;
            if line.seq == seq {
                return line.text;
            }
            assert!(line.seq < seq, "line {seq} was skipped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_that_refuses_websockets_the_client_chats_over_sse_then_moves_back() {
    let server_addr = SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
    let proxy = Proxy::start(server_addr).await;
    let data_dir = fresh_data_dir();
    let config = || backend::Config {
        store: backend::Store::Sqlite(data_dir.clone()),
        allow_hosts: vec![proxy.addr.to_string()],
        ..backend::Config::default()
    };
    let server = TestServer::start_at(server_addr, config()).await;

    let options = Options {
        name: Some("Ana".into()),
        ..Options::default()
    };
    let (ana, mut ana_events) = Client::connect(&format!("http://{}", proxy.addr), options)
        .await
        .expect("connects over SSE");
    assert!(proxy.refused() >= 1, "it tried a WebSocket first");
    next_event(&mut ana_events, |e| {
        matches!(e, Event::Transport(Transport::Sse)).then_some(())
    })
    .await;
    let (bob, mut bob_events) = Client::connect(&format!("ws://{server_addr}"), Options::default())
        .await
        .expect("connects over a WebSocket");
    next_event(&mut bob_events, |e| {
        matches!(e, Event::Joined { .. }).then_some(())
    })
    .await;

    // Acks, lines both ways and live typing, over SSE and POSTs.
    let (mut ana_last, mut bob_last) = (Seq(0), Seq(0));
    let first = ana.send(&general(), "hola por SSE").await.expect("stored");
    assert_eq!(
        line_at(&mut bob_events, &mut bob_last, first).await,
        "hola por SSE"
    );
    let reply = bob.send(&general(), "hola, Ana").await.expect("stored");
    assert_eq!(reply, Seq(first.0 + 1));
    assert_eq!(
        line_at(&mut ana_events, &mut ana_last, reply).await,
        "hola, Ana"
    );
    bob.typing(&general(), "escribiendo…");
    let typed = next_event(&mut ana_events, |e| match e {
        Event::Typing { text, .. } if !text.is_empty() => Some(text),
        _ => None,
    })
    .await;
    assert_eq!(typed, "escribiendo…");

    // A line sent while the server is down is stored once when it is back.
    server.stop().await;
    next_event(&mut ana_events, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    let during = tokio::spawn({
        let ana = ana.clone();
        async move { ana.send(&general(), "durante el reinicio").await }
    });
    let server = TestServer::start_at(server_addr, config()).await;
    let during = during.await.expect("the send task").expect("stored");
    assert_eq!(during, Seq(reply.0 + 1), "stored once, right after");
    for (events, last) in [
        (&mut ana_events, &mut ana_last),
        (&mut bob_events, &mut bob_last),
    ] {
        assert_eq!(line_at(events, last, during).await, "durante el reinicio");
    }

    // Upgrades go through now: the client moves to a WebSocket by itself.
    proxy.allow();
    next_event(&mut ana_events, |e| {
        matches!(e, Event::Transport(Transport::WebSocket)).then_some(())
    })
    .await;
    assert!(proxy.passed() >= 1, "the WebSocket goes through the proxy");
    let after = ana
        .send(&general(), "ya por WebSocket")
        .await
        .expect("stored");
    assert_eq!(after, Seq(during.0 + 1), "nothing stored twice on the way");
    let last = bob.send(&general(), "fin").await.expect("stored");
    for (events, seen) in [
        (&mut ana_events, &mut ana_last),
        (&mut bob_events, &mut bob_last),
    ] {
        assert_eq!(line_at(events, seen, after).await, "ya por WebSocket");
        assert_eq!(line_at(events, seen, last).await, "fin");
    }
    ana.close().await;
    bob.close().await;
    server.stop().await;
}
