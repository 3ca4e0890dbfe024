//! The hub: who is connected, the recent history, and fan-out.
//!
//! Every operation takes the hub's lock briefly, does only in-memory work (encode a frame
//! once, push the same bytes into each [`Outbox`]) and never awaits a client or the disk.
//! Lines arrive already numbered and durable from the [`Committer`](crate::committer), in
//! `seq` order, and [`Hub::publish`] fans each out under the lock: every wire carries lines
//! in `seq` order, and a sender gets the `ack` for its line just before the line itself.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use base64::Engine as _;
use shared::{ChatLine, ConnId, ErrorCode, Seq, ServerMsg, limits::PROTOCOL_VERSION};

use crate::{
    metrics::Metrics,
    outbox::{CloseReason, Frame, Outbox},
};

/// How the hub is sized.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Lines kept (and replayable).
    pub history_cap: usize,
    /// Lines in a fresh `welcome`.
    pub welcome_lines: usize,
    /// Each outbox's byte limit (see [`Outbox`]).
    pub outbox_bytes: usize,
}

/// Shared state of the relay. Cheap to share as `Arc<Hub>`.
pub struct Hub {
    state: Mutex<State>,
    config: HubConfig,
    /// Connection and history gauges are kept here, where the numbers change.
    metrics: Arc<Metrics>,
}

struct State {
    /// Who is connected, by connection number (one public id may have two connections for a
    /// moment, when a client resumes before its old socket is noticed gone).
    conns: HashMap<u64, Member>,
    next_conn: u64,
    /// Ids whose last live text was not empty, so that a leaver's text can be cleared.
    typing: HashSet<ConnId>,
    /// The kept history, oldest first, contiguous in `seq`: welcomes, replays and older pages
    /// are served from here, never from the disk.
    lines: VecDeque<ChatLine>,
    /// Resume tokens → the public id they give back.
    sessions: HashMap<String, ConnId>,
}

struct Member {
    id: ConnId,
    outbox: Arc<Outbox>,
}

/// A client's claim to resume a session: its token and the last `seq` it has.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The private token from an earlier `welcome`.
    pub token: String,
    /// The last `seq` the client holds (0 for none).
    pub after: Seq,
}

/// A joined connection.
pub struct Joined {
    /// The connection's number, for [`Hub::leave`].
    pub conn: u64,
    /// The connection's public id.
    pub id: ConnId,
    /// Its outbound queue, with the `welcome` already first in it.
    pub outbox: Arc<Outbox>,
    /// How many are connected now, this one included.
    pub online: usize,
    /// A token made for this connection, to be stored (none when it resumed).
    pub new_session: Option<(String, ConnId)>,
}

