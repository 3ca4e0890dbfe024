//! The chat where WebSockets cannot open: Server-Sent Events out, POSTs in. The same
//! session as `/ws?v=2`, not a second protocol: a transport is one more [`Wire`] under the
//! one connection loop, so its outbox, limits, rooms, acks, resume and close are the
//! WebSocket's.
//!
//! - `POST /sse` opens a transport (after the same Host/Origin checks and connection limits
//!   as an upgrade): its body holds the first frames (the `hello`), one JSON message per
//!   line. The answer (201) names the transport: `{"transport": "<id>"}`, 128 random bits
//!   that are the only key to it.
//! - `GET /sse/<id>` is its event stream (`text/event-stream`): every frame the connection
//!   sends is one event, `id: <n>` then `data: <the ServerMsg JSON>` (a binary frame is
//!   `event: binary`, its data in base64). `event: ping` is the heartbeat, answered by any
//!   POST (an empty one will do); `event: close` carries what a WebSocket close frame would
//!   (`{"code", "reason"}`), then the stream ends. A stream reopened with `Last-Event-ID: n`
//!   (an `EventSource` does it by itself) continues after event `n`: nothing lost, nothing
//!   twice. Opening it again while it is open ends the older stream.
//! - `POST /sse/<id>`: frames for the connection, one JSON message per line; 202 once they
//!   are queued, in order. `DELETE /sse/<id>` is the client's close.
//!
//! Bounds: a POST for a transport that does not exist is 404; a POST over the size limit is
//! 413 and one the connection has no room for (64 frames waiting) is 429, and neither takes
//! any of its lines; the frame rate limits then apply to what was taken, as on a WebSocket.
//! A stream that is not read stops the connection's writes, and the outbox's limit and the
//! stall rule end it; a stream reopened too late for the events it missed (more than
//! [`REPLAY_BYTES`] since) is 410, and the client starts a new transport, resuming its
//! session. A transport whose client stopped posting ends after two heartbeats, like a
//! silent WebSocket.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use futures_channel::mpsc as body_channel;
use futures_util::{Sink, Stream, StreamExt as _};
use serde_json::json;
use tokio::sync::mpsc;
use tungstenite::{Error, Message};

use super::{Handshake, admit, run, wire::Wire};
use crate::{outbox::Frame, state::AppState};

/// Frames posted and not yet handled by the connection, at most: a POST that does not fit
/// is refused whole (429).
pub(crate) const INBOX_FRAMES: usize = 64;

/// Events between the connection and the HTTP response, at most: past them the
/// connection's writes wait, as on a full TCP socket.
const STREAM_EVENTS: usize = 16;

/// Bytes of events already sent kept for a stream that reconnects (`Last-Event-ID`).
pub(crate) const REPLAY_BYTES: usize = 256 * 1024;

/// What `retry:` tells an `EventSource`: reconnect after this many milliseconds.
const RETRY_MS: u32 = 1000;

/// A POST's body may hold this many of the largest frames.
const POST_FRAMES_OF_MAX_SIZE: usize = 4;

/// The routes: `POST /sse`, and `GET`, `POST` and `DELETE` on `/sse/{id}`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/sse", post(open)).route(
        "/sse/{id}",
        axum::routing::get(stream).post(frames).delete(close),
    )
}

/// The transports that exist, by id.
#[derive(Default)]
pub(crate) struct Transports {
    by_id: Mutex<HashMap<String, Arc<Transport>>>,
}

impl Transports {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Transport>>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<Arc<Transport>> {
        self.lock().get(id).cloned()
    }
}

/// What the HTTP handlers and the connection share of one transport.
struct Transport {
    /// Frames posted, for the connection to read.
    inbox: mpsc::Sender<Message>,
    /// The events and the stream they go to.
    events: Mutex<Events>,
}

impl Transport {
    fn events(&self) -> MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A transport's events: those sent and kept for a reconnecting stream, those waiting to
/// be sent, and the stream that is open now.
struct Events {
    /// The open stream, if one is.
    stream: Option<body_channel::Sender<Bytes>>,
    /// A write waiting for a stream to open.
    waiting: Option<Waker>,
    /// Events by id, oldest first: ids `last - queue.len() + 1 ..= last`.
    queue: VecDeque<Bytes>,
    /// Their bytes.
    queued_bytes: usize,
    /// The newest event's id (0: none yet).
    last: u64,
    /// The newest event handed to the open stream.
    sent: u64,
    /// The connection ended: no stream may open.
    ended: bool,
}

/// Why a stream could not open.
enum Reopen {
    /// `Last-Event-ID` names an event that was never sent.
    Ahead,
    /// Events after `Last-Event-ID` are no longer kept.
    TooLate,
    /// The connection ended.
    Ended,
}

impl Events {
    fn new() -> Self {
        Events {
            stream: None,
            waiting: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            last: 0,
            sent: 0,
            ended: false,
        }
    }

