//! Charla's server: serves the trunk-built page and relays [`shared`] messages over `/ws`.
//!
//! # Layout
//!
//! Start-up:
//! - [`config`]: [`Config`], the command line and its environment variables, and [`Store`]
//!   (where history is kept: SQLite, memory or Redis).
//! - `settings`: the one conversion from [`Config`] to every part's settings.
//! - `startup`: opens the store and builds the parts (`Core`), starts the background tasks
//!   (session sweeper, memory trimmer, retention), drains at shutdown; [`ServeError`].
//! - `accept`: the accept loop: per-address TCP cap, header and HTTP deadlines
//!   (`accept::deadline`), graceful shutdown with a hard deadline.
//! - `http`: the router: `/ws`, `/echo`, the APIs, `/healthz`, `/metrics` and the page (any
//!   other path serves `index.html`, so `/r/<room>` links open the page).
//! - `state`: `AppState` (what every handler and connection reaches) and the per-connection
//!   `Limits`; its own module so `http` and `ws` share it without importing each other.
//!
//! Connections:
//! - `admission`: who may open a socket: Host and Origin checks, global and per-address
//!   connection limits.
//! - `ws`: one connection: `ws` (admission, v1/v2), `ws::upgrade` (the handshake, done by
//!   hand so data frames go straight to the socket), `ws::runtime` (the connection's one task:
//!   greeting, then loop), `ws::connection` (`Arrival` before the welcome, `Connection`
//!   after; `ws::connection::sign_in`, who signed in and when the token is due), `ws::dispatch` (the one `match` on `ClientMsg` and the chat's handlers;
//!   `welcome`, `sign_in` and `exercises` beside it), `ws::write` (batched writes,
//!   heartbeat), `ws::wire` (what the loop needs of a socket, so it runs over any
//!   WebSocket stream: an in-memory pipe in its tests), `ws::echo` (`/echo`).
//! - `outbox`: one connection's bounded outbound queue; typing and presence are
//!   latest-value-wins slots in it.
//! - `rate`: token buckets, per connection and shared per address or session, and when
//!   staying over the limit closes (1008).
//! - `auth`: sign-in tokens (JWT) and the one policy of who may do what; `signin`: the
//!   page's `/api/config` and dev login.
//!
//! Rooms and lines:
//! - `hub`: the registry of rooms (`hub::room`: members, history, typing pace in
//!   `hub::room::typing`, presence, fan-out in `seq` order), sessions (`hub::sessions`),
//!   and a room's links to where its older lines are (`hub::archive` for SQLite, the
//!   cluster for Redis).
//! - `committer`: the one thread that numbers lines per room (`seq`), makes them durable in
//!   group commits, skips resent nonces, and hands the lines to their rooms in order.
//! - `store`: `HistoryStore`, where lines and sessions are kept: SQLite (the default;
//!   schema versioned and migrated), memory (`--memory`) or Redis (`--redis`: shared by
//!   several servers, which number lines in Redis).
//! - `cluster`: with `--redis`, the hub's link to the other servers: rooms followed over
//!   pub/sub, gaps filled from the room's stream, presence and typing across servers,
//!   sessions looked up; bounded per-kind mailboxes while Redis is away.
//!
//! HTTP beside the chat:
//! - `server_api`: the server API for the app's backend (`--api-key`): post, list, kick,
//!   revoke.
//! - `api` and `products`: the product exercise's HTTP API and its live catalog.
//! - `metrics`: the counters behind `/metrics` (Prometheus text format).
//!
//! `main.rs` only parses the [`Config`], binds, and calls [`serve`] with a shutdown future;
//! tests call [`serve`] on `127.0.0.1:0` with their own.

mod accept;
mod admission;
mod api;
mod auth;
mod cluster;
mod committer;
mod config;
mod console;
mod http;
mod hub;
pub mod lesson;
mod metrics;
mod moderation;
mod outbox;
mod products;
mod rate;
mod reads;
mod rules;
mod server_api;
mod settings;
mod signin;
mod startup;
mod state;
mod store;
mod ws;

use std::future::Future;

pub use auth::{AuthConfigError, AuthMode};
pub use config::{Config, Store};
pub use startup::ServeError;
pub use store::StoreError;
use tokio::net::TcpListener;

/// Serves the page and `/ws` on `listener` until `shutdown` completes; then closes every
/// WebSocket with 1001 "going away", commits what is pending, and returns (within about 5 s).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let settings = settings::Settings::from(&config);
    let mut core = startup::Core::open(&settings)?;
    let background = core.start_background(&settings);
    let state = core.app_state(&settings, listener.local_addr()?);
    let lesson = state.lesson.clone();
    let stats = state.stats.clone();
    let router = http::app(state, &settings.dist);
    let hub = core.hub.clone();
    // Upgraded sockets are not HTTP requests: tell each client why it is going, so pages
    // can show it and come back later.
    let close_all = move || {
        hub.close_all();
        lesson.close();
        stats.close();
    };
    let metrics = core.metrics.clone();
    accept::serve(
        listener,
        router,
        settings.accept,
        metrics,
        shutdown,
        close_all,
    )
    .await;
    core.finish(background).await;
    Ok(())
}
