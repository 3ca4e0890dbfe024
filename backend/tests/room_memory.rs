//! Rooms that cannot fill the server for good (issue #20, item 3): quiet rooms leave
//! memory when `--max-rooms` rooms are held or the history kept passes
//! `--max-history-lines`, and come back whole (read back from the file, or from Redis)
//! when someone joins them again.

#![allow(missing_docs)]

use std::time::Duration;

use backend::Config;
use shared::{ClientMsg, ErrorCode, ServerMsg};
use testkit::{Client, Picked, RedisServer, TIMEOUT, TestServer, metric, unlimited};

/// Joins `room`, asking again while the server answers `rooms_full` (a room that just
/// emptied may still be finishing a commit or a catch-up); fails after [`TIMEOUT`].
async fn join_eventually(client: &mut Client, room: &str) -> shared::server::Joined {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        client
            .send_msg(&ClientMsg::Join { room: room.into() })
            .await;
        let answer = client
            .recv_skipping_live("joined or rooms_full", |m| match m {
                ServerMsg::Joined(joined) => Picked::Found(Some(joined)),
                ServerMsg::Error(shared::server::Error {
                    code: ErrorCode::RoomsFull,
                    ..
                }) => Picked::Found(None),
                other => Picked::Other(other),
            })
            .await;
        if let Some(joined) = answer {
            return joined;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{room}` stayed refused with rooms_full"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leave(client: &mut Client, room: &str) {
    client
        .send_msg(&ClientMsg::Leave { room: room.into() })
        .await;
    loop {
        match client.recv().await {
            ServerMsg::Left(_) => return,
            // The room's own line after its ack, and live frames.
            ServerMsg::Message(_) | ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
            other => panic!("expected left, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn one_line_rooms_never_fill_the_server_and_come_back_whole() {
    // `general` and four more in memory at most.
    let server = TestServer::start_with(Config {
        max_rooms: 5,
        ..unlimited()
    })
    .await;
    let mut client = server.client_in(&[]).await;
    for i in 0..20 {
        let room = format!("r{i}");
        join_eventually(&mut client, &room).await;
        client
            .send_to(&room, &format!("línea de {room}"), &format!("n-{i}"))
            .await;
        assert_eq!(client.recv_ack_of(&format!("n-{i}")).await, 1);
        leave(&mut client, &room).await;
    }
    let (_, metrics) = server.get("/metrics").await;
    assert!(metric(&metrics, "charla_rooms").unwrap_or(f64::MAX) <= 5.0);
    // The first room left memory long ago; joined again, it has its line, and its next
    // line follows it.
    let joined = join_eventually(&mut client, "r0").await;
    let texts: Vec<&str> = joined.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["línea de r0"]);
    client.send_to("r0", "otra", "n-again").await;
    assert_eq!(client.recv_ack_of("n-again").await, 2);
}

#[tokio::test]
async fn past_the_history_bound_quiet_rooms_leave_memory_and_are_read_back() {
    let server = TestServer::start_with(Config {
        max_history_lines: 30,
        ..unlimited()
    })
    .await;
    let mut client = server.client_in(&[]).await;
    for r in 0..5 {
        let room = format!("h{r}");
        join_eventually(&mut client, &room).await;
        for i in 0..10 {
            client
                .send_to(&room, &format!("{room}-{i}"), &format!("{room}-{i}"))
                .await;
            client.recv_ack_of(&format!("{room}-{i}")).await;
        }
        leave(&mut client, &room).await;
    }
    // 50 lines were kept; quiet rooms leave until at most 30 are.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (_, metrics) = server.get("/metrics").await;
        if metric(&metrics, "charla_history_lines").unwrap_or(f64::MAX) <= 30.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history trimmed in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in 0..5 {
        let room = format!("h{r}");
        let joined = join_eventually(&mut client, &room).await;
        assert_eq!(joined.lines.len(), 10, "{room} came back whole");
        leave(&mut client, &room).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_join_and_leave_on_fresh_names_never_fill_the_registry() {
    let redis = RedisServer::start().await;
    let server = TestServer::start_with(Config {
        store: backend::Store::Redis(redis.url()),
        max_rooms: 5,
        ..unlimited()
    })
    .await;
    let mut client = server.client_in(&[]).await;
    // Each left while its room is still catching up.
    for i in 0..30 {
        let room = format!("f{i}");
        client
            .send_msg(&ClientMsg::Join { room: room.clone() })
            .await;
        client.send_msg(&ClientMsg::Leave { room }).await;
    }
    // Whatever those answered, a new room is open to join once they are done.
    let mut other = server.client_in(&[]).await;
    let joined = join_eventually(&mut other, "nueva").await;
    assert_eq!(joined.room.as_str(), "nueva");
}

#[tokio::test]
async fn a_quiet_rooms_history_expires_from_memory_and_from_the_file() {
    let server = TestServer::start_with(Config {
        room_retention: Duration::from_secs(1),
        ..unlimited()
    })
    .await;
    let mut client = server.client_in(&[]).await;
    join_eventually(&mut client, "viejo").await;
    client.send_to("viejo", "hace tiempo", "n-1").await;
    client.recv_ack_of("n-1").await;
    leave(&mut client, "viejo").await;
    // Once it has been quiet for longer than the retention, its line is gone.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let joined = join_eventually(&mut client, "viejo").await;
        leave(&mut client, "viejo").await;
        if joined.lines.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the quiet room's line expired in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // From the file too: the same file, history kept for good from now on, shows nothing.
    let dir = server.data_dir.clone();
    server.stop().await;
    let server = TestServer::start_with(Config {
        store: backend::Store::Sqlite(dir),
        room_retention: Duration::ZERO,
        ..unlimited()
    })
    .await;
    let mut client = server.client_in(&[]).await;
    let joined = join_eventually(&mut client, "viejo").await;
    assert!(joined.lines.is_empty(), "{:?}", joined.lines);
}
