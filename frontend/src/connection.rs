//! The connection: the socket, the session, and the state the page shows, as signals.
//!
//! [`ChatState`] is plain reactive state that components read. [`Connection`] owns the
//! browser `WebSocket` and a [`ClientSession`] (the sans-IO logic from `shared`: last `seq`,
//! pending lines by nonce, reconnect backoff), and [`Connection::apply`] is the page's one
//! `match` on [`ServerMsg`], with no `_ =>` arm, so a new message type makes the compiler
//! point here. It keeps itself connected: on a drop it waits (exponential backoff with full
//! jitter, shown as "reconnecting in N s"), resumes the session, and resends what is pending.

use std::time::Duration;

use leptos::prelude::*;
use shared::{
    ChatLine, ClientMsg, ClientSession, ConnId, DecodeError, PendingLine, ServerMsg, Shown,
    decode_server, encode, limits::MAX_TEXT_CHARS,
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

/// How often the page pings the server (browsers cannot see WebSocket pings); two pings in
/// a row without a `pong` mean the connection is dead.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// How many older lines one "load older" asks for.
pub const OLDER_PAGE: u32 = 100;

/// Where the connection stands, as shown in the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Opening the socket, or opened and waiting for the `welcome`.
    Connecting,
    /// Welcomed: lines sent now reach everyone.
    Connected,
    /// The connection dropped; the next attempt is scheduled (see [`ChatState::retry_in`]).
    Reconnecting,
    /// Not connected, and not trying (no address to connect to).
    Disconnected,
}

impl ConnState {
    /// The word the page shows (a class name too).
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Disconnected => "disconnected",
        }
    }
}

/// The live-typing paragraph: whose text, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveText {
    /// The typist.
    pub from: ConnId,
    /// What their input box holds now (never empty: empty clears the paragraph).
    pub text: String,
}

/// Everything the page shows, as signals. `Copy`: pass it to components freely.
#[derive(Debug, Clone, Copy)]
pub struct ChatState {
    /// The connection's state.
    pub status: RwSignal<ConnState>,
    /// Seconds until the next connection attempt, while reconnecting.
    pub retry_in: RwSignal<Option<u32>>,
    /// This page's id, once welcomed.
    pub my_id: RwSignal<Option<ConnId>>,
    /// The history, oldest first, in `seq` order, each line once.
    pub history: RwSignal<Vec<ChatLine>>,
    /// Whether older lines than the first shown exist on the server.
    pub has_more: RwSignal<bool>,
    /// Lines sent and not yet acknowledged (shown as "sending…").
    pub pending: RwSignal<Vec<PendingLine>>,
    /// The live-typing paragraph, if anyone is typing.
    pub live: RwSignal<Option<LiveText>>,
    /// How many clients are connected.
    pub online: RwSignal<u32>,
    /// The composer's text; re-sent as live typing after a reconnect.
    pub draft: RwSignal<String>,
    /// The last refusal (from the server or the composer), shown until the next send.
    pub notice: RwSignal<Option<String>>,
}

impl Default for ChatState {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatState {
    /// Fresh state: connecting, no id, no history.
    pub fn new() -> Self {
        ChatState {
            status: RwSignal::new(ConnState::Connecting),
            retry_in: RwSignal::new(None),
            my_id: RwSignal::new(None),
            history: RwSignal::new(Vec::new()),
            has_more: RwSignal::new(false),
            pending: RwSignal::new(Vec::new()),
            live: RwSignal::new(None),
            online: RwSignal::new(0),
            draft: RwSignal::new(String::new()),
            notice: RwSignal::new(None),
        }
    }

    /// The status bar's words: "disconnected · reconnecting in 3 s", "connected", …
    pub fn status_text(&self) -> String {
        match (self.status.get(), self.retry_in.get()) {
            (ConnState::Reconnecting, Some(secs)) if secs > 0 => {
                format!("disconnected · reconnecting in {secs} s")
            }
            (ConnState::Reconnecting, _) => "disconnected · reconnecting…".to_owned(),
            (state, _) => state.label().to_owned(),
        }
    }
}

/// Why [`Connection::send_line`] did not take a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Empty or only white space.
    Blank,
    /// Longer than [`MAX_TEXT_CHARS`].
    TooLong,
}

