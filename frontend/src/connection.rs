//! The connection: the socket, the session, and the state the page shows, as signals.
//!
//! [`ChatState`] (in `state`) is plain reactive state that components read: the connection,
//! this page's id and name, the rooms it is in, the room in view, and one [`RoomState`] per
//! room (history, members, typists, unread count). [`Connection`] owns the socket (a
//! `gloo-net` WebSocket to `/ws?v=2`) and a [`ClientSession`] (the sans-IO logic from
//! `shared`: the rooms and the last `seq` held in each, pending lines by nonce, the `hello`
//! that resumes, the reconnect backoff), and [`Connection::apply`] (in `connection::apply`) is
//! the page's one `match` on [`ServerMsg`](shared::ServerMsg), with no `_ =>` arm, so a new
//! message type makes the compiler point here.
//!
//! It keeps itself connected: the first frame of every socket is the session's `hello`
//! (resume token, every room with the last `seq` shown there, the display name), so the server
//! answers each room with exactly the lines missed. On a drop it waits (exponential backoff
//! with full jitter, shown as "reconnecting in N s"), then does it again and resends what is
//! pending.
//!
//! - this file: [`Connection`], its dispatch ([`Connection::apply`]) and what the user does
//!   (show a room, join, leave, rename, send, type, load older lines);
//! - `state`: [`ChatState`] and [`RoomState`], the signals;
//! - `socket`: the socket's life (open, hello, read, ping, reconnect) and paced resends;
//! - `sign_in`: who this page is: the server's sign-in settings, the token (from the app's
//!   token URL or the dev-login), its refresh, and what a refused or ended sign-in does;
//! - `storage`: what outlives the page (name, rooms, resume token, pending lines, dev-login
//!   identity).

mod apply;
mod reads;
mod sign_in;
mod socket;
mod sse;
pub use sse::sleep_ms;
mod state;
pub mod storage;

pub use sign_in::{
    AuthConfig, AuthMode, CLOSE_SIGN_IN, CLOSE_SIGNED_OUT, DevIdentity, SignInNotice,
};
pub use socket::{FALL_BACK_AFTER, PING_EVERY, UPGRADE_EVERY, page_ws_url};

pub use state::{ChatState, ConnState, GoTo, LiveText, RoomState, TransportKind, room_path};

use std::collections::BTreeMap;

use leptos::prelude::*;
use shared::{ClientMsg, ClientSession, DisplayName, ErrorCode, NameError, Refusal, RoomName, Seq};

use crate::i18n::Texts;
use socket::{Fallback, Socket, Timers, now_ms};
use storage::Store;

/// A User Timing mark (`performance.mark`), for measuring the page in a real browser.
fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}

/// How many older lines one "load older" asks for.
pub const OLDER_PAGE: u32 = 100;

/// Why [`Connection::send_line`] did not take a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Empty or only white space.
    Blank,
    /// Longer than the server takes.
    TooLong {
        /// The most characters a line may have.
        max: usize,
    },
}

impl SendError {
    /// What the composer tells the user, in the language of `t`.
    pub fn message(self, t: &Texts) -> String {
        match self {
            SendError::Blank => t.blank_line.to_owned(),
            SendError::TooLong { max } => (t.too_long)(max),
        }
    }
}

/// What the composer's notice says: the last refusal, from the composer or the server. Kept
/// as what happened, not as words, so it is shown in whichever language the page is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The composer did not take a line.
    Send(SendError),
    /// The server rate-limited a line; it goes out again by itself.
    SlowDown,
    /// The server could not store a line for now; it goes out again by itself.
    ServerBusy,
    /// The server refused a line for good.
    LineRefused {
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in the server's words.
        message: String,
    },
    /// The server did not let this page into a room (or keep it there).
    JoinRefused {
        /// The room.
        room: RoomName,
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in the server's words.
        message: String,
    },
    /// A moderator put this page out of a room.
    PutOut {
        /// The room.
        room: RoomName,
        /// A ban (else a kick).
        ban: bool,
        /// Who did it.
        by: String,
        /// A ban's end (ms since the epoch; none: for good).
        until: Option<u64>,
    },
    /// The server refused some other frame.
    Refused {
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in the server's words.
        message: String,
    },
}

