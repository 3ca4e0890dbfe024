//! Deadlines on plain HTTP (issue #20, item 7): until a connection becomes a WebSocket,
//! every read and write must make progress within `--http-timeout`, so neither a request
//! body sent a byte now and then, nor a response its client never reads, nor an idle
//! keep-alive connection holds a place for good. A WebSocket is not held to it.

#![allow(missing_docs)]

use std::time::Duration;

use backend::Config;
use shared::{ClientMsg, ServerMsg};
use testkit::{Picked, TIMEOUT, TestServer, metric};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(1);

async fn server_with(config: Config) -> TestServer {
    TestServer::start_with(Config {
        http_timeout: LIMIT,
        ..config
    })
    .await
}

/// Reads until the server ends the connection (EOF or a reset); fails after [`TIMEOUT`].
async fn read_until_closed(tcp: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
            .await
            .expect("the server ends the connection in time");
        match read {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_request_body_sent_a_byte_now_and_then_is_cut_off() {
    let server = server_with(testkit::unlimited()).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let head = format!(
        "POST /api/products HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"ti",
        server.addr
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    // ...and nothing more: the body stalls.
    let answer = read_until_closed(&mut tcp).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "no product was made from half a body: {answer}"
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(metric(&metrics, "charla_http_timeouts_total").unwrap_or(0.0) >= 1.0);
    let (_, list) = server.get("/api/products").await;
    assert_eq!(list, "[]");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = server_with(Config::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    tcp.write_all(request.as_bytes()).await.expect("write");
    // The answer, then (keep-alive, nothing more asked) the end.
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn a_response_that_is_never_read_is_cut_off() {
    // A page of 32 MB: far more than the socket buffers between the two ends hold.
    let dist = testkit::fresh_data_dir();
    std::fs::create_dir_all(&dist).expect("dist");
    const SIZE: usize = 32 << 20;
    std::fs::write(dist.join("big.bin"), vec![b'x'; SIZE]).expect("big file");
    let server = server_with(Config {
        dist: dist.clone(),
        ..Config::default()
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let mut tcp = socket.connect(server.addr).await.expect("tcp");
    let request = format!("GET /big.bin HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    tcp.write_all(request.as_bytes()).await.expect("write");
    // Not read: the server's write stalls, and the server gives up on it.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (_, metrics) = server.get("/metrics").await;
        if metric(&metrics, "charla_http_timeouts_total").unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled write is cut off"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = read_until_closed(&mut tcp).await;
    assert!(
        got.len() < SIZE,
        "{} of {SIZE} bytes: the response was cut",
        got.len()
    );
    let _ = std::fs::remove_dir_all(dist);
}

#[tokio::test]
async fn a_websocket_is_not_held_to_the_http_deadline() {
    let server = server_with(Config::default()).await;
    let mut client = server.client_in(&["general"]).await;
    // Quiet for longer than the HTTP deadline: a chat, not a slow request.
    tokio::time::sleep(LIMIT * 2).await;
    client.send_msg(&ClientMsg::Ping).await;
    client
        .recv_skipping_live("pong", |m| match m {
            ServerMsg::Pong => Picked::Found(()),
            other => Picked::Other(other),
        })
        .await;
}
