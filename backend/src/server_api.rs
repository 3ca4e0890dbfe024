//! The server API, for the app's backend (`Authorization: Bearer <--api-key>`): post into a
//! room, list rooms, members and lines, edit or delete a line, ban and unban from a room,
//! read the audit log, disconnect a user, revoke a user's tokens.
//!
//! It is a client of the hub, not a side door: a posted line goes through the same
//! committer, numbering, dedupe (its `idempotency_key` is the nonce of a sender of its own)
//! and fan-out as a WebSocket `send`. Without `--api-key` every route answers 404; a missing
//! or wrong key gets 401 (compared in constant time). Errors are JSON `{"error", "code",
//! "message"}` (`error` and `code` the same) with the same codes as the WebSocket's `error`
//! frames where one fits.

use axum::{
    Json, Router,
    body::Body,
    extract::{FromRequestParts, Path, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{delete, get, patch, post},
};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use shared::{
    Change, ChangeKind, ConnId, DisplayName, ErrorCode, RoomName, Seq, UserId,
    limits::MAX_NONCE_CHARS,
};
use tokio::sync::oneshot;

use crate::{
    api::MAX_BODY_BYTES,
    auth::now_secs,
    committer::{AuditJob, Job, LineJob, Published, RevokeJob},
    hub::Room,
    moderation::{self, Actor, Ask},
    state::AppState,
    store::Revocation,
};

/// The most lines one `GET …/messages` returns.
pub(crate) const MAX_LINES: usize = 500;

/// The id every line posted through the API is sent from (its nonces are the idempotency
/// keys): not a session's, so no client can resend under it.
pub(crate) const API_SENDER: &str = "api";

/// The API's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(rooms))
        .route("/api/rooms/{room}/messages", post(publish).get(messages))
        .route(
            "/api/rooms/{room}/messages/{seq}",
            patch(edit_message).delete(delete_message),
        )
        .route("/api/rooms/{room}/members", get(members))
        .route("/api/rooms/{room}/bans", post(ban).get(bans))
        .route("/api/rooms/{room}/bans/{user}", delete(unban))
        .route("/api/rooms/{room}/moderation", post(moderate))
        .route("/api/audit", get(audit))
        .route("/api/users", get(people))
        .route("/api/users/{user}/disconnect", post(disconnect))
        .route("/api/users/{user}/revoke", post(revoke))
        .route("/api/admin/stats", get(crate::console::stream))
        .route("/api/admin/nodes", get(crate::console::nodes))
}

/// A refused request: its status, its stable code, and why.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `error` as in the product API's errors, `code` as in the WebSocket's.
        let body = json!({ "error": self.code, "code": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

fn api_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    api_error(status, code, message).into_response()
}

fn bad_request(code: ErrorCode, message: impl Into<String>) -> Response {
    refusal(code, message).into_response()
}

/// 400 with `code`.
fn refusal(code: ErrorCode, message: impl Into<String>) -> ApiError {
    api_error(StatusCode::BAD_REQUEST, code.as_str(), message)
}

/// Who a request of the server API (and of the operator's console) is from: the API key
/// (`by` is `api`), or a token whose user has the role `admin` (`by` is the user's id). As a
/// handler's first argument it answers before anything else is read: 404 when the server
/// takes neither (no `--api-key`, no sign-in), 401 without a key or a valid token, 403 for
/// a valid token without the role.
pub(crate) struct Operator {
    /// Who acts, as the audit log and a deletion's `by` say.
    pub by: String,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        operator(app, &parts.headers)
    }
}

/// The role that opens the server API and the console to a token.
const ADMIN_ROLE: &str = "admin";

/// Checks a request's `Authorization: Bearer …` (see [`Operator`]).
fn operator(app: &AppState, headers: &HeaderMap) -> Result<Operator, ApiError> {
    if app.api_key.is_none() && !app.auth.accepts_tokens() {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the server API is off (start the server with --api-key, or with sign-in for admins' tokens)",
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if let Some(key) = &app.api_key
        && constant_time_eq(given.as_bytes(), key.as_bytes())
    {
        return Ok(Operator { by: "api".into() });
    }
    let unauthorized = || {
        api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the API key, or an admin's token, as Authorization: Bearer <key>",
        )
    };
    if given.is_empty() || !app.auth.accepts_tokens() {
        return Err(unauthorized());
    }
    match app.auth.verify(given, now_secs()) {
        Ok(user) if user.roles.iter().any(|r| r == ADMIN_ROLE) => Ok(Operator {
            by: user.id.as_str().to_owned(),
        }),
        Ok(user) => Err(api_error(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden.as_str(),
            format!("{} is signed in but has no `admin` role", user.id.as_str()),
        )),
        Err(_) => Err(unauthorized()),
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0);
    }
    diff == 0
}

