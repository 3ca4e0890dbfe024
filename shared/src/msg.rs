//! The messages: [`ClientMsg`] (client → server) and [`ServerMsg`] (server → client).
//!
//! The JSON shape is fixed by the literal-JSON tests at the bottom of this file; change a
//! name here and they fail, which is the point. Protocol v2 added rooms: every frame that
//! concerns a room carries `room`, and a client frame without one means `general`, so every
//! v1 frame still works as it did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    DisplayName, ErrorCode, RoomName,
    products::{NewProduct, ProductId},
    server,
};

/// `TYPES` and `type_name` of a message enum, from one list of its variants and their wire
/// names (the `type` serde writes, `rename_all = "snake_case"`): each name is written once,
/// the `match` is exhaustive (a new variant without a name does not compile), and the
/// literal-JSON tests below check that each name is the one on the wire.
macro_rules! wire_names {
    ($enum:ident: $($variant:ident => $name:literal,)*) => {
        impl $enum {
            /// Every `type` of this enum, as on the wire.
            pub const TYPES: &'static [&'static str] = &[$($name),*];

            /// This message's `type` on the wire.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $($enum::$variant { .. } => $name,)*
                }
            }
        }
    };
}

/// A connection's public id, chosen by the server: URL-safe, at least 96 random bits.
/// A client can never choose it, nor put another one in the `from` of a line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(String);

impl ConnId {
    /// Wraps an id. The server makes ids; clients only receive them.
    pub fn new(id: impl Into<String>) -> Self {
        ConnId(id.into())
    }

    /// The id as text, as it appears on the wire and on the page.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A signed-in user's id: the `sub` of their token, 1–64 characters. A user may hold many
/// sessions (tabs, devices); presence, typing and permissions are per user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Wraps an id (the server checks the token's `sub` before it makes one).
    pub fn new(id: impl Into<String>) -> Self {
        UserId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a signed-in connection is, as its `welcome` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The token's `sub`.
    pub id: UserId,
    /// The token's `name`, if it had one (it is also the session's display name).
    #[serde(default)]
    pub name: Option<DisplayName>,
    /// The token's roles (`moderator`, `admin`): what the page may offer this user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// A line's position in its room's history: starts at 1, rises by one per line, no gaps.
/// Every member of the room sees the room's lines in this order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One line of a room's history, as kept by the server and sent to every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// The room it was sent to (absent in v1 frames: `general`).
    #[serde(default)]
    pub room: RoomName,
    /// Its position in the room's history.
    pub seq: Seq,
    /// Who sent it: the sender's connection id, set by the server.
    pub from: ConnId,
    /// The sender's display name when it was sent (none for lines from before names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
    /// The signed-in user who sent it (their token's `sub`); none for a guest's line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// What was sent, as typed (rendered as text, never as markup).
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The `nonce` its sender gave the `send`, if any: lets the sender recognise its own line
    /// (e.g. in a replay) and never show it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The line's text was changed by a later entry (`message_edited`): `text` is the newest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
    /// The line was removed by a later entry (`message_deleted`): its text is gone (`""`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// Set when this entry of the room's log is not a line but a change to an earlier one
    /// (live, it is sent as `message_edited` or `message_deleted`; in a page of history,
    /// `joined` or `older`, it comes as a line with this field). Absent: a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// What a log entry that is not a line does: to an earlier line (its `target`), an edit or
/// a deletion; to the room's people or pace (see [`server::Moderation`]), a kick, ban,
/// unban, mute, unmute (of `user`) or slow mode (of `secs`). On the wire
/// `{"kind": "edit", "target": 4}`, `{"kind": "delete", "target": 4, "by": "ana"}` or
/// `{"kind": "ban", "user": "bob", "by": "ana", "until": 1765000000000}`. A plain struct
/// rather than a tagged enum: serde's tagged decoder buffers every field first, which costs
/// the page's wasm (docs/BENCHMARKS.md, "The page's weight").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What it does.
    pub kind: ChangeKind,
    /// The `seq` of the line it changes (0, and absent, for the people and pace kinds).
    #[serde(default, skip_serializing_if = "Seq::is_zero")]
    pub target: Seq,
    /// Who did it: a user's id, a guest's connection id, or `api` (the server API); set
    /// for every kind but an edit (always its author's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// For the people kinds, whom it concerns: a signed-in user's id, or a guest's session
    /// id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For a ban or a mute, its end in ms since the Unix epoch (absent: until lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// For a slow mode, the seconds between one person's lines (0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u32>,
}

/// What a [`Change`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The target's text is now the entry's `text`.
    Edit,
    /// The target is removed: its text is gone for everyone.
    Delete,
    /// `user` is put out of the room now; they may join again.
    Kick,
    /// `user` is put out of the room and may not join again until `until` (or for good).
    Ban,
    /// `user`'s ban is lifted.
    Unban,
    /// `user` may read the room but not send to it until `until` (or until unmuted).
    Mute,
    /// `user`'s mute is lifted.
    Unmute,
    /// One person's lines must be `secs` apart (0: any pace).
    SlowMode,
}

impl ChangeKind {
    /// The kind as it appears on the wire (and in the audit log's `action`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Edit => "edit",
            ChangeKind::Delete => "delete",
            ChangeKind::Kick => "kick",
            ChangeKind::Ban => "ban",
            ChangeKind::Unban => "unban",
            ChangeKind::Mute => "mute",
            ChangeKind::Unmute => "unmute",
            ChangeKind::SlowMode => "slow_mode",
        }
    }

    /// Whether it changes an earlier line (an edit or a deletion) rather than the room's
    /// people or pace.
    pub fn changes_a_line(self) -> bool {
        matches!(self, ChangeKind::Edit | ChangeKind::Delete)
    }
}

impl Change {
    /// An edit of line `target`.
    pub fn edit(target: Seq) -> Self {
        Change {
            kind: ChangeKind::Edit,
            target,
            by: None,
            user: None,
            until: None,
            secs: None,
        }
    }

