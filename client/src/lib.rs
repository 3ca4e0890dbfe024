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
//! **Signing in.** With [`Options::token`] the client presents a token from the app Charla
//! runs beside (a [`TokenSource`]: fixed, a file, or a callback), and keeps itself signed
//! in: when the server says the token is about to expire (`token_expiring`), it asks the
//! source for a new one and sends `refresh`, and a reconnection presents the newest. A
//! refused token (close 4001) or a user the app disconnected (close 4003) is final: the
//! client says why ([`Event::SignedOut`], or [`ConnectError::SignIn`] before the first
//! welcome) and stops, rather than reconnecting in a loop.
//!
//! A runnable example: `cargo run -p client --example hello -- ws://127.0.0.1:3000`.
//!
//! **Where WebSockets are blocked** (a proxy that strips `Upgrade`), the client falls back
//! by itself to the SSE transport — Server-Sent Events one way, POSTs the other, the same
//! session — and keeps trying to move back to a WebSocket, losing and repeating nothing on
//! the way ([`Event::Transport`] tells which one it is on).
//!
//! Layout: this file (the client, its options, events and errors), [`mod@apply`] (what one
//! server message does to the session, without a socket), `runner` (the task that owns the
//! socket and the session: reconnecting, acks, token refresh, falling back), [`sse`] (the
//! SSE transport over plain HTTP), [`token`] (token
//! sources; minting, for `charla token`), [`mod@bench`] (the load generator).

pub mod apply;
pub mod bench;
mod runner;
pub mod sse;
pub mod token;

pub use token::TokenSource;

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use shared::{
    ChatLine, ClientMsg, ClientSession, ConnId, DisplayName, ErrorCode, RoomName, Seq, ServerMsg,
    UserId, UserInfo,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How often the client pings (an application `ping`); two pings without a `pong` mean the
/// connection is dead and it reconnects.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// How long [`Client::connect`] waits for the first welcome.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a token source failed (or gave the token already in use) while the server waits
/// for a `refresh`, it is asked again after a quarter of the time left, at most this long
/// (and at least [`TOKEN_RETRY_MIN`]).
pub const TOKEN_RETRY: Duration = Duration::from_secs(5);
/// The shortest wait before a token source is asked again.
pub const TOKEN_RETRY_MIN: Duration = Duration::from_millis(200);
/// Before a reconnection, a token that expires within this long is replaced by a fresh one
/// from its source (a file is read again every time).
pub const TOKEN_FRESH_FOR: Duration = Duration::from_secs(60);

/// The close code after `auth_required`, `bad_token` or `token_expired`.
pub const CLOSE_TOKEN_REFUSED: u16 = 4001;
/// The close code when the app's backend disconnected the user (or revoked their tokens).
pub const CLOSE_USER_DISCONNECTED: u16 = 4003;

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
    /// Where the sign-in token comes from (none: a guest).
    pub token: Option<TokenSource>,
}

/// Why the server ended this client's sign-in for good. The client does not reconnect
/// after it: the same token would be refused again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedOut {
    /// The token was refused (close 4001): `auth_required` (the server wants one and none
    /// was given), `bad_token` (malformed, badly signed, revoked, another user's) or
    /// `token_expired` (and no fresh one could be had in time).
    Refused {
        /// `auth_required`, `bad_token` or `token_expired`.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
    /// The app's backend disconnected this user, or revoked their tokens (close 4003).
    Disconnected {
        /// The close frame's reason.
        reason: String,
    },
}

impl SignedOut {
    /// The error code, if the token was refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SignedOut::Refused { code, .. } => Some(*code),
            SignedOut::Disconnected { .. } => None,
        }
    }
}

impl fmt::Display for SignedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignedOut::Refused { code, message } => {
                write!(f, "sign-in refused ({code}): {message}")
            }
            SignedOut::Disconnected { reason } if reason.is_empty() => {
                f.write_str("disconnected by the app (4003)")
            }
            SignedOut::Disconnected { reason } => {
                write!(f, "disconnected by the app (4003): {reason}")
            }
        }
    }
}

