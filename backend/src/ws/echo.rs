//! `GET /echo`: a plain WebSocket echo server, for wscat and the echo page. Every text or
//! binary frame comes back as it came (no JSON), under `/ws`'s limits: the same host and
//! origin check and connection places, the same frame rate (frames over it are dropped;
//! staying over it closes with 1008), and the same heartbeat. Frames may be as large as the
//! exercise's largest binary frame, 64 KiB (or `--max-frame-bytes`, if larger); past that,
//! 1009.

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{
        ConnectInfo, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::SinkExt;
use shared::exercises::MAX_BINARY_BYTES;

use super::{CLOSE_GRACE, admit, read::close_reason_axum};
use crate::{
    admission::Permit,
    metrics::TypeLabel,
    outbox::CloseReason,
    rate::{Persistence, TokenBucket},
    state::AppState,
};

/// Upgrades to the echo server, once admitted like `/ws`.
pub(crate) async fn upgrade(
    ws: WebSocketUpgrade,
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
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(super::READ_BUFFER_BYTES)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| run(socket, app, permit))
        .into_response()
}

/// Counts an open echo connection for as long as it lives.
struct Open(prometheus_client::metrics::gauge::Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn run(mut socket: WebSocket, app: AppState, permit: Permit) {
    let _permit = permit;
    app.metrics.echo_connections.inc();
    let _open = Open(app.metrics.echo_connections.clone());
    let limits = app.limits;
    let mut frames = TokenBucket::new(limits.frame_rate, limits.frame_rate, Instant::now());
    let mut over_limit = Persistence::new(limits.close_after);
    let every = limits.heartbeat;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut last_heard = Instant::now();
    let close = |reason: CloseReason| {
        app.metrics.close(reason.label());
        Message::Close(Some(reason.frame()))
    };
    let mut shutdown = app.shutdown.clone();
    let going_away = async move {
        let _ = shutdown.wait_for(|closing| *closing).await;
    };
    tokio::pin!(going_away);
    loop {
        let message = tokio::select! {
            message = socket.recv() => message,
            // The server is going away: say so (1001), as the chat's connections do.
            () = &mut going_away => {
                let reason = close(CloseReason::GoingAway);
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(reason)).await;
                return;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > 2 * every {
                    app.metrics.close("heartbeat");
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let now = Instant::now();
        let message = match message {
            None => return,
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                if let Some(reason) = close_reason_axum(err) {
                    let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(close(reason))).await;
                }
                return;
            }
        };
        last_heard = now;
        let echo = match message {
            Message::Text(_) | Message::Binary(_) => true,
            // Pings are answered by the WebSocket layer; they count against the rate.
            Message::Ping(_) => false,
            Message::Pong(_) => continue,
            Message::Close(_) => {
                // The answer to the close is queued; flushing sends it.
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.flush()).await;
                return;
            }
        };
        if !frames.try_take(now) {
            app.metrics
                .rate_limited
                .get_or_create(&TypeLabel { r#type: "echo" })
                .inc();
            if over_limit.refused(now) {
                let reason = close(CloseReason::RateLimited);
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(reason)).await;
                return;
            }
            continue;
        }
        if echo {
            // A client that stops reading stops being read: the echo waits for it, at most
            // two heartbeats.
            match tokio::time::timeout(2 * every, socket.send(message)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    app.metrics.close("stalled");
                    return;
                }
            }
        }
    }
}
