//! Sign-in tokens on the client's side: where a client gets them ([`TokenSource`]), and how
//! an app mints one ([`mint_hs256`], behind `charla token`).
//!
//! A token is a JSON Web Token signed by the app Charla runs beside; the client never checks
//! it (the server does), it only presents it in its `hello` and, when the server says it is
//! about to expire (`token_expiring`), asks its source for a new one and sends `refresh`.

use std::{
    fmt,
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

/// Why a token source could not give a token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

type Fetch = Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send>>;

/// How long one ask of a token source may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the client gets its sign-in token: at connect, when the server asks for a fresh
/// one, and before a reconnection when the one it holds is about to expire.
#[derive(Clone)]
pub struct TokenSource(Kind);

#[derive(Clone)]
enum Kind {
    Fixed(String),
    File(PathBuf),
    Callback(Arc<dyn Fn() -> Fetch + Send + Sync>),
}

impl TokenSource {
    /// Always this token: nothing to refresh it with, so the server closes the connection
    /// when it expires (and the client stops: see [`crate::Event::SignedOut`]).
    pub fn fixed(token: impl Into<String>) -> Self {
        TokenSource(Kind::Fixed(token.into()))
    }

    /// The token in this file (surrounding white space ignored), read again every time one
    /// is needed: whatever writes the file keeps the client signed in.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        TokenSource(Kind::File(path.into()))
    }

    /// The token `fetch` gives, asked again every time one is needed (an app fetches it
    /// from its own backend). Each call should return a token for the same user.
    pub fn callback<F, Fut>(fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, TokenError>> + Send + 'static,
    {
        TokenSource(Kind::Callback(Arc::new(move || Box::pin(fetch()))))
    }

    /// Whether asking again may give a new token (a file or a callback, not a fixed token).
    pub fn can_refresh(&self) -> bool {
        !matches!(self.0, Kind::Fixed(_))
    }

    /// Whether it reads a file (cheap enough to read before every reconnection).
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.0, Kind::File(_))
    }

    /// A token now (within [`FETCH_TIMEOUT`]).
    pub async fn fetch(&self) -> Result<String, TokenError> {
        let token = match &self.0 {
            Kind::Fixed(token) => token.clone(),
            Kind::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
            Kind::Callback(fetch) => tokio::time::timeout(FETCH_TIMEOUT, fetch())
                .await
                .map_err(|_| format!("no token within {FETCH_TIMEOUT:?}"))??,
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(match &self.0 {
                Kind::File(path) => format!("{} holds no token", path.display()).into(),
                _ => "the token is empty".into(),
            });
        }
        Ok(token.to_owned())
    }
}

impl fmt::Debug for TokenSource {
    /// Never shows a token: it is a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Fixed(_) => f.write_str("TokenSource::Fixed(..)"),
            Kind::File(path) => write!(f, "TokenSource::File({})", path.display()),
            Kind::Callback(_) => f.write_str("TokenSource::Callback"),
        }
    }
}

/// A token's `exp` (seconds since the Unix epoch), read without checking its signature:
/// only to know whether it is worth presenting, never to trust it.
pub(crate) fn expires_at(token: &str) -> Option<u64> {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    claims.get("exp")?.as_u64()
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a token says: the claims Charla reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user's id (`sub`): 1–64 characters.
    pub sub: String,
    /// The display name (`name`).
    pub name: Option<String>,
    /// The private rooms granted (`rooms`): names, or prefixes ending in `*` (`team-*`).
    pub rooms: Vec<String>,
    /// Roles (`roles`): `moderator`, `admin`.
    pub roles: Vec<String>,
    /// How long it is valid: `exp` is `iat` plus this.
    pub ttl: Duration,
    /// The issuer (`iss`), for a server run with `--jwt-issuer`.
    pub issuer: Option<String>,
    /// The audience (`aud`), for a server run with `--jwt-audience`.
    pub audience: Option<String>,
}

impl Claims {
    /// A token for `sub`, valid for an hour, with nothing else.
    pub fn new(sub: impl Into<String>) -> Self {
        Claims {
            sub: sub.into(),
            name: None,
            rooms: Vec::new(),
            roles: Vec::new(),
            ttl: Duration::from_secs(3_600),
            issuer: None,
            audience: None,
        }
    }

