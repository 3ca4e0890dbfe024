//! Read positions through real sockets: a signed-in user's `read {room, seq}` is kept by the
//! server (forward only, at most the room's last entry), told to every tab and device of the
//! user with `read`, carried by each later `joined`, kept across a restart (SQLite) and
//! shared by several servers (Redis). A guest's is refused.

use std::time::Duration;

use backend::Config;
use shared::{ClientMsg, ErrorCode, Seq, ServerMsg, server};
use testkit::{Client, RedisServer, TIMEOUT, TestServer, fresh_data_dir, tokens};

const SECRET: &str = "s3cret-for-tests";

fn config() -> Config {
    Config {
        jwt_secret: Some(SECRET.into()),
        jwt_leeway: Duration::ZERO,
        ..testkit::unlimited()
    }
}

/// A tab of `user` (none: a guest) in `general`, past its `joined`.
async fn tab(server: &TestServer, user: Option<&str>) -> (Client, server::Joined) {
    let token = user.map(|u| tokens::with_roles(SECRET, u, &[]));
    let hello = tokens::hello(token.as_deref(), &["general"]);
    let mut client = Client::hello(&server.ws_url(), &hello).await;
    let joined = client.recv_joined().await;
    (client, joined)
}

fn read(seq: u64) -> ClientMsg {
    ClientMsg::Read {
        room: "general".into(),
        seq: Seq(seq),
    }
}

