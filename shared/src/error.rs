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
    /// The text is longer than [`crate::limits::MAX_TEXT_CHARS`].
    TooLarge,
    /// A binary frame: the protocol uses text frames only.
    BinaryFrame,
    /// Over the connection's rate limit; the frame was dropped.
    RateLimited,
    /// The server could not store the line (e.g. its disk failed); it was not appended.
    Unavailable,
    /// A code this build does not know (sent by a newer server). Never sent by this one.
    #[serde(other)]
    Other,
}

impl ErrorCode {
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
            ErrorCode::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
