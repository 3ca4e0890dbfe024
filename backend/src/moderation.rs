//! Who may change a room's log: an author edits or deletes their own line within
//! `--edit-window`; a moderator (token role `moderator` or `admin`) deletes any line at any
//! time; the server API (the app's backend, with the API key) does both to any line.
//!
//! A moderator (or the server API) also kicks, bans, unbans, mutes and unmutes people
//! (a signed-in user by their id, a guest by its session's id) and sets a room's slow mode.
//!
//! A change is checked here (against the room's kept line, for an edit or a deletion), then
//! appended to the room's log like a line (its own `seq`, durable, fanned out in order):
//! see [`shared::Change`]. Only lines the room still keeps in memory (the history cap) can be
//! changed. What a moderator does to others is also recorded in the audit log.

use std::time::Duration;

use shared::{Change, ChangeKind, ChatLine, ConnId, ErrorCode, Seq, UserId};

use crate::hub::Room;

/// The longest slow mode, in seconds (an hour).
pub(crate) const MAX_SLOW_MODE_SECS: u32 = 3_600;
/// The longest id a kick, ban or mute may name.
const MAX_SUBJECT_CHARS: usize = 128;

/// What is asked of the room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ask {
    /// A new text for a line.
    Edit(Seq),
    /// A line's removal.
    Delete(Seq),
    /// A kick, ban, unban, mute or unmute of `user` (a user's id, or a guest's session id),
    /// a ban's or a mute's until `until` (ms since the epoch; none: until lifted).
    People {
        /// Which.
        kind: ChangeKind,
        /// Whom.
        user: String,
        /// Until when.
        until: Option<u64>,
    },
    /// The room's slow mode (0: off).
    SlowMode(u32),
}

/// A change that passed the checks: the entry to append, and whether the audit log records
/// it (a moderator's doing to someone else's line or to the room).
pub(crate) struct Checked {
    /// The entry.
    pub change: Change,
    /// Whether it is audited.
    pub audited: bool,
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
    /// The server API: the API key (`by` is `api`) or an admin's token (`by` is the user's
    /// id).
    Api {
        /// Who acts, as the entry and the audit log say.
        by: &'a str,
    },
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
            Actor::Api { by } => (*by).to_owned(),
        }
    }

    /// Whether `line` is this actor's own: sent by the same session, or by the same user.
    fn owns(&self, line: &ChatLine) -> bool {
        match self {
            Actor::Member { id, user, .. } => {
                line.from == **id || (user.is_some() && line.user.as_ref() == *user)
            }
            Actor::Api { .. } => false,
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
) -> Result<Checked, Refusal> {
    let (seq, edit) = match ask {
        Ask::Edit(seq) => (seq, true),
        Ask::Delete(seq) => (seq, false),
        Ask::People { kind, user, until } => return people(kind, user, until, actor, now_ms),
        Ask::SlowMode(secs) => return slow_mode(secs, actor),
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
    if line.removed && edit {
        return not_found("it was removed");
    }
    let moderates = match actor {
        Actor::Member { moderator, .. } => moderator && !edit,
        Actor::Api { .. } => true,
    };
    if !moderates {
        if !actor.owns(&line) {
            let what = if edit {
                "only its author may edit a line"
            } else {
                "only its author or a moderator may delete a line"
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
    let audited = moderates && !actor.owns(&line);
    let change = if edit {
        Change::edit(seq)
    } else {
        Change::delete(seq, actor.by())
    };
    Ok(Checked { change, audited })
}

/// Only a moderator (or the API) moderates people and pace.
fn moderator_only(actor: Actor<'_>, what: &str) -> Result<(), Refusal> {
    match actor {
        Actor::Member {
            moderator: false, ..
        } => Err((ErrorCode::Forbidden, format!("only a moderator may {what}"))),
        _ => Ok(()),
    }
}

/// A kick, ban, unban, mute or unmute of `user`.
fn people(
    kind: ChangeKind,
    user: String,
    until: Option<u64>,
    actor: Actor<'_>,
    now_ms: u64,
) -> Result<Checked, Refusal> {
    moderator_only(actor, &format!("{} someone", kind.as_str()))?;
    let bad = |why: String| Err((ErrorCode::BadField, why));
    if user.trim().is_empty()
        || user.chars().nth(MAX_SUBJECT_CHARS).is_some()
        || user.chars().any(char::is_control)
    {
        return bad(format!(
            "user must be a user's id or a session's id (1 to {MAX_SUBJECT_CHARS} characters, \
             no control characters)"
        ));
    }
    if let Actor::Member { id, user: me, .. } = actor
        && (id.as_str() == user || me.is_some_and(|me| me.as_str() == user))
    {
        return bad(format!("you cannot {} yourself", kind.as_str()));
    }
    let until = match kind {
        ChangeKind::Ban | ChangeKind::Mute => until,
        _ => None,
    };
    if until.is_some_and(|until| until <= now_ms) {
        return bad(
            "until has passed: give a time to come (ms since the Unix epoch), or none \
             for good"
                .to_owned(),
        );
    }
    Ok(Checked {
        change: Change::moderation(kind, Some(user), until, None, actor.by()),
        audited: true,
    })
}

/// A slow mode of `secs`.
fn slow_mode(secs: u32, actor: Actor<'_>) -> Result<Checked, Refusal> {
    moderator_only(actor, "set a room's slow mode")?;
    if secs > MAX_SLOW_MODE_SECS {
        return Err((
            ErrorCode::BadField,
            format!("secs must be 0 (off) to {MAX_SLOW_MODE_SECS}"),
        ));
    }
    Ok(Checked {
        change: Change::moderation(ChangeKind::SlowMode, None, None, Some(secs), actor.by()),
        audited: true,
    })
}
