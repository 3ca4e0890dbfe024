//! Charla's test support, used by the backend's tests and benchmarks and by the end-to-end
//! tests: a real server on `127.0.0.1:0` ([`TestServer`]), real WebSocket clients
//! ([`Client`] for raw frames, [`SessionClient`] driven step by step through the `client`
//! crate's `apply`, as the `charla` client is), plain HTTP ([`get`]), and every receive under [`TIMEOUT`]. `process` has the real
//! processes a test may kill: the `backend` binary ([`ServerProcess`]) and `redis-server`
//! ([`RedisServer`]).
//!
//! Tests read as the behaviour they prove: `client.expect_error(ErrorCode::NotJoined)`,
//! `client.recv_joined()`, `client.recv_line()`.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use backend::Config;
use client::{Event, apply::LineFate};
use futures_util::{SinkExt, StreamExt};
use shared::{
    ChatLine, ClientMsg, ConnId, DisplayName, ErrorCode, RoomName, Seq, ServerMsg, decode_server,
    encode, server,
};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, protocol::CloseFrame},
};

mod process;
pub mod proxy;
pub mod sse;

pub use process::{RedisServer, ServerProcess, UNLIMITED_FLAGS};
pub use sse::{SseClient, SseEvent, SseStream};

/// Opens a WebSocket with Nagle off, as a browser does: a test's last small frames leave at
/// once instead of waiting in the kernel for an ACK.
async fn connect(
    url: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
) -> Result<
    (
        Socket,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    tokio_tungstenite::connect_async_with_config(url, None, true).await
}

/// A free TCP port on 127.0.0.1 (for a process the test starts: chromedriver, redis-server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The next data frame on a raw socket (pings and pongs skipped), within [`TIMEOUT`].
pub async fn next_data_frame(ws: &mut Socket) -> Message {
    loop {
        let next = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a frame within the timeout")
            .expect("stream still open")
            .expect("a valid frame");
        if !matches!(next, Message::Ping(_) | Message::Pong(_)) {
            return next;
        }
    }
}

/// How long any single receive may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The socket type of every test client.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Limits high enough that tests which flood on purpose measure ordering, not rate limits.
pub fn unlimited() -> Config {
    Config {
        send_rate: 1_000_000,
        send_burst: 1_000_000,
        ip_send_rate: 1_000_000,
        ip_send_burst: 1_000_000,
        max_lines_per_sec: 1_000_000,
        new_sessions_per_min: 1_000_000,
        resumes_per_min: 1_000_000,
        frame_rate: 1_000_000,
        ..Config::default()
    }
}

/// [`unlimited`], and room for as many connections from one address as a load test opens.
pub fn for_load() -> Config {
    Config {
        max_connections: 100_000,
        max_connections_per_ip: 100_000,
        max_tcp_per_ip: 100_000,
        ..unlimited()
    }
}

/// Keeps `sender` saying long lines in general, reading their echoes, until a presence
/// frame says the room is down to `online` (someone was dropped); fails after `within`.
pub async fn talk_until_online(sender: &mut Client, online: u32, within: Duration, why: &str) {
    let body = "y".repeat(1_900);
    let deadline = tokio::time::Instant::now() + within;
    let mut sent = 0;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "{why}");
        for _ in 0..50 {
            sender.send_line(&format!("{sent} {body}")).await;
            sent += 1;
        }
        let mut echoes = 0;
        let mut now_online = None;
        while echoes < 50 {
            match sender.recv().await {
                ServerMsg::Message(_) => echoes += 1,
                ServerMsg::Presence(shared::server::Presence { online: n, .. }) => {
                    now_online = Some(n)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        if now_online == Some(online) {
            return;
        }
    }
}

/// A room name the test knows is valid.
pub fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap_or_else(|e| panic!("`{name}` is not a room name: {e}"))
}

/// A fresh directory for one server's SQLite file, unique to this test process.
pub fn fresh_data_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("charla-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The real server, in this process, on a free port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its SQLite directory.
    pub data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), backend::ServeError>>,
}

impl TestServer {
    /// A server with the default configuration and a fresh data directory.
    pub async fn start() -> Self {
        Self::start_with(Config::default()).await
    }

