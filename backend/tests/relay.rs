//! The relay, through real sockets: welcome, typing, lines, order, history, presence.

use std::collections::HashSet;

use shared::{ConnId, ServerMsg};
use testkit::{Client, TestServer};

#[tokio::test]
async fn welcome_comes_first_with_history_online_and_protocol() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    assert_eq!(
        alice.id.as_str().len(),
        16,
        "ids are 96 bits of URL-safe base64"
    );
    assert!(alice.history.is_empty());
    assert_eq!(alice.online, 1);
    assert_eq!(alice.protocol, shared::limits::PROTOCOL_VERSION);

    alice.send_line("hola").await;
    let line = alice.recv_line().await;
    assert_eq!((line.seq.0, line.text.as_str()), (1, "hola"));
    assert_eq!(line.from, alice.id);

    let bob = server.client().await;
    assert_ne!(bob.id, alice.id);
    assert_eq!(bob.online, 2);
    assert_eq!(bob.history, vec![line]);
}

#[tokio::test]
async fn typing_reaches_every_client_typist_included_and_empty_clears() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.client().await);
    }
    let typist = clients[0].id.clone();
    clients[0].typing("ho").await;
    for client in &mut clients {
        assert_eq!(next_typing(client).await, (typist.clone(), "ho".to_owned()));
    }
    clients[0].typing("").await;
    for client in &mut clients {
        assert_eq!(next_typing(client).await, (typist.clone(), String::new()));
    }
}

#[tokio::test]
async fn a_leaving_typist_has_its_live_text_cleared() {
    let server = TestServer::start().await;
    let mut typist = server.client().await;
    let mut watcher = server.client().await;
    let typist_id = typist.id.clone();
    typist.typing("half a thou").await;
    assert_eq!(next_typing(&mut watcher).await.1, "half a thou");
    typist.close().await;
    assert_eq!(next_typing(&mut watcher).await, (typist_id, String::new()));
}

/// Skips presence frames (clients joining) until a typing frame arrives.
async fn next_typing(client: &mut Client) -> (ConnId, String) {
    loop {
        match client.recv().await {
            ServerMsg::Typing(shared::server::Typing { from, text, .. }) => return (from, text),
            ServerMsg::Presence(_) => {}
            other => panic!("expected typing, got {other:?}"),
        }
    }
}

/// Well-behaved clients, so they are the project's own client (`client` crate): each sends
/// its lines (each `send` returns once acked) while reading everyone's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_see_every_line_in_one_seq_order_without_gaps() {
    const CLIENTS: usize = 6;
    const LINES: usize = 50;
    let server = TestServer::start_with(testkit::unlimited()).await;
    let general = shared::RoomName::general();
    let url = server.url();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let connected = client::Client::connect(&url, client::Options::default());
        let (cli, mut events) = tokio::time::timeout(testkit::TIMEOUT, connected)
            .await
            .expect("connected in time")
            .expect("connected");
        let id = loop {
            match next_event(&mut events).await {
                client::Event::Welcome { id, .. } => break id,
                _ => continue,
            }
        };
        clients.push((cli, events, id));
    }
    // Everyone sends at once while reading; each collects every line it sees.
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, (cli, mut events, id))| {
            let room = general.clone();
            tokio::spawn(async move {
                for i in 0..LINES {
                    cli.send(&room, format!("c{n} l{i}")).await.expect("acked");
                }
                let mut seen = Vec::new();
                while seen.len() < CLIENTS * LINES {
                    match next_event(&mut events).await {
                        client::Event::Line(line) => seen.push(line),
                        client::Event::Joined { lines, .. } => seen.extend(lines),
                        _ => {}
                    }
                }
                cli.close().await;
                (id, seen)
            })
        })
        .collect();
    let mut views = Vec::new();
    for task in tasks {
        views.push(task.await.expect("client task"));
    }

    let (_, first) = &views[0];
    let seqs: Vec<u64> = first.iter().map(|l| l.seq.0).collect();
    let expected: Vec<u64> = (1..=(CLIENTS * LINES) as u64).collect();
    assert_eq!(seqs, expected, "seq starts at 1 with no gaps, in order");
    for (_, view) in &views {
        assert_eq!(
            view, first,
            "every client sees the same lines in the same order"
        );
    }
    let distinct: HashSet<&str> = first.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(distinct.len(), CLIENTS * LINES, "no line lost or repeated");
    // Each line carries its real sender, and a sender's lines keep their order.
    for (n, (id, _)) in views.iter().enumerate() {
        let mine: Vec<&str> = first
            .iter()
            .filter(|l| &l.from == id)
            .map(|l| l.text.as_str())
            .collect();
        let sent: Vec<String> = (0..LINES).map(|i| format!("c{n} l{i}")).collect();
        assert_eq!(mine, sent);
    }

    let newcomer = server.client().await;
    assert_eq!(
        &newcomer.history, first,
        "a newcomer gets the whole history"
    );
}

