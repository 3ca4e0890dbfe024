//! Numbers both sides agree on.

/// The protocol version sent in every `welcome`. It rises only when a change is not
/// backwards compatible (adding a message type or an optional field is compatible).
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest text, in characters (Unicode scalar values), of a `send` or `typing`.
/// Longer text is refused with [`crate::ErrorCode::TooLarge`].
pub const MAX_TEXT_CHARS: usize = 2_000;