    /// The id of the oldest event kept.
    fn first(&self) -> u64 {
        self.last + 1 - self.queue.len() as u64
    }

    /// Adds an event (its id is the next one).
    fn push(&mut self, event: impl FnOnce(u64) -> Bytes) {
        self.last += 1;
        let event = event(self.last);
        self.queued_bytes += event.len();
        self.queue.push_back(event);
    }

    /// Hands every event not yet sent to the open stream; pending while the stream is full
    /// or none is open (a new one wakes it), ready once all are sent.
    fn send_all(&mut self, cx: &mut Context<'_>, progress: &AtomicUsize) -> Poll<()> {
        while self.sent < self.last {
            let index = usize::try_from(self.sent + 1 - self.first()).unwrap_or(0);
            let Some(stream) = self.stream.as_mut() else {
                self.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            };
            match stream.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                // The response was dropped (its client went): wait for it to reopen.
                Poll::Ready(Err(_)) => self.stream = None,
                Poll::Ready(Ok(())) => {
                    let event = self.queue[index].clone();
                    let len = event.len();
                    if stream.start_send(event).is_err() {
                        self.stream = None;
                        continue;
                    }
                    self.sent += 1;
                    progress.fetch_add(len, Ordering::Relaxed);
                }
            }
        }
        self.forget_old();
        Poll::Ready(())
    }

    /// Drops the oldest events sent while more than [`REPLAY_BYTES`] are kept.
    fn forget_old(&mut self) {
        while self.queued_bytes > REPLAY_BYTES && self.first() <= self.sent {
            if let Some(event) = self.queue.pop_front() {
                self.queued_bytes -= event.len();
            }
        }
    }

    /// Opens a stream that continues after event `after`: the events after it go first
    /// (they are returned), then everything new; an open stream ends.
    fn reopen(
        &mut self,
        after: u64,
    ) -> Result<(Vec<Bytes>, body_channel::Receiver<Bytes>), Reopen> {
        if self.ended {
            return Err(Reopen::Ended);
        }
        if after > self.last {
            return Err(Reopen::Ahead);
        }
        if after + 1 < self.first() {
            return Err(Reopen::TooLate);
        }
        // Events up to `after` reached the client: it needs them no more.
        while self.first() <= after {
            if let Some(event) = self.queue.pop_front() {
                self.queued_bytes -= event.len();
            }
        }
        let replay = self.queue.iter().cloned().collect();
        let (sender, receiver) = body_channel::channel(STREAM_EVENTS);
        // The older stream's sender is dropped here: its response ends.
        self.stream = Some(sender);
        self.sent = self.last;
        if let Some(waiting) = self.waiting.take() {
            waiting.wake();
        }
        Ok((replay, receiver))
    }
}

/// One transport as its connection's loop uses it: a [`Wire`].
pub(crate) struct SseWire {
    id: String,
    transport: Arc<Transport>,
    inbox: mpsc::Receiver<Message>,
    transports: Arc<Transports>,
    /// A ping or a close to send once the data events before it are.
    control: Option<Bytes>,
    /// The close went out: the stream ends after it.
    closed: bool,
}

impl Drop for SseWire {
    fn drop(&mut self) {
        self.transports.lock().remove(&self.id);
        let mut events = self.transport.events();
        events.ended = true;
        // Ends the response.
        events.stream = None;
    }
}

impl Stream for SseWire {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inbox.poll_recv(cx).map(|m| m.map(Ok))
    }
}

impl Sink<Message> for SseWire {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_flush(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        let this = self.get_mut();
        match message {
            Message::Ping(_) => this.control = Some(Bytes::from_static(b"event: ping\ndata:\n\n")),
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                    .unwrap_or((1000, String::new()));
                let data = json!({ "code": code, "reason": reason });
                this.control = Some(Bytes::from(format!("event: close\ndata: {data}\n\n")));
                this.closed = true;
            }
            Message::Text(text) => this
                .transport
                .events()
                .push(|id| event(id, false, &[text.as_bytes()])),
            Message::Binary(bytes) => this
                .transport
                .events()
                .push(|id| event(id, true, &[&bytes[..]])),
            Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        let unused = AtomicUsize::new(0);
        let mut events = this.transport.events();
        if this.control.is_none() {
            // Data events sent as messages (none but in tests) go out on a flush too.
            return events.send_all(cx, &unused).map(Ok);
        }
        if events.stream.is_some() {
            std::task::ready!(events.send_all(cx, &unused));
        }
        if let (Some(control), Some(stream)) = (&this.control, events.stream.as_mut()) {
            match stream.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    let _ = stream.start_send(control.clone());
                }
                Poll::Ready(Err(_)) => events.stream = None,
            }
        }
        // With no stream open, a ping has nobody to reach and a close nobody to tell (a
        // stream that reopens later finds the transport gone and starts again).
        this.control = None;
        if this.closed {
            events.ended = true;
            events.stream = None;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_flush(cx)
    }
}

