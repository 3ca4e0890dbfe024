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
    /// Roles to carry (`moderator`, `admin`): dev login lets anyone be anyone, moderators
    /// included.
    #[serde(default)]
    roles: Vec<String>,
}

/// A request refused: its status, code and message.
struct Refused(StatusCode, &'static str, String);

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refused {
    Refused(status, code, message.into())
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

impl DevLogin {
    /// Reads the body: at most [`MAX_BODY_BYTES`] of JSON with only this struct's fields.
    async fn read(body: Body) -> Result<DevLogin, Refused> {
        let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return Err(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            ));
        };
        serde_json::from_slice(&body)
            .map_err(|err| refused(StatusCode::BAD_REQUEST, "bad_json", err.to_string()))
    }

    /// Trims and checks every field: a 1–64 character `sub` without control characters, a
    /// valid name (a blank one is none), at most 32 non-blank rooms.
    fn check(self) -> Result<DevLogin, Refused> {
        let sub = self.sub.trim();
        if sub.is_empty() || sub.chars().count() > 64 || sub.chars().any(char::is_control) {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "bad_field",
                "`sub` must be 1–64 characters",
            ));
        }
        let name = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if let Some(name) = name
            && let Err(why) = shared::DisplayName::parse(name)
        {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "bad_name",
                format!("bad name: {why}"),
            ));
        }
        let rooms = self
            .rooms
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .take(32)
            .collect();
        let roles = self
            .roles
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>();
        if roles.len() > 8 || roles.iter().any(|r| r.chars().count() > 32) {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "bad_field",
                "at most 8 `roles`, each at most 32 characters",
            ));
        }
        Ok(DevLogin {
            sub: sub.to_owned(),
            name: name.map(str::to_owned),
            rooms,
            roles,
        })
    }
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
    let login = match DevLogin::read(body).await.and_then(DevLogin::check) {
        Ok(login) => login,
        Err(refused) => return refused.into_response(),
    };
    let (sub, name, rooms) = (&login.sub, login.name.as_deref(), &login.rooms);
    match app
        .auth
        .mint_with_roles(sub, name, rooms, &login.roles, now_secs())
    {
        Some((token, exp)) => Json(json!({ "token": token, "exp": exp })).into_response(),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            "could not mint a token",
        ),
    }
}
