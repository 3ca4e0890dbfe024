//! The stable error codes a server puts in an `error` frame.

use serde::{Deserialize, Serialize};

/// Why the server refused the last frame. Serialized as a stable snake_case string; clients
/// may match on it. New codes may be added, so clients must tolerate codes they do not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame was not a JSON object (not JSON at all, or JSON of another shape).
    BadJson,
    /// The object's `type` names no message this server knows.
    UnknownType,
    /// A field is missing, or has the wrong type (the `type` field included).
    BadField,
    /// A `send` whose text is empty or only white space.
    Empty,
    /// The text is longer than the server's `max_text_chars`.
    TooLarge,
    /// A binary frame: the protocol uses text frames only.
    BinaryFrame,
    /// Over the connection's rate limit; the frame was dropped.
    RateLimited,
    /// The server could not store the line (e.g. its disk failed); it was not appended.
    Unavailable,
    /// A room name that is not 1–32 characters of `a-z 0-9 _ -`.
    BadRoom,
    /// A display name that is empty, over 32 characters, or holds control characters.
    BadName,
    /// The frame concerns a room this connection has not joined.
    NotJoined,
    /// This connection is already in as many rooms as it may be (`--max-rooms-per-conn`).
    TooManyRooms,
    /// The server already has as many rooms as it may (`--max-rooms`): no new room.
    RoomsFull,
    /// A `hello` after the connection was already welcomed.
    AlreadyWelcomed,
    /// The frame names something that does not exist (a product id, a ticker).
    NotFound,
    /// This connection already runs as many random tickers as it may (5).
    TooManyTickers,
    /// Under `--auth required`, a `hello` without a token (a close with 4001 follows).
    AuthRequired,
    /// A token that is malformed, badly signed, of another algorithm, issuer or audience,
    /// revoked, or (in a `refresh`) for another user (a close with 4001 follows).
    BadToken,
    /// The token's `exp` has passed (a close with 4001 follows).
    TokenExpired,
    /// This user may not do that (e.g. join a private room not granted); the connection stays.
    Forbidden,
    /// An `edit` or `delete` of one's own line after the server's edit window.
    EditWindowPassed,
    /// A moderator banned this user (or guest session) from the room: it may not join it
    /// (until the ban's end, which the message says).
    Banned,
    /// A moderator muted this user (or guest session) in the room: it may read, not send.
    Muted,
    /// The room is in slow mode and this person's last line was too recent: the message
    /// says how long to wait.
    SlowMode,
    /// A code this build does not know (sent by a newer server). Never sent by this one.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Every code a server may send.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::BadField,
        ErrorCode::Empty,
        ErrorCode::TooLarge,
        ErrorCode::BinaryFrame,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::BadRoom,
        ErrorCode::BadName,
        ErrorCode::NotJoined,
        ErrorCode::TooManyRooms,
        ErrorCode::RoomsFull,
        ErrorCode::AlreadyWelcomed,
        ErrorCode::NotFound,
        ErrorCode::TooManyTickers,
        ErrorCode::AuthRequired,
        ErrorCode::BadToken,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::EditWindowPassed,
        ErrorCode::Banned,
        ErrorCode::Muted,
        ErrorCode::SlowMode,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadField => "bad_field",
            ErrorCode::Empty => "empty",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BinaryFrame => "binary_frame",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadRoom => "bad_room",
            ErrorCode::BadName => "bad_name",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::RoomsFull => "rooms_full",
            ErrorCode::AlreadyWelcomed => "already_welcomed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooManyTickers => "too_many_tickers",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::EditWindowPassed => "edit_window_passed",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::SlowMode => "slow_mode",
            ErrorCode::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
