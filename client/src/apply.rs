//! The session driver without a socket: what one server message does to a
//! [`ClientSession`] — the [`Event`] it shows, the fate of a pending line, and the frames to
//! send in reply. The [`runner`](crate::runner) feeds it from its socket (and adds the
//! sign-in's own messages); testkit's step-by-step `SessionClient` feeds it from a socket a
//! test controls, so both drive a session the same way, with one copy of this code.

use shared::{ClientMsg, ClientSession, ErrorCode, Refusal, Seq, ServerMsg, Shown, server};

use crate::{Event, now_ms};

/// What one server message came to.
#[derive(Debug, Default)]
pub struct Applied {
    /// What to show, if anything.
    pub event: Option<Event>,
    /// What happened to one of this client's pending lines, if anything.
    pub line: Option<LineFate>,
    /// Frames to send now (after a welcome: the rooms to rejoin, the lines to resend).
    pub replies: Vec<ClientMsg>,
}

/// What the server said of a line this client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFate {
    /// Durable, at `seq`.
    Acked {
        /// The line's nonce.
        nonce: String,
        /// Where it is in its room.
        seq: Seq,
    },
    /// Not now (over the rate, the server busy): the session sends it again when due.
    Retrying {
        /// The line's nonce.
        nonce: String,
        /// Why it waits.
        code: ErrorCode,
    },
    /// Refused for good (blank, too long, a room not joined…).
    Refused {
        /// The line's nonce.
        nonce: String,
        /// Why.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
}

/// Applies `msg` to `session`.
pub fn apply(session: &mut ClientSession, msg: ServerMsg) -> Applied {
    match msg {
        ServerMsg::Welcome(welcome) => welcomed(session, welcome),
        ServerMsg::Joined(joined) => shown(joined_event(session, joined)),
        ServerMsg::Message(line) => Applied {
            event: session.on_line(line).map(Event::Line),
            ..Applied::default()
        },
        // An edit or a deletion is an entry of the room's log like a line: once, in order.
        ServerMsg::MessageEdited(edited) => Applied {
            event: session.on_line(edited.into()).map(Event::Line),
            ..Applied::default()
        },
        ServerMsg::MessageDeleted(deleted) => Applied {
            event: session.on_line(deleted.into()).map(Event::Line),
            ..Applied::default()
        },
        // So is a kick, a ban, a mute or a slow mode.
        ServerMsg::Moderation(moderation) => Applied {
            event: session.on_line(moderation.into()).map(Event::Line),
            ..Applied::default()
        },
        ServerMsg::Ack(server::Ack { nonce, seq, .. }) => {
            session.on_ack(&nonce);
            Applied {
                line: Some(LineFate::Acked { nonce, seq }),
                ..Applied::default()
            }
        }
        ServerMsg::Error(error) => refused(session, error),
        ServerMsg::Typing(server::Typing {
            room,
            from,
            name,
            user,
            text,
        }) => shown(Event::Typing {
            room,
            from,
            name,
            user,
            text,
        }),
        ServerMsg::Presence(server::Presence { room, online, .. }) => {
            shown(Event::Presence { room, online })
        }
        ServerMsg::TokenExpiring(server::TokenExpiring { in_ms }) => {
            shown(Event::TokenExpiring { in_ms })
        }
        ServerMsg::TokenRefreshed(server::TokenRefreshed { exp }) => {
            shown(Event::TokenRefreshed { exp })
        }
        ServerMsg::Pong => Applied::default(),
        other => shown(Event::Other(other)),
    }
}

/// Only an event.
fn shown(event: Event) -> Applied {
    Applied {
        event: Some(event),
        ..Applied::default()
    }
}

/// A welcome: the session takes its id and token, and says what to rejoin and resend.
fn welcomed(session: &mut ClientSession, welcome: server::Welcome) -> Applied {
    let server::Welcome {
        id,
        name,
        resume,
        resumed,
        limits,
        user,
        ..
    } = welcome;
    let replies = session.on_welcome_at(id.clone(), resume.clone(), limits, now_ms());
    Applied {
        event: Some(Event::Welcome {
            id,
            name,
            resumed,
            resume,
            user,
        }),
        line: None,
        replies,
    }
}

/// A room's greeting: its latest page, or exactly the lines missed.
fn joined_event(session: &mut ClientSession, joined: server::Joined) -> Event {
    let server::Joined {
        room,
        lines,
        resumed,
        online,
        ..
    } = joined;
    let (lines, replace) = match session.on_joined(room.clone(), lines, resumed) {
        Shown::Replace(lines) => (lines, true),
        Shown::Append(lines) => (lines, false),
    };
    Event::Joined {
        room,
        lines,
        replace,
        online,
    }
}

/// A refusal: of a pending line (retried, or dropped for good), or of anything else.
fn refused(session: &mut ClientSession, error: server::Error) -> Applied {
    let server::Error {
        code,
        message,
        room,
        nonce,
    } = error;
    let other = |message| {
        shown(Event::Error {
            code,
            message,
            room,
        })
    };
    let Some(nonce) = nonce else {
        return other(message);
    };
    let line = match session.on_refused(&nonce, code, now_ms()) {
        // It goes out again when the session says so.
        Refusal::Retry => LineFate::Retrying { nonce, code },
        Refusal::Dropped(_) => LineFate::Refused {
            nonce,
            code,
            message,
        },
        Refusal::Unknown => return other(message),
    };
    Applied {
        line: Some(line),
        ..Applied::default()
    }
}
