//! What the page shows, as signals: [`ChatState`] for the page (connection, who this page is
//! and who is signed in, the rooms it is in, the room in view) and one [`RoomState`] per room
//! (its history, who is there, who is typing, its unread count, whether it is private). Only
//! the connection writes them; components read.

use std::collections::BTreeMap;

use leptos::prelude::*;
use shared::{
    ChatLine, ConnId, DisplayName, Member, PendingLine, RoomName, UserInfo, limits::MAX_TEXT_CHARS,
};

use super::{
    Notice, RouteError,
    sign_in::{AuthConfig, DevIdentity, SignInNotice},
};
use crate::i18n::Texts;

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
    /// The state's class name on the status pill (the same in every language; the words
    /// shown are [`ChatState::status_text`]'s).
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Disconnected => "disconnected",
        }
    }
}

/// How the page talks to the server, as shown in the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// A WebSocket to `/ws?v=2` (the first choice).
    WebSocket,
    /// The fallback where WebSockets cannot open: Server-Sent Events from `/sse/<id>`,
    /// frames sent with POSTs.
    Sse,
}

impl TransportKind {
    /// Its name on the page (the same in every language).
    pub fn label(self) -> &'static str {
        match self {
            TransportKind::WebSocket => "WebSocket",
            TransportKind::Sse => "SSE + POST",
        }
    }
}

/// One member's live text in a room: what their input box holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveText {
    /// The typist.
    pub from: ConnId,
    /// What they are called (their id when the server sent no name).
    pub name: String,
    /// Their input box as it is now (never empty: empty removes the typist).
    pub text: String,
}

/// Where the page asks the router to go (the router, not the connection, owns the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTo {
    /// The room to show.
    pub room: RoomName,
    /// Replace the current history entry instead of adding one (after leaving a room, so
    /// "back" does not return to it).
    pub replace: bool,
}

/// The URL path of a room's page: `/r/<name>`.
pub fn room_path(room: &RoomName) -> String {
    format!("/r/{room}")
}

/// One room as the page shows it. `Copy`: every field is a signal handle.
#[derive(Debug, Clone, Copy)]
pub struct RoomState {
    /// The lines shown, oldest first, in `seq` order, each once.
    pub history: RwSignal<Vec<ChatLine>>,
    /// Whether older lines than the first shown exist on the server.
    pub has_more: RwSignal<bool>,
    /// How many are in the room, this page included.
    pub online: RwSignal<u32>,
    /// Who is in the room (`None`: too many for the server to push the list).
    pub members: RwSignal<Option<Vec<Member>>>,
    /// Who is typing there now, in the order they started.
    pub typists: RwSignal<Vec<LiveText>>,
    /// Lines from others after `read`: the room's unread count.
    pub unread: RwSignal<u32>,
    /// The newest entry read here: for a signed-in user, the server's word (the same on
    /// each of their tabs and devices); for a guest, this page's (0: none yet).
    pub read: RwSignal<u64>,
    /// Whether the room is private (only users granted it may join), as its `joined` says.
    pub private: RwSignal<bool>,
    /// The room's slow mode: seconds between one person's lines (0: off).
    pub slow_mode: RwSignal<u32>,
    /// Set while a moderator has this page muted here: until when (ms since the epoch;
    /// none: until unmuted).
    pub muted: RwSignal<Option<Option<u64>>>,
}

impl RoomState {
    fn new() -> Self {
        RoomState {
            history: RwSignal::new(Vec::new()),
            has_more: RwSignal::new(false),
            online: RwSignal::new(0),
            members: RwSignal::new(Some(Vec::new())),
            typists: RwSignal::new(Vec::new()),
            unread: RwSignal::new(0),
            read: RwSignal::new(0),
            private: RwSignal::new(false),
            slow_mode: RwSignal::new(0),
            muted: RwSignal::new(None),
        }
    }

    /// Forgets everything shown (the page left the room).
    pub(crate) fn clear(&self) {
        self.history.set(Vec::new());
        self.has_more.set(false);
        self.online.set(0);
        self.members.set(Some(Vec::new()));
        self.typists.set(Vec::new());
        self.unread.set(0);
        self.read.set(0);
        self.private.set(false);
        self.slow_mode.set(0);
        self.muted.set(None);
    }