fn room_name(room: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(room).map_err(|why| {
        let shown: String = room.chars().take(40).collect();
        let message = format!("bad room name {shown:?}: {why}");
        api_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRoom.as_str(),
            message,
        )
    })
}

/// `POST /api/rooms/{room}/messages`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLine {
    text: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// A [`NewLine`] whose every field was checked.
struct CheckedLine {
    text: String,
    name: DisplayName,
    user: Option<UserId>,
    idempotency_key: Option<String>,
}

/// A line's text (posted, or an edit's): not blank, at most `max_chars` characters.
fn check_text(text: &str, max_chars: usize) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(refusal(ErrorCode::Empty, "a line cannot be blank"));
    }
    if text.chars().nth(max_chars).is_some() {
        return Err(refusal(
            ErrorCode::TooLarge,
            format!("text is longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Reads a body: at most [`MAX_BODY_BYTES`] of JSON with only `T`'s fields.
async fn read_json<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Err(refusal(
            ErrorCode::TooLarge,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    };
    serde_json::from_slice(&body).map_err(|err| {
        let code = if err.is_data() {
            ErrorCode::BadField
        } else {
            ErrorCode::BadJson
        };
        refusal(code, err.to_string())
    })
}

impl NewLine {
    /// Reads the body: at most [`MAX_BODY_BYTES`] of JSON with only this struct's fields.
    async fn read(body: Body) -> Result<NewLine, ApiError> {
        read_json(body).await
    }

    /// Checks every field as a `send` is checked (text not blank and within `max_chars`; a
    /// valid name; a 1–64 character user; a nonce-sized key). A line without a name is
    /// shown under its user's, or as "app".
    fn check(self, max_chars: usize) -> Result<CheckedLine, ApiError> {
        check_text(&self.text, max_chars)?;
        let name = match self.name.as_deref().map(DisplayName::parse) {
            None => None,
            Some(Ok(name)) => Some(name),
            Some(Err(why)) => {
                return Err(refusal(ErrorCode::BadName, format!("bad name: {why}")));
            }
        };
        let user = match self.user {
            Some(user) if user.is_empty() || user.chars().count() > 64 => {
                return Err(refusal(
                    ErrorCode::BadField,
                    "`user` must be 1–64 characters",
                ));
            }
            user => user.map(UserId::new),
        };
        let key = self.idempotency_key;
        if key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.chars().nth(MAX_NONCE_CHARS).is_some())
        {
            return Err(refusal(
                ErrorCode::BadField,
                format!("`idempotency_key` must be 1–{MAX_NONCE_CHARS} characters"),
            ));
        }
        let name = name
            .or_else(|| {
                user.as_ref()
                    .and_then(|u| DisplayName::parse(u.as_str()).ok())
            })
            .unwrap_or_else(|| DisplayName::parse("app").unwrap_or_else(|_| unreachable!("valid")));
        Ok(CheckedLine {
            text: self.text,
            name,
            user,
            idempotency_key: key,
        })
    }
}

/// 201 `{"room", "seq"}` once the line is durable and delivered; 200 with the same `seq` for
/// an `idempotency_key` already used in the room.
async fn publish(
    _: Operator,
    State(app): State<AppState>,
    Path(room): Path<String>,
    body: Body,
) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let line = match NewLine::read(body).await {
        Ok(line) => line.check(app.limits.max_text_chars),
        Err(refused) => return refused.into_response(),
    };
    match line {
        Ok(line) => commit_line(&app, room, line).await,
        Err(refused) => refused.into_response(),
    }
}

/// Appends a checked line to `room` through the committer, as a connection's `send` is,
/// and answers once it is durable.
async fn commit_line(app: &AppState, room: RoomName, line: CheckedLine) -> Response {
    let target = match api_room(app, &room) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let job = Entry {
        name: line.name,
        text: line.text,
        nonce: line.idempotency_key,
        user: line.user,
        change: None,
        audit: false,
    };
    match commit(app, target, job).await {
        Ok(Published { seq, new }) => {
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({ "room": room, "seq": seq }))).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

/// The room `room` (held, or read back), or 503 when the server holds as many as it may.
fn api_room(app: &AppState, room: &RoomName) -> Result<Arc<Room>, ApiError> {
    app.hub.room_for_api(room).map_err(|_| {
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RoomsFull.as_str(),
            "the server has as many rooms as it may hold",
        )
    })
}

/// What the API appends to a room's log (from its own sender).
struct Entry {
    name: DisplayName,
    text: String,
    nonce: Option<String>,
    user: Option<UserId>,
    change: Option<Change>,
    /// Whether the audit log records it (every change the API makes).
    audit: bool,
}

/// Appends `entry` to `room`'s log through the committer; where it went once durable.
async fn commit(app: &AppState, room: Arc<Room>, entry: Entry) -> Result<Published, ApiError> {
    let unavailable = |message| {
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable.as_str(),
            message,
        )
    };
    let (reply, published) = oneshot::channel();
    let job = Job::Line(LineJob {
        room,
        from: ConnId::new(API_SENDER),
        name: entry.name,
        text: entry.text,
        nonce: entry.nonce,
        user: entry.user,
        change: entry.change,
        audit: entry.audit,
        reply: Some(reply),
    });
    if app.committer.submit(job).is_err() {
        return Err(unavailable("the server is busy; try again later"));
    }
    match published.await {
        Ok(Ok(published)) => Ok(published),
        _ => Err(unavailable("the line could not be stored; try again later")),
    }
}

/// `PATCH /api/rooms/{room}/messages/{seq}`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewText {
    text: String,
}