    /// The removal of line `target` by `by`.
    pub fn delete(target: Seq, by: String) -> Self {
        Change {
            by: Some(by),
            kind: ChangeKind::Delete,
            ..Change::edit(target)
        }
    }

    /// A moderation of the room's people or pace (see [`server::Moderation`]).
    pub fn moderation(
        kind: ChangeKind,
        user: Option<String>,
        until: Option<u64>,
        secs: Option<u32>,
        by: String,
    ) -> Self {
        Change {
            kind,
            target: Seq(0),
            by: Some(by),
            user,
            until,
            secs,
        }
    }

    /// The line this entry changes (0 for the people and pace kinds).
    pub fn target(&self) -> Seq {
        self.target
    }
}

impl Seq {
    /// Whether this is 0, the `seq` of nothing.
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl ChatLine {
    /// This entry as it is sent live: `message`, `message_edited` or `message_deleted`.
    pub fn into_server_msg(self) -> ServerMsg {
        match self.change {
            None => ServerMsg::Message(self),
            Some(Change {
                kind: ChangeKind::Edit,
                target,
                ..
            }) => ServerMsg::MessageEdited(server::MessageEdited {
                room: self.room,
                seq: self.seq,
                target,
                text: self.text,
                at: self.at,
                from: self.from,
                user: self.user,
                nonce: self.nonce,
            }),
            Some(Change {
                kind: ChangeKind::Delete,
                target,
                by,
                ..
            }) => ServerMsg::MessageDeleted(server::MessageDeleted {
                room: self.room,
                seq: self.seq,
                target,
                by: by.unwrap_or_default(),
                at: self.at,
                from: self.from,
                nonce: self.nonce,
            }),
            Some(Change {
                kind,
                by,
                user,
                until,
                secs,
                ..
            }) => ServerMsg::Moderation(server::Moderation {
                room: self.room,
                seq: self.seq,
                action: kind,
                user,
                until,
                secs,
                by: by.unwrap_or_default(),
                at: self.at,
                from: self.from,
                nonce: self.nonce,
            }),
        }
    }

    /// Applies this entry to the lines shown in its room (oldest first, by `seq`): a line
    /// is added at the end, an edit changes its target's text, a deletion removes the
    /// target's text. An edit never brings back a removed line; an entry whose target is
    /// not shown changes nothing (a page of older lines brings the target as it is now).
    /// A moderation of the room's people or pace is not a line: it shows nothing here.
    pub fn show_in(self, shown: &mut Vec<ChatLine>) {
        let Some(change) = &self.change else {
            shown.push(self);
            return;
        };
        if !change.kind.changes_a_line() {
            return;
        }
        let target = change.target();
        let Ok(at) = shown.binary_search_by_key(&target, |l| l.seq) else {
            return;
        };
        let line = &mut shown[at];
        match change.kind {
            ChangeKind::Edit if !line.removed => {
                line.text = self.text;
                line.edited = true;
            }
            ChangeKind::Edit => {}
            ChangeKind::Delete => {
                line.text.clear();
                line.removed = true;
                line.edited = false;
            }
            _ => {}
        }
    }
}

impl From<server::MessageEdited> for ChatLine {
    fn from(e: server::MessageEdited) -> Self {
        ChatLine {
            room: e.room,
            seq: e.seq,
            from: e.from,
            name: None,
            user: e.user,
            text: e.text,
            at: e.at,
            nonce: e.nonce,
            edited: false,
            removed: false,
            change: Some(Change::edit(e.target)),
        }
    }
}

impl From<server::Moderation> for ChatLine {
    fn from(m: server::Moderation) -> Self {
        ChatLine {
            room: m.room,
            seq: m.seq,
            from: m.from,
            name: None,
            user: None,
            text: String::new(),
            at: m.at,
            nonce: m.nonce,
            edited: false,
            removed: false,
            change: Some(Change::moderation(m.action, m.user, m.until, m.secs, m.by)),
        }
    }
}

impl From<server::MessageDeleted> for ChatLine {
    fn from(d: server::MessageDeleted) -> Self {
        ChatLine {
            room: d.room,
            seq: d.seq,
            from: d.from,
            name: None,
            user: None,
            text: String::new(),
            at: d.at,
            nonce: d.nonce,
            edited: false,
            removed: false,
            change: Some(Change::delete(d.target, d.by)),
        }
    }
}

/// Someone in a room: their id and what they are called.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// Their connection id (for a signed-in user with several tabs, one of them).
    pub id: ConnId,
    /// Their display name.
    pub name: DisplayName,
    /// The signed-in user (listed once however many tabs they have); none for a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
}

/// Someone typing in a room, with their latest text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typist {
    /// The typist's id.
    pub from: ConnId,
    /// The typist's display name.
    pub name: DisplayName,
    /// The signed-in user typing (one text per user per room); none for a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// Their input box as it is now (never empty here).
    pub text: String,
}

/// Numbers the server enforces, sent in the `welcome` so clients obey the server they talk
/// to rather than a hard-coded copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLimits {
    /// The longest `send`/`typing` text, in characters.
    pub max_text_chars: u32,
    /// The most rooms one connection may be in.
    pub max_rooms_per_conn: u32,
    /// `send`s per second per connection, on average.
    pub send_rate: u32,
    /// `send`s a connection may make at once after a pause.
    pub send_burst: u32,
}

