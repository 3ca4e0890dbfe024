//! The operator's console's data through real HTTP: the stats stream (`GET
//! /api/admin/stats`, Server-Sent Events) opens for the API key or an admin's token only
//! (401 without, 403 for a token without the role, 404 on a server that takes neither),
//! starts with the kept history, then moves once a second with the load real clients put
//! on the server; it ends when the server stops. An admin's token also works the server
//! API, and the audit log names the admin.

use std::time::Duration;

use backend::Config;
use serde_json::{Value, json};
use shared::console::Sample;
use testkit::{SseStream, TIMEOUT, TestServer, tokens};

const SECRET: &str = "s3cret-for-tests";
const KEY: &str = "api-k3y";
const STATS: &str = "/api/admin/stats";

fn config() -> Config {
    Config {
        jwt_secret: Some(SECRET.into()),
        jwt_leeway: Duration::ZERO,
        api_key: Some(KEY.into()),
        ..testkit::unlimited()
    }
}

/// Opens the stats stream with `bearer` (none: no `Authorization`); its status, the stream
/// if 200, and the body otherwise.
async fn open(server: &TestServer, bearer: Option<&str>) -> (u16, Option<SseStream>, String) {
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    SseStream::open(server.addr, STATS, &headers).await
}

/// The next `sample` event's sample.
async fn next_sample(stream: &mut SseStream) -> Sample {
    let event = stream.next().await.expect("the stream goes on");
    assert_eq!(event.event, "sample", "{event:?}");
    serde_json::from_str(&event.data).expect("a sample")
}

#[tokio::test]
async fn the_stats_stream_opens_for_the_key_or_an_admins_token_only() {
    let server = TestServer::start_with(config()).await;
    let admin = tokens::with_roles(SECRET, "root", &["admin"]);
    let moderator = tokens::with_roles(SECRET, "mod", &["moderator"]);
    let forged = tokens::with_roles("another-secret", "root", &["admin"]);
    for (bearer, status) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some(forged.as_str()), 401),
        (Some(moderator.as_str()), 403),
        (Some(admin.as_str()), 200),
        (Some(KEY), 200),
    ] {
        let (seen, stream, body) = open(&server, bearer).await;
        assert_eq!(seen, status, "{bearer:?}: {body}");
        if status == 200 {
            let mut stream = stream.expect("a stream");
            let first = stream.next().await.expect("the history");
            assert_eq!(first.event, "history");
            let kept: Vec<Sample> = serde_json::from_str(&first.data).expect("samples");
            assert!(kept.len() <= shared::console::WINDOW_SECS);
        } else {
            let body: Value = serde_json::from_str(&body).expect("a JSON error");
            let code = if status == 401 {
                "unauthorized"
            } else {
                "forbidden"
            };
            assert_eq!(body["code"], code, "{body}");
        }
    }
    // The console's other data answers the same way.
    let response = testkit::request(server.addr, "GET", "/api/rooms", &[], b"").await;
    assert_eq!(response.status, 401);
    let bearer = format!("Bearer {moderator}");
    let headers = [("Authorization", bearer.as_str())];
    let response = testkit::request(server.addr, "GET", "/api/rooms", &headers, b"").await;
    assert_eq!(response.status, 403);
    let (status, rooms) =
        testkit::api_call(server.addr, "GET", "/api/rooms", Value::Null, Some(&admin)).await;
    assert_eq!(status, 200, "{rooms}");
    server.stop().await;

    // A server with neither an API key nor sign-in has no console data at all.
    let off = TestServer::start_with(testkit::unlimited()).await;
    let (status, _, _) = open(&off, Some(KEY)).await;
    assert_eq!(status, 404);
    off.stop().await;
}

