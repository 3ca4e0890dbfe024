//! The connection: the socket, and the state the page shows, as signals.
//!
//! [`ChatState`] is plain reactive state; [`ChatState::apply`] is the page's one `match` on
//! [`ServerMsg`], with no `_ =>` arm, so a new message type makes the compiler point here.
//! [`Connection`] owns the browser `WebSocket` and turns calls into `send`/`typing` frames.
//! Components read the signals and call the connection; they never touch the socket.

use leptos::prelude::*;
use shared::{
    ChatLine, ClientMsg, ConnId, DecodeError, ServerMsg, decode_server, encode,
    limits::MAX_TEXT_CHARS,
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// Where the connection stands, as shown in the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Opening the socket, or opened and waiting for the `welcome`.
    Connecting,
    /// Welcomed: lines sent now reach everyone.
    Connected,
    /// The socket closed (the server went away or the network dropped).
    Disconnected,
}

impl ConnState {
    /// The word the page shows.
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
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
    /// This page's id, once welcomed.
    pub my_id: RwSignal<Option<ConnId>>,
    /// The history, oldest first, in `seq` order.
    pub history: RwSignal<Vec<ChatLine>>,
    /// The live-typing paragraph, if anyone is typing.
    pub live: RwSignal<Option<LiveText>>,
    /// How many clients are connected.
    pub online: RwSignal<u32>,
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
            my_id: RwSignal::new(None),
            history: RwSignal::new(Vec::new()),
            live: RwSignal::new(None),
            online: RwSignal::new(0),
            notice: RwSignal::new(None),
        }
    }

    /// Applies one message from the server: the page's one dispatch on [`ServerMsg`].
    pub fn apply(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::Welcome {
                id,
                history,
                online,
                protocol: _,
            } => {
                // A welcome starts a connection afresh: the server's history is the truth.
                self.my_id.set(Some(id));
                self.history.set(history);
                self.online.set(online);
                self.live.set(None);
                self.status.set(ConnState::Connected);
            }
            ServerMsg::Typing { from, text } => {
                if !text.is_empty() {
                    self.live.set(Some(LiveText { from, text }));
                } else if self
                    .live
                    .with_untracked(|l| l.as_ref().is_some_and(|l| l.from == from))
                {
                    // Only the typist who is shown can clear the paragraph.
                    self.live.set(None);
                }
            }
            ServerMsg::Message(line) => {
                self.history.update(|history| {
                    // Lines arrive in `seq` order; one at or below the last is a repeat.
                    if history.last().is_none_or(|last| line.seq > last.seq) {
                        history.push(line);
                    }
                });
            }
            ServerMsg::Presence { online } => self.online.set(online),
            ServerMsg::Error { code, message } => {
                self.notice
                    .set(Some(format!("The server refused that ({code}): {message}")));
            }
        }
    }
}

/// Why [`Connection::send_line`] did not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Empty or only white space.
    Blank,
    /// Longer than [`MAX_TEXT_CHARS`].
    TooLong,
    /// The socket is not open.
    NotConnected,
}

impl SendError {
    /// What the composer tells the user.
    pub fn message(self) -> String {
        match self {
            SendError::Blank => "Type something first: blank lines are not sent.".into(),
            SendError::TooLong => format!("Too long: at most {MAX_TEXT_CHARS} characters."),
            SendError::NotConnected => "Not connected: the line was not sent.".into(),
        }
    }
}

/// An open browser socket and the handlers that must live as long as it does.
struct Socket {
    ws: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// The page's connection to the server. `Copy`: components get it as a prop.
#[derive(Clone, Copy)]
pub struct Connection {
    /// What the page shows; updated by every message received.
    pub state: ChatState,
    // Browser objects are not `Send`: keep the socket in local (single-thread) storage.
    socket: StoredValue<Option<Socket>, LocalStorage>,
}

impl Connection {
    /// A connection that has not connected yet (components can be shown, and tested, without
    /// a server).
    pub fn new(state: ChatState) -> Self {
        Connection {
            state,
            socket: StoredValue::new_local(None),
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

    /// Opens the socket to [`Connection::default_url`], replacing any open one.
    pub fn connect(&self) {
        match Self::default_url() {
            Some(url) => self.connect_to(&url),
            None => self.state.status.set(ConnState::Disconnected),
        }
    }

    /// Opens a socket to `url`, replacing any open one.
    pub fn connect_to(&self, url: &str) {
        self.socket.set_value(None);
        let state = self.state;
        state.status.set(ConnState::Connecting);
        let Ok(ws) = WebSocket::new(url) else {
            state.status.set(ConnState::Disconnected);
            return;
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return; // The protocol has text frames only.
            };
            match decode_server(&text) {
                Ok(msg) => state.apply(msg),
                // A newer server may send types this page does not know: skip them.
                Err(DecodeError::UnknownType(_)) => {}
                Err(err) => leptos::logging::warn!("undecodable frame from the server: {err}"),
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            state.status.set(ConnState::Disconnected);
            state.live.set(None);
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.socket.set_value(Some(Socket {
            ws,
            _on_message: on_message,
            _on_close: on_close,
        }));
    }

    /// Sends a line for the history. Blank or too-long lines are refused here, before the
    /// network, with the same rules the server applies.
    pub fn send_line(&self, text: &str) -> Result<(), SendError> {
        if text.trim().is_empty() {
            return Err(SendError::Blank);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SendError::TooLong);
        }
        self.send(&ClientMsg::Send {
            text: text.to_owned(),
            nonce: None,
        })
    }

    /// Sends the input box as it is now (live typing). Best effort: dropped when offline.
    pub fn typing(&self, text: &str) {
        let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
        let _ = self.send(&ClientMsg::Typing { text });
    }

    fn send(&self, msg: &ClientMsg) -> Result<(), SendError> {
        self.socket.with_value(|socket| {
            let ws = socket
                .as_ref()
                .map(|s| &s.ws)
                .filter(|ws| ws.ready_state() == WebSocket::OPEN)
                .ok_or(SendError::NotConnected)?;
            ws.send_with_str(&encode(msg))
                .map_err(|_| SendError::NotConnected)
        })
    }
}
