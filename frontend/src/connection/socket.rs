//! The socket's life: open it (a `gloo-net` WebSocket to `/ws?v=2`), say `hello` first,
//! read every frame into [`Connection::apply`], ping it, and when it drops, wait (backoff
//! with full jitter, counted down on the page) and open the next one — unless the close
//! ended this page's sign-in (see `sign_in`). Also what must go out on a timer: pending lines
//! paced under the server's limits.
//!
//! Where WebSockets cannot open, the page falls back by itself: after
//! [`FALL_BACK_AFTER`] WebSocket connections in a row that ended before their `welcome`, the
//! next one is the SSE transport (`sse`), the same session over Server-Sent Events and
//! POSTs. On it, every [`UPGRADE_EVERY`] the page tries a WebSocket beside it: once that one
//! is welcomed (its `hello` resumes the session, with each room's last `seq`), it takes over
//! and the SSE transport ends. Lines are shown once by `seq` and resent lines are
//! deduplicated by nonce, so nothing is lost or repeated in the switch.

use std::{pin::Pin, time::Duration};

use futures_util::{
    Sink, StreamExt,
    future::{AbortHandle, AbortRegistration, Abortable, poll_fn},
};
use gloo_net::websocket::{
    Message, State as SocketState, WebSocketError, futures::WebSocket as Stream,
};
use leptos::{prelude::*, task::spawn_local};
use shared::{ClientMsg, ClientSession, DecodeError, RoomName, ServerMsg, encode};
use web_sys::WebSocket;

use super::{
    ConnState, Connection, TransportKind,
    sse::{Event as SseEvent, SseLink},
    storage,
    storage::Store,
};

/// After this many connections in a row of one transport that ended before their
/// `welcome`, the next uses the other (WebSocket → SSE, and back).
pub const FALL_BACK_AFTER: u32 = 2;

/// How often a page on the SSE transport tries to move back to a WebSocket.
pub const UPGRADE_EVERY: Duration = Duration::from_secs(5);

/// How often the page pings the server (browsers cannot see WebSocket pings); two pings in
/// a row without a `pong` mean the connection is dead.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// What a [`Socket`] runs on.
enum Link {
    /// The browser's socket, to send on synchronously: a frame goes out the moment the page
    /// decides to send it, in that order, with no queue in between. (The same object the
    /// `gloo-net` stream reads.)
    Ws(WebSocket),
    /// The fallback: its frames go out in POSTs, in order.
    Sse(SseLink),
}

/// An open connection: how to send on it, and how to stop the task reading it.
pub(super) struct Socket {
    link: Link,
    /// Stops the task reading the socket; dropping that task's stream closes the socket.
    reader: AbortHandle,
    /// Whether the `hello` went out: it must be the first frame, so nothing goes before it.
    greeted: bool,
    /// Whether its `welcome` came.
    welcomed: bool,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.reader.abort();
        if let Link::Ws(ws) = &self.link {
            let _ = ws.close();
        }
        // An SSE link ends itself when dropped.
    }
}

impl Socket {
    /// A new WebSocket's [`Socket`], the stream that reads it, and what aborts that reading
    /// (the socket is closed if it cannot be read).
    fn websocket(ws: WebSocket) -> Option<(Socket, Stream, AbortRegistration)> {
        let Ok(stream) = Stream::try_from(ws.clone()) else {
            let _ = ws.close();
            return None;
        };
        let (reader, registration) = AbortHandle::new_pair();
        let socket = Socket {
            link: Link::Ws(ws),
            reader,
            greeted: false,
            welcomed: false,
        };
        Some((socket, stream, registration))
    }

    /// Sends one frame's text; whether it went (or, on SSE, was queued for its POST).
    fn send(&self, text: &str) -> bool {
        match &self.link {
            Link::Ws(ws) => ws.ready_state() == WebSocket::OPEN && ws.send_with_str(text).is_ok(),
            Link::Sse(link) => link.send(text),
        }
    }

