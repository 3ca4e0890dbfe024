//! Who is who: sign-in tokens from the app Charla runs beside, and the one policy that says
//! what a user may do.
//!
//! - [`Auth::verify`] checks a JSON Web Token: only the configured algorithm (HS256 with
//!   `--jwt-secret`; RS256, ES256 or EdDSA with `--jwt-public-key`, chosen by the key),
//!   signature, `exp` (required, with [`Auth::leeway`] for clock skew), `sub` (1–64
//!   characters), `iss`/`aud` when configured, and the user's revocation (`iat` before it).
//! - [`Auth::authorize`] is the one policy function: every room action a client can ask for
//!   goes through it, so a new action cannot skip it.
//! - [`Auth::mint`] makes tokens for `--dev-login` (HS256 only; never in production).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use shared::{DisplayName, ErrorCode, RoomName, UserId, UserInfo};

/// Whether clients sign in (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Guests only; tokens are ignored (the default with no key).
    Off,
    /// Signed-in users and guests side by side (the default with a key).
    Optional,
    /// Every connection must present a valid token.
    Required,
}

/// A room name or a prefix pattern ending in `*` (`team-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomPattern(String);

impl RoomPattern {
    /// A pattern as written in a flag or a claim.
    pub(crate) fn new(text: &str) -> Self {
        RoomPattern(text.trim().to_owned())
    }

    /// Whether `room` matches: the same name, or a name starting with the prefix.
    pub(crate) fn matches(&self, room: &RoomName) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => room.as_str().starts_with(prefix),
            None => room.as_str() == self.0,
        }
    }
}

/// The claims Charla reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The user's id.
    pub sub: String,
    /// When it expires, in seconds since the Unix epoch.
    pub exp: u64,
    /// When it was issued (revocation compares with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Private rooms (names or `prefix*`) this user may join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<String>,
    /// Roles (`moderator`, `admin`), carried for moderation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// A verified user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    /// The token's `sub`.
    pub id: UserId,
    /// The token's `name`, if it is a valid display name.
    pub name: Option<DisplayName>,
    /// The private rooms granted.
    pub rooms: Vec<RoomPattern>,
    /// The roles carried.
    pub roles: Vec<String>,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: u64,
}

impl User {
    /// As the `welcome` shows it.
    pub(crate) fn info(&self) -> UserInfo {
        UserInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenRefused {
    /// Not a token, a bad signature, another algorithm, issuer or audience, a bad `sub`.
    #[error("{0}")]
    Bad(String),
    /// Its `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// Issued before its user's tokens were revoked.
    #[error("the token was revoked")]
    Revoked,
}

impl TokenRefused {
    /// The error code a client is sent.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            TokenRefused::Bad(_) | TokenRefused::Revoked => ErrorCode::BadToken,
            TokenRefused::Expired => ErrorCode::TokenExpired,
        }
    }
}

/// An action a user asks for in a room; all of them are checked by [`Auth::authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Enter the room (and read it).
    Join,
}

/// A refusal by the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Forbidden(pub String);

/// Why the auth settings cannot work.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The public key file could not be read or parsed.
    #[error("--jwt-public-key {path}: {why}")]
    PublicKey {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// A mode that needs a key was asked for without one.
    #[error("--auth {0:?} needs --jwt-secret or --jwt-public-key")]
    NoKey(AuthMode),
    /// Dev login mints tokens, which needs a secret, not a public key.
    #[error("--dev-login mints HS256 tokens: use it with --jwt-secret, not --jwt-public-key")]
    DevLoginNeedsSecret,
}

/// The token checks and the policy, built once from the configuration.
pub(crate) struct Auth {
    mode: AuthMode,
    key: Option<(DecodingKey, Validation)>,
    minter: Option<EncodingKey>,
    private_rooms: Vec<RoomPattern>,
    /// How long before `exp` a connection is told to refresh.
    pub refresh_before: Duration,
    /// Clock skew allowed on `exp`, in seconds.
    pub leeway: u64,
    /// Where the page gets its token (`--token-url`).
    pub token_url: Option<String>,
    /// Whether `POST /api/dev/token` mints tokens.
    pub dev_login: bool,
    /// The life of a dev-login token.
    pub dev_token_ttl: Duration,
    /// Per user, tokens issued before this (seconds since the epoch) are refused.
    revoked: Mutex<HashMap<UserId, u64>>,
}

/// The settings [`Auth`] is built from.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthSettings {
    pub mode: Option<AuthMode>,
    pub secret: Option<String>,
    pub public_key: Option<std::path::PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub private_rooms: Vec<String>,
    pub refresh_before: Duration,
    pub leeway: Duration,
    pub token_url: Option<String>,
    pub dev_login: bool,
    pub dev_token_ttl: Duration,
}

