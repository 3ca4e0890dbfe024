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

use std::{sync::Arc, time::Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tungstenite::Message;

use shared::{ClientMsg, decode_client};

use super::{
    Arrival, CLOSE_GRACE, Connection, Handshake, Hello,
    connection::Flow,
    wire::Wire,
    write::{Heartbeat, Written, count_frames, write_batch},
};
use crate::{
    metrics::Metrics,
    outbox::{Batch, CloseReason, ConnKey, Outbox},
};

/// At most this many frames already in the socket are handled in a row before the
/// connection writes what they queued (and looks at its timers).
const READ_BURST: u32 = 64;

/// Runs the connection until the client leaves, the socket fails, or a close was written:
/// the greeting, then the welcomed connection's loop (or, refused before its welcome, the
/// refusal and the close).
pub(crate) async fn serve<W: Wire>(
    arriving: Box<(W, Arrival)>,
    handshake: Handshake,
    heartbeat: Heartbeat,
) {
    let greeted = {
        let heartbeat = &heartbeat;
        // Built inside the closure, so only the box is kept here.
        boxed_with(move || greet(arriving, handshake, heartbeat))
    };
    match greeted.await {
        Greeted::Welcomed(live, first) => welcomed(live, first, &heartbeat).await,
        Greeted::Refused(parting, reason) => {
            let heartbeat = &heartbeat;
            boxed_with(move || part(parting, reason, heartbeat)).await;
        }
        Greeted::Gone => {}
    }
}

/// What the loop runs: a welcomed chat [`Connection`], or the echo server's
/// [`Echo`](super::echo::Echo). The loop owns the socket, the writes, the heartbeat, the
/// close and the timers; a handler owns what a frame means.
pub(crate) trait Handler: Send {
    /// Where its frames wait to be written (the close too).
    fn outbox(&self) -> &Arc<Outbox>;
    /// The server's counters.
    fn metrics(&self) -> &Arc<Metrics>;
    /// Its number, for the log.
    fn key(&self) -> ConnKey;
    /// When the client last said anything.
    fn last_heard(&self) -> Instant;
    /// One frame from the client (the WebSocket layer answers pings itself); the close it
    /// calls for, if any.
    fn on_message(&mut self, message: Message) -> Flow;
    /// When something it holds back may go out (held typing), if anything is held.
    fn held_until(&mut self) -> Option<Instant> {
        None
    }
    /// That moment came.
    fn release_held(&mut self, now: Instant) {
        let _ = now;
    }
    /// When its sign-in needs attention next, if it is signed in.
    fn token_due_at(&self) -> Option<Instant> {
        None
    }
    /// That moment came.
    fn on_token_due(&mut self) -> Flow {
        Flow::Continue
    }
}

impl Handler for Connection {
    fn outbox(&self) -> &Arc<Outbox> {
        Connection::outbox(self)
    }
    fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
    fn key(&self) -> ConnKey {
        Connection::key(self)
    }
    fn last_heard(&self) -> Instant {
        Connection::last_heard(self)
    }
    fn on_message(&mut self, message: Message) -> Flow {
        on_message(self, message)
    }
    fn held_until(&mut self) -> Option<Instant> {
        self.held_typing_at()
    }
    fn release_held(&mut self, now: Instant) {
        self.release_typing(now);
    }
    fn token_due_at(&self) -> Option<Instant> {
        Connection::token_due_at(self)
    }
    fn on_token_due(&mut self) -> Flow {
        Connection::on_token_due(self)
    }
}

/// A connection's loop, once it has a handler (a welcomed chat connection, an echo).
// long: one `select!` on the socket, outbox and timers; locals keep idle futures small.
pub(crate) async fn welcomed<W: Wire, H: Handler>(
    mut live: Box<(W, H)>,
    first: Option<Message>,
    heartbeat: &Heartbeat,
) {
    // Boxed by the caller: an `async fn` keeps its arguments apart from its locals, so
    // unboxed they would take their room twice in every idle connection's future.
    let (socket, conn) = &mut *live;
    let outbox = conn.outbox().clone();
    let metrics = conn.metrics().clone();
    // Once set, the connection is closing: nothing more is read, and what is queued (then
    // the close) must be written before it fires. (Timers are boxed, and only while they
    // run: an idle connection keeps no room for them.)
    let mut closing: Option<Timer> = None;
    // When a typing update held back by the rate limit may go out, if one is.
    let mut held: Option<Timer> = None;
    // When the sign-in must be refreshed, or ends (signed-in connections only).
    let mut token_timer: Option<Timer> = None;
    // A frame read but not handled yet: the one that came before the welcome, then each
    // frame already in the socket while a burst lasts.
    let mut ready = first.map(|message| Some(Ok(message)));
    let mut burst = 0;
    let every = heartbeat.every();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        // A typing update held back by the rate limit goes out as soon as it is allowed.
        arm(&mut held, conn.held_until());
        arm(&mut token_timer, conn.token_due_at());
        let message = if let Some(message) = ready.take() {
            message
        } else {
            burst = 0;
            tokio::select! {
                batch = outbox.next_batch() => {
                    let (sink, queue, counts, beat, pings) =
                        (&mut *socket, &outbox, &metrics, heartbeat, &mut ping);
                    match write_out(sink, queue, counts, beat, pings, batch).await {
                        Step::Go => continue,
                        Step::End => return,
                    }
                }
                () = fire(&mut closing) => return,
                message = socket.next(), if closing.is_none() => message,
                _ = ping.tick(), if closing.is_none() => {
                    let heard = conn.last_heard();
                    match heartbeat_due(&mut *socket, heard, heartbeat, &metrics).await {
                        Beat::Sent => continue,
                        Beat::Heard(waiting) => {
                            ready = Some(waiting);
                            continue;
                        }
                        Beat::End => return,
                    }
                }
                () = fire(&mut held), if closing.is_none() => {
                    held = None;
                    conn.release_held(Instant::now());
                    continue;
                }
                () = fire(&mut token_timer), if closing.is_none() => {
                    token_timer = None;
                    if let Flow::Close(reason) = conn.on_token_due() {
                        close_soon(&mut closing, &outbox, reason);
                    }
                    continue;
                }
            }
        };
        let Some(verdict) = handle(conn, message) else {
            return; // the client is gone
        };
        if let Flow::Close(reason) = verdict {
            close_soon(&mut closing, &outbox, reason);
        } else if burst < READ_BURST {
            // Frames the client sent together are handled together, so their answers go
            // out in one write rather than one small write each.
            burst += 1;
            ready = socket.next().now_or_never();
        }
    }
}

