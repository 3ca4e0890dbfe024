//! Edits and deletions as entries of a room's log, through real sockets: who may make them
//! (the author within `--edit-window`, a moderator, the server API), each with its own `seq`
//! delivered like a line, a newcomer and the HTTP API seeing lines as they are now (never a
//! removed text), a resume applying what it missed exactly once, SQLite keeping it across a
//! restart, and two nodes on Redis agreeing.

use std::time::Duration;

use backend::Config;
use serde_json::{Value, json};
use shared::{Change, ChatLine, ClientMsg, ErrorCode, Seq, ServerMsg, Shown, UserId};
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
async fn member(server: &TestServer, token: Option<&str>) -> Client {
    let mut client = Client::hello(&server.ws_url(), &tokens::hello(token, &["general"])).await;
    client.recv_joined().await;
    client
}

fn edit(seq: u64, text: &str, nonce: Option<&str>) -> ClientMsg {
    ClientMsg::Edit {
        room: Some("general".into()),
        seq: Seq(seq),
        text: text.into(),
        nonce: nonce.map(str::to_owned),
    }
}

fn delete(seq: u64, nonce: Option<&str>) -> ClientMsg {
    ClientMsg::Delete {
        room: Some("general".into()),
        seq: Seq(seq),
        nonce: nonce.map(str::to_owned),
    }
}

/// The next entry of the log (a line, an edit or a deletion), skipping acks, typing and
/// presence; anything else fails the test.
async fn next_entry(client: &mut Client) -> ChatLine {
    loop {
        match client.recv().await {
            ServerMsg::Message(line) => return line,
            ServerMsg::MessageEdited(edited) => return edited.into(),
            ServerMsg::MessageDeleted(deleted) => return deleted.into(),
            ServerMsg::Ack(_) | ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
            other => panic!("expected an entry of the log, got {other:?}"),
        }
    }
}

/// Sends a line with `nonce` and waits for its ack; its seq.
async fn say(client: &mut Client, text: &str, nonce: &str) -> u64 {
    client.send_with_nonce(text, nonce).await;
    let seq = client.recv_ack_of(nonce).await;
    let line = next_entry(client).await;
    assert_eq!((line.seq.0, line.text.as_str()), (seq, text));
    seq
}

/// A server API call with the key (or `key`): its status and JSON body.
async fn api(server: &TestServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    api_with(server, method, path, body, Some(KEY)).await
}

async fn api_with(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value) {
    testkit::api_call(server.addr, method, path, body, key).await
}

/// What a page shows of a `joined`'s lines: (seq, text, edited, removed).
fn shown(lines: Vec<ChatLine>) -> Vec<(u64, String, bool, bool)> {
    shared::session::lines_to_show(lines)
        .into_iter()
        .map(|l| (l.seq.0, l.text, l.edited, l.removed))
        .collect()
}