/// What a token must carry to be taken: `exp` and `sub`, and `iss`/`aud` when the server
/// names them, within `leeway` seconds of clock difference.
fn validation(alg: Algorithm, leeway: u64, settings: &AuthSettings) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway;
    validation.set_required_spec_claims(&["exp", "sub"]);
    match &settings.issuer {
        Some(iss) => {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        None => validation.iss = None,
    }
    match &settings.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        None => validation.validate_aud = false,
    }
    validation
}

impl Auth {
    /// Builds the checks; a dev login with no key gets a random secret of its own.
    pub(crate) fn new(settings: AuthSettings) -> Result<Self, AuthConfigError> {
        let mut secret = settings.secret.clone();
        if settings.dev_login && settings.public_key.is_some() {
            return Err(AuthConfigError::DevLoginNeedsSecret);
        }
        if settings.dev_login && secret.is_none() {
            secret = Some(crate::hub::random_token(32));
        }
        let key = match (&secret, &settings.public_key) {
            (Some(secret), _) => Some((
                DecodingKey::from_secret(secret.as_bytes()).map_err(|e| {
                    AuthConfigError::PublicKey {
                        path: "(secret)".into(),
                        why: e.to_string(),
                    }
                })?,
                Algorithm::HS256,
            )),
            (None, Some(path)) => Some(read_public_key(path)?),
            (None, None) => None,
        };
        let mode = match (settings.mode, &key) {
            (Some(AuthMode::Off), _) => AuthMode::Off,
            (Some(mode), None) => return Err(AuthConfigError::NoKey(mode)),
            (Some(mode), Some(_)) => mode,
            (None, Some(_)) => AuthMode::Optional,
            (None, None) => AuthMode::Off,
        };
        let leeway = settings.leeway.as_secs();
        let key = key.map(|(key, alg)| (key, validation(alg, leeway, &settings)));
        let minter = match (&secret, settings.dev_login) {
            (Some(secret), true) => EncodingKey::from_secret(secret.as_bytes()).ok(),
            _ => None,
        };
        Ok(Auth {
            mode,
            key,
            minter,
            private_rooms: settings
                .private_rooms
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| RoomPattern::new(p))
                .collect(),
            refresh_before: settings.refresh_before,
            leeway,
            token_url: settings.token_url,
            dev_login: settings.dev_login,
            dev_token_ttl: settings.dev_token_ttl,
            revoked: Mutex::new(HashMap::new()),
        })
    }

    /// Whether tokens can be checked at all (a secret or a public key is configured).
    pub(crate) fn accepts_tokens(&self) -> bool {
        self.key.is_some()
    }

    /// The mode in force.
    pub(crate) fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Checks a token, at `now` (seconds since the epoch).
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<User, TokenRefused> {
        let Some((key, validation)) = &self.key else {
            return Err(TokenRefused::Bad("this server accepts no tokens".into()));
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRefused::Expired,
                ErrorKind::InvalidSignature => TokenRefused::Bad("bad signature".into()),
                ErrorKind::InvalidAlgorithm => {
                    TokenRefused::Bad("the token's algorithm is not the one configured".into())
                }
                ErrorKind::InvalidIssuer => TokenRefused::Bad("wrong issuer".into()),
                ErrorKind::InvalidAudience => TokenRefused::Bad("wrong audience".into()),
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenRefused::Bad(format!("the token has no `{claim}`"))
                }
                _ => TokenRefused::Bad("not a valid token".into()),
            })?;
        let claims = data.claims;
        // Belt and braces: the library checks `exp` with the leeway already.
        if claims.exp.saturating_add(self.leeway) < now {
            return Err(TokenRefused::Expired);
        }
        let sub_chars = claims.sub.chars().count();
        if sub_chars == 0 || sub_chars > 64 || claims.sub.chars().any(char::is_control) {
            return Err(TokenRefused::Bad("`sub` must be 1–64 characters".into()));
        }
        let id = UserId::new(claims.sub);
        if let Some(before) = self.revoked_before(&id)
            && claims.iat.is_none_or(|iat| iat < before)
        {
            return Err(TokenRefused::Revoked);
        }
        Ok(User {
            name: claims
                .name
                .as_deref()
                .and_then(|n| DisplayName::parse(n).ok()),
            rooms: claims.rooms.iter().map(|r| RoomPattern::new(r)).collect(),
            roles: claims.roles,
            exp: claims.exp,
            id,
        })
    }

    /// Whether `room` is private (`--private-rooms`).
    pub(crate) fn is_private(&self, room: &RoomName) -> bool {
        self.private_rooms.iter().any(|p| p.matches(room))
    }

    /// The one policy: may `user` (none: a guest) do `action` in `room`?
    pub(crate) fn authorize(
        &self,
        user: Option<&User>,
        room: &RoomName,
        action: Action,
    ) -> Result<(), Forbidden> {
        match action {
            Action::Join => {
                if !self.is_private(room) {
                    return Ok(());
                }
                match user {
                    Some(user) if user.rooms.iter().any(|p| p.matches(room)) => Ok(()),
                    // Says no more than that: not whether the room exists or who is in it.
                    _ => Err(Forbidden(format!(
                        "room `{room}` is private: you may not join it"
                    ))),
                }
            }
        }
    }

    /// Refuses every token of `user` issued before `before` (seconds since the epoch).
    pub(crate) fn revoke(&self, user: &UserId, before: u64) {
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = revoked.entry(user.clone()).or_insert(0);
        *entry = (*entry).max(before);
    }

    fn revoked_before(&self, user: &UserId) -> Option<u64> {
        let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.get(user).copied()
    }

    /// A dev-login token (HS256, `--dev-token-ttl`), if dev login is on.
    #[cfg(test)]
    pub(crate) fn mint(
        &self,
        sub: &str,
        name: Option<&str>,
        rooms: &[String],
        now: u64,
    ) -> Option<(String, u64)> {
        self.mint_with_roles(sub, name, rooms, &[], now)
    }

    /// [`mint`](Self::mint), with roles (`moderator`, `admin`) in the token.
    pub(crate) fn mint_with_roles(
        &self,
        sub: &str,
        name: Option<&str>,
        rooms: &[String],
        roles: &[String],
        now: u64,
    ) -> Option<(String, u64)> {
        let minter = self.minter.as_ref()?;
        let exp = now + self.dev_token_ttl.as_secs().max(1);
        let claims = Claims {
            sub: sub.to_owned(),
            exp,
            iat: Some(now),
            name: name.map(str::to_owned),
            rooms: rooms.to_vec(),
            roles: roles.to_vec(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, minter).ok()?;
        Some((token, exp))
    }
}