impl Notice {
    /// The notice in the language of `t`.
    pub fn text(&self, t: &Texts) -> String {
        match self {
            Notice::Send(err) => err.message(t),
            Notice::SlowDown => t.slow_down.to_owned(),
            Notice::ServerBusy => t.server_busy.to_owned(),
            Notice::LineRefused { code, message } => {
                (t.line_refused)(*code, &(t.server_reason)(*code, message))
            }
            Notice::JoinRefused {
                room,
                code: ErrorCode::Forbidden,
                message: _,
            } => (t.join_forbidden)(room),
            Notice::JoinRefused {
                room,
                code: ErrorCode::Banned,
                message: _,
            } => (t.join_banned)(room),
            Notice::PutOut {
                room,
                ban,
                by,
                until,
            } => (t.put_out)(room, *ban, by, until.map(minutes_left)),
            Notice::JoinRefused {
                room,
                code,
                message,
            } => (t.join_refused)(room, *code, &(t.server_reason)(*code, message)),
            Notice::Refused { code, message } => {
                (t.refused)(*code, &(t.server_reason)(*code, message))
            }
        }
    }
}

/// The whole minutes (at least 1) from now until `until` (ms since the epoch).
pub fn minutes_left(until: u64) -> u64 {
    until.saturating_sub(now_ms()).div_ceil(60_000).max(1)
}

/// Why the URL names no room: the name in it, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// The name as the URL has it.
    pub name: String,
    /// Why it is not a room name.
    pub error: NameError,
}

impl RouteError {
    /// What the page says instead of the room, in the language of `t`.
    pub fn text(&self, t: &Texts) -> String {
        (t.not_a_room_name)(&self.name, &self.error)
    }
}

/// The page's connection, as the app provides it in the context: components reach it with
/// this instead of being handed it as a prop. Panics outside the app (or a test that did
/// not `provide_context` one): a component without a connection is a bug.
pub fn use_connection() -> Connection {
    expect_context::<Connection>()
}

/// Which of the server's messages a page reads: the chat's page reads only the chat's, so
/// the exercises' decoders and handlers are not linked into its wasm (see [`crate::Site`]).
#[derive(Clone, Copy)]
pub struct Frames {
    /// Decodes one text frame ([`DecodeError::UnknownType`](shared::DecodeError) is skipped).
    pub decode: fn(&str) -> Result<shared::ServerMsg, shared::DecodeError>,
    /// Applies one of the exercises' messages.
    pub exercise: fn(&Connection, shared::ServerMsg),
}

impl Frames {
    /// The chat's: the exercises' messages are unknown types, skipped.
    pub const CHAT: Frames = Frames {
        decode: shared::decode_server_chat,
        exercise: |_, _| {},
    };
    /// Every message, the exercises' too.
    pub const ALL: Frames = Frames {
        decode: shared::decode_server,
        exercise: Connection::apply_exercise,
    };
}

/// The page's connection to the server. `Copy`, and in the context of every component.
#[derive(Clone, Copy)]
pub struct Connection {
    /// What the page shows; updated by every message received.
    pub state: ChatState,
    /// Which messages it reads.
    frames: Frames,
    /// What the exercise pages show (echo, binary, random ticker, products).
    pub exercises: crate::exercises::Exercises,
    // Browser objects are not `Send`: keep them in local (single-thread) storage.
    socket: StoredValue<Option<Socket>, LocalStorage>,
    session: StoredValue<ClientSession, LocalStorage>,
    timers: StoredValue<Timers, LocalStorage>,
    /// Which transport the next connection uses.
    fallback: StoredValue<Fallback, LocalStorage>,
    /// What was typed in the rooms not in view, so switching rooms keeps each one's text.
    drafts: StoredValue<BTreeMap<RoomName, String>>,
    /// Where to connect (`None`: never connect, e.g. in component tests).
    url: StoredValue<Option<String>>,
    /// Whether to keep name, rooms, token and pending lines in the browser's storage (not in
    /// component tests, which share one page).
    persist: StoredValue<bool>,
    /// Read positions held back so the server hears of a busy room at a bounded pace.
    reads_due: StoredValue<reads::ReadsDue, LocalStorage>,
}

impl Connection {
    /// A connection that has not connected yet and reads every message (components can be
    /// shown, and tested, without a server).
    pub fn new(state: ChatState) -> Self {
        Self::reading(state, Frames::ALL)
    }

