//! `charla bench storm` against the real binary: clients chatting, the server killed with
//! SIGKILL and started again; every client resumes with its id, nobody is dropped, and no
//! line is lost or shown twice. (Small here; scripts/bench.sh runs it with 10,000 clients.)

#![allow(missing_docs)]

use std::{net::SocketAddr, time::Duration};

use client::bench::{Target, storm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_and_every_client_resumes_with_nothing_lost_or_repeated() {
    let port = testkit::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let data = testkit::fresh_data_dir();
    let command = format!(
        "env RUST_LOG=warn {} --addr {addr} --data-dir {} --new-sessions-per-min 100000 --max-connections-per-ip 10000 \
         --max-tcp-per-ip 10000 --send-rate 1000 --send-burst 1000 --frame-rate 1000",
        env!("CARGO_BIN_EXE_backend"),
        data.display()
    );
    let target = Target {
        addr,
        also: Vec::new(),
        sources: vec![
            "127.0.0.1".parse().expect("ip"),
            "127.0.0.2".parse().expect("ip"),
        ],
        in_flight: 32,
        transport: client::Transport::WebSocket,
    };
    let report = storm(
        &target,
        100,
        &command,
        Duration::from_secs(1),
        Duration::from_millis(100),
    )
    .await
    .expect("the storm runs");
    println!("{}", report.table());
    assert_eq!(
        report.get("resumed with the same id"),
        Some(100.0),
        "{}",
        report.table()
    );
    assert_eq!(report.get("closed by the server (1013)"), Some(0.0));
    assert!(
        report.get("lines acked").is_some_and(|n| n >= 50.0),
        "{}",
        report.table()
    );
    for zero in [
        "acked lines missing from the history",
        "lines in the history twice",
        "gaps seen by clients",
        "lines shown twice to a client",
    ] {
        assert_eq!(report.get(zero), Some(0.0), "{zero}: {}", report.table());
    }
    assert!(
        report
            .get("every client resumed within")
            .is_some_and(|s| s < 10.0)
    );
    let _ = std::fs::remove_dir_all(data);
}
