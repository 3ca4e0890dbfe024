//! A connection's sign-in ([`SignIn`]): the `hello`'s token checked as `--auth` says, and
//! when the timer must ask for a refresh before the token's `exp`, or end the sign-in at
//! it. The same state before the welcome (in an `Arrival`) and after it; the handlers that
//! act on it (the timer, `refresh`) are in `dispatch::sign_in`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use shared::ErrorCode;

use super::Refused;
use crate::{
    auth::{Auth, AuthMode, TokenRefused, User, now_secs},
    committer::now_ms,
    outbox::CloseReason,
};

/// The longest a sign-in timer waits at once (an `Instant` far enough ahead would
/// overflow).
const MAX_TIMER: Duration = Duration::from_secs(30 * 86_400);

/// What the connection's sign-in timer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ws) enum TokenDue {
    /// Tell the client to refresh (`token_expiring`).
    Expiring,
    /// The token is past its `exp` (and the leeway): `token_expired`, close 4001.
    Expired,
}

/// Who signed in on a connection, and when its token needs attention next.
pub(crate) struct SignIn {
    /// Token checks and the policy.
    pub(crate) auth: Arc<Auth>,
    /// The signed-in user (none: a guest). Boxed: most connections have none.
    pub(crate) user: Option<Box<User>>,
    /// When the sign-in timer fires next, and what it does then.
    pub(in crate::ws) due: Option<(Instant, TokenDue)>,
}

/// A refused token: the `error` to send, and the close (4001) that follows it.
pub(crate) type TokenRefusal = (Refused, CloseReason);

impl SignIn {
    /// Nobody signed in yet.
    pub(crate) fn new(auth: Arc<Auth>) -> Self {
        SignIn {
            auth,
            user: None,
            due: None,
        }
    }

    /// Checks the `hello`'s token as `--auth` says: a guest (none, or auth off), a user, or
    /// a refusal.
    pub(crate) fn check(&mut self, token: Option<String>) -> Result<(), TokenRefusal> {
        let mode = self.auth.mode();
        let token = token.filter(|_| mode != AuthMode::Off);
        match token {
            None if mode == AuthMode::Required => Err((
                Refused::new(
                    ErrorCode::AuthRequired,
                    "this server requires sign-in: send a token in the hello",
                ),
                CloseReason::AuthRequired,
            )),
            None => Ok(()),
            Some(token) => match self.auth.verify(&token, now_secs()) {
                Ok(user) => {
                    self.signed_in_as(user);
                    Ok(())
                }
                Err(why) => Err(refusal(&why)),
            },
        }
    }

    /// When the sign-in timer fires next, if anyone is signed in.
    pub(crate) fn due_at(&self) -> Option<Instant> {
        self.due.map(|(at, _)| at)
    }

    /// Takes `user` as who this connection is, and sets the timer for its token.
    pub(in crate::ws) fn signed_in_as(&mut self, user: User) {
        self.user = Some(Box::new(user));
        self.arm(TokenDue::Expiring);
    }

    /// When (ms since the epoch) the sign-in timer's `due` step is: the refresh request
    /// `--refresh-before` ahead of `exp`, the end at `exp` and the leeway.
    pub(in crate::ws) fn step_at(&self, due: TokenDue) -> Option<u64> {
        let user = self.user.as_ref()?;
        let refresh_ms = u64::try_from(self.auth.refresh_before.as_millis()).unwrap_or(u64::MAX);
        Some(match due {
            TokenDue::Expiring => user.exp.saturating_mul(1000).saturating_sub(refresh_ms),
            TokenDue::Expired => user
                .exp
                .saturating_add(self.auth.leeway)
                .saturating_mul(1000),
        })
    }

    /// Sets the sign-in timer for its `due` step (at most a month ahead: a token's `exp`
    /// may be anything the app signed; the timer then fires early and is set again).
    pub(in crate::ws) fn arm(&mut self, due: TokenDue) {
        self.due = self.step_at(due).map(|at_ms| {
            let wait = Duration::from_millis(at_ms.saturating_sub(now_ms()));
            (Instant::now() + wait.min(MAX_TIMER), due)
        });
    }
}

/// The `error` and the close a refused token gets.
pub(in crate::ws) fn refusal(why: &TokenRefused) -> TokenRefusal {
    let close = match why {
        TokenRefused::Expired => CloseReason::TokenExpired,
        TokenRefused::Bad(_) | TokenRefused::Revoked => CloseReason::BadToken,
    };
    (Refused::new(why.code(), why.to_string()), close)
}
