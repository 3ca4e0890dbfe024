//! The hub: who is connected, and the one place that orders chat lines.
//!
//! Every operation takes the hub's lock briefly, does only in-memory work (append to the
//! store, encode a frame once, push the same bytes into each [`Outbox`]) and never awaits a
//! client. Because a line is appended and fanned out under the same lock, every wire carries
//! lines in `seq` order.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use shared::{ChatLine, ConnId, ServerMsg, limits::PROTOCOL_VERSION};

use crate::{
    metrics::Metrics,
    outbox::{CloseReason, Frame, Outbox},
    store::HistoryStore,
};

/// Shared state of the relay. Cheap to share as `Arc<Hub>`.
pub struct Hub {
    state: Mutex<State>,
    /// Each new outbox's byte limit (see [`Outbox`]).
    outbox_bytes: usize,
    /// Connection and history gauges are kept here, where the numbers change.
    metrics: Arc<Metrics>,
}

struct State {
    /// Who is connected; the hub reaches each one only through its outbox.
    conns: HashMap<ConnId, Arc<Outbox>>,
    /// Typists whose last live text was not empty, so that a leaver's text can be cleared.
    typing: HashSet<ConnId>,
    /// The history. Appending and fan-out share the hub's lock, so `seq` order is wire order.
    store: Box<dyn HistoryStore>,
}

/// A joined connection: its id and the outbox its write loop drains.
pub struct Joined {
    /// The connection's public id.
    pub id: ConnId,
    /// Its outbound queue, with the `welcome` already first in it.
    pub outbox: Arc<Outbox>,
    /// How many are connected now, this one included.
    pub online: usize,
}

impl Hub {
    /// A hub with no connections over `store`; each connection's outbox holds at most
    /// `outbox_bytes` of chat frames.
    pub fn new(store: Box<dyn HistoryStore>, outbox_bytes: usize, metrics: Arc<Metrics>) -> Self {
        metrics.history_lines.set(gauge(store.len()));
        Hub {
            state: Mutex::new(State {
                conns: HashMap::new(),
                typing: HashSet::new(),
                store,
            }),
            outbox_bytes,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a few map operations that leave State consistent,
        // so a panic elsewhere must not take the whole relay down with a poisoned lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection: gives it an id, queues its `welcome` (the history and the
    /// count), and tells everyone else the new count. From this call on it gets every line.
    pub fn join(&self) -> Joined {
        let id = new_conn_id();
        let outbox = Arc::new(Outbox::new(self.outbox_bytes));
        let (history, online) = {
            let mut state = self.lock();
            // Snapshot and registration under one lock: no line can fall between the
            // history in the welcome and the live stream that follows it.
            let history = state.store.lines();
            state.conns.insert(id.clone(), outbox.clone());
            let online = state.conns.len();
            self.metrics.connections.set(gauge(online));
            let presence = Frame::encode(&ServerMsg::Presence {
                online: count(online),
            });
            for (other, their_outbox) in &state.conns {
                if *other != id {
                    their_outbox.push(presence.clone());
                }
            }
            (history, online)
        };
        // Encoding a long history is the slow part; do it outside the lock. `push_front`
        // puts it ahead of any line that arrived meanwhile, and those lines have higher
        // `seq`s than every line in `history`.
        outbox.push_front(Frame::encode(&ServerMsg::Welcome {
            id: id.clone(),
            history,
            online: count(online),
            protocol: PROTOCOL_VERSION,
        }));
        Joined { id, outbox, online }
    }

    /// Removes a connection; clears its live text if it had any and tells everyone the new
    /// count. Returns how many are still connected.
    pub fn leave(&self, id: &ConnId) -> usize {
        let mut state = self.lock();
        if state.conns.remove(id).is_none() {
            return state.conns.len();
        }
        if state.typing.remove(id) {
            let cleared = Frame::encode(&ServerMsg::Typing {
                from: id.clone(),
                text: String::new(),
            });
            for outbox in state.conns.values() {
                outbox.push_typing(id, cleared.clone());
            }
        }
        let online = state.conns.len();
        self.metrics.connections.set(gauge(online));
        let presence = Frame::encode(&ServerMsg::Presence {
            online: count(online),
        });
        for outbox in state.conns.values() {
            outbox.push(presence.clone());
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
        for outbox in state.conns.values() {
            outbox.push_typing(from, update.clone());
        }
    }

    /// Appends a line from `from` to the history and sends it to everyone, sender included.
    pub fn send(&self, from: &ConnId, text: String) -> ChatLine {
        let mut state = self.lock();
        let line = state.store.append(from.clone(), text, now_ms());
        self.metrics.history_lines.set(gauge(state.store.len()));
        let message = Frame::encode(&ServerMsg::Message(line.clone()));
        for outbox in state.conns.values() {
            outbox.push(message.clone());
        }
        line
    }

    /// How many connections are registered.
    pub fn online(&self) -> usize {
        self.lock().conns.len()
    }

    /// Closes every connection with 1001 "going away" (server shutdown).
    pub fn close_all(&self) {
        for outbox in self.lock().conns.values() {
            outbox.close(CloseReason::GoingAway);
        }
    }
}

/// A fresh public id: 96 bits from the OS's random source, as 16 URL-safe base64 characters.
fn new_conn_id() -> ConnId {
    let mut bytes = [0u8; 12];
    if let Err(err) = getrandom::fill(&mut bytes) {
        // No randomness means ids could be guessed and forged; refuse to carry on.
        panic!("the OS random source failed: {err}");
    }
    ConnId::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_url_safe_chars_and_distinct() {
        let ids: HashSet<ConnId> = (0..1000).map(|_| new_conn_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.as_str().len(), 16);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }
}
