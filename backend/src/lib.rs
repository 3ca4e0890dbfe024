//! Charla's server: serves the trunk-built page and relays [`shared`] messages over `/ws`.
//!
//! # Layout
//!
//! - [`config`]: [`Config`], the command line and its environment variables.
//! - [`hub`]: [`Hub`], who is connected; orders history lines and fans frames out to every
//!   connection's [`Outbox`] without ever waiting on a client.
//! - [`outbox`]: [`Outbox`], one connection's bounded outbound queue; typing is conflated in it.
//! - [`ws`]: one connection: admission and upgrade, its read loop (rate limits, then the one
//!   `match` on `ClientMsg`) and its write loop (batched flushes).
//! - [`store`]: [`HistoryStore`], where history lines are kept ([`MemoryStore`] today).
//! - [`admission`]: who may open a socket: origin check, global and per-IP connection limits.
//! - [`rate`]: per-connection token buckets, and when staying over the limit closes (1008).
//! - [`metrics`]: the counters behind `/metrics` (Prometheus text format).
//! - [`http`]: the router: `/ws`, `/healthz`, `/metrics` and the page (any other path serves
//!   `index.html`).
//!
//! `main.rs` only parses the [`Config`], binds, and calls [`serve`] with a shutdown future;
//! tests call [`serve`] on `127.0.0.1:0` with their own.

pub mod admission;
pub mod config;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod outbox;
pub mod rate;
pub mod store;
pub mod ws;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

pub use config::Config;
pub use hub::Hub;
pub use outbox::Outbox;
pub use store::{HistoryStore, MemoryStore};
use tokio::net::TcpListener;

/// Serves the page and `/ws` on `listener` until `shutdown` completes, then closes every
/// WebSocket with 1001 "going away".
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = Arc::new(metrics::Metrics::new());
    let store: Box<dyn HistoryStore> = Box::new(MemoryStore::new(config.history_cap));
    let hub = Arc::new(Hub::new(store, config.outbox_bytes, metrics.clone()));
    let admission = admission::Admission::new(
        &config.allow_origins,
        config.require_origin,
        to_usize(config.max_connections),
        to_usize(config.max_connections_per_ip),
    );
    let state = http::AppState {
        hub: hub.clone(),
        metrics,
        admission: Arc::new(admission),
        limits: ws::Limits {
            max_frame_bytes: to_usize(config.max_frame_bytes),
            max_text_chars: to_usize(config.max_text_chars),
            send_rate: config.send_rate,
            send_burst: config.send_burst,
            frame_rate: config.frame_rate,
            close_after: Duration::from_secs(u64::from(config.rate_limit_close_after)),
        },
    };
    let app = http::app(state, &config.dist).into_make_service_with_connect_info::<SocketAddr>();
    let hub_for_shutdown = hub.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Upgraded sockets are not HTTP requests: axum does not wait for them. Tell
            // each client why it is going, so pages can show it and come back later.
            hub_for_shutdown.close_all();
        })
        .await
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