/// Reads a PEM public key: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA).
fn read_public_key(path: &std::path::Path) -> Result<(DecodingKey, Algorithm), AuthConfigError> {
    let failed = |why: String| AuthConfigError::PublicKey {
        path: path.display().to_string(),
        why,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((key, Algorithm::ES256));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    Err(failed(
        "not a PEM RSA, EC (P-256) or Ed25519 public key".into(),
    ))
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    crate::committer::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("a room name")
    }

    #[test]
    fn patterns_match_names_and_prefixes() {
        assert!(RoomPattern::new("team-*").matches(&room("team-x")));
        assert!(RoomPattern::new("team-*").matches(&room("team-")));
        assert!(!RoomPattern::new("team-*").matches(&room("teams")));
        assert!(RoomPattern::new("ops").matches(&room("ops")));
        assert!(!RoomPattern::new("ops").matches(&room("ops2")));
        assert!(RoomPattern::new("*").matches(&room("anything")));
    }

    fn settings() -> AuthSettings {
        AuthSettings {
            secret: Some("s3cret".into()),
            private_rooms: vec!["team-*".into()],
            refresh_before: Duration::from_secs(60),
            leeway: Duration::from_secs(30),
            dev_login: true,
            dev_token_ttl: Duration::from_secs(3600),
            ..AuthSettings::default()
        }
    }

    #[test]
    fn the_policy_lets_only_granted_users_into_private_rooms() {
        let auth = Auth::new(settings()).expect("auth");
        let now = now_secs();
        let (token, _) = auth
            .mint("alice", Some("Alice"), &["team-*".into()], now)
            .expect("minted");
        let alice = auth.verify(&token, now).expect("valid");
        let (token, _) = auth.mint("bob", None, &[], now).expect("minted");
        let bob = auth.verify(&token, now).expect("valid");
        assert!(
            auth.authorize(Some(&alice), &room("team-x"), Action::Join)
                .is_ok()
        );
        assert!(
            auth.authorize(Some(&bob), &room("team-x"), Action::Join)
                .is_err()
        );
        assert!(auth.authorize(None, &room("team-x"), Action::Join).is_err());
        assert!(auth.authorize(None, &room("general"), Action::Join).is_ok());
    }

    #[test]
    fn modes_follow_the_key() {
        assert_eq!(
            Auth::new(AuthSettings::default()).expect("auth").mode(),
            AuthMode::Off
        );
        assert_eq!(
            Auth::new(settings()).expect("auth").mode(),
            AuthMode::Optional
        );
        assert!(matches!(
            Auth::new(AuthSettings {
                mode: Some(AuthMode::Required),
                ..AuthSettings::default()
            }),
            Err(AuthConfigError::NoKey(AuthMode::Required))
        ));
    }

    #[test]
    fn revoked_tokens_are_refused_and_later_ones_are_not() {
        let auth = Auth::new(settings()).expect("auth");
        let now = now_secs();
        let (old, _) = auth.mint("alice", None, &[], now - 10).expect("minted");
        auth.revoke(&UserId::new("alice"), now - 5);
        assert_eq!(auth.verify(&old, now).err(), Some(TokenRefused::Revoked));
        let (new, _) = auth.mint("alice", None, &[], now).expect("minted");
        assert!(auth.verify(&new, now).is_ok());
    }
}
