//! The fields of each [`ServerMsg`](crate::ServerMsg) variant, as named structs: code that
//! builds or reads a message names its struct (`server::Joined { .. }`) instead of
//! destructuring the enum by hand. On the wire each sits beside the `type`, as before.

use serde::{Deserialize, Serialize};

use crate::{
    ChangeKind, ChatLine, ConnId, DisplayName, ErrorCode, Member, RoomName, Seq, ServerLimits,
    Typist, UserId, UserInfo,
    products::{FieldError, Product, ProductId},
};

/// Always the first frame of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// This connection's public id (the same as before when a resume succeeded).
    pub id: ConnId,
    /// For a v1 connection, the lines of `general`, oldest first (see `resumed`). Empty
    /// for a v2 connection, whose rooms each come in a `joined`.
    pub history: Vec<ChatLine>,
    /// How many are in `general`: for v1 this connection included; for v2 before its
    /// `joined`s (each of which carries its room's count).
    pub online: u32,
    /// The protocol version ([`crate::limits::PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// A private token: send it in the `hello` of a later connection to keep this id
    /// and name. Never shown to other clients.
    #[serde(default)]
    pub resume: String,
    /// Whether lines older than the first in `history` exist (ask with `load_older`).
    #[serde(default)]
    pub has_more: bool,
    /// Whether this connection resumed a session (same id as before).
    #[serde(default)]
    pub resumed: bool,
    /// This session's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
    /// The limits this server enforces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ServerLimits>,
    /// The server's greeting ([`crate::exercises::GREETING`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Who signed in (from the `hello`'s token); `null` for a guest.
    #[serde(default)]
    pub user: Option<UserInfo>,
}

/// The reply to `join` (and to each room of a `hello`): the room as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Joined {
    /// The room.
    pub room: RoomName,
    /// If `resumed`, exactly the lines after the `seq` the client said it holds (append
    /// them); otherwise the latest page, oldest first (replace with it).
    pub lines: Vec<ChatLine>,
    /// Whether lines older than the first in `lines` exist.
    pub has_more: bool,
    /// See `lines`.
    pub resumed: bool,
    /// How many are in the room, this connection included.
    pub online: u32,
    /// Who is in the room; absent for rooms larger than the server pushes lists for
    /// (ask with `members`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
    /// Who is typing there now, with their latest text: as many as fit the greeting's
    /// budget for live text.
    #[serde(default)]
    pub typing: Vec<Typist>,
    /// Whether more are typing than `typing` holds (their text arrives with their next
    /// keystroke).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub typing_more: bool,
    /// Whether the room is private (`--private-rooms`): only users granted it may join.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// The room's slow mode: at least this many seconds between one person's lines
    /// (absent: off; moderators are not held to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_mode: Option<u32>,
    /// Whether this connection is muted here (it may read, not send).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
    /// Until when it is muted, in ms since the Unix epoch (absent while `muted`: until a
    /// moderator unmutes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<u64>,
    /// The signed-in user's read position here: the newest entry they have read, on any
    /// of their tabs or devices (absent: a guest, or nothing read yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Seq>,
}

/// A signed-in user's read position in a room: they have read every entry up to `seq`.
/// Only ever moves forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMark {
    /// The room.
    pub room: RoomName,
    /// The newest entry read.
    pub seq: Seq,
}

/// This connection is no longer in the room: the reply to `leave`, or (with a `reason`)
/// a moderator put it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The room.
    pub room: RoomName,
    /// Absent after a `leave`; `kick` (it may join again) or `ban` (it may not, until
    /// `until`) when a moderator put it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ChangeKind>,
    /// Who put it out (a user's id, or `api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// For a ban, until when (ms since the Unix epoch); absent: for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl Left {
    /// The reply to a `leave` of `room`.
    pub fn reply(room: RoomName) -> Self {
        Left {
            room,
            reason: None,
            by: None,
            until: None,
        }
    }
}

/// Someone's live text in a room; replaces that typist's previous text. Sent to every
/// member, typist included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// The room (absent in v1 frames: `general`).
    #[serde(default)]
    pub room: RoomName,
    /// The typist.
    pub from: ConnId,
    /// The typist's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
    /// The signed-in user typing; none for a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// Their input box as it is now; `""` means they cleared it (or left).
    pub text: String,
}

/// The sender's line with this `nonce` is durable, at this `seq`. Sent only to the
/// sender's connections (every tab of its session) in the room, before the `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The room of the line (absent in v1 frames: `general`).
    #[serde(default)]
    pub room: RoomName,
    /// The nonce of the `send`.
    pub nonce: String,
    /// Where the line is in the room's history.
    pub seq: Seq,
}

