//! `GET /echo`: a plain WebSocket echo server, for wscat and the echo page. Every text or
//! binary frame comes back as it came (no JSON), under `/ws`'s limits: the same host and
//! origin check and connection places, the same frame rate (frames over it are dropped;
//! staying over it closes with 1008), and the same heartbeat. Frames may be as large as the
//! exercise's largest binary frame, 64 KiB (or `--max-frame-bytes`, if larger); past that,
//! 1009.
//!
//! It is a second [`Handler`] on the chat's own upgrade and loop ([`welcomed`]): the same
//! writes and their deadlines, the same heartbeat, the same close frames, and the same
//! 1001 when the server goes away (the hub closes its outbox with the chat's).

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State, ws::Utf8Bytes},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use shared::exercises::MAX_BINARY_BYTES;
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

use super::{
    Upgrade, admit,
    connection::Flow,
    runtime::{Handler, welcomed},
    write::Heartbeat,
};
use crate::{
    metrics::{Metrics, TypeLabel},
    outbox::{CloseReason, ConnKey, Frame, Outbox},
    rate::{Persistence, TokenBucket},
    state::AppState,
};

/// Upgrades to the echo server, once admitted like `/ws`.
pub(crate) async fn upgrade(
    ws: Upgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let permit = match admit(&app, &headers, peer) {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    let max = app
        .limits
        .max_frame_bytes
        .max(usize::try_from(MAX_BINARY_BYTES).unwrap_or(usize::MAX));
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(super::READ_BUFFER_BYTES)
        .write_buffer_size(0);
    ws.on_upgrade(config, move |socket| {
        let echo = Echo::new(&app);
        let key = echo.key;
        let heartbeat = Heartbeat::new(app.limits.heartbeat);
        let live = Box::new((socket, echo));
        let hub = app.hub.clone();
        async move {
            welcomed(live, None, &heartbeat).await;
            hub.disconnect_echo(key);
            drop(permit);
        }
    })
}

/// One echo connection: its outbox (registered with the hub, so shutdown closes it), its
/// frame rate, and when it was last heard.
pub(crate) struct Echo {
    key: ConnKey,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    frames: TokenBucket,
    over_limit: Persistence,
    last_heard: Instant,
}

impl Echo {
    fn new(app: &AppState) -> Self {
        let now = Instant::now();
        let limits = app.limits;
        let (key, outbox) = app.hub.connect_echo();
        app.metrics.echo_connections.inc();
        Echo {
            key,
            outbox,
            metrics: app.metrics.clone(),
            frames: TokenBucket::new(limits.frame_rate, limits.frame_rate, now),
            over_limit: Persistence::new(limits.close_after),
            last_heard: now,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.metrics.echo_connections.dec();
    }
}

impl Handler for Echo {
    fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }
    fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
    fn key(&self) -> ConnKey {
        self.key
    }
    fn last_heard(&self) -> Instant {
        self.last_heard
    }

    fn on_message(&mut self, message: Message) -> Flow {
        let now = Instant::now();
        self.last_heard = now;
        let echo = match message {
            Message::Text(text) => Utf8Bytes::try_from(Bytes::from(text)).ok().map(Frame::echo),
            Message::Binary(bytes) => Some(Frame::binary(bytes)),
            // Pings are answered by the WebSocket layer; they count against the rate.
            Message::Ping(_) => None,
            Message::Pong(_) | Message::Frame(_) => return Flow::Continue,
            Message::Close(_) => return Flow::Close(CloseReason::ClientClosed),
        };
        if !self.frames.try_take(now) {
            self.metrics
                .rate_limited
                .get_or_create(&TypeLabel { r#type: "echo" })
                .inc();
            if self.over_limit.refused(now) {
                return Flow::Close(CloseReason::RateLimited);
            }
            return Flow::Continue;
        }
        if let Some(frame) = echo {
            self.outbox.push(frame);
        }
        Flow::Continue
    }
}
