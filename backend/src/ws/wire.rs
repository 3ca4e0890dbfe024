//! What the connection loop needs of its socket, so that the loop is written once: frames
//! in (a [`Stream`] of tungstenite [`Message`]s), control frames out (a [`Sink`]: pings, the
//! close), and data frames out, written whole from the outbox's shared bytes
//! ([`Wire::write_frames`]).
//!
//! Every `WebSocketStream` is one, over any byte stream (its implementation is in
//! [`write`](super::write), beside the framing it uses): the upgraded TCP socket in the
//! server, an in-memory pipe in the tests (so a connection's dispatch runs without a
//! server; see the tests at the end of [`ws`](super)). A transport that is not a
//! WebSocket (Server-Sent Events out, POSTs in) is a second implementation of this trait,
//! not a second loop.

use std::sync::atomic::AtomicUsize;

use futures_util::{Sink, Stream};
use tungstenite::{Error, Message};

use crate::outbox::Frame;

/// A connection's socket, as the loop uses it.
pub(crate) trait Wire:
    Stream<Item = Result<Message, Error>> + Sink<Message, Error = Error> + Unpin + Send + 'static
{
    /// Writes whole data frames, adding to `progress` every byte the transport takes (the
    /// stall rule watches it). Anything the [`Sink`] half holds was flushed first.
    fn write_frames<'a>(
        &'a mut self,
        frames: &'a [Frame],
        progress: &'a AtomicUsize,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a;
}