/// `PATCH /api/rooms/{room}/messages/{seq}` `{"text"}`: edits any kept line. 200
/// `{"room", "seq", "target"}` (`seq` is the edit's own) once durable.
async fn edit_message(
    op: Operator,
    State(app): State<AppState>,
    Path((room, seq)): Path<(String, String)>,
    body: Body,
) -> Response {
    let (room, target) = match message_path(&room, &seq) {
        Ok(path) => path,
        Err(refused) => return refused.into_response(),
    };
    let text = match read_json::<NewText>(body).await {
        Ok(NewText { text }) => text,
        Err(refused) => return refused.into_response(),
    };
    if let Err(refused) = check_text(&text, app.limits.max_text_chars) {
        return refused.into_response();
    }
    match change_message(&app, &room, Ask::Edit(target), text, &op.by).await {
        Ok(seq) => Json(json!({ "room": room, "seq": seq, "target": target })).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// `DELETE /api/rooms/{room}/messages/{seq}`: removes any kept line; 204 once durable.
async fn delete_message(
    op: Operator,
    State(app): State<AppState>,
    Path((room, seq)): Path<(String, String)>,
) -> Response {
    let (room, target) = match message_path(&room, &seq) {
        Ok(path) => path,
        Err(refused) => return refused.into_response(),
    };
    match change_message(&app, &room, Ask::Delete(target), String::new(), &op.by).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// The room and `seq` of a `…/messages/{seq}` path.
fn message_path(room: &str, seq: &str) -> Result<(RoomName, Seq), ApiError> {
    let room = room_name(room)?;
    match seq.parse::<u64>() {
        Ok(seq) if seq > 0 => Ok((room, Seq(seq))),
        _ => Err(refusal(
            ErrorCode::BadField,
            "the line's `seq` must be a positive integer",
        )),
    }
}

/// Checks and appends an edit or a deletion by the API (acting as `by`); the entry's `seq`. A line the room
/// does not hold is 404.
async fn change_message(
    app: &AppState,
    room: &RoomName,
    ask: Ask,
    text: String,
    by: &str,
) -> Result<Seq, ApiError> {
    let target = api_room(app, room)?;
    let now = crate::committer::now_ms();
    let checked = moderation::check(&target, ask, Actor::Api { by }, app.limits.edit_window, now)
        .map_err(|(code, message)| {
        let status = match code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::BadField => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        api_error(status, code.as_str(), message)
    })?;
    let name = DisplayName::parse("app").unwrap_or_else(|_| unreachable!("valid"));
    let entry = Entry {
        name,
        text,
        nonce: None,
        user: None,
        change: Some(checked.change),
        audit: true,
    };
    commit(app, target, entry).await.map(|p| p.seq)
}

/// `POST /api/rooms/{room}/bans`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBan {
    user: String,
    #[serde(default)]
    until: Option<u64>,
}

/// `POST /api/rooms/{room}/bans` `{"user", "until"?}`: bans a user (or a guest's session)
/// from the room until `until` (ms since the epoch; absent: for good), on every server; its
/// connections there are put out at once. 201 `{"room", "user", "until"?, "seq"}` once
/// durable (`seq`: the ban's entry in the room's log).
async fn ban(
    op: Operator,
    State(app): State<AppState>,
    Path(room): Path<String>,
    body: Body,
) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let NewBan { user, until } = match read_json::<NewBan>(body).await {
        Ok(ban) => ban,
        Err(refused) => return refused.into_response(),
    };
    let ask = Ask::People {
        kind: ChangeKind::Ban,
        user: user.clone(),
        until,
    };
    match change_message(&app, &room, ask, String::new(), &op.by).await {
        Ok(seq) => {
            let body = json!({ "room": room, "user": user, "until": until, "seq": seq });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

/// `POST /api/rooms/{room}/moderation`'s body: what a moderator's page sends over the
/// WebSocket, for the console and the app's backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewModeration {
    /// As the wire names it (`kick`, `slow_mode`, …); an unknown one is refused by serde.
    action: ChangeKind,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    until: Option<u64>,
    #[serde(default)]
    secs: Option<u32>,
}

/// `POST /api/rooms/{room}/moderation` `{"action", "user"?, "until"?, "secs"?}`: a kick,
/// ban, unban, mute or unmute of `user` (a ban's or a mute's until `until`, ms since the
/// epoch; absent: until lifted), or the room's slow mode of `secs` (0: off). Checked and
/// applied as the WebSocket's are: an entry of the room's log, audited. 201 `{"room",
/// "action", "seq"}` once durable; 400 `bad_field` for an unknown action or a missing field.
async fn moderate(
    op: Operator,
    State(app): State<AppState>,
    Path(room): Path<String>,
    body: Body,
) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let asked = match read_json::<NewModeration>(body).await {
        Ok(asked) => asked,
        Err(refused) => return refused.into_response(),
    };
    let kind = asked.action;
    if matches!(kind, ChangeKind::Edit | ChangeKind::Delete) {
        return bad_request(
            ErrorCode::BadField,
            "`action` must be kick, ban, unban, mute, unmute or slow_mode (a line is edited \
             or deleted at …/messages/{seq})",
        );
    }
    let ask = match (kind, asked.user, asked.secs) {
        (ChangeKind::SlowMode, _, Some(secs)) => Ask::SlowMode(secs),
        (ChangeKind::SlowMode, _, None) => {
            return bad_request(ErrorCode::BadField, "a slow mode needs `secs`");
        }
        (kind, Some(user), _) => Ask::People {
            kind,
            user,
            until: asked.until,
        },
        (_, None, _) => {
            return bad_request(ErrorCode::BadField, "this action needs `user`");
        }
    };
    match change_message(&app, &room, ask, String::new(), &op.by).await {
        Ok(seq) => {
            let body = json!({ "room": room, "action": kind.as_str(), "seq": seq });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

/// `DELETE /api/rooms/{room}/bans/{user}`: lifts the user's ban; 204 once durable, 404
/// `not_found` when no ban of theirs is in force there.
async fn unban(
    op: Operator,
    State(app): State<AppState>,
    Path((room, user)): Path<(String, String)>,
) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let now = crate::committer::now_ms();
    if !app
        .hub
        .rules
        .bans(&room, now)
        .iter()
        .any(|(who, _)| *who == user)
    {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound.as_str(),
            format!("{user} is not banned from {room}"),
        );
    }
    let ask = Ask::People {
        kind: ChangeKind::Unban,
        user,
        until: None,
    };
    match change_message(&app, &room, ask, String::new(), &op.by).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// `GET /api/rooms/{room}/bans`: the bans in force, `[{"user", "until"?}]` by user.
async fn bans(_: Operator, State(app): State<AppState>, Path(room): Path<String>) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let list: Vec<serde_json::Value> = app
        .hub
        .rules
        .bans(&room, crate::committer::now_ms())
        .into_iter()
        .map(|(user, hold)| match hold.until {
            Some(until) => json!({ "user": user, "until": until }),
            None => json!({ "user": user }),
        })
        .collect();
    Json(list).into_response()
}

/// The most entries one `GET /api/audit` returns.
const MAX_AUDIT: usize = 1_000;

/// `GET /api/audit`'s query.
#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/audit?room=R&limit=N`: the newest moderation actions (of room `R`, or of
/// every room), newest first, at most `N` (100 by default, 1,000 at most):
/// `[{"at", "by", "action", "room", "target", "until"?, "seq"}]`.
async fn audit(
    _: Operator,
    State(app): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return bad_request(
            ErrorCode::BadField,
            "`limit` must be a non-negative integer, `room` a room's name",
        );
    };
    let room = match query.room.as_deref().map(room_name).transpose() {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_AUDIT);
    let (reply, read) = oneshot::channel();
    let job = Job::Audit(AuditJob { room, limit, reply });
    if app.committer.submit(job).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable.as_str(),
            "the server is busy; try again later",
        );
    }
    match read.await {
        Ok(Some(entries)) => Json(entries).into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable.as_str(),
            "the audit log could not be read; try again later",
        ),
    }
}

