//! The product API (the course's `realTimeProducts`): `GET /api/products`,
//! `POST /api/products`, `DELETE /api/products/{id}`. A change made here reaches every page
//! watching the list over its WebSocket before the response is sent (the "emit inside the
//! POST" of the assignment): [`Catalog`](crate::products::Catalog) broadcasts it.
//!
//! Writes are checked like WebSocket upgrades (the `Host` must be this server's, and an
//! `Origin`, if sent, one it trusts), rate-limited per address, and bodies are at most
//! [`MAX_BODY_BYTES`]. Errors are JSON: `{"errors": [{"field", "problem", "message"}]}` for a
//! product's fields, `{"error", "message"}` otherwise.

use std::net::SocketAddr;

use axum::{
    Json, Router,
    body::Body,
    extract::{ConnectInfo, Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use serde_json::json;
use shared::{FieldError, NewProduct, Product, ProductId};

use crate::{products::AddRefused, rate::AddressKey, state::AppState};

/// The largest request body, in bytes.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// The API's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/products", get(list).post(create))
        .route("/api/products/{id}", delete(remove))
}

/// `{"errors": [...]}`: what is wrong with a product, field by field (the same objects as in
/// the WebSocket's `product_refused`).
#[derive(serde::Serialize)]
struct FieldErrors {
    errors: Vec<FieldError>,
}

fn field_errors(status: StatusCode, errors: Vec<FieldError>) -> Response {
    (status, Json(FieldErrors { errors })).into_response()
}

/// A JSON error that is not about a product's fields.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// A write refused before it was looked at.
struct WriteRefused {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl IntoResponse for WriteRefused {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

/// Refuses a write from a host or origin this server does not trust, or over its rate.
fn check_write(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<(), WriteRefused> {
    if let Err(refusal) = app.admission.check_origin(headers) {
        return Err(WriteRefused {
            status: refusal.status(),
            code: refusal.label(),
            message: "products are changed only from this server's own pages, or without an \
                      Origin header (curl, scripts)",
        });
    }
    let now = std::time::Instant::now();
    if !app
        .sends
        .product_writes
        .try_take(&AddressKey::from(peer.ip()), now)
    {
        return Err(WriteRefused {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: "too many product changes from your address: slow down",
        });
    }
    Ok(())
}

/// The most bytes of products one `GET /api/products` answers with.
pub(crate) const LIST_PAGE_BYTES: usize = 256 * 1024;

/// `GET /api/products[?after=ID]`: the products by id (creation order), after `ID` if
/// given, as many as fit [`LIST_PAGE_BYTES`]. When more follow, a `Link` header names the
/// next page (`rel="next"`), as GitHub's API does.
async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    if let Err(refusal) = app.admission.check_host(&headers) {
        return error(refusal.status(), refusal.label(), refusal.message());
    }
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "`after` must be a product id (a whole number)",
        );
    };
    let (products, has_more) = app.catalog.list_after(query.after, LIST_PAGE_BYTES);
    let next = products.last().map(|p| p.id).filter(|_| has_more);
    let mut response = Json(products).into_response();
    if let Some(last) = next
        && let Ok(link) =
            header::HeaderValue::from_str(&format!("</api/products?after={last}>; rel=\"next\""))
    {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// `GET /api/products`' query.
#[derive(serde::Deserialize)]
struct ListQuery {
    after: Option<ProductId>,
}

/// `POST /api/products`: 201 with the product (and its `Location`), 400 with every field's
/// problem, 409 if the code is taken, 415 if the body is not JSON.
async fn create(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Who may write, and how often, is checked before the body is read.
    if let Err(refused) = check_write(&app, &headers, peer) {
        return refused.into_response();
    }
    let value = match read_json(&headers, body).await {
        Ok(value) => value,
        Err(refused) => return refused,
    };
    let product = match NewProduct::from_json(&value) {
        Ok(product) => product,
        Err(errors) => return field_errors(StatusCode::BAD_REQUEST, errors),
    };
    let catalog = app.catalog.clone();
    let added = tokio::task::spawn_blocking(move || catalog.add(&product)).await;
    match added {
        Ok(added) => added_response(added),
        Err(_) => unavailable(),
    }
}

/// The body of a request that must be JSON: 415 without `Content-Type: application/json`,
/// 413 past [`MAX_BODY_BYTES`], 400 if it does not parse.
async fn read_json(headers: &HeaderMap, body: Body) -> Result<serde_json::Value, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_json",
            "send the product as JSON, with Content-Type: application/json",
        ));
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    };
    serde_json::from_slice(&body).map_err(|err| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not JSON: {err}"),
        )
    })
}

/// 201 with the product added (and its `Location`), or why the catalog refused it.
fn added_response(added: Result<Product, AddRefused>) -> Response {
    match added {
        Ok(product) => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/api/products/{}", product.id))],
            Json(product),
        )
            .into_response(),
        Err(refused @ AddRefused::Invalid(_)) => {
            field_errors(StatusCode::BAD_REQUEST, refused.errors())
        }
        Err(refused @ AddRefused::Taken(_)) => field_errors(StatusCode::CONFLICT, refused.errors()),
        Err(AddRefused::Full(max)) => error(
            StatusCode::INSUFFICIENT_STORAGE,
            "full",
            format!("the catalog holds its maximum of {max} products; delete one first"),
        ),
        Err(AddRefused::Store(err)) => {
            tracing::error!(%err, "could not store a product");
            unavailable()
        }
    }
}

/// 500: the product could not be stored.
fn unavailable() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "unavailable",
        "the server could not store the product; try again later",
    )
}

/// `DELETE /api/products/{id}`: 204, or 404 if there is no such product.
async fn remove(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = check_write(&app, &headers, peer) {
        return refused.into_response();
    }
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no product has id {id}"),
        )
    };
    let Ok(id) = id.parse::<ProductId>() else {
        return not_found();
    };
    let catalog = app.catalog.clone();
    match tokio::task::spawn_blocking(move || catalog.remove(id)).await {
        Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(false)) => not_found(),
        Ok(Err(err)) => {
            tracing::error!(%err, "could not delete a product");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unavailable",
                "the server could not delete the product; try again later",
            )
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            "the server could not delete the product; try again later",
        ),
    }
}