#[tokio::test]
async fn authors_edit_and_delete_their_lines_as_entries_with_their_own_seq() {
    let server = TestServer::start_with(config()).await;
    let mut ana = member(&server, None).await;
    let mut bea = member(&server, None).await;
    let first = say(&mut ana, "hola", "n-1").await;
    let second = say(&mut ana, "secreto", "n-2").await;
    for _ in 0..2 {
        next_entry(&mut bea).await;
    }

    // An edit is acked at its own seq and reaches everyone as `message_edited`.
    ana.send_msg(&edit(first, "hola a todos", Some("e-1")))
        .await;
    let seq = ana.recv_ack_of("e-1").await;
    assert_eq!(seq, second + 1, "an edit takes the next seq of the room");
    for client in [&mut ana, &mut bea] {
        let entry = next_entry(client).await;
        assert_eq!(entry.seq.0, seq);
        assert_eq!(entry.change, Some(Change::edit(Seq(first))));
        assert_eq!(entry.text, "hola a todos");
    }
    // The same edit resent (its ack lost) is acked again, not applied again.
    ana.send_msg(&edit(first, "hola a todos", Some("e-1")))
        .await;
    assert_eq!(ana.recv_ack_of("e-1").await, seq);

    // Someone else's line: neither edited nor deleted by a guest.
    bea.send_msg(&edit(first, "mío", None)).await;
    bea.expect_error(ErrorCode::Forbidden).await;
    bea.send_msg(&delete(second, None)).await;
    bea.expect_error(ErrorCode::Forbidden).await;
    // Bad asks: a blank text, no such line, an entry that is not a line.
    ana.send_msg(&edit(first, "   ", None)).await;
    ana.expect_error(ErrorCode::Empty).await;
    ana.send_msg(&edit(99, "x", None)).await;
    ana.expect_error(ErrorCode::NotFound).await;
    ana.send_msg(&delete(seq, None)).await;
    ana.expect_error(ErrorCode::NotFound).await;

    // Ana edits her second line, then deletes it: the deletion is `message_deleted`.
    ana.send_msg(&edit(second, "secreto 2", None)).await;
    let edit_of_second = next_entry(&mut ana).await.seq.0;
    ana.send_msg(&delete(second, None)).await;
    let deleted = next_entry(&mut ana).await;
    assert_eq!(deleted.seq.0, edit_of_second + 1);
    assert_eq!(
        deleted.change,
        Some(Change::delete(Seq(second), ana.id.to_string()))
    );
    // A removed line cannot be edited.
    ana.send_msg(&edit(second, "otra vez", None)).await;
    ana.expect_error(ErrorCode::NotFound).await;

    // A newcomer sees the lines as they are now, and never the removed text.
    let hello = tokens::hello(None, &["general"]);
    let mut cara = Client::hello(&server.ws_url(), &hello).await;
    let raw = match cara.recv_raw().await {
        tokio_tungstenite::tungstenite::Message::Text(text) => text.to_string(),
        other => panic!("expected the joined, got {other:?}"),
    };
    assert!(!raw.contains("secreto"), "removed text in a joined: {raw}");
    let joined = match shared::decode_server(&raw) {
        Ok(ServerMsg::Joined(joined)) => joined,
        other => panic!("expected joined, got {other:?}"),
    };
    assert_eq!(
        joined.lines.last().map(|l| l.seq.0),
        Some(deleted.seq.0),
        "the entries are in the log, numbered like lines"
    );
    assert_eq!(
        shown(joined.lines),
        [
            (first, "hola a todos".to_owned(), true, false),
            (second, String::new(), false, true)
        ]
    );
    // So does the HTTP API.
    let (status, lines) = api(&server, "GET", "/api/rooms/general/messages", Value::Null).await;
    assert_eq!(status, 200);
    assert!(!lines.to_string().contains("secreto"), "{lines}");
    assert_eq!(lines[0]["text"], "hola a todos");
    assert_eq!(lines[0]["edited"], true);
    assert_eq!(lines[1]["removed"], true);
}

