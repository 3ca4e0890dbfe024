//! A connection's read loop: every frame goes to [`Connection`]'s dispatch; a read error
//! that the client can still be told about becomes a close frame.

use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{StreamExt, stream::SplitStream};

use super::Connection;
use crate::outbox::CloseReason;

/// Reads until the client leaves (`None`) or must be closed (the close to send).
pub(crate) async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    mut conn: Connection,
) -> Option<CloseReason> {
    loop {
        // A typing update held back by the rate limit goes out as soon as it is allowed.
        let held_until = conn.held_typing_at(Instant::now());
        let next = tokio::select! {
            next = stream.next() => next,
            () = tokio::time::sleep_until(held_until.unwrap_or_else(Instant::now).into()),
                if held_until.is_some() => {
                conn.release_typing(Instant::now());
                continue;
            }
        };
        let message = match next {
            None => return None,
            Some(Ok(message)) => message,
            Some(Err(err)) => return close_reason(err),
        };
        conn.heard();
        let verdict = match message {
            Message::Text(text) => conn.on_text(text.as_str(), Instant::now()),
            Message::Binary(_) => conn.on_binary(Instant::now()),
            // Pings are answered by the WebSocket layer itself, but a flood of them counts
            // against the frame rate like any other frame.
            Message::Ping(_) => conn.on_ws_ping(Instant::now()),
            Message::Pong(_) => None,
            Message::Close(_) => return None,
        };
        if verdict.is_some() {
            return verdict;
        }
    }
}

/// The close frame a read error deserves, if the client can still be told.
fn close_reason(err: axum::Error) -> Option<CloseReason> {
    let err = err.into_inner();
    match err.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(CloseReason::TooBig),
        tungstenite::Error::Utf8(_) => Some(CloseReason::InvalidUtf8),
        tungstenite::Error::Protocol(_) => Some(CloseReason::ProtocolError),
        _ => None, // The connection is gone (reset, closed): nobody to tell.
    }
}