impl Wire for SseWire {
    fn write_frames<'a>(
        &'a mut self,
        frames: &'a [Frame],
        progress: &'a AtomicUsize,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
        {
            let mut events = self.transport.events();
            for frame in frames {
                let mut pieces: Vec<&[u8]> = Vec::new();
                frame.for_each_piece(|piece| pieces.push(piece));
                events.push(|id| event(id, frame.is_binary(), &pieces));
            }
        }
        let transport = &self.transport;
        futures_util::future::poll_fn(move |cx| transport.events().send_all(cx, progress).map(Ok))
    }
}

/// One event: `id: <id>`, then the frame's bytes as `data:` (text as it is, binary in
/// base64 with `event: binary`).
fn event(id: u64, binary: bool, pieces: &[&[u8]]) -> Bytes {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 32);
    out.extend_from_slice(format!("id: {id}\n").as_bytes());
    if binary {
        let whole = pieces.concat();
        out.extend_from_slice(b"event: binary\ndata: ");
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(whole)
                .as_bytes(),
        );
    } else {
        out.extend_from_slice(b"data: ");
        for piece in pieces {
            // The server's JSON has no raw line breaks; if a frame ever did, each line
            // would be a `data:` line of its own (the client joins them with `\n`).
            for &byte in *piece {
                match byte {
                    b'\n' => out.extend_from_slice(b"\ndata: "),
                    b'\r' => {}
                    _ => out.push(byte),
                }
            }
        }
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Marks an HTTP connection whose response is a stream: the accept loop's deadlines do not
/// apply to it (the stream has the connection's own: the stall rule and the heartbeat).
#[derive(Clone)]
pub(crate) struct LongLived(pub Arc<AtomicBool>);

/// A refusal on these endpoints: `{"error", "code", "message"}`, as the server API's.
fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": code, "code": code, "message": message });
    (status, axum::Json(body)).into_response()
}

fn unknown() -> Response {
    refused(
        StatusCode::NOT_FOUND,
        "unknown_transport",
        "no such transport: it ended, or never existed; open a new one with POST /sse",
    )
}

/// The transport `/sse/{id}` names, once the request's `Host` and `Origin` pass; or the
/// refusal (`403`, or `404 unknown_transport`).
fn find(app: &AppState, headers: &HeaderMap, id: &str) -> Result<Arc<Transport>, Box<Response>> {
    if let Err(refusal) = app.admission.check_origin(headers) {
        return Err(Box::new(
            (refusal.status(), refusal.message()).into_response(),
        ));
    }
    app.transports.get(id).ok_or_else(|| Box::new(unknown()))
}

/// The frames of a POST body: one message per line (an empty body says only "still
/// here", which a WebSocket's pong says). Refused whole if too big or not UTF-8.
async fn read_frames(app: &AppState, body: Body) -> Result<Vec<Message>, Response> {
    let max = app.limits.max_frame_bytes;
    let too_big = || {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_big",
            "a line is over the frame size limit, or the body over four of them",
        )
    };
    let bytes = axum::body::to_bytes(body, max.saturating_mul(POST_FRAMES_OF_MAX_SIZE))
        .await
        .map_err(|_| too_big())?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| refused(StatusCode::BAD_REQUEST, "bad_utf8", "the body is not UTF-8"))?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty())
        .collect();
    if lines.iter().any(|line| line.len() > max) {
        return Err(too_big());
    }
    if lines.is_empty() {
        return Ok(vec![Message::Pong(Default::default())]);
    }
    Ok(lines.into_iter().map(Message::text).collect())
}

/// Queues frames for the connection, all or none: false (nothing taken) if its inbox has
/// no room for them all.
fn queue(transport: &Transport, frames: Vec<Message>) -> bool {
    let Ok(permits) = transport.inbox.try_reserve_many(frames.len()) else {
        return false;
    };
    for (permit, frame) in permits.zip(frames) {
        permit.send(frame);
    }
    true
}

/// The answer to frames [`queue`] could not take.
fn busy() -> Response {
    refused(
        StatusCode::TOO_MANY_REQUESTS,
        "busy",
        "too many frames waiting for this connection; nothing was taken: post again later",
    )
}

