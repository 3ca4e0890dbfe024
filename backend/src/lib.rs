//! Charla's server: serves the trunk-built page and relays [`shared`] messages over `/ws`.
//!
//! # Layout
//!
//! - [`config`]: [`Config`], the command line and its environment variables.
//! - `state`: `AppState` (what every handler and connection reaches) and the per-connection
//!   `Limits`; its own module so `http` and `ws` share it without importing each other.
//! - `hub`: the registry of rooms and sessions. `hub::room` is one room: its members, its
//!   kept history (as encoded frames), live typing, coalesced presence, and the fan-out of
//!   its lines in `seq` order under its own lock.
//! - `committer`: the one thread that numbers lines per room (`seq`), makes them durable in
//!   group commits, skips resent nonces, and hands the lines to their rooms in order.
//! - `outbox`: one connection's bounded outbound queue; typing and presence are
//!   latest-value-wins slots in it.
//! - `ws`: one connection: `ws` (admission, upgrade, v1/v2 handshake), `ws::read` (the read
//!   loop), `ws::dispatch` (the one `match` on `ClientMsg`), `ws::write` (batched writes,
//!   heartbeat).
//! - [`store`]: [`HistoryStore`], where lines and sessions are kept: [`SqliteStore`] (the
//!   default; schema versioned and migrated), [`MemoryStore`] (`--memory`) or
//!   [`RedisStore`] (`--redis`: shared by several servers, which number lines in Redis).
//! - `cluster`: with `--redis`, the hub's link to the other servers: rooms followed over
//!   pub/sub, gaps filled from the room's stream, presence and typing across servers,
//!   sessions looked up.
//! - `accept`: the accept loop: per-address TCP cap, header read timeout, graceful shutdown
//!   with a hard deadline.
//! - `admission`: who may open a socket: origin check, global and per-IP connection limits.
//! - `rate`: per-connection token buckets, and when staying over the limit closes (1008).
//! - `metrics`: the counters behind `/metrics` (Prometheus text format).
//! - `http`: the router: `/ws`, `/healthz`, `/metrics` and the page (any other path serves
//!   `index.html`, so `/r/<room>` links open the page).
//!
//! `main.rs` only parses the [`Config`], binds, and calls [`serve`] with a shutdown future;
//! tests call [`serve`] on `127.0.0.1:0` with their own.

mod accept;
mod admission;
mod api;
pub mod auth;
mod cluster;
mod committer;
pub mod config;
mod http;
mod hub;
mod metrics;
mod outbox;
mod products;
mod rate;
mod server_api;
mod signin;
mod state;
pub mod store;
mod ws;

use std::{future::Future, sync::Arc, time::Duration};

pub use config::Config;
pub use store::{HistoryStore, MemoryStore, RedisStore, SqliteStore};
use tokio::net::TcpListener;

