//! Moderating a room's people and pace through real sockets: kick (out now, may rejoin),
//! ban (out, and refused from every tab, device and node, across a restart, until its end),
//! mute (reads, cannot send), slow mode, each an entry of the room's log with its own `seq`;
//! the audit log and the server API's bans.

use std::time::Duration;

use backend::Config;
use serde_json::{Value, json};
use shared::{ChangeKind, ClientMsg, ErrorCode, Seq, ServerMsg, server};
use testkit::{Client, RedisServer, TIMEOUT, TestServer, fresh_data_dir, tokens};

const SECRET: &str = "s3cret-for-tests";
const KEY: &str = "api-k3y";

fn config() -> Config {
    Config {
        jwt_secret: Some(SECRET.into()),
        jwt_leeway: Duration::ZERO,
        api_key: Some(KEY.into()),
        ..testkit::unlimited()
    }
}

/// A token for `sub` carrying `roles`.
fn token(sub: &str, roles: &[&str]) -> String {
    tokens::with_roles(SECRET, sub, roles)
}

/// A client in `general`, signed in with `token` (none: a guest), past its `joined`.
async fn member(server: &TestServer, token: Option<&str>) -> (Client, server::Joined) {
    let mut client = Client::hello(&server.ws_url(), &tokens::hello(token, &["general"])).await;
    let joined = client.recv_joined().await;
    (client, joined)
}

async fn moderator(server: &TestServer) -> Client {
    member(server, Some(&token("mod", &["moderator"]))).await.0
}

async fn bob(server: &TestServer) -> Client {
    member(server, Some(&token("bob", &[]))).await.0
}

fn kick(user: &str, nonce: Option<&str>) -> ClientMsg {
    ClientMsg::Kick {
        room: Some("general".into()),
        user: user.into(),
        nonce: nonce.map(str::to_owned),
    }
}

fn ban(user: &str, until: Option<u64>) -> ClientMsg {
    ClientMsg::Ban {
        room: Some("general".into()),
        user: user.into(),
        until,
        nonce: None,
    }
}

fn mute(user: &str, until: Option<u64>) -> ClientMsg {
    ClientMsg::Mute {
        room: Some("general".into()),
        user: user.into(),
        until,
        nonce: None,
    }
}

/// The next `moderation` entry, skipping what else may come meanwhile (lines, presence,
/// typing, acks); an error or a `left` fails the test.
async fn next_moderation(client: &mut Client) -> server::Moderation {
    loop {
        match client.recv().await {
            ServerMsg::Moderation(m) => return m,
            ServerMsg::Message(_)
            | ServerMsg::Ack(_)
            | ServerMsg::Typing(_)
            | ServerMsg::Presence(_) => {}
            other => panic!("expected a moderation entry, got {other:?}"),
        }
    }
}

