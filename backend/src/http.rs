//! The router: `/ws` (the chat), `/healthz`, `/metrics`, and the page from the dist directory.

use std::path::Path;

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use tower_http::services::{ServeDir, ServeFile};

use crate::{state::AppState, ws};

/// Builds the application: `/ws` upgrades to the chat; `/healthz` answers `ok`; `/metrics`
/// is the Prometheus text exposition; every other path is a file from `dist`, or
/// `dist/index.html` (the page routes on the client side).
pub(crate) fn app(state: AppState, dist: &Path) -> Router {
    let page = ServeDir::new(dist)
        .precompressed_gzip()
        .fallback(ServeFile::new(dist.join("index.html")));
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .fallback_service(page)
        .with_state(state)
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