/// `GET /api/rooms`: every room this server holds.
async fn rooms(_: Operator, State(app): State<AppState>) -> Response {
    let list: Vec<serde_json::Value> = app
        .hub
        .rooms()
        .iter()
        .map(|room| {
            let last_seq = room.last_seq();
            json!({
                "room": room.name,
                "online": room.online(),
                "last_seq": last_seq,
                "lines": room.kept_lines(),
                "last_at": room.line(last_seq).map(|line| line.at),
                "private": app.auth.is_private(&room.name),
            })
        })
        .collect();
    Json(list).into_response()
}

/// `GET /api/rooms/{room}/members`: who is in it (each user once).
async fn members(_: Operator, State(app): State<AppState>, Path(room): Path<String>) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let members: Vec<serde_json::Value> = app
        .hub
        .room(&room)
        .map(|r| r.member_list())
        .unwrap_or_default()
        .into_iter()
        // `user` is always there: `null` for a guest.
        .map(|m| json!({ "id": m.id, "name": m.name, "user": m.user }))
        .collect();
    Json(members).into_response()
}

/// `GET /api/rooms/{room}/messages`'s query.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/rooms/{room}/messages?after=SEQ&limit=N`: kept lines after `after`, in `seq`
/// order, at most `limit` (500).
async fn messages(
    _: Operator,
    State(app): State<AppState>,
    Path(room): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let room = match room_name(&room) {
        Ok(room) => room,
        Err(refused) => return refused.into_response(),
    };
    let Ok(Query(page)) = page else {
        return bad_request(
            ErrorCode::BadField,
            "`after` and `limit` must be non-negative integers",
        );
    };
    let limit = page.limit.unwrap_or(MAX_LINES).clamp(1, MAX_LINES);
    let body = match app.hub.room(&room) {
        Some(room) => room.lines_json(Seq(page.after), limit),
        None => "[]".to_owned(),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The most people one `GET /api/users` lists.
const MAX_PEOPLE: usize = 200;

/// `GET /api/users`'s query.
#[derive(Debug, Deserialize)]
struct PeopleQuery {
    #[serde(default)]
    q: String,
}

/// `GET /api/users?q=TEXT`: who is in the rooms now, each signed-in user once and each
/// guest session once, whose user id, session id or name holds `TEXT` (any case; empty:
/// everyone), by user then id, at most 200: `[{"user", "ids", "name", "rooms",
/// "connections"}]`. `user` is `null` for a guest; `ids` are the sessions' public ids;
/// `connections` counts a signed-in user's open connections on this server (a guest: its
/// sessions).
async fn people(
    _: Operator,
    State(app): State<AppState>,
    query: Result<Query<PeopleQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return bad_request(ErrorCode::BadField, "`q` must be text");
    };
    let needle = query.q.trim().to_lowercase();
    // Keyed by the user, or by the session for a guest.
    let mut found: std::collections::BTreeMap<(bool, String), Person> = Default::default();
    for room in app.hub.rooms() {
        for member in room.member_list() {
            let key = match &member.user {
                Some(user) => (false, user.as_str().to_owned()),
                None => (true, member.id.as_str().to_owned()),
            };
            let person = found.entry(key).or_insert_with(|| Person {
                user: member.user.clone(),
                name: member.name.to_string(),
                ids: Vec::new(),
                rooms: Vec::new(),
            });
            if !person.ids.contains(&member.id) {
                person.ids.push(member.id.clone());
            }
            if !person.rooms.contains(&room.name) {
                person.rooms.push(room.name.clone());
            }
        }
    }
    let list: Vec<serde_json::Value> = found
        .into_values()
        .filter(|p| needle.is_empty() || p.matches(&needle))
        .take(MAX_PEOPLE)
        .map(|p| {
            let connections = match &p.user {
                Some(user) => app.hub.connections_of(user),
                None => p.ids.len(),
            };
            json!({
                "user": p.user,
                "ids": p.ids,
                "name": p.name,
                "rooms": p.rooms,
                "connections": connections,
            })
        })
        .collect();
    Json(list).into_response()
}

/// Someone in the rooms, as [`people`] gathers them.
struct Person {
    user: Option<UserId>,
    name: String,
    ids: Vec<ConnId>,
    rooms: Vec<RoomName>,
}

impl Person {
    /// Whether the user id, a session id or the name holds `needle` (lowercase).
    fn matches(&self, needle: &str) -> bool {
        let holds = |s: &str| s.to_lowercase().contains(needle);
        self.user.as_ref().is_some_and(|u| holds(u.as_str()))
            || self.ids.iter().any(|id| holds(id.as_str()))
            || holds(&self.name)
    }
}

/// `POST /api/users/{user}/disconnect`: closes every connection of the user (4003), on
/// every server.
async fn disconnect(
    _: Operator,
    State(app): State<AppState>,
    Path(user): Path<String>,
) -> Response {
    let user = UserId::new(user);
    match close_everywhere(&app, &user, None).await {
        Ok(closed) => Json(json!({ "closed": closed })).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// `POST /api/users/{user}/revoke`: disconnects the user and refuses, durably, every token
/// of theirs issued before now.
async fn revoke(_: Operator, State(app): State<AppState>, Path(user): Path<String>) -> Response {
    let user = UserId::new(user);
    // A token issued in this very second is still good: `iat` counts whole seconds.
    let before = now_secs();
    let (durable, on_disk) = oneshot::channel();
    let job = Job::Revoke(RevokeJob {
        revocation: Revocation {
            user: user.clone(),
            before,
        },
        durable,
    });
    let stored = app.committer.submit(job).is_ok() && matches!(on_disk.await, Ok(true));
    if !stored {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable.as_str(),
            "the revocation could not be stored; try again",
        );
    }
    app.auth.revoke(&user, before);
    match close_everywhere(&app, &user, Some(before)).await {
        Ok(closed) => Json(json!({ "closed": closed, "revoked_before": before })).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// Closes the user's connections here, or on every server (and tells each of a revocation).
async fn close_everywhere(
    app: &AppState,
    user: &UserId,
    revoked_before: Option<u64>,
) -> Result<usize, ApiError> {
    match &app.cluster {
        None => Ok(app.hub.disconnect_user(user)),
        Some(cluster) => cluster
            .close_user(user, revoked_before)
            .await
            .map_err(|_unreachable| {
                api_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable.as_str(),
                    "the other servers could not be reached; try again",
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"k3y", b"k3y"));
        assert!(!constant_time_eq(b"k3y", b"k3z"));
        assert!(!constant_time_eq(b"k3", b"k3y"));
        assert!(!constant_time_eq(b"", b"k3y"));
        assert!(!constant_time_eq(b"k3yy", b"k3y"));
    }
}
