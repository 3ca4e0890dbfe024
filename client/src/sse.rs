//! The fallback transport, for networks where a WebSocket cannot open: server messages
//! arrive as Server-Sent Events on `GET /sse/<id>`, frames go out as `POST /sse/<id>` (see
//! docs/PROTOCOL.md, "The SSE transport"). It carries the same session as `/ws?v=2`, so the
//! runner drives it exactly as it drives a WebSocket.
//!
//! Plain HTTP/1.1 over TCP, one request per connection: the stream is read from its chunked
//! body; POSTs go one at a time, in order, each carrying every frame written meanwhile (a
//! `429 busy` batch goes again first, after [`BUSY_RETRY`]). A stream that ends without a
//! `close` event is reopened with `Last-Event-ID`, so nothing is lost or read twice; when
//! that fails too, the transport has ended and the runner reconnects.

use std::{fmt::Write as _, io, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    sync::mpsc,
};

/// How long a `429 busy` batch waits before it goes again.
pub const BUSY_RETRY: Duration = Duration::from_millis(250);
/// How long one request (its connection, head and, but for the stream, body) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response head or non-stream body read.
const MAX_RESPONSE: usize = 64 * 1024;

/// What the transport delivers to the runner.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A server message's JSON.
    Text(String),
    /// The server closed the connection (`event: close`), with its code and reason.
    Close(u16, String),
    /// The transport ended without a close (the stream could not be reopened, a POST failed).
    Ended,
}

pub use shared::sse::{SseEvent, parse_event, take_block};

/// An HTTP response: its status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// A response head, read up to its blank line: the status and whether the body is chunked
/// and how long it is.
struct Head {
    status: u16,
    chunked: bool,
    length: Option<usize>,
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

async fn read_head(io: &mut BufReader<TcpStream>) -> io::Result<Head> {
    let mut head = Head {
        status: 0,
        chunked: false,
        length: None,
    };
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = io.read_line(&mut line).await?;
        read += n;
        if n == 0 || read > MAX_RESPONSE {
            return Err(bad("the response head ended early or is too long"));
        }
        let line = line.trim_end();
        if head.status == 0 {
            head.status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("not an HTTP status line: {line:?}")))?;
            continue;
        }
        if line.is_empty() {
            return Ok(head);
        }
        let lower = line.to_ascii_lowercase();
        head.chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        if let Some(value) = lower.strip_prefix("content-length:") {
            head.length = value.trim().parse().ok();
        }
    }
}

/// Reads one chunk of a chunked body onto `into`; false at the body's end.
async fn read_chunk(io: &mut BufReader<TcpStream>, into: &mut Vec<u8>) -> io::Result<bool> {
    let mut size = String::new();
    if io.read_line(&mut size).await? == 0 {
        return Ok(false);
    }
    let size = usize::from_str_radix(size.trim(), 16).map_err(|_| bad("a bad chunk size"))?;
    if size == 0 {
        return Ok(false);
    }
    let start = into.len();
    into.resize(start + size + 2, 0);
    io.read_exact(&mut into[start..]).await?;
    into.truncate(start + size);
    Ok(true)
}

