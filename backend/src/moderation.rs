//! Who may change a room's log: an author edits or deletes their own line within
//! `--edit-window`; a moderator (token role `moderator` or `admin`) deletes any line at any
//! time; the server API (the app's backend, with the API key) does both to any line.
//!
//! A change is checked here against the room's kept line, then appended to the room's log
//! like a line (its own `seq`, durable, fanned out in order): see [`shared::Change`]. Only
//! lines the room still keeps in memory (the history cap) can be changed.

use std::time::Duration;

use shared::{Change, ChatLine, ConnId, ErrorCode, Seq, UserId};

use crate::hub::Room;

/// What is asked of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// A new text for it.
    Edit(Seq),
    /// Its removal.
    Delete(Seq),
}

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Actor<'a> {
    /// A connection: its session's id, its signed-in user, and whether it moderates.
    Member {
        /// The session's public id.
        id: &'a ConnId,
        /// The signed-in user, if any.
        user: Option<&'a UserId>,
        /// Whether the token carries `moderator` or `admin`.
        moderator: bool,
    },
    /// The server API.
    Api,
}

/// Whether a token's roles make its user a moderator of every room.
pub(crate) fn is_moderator(roles: &[String]) -> bool {
    roles.iter().any(|r| r == "moderator" || r == "admin")
}

impl Actor<'_> {
    /// Who it is, as a deletion's `by` says.
    fn by(&self) -> String {
        match self {
            Actor::Member {
                user: Some(user), ..
            } => user.as_str().to_owned(),
            Actor::Member { id, .. } => id.as_str().to_owned(),
            Actor::Api => "api".to_owned(),
        }
    }

    /// Whether `line` is this actor's own: sent by the same session, or by the same user.
    fn owns(&self, line: &ChatLine) -> bool {
        match self {
            Actor::Member { id, user, .. } => {
                line.from == **id || (user.is_some() && line.user.as_ref() == *user)
            }
            Actor::Api => false,
        }
    }
}

/// A refusal: its code and why, for people.
pub(crate) type Refusal = (ErrorCode, String);

/// Checks `ask` by `actor` against `room`'s kept lines at `now_ms`: the change to append,
/// or why not.
pub(crate) fn check(
    room: &Room,
    ask: Ask,
    actor: Actor<'_>,
    window: Duration,
    now_ms: u64,
) -> Result<Change, Refusal> {
    let seq = match ask {
        Ask::Edit(seq) | Ask::Delete(seq) => seq,
    };
    let not_found = |why: &str| {
        Err((
            ErrorCode::NotFound,
            format!("no line {seq} in {}: {why}", room.name),
        ))
    };
    let Some(line) = room.line(seq) else {
        return not_found("it does not exist, or is older than the lines the room keeps");
    };
    if line.change.is_some() {
        return not_found("that is an edit or a deletion, not a line");
    }
    if line.removed && matches!(ask, Ask::Edit(_)) {
        return not_found("it was removed");
    }
    let moderates = match actor {
        Actor::Member { moderator, .. } => moderator && matches!(ask, Ask::Delete(_)),
        Actor::Api => true,
    };
    if !moderates {
        if !actor.owns(&line) {
            let what = match ask {
                Ask::Edit(_) => "only its author may edit a line",
                Ask::Delete(_) => "only its author or a moderator may delete a line",
            };
            return Err((ErrorCode::Forbidden, what.to_owned()));
        }
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(line.at) > window_ms {
            return Err((
                ErrorCode::EditWindowPassed,
                format!(
                    "line {seq} was sent more than {} s ago: it can no longer be changed",
                    window.as_secs()
                ),
            ));
        }
    }
    Ok(match ask {
        Ask::Edit(target) => Change::edit(target),
        Ask::Delete(target) => Change::delete(target, actor.by()),
    })
}