#[tokio::test]
async fn the_edit_window_closes_for_authors_but_not_for_moderators() {
    let server = TestServer::start_with(Config {
        edit_window: Duration::ZERO,
        ..config()
    })
    .await;
    let mut bob = member(&server, Some(&token("bob", &[]))).await;
    let mut guest = member(&server, None).await;
    let mut alice = member(&server, Some(&token("alice", &["moderator"]))).await;
    let seq = say(&mut bob, "spam", "n-1").await;
    // The window is zero: once the clock has moved past the line's time, it is closed.
    let at = next_entry(&mut alice).await.at;
    next_entry(&mut guest).await;
    while testkit::now_ms() <= at {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bob.send_msg(&edit(seq, "not spam", None)).await;
    bob.expect_error(ErrorCode::EditWindowPassed).await;
    bob.send_msg(&delete(seq, None)).await;
    bob.expect_error(ErrorCode::EditWindowPassed).await;
    // A moderator may not edit someone's line, but deletes any line at any time.
    alice
        .send_msg(&edit(seq, "edited by a moderator", None))
        .await;
    alice.expect_error(ErrorCode::Forbidden).await;
    alice.send_msg(&delete(seq, Some("d-1"))).await;
    for client in [&mut alice, &mut bob, &mut guest] {
        let entry = next_entry(client).await;
        assert_eq!(entry.change, Some(Change::delete(Seq(seq), "alice".into())));
    }
    // Roles come in the welcome, so a page knows what to offer.
    assert_eq!(
        alice.user.as_ref().map(|u| u.roles.clone()),
        Some(vec!["moderator".to_owned()])
    );
}

#[tokio::test]
async fn a_user_edits_their_line_from_another_tab_and_nobody_else_does() {
    let server = TestServer::start_with(config()).await;
    let mut tab1 = member(&server, Some(&token("bob", &[]))).await;
    let mut tab2 = member(&server, Some(&token("bob", &[]))).await;
    let mut carl = member(&server, Some(&token("carl", &[]))).await;
    let seq = say(&mut tab1, "hola", "n-1").await;
    next_entry(&mut tab2).await;
    next_entry(&mut carl).await;
    carl.send_msg(&edit(seq, "hola de carl", None)).await;
    carl.expect_error(ErrorCode::Forbidden).await;
    tab2.send_msg(&edit(seq, "hola de bob", None)).await;
    let entry = next_entry(&mut tab1).await;
    assert_eq!(entry.text, "hola de bob");
    assert_eq!(entry.user, Some(UserId::new("bob")));
}

#[tokio::test]
async fn a_resume_after_an_edit_and_a_deletion_gets_each_once_with_no_gap() {
    let server = TestServer::start_with(config()).await;
    let mut ana = member(&server, None).await;
    let mut bea = member(&server, None).await;
    let one = say(&mut ana, "uno", "n-1").await;
    let two = say(&mut ana, "dos", "n-2").await;
    let mut bea_shown = Vec::new();
    for _ in 0..2 {
        next_entry(&mut bea).await.show_in(&mut bea_shown);
    }
    let token = bea.resume.clone();
    bea.close().await;
    // While Bea is away: an edit, a deletion and a line.
    ana.send_msg(&edit(one, "UNO", None)).await;
    next_entry(&mut ana).await;
    ana.send_msg(&delete(two, None)).await;
    next_entry(&mut ana).await;
    let three = say(&mut ana, "tres", "n-3").await;
    let (_bea, joined) = Client::resume(&server.ws_url(), &token, &[("general", two)]).await;
    let joined = joined.into_iter().next().expect("general");
    assert!(joined.resumed);
    let seqs: Vec<u64> = joined.lines.iter().map(|l| l.seq.0).collect();
    assert_eq!(
        seqs,
        (two + 1..=three).collect::<Vec<_>>(),
        "exactly what it missed"
    );
    Shown::Append(joined.lines).apply_to(&mut bea_shown);
    let view: Vec<(u64, &str, bool, bool)> = bea_shown
        .iter()
        .map(|l| (l.seq.0, l.text.as_str(), l.edited, l.removed))
        .collect();
    assert_eq!(
        view,
        [
            (one, "UNO", true, false),
            (two, "", false, true),
            (three, "tres", false, false)
        ]
    );
}

#[tokio::test]
async fn edits_and_deletions_are_durable_across_a_restart() {
    let dir = fresh_data_dir();
    let durable = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..config()
    };
    let server = TestServer::start_with(durable()).await;
    let mut ana = member(&server, None).await;
    let one = say(&mut ana, "uno", "n-1").await;
    let two = say(&mut ana, "privado", "n-2").await;
    ana.send_msg(&edit(one, "uno bis", None)).await;
    next_entry(&mut ana).await;
    ana.send_msg(&edit(two, "privado bis", None)).await;
    next_entry(&mut ana).await;
    ana.send_msg(&delete(two, None)).await;
    let last = next_entry(&mut ana).await.seq.0;
    ana.close().await;
    server.stop().await;

    let server = TestServer::start_with(durable()).await;
    let hello = tokens::hello(None, &["general"]);
    let mut newcomer = Client::hello(&server.ws_url(), &hello).await;
    let joined = newcomer.recv_joined().await;
    assert_eq!(joined.lines.last().map(|l| l.seq.0), Some(last));
    assert!(
        !joined.lines.iter().any(|l| l.text.contains("privado")),
        "the removed text and its edit's text are gone: {:?}",
        joined.lines
    );
    assert_eq!(
        shown(joined.lines),
        [
            (one, "uno bis".to_owned(), true, false),
            (two, String::new(), false, true)
        ]
    );
    // The numbering goes on after the entries.
    let next = say(&mut newcomer, "cuatro", "n-4").await;
    assert_eq!(next, last + 1);
    server.stop().await;
}

