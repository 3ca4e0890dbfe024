//! The WebSocket handshake of `/ws`, done here rather than by axum's `WebSocketUpgrade`, so
//! that a connection owns tungstenite's stream itself ([`Socket`]): the server writes its
//! data frames straight to the TCP socket from shared bytes ([`write`](super::write)), and
//! the task that runs a connection holds nothing it no longer needs.
//!
//! The checks are RFC 6455's (section 4.2.1), as axum makes them: a `GET` with
//! `Connection: upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a
//! `Sec-WebSocket-Key`, on a connection hyper can hand over.

use axum::{
    body::Body,
    extract::FromRequestParts,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode,
        header::{
            CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
        },
        request::Parts,
    },
    response::{IntoResponse, Response},
};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

/// An open WebSocket connection: tungstenite's stream over the upgraded TCP socket.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A request that asked for a WebSocket and may have one.
pub(crate) struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpgradeRejection {
    /// Not a `GET`.
    MethodNotGet,
    /// No `Connection: upgrade` or no `Upgrade: websocket`.
    NotAnUpgrade,
    /// A `Sec-WebSocket-Version` other than 13.
    BadVersion,
    /// No `Sec-WebSocket-Key`.
    NoKey,
    /// hyper cannot hand this connection over (not HTTP/1.1 with upgrades).
    NotUpgradable,
}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            UpgradeRejection::MethodNotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ),
            UpgradeRejection::NotAnUpgrade => (
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade', or Upgrade header was not 'websocket'",
            ),
            UpgradeRejection::BadVersion => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ),
            UpgradeRejection::NoKey => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ),
            UpgradeRejection::NotUpgradable => (
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ),
        };
        (status, message).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRejection::MethodNotGet);
        }
        let headers = &parts.headers;
        if !has_token(headers, CONNECTION, "upgrade") || !has_token(headers, UPGRADE, "websocket") {
            return Err(UpgradeRejection::NotAnUpgrade);
        }
        if !has_token(headers, SEC_WEBSOCKET_VERSION, "13") {
            return Err(UpgradeRejection::BadVersion);
        }
        let key = headers
            .get(SEC_WEBSOCKET_KEY)
            .ok_or(UpgradeRejection::NoKey)?;
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .map_err(|_| UpgradeRejection::NoKey)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRejection::NotUpgradable)?;
        Ok(Upgrade { accept, on_upgrade })
    }
}

/// Whether a comma-separated header has this token (case-insensitive).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

impl Upgrade {
    /// Answers `101 Switching Protocols`; once hyper hands the socket over, `then` runs the
    /// connection in a task of its own (a failed hand-over ends it quietly: the client is
    /// gone).
    pub(crate) fn on_upgrade<F>(
        self,
        config: WebSocketConfig,
        then: impl FnOnce(Socket) -> F + Send + 'static,
    ) -> Response
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { accept, on_upgrade } = self;
        // What the hand-over needs stays in one box until it is used. A value that a task
        // holds across two of its awaits gets room of its own for the task's whole life;
        // boxed, `then` costs the connection's task a pointer, not its captures.
        let mut handover = Box::new((Some(on_upgrade), config, Some(then)));
        tokio::spawn(async move {
            let Some(on_upgrade) = handover.0.take() else {
                return;
            };
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let io = TokioIo::new(upgraded);
            let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(handover.1)).await;
            let Some(then) = handover.2.take() else {
                return;
            };
            drop(handover);
            then(socket).await;
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_lists_whatever_their_case() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, CONNECTION, "upgrade"));
        assert!(!has_token(&headers, UPGRADE, "websocket"));
        headers.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(has_token(&headers, UPGRADE, "websocket"));
    }

    #[test]
    fn the_accept_key_is_the_rfcs_example() {
        // RFC 6455, section 1.3.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
