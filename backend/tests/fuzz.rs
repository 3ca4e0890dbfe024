//! 100,000+ random and malformed frames from several clients at a real server while a
//! well-behaved client chats: no panic, every bad frame gets exactly its typed error (or the
//! documented close), and the chat loses nothing.
//!
//! The seed is printed; rerun one with `CHARLA_FUZZ_SEED=<seed> cargo test --test fuzz`.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use shared::{ClientMsg, ErrorCode, ServerMsg, decode_server, encode};
use testkit::{TIMEOUT, TestServer, unlimited};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        Message,
        protocol::frame::{
            Frame,
            coding::{Data, OpCode},
        },
    },
};

const FUZZERS: usize = 4;
const FRAMES_PER_FUZZER: usize = 25_000;
/// Frames sent before reading their replies: keeps the server's queue for us small.
const WINDOW: usize = 500;
const CHAT_LINES: usize = 200;
const MAX_FRAME_BYTES: usize = 16 * 1024;

/// xorshift64*: small, seedable, good enough to pick junk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn string(&mut self, max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| match self.below(4) {
                0 => char::from(b' ' + (self.below(95) as u8)),
                1 => self
                    .pick(&["{", "}", "\"", ":", ",", "[", "]", "\\"])
                    .chars()
                    .next()
                    .unwrap_or('x'),
                2 => char::from_u32(self.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}'),
                _ => char::from(b'a' + (self.below(26) as u8)),
            })
            .collect()
    }
}

/// A frame to throw, and what the server must answer.
enum Throw {
    /// Expect exactly this error code back.
    Refused(Message, ErrorCode),
    /// Expect the connection to be closed with this code.
    Closed(Message, u16),
}

fn valid_json(rng: &mut Rng) -> String {
    let text = rng.string(20);
    if rng.below(2) == 0 {
        encode(&ClientMsg::Typing { room: None, text })
    } else {
        encode(&ClientMsg::Send {
            room: None,
            text,
            nonce: Some(rng.string(8)),
        })
    }
}

/// Junk text: kept only if the oracle says it must be refused (then its code is known).
fn junk_text(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => rng.string(200),
        1 => {
            let json = valid_json(rng);
            let cut = json
                .char_indices()
                .map(|(i, _)| i)
                .nth(rng.below(json.chars().count()))
                .unwrap_or(0);
            json[..cut].to_owned()
        }
        2 => {
            let depth = 100 + rng.below(5_000);
            let open = rng.pick(&["[", "{\"a\":"]);
            format!(r#"{{"type":"send","text":{}"#, open.repeat(depth))
        }
        3 => format!(
            r#"{{"type":"{}","text":{}}}"#,
            rng.pick(&["send", "typing"]),
            rng.pick(&[
                "1e99999",
                "-1e400",
                "123456789012345678901234567890",
                "18446744073709551616",
                "0.1e-99999"
            ])
        ),
        4 => format!(
            r#"{{"type":"{}","text":{}}}"#,
            rng.pick(&["send", "typing"]),
            rng.pick(&[
                "null",
                "true",
                "[]",
                "{}",
                "[\"a\"]",
                "{\"text\":\"x\"}",
                "42"
            ])
        ),
        5 => format!(
            r#"{{"type":{},"text":"x"}}"#,
            rng.pick(&["1", "null", "[]", "{}", "true"])
        ),
        6 => format!(
            r#"{{"type":"{}","text":"x"}}"#,
            rng.string(30).replace(['"', '\\'], "")
        ),
        7 => {
            let mut chars: Vec<char> = valid_json(rng).chars().collect();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(chars.len());
                chars[at] = rng
                    .pick(&["\"", "{", "}", ":", ",", "x", "\\", "]"])
                    .chars()
                    .next()
                    .unwrap_or('x');
            }
            chars.into_iter().collect()
        }
        _ => format!(
            r#"{{"type":"send","text":"x","nonce":{}}}"#,
            rng.pick(&["1", "[]", "null", "{}"])
        ),
    }
}

fn throw(rng: &mut Rng) -> Throw {
    match rng.below(10_000) {
        // Rarely, frames that end the connection: bad UTF-8 in a text frame, or too big.
        0 => {
            let mut payload = br#"{"type":"send","text":""#.to_vec();
            payload.extend([0xff, 0xfe, b'"', b'}']);
            Throw::Closed(
                Message::Frame(Frame::message(payload, OpCode::Data(Data::Text), true)),
                1007,
            )
        }
        1 => Throw::Closed(
            Message::text("x".repeat(MAX_FRAME_BYTES + 1 + rng.below(1000))),
            1009,
        ),
        n if n < 500 => Throw::Refused(
            Message::binary(
                (0..rng.below(64))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<u8>>(),
            ),
            ErrorCode::BinaryFrame,
        ),
        n if n < 900 => Throw::Refused(
            Message::text(encode(&ClientMsg::Send {
                room: None,
                text: rng.pick(&["", " ", "\n\t", "   \r\n"]).to_owned(),
                nonce: None,
            })),
            ErrorCode::Empty,
        ),
        n if n < 1_200 => Throw::Refused(
            Message::text(encode(&ClientMsg::Typing {
                room: None,
                text: "é".repeat(2_001 + rng.below(100)),
            })),
            ErrorCode::TooLarge,
        ),
        _ => loop {
            let text = junk_text(rng);
            if text.len() > MAX_FRAME_BYTES {
                continue;
            }
            // What the server must answer, by an oracle that does not use its decoder.
            if let Some(Some(code)) = shared::oracle::expected_refusal(&text) {
                break Throw::Refused(Message::text(text), code);
            }
        },
    }
}

