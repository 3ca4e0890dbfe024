//! Sign-in on a connection ([`SignIn`]): the `hello`'s token checked as `--auth` says, the
//! timer that asks for a refresh before the token's `exp` and ends the sign-in at it, and
//! `refresh`. The same state before the welcome (in an `Arrival`) and after it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use shared::{ErrorCode, ServerMsg};

use super::super::connection::{Connection, Flow, Refused};
use crate::{
    auth::{Auth, AuthMode, TokenRefused, User, now_secs},
    committer::now_ms,
    outbox::{CloseReason, Frame},
};

/// The longest a sign-in timer waits at once (an `Instant` far enough ahead would
/// overflow).
const MAX_TIMER: Duration = Duration::from_secs(30 * 86_400);

/// What the connection's sign-in timer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenDue {
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
    due: Option<(Instant, TokenDue)>,
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
    fn signed_in_as(&mut self, user: User) {
        self.user = Some(Box::new(user));
        self.arm(TokenDue::Expiring);
    }

    /// When (ms since the epoch) the sign-in timer's `due` step is: the refresh request
    /// `--refresh-before` ahead of `exp`, the end at `exp` and the leeway.
    fn step_at(&self, due: TokenDue) -> Option<u64> {
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
    fn arm(&mut self, due: TokenDue) {
        self.due = self.step_at(due).map(|at_ms| {
            let wait = Duration::from_millis(at_ms.saturating_sub(now_ms()));
            (Instant::now() + wait.min(MAX_TIMER), due)
        });
    }
}

/// The `error` and the close a refused token gets.
fn refusal(why: &TokenRefused) -> TokenRefusal {
    let close = match why {
        TokenRefused::Expired => CloseReason::TokenExpired,
        TokenRefused::Bad(_) | TokenRefused::Revoked => CloseReason::BadToken,
    };
    (Refused::new(why.code(), why.to_string()), close)
}

impl Connection {
    /// When the sign-in timer fires next, if the connection is signed in.
    pub(crate) fn token_due_at(&self) -> Option<Instant> {
        self.sign_in.due_at()
    }

    /// The sign-in timer fired: ask for a refresh, or end an expired sign-in.
    pub(crate) fn on_token_due(&mut self) -> Flow {
        let Some((_, due)) = self.sign_in.due.take() else {
            return Flow::Continue;
        };
        let Some(step_at) = self.sign_in.step_at(due) else {
            return Flow::Continue;
        };
        let now = now_ms();
        if now < step_at {
            // Fired early (a far `exp`): not yet.
            self.sign_in.arm(due);
            return Flow::Continue;
        }
        match due {
            TokenDue::Expiring => {
                let user = self.sign_in.user.as_ref();
                let exp_ms = user.map_or(0, |u| u.exp.saturating_mul(1000));
                let in_ms = exp_ms.saturating_sub(now);
                self.outbox.push(Frame::encode(&ServerMsg::TokenExpiring(
                    shared::server::TokenExpiring { in_ms },
                )));
                self.sign_in.arm(TokenDue::Expired);
                Flow::Continue
            }
            TokenDue::Expired => self.token_refused(&TokenRefused::Expired),
        }
    }

    /// A `refresh`: a new token for the same user takes over (and its timer); anything
    /// else ends the sign-in with `bad_token` (4001).
    pub(super) fn refresh(&mut self, token: &str, now: Instant) -> Flow {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        let Some(current) = self.sign_in.user.as_ref().map(|u| u.id.clone()) else {
            self.send_error(Refused::new(
                ErrorCode::Forbidden,
                "this connection is a guest's: sign in by connecting with a token",
            ));
            return Flow::Continue;
        };
        match self.sign_in.auth.verify(token, now_secs()) {
            Ok(user) if user.id == current => {
                let exp = user.exp;
                self.sign_in.signed_in_as(user);
                // A new token already inside `--refresh-before` (or the same one again) is
                // not asked to refresh a second time: it just runs to its end.
                if self
                    .sign_in
                    .step_at(TokenDue::Expiring)
                    .is_some_and(|at| at <= now_ms())
                {
                    self.sign_in.arm(TokenDue::Expired);
                }
                self.outbox.push(Frame::encode(&ServerMsg::TokenRefreshed(
                    shared::server::TokenRefreshed { exp },
                )));
                Flow::Continue
            }
            Ok(_) => {
                self.token_refused(&TokenRefused::Bad("the new token is another user's".into()))
            }
            Err(why) => self.token_refused(&why),
        }
    }

    /// Sends the refusal of a token and closes (4001).
    fn token_refused(&self, why: &TokenRefused) -> Flow {
        let (refused, close) = refusal(why);
        self.send_error(refused);
        Flow::Close(close)
    }
}
