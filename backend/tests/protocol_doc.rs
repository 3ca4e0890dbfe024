//! docs/PROTOCOL.md's wscat sessions, replayed against a real server: every client frame
//! shown is sent as written, and every reply must have the documented type and fields (ids,
//! tokens and times differ per run; codes, texts, rooms and seqs must match).

use serde_json::Value;
use testkit::{Client, TestServer};

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

/// Asserts that `got` has `want`'s type and fields, and its values where they do not vary
/// from run to run.
fn same_shape(want: &str, got: &str) {
    let want: Value = serde_json::from_str(want).expect("the doc's frames are JSON");
    let got: Value = serde_json::from_str(got).expect("the server's frames are JSON");
    let (Some(w), Some(g)) = (want.as_object(), got.as_object()) else {
        panic!("objects expected: {want} / {got}");
    };
    let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(w), keys(g), "fields of {want} vs {got}");
    for stable in [
        "type", "code", "text", "room", "seq", "nonce", "has_more", "protocol", "resumed",
    ] {
        assert_eq!(
            w.get(stable),
            g.get(stable),
            "`{stable}` of {want} vs {got}"
        );
    }
    if let (Some(Value::Array(wl)), Some(Value::Array(gl))) = (w.get("lines"), g.get("lines")) {
        assert_eq!(wl.len(), gl.len(), "lines of {want} vs {got}");
        for (wl, gl) in wl.iter().zip(gl) {
            same_shape(&wl.to_string(), &gl.to_string());
        }
    }
}

/// Replays `lines` on `client`: the server's frames must follow as documented. Presence
/// frames (which depend on who else is connected) are left out on both sides.
async fn replay(client: &mut Client, lines: &[(char, String)]) {
    for (dir, frame) in lines {
        if frame.contains(r#""type":"presence""#) {
            continue;
        }
        match dir {
            '>' => client.send_text(frame).await,
            _ => loop {
                let got = match client.recv_raw().await {
                    tokio_tungstenite::tungstenite::Message::Text(t) => t.as_str().to_owned(),
                    other => panic!("expected {frame}, got {other:?}"),
                };
                if got.contains(r#""type":"presence""#) {
                    continue;
                }
                same_shape(frame, &got);
                break;
            },
        }
    }
}

#[tokio::test]
async fn the_version_1_wscat_session_works_as_written() {
    let server = TestServer::start().await;
    let lines = session("## A version 1 session with wscat");
    assert!(lines.len() > 10, "the session was found: {lines:?}");
    let (welcome, rest) = lines.split_first().expect("a welcome first");
    let mut client = server.client().await;
    // The welcome was read by `client()`: check its shape by asking for a second one.
    assert_eq!(welcome.0, '<');
    let (mut raw, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("connect");
    use futures_util::StreamExt as _;
    let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(first))) = raw.next().await else {
        panic!("no welcome");
    };
    same_shape(&welcome.1, first.as_str());
    drop(raw);
    replay(&mut client, rest).await;
}

#[tokio::test]
async fn the_version_2_wscat_session_works_as_written() {
    let server = TestServer::start().await;
    let lines = session("## A version 2 session with wscat");
    assert!(lines.len() > 10, "the session was found: {lines:?}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?v=2", server.ws_url()))
        .await
        .expect("connect");
    let (first, rest) = lines.split_first().expect("a hello first");
    assert_eq!(first.0, '>');
    use futures_util::SinkExt as _;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        first.1.clone(),
    ))
    .await
    .expect("hello");
    let mut client = Client::welcomed(ws).await;
    // The welcome was read by `welcomed`; replay from the line after it.
    replay(&mut client, &rest[1..]).await;
}
