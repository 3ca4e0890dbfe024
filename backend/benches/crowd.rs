//! `cargo bench -p backend --bench crowd`: crowds of N guests (default 100, 1,000, 3,000 and
//! 9,000; `CHARLA_BENCH_CROWDS=100,500`) join `general`, each types 2,000 `\u0000` (about
//! 12 KB of JSON per text), then a newcomer connects: prints how long it takes from its
//! connect to its `joined`, the size of that greeting and how many typists it carries (the
//! rest are marked `typing_more`). Default limits but for the connection caps. Needs
//! `ulimit -n` above 2 × N (server and clients share this process). Asserts nothing about
//! speed.

use std::time::Instant;

use backend::Config;
use futures_util::{SinkExt, StreamExt};
use shared::{ClientMsg, ServerMsg, decode_server, encode};
use testkit::TestServer;
use tokio_tungstenite::{WebSocketStream, connect_async, tungstenite::Message};

type Ws = WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn hello() -> ClientMsg {
    ClientMsg::Hello {
        resume: None,
        rooms: Some([("general".to_owned(), shared::Seq(0))].into()),
        name: None,
        token: None,
    }
}

/// Connects, says hello, reads until `joined`: (socket, joined's size, typists, typing_more).
async fn join(url: &str) -> (Ws, usize, usize, bool) {
    let (mut ws, _) = connect_async(url).await.expect("connect");
    ws.send(Message::text(encode(&hello())))
        .await
        .expect("hello");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerMsg::Joined(shared::server::Joined {
                    typing,
                    typing_more,
                    ..
                })) = decode_server(t.as_str())
                {
                    return (ws, t.len(), typing.len(), typing_more);
                }
            }
            Some(Ok(_)) => {}
            other => panic!("closed before joined: {other:?}"),
        }
    }
}

#[tokio::main]
async fn main() {
    let crowds: Vec<usize> = std::env::var("CHARLA_BENCH_CROWDS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 3_000, 9_000]);
    let text = "\u{0}".repeat(shared::limits::MAX_TEXT_CHARS);
    println!("crowd  newcomer_ms  greeting_bytes  typists_in_greeting  typing_more");
    for n in crowds {
        let server = TestServer::start_with(Config {
            store: backend::Store::Memory,
            max_connections: 100_000,
            max_connections_per_ip: 100_000,
            max_tcp_per_ip: 100_000,
            new_sessions_per_min: 10_000_000,
            ..Config::default()
        })
        .await;
        let url = format!("{}?v=2", server.ws_url());
        let typing = encode(&ClientMsg::Typing {
            room: None,
            text: text.clone(),
        });
        let ping = encode(&ClientMsg::Ping);
        let mut drains = Vec::with_capacity(n);
        for _ in 0..n {
            let (mut ws, ..) = join(&url).await;
            ws.send(Message::text(typing.clone()))
                .await
                .expect("typing");
            // A connection handles its frames in order: the pong says the text is in.
            ws.send(Message::text(ping.clone())).await.expect("ping");
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str() == r#"{"type":"pong"}"# => break,
                    Some(Ok(_)) => {}
                    other => panic!("closed before its pong: {other:?}"),
                }
            }
            // Each member reads what it is sent, so that none is a slow consumer.
            drains.push(tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
            }));
        }
        let started = Instant::now();
        let (ws, bytes, typists, more) = join(&url).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        println!("{n:>5}  {ms:>11.1}  {bytes:>14}  {typists:>19}  {more}");
        drop(ws);
        for d in drains {
            d.abort();
        }
        server.stop().await;
    }
}
