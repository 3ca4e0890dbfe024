//! Numbers both sides agree on. The server's own limits (which may be set by flags) reach
//! clients in the `welcome` ([`crate::msg::ServerLimits`]); these are the defaults and the
//! fixed ones.

/// The protocol version sent in every `welcome`. Version 2 added rooms, names and the `hello`
/// handshake; every v1 frame still works (a frame without `room` means `general`).
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest text, in characters (Unicode scalar values), of a `send` or `typing`, unless
/// the server says otherwise in its `welcome`.
pub const MAX_TEXT_CHARS: usize = 2_000;

/// The longest nonce a `send` may carry, in characters.
pub const MAX_NONCE_CHARS: usize = 64;

/// The most rooms one connection may be in, unless the server says otherwise.
pub const MAX_ROOMS_PER_CONN: usize = 20;