    /// Someone's input box changed: their text replaces their previous one (keeping their
    /// place in the list); an empty box removes them.
    pub(crate) fn set_typing(&self, from: ConnId, name: Option<DisplayName>, text: String) {
        if text.is_empty() {
            if self
                .typists
                .with_untracked(|t| t.iter().any(|l| l.from == from))
            {
                self.typists.update(|t| t.retain(|l| l.from != from));
            }
            return;
        }
        let name = name
            .map(|n| n.to_string())
            .unwrap_or_else(|| self.name_of(&from));
        self.typists.update(
            |typists| match typists.iter_mut().find(|l| l.from == from) {
                Some(live) => {
                    live.name = name;
                    live.text = text;
                }
                None => typists.push(LiveText { from, name, text }),
            },
        );
    }

    /// What a member is called, from the member list (their id if not listed).
    fn name_of(&self, id: &ConnId) -> String {
        self.members
            .with_untracked(|members| {
                members
                    .iter()
                    .flatten()
                    .find(|m| &m.id == id)
                    .map(|m| m.name.to_string())
            })
            .unwrap_or_else(|| id.to_string())
    }
}

/// Everything the page shows, as signals. `Copy`: pass it to components freely.
#[derive(Debug, Clone, Copy)]
pub struct ChatState {
    /// The connection's state.
    pub status: RwSignal<ConnState>,
    /// The transport the connection uses now (or tries next).
    pub transport: RwSignal<TransportKind>,
    /// Seconds until the next connection attempt, while reconnecting.
    pub retry_in: RwSignal<Option<u32>>,
    /// This page's id, once welcomed.
    pub my_id: RwSignal<Option<ConnId>>,
    /// This page's display name (kept in the browser; the server's word once welcomed).
    pub my_name: RwSignal<String>,
    /// The rooms this page is in, in the order it joined them.
    pub joined: RwSignal<Vec<RoomName>>,
    /// The room in view: the composer sends there, and its lines are not counted unread.
    pub current: RwSignal<RoomName>,
    /// Set while the URL names no valid room: why, shown instead of a room.
    pub route_error: RwSignal<Option<RouteError>>,
    /// A navigation the page asks the router for (leaving the room in view, joining one).
    pub go_to: RwSignal<Option<GoTo>>,
    /// Lines sent and not yet acknowledged, in every room (shown as "sending…").
    pub pending: RwSignal<Vec<PendingLine>>,
    /// The composer's text in the room in view; re-sent as live typing after a reconnect.
    pub draft: RwSignal<String>,
    /// The last refusal (from the server or the composer), shown until the next send.
    pub notice: RwSignal<Option<Notice>>,
    /// The longest line the server takes, in characters (from its `welcome`).
    pub max_text_chars: RwSignal<usize>,
    /// The server's sign-in settings, once known (`GET /api/config`).
    pub auth: RwSignal<Option<AuthConfig>>,
    /// Who is signed in on this connection (its `welcome`'s `user`); `None`: a guest.
    pub me: RwSignal<Option<UserInfo>>,
    /// Who the dev-login form signed in as (kept in the browser until "sign out").
    pub dev_identity: RwSignal<Option<DevIdentity>>,
    /// While the dev-login form waits for its token.
    pub signing_in: RwSignal<bool>,
    /// What last happened to the sign-in (refused, expired, signed out by the server, …).
    pub sign_in: RwSignal<Option<SignInNotice>>,
    /// Every room this page has shown, by name. Room states are made on first use and
    /// kept (a room left and joined again reuses its signals), so a component holding one
    /// never reads a disposed signal.
    rooms: StoredValue<BTreeMap<RoomName, RoomState>, LocalStorage>,
    /// The reactive owner room states are made under: the page's, not whichever effect or
    /// handler happens to run when a room first appears (an effect's signals are disposed
    /// when it runs again).
    owner: StoredValue<Owner, LocalStorage>,
}

