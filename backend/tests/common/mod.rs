//! A real server on `127.0.0.1:0` and real WebSocket clients, every receive under a timeout.

#![allow(dead_code, missing_docs)] // Each test file uses a different part of this module.

use std::{net::SocketAddr, time::Duration};

use backend::Config;
use futures_util::{SinkExt, StreamExt};
use shared::{ChatLine, ConnId, ServerMsg, decode_server};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, protocol::CloseFrame},
};

/// How long any single receive may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Limits high enough that tests which flood on purpose measure ordering, not rate limits.
pub fn unlimited() -> Config {
    Config {
        send_rate: 1_000_000,
        send_burst: 1_000_000,
        frame_rate: 1_000_000,
        ..Config::default()
    }
}

/// What a WebSocket handshake got: the connection, or the HTTP status it was refused with.
pub async fn try_connect(
    addr: SocketAddr,
    from: std::net::IpAddr,
    origin: Option<&str>,
) -> Result<Client, u16> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).expect("origin"));
    }
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind the source address");
    let tcp = socket.connect(addr).await.expect("tcp connect");
    let handshake = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)),
    )
    .await
    .expect("handshake in time");
    match handshake {
        Ok((ws, _)) => Ok(Client::welcomed(ws).await),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("handshake failed without an HTTP status: {other}"),
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// A fresh directory for one server's SQLite file, unique to this test process.
pub fn fresh_data_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("charla-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config::default()).await
    }

    /// Starts a server; one left on the default `data` directory gets a fresh one instead.
    pub async fn start_with(mut config: Config) -> Self {
        if config.data_dir == Config::default().data_dir {
            config.data_dir = fresh_data_dir();
        }
        let data_dir = config.data_dir.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(backend::serve(listener, config, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            data_dir,
            shutdown: Some(tx),
            task,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    /// Sends the shutdown signal and waits for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(TIMEOUT, &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("serve ok");
    }

    /// A plain HTTP/1.1 GET; returns the status line's code and the body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        get(self.addr, path).await
    }
}

/// A plain HTTP/1.1 GET to `addr`; returns the status line's code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        tokio::time::timeout(TIMEOUT, tcp.read_to_string(&mut response))
            .await
            .expect("response in time")
            .expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: ConnId,
    pub history: Vec<ChatLine>,
    pub online: u32,
    pub protocol: u32,
    pub resume: String,
    pub has_more: bool,
    pub resumed: bool,
}

