//! The closing handshake on the wire (RFC 6455 §5.5.1): after the server's Close frame,
//! nothing. Read byte by byte from a raw TCP socket, so nothing a client library does can
//! hide a frame that follows the Close.

use testkit::{TIMEOUT, TestServer, raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn nothing_follows_the_servers_close_even_when_the_client_sent_a_frame_with_its_close() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    for _ in 0..20 {
        let (mut tcp, mut seen) = raw::connect(server.addr).await;
        // A frame that gets an answer, and the Close, in one write.
        let mut both = raw::client_frame(0x1, br#"{"type":"ping"}"#);
        both.extend(raw::client_frame(0x8, &1000u16.to_be_bytes()));
        tcp.write_all(&both).await.expect("write");
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
                .await
                .expect("the server closes in time")
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let ops = raw::opcodes(&seen);
        let close_at = ops.iter().position(|&op| op == 0x8).expect("a Close frame");
        assert_eq!(
            close_at,
            ops.len() - 1,
            "frames after the Close: opcodes {ops:?}"
        );
    }
}

/// Every write has a deadline: a client that floods WebSocket pings and never reads fills
/// the server's socket with pongs until its own heartbeat ping cannot be written; that
/// write gives up after two heartbeats and the place is freed. (No chat traffic reaches the
/// client: only the ping path can end it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_pings_and_never_reads_is_let_go() {
    let server = TestServer::start_with(backend::Config {
        heartbeat: std::time::Duration::from_millis(500),
        ..testkit::unlimited()
    })
    .await;
    let (mut tcp, _) = raw::connect(server.addr).await;
    let ping = raw::client_frame(0x9, &[7u8; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 512)
        .collect();
    // The flood runs beside the test (its writes block once the server stops reading).
    let flood = tokio::spawn(async move { while tcp.write_all(&burst).await.is_ok() {} });
    let open = || async {
        let (_, metrics) = server.get("/metrics").await;
        testkit::metric(&metrics, "charla_connections")
    };
    assert_eq!(open().await, Some(1.0));
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    while open().await != Some(0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a client that never reads held its place"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    flood.abort();
}
