//! Start-up and shutdown: opens the store and builds the parts [`serve`](crate::serve) wires
//! together ([`Core`]), starts the background tasks ([`Background`]), and drains on the way
//! out. Each step is a function of [`Settings`] only.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use crate::{
    auth::{Auth, AuthConfigError},
    cluster::Cluster,
    committer::{self, Committer},
    config::Store,
    hub::{self, Hub, SessionChanges},
    metrics::Metrics,
    products::Catalog,
    reads::Reads,
    rules::Rules,
    settings::{SHUTDOWN_GRACE, Settings},
    state::AppState,
    store::{self, HistoryStore, Loaded, MemoryStore, RedisStore, SqliteStore, StoreError},
};

/// Why the server could not start (or stopped on an error).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be read, or the listener failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The history store (or the product catalog's file) could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Redis URL is not one (`--redis`).
    #[error("cluster: {0}")]
    Cluster(#[from] redis::RedisError),
    /// The sign-in flags do not make a working setup (`--jwt-*`, `--auth`, …).
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
}

/// The long-lived parts every connection reaches.
pub(crate) struct Core {
    pub hub: Arc<Hub>,
    pub committer: Arc<Committer>,
    pub metrics: Arc<Metrics>,
    pub catalog: Arc<Catalog>,
    pub cluster: Option<Arc<Cluster>>,
    pub auth: Arc<Auth>,
    /// The operator's console's samples.
    pub stats: Arc<crate::console::Stats>,
    /// Sessions found expired at start-up, for the sweeper to forget durably.
    expired: SessionChanges,
}

impl Core {
    /// Opens the store, expires what retention says, loads what is kept, and builds the
    /// hub, the committer, sign-in and the product catalog from it.
    pub(crate) fn open(s: &Settings) -> Result<Core, ServeError> {
        let cluster = match &s.store {
            Store::Redis(url) => Some(Cluster::new(url)?),
            Store::Sqlite(_) | Store::Memory => None,
        };
        let (store, loaded) = load(s)?;
        let auth = Arc::new(Auth::new(s.auth.clone())?);
        for revoked in &loaded.revocations {
            auth.revoke(&revoked.user, revoked.before);
        }
        let metrics = Arc::new(Metrics::new());
        if let Some(cluster) = &cluster {
            cluster.count_waiting(metrics.cluster_waiting.clone());
        }
        // With --redis the product exercise stays per server, in memory (see DEPLOY.md).
        let catalog = Arc::new(Catalog::open(
            s.store.data_dir(),
            s.max_products,
            metrics.clone(),
        )?);
        let with_nonces = loaded.nonces.iter().map(|n| n.sender.clone()).collect();
        let (sessions, expired) = hub::Sessions::load(
            loaded.sessions,
            &with_nonces,
            s.sessions,
            committer::now_ms(),
        );
        let committer = Arc::new(Committer::start(
            store,
            &loaded.lines,
            loaded.nonces,
            s.committer,
            metrics.clone(),
        ));
        let hub = Arc::new(Hub::new(
            loaded.lines,
            sessions,
            s.hub,
            metrics.clone(),
            cluster.as_ref().map(|c| c.link()),
            archive_link(s)?,
            hub::Registers {
                rules: Arc::new(Rules::load(loaded.rules, crate::committer::now_ms())),
                reads: Arc::new(Reads::load(loaded.reads)),
            },
        ));
        if let Some(cluster) = &cluster {
            cluster.serve_users(hub.clone(), auth.clone());
        }
        Ok(Core {
            hub,
            committer,
            metrics,
            catalog,
            cluster,
            auth,
            stats: Arc::default(),
            expired,
        })
    }

    /// What request handlers and connections reach, for a server bound to `local`.
    pub(crate) fn app_state(&self, s: &Settings, local: std::net::SocketAddr) -> AppState {
        AppState {
            hub: self.hub.clone(),
            committer: self.committer.clone(),
            metrics: self.metrics.clone(),
            catalog: self.catalog.clone(),
            cluster: self.cluster.clone(),
            auth: self.auth.clone(),
            api_key: s.api_key.clone(),
            admission: Arc::new(s.admission.admission(local)),
            limits: s.limits,
            sends: Arc::new(s.sends.buckets()),
            transports: Arc::default(),
            lesson: Arc::new(crate::lesson::Lesson::new(s.accept.http_timeout)),
            stats: self.stats.clone(),
        }
    }

