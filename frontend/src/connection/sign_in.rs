//! Who this page is: the server's sign-in settings (`GET /api/config`), where the page's token
//! comes from (the app's token URL, fetched with the browser's cookies, or the server's
//! dev-login, `POST /api/dev/token`), and what happens to the connection when a sign-in is
//! refused, expires, or is ended by the server.
//!
//! The token travels in the `hello` ([`ClientSession::set_token`](shared::ClientSession)) and
//! is renewed on `token_expiring` with a `refresh` on the open connection, so a long visit
//! never reconnects for it. A WebSocket close with [`CLOSE_SIGN_IN`] (after `bad_token`,
//! `auth_required` or `token_expired`) drops the token: under `optional` the page comes back
//! as a guest, under `required` it stays disconnected and says why. A close with
//! [`CLOSE_SIGNED_OUT`] (the app's backend disconnected this user) is never retried by itself.

use leptos::{prelude::*, task::spawn_local};
use serde::{Deserialize, Serialize};
use shared::{ClientMsg, ErrorCode};

use super::{
    ConnState, Connection,
    storage::{self, Store},
};
use crate::i18n::Texts;

/// The close code after a refused or expired sign-in.
pub const CLOSE_SIGN_IN: u16 = 4001;
/// The close code when the app's backend disconnected this user or revoked their tokens.
pub const CLOSE_SIGNED_OUT: u16 = 4003;

/// Whether clients sign in (the server's `--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Guests only.
    #[default]
    Off,
    /// Signed-in users and guests side by side.
    Optional,
    /// Every connection must present a valid token.
    Required,
}

/// The server's sign-in settings, as `GET /api/config` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct AuthConfig {
    /// Whether clients sign in.
    #[serde(default)]
    pub auth: AuthMode,
    /// Where the page gets its token (fetched with the browser's cookies), if anywhere.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Whether the server mints tokens itself for a "sign in as…" form (development only).
    #[serde(default)]
    pub dev_login: bool,
}

impl AuthConfig {
    /// Whether the page shows who is signed in at all.
    pub fn signs_in(&self) -> bool {
        self.auth != AuthMode::Off
    }

    /// Whether the page shows the "sign in as…" form.
    pub fn offers_dev_login(&self) -> bool {
        self.dev_login && self.signs_in()
    }
}

/// Who the dev-login form signed in as: asked for again at each load and on each
/// `token_expiring`. Kept in `localStorage` ([`storage::DEV_LOGIN`]) until "sign out".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevIdentity {
    /// The user id (the token's `sub`).
    pub sub: String,
    /// The display name, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The private rooms (names or `prefix*`) granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<String>,
    /// The roles carried (`moderator`, `admin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl DevIdentity {
    /// The identity kept from an earlier sign-in, if any (unreadable: none).
    pub fn load() -> Option<DevIdentity> {
        serde_json::from_str(&storage::read(Store::Local, storage::DEV_LOGIN)?).ok()
    }

    /// Keeps it, until "sign out".
    pub fn save(&self) {
        if let Ok(json) = serde_json::to_string(self) {
            storage::write(Store::Local, storage::DEV_LOGIN, &json);
        }
    }

    /// Forgets the kept one ("sign out").
    pub fn forget() {
        storage::remove(Store::Local, storage::DEV_LOGIN);
    }

    /// The identity a form's three fields describe (the rooms separated by commas or spaces);
    /// `None` when the user id is blank.
    pub fn from_form(sub: &str, name: &str, rooms: &str) -> Option<Self> {
        let sub = sub.trim();
        if sub.is_empty() {
            return None;
        }
        let name = name.trim();
        Some(DevIdentity {
            sub: sub.to_owned(),
            name: (!name.is_empty()).then(|| name.to_owned()),
            rooms: rooms
                .split([',', ' '])
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            roles: Vec::new(),
        })
    }

    /// With the roles a form's field names (separated by commas or spaces).
    pub fn with_roles(mut self, roles: &str) -> Self {
        self.roles = roles
            .split([',', ' '])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        self
    }
}

/// What the sign-in area says: the last thing that happened to this page's sign-in. Kept as
/// what happened, not as words, so it follows the language shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInNotice {
    /// The server takes signed-in users only, and this page has no token.
    Required,
    /// The server refused the token (malformed, badly signed, revoked, …).
    Refused {
        /// Whether the server takes signed-in users only (else the page is back as a guest).
        required: bool,
    },
    /// The token expired and no new one could be had.
    Expired {
        /// See [`SignInNotice::Refused`].
        required: bool,
    },
    /// The app's backend disconnected this user (or revoked their tokens): the page does not
    /// reconnect by itself.
    SignedOut,
    /// The server did not mint a dev-login token: its words, if it said any.
    DevLoginFailed(Option<String>),
}

