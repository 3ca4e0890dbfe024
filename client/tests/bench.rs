//! The load generator against a real server (small sizes: this proves the tool measures,
//! not how fast the server is; scripts/bench.sh does that): every client connects and stays,
//! lines are acked and delivered to every client, latencies are recorded for every delivery.

#![allow(missing_docs)]

use std::time::Duration;

use client::bench::{self, Target};
use testkit::{TestServer, for_load};

fn target(server: &TestServer) -> Target {
    target_on(server, client::Transport::WebSocket)
}

fn target_on(server: &TestServer, transport: client::Transport) -> Target {
    Target {
        addr: server.addr,
        also: Vec::new(),
        sources: vec![
            "127.0.0.1".parse().expect("ip"),
            "127.0.0.2".parse().expect("ip"),
        ],
        in_flight: 16,
        transport,
    }
}

#[tokio::test]
async fn idle_connects_every_client_and_they_all_stay() {
    let server = TestServer::start_with(for_load()).await;
    let pid = std::process::id();
    let report = bench::idle(&target(&server), 200, Duration::from_millis(200), Some(pid))
        .await
        .expect("idle runs");
    assert_eq!(report.get("connections"), Some(200.0));
    assert_eq!(report.get("still open after the hold"), Some(200.0));
    assert!(report.get("connects/s").is_some_and(|r| r > 0.0));
    assert!(report.get("handshake p99").is_some_and(|ms| ms > 0.0));
    assert!(report.get("server RSS").is_some(), "{}", report.table());
    server.stop().await;
}

#[tokio::test]
async fn gated_fanout_sends_each_line_only_once_every_client_has_the_last() {
    let server = TestServer::start_with(for_load()).await;
    let report = bench::fanout(
        &target(&server),
        40,
        4,
        bench::Pace::Gated,
        64,
        Duration::from_millis(500),
        &[std::process::id()],
    )
    .await
    .expect("gated fanout runs");
    let whole = report
        .get("lines delivered to every client")
        .expect("lines delivered to every client");
    assert!(whole >= 4.0, "{}", report.table());
    assert_eq!(report.get("gated"), Some(1.0));
    // Gated, nothing is in flight beyond one line per sender: the deliveries are the
    // lines that reached everyone, times the 40 clients, plus at most one line per sender
    // still on its way when the run ended.
    let per_second = report.get("deliveries/s").expect("deliveries/s");
    let lines_per_second = report.get("lines/s").expect("lines/s");
    let extra = per_second / lines_per_second - 40.0;
    assert!(
        (0.0..=40.0).contains(&extra),
        "deliveries are whole lines times clients: {}",
        report.table()
    );
    server.stop().await;
}

#[tokio::test]
async fn fanout_delivers_every_acked_line_to_every_client() {
    let server = TestServer::start_with(for_load()).await;
    let report = bench::fanout(
        &target(&server),
        50,
        5,
        bench::Pace::Window(4),
        64,
        Duration::from_millis(500),
        &[std::process::id()],
    )
    .await
    .expect("fanout runs");
    let acked = report.get("lines acked").expect("lines acked");
    assert!(acked >= 5.0, "{}", report.table());
    // Every line goes to all 50 clients (senders included).
    let per_second = report.get("deliveries/s").expect("deliveries/s");
    let lines_per_second = report.get("lines/s").expect("lines/s");
    assert!(
        per_second >= lines_per_second * 40.0,
        "deliveries follow the lines: {}",
        report.table()
    );
    assert!(report.get("server CPU per delivery").is_some());
    let json = report.json();
    assert_eq!(json["scenario"], "fanout");
    assert_eq!(json["results"]["clients"]["value"], 50.0);
    server.stop().await;
}

#[tokio::test]
async fn fanout_over_sse_delivers_every_acked_line_to_every_reader() {
    let server = TestServer::start_with(for_load()).await;
    let report = bench::fanout(
        &target_on(&server, client::Transport::Sse),
        30,
        3,
        bench::Pace::Gated,
        64,
        Duration::from_millis(500),
        &[std::process::id()],
    )
    .await
    .expect("fanout over SSE runs");
    assert_eq!(report.get("on SSE"), Some(27.0), "{}", report.table());
    let whole = report
        .get("lines delivered to every client")
        .expect("lines delivered to every client");
    // Gated: a line counts once all 30 clients have it, the 27 SSE readers included.
    assert!(whole >= 3.0, "{}", report.table());
    let per_second = report.get("deliveries/s").expect("deliveries/s");
    let lines_per_second = report.get("lines/s").expect("lines/s");
    let extra = per_second / lines_per_second - 30.0;
    assert!(
        (0.0..=30.0).contains(&extra),
        "deliveries are whole lines times clients: {}",
        report.table()
    );
    server.stop().await;
}

#[tokio::test]
async fn latency_records_every_delivery() {
    let server = TestServer::start_with(for_load()).await;
    let report = bench::latency(&target(&server), 20, 50, Duration::from_millis(600))
        .await
        .expect("latency runs");
    let sent = report.get("lines sent").expect("lines sent");
    let measured = report.get("deliveries measured").expect("measured");
    assert_eq!(measured, sent * 20.0, "{}", report.table());
    let p50 = report.get("send → delivery p50").expect("p50");
    let max = report.get("send → delivery max").expect("max");
    assert!(p50 > 0.0 && p50 <= max, "{}", report.table());
    server.stop().await;
}