/// A new connection to `authority`.
async fn connect(authority: &str) -> io::Result<TcpStream> {
    let tcp = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no connection in time"))??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Sends a request with `headers` and `body` on `tcp` (a new connection to `authority`);
/// the response head and the connection, positioned at the body.
async fn send_request(
    tcp: TcpStream,
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(Head, BufReader<TcpStream>)> {
    let exchange = async {
        let mut io = BufReader::new(tcp);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        io.get_mut().write_all(&out).await?;
        Ok((read_head(&mut io).await?, io))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))?
}

/// One whole request to `authority` and its response (the connection closed after it).
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> io::Result<Response> {
    request_on(connect(authority).await?, authority, method, path, body).await
}

/// [`request`] on `tcp`, a connection already open to `authority` (from a chosen source
/// address, say).
pub async fn request_on(
    tcp: TcpStream,
    authority: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> io::Result<Response> {
    let headers = [("Connection", "close")];
    let (head, mut io) = send_request(tcp, authority, method, path, &headers, body).await?;
    let mut bytes = Vec::new();
    let read = async {
        if head.chunked {
            while read_chunk(&mut io, &mut bytes).await? {
                if bytes.len() > MAX_RESPONSE {
                    return Err(bad("the response body is too long"));
                }
            }
        } else if let Some(length) = head.length {
            if length > MAX_RESPONSE {
                return Err(bad("the response body is too long"));
            }
            bytes.resize(length, 0);
            io.read_exact(&mut bytes).await?;
        }
        Ok(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no body in time"))??;
    Ok(Response {
        status: head.status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// An open event stream, positioned at its (chunked) body.
pub struct EventStream {
    io: BufReader<TcpStream>,
    pending: Vec<u8>,
}

impl EventStream {
    /// `GET path` on a new connection to `authority`, after `last_id` if given: the
    /// stream, or an error saying the status that refused it.
    pub async fn open(
        authority: &str,
        path: &str,
        last_id: Option<u64>,
    ) -> io::Result<EventStream> {
        Self::open_on(connect(authority).await?, authority, path, last_id).await
    }

    /// [`open`](Self::open) on `tcp`, a connection already open to `authority`.
    pub async fn open_on(
        tcp: TcpStream,
        authority: &str,
        path: &str,
        last_id: Option<u64>,
    ) -> io::Result<EventStream> {
        let last = last_id.map(|id| id.to_string());
        let mut headers = vec![("Accept", "text/event-stream")];
        if let Some(last) = &last {
            headers.push(("Last-Event-ID", last));
        }
        let (head, io) = send_request(tcp, authority, "GET", path, &headers, b"").await?;
        if head.status != 200 || !head.chunked {
            return Err(bad(format!("the event stream answered {}", head.status)));
        }
        Ok(EventStream {
            io,
            pending: Vec::new(),
        })
    }

    /// The next event; an error when the stream has ended.
    pub async fn next(&mut self) -> io::Result<SseEvent> {
        loop {
            if let Some(block) = take_block(&mut self.pending) {
                if let Some(event) = parse_event(&block) {
                    return Ok(event);
                }
                continue;
            }
            if !read_chunk(&mut self.io, &mut self.pending).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// What goes out in POSTs.
enum Outgoing {
    /// A frame's JSON.
    Frame(String),
    /// "Still here", the answer to an `event: ping` (an empty POST).
    Pong,
}

/// An open SSE transport: messages in from its stream, frames out in POSTs, each side a
/// task of its own.
pub(crate) struct SseSocket {
    authority: String,
    path: String,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    reader: tokio::task::JoinHandle<()>,
}

impl SseSocket {
    /// Opens a transport on `authority` (`host:port`) with `hello` (its JSON) as its first
    /// frame, and its event stream.
    pub(crate) async fn open(authority: &str, hello: &str) -> io::Result<SseSocket> {
        let opened = request(authority, "POST", "/sse", hello.as_bytes()).await?;
        if opened.status != 201 {
            return Err(bad(format!(
                "POST /sse answered {}: {}",
                opened.status, opened.body
            )));
        }
        let id = serde_json::from_str::<serde_json::Value>(&opened.body)
            .ok()
            .and_then(|v| v["transport"].as_str().map(str::to_owned))
            .ok_or_else(|| bad(format!("POST /sse gave no transport: {}", opened.body)))?;
        let path = format!("/sse/{id}");
        let stream = EventStream::open(authority, &path, None).await?;
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read(
            authority.to_owned(),
            path.clone(),
            stream,
            incoming_tx.clone(),
            outgoing.clone(),
        ));
        tokio::spawn(write(
            authority.to_owned(),
            path.clone(),
            outgoing_rx,
            incoming_tx,
        ));
        Ok(SseSocket {
            authority: authority.to_owned(),
            path,
            incoming,
            outgoing,
            reader,
        })
    }

    /// Queues a frame's JSON for the next POST; false once the transport has ended.
    pub(crate) fn send(&self, json: String) -> bool {
        self.outgoing.send(Outgoing::Frame(json)).is_ok()
    }

    /// The next thing the server said.
    pub(crate) async fn next(&mut self) -> Incoming {
        self.incoming.recv().await.unwrap_or(Incoming::Ended)
    }

    /// Ends the transport (`DELETE`), within `within`.
    pub(crate) async fn close(&mut self, within: Duration) {
        self.reader.abort();
        let delete = request(&self.authority, "DELETE", &self.path, b"");
        let _ = tokio::time::timeout(within, delete).await;
    }
}

impl Drop for SseSocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The reader task: events to the runner (pings answered), the stream reopened after the
/// last event read when it breaks, until a close or a reopening that fails.
async fn read(
    authority: String,
    path: String,
    mut stream: EventStream,
    incoming: mpsc::UnboundedSender<Incoming>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
) {
    let mut last_id = None;
    loop {
        let event = match stream.next().await {
            Ok(event) => event,
            Err(_) => match EventStream::open(&authority, &path, last_id).await {
                Ok(reopened) => {
                    stream = reopened;
                    continue;
                }
                Err(_) => {
                    let _ = incoming.send(Incoming::Ended);
                    return;
                }
            },
        };
        if event.id.is_some() {
            last_id = event.id;
        }
        let said = match event.event.as_str() {
            "message" => Incoming::Text(event.data),
            "ping" => {
                let _ = outgoing.send(Outgoing::Pong);
                continue;
            }
            "close" => {
                let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
                let code = data["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(1006);
                let reason = data["reason"].as_str().unwrap_or_default().to_owned();
                let _ = incoming.send(Incoming::Close(code, reason));
                return;
            }
            // Binary frames (the exercises') and event types of a newer server.
            _ => continue,
        };
        if incoming.send(said).is_err() {
            return;
        }
    }
}

/// The writer task: one POST at a time, in order, each with every frame queued meanwhile.
async fn write(
    authority: String,
    path: String,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    incoming: mpsc::UnboundedSender<Incoming>,
) {
    while let Some(first) = outgoing.recv().await {
        let mut body = String::new();
        let mut add = |item: Outgoing| {
            if let Outgoing::Frame(json) = item {
                body.push_str(&json);
                body.push('\n');
            }
        };
        add(first);
        while let Ok(more) = outgoing.try_recv() {
            add(more);
        }
        loop {
            match request(&authority, "POST", &path, body.as_bytes()).await {
                Ok(r) if r.status == 202 => break,
                Ok(r) if r.status == 429 => tokio::time::sleep(BUSY_RETRY).await,
                _ => {
                    let _ = incoming.send(Incoming::Ended);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_and_parsed() {
        let mut pending =
            b"retry: 1000\n\nid: 7\ndata: {\"a\":1}\n\nevent: ping\ndata: \n\nid: 8".to_vec();
        let preamble = take_block(&mut pending).expect("a block");
        assert_eq!(parse_event(&preamble), None, "no data: not an event");
        let first = parse_event(&take_block(&mut pending).expect("a block")).expect("an event");
        assert_eq!(
            first,
            SseEvent {
                id: Some(7),
                event: "message".into(),
                data: "{\"a\":1}".into()
            }
        );
        let ping = parse_event(&take_block(&mut pending).expect("a block")).expect("an event");
        assert_eq!((ping.id, ping.event.as_str()), (None, "ping"));
        assert_eq!(take_block(&mut pending), None, "an unfinished block waits");
        assert_eq!(pending, b"id: 8");
    }

    #[test]
    fn data_lines_join_with_newlines() {
        let event = parse_event("event: binary\ndata: a\ndata: b\n").expect("an event");
        assert_eq!(
            (event.event.as_str(), event.data.as_str()),
            ("binary", "a\nb")
        );
    }
}