impl SignInNotice {
    /// The notice in the language of `t`.
    pub fn text(&self, t: &Texts) -> String {
        match self {
            SignInNotice::Required => t.sign_in_required.to_owned(),
            SignInNotice::Refused { required } => (t.sign_in_refused)(*required),
            SignInNotice::Expired { required } => (t.sign_in_expired)(*required),
            SignInNotice::SignedOut => t.signed_out_by_server.to_owned(),
            SignInNotice::DevLoginFailed(reason) => (t.dev_login_failed)(reason.as_deref()),
        }
    }
}

/// The server's sign-in settings; none (guests only) when it does not say.
pub async fn fetch_config() -> AuthConfig {
    match gloo_net::http::Request::get("/api/config").send().await {
        Ok(response) if response.ok() => response.json().await.unwrap_or_default(),
        _ => AuthConfig::default(),
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    message: String,
}

/// A token from the app's token URL, asked for with the browser's cookies (the app's own
/// sign-in); `None` when the app says this browser is not signed in (any non-2xx) or cannot
/// be reached.
pub async fn fetch_app_token(url: &str) -> Option<String> {
    let response = gloo_net::http::Request::get(url)
        .credentials(web_sys::RequestCredentials::Include)
        .send()
        .await
        .ok()?;
    if !response.ok() {
        return None;
    }
    let answer: TokenAnswer = response.json().await.ok()?;
    (!answer.token.is_empty()).then_some(answer.token)
}

/// A token the server mints for `identity` (`POST /api/dev/token`), or why not (the server's
/// words when it gave any).
pub async fn mint_dev_token(identity: &DevIdentity) -> Result<String, Option<String>> {
    let request = gloo_net::http::Request::post("/api/dev/token")
        .json(identity)
        .map_err(|_| None)?;
    let response = request.send().await.map_err(|_| None)?;
    if !response.ok() {
        let reason = response.json::<ErrorAnswer>().await.ok().map(|e| e.message);
        return Err(reason);
    }
    let answer: TokenAnswer = response.json().await.map_err(|_| None)?;
    Ok(answer.token)
}

impl Connection {
    /// Learns the server's sign-in settings, gets a token if this page signs in (from the
    /// app's token URL, or for the dev-login identity kept in the browser), then opens the
    /// socket. Under `required` without a token it does not connect, and says so.
    pub(super) fn sign_in_then_open(&self) {
        let conn = *self;
        spawn_local(async move {
            let config = fetch_config().await;
            if config.offers_dev_login() {
                conn.state.dev_identity.try_set(DevIdentity::load());
            }
            conn.state.auth.try_set(Some(config));
            let token = conn.new_token().await;
            if token.is_none() && conn.state.dev_identity.get_untracked().is_some() {
                // The kept identity no longer signs in (the server refused it): offer the
                // form again rather than a "sign out" of nobody.
                conn.forget_sign_in();
            }
            if conn
                .session
                .try_update_value(|s| s.set_token(token))
                .is_none()
            {
                return; // The page went away meanwhile.
            }
            conn.open();
        });
    }

    /// A fresh token from wherever this page's come from: the dev-login for the identity the
    /// form signed in as, else the app's token URL; `None`: a guest.
    async fn new_token(&self) -> Option<String> {
        let config = self.state.auth.get_untracked()?;
        if !config.signs_in() {
            return None;
        }
        if let Some(identity) = self.state.dev_identity.get_untracked() {
            return mint_dev_token(&identity).await.ok();
        }
        fetch_app_token(config.token_url.as_deref()?).await
    }

    /// Whether the socket must not open: the server takes signed-in users only and this page
    /// has no token. Shows why (unless it already says something more precise).
    pub(super) fn must_sign_in_first(&self) -> bool {
        let required = self
            .state
            .auth
            .with_untracked(|c| c.as_ref().is_some_and(|c| c.auth == AuthMode::Required));
        let no_token = self.session.with_value(|s| s.token().is_none());
        if required && no_token {
            if self.state.sign_in.with_untracked(Option::is_none) {
                self.state.sign_in.set(Some(SignInNotice::Required));
            }
            self.state.status.set(ConnState::Disconnected);
            return true;
        }
        false
    }

    /// Whether the server takes signed-in users only (untracked).
    fn auth_required(&self) -> bool {
        self.state
            .auth
            .with_untracked(|c| c.as_ref().is_some_and(|c| c.auth == AuthMode::Required))
    }

    /// The server's `token_expiring`: gets a new token and hands it over on the open
    /// connection (kept for later reconnects too). When none can be had, nothing is sent: the
    /// server ends the sign-in when the token expires, and the page says so then.
    pub(super) fn refresh_token(&self) {
        let conn = *self;
        spawn_local(async move {
            let Some(token) = conn.new_token().await else {
                return;
            };
            if conn
                .session
                .try_update_value(|s| s.set_token(Some(token.clone())))
                .is_none()
            {
                return;
            }
            conn.send_frame(&ClientMsg::Refresh { token });
        });
    }

    /// The server refused this page's sign-in (`bad_token`, `auth_required`,
    /// `token_expired`); a close with [`CLOSE_SIGN_IN`] follows.
    pub(super) fn sign_in_refused(&self, code: ErrorCode) {
        let required = self.auth_required();
        let notice = match code {
            ErrorCode::TokenExpired => SignInNotice::Expired { required },
            ErrorCode::AuthRequired => SignInNotice::Required,
            _ => SignInNotice::Refused { required },
        };
        self.state.sign_in.set(Some(notice));
        self.forget_sign_in();
    }

    /// What a close with a sign-in code means; returns whether the page stays disconnected
    /// (instead of reconnecting as usual).
    pub(super) fn closed_for_sign_in(&self, code: Option<u16>) -> bool {
        match code {
            Some(CLOSE_SIGN_IN) => {
                if self.state.sign_in.with_untracked(Option::is_none) {
                    let required = self.auth_required();
                    self.state
                        .sign_in
                        .set(Some(SignInNotice::Refused { required }));
                }
                self.forget_sign_in();
                // Under `optional` the next `hello` comes as a guest; under `required` there
                // is nothing to come back with.
                self.auth_required()
            }
            Some(CLOSE_SIGNED_OUT) => {
                self.state.sign_in.set(Some(SignInNotice::SignedOut));
                self.forget_sign_in();
                true
            }
            _ => false,
        }
    }

    /// Drops the token and the dev-login identity: the page is a guest from the next `hello`.
    fn forget_sign_in(&self) {
        self.session.update_value(|s| s.set_token(None));
        if self.state.me.with_untracked(Option::is_some) {
            self.state.me.set(None);
        }
        if self.state.dev_identity.with_untracked(Option::is_some) {
            self.state.dev_identity.set(None);
        }
        if self.persist.get_value() {
            DevIdentity::forget();
        }
    }

    /// Signs in as `identity` through the server's dev-login: asks for a token and, once it
    /// has one, keeps the identity in the browser and connects again as that user.
    pub fn sign_in_dev(&self, identity: DevIdentity) {
        let conn = *self;
        let state = self.state;
        state.signing_in.set(true);
        spawn_local(async move {
            let minted = mint_dev_token(&identity).await;
            // (`try_set` hands the value back when the page went away meanwhile.)
            if state.signing_in.try_set(false).is_some() {
                return;
            }
            match minted {
                Ok(token) => {
                    state.sign_in.set(None);
                    if conn.persist.get_value() {
                        identity.save();
                    }
                    state.dev_identity.set(Some(identity));
                    conn.session.update_value(|s| s.set_token(Some(token)));
                    state.me.set(None);
                    conn.open();
                }
                Err(reason) => state
                    .sign_in
                    .set(Some(SignInNotice::DevLoginFailed(reason))),
            }
        });
    }

    /// Forgets the dev-login identity and connects again as a guest.
    pub fn sign_out(&self) {
        self.state.sign_in.set(None);
        self.forget_sign_in();
        self.open();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_describes_an_identity() {
        assert_eq!(DevIdentity::from_form("  ", "Ana", ""), None);
        assert_eq!(
            DevIdentity::from_form(" alice ", " ", "team-*, ops  dev,"),
            Some(DevIdentity {
                sub: "alice".into(),
                name: None,
                rooms: vec!["team-*".into(), "ops".into(), "dev".into()],
                roles: Vec::new(),
            })
        );
        let with_name = DevIdentity::from_form("bob", " Bob ", "").expect("an identity");
        assert_eq!(with_name.name.as_deref(), Some("Bob"));
        assert_eq!(
            serde_json::to_string(&with_name).expect("json"),
            r#"{"sub":"bob","name":"Bob"}"#
        );
    }

    #[test]
    fn the_config_reads_as_the_server_sends_it() {
        let config: AuthConfig = serde_json::from_str(
            r#"{"auth":"required","token_url":"https://app.example/token","dev_login":false}"#,
        )
        .expect("config");
        assert_eq!(config.auth, AuthMode::Required);
        assert!(config.signs_in() && !config.offers_dev_login());
        let config: AuthConfig =
            serde_json::from_str(r#"{"auth":"off","token_url":null,"dev_login":true}"#)
                .expect("config");
        assert!(!config.signs_in() && !config.offers_dev_login());
    }
}