/// A frame from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first frame of a v2 connection (`/ws?v=2`): resume a session and rejoin rooms.
    /// The server answers with `welcome`, then one `joined` per room.
    Hello {
        /// The private token from an earlier `welcome`, to keep the same id and name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// The rooms to be in, each with the last `seq` the client holds there (0: none).
        /// Absent: just `general`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rooms: Option<BTreeMap<String, Seq>>,
        /// The display name to use (otherwise the session's, or a generated one). A
        /// signed-in user's name is their token's `name`, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A JSON Web Token signed by the app Charla runs beside: who this client is.
        /// Absent: a guest (refused with `auth_required` under `--auth required`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// A new token for the same user, before the current one expires (the answer to
    /// `token_expiring`); answered by `token_refreshed`, or `bad_token` and a close.
    Refresh {
        /// The new token.
        token: String,
    },
    /// The sender's input box as it is now; `""` clears its live text everywhere.
    Typing {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The whole current text of the input box.
        text: String,
    },
    /// Append a line to a room's history.
    Send {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The line. Must not be blank.
        text: String,
        /// A client-chosen string (at most 64 characters) that identifies this send: the
        /// server acks it once the line is durable, and a `send` repeated with a nonce it
        /// already accepted from the same client is acked again, not appended again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// Changes the text of one of the sender's own lines (same session or same user),
    /// within the server's edit window: appended to the room's log as a `message_edited`.
    Edit {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The line to edit.
        seq: Seq,
        /// Its new text. Must not be blank.
        text: String,
        /// As for `send`: acked once durable, never applied twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// Removes a line: one's own within the edit window, or any line for a moderator.
    /// Appended to the room's log as a `message_deleted`.
    Delete {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The line to remove.
        seq: Seq,
        /// As for `send`: acked once durable, never applied twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A moderator puts `user` (a user's id, or a guest's session id) out of the room now;
    /// they may join again. Appended to the room's log as a `moderation`.
    Kick {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Whom.
        user: String,
        /// As for `send`: acked once durable, never applied twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A moderator puts `user` out of the room and keeps them out, from every tab, device
    /// and server, until `until` (ms since the Unix epoch; absent: for good).
    Ban {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Whom.
        user: String,
        /// The ban's end (absent: for good).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        /// As for `send`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A moderator lifts `user`'s ban.
    Unban {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Whom.
        user: String,
        /// As for `send`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A moderator lets `user` read the room but not send to it (nor edit, nor type),
    /// until `until` (absent: until unmuted).
    Mute {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Whom.
        user: String,
        /// The mute's end (absent: until unmuted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        /// As for `send`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A moderator lifts `user`'s mute.
    Unmute {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Whom.
        user: String,
        /// As for `send`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A moderator sets the room's slow mode: at least `secs` seconds (at most 3,600)
    /// between one person's lines; 0 turns it off.
    SlowMode {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The interval.
        secs: u32,
        /// As for `send`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A signed-in user has read the room up to `seq` (its entries up to it, included): the
    /// server keeps the highest such `seq` per user and room (a lower one changes nothing),
    /// across restarts, and tells every connection of the user, on every server, with
    /// `read`. A guest gets an `error` with `forbidden`.
    Read {
        /// The room (one this connection is in).
        room: String,
        /// The newest entry read (past the room's last: its last).
        seq: Seq,
    },
    /// Asks for a room's lines before `before`, newest last (at most `limit`, capped).
    LoadOlder {
        /// The room (absent: `general`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Lines with a `seq` below this one.
        before: Seq,
        /// How many at most.
        limit: u32,
    },
    /// An application-level ping (browsers cannot see WebSocket pings); answered by `pong`.
    Ping,
    /// Enter a room (created if it does not exist); answered by `joined`.
    Join {
        /// The room.
        room: String,
    },
    /// Leave a room; answered by `left`.
    Leave {
        /// The room.
        room: String,
    },
    /// Change this session's display name; answered by `name_set`.
    SetName {
        /// The new name (1–32 characters once trimmed, no control characters).
        name: String,
    },
    /// Asks for the member list of a room (pushed only for small rooms), a page at a time:
    /// answered by `members`, whose `has_more` says to ask again from a later `offset`.
    Members {
        /// The room.
        room: String,
        /// How many members (in the list's order: by name, then id) to skip (absent: 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u32>,
    },
    /// The echo exercise: answered by an `echo` with the same text.
    Echo {
        /// Any text (as long as a line may be).
        text: String,
    },
    /// A named event (the course's `tic`, once a second): the server logs it with the
    /// sender's id and answers nothing.
    Tic {
        /// Which tic this is (the page shows `TIC-n`).
        n: u64,
    },
    /// Asks for one binary frame of `size` bytes (1–65,536) with the known pattern
    /// ([`crate::exercises::binary_pattern`]); answered by `binary`, then the frame.
    Binary {
        /// How many bytes.
        size: u32,
    },
    /// Starts a random ticker (or changes its interval): a `random` every `every_ms`
    /// milliseconds (at least 100) until `stop_ticker` or the end of the connection. At most
    /// 5 per connection. Answered by `ticker`.
    StartTicker {
        /// The client's number for this ticker.
        ticker: u32,
        /// The interval, in milliseconds (100 to 3,600,000).
        every_ms: u32,
    },
    /// Stops a random ticker; answered by `ticker_stopped`.
    StopTicker {
        /// The ticker.
        ticker: u32,
    },
    /// Asks for the product list (`products`) and then every change to it
    /// (`product_added`, `product_removed`), until `unwatch_products`.
    WatchProducts,
    /// Stops the product changes.
    UnwatchProducts,
    /// Asks for the next page of the product list (after a `products` with `has_more`):
    /// answered by a `products` with the products whose id is above `after`.
    LoadProducts {
        /// The last id of the page before.
        after: ProductId,
    },
    /// Creates a product: every watcher gets `product_added` (the sender too, watching or
    /// not); a refusal comes back as `product_refused`.
    AddProduct {
        /// The product.
        product: NewProduct,
    },
    /// Deletes a product: every watcher gets `product_removed`; an unknown id gets an
    /// `error` with `not_found`.
    DeleteProduct {
        /// The product's id.
        id: ProductId,
    },
}

wire_names! {
    ClientMsg:
    Hello => "hello",
    Refresh => "refresh",
    Typing => "typing",
    Send => "send",
    Edit => "edit",
    Delete => "delete",
    Kick => "kick",
    Ban => "ban",
    Unban => "unban",
    Mute => "mute",
    Unmute => "unmute",
    SlowMode => "slow_mode",
    Read => "read",
    LoadOlder => "load_older",
    Ping => "ping",
    Join => "join",
    Leave => "leave",
    SetName => "set_name",
    Members => "members",
    Echo => "echo",
    Tic => "tic",
    Binary => "binary",
    StartTicker => "start_ticker",
    StopTicker => "stop_ticker",
    WatchProducts => "watch_products",
    UnwatchProducts => "unwatch_products",
    LoadProducts => "load_products",
    AddProduct => "add_product",
    DeleteProduct => "delete_product",
}

/// A frame from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Always the first frame of a connection.
    Welcome(server::Welcome),
    /// The reply to `join` (and to each room of a `hello`): the room as it is now.
    Joined(server::Joined),
    /// The reply to `leave`: this connection is no longer in the room.
    Left(server::Left),
    /// Someone's live text in a room; replaces that typist's previous text. Sent to every
    /// member, typist included.
    Typing(server::Typing),
    /// A new history line (the line's fields sit beside `type`).
    Message(ChatLine),
    /// An entry of the room's log that changes an earlier line's text (`target`).
    MessageEdited(server::MessageEdited),
    /// An entry of the room's log that removes an earlier line (`target`).
    MessageDeleted(server::MessageDeleted),
    /// An entry of a room's log that moderates its people or its pace.
    Moderation(server::Moderation),
    /// The sender's line with this `nonce` is durable, at this `seq`. Sent only to the
    /// sender's connections (every tab of its session) in the room, before the `message`.
    Ack(server::Ack),
    /// The signed-in user's read position in a room moved (a `read` from any of their
    /// connections, on any server): every one of their connections hears it.
    Read(server::ReadMark),
    /// The reply to `load_older`.
    Older(server::Older),
    /// The reply to `ping`.
    Pong,
    /// Who is in a room changed (coalesced: a few times a second at most).
    Presence(server::Presence),
    /// The reply to `members`: a page of who is in the room, by name, then id.
    Members(server::Members),
    /// The reply to `set_name`: the session's name now.
    NameSet(server::NameSet),
    /// The last frame was refused. The connection stays open unless a close frame follows.
    Error(server::Error),
    /// The connection's token expires in `in_ms` milliseconds: answer with `refresh` and a
    /// new token, or the connection is closed with `token_expired` (4001) when it does.
    TokenExpiring(server::TokenExpiring),
    /// The reply to `refresh`: the new token is in force.
    TokenRefreshed(server::TokenRefreshed),
    /// The reply to `echo`: the same text.
    Echo(server::Echo),
    /// The reply to `binary`: the next frame is binary, this long, with this checksum
    /// ([`crate::exercises::checksum`]).
    Binary(server::Binary),
    /// The reply to `start_ticker`: the ticker runs at this interval.
    Ticker(server::Ticker),
    /// The reply to `stop_ticker`: the ticker sends nothing more.
    TickerStopped(server::TickerStopped),
    /// A random number from a ticker.
    Random(server::Random),
    /// The reply to `watch_products` (the first page) and `load_products` (the next
    /// ones): products by id, as many as fit one frame.
    Products(server::Products),
    /// A product was created (over HTTP or the WebSocket).
    ProductAdded(server::ProductAdded),
    /// A product was deleted.
    ProductRemoved(server::ProductRemoved),
    /// The reply to an `add_product` that was refused: every field's problem.
    ProductRefused(server::ProductRefused),
}

wire_names! {
    ServerMsg:
    Welcome => "welcome",
    Joined => "joined",
    Left => "left",
    Typing => "typing",
    Message => "message",
    MessageEdited => "message_edited",
    MessageDeleted => "message_deleted",
    Moderation => "moderation",
    Ack => "ack",
    Read => "read",
    Older => "older",
    Pong => "pong",
    Presence => "presence",
    Members => "members",
    NameSet => "name_set",
    Error => "error",
    TokenExpiring => "token_expiring",
    TokenRefreshed => "token_refreshed",
    Echo => "echo",
    Binary => "binary",
    Ticker => "ticker",
    TickerStopped => "ticker_stopped",
    Random => "random",
    Products => "products",
    ProductAdded => "product_added",
    ProductRemoved => "product_removed",
    ProductRefused => "product_refused",
}

impl ServerMsg {
    /// An `error` about no room and no nonce.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMsg::Error(crate::server::Error {
            code,
            message: message.into(),
            room: None,
            nonce: None,
        })
    }
}

#[cfg(test)]
mod tests {
    //! One literal-JSON test per variant, both ways: these freeze the wire format.
    use super::*;
    use crate::products::Product;
    use crate::{decode_client, decode_server, encode};

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("a valid room name")
    }

    fn name(name: &str) -> DisplayName {
        DisplayName::parse(name).expect("a valid display name")
    }

    fn line(seq: u64, from: &str, text: &str, at: u64) -> ChatLine {
        ChatLine {
            room: RoomName::general(),
            seq: Seq(seq),
            from: ConnId::new(from),
            name: None,
            user: None,
            text: text.into(),
            at,
            nonce: None,
            edited: false,
            removed: false,
            change: None,
        }
    }

    /// Asserts that `msg` encodes to exactly `json` and that `json` decodes to `msg`.
    fn client_wire(msg: ClientMsg, json: &str) {
        assert_eq!(encode(&msg), json);
        assert_eq!(decode_client(json).expect("decodes"), msg);
        assert!(ClientMsg::TYPES.contains(&msg.type_name()));
        assert_eq!(
            wire_type(json),
            msg.type_name(),
            "the wire name is the one serde writes"
        );
    }

    fn server_wire(msg: ServerMsg, json: &str) {
        assert_eq!(encode(&msg), json);
        assert_eq!(decode_server(json).expect("decodes"), msg);
        assert!(ServerMsg::TYPES.contains(&msg.type_name()));
        assert_eq!(
            wire_type(json),
            msg.type_name(),
            "the wire name is the one serde writes"
        );
    }

    /// The `type` of a frame's JSON.
    fn wire_type(json: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
        value["type"].as_str().expect("a type").to_owned()
    }

    #[test]
    fn client_hello_wire() {
        client_wire(
            ClientMsg::Hello {
                resume: Some("r3sum3-t0k3n".into()),
                rooms: Some(BTreeMap::from([
                    ("dev".into(), Seq(7)),
                    ("general".into(), Seq(41)),
                ])),
                name: Some("Ana".into()),
                token: None,
            },
            r#"{"type":"hello","resume":"r3sum3-t0k3n","rooms":{"dev":7,"general":41},"name":"Ana"}"#,
        );
        client_wire(
            ClientMsg::Hello {
                resume: None,
                rooms: None,
                name: None,
                token: None,
            },
            r#"{"type":"hello"}"#,
        );
        client_wire(
            ClientMsg::Hello {
                resume: None,
                rooms: None,
                name: None,
                token: Some("eyJ.a.b".into()),
            },
            r#"{"type":"hello","token":"eyJ.a.b"}"#,
        );
    }

    #[test]
    fn client_refresh_wire() {
        client_wire(
            ClientMsg::Refresh {
                token: "eyJ.c.d".into(),
            },
            r#"{"type":"refresh","token":"eyJ.c.d"}"#,
        );
    }

    #[test]
    fn server_token_expiring_and_refreshed_wire() {
        server_wire(
            ServerMsg::TokenExpiring(crate::server::TokenExpiring { in_ms: 60_000 }),
            r#"{"type":"token_expiring","in_ms":60000}"#,
        );
        server_wire(
            ServerMsg::TokenRefreshed(crate::server::TokenRefreshed { exp: 1_763_773_200 }),
            r#"{"type":"token_refreshed","exp":1763773200}"#,
        );
    }

    #[test]
    fn signed_in_users_on_the_wire() {
        let mut l = line(5, "q8Zr2vLk0aYbXw1c", "hola", 1763769600000);
        l.name = Some(name("Alice"));
        l.user = Some(UserId::new("alice"));
        server_wire(
            ServerMsg::Message(l),
            r#"{"type":"message","room":"general","seq":5,"from":"q8Zr2vLk0aYbXw1c","name":"Alice","user":"alice","text":"hola","at":1763769600000}"#,
        );
        server_wire(
            ServerMsg::Presence(crate::server::Presence {
                room: room("team-x"),
                online: 1,
                members: Some(vec![Member {
                    id: ConnId::new("q8Zr2vLk0aYbXw1c"),
                    name: name("Alice"),
                    user: Some(UserId::new("alice")),
                }]),
            }),
            r#"{"type":"presence","room":"team-x","online":1,"members":[{"id":"q8Zr2vLk0aYbXw1c","name":"Alice","user":"alice"}]}"#,
        );
        server_wire(
            ServerMsg::Typing(crate::server::Typing {
                room: room("team-x"),
                from: ConnId::new("q8Zr2vLk0aYbXw1c"),
                name: Some(name("Alice")),
                user: Some(UserId::new("alice")),
                text: "ho".into(),
            }),
            r#"{"type":"typing","room":"team-x","from":"q8Zr2vLk0aYbXw1c","name":"Alice","user":"alice","text":"ho"}"#,
        );
        server_wire(
            ServerMsg::Joined(crate::server::Joined {
                room: room("team-x"),
                lines: vec![],
                has_more: false,
                resumed: false,
                online: 1,
                members: None,
                typing: vec![],
                typing_more: true,
                private: true,
                ..Default::default()
            }),
            r#"{"type":"joined","room":"team-x","lines":[],"has_more":false,"resumed":false,"online":1,"typing":[],"typing_more":true,"private":true}"#,
        );
    }

    #[test]
    fn client_typing_wire() {
        client_wire(
            ClientMsg::Typing {
                room: None,
                text: "ho".into(),
            },
            r#"{"type":"typing","text":"ho"}"#,
        );
        client_wire(
            ClientMsg::Typing {
                room: Some("dev".into()),
                text: "ho".into(),
            },
            r#"{"type":"typing","room":"dev","text":"ho"}"#,
        );
    }

    #[test]
    fn client_send_wire() {
        client_wire(
            ClientMsg::Send {
                room: None,
                text: "hola".into(),
                nonce: None,
            },
            r#"{"type":"send","text":"hola"}"#,
        );
        client_wire(
            ClientMsg::Send {
                room: Some("dev".into()),
                text: "hola".into(),
                nonce: Some("n-1".into()),
            },
            r#"{"type":"send","room":"dev","text":"hola","nonce":"n-1"}"#,
        );
    }

    #[test]
    fn edits_and_deletions_on_the_wire() {
        client_wire(
            ClientMsg::Edit {
                room: Some("dev".into()),
                seq: Seq(4),
                text: "hola!".into(),
                nonce: None,
            },
            r#"{"type":"edit","room":"dev","seq":4,"text":"hola!"}"#,
        );
        client_wire(
            ClientMsg::Delete {
                room: Some("dev".into()),
                seq: Seq(4),
                nonce: Some("n-2".into()),
            },
            r#"{"type":"delete","room":"dev","seq":4,"nonce":"n-2"}"#,
        );
        server_wire(
            ServerMsg::MessageEdited(server::MessageEdited {
                room: room("dev"),
                seq: Seq(6),
                target: Seq(4),
                text: "hola!".into(),
                at: 9,
                from: ConnId::new("a1"),
                user: None,
                nonce: None,
            }),
            r#"{"type":"message_edited","room":"dev","seq":6,"target":4,"text":"hola!","at":9,"from":"a1"}"#,
        );
        server_wire(
            ServerMsg::MessageDeleted(server::MessageDeleted {
                room: room("dev"),
                seq: Seq(7),
                target: Seq(4),
                by: "ana".into(),
                at: 9,
                from: ConnId::new("a1"),
                nonce: None,
            }),
            r#"{"type":"message_deleted","room":"dev","seq":7,"target":4,"by":"ana","at":9,"from":"a1"}"#,
        );
        // In a page of history, an entry is a line with its `change`; a changed line says so.
        let mut edit = line(6, "a1", "hola!", 9);
        edit.change = Some(Change::edit(Seq(4)));
        assert_eq!(
            encode(&edit),
            r#"{"room":"general","seq":6,"from":"a1","text":"hola!","at":9,"change":{"kind":"edit","target":4}}"#
        );
        let mut removed = line(4, "a1", "", 1);
        removed.removed = true;
        assert_eq!(
            encode(&removed),
            r#"{"room":"general","seq":4,"from":"a1","text":"","at":1,"removed":true}"#
        );
        // Live and in a page, an entry is the same thing.
        assert_eq!(
            ChatLine::from(match edit.clone().into_server_msg() {
                ServerMsg::MessageEdited(e) => e,
                other => panic!("expected message_edited, got {other:?}"),
            }),
            edit
        );
    }

    #[test]
    fn entries_change_the_lines_shown_and_never_bring_a_removed_one_back() {
        let mut shown = vec![line(1, "a", "uno", 1), line(2, "b", "dos", 1)];
        let entry = |seq, change| ChatLine {
            change: Some(change),
            ..line(seq, "a", "", 2)
        };
        ChatLine {
            text: "UNO".into(),
            ..entry(3, Change::edit(Seq(1)))
        }
        .show_in(&mut shown);
        entry(4, Change::delete(Seq(2), "mod".into())).show_in(&mut shown);
        ChatLine {
            text: "back?".into(),
            ..entry(5, Change::edit(Seq(2)))
        }
        .show_in(&mut shown);
        // An entry for a line not shown changes nothing.
        entry(6, Change::edit(Seq(99))).show_in(&mut shown);
        line(7, "a", "siete", 3).show_in(&mut shown);
        let view: Vec<(u64, &str, bool, bool)> = shown
            .iter()
            .map(|l| (l.seq.0, l.text.as_str(), l.edited, l.removed))
            .collect();
        assert_eq!(
            view,
            [
                (1, "UNO", true, false),
                (2, "", false, true),
                (7, "siete", false, false)
            ]
        );
    }

    #[test]
    fn client_load_older_wire() {
        client_wire(
            ClientMsg::LoadOlder {
                room: None,
                before: Seq(501),
                limit: 100,
            },
            r#"{"type":"load_older","before":501,"limit":100}"#,
        );
        client_wire(
            ClientMsg::LoadOlder {
                room: Some("dev".into()),
                before: Seq(501),
                limit: 100,
            },
            r#"{"type":"load_older","room":"dev","before":501,"limit":100}"#,
        );
    }

    #[test]
    fn client_ping_wire() {
        client_wire(ClientMsg::Ping, r#"{"type":"ping"}"#);
    }

    #[test]
    fn client_join_leave_set_name_members_wire() {
        client_wire(
            ClientMsg::Join { room: "dev".into() },
            r#"{"type":"join","room":"dev"}"#,
        );
        client_wire(
            ClientMsg::Leave { room: "dev".into() },
            r#"{"type":"leave","room":"dev"}"#,
        );
        client_wire(
            ClientMsg::SetName { name: "Ana".into() },
            r#"{"type":"set_name","name":"Ana"}"#,
        );
        client_wire(
            ClientMsg::Members {
                room: "dev".into(),
                offset: None,
            },
            r#"{"type":"members","room":"dev"}"#,
        );
        client_wire(
            ClientMsg::Members {
                room: "dev".into(),
                offset: Some(500),
            },
            r#"{"type":"members","room":"dev","offset":500}"#,
        );
    }

    #[test]
    fn server_welcome_wire() {
        server_wire(
            ServerMsg::Welcome(crate::server::Welcome {
                id: ConnId::new("q8Zr2vLk0aYbXw1c"),
                history: vec![line(1, "AAAAAAAAAAAAAAAA", "hola", 1763769600000)],
                online: 2,
                protocol: 2,
                resume: "r3sum3-t0k3n".into(),
                has_more: false,
                resumed: false,
                name: Some(name("guest-q8Zr")),
                limits: Some(ServerLimits {
                    max_text_chars: 2000,
                    max_rooms_per_conn: 20,
                    send_rate: 10,
                    send_burst: 20,
                }),
                greeting: Some("Hola cliente WS!".into()),
                user: None,
            }),
            r#"{"type":"welcome","id":"q8Zr2vLk0aYbXw1c","history":[{"room":"general","seq":1,"from":"AAAAAAAAAAAAAAAA","text":"hola","at":1763769600000}],"online":2,"protocol":2,"resume":"r3sum3-t0k3n","has_more":false,"resumed":false,"name":"guest-q8Zr","limits":{"max_text_chars":2000,"max_rooms_per_conn":20,"send_rate":10,"send_burst":20},"greeting":"Hola cliente WS!","user":null}"#,
        );
        server_wire(
            ServerMsg::Welcome(crate::server::Welcome {
                id: ConnId::new("q8Zr2vLk0aYbXw1c"),
                history: vec![],
                online: 0,
                protocol: 2,
                resume: "r3sum3-t0k3n".into(),
                has_more: false,
                resumed: false,
                name: Some(name("Alice")),
                limits: None,
                greeting: None,
                user: Some(UserInfo {
                    id: UserId::new("alice"),
                    name: Some(name("Alice")),
                    roles: Vec::new(),
                }),
            }),
            r#"{"type":"welcome","id":"q8Zr2vLk0aYbXw1c","history":[],"online":0,"protocol":2,"resume":"r3sum3-t0k3n","has_more":false,"resumed":false,"name":"Alice","user":{"id":"alice","name":"Alice"}}"#,
        );
    }

    #[test]
    fn v1_frames_still_decode_with_their_room_general() {
        // Fields added after the v1 core are optional: a v1 server's frames still decode.
        let msg = decode_server(
            r#"{"type":"welcome","id":"q8Zr2vLk0aYbXw1c","history":[{"seq":1,"from":"AAAAAAAAAAAAAAAA","text":"hola","at":1763769600000}],"online":1,"protocol":1}"#,
        );
        let Ok(ServerMsg::Welcome(crate::server::Welcome {
            history,
            resumed: false,
            has_more: false,
            name: None,
            ..
        })) = msg
        else {
            panic!("a v1 welcome decodes: {msg:?}");
        };
        assert_eq!(
            history,
            vec![line(1, "AAAAAAAAAAAAAAAA", "hola", 1763769600000)]
        );
        assert_eq!(
            decode_server(r#"{"type":"presence","online":4}"#),
            Ok(ServerMsg::Presence(crate::server::Presence {
                room: RoomName::general(),
                online: 4,
                members: None
            }))
        );
        assert_eq!(
            decode_server(r#"{"type":"ack","nonce":"n-1","seq":3}"#),
            Ok(ServerMsg::Ack(crate::server::Ack {
                room: RoomName::general(),
                nonce: "n-1".into(),
                seq: Seq(3)
            }))
        );
    }

    #[test]
    fn server_joined_and_left_wire() {
        let mut l = line(7, "AAAAAAAAAAAAAAAA", "hola", 1763769600000);
        l.room = room("dev");
        l.name = Some(name("Ana"));
        server_wire(
            ServerMsg::Joined(crate::server::Joined {
                room: room("dev"),
                lines: vec![l],
                has_more: true,
                resumed: false,
                online: 2,
                members: Some(vec![Member {
                    id: ConnId::new("AAAAAAAAAAAAAAAA"),
                    name: name("Ana"),
                    user: None,
                }]),
                typing: vec![Typist {
                    from: ConnId::new("AAAAAAAAAAAAAAAA"),
                    name: name("Ana"),
                    user: None,
                    text: "ho".into(),
                }],
                typing_more: false,
                private: false,
                ..Default::default()
            }),
            r#"{"type":"joined","room":"dev","lines":[{"room":"dev","seq":7,"from":"AAAAAAAAAAAAAAAA","name":"Ana","text":"hola","at":1763769600000}],"has_more":true,"resumed":false,"online":2,"members":[{"id":"AAAAAAAAAAAAAAAA","name":"Ana"}],"typing":[{"from":"AAAAAAAAAAAAAAAA","name":"Ana","text":"ho"}]}"#,
        );
        server_wire(
            ServerMsg::Left(crate::server::Left::reply(room("dev"))),
            r#"{"type":"left","room":"dev"}"#,
        );
    }

    #[test]
    fn server_ack_wire() {
        server_wire(
            ServerMsg::Ack(crate::server::Ack {
                room: room("dev"),
                nonce: "n-1".into(),
                seq: Seq(3),
            }),
            r#"{"type":"ack","room":"dev","nonce":"n-1","seq":3}"#,
        );
    }

    #[test]
    fn server_older_wire() {
        server_wire(
            ServerMsg::Older(crate::server::Older {
                room: RoomName::general(),
                lines: vec![line(1, "AAAAAAAAAAAAAAAA", "hola", 1763769600000)],
                has_more: false,
            }),
            r#"{"type":"older","room":"general","lines":[{"room":"general","seq":1,"from":"AAAAAAAAAAAAAAAA","text":"hola","at":1763769600000}],"has_more":false}"#,
        );
    }

    #[test]
    fn server_pong_wire() {
        server_wire(ServerMsg::Pong, r#"{"type":"pong"}"#);
    }

    #[test]
    fn server_typing_wire() {
        server_wire(
            ServerMsg::Typing(crate::server::Typing {
                room: room("dev"),
                from: ConnId::new("q8Zr2vLk0aYbXw1c"),
                name: Some(name("Ana")),
                user: None,
                text: "hol".into(),
            }),
            r#"{"type":"typing","room":"dev","from":"q8Zr2vLk0aYbXw1c","name":"Ana","text":"hol"}"#,
        );
    }

    #[test]
    fn server_message_wire() {
        server_wire(
            ServerMsg::Message(line(3, "q8Zr2vLk0aYbXw1c", "hola", 1763769600000)),
            r#"{"type":"message","room":"general","seq":3,"from":"q8Zr2vLk0aYbXw1c","text":"hola","at":1763769600000}"#,
        );
        let mut with_nonce = line(4, "q8Zr2vLk0aYbXw1c", "adiós", 1763769600001);
        with_nonce.nonce = Some("n-2".into());
        with_nonce.name = Some(name("Ana"));
        server_wire(
            ServerMsg::Message(with_nonce),
            r#"{"type":"message","room":"general","seq":4,"from":"q8Zr2vLk0aYbXw1c","name":"Ana","text":"adiós","at":1763769600001,"nonce":"n-2"}"#,
        );
    }

    #[test]
    fn server_presence_and_members_wire() {
        server_wire(
            ServerMsg::Presence(crate::server::Presence {
                room: room("dev"),
                online: 1,
                members: Some(vec![Member {
                    id: ConnId::new("q8Zr2vLk0aYbXw1c"),
                    name: name("Ana"),
                    user: None,
                }]),
            }),
            r#"{"type":"presence","room":"dev","online":1,"members":[{"id":"q8Zr2vLk0aYbXw1c","name":"Ana"}]}"#,
        );
        server_wire(
            ServerMsg::Presence(crate::server::Presence {
                room: room("big"),
                online: 4000,
                members: None,
            }),
            r#"{"type":"presence","room":"big","online":4000}"#,
        );
        server_wire(
            ServerMsg::Members(crate::server::Members {
                room: room("big"),
                members: vec![],
                offset: None,
                has_more: false,
            }),
            r#"{"type":"members","room":"big","members":[]}"#,
        );
        server_wire(
            ServerMsg::Members(crate::server::Members {
                room: room("big"),
                members: vec![],
                offset: Some(500),
                has_more: true,
            }),
            r#"{"type":"members","room":"big","members":[],"offset":500,"has_more":true}"#,
        );
    }

    #[test]
    fn server_name_set_wire() {
        server_wire(
            ServerMsg::NameSet(crate::server::NameSet { name: name("Ana") }),
            r#"{"type":"name_set","name":"Ana"}"#,
        );
    }

    #[test]
    fn server_error_wire() {
        server_wire(
            ServerMsg::error(ErrorCode::Empty, "a line cannot be blank"),
            r#"{"type":"error","code":"empty","message":"a line cannot be blank"}"#,
        );
        server_wire(
            ServerMsg::Error(crate::server::Error {
                code: ErrorCode::NotJoined,
                message: "join the room first".into(),
                room: Some(room("dev")),
                nonce: Some("n-9".into()),
            }),
            r#"{"type":"error","code":"not_joined","message":"join the room first","room":"dev","nonce":"n-9"}"#,
        );
    }

    fn sample_product() -> Product {
        Product {
            id: 7,
            title: "Mate".into(),
            description: "Calabaza".into(),
            code: "MATE-01".into(),
            price: crate::Price(12.5),
            stock: 3,
        }
    }

    #[test]
    fn client_exercise_messages_wire() {
        client_wire(
            ClientMsg::Echo {
                text: "hola".into(),
            },
            r#"{"type":"echo","text":"hola"}"#,
        );
        client_wire(ClientMsg::Tic { n: 3 }, r#"{"type":"tic","n":3}"#);
        client_wire(
            ClientMsg::Binary { size: 65_536 },
            r#"{"type":"binary","size":65536}"#,
        );
        client_wire(
            ClientMsg::StartTicker {
                ticker: 1,
                every_ms: 500,
            },
            r#"{"type":"start_ticker","ticker":1,"every_ms":500}"#,
        );
        client_wire(
            ClientMsg::StopTicker { ticker: 1 },
            r#"{"type":"stop_ticker","ticker":1}"#,
        );
    }

    #[test]
    fn client_product_messages_wire() {
        client_wire(ClientMsg::WatchProducts, r#"{"type":"watch_products"}"#);
        client_wire(ClientMsg::UnwatchProducts, r#"{"type":"unwatch_products"}"#);
        client_wire(
            ClientMsg::LoadProducts { after: 6 },
            r#"{"type":"load_products","after":6}"#,
        );
        client_wire(
            ClientMsg::AddProduct {
                product: NewProduct {
                    title: "Mate".into(),
                    description: "Calabaza".into(),
                    code: "MATE-01".into(),
                    price: crate::Price(12.5),
                    stock: 3,
                },
            },
            r#"{"type":"add_product","product":{"title":"Mate","description":"Calabaza","code":"MATE-01","price":12.5,"stock":3}}"#,
        );
        client_wire(
            ClientMsg::DeleteProduct { id: 7 },
            r#"{"type":"delete_product","id":7}"#,
        );
    }

    #[test]
    fn server_exercise_messages_wire() {
        server_wire(
            ServerMsg::Echo(crate::server::Echo {
                text: "hola".into(),
            }),
            r#"{"type":"echo","text":"hola"}"#,
        );
        server_wire(
            ServerMsg::Binary(crate::server::Binary {
                size: 256,
                checksum: 3_735_928_559,
            }),
            r#"{"type":"binary","size":256,"checksum":3735928559}"#,
        );
        server_wire(
            ServerMsg::Ticker(crate::server::Ticker {
                ticker: 1,
                every_ms: 500,
            }),
            r#"{"type":"ticker","ticker":1,"every_ms":500}"#,
        );
        server_wire(
            ServerMsg::TickerStopped(crate::server::TickerStopped { ticker: 1 }),
            r#"{"type":"ticker_stopped","ticker":1}"#,
        );
        server_wire(
            ServerMsg::Random(crate::server::Random { ticker: 1, n: 42 }),
            r#"{"type":"random","ticker":1,"n":42}"#,
        );
    }

    #[test]
    fn server_product_messages_wire() {
        let product = r#"{"id":7,"title":"Mate","description":"Calabaza","code":"MATE-01","price":12.5,"stock":3}"#;
        server_wire(
            ServerMsg::Products(crate::server::Products {
                products: vec![sample_product()],
                after: None,
                has_more: false,
            }),
            &format!(r#"{{"type":"products","products":[{product}]}}"#),
        );
        server_wire(
            ServerMsg::Products(crate::server::Products {
                products: vec![sample_product()],
                after: Some(6),
                has_more: true,
            }),
            &format!(r#"{{"type":"products","products":[{product}],"after":6,"has_more":true}}"#),
        );
        server_wire(
            ServerMsg::ProductAdded(crate::server::ProductAdded {
                product: sample_product(),
            }),
            &format!(r#"{{"type":"product_added","product":{product}}}"#),
        );
        server_wire(
            ServerMsg::ProductRemoved(crate::server::ProductRemoved { id: 7 }),
            r#"{"type":"product_removed","id":7}"#,
        );
        server_wire(
            ServerMsg::ProductRefused(crate::server::ProductRefused {
                code: "MATE-01".into(),
                errors: vec![crate::FieldError::new(
                    crate::ProductField::Code,
                    crate::Problem::Taken,
                )],
            }),
            r#"{"type":"product_refused","code":"MATE-01","errors":[{"field":"code","problem":"taken","message":"another product already has this code"}]}"#,
        );
    }

    #[test]
    fn the_welcome_carries_the_greeting() {
        let msg = decode_server(
            r#"{"type":"welcome","id":"abc","history":[],"online":1,"protocol":2,"greeting":"Hola cliente WS!"}"#,
        )
        .expect("decodes");
        let ServerMsg::Welcome(crate::server::Welcome { greeting, .. }) = msg else {
            panic!("a welcome");
        };
        assert_eq!(greeting.as_deref(), Some(crate::exercises::GREETING));
    }

    #[test]
    fn every_error_code_has_its_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(encode(code), format!("\"{}\"", code.as_str()));
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&format!("\"{}\"", code.as_str())).ok(),
                Some(*code)
            );
        }
    }

    #[test]
    fn unknown_fields_and_codes_are_tolerated() {
        // Adding a field or an error code is a compatible change: old clients must cope.
        let msg = decode_server(r#"{"type":"presence","online":1,"region":"eu"}"#);
        assert_eq!(
            msg,
            Ok(ServerMsg::Presence(crate::server::Presence {
                room: RoomName::general(),
                online: 1,
                members: None
            }))
        );
        let msg = decode_server(r#"{"type":"error","code":"brand_new","message":"m"}"#);
        assert_eq!(msg, Ok(ServerMsg::error(ErrorCode::Other, "m")));
    }
}
