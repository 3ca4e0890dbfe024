//! Charla's server: serves the trunk-built page and relays [`shared`] messages over `/ws`.
//!
//! # Layout
//!
//! - [`config`]: [`Config`], the command line and its environment variables.
//! - [`hub`]: [`Hub`], who is connected; orders history lines and fans frames out to every
//!   connection's [`Outbox`] without ever waiting on a client.
//! - [`outbox`]: [`Outbox`], one connection's bounded outbound queue; typing is conflated in it.
//! - [`ws`]: one connection: the upgrade, its read loop (the one `match` on `ClientMsg`) and its
//!   write loop (batched flushes).
//! - [`store`]: [`HistoryStore`], where history lines are kept ([`MemoryStore`] today).
//! - [`http`]: the router: `/ws`, `/healthz` and the page (any other path serves `index.html`).
//!
//! `main.rs` only parses the [`Config`], binds, and calls [`serve`] with a shutdown future;
//! tests call [`serve`] on `127.0.0.1:0` with their own.

pub mod config;
pub mod http;
pub mod hub;
pub mod outbox;
pub mod store;
pub mod ws;

use std::{future::Future, sync::Arc};

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
    let store: Box<dyn HistoryStore> = Box::new(MemoryStore::new(config.history_cap));
    let hub = Arc::new(Hub::new(store, config.outbox_bytes));
    let state = http::AppState {
        hub: hub.clone(),
        max_frame_bytes: usize::try_from(config.max_frame_bytes).unwrap_or(usize::MAX),
    };
    let app = http::app(state, &config.dist);
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
