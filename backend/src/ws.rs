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
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{
        ConnectInfo, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use shared::{ClientMsg, ConnId, ErrorCode, ServerMsg, decode_client};

use crate::{
    admission::Permit,
    http::AppState,
    hub::Hub,
    metrics::{Metrics, ReasonLabel, TypeLabel},
    outbox::{CloseReason, Frame, Outbox},
    rate::{Persistence, TokenBucket},
};

/// How long the write loop may take to deliver a close frame after the read side failed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

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
}

/// `GET /ws`: checks the origin and the connection limits (403 / 503 / 429 before any
/// upgrade), then upgrades and runs the connection. Frames over the size limit are refused by
/// the WebSocket layer before their payload is read.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    let limits = app.limits;
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .on_upgrade(move |socket| run(socket, app.hub, app.metrics, limits, permit))
}

/// Runs one connection until the client leaves, the socket fails, or the outbox closes.
async fn run(
    socket: WebSocket,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    limits: Limits,
    permit: Permit,
) {
    let joined = hub.join();
    metrics.connections_accepted.inc();
    let conn = Connection::new(
        hub.clone(),
        metrics.clone(),
        joined.id.clone(),
        joined.outbox,
        limits,
    );
    let id = joined.id;
    let outbox = conn.outbox.clone();
    tracing::info!(%id, online = joined.online, "client connected");

    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, outbox.clone(), metrics));
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
    let online = hub.leave(&id);
    drop(permit);
    tracing::info!(%id, online, "client disconnected");
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
) {
    loop {
        let batch = outbox.next_batch().await;
        for frame in batch.frames {
            metrics
                .frames_out
                .get_or_create(&TypeLabel { r#type: frame.kind })
                .inc();
            if sink.feed(Message::Text(frame.bytes)).await.is_err() {
                return;
            }
        }
        if let Some(reason) = batch.close {
            metrics.close(reason.label());
            // Best effort: the client may already be gone.
            let _ = sink.send(Message::Close(Some(reason.frame()))).await;
            return;
        }
        if sink.flush().await.is_err() {
            return;
        }
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
    metrics: Arc<Metrics>,
    id: ConnId,
    outbox: Arc<Outbox>,
    limits: Limits,
    sends: TokenBucket,
    frames: TokenBucket,
    over_limit: Persistence,
    /// The newest typing text that arrived over the frame rate; sent when a token frees up.
    held_typing: Option<String>,
}

impl Connection {
    /// A connection's read side, with full rate buckets.
    pub fn new(
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        id: ConnId,
        outbox: Arc<Outbox>,
        limits: Limits,
    ) -> Self {
        let now = Instant::now();
        Connection {
            hub,
            metrics,
            id,
            outbox,
            sends: TokenBucket::new(limits.send_rate, limits.send_burst, now),
            frames: TokenBucket::new(limits.frame_rate, limits.frame_rate, now),
            over_limit: Persistence::new(limits.close_after),
            limits,
            held_typing: None,
        }
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
            ClientMsg::Send { text, nonce: _ } => {
                if !self.sends.try_take(now) {
                    return self.rate_limited(now, "send");
                }
                if text.trim().is_empty() {
                    return self.refuse(now, ErrorCode::Empty, "a line cannot be blank");
                }
                if let Err(why) = self.check_length(&text) {
                    return self.refuse(now, ErrorCode::TooLarge, &why);
                }
                self.hub.send(&self.id, text);
                None
            }
        }
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
