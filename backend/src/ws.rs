//! One WebSocket connection: upgrade, then a read loop and a write loop.
//!
//! The read loop decodes each frame and dispatches it in the one exhaustive `match` on
//! [`ClientMsg`] ([`handle_text`]); refusals go back to the sender as `error` frames and the
//! connection stays. The write loop drains the connection's [`Outbox`] in batches: feed every
//! ready frame, flush once. When either loop ends the other is stopped and the hub forgets
//! the connection.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
};
use futures_util::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use shared::{ClientMsg, ConnId, ErrorCode, ServerMsg, decode_client, limits::MAX_TEXT_CHARS};

use crate::{
    http::AppState,
    hub::{Hub, frame},
    outbox::{CloseReason, Outbox},
};

/// How long the write loop may take to deliver a close frame after the read side failed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// `GET /ws`: upgrades to a WebSocket and runs the connection. Frames over the size limit are
/// refused by the WebSocket layer before their payload is read.
pub async fn upgrade(ws: WebSocketUpgrade, State(app): State<AppState>) -> Response {
    ws.max_message_size(app.max_frame_bytes)
        .max_frame_size(app.max_frame_bytes)
        .on_upgrade(move |socket| run(socket, app.hub))
}

/// Runs one connection until the client leaves, the socket fails, or the outbox closes.
async fn run(socket: WebSocket, hub: Arc<Hub>) {
    let joined = hub.join();
    let id = joined.id;
    let outbox = joined.outbox;
    tracing::info!(%id, online = joined.online, "client connected");

    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, outbox.clone()));
    let mut reader = tokio::spawn(read_loop(stream, hub.clone(), id.clone(), outbox.clone()));
    // Whichever side ends first ends the connection (as in axum's chat example), except that
    // a client that broke the rules is first told why, with a close frame.
    tokio::select! {
        _ = &mut writer => reader.abort(),
        ended = &mut reader => match ended {
            Ok(Some(reason)) => {
                tracing::info!(%id, ?reason, "closing a client that broke the rules");
                outbox.close(reason);
                if tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
                    writer.abort();
                }
            }
            _ => writer.abort(),
        },
    }
    let online = hub.leave(&id);
    tracing::info!(%id, online, "client disconnected");
}

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, outbox: Arc<Outbox>) {
    loop {
        let batch = outbox.next_batch().await;
        for frame in batch.frames {
            if sink.feed(Message::Text(frame)).await.is_err() {
                return;
            }
        }
        if let Some(reason) = batch.close {
            // Best effort: the client may already be gone.
            let _ = sink.send(Message::Close(Some(reason.frame()))).await;
            return;
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Reads until the client leaves (`None`) or breaks the WebSocket rules (the close to send).
async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    hub: Arc<Hub>,
    id: ConnId,
    outbox: Arc<Outbox>,
) -> Option<CloseReason> {
    while let Some(next) = stream.next().await {
        let message = match next {
            Ok(message) => message,
            Err(err) => return close_reason(err),
        };
        match message {
            Message::Text(text) => handle_text(&hub, &id, &outbox, text.as_str()),
            Message::Binary(_) => refuse(
                &outbox,
                ErrorCode::BinaryFrame,
                "binary frames are not part of the protocol; send JSON in a text frame",
            ),
            // Pings are answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return None,
        }
    }
    None
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

/// Decodes one text frame and acts on it: the server's one dispatch on [`ClientMsg`].
pub fn handle_text(hub: &Hub, id: &ConnId, outbox: &Outbox, text: &str) {
    let msg = match decode_client(text) {
        Ok(msg) => msg,
        Err(err) => return refuse(outbox, err.code(), &err.to_string()),
    };
    match msg {
        ClientMsg::Typing { text } => {
            if let Err((code, why)) = check_length(&text) {
                return refuse(outbox, code, &why);
            }
            hub.typing(id, text);
        }
        ClientMsg::Send { text, nonce: _ } => {
            if text.trim().is_empty() {
                return refuse(outbox, ErrorCode::Empty, "a line cannot be blank");
            }
            if let Err((code, why)) = check_length(&text) {
                return refuse(outbox, code, &why);
            }
            hub.send(id, text);
        }
    }
}

fn check_length(text: &str) -> Result<(), (ErrorCode, String)> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err((
            ErrorCode::TooLarge,
            format!("text is {chars} characters; at most {MAX_TEXT_CHARS} are allowed"),
        ));
    }
    Ok(())
}

/// Tells the sender its last frame was refused; the connection stays open.
fn refuse(outbox: &Outbox, code: ErrorCode, message: &str) {
    outbox.push(frame(&ServerMsg::Error {
        code,
        message: message.to_owned(),
    }));
}