/// Serves the page and `/ws` on `listener` until `shutdown` completes; then closes every
/// WebSocket with 1001 "going away", commits what is pending, and returns (within about 5 s).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cluster = match &config.redis {
        Some(url) => Some(cluster::Cluster::new(url).map_err(std::io::Error::other)?),
        None => None,
    };
    let mut store: Box<dyn HistoryStore> = if let Some(url) = &config.redis {
        Box::new(
            RedisStore::open(
                url,
                config.history_cap,
                config.session_ttl,
                config.resume_grace,
            )
            .map_err(std::io::Error::other)?,
        )
    } else if config.memory {
        Box::new(MemoryStore::new())
    } else {
        Box::new(SqliteStore::open(&config.data_dir).map_err(std::io::Error::other)?)
    };
    if let Some(quiet_since) = retention_cutoff(config.room_retention) {
        let expired = store
            .expire_rooms(quiet_since)
            .map_err(std::io::Error::other)?;
        if !expired.is_empty() {
            tracing::info!(rooms = expired.len(), "quiet rooms' history expired");
        }
    }
    let loaded = store.load().map_err(std::io::Error::other)?;
    let auth = Arc::new(auth::Auth::new(config.auth_settings()).map_err(std::io::Error::other)?);
    for revoked in &loaded.revocations {
        auth.revoke(&revoked.user, revoked.before);
    }
    let metrics = Arc::new(metrics::Metrics::new());
    if let Some(cluster) = &cluster {
        cluster.count_waiting(metrics.cluster_waiting.clone());
    }
    let catalog = Arc::new(
        products::Catalog::open(
            // With --redis the product exercise stays per server, in memory (see DEPLOY.md).
            (!config.memory && config.redis.is_none()).then_some(config.data_dir.as_path()),
            to_usize(config.max_products),
            metrics.clone(),
        )
        .map_err(std::io::Error::other)?,
    );
    let committed_lines = loaded.lines.clone();
    // What lets quiet rooms leave memory: the other servers (their lines are in Redis), or
    // this server's own file. In memory (`--memory`) rooms with lines stay: nothing else
    // holds their lines.
    let archive: Option<Arc<dyn hub::RoomLink>> = if cluster.is_none() && !config.memory {
        let archive = store::Archive::open(&config.data_dir).map_err(std::io::Error::other)?;
        Some(Arc::new(hub::ArchiveLink::new(
            Arc::new(archive),
            to_usize(config.history_cap),
        )))
    } else {
        None
    };
    let rules = hub::SessionRules {
        ttl_ms: u64::try_from(config.session_ttl.as_millis()).unwrap_or(u64::MAX),
        grace_ms: u64::try_from(config.resume_grace.as_millis()).unwrap_or(u64::MAX),
        max_sessions: to_usize(config.max_sessions),
        new_per_address_per_min: config.new_sessions_per_min,
        resumes_per_address_per_min: config.resumes_per_min,
    };
    let with_nonces = loaded.nonces.iter().map(|n| n.sender.clone()).collect();
    let (sessions, expired) =
        hub::Sessions::load(loaded.sessions, &with_nonces, rules, committer::now_ms());
    let hub = Arc::new(hub::Hub::new(
        loaded.lines,
        sessions,
        hub::HubConfig {
            room: hub::RoomConfig {
                history_cap: to_usize(config.history_cap),
                welcome_lines: to_usize(config.welcome_lines),
                presence_list_max: to_usize(config.presence_list_max),
            },
            outbox_bytes: config.outbox_bytes,
            max_rooms: to_usize(config.max_rooms),
            max_history_lines: to_usize(config.max_history_lines),
        },
        metrics.clone(),
        cluster.as_ref().map(|c| c.link()),
        archive,
    ));
    if let Some(cluster) = &cluster {
        cluster.serve_users(hub.clone(), auth.clone());
    }
    let cluster_task = cluster.as_ref().map(cluster::Cluster::start);
    let committer = Arc::new(committer::Committer::start(
        store,
        &committed_lines,
        loaded.nonces,
        committer::CommitterConfig {
            history_cap: config.history_cap,
            queue: to_usize(config.commit_queue),
            stall: config.commit_stall,
        },
        metrics.clone(),
    ));
    drop(committed_lines);
    let sweeper = tokio::spawn(sweep_sessions(
        hub.clone(),
        committer.clone(),
        expired,
        (config.session_ttl / 4).min(Duration::from_secs(60)),
    ));
    // Quiet rooms leave memory when the history kept passes `--max-history-lines`.
    let trimmer = tokio::spawn({
        let hub = hub.clone();
        async move {
            let mut tick = tokio::time::interval(TRIM_EVERY);
            loop {
                tick.tick().await;
                let left = hub.trim_memory();
                if left > 0 {
                    tracing::info!(rooms = left, "quiet rooms left memory");
                }
            }
        }
    });
    let expirer = tokio::spawn(expire_rooms(
        hub.clone(),
        committer.clone(),
        config.room_retention,
    ));
    let local = listener.local_addr()?;
    let admission = admission::Admission::new(
        &admission::allowed_hosts(local, &config.allow_hosts),
        &config.allow_origins,
        config.require_origin,
        to_usize(config.max_connections),
        to_usize(config.max_connections_per_ip),
    );
    let (shutting_down, shutdown_seen) = tokio::sync::watch::channel(false);
    let state = state::AppState {
        shutdown: shutdown_seen,
        hub: hub.clone(),
        committer: committer.clone(),
        metrics: metrics.clone(),
        catalog,
        cluster,
        auth,
        api_key: config.api_key.as_deref().map(Arc::from),
        admission: Arc::new(admission),
        limits: state::Limits {
            max_frame_bytes: to_usize(config.max_frame_bytes),
            max_text_chars: to_usize(config.max_text_chars),
            send_rate: config.send_rate,
            send_burst: config.send_burst,
            frame_rate: config.frame_rate,
            close_after: Duration::from_secs(u64::from(config.rate_limit_close_after)),
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            max_rooms_per_conn: to_usize(config.max_rooms_per_conn),
        },
        sends: Arc::new(state::SharedSendLimits {
            per_address: rate::KeyedBuckets::new(config.ip_send_rate, config.ip_send_burst),
            per_session: rate::KeyedBuckets::new(config.send_rate, config.send_burst),
            server: std::sync::Mutex::new(rate::TokenBucket::new(
                config.max_lines_per_sec,
                config.max_lines_per_sec,
                std::time::Instant::now(),
            )),
            product_writes: rate::KeyedBuckets::new(config.ip_send_rate, config.ip_send_burst),
        }),
    };
    let router = http::app(state, &config.dist);
    let hub_for_shutdown = hub.clone();
    let limits = accept::AcceptLimits {
        max_tcp_per_ip: to_usize(config.max_tcp_per_ip),
        header_timeout: Duration::from_millis(config.header_timeout_ms),
        http_timeout: config.http_timeout,
        grace: SHUTDOWN_GRACE,
    };
    // Upgraded sockets are not HTTP requests: tell each client why it is going, so pages
    // can show it and come back later.
    accept::serve(listener, router, limits, metrics, shutdown, move || {
        hub_for_shutdown.close_all();
        let _ = shutting_down.send(true);
    })
    .await;
    // Let the close frames go out, then make sure every accepted line is on disk.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while hub.online() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sweeper.abort();
    trimmer.abort();
    expirer.abort();
    if let Some(task) = cluster_task {
        task.abort();
    }
    committer.stop(Duration::from_millis(1_500)).await;
    Ok(())
}

