//! Charla's native client: an async Rust client over tokio-tungstenite, built on
//! [`shared::ClientSession`] — the same resume, resend and backoff logic as the page.
//!
//! [`Client::connect`] opens `/ws?v=2`, says `hello`, and returns once welcomed, with a
//! stream of typed [`Event`]s. From then on the client keeps itself connected: when the
//! socket drops it waits (exponential backoff with full jitter), reconnects, resumes its
//! session (same id, same name) and every room from the last `seq` it saw, and resends the
//! lines not yet acknowledged — the server appends each nonce once, so a line is never lost
//! and never shown twice. [`Client::send`] returns the line's `seq` once the server has made
//! it durable, or the typed refusal.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::ConnectError> {
//! use client::{Client, Event, Options};
//! use shared::RoomName;
//!
//! let (chat, mut events) = Client::connect("ws://127.0.0.1:3000", Options::default()).await?;
//! let seq = chat.send(&RoomName::general(), "hola").await;
//! println!("stored at {seq:?}");
//! while let Some(event) = events.next().await {
//!     if let Event::Line(line) = event {
//!         println!("{} -> {}", line.name.map_or(line.from.to_string(), |n| n.to_string()), line.text);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A runnable example: `cargo run -p client --example hello -- ws://127.0.0.1:3000`.

pub mod bench;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use shared::{
    ChatLine, ClientMsg, ClientSession, ConnId, DisplayName, ErrorCode, Refusal, RoomName, Seq,
    ServerMsg, Shown, decode_server, encode,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};

/// How often the client pings (an application `ping`); two pings without a `pong` mean the
/// connection is dead and it reconnects.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// How long [`Client::connect`] waits for the first welcome.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The rooms to be in, each with the last `seq` already read (0: none). Empty: just
    /// `general`, from the latest page.
    pub rooms: Vec<(RoomName, Seq)>,
    /// The display name to ask for.
    pub name: Option<String>,
    /// A resume token from an earlier session, to keep its id and name.
    pub resume: Option<String>,
}

/// Something that happened, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Welcomed (first connection, or a reconnection).
    Welcome {
        /// This session's public id (the same after a resume).
        id: ConnId,
        /// This session's display name.
        name: Option<DisplayName>,
        /// Whether the session was resumed.
        resumed: bool,
        /// The token that resumes this session.
        resume: String,
    },
    /// In a room: its latest page (`replace`), or exactly the lines missed since the last
    /// `seq` seen (appended).
    Joined {
        /// The room.
        room: RoomName,
        /// Lines new to this client, oldest first.
        lines: Vec<ChatLine>,
        /// Whether these lines replace everything seen in the room before.
        replace: bool,
        /// How many are in the room.
        online: u32,
    },
    /// A new line (each line once, in its room's `seq` order).
    Line(ChatLine),
    /// Someone's live text.
    Typing {
        /// The room.
        room: RoomName,
        /// The typist.
        from: ConnId,
        /// The typist's name.
        name: Option<DisplayName>,
        /// Their input box now (`""`: cleared).
        text: String,
    },
    /// How many are in a room.
    Presence {
        /// The room.
        room: RoomName,
        /// How many.
        online: u32,
    },
    /// A refusal that concerns no pending line of this client's (those come back from
    /// [`Client::send`]).
    Error {
        /// Why.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
    /// The connection dropped; the next attempt in this many milliseconds.
    Disconnected {
        /// The wait before reconnecting.
        retry_in_ms: u64,
    },
    /// Any other server message (the exercises': echo, random, products, …).
    Other(ServerMsg),
}

/// Why [`Client::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a `ws://`, `wss://`, `http://` or `https://` one.
    #[error("not a Charla URL: {0} (expected ws://host:port or http://host:port)")]
    BadUrl(String),
    /// The server could not be reached, refused the upgrade, or closed before welcoming.
    #[error("could not connect to {url}: {why}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What went wrong.
        why: String,
    },
}

/// Why [`Client::send`] did not store a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server refused the line itself (blank, too long, a room not joined, …).
    #[error("refused ({code}): {message}")]
    Refused {
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
    /// The client was closed before the line was acknowledged.
    #[error("the client closed before the line was acknowledged")]
    Closed,
}

impl SendError {
    /// The error code, if the server refused the line.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SendError::Refused { code, .. } => Some(*code),
            SendError::Closed => None,
        }
    }
}

