//! A client of the Server-Sent Events transport (`/sse`), as a browser's `EventSource` and
//! `fetch` would use it, over plain TCP: `POST /sse` opens a transport, `GET /sse/<id>` is
//! its event stream (read here from the chunked HTTP body), `POST /sse/<id>` sends frames.
//! Every read is under [`TIMEOUT`].

use std::net::SocketAddr;

use shared::{ClientMsg, ServerMsg, decode_server, encode, server};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{HttpResponse, TIMEOUT, request};

pub use client::sse::SseEvent;
use client::sse::{parse_event, take_block};

/// An open event stream: the HTTP response's body, de-chunked, cut into events.
pub struct SseStream {
    io: BufReader<TcpStream>,
    /// Body bytes read and not yet cut into an event.
    pending: Vec<u8>,
    /// The body ended.
    ended: bool,
}

impl SseStream {
    /// `GET <path>` with `headers`; the status, and the stream if it is 200.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Option<Self>, String) {
        Self::open_with(addr, path, headers, None).await
    }

    /// [`open`](Self::open) on a connection with a receive buffer of `recv_buffer` bytes,
    /// if given.
    pub async fn open_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> (u16, Option<Self>, String) {
        let localhost = std::net::Ipv4Addr::LOCALHOST.into();
        let tcp = crate::connect_with(addr, localhost, recv_buffer).await;
        let mut io = BufReader::new(tcp);
        let mut head =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        io.get_mut()
            .write_all(head.as_bytes())
            .await
            .expect("write the request");
        let mut status_line = String::new();
        let mut chunked = false;
        let mut length = None;
        let mut first = true;
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(TIMEOUT, io.read_line(&mut line))
                .await
                .expect("response headers in time")
                .expect("read headers");
            assert!(read > 0, "the server closed before its headers");
            let line = line.trim_end().to_owned();
            if first {
                status_line = line;
                first = false;
                continue;
            }
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        if status != 200 {
            let mut body = vec![0; length.unwrap_or(0)];
            if length.is_some() {
                tokio::time::timeout(TIMEOUT, io.read_exact(&mut body))
                    .await
                    .expect("body in time")
                    .expect("read body");
            }
            return (status, None, String::from_utf8_lossy(&body).into_owned());
        }
        assert!(chunked, "an event stream is chunked");
        let stream = SseStream {
            io,
            pending: Vec::new(),
            ended: false,
        };
        (status, Some(stream), String::new())
    }

    /// Reads the next chunk into `pending`; false at the body's end.
    async fn read_chunk(&mut self) -> bool {
        let mut size = String::new();
        let read = self.io.read_line(&mut size).await.unwrap_or(0);
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if read == 0 || size == 0 {
            self.ended = true;
            return false;
        }
        let mut chunk = vec![0; size + 2];
        if self.io.read_exact(&mut chunk).await.is_err() {
            self.ended = true;
            return false;
        }
        chunk.truncate(size);
        self.pending.extend_from_slice(&chunk);
        true
    }

    /// The next event within [`TIMEOUT`] (the `retry:` preamble skipped); none once the
    /// stream has ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(TIMEOUT, self.next_untimed())
            .await
            .expect("an event (or the stream's end) in time")
    }

    /// The next event, however long it takes.
    pub async fn next_untimed(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(block) = take_block(&mut self.pending) {
                if let Some(event) = parse_event(&block) {
                    return Some(event);
                }
                continue;
            }
            if self.ended || !self.read_chunk().await {
                return None;
            }
        }
    }
}

/// A chat client on the SSE transport: what a page that fell back from the WebSocket does.
pub struct SseClient {
    /// The server.
    pub addr: SocketAddr,
    /// The transport's id.
    pub transport: String,
    /// The open stream, if one is.
    pub stream: Option<SseStream>,
    /// The id of the last event read.
    pub last_id: u64,
    /// Whether a `ping` is answered (with an empty POST) as it is read.
    pub answer_pings: bool,
    /// The stream's receive buffer, if a small one is wanted.
    pub recv_buffer: Option<u32>,
}

impl SseClient {
    /// Opens a transport with `hello` and its stream; the welcome is not read yet.
    pub async fn open(addr: SocketAddr, hello: &ClientMsg) -> Self {
        Self::open_with(addr, hello, None).await
    }

    /// [`open`](Self::open), its stream on a connection with a receive buffer of
    /// `recv_buffer` bytes, if given.
    pub async fn open_with(addr: SocketAddr, hello: &ClientMsg, recv_buffer: Option<u32>) -> Self {
        let opened = request(addr, "POST", "/sse", &[], encode(hello).as_bytes()).await;
        assert_eq!(opened.status, 201, "POST /sse opens: {}", opened.body);
        let transport = opened.json()["transport"]
            .as_str()
            .expect("a transport id")
            .to_owned();
        let mut client = SseClient {
            addr,
            transport,
            stream: None,
            last_id: 0,
            answer_pings: true,
            recv_buffer,
        };
        assert_eq!(client.reopen(None).await, 200);
        client
    }