    /// A connection that has not connected yet and reads `frames`.
    pub fn reading(state: ChatState, frames: Frames) -> Self {
        let prefix = format!(
            "{:x}",
            (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
        );
        Connection {
            state,
            frames,
            exercises: crate::exercises::Exercises::new(),
            socket: StoredValue::new_local(None),
            session: StoredValue::new_local(ClientSession::new(prefix)),
            timers: StoredValue::new_local(Timers::default()),
            fallback: StoredValue::new_local(Fallback::default()),
            drafts: StoredValue::new(BTreeMap::new()),
            url: StoredValue::new(None),
            persist: StoredValue::new(false),
            reads_due: StoredValue::new_local(reads::ReadsDue::default()),
        }
    }

    /// The exercises' intents: each sends its frame if connected and says whether it went
    /// out (what must survive a reconnect is asked again by `Exercises::resubscribe`).
    /// `tic` n: a named event the server logs.
    pub fn tic(&self, n: u64) -> bool {
        self.send_frame(&ClientMsg::Tic { n })
    }

    /// `echo`: the server sends the text back.
    pub fn echo(&self, text: String) -> bool {
        self.send_frame(&ClientMsg::Echo { text })
    }

    /// `binary`: the server answers with a binary frame of `size` bytes.
    pub fn binary(&self, size: u32) -> bool {
        self.send_frame(&ClientMsg::Binary { size })
    }

    /// Starts (or changes) the page's random ticker.
    pub fn start_ticker(&self, every_ms: u32) -> bool {
        self.send_frame(&ClientMsg::StartTicker {
            ticker: crate::exercises::PAGE_TICKER,
            every_ms,
        })
    }

    /// Stops the page's random ticker.
    pub fn stop_ticker(&self) -> bool {
        self.send_frame(&ClientMsg::StopTicker {
            ticker: crate::exercises::PAGE_TICKER,
        })
    }

    /// Watches the product list (its pages, then every change).
    pub fn watch_products(&self) -> bool {
        self.send_frame(&ClientMsg::WatchProducts)
    }

    /// Stops watching the product list.
    pub fn unwatch_products(&self) -> bool {
        self.send_frame(&ClientMsg::UnwatchProducts)
    }

    /// Creates a product (answered by `product_added` or `product_refused`).
    pub fn add_product(&self, product: shared::NewProduct) -> bool {
        self.send_frame(&ClientMsg::AddProduct { product })
    }

    /// Deletes a product.
    pub fn delete_product(&self, id: shared::ProductId) -> bool {
        self.send_frame(&ClientMsg::DeleteProduct { id })
    }

    /// The server refused a frame: a line (by nonce), a room (a join), or something else.
    fn refused(
        &self,
        code: ErrorCode,
        message: String,
        room: Option<RoomName>,
        nonce: Option<String>,
    ) {
        let notice = match (nonce, room) {
            (Some(nonce), _) => self.line_refused(&nonce, code, message),
            (None, _)
                if matches!(
                    code,
                    ErrorCode::BadToken | ErrorCode::AuthRequired | ErrorCode::TokenExpired
                ) =>
            {
                // The sign-in area says it; the close that follows decides what comes next.
                self.sign_in_refused(code);
                return;
            }
            (None, Some(room))
                if matches!(
                    code,
                    ErrorCode::BadRoom
                        | ErrorCode::TooManyRooms
                        | ErrorCode::RoomsFull
                        | ErrorCode::Forbidden
                        | ErrorCode::Banned
                ) =>
            {
                self.join_refused(room, code, message)
            }
            (None, Some(room)) if code == ErrorCode::NotJoined => {
                self.rejoin(&room);
                return;
            }
            (None, _) => Notice::Refused { code, message },
        };
        self.state.notice.set(Some(notice));
    }

    /// The server refused the line sent as `nonce`: the session decides whether it goes out
    /// again later (rate-limited or busy: said as such) or is dropped (said with the reason).
    fn line_refused(&self, nonce: &str, code: ErrorCode, message: String) -> Notice {
        let refusal = self
            .session
            .try_update_value(|s| s.on_refused(nonce, code, now_ms()));
        self.sync_pending();
        match refusal {
            Some(Refusal::Retry) => {
                self.schedule_due();
                if code == ErrorCode::RateLimited {
                    Notice::SlowDown
                } else {
                    Notice::ServerBusy
                }
            }
            Some(Refusal::Dropped(_) | Refusal::Unknown) | None => {
                Notice::LineRefused { code, message }
            }
        }
    }

    /// A join (or a room of the hello) was refused: this page is not in `room`, so it leaves
    /// the panel (and the session) if it was there.
    fn join_refused(&self, room: RoomName, code: ErrorCode, message: String) -> Notice {
        if self.state.is_joined(&room) {
            self.session.update_value(|s| {
                let _ = s.leave(&room);
            });
            self.forget_room(&room);
        }
        Notice::JoinRefused {
            room,
            code,
            message,
        }
    }

    /// The server says this page is not in `room`: if the page thinks it is, the server lost
    /// track of it (it may have restarted), so join again, which brings its latest page.
    fn rejoin(&self, room: &RoomName) {
        if self.state.is_joined(room) {
            self.send_frame(&ClientMsg::Join {
                room: room.as_str().to_owned(),
            });
        }
    }

    /// Shows `room` (joining it first if this page is not in it): the composer moves there
    /// (each room keeps its own draft), and its unread count goes back to zero.
    pub fn show(&self, room: RoomName) {
        untrack(|| {
            let state = self.state;
            if !state.is_joined(&room) {
                self.join(room.clone());
            }
            state.route_error.set(None);
            let previous = state.current.get_untracked();
            if previous != room {
                let draft = state.draft.get_untracked();
                if !draft.is_empty() {
                    // Typing in one room never shows in another: clear it where it was.
                    self.send_frame(&ClientMsg::Typing {
                        room: Some(previous.as_str().to_owned()),
                        text: String::new(),
                    });
                    self.drafts.update_value(|d| {
                        d.insert(previous, draft);
                    });
                }
                let draft = self
                    .drafts
                    .try_update_value(|d| d.remove(&room))
                    .flatten()
                    .unwrap_or_default();
                state.draft.set(draft);
                state.current.set(room.clone());
            }
            self.mark_read(&room);
        });
    }

    /// Shows the room a URL names: none (the page's root) is `general`; a name that is no
    /// room name shows why, instead of a room.
    pub fn show_route(&self, name: Option<&str>) {
        match name.map(|n| (n, RoomName::parse(n))) {
            None => self.show(RoomName::general()),
            Some((_, Ok(room))) => self.show(room),
            Some((name, Err(err))) => untrack(|| {
                self.state.route_error.set(Some(RouteError {
                    name: name.to_owned(),
                    error: err,
                }));
            }),
        }
    }

    /// Enters `room` (the server creates it if need be). Offline, the next `hello` does.
    fn join(&self, room: RoomName) {
        let frame = self.session.try_update_value(|s| s.join(room.clone()));
        if let Some(frame) = frame {
            self.send_frame(&frame);
        }
        let state = self.state;
        state.room(&room).clear();
        state.joined.update(|joined| joined.push(room));
        self.keep_rooms();
    }

    /// Leaves `room`: off the panel, its lines and unsent lines forgotten. If it was in view,
    /// another room (the first joined, or `general`) is shown instead.
    pub fn leave_room(&self, room: &RoomName) {
        if !self.state.is_joined(room) {
            return;
        }
        let frame = self.session.try_update_value(|s| s.leave(room));
        if let Some(frame) = frame {
            self.send_frame(&frame);
        }
        self.forget_room(room);
    }

    /// What leaving a room means on the page, whoever decided it (this page or the server).
    fn forget_room(&self, room: &RoomName) {
        let state = self.state;
        state.joined.update(|joined| joined.retain(|r| r != room));
        state.room(room).clear();
        self.drafts.update_value(|d| {
            d.remove(room);
        });
        self.keep_rooms();
        self.sync_pending();
        let next = state
            .joined
            .with_untracked(|joined| joined.first().cloned())
            .unwrap_or_else(RoomName::general);
        // (When `general` itself was refused and nothing else is left, stay: joining it
        // again would only be refused again.)
        if state.current.with_untracked(|current| current == room) && next != *room {
            // Show the next room now, and let the URL follow without a history entry, so
            // "back" does not lead into the room just left.
            state.draft.set(String::new());
            self.show(next.clone());
            self.go_to(next, true);
        }
    }

    /// Asks the router to show `room` (a new history entry unless `replace`).
    pub fn go_to(&self, room: RoomName, replace: bool) {
        self.state.go_to.set(Some(GoTo { room, replace }));
    }

    /// Changes this page's display name (kept in the browser; the server confirms it).
    pub fn set_name(&self, name: &str) -> Result<(), NameError> {
        let name = DisplayName::parse(name)?;
        let frame = self.session.try_update_value(|s| s.set_name(name.as_str()));
        if let Some(frame) = frame {
            self.send_frame(&frame);
        }
        self.state.my_name.set(name.to_string());
        self.keep(Store::Local, storage::NAME, name.as_str());
        Ok(())
    }

    /// Queues a line for the room in view and sends it if connected; offline it waits, shown
    /// as pending, and goes out after the next reconnect. Blank or too-long lines are refused
    /// here, before the network, with the same rules the server applies.
    pub fn send_line(&self, text: &str) -> Result<(), SendError> {
        if text.trim().is_empty() {
            return Err(SendError::Blank);
        }
        let max = self.state.max_text_chars.get_untracked();
        if text.chars().count() > max {
            return Err(SendError::TooLong { max });
        }
        let room = self.state.current.get_untracked();
        let frame = self
            .session
            .try_update_value(|s| s.send(room, text.to_owned()))
            .flatten();
        self.sync_pending();
        match frame {
            Some(frame) => {
                self.send_frame(&frame);
            }
            // It waits behind lines still to be resent: they go out in order.
            None => self.schedule_due(),
        }
        Ok(())
    }

    /// Sends the input box as it is now (live typing in the room in view). Best effort:
    /// dropped when offline.
    pub fn typing(&self, text: &str) {
        let max = self.state.max_text_chars.get_untracked();
        let text: String = text.chars().take(max).collect();
        let room = self.state.current.get_untracked();
        self.send_frame(&ClientMsg::Typing {
            room: Some(room.as_str().to_owned()),
            text,
        });
    }

    /// Asks the server for the page of lines before the oldest shown in the room in view.
    pub fn load_older(&self) {
        let room = self.state.current.get_untracked();
        if let Some(before) = self.session.with_value(|s| s.oldest_seq(&room)) {
            self.send_frame(&ClientMsg::LoadOlder {
                room: Some(room.as_str().to_owned()),
                before,
                limit: OLDER_PAGE,
            });
        }
    }

    /// Asks the server to change the text of line `seq` of the room in view (one's own,
    /// within the server's edit window); the change arrives as a `message_edited`.
    pub fn edit(&self, seq: Seq, text: String) {
        let room = self.state.current.get_untracked();
        self.send_frame(&ClientMsg::Edit {
            room: Some(room.as_str().to_owned()),
            seq,
            text,
            nonce: None,
        });
    }

    /// Asks the server to remove line `seq` of the room in view (one's own within the edit
    /// window, or anyone's for a moderator); it arrives as a `message_deleted`.
    pub fn delete(&self, seq: Seq) {
        let room = self.state.current.get_untracked();
        self.send_frame(&ClientMsg::Delete {
            room: Some(room.as_str().to_owned()),
            seq,
            nonce: None,
        });
    }

    /// As a moderator, puts `user` (a user's id, or a guest's session id) out of the room in
    /// view (`kick`), mutes them there for 10 minutes (`mute`) or bans them from it for good
    /// (`ban`); each arrives as a `moderation`.
    pub fn moderate(&self, kind: shared::ChangeKind, user: String) {
        let room = Some(self.state.current.get_untracked().as_str().to_owned());
        let msg = match kind {
            shared::ChangeKind::Kick => ClientMsg::Kick {
                room,
                user,
                nonce: None,
            },
            shared::ChangeKind::Mute => ClientMsg::Mute {
                room,
                user,
                until: Some(now_ms() + 10 * 60_000),
                nonce: None,
            },
            _ => ClientMsg::Ban {
                room,
                user,
                until: None,
                nonce: None,
            },
        };
        self.send_frame(&msg);
    }

    /// Asks for the full member list of the room in view (the server pushes it only for
    /// small rooms).
    pub fn list_members(&self) {
        let room = self.state.current.get_untracked();
        self.send_frame(&ClientMsg::Members {
            room: room.as_str().to_owned(),
            offset: None,
        });
    }

    /// Copies the session's pending lines to the page (and the browser's storage).
    fn sync_pending(&self) {
        let pending = self.session.with_value(|s| s.pending().to_vec());
        if self.state.pending.with_untracked(|p| *p != pending) {
            if self.persist.get_value() {
                storage::save_pending(&pending);
            }
            self.state.pending.set(pending);
        }
    }

    fn keep_rooms(&self) {
        if self.persist.get_value() {
            self.state
                .joined
                .with_untracked(|rooms| storage::save_rooms(rooms));
        }
    }

    fn keep(&self, store: Store, key: &str, value: &str) {
        if self.persist.get_value() {
            storage::write(store, key, value);
        }
    }
}
