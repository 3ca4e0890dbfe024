//! docs/PROTOCOL.md's wscat sessions, replayed against a real server: every client frame
//! shown is sent as written, and every reply must have the documented type and fields (ids,
//! tokens, times and random numbers differ per run; codes, texts, rooms, seqs and the
//! exercises' numbers must match). The echo server's session must come back exactly.

use futures_util::SinkExt as _;
use serde_json::Value;
use shared::exercises::{RANDOM_RANGE, binary_pattern, checksum};
use testkit::{Socket, TIMEOUT, TestServer, next_data_frame};
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// The `> ` (client) and `< ` (server) lines of the first code block after `heading`.
fn session(heading: &str) -> Vec<(char, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md");
    let after = doc.split(heading).nth(1).expect("the session's heading");
    let block = after.split("```").nth(1).expect("its code block");
    block
        .lines()
        .filter_map(|l| {
            let (dir, rest) = l.split_at_checked(2)?;
            match dir {
                "> " => Some(('>', rest.to_owned())),
                "< " => Some(('<', rest.to_owned())),
                _ => None,
            }
        })
        .collect()
}

/// Fields whose values must be the documented ones (the others vary from run to run: ids,
/// tokens, times, counts of who else is online, random numbers, product ids).
const STABLE: &[&str] = &[
    "type",
    "code",
    "text",
    "room",
    "seq",
    "nonce",
    "has_more",
    "protocol",
    "resumed",
    "greeting",
    "ticker",
    "every_ms",
    "size",
    "checksum",
    "title",
    "description",
    "price",
    "stock",
    "field",
    "problem",
];

/// Asserts that `got` has `want`'s type and fields, and its values where they do not vary
/// from run to run; nested lines, products and field errors alike.
fn same_shape(want: &str, got: &str) {
    let want: Value = serde_json::from_str(want).expect("the doc's frames are JSON");
    let got: Value = serde_json::from_str(got).expect("the server's frames are JSON");
    same_value_shape(&want, &got);
}

fn same_value_shape(want: &Value, got: &Value) {
    let (Some(w), Some(g)) = (want.as_object(), got.as_object()) else {
        panic!("objects expected: {want} / {got}");
    };
    let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(w), keys(g), "fields of {want} vs {got}");
    for stable in STABLE {
        assert_eq!(
            w.get(*stable),
            g.get(*stable),
            "`{stable}` of {want} vs {got}"
        );
    }
    if g.get("type").and_then(Value::as_str) == Some("random") {
        let n = g.get("n").and_then(Value::as_u64).expect("a random number");
        assert!(
            u32::try_from(n).is_ok_and(|n| RANDOM_RANGE.contains(&n)),
            "{got}"
        );
    }
    for list in ["lines", "products", "errors"] {
        if let (Some(Value::Array(wl)), Some(Value::Array(gl))) = (w.get(list), g.get(list)) {
            assert_eq!(wl.len(), gl.len(), "{list} of {want} vs {got}");
            for (wl, gl) in wl.iter().zip(gl) {
                same_value_shape(wl, gl);
            }
        }
    }
    if let (Some(wp @ Value::Object(_)), Some(gp)) = (w.get("product"), g.get("product")) {
        same_value_shape(wp, gp);
    }
}