    fn kind(&self) -> TransportKind {
        match self.link {
            Link::Ws(_) => TransportKind::WebSocket,
            Link::Sse(_) => TransportKind::Sse,
        }
    }
}

/// Which transport the next connection uses, from how the last ones ended.
#[derive(Default)]
pub(super) struct Fallback {
    /// The next connection is SSE.
    sse: bool,
    /// Connections in a row of the transport in use that ended before their `welcome`.
    failures: u32,
}

/// Timers that belong to the current connection attempt.
#[derive(Default)]
pub(super) struct Timers {
    reconnect: Option<TimeoutHandle>,
    countdown: Option<IntervalHandle>,
    ping: Option<IntervalHandle>,
    /// When pending lines may go out again (paced, or after an `unavailable`).
    due: Option<TimeoutHandle>,
    /// When the next WebSocket is tried beside the SSE transport.
    probe_timer: Option<TimeoutHandle>,
    /// That WebSocket, while it is tried.
    probe: Option<Socket>,
    /// An SSE transport being opened (its `POST /sse` on its way).
    opening: Option<AbortHandle>,
    /// Pings sent since the last `pong`.
    pub(super) unanswered: u32,
}

impl Timers {
    pub(super) fn clear(&mut self) {
        if let Some(t) = self.reconnect.take() {
            t.clear();
        }
        if let Some(t) = self.countdown.take() {
            t.clear();
        }
        if let Some(t) = self.ping.take() {
            t.clear();
        }
        if let Some(t) = self.due.take() {
            t.clear();
        }
        if let Some(t) = self.probe_timer.take() {
            t.clear();
        }
        if let Some(opening) = self.opening.take() {
            opening.abort();
        }
        self.probe = None;
        self.unanswered = 0;
    }
}

pub(super) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The socket `index.html` opened to `url` while the wasm was still downloading
/// (`window.charlaSocket`), if it is still connecting or open; taken once. On a slow network
/// that is two round trips (TCP, then the upgrade) the page no longer waits for after it
/// starts: the `hello` goes out as soon as the page runs. Nothing arrives on it before the
/// `hello`, so nothing is missed before the page listens.
fn early_socket(url: &str) -> Option<WebSocket> {
    use wasm_bindgen::JsCast;
    let window = web_sys::window()?;
    let key = wasm_bindgen::JsValue::from_str("charlaSocket");
    let early = js_sys::Reflect::get(&window, &key).ok()?;
    let _ = js_sys::Reflect::delete_property(&window, &key);
    let ws = early.dyn_into::<WebSocket>().ok()?;
    let usable =
        ws.url() == url && matches!(ws.ready_state(), WebSocket::CONNECTING | WebSocket::OPEN);
    if !usable {
        let _ = ws.close();
        return None;
    }
    Some(ws)
}

/// The WebSocket URL of `path` (`/ws?v=2`, `/echo`) on the host that served the page (`wss:`
/// when the page is `https:`).
pub fn page_ws_url(path: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}{path}", location.host().ok()?))
}

impl Connection {
    /// The `/ws?v=2` URL on the host that served the page (`wss:` when the page is `https:`).
    pub fn default_url() -> Option<String> {
        page_ws_url("/ws?v=2")
    }

    /// Restores what the browser kept (name, rooms, resume token, pending lines), learns how
    /// this page signs in (and gets its token), connects to [`Connection::default_url`] and
    /// stays connected.
    pub fn connect(&self) {
        self.persist.set_value(true);
        let name = storage::load_name();
        let rooms = storage::load_rooms();
        let token = storage::read(Store::Session, storage::RESUME);
        let pending: Vec<_> = storage::load_pending()
            .into_iter()
            .filter(|p| rooms.contains(&p.room))
            .collect();
        self.session.update_value(|s| {
            // The frames these return are not sent: the `hello` carries all of it.
            let _ = s.set_name(name.as_str());
            let general = RoomName::general();
            if !rooms.contains(&general) {
                let _ = s.leave(&general);
            }
            for room in &rooms {
                let _ = s.join(room.clone());
            }
            if let Some(token) = token {
                s.set_resume_token(token);
            }
            s.restore_pending(pending);
        });
        for room in &rooms {
            self.state.room(room);
        }
        self.state.my_name.set(name.to_string());
        self.state.joined.set(rooms);
        self.sync_pending();
        self.url.set_value(Self::default_url());
        self.sign_in_then_open();
    }

