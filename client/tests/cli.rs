//! The `charla` command line, run as a real process against a real server: `send` exits 0
//! once stored and non-zero with the error code otherwise; `tail` prints text or JSON lines,
//! from `--after`, and follows; `chat` prints history, live lines and typists, and sends
//! what is typed on stdin; `--help` on each.

#![allow(missing_docs)]

use std::{process::Stdio, time::Duration};

use client::{Client, Options};
use shared::RoomName;
use testkit::TestServer;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

const TIMEOUT: Duration = Duration::from_secs(15);

fn charla() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_charla"));
    command.kill_on_drop(true);
    command
}

/// Runs `charla args…` to the end: (exit code, stdout, stderr).
async fn run(args: &[&str]) -> (i32, String, String) {
    let output = tokio::time::timeout(TIMEOUT, charla().args(args).output())
        .await
        .expect("charla ends in time")
        .expect("charla runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn send_exits_0_once_stored_and_tail_prints_text_or_json_from_after() {
    let server = TestServer::start().await;
    let url = format!("http://{}", server.addr);
    for (i, text) in ["uno", "dos", "tres"].iter().enumerate() {
        let (code, out, err) = run(&["send", &url, text, "--name", "Ana"]).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), (i + 1).to_string(), "prints the line's seq");
    }
    let (code, out, _) = run(&["tail", &url, "--no-follow"]).await;
    assert_eq!(code, 0);
    assert_eq!(out, "Ana -> uno\nAna -> dos\nAna -> tres\n");

    let (code, out, _) = run(&["tail", &url, "--after", "1", "--json", "--no-follow"]).await;
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let got: Vec<(u64, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["seq"].as_u64().expect("seq"),
                l["text"].as_str().expect("text"),
            )
        })
        .collect();
    assert_eq!(got, [(2, "dos"), (3, "tres")]);
    server.stop().await;
}

#[tokio::test]
async fn send_exits_non_zero_with_the_error_code() {
    let server = TestServer::start().await;
    let url = format!("ws://{}", server.addr);
    let long = "x".repeat(2_001);
    let (code, _, err) = run(&["send", &url, &long]).await;
    assert_eq!(code, 2);
    assert!(err.contains("too_large"), "{err}");
    let (code, _, err) = run(&["send", &url, "hola", "--room", "Not A Room"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("bad_room"), "{err}");
    server.stop().await;
    let (code, _, err) = run(&["send", "ws://127.0.0.1:9", "hola"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("could not connect"), "{err}");
}

#[tokio::test]
async fn tail_follows_a_room() {
    let server = TestServer::start().await;
    let url = format!("ws://{}", server.addr);
    let dev = RoomName::parse("dev").expect("room");
    let mut tail = charla()
        .args(["tail", &url, "--room", "dev"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tail");
    let mut out = BufReader::new(tail.stdout.take().expect("stdout")).lines();
    let options = Options {
        rooms: vec![(dev.clone(), shared::Seq(0))],
        name: Some("Bea".into()),
        ..Options::default()
    };
    let (bea, _events) = Client::connect(&url, options).await.expect("connect");
    // The tail may still be joining: send until a line shows, then check the rest follow.
    let mut sent = 0;
    let first = loop {
        sent += 1;
        bea.send(&dev, format!("línea {sent}"))
            .await
            .expect("stored");
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(500), out.next_line()).await {
            break line.expect("read").expect("a line");
        }
    };
    assert_eq!(first, "Bea -> línea 1");
    bea.send(&dev, "última").await.expect("stored");
    let mut rest = Vec::new();
    while rest.last().map(String::as_str) != Some("Bea -> última") {
        let line = tokio::time::timeout(TIMEOUT, out.next_line())
            .await
            .expect("in time")
            .expect("read")
            .expect("a line");
        rest.push(line);
    }
    let expected: Vec<String> = (2..=sent)
        .map(|n| format!("Bea -> línea {n}"))
        .chain(["Bea -> última".to_owned()])
        .collect();
    assert_eq!(rest, expected, "every line once, in order");
    let _ = tail.kill().await;
    server.stop().await;
}

#[tokio::test]
async fn chat_prints_history_lines_and_typists_and_sends_stdin() {
    let server = TestServer::start().await;
    let url = format!("ws://{}", server.addr);
    let general = RoomName::general();
    let options = Options {
        name: Some("Bea".into()),
        ..Options::default()
    };
    let (bea, _events) = Client::connect(&url, options).await.expect("connect");
    bea.send(&general, "antes").await.expect("stored");

    let mut chat = charla()
        .args(["chat", &url, "--name", "Eva"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("chat");
    let mut stdin = chat.stdin.take().expect("stdin");
    let mut out = BufReader::new(chat.stdout.take().expect("stdout")).lines();
    let mut next_line = async || {
        tokio::time::timeout(TIMEOUT, out.next_line())
            .await
            .expect("a line in time")
            .expect("read")
            .expect("still running")
    };
    assert_eq!(next_line().await, "Bea -> antes", "the history first");
    stdin.write_all(b"hola desde eva\n").await.expect("type");
    assert_eq!(next_line().await, "Eva -> hola desde eva");
    bea.typing(&general, "escribiendo…");
    assert_eq!(next_line().await, "Bea is typing: escribiendo…");
    bea.send(&general, "después").await.expect("stored");
    assert_eq!(next_line().await, "Bea -> después");
    // The end of stdin ends the chat, after what was typed is stored.
    stdin.write_all(b"adios\n").await.expect("type");
    drop(stdin);
    let status = tokio::time::timeout(TIMEOUT, chat.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert!(status.success());
    let (_, out, _) = run(&["tail", &url, "--no-follow"]).await;
    assert_eq!(
        out,
        "Bea -> antes\nEva -> hola desde eva\nBea -> después\nEva -> adios\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_command_has_help() {
    for command in [
        &["--help"][..],
        &["chat", "--help"],
        &["send", "--help"],
        &["tail", "--help"],
        &["token", "--help"],
    ] {
        let (code, out, _) = run(command).await;
        assert_eq!(code, 0, "{command:?}");
        assert!(out.contains("Usage: charla"), "{command:?}: {out}");
    }
    let (_, out, _) = run(&["tail", "--help"]).await;
    assert!(out.contains("--after") && out.contains("--json") && out.contains("--room"));
}
