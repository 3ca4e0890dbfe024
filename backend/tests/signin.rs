//! Sign-in through real sockets: every refusal of a token (another secret, `alg: none`,
//! RS/HS confusion, expired, wrong issuer or audience, malformed, revoked), the auth modes,
//! private rooms for guests and users, refresh in band and expiry, resume bound to its user,
//! and presence and typing once per user.

use std::time::Duration;

use backend::{AuthMode, Config};
use jsonwebtoken::Algorithm;
use serde_json::json;
use shared::{ClientMsg, ErrorCode, ServerMsg, UserId};
use testkit::{Client, TIMEOUT, TestServer, tokens};

const SECRET: &str = "s3cret-for-tests";
const AUTH_CLOSE: Option<u16> = Some(4001);

fn with_secret() -> Config {
    Config {
        jwt_secret: Some(SECRET.into()),
        jwt_leeway: Duration::ZERO,
        private_rooms: vec!["team-*".into()],
        ..testkit::unlimited()
    }
}

fn alice() -> String {
    let mut claims = tokens::claims("alice", 3600);
    claims["name"] = json!("Alice");
    claims["rooms"] = json!(["team-*"]);
    claims["roles"] = json!(["moderator"]);
    tokens::hs256(SECRET, &claims)
}

fn key(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn refused(server: &TestServer, token: &str) -> (ErrorCode, Option<u16>) {
    Client::refused_hello(&server.ws_url(), &tokens::hello(Some(token), &["general"])).await
}

#[tokio::test]
async fn a_signed_in_user_is_welcomed_as_themselves_and_their_lines_carry_their_id() {
    let server = TestServer::start_with(with_secret()).await;
    let mut client = Client::hello(
        &server.ws_url(),
        &tokens::hello(Some(&alice()), &["general"]),
    )
    .await;
    let user = client.user.clone().expect("welcomed as a user");
    assert_eq!(user.id, UserId::new("alice"));
    assert_eq!(user.name.as_ref().map(|n| n.as_str()), Some("Alice"));
    assert_eq!(client.name.as_ref().map(|n| n.as_str()), Some("Alice"));
    client.recv_joined().await;
    client.send_with_nonce("hola", "n-1").await;
    client.recv_ack_of("n-1").await;
    let line = client.recv_line().await;
    assert_eq!(line.user, Some(UserId::new("alice")));
    assert_eq!(
        line.from, client.id,
        "lines still say which session sent them"
    );
    // A guest beside her (optional mode, the default with a key) is welcomed as `null`.
    let guest = Client::hello(&server.ws_url(), &tokens::hello(None, &["general"])).await;
    assert_eq!(guest.user, None);
    // A token without a name: the user is called by their id.
    let bob = tokens::hs256(SECRET, &tokens::claims("bob", 3600));
    let bob = Client::hello(&server.ws_url(), &tokens::hello(Some(&bob), &["general"])).await;
    assert_eq!(bob.name.as_ref().map(|n| n.as_str()), Some("bob"));
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_code_then_closed_with_4001() {
    let server = TestServer::start_with(with_secret()).await;
    let other_secret = tokens::hs256("another-secret", &tokens::claims("alice", 3600));
    assert_eq!(
        refused(&server, &other_secret).await,
        (ErrorCode::BadToken, AUTH_CLOSE)
    );
    // alg: none, with the signature stripped.
    let claims = tokens::claims("alice", 3600);
    let b64 = |v: &serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    assert_eq!(
        refused(&server, &none).await,
        (ErrorCode::BadToken, AUTH_CLOSE)
    );
    for junk in ["", "not a token", "a.b.c", "eyJ.eyJ.sig"] {
        assert_eq!(
            refused(&server, junk).await,
            (ErrorCode::BadToken, AUTH_CLOSE),
            "{junk:?}"
        );
    }
    let expired = tokens::hs256(SECRET, &tokens::claims("alice", -60));
    assert_eq!(
        refused(&server, &expired).await,
        (ErrorCode::TokenExpired, AUTH_CLOSE)
    );
    let no_exp = tokens::hs256(SECRET, &json!({"sub": "alice"}));
    assert_eq!(
        refused(&server, &no_exp).await,
        (ErrorCode::BadToken, AUTH_CLOSE)
    );
    let long_sub = tokens::hs256(SECRET, &tokens::claims(&"x".repeat(65), 3600));
    assert_eq!(
        refused(&server, &long_sub).await,
        (ErrorCode::BadToken, AUTH_CLOSE)
    );
    let empty_sub = tokens::hs256(SECRET, &tokens::claims("", 3600));
    assert_eq!(
        refused(&server, &empty_sub).await,
        (ErrorCode::BadToken, AUTH_CLOSE)
    );
    // Another algorithm than the configured one, even with the right key material.
    let rs = tokens::signed(
        Algorithm::RS256,
        &key("rsa.key"),
        &tokens::claims("alice", 3600),
    );
    assert_eq!(
        refused(&server, &rs).await,
        (ErrorCode::BadToken, AUTH_CLOSE)
    );
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let server = TestServer::start_with(Config {
        jwt_issuer: Some("https://app.example".into()),
        jwt_audience: Some("charla".into()),
        ..with_secret()
    })
    .await;
    let mut claims = tokens::claims("alice", 3600);
    claims["iss"] = json!("https://app.example");
    claims["aud"] = json!("charla");
    let good = tokens::hs256(SECRET, &claims);
    let client = Client::hello(&server.ws_url(), &tokens::hello(Some(&good), &["general"])).await;
    assert!(client.user.is_some());
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut no_aud = claims.clone();
    no_aud.as_object_mut().expect("object").remove("aud");
    for bad in [wrong_iss, wrong_aud, no_aud] {
        let token = tokens::hs256(SECRET, &bad);
        assert_eq!(
            refused(&server, &token).await,
            (ErrorCode::BadToken, AUTH_CLOSE),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn public_keys_verify_rs256_es256_and_eddsa_and_refuse_hs256_made_with_the_key() {
    for (public, private, alg) in [
        ("rsa.pub", "rsa.key", Algorithm::RS256),
        ("ec.pub", "ec.key", Algorithm::ES256),
        ("ed.pub", "ed.key", Algorithm::EdDSA),
    ] {
        let server = TestServer::start_with(Config {
            jwt_secret: None,
            jwt_public_key: Some(
                format!("{}/tests/keys/{public}", env!("CARGO_MANIFEST_DIR")).into(),
            ),
            ..with_secret()
        })
        .await;
        let token = tokens::signed(alg, &key(private), &tokens::claims("alice", 3600));
        let client =
            Client::hello(&server.ws_url(), &tokens::hello(Some(&token), &["general"])).await;
        assert_eq!(
            client.user.map(|u| u.id),
            Some(UserId::new("alice")),
            "{alg:?}"
        );
        // The classic confusion: an HS256 token whose "secret" is the public key itself.
        let pem = String::from_utf8(key(public)).expect("PEM text");
        let confused = tokens::hs256(&pem, &tokens::claims("alice", 3600));
        assert_eq!(
            refused(&server, &confused).await,
            (ErrorCode::BadToken, AUTH_CLOSE),
            "{alg:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn required_mode_refuses_guests_and_version_1_upgrades() {
    let server = TestServer::start_with(Config {
        auth: Some(AuthMode::Required),
        ..with_secret()
    })
    .await;
    let guest = Client::refused_hello(&server.ws_url(), &tokens::hello(None, &["general"])).await;
    assert_eq!(guest, (ErrorCode::AuthRequired, AUTH_CLOSE));
    let upgrade = testkit::request(
        server.addr,
        "GET",
        "/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    )
    .await;
    assert_eq!(upgrade.status, 401, "{}", upgrade.body);
    let client = Client::hello(
        &server.ws_url(),
        &tokens::hello(Some(&alice()), &["general"]),
    )
    .await;
    assert!(client.user.is_some());
}

#[tokio::test]
async fn with_auth_off_tokens_are_ignored_and_everyone_is_a_guest() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    let client = Client::hello(
        &server.ws_url(),
        &tokens::hello(Some(&alice()), &["general"]),
    )
    .await;
    assert_eq!(client.user, None);
}

#[tokio::test]
async fn private_rooms_admit_only_granted_users_and_tell_others_nothing() {
    let server = TestServer::start_with(with_secret()).await;
    let mut alice = Client::hello(
        &server.ws_url(),
        &tokens::hello(Some(&alice()), &["team-x"]),
    )
    .await;
    let joined = alice.recv_joined().await;
    assert!(joined.private, "the room is marked private");
    alice.send_to("team-x", "secret plan", "n-1").await;
    alice.recv_ack_of("n-1").await;
    // A guest, and a user not granted the room, are refused; their connections stay.
    let bob_token = tokens::hs256(SECRET, &tokens::claims("bob", 3600));
    for token in [None, Some(bob_token.as_str())] {
        let mut other = Client::hello(&server.ws_url(), &tokens::hello(token, &["general"])).await;
        other.recv_joined().await;
        other
            .send_msg(&ClientMsg::Join {
                room: "team-x".into(),
            })
            .await;
        let refused = other.expect_error(ErrorCode::Forbidden).await;
        assert_eq!(refused.room.as_ref().map(|r| r.as_str()), Some("team-x"));
        assert!(!refused.message.contains("secret plan"));
        // Still connected, and nothing of team-x ever reaches it.
        other.send_with_nonce("still here", "n-2").await;
        other.recv_ack_of("n-2").await;
        alice
            .send_to("team-x", "more secrets", &format!("n-{}", token.is_some()))
            .await;
        let seen = other.drain(Duration::from_millis(300), 50).await;
        assert!(
            seen.iter().all(|m| !format!("{m:?}").contains("team-x")),
            "a stranger saw team-x: {seen:?}"
        );
    }
    // A hello that asks for the private room is refused for that room only.
    // (Rooms are joined in name order: `general`, then `team-x`.)
    let mut guest = Client::hello(
        &server.ws_url(),
        &tokens::hello(None, &["team-x", "general"]),
    )
    .await;
    assert_eq!(guest.recv_joined().await.room.as_str(), "general");
    let refused = guest.expect_error(ErrorCode::Forbidden).await;
    assert_eq!(refused.room.as_ref().map(|r| r.as_str()), Some("team-x"));
}

#[tokio::test]
async fn the_server_asks_for_a_refresh_and_a_refreshed_connection_outlives_its_first_token() {
    let server = TestServer::start_with(Config {
        refresh_before: Duration::from_secs(2),
        ..with_secret()
    })
    .await;
    let first = tokens::hs256(SECRET, &tokens::claims("alice", 3));
    let mut client =
        Client::hello(&server.ws_url(), &tokens::hello(Some(&first), &["general"])).await;
    client.recv_joined().await;
    let in_ms = loop {
        match client.recv().await {
            ServerMsg::TokenExpiring(shared::server::TokenExpiring { in_ms }) => break in_ms,
            ServerMsg::Presence(_) | ServerMsg::Typing(_) => {}
            other => panic!("expected token_expiring, got {other:?}"),
        }
    };
    assert!(in_ms <= 3_000, "{in_ms}");
    let fresh = tokens::hs256(SECRET, &tokens::claims("alice", 3600));
    client.send_msg(&ClientMsg::Refresh { token: fresh }).await;
    match client.recv().await {
        ServerMsg::TokenRefreshed(shared::server::TokenRefreshed { exp }) => {
            assert!(exp > tokens::now() + 3000)
        }
        other => panic!("expected token_refreshed, got {other:?}"),
    }
    // Past the first token's exp (waited on the clock, not on the server): still in.
    while tokens::now() <= first_exp(&first) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.send_with_nonce("after the first exp", "n-1").await;
    client.recv_ack_of("n-1").await;
}

/// The `exp` of a test token.
fn first_exp(token: &str) -> u64 {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice::<serde_json::Value>(&json).expect("JSON")["exp"]
        .as_u64()
        .expect("exp")
}

#[tokio::test]
async fn no_refresh_by_exp_ends_with_token_expired_and_4001() {
    let server = TestServer::start_with(Config {
        refresh_before: Duration::from_secs(1),
        ..with_secret()
    })
    .await;
    let short = tokens::hs256(SECRET, &tokens::claims("alice", 2));
    let mut client =
        Client::hello(&server.ws_url(), &tokens::hello(Some(&short), &["general"])).await;
    let mut codes = Vec::new();
    let close = loop {
        match tokio::time::timeout(TIMEOUT, client.recv_raw())
            .await
            .expect("in time")
        {
            tungstenite::Message::Text(text) => {
                if let Ok(ServerMsg::Error(shared::server::Error { code, .. })) =
                    shared::decode_server(text.as_str())
                {
                    codes.push(code);
                }
            }
            tungstenite::Message::Close(frame) => break frame.map(|f| u16::from(f.code)),
            _ => {}
        }
    };
    assert_eq!(codes, vec![ErrorCode::TokenExpired]);
    assert_eq!(close, AUTH_CLOSE);
}

#[tokio::test]
async fn a_refresh_for_another_user_is_refused_and_closes() {
    let server = TestServer::start_with(with_secret()).await;
    let mut client = Client::hello(
        &server.ws_url(),
        &tokens::hello(Some(&alice()), &["general"]),
    )
    .await;
    client.recv_joined().await;
    let bob = tokens::hs256(SECRET, &tokens::claims("bob", 3600));
    client.send_msg(&ClientMsg::Refresh { token: bob }).await;
    client.expect_error(ErrorCode::BadToken).await;
    let close = client.recv_close().await;
    assert_eq!(close.map(|f| u16::from(f.code)), AUTH_CLOSE);
    // A guest cannot refresh into a user.
    let mut guest = Client::hello(&server.ws_url(), &tokens::hello(None, &["general"])).await;
    guest.recv_joined().await;
    guest.send_msg(&ClientMsg::Refresh { token: alice() }).await;
    guest.expect_error(ErrorCode::Forbidden).await;
}

#[tokio::test]
async fn a_session_resumes_only_for_the_user_it_belongs_to() {
    let server = TestServer::start_with(with_secret()).await;
    let url = server.ws_url();
    let hers = Client::hello(&url, &tokens::hello(Some(&alice()), &["general"])).await;
    let (id, resume) = (hers.id.clone(), hers.resume.clone());
    hers.close().await;
    let with = |token: Option<String>| ClientMsg::Hello {
        resume: Some(resume.clone()),
        rooms: None,
        name: None,
        token,
    };
    let bob = tokens::hs256(SECRET, &tokens::claims("bob", 3600));
    for token in [Some(bob), None] {
        let other = Client::hello(&url, &with(token.clone())).await;
        assert!(!other.resumed, "{token:?} got alice's session");
        assert_ne!(other.id, id);
        other.close().await;
    }
    let again = Client::hello(&url, &with(Some(alice()))).await;
    assert!(again.resumed);
    assert_eq!(again.id, id);
}

#[tokio::test]
async fn presence_counts_and_lists_a_user_once_and_typing_is_per_user() {
    let server = TestServer::start_with(with_secret()).await;
    let url = server.ws_url();
    let mut tab1 = Client::hello(&url, &tokens::hello(Some(&alice()), &["lobby"])).await;
    tab1.recv_joined().await;
    let mut tab2 = Client::hello(&url, &tokens::hello(Some(&alice()), &["lobby"])).await;
    let joined = tab2.recv_joined().await;
    assert_ne!(tab1.id, tab2.id, "two sessions");
    assert_eq!(joined.online, 1, "one user however many tabs");
    let members = joined.members.expect("a small room lists its members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user, Some(UserId::new("alice")));
    tab1.typing_in("lobby", "from tab one").await;
    tab2.typing_in("lobby", "from tab two").await;
    // Both texts reach tab1 in order; the newest is alice's text.
    loop {
        let seen = tab1.recv_typing().await;
        if seen.text == "from tab two" {
            break;
        }
    }
    let mut guest = Client::hello(&url, &tokens::hello(None, &["lobby"])).await;
    let joined = guest.recv_joined().await;
    assert_eq!(joined.online, 2, "alice once, the guest once");
    let typists: Vec<_> = joined
        .typing
        .iter()
        .map(|t| (t.user.clone(), t.text.clone()))
        .collect();
    assert_eq!(
        typists,
        vec![(Some(UserId::new("alice")), "from tab two".to_owned())],
        "one live text per user"
    );
}

#[tokio::test]
async fn a_token_that_expires_in_the_far_future_is_taken_as_it_is() {
    let server = TestServer::start_with(with_secret()).await;
    for exp in [32_503_680_000_u64, 1_000_000_000_000_000, u64::MAX / 1000] {
        let token = tokens::hs256(SECRET, &json!({"sub": "alice", "exp": exp}));
        let mut client =
            Client::hello(&server.ws_url(), &tokens::hello(Some(&token), &["general"])).await;
        client.recv_joined().await;
        client.send_with_nonce("hola", "n-1").await;
        client.recv_ack_of("n-1").await;
    }
}

#[tokio::test]
async fn a_refresh_with_a_token_inside_the_refresh_window_is_not_asked_again() {
    let server = TestServer::start_with(Config {
        refresh_before: Duration::from_secs(30),
        ..with_secret()
    })
    .await;
    let short = tokens::hs256(SECRET, &tokens::claims("alice", 20));
    let mut client =
        Client::hello(&server.ws_url(), &tokens::hello(Some(&short), &["general"])).await;
    client.recv_joined().await;
    assert!(matches!(client.recv().await, ServerMsg::TokenExpiring(_)));
    // The same token back: accepted, and no second token_expiring follows it.
    client.send_msg(&ClientMsg::Refresh { token: short }).await;
    assert!(matches!(client.recv().await, ServerMsg::TokenRefreshed(_)));
    client.send_msg(&ClientMsg::Ping).await;
    let next = client.recv().await;
    assert_eq!(next, ServerMsg::Pong, "nothing in between");
}