    /// Stops for good: closes the socket and clears every timer (the page is going away).
    pub fn disconnect(&self) {
        self.url.try_set_value(None);
        self.timers.try_update_value(Timers::clear);
        self.socket.try_set_value(None);
    }

    /// Opens a socket now (replacing any); its first frame will be the session's `hello`.
    /// Under `--auth required` without a token it stays disconnected instead.
    pub fn open(&self) {
        self.timers.update_value(Timers::clear);
        self.socket.set_value(None);
        let state = self.state;
        state.retry_in.set(None);
        let Some(url) = self.url.get_value() else {
            state.status.set(ConnState::Disconnected);
            return;
        };
        if self.must_sign_in_first() {
            return;
        }
        state.status.set(ConnState::Connecting);
        if self.fallback.with_value(|f| f.sse) {
            self.open_sse();
            return;
        }
        state.transport.set(TransportKind::WebSocket);
        let Some(ws) = early_socket(&url).or_else(|| WebSocket::new(&url).ok()) else {
            self.closed(None);
            return;
        };
        let Some((socket, stream, registration)) = Socket::websocket(ws) else {
            self.closed(None);
            return;
        };
        self.socket.set_value(Some(socket));
        let conn = *self;
        spawn_local(async move {
            // Aborted when this socket is replaced or the page goes away: the stream is then
            // dropped, which closes the socket.
            let _ = Abortable::new(conn.run(stream), registration).await;
        });
    }

    /// Opens the SSE transport, its `hello` in the `POST /sse` that opens it, and reads it.
    fn open_sse(&self) {
        self.state.transport.set(TransportKind::Sse);
        let hello = encode(&self.session.with_value(ClientSession::hello));
        let (reader, registration) = AbortHandle::new_pair();
        self.timers
            .update_value(|t| t.opening = Some(reader.clone()));
        let conn = *self;
        spawn_local(async move {
            let run = async move {
                let Some((link, events)) = SseLink::open(&hello).await else {
                    conn.closed(None);
                    return;
                };
                conn.timers.update_value(|t| t.opening = None);
                conn.session.update_value(|s| s.on_connected(now_ms()));
                conn.socket.set_value(Some(Socket {
                    link: Link::Sse(link),
                    reader,
                    greeted: true,
                    welcomed: false,
                }));
                conn.start_pinging();
                conn.read_sse(events).await;
            };
            let _ = Abortable::new(run, registration).await;
        });
    }

    /// Reads the SSE transport's events until it ends.
    async fn read_sse(self, mut events: futures_channel::mpsc::UnboundedReceiver<SseEvent>) {
        let mut close_code = None;
        while let Some(event) = events.next().await {
            match event {
                SseEvent::Text(text) => self.receive(&text),
                SseEvent::Binary(bytes) => self.exercises.binary_frame(&bytes),
                SseEvent::Ping => self.socket.with_value(|socket| {
                    if let Some(Socket {
                        link: Link::Sse(link),
                        ..
                    }) = socket
                    {
                        link.pong();
                    }
                }),
                SseEvent::Close(code) => {
                    close_code = Some(code);
                    break;
                }
                SseEvent::Failed => break,
            }
        }
        self.closed(close_code);
    }

    /// This connection was welcomed: its transport works. On SSE, a WebSocket is tried
    /// again from time to time.
    pub(super) fn transport_welcomed(&self) {
        let kind = self.socket.try_update_value(|socket| {
            socket.as_mut().map(|s| {
                s.welcomed = true;
                s.kind()
            })
        });
        self.fallback.update_value(|f| f.failures = 0);
        if kind.flatten() == Some(TransportKind::Sse) {
            self.schedule_probe();
        }
    }