#[tokio::test]
async fn the_server_api_edits_and_deletes_any_line_with_every_status() {
    let server = TestServer::start_with(config()).await;
    let mut ana = member(&server, None).await;
    let seq = say(&mut ana, "hola", "n-1").await;
    let path = format!("/api/rooms/general/messages/{seq}");
    // The key is needed.
    let (status, _) = api_with(&server, "DELETE", &path, Value::Null, None).await;
    assert_eq!(status, 401);
    let (status, body) =
        api_with(&server, "PATCH", &path, json!({"text": "x"}), Some("nope")).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    // Bad paths and bodies.
    let (status, body) = api(
        &server,
        "DELETE",
        "/api/rooms/general/messages/zero",
        Value::Null,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_field")));
    let (status, body) = api(
        &server,
        "DELETE",
        "/api/rooms/No%20Room/messages/1",
        Value::Null,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_room")));
    let (status, body) = api(&server, "PATCH", &path, json!({"text": "  "})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("empty")));
    let (status, body) = api(&server, "PATCH", &path, json!({"txt": "x"})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_field")));
    let (status, body) = api(
        &server,
        "DELETE",
        "/api/rooms/general/messages/99",
        Value::Null,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    // An edit: 200 with the entry's seq, delivered to the room.
    let (status, body) = api(&server, "PATCH", &path, json!({"text": "hola (editado)"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["target"], seq);
    let entry = next_entry(&mut ana).await;
    assert_eq!(Some(entry.seq.0), body["seq"].as_u64());
    assert_eq!(entry.text, "hola (editado)");
    // A deletion: 204, delivered, by `api`.
    let (status, _) = api(&server, "DELETE", &path, Value::Null).await;
    assert_eq!(status, 204);
    let entry = next_entry(&mut ana).await;
    assert_eq!(entry.change, Some(Change::delete(Seq(seq), "api".into())));
    // A removed line cannot be edited any more.
    let (status, _) = api(&server, "PATCH", &path, json!({"text": "vuelve"})).await;
    assert_eq!(status, 404);
    server.stop().await;

    // Without --api-key the routes are not there.
    let server = TestServer::start_with(testkit::unlimited()).await;
    let (status, _) = api(
        &server,
        "DELETE",
        "/api/rooms/general/messages/1",
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn two_nodes_on_redis_see_the_same_edits_and_deletions_once() {
    let redis = RedisServer::start().await;
    let on_redis = || Config {
        store: backend::Store::Redis(redis.url()),
        ..config()
    };
    let node_a = TestServer::start_with(on_redis()).await;
    let node_b = TestServer::start_with(on_redis()).await;
    let mut ana = member(&node_a, None).await;
    let mut bea = member(&node_b, None).await;
    let one = say(&mut ana, "uno", "n-1").await;
    let two = say(&mut ana, "borrame", "n-2").await;
    // Bea, on the other node, gets the lines; her node learns them from Redis.
    for seq in [one, two] {
        assert_eq!(next_entry(&mut bea).await.seq.0, seq);
    }
    ana.send_msg(&edit(one, "uno bis", None)).await;
    ana.send_msg(&delete(two, None)).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(TIMEOUT, next_entry(&mut bea))
                .await
                .expect("in time"),
        );
    }
    let seqs: Vec<u64> = got.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, [two + 1, two + 2], "once each, in order, with no gap");
    // A newcomer on node B sees the lines as they are now.
    let hello = tokens::hello(None, &["general"]);
    let mut dan = Client::hello(&node_b.ws_url(), &hello).await;
    let joined = dan.recv_joined().await;
    assert_eq!(
        shown(joined.lines),
        [
            (one, "uno bis".to_owned(), true, false),
            (two, String::new(), false, true)
        ]
    );
    // A node started afterwards reads the room from Redis's stream (lines as they were
    // sent, then the entries) and shows its newcomers the same.
    let node_c = TestServer::start_with(on_redis()).await;
    let mut eve = Client::hello(&node_c.ws_url(), &hello).await;
    let joined = eve.recv_joined().await;
    assert_eq!(
        shown(joined.lines),
        [
            (one, "uno bis".to_owned(), true, false),
            (two, String::new(), false, true)
        ]
    );
    // Node B checks a change against its own copy of the room: Bea may not edit Ana's line.
    bea.send_msg(&edit(one, "mío", None)).await;
    bea.expect_error(ErrorCode::Forbidden).await;
    node_a.stop().await;
    node_b.stop().await;
    node_c.stop().await;
}