impl SendError {
    /// What the composer tells the user.
    pub fn message(self) -> String {
        match self {
            SendError::Blank => "Type something first: blank lines are not sent.".into(),
            SendError::TooLong => format!("Too long: at most {MAX_TEXT_CHARS} characters."),
        }
    }
}

/// An open browser socket and the handlers that must live as long as it does.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// Timers that belong to the current connection attempt.
#[derive(Default)]
struct Timers {
    reconnect: Option<TimeoutHandle>,
    countdown: Option<IntervalHandle>,
    ping: Option<IntervalHandle>,
    /// Pings sent since the last `pong`.
    unanswered: u32,
}

impl Timers {
    fn clear(&mut self) {
        if let Some(t) = self.reconnect.take() {
            t.clear();
        }
        if let Some(t) = self.countdown.take() {
            t.clear();
        }
        if let Some(t) = self.ping.take() {
            t.clear();
        }
        self.unanswered = 0;
    }
}

/// The page's connection to the server. `Copy`: components get it as a prop.
#[derive(Clone, Copy)]
pub struct Connection {
    /// What the page shows; updated by every message received.
    pub state: ChatState,
    // Browser objects are not `Send`: keep them in local (single-thread) storage.
    socket: StoredValue<Option<Socket>, LocalStorage>,
    session: StoredValue<ClientSession, LocalStorage>,
    timers: StoredValue<Timers, LocalStorage>,
    /// Where to connect (`None`: never connect, e.g. in component tests).
    url: StoredValue<Option<String>>,
}