/// `POST /sse`: opens a transport; the body holds its first frames (the `hello`).
async fn open(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let permit = match admit(&app, &headers, peer) {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    let frames = match read_frames(&app, body).await {
        Ok(frames) => frames,
        Err(refusal) => return refusal,
    };
    let (sender, inbox) = mpsc::channel(INBOX_FRAMES);
    let transport = Arc::new(Transport {
        inbox: sender,
        events: Mutex::new(Events::new()),
    });
    if !queue(&transport, frames) {
        return busy();
    }
    let id = crate::hub::random_token(16);
    app.transports.lock().insert(id.clone(), transport.clone());
    let wire = SseWire {
        id: id.clone(),
        transport,
        inbox,
        transports: app.transports.clone(),
        control: None,
        closed: false,
    };
    tokio::spawn(run(wire, app, Handshake::V2, peer, permit));
    let location = format!("/sse/{id}");
    let mut response = (
        StatusCode::CREATED,
        axum::Json(json!({ "transport": id, "events": location, "post": location })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /sse/{id}`: the transport's events, after `Last-Event-ID` if sent.
async fn stream(
    State(app): State<AppState>,
    Path(id): Path<String>,
    long_lived: Option<Extension<LongLived>>,
    headers: HeaderMap,
) -> Response {
    let transport = match find(&app, &headers, &id) {
        Ok(transport) => transport,
        Err(refusal) => return *refusal,
    };
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(after) => after,
            None => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "bad_last_event_id",
                    "Last-Event-ID must be an event id this stream sent",
                );
            }
        },
    };
    let (replay, receiver) = match transport.events().reopen(after) {
        Ok(opened) => opened,
        Err(Reopen::Ended) => return unknown(),
        Err(Reopen::Ahead) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "bad_last_event_id",
                "Last-Event-ID names an event this stream never sent",
            );
        }
        Err(Reopen::TooLate) => {
            return refused(
                StatusCode::GONE,
                "stream_gone",
                "the events after Last-Event-ID are no longer kept: open a new transport and resume the session",
            );
        }
    };
    if let Some(Extension(LongLived(flag))) = long_lived {
        flag.store(true, Ordering::Relaxed);
    }
    let first = Bytes::from(format!("retry: {RETRY_MS}\n\n"));
    let body = futures_util::stream::iter(std::iter::once(first).chain(replay))
        .chain(receiver)
        .map(Ok::<_, Infallible>);
    event_stream(Body::from_stream(body))
}

/// An event stream's response: `body`, never cached nor buffered on the way, on a
/// connection that ends with it.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut response = body.into_response();
    let set = response.headers_mut();
    set.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    set.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer responses (nginx) would hold the events back.
    set.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // The HTTP connection ends with the stream, rather than idling on without deadlines.
    set.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `POST /sse/{id}`: frames for the connection, one per line.
async fn frames(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let transport = match find(&app, &headers, &id) {
        Ok(transport) => transport,
        Err(refusal) => return *refusal,
    };
    let frames = match read_frames(&app, body).await {
        Ok(frames) => frames,
        Err(refusal) => return refusal,
    };
    if !queue(&transport, frames) {
        return busy();
    }
    StatusCode::ACCEPTED.into_response()
}

/// `DELETE /sse/{id}`: the client leaves (a WebSocket's close).
async fn close(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let transport = match find(&app, &headers, &id) {
        Ok(transport) => transport,
        Err(refusal) => return *refusal,
    };
    if !queue(&transport, vec![Message::Close(None)]) {
        return busy();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(events: &mut Events, n: usize) {
        for i in 0..n {
            events.push(|id| event(id, false, &[format!("{{\"n\":{i}}}").as_bytes()]));
        }
    }

    #[test]
    fn an_event_is_its_id_and_its_data() {
        assert_eq!(
            &event(7, false, &[b"{\"a\":", b"1}"])[..],
            b"id: 7\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &event(8, true, &[&[0, 1, 2]])[..],
            b"id: 8\nevent: binary\ndata: AAEC\n\n"
        );
        assert_eq!(
            &event(9, false, &[b"a\nb"])[..],
            b"id: 9\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn a_reopened_stream_gets_what_came_after_its_last_event_and_no_more() {
        let mut events = Events::new();
        frames_of(&mut events, 5);
        let (replay, _rx) = events.reopen(0).ok().expect("opens");
        assert_eq!(replay.len(), 5);
        assert!(matches!(events.reopen(6), Err(Reopen::Ahead)));
        let (replay, _rx) = events.reopen(3).ok().expect("reopens");
        assert_eq!(replay.len(), 2);
        assert!(replay[0].starts_with(b"id: 4\n"));
        // Events up to 3 are forgotten: the client had them.
        assert!(matches!(events.reopen(2), Err(Reopen::TooLate)));
        events.ended = true;
        assert!(matches!(events.reopen(5), Err(Reopen::Ended)));
    }
}
