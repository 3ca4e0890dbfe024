//! Charla's wire protocol, shared by the server (`backend`) and the page (`frontend`).
//!
//! Every frame on the `/ws` WebSocket is one JSON object in a text frame. Its `type` field names
//! the variant in snake_case and the variant's fields sit beside it. This crate does no I/O and
//! builds both natively and for `wasm32-unknown-unknown`. The full wire format, with examples,
//! is in `docs/PROTOCOL.md`.
//!
//! # Layout
//!
//! - [`msg`]: [`ClientMsg`] (client → server) and [`ServerMsg`] (server → client), and the types
//!   inside them: [`ChatLine`], [`ConnId`], [`Seq`], [`Member`], [`Typist`], [`ServerLimits`].
//! - [`server`]: the named struct each [`ServerMsg`] variant carries (`server::Joined`, …).
//! - [`names`]: [`RoomName`] and [`DisplayName`], checked where clients send them.
//! - [`codec`]: [`decode_client`] / [`encode`] and friends; decoding untrusted text yields a
//!   typed [`DecodeError`] that maps to a stable [`ErrorCode`].
//! - [`error`]: [`ErrorCode`], the stable snake_case codes sent in `error` frames.
//! - [`duration`]: how durations are written on the command lines (`45s`, `30m`, `7d`).
//! - [`limits`]: sizes both sides agree on (longest line, protocol version).
//! - `oracle` (tests, and the `testing` feature): what a server must answer to any text,
//!   worked out independently of the decoder, to test the decoder against.
//! - [`exercises`]: what the exercises beside the chat agree on (the greeting, the random
//!   ticker's bounds, the binary frames' pattern and checksum).
//! - [`products`]: the live product list: [`Product`], [`NewProduct`] and its rules, and
//!   the typed [`FieldError`]s a refused product gets.
//! - [`console`]: the operator's console's [`console::Sample`] (one second of the server's
//!   load) and the charts drawn of it.
//! - [`sse`]: Server-Sent Events cut out of a stream's bytes.
//! - [`session`]: [`ClientSession`], the client's side without I/O: the rooms it is in and the
//!   last `seq` seen in each, pending sends by nonce, the `hello` that resumes, what to resend,
//!   and the reconnect backoff.
//!
//! # Adding a message type
//!
//! 1. Add the variant to [`ClientMsg`] or [`ServerMsg`] in `src/msg.rs` (a `ServerMsg`
//!    variant carries a struct of its own in `src/server.rs`; new fields on an existing one
//!    must be optional, `#[serde(default)]`, to stay compatible), and its wire name to the
//!    enum's `wire_names!` list (the compiler insists).
//! 2. `cargo check --workspace`: the compiler now lists every place to touch, because the
//!    backend has one exhaustive `match` on `ClientMsg` (`backend/src/ws/dispatch.rs`) and
//!    the page one on `ServerMsg` (`frontend/src/connection/apply.rs`), neither with a `_ =>`
//!    arm.
//! 3. Add its literal-JSON test in `src/msg.rs` (`tests` module): the exact JSON text, both
//!    ways. That test is what freezes the wire.
//! 4. Add its line and an example to `docs/PROTOCOL.md`. Raise [`limits::PROTOCOL_VERSION`]
//!    only if an old client can no longer understand the stream.

pub mod codec;
pub mod console;
pub mod duration;
pub mod error;
pub mod exercises;
pub mod lesson;
pub mod limits;
pub mod msg;
pub mod names;
#[cfg(any(test, feature = "testing"))]
pub mod oracle;
pub mod products;
pub mod server;
pub mod session;
pub mod sse;

pub use codec::{DecodeError, decode_client, decode_server, decode_server_chat, encode};
pub use error::ErrorCode;
pub use msg::{
    Change, ChangeKind, ChatLine, ClientMsg, ConnId, Member, Seq, ServerLimits, ServerMsg, Typist,
    UserId, UserInfo,
};
pub use names::{DEFAULT_ROOM, DisplayName, NameError, RoomName};
pub use products::{FieldError, NewProduct, Price, Problem, Product, ProductField, ProductId};
pub use session::{ClientSession, PendingLine, Refusal, Shown};