    /// The JSON claims, issued at `now` (seconds since the Unix epoch).
    fn to_json(&self, now: u64) -> Value {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(self.sub));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now.saturating_add(self.ttl.as_secs())));
        if let Some(name) = &self.name {
            claims.insert("name".into(), json!(name));
        }
        if !self.rooms.is_empty() {
            claims.insert("rooms".into(), json!(self.rooms));
        }
        if !self.roles.is_empty() {
            claims.insert("roles".into(), json!(self.roles));
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), json!(issuer));
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), json!(audience));
        }
        Value::Object(claims)
    }
}

/// Why [`mint_hs256`] made no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The `sub` is empty or over 64 characters (the server would refuse it).
    #[error("the user id (sub) must be 1 to 64 characters, not {0}")]
    BadSub(usize),
    /// A token valid for less than a second.
    #[error("the token must be valid for at least a second")]
    NoTtl,
    /// The secret is empty.
    #[error("the secret must not be empty")]
    NoSecret,
    /// The signing library failed.
    #[error("could not sign the token: {0}")]
    Sign(String),
}

/// An HS256 token with these claims, signed with `secret` (the server's `--jwt-secret`),
/// issued now. What an app's backend does for each signed-in user, in Rust.
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> Result<String, MintError> {
    let chars = claims.sub.chars().count();
    if !(1..=64).contains(&chars) {
        return Err(MintError::BadSub(chars));
    }
    if claims.ttl.as_secs() == 0 {
        return Err(MintError::NoTtl);
    }
    if secret.is_empty() {
        return Err(MintError::NoSecret);
    }
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret)
        .map_err(|e| MintError::Sign(e.to_string()))?;
    jsonwebtoken::encode(&header, &claims.to_json(now_secs()), &key)
        .map_err(|e| MintError::Sign(e.to_string()))
}

/// Parses a duration written `45s`, `30m`, `1h`, `7d` (or a plain number of seconds), as
/// the server's flags are; zero is refused.
pub use shared::duration::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_says_what_was_asked_and_its_exp_can_be_read() {
        let mut claims = Claims::new("alice");
        claims.ttl = Duration::from_secs(60);
        let token = mint_hs256(b"s3cret", &claims).expect("minted");
        let exp = expires_at(&token).expect("an exp");
        assert!(exp.abs_diff(now_secs() + 60) <= 2, "{exp}");
        assert_eq!(
            mint_hs256(b"s3cret", &Claims::new("")),
            Err(MintError::BadSub(0))
        );
        assert_eq!(
            mint_hs256(b"s3cret", &Claims::new("x".repeat(65))),
            Err(MintError::BadSub(65))
        );
        assert_eq!(
            mint_hs256(b"", &Claims::new("alice")),
            Err(MintError::NoSecret)
        );
        assert_eq!(expires_at("not a token"), None);
    }

    #[test]
    fn a_token_is_never_shown_in_debug_output() {
        let source = TokenSource::fixed("eyJ.secret.token");
        assert!(!format!("{source:?}").contains("secret"));
    }

    #[tokio::test]
    async fn sources_give_their_token_trimmed_and_refuse_an_empty_one() {
        let dir = std::env::temp_dir().join(format!("charla-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("token");
        std::fs::write(&path, "  eyJ.a.b\n").expect("write");
        let file = TokenSource::file(&path);
        assert!(file.can_refresh());
        assert_eq!(file.fetch().await.expect("read"), "eyJ.a.b");
        std::fs::write(&path, "eyJ.c.d").expect("write");
        assert_eq!(file.fetch().await.expect("read again"), "eyJ.c.d");
        std::fs::write(&path, "\n").expect("write");
        assert!(file.fetch().await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            TokenSource::file("/nonexistent/token")
                .fetch()
                .await
                .is_err()
        );

        let fixed = TokenSource::fixed("eyJ.e.f");
        assert!(!fixed.can_refresh());
        assert_eq!(fixed.fetch().await.expect("fixed"), "eyJ.e.f");

        let callback = TokenSource::callback(|| async { Ok("eyJ.g.h".to_owned()) });
        assert_eq!(callback.fetch().await.expect("called"), "eyJ.g.h");
        let failing = TokenSource::callback(|| async { Err("the app is down".into()) });
        let err = failing.fetch().await.expect_err("fails");
        assert_eq!(err.to_string(), "the app is down");
    }
}