impl Default for ChatState {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatState {
    /// Fresh state: connecting, no id, in `general` with nothing shown.
    pub fn new() -> Self {
        // Outside any owner (component tests) a root of its own, which lives as long as the page.
        let owner = Owner::current().unwrap_or_default();
        let general = owner.with(RoomState::new);
        ChatState {
            status: RwSignal::new(ConnState::Connecting),
            transport: RwSignal::new(TransportKind::WebSocket),
            retry_in: RwSignal::new(None),
            my_id: RwSignal::new(None),
            my_name: RwSignal::new(String::new()),
            joined: RwSignal::new(vec![RoomName::general()]),
            current: RwSignal::new(RoomName::general()),
            route_error: RwSignal::new(None),
            go_to: RwSignal::new(None),
            pending: RwSignal::new(Vec::new()),
            draft: RwSignal::new(String::new()),
            notice: RwSignal::new(None),
            max_text_chars: RwSignal::new(MAX_TEXT_CHARS),
            auth: RwSignal::new(None),
            me: RwSignal::new(None),
            dev_identity: RwSignal::new(None),
            signing_in: RwSignal::new(false),
            sign_in: RwSignal::new(None),
            rooms: StoredValue::new_local(BTreeMap::from([(RoomName::general(), general)])),
            owner: StoredValue::new_local(owner),
        }
    }

    /// The state of `room` (made on first use). Not reactive by itself.
    pub fn room(&self, room: &RoomName) -> RoomState {
        if let Some(state) = self.rooms.with_value(|rooms| rooms.get(room).copied()) {
            return state;
        }
        let state = self.owner.with_value(|owner| owner.with(RoomState::new));
        self.rooms.update_value(|rooms| {
            rooms.insert(room.clone(), state);
        });
        state
    }

    /// The state of the room in view (reactive: follows [`ChatState::current`]).
    pub fn in_view(&self) -> RoomState {
        self.current.with(|room| self.room(room))
    }

    /// Whether `room` is the room in view (untracked).
    pub fn is_in_view(&self, room: &RoomName) -> bool {
        self.route_error.with_untracked(Option::is_none)
            && self.current.with_untracked(|current| current == room)
    }

    /// Whether this page is in `room` (untracked).
    pub fn is_joined(&self, room: &RoomName) -> bool {
        self.joined.with_untracked(|joined| joined.contains(room))
    }

    /// Whether `id` is this page's (tracked).
    pub fn is_me(&self, id: &ConnId) -> bool {
        self.my_id.with(|me| me.as_ref() == Some(id))
    }

    /// Whether a moderation's `user` (a user's id, or a session's) is this page (tracked).
    pub fn is_subject(&self, subject: &str) -> bool {
        self.my_id
            .with(|me| me.as_ref().is_some_and(|id| id.as_str() == subject))
            || self
                .me
                .with(|me| me.as_ref().is_some_and(|u| u.id.as_str() == subject))
    }

    /// Whether `line` is this page's user's own: sent by this session, or by the same
    /// signed-in user from elsewhere (tracked).
    pub fn owns(&self, line: &ChatLine) -> bool {
        self.is_me(&line.from)
            || self.me.with(|me| {
                me.as_ref()
                    .is_some_and(|u| line.user.as_ref() == Some(&u.id))
            })
    }

    /// Whether the signed-in user moderates every room (token role `moderator` or
    /// `admin`): they may remove anyone's line (tracked).
    pub fn moderates(&self) -> bool {
        self.me.with(|me| {
            me.as_ref()
                .is_some_and(|u| u.roles.iter().any(|r| r == "moderator" || r == "admin"))
        })
    }

    /// The status bar's words in the language of `t` (tracked): "disconnected ·
    /// reconnecting in 3 s", "connected", …
    pub fn status_text(&self, t: &Texts) -> String {
        match (self.status.get(), self.retry_in.get()) {
            (ConnState::Reconnecting, Some(secs)) if secs > 0 => (t.reconnecting_in)(secs),
            (ConnState::Reconnecting, _) => t.reconnecting_soon.to_owned(),
            (ConnState::Connecting, _) => t.connecting.to_owned(),
            (ConnState::Connected, _) => t.connected.to_owned(),
            (ConnState::Disconnected, _) => t.disconnected.to_owned(),
        }
    }
}