enum Command {
    Send {
        room: RoomName,
        text: String,
        acked: oneshot::Sender<Result<Seq, SendError>>,
    },
    Frame(ClientMsg),
    Join(RoomName),
    Close(oneshot::Sender<()>),
}

/// A connected client. Cloning gives another handle to the same connection.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
}

/// The client's events, in order. Ends when the client is closed.
pub struct Events(mpsc::UnboundedReceiver<Event>);

impl Events {
    /// The next event; `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Event> {
        self.0.recv().await
    }
}

/// `ws://host:port/ws?v=2` from `ws://host:port`, `http://host:port`, or a URL with a path.
pub fn ws_url(url: &str) -> Result<String, ConnectError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| ConnectError::BadUrl(url.to_owned()))?;
    let scheme = match scheme {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(ConnectError::BadUrl(url.to_owned())),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path.split('?').next().unwrap_or_default()),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(ConnectError::BadUrl(url.to_owned()));
    }
    let path = match path.trim_end_matches('/') {
        "" => "ws",
        path => path,
    };
    Ok(format!("{scheme}://{authority}/{path}?v=2"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random number in `[0, 1)`, for the backoff's jitter.
pub(crate) fn unit() -> f64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64
}

/// The WebSocket settings of every connection this crate opens (the client's and the load
/// generator's). tungstenite zeroes its read buffer's free room before every read, and its
/// default buffer is 128 KiB: profiled, that memset was half the load generator's CPU. A
/// chat client reads small frames; 4 KiB holds them, and a history page grows it.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

/// A nonce prefix no other client will have.
fn nonce_prefix() -> String {
    let mut buf = [0u8; 8];
    let _ = getrandom::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Client {
    /// Connects to `url` (`ws://host:port` or `http://host:port`), says `hello`, and returns
    /// once welcomed; from then on it stays connected by itself until [`Client::close`].
    pub async fn connect(url: &str, options: Options) -> Result<(Client, Events), ConnectError> {
        let url = ws_url(url)?;
        let mut session = ClientSession::new(nonce_prefix());
        if let Some(name) = &options.name {
            let _ = session.set_name(name.as_str());
        }
        if let Some(token) = options.resume {
            session.set_resume_token(token);
        }
        if !options.rooms.is_empty() {
            if !options.rooms.iter().any(|(r, _)| *r == RoomName::general()) {
                let _ = session.leave(&RoomName::general());
            }
            for (room, after) in options.rooms {
                session.join_after(room, after);
            }
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (welcomed, first) = oneshot::channel();
        let runner = Runner {
            url: url.clone(),
            session,
            acks: HashMap::new(),
            events: events_tx,
            welcomed: Some(welcomed),
        };
        tokio::spawn(runner.run(commands_rx));
        match tokio::time::timeout(CONNECT_TIMEOUT, first).await {
            Ok(Ok(Ok(()))) => Ok((Client { commands }, Events(events))),
            Ok(Ok(Err(why))) => Err(ConnectError::Unreachable { url, why }),
            Ok(Err(_)) => Err(ConnectError::Unreachable {
                url,
                why: "the connection ended".into(),
            }),
            Err(_) => Err(ConnectError::Unreachable {
                url,
                why: format!("no welcome within {CONNECT_TIMEOUT:?}"),
            }),
        }
    }

    /// Sends a line to `room` and waits until the server has made it durable: its `seq`, or
    /// why it was refused. A line the server cannot take yet (offline, busy, over the rate)
    /// waits and is sent again, once.
    pub async fn send(&self, room: &RoomName, text: impl Into<String>) -> Result<Seq, SendError> {
        let (acked, ack) = oneshot::channel();
        let command = Command::Send {
            room: room.clone(),
            text: text.into(),
            acked,
        };
        if self.commands.send(command).is_err() {
            return Err(SendError::Closed);
        }
        ack.await.unwrap_or(Err(SendError::Closed))
    }

    /// Shows `text` as this client's live text in `room` (`""` clears it). Dropped while
    /// offline: live text is not history.
    pub fn typing(&self, room: &RoomName, text: impl Into<String>) {
        let _ = self.commands.send(Command::Frame(ClientMsg::Typing {
            room: Some(room.as_str().to_owned()),
            text: text.into(),
        }));
    }

    /// Joins a room (a `Joined` event follows), and rejoins it after every reconnection.
    pub fn join(&self, room: RoomName) {
        let _ = self.commands.send(Command::Join(room));
    }

    /// Sends any message as it is (an exercise's, say). Dropped while offline.
    pub fn send_raw(&self, msg: ClientMsg) {
        let _ = self.commands.send(Command::Frame(msg));
    }

    /// Closes the connection (with a close frame) and stops reconnecting; lines still
    /// pending get [`SendError::Closed`].
    pub async fn close(self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The background task that owns the socket and the session.
struct Runner {
    url: String,
    session: ClientSession,
    /// Who waits for which nonce's ack.
    acks: HashMap<String, oneshot::Sender<Result<Seq, SendError>>>,
    events: mpsc::UnboundedSender<Event>,
    /// Told of the first welcome (or of why there was none).
    welcomed: Option<oneshot::Sender<Result<(), String>>>,
}

/// How one connection ended.
enum Ended {
    /// Dropped: reconnect.
    Dropped,
    /// Closed by the user: stop.
    Closed,
}

impl Runner {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let config = Some(ws_config());
            let ended = match connect_async_with_config(&self.url, config, true).await {
                Ok((ws, _)) => self.connected(ws, &mut commands).await,
                Err(err) => {
                    if let Some(first) = self.welcomed.take() {
                        let _ = first.send(Err(err.to_string()));
                        return;
                    }
                    Ended::Dropped
                }
            };
            if let Ended::Closed = ended {
                break;
            }
            if let Some(first) = self.welcomed.take() {
                let _ = first.send(Err("closed before the welcome".into()));
                return;
            }
            let wait = self.session.on_disconnected(now_ms(), unit());
            let _ = self.events.send(Event::Disconnected { retry_in_ms: wait });
            // Commands keep coming while offline: lines wait, pending, for the next welcome.
            let sleep = tokio::time::sleep(Duration::from_millis(wait));
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    command = commands.recv() => match command {
                        None => return self.fail_pending(),
                        Some(Command::Close(done)) => {
                            self.fail_pending();
                            let _ = done.send(());
                            return;
                        }
                        Some(command) => {
                            self.offline_command(command);
                        }
                    }
                }
            }
        }
        self.fail_pending();
    }

    fn fail_pending(&mut self) {
        for (_, acked) in self.acks.drain() {
            let _ = acked.send(Err(SendError::Closed));
        }
    }

    /// A command while there is no socket: lines and joins are remembered for the next
    /// connection; other frames are dropped.
    fn offline_command(&mut self, command: Command) {
        match command {
            Command::Send { room, text, acked } => {
                let _ = self.queue_line(room, text, acked);
            }
            Command::Join(room) => {
                let _ = self.session.join(room);
            }
            Command::Frame(_) | Command::Close(_) => {}
        }
    }

    /// Queues a line in the session; returns the frame to send now, if any.
    fn queue_line(
        &mut self,
        room: RoomName,
        text: String,
        acked: oneshot::Sender<Result<Seq, SendError>>,
    ) -> Option<ClientMsg> {
        let frame = self.session.send(room, text);
        if let Some(pending) = self.session.pending().last() {
            self.acks.insert(pending.nonce.clone(), acked);
        }
        frame
    }

    async fn connected(
        &mut self,
        mut ws: Socket,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Ended {
        self.session.on_connected(now_ms());
        if ws
            .send(Message::text(encode(&self.session.hello())))
            .await
            .is_err()
        {
            return Ended::Dropped;
        }
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        let mut unanswered = 0u32;
        loop {
            let due_in = self
                .session
                .next_due_ms(now_ms())
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
            let out: Vec<ClientMsg> = tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => match decode_server(text.as_str()) {
                        Ok(msg) => {
                            if matches!(msg, ServerMsg::Pong) {
                                unanswered = 0;
                            }
                            self.apply(msg)
                        }
                        // A newer server's message types are skipped.
                        Err(_) => Vec::new(),
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::Dropped,
                    Some(Ok(_)) => Vec::new(),
                },
                command = commands.recv() => match command {
                    None => {
                        let _ = ws.close(None).await;
                        return Ended::Closed;
                    }
                    Some(Command::Close(done)) => {
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                        self.fail_pending();
                        let _ = done.send(());
                        return Ended::Closed;
                    }
                    Some(Command::Send { room, text, acked }) => {
                        self.queue_line(room, text, acked).into_iter().collect()
                    }
                    Some(Command::Join(room)) => vec![self.session.join(room)],
                    Some(Command::Frame(msg)) => vec![msg],
                },
                () = tokio::time::sleep(due_in.unwrap_or_default()), if due_in.is_some() => {
                    self.session.due(now_ms())
                }
                _ = ping.tick() => {
                    unanswered += 1;
                    if unanswered > 2 {
                        return Ended::Dropped;
                    }
                    vec![ClientMsg::Ping]
                }
            };
            for msg in out {
                if ws.send(Message::text(encode(&msg))).await.is_err() {
                    return Ended::Dropped;
                }
            }
        }
    }

    /// Applies one server message: events out, and the frames to send in reply.
    fn apply(&mut self, msg: ServerMsg) -> Vec<ClientMsg> {
        let event = match msg {
            ServerMsg::Welcome {
                id,
                name,
                resume,
                resumed,
                limits,
                ..
            } => {
                let frames =
                    self.session
                        .on_welcome_at(id.clone(), resume.clone(), limits, now_ms());
                if let Some(first) = self.welcomed.take() {
                    let _ = first.send(Ok(()));
                }
                let _ = self.events.send(Event::Welcome {
                    id,
                    name,
                    resumed,
                    resume,
                });
                return frames;
            }
            ServerMsg::Joined {
                room,
                lines,
                resumed,
                online,
                ..
            } => {
                let (lines, replace) = match self.session.on_joined(room.clone(), lines, resumed) {
                    Shown::Replace(lines) => (lines, true),
                    Shown::Append(lines) => (lines, false),
                };
                Event::Joined {
                    room,
                    lines,
                    replace,
                    online,
                }
            }
            ServerMsg::Message(line) => match self.session.on_line(line) {
                Some(line) => Event::Line(line),
                None => return Vec::new(),
            },
            ServerMsg::Ack { nonce, seq, .. } => {
                self.session.on_ack(&nonce);
                if let Some(acked) = self.acks.remove(&nonce) {
                    let _ = acked.send(Ok(seq));
                }
                return Vec::new();
            }
            ServerMsg::Error {
                code,
                message,
                nonce: Some(nonce),
                ..
            } => match self.session.on_refused(&nonce, code, now_ms()) {
                // It goes out again when the session says so.
                Refusal::Retry => return Vec::new(),
                Refusal::Dropped(_) => {
                    if let Some(acked) = self.acks.remove(&nonce) {
                        let _ = acked.send(Err(SendError::Refused { code, message }));
                    }
                    return Vec::new();
                }
                Refusal::Unknown => Event::Error { code, message },
            },
            ServerMsg::Error { code, message, .. } => Event::Error { code, message },
            ServerMsg::Typing {
                room,
                from,
                name,
                text,
                ..
            } => Event::Typing {
                room,
                from,
                name,
                text,
            },
            ServerMsg::Presence { room, online, .. } => Event::Presence { room, online },
            ServerMsg::Pong => return Vec::new(),
            other => Event::Other(other),
        };
        let _ = self.events.send(event);
        Vec::new()
    }
}

/// How a line reads on a terminal: `<name or id> -> <text>`.
pub fn line_text(line: &ChatLine) -> String {
    let who = line
        .name
        .as_ref()
        .map_or_else(|| line.from.to_string(), ToString::to_string);
    format!("{who} -> {}", line.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_the_v2_endpoint() {
        for (given, expected) in [
            ("ws://127.0.0.1:3000", "ws://127.0.0.1:3000/ws?v=2"),
            ("http://localhost:3000/", "ws://localhost:3000/ws?v=2"),
            ("https://chat.example", "wss://chat.example/ws?v=2"),
            ("ws://h:1/ws", "ws://h:1/ws?v=2"),
            ("ws://h:1/ws?v=1", "ws://h:1/ws?v=2"),
        ] {
            assert_eq!(ws_url(given).expect("valid"), expected);
        }
        for bad in ["127.0.0.1:3000", "ftp://x", "ws://"] {
            assert!(matches!(ws_url(bad), Err(ConnectError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        for _ in 0..1000 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