/// What the socket gave, handled: the close it calls for, if any; none if the client is
/// gone (reset or closed: nobody to tell).
fn handle<H: Handler>(
    conn: &mut H,
    message: Option<Result<Message, tungstenite::Error>>,
) -> Option<Flow> {
    let verdict = match message? {
        Err(err) => Flow::Close(close_reason(&err)?),
        Ok(message) => conn.on_message(message),
    };
    if let Flow::Close(reason) = verdict
        && reason != CloseReason::ClientClosed
    {
        tracing::info!(
            conn = conn.key().0,
            reason = reason.label(),
            "closing a client that broke the rules"
        );
    }
    Some(verdict)
}

/// One frame from the client, handled; the close it calls for, if any.
fn on_message(conn: &mut Connection, message: Message) -> Flow {
    conn.heard();
    let now = Instant::now();
    match message {
        Message::Text(text) => conn.on_text(text.as_str(), now),
        Message::Binary(_) => conn.on_binary(now),
        // Pings are answered by the WebSocket layer itself, but a flood of them (or of
        // pongs: one answers each heartbeat, a flood is a flood) counts against the frame
        // rate like any other frame.
        Message::Ping(_) => conn.on_ws_control("ping", now),
        Message::Pong(_) => conn.on_ws_control("pong", now),
        Message::Frame(_) => Flow::Continue,
        // Answer the client's close, as the protocol asks (not a bare TCP close: the
        // client would see 1006, "abnormal").
        Message::Close(_) => Flow::Close(CloseReason::ClientClosed),
    }
}

/// Starts closing: what is queued goes first, then the close (the outbox's next batch
/// carries it), within [`CLOSE_GRACE`].
fn close_soon(closing: &mut Option<Timer>, outbox: &Outbox, reason: CloseReason) {
    outbox.close(reason);
    *closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
}

/// Sets `timer` to fire at `at` (none: no timer), keeping one already set for that moment.
fn arm(timer: &mut Option<Timer>, at: Option<Instant>) {
    match at {
        None => *timer = None,
        Some(at) => {
            let at = tokio::time::Instant::from(at);
            if timer.as_ref().is_none_or(|timer| timer.deadline() != at) {
                *timer = Some(Box::pin(tokio::time::sleep_until(at)));
            }
        }
    }
}

/// Whether the connection goes on after a write.
enum Step {
    Go,
    End,
}

/// Writes one batch of the outbox, and the close it carries (boxed, and only while it
/// runs).
fn write_out<'a, W: Wire>(
    socket: &'a mut W,
    outbox: &'a Outbox,
    metrics: &'a Metrics,
    heartbeat: &'a Heartbeat,
    ping: &'a mut tokio::time::Interval,
    batch: Batch,
) -> BoxedFuture<'a, Step> {
    boxed_with(move || async move {
        let close = batch.close;
        if let Some(reason) = close {
            metrics.close(reason.label());
        }
        count_frames(metrics, &batch.frames);
        match write_batch(socket, outbox, metrics, heartbeat, ping, batch).await {
            Written::Done(true) if close.is_none() => {
                outbox.written();
                Step::Go
            }
            Written::Done(_) => Step::End,
            Written::Closed(reason, whole) => {
                if whole {
                    let close = Message::Close(Some(reason.ws_frame()));
                    let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(close)).await;
                }
                Step::End
            }
            // It reads nothing: a close frame would not get through either.
            Written::Stalled => {
                metrics.close("stalled");
                Step::End
            }
        }
    })
}

/// What the heartbeat's tick came to.
enum Beat {
    /// The ping went out.
    Sent,
    /// The client looked silent, but a frame of its was waiting, unread.
    Heard(Option<Result<Message, tungstenite::Error>>),
    /// The client is silent, or reads nothing.
    End,
}