/// An entry of a room's log that changes the text of an earlier line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEdited {
    /// The room.
    #[serde(default)]
    pub room: RoomName,
    /// This entry's own position in the room's log.
    pub seq: Seq,
    /// The edited line's `seq`.
    pub target: Seq,
    /// The line's new text.
    pub text: String,
    /// When the server accepted the edit, in ms since the Unix epoch.
    pub at: u64,
    /// The editor's connection id.
    pub from: ConnId,
    /// The signed-in user who edited it; none for a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// The `nonce` of the `edit`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// An entry of a room's log that removes an earlier line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    /// The room.
    #[serde(default)]
    pub room: RoomName,
    /// This entry's own position in the room's log.
    pub seq: Seq,
    /// The removed line's `seq`.
    pub target: Seq,
    /// Who removed it: a user's id, a guest's connection id, or `api`.
    pub by: String,
    /// When the server accepted the deletion, in ms since the Unix epoch.
    pub at: u64,
    /// The connection that asked (the server's own id for the server API).
    pub from: ConnId,
    /// The `nonce` of the `delete`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// An entry of a room's log that moderates its people or its pace: a `kick`, `ban`,
/// `unban`, `mute`, `unmute` of `user`, or a `slow_mode` of `secs`. Sent to every member,
/// the person concerned included (just before a kick's or a ban's `left`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderation {
    /// The room.
    #[serde(default)]
    pub room: RoomName,
    /// This entry's own position in the room's log.
    pub seq: Seq,
    /// What was done.
    pub action: ChangeKind,
    /// To whom: a signed-in user's id, or a guest's session id (absent for `slow_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A ban's or a mute's end, in ms since the Unix epoch (absent: until lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// A `slow_mode`'s interval in seconds (0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u32>,
    /// Who did it: a moderator's user id, or `api`.
    pub by: String,
    /// When the server accepted it, in ms since the Unix epoch.
    pub at: u64,
    /// The connection that asked (the server's own id for the server API).
    pub from: ConnId,
    /// The asking frame's `nonce`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// The reply to `load_older`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Older {
    /// The room (absent in v1 frames: `general`).
    #[serde(default)]
    pub room: RoomName,
    /// The lines, oldest first (empty when there are none).
    pub lines: Vec<ChatLine>,
    /// Whether still older lines exist.
    pub has_more: bool,
}

/// Who is in a room changed (coalesced: a few times a second at most).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The room (absent in v1 frames: `general`).
    #[serde(default)]
    pub room: RoomName,
    /// How many are in the room now.
    pub online: u32,
    /// Who they are, for rooms small enough (see `joined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
}

/// The reply to `members`: a page of who is in the room, by name, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// The room.
    pub room: RoomName,
    /// The members from `offset` on, as many as fit one frame.
    pub members: Vec<Member>,
    /// The `offset` asked for (absent: 0, the first page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Whether more members follow (ask with `offset` + this page's length).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_more: bool,
}

/// The reply to `set_name`: the session's name now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameSet {
    /// The name.
    pub name: DisplayName,
}

/// The last frame was refused. The connection stays open unless a close frame follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// Why, as a stable code.
    pub code: ErrorCode,
    /// Why, for people.
    pub message: String,
    /// The room the refused frame concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    /// The nonce of the refused `send`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// The connection's token expires in `in_ms` milliseconds: answer with `refresh` and a
/// new token, or the connection is closed with `token_expired` (4001) when it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenExpiring {
    /// Milliseconds until the token expires.
    pub in_ms: u64,
}

/// The reply to `refresh`: the new token is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefreshed {
    /// When it expires, in seconds since the Unix epoch (its `exp`).
    pub exp: u64,
}

/// The reply to `echo`: the same text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// The text as it came.
    pub text: String,
}

/// The reply to `binary`: the next frame is binary, this long, with this checksum
/// ([`crate::exercises::checksum`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binary {
    /// How many bytes.
    pub size: u32,
    /// The FNV-1a hash of the bytes.
    pub checksum: u32,
}

/// The reply to `start_ticker`: the ticker runs at this interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticker {
    /// The ticker.
    pub ticker: u32,
    /// Its interval, in milliseconds.
    pub every_ms: u32,
}

/// The reply to `stop_ticker`: the ticker sends nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickerStopped {
    /// The ticker.
    pub ticker: u32,
}

/// A random number from a ticker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Random {
    /// The ticker.
    pub ticker: u32,
    /// A number from 1 to 1,000.
    pub n: u32,
}

/// The reply to `watch_products` (the first page) and `load_products` (the next
/// ones): products by id, as many as fit one frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Products {
    /// The products, by id.
    pub products: Vec<Product>,
    /// The `after` of the `load_products` this answers (absent: the first page, which
    /// replaces any list the client holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ProductId>,
    /// Whether more products follow (ask with `load_products` after the last id here).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_more: bool,
}

/// A product was created (over HTTP or the WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAdded {
    /// The product.
    pub product: Product,
}

/// A product was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRemoved {
    /// Its id.
    pub id: ProductId,
}

/// The reply to an `add_product` that was refused: every field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRefused {
    /// The code the refused product had (to match it with the form that sent it).
    pub code: String,
    /// What is wrong.
    pub errors: Vec<FieldError>,
}
