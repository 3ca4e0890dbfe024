//! The socket's life: open it (a `gloo-net` WebSocket to `/ws?v=2`), say `hello` first,
//! read every frame into [`Connection::apply`], ping it, and when it drops, wait (backoff
//! with full jitter, counted down on the page) and open the next one — unless the close
//! ended this page's sign-in (see `sign_in`). Also what must go out on a timer: pending lines
//! paced under the server's limits.

use std::{pin::Pin, time::Duration};

use futures_util::{
    Sink, StreamExt,
    future::{AbortHandle, Abortable, poll_fn},
};
use gloo_net::websocket::{
    Message, State as SocketState, WebSocketError, futures::WebSocket as Stream,
};
use leptos::{prelude::*, task::spawn_local};
use shared::{ClientMsg, ClientSession, DecodeError, RoomName, encode};
use web_sys::WebSocket;

use super::{ConnState, Connection, storage, storage::Store};

/// How often the page pings the server (browsers cannot see WebSocket pings); two pings in
/// a row without a `pong` mean the connection is dead.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// An open socket: how to send on it, and how to stop the task reading it.
pub(super) struct Socket {
    /// The browser's socket, to send on synchronously: a frame goes out the moment the page
    /// decides to send it, in that order, with no queue in between. (The same object the
    /// `gloo-net` stream reads.)
    ws: WebSocket,
    /// Stops the task reading the socket; dropping that task's stream closes the socket.
    reader: AbortHandle,
    /// Whether the `hello` went out: it must be the first frame, so nothing goes before it.
    greeted: bool,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.reader.abort();
        let _ = self.ws.close();
    }
}

/// Timers that belong to the current connection attempt.
#[derive(Default)]
pub(super) struct Timers {
    reconnect: Option<TimeoutHandle>,
    countdown: Option<IntervalHandle>,
    ping: Option<IntervalHandle>,
    /// When pending lines may go out again (paced, or after an `unavailable`).
    due: Option<TimeoutHandle>,
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
        let Some(ws) = early_socket(&url).or_else(|| WebSocket::new(&url).ok()) else {
            self.closed(None);
            return;
        };
        let Ok(stream) = Stream::try_from(ws.clone()) else {
            let _ = ws.close();
            self.closed(None);
            return;
        };
        let (reader, registration) = AbortHandle::new_pair();
        self.socket.set_value(Some(Socket {
            ws,
            reader,
            greeted: false,
        }));
        let conn = *self;
        spawn_local(async move {
            // Aborted when this socket is replaced or the page goes away: the stream is then
            // dropped, which closes the socket.
            let _ = Abortable::new(conn.run(stream), registration).await;
        });
    }

    /// Reads one socket until it closes: says hello once it is open, applies every frame.
    async fn run(self, mut stream: Stream) {
        // The socket is ready for frames once it is no longer connecting: open, or failed.
        let _ = poll_fn(|cx| Sink::<Message>::poll_ready(Pin::new(&mut stream), cx)).await;
        if matches!(stream.state(), SocketState::Open) {
            self.opened();
        }
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
                socket.greeted = socket.ws.send_with_str(&encode(&hello)).is_ok();
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
                    .filter(|s| s.greeted && s.ws.ready_state() == WebSocket::OPEN)
                    .is_some_and(|s| s.ws.send_with_str(&encode(msg)).is_ok())
            })
            .unwrap_or(false)
    }
}