impl Hub {
    /// A hub with no connections, over the history and sessions loaded from the store.
    pub fn new(
        lines: Vec<ChatLine>,
        sessions: Vec<(String, ConnId)>,
        config: HubConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut lines = VecDeque::from(lines);
        while lines.len() > config.history_cap.max(1) {
            lines.pop_front();
        }
        metrics.history_lines.set(gauge(lines.len()));
        Hub {
            state: Mutex::new(State {
                conns: HashMap::new(),
                next_conn: 0,
                typing: HashSet::new(),
                lines,
                sessions: sessions.into_iter().collect(),
            }),
            config,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a few map operations that leave State consistent,
        // so a panic elsewhere must not take the whole relay down with a poisoned lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection and queues its `welcome`: a resumed session gets its old
    /// id and exactly the lines after `after`; anyone else a new id and the latest page.
    /// Tells everyone else the new count. From this call on it gets every line.
    pub fn join(&self, resume: Option<Resume>) -> Joined {
        let outbox = Arc::new(Outbox::new(self.config.outbox_bytes));
        let (welcome, joined) = {
            let mut state = self.lock();
            let known = resume.as_ref().and_then(|r| {
                state
                    .sessions
                    .get(&r.token)
                    .map(|id| (r.token.clone(), id.clone(), r.after))
            });
            let after = known.as_ref().map(|(_, _, after)| *after);
            let (token, id, new_session) = match known {
                Some((token, id, _)) => (token, id, None),
                None => {
                    let (token, id) = (random_token(16), ConnId::new(random_token(12)));
                    state.sessions.insert(token.clone(), id.clone());
                    (token.clone(), id.clone(), Some((token, id)))
                }
            };
            // A replay is possible when every line after `after` is still kept.
            let replay = after.and_then(|after| {
                let last = state.lines.back().map_or(Seq(0), |l| l.seq);
                let first = state.lines.front().map_or(Seq(1), |l| l.seq);
                (after <= last && after.0 + 1 >= first.0).then_some(after)
            });
            let (history, has_more, resumed) = match replay {
                Some(after) => (
                    state
                        .lines
                        .iter()
                        .filter(|l| l.seq > after)
                        .cloned()
                        .collect(),
                    false,
                    true,
                ),
                None => {
                    let skip = state.lines.len().saturating_sub(self.config.welcome_lines);
                    (
                        state.lines.iter().skip(skip).cloned().collect::<Vec<_>>(),
                        skip > 0,
                        false,
                    )
                }
            };
            // Snapshot and registration under one lock: no line can fall between the
            // history in the welcome and the live stream that follows it.
            let conn = state.next_conn;
            state.next_conn += 1;
            state.conns.insert(
                conn,
                Member {
                    id: id.clone(),
                    outbox: outbox.clone(),
                },
            );
            let online = state.conns.len();
            self.metrics.connections.set(gauge(online));
            let presence = Frame::encode(&ServerMsg::Presence {
                online: count(online),
            });
            for (other, member) in &state.conns {
                if *other != conn {
                    member.outbox.push(presence.clone());
                }
            }
            let welcome = ServerMsg::Welcome {
                id: id.clone(),
                history,
                online: count(online),
                protocol: PROTOCOL_VERSION,
                resume: token,
                has_more,
                resumed,
            };
            let joined = Joined {
                conn,
                id,
                outbox: outbox.clone(),
                online,
                new_session,
            };
            (welcome, joined)
        };
        // Encoding a long history is the slow part; do it outside the lock. `push_front`
        // puts it ahead of any line that arrived meanwhile, and those lines have higher
        // `seq`s than every line in it.
        outbox.push_front(Frame::encode(&welcome));
        joined
    }

    /// Removes a connection; clears its live text if it had any (and no other connection of
    /// the same id remains) and tells everyone the new count. Returns how many remain.
    pub fn leave(&self, conn: u64) -> usize {
        let mut state = self.lock();
        let Some(member) = state.conns.remove(&conn) else {
            return state.conns.len();
        };
        let id_remains = state.conns.values().any(|m| m.id == member.id);
        if !id_remains && state.typing.remove(&member.id) {
            let cleared = Frame::encode(&ServerMsg::Typing {
                from: member.id.clone(),
                text: String::new(),
            });
            for m in state.conns.values() {
                m.outbox.push_typing(&member.id, cleared.clone());
            }
        }
        let online = state.conns.len();
        self.metrics.connections.set(gauge(online));
        let presence = Frame::encode(&ServerMsg::Presence {
            online: count(online),
        });
        for m in state.conns.values() {
            m.outbox.push(presence.clone());
        }
        online
    }

    /// Relays `from`'s live text to everyone, typist included. Latest value wins per typist.
    pub fn typing(&self, from: &ConnId, text: String) {
        let mut state = self.lock();
        if text.is_empty() {
            state.typing.remove(from);
        } else {
            state.typing.insert(from.clone());
        }
        let update = Frame::encode(&ServerMsg::Typing {
            from: from.clone(),
            text,
        });
        for m in state.conns.values() {
            m.outbox.push_typing(from, update.clone());
        }
    }

    /// Fans out durable lines, in `seq` order: each sender gets the `ack` for its line (if it
    /// had a nonce) just before the line; everyone gets the line. `repeats` are acks for
    /// resent nonces that were already accepted: `(sender, nonce, seq)`.
    pub fn publish(&self, lines: Vec<ChatLine>, repeats: Vec<(ConnId, String, Seq)>) {
        let mut state = self.lock();
        for (from, nonce, seq) in repeats {
            let ack = Frame::encode(&ServerMsg::Ack { nonce, seq });
            for m in state.conns.values().filter(|m| m.id == from) {
                m.outbox.push(ack.clone());
            }
        }
        for line in lines {
            if let Some(nonce) = &line.nonce {
                let ack = Frame::encode(&ServerMsg::Ack {
                    nonce: nonce.clone(),
                    seq: line.seq,
                });
                for m in state.conns.values().filter(|m| m.id == line.from) {
                    m.outbox.push(ack.clone());
                }
            }
            let message = Frame::encode(&ServerMsg::Message(line.clone()));
            for m in state.conns.values() {
                m.outbox.push(message.clone());
            }
            state.lines.push_back(line);
            if state.lines.len() > self.config.history_cap.max(1) {
                state.lines.pop_front();
            }
        }
        self.metrics.history_lines.set(gauge(state.lines.len()));
    }

    /// Tells the senders of `lines` that they were not stored (the commit failed).
    pub fn refuse(&self, lines: &[ChatLine]) {
        let error = Frame::encode(&ServerMsg::Error {
            code: ErrorCode::Unavailable,
            message: "the line could not be stored; send it again later".into(),
        });
        let state = self.lock();
        for line in lines {
            for m in state.conns.values().filter(|m| m.id == line.from) {
                m.outbox.push(error.clone());
            }
        }
    }

    /// Up to `limit` kept lines before `before`, oldest first, and whether older ones exist.
    pub fn older(&self, before: Seq, limit: usize) -> (Vec<ChatLine>, bool) {
        let state = self.lock();
        let end = state.lines.partition_point(|l| l.seq < before);
        let start = end.saturating_sub(limit);
        (state.lines.range(start..end).cloned().collect(), start > 0)
    }

    /// How many connections are registered.
    pub fn online(&self) -> usize {
        self.lock().conns.len()
    }

    /// Closes every connection with 1001 "going away" (server shutdown).
    pub fn close_all(&self) {
        for m in self.lock().conns.values() {
            m.outbox.close(CloseReason::GoingAway);
        }
    }
}

/// `bytes` random bytes from the OS, as URL-safe base64: ids (12 bytes, 96 bits) and resume
/// tokens (16 bytes, 128 bits).
fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Err(err) = getrandom::fill(&mut buf) {
        // No randomness means ids and tokens could be guessed; refuse to carry on.
        panic!("the OS random source failed: {err}");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_url_safe_chars_and_distinct() {
        let ids: HashSet<String> = (0..1000).map(|_| random_token(12)).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 16);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        assert_eq!(random_token(16).len(), 22);
    }
}