/// The next event of a `client` crate client, within the tests' timeout.
async fn next_event(events: &mut client::Events) -> client::Event {
    tokio::time::timeout(testkit::TIMEOUT, events.next())
        .await
        .expect("an event in time")
        .expect("the client is running")
}

#[tokio::test]
async fn presence_follows_connects_and_disconnects() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let bob = server.client().await;
    alice.await_presence("general", 2).await;
    let carol = server.client().await;
    alice.await_presence("general", 3).await;
    bob.close().await;
    alice.await_presence("general", 2).await;
    drop(carol); // Dropping the socket without a close frame counts too.
    alice.await_presence("general", 1).await;
}

#[tokio::test]
async fn the_history_keeps_only_the_last_history_cap_lines() {
    let config = backend::Config {
        history_cap: 3,
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let mut alice = server.client().await;
    for i in 1..=5 {
        alice.send_line(&format!("line {i}")).await;
        alice.recv_line().await;
    }
    let bob = server.client().await;
    let kept: Vec<(u64, &str)> = bob
        .history
        .iter()
        .map(|l| (l.seq.0, l.text.as_str()))
        .collect();
    assert_eq!(kept, [(3, "line 3"), (4, "line 4"), (5, "line 5")]);
}

#[tokio::test]
async fn the_page_healthz_and_client_routes_are_served() {
    let dist = std::env::temp_dir().join(format!("charla-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dist).expect("mkdir");
    std::fs::write(dist.join("index.html"), "<title>charla test page</title>").expect("write");
    std::fs::write(dist.join("app.js"), "console.log('js')").expect("write");
    let config = backend::Config {
        dist: dist.clone(),
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    assert_eq!(server.get("/healthz").await, (200, "ok".to_owned()));
    let (status, body) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("charla test page"));
    let (status, body) = server.get("/app.js").await;
    assert_eq!((status, body.as_str()), (200, "console.log('js')"));
    let (status, body) = server.get("/some/client/route").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("charla test page"),
        "unknown paths serve the page"
    );
    let _ = std::fs::remove_dir_all(dist);
}

#[tokio::test]
async fn shutdown_closes_every_client_with_going_away() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let mut bob = server.client().await;
    server.stop().await;
    for client in [&mut alice, &mut bob] {
        let close = client
            .recv_close()
            .await
            .expect("a close frame with a code");
        assert_eq!(u16::from(close.code), 1001);
    }
}

#[tokio::test]
async fn a_client_that_closes_gets_its_close_answered() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    alice
        .send_raw(tokio_tungstenite::tungstenite::Message::Close(Some(bye)))
        .await;
    // A close frame comes back (the closing handshake), not a bare TCP close.
    let close = alice.recv_close().await.expect("the close is echoed");
    assert_eq!(u16::from(close.code), 1000);
}