/// One fuzzing client: throws its frames in windows and checks every answer, in order.
/// Returns how many frames it threw.
async fn fuzz(url: String, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut thrown = 0;
    'reconnect: while thrown < FRAMES_PER_FUZZER {
        let (ws, _) = connect_async(&url).await.expect("connect");
        let (mut tx, mut rx) = ws.split();
        let mut next_frame = async || loop {
            let msg = tokio::time::timeout(TIMEOUT, rx.next())
                .await
                .expect("an answer within the timeout")
                .expect("open")
                .expect("valid frame");
            match msg {
                Message::Text(text) => {
                    match decode_server(text.as_str()).expect("server frames decode") {
                        ServerMsg::Error(shared::server::Error { code, .. }) => return Ok(code),
                        // Chat and presence from the well-behaved clients pass by.
                        ServerMsg::Welcome(_)
                        | ServerMsg::Message(_)
                        | ServerMsg::MessageEdited(_)
                        | ServerMsg::MessageDeleted(_)
                        | ServerMsg::Moderation(_)
                        | ServerMsg::Typing(_)
                        | ServerMsg::Presence(_) => {}
                        other @ (ServerMsg::Ack(_)
                        | ServerMsg::Older(_)
                        | ServerMsg::Joined(_)
                        | ServerMsg::Left(_)
                        | ServerMsg::Members(_)
                        | ServerMsg::NameSet(_)
                        | ServerMsg::Echo(_)
                        | ServerMsg::Binary(_)
                        | ServerMsg::Ticker(_)
                        | ServerMsg::TickerStopped(_)
                        | ServerMsg::Random(_)
                        | ServerMsg::Products(_)
                        | ServerMsg::ProductAdded(_)
                        | ServerMsg::ProductRemoved(_)
                        | ServerMsg::ProductRefused(_)
                        | ServerMsg::TokenExpiring(_)
                        | ServerMsg::TokenRefreshed(_)
                        | ServerMsg::Read(_)
                        | ServerMsg::Pong) => {
                            panic!("junk must not be answered with {other:?}")
                        }
                    }
                }
                Message::Close(frame) => return Err(frame.map(|f| u16::from(f.code))),
                _ => {}
            }
        };
        loop {
            let mut expected = Vec::with_capacity(WINDOW);
            let mut closing = None;
            while expected.len() < WINDOW && thrown < FRAMES_PER_FUZZER {
                thrown += 1;
                match throw(&mut rng) {
                    Throw::Refused(msg, code) => {
                        tx.feed(msg).await.expect("send");
                        expected.push(code);
                    }
                    Throw::Closed(msg, code) => {
                        tx.feed(msg).await.expect("send");
                        closing = Some(code);
                        break;
                    }
                }
            }
            tx.flush().await.expect("flush");
            for code in expected {
                assert_eq!(next_frame().await, Ok(code), "seed {seed}");
            }
            if let Some(code) = closing {
                assert_eq!(next_frame().await, Err(Some(code)), "seed {seed}");
                continue 'reconnect;
            }
            if thrown >= FRAMES_PER_FUZZER {
                break 'reconnect;
            }
        }
    }
    thrown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_from_many_clients_never_disturbs_the_chat() {
    let seed: u64 = std::env::var("CHARLA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("fuzz seed: {seed}");
    let server = TestServer::start_with(unlimited()).await;
    let mut chatter = server.client().await;
    let mut watcher = server.client().await;

    let started = Instant::now();
    let fuzzers: Vec<_> = (0..FUZZERS as u64)
        .map(|n| {
            tokio::spawn(fuzz(
                server.ws_url(),
                seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
            ))
        })
        .collect();
    // Meanwhile, a well-behaved client chats, reading its own lines as a real page would.
    for i in 0..CHAT_LINES {
        chatter.send_line(&format!("line {i}")).await;
        let line = chatter.recv_line().await;
        assert_eq!(line.text, format!("line {i}"));
    }
    let mut thrown = 0;
    for fuzzer in fuzzers {
        thrown += fuzzer.await.expect("fuzzer passed");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz: {thrown} frames from {FUZZERS} clients in {:.2} s: {:.0} frames/s",
        elapsed.as_secs_f64(),
        thrown as f64 / elapsed.as_secs_f64()
    );
    assert!(thrown >= FUZZERS * FRAMES_PER_FUZZER);

    // The watcher saw every chat line, once, in order, with no gaps.
    let seen: Vec<(u64, String)> = {
        let mut seen = Vec::new();
        while seen.len() < CHAT_LINES {
            let line = watcher.recv_line().await;
            seen.push((line.seq.0, line.text));
        }
        seen
    };
    let expected: Vec<(u64, String)> = (0..CHAT_LINES)
        .map(|i| (i as u64 + 1, format!("line {i}")))
        .collect();
    assert_eq!(seen, expected);
    // Nothing a fuzzer sent reached the history.
    let newcomer = server.client().await;
    assert_eq!(newcomer.history.len(), CHAT_LINES);
}