    /// Starts a server; one left on the default `data` directory gets a fresh one instead.
    pub async fn start_with(config: Config) -> Self {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts a server on `addr` (port 0: a free one; or the port a stopped server just
    /// left, to come back where clients reconnect).
    pub async fn start_at(addr: SocketAddr, mut config: Config) -> Self {
        if config.store == backend::Store::default() {
            config.store = backend::Store::Sqlite(fresh_data_dir());
        }
        // Without SQLite nothing is written there; tests may still put a `dist` in it.
        let data_dir = config
            .store
            .data_dir()
            .map_or_else(fresh_data_dir, std::path::Path::to_path_buf);
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(addr).expect("bind");
        let listener = socket.listen(1024).expect("listen");
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

    /// `ws://…/ws`: the v1 endpoint (welcomed at once, in `general`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://…/`: the page.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A v1 client, welcomed.
    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    /// A v2 client that said `hello` with no session and `rooms` (each from scratch), then
    /// read its welcome and one `joined` per room.
    pub async fn client_in(&self, rooms: &[&str]) -> Client {
        let hello = ClientMsg::Hello {
            resume: None,
            rooms: Some(rooms.iter().map(|r| ((*r).to_owned(), Seq(0))).collect()),
            name: None,
            token: None,
        };
        let mut client = Client::hello(&self.ws_url(), &hello).await;
        for _ in rooms {
            client.recv_joined().await;
        }
        client
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
    get_from(addr, std::net::Ipv4Addr::LOCALHOST.into(), path).await
}

/// A TCP connection to `addr` from the local address `from` (127.0.0.x: each is its own
/// client address for the server's per-address limits).
pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> TcpStream {
    connect_with(addr, from, None).await
}

/// [`connect_from`], with a receive buffer of `recv_buffer` bytes if given (a small one
/// makes a client that never reads stop the server's writes soon).
pub async fn connect_with(
    addr: SocketAddr,
    from: std::net::IpAddr,
    recv_buffer: Option<u32>,
) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .expect("set the receive buffer");
    }
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind the source address");
    tokio::time::timeout(TIMEOUT, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("tcp connect")
}

/// A plain HTTP/1.1 GET to `addr` from the local address `from`.
pub async fn get_from(addr: SocketAddr, from: std::net::IpAddr, path: &str) -> (u16, String) {
    let response = request_from(addr, from, "GET", path, &[], b"").await;
    (response.status, response.body)
}

/// What an HTTP request got back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The header lines, as sent (`Name: value`), without the status line.
    pub headers: Vec<String>,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body, got {:?}: {e}", self.body))
    }
}

/// A server API call: `body` as JSON (none when null), with `Authorization: Bearer <key>`
/// when a key is given; the status and the body as JSON (null when it is not JSON).
pub async fn api_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: serde_json::Value,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let response = request(addr, method, path, &headers, &body).await;
    let json = serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null);
    (response.status, json)
}

/// An HTTP/1.1 request to `addr` (from 127.0.0.1) with `headers` (a `Host` among them
/// replaces the server's address) and `body`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    request_from(
        addr,
        std::net::Ipv4Addr::LOCALHOST.into(),
        method,
        path,
        headers,
        body,
    )
    .await
}

/// An HTTP/1.1 request to `addr` from the local address `from`.
pub async fn request_from(
    addr: SocketAddr,
    from: std::net::IpAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = connect_from(addr, from).await;
    // The server's address as `Host`, unless the test names another.
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    tcp.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((response.clone(), String::new()));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status code");
    HttpResponse {
        status,
        headers: lines.map(str::to_owned).collect(),
        body,
    }
}

/// The value of the metric `name` (with its labels, as in the exposition: `name{a="b"}`) in
/// a `/metrics` body.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// What a WebSocket handshake got: the connection, or the HTTP status it was refused with.
pub async fn try_connect(
    addr: SocketAddr,
    from: std::net::IpAddr,
    origin: Option<&str>,
) -> Result<Client, u16> {
    try_connect_as(addr, from, None, origin).await
}

/// Like [`try_connect`], with the `Host` header of the caller's choosing (as a browser on a
/// DNS-rebinding page would send).
pub async fn try_connect_as(
    addr: SocketAddr,
    from: std::net::IpAddr,
    host: Option<&str>,
    origin: Option<&str>,
) -> Result<Client, u16> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    if let Some(host) = host {
        request
            .headers_mut()
            .insert("host", HeaderValue::from_str(host).expect("host"));
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).expect("origin"));
    }
    let tcp = connect_from(addr, from).await;
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