#[tokio::test]
async fn the_stream_moves_with_the_load_and_ends_when_the_server_stops() {
    let server = TestServer::start_with(config()).await;
    let (_, stream, _) = open(&server, Some(KEY)).await;
    let mut stream = stream.expect("a stream");
    let history = stream.next().await.expect("the history");
    assert_eq!(history.event, "history");

    // Three readers and a talker: lines, deliveries and bytes move, connections count them.
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(server.client_in(&["general"]).await);
    }
    let mut talker = server.client_in(&["general"]).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut sent = 0;
    let busy = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sample saw the load"
        );
        for _ in 0..20 {
            sent += 1;
            talker
                .send_with_nonce(&format!("line {sent}"), &format!("n{sent}"))
                .await;
            talker.recv_ack_of(&format!("n{sent}")).await;
        }
        let sample = next_sample(&mut stream).await;
        if sample.lines > 0 && sample.deliveries > 0 {
            break sample;
        }
    };
    assert!(busy.connections >= 4, "{busy:?}");
    assert!(
        busy.deliveries >= busy.lines,
        "each line went to several clients: {busy:?}"
    );
    assert!(
        busy.bytes_out > busy.deliveries * 10,
        "frames have bytes: {busy:?}"
    );
    assert!(busy.rss > 1_000_000, "{busy:?}");
    assert!(
        busy.at > 1_700_000_000_000,
        "milliseconds since the epoch: {busy:?}"
    );
    // Samples come once a second, in order.
    let next = next_sample(&mut stream).await;
    assert!(next.at > busy.at, "{next:?} after {busy:?}");
    for reader in readers {
        drop(reader);
    }

    // A new console starts from what was kept: the busy second is in its history.
    let (_, later, _) = open(&server, Some(KEY)).await;
    let mut later = later.expect("a stream");
    let history = later.next().await.expect("the history");
    let kept: Vec<Sample> = serde_json::from_str(&history.data).expect("samples");
    assert!(
        kept.iter()
            .any(|s| s.at == busy.at && s.lines == busy.lines),
        "{kept:?}"
    );

    // The server stops though streams are open, and each ends.
    tokio::time::timeout(TIMEOUT, server.stop())
        .await
        .expect("the server stops with streams open");
    let ended = async { while stream.next_untimed().await.is_some() {} };
    tokio::time::timeout(TIMEOUT, ended)
        .await
        .expect("the stream ends");
}

#[tokio::test]
async fn an_admins_token_works_the_server_api_and_the_audit_names_the_admin() {
    let server = TestServer::start_with(config()).await;
    let admin = tokens::with_roles(SECRET, "root", &["admin"]);
    let mut talker = server.client_in(&["general"]).await;
    talker.send_with_nonce("spam", "n1").await;
    let seq = talker.recv_ack_of("n1").await;
    let path = format!("/api/rooms/general/messages/{seq}");
    let (status, body) =
        testkit::api_call(server.addr, "DELETE", &path, Value::Null, Some(&admin)).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = testkit::api_call(
        server.addr,
        "POST",
        "/api/rooms/general/bans",
        json!({"user": "troll"}),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, audit) =
        testkit::api_call(server.addr, "GET", "/api/audit", Value::Null, Some(&admin)).await;
    assert_eq!(status, 200);
    let entries: Vec<(String, String)> = audit
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["by"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("ban".to_owned(), "root".to_owned()),
            ("delete".to_owned(), "root".to_owned())
        ]
    );
    server.stop().await;
}

/// The next `left`, skipping what else a member hears.
async fn next_left(client: &mut testkit::Client) -> shared::server::Left {
    let left = async {
        loop {
            if let shared::ServerMsg::Left(left) = client.recv().await {
                return left;
            }
        }
    };
    tokio::time::timeout(TIMEOUT, left)
        .await
        .expect("a left in time")
}

