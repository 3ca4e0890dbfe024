//! A connection's one task: first the welcome (at once for v1; after the `hello`, the first
//! frame, for v2), then a loop that writes what the outbox holds, reads and dispatches the
//! client's frames, pings on the heartbeat and releases held typing, one thing at a time.
//!
//! One task instead of a reader and a writer: an idle connection is one small future
//! waiting on its socket, its outbox and its timers, with no lock between two halves of the
//! socket. What only a busy connection needs lives on the heap only while it is busy: the
//! welcome (a session lookup and its commit) and the write of a batch are boxed, so their
//! state is freed as soon as they are done. While a batch is written, the client's frames
//! wait in the socket; a write that makes no progress ends the connection
//! ([`write_batch`](super::write)).

use std::time::Instant;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tungstenite::Message;

use shared::{ClientMsg, decode_client};

use super::{
    CLOSE_GRACE, Connection, Handshake, Hello, Socket,
    write::{Heartbeat, Written, count_frames, write_batch},
};
use crate::outbox::CloseReason;

/// At most this many frames already in the socket are handled in a row before the
/// connection writes what they queued (and looks at its timers).
const READ_BURST: u32 = 64;

/// Runs the connection until the client leaves, the socket fails, or a close was written.
pub(crate) async fn serve(
    mut live: Box<(Socket, Connection)>,
    handshake: Handshake,
    heartbeat: Heartbeat,
) {
    // Boxed by the caller: an `async fn` keeps its arguments apart from its locals, so
    // unboxed they would take their room twice in every idle connection's future.
    let (socket, conn) = &mut *live;
    let outbox = conn.outbox().clone();
    let metrics = conn.metrics.clone();
    // Once set, the connection is closing: nothing more is read, and what is queued (then
    // the close) must be written before it fires. (Timers are boxed, and only while they
    // run: an idle connection keeps no room for them.)
    let mut closing: Option<Timer> = None;
    // When a typing update held back by the rate limit may go out, if one is.
    let mut held: Option<Timer> = None;
    // When the sign-in must be refreshed, or ends (signed-in connections only).
    let mut token_timer: Option<Timer> = None;
    let welcomed = {
        let (socket, conn, heartbeat) = (&mut *socket, &mut *conn, &heartbeat);
        // Built inside the closure, so only the box is kept here.
        boxed_with(move || greet(socket, conn, handshake, heartbeat))
    };
    // A frame read but not handled yet: the one that came before the welcome, then each
    // frame already in the socket while a burst lasts.
    let mut ready = match welcomed.await {
        Ok(first) => first.map(|message| Some(Ok(message))),
        Err(Some(reason)) => {
            outbox.close(reason);
            closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            None
        }
        Err(None) => return,
    };
    let mut burst = 0;
    let every = heartbeat.every();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        // A typing update held back by the rate limit goes out as soon as it is allowed.
        match conn.held_typing_at() {
            None => held = None,
            Some(at) => {
                let at = tokio::time::Instant::from(at);
                if held.as_ref().is_none_or(|timer| timer.deadline() != at) {
                    held = Some(Box::pin(tokio::time::sleep_until(at)));
                }
            }
        }
        match conn.token_due_at() {
            None => token_timer = None,
            Some(at) => {
                let at = tokio::time::Instant::from(at);
                if token_timer
                    .as_ref()
                    .is_none_or(|timer| timer.deadline() != at)
                {
                    token_timer = Some(Box::pin(tokio::time::sleep_until(at)));
                }
            }
        }
        let message = if let Some(message) = ready.take() {
            message
        } else {
            burst = 0;
            tokio::select! {
                batch = outbox.next_batch() => {
                    let close = batch.close;
                    if let Some(reason) = close {
                        metrics.close(reason.label());
                    }
                    count_frames(&metrics, &batch.frames);
                    let written = {
                        let (sink, queue, counts, beat, pings) =
                            (&mut *socket, &outbox, &metrics, &heartbeat, &mut ping);
                        boxed_with(move || write_batch(sink, queue, counts, beat, pings, batch))
                    };
                    match written.await {
                        Written::Done(true) if close.is_none() => outbox.written(),
                        Written::Done(_) => return,
                        Written::Closed(reason, whole) => {
                            if whole {
                                let close = Message::Close(Some(reason.ws_frame()));
                                let sink = &mut *socket;
                                let send = boxed_with(move || {
                                    tokio::time::timeout(CLOSE_GRACE, sink.send(close))
                                });
                                let _ = send.await;
                            }
                            return;
                        }
                        // It reads nothing: a close frame would not get through either.
                        Written::Stalled => return metrics.close("stalled"),
                    }
                    continue;
                }
                () = fire(&mut closing) => return,
                message = socket.next(), if closing.is_none() => message,
                _ = ping.tick(), if closing.is_none() => {
                    if heartbeat.silent(conn.last_heard()) {
                        // What the client said may be waiting in the socket, unread because
                        // this server was busy: that is not silence.
                        match socket.next().now_or_never() {
                            Some(waiting) => {
                                ready = Some(waiting);
                                continue;
                            }
                            None => return metrics.close("heartbeat"),
                        }
                    }
                    // Every write has a deadline: a client that reads nothing (its socket full
                    // of pongs to its own pings, say) cannot hold this one for ever.
                    let sink = &mut *socket;
                    let send = boxed_with(move || {
                        tokio::time::timeout(2 * every, sink.send(Message::Ping(Default::default())))
                    });
                    match send.await {
                        Ok(Ok(())) => continue,
                        Ok(Err(_)) => return,
                        Err(_) => return metrics.close("stalled"),
                    }
                }
                () = fire(&mut held), if closing.is_none() => {
                    held = None;
                    conn.release_typing(Instant::now());
                    continue;
                }
                () = fire(&mut token_timer), if closing.is_none() => {
                    token_timer = None;
                    match conn.on_token_due() {
                        None => continue,
                        Some(reason) => {
                            conn.outbox().close(reason);
                            closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
                            continue;
                        }
                    }
                }
            }
        };
        let verdict = match message {
            None => return, // the client is gone
            Some(Err(err)) => match close_reason(&err) {
                Some(reason) => Some(reason),
                None => return, // reset or closed: nobody to tell
            },
            Some(Ok(message)) => {
                conn.heard();
                match message {
                    Message::Text(text) => conn.on_text(text.as_str(), Instant::now()),
                    Message::Binary(_) => conn.on_binary(Instant::now()),
                    // Pings are answered by the WebSocket layer itself, but a flood of them
                    // (or of pongs) counts against the frame rate like any other frame.
                    Message::Ping(_) => conn.on_ws_control("ping", Instant::now()),
                    // Pongs too: one answers each heartbeat, a flood is a flood.
                    Message::Pong(_) => conn.on_ws_control("pong", Instant::now()),
                    Message::Frame(_) => None,
                    // Answer the client's close, as the protocol asks (not a bare TCP close:
                    // the client would see 1006, "abnormal").
                    Message::Close(_) => Some(CloseReason::ClientClosed),
                }
            }
        };
        if let Some(reason) = verdict {
            if reason != CloseReason::ClientClosed {
                tracing::info!(
                    conn = conn.key().0,
                    reason = reason.label(),
                    "closing a client that broke the rules"
                );
            }
            // What is queued goes first, then the close (the outbox's next batch carries it).
            conn.outbox().close(reason);
            closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
        } else if burst < READ_BURST {
            // Frames the client sent together are handled together, so their answers go
            // out in one write rather than one small write each.
            burst += 1;
            ready = socket.next().now_or_never();
        }
    }
}

