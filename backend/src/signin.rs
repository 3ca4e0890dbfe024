//! What the page needs to sign in: `GET /api/config` (the auth mode, where to get a token,
//! whether dev login is on) and, with `--dev-login` only, `POST /api/dev/token`, which mints
//! a token for any user id asked for. Dev login is for trying sign-in out, never for
//! production: anyone who can reach the page can be anyone.

use std::net::SocketAddr;

use axum::{
    Json, Router,
    body::Body,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;

use crate::{api::MAX_BODY_BYTES, auth::now_secs, rate::AddressKey, state::AppState};

/// The routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/config", get(config))
        .route("/api/dev/token", post(dev_token))
}

/// `GET /api/config`: `{"auth", "token_url", "dev_login"}`.
async fn config(State(app): State<AppState>) -> Response {
    Json(json!({
        "auth": app.auth.mode(),
        "token_url": app.auth.token_url,
        "dev_login": app.auth.dev_login,
    }))
    .into_response()
}

/// `POST /api/dev/token`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevLogin {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rooms: Vec<String>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    let body = json!({ "error": code, "code": code, "message": message });
    (status, Json(body)).into_response()
}

/// `POST /api/dev/token`: `{"token", "exp"}` for the user asked for (404 without
/// `--dev-login`). Checked like the product API's writes: this server's own pages (or no
/// `Origin`), at a rate per address.
async fn dev_token(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !app.auth.dev_login {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "dev login is off (start the server with --dev-login)",
        );
    }
    if let Err(refusal) = app.admission.check_origin(&headers) {
        return error(
            refusal.status(),
            refusal.label(),
            "dev tokens are minted for this server's own pages only",
        );
    }
    let now = std::time::Instant::now();
    if !app
        .sends
        .product_writes
        .try_take(&AddressKey::from(peer.ip()), now)
    {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many sign-ins from your address: slow down",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        );
    };
    let login: DevLogin = match serde_json::from_slice(&body) {
        Ok(login) => login,
        Err(err) => return error(StatusCode::BAD_REQUEST, "bad_json", err.to_string()),
    };
    let sub = login.sub.trim();
    if sub.is_empty() || sub.chars().count() > 64 || sub.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_field",
            "`sub` must be 1–64 characters",
        );
    }
    let name = login
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if let Some(name) = name
        && let Err(why) = shared::DisplayName::parse(name)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_name",
            format!("bad name: {why}"),
        );
    }
    let rooms: Vec<String> = login
        .rooms
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .take(32)
        .collect();
    match app.auth.mint(sub, name, &rooms, now_secs()) {
        Some((token, exp)) => Json(json!({ "token": token, "exp": exp })).into_response(),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            "could not mint a token",
        ),
    }
}