impl Client {
    /// Connects and reads the first frame, which must be the `welcome`.
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect_async(url))
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        Self::welcomed(ws).await
    }

    /// Wraps an open socket and reads its first frame, which must be the `welcome`.
    pub async fn welcomed(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let mut client = Client {
            ws,
            id: ConnId::new(""),
            history: Vec::new(),
            online: 0,
            protocol: 0,
            resume: String::new(),
            has_more: false,
            resumed: false,
        };
        match client.recv().await {
            ServerMsg::Welcome {
                id,
                history,
                online,
                protocol,
                resume,
                has_more,
                resumed,
            } => {
                client.id = id;
                client.history = history;
                client.online = online;
                client.protocol = protocol;
                client.resume = resume;
                client.has_more = has_more;
                client.resumed = resumed;
            }
            other => panic!("the first frame must be a welcome, got {other:?}"),
        }
        client
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send frame");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    pub async fn send_with_nonce(&mut self, line: &str, nonce: &str) {
        let json = shared::encode(&shared::ClientMsg::Send {
            text: line.into(),
            nonce: Some(nonce.into()),
        });
        self.send_text(&json).await;
    }

    pub async fn send_line(&mut self, line: &str) {
        let json = shared::encode(&shared::ClientMsg::Send {
            text: line.into(),
            nonce: None,
        });
        self.send_text(&json).await;
    }

    pub async fn typing(&mut self, text: &str) {
        let json = shared::encode(&shared::ClientMsg::Typing { text: text.into() });
        self.send_text(&json).await;
    }

    /// The next raw WebSocket message (pings and pongs skipped), within [`TIMEOUT`].
    pub async fn recv_raw(&mut self) -> Message {
        loop {
            let next = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .expect("a frame within the timeout")
                .expect("stream still open")
                .expect("a valid frame");
            if !matches!(next, Message::Ping(_) | Message::Pong(_)) {
                return next;
            }
        }
    }

    /// The next protocol message, within [`TIMEOUT`].
    pub async fn recv(&mut self) -> ServerMsg {
        match self.recv_raw().await {
            Message::Text(text) => decode_server(text.as_str()).expect("server frames decode"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next ack's nonce and seq, skipping typing and presence frames.
    pub async fn recv_ack(&mut self) -> (String, u64) {
        loop {
            match self.recv().await {
                ServerMsg::Ack { nonce, seq } => return (nonce, seq.0),
                ServerMsg::Typing { .. } | ServerMsg::Presence { .. } => {}
                other => panic!("expected an ack, got {other:?}"),
            }
        }
    }

    /// The next chat line, skipping typing and presence frames.
    pub async fn recv_line(&mut self) -> ChatLine {
        loop {
            match self.recv().await {
                ServerMsg::Message(line) => return line,
                ServerMsg::Typing { .. } | ServerMsg::Presence { .. } => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next presence count, skipping typing frames.
    pub async fn recv_presence(&mut self) -> u32 {
        loop {
            match self.recv().await {
                ServerMsg::Presence { online } => return online,
                ServerMsg::Typing { .. } => {}
                other => panic!("expected presence, got {other:?}"),
            }
        }
    }

    /// The next frame must be an error; returns its code as on the wire.
    pub async fn recv_error_code(&mut self) -> String {
        match self.recv().await {
            ServerMsg::Error { code, .. } => code.as_str().to_owned(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Reads until the server's close frame arrives; returns it.
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        loop {
            if let Message::Close(frame) = self.recv_raw().await {
                return frame;
            }
        }
    }

    /// Reads whatever is already waiting, up to a close frame: `Some` if the server closed.
    pub async fn try_recv_close(&mut self) -> Option<Option<CloseFrame>> {
        loop {
            let next = tokio::time::timeout(Duration::from_millis(1), self.ws.next()).await;
            match next {
                Ok(Some(Ok(Message::Close(frame)))) => return Some(frame),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return Some(None),
                Err(_) => return None, // nothing waiting
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A client driven by `shared::ClientSession`, as the page is: it resumes after drops,
/// resends unacknowledged lines, and shows each line once.
pub struct SessionClient {
    pub session: shared::ClientSession,
    pub shown: Vec<ChatLine>,
    /// Acks received: nonce → seq.
    pub acked: std::collections::HashMap<String, u64>,
    ws: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
}

impl SessionClient {
    pub fn new(nonce_prefix: &str) -> Self {
        SessionClient {
            session: shared::ClientSession::new(nonce_prefix),
            shown: Vec::new(),
            acked: std::collections::HashMap::new(),
            ws: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.ws.is_some()
    }

    /// Connects to `ws_url` (resuming if it can), applies the welcome and resends what is
    /// pending. Returns false if the server could not be reached.
    pub async fn connect(&mut self, ws_url: &str) -> bool {
        let url = match self.session.connect_query() {
            Some(query) => format!("{ws_url}?{query}"),
            None => ws_url.to_owned(),
        };
        let Ok(Ok((ws, _))) = tokio::time::timeout(TIMEOUT, connect_async(url)).await else {
            return false;
        };
        self.ws = Some(ws);
        // The first frame is the welcome; `pump` applies it and resends.
        self.pump(TIMEOUT).await;
        self.is_connected()
    }

    /// Queues a line and sends it if connected.
    pub async fn send(&mut self, text: &str) {
        let frame = self.session.send(text.to_owned());
        self.send_frame(&frame).await;
    }

    async fn send_frame(&mut self, frame: &shared::ClientMsg) {
        if let Some(ws) = &mut self.ws
            && ws.send(Message::text(shared::encode(frame))).await.is_err()
        {
            self.ws = None;
        }
    }

    /// Reads and applies one frame, waiting at most `wait`. A closed or failed socket is
    /// dropped (the caller reconnects).
    pub async fn pump(&mut self, wait: Duration) {
        let Some(ws) = &mut self.ws else { return };
        let next = match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return, // nothing yet
            Ok(next) => next,
        };
        let msg = match next {
            Some(Ok(Message::Text(text))) => {
                decode_server(text.as_str()).expect("server frames decode")
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return,
            _ => {
                self.ws = None;
                return;
            }
        };
        match msg {
            ServerMsg::Welcome {
                id,
                history,
                resume,
                resumed,
                ..
            } => {
                let (shown, resend) = self.session.on_welcome(id, resume, history, resumed);
                shown.apply_to(&mut self.shown);
                for frame in resend {
                    self.send_frame(&frame).await;
                }
            }
            ServerMsg::Message(line) => self.shown.extend(self.session.on_line(line)),
            ServerMsg::Ack { nonce, seq } => {
                self.session.on_ack(&nonce);
                self.acked.insert(nonce, seq.0);
            }
            ServerMsg::Error { code, message } => panic!("refused: {code}: {message}"),
            ServerMsg::Typing { .. }
            | ServerMsg::Presence { .. }
            | ServerMsg::Older { .. }
            | ServerMsg::Pong => {}
        }
    }

    /// Drops the socket without a close frame, as a network failure would.
    pub fn cut(&mut self) {
        self.ws = None;
    }
}

/// Asserts that `lines` are seq 1..=n with no gaps and no nonce twice.
pub fn assert_gapless_once(lines: &[ChatLine]) {
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq.0).collect();
    let expected: Vec<u64> = (1..=lines.len() as u64).collect();
    assert_eq!(seqs, expected, "seq starts at 1 and has no gaps");
    let mut nonces = std::collections::HashSet::new();
    for line in lines {
        if let Some(n) = &line.nonce {
            assert!(
                nonces.insert((line.from.clone(), n.clone())),
                "nonce {n} appended twice"
            );
        }
    }
}