/// Replays the JSON socket's `lines` on `ws`: the server's frames must follow as documented.
/// Presence frames (which depend on who else is connected) are left out on both sides. The
/// binary frame a `binary` announces is not in the doc (a terminal cannot show it): it is
/// checked against its announce wherever it comes, and otherwise left out.
async fn replay(ws: &mut Socket, lines: &[(char, String)]) {
    let mut announced: Option<(u32, u32)> = None;
    for (dir, frame) in lines {
        if frame.contains(r#""type":"presence""#) {
            continue;
        }
        match dir {
            '>' => ws.send(Message::text(frame.clone())).await.expect("send"),
            _ => loop {
                let got = match next_data_frame(ws).await {
                    Message::Text(t) => t.as_str().to_owned(),
                    Message::Binary(bytes) if announced.is_some() => {
                        let Some((size, sum)) = announced.take() else {
                            unreachable!("checked by the guard");
                        };
                        assert_eq!(
                            bytes.as_ref(),
                            binary_pattern(size).as_slice(),
                            "the announced size, and the known pattern"
                        );
                        assert_eq!(checksum(&bytes), sum, "the announced checksum");
                        continue;
                    }
                    other => panic!("expected {frame}, got {other:?}"),
                };
                if got.contains(r#""type":"presence""#) {
                    continue;
                }
                same_shape(frame, &got);
                let got: Value = serde_json::from_str(&got).expect("JSON");
                if got["type"] == "binary" {
                    let size = got["size"].as_u64().expect("size");
                    let sum = got["checksum"].as_u64().expect("checksum");
                    announced = Some((
                        u32::try_from(size).expect("a 32-bit size"),
                        u32::try_from(sum).expect("a 32-bit checksum"),
                    ));
                }
                break;
            },
        }
    }
    assert!(announced.is_none(), "an announced binary frame never came");
}

/// Connects a raw socket to `url`.
async fn connect(url: &str) -> Socket {
    let (ws, _) = tokio::time::timeout(TIMEOUT, connect_async(url))
        .await
        .expect("connect in time")
        .expect("handshake");
    ws
}

#[tokio::test]
async fn the_version_1_wscat_session_works_as_written() {
    let server = TestServer::start().await;
    let lines = session("## A version 1 session with wscat");
    assert!(lines.len() > 10, "the session was found: {lines:?}");
    // A version 1 connection is welcomed at once: the session starts with the server.
    assert_eq!(lines[0].0, '<', "a welcome first");
    let mut ws = connect(&server.ws_url()).await;
    replay(&mut ws, &lines).await;
    server.stop().await;
}

#[tokio::test]
async fn the_version_2_wscat_session_works_as_written() {
    let server = TestServer::start().await;
    let lines = session("## A version 2 session with wscat");
    assert!(lines.len() > 10, "the session was found: {lines:?}");
    assert_eq!(lines[0].0, '>', "a hello first");
    let mut ws = connect(&format!("{}?v=2", server.ws_url())).await;
    replay(&mut ws, &lines).await;
    server.stop().await;
}

#[tokio::test]
async fn the_exercises_wscat_session_works_as_written() {
    let server = TestServer::start().await;
    let lines = session("## The exercises on the JSON socket, with wscat");
    assert!(lines.len() > 20, "the session was found: {lines:?}");
    assert_eq!(lines[0].0, '>', "a hello first");
    for kind in [
        "echo",
        "tic",
        "binary",
        "start_ticker",
        "stop_ticker",
        "watch_products",
        "unwatch_products",
        "add_product",
        "delete_product",
    ] {
        let typed = format!(r#"{{"type":"{kind}""#);
        assert!(
            lines
                .iter()
                .any(|(dir, l)| *dir == '>' && l.starts_with(&typed)),
            "the session shows `{kind}`"
        );
    }
    let mut ws = connect(&format!("{}?v=2", server.ws_url())).await;
    replay(&mut ws, &lines).await;
    // `unwatch_products` and `tic` are not answered: a `ping` gets its `pong` next.
    ws.send(Message::text(r#"{"type":"ping"}"#))
        .await
        .expect("send");
    match next_data_frame(&mut ws).await {
        Message::Text(t) => same_shape(r#"{"type":"pong"}"#, t.as_str()),
        other => panic!("expected a pong, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn the_echo_wscat_session_works_as_written() {
    let server = TestServer::start().await;
    let lines = session("## The echo server with wscat");
    assert!(lines.len() >= 4, "the session was found: {lines:?}");
    let mut ws = connect(&format!("ws://{}/echo", server.addr)).await;
    for (dir, frame) in &lines {
        match dir {
            '>' => ws.send(Message::text(frame.clone())).await.expect("send"),
            _ => assert_eq!(
                next_data_frame(&mut ws).await,
                Message::text(frame.clone()),
                "the echo, exactly"
            ),
        }
    }
    server.stop().await;
}