#[tokio::test]
async fn the_console_kicks_mutes_and_slows_a_room_through_the_api() {
    use shared::{ChangeKind, ErrorCode};
    let server = TestServer::start_with(config()).await;
    let admin = tokens::with_roles(SECRET, "root", &["admin"]);
    let moderate = async |body: Value| {
        testkit::api_call(
            server.addr,
            "POST",
            "/api/rooms/general/moderation",
            body,
            Some(&admin),
        )
        .await
    };
    let mut guest = server.client_in(&["general"]).await;
    let who = guest.id.as_str().to_owned();

    // A kick puts the guest out (who may come back).
    let (status, body) = moderate(json!({"action": "kick", "user": who})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["action"], "kick");
    let left = next_left(&mut guest).await;
    assert_eq!(
        (left.reason, left.by.as_deref()),
        (Some(ChangeKind::Kick), Some("root"))
    );
    guest.join("general").await;

    // A mute: the guest reads but cannot send.
    let (status, body) = moderate(json!({"action": "mute", "user": who})).await;
    assert_eq!(status, 201, "{body}");
    guest.send_with_nonce("hola", "n1").await;
    let refused = loop {
        match guest.recv().await {
            shared::ServerMsg::Error(e) => break e,
            shared::ServerMsg::Moderation(_) | shared::ServerMsg::Presence(_) => {}
            other => panic!("expected the refusal, got {other:?}"),
        }
    };
    assert_eq!(refused.code, ErrorCode::Muted);
    let (status, _) = moderate(json!({"action": "unmute", "user": who})).await;
    assert_eq!(status, 201);

    // Slow mode: a new member is greeted with it.
    let (status, body) = moderate(json!({"action": "slow_mode", "secs": 30})).await;
    assert_eq!(status, 201, "{body}");
    let mut later = server.client().await;
    assert_eq!(later.join("general").await.slow_mode, Some(30));

    // Refusals: typed, and nothing appended.
    for (body, code) in [
        (json!({"action": "dance", "user": who}), "bad_field"),
        (json!({"action": "delete", "user": who}), "bad_field"),
        (json!({"action": "mute"}), "bad_field"),
        (json!({"action": "slow_mode"}), "bad_field"),
        (
            json!({"action": "kick", "user": who, "extra": 1}),
            "bad_field",
        ),
    ] {
        let (status, answer) = moderate(body.clone()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let (status, _) = testkit::api_call(
        server.addr,
        "POST",
        "/api/rooms/general/moderation",
        json!({"action": "kick", "user": who}),
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Each is in the audit log, by the admin.
    let (_, audit) = testkit::api_call(
        server.addr,
        "GET",
        "/api/audit?room=general",
        Value::Null,
        Some(KEY),
    )
    .await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["by"] == "root")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["slow_mode", "unmute", "mute", "kick"]);
    server.stop().await;
}

#[tokio::test]
async fn the_console_finds_people_by_user_id_or_name_with_their_connections() {
    use shared::ClientMsg;
    let server = TestServer::start_with(config()).await;
    let ana = tokens::with_roles(SECRET, "ana", &[]);
    let url = server.ws_url();
    let mut phone = testkit::Client::hello(&url, &tokens::hello(Some(&ana), &["general"])).await;
    phone.recv_joined().await;
    let mut laptop =
        testkit::Client::hello(&url, &tokens::hello(Some(&ana), &["general", "dev"])).await;
    laptop.recv_joined().await;
    laptop.recv_joined().await;
    let guest_hello = ClientMsg::Hello {
        resume: None,
        rooms: Some([("general".to_owned(), shared::Seq(0))].into()),
        name: Some("Zed".into()),
        token: None,
    };
    let mut guest = testkit::Client::hello(&url, &guest_hello).await;
    guest.recv_joined().await;
    let find = async |q: &str| {
        let (status, found) = testkit::api_call(
            server.addr,
            "GET",
            &format!("/api/users?q={q}"),
            Value::Null,
            Some(KEY),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        found.as_array().cloned().unwrap_or_default()
    };
    let everyone = find("").await;
    assert_eq!(everyone.len(), 2, "ana once, the guest once: {everyone:?}");
    let signed_in = &everyone[0];
    assert_eq!(signed_in["user"], "ana");
    assert_eq!(signed_in["connections"], 2);
    assert_eq!(signed_in["rooms"], json!(["dev", "general"]));
    // A room lists a user once, under one of their sessions (which one is the room's).
    assert!(
        signed_in["ids"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty()),
        "{signed_in}"
    );
    let zed = &everyone[1];
    assert_eq!(
        (zed["user"].clone(), zed["name"].clone()),
        (Value::Null, json!("Zed"))
    );
    assert_eq!(zed["ids"], json!([guest.id.as_str()]));
    // By user id, by name (any case), by a session id.
    assert_eq!(find("ANA").await.len(), 1);
    assert_eq!(find("zed").await[0]["name"], "Zed");
    let by_id = find(guest.id.as_str()).await;
    assert_eq!((by_id.len(), by_id[0]["name"].clone()), (1, json!("Zed")));
    assert!(find("nobody-here").await.is_empty());
    // Found, then disconnected: both of ana's connections close.
    let (status, closed) = testkit::api_call(
        server.addr,
        "POST",
        "/api/users/ana/disconnect",
        Value::Null,
        Some(KEY),
    )
    .await;
    assert_eq!((status, closed["closed"].clone()), (200, json!(2)));
    let response = testkit::request(server.addr, "GET", "/api/users", &[], b"").await;
    assert_eq!(response.status, 401);
    drop((phone, laptop));
    server.stop().await;
}

/// `GET /api/admin/nodes` on `server`, asked again (each server reports once a second)
/// until `ready` holds of it.
async fn nodes_until(server: &TestServer, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, nodes) = testkit::api_call(
            server.addr,
            "GET",
            "/api/admin/nodes",
            Value::Null,
            Some(KEY),
        )
        .await;
        assert_eq!(status, 200, "{nodes}");
        let nodes = nodes.as_array().cloned().unwrap_or_default();
        if ready(&nodes) {
            return nodes;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_nodes_are_this_server_alone_or_every_server_on_redis_with_the_rooms_each_follows() {
    // Alone: this server, with the room its client is in.
    let server = TestServer::start_with(config()).await;
    let _reader = server.client_in(&["general"]).await;
    let alone = nodes_until(&server, |n| {
        n.len() == 1 && n[0]["rooms"] == json!(["general"])
    })
    .await;
    assert_eq!(alone[0]["node"], "this server");
    assert!(alone[0]["connections"].as_u64() >= Some(1), "{alone:?}");
    let response = testkit::request(server.addr, "GET", "/api/admin/nodes", &[], b"").await;
    assert_eq!(response.status, 401);
    server.stop().await;

    // On Redis: two servers, each following the room its client is in; either lists both.
    let redis = testkit::RedisServer::start().await;
    let on_redis = || Config {
        store: backend::Store::Redis(redis.url()),
        ..config()
    };
    let node_a = TestServer::start_with(on_redis()).await;
    let node_b = TestServer::start_with(on_redis()).await;
    let _on_a = node_a.client_in(&["general"]).await;
    let _on_b = node_b.client_in(&["dev"]).await;
    let both = nodes_until(&node_a, |nodes| {
        let mut rooms: Vec<Value> = nodes.iter().map(|n| n["rooms"].clone()).collect();
        rooms.sort_by_key(Value::to_string);
        rooms == [json!(["dev"]), json!(["general"])]
    })
    .await;
    assert_ne!(both[0]["node"], both[1]["node"], "{both:?}");
    nodes_until(&node_b, |nodes| nodes.len() == 2).await;
    // A server that stops is gone from the list soon after.
    node_b.stop().await;
    nodes_until(&node_a, |nodes| {
        nodes.len() == 1 && nodes[0]["rooms"] == json!(["general"])
    })
    .await;
    node_a.stop().await;
}