/// Whether a code is one of the token refusals a close with 4001 follows.
pub(crate) fn refuses_the_token(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::AuthRequired | ErrorCode::BadToken | ErrorCode::TokenExpired
    )
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
        /// Who signed in (none: a guest).
        user: Option<UserInfo>,
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
    /// A new entry of a room's log (each once, in its room's `seq` order): a line, or an
    /// edit or a deletion of an earlier one (its `change` says which; see
    /// [`ChatLine::show_in`]).
    Line(ChatLine),
    /// Someone's live text.
    Typing {
        /// The room.
        room: RoomName,
        /// The typist.
        from: ConnId,
        /// The typist's name.
        name: Option<DisplayName>,
        /// The signed-in user typing (none: a guest).
        user: Option<UserId>,
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
    /// [`Client::send`]), e.g. `forbidden` for a private room this user was not granted.
    Error {
        /// Why.
        code: ErrorCode,
        /// Why, for people.
        message: String,
        /// The room it concerns, if any.
        room: Option<RoomName>,
    },
    /// The server says the sign-in token expires in `in_ms` milliseconds. With a source
    /// that can refresh, the client is already asking it for a new one.
    TokenExpiring {
        /// Milliseconds until it expires.
        in_ms: u64,
    },
    /// The server took the new token; it expires at `exp` (seconds since the Unix epoch).
    TokenRefreshed {
        /// The new token's `exp`.
        exp: u64,
    },
    /// The token source gave no new token (it failed, or gave the one in use); it is asked
    /// again soon (see [`TOKEN_RETRY`]) while the current token lasts.
    TokenRefreshFailed {
        /// Why.
        why: String,
    },
    /// The sign-in ended for good (the last event: the client stops).
    SignedOut(SignedOut),
    /// The connection dropped; the next attempt in this many milliseconds.
    Disconnected {
        /// The wait before reconnecting.
        retry_in_ms: u64,
    },
    /// The connection is on this transport now (told before the first welcome, and again
    /// whenever it changes).
    Transport(Transport),
    /// Any other server message (the exercises': echo, random, products, …).
    Other(ServerMsg),
}

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket on `/ws?v=2`.
    WebSocket,
    /// The fallback where a WebSocket cannot open: Server-Sent Events on `/sse/<id>` one
    /// way, POSTs the other (plain `http://` only).
    Sse,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::WebSocket => "WebSocket",
            Transport::Sse => "SSE + POST",
        })
    }
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
    /// The token source gave no token to sign in with.
    #[error("could not get a sign-in token: {0}")]
    Token(String),
    /// The server refused the sign-in (`auth_required`, `bad_token`, `token_expired`, or
    /// an HTTP 401 before the upgrade), or the app disconnected the user (4003).
    #[error("{url}: {failure}")]
    SignIn {
        /// The URL tried.
        url: String,
        /// Why.
        failure: SignedOut,
    },
}

impl ConnectError {
    /// The error code, if the server refused the sign-in with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ConnectError::SignIn { failure, .. } => failure.code(),
            _ => None,
        }
    }
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
    /// The sign-in ended for good before the line was acknowledged.
    #[error("{0}")]
    SignedOut(SignedOut),
}

impl SendError {
    /// The error code, if the server refused the line (or the token).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SendError::Refused { code, .. } => Some(*code),
            SendError::SignedOut(failure) => failure.code(),
            SendError::Closed => None,
        }
    }
}

pub(crate) enum Command {
    Send {
        room: RoomName,
        text: String,
        acked: oneshot::Sender<Result<Seq, SendError>>,
    },
    Frame(ClientMsg),
    Join(RoomName),
    Token(String),
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

pub(crate) fn now_ms() -> u64 {
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
    /// With [`Options::token`], it first asks the source for a token to sign in with.
    pub async fn connect(url: &str, options: Options) -> Result<(Client, Events), ConnectError> {
        let url = ws_url(url)?;
        let mut session = ClientSession::new(nonce_prefix());
        if let Some(name) = &options.name {
            let _ = session.set_name(name.as_str());
        }
        if let Some(token) = options.resume {
            session.set_resume_token(token);
        }
        if let Some(source) = &options.token {
            let token = source
                .fetch()
                .await
                .map_err(|e| ConnectError::Token(e.to_string()))?;
            session.set_token(Some(token));
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
        runner::start(
            url.clone(),
            session,
            options.token,
            events_tx,
            welcomed,
            commands_rx,
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, first).await {
            Ok(Ok(Ok(()))) => Ok((Client { commands }, Events(events))),
            Ok(Ok(Err(runner::NotWelcomed::Unreachable(why)))) => {
                Err(ConnectError::Unreachable { url, why })
            }
            Ok(Ok(Err(runner::NotWelcomed::SignedOut(failure)))) => {
                Err(ConnectError::SignIn { url, failure })
            }
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

    /// Presents a new sign-in token for the same user: sent as a `refresh` now if
    /// connected ([`Event::TokenRefreshed`] follows), and in the `hello` of every later
    /// reconnection. A [`TokenSource`] that can refresh does this by itself.
    pub fn set_token(&self, token: impl Into<String>) {
        let _ = self.commands.send(Command::Token(token.into()));
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

/// How a line reads on a terminal: `<name or id> -> <text>`, marked `(edited)` or shown
/// as `(line removed)`; an edit or a deletion reads `* line N edited: <text>` or
/// `* line N removed`; a moderation `* bob banned by ana until <ms>`, `* slow mode 30 s by
/// ana`.
pub fn line_text(line: &ChatLine) -> String {
    use shared::ChangeKind;
    if let Some(change) = &line.change {
        let target = change.target;
        let by = change.by.as_deref().unwrap_or("?");
        let user = change.user.as_deref().unwrap_or("?");
        let until = change
            .until
            .map(|u| format!(" until {u}"))
            .unwrap_or_default();
        return match change.kind {
            ChangeKind::Edit => format!("* line {target} edited: {}", line.text),
            ChangeKind::Delete => format!("* line {target} removed"),
            ChangeKind::SlowMode => match change.secs.unwrap_or(0) {
                0 => format!("* slow mode off by {by}"),
                secs => format!("* slow mode {secs} s by {by}"),
            },
            kind => {
                let done = match kind {
                    ChangeKind::Kick => "kicked",
                    ChangeKind::Ban => "banned",
                    ChangeKind::Unban => "unbanned",
                    ChangeKind::Mute => "muted",
                    _ => "unmuted",
                };
                format!("* {user} {done} by {by}{until}")
            }
        };
    }
    let who = line
        .name
        .as_ref()
        .map_or_else(|| line.from.to_string(), ToString::to_string);
    if line.removed {
        format!("{who} -> (line removed)")
    } else if line.edited {
        format!("{who} -> {} (edited)", line.text)
    } else {
        format!("{who} -> {}", line.text)
    }
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