/// The moment before which a room's newest line makes it expire, if history expires.
fn retention_cutoff(retention: Duration) -> Option<u64> {
    if retention.is_zero() {
        return None;
    }
    let ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    Some(committer::now_ms().saturating_sub(ms))
}

/// Deletes quiet rooms' history every tenth of `--room-retention` (at most hourly).
async fn expire_rooms(
    hub: Arc<hub::Hub>,
    committer: Arc<committer::Committer>,
    retention: Duration,
) {
    if retention.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval((retention / 10).min(Duration::from_secs(3_600)));
    tick.tick().await; // Start-up already expired what was due.
    loop {
        tick.tick().await;
        let Some(quiet_since) = retention_cutoff(retention) else {
            return;
        };
        let (done, expired) = tokio::sync::oneshot::channel();
        if committer
            .submit(committer::Job::Expire(quiet_since, done))
            .is_err()
        {
            continue; // Busy: next time.
        }
        if let Ok(names) = expired.await
            && !names.is_empty()
        {
            let left = hub.forget_expired(&names);
            tracing::info!(rooms = names.len(), left, "quiet rooms' history expired");
        }
    }
}

/// How often the history in memory is checked against `--max-history-lines`.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Forgets expired sessions (those found at start-up, then every `every`), durably.
async fn sweep_sessions(
    hub: Arc<hub::Hub>,
    committer: Arc<committer::Committer>,
    mut expired: hub::SessionChanges,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        if !expired.is_empty() {
            tracing::info!(
                sessions = expired.forget.len(),
                "forgetting expired sessions"
            );
            let job = committer::Job::Sessions(committer::SessionJob {
                changes: expired,
                durable: None,
            });
            if committer.submit(job).is_err() {
                tracing::warn!("commit queue full: expired sessions are forgotten next time");
            }
        }
        tick.tick().await;
        // The table's own clock: a wall clock set forward cannot expire every session.
        expired = hub.sessions.sweep(hub.sessions.now_ms());
    }
}

/// How long open connections get to finish on shutdown (HTTP requests, then WebSocket
/// close frames); with the committer's last commit, shutdown takes under 5 s whatever
/// clients do.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1_500);

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