/// The next `read`, skipping lines, acks, presence and typing.
async fn next_read(client: &mut Client) -> server::ReadMark {
    let read = async {
        loop {
            match client.recv().await {
                ServerMsg::Read(mark) => return mark,
                ServerMsg::Message(_)
                | ServerMsg::Ack(_)
                | ServerMsg::Typing(_)
                | ServerMsg::Presence(_) => {}
                other => panic!("expected read, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(TIMEOUT, read).await.expect("in time")
}

/// The next `error`, skipping the client's own lines and acks, presence and typing.
async fn next_error(client: &mut Client) -> server::Error {
    let error = async {
        loop {
            match client.recv().await {
                ServerMsg::Error(error) => return error,
                ServerMsg::Message(_)
                | ServerMsg::Ack(_)
                | ServerMsg::Typing(_)
                | ServerMsg::Presence(_) => {}
                other => panic!("expected an error, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(TIMEOUT, error).await.expect("in time")
}

/// Proves no `read` is on its way: a `ping` sent now is answered before anything else but
/// lines, acks, presence and typing.
async fn no_read_before_pong(client: &mut Client) {
    client.send_msg(&ClientMsg::Ping).await;
    let pong = async {
        loop {
            match client.recv().await {
                ServerMsg::Pong => return,
                ServerMsg::Message(_)
                | ServerMsg::Ack(_)
                | ServerMsg::Typing(_)
                | ServerMsg::Presence(_) => {}
                other => panic!("expected pong (and no read), got {other:?}"),
            }
        }
    };
    tokio::time::timeout(TIMEOUT, pong).await.expect("in time");
}

/// Says `n` lines from `client`; the last one's `seq`.
async fn say(client: &mut Client, n: usize) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let nonce = format!("n-{i}");
        client.send_with_nonce(&format!("line {i}"), &nonce).await;
        last = client.recv_ack_of(&nonce).await;
    }
    last
}

#[tokio::test]
async fn a_read_reaches_every_tab_and_device_of_the_user_and_only_moves_forward() {
    let server = TestServer::start_with(config()).await;
    let (mut guest, _) = tab(&server, None).await;
    let last = say(&mut guest, 5).await;
    let (mut phone, joined) = tab(&server, Some("ana")).await;
    assert_eq!(joined.read, None, "nothing read yet");
    let (mut laptop, _) = tab(&server, Some("ana")).await;
    let (mut bob, _) = tab(&server, Some("bob")).await;

    phone.send_msg(&read(last - 2)).await;
    let mark = next_read(&mut laptop).await;
    assert_eq!((mark.room.as_str(), mark.seq), ("general", Seq(last - 2)));
    assert_eq!(
        next_read(&mut phone).await.seq,
        Seq(last - 2),
        "the sender hears it too"
    );
    // Someone else's tabs hear nothing.
    no_read_before_pong(&mut bob).await;

    // Back, or the same: nothing changes, nobody is told.
    laptop.send_msg(&read(1)).await;
    laptop.send_msg(&read(last - 2)).await;
    no_read_before_pong(&mut laptop).await;
    no_read_before_pong(&mut phone).await;

    // Past the room's last entry: its last.
    laptop.send_msg(&read(last + 100)).await;
    assert_eq!(next_read(&mut phone).await.seq, Seq(last));
    assert_eq!(next_read(&mut laptop).await.seq, Seq(last));

    // A tab opened now starts from it; another user's does not.
    let (_, joined) = tab(&server, Some("ana")).await;
    assert_eq!(joined.read, Some(Seq(last)));
    let (_, joined) = tab(&server, Some("carl")).await;
    assert_eq!(joined.read, None);
    server.stop().await;
}

#[tokio::test]
async fn a_guest_or_a_room_not_joined_is_refused() {
    let server = TestServer::start_with(config()).await;
    let (mut guest, _) = tab(&server, None).await;
    say(&mut guest, 1).await;
    guest.send_msg(&read(1)).await;
    let refused = next_error(&mut guest).await;
    assert_eq!(refused.code, ErrorCode::Forbidden, "{refused:?}");
    assert_eq!(refused.room.as_ref().map(|r| r.as_str()), Some("general"));
    let (mut ana, _) = tab(&server, Some("ana")).await;
    ana.send_msg(&ClientMsg::Read {
        room: "elsewhere".into(),
        seq: Seq(1),
    })
    .await;
    ana.expect_error(ErrorCode::NotJoined).await;
    ana.send_msg(&ClientMsg::Read {
        room: "Not A Room!".into(),
        seq: Seq(1),
    })
    .await;
    ana.expect_error(ErrorCode::BadRoom).await;
    // Malformed: a typed error, and the connection stays.
    ana.send_text(r#"{"type":"read","room":"general","seq":-1}"#)
        .await;
    ana.expect_error(ErrorCode::BadField).await;
    ana.send_msg(&read(1)).await;
    assert_eq!(next_read(&mut ana).await.seq, Seq(1));
    server.stop().await;
}

#[tokio::test]
async fn read_positions_survive_a_restart() {
    let dir = fresh_data_dir();
    let durable = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..config()
    };
    let server = TestServer::start_with(durable()).await;
    let (mut guest, _) = tab(&server, None).await;
    let last = say(&mut guest, 3).await;
    let (mut ana, _) = tab(&server, Some("ana")).await;
    ana.send_msg(&read(last - 1)).await;
    assert_eq!(next_read(&mut ana).await.seq, Seq(last - 1));
    server.stop().await;

    let server = TestServer::start_with(durable()).await;
    let (mut ana, joined) = tab(&server, Some("ana")).await;
    assert_eq!(joined.read, Some(Seq(last - 1)));
    // Still forward only after the restart.
    ana.send_msg(&read(1)).await;
    no_read_before_pong(&mut ana).await;
    server.stop().await;
}

#[tokio::test]
async fn several_servers_share_read_positions() {
    let redis = RedisServer::start().await;
    let on_redis = || Config {
        store: backend::Store::Redis(redis.url()),
        ..config()
    };
    let node_a = TestServer::start_with(on_redis()).await;
    let node_b = TestServer::start_with(on_redis()).await;
    let (mut guest, _) = tab(&node_a, None).await;
    let last = say(&mut guest, 4).await;
    let (mut on_a, _) = tab(&node_a, Some("ana")).await;
    let (mut on_b, _) = tab(&node_b, Some("ana")).await;
    on_a.send_msg(&read(last)).await;
    assert_eq!(next_read(&mut on_a).await.seq, Seq(last));
    let mark = next_read(&mut on_b).await;
    assert_eq!((mark.room.as_str(), mark.seq), ("general", Seq(last)));

    // A third server, started afterwards, greets her with it.
    let node_c = TestServer::start_with(on_redis()).await;
    let (_, joined) = tab(&node_c, Some("ana")).await;
    assert_eq!(joined.read, Some(Seq(last)));
    node_c.stop().await;
    node_b.stop().await;
    node_a.stop().await;
}
