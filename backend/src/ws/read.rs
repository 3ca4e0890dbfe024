//! A connection's read loop: first the welcome (at once for v1; after the `hello`, the first
//! frame, for v2), then every frame goes to [`Connection`]'s dispatch; a read error that the
//! client can still be told about becomes a close frame.

use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{StreamExt, stream::SplitStream};

use shared::{ClientMsg, decode_client};

use super::{Connection, Handshake};
use crate::outbox::CloseReason;

/// Reads until the client leaves (`None`) or must be closed (the close to send).
pub(crate) async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    mut conn: Connection,
    handshake: Handshake,
) -> Option<CloseReason> {
    let mut first = match greet(&mut stream, &mut conn, handshake).await {
        Ok(first) => first,
        Err(ended) => return ended,
    };
    loop {
        // A typing update held back by the rate limit goes out as soon as it is allowed.
        let held_until = conn.held_typing_at(Instant::now());
        let next = if first.is_some() {
            None // the frame that came before the welcome goes first
        } else {
            tokio::select! {
            next = stream.next() => next,
            () = tokio::time::sleep_until(held_until.unwrap_or_else(Instant::now).into()),
                if held_until.is_some() => {
                conn.release_typing(Instant::now());
                continue;
            }
            }
        };
        let message = match first.take().map(Ok).or(next) {
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
            // Answer the client's close, as the protocol asks (not a bare TCP close: the
            // client would see 1006, "abnormal").
            Message::Close(_) => return Some(CloseReason::ClientClosed),
        };
        if verdict.is_some() {
            return verdict;
        }
    }
}

/// Welcomes the connection: a v1 one at once; a v2 one after its first frame, which should
/// be its `hello` (anything else is welcomed as a new session in `general`, then handled:
/// it is returned). `Err` carries how the connection ends if it ends first.
async fn greet(
    stream: &mut SplitStream<WebSocket>,
    conn: &mut Connection,
    handshake: Handshake,
) -> Result<Option<Message>, Option<CloseReason>> {
    if handshake == Handshake::V1 {
        return conn.welcome(None).await.map(|()| None).map_err(Some);
    }
    let first = match stream.next().await {
        None => return Err(None),
        Some(Err(err)) => return Err(close_reason(err)),
        Some(Ok(message)) => message,
    };
    conn.heard();
    if let Message::Text(text) = &first
        && let Ok(ClientMsg::Hello {
            resume,
            rooms,
            name,
        }) = decode_client(text.as_str())
    {
        conn.metrics.frame_in("hello");
        conn.welcome(Some((resume, rooms, name)))
            .await
            .map_err(Some)?;
        return Ok(None);
    }
    conn.welcome(Some((None, None, None))).await.map_err(Some)?;
    Ok(Some(first))
}

/// The close frame a read error deserves, if the client can still be told.
pub(super) fn close_reason(err: axum::Error) -> Option<CloseReason> {
    let err = err.into_inner();
    match err.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(CloseReason::TooBig),
        tungstenite::Error::Utf8(_) => Some(CloseReason::InvalidUtf8),
        tungstenite::Error::Protocol(_) => Some(CloseReason::ProtocolError),
        _ => None, // The connection is gone (reset, closed): nobody to tell.
    }
}