/// What a picker made of a frame: what the test waits for, or another frame.
#[allow(clippy::large_enum_variant)] // A test's frame, picked once: its size does not matter.
pub enum Picked<T> {
    /// The awaited frame's contents.
    Found(T),
    /// Something else.
    Other(ServerMsg),
}

/// A raw WebSocket client that has read its `welcome`.
pub struct Client {
    ws: Socket,
    /// Its id.
    pub id: ConnId,
    /// The welcome's history (v1: `general`'s lines; v2: empty).
    pub history: Vec<ChatLine>,
    /// The welcome's `online`.
    pub online: u32,
    /// The welcome's `protocol`.
    pub protocol: u32,
    /// Its resume token.
    pub resume: String,
    /// The welcome's `has_more`.
    pub has_more: bool,
    /// Whether the session was resumed.
    pub resumed: bool,
    /// Its display name.
    pub name: Option<DisplayName>,
    /// The server's limits.
    pub limits: Option<shared::ServerLimits>,
    /// The server's greeting.
    pub greeting: Option<String>,
    /// Who signed in, from the welcome (none: a guest).
    pub user: Option<shared::UserInfo>,
}

impl Client {
    /// Connects (v1) and reads the first frame, which must be the `welcome`.
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect(url))
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        Self::welcomed(ws).await
    }

    /// Connects to `<url>?v=2`, sends `hello`, and reads the `welcome` (not the `joined`s
    /// that follow: read them with [`Client::recv_joined`]).
    pub async fn hello(url: &str, hello: &ClientMsg) -> Self {
        let (mut ws, _) = tokio::time::timeout(TIMEOUT, connect(format!("{url}?v=2")))
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        ws.send(Message::text(encode(hello)))
            .await
            .expect("send hello");
        Self::welcomed(ws).await
    }

    /// Connects to `<url>?v=2`, sends `hello`, and reads the first answer, whatever it is.
    async fn say_hello(
        url: &str,
        hello: &ClientMsg,
    ) -> (
        Socket,
        Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        let (mut ws, _) = tokio::time::timeout(TIMEOUT, connect(format!("{url}?v=2")))
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        ws.send(Message::text(encode(hello)))
            .await
            .expect("send hello");
        let first = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("an answer in time");
        (ws, first)
    }

    /// Like [`Client::hello`], but the server may close instead of welcoming: returns the
    /// close code then.
    pub async fn try_hello(url: &str, hello: &ClientMsg) -> Result<Self, Option<u16>> {
        let (ws, first) = Self::say_hello(url, hello).await;
        match first {
            Some(Ok(Message::Close(frame))) => Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(Message::Text(text))) => Ok(Self::welcomed_by(ws, &text).await),
            other => panic!("expected a welcome or a close, got {other:?}"),
        }
    }

    /// Connects (v2) resuming `token`, holding `rooms` up to the given seqs; returns the
    /// welcomed client and the `joined` of each room, in name order.
    pub async fn resume(
        url: &str,
        token: &str,
        rooms: &[(&str, u64)],
    ) -> (Self, Vec<server::Joined>) {
        let hello = ClientMsg::Hello {
            resume: Some(token.to_owned()),
            rooms: Some(
                rooms
                    .iter()
                    .map(|(r, s)| ((*r).to_owned(), Seq(*s)))
                    .collect(),
            ),
            name: None,
            token: None,
        };
        let mut client = Self::hello(url, &hello).await;
        let mut joined = Vec::new();
        for _ in rooms {
            joined.push(client.recv_joined().await);
        }
        (client, joined)
    }

    /// Wraps an open socket and reads its first frame, which must be the `welcome`.
    pub async fn welcomed(mut ws: Socket) -> Self {
        let first = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a welcome in time")
            .expect("stream still open")
            .expect("a valid frame");
        match first {
            Message::Text(text) => Self::welcomed_by(ws, &text).await,
            other => panic!("the first frame must be a welcome, got {other:?}"),
        }
    }

    /// Wraps an open socket whose first frame, `welcome`, was already read.
    async fn welcomed_by(ws: Socket, welcome: &str) -> Self {
        let mut client = Client {
            ws,
            id: ConnId::new(""),
            history: Vec::new(),
            online: 0,
            protocol: 0,
            resume: String::new(),
            has_more: false,
            resumed: false,
            name: None,
            limits: None,
            greeting: None,
            user: None,
        };
        match decode_server(welcome).expect("server frames decode") {
            ServerMsg::Welcome(shared::server::Welcome {
                id,
                history,
                online,
                protocol,
                resume,
                has_more,
                resumed,
                name,
                limits,
                greeting,
                user,
            }) => {
                client.user = user;
                client.greeting = greeting;
                client.id = id;
                client.history = history;
                client.online = online;
                client.protocol = protocol;
                client.resume = resume;
                client.has_more = has_more;
                client.resumed = resumed;
                client.name = name;
                client.limits = limits;
            }
            other => panic!("the first frame must be a welcome, got {other:?}"),
        }
        client
    }

    /// Sends a raw WebSocket message.
    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send frame");
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    /// Sends a protocol message.
    pub async fn send_msg(&mut self, msg: &ClientMsg) {
        self.send_text(&encode(msg)).await;
    }

    /// `send` to `general` (no room named) with a nonce.
    pub async fn send_with_nonce(&mut self, line: &str, nonce: &str) {
        self.send_as(None, line, Some(nonce)).await;
    }

    /// `send` to `general` (no room named), no nonce.
    pub async fn send_line(&mut self, line: &str) {
        self.send_as(None, line, None).await;
    }

    /// `send` to `room`, with a nonce.
    pub async fn send_to(&mut self, room: &str, line: &str, nonce: &str) {
        self.send_as(Some(room), line, Some(nonce)).await;
    }

    /// `send` to `room` (none: no room named), with `nonce` if one is given.
    async fn send_as(&mut self, room: Option<&str>, line: &str, nonce: Option<&str>) {
        self.send_msg(&ClientMsg::Send {
            room: room.map(str::to_owned),
            text: line.into(),
            nonce: nonce.map(str::to_owned),
        })
        .await;
    }

    /// `typing` in `general` (no room named).
    pub async fn typing(&mut self, text: &str) {
        self.typing_as(None, text).await;
    }

    /// `typing` in `room`.
    pub async fn typing_in(&mut self, room: &str, text: &str) {
        self.typing_as(Some(room), text).await;
    }

    /// `typing` in `room` (none: no room named).
    async fn typing_as(&mut self, room: Option<&str>, text: &str) {
        self.send_msg(&ClientMsg::Typing {
            room: room.map(str::to_owned),
            text: text.into(),
        })
        .await;
    }

    /// `join`s `room` and reads until its `joined`.
    pub async fn join(&mut self, room: &str) -> server::Joined {
        self.send_msg(&ClientMsg::Join { room: room.into() }).await;
        self.recv_joined().await
    }

    /// The next raw WebSocket message (pings and pongs skipped), within [`TIMEOUT`].
    pub async fn recv_raw(&mut self) -> Message {
        next_data_frame(&mut self.ws).await
    }

    /// The next protocol message, within [`TIMEOUT`].
    pub async fn recv(&mut self) -> ServerMsg {
        match self.recv_raw().await {
            Message::Text(text) => decode_server(text.as_str()).expect("server frames decode"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next message that `pick` accepts, skipping typing and presence frames (which
    /// come whenever others act); any other message fails the test.
    pub async fn recv_skipping_live<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(ServerMsg) -> Picked<T>,
    ) -> T {
        loop {
            match pick(self.recv().await) {
                Picked::Found(found) => return found,
                Picked::Other(ServerMsg::Typing(_) | ServerMsg::Presence(_)) => {}
                Picked::Other(other) => panic!("expected {what}, got {other:?}"),
            }
        }
    }

    /// The next `joined`, skipping typing and presence frames.
    pub async fn recv_joined(&mut self) -> server::Joined {
        self.recv_skipping_live("joined", |msg| match msg {
            ServerMsg::Joined(joined) => Picked::Found(joined),
            other => Picked::Other(other),
        })
        .await
    }

    /// The next ack's nonce and seq, skipping typing and presence frames.
    pub async fn recv_ack(&mut self) -> (String, u64) {
        self.recv_skipping_live("an ack", |msg| match msg {
            ServerMsg::Ack(shared::server::Ack { nonce, seq, .. }) => Picked::Found((nonce, seq.0)),
            other => Picked::Other(other),
        })
        .await
    }

    /// Reads until the ack of `nonce` (skipping lines, typing and presence); returns its seq.
    pub async fn recv_ack_of(&mut self, nonce: &str) -> u64 {
        loop {
            match self.recv().await {
                ServerMsg::Ack(shared::server::Ack { nonce: n, seq, .. }) if n == nonce => {
                    return seq.0;
                }
                ServerMsg::Ack(_)
                | ServerMsg::Message(_)
                | ServerMsg::Typing(_)
                | ServerMsg::Presence(_) => {}
                other => panic!("expected the ack of {nonce}, got {other:?}"),
            }
        }
    }

    /// The next chat line, skipping typing and presence frames.
    pub async fn recv_line(&mut self) -> ChatLine {
        self.recv_skipping_live("a message", |msg| match msg {
            ServerMsg::Message(line) => Picked::Found(line),
            other => Picked::Other(other),
        })
        .await
    }

    /// The next typing frame, skipping presence frames.
    pub async fn recv_typing(&mut self) -> server::Typing {
        loop {
            match self.recv().await {
                ServerMsg::Typing(typing) => return typing,
                ServerMsg::Presence(_) => {}
                other => panic!("expected typing, got {other:?}"),
            }
        }
    }

    /// The next presence frame, skipping typing frames.
    pub async fn recv_presence(&mut self) -> server::Presence {
        loop {
            match self.recv().await {
                ServerMsg::Presence(presence) => return presence,
                ServerMsg::Typing(_) => {}
                other => panic!("expected presence, got {other:?}"),
            }
        }
    }

    /// Reads presence frames until one for `room` says `online`; returns it.
    pub async fn await_presence(&mut self, room: &str, online: u32) -> server::Presence {
        loop {
            let seen = self.recv_presence().await;
            if seen.room.as_str() == room && seen.online == online {
                return seen;
            }
        }
    }

    /// The next frame (typing and presence skipped) must be an error; returns it.
    pub async fn recv_error(&mut self) -> server::Error {
        self.recv_skipping_live("an error", |msg| match msg {
            ServerMsg::Error(error) => Picked::Found(error),
            other => Picked::Other(other),
        })
        .await
    }

    /// The next frame (typing and presence skipped) must be an error with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) -> server::Error {
        let seen = self.recv_error().await;
        assert_eq!(seen.code, code, "wrong error: {seen:?}");
        seen
    }

    /// The next frame must be an error; returns its code.
    pub async fn recv_error_code(&mut self) -> ErrorCode {
        match self.recv().await {
            ServerMsg::Error(shared::server::Error { code, .. }) => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Says `hello` and expects it refused: an `error` first, then a close. Returns the
    /// error's code and the close code.
    pub async fn refused_hello(url: &str, hello: &ClientMsg) -> (ErrorCode, Option<u16>) {
        let (mut ws, first) = Self::say_hello(url, hello).await;
        let code = match first {
            Some(Ok(Message::Text(text))) => match decode_server(text.as_str()) {
                Ok(ServerMsg::Error(shared::server::Error { code, .. })) => code,
                other => panic!("expected an error, got {other:?}"),
            },
            other => panic!("expected an error frame, got {other:?}"),
        };
        let close = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a close in time");
        match close {
            Some(Ok(Message::Close(frame))) => (code, frame.map(|f| u16::from(f.code))),
            other => panic!("expected a close after the error, got {other:?}"),
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

    /// Everything that arrives within `quiet` of the previous frame (for proving an absence,
    /// bounded: at most `max` frames).
    pub async fn drain(&mut self, quiet: Duration, max: usize) -> Vec<ServerMsg> {
        let mut got = Vec::new();
        while got.len() < max {
            match tokio::time::timeout(quiet, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    got.push(decode_server(text.as_str()).expect("server frames decode"));
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        got
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A client driven by `shared::ClientSession` and the `client` crate's
/// [`apply`](client::apply::apply), as the `charla` client is, one step at a time: it says
/// `hello` with its token and per-room positions, resends unacknowledged lines, and shows each
/// line once; the test says when to read, when the socket is cut and when to reconnect.
pub struct SessionClient {
    /// The session logic.
    pub session: shared::ClientSession,
    /// Lines shown, per room.
    pub shown: BTreeMap<RoomName, Vec<ChatLine>>,
    /// Acks received: nonce → seq.
    pub acked: std::collections::HashMap<String, u64>,
    /// Refusals received (each retried by the session): code and nonce.
    pub refused: Vec<(ErrorCode, String)>,
    ws: Option<Socket>,
}

impl SessionClient {
    /// A client that has never connected (in `general`).
    pub fn new(nonce_prefix: &str) -> Self {
        SessionClient {
            session: shared::ClientSession::new(nonce_prefix),
            shown: BTreeMap::new(),
            acked: std::collections::HashMap::new(),
            refused: Vec::new(),
            ws: None,
        }
    }

    /// Whether a socket is open.
    pub fn is_connected(&self) -> bool {
        self.ws.is_some()
    }

    /// Lines shown in `general`.
    pub fn general(&self) -> &[ChatLine] {
        self.shown
            .get(&RoomName::general())
            .map_or(&[], Vec::as_slice)
    }

    /// Connects to `ws_url` with `?v=2`, says `hello` (resuming if it can), applies the
    /// welcome and resends what is pending. Returns false if the server could not be reached.
    pub async fn connect(&mut self, ws_url: &str) -> bool {
        let url = format!("{ws_url}?v=2");
        let Ok(Ok((ws, _))) = tokio::time::timeout(TIMEOUT, connect(url)).await else {
            return false;
        };
        self.ws = Some(ws);
        self.session.on_connected(now_ms());
        self.send_frame(&self.session.hello()).await;
        // The first frame is the welcome; `pump` applies it and resends.
        self.pump(TIMEOUT).await;
        self.is_connected()
    }

    /// Queues a line for `general` and sends it if connected.
    pub async fn send(&mut self, text: &str) {
        self.send_in(RoomName::general(), text).await;
    }

    /// Queues a line for `room` and sends it if connected and welcomed (otherwise it goes
    /// out after the next welcome).
    pub async fn send_in(&mut self, room: RoomName, text: &str) {
        if let Some(frame) = self.session.send(room, text.to_owned()) {
            self.send_frame(&frame).await;
        }
    }

    /// Joins `room` (remembered for later hellos) and sends the `join` if connected.
    pub async fn join(&mut self, room: RoomName) {
        let frame = self.session.join(room);
        self.send_frame(&frame).await;
    }

    async fn send_frame(&mut self, frame: &ClientMsg) {
        if let Some(ws) = &mut self.ws
            && ws.send(Message::text(encode(frame))).await.is_err()
        {
            self.cut();
        }
    }

    /// Reads and applies one frame, waiting at most `wait`. A closed or failed socket is
    /// dropped (the caller reconnects).
    pub async fn pump(&mut self, wait: Duration) {
        // Lines the session paced or was asked to send again go out when due.
        for frame in self.session.due(now_ms()) {
            self.send_frame(&frame).await;
        }
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
                self.cut();
                return;
            }
        };
        let client::apply::Applied {
            event,
            line,
            replies,
        } = client::apply::apply(&mut self.session, msg);
        for frame in replies {
            self.send_frame(&frame).await;
        }
        match line {
            Some(LineFate::Acked { nonce, seq }) => {
                self.acked.insert(nonce, seq.0);
            }
            // Lines the server will take later are retried by the session.
            Some(LineFate::Retrying { nonce, code }) => self.refused.push((code, nonce)),
            Some(LineFate::Refused { code, message, .. }) => panic!("refused: {code}: {message}"),
            None => {}
        }
        match event {
            Some(Event::Joined {
                room,
                lines,
                replace,
                ..
            }) => {
                let shown = self.shown.entry(room).or_default();
                if replace {
                    *shown = lines;
                } else {
                    shown.extend(lines);
                }
            }
            Some(Event::Line(line)) => self.shown.entry(line.room.clone()).or_default().push(line),
            // Any other refusal is a test failure.
            Some(Event::Error { code, message, .. }) => panic!("refused: {code}: {message}"),
            _ => {}
        }
    }

    /// Drops the socket without a close frame, as a network failure would.
    pub fn cut(&mut self) {
        if self.ws.take().is_some() {
            self.session.on_disconnected(now_ms(), 0.5);
        }
    }
}

/// Now, in ms since the Unix epoch (the session's clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

/// Sign-in tokens for tests, made as an app would make them.
pub mod tokens {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};
    use shared::{ClientMsg, Seq};

    /// Now, in seconds since the Unix epoch.
    pub fn now() -> u64 {
        super::now_ms() / 1000
    }

    /// `sub`'s claims, expiring in `ttl_secs` (issued now).
    pub fn claims(sub: &str, ttl_secs: i64) -> Value {
        let exp = i64::try_from(now()).unwrap_or(i64::MAX) + ttl_secs;
        json!({ "sub": sub, "exp": exp, "iat": now() })
    }

    /// An HS256 token of `claims` signed with `secret`.
    pub fn hs256(secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()).expect("an HS256 key"),
        )
        .expect("a token")
    }

    /// An HS256 token for `sub` (an hour) whose `roles` claim is `roles`.
    pub fn with_roles(secret: &str, sub: &str, roles: &[&str]) -> String {
        let mut claims = claims(sub, 3600);
        claims["roles"] = json!(roles);
        hs256(secret, &claims)
    }

    /// A token of `claims` signed with the PEM private key `pem` (RS256, ES256 or EdDSA).
    pub fn signed(alg: Algorithm, pem: &[u8], claims: &Value) -> String {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            other => panic!("no test key for {other:?}"),
        }
        .expect("a PEM private key");
        jsonwebtoken::encode(&Header::new(alg), claims, &key).expect("a token")
    }

    /// A `hello` that signs in with `token` (none: a guest) into `rooms`.
    pub fn hello(token: Option<&str>, rooms: &[&str]) -> ClientMsg {
        ClientMsg::Hello {
            resume: None,
            rooms: Some(rooms.iter().map(|r| ((*r).to_owned(), Seq(0))).collect()),
            name: None,
            token: token.map(str::to_owned),
        }
    }
}

/// A WebSocket spoken byte by byte over a plain TCP socket, for tests that must see (or
/// send) exactly what is on the wire, which a client library would hide or refuse.
pub mod raw {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::TIMEOUT;

    /// Opens `/ws` (version 1) and reads the upgrade's response head; returns the socket and
    /// whatever came after the head (the start of the welcome, perhaps).
    pub async fn connect(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let upgrade = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(upgrade.as_bytes()).await.expect("upgrade");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(seen.starts_with(b"HTTP/1.1 101"), "not upgraded");
                return (tcp, seen.split_off(end + 4));
            }
            let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(n > 0, "the server hung up during the handshake");
            seen.extend_from_slice(&buf[..n]);
        }
    }

    /// A masked client frame (RFC 6455 §5.2) with a payload under 126 bytes.
    pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let len = u8::try_from(payload.len()).unwrap_or(125);
        let mut frame = vec![0x80 | opcode, 0x80 | len];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// The opcodes of the server frames in `bytes` (unmasked, as a server sends them).
    pub fn opcodes(mut bytes: &[u8]) -> Vec<u8> {
        let mut ops = Vec::new();
        while bytes.len() >= 2 {
            let (len, header): (usize, usize) = match bytes[1] & 0x7f {
                126 if bytes.len() >= 4 => {
                    (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4)
                }
                127 if bytes.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&bytes[2..10]);
                    (
                        usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                        10,
                    )
                }
                126 | 127 => break,
                n => (usize::from(n), 2),
            };
            ops.push(bytes[0] & 0x0f);
            bytes = &bytes[header.saturating_add(len).min(bytes.len())..];
        }
        ops
    }
}

/// How long [`next_event`] waits: longer than [`TIMEOUT`], as a client's event may wait on
/// its reconnection's backoff.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The next event of a [`client::Client`]'s that `pick` wants, within [`EVENT_TIMEOUT`]
/// (others are skipped).
pub async fn next_event<T>(
    events: &mut client::Events,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            let event = events.next().await.expect("the client is still open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("the event within the timeout")
}