impl Connection {
    /// A connection that has not connected yet (components can be shown, and tested, without
    /// a server).
    pub fn new(state: ChatState) -> Self {
        let prefix = format!(
            "{:x}",
            (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
        );
        Connection {
            state,
            socket: StoredValue::new_local(None),
            session: StoredValue::new_local(ClientSession::new(prefix)),
            timers: StoredValue::new_local(Timers::default()),
            url: StoredValue::new(None),
        }
    }

    /// The `/ws` URL on the host that served the page (`wss:` when the page is `https:`).
    pub fn default_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!("{scheme}://{}/ws", location.host().ok()?))
    }

    /// Connects to [`Connection::default_url`] and stays connected.
    pub fn connect(&self) {
        self.url.set_value(Self::default_url());
        self.open();
    }

    /// Opens a socket now (replacing any), resuming the session if there is one.
    pub fn open(&self) {
        self.timers.update_value(Timers::clear);
        self.socket.set_value(None);
        let state = self.state;
        state.retry_in.set(None);
        let Some(base) = self.url.get_value() else {
            state.status.set(ConnState::Disconnected);
            return;
        };
        let url = match self.session.with_value(ClientSession::connect_query) {
            Some(query) => format!("{base}?{query}"),
            None => base,
        };
        state.status.set(ConnState::Connecting);
        let Ok(ws) = WebSocket::new(&url) else {
            self.closed();
            return;
        };
        let conn = *self;
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            conn.session
                .update_value(|s| s.on_connected(js_sys::Date::now() as u64));
            conn.start_pinging();
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return; // The protocol has text frames only.
            };
            match decode_server(&text) {
                Ok(msg) => conn.apply(msg),
                // A newer server may send types this page does not know: skip them.
                Err(DecodeError::UnknownType(_)) => {}
                Err(err) => leptos::logging::warn!("undecodable frame from the server: {err}"),
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| conn.closed());
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.socket.set_value(Some(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        }));
    }

    /// The socket is gone: show it, and schedule the next attempt.
    fn closed(&self) {
        self.timers.update_value(Timers::clear);
        self.socket.set_value(None);
        let state = self.state;
        state.live.set(None);
        if self.url.with_value(Option::is_none) {
            state.status.set(ConnState::Disconnected);
            return;
        }
        let delay_ms = self
            .session
            .try_update_value(|s| {
                s.on_disconnected(js_sys::Date::now() as u64, js_sys::Math::random())
            })
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
                    conn.closed();
                } else {
                    conn.send_frame(&ClientMsg::Ping);
                }
            },
            PING_EVERY,
        );
        self.timers.update_value(|t| t.ping = ping.ok());
    }

    /// Applies one message from the server: the page's one dispatch on [`ServerMsg`].
    pub fn apply(&self, msg: ServerMsg) {
        let state = self.state;
        match msg {
            ServerMsg::Welcome {
                id,
                history,
                online,
                protocol: _,
                resume,
                has_more,
                resumed,
            } => {
                let (shown, resend) = self
                    .session
                    .try_update_value(|s| s.on_welcome(id.clone(), resume, history, resumed))
                    .unwrap_or((Shown::Append(Vec::new()), Vec::new()));
                match shown {
                    Shown::Replace(lines) => {
                        state.history.set(lines);
                        state.has_more.set(has_more);
                    }
                    Shown::Append(lines) if lines.is_empty() => {}
                    Shown::Append(lines) => state.history.update(|h| h.extend(lines)),
                }
                state.my_id.set(Some(id));
                state.online.set(online);
                state.live.set(None);
                state.status.set(ConnState::Connected);
                state.retry_in.set(None);
                // What was sent while offline (or never acked) goes out again now; the
                // server appends each nonce once, so a resend is never a duplicate.
                for frame in resend {
                    self.send_frame(&frame);
                }
                let draft = state.draft.get_untracked();
                if !draft.is_empty() {
                    self.typing(&draft);
                }
                self.sync_pending();
            }
            ServerMsg::Typing { from, text } => {
                if !text.is_empty() {
                    state.live.set(Some(LiveText { from, text }));
                } else if state
                    .live
                    .with_untracked(|l| l.as_ref().is_some_and(|l| l.from == from))
                {
                    // Only the typist who is shown can clear the paragraph.
                    state.live.set(None);
                }
            }
            ServerMsg::Message(line) => {
                if let Some(line) = self.session.try_update_value(|s| s.on_line(line)).flatten() {
                    let mine = line.nonce.is_some();
                    state.history.update(|h| h.push(line));
                    if mine {
                        self.sync_pending();
                    }
                }
            }
            ServerMsg::Ack { nonce, seq: _ } => {
                if self
                    .session
                    .try_update_value(|s| s.on_ack(&nonce))
                    .unwrap_or(false)
                {
                    self.sync_pending();
                }
            }
            ServerMsg::Older { lines, has_more } => {
                let older = self
                    .session
                    .try_update_value(|s| s.on_older(lines))
                    .unwrap_or_default();
                if !older.is_empty() {
                    state.history.update(|h| {
                        h.splice(0..0, older);
                    });
                }
                state.has_more.set(has_more);
            }
            ServerMsg::Pong => self.timers.update_value(|t| t.unanswered = 0),
            ServerMsg::Presence { online } => state.online.set(online),
            ServerMsg::Error { code, message } => {
                state
                    .notice
                    .set(Some(format!("The server refused that ({code}): {message}")));
            }
        }
    }

    fn sync_pending(&self) {
        let pending = self.session.with_value(|s| s.pending().to_vec());
        if self.state.pending.with_untracked(|p| *p != pending) {
            self.state.pending.set(pending);
        }
    }

    /// Queues a line for the history and sends it if connected; offline it waits, shown as
    /// pending, and goes out after the next reconnect. Blank or too-long lines are refused
    /// here, before the network, with the same rules the server applies.
    pub fn send_line(&self, text: &str) -> Result<(), SendError> {
        if text.trim().is_empty() {
            return Err(SendError::Blank);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SendError::TooLong);
        }
        let frame = self.session.try_update_value(|s| s.send(text.to_owned()));
        self.sync_pending();
        if let Some(frame) = frame {
            self.send_frame(&frame);
        }
        Ok(())
    }

    /// Sends the input box as it is now (live typing). Best effort: dropped when offline.
    pub fn typing(&self, text: &str) {
        let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
        self.send_frame(&ClientMsg::Typing { text });
    }

    /// Asks the server for the page of lines before the oldest shown.
    pub fn load_older(&self) {
        if let Some(before) = self.session.with_value(ClientSession::oldest_seq) {
            self.send_frame(&ClientMsg::LoadOlder {
                before,
                limit: OLDER_PAGE,
            });
        }
    }

    /// Sends a frame if the socket is open; returns whether it did.
    fn send_frame(&self, msg: &ClientMsg) -> bool {
        self.socket.with_value(|socket| {
            socket
                .as_ref()
                .map(|s| &s.ws)
                .filter(|ws| ws.ready_state() == WebSocket::OPEN)
                .is_some_and(|ws| ws.send_with_str(&encode(msg)).is_ok())
        })
    }
}