    fn schedule_probe(&self) {
        let conn = *self;
        let timer = set_timeout_with_handle(move || conn.probe(), UPGRADE_EVERY).ok();
        self.timers.update_value(|t| {
            if let Some(old) = std::mem::replace(&mut t.probe_timer, timer) {
                old.clear();
            }
        });
    }

    /// Tries a WebSocket beside the SSE transport (the next try is already scheduled, so
    /// one that hangs is replaced by it).
    fn probe(&self) {
        self.timers.update_value(|t| t.probe = None);
        self.schedule_probe();
        let Some(url) = self.url.get_value() else {
            return;
        };
        let Ok(ws) = WebSocket::new(&url) else {
            return;
        };
        let Some((socket, stream, registration)) = Socket::websocket(ws) else {
            return;
        };
        self.timers.update_value(|t| t.probe = Some(socket));
        let conn = *self;
        spawn_local(async move {
            let _ = Abortable::new(conn.run_probe(stream), registration).await;
        });
    }

    /// The tried WebSocket: once open it says `hello` (resuming the session); if its first
    /// frame is the `welcome`, it takes over from the SSE transport, which ends.
    async fn run_probe(self, mut stream: Stream) {
        let _ = poll_fn(|cx| Sink::<Message>::poll_ready(Pin::new(&mut stream), cx)).await;
        let hello = encode(&self.session.with_value(ClientSession::hello));
        let greeted = matches!(stream.state(), SocketState::Open)
            && self
                .timers
                .with_value(|t| t.probe.as_ref().is_some_and(|p| p.send(&hello)));
        let welcome = match stream.next().await {
            Some(Ok(Message::Text(text))) if greeted => (self.frames.decode)(&text).ok(),
            _ => None,
        };
        let Some(welcome @ ServerMsg::Welcome(_)) = welcome else {
            // Not this time (the next try is scheduled). Dropping it aborts this task.
            self.timers.update_value(|t| t.probe = None);
            return;
        };
        let Some(mut socket) = self.timers.try_update_value(|t| t.probe.take()).flatten() else {
            return;
        };
        socket.greeted = true;
        self.timers.update_value(|t| {
            if let Some(timer) = t.probe_timer.take() {
                timer.clear();
            }
            t.unanswered = 0;
        });
        // The SSE transport is dropped here: its stream closes and the server is told.
        self.socket.set_value(Some(socket));
        self.fallback.update_value(|f| *f = Fallback::default());
        self.state.transport.set(TransportKind::WebSocket);
        self.apply(welcome);
        self.read(stream).await;
    }

    /// Reads one socket until it closes: says hello once it is open, applies every frame.
    async fn run(self, mut stream: Stream) {
        // The socket is ready for frames once it is no longer connecting: open, or failed.
        let _ = poll_fn(|cx| Sink::<Message>::poll_ready(Pin::new(&mut stream), cx)).await;
        if matches!(stream.state(), SocketState::Open) {
            self.opened();
        }
        self.read(stream).await;
    }

