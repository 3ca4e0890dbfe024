//! The sign-in's handlers on a connection: its timer (`token_expiring` before the token's
//! `exp`, `token_expired` and close 4001 at it) and `refresh`. The state they act on is
//! [`SignIn`](super::super::connection::SignIn).

use std::time::Instant;

use shared::{ErrorCode, ServerMsg};

use super::super::connection::{Connection, Flow, Refused, TokenDue, refusal};
use crate::{
    auth::{TokenRefused, now_secs},
    committer::now_ms,
    outbox::Frame,
};

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
