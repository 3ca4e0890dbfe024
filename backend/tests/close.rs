//! The closing handshake on the wire (RFC 6455 §5.5.1): after the server's Close frame,
//! nothing. Read byte by byte from a raw TCP socket, so nothing a client library does can
//! hide a frame that follows the Close.

use testkit::{TIMEOUT, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A masked client frame (RFC 6455 §5.2) with a short payload.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The opcodes of the server's frames in `bytes` (unmasked, as a server sends them).
fn opcodes(mut bytes: &[u8]) -> Vec<u8> {
    let mut ops = Vec::new();
    while bytes.len() >= 2 {
        let op = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[2..10]);
                (
                    usize::try_from(u64::from_be_bytes(n)).expect("a length"),
                    10,
                )
            }
            n => (usize::from(n), 2),
        };
        ops.push(op);
        bytes = &bytes[(header + len).min(bytes.len())..];
    }
    ops
}

#[tokio::test]
async fn nothing_follows_the_servers_close_even_when_the_client_sent_a_frame_with_its_close() {
    let server = TestServer::start_with(testkit::unlimited()).await;
    for _ in 0..20 {
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let upgrade = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            server.addr
        );
        tcp.write_all(upgrade.as_bytes()).await.expect("upgrade");
        // Read the response head and the welcome, whatever comes first.
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(n > 0, "the server hung up during the handshake");
            seen.extend_from_slice(&buf[..n]);
        }
        // A frame that gets an answer, and the Close, in one write.
        let mut both = client_frame(0x1, br#"{"type":"ping"}"#);
        both.extend(client_frame(0x8, &1000u16.to_be_bytes()));
        tcp.write_all(&both).await.expect("write");
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
        let head_end = seen
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head")
            + 4;
        let ops = opcodes(&seen[head_end..]);
        let close_at = ops.iter().position(|&op| op == 0x8).expect("a Close frame");
        assert_eq!(
            close_at,
            ops.len() - 1,
            "frames after the Close: opcodes {ops:?}"
        );
    }
}