    /// Applies every frame of an open socket until it closes.
    async fn read(self, mut stream: Stream) {
        let mut close_code = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Message::Text(text)) => self.receive(&text),
                // The one binary frame is the one a `binary` message announced.
                Ok(Message::Bytes(bytes)) => self.exercises.binary_frame(&bytes),
                // The close (its code says whether to come back), then the end.
                Err(WebSocketError::ConnectionClose(close)) => close_code = Some(close.code),
                // An error is followed by the end.
                Err(_) => {}
            }
        }
        self.closed(close_code);
    }

    /// The socket opened: the `hello` goes first, then pings keep it honest.
    fn opened(&self) {
        self.session.update_value(|s| s.on_connected(now_ms()));
        let hello = self.session.with_value(ClientSession::hello);
        self.socket.update_value(|socket| {
            if let Some(socket) = socket {
                socket.greeted = socket.send(&encode(&hello));
            }
        });
        self.start_pinging();
    }

    fn receive(&self, text: &str) {
        match (self.frames.decode)(text) {
            Ok(msg) => self.apply(msg),
            // A newer server may send types this page does not know: skip them.
            Err(DecodeError::UnknownType(_)) => {}
            Err(err) => leptos::logging::warn!("undecodable frame from the server: {err}"),
        }
    }

    /// The socket is gone (with the close's code, if it had one): show it, and schedule the
    /// next attempt, unless the close ended this page's sign-in for good.
    fn closed(&self, code: Option<u16>) {
        // Which transport ended, and whether it had been welcomed (none: it never opened).
        let ended = self
            .socket
            .with_value(|s| s.as_ref().map(|s| (s.kind(), s.welcomed)));
        self.fallback.update_value(|f| {
            let welcomed = ended.is_some_and(|(_, welcomed)| welcomed);
            if welcomed {
                f.failures = 0;
            } else {
                f.failures += 1;
                if f.failures >= FALL_BACK_AFTER {
                    f.sse = !f.sse;
                    f.failures = 0;
                }
            }
        });
        self.timers.update_value(Timers::clear);
        self.socket.set_value(None);
        let state = self.state;
        // Live text goes stale without a connection; each room's `joined` brings it back.
        for room in state.joined.get_untracked() {
            state.room(&room).typists.set(Vec::new());
        }
        if self.url.with_value(Option::is_none) || self.closed_for_sign_in(code) {
            state.status.set(ConnState::Disconnected);
            return;
        }
        let delay_ms = self
            .session
            .try_update_value(|s| s.on_disconnected(now_ms(), js_sys::Math::random()))
            .unwrap_or(1_000);
        state.status.set(ConnState::Reconnecting);
        state.retry_in.set(Some(delay_ms.div_ceil(1_000) as u32));
        let conn = *self;
        let reconnect =
            set_timeout_with_handle(move || conn.open(), Duration::from_millis(delay_ms));
        let countdown = set_interval_with_handle(
            move || {
                state
                    .retry_in
                    .update(|s| *s = s.map(|n| n.saturating_sub(1)))
            },
            Duration::from_secs(1),
        );
        self.timers.update_value(|t| {
            t.reconnect = reconnect.ok();
            t.countdown = countdown.ok();
        });
    }

    fn start_pinging(&self) {
        let conn = *self;
        let ping = set_interval_with_handle(
            move || {
                let dead = conn
                    .timers
                    .try_update_value(|t| {
                        t.unanswered += 1;
                        t.unanswered > 2
                    })
                    .unwrap_or(false);
                if dead {
                    // Two pings went unanswered: the path to the server is gone even if the
                    // browser has not noticed. Do not wait for it to.
                    conn.closed(None);
                } else {
                    conn.send_frame(&ClientMsg::Ping);
                }
            },
            PING_EVERY,
        );
        self.timers.update_value(|t| t.ping = ping.ok());
    }

    /// Sends the pending lines whose time has come, and waits for the next ones.
    fn send_due(&self) {
        let frames = self
            .session
            .try_update_value(|s| s.due(now_ms()))
            .unwrap_or_default();
        for frame in frames {
            self.send_frame(&frame);
        }
        self.schedule_due();
    }

    /// Sets the timer for the next pending lines to go out, if any wait.
    pub(super) fn schedule_due(&self) {
        let now = now_ms();
        let next = self
            .session
            .try_update_value(|s| s.next_due_ms(now))
            .flatten();
        let conn = *self;
        let timer = next.and_then(|at| {
            set_timeout_with_handle(
                move || conn.send_due(),
                Duration::from_millis(at.saturating_sub(now)),
            )
            .ok()
        });
        self.timers.update_value(|t| {
            if let Some(old) = std::mem::replace(&mut t.due, timer) {
                old.clear();
            }
        });
    }

    /// Sends a frame if the socket is open and greeted; returns whether it did.
    pub(super) fn send_frame(&self, msg: &ClientMsg) -> bool {
        self.socket
            .try_with_value(|socket| {
                socket
                    .as_ref()
                    .filter(|s| s.greeted)
                    .is_some_and(|s| s.send(&encode(msg)))
            })
            .unwrap_or(false)
    }
}