/// The future on the heap, for as long as it runs. A plain function, not an `async` one:
/// the future is built in its frame and moved into the box, so the connection's own future
/// never holds a copy of it (an `async fn` would keep room for it in its state).
fn boxed_with<'a, T, F: Future<Output = T> + Send + 'a>(
    make: impl FnOnce() -> F,
) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>> {
    Box::pin(make())
}

/// A timer on the heap.
type Timer = std::pin::Pin<Box<tokio::time::Sleep>>;

/// Completes when the timer fires; never without one.
async fn fire(timer: &mut Option<Timer>) {
    match timer {
        Some(timer) => timer.await,
        None => std::future::pending().await,
    }
}

/// Welcomes the connection: a v1 one at once; a v2 one after its first frame, which should
/// be its `hello` (anything else is welcomed as a new session in `general`, then handled:
/// it is returned). `Err` carries how the connection ends if it ends first. A client that
/// says nothing for two heartbeats is let go.
async fn greet(
    socket: &mut Socket,
    conn: &mut Connection,
    handshake: Handshake,
    heartbeat: &Heartbeat,
) -> Result<Option<Message>, Option<CloseReason>> {
    if handshake == Handshake::V1 {
        return conn.welcome(None).await.map(|()| None).map_err(Some);
    }
    let first = match tokio::time::timeout(2 * heartbeat.every(), socket.next()).await {
        Err(_) => {
            conn.metrics.close("heartbeat");
            return Err(None);
        }
        Ok(None) => return Err(None),
        Ok(Some(Err(err))) => return Err(close_reason(&err)),
        Ok(Some(Ok(message))) => message,
    };
    conn.heard();
    if let Message::Text(text) = &first
        && let Ok(ClientMsg::Hello {
            resume,
            rooms,
            name,
            token,
        }) = decode_client(text.as_str())
    {
        conn.metrics.frame_in("hello");
        let hello = Hello {
            resume,
            rooms,
            name,
            token,
        };
        conn.welcome(Some(hello)).await.map_err(Some)?;
        return Ok(None);
    }
    conn.welcome(Some(Hello::default())).await.map_err(Some)?;
    Ok(Some(first))
}

