//! The server API for the app's backend, through real HTTP and real sockets: the key,
//! publishing (stored, delivered in `seq` order, idempotent), the listings, disconnect and
//! revoke (durable across a restart), and the same on two nodes over a real Redis.

use std::time::Duration;

use backend::Config;
use serde_json::{Value, json};
use shared::{ErrorCode, Seq, UserId};
use testkit::{Client, RedisServer, TestServer, fresh_data_dir, tokens};

const SECRET: &str = "s3cret-for-tests";
const KEY: &str = "api-k3y";

fn config() -> Config {
    Config {
        jwt_secret: Some(SECRET.into()),
        jwt_leeway: Duration::ZERO,
        api_key: Some(KEY.into()),
        private_rooms: vec!["team-*".into()],
        ..testkit::unlimited()
    }
}

async fn call(server: &TestServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    call_at(server.addr, method, path, body).await
}

async fn call_at(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    testkit::api_call(addr, method, path, body, Some(KEY)).await
}

fn user_token(sub: &str) -> String {
    tokens::hs256(SECRET, &tokens::claims(sub, 3600))
}

#[tokio::test]
async fn the_api_needs_its_key_and_is_absent_without_one() {
    let server = TestServer::start_with(config()).await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("api-k3y"),
        Some("Bearer api-k3y2"),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let response = testkit::request(server.addr, "GET", "/api/rooms", &headers, b"").await;
        assert_eq!(response.status, 401, "{auth:?}");
        assert_eq!(response.json()["error"], "unauthorized");
    }
    let off = TestServer::start_with(testkit::unlimited()).await;
    let (status, body) = call(&off, "GET", "/api/rooms", Value::Null).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn a_published_line_is_stored_delivered_in_order_and_idempotent() {
    let server = TestServer::start_with(config()).await;
    let mut reader = server.client_in(&["news"]).await;
    reader.send_to("news", "first, from a socket", "n-1").await;
    reader.recv_ack_of("n-1").await;
    assert_eq!(reader.recv_line().await.seq, Seq(1));
    let (status, body) = call(
        &server,
        "POST",
        "/api/rooms/news/messages",
        json!({"text": "from the app", "name": "Bot", "user": "app-bot", "idempotency_key": "k-1"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"room": "news", "seq": 2}));
    let line = reader.recv_line().await;
    assert_eq!((line.seq, line.text.as_str()), (Seq(2), "from the app"));
    assert_eq!(line.user, Some(UserId::new("app-bot")));
    assert_eq!(line.name.as_ref().map(|n| n.as_str()), Some("Bot"));
    // The same key again: the same seq, not appended twice.
    let (status, again) = call(
        &server,
        "POST",
        "/api/rooms/news/messages",
        json!({"text": "from the app", "idempotency_key": "k-1"}),
    )
    .await;
    assert_eq!((status, again), (200, json!({"room": "news", "seq": 2})));
    let (status, _) = call(
        &server,
        "POST",
        "/api/rooms/news/messages",
        json!({"text": "third"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, lines) = call(
        &server,
        "GET",
        "/api/rooms/news/messages?after=1&limit=10",
        Value::Null,
    )
    .await;
    let texts: Vec<&str> = lines
        .as_array()
        .expect("an array")
        .iter()
        .map(|l| l["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        texts,
        ["from the app", "third"],
        "in seq order, nothing twice"
    );
    let (_, page) = call(
        &server,
        "GET",
        "/api/rooms/news/messages?after=0&limit=1",
        Value::Null,
    )
    .await;
    assert_eq!(page[0]["seq"], 1);
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    let (status, _) = call(
        &server,
        "GET",
        "/api/rooms/news/messages?after=-1",
        Value::Null,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_posts_get_400_with_their_code_and_append_nothing() {
    let server = TestServer::start_with(config()).await;
    let long = "x".repeat(2_001);
    for (path, body, code) in [
        (
            "/api/rooms/Not A Room/messages",
            json!({"text": "hi"}),
            ErrorCode::BadRoom,
        ),
        (
            "/api/rooms/news/messages",
            json!({"text": "   "}),
            ErrorCode::Empty,
        ),
        (
            "/api/rooms/news/messages",
            json!({"text": long}),
            ErrorCode::TooLarge,
        ),
        (
            "/api/rooms/news/messages",
            json!({"txt": "typo"}),
            ErrorCode::BadField,
        ),
        (
            "/api/rooms/news/messages",
            json!({"text": "hi", "idempotency_key": "k".repeat(65)}),
            ErrorCode::BadField,
        ),
        (
            "/api/rooms/news/messages",
            json!({"text": "hi", "name": "\u{7}"}),
            ErrorCode::BadName,
        ),
    ] {
        let path = path.replace(' ', "%20");
        let (status, got) = call(&server, "POST", &path, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(got["error"], code.as_str(), "{body}: {got}");
        assert_eq!(got["code"], code.as_str(), "{body}: {got}");
    }
    let response = testkit::request(
        server.addr,
        "POST",
        "/api/rooms/news/messages",
        &[("Authorization", "Bearer api-k3y")],
        b"{not json",
    )
    .await;
    assert_eq!(
        (response.status, response.json()["error"].clone()),
        (400, json!("bad_json"))
    );
    let (_, lines) = call(&server, "GET", "/api/rooms/news/messages", Value::Null).await;
    assert_eq!(lines, json!([]));
}

#[tokio::test]
async fn rooms_and_members_are_listed_each_user_once() {
    let server = TestServer::start_with(config()).await;
    let url = server.ws_url();
    let alice = tokens::hs256(SECRET, &{
        let mut c = tokens::claims("alice", 3600);
        c["rooms"] = json!(["team-*"]);
        c
    });
    let mut tab1 = Client::hello(&url, &tokens::hello(Some(&alice), &["team-x"])).await;
    tab1.recv_joined().await;
    let mut tab2 = Client::hello(&url, &tokens::hello(Some(&alice), &["team-x"])).await;
    tab2.recv_joined().await;
    let mut guest = server.client_in(&["lobby"]).await;
    let (_, lobby) = call(&server, "GET", "/api/rooms/lobby/members", Value::Null).await;
    assert_eq!(
        lobby[0]["user"],
        Value::Null,
        "a guest's `user` is null: {lobby}"
    );
    assert_eq!(lobby[0]["id"], guest.id.as_str());
    guest.send_to("lobby", "hola", "n-1").await;
    guest.recv_ack_of("n-1").await;
    let (status, rooms) = call(&server, "GET", "/api/rooms", Value::Null).await;
    assert_eq!(status, 200);
    let team_x = rooms
        .as_array()
        .and_then(|r| r.iter().find(|r| r["room"] == "team-x"))
        .cloned()
        .unwrap_or_else(|| panic!("team-x is listed: {rooms}"));
    assert_eq!(
        team_x,
        json!({"room": "team-x", "online": 1, "last_seq": 0, "lines": 0, "last_at": null, "private": true})
    );
    // A room with a line says how many it keeps and when the newest came.
    let lobby = rooms
        .as_array()
        .and_then(|r| r.iter().find(|r| r["room"] == "lobby"))
        .cloned()
        .unwrap_or_else(|| panic!("lobby is listed: {rooms}"));
    assert_eq!(
        (lobby["lines"].as_u64(), lobby["last_seq"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        lobby["last_at"]
            .as_u64()
            .is_some_and(|at| at > 1_700_000_000_000),
        "{lobby}"
    );
    let (_, members) = call(&server, "GET", "/api/rooms/team-x/members", Value::Null).await;
    let members = members.as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["user"], "alice");
    let (status, bad) = call(&server, "GET", "/api/rooms/NO!/members", Value::Null).await;
    assert_eq!((status, bad["error"].clone()), (400, json!("bad_room")));
}

#[tokio::test]
async fn disconnect_closes_every_connection_of_the_user_with_4003() {
    let server = TestServer::start_with(config()).await;
    let url = server.ws_url();
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let mut tab = Client::hello(
            &url,
            &tokens::hello(Some(&user_token("alice")), &["general"]),
        )
        .await;
        tab.recv_joined().await;
        tabs.push(tab);
    }
    let mut bob = Client::hello(&url, &tokens::hello(Some(&user_token("bob")), &["general"])).await;
    bob.recv_joined().await;
    let (status, body) = call(&server, "POST", "/api/users/alice/disconnect", Value::Null).await;
    assert_eq!((status, body), (200, json!({"closed": 2})));
    for tab in &mut tabs {
        let close = tab.recv_close().await;
        assert_eq!(close.map(|f| u16::from(f.code)), Some(4003));
    }
    // Bob stays; alice may come back (a disconnect is not a revocation).
    bob.send_with_nonce("still here", "n-1").await;
    bob.recv_ack_of("n-1").await;
    let back = Client::hello(
        &url,
        &tokens::hello(Some(&user_token("alice")), &["general"]),
    )
    .await;
    assert!(back.user.is_some());
    let (_, none) = call(&server, "POST", "/api/users/nobody/disconnect", Value::Null).await;
    assert_eq!(none, json!({"closed": 0}));
}

#[tokio::test]
async fn revoke_refuses_older_tokens_durably_across_a_restart() {
    let dir = fresh_data_dir();
    let config = Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..config()
    };
    let server = TestServer::start_with(config.clone()).await;
    // Issued a little before the revocation (`iat` counts whole seconds).
    let mut old_claims = tokens::claims("alice", 3600);
    old_claims["iat"] = json!(tokens::now() - 5);
    let old = tokens::hs256(SECRET, &old_claims);
    let mut client =
        Client::hello(&server.ws_url(), &tokens::hello(Some(&old), &["general"])).await;
    client.recv_joined().await;
    let (status, body) = call(&server, "POST", "/api/users/alice/revoke", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed"], 1);
    assert_eq!(
        client.recv_close().await.map(|f| u16::from(f.code)),
        Some(4003)
    );
    let hello = tokens::hello(Some(&old), &["general"]);
    let refused = Client::refused_hello(&server.ws_url(), &hello).await;
    assert_eq!(refused, (ErrorCode::BadToken, Some(4001)));
    server.stop().await;
    let again = TestServer::start_with(config).await;
    let refused = Client::refused_hello(&again.ws_url(), &hello).await;
    assert_eq!(
        refused,
        (ErrorCode::BadToken, Some(4001)),
        "revoked after a restart too"
    );
    // A token issued after the revocation works.
    let mut new_claims = tokens::claims("alice", 3600);
    new_claims["iat"] = json!(tokens::now() + 1);
    let fresh = tokens::hs256(SECRET, &new_claims);
    let client = Client::hello(&again.ws_url(), &tokens::hello(Some(&fresh), &["general"])).await;
    assert!(client.user.is_some());
}

#[tokio::test]
async fn on_two_nodes_a_post_reaches_the_other_node_and_disconnect_reaches_every_node() {
    let redis = RedisServer::start().await;
    let node = |redis: &RedisServer| {
        TestServer::start_with(Config {
            store: backend::Store::Redis(redis.url()),
            ..config()
        })
    };
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut reader = Client::hello(
        &b.ws_url(),
        &tokens::hello(Some(&user_token("alice")), &["news"]),
    )
    .await;
    reader.recv_joined().await;
    let mut also = Client::hello(
        &a.ws_url(),
        &tokens::hello(Some(&user_token("alice")), &["news"]),
    )
    .await;
    also.recv_joined().await;
    let (status, body) = call(
        &a,
        "POST",
        "/api/rooms/news/messages",
        json!({"text": "from node a", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let seq = body["seq"].as_u64().expect("a seq");
    let line = reader.recv_line().await;
    assert_eq!((line.seq, line.text.as_str()), (Seq(seq), "from node a"));
    // The same key on the other node: the same line.
    let (status, again) = call(
        &b,
        "POST",
        "/api/rooms/news/messages",
        json!({"text": "from node a", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!((status, again["seq"].as_u64()), (200, Some(seq)));
    let (status, closed) = call(&a, "POST", "/api/users/alice/disconnect", Value::Null).await;
    assert_eq!((status, closed), (200, json!({"closed": 2})));
    for client in [&mut reader, &mut also] {
        assert_eq!(
            client.recv_close().await.map(|f| u16::from(f.code)),
            Some(4003)
        );
    }
}
