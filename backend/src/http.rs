//! The router: `/ws` (the chat and the exercises' JSON messages), `/echo` (a plain echo
//! server), `/api/products`, `/healthz`, `/metrics`, and the page from the dist directory.

use std::{net::SocketAddr, path::Path};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::{api, server_api, signin, state::AppState, ws};

/// Builds the application: `/ws` upgrades to the chat; `/echo` upgrades to the echo server
/// (and, asked for without an upgrade, is the echo page); `/api/products` is the product
/// API; `/admin` is the operator's console (`dist/console/index.html`); `/healthz` answers `ok`; `/metrics` is the Prometheus text exposition; the exercise
/// pages' paths are `dist/exercises/index.html` (their app, a wasm of its own); every other
/// path is a file from `dist`, or `dist/index.html` (the chat, which routes on the client
/// side).
pub(crate) fn app(state: AppState, dist: &Path) -> Router {
    // Brotli or gzip copies made at build time (scripts/precompress.sh), chosen by the
    // browser's Accept-Encoding; the file itself otherwise.
    let page_file = |path: std::path::PathBuf| {
        let file = ServeFile::new(path).precompressed_br().precompressed_gzip();
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(cache_control))
            .map_response(
                |r: Response<tower_http::services::fs::ServeFileSystemResponseBody>| {
                    r.map(Body::new)
                },
            )
            .service(file)
    };
    let index = ServeFile::new(dist.join("index.html"))
        .precompressed_br()
        .precompressed_gzip();
    let exercises = page_file(dist.join(shared::exercises::PAGES_DIR).join("index.html"));
    // The operator's console, a wasm of its own; its data answers only the key or an admin.
    let console = page_file(dist.join("console").join("index.html"));
    let page = ServeDir::new(dist)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(index);
    let page = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(cache_control))
        .map_response(
            |r: Response<tower_http::services::fs::ServeFileSystemResponseBody>| r.map(Body::new),
        )
        .service(page);
    let echo_page = exercises.clone();
    let echo = move |upgrade: Result<ws::Upgrade, ws::UpgradeRejection>,
                     app: State<AppState>,
                     peer: ConnectInfo<SocketAddr>,
                     headers: HeaderMap,
                     request: Request| async move {
        match upgrade {
            Ok(upgrade) => ws::echo::upgrade(upgrade, app, peer, headers).await,
            // A browser opening the echo page.
            Err(_) => match echo_page.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
        }
    };
    let mut router = Router::new()
        .route("/ws", get(ws::upgrade))
        .merge(ws::sse::routes())
        .merge(crate::lesson::routes())
        .route("/echo", get(echo));
    for path in shared::exercises::PAGES
        .into_iter()
        .filter(|p| *p != "/echo")
    {
        router = router.route_service(path, exercises.clone());
    }
    router
        .route_service("/admin", console.clone())
        .route_service("/admin/", console)
        .merge(api::routes())
        .merge(server_api::routes())
        .merge(signin::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .fallback_service(page)
        .with_state(state)
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refusal) = app.admission.check_host(&headers) {
        return (refusal.status(), refusal.message()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// How long a browser may keep a file: trunk's hashed files (`name-<hex>.ext`) never change,
/// so for a year without asking again; anything else (`index.html`, which names the current
/// hashed files) is checked on every visit.
async fn cache_control(request: Request, next: axum::middleware::Next) -> Response {
    let value = if is_hashed(request.uri().path()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = next.run(request).await;
    if response.status().is_success() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(value),
        );
    }
    response
}

/// Whether a path names one of trunk's hashed files: `…-<12 to 16 hex digits>` (then `_bg`
/// or nothing) before the extension.
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    name.contains('.')
        && stem.rsplit_once('-').is_some_and(|(_, hash)| {
            (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn trunks_hashed_names_are_told_apart() {
        for hashed in [
            "/frontend-70569a3a65da4c87_bg.wasm",
            "/frontend-70569a3a65da4c87.js",
            "/style-d45e03cdc214699.css",
        ] {
            assert!(is_hashed(hashed), "{hashed}");
        }
        for plain in [
            "/",
            "/index.html",
            "/r/dev",
            "/echo",
            "/my-room",
            "/a-b.css",
        ] {
            assert!(!is_hashed(plain), "{plain}");
        }
    }
}