/// The close frame a read error of axum's WebSocket (the echo's) deserves, if any.
pub(super) fn close_reason_axum(err: axum::Error) -> Option<CloseReason> {
    close_reason(err.into_inner().downcast_ref::<tungstenite::Error>()?)
}

/// The close frame a read error deserves, if the client can still be told.
pub(super) fn close_reason(err: &tungstenite::Error) -> Option<CloseReason> {
    match err {
        tungstenite::Error::Capacity(_) => Some(CloseReason::TooBig),
        tungstenite::Error::Utf8(_) => Some(CloseReason::InvalidUtf8),
        // A client that hung up without a close frame broke no rule a close could tell it.
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => None,
        tungstenite::Error::Protocol(_) => Some(CloseReason::ProtocolError),
        _ => None, // The connection is gone (reset, closed): nobody to tell.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::{CapacityError, ProtocolError};

    fn reason(err: tungstenite::Error) -> Option<CloseReason> {
        // Through axum's error too, as the echo gets it.
        let through_axum = close_reason_axum(axum::Error::new(clone(&err)));
        assert_eq!(through_axum, close_reason(&err));
        close_reason(&err)
    }

    fn clone(err: &tungstenite::Error) -> tungstenite::Error {
        match err {
            tungstenite::Error::Capacity(e) => tungstenite::Error::Capacity(*e),
            tungstenite::Error::Protocol(e) => tungstenite::Error::Protocol(e.clone()),
            _ => tungstenite::Error::ConnectionClosed,
        }
    }

    #[test]
    fn read_errors_become_the_close_they_deserve() {
        let too_long = CapacityError::MessageTooLong {
            size: 20_000,
            max_size: 16_384,
        };
        assert_eq!(
            reason(tungstenite::Error::Capacity(too_long)),
            Some(CloseReason::TooBig)
        );
        assert_eq!(
            reason(tungstenite::Error::Protocol(
                ProtocolError::UnmaskedFrameFromClient
            )),
            Some(CloseReason::ProtocolError)
        );
        // Hanging up without a close frame is leaving, not breaking a rule.
        assert_eq!(
            reason(tungstenite::Error::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            )),
            None
        );
        assert_eq!(reason(tungstenite::Error::ConnectionClosed), None);
    }
}
