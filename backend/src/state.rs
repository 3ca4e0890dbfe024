//! What every request handler and every connection can reach: [`AppState`] and the
//! per-connection [`Limits`]. Its own module so that `http` (the router) and `ws` (the
//! connections) both use it without importing each other.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use shared::{ConnId, ServerLimits};

use crate::{
    admission::Admission,
    auth::Auth,
    cluster::Cluster,
    committer::Committer,
    hub::Hub,
    metrics::Metrics,
    products::Catalog,
    rate::{AddressKey, KeyedBuckets, TokenBucket},
};

/// What every request handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The rooms, sessions and connections.
    pub hub: Arc<Hub>,
    /// Where `send`s go to be numbered and made durable.
    pub committer: Arc<Committer>,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// The product list and who watches it.
    pub catalog: Arc<Catalog>,
    /// Who may connect.
    pub admission: Arc<Admission>,
    /// Per-connection limits.
    pub limits: Limits,
    /// Send limits shared across connections.
    pub sends: Arc<SharedSendLimits>,
    /// The other servers sharing the chat (`--redis`), if any.
    pub cluster: Option<Arc<Cluster>>,
    /// Sign-in: token checks and the policy.
    pub auth: Arc<Auth>,
    /// The server API's key (`--api-key`); without one the API answers 404.
    pub api_key: Option<Arc<str>>,
    /// The open Server-Sent Events transports (`/sse`).
    pub transports: Arc<crate::ws::sse::Transports>,
    /// The transports lesson (`/transports`).
    pub lesson: Arc<crate::lesson::Lesson>,
    /// The operator's console's samples (`/api/admin/stats`).
    pub stats: Arc<crate::console::Stats>,
}

/// Send limits that no number of sockets gets around: per address, per session, and for
/// the whole server.
pub(crate) struct SharedSendLimits {
    /// Per IPv4 address or IPv6 /64.
    pub per_address: KeyedBuckets<AddressKey>,
    /// Per session (every socket of one id together).
    pub per_session: KeyedBuckets<ConnId>,
    /// Lines the server accepts per second, all clients together.
    pub server: Mutex<TokenBucket>,
    /// Product creations and deletions per address (HTTP API and WebSocket together).
    pub product_writes: KeyedBuckets<AddressKey>,
}

/// Which shared limit refused a `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendRefused {
    /// The address or the session is over its rate: `rate_limited`.
    Sender,
    /// The server is at its line rate: `unavailable`.
    Server,
}

impl SharedSendLimits {
    /// Takes a token from the session's, the address's and the server's buckets, in that
    /// order; says which refused.
    pub(crate) fn try_send(
        &self,
        session: &ConnId,
        address: AddressKey,
        now: Instant,
    ) -> Result<(), SendRefused> {
        if !self.per_session.try_take(session, now) || !self.per_address.try_take(&address, now) {
            return Err(SendRefused::Sender);
        }
        let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        if server.try_take(now) {
            Ok(())
        } else {
            Err(SendRefused::Server)
        }
    }
}

/// Per-connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest frame, in bytes (checked by the WebSocket layer).
    pub max_frame_bytes: usize,
    /// The longest `send`/`typing` text, in characters.
    pub max_text_chars: usize,
    /// `send`s per second, and how many at once.
    pub send_rate: u32,
    /// See `send_rate`.
    pub send_burst: u32,
    /// Other frames per second (and at once).
    pub frame_rate: u32,
    /// How long a connection may stay over a rate limit before it is closed.
    pub close_after: Duration,
    /// How often the server pings; a client silent for two intervals is dropped.
    pub heartbeat: Duration,
    /// The most rooms one connection may be in.
    pub max_rooms_per_conn: usize,
    /// How long an author may edit or delete their line (`--edit-window`).
    pub edit_window: Duration,
}

impl Limits {
    /// What clients are told in their `welcome`.
    pub(crate) fn for_clients(&self) -> ServerLimits {
        ServerLimits {
            max_text_chars: u32::try_from(self.max_text_chars).unwrap_or(u32::MAX),
            max_rooms_per_conn: u32::try_from(self.max_rooms_per_conn).unwrap_or(u32::MAX),
            send_rate: self.send_rate,
            send_burst: self.send_burst,
        }
    }
}