/// The next `error`, which must have `code`, skipping lines, acks, presence and typing.
async fn refused(client: &mut Client, code: ErrorCode) -> server::Error {
    loop {
        match client.recv().await {
            ServerMsg::Error(e) => {
                assert_eq!(e.code, code, "{}", e.message);
                return e;
            }
            ServerMsg::Message(_)
            | ServerMsg::Ack(_)
            | ServerMsg::Typing(_)
            | ServerMsg::Presence(_) => {}
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// The next `left`, skipping presence and typing.
async fn next_left(client: &mut Client) -> server::Left {
    loop {
        match client.recv().await {
            ServerMsg::Left(left) => return left,
            ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
            other => panic!("expected left, got {other:?}"),
        }
    }
}

/// Sends a line with `nonce` and waits for its ack; its seq.
async fn say(client: &mut Client, text: &str, nonce: &str) -> u64 {
    client.send_with_nonce(text, nonce).await;
    client.recv_ack_of(nonce).await
}

async fn api(server: &TestServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    testkit::api_call(server.addr, method, path, body, Some(KEY)).await
}

#[tokio::test]
async fn a_kick_puts_every_tab_out_now_and_lets_them_back() {
    let server = TestServer::start_with(config()).await;
    let mut moder = moderator(&server).await;
    let mut tab1 = bob(&server).await;
    let mut tab2 = bob(&server).await;
    let mut ana = member(&server, None).await.0;
    let before = say(&mut ana, "hola", "n-1").await;

    moder.send_msg(&kick("bob", Some("k-1"))).await;
    let seq = moder.recv_ack_of("k-1").await;
    assert_eq!(
        seq,
        before + 1,
        "a kick is an entry of the log with the next seq"
    );
    for client in [&mut moder, &mut ana] {
        let m = next_moderation(client).await;
        assert_eq!(
            (m.seq, m.action, m.user.as_deref(), m.by.as_str()),
            (Seq(seq), ChangeKind::Kick, Some("bob"), "mod")
        );
    }
    for tab in [&mut tab1, &mut tab2] {
        let m = next_moderation(tab).await;
        assert_eq!(m.action, ChangeKind::Kick);
        let left = next_left(tab).await;
        assert_eq!(left.reason, Some(ChangeKind::Kick));
        assert_eq!(left.by.as_deref(), Some("mod"));
        // Out: what it sends there is refused, and it no longer gets the room's lines.
        tab.send_with_nonce("still here?", "b-1").await;
        assert_eq!(
            refused(tab, ErrorCode::NotJoined).await.nonce.as_deref(),
            Some("b-1")
        );
    }
    let after = say(&mut ana, "sin bob", "n-2").await;
    // A kick is not a ban: bob joins again, and sees the lines he missed.
    let joined = tab1.join("general").await;
    assert!(joined.lines.iter().any(|l| l.seq.0 == after));
    let line = say(&mut tab1, "he vuelto", "b-2").await;
    assert_eq!(line, after + 1);
    server.stop().await;
}

#[tokio::test]
async fn only_moderators_moderate_and_bad_asks_are_refused() {
    let server = TestServer::start_with(config()).await;
    let mut moder = moderator(&server).await;
    let mut guest = member(&server, None).await.0;
    let mut bob = bob(&server).await;
    // A guest or a user without the role: forbidden, and nothing is appended.
    for client in [&mut guest, &mut bob] {
        client.send_msg(&kick("mod", None)).await;
        refused(client, ErrorCode::Forbidden).await;
        client
            .send_msg(&ClientMsg::SlowMode {
                room: None,
                secs: 5,
                nonce: None,
            })
            .await;
        refused(client, ErrorCode::Forbidden).await;
    }
    // Bad asks from a moderator.
    moder.send_msg(&ban("", None)).await;
    refused(&mut moder, ErrorCode::BadField).await;
    moder.send_msg(&ban("mod", None)).await;
    let myself = refused(&mut moder, ErrorCode::BadField).await;
    assert!(myself.message.contains("yourself"), "{}", myself.message);
    moder.send_msg(&mute("bob", Some(1_000))).await;
    refused(&mut moder, ErrorCode::BadField).await;
    moder
        .send_msg(&ClientMsg::SlowMode {
            room: None,
            secs: 3_601,
            nonce: None,
        })
        .await;
    refused(&mut moder, ErrorCode::BadField).await;
    moder.send_text(r#"{"type":"ban","room":"general"}"#).await;
    refused(&mut moder, ErrorCode::BadField).await;
    // None of it made an entry: the next line is seq 1.
    assert_eq!(say(&mut moder, "primero", "n-1").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_ban_keeps_a_user_out_from_every_tab_until_it_is_lifted() {
    let server = TestServer::start_with(config()).await;
    let mut moder = moderator(&server).await;
    let mut tab = bob(&server).await;
    moder.send_msg(&ban("bob", None)).await;
    let m = next_moderation(&mut moder).await;
    assert_eq!((m.action, m.until), (ChangeKind::Ban, None));
    next_moderation(&mut tab).await;
    let left = next_left(&mut tab).await;
    assert_eq!((left.reason, left.until), (Some(ChangeKind::Ban), None));
    // The same tab, a new tab, a join, a hello: refused with `banned`.
    tab.send_msg(&ClientMsg::Join {
        room: "general".into(),
    })
    .await;
    let why = refused(&mut tab, ErrorCode::Banned).await;
    assert_eq!(why.room.map(|r| r.to_string()).as_deref(), Some("general"));
    let hello = tokens::hello(Some(&token("bob", &[])), &["general", "other"]);
    let mut other_device = Client::hello(&server.ws_url(), &hello).await;
    let mut refused_general = false;
    let mut joined_other = false;
    while !(refused_general && joined_other) {
        match other_device.recv().await {
            ServerMsg::Error(e) if e.code == ErrorCode::Banned => refused_general = true,
            ServerMsg::Joined(j) => {
                assert_eq!(
                    j.room.as_str(),
                    "other",
                    "only the room he is not banned from"
                );
                joined_other = true;
            }
            ServerMsg::Presence(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // A guest is banned by its session; another guest is not.
    let (mut guest, joined) = member(&server, None).await;
    let guest_id = guest_id(&mut guest, &mut moder, &joined).await;
    moder.send_msg(&ban(&guest_id, None)).await;
    next_moderation(&mut moder).await;
    next_moderation(&mut guest).await;
    next_left(&mut guest).await;
    guest
        .send_msg(&ClientMsg::Join {
            room: "general".into(),
        })
        .await;
    refused(&mut guest, ErrorCode::Banned).await;
    member(&server, None).await;

    // The API lists the bans, lifts one (204; again: 404), and bob is back.
    let (status, bans) = api(&server, "GET", "/api/rooms/general/bans", Value::Null).await;
    assert_eq!(status, 200);
    let users: Vec<&str> = bans
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|b| b["user"].as_str())
        .collect();
    let mut expected = vec!["bob", guest_id.as_str()];
    expected.sort_unstable();
    assert_eq!(users, expected);
    let (status, _) = api(
        &server,
        "DELETE",
        "/api/rooms/general/bans/bob",
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = api(
        &server,
        "DELETE",
        "/api/rooms/general/bans/bob",
        Value::Null,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let unban = next_moderation(&mut moder).await;
    assert_eq!(
        (unban.action, unban.by.as_str()),
        (ChangeKind::Unban, "api")
    );
    tab.join("general").await;
    server.stop().await;
}

/// The session id of `guest` (who just joined): its own id, from the moderator's view of
/// a line it sends.
async fn guest_id(guest: &mut Client, moder: &mut Client, _joined: &server::Joined) -> String {
    guest.send_with_nonce("soy invitado", "g-1").await;
    guest.recv_ack_of("g-1").await;
    loop {
        if let ServerMsg::Message(line) = moder.recv().await
            && line.text == "soy invitado"
        {
            return line.from.to_string();
        }
    }
}

#[tokio::test]
async fn a_timed_ban_ends_by_itself() {
    let server = TestServer::start_with(config()).await;
    let mut moder = moderator(&server).await;
    let mut tab = bob(&server).await;
    let until = testkit::now_ms() + 1_500;
    moder.send_msg(&ban("bob", Some(until))).await;
    assert_eq!(next_moderation(&mut moder).await.until, Some(until));
    next_moderation(&mut tab).await;
    assert_eq!(next_left(&mut tab).await.until, Some(until));
    let join = ClientMsg::Join {
        room: "general".into(),
    };
    tab.send_msg(&join).await;
    let why = refused(&mut tab, ErrorCode::Banned).await;
    assert!(why.message.contains(&until.to_string()), "{}", why.message);
    // Once its end has passed, a join goes through (asked again until then, with a deadline).
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        tab.send_msg(&join).await;
        match tab.recv().await {
            ServerMsg::Joined(_) => break,
            ServerMsg::Error(e) if e.code == ErrorCode::Banned => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the ban never ended"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ServerMsg::Presence(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_muted_user_reads_but_cannot_send_until_unmuted() {
    let server = TestServer::start_with(config()).await;
    let mut moder = moderator(&server).await;
    let mut tab = bob(&server).await;
    moder.send_msg(&mute("bob", None)).await;
    next_moderation(&mut moder).await;
    let m = next_moderation(&mut tab).await;
    assert_eq!(
        (m.action, m.user.as_deref()),
        (ChangeKind::Mute, Some("bob"))
    );
    // Sends, edits and typing are refused with `muted`, the line's nonce named.
    tab.send_with_nonce("¿me oyes?", "b-1").await;
    let why = refused(&mut tab, ErrorCode::Muted).await;
    assert_eq!(why.nonce.as_deref(), Some("b-1"));
    tab.typing("escribo").await;
    refused(&mut tab, ErrorCode::Muted).await;
    // A new tab knows it from its `joined`, and is muted too.
    let (mut tab2, joined) = member(&server, Some(&token("bob", &[]))).await;
    assert!(joined.muted && joined.muted_until.is_none());
    tab2.send_with_nonce("y desde aquí", "b-2").await;
    refused(&mut tab2, ErrorCode::Muted).await;
    // Still reads.
    let seq = say(&mut moder, "leed esto", "m-1").await;
    assert_eq!(tab.recv_line().await.seq.0, seq);
    moder
        .send_msg(&ClientMsg::Unmute {
            room: None,
            user: "bob".into(),
            nonce: None,
        })
        .await;
    assert_eq!(next_moderation(&mut tab).await.action, ChangeKind::Unmute);
    assert_eq!(say(&mut tab, "gracias", "b-3").await, seq + 2);
    server.stop().await;
}

#[tokio::test]
async fn slow_mode_spaces_each_persons_lines_but_not_a_moderators() {
    let server = TestServer::start_with(config()).await;
    let mut moder = moderator(&server).await;
    let mut tab = bob(&server).await;
    moder
        .send_msg(&ClientMsg::SlowMode {
            room: Some("general".into()),
            secs: 60,
            nonce: None,
        })
        .await;
    let m = next_moderation(&mut moder).await;
    assert_eq!((m.action, m.secs), (ChangeKind::SlowMode, Some(60)));
    assert_eq!(next_moderation(&mut tab).await.secs, Some(60));
    // A newcomer's `joined` says it.
    let (_, joined) = member(&server, None).await;
    assert_eq!(joined.slow_mode, Some(60));
    say(&mut tab, "uno", "b-1").await;
    tab.send_with_nonce("dos", "b-2").await;
    let why = refused(&mut tab, ErrorCode::SlowMode).await;
    assert_eq!(why.nonce.as_deref(), Some("b-2"));
    assert!(why.message.contains("60 s"), "{}", why.message);
    // The same user's other tab shares the pace.
    let mut tab2 = bob(&server).await;
    tab2.send_with_nonce("tres", "b-3").await;
    refused(&mut tab2, ErrorCode::SlowMode).await;
    // A moderator is not held to it.
    say(&mut moder, "a", "m-1").await;
    say(&mut moder, "b", "m-2").await;
    // Off again: any pace.
    moder
        .send_msg(&ClientMsg::SlowMode {
            room: None,
            secs: 0,
            nonce: None,
        })
        .await;
    loop {
        if next_moderation(&mut tab).await.secs == Some(0) {
            break;
        }
    }
    say(&mut tab, "cuatro", "b-4").await;
    server.stop().await;
}

#[tokio::test]
async fn bans_and_the_audit_log_survive_a_restart() {
    let dir = fresh_data_dir();
    let durable = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..config()
    };
    let server = TestServer::start_with(durable()).await;
    let mut moder = moderator(&server).await;
    let mut ana = member(&server, None).await.0;
    let line = say(&mut ana, "spam", "n-1").await;
    moder
        .send_msg(&ClientMsg::Delete {
            room: None,
            seq: Seq(line),
            nonce: None,
        })
        .await;
    moder.send_msg(&ban("bob", None)).await;
    moder.send_msg(&kick("carl", None)).await;
    let (status, body) = api(
        &server,
        "POST",
        "/api/rooms/general/bans",
        json!({ "user": "dan", "until": testkit::now_ms() + 3_600_000 }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"], "dan");
    // Every API status of the bans.
    for (method, path, body, status, code) in [
        (
            "POST",
            "/api/rooms/general/bans",
            json!({}),
            400,
            "bad_field",
        ),
        (
            "POST",
            "/api/rooms/general/bans",
            json!({"user": ""}),
            400,
            "bad_field",
        ),
        (
            "POST",
            "/api/rooms/general/bans",
            json!({"user": "x", "until": 5}),
            400,
            "bad_field",
        ),
        (
            "POST",
            "/api/rooms/No%20Way/bans",
            json!({"user": "x"}),
            400,
            "bad_room",
        ),
        (
            "DELETE",
            "/api/rooms/general/bans/nobody",
            Value::Null,
            404,
            "not_found",
        ),
        ("GET", "/api/audit?limit=x", Value::Null, 400, "bad_field"),
    ] {
        let (got, answer) = api(&server, method, path, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
    for path in ["/api/rooms/general/bans", "/api/audit"] {
        let (status, _) = testkit::api_call(server.addr, "GET", path, Value::Null, None).await;
        assert_eq!(status, 401, "{path} without the key");
        let (status, _) =
            testkit::api_call(server.addr, "GET", path, Value::Null, Some("wrong")).await;
        assert_eq!(status, 401, "{path} with a wrong key");
    }
    let audit_before = audit(&server).await;
    moder.close().await;
    ana.close().await;
    server.stop().await;

    let server = TestServer::start_with(durable()).await;
    // Bob is still banned: refused at his hello.
    let hello = tokens::hello(Some(&token("bob", &[])), &["general"]);
    let mut bob = Client::hello(&server.ws_url(), &hello).await;
    assert_eq!(bob.recv_error_code().await, ErrorCode::Banned);
    // The audit log: newest first, who, what, to whom, when.
    let entries = audit(&server).await;
    assert_eq!(entries, audit_before, "the same after the restart");
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["by"].as_str().unwrap_or(""),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("ban", "api", "dan"),
            ("kick", "mod", "carl"),
            ("ban", "mod", "bob"),
            ("delete", "mod", line.to_string().as_str()),
        ]
    );
    let ats: Vec<u64> = entries.iter().filter_map(|e| e["at"].as_u64()).collect();
    assert_eq!(ats.len(), 4);
    assert!(
        ats.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {ats:?}"
    );
    assert!(entries.iter().all(|e| e["room"] == "general"));
    let (_, only_one) = api(&server, "GET", "/api/audit?limit=1", Value::Null).await;
    assert_eq!(only_one.as_array().map(Vec::len), Some(1));
    let (_, elsewhere) = api(&server, "GET", "/api/audit?room=other", Value::Null).await;
    assert_eq!(elsewhere, json!([]));
    server.stop().await;
}

async fn audit(server: &TestServer) -> Vec<Value> {
    let (status, body) = api(server, "GET", "/api/audit", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().expect("a list")
}

#[tokio::test]
async fn a_ban_on_one_node_holds_on_every_node() {
    let redis = RedisServer::start().await;
    let on_redis = || Config {
        store: backend::Store::Redis(redis.url()),
        ..config()
    };
    let node_a = TestServer::start_with(on_redis()).await;
    let node_b = TestServer::start_with(on_redis()).await;
    let mut moder = moderator(&node_a).await;
    // Bob on node B, in the room: put out by a ban made on node A.
    let mut tab_b = bob(&node_b).await;
    moder.send_msg(&ban("bob", None)).await;
    next_moderation(&mut moder).await;
    let m = tokio::time::timeout(TIMEOUT, next_moderation(&mut tab_b))
        .await
        .expect("in time");
    assert_eq!(m.action, ChangeKind::Ban);
    assert_eq!(next_left(&mut tab_b).await.reason, Some(ChangeKind::Ban));
    // A room node B does not follow: the ban holds there too (told on the rules channel).
    moder.join("quiet").await;
    moder
        .send_msg(&ClientMsg::Ban {
            room: Some("quiet".into()),
            user: "bob".into(),
            until: None,
            nonce: Some("q-1".into()),
        })
        .await;
    moder.recv_ack_of("q-1").await;
    let join = ClientMsg::Join {
        room: "quiet".into(),
    };
    // Node B hears of it within the deadline; until then he is let in, and asked to
    // leave and join again. Node B may hear of it while he is in: then it puts him out
    // (`left` with the ban), and a `leave` already on its way is refused as not joined.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    tab_b.send_msg(&join).await;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "node B never heard");
        match tab_b.recv().await {
            ServerMsg::Error(e) if e.code == ErrorCode::Banned => break,
            ServerMsg::Joined(_) => {
                tab_b
                    .send_msg(&ClientMsg::Leave {
                        room: "quiet".into(),
                    })
                    .await;
            }
            ServerMsg::Left(left) if left.reason.is_none() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tab_b.send_msg(&join).await;
            }
            ServerMsg::Left(left) => {
                assert_eq!(left.reason, Some(ChangeKind::Ban), "{left:?}");
                tab_b.send_msg(&join).await;
            }
            ServerMsg::Error(e) if e.code == ErrorCode::NotJoined => {}
            ServerMsg::Presence(_) | ServerMsg::Moderation(_) | ServerMsg::Typing(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // A third node, started afterwards, refuses him in both rooms from its first hello.
    let node_c = TestServer::start_with(on_redis()).await;
    let hello = tokens::hello(Some(&token("bob", &[])), &["general", "quiet"]);
    let mut tab_c = Client::hello(&node_c.ws_url(), &hello).await;
    for _ in 0..2 {
        assert_eq!(tab_c.recv_error_code().await, ErrorCode::Banned);
    }
    // The audit log is shared: node C reads both bans.
    let (_, entries) = api(&node_c, "GET", "/api/audit", Value::Null).await;
    let rooms: Vec<&str> = entries
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["room"].as_str())
        .collect();
    assert_eq!(rooms, ["quiet", "general"]);
    node_c.stop().await;
    node_b.stop().await;
    node_a.stop().await;
}