/// On the heartbeat: a client silent for two intervals is let go; otherwise a ping, with
/// a deadline (boxed, and only while it runs).
fn heartbeat_due<'a, W: Wire>(
    socket: &'a mut W,
    last_heard: Instant,
    heartbeat: &'a Heartbeat,
    metrics: &'a Metrics,
) -> BoxedFuture<'a, Beat> {
    boxed_with(move || async move {
        if heartbeat.silent(last_heard) {
            // What the client said may be waiting in the socket, unread because this
            // server was busy: that is not silence.
            return match socket.next().now_or_never() {
                Some(waiting) => Beat::Heard(waiting),
                None => {
                    metrics.close("heartbeat");
                    Beat::End
                }
            };
        }
        // Every write has a deadline: a client that reads nothing (its socket full of
        // pongs to its own pings, say) cannot hold this one for ever.
        let every = heartbeat.every();
        let ping = socket.send(Message::Ping(Default::default()));
        match tokio::time::timeout(2 * every, ping).await {
            Ok(Ok(())) => Beat::Sent,
            Ok(Err(_)) => Beat::End,
            Err(_) => {
                metrics.close("stalled");
                Beat::End
            }
        }
    })
}

/// A future on the heap.
type BoxedFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The future on the heap, for as long as it runs. A plain function, not an `async` one:
/// the future is built in its frame and moved into the box, so the connection's own future
/// never holds a copy of it (an `async fn` would keep room for it in its state).
fn boxed_with<'a, T, F: Future<Output = T> + Send + 'a>(
    make: impl FnOnce() -> F,
) -> BoxedFuture<'a, T> {
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

/// How a greeting ended.
enum Greeted<W> {
    /// Welcomed: the connection, and a frame that came first and is still to be handled.
    Welcomed(Box<(W, Connection)>, Option<Message>),
    /// Refused before its welcome: the socket, and the outbox holding the refusal.
    Refused(Box<Parting<W>>, CloseReason),
    /// Gone, or silent: nobody to tell.
    Gone,
}

/// What a connection refused before its welcome still needs: a socket to write the refusal
/// and the close on, the outbox that holds them, the counters.
type Parting<W> = (W, Arc<Outbox>, Arc<Metrics>);

/// Welcomes the connection: a v1 one at once; a v2 one after its first frame, which should
/// be its `hello` (anything else is welcomed as a new session in `general`, then handled:
/// it is returned). A client that says nothing for two heartbeats is let go.
async fn greet<W: Wire>(
    arriving: Box<(W, Arrival)>,
    handshake: Handshake,
    heartbeat: &Heartbeat,
) -> Greeted<W> {
    let (mut socket, mut arrival) = *arriving;
    let outbox = arrival.outbox().clone();
    let metrics = arrival.metrics().clone();
    let (hello, first) = if handshake == Handshake::V1 {
        (None, None)
    } else {
        let first = match tokio::time::timeout(2 * heartbeat.every(), socket.next()).await {
            Err(_) => {
                metrics.close("heartbeat");
                return Greeted::Gone;
            }
            Ok(None) => return Greeted::Gone,
            Ok(Some(Err(err))) => {
                return match close_reason(&err) {
                    Some(reason) => Greeted::Refused(Box::new((socket, outbox, metrics)), reason),
                    None => Greeted::Gone,
                };
            }
            Ok(Some(Ok(message))) => message,
        };
        arrival.heard();
        match hello_of(&first) {
            Some(hello) => {
                metrics.frame_in("hello");
                (Some(hello), None)
            }
            None => (Some(Hello::default()), Some(first)),
        }
    };
    match arrival.welcome(hello).await {
        Ok(conn) => Greeted::Welcomed(Box::new((socket, conn)), first),
        Err(reason) => Greeted::Refused(Box::new((socket, outbox, metrics)), reason),
    }
}

/// The `hello` a first frame is, if it is one.
fn hello_of(first: &Message) -> Option<Hello> {
    let Message::Text(text) = first else {
        return None;
    };
    match decode_client(text.as_str()) {
        Ok(ClientMsg::Hello {
            resume,
            rooms,
            name,
            token,
        }) => Some(Hello {
            resume,
            rooms,
            name,
            token,
        }),
        _ => None,
    }
}

/// A connection refused before its welcome: what is queued (the refusal) goes out, then
/// the close, within [`CLOSE_GRACE`]; nothing more is read.
async fn part<W: Wire>(mut parting: Box<Parting<W>>, reason: CloseReason, heartbeat: &Heartbeat) {
    let (socket, outbox, metrics) = &mut *parting;
    outbox.close(reason);
    let deadline = tokio::time::sleep(CLOSE_GRACE);
    tokio::pin!(deadline);
    let every = heartbeat.every();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            batch = outbox.next_batch() => {
                match write_out(socket, outbox, metrics, heartbeat, &mut ping, batch).await {
                    Step::Go => continue,
                    Step::End => return,
                }
            }
            () = &mut deadline => return,
        }
    }
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
        close_reason(&err)
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
