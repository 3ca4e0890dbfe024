//! The router: `/ws` (the chat), `/healthz`, and the page from the dist directory.

use std::{path::Path, sync::Arc};

use axum::{Router, routing::get};
use tower_http::services::{ServeDir, ServeFile};

use crate::{hub::Hub, ws};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The relay.
    pub hub: Arc<Hub>,
    /// The largest frame a client may send, in bytes.
    pub max_frame_bytes: usize,
}

/// Builds the application: `/ws` upgrades to the chat; `/healthz` answers `ok`; every other
/// path is a file from `dist`, or `dist/index.html` (the page routes on the client side).
pub fn app(state: AppState, dist: &Path) -> Router {
    let page = ServeDir::new(dist)
        .precompressed_gzip()
        .fallback(ServeFile::new(dist.join("index.html")));
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .fallback_service(page)
        .with_state(state)
}