    /// Starts the background tasks: the cluster link, the session sweeper, the memory
    /// trimmer, the console's sampler and the retention expirer.
    pub(crate) fn start_background(&mut self, s: &Settings) -> Background {
        let expired = std::mem::take(&mut self.expired);
        let mut tasks = vec![
            tokio::spawn(sweep_sessions(
                self.hub.clone(),
                self.committer.clone(),
                expired,
                (s.session_ttl / 4).min(Duration::from_secs(60)),
            )),
            tokio::spawn(trim_memory(self.hub.clone())),
            tokio::spawn(crate::console::sample_every_second(
                self.stats.clone(),
                self.hub.clone(),
                self.metrics.clone(),
                self.cluster.clone(),
            )),
            tokio::spawn(expire_rooms(
                self.hub.clone(),
                self.committer.clone(),
                s.room_retention,
            )),
        ];
        tasks.extend(self.cluster.as_ref().map(Cluster::start));
        Background(tasks)
    }

    /// After the accept loop has stopped: lets the close frames go out, stops the tasks,
    /// then makes sure every accepted line is durable.
    pub(crate) async fn finish(self, background: Background) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.hub.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for task in background.0 {
            task.abort();
        }
        self.committer.stop(Duration::from_millis(1_500)).await;
    }
}

/// The server's background tasks, aborted at shutdown.
pub(crate) struct Background(Vec<JoinHandle<()>>);

/// The store, opened, with the history retention expires deleted, and what it keeps.
fn load(s: &Settings) -> Result<(Box<dyn HistoryStore>, Loaded), StoreError> {
    let mut store = open_store(s)?;
    if let Some(quiet_since) = retention_cutoff(s.room_retention) {
        let expired = store.expire_rooms(quiet_since)?;
        if !expired.is_empty() {
            tracing::info!(rooms = expired.len(), "quiet rooms' history expired");
        }
    }
    let loaded = store.load()?;
    Ok((store, loaded))
}

fn open_store(s: &Settings) -> Result<Box<dyn HistoryStore>, StoreError> {
    Ok(match &s.store {
        Store::Redis(url) => Box::new(RedisStore::open(
            url,
            s.history_cap,
            s.session_ttl,
            s.resume_grace,
        )?),
        Store::Memory => Box::new(MemoryStore::new()),
        Store::Sqlite(dir) => Box::new(SqliteStore::open(dir)?),
    })
}

/// What lets quiet rooms leave memory: the other servers (their lines are in Redis), or
/// this server's own file. In memory (`--memory`) rooms with lines stay: nothing else holds
/// their lines.
fn archive_link(s: &Settings) -> Result<Option<Arc<dyn hub::RoomLink>>, StoreError> {
    let Store::Sqlite(dir) = &s.store else {
        return Ok(None);
    };
    let archive = store::Archive::open(dir)?;
    Ok(Some(Arc::new(hub::ArchiveLink::new(
        Arc::new(archive),
        crate::settings::to_usize(s.history_cap),
    ))))
}

/// The moment before which a room's newest line makes it expire, if history expires.
fn retention_cutoff(retention: Duration) -> Option<u64> {
    if retention.is_zero() {
        return None;
    }
    let ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    Some(committer::now_ms().saturating_sub(ms))
}

/// How often the history in memory is checked against `--max-history-lines`.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Quiet rooms leave memory when the history kept passes `--max-history-lines`.
async fn trim_memory(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    loop {
        tick.tick().await;
        let left = hub.trim_memory();
        if left > 0 {
            tracing::info!(rooms = left, "quiet rooms left memory");
        }
    }
}

/// Deletes quiet rooms' history every tenth of `--room-retention` (at most hourly).
async fn expire_rooms(hub: Arc<Hub>, committer: Arc<Committer>, retention: Duration) {
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

/// Forgets expired sessions (those found at start-up, then every `every`), durably.
async fn sweep_sessions(
    hub: Arc<Hub>,
    committer: Arc<Committer>,
    mut expired: SessionChanges,
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
