//! One WebSocket connection: admission, upgrade, then a read loop and a write loop.
//!
//! Before the upgrade, [`Admission`](crate::admission::Admission) checks the origin and the
//! connection limits. The read loop hands each frame to [`Connection::on_text`], which
//! rate-limits, decodes, and dispatches in the one exhaustive `match` on [`ClientMsg`];
//! refusals go back to the sender as `error` frames and the connection stays. The write loop
//! drains the connection's [`Outbox`] in batches: feed every ready frame, flush once. When
//! either loop ends the other is stopped and the hub forgets the connection.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{
        ConnectInfo, RawQuery, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use shared::{ClientMsg, ConnId, ErrorCode, Seq, ServerMsg, decode_client};

use crate::{
    admission::Permit,
    committer::{Committer, Job},
    http::AppState,
    hub::{Hub, Resume},
    metrics::{Metrics, ReasonLabel, TypeLabel},
    outbox::{CloseReason, Frame, Outbox},
    rate::{Persistence, TokenBucket},
};

/// How long the write loop may take to deliver a close frame after the read side failed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Per-connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest frame, in bytes (checked by the WebSocket layer).
    pub max_frame_bytes: usize,
    /// The longest `send`/`typing` text, in characters.
    pub max_text_chars: usize,
    /// `send`s per second, and how many at once.
    pub send_rate: u32,
    /// See `send_rate`.
    pub send_burst: u32,
    /// Other frames per second (and at once).
    pub frame_rate: u32,
    /// How long a connection may stay over a rate limit before it is closed.
    pub close_after: Duration,
    /// How often the server pings; a client silent for two intervals is dropped.
    pub heartbeat: Duration,
}

/// The most lines one `load_older` returns.
const MAX_OLDER: u32 = 500;
/// The longest nonce a `send` may carry, in characters.
const MAX_NONCE_CHARS: usize = 64;

/// `GET /ws`: checks the origin and the connection limits (403 / 503 / 429 before any
/// upgrade), then upgrades and runs the connection. Frames over the size limit are refused by
/// the WebSocket layer before their payload is read.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let admitted = app
        .admission
        .check_origin(&headers)
        .and_then(|()| app.admission.admit(peer.ip()));
    let permit = match admitted {
        Ok(permit) => permit,
        Err(refusal) => {
            tracing::info!(%peer, reason = refusal.label(), "refused a WebSocket upgrade");
            let reason = refusal.label();
            app.metrics
                .connections_refused
                .get_or_create(&ReasonLabel { reason })
                .inc();
            return (refusal.status(), refusal.message()).into_response();
        }
    };
    let resume = query.as_deref().and_then(parse_resume);
    let limits = app.limits;
    // Small buffers: frames are at most a few KiB, and per-connection memory is what a
    // server with ten thousand clients runs out of first.
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .read_buffer_size(limits.max_frame_bytes.min(16 * 1024))
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| run(socket, app, resume, permit))
}

/// Reads `resume=<token>&after=<seq>` from the query string; anything else is ignored.
fn parse_resume(query: &str) -> Option<Resume> {
    let mut token = None;
    let mut after = Seq(0);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("resume", value)) if !value.is_empty() && value.len() <= 64 => {
                token = Some(value.to_owned());
            }
            Some(("after", value)) => after = Seq(value.parse().ok()?),
            _ => {}
        }
    }
    Some(Resume {
        token: token?,
        after,
    })
}

/// Runs one connection until the client leaves, the socket fails, or the outbox closes.
async fn run(socket: WebSocket, app: AppState, resume: Option<Resume>, permit: Permit) {
    let resuming = resume.is_some();
    let joined = app.hub.join(resume);
    if let Some((token, id)) = joined.new_session {
        // If the queue is full the token only lives in memory until the next restart.
        let _ = app.committer.submit(Job::Session { token, id });
    }
    app.metrics.connections_accepted.inc();
    let conn = Connection::new(
        app.hub.clone(),
        app.committer.clone(),
        app.metrics.clone(),
        joined.id.clone(),
        joined.outbox,
        app.limits,
    );
    let id = joined.id;
    let outbox = conn.outbox.clone();
    tracing::info!(%id, online = joined.online, resuming, "client connected");

    let heartbeat = Heartbeat {
        every: app.limits.heartbeat,
        last_heard: conn.last_heard.clone(),
        started: conn.started,
    };
    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        app.metrics.clone(),
        heartbeat,
    ));
    let mut reader = tokio::spawn(read_loop(stream, conn));
    // Whichever side ends first ends the connection (as in axum's chat example), except that
    // a client that broke the rules is first told why, with a close frame.
    tokio::select! {
        _ = &mut writer => reader.abort(),
        ended = &mut reader => match ended {
            Ok(Some(reason)) => {
                tracing::info!(%id, reason = reason.label(), "closing a client that broke the rules");
                outbox.close(reason);
                if tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
                    writer.abort();
                }
            }
            _ => writer.abort(),
        },
    }
    let online = app.hub.leave(joined.conn);
    drop(permit);
    tracing::info!(%id, online, "client disconnected");
}

