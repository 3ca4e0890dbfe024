//! The one conversion from [`Config`] (the command line, flat and user-facing) to the
//! settings of every part of the server. `serve` reads [`Settings`] only: a new flag is a
//! field in `Config` and one line here, not a hunt through `serve`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use crate::{
    accept::AcceptLimits,
    admission::{Admission, allowed_hosts},
    auth::AuthSettings,
    committer::CommitterConfig,
    config::{Config, Store},
    hub::{HubConfig, RoomConfig, SessionRules},
    rate::{KeyedBuckets, TokenBucket},
    state::{Limits, SharedSendLimits},
};

/// Every part's settings, built once from a [`Config`].
pub(crate) struct Settings {
    /// Where history and sessions are kept.
    pub store: Store,
    /// Lines kept per room (also Redis's stream length).
    pub history_cap: u32,
    /// How long an unused session lives (Redis keys expire with it).
    pub session_ttl: Duration,
    /// How long a replaced token still resumes its session.
    pub resume_grace: Duration,
    /// Quiet rooms' history is deleted after this (zero: never).
    pub room_retention: Duration,
    /// The product exercise's catalog size.
    pub max_products: usize,
    /// The built page.
    pub dist: PathBuf,
    /// The server API's key.
    pub api_key: Option<Arc<str>>,
    /// Sign-in.
    pub auth: AuthSettings,
    /// The session table's bounds.
    pub sessions: SessionRules,
    /// Rooms and their memory.
    pub hub: HubConfig,
    /// The committer's queue and cap.
    pub committer: CommitterConfig,
    /// One connection's limits.
    pub limits: Limits,
    /// Send rates shared across connections.
    pub sends: SendRates,
    /// The accept loop's caps and deadlines.
    pub accept: AcceptLimits,
    /// Who may open a socket.
    pub admission: AdmissionRules,
}

/// The rates behind [`SharedSendLimits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendRates {
    /// Lines per second (and at once) per session.
    pub per_session: (u32, u32),
    /// Lines per second (and at once) per address; also product writes.
    pub per_address: (u32, u32),
    /// Lines per second for the whole server.
    pub server: u32,
}

impl SendRates {
    /// Fresh buckets at these rates.
    pub(crate) fn buckets(self) -> SharedSendLimits {
        let (session_rate, session_burst) = self.per_session;
        let (address_rate, address_burst) = self.per_address;
        SharedSendLimits {
            per_address: KeyedBuckets::new(address_rate, address_burst),
            per_session: KeyedBuckets::new(session_rate, session_burst),
            server: std::sync::Mutex::new(TokenBucket::new(
                self.server,
                self.server,
                std::time::Instant::now(),
            )),
            product_writes: KeyedBuckets::new(address_rate, address_burst),
        }
    }
}

/// The rules behind [`Admission`].
#[derive(Debug, Clone)]
pub(crate) struct AdmissionRules {
    /// `--allow-host` entries, beside the ones the bound address implies.
    pub extra_hosts: Vec<String>,
    /// `--allow-origin` entries.
    pub origins: Vec<String>,
    /// Whether a WebSocket without an `Origin` is refused.
    pub require_origin: bool,
    /// WebSockets in all.
    pub max_connections: usize,
    /// WebSockets per address (or IPv6 /64).
    pub max_per_address: usize,
}

impl AdmissionRules {
    /// The admission of a server bound to `local`.
    pub(crate) fn admission(&self, local: std::net::SocketAddr) -> Admission {
        Admission::new(
            &allowed_hosts(local, &self.extra_hosts),
            &self.origins,
            self.require_origin,
            self.max_connections,
            self.max_per_address,
        )
    }
}

/// How long shutdown gives open connections to finish (HTTP requests, then WebSocket close
/// frames); with the committer's last commit, shutdown takes under 5 s whatever clients do.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(1_500);

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Settings {
            store: c.store.clone(),
            history_cap: c.history_cap,
            session_ttl: c.session_ttl,
            resume_grace: c.resume_grace,
            room_retention: c.room_retention,
            max_products: to_usize(c.max_products),
            dist: c.dist.clone(),
            api_key: c.api_key.as_deref().map(Arc::from),
            auth: c.auth_settings(),
            sessions: SessionRules {
                ttl: c.session_ttl,
                grace: c.resume_grace,
                max_sessions: to_usize(c.max_sessions),
                new_per_address_per_min: c.new_sessions_per_min,
                resumes_per_address_per_min: c.resumes_per_min,
            },
            hub: hub_config(c),
            committer: CommitterConfig {
                history_cap: c.history_cap,
                queue: to_usize(c.commit_queue),
                stall: c.commit_stall,
            },
            limits: limits(c),
            sends: SendRates {
                per_session: (c.send_rate, c.send_burst),
                per_address: (c.ip_send_rate, c.ip_send_burst),
                server: c.max_lines_per_sec,
            },
            accept: AcceptLimits {
                max_tcp_per_ip: to_usize(c.max_tcp_per_ip),
                header_timeout: c.header_timeout,
                http_timeout: c.http_timeout,
                grace: SHUTDOWN_GRACE,
            },
            admission: AdmissionRules {
                extra_hosts: c.allow_hosts.clone(),
                origins: c.allow_origins.clone(),
                require_origin: c.require_origin,
                max_connections: to_usize(c.max_connections),
                max_per_address: to_usize(c.max_connections_per_ip),
            },
        }
    }
}

/// The rooms' and the hub's bounds.
fn hub_config(c: &Config) -> HubConfig {
    HubConfig {
        room: RoomConfig {
            history_cap: to_usize(c.history_cap),
            welcome_lines: to_usize(c.welcome_lines),
            presence_list_max: to_usize(c.presence_list_max),
        },
        outbox_bytes: c.outbox_bytes,
        max_rooms: to_usize(c.max_rooms),
        max_history_lines: to_usize(c.max_history_lines),
    }
}

/// What every connection is held to.
fn limits(c: &Config) -> Limits {
    Limits {
        max_frame_bytes: to_usize(c.max_frame_bytes),
        max_text_chars: to_usize(c.max_text_chars),
        send_rate: c.send_rate,
        send_burst: c.send_burst,
        frame_rate: c.frame_rate,
        close_after: Duration::from_secs(u64::from(c.rate_limit_close_after)),
        heartbeat: c.heartbeat,
        max_rooms_per_conn: to_usize(c.max_rooms_per_conn),
        edit_window: c.edit_window,
    }
}

/// A count from the command line as a `usize` (saturating on 16-bit targets).
pub(crate) fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