    /// Opens a transport with a `hello` for a new session in `rooms`, and reads its welcome
    /// and one `joined` per room.
    pub async fn welcomed_in(addr: SocketAddr, rooms: &[&str]) -> (Self, server::Welcome) {
        Self::welcomed_in_with(addr, rooms, None).await
    }

    /// [`welcomed_in`](Self::welcomed_in), its stream on a connection with a receive
    /// buffer of `recv_buffer` bytes, if given.
    pub async fn welcomed_in_with(
        addr: SocketAddr,
        rooms: &[&str],
        recv_buffer: Option<u32>,
    ) -> (Self, server::Welcome) {
        let hello = ClientMsg::Hello {
            resume: None,
            rooms: Some(
                rooms
                    .iter()
                    .map(|r| ((*r).to_owned(), shared::Seq(0)))
                    .collect(),
            ),
            name: None,
            token: None,
        };
        let mut client = Self::open_with(addr, &hello, recv_buffer).await;
        let welcome = client
            .recv_until(|m| match m {
                ServerMsg::Welcome(w) => Some(w),
                _ => None,
            })
            .await;
        for _ in rooms {
            client
                .recv_until(|m| matches!(m, ServerMsg::Joined(_)).then_some(()))
                .await;
        }
        (client, welcome)
    }

    /// `/sse/<id>`.
    pub fn path(&self) -> String {
        format!("/sse/{}", self.transport)
    }

    /// (Re)opens the stream, with `Last-Event-ID` if given; the status.
    pub async fn reopen(&mut self, last_event_id: Option<u64>) -> u16 {
        let last = last_event_id.map(|id| id.to_string());
        let headers: Vec<(&str, &str)> = last
            .as_deref()
            .map(|id| vec![("Last-Event-ID", id)])
            .unwrap_or_default();
        let (status, stream, _) =
            SseStream::open_with(self.addr, &self.path(), &headers, self.recv_buffer).await;
        if stream.is_some() {
            self.stream = stream;
        }
        status
    }

    /// Drops the stream's TCP connection, as a proxy that cuts it would.
    pub fn cut(&mut self) {
        self.stream = None;
    }

    /// POSTs `msgs`, one per line.
    pub async fn post(&self, msgs: &[ClientMsg]) -> HttpResponse {
        let body: Vec<String> = msgs.iter().map(encode).collect();
        self.post_raw(body.join("\n").as_bytes()).await
    }

    /// POSTs `body` as it is.
    pub async fn post_raw(&self, body: &[u8]) -> HttpResponse {
        request(self.addr, "POST", &self.path(), &[], body).await
    }

    /// POSTs one message; it must be taken (202).
    pub async fn say(&self, msg: &ClientMsg) {
        let response = self.post(std::slice::from_ref(msg)).await;
        assert_eq!(response.status, 202, "taken: {}", response.body);
    }

    /// The next event (pings answered, if [`answer_pings`](Self::answer_pings)); none once
    /// the stream ended.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        let stream = self.stream.as_mut().expect("a stream is open");
        let event = stream.next().await?;
        if let Some(id) = event.id {
            assert_eq!(
                id,
                self.last_id + 1,
                "event ids follow each other: {event:?}"
            );
            self.last_id = id;
        }
        if event.event == "ping" && self.answer_pings {
            let answered = self.post_raw(b"").await;
            assert_eq!(answered.status, 202, "a ping answered: {}", answered.body);
        }
        Some(event)
    }

    /// The next server message (pings skipped); panics on the stream's close or end.
    pub async fn recv(&mut self) -> ServerMsg {
        loop {
            let event = self.next_event().await.expect("the stream is open");
            match event.event.as_str() {
                "message" => {
                    return decode_server(&event.data)
                        .unwrap_or_else(|e| panic!("a server message, got {:?}: {e}", event.data));
                }
                "ping" => continue,
                other => panic!("expected a message, got {other}: {}", event.data),
            }
        }
    }

    /// The next message `pick` accepts, skipping others.
    pub async fn recv_until<T>(&mut self, pick: impl Fn(ServerMsg) -> Option<T>) -> T {
        loop {
            if let Some(found) = pick(self.recv().await) {
                return found;
            }
        }
    }

    /// The `close` event's code, reading past any other event; none if the stream ended
    /// without one.
    pub async fn closed(&mut self) -> Option<u16> {
        while let Some(event) = self.next_event().await {
            if event.event == "close" {
                let data: serde_json::Value =
                    serde_json::from_str(&event.data).expect("a close's data is JSON");
                return data["code"].as_u64().and_then(|c| u16::try_from(c).ok());
            }
        }
        None
    }
}