/// The server's side of the heartbeat: when to ping, and when the client last said anything.
struct Heartbeat {
    every: Duration,
    /// Milliseconds after `started` of the last frame read from the client.
    last_heard: Arc<AtomicU64>,
    started: Instant,
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
) {
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat.every,
        heartbeat.every,
    );
    loop {
        let batch = tokio::select! {
            batch = outbox.next_batch() => batch,
            _ = ping.tick() => {
                if heartbeat.silent() {
                    metrics.close("heartbeat");
                    return;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if let Some(reason) = batch.close {
            metrics.close(reason.label());
        }
        let close = batch.close;
        let frames = batch.frames;
        let metrics_ref = &metrics;
        // A client that stops reading blocks this write. The outbox stays bounded meanwhile
        // (it closes itself past its limit); when it does, or when the client has been silent
        // for two heartbeats, give the write a last grace period and hang up.
        let outcome = {
            let write = async {
                // Count per message type once per batch, not once per frame: this is the
                // fan-out's hottest loop, and a label lookup takes a lock.
                let mut counts: Vec<(&'static str, u64)> = Vec::new();
                for frame in &frames {
                    match counts.iter_mut().find(|(kind, _)| *kind == frame.kind) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((frame.kind, 1)),
                    }
                }
                for (kind, n) in counts {
                    metrics_ref
                        .frames_out
                        .get_or_create(&TypeLabel { r#type: kind })
                        .inc_by(n);
                }
                for frame in frames {
                    sink.feed(Message::Text(frame.bytes)).await?;
                }
                match close {
                    Some(reason) => sink.send(Message::Close(Some(reason.frame()))).await,
                    None => sink.flush().await,
                }
            };
            tokio::pin!(write);
            // Only a slow consumer is cut short: any other close (shutdown, a broken rule)
            // lets this batch finish and comes with the next one, after the frames before it.
            let mut watch_closing = close.is_none();
            loop {
                tokio::select! {
                    result = &mut write => break Written::Done(result.is_ok()),
                    reason = outbox.closed(), if watch_closing => {
                        if reason != CloseReason::SlowConsumer {
                            watch_closing = false;
                            continue;
                        }
                        let _ = tokio::time::timeout(CLOSE_GRACE, &mut write).await;
                        break Written::Closed(reason);
                    }
                    _ = ping.tick() => {
                        if heartbeat.silent() {
                            break Written::Silent;
                        }
                    }
                }
            }
        };
        match outcome {
            Written::Done(ok) => {
                if !ok || close.is_some() {
                    return;
                }
            }
            Written::Closed(reason) => {
                metrics.close(reason.label());
                let close = Message::Close(Some(reason.frame()));
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
                return;
            }
            Written::Silent => {
                metrics.close("heartbeat");
                return;
            }
        }
    }
}

/// How a batch's write ended.
enum Written {
    /// Written (or failed: `false`).
    Done(bool),
    /// The outbox closed while the write was stuck.
    Closed(CloseReason),
    /// The client went silent while the write was stuck.
    Silent,
}

impl Heartbeat {
    /// Whether the client has said nothing for two intervals.
    fn silent(&self) -> bool {
        let heard = Duration::from_millis(self.last_heard.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(heard) > 2 * self.every
    }
}

/// Reads until the client leaves (`None`) or must be closed (the close to send).
async fn read_loop(
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
            Message::Binary(_) => {
                conn.metrics.frame_in("binary");
                conn.refuse(
                    Instant::now(),
                    ErrorCode::BinaryFrame,
                    "binary frames are not part of the protocol; send JSON in a text frame",
                )
            }
            // Pings are answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) => None,
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

/// One connection's read side: who it is, its outbox, and its rate limits.
pub struct Connection {
    hub: Arc<Hub>,
    committer: Arc<Committer>,
    metrics: Arc<Metrics>,
    id: ConnId,
    outbox: Arc<Outbox>,
    limits: Limits,
    sends: TokenBucket,
    frames: TokenBucket,
    over_limit: Persistence,
    /// The newest typing text that arrived over the frame rate; sent when a token frees up.
    held_typing: Option<String>,
    /// Shared with the heartbeat: ms after `started` of the last frame read.
    last_heard: Arc<AtomicU64>,
    started: Instant,
}

impl Connection {
    /// A connection's read side, with full rate buckets.
    pub fn new(
        hub: Arc<Hub>,
        committer: Arc<Committer>,
        metrics: Arc<Metrics>,
        id: ConnId,
        outbox: Arc<Outbox>,
        limits: Limits,
    ) -> Self {
        let now = Instant::now();
        Connection {
            hub,
            committer,
            metrics,
            id,
            outbox,
            sends: TokenBucket::new(limits.send_rate, limits.send_burst, now),
            frames: TokenBucket::new(limits.frame_rate, limits.frame_rate, now),
            over_limit: Persistence::new(limits.close_after),
            limits,
            held_typing: None,
            last_heard: Arc::new(AtomicU64::new(0)),
            started: now,
        }
    }

    /// Notes that the client said something (any frame counts for the heartbeat).
    fn heard(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_heard.store(ms, Ordering::Relaxed);
    }

    /// Handles one text frame: the server's one dispatch on [`ClientMsg`]. Returns a close
    /// reason if the connection must end.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Option<CloseReason> {
        let msg = match decode_client(text) {
            Ok(msg) => msg,
            Err(err) => {
                self.metrics.frame_in("invalid");
                return self.refuse(now, err.code(), &err.to_string());
            }
        };
        self.metrics.frame_in(msg.type_name());
        match msg {
            ClientMsg::Typing { text } => {
                if let Err(why) = self.check_length(&text) {
                    return self.refuse(now, ErrorCode::TooLarge, &why);
                }
                // Over the rate, typing is conflated, not refused: keep only the newest text.
                if self.held_typing.is_some() || !self.frames.try_take(now) {
                    self.metrics
                        .rate_limited
                        .get_or_create(&TypeLabel { r#type: "typing" })
                        .inc();
                    self.held_typing = Some(text);
                } else {
                    self.hub.typing(&self.id, text);
                }
                None
            }
            ClientMsg::Send { text, nonce } => {
                if !self.sends.try_take(now) {
                    return self.rate_limited(now, "send");
                }
                if text.trim().is_empty() {
                    return self.refuse(now, ErrorCode::Empty, "a line cannot be blank");
                }
                if let Err(why) = self.check_length(&text) {
                    return self.refuse(now, ErrorCode::TooLarge, &why);
                }
                if nonce
                    .as_ref()
                    .is_some_and(|n| n.chars().nth(MAX_NONCE_CHARS).is_some())
                {
                    let why = format!("nonce is longer than {MAX_NONCE_CHARS} characters");
                    return self.refuse(now, ErrorCode::BadField, &why);
                }
                let job = Job::Line {
                    from: self.id.clone(),
                    text,
                    nonce,
                };
                if self.committer.submit(job).is_err() {
                    return self.refuse(
                        now,
                        ErrorCode::Unavailable,
                        "the server is busy; send it again later",
                    );
                }
                None
            }
            ClientMsg::LoadOlder { before, limit } => self.answer(now, |hub| {
                let limit = usize::try_from(limit.clamp(1, MAX_OLDER)).unwrap_or(1);
                let (lines, has_more) = hub.older(before, limit);
                ServerMsg::Older { lines, has_more }
            }),
            ClientMsg::Ping => self.answer(now, |_| ServerMsg::Pong),
        }
    }

    /// Answers a request with `reply()`, within the frame rate.
    fn answer(
        &mut self,
        now: Instant,
        reply: impl FnOnce(&Hub) -> ServerMsg,
    ) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        self.outbox.push(Frame::encode(&reply(&self.hub)));
        None
    }

    /// When a held-back typing update may go out, if there is one.
    pub fn held_typing_at(&mut self, now: Instant) -> Option<Instant> {
        self.held_typing.as_ref()?;
        Some(self.frames.next_token_at(now))
    }

    /// Sends the held-back typing update if the rate allows it now.
    pub fn release_typing(&mut self, now: Instant) {
        if self.held_typing.is_some()
            && self.frames.try_take(now)
            && let Some(text) = self.held_typing.take()
        {
            self.hub.typing(&self.id, text);
        }
    }

    fn check_length(&self, text: &str) -> Result<(), String> {
        let max = self.limits.max_text_chars;
        // Counting stops one past the limit: a long text costs no more than a short one.
        match text.chars().nth(max) {
            Some(_) => Err(format!("text is longer than {max} characters")),
            None => Ok(()),
        }
    }

    /// Tells the sender its frame was refused (connection stays), unless it is over its
    /// frame rate, in which case it is told that instead.
    pub fn refuse(&mut self, now: Instant, code: ErrorCode, message: &str) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        self.send_error(code, message);
        None
    }

    fn rate_limited(&mut self, now: Instant, kind: &'static str) -> Option<CloseReason> {
        self.metrics
            .rate_limited
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        if self.over_limit.refused(now) {
            return Some(CloseReason::RateLimited);
        }
        self.send_error(
            ErrorCode::RateLimited,
            "too many frames: slow down; this one was dropped",
        );
        None
    }

    fn send_error(&self, code: ErrorCode, message: &str) {
        self.metrics.error(code.as_str());
        self.outbox.push(Frame::encode(&ServerMsg::Error {
            code,
            message: message.to_owned(),
        }));
    }
}
