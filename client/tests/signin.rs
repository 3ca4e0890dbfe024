//! Signing in, against a real server that checks tokens: `charla token` mints an HS256
//! token with the claims asked for; `charla send --token` / `--token-file` / `CHARLA_TOKEN`
//! sign in and the line carries the user; without a token, or with a bad one, the command
//! says `auth_required` / `bad_token`; a private room not granted says `forbidden`. The
//! client library refreshes a short-lived token by itself (the connection outlives the
//! first token, same id), while a fixed token ends for good when it expires; a user the
//! app disconnects (4003) is told so and not reconnected.

#![allow(missing_docs)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use backend::AuthMode;
use client::{
    Client, ConnectError, Event, Options, SignedOut, TokenSource,
    token::{Claims, mint_hs256},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use shared::{ErrorCode, RoomName, Seq, UserId};
use testkit::{TestServer, next_event as next};
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(15);
const SECRET: &str = "correct horse battery staple";
const API_KEY: &str = "k3y-for-the-apps-backend";

/// A server that requires sign-in, with `team-*` private and the server API on.
fn signin_config() -> backend::Config {
    backend::Config {
        jwt_secret: Some(SECRET.into()),
        auth: Some(AuthMode::Required),
        private_rooms: vec!["team-*".into()],
        api_key: Some(API_KEY.into()),
        ..backend::Config::default()
    }
}

/// A token for `sub`, valid for `ttl`, granting `rooms`.
fn token(sub: &str, ttl: Duration, rooms: &[&str]) -> String {
    let claims = Claims {
        ttl,
        rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
        ..Claims::new(sub)
    };
    mint_hs256(SECRET.as_bytes(), &claims).expect("minted")
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Runs `charla args…` to the end, with `env` set: (exit code, stdout, stderr).
async fn run_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_charla"));
    command.kill_on_drop(true).args(args);
    // Neither the secret nor a token may leak in from the environment of the test run.
    command
        .env_remove("CHARLA_TOKEN")
        .env_remove("CHARLA_JWT_SECRET");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("charla ends in time")
        .expect("charla runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn run(args: &[&str]) -> (i32, String, String) {
    run_with(args, &[]).await
}

/// Every event until the client stops by itself (fails if it is still running after
/// `within`).
async fn events_until_the_end(events: &mut client::Events, within: Duration) -> Vec<Event> {
    let mut seen = Vec::new();
    tokio::time::timeout(within, async {
        while let Some(event) = events.next().await {
            seen.push(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the client stopped by itself; it is still going: {seen:?}"));
    seen
}

fn decode(
    token: &str,
    secret: &str,
    validation: &Validation,
) -> jsonwebtoken::errors::Result<Value> {
    let key = DecodingKey::from_secret(secret.as_bytes())?;
    jsonwebtoken::decode::<Value>(token, &key, validation).map(|data| data.claims)
}

#[tokio::test]
async fn charla_token_prints_an_hs256_token_with_the_claims_asked_for() {
    let (code, out, err) = run(&[
        "token",
        "--secret",
        SECRET,
        "--sub",
        "alice",
        "--name",
        "Alice",
        "--rooms",
        "team-*",
        "--rooms",
        "ops,dev",
        "--roles",
        "moderator",
        "--ttl",
        "30m",
        "--issuer",
        "https://app.example",
        "--audience",
        "charla",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let token = out.trim();
    assert_eq!(out, format!("{token}\n"), "the token alone, on one line");
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::HS256);

    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["https://app.example"]);
    validation.set_audience(&["charla"]);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    let claims = decode(token, SECRET, &validation).expect("verifies with the same secret");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["rooms"], serde_json::json!(["team-*", "ops", "dev"]));
    assert_eq!(claims["roles"], serde_json::json!(["moderator"]));
    let iat = claims["iat"].as_u64().expect("iat");
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(iat.abs_diff(now_secs()) <= 5, "issued now: {iat}");
    assert_eq!(exp - iat, 30 * 60, "exp is iat + the ttl");
    assert!(
        decode(token, "another secret", &validation).is_err(),
        "another secret does not verify it"
    );

    // The secret may come from the environment (as the server's does); the ttl defaults
    // to an hour; claims not asked for are left out.
    let (code, out, err) = run_with(
        &["token", "--sub", "bob", "--ttl", "45s"],
        &[("CHARLA_JWT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let claims = decode(out.trim(), SECRET, &Validation::new(Algorithm::HS256)).expect("valid");
    assert_eq!(claims["sub"], "bob");
    assert_eq!(
        claims["exp"]
            .as_u64()
            .zip(claims["iat"].as_u64())
            .map(|(e, i)| e - i),
        Some(45)
    );
    for absent in ["name", "rooms", "roles", "iss", "aud"] {
        assert!(claims.get(absent).is_none(), "{absent}: {claims}");
    }
    let (code, out, _) = run(&["token", "--secret", SECRET, "--sub", "carol"]).await;
    assert_eq!(code, 0);
    let claims = decode(out.trim(), SECRET, &Validation::new(Algorithm::HS256)).expect("valid");
    assert_eq!(
        claims["exp"]
            .as_u64()
            .zip(claims["iat"].as_u64())
            .map(|(e, i)| e - i),
        Some(3_600)
    );

    // What the server would refuse is refused here first.
    let (code, _, err) = run(&["token", "--secret", SECRET, "--sub", ""]).await;
    assert_eq!(code, 2);
    assert!(err.contains("sub"), "{err}");
    let long = "x".repeat(65);
    let (code, _, err) = run(&["token", "--secret", SECRET, "--sub", &long]).await;
    assert_eq!(code, 2, "{err}");
    for ttl in ["0s", "1w", "soon"] {
        let (code, _, err) = run(&["token", "--secret", SECRET, "--sub", "a", "--ttl", ttl]).await;
        assert_ne!(code, 0, "--ttl {ttl}");
        assert!(err.contains("--ttl"), "{ttl}: {err}");
    }
}

#[tokio::test]
async fn charla_signs_in_with_a_token_and_is_told_why_when_it_cannot() {
    let server = TestServer::start_with(signin_config()).await;
    let url = format!("http://{}", server.addr);
    let (code, out, err) = run(&[
        "token", "--secret", SECRET, "--sub", "alice", "--name", "Alice", "--rooms", "team-x",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let alice = out.trim().to_owned();

    let (code, out, err) = run(&["send", &url, "hola", "--token", &alice]).await;
    assert_eq!((code, out.trim()), (0, "1"), "{err}");

    // No token: the server requires one.
    let (code, _, err) = run(&["send", &url, "sin token"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("auth_required"), "{err}");
    // A token signed with another secret.
    let forged = mint_hs256(b"not the server's secret", &Claims::new("alice")).expect("minted");
    let (code, _, err) = run(&["send", &url, "falso", "--token", &forged]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad_token"), "{err}");
    // An expired one (the server allows 30 s of clock skew: this is well past it).
    let expired = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
        let claims = serde_json::json!({
            "sub": "alice",
            "iat": now_secs() - 7_200,
            "exp": now_secs() - 3_600,
        });
        encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encoded")
    };
    let (code, _, err) = run(&["send", &url, "tarde", "--token", &expired]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("token_expired"), "{err}");

    // The line carries the user; the token may come from CHARLA_TOKEN.
    let (code, out, err) = run_with(
        &["tail", &url, "--json", "--no-follow"],
        &[("CHARLA_TOKEN", &alice)],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1, "only the signed-in line was stored: {out}");
    assert_eq!(lines[0]["text"], "hola");
    assert_eq!(lines[0]["user"], "alice");
    assert_eq!(lines[0]["name"], "Alice");

    // A private room: granted to alice (through a token file), not to bob.
    let dir = testkit::fresh_data_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("token");
    std::fs::write(&file, format!("{alice}\n")).expect("write the token");
    let file = file.to_str().expect("a UTF-8 path");
    let (code, out, err) = run(&[
        "send",
        &url,
        "privado",
        "--room",
        "team-x",
        "--token-file",
        file,
    ])
    .await;
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
    let bob = token("bob", Duration::from_secs(600), &[]);
    let (code, _, err) = run(&["send", &url, "colado", "--room", "team-x", "--token", &bob]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    let (code, _, err) = run(&["tail", &url, "--room", "team-x", "--token", &bob]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    let (code, _, err) = run(&["send", &url, "x", "--token", &alice, "--token-file", file]).await;
    assert_ne!(code, 0, "--token and --token-file together");
    assert!(err.contains("cannot be used with"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}

#[tokio::test]
async fn the_library_says_why_a_sign_in_was_refused() {
    let server = TestServer::start_with(signin_config()).await;
    let url = format!("ws://{}", server.addr);
    let err = Client::connect(&url, Options::default())
        .await
        .err()
        .expect("a guest is refused");
    assert_eq!(err.code(), Some(ErrorCode::AuthRequired), "{err}");
    assert!(matches!(err, ConnectError::SignIn { .. }), "{err}");

    let source = TokenSource::callback(|| async { Err("the app is down".into()) });
    let options = Options {
        token: Some(source),
        ..Options::default()
    };
    let err = Client::connect(&url, options)
        .await
        .err()
        .expect("no token to present");
    assert!(matches!(err, ConnectError::Token(_)), "{err}");
    assert!(err.to_string().contains("the app is down"), "{err}");

    let options = Options {
        token: Some(TokenSource::fixed(token(
            "alice",
            Duration::from_secs(600),
            &[],
        ))),
        ..Options::default()
    };
    let (alice, mut events) = Client::connect(&url, options).await.expect("signed in");
    let user = next(&mut events, |e| match e {
        Event::Welcome { user, .. } => Some(user),
        _ => None,
    })
    .await
    .expect("the welcome says who signed in");
    assert_eq!(user.id, UserId::new("alice"));
    alice.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_client_refreshes_its_token_by_itself_and_a_fixed_token_ends_for_good() {
    const TTL: Duration = Duration::from_secs(4);
    let config = backend::Config {
        refresh_before: Duration::from_secs(3),
        // No clock-skew allowance: a token is over at its `exp`, so outliving it proves
        // the refresh.
        jwt_leeway: Duration::ZERO,
        ..signin_config()
    };
    let server = TestServer::start_with(config).await;
    let url = format!("ws://{}", server.addr);

    let minted = Arc::new(AtomicUsize::new(0));
    let source = TokenSource::callback({
        let minted = Arc::clone(&minted);
        move || {
            minted.fetch_add(1, Ordering::SeqCst);
            async { Ok(token("alice", TTL, &[])) }
        }
    });
    let options = Options {
        token: Some(source),
        ..Options::default()
    };
    let first_expired = Instant::now() + TTL;
    let (alice, mut alice_events) = Client::connect(&url, options).await.expect("signed in");
    let id = next(&mut alice_events, |e| match e {
        Event::Welcome { id, user, .. } => {
            assert_eq!(user.map(|u| u.id), Some(UserId::new("alice")));
            Some(id)
        }
        _ => None,
    })
    .await;

    let options = Options {
        token: Some(TokenSource::fixed(token("bob", TTL, &[]))),
        ..Options::default()
    };
    let (bob, mut bob_events) = Client::connect(&url, options).await.expect("signed in");

    // Carol's token is in a file that something else keeps fresh (as `--token-file`).
    let dir = testkit::fresh_data_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("carol.token");
    std::fs::write(&file, token("carol", TTL, &[])).expect("write the token");
    let rewriter = tokio::spawn({
        let file = file.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                std::fs::write(&file, token("carol", TTL, &[])).expect("rewrite the token");
            }
        }
    });
    let options = Options {
        token: Some(TokenSource::file(&file)),
        ..Options::default()
    };
    let (carol, mut carol_events) = Client::connect(&url, options).await.expect("signed in");

    // Past the first token's life (and then some), alice's connection is the same one.
    let mut refreshed = 0;
    let watch_until = first_expired + Duration::from_secs(2);
    while let Ok(event) = tokio::time::timeout_at(watch_until.into(), alice_events.next()).await {
        match event.expect("the client is still open") {
            Event::TokenRefreshed { exp } => {
                assert!(exp > now_secs(), "a new exp, in the future: {exp}");
                refreshed += 1;
            }
            event @ (Event::Welcome { .. }
            | Event::Disconnected { .. }
            | Event::SignedOut(_)
            | Event::TokenRefreshFailed { .. }) => panic!("the connection did not hold: {event:?}"),
            _ => {}
        }
    }
    assert!(refreshed >= 1, "refreshed at least once");
    assert!(
        minted.load(Ordering::SeqCst) >= 2,
        "the source was asked again"
    );
    let seq = alice
        .send(&RoomName::general(), "sigo aquí")
        .await
        .expect("a send after the first token expired is stored");
    let line = next(&mut alice_events, |e| match e {
        Event::Line(line) if line.seq == seq => Some(line),
        _ => None,
    })
    .await;
    assert_eq!(line.from, id, "from the same connection");
    assert_eq!(line.user, Some(UserId::new("alice")));

    // Carol's connection held too, on the tokens read from the file.
    let mut carol_refreshed = 0;
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(100), carol_events.next()).await
    {
        match event {
            Event::TokenRefreshed { .. } => carol_refreshed += 1,
            event @ (Event::Disconnected { .. } | Event::SignedOut(_)) => {
                panic!("carol's connection did not hold: {event:?}")
            }
            _ => {}
        }
    }
    assert!(carol_refreshed >= 1, "refreshed from the file");
    carol
        .send(&RoomName::general(), "yo también")
        .await
        .expect("stored after the first token expired");
    rewriter.abort();
    let _ = std::fs::remove_dir_all(&dir);

    // Bob's token could not be refreshed: it expired, and the client stopped for good.
    let seen = events_until_the_end(&mut bob_events, TIMEOUT).await;
    let ends: Vec<&SignedOut> = seen
        .iter()
        .filter_map(|e| match e {
            Event::SignedOut(failure) => Some(failure),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1, "{seen:?}");
    assert_eq!(ends[0].code(), Some(ErrorCode::TokenExpired), "{seen:?}");
    assert!(
        matches!(seen.last(), Some(Event::SignedOut(_))),
        "the last event, and no reconnection: {seen:?}"
    );
    let refused = bob.send(&RoomName::general(), "¿hola?").await;
    assert!(
        refused.is_err(),
        "a stopped client sends nothing: {refused:?}"
    );
    alice.close().await;
    carol.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_user_the_app_disconnects_is_told_so_and_not_reconnected() {
    let server = TestServer::start_with(signin_config()).await;
    let url = format!("ws://{}", server.addr);
    // A source that could give a new token any time: even so, 4003 is final.
    let source =
        TokenSource::callback(|| async { Ok(token("alice", Duration::from_secs(600), &[])) });
    let options = Options {
        token: Some(source),
        rooms: vec![(RoomName::general(), Seq(0))],
        ..Options::default()
    };
    let (alice, mut events) = Client::connect(&url, options).await.expect("signed in");
    next(&mut events, |e| {
        matches!(e, Event::Joined { .. }).then_some(())
    })
    .await;

    let response = testkit::request(
        server.addr,
        "POST",
        "/api/users/alice/disconnect",
        &[("Authorization", &format!("Bearer {API_KEY}"))],
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["closed"], 1);

    let seen = events_until_the_end(&mut events, TIMEOUT).await;
    assert!(
        matches!(
            seen.as_slice(),
            [.., Event::SignedOut(SignedOut::Disconnected { .. })]
        ),
        "told, last: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Welcome { .. } | Event::Disconnected { .. })),
        "no reconnection: {seen:?}"
    );
    assert!(alice.send(&RoomName::general(), "¿sigo?").await.is_err());
    server.stop().await;
}
