//! The server's settings: command-line flags, each with an environment variable.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{Arg, ArgAction, ArgMatches, Command, Parser};
use shared::duration::{parse_duration, parse_duration_or_zero};

/// Charla's chat relay: serves the page and relays chat messages over `/ws`.
#[derive(Debug, Clone, Parser)]
#[command(name = "backend", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on (HOST:PORT). The page and `/ws` share it.
    #[arg(long, env = "CHARLA_ADDR", default_value = Config::DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// Directory holding the trunk-built page (`trunk build --release --offline` writes `dist`).
    #[arg(long, env = "CHARLA_DIST", default_value = "dist")]
    pub dist: PathBuf,

    /// How many history lines to keep per room; the oldest are dropped past it.
    #[arg(long, env = "CHARLA_HISTORY_CAP", default_value_t = Config::DEFAULT_HISTORY_CAP,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub history_cap: u32,

    /// Where history and sessions are kept: `--data-dir` (SQLite, the default), `--memory`
    /// or `--redis`.
    #[command(flatten)]
    pub store: Store,

    /// History lines in a new client's `welcome`; older ones are loaded on demand.
    #[arg(long, env = "CHARLA_WELCOME_LINES", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub welcome_lines: u32,

    /// Milliseconds between the server's pings; a client silent for two intervals is dropped.
    #[arg(long = "heartbeat-ms", env = "CHARLA_HEARTBEAT_MS", default_value = "15000",
          value_parser = millis(10))]
    pub heartbeat: Duration,

    /// The largest frame a client may send, in bytes; a larger one closes its connection with
    /// 1009 (message too big).
    #[arg(long, env = "CHARLA_MAX_FRAME_BYTES", default_value_t = Config::DEFAULT_MAX_FRAME_BYTES,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_frame_bytes: u32,

    /// The longest `send` or `typing` text, in characters; longer gets `error` `too_large`.
    #[arg(long, env = "CHARLA_MAX_TEXT_CHARS", default_value_t = Config::DEFAULT_MAX_TEXT_CHARS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_text_chars: u32,

    /// An origin (scheme://host[:port]) whose pages may connect, besides the server's own.
    /// Repeat the flag, or separate with commas in the variable.
    #[arg(
        long = "allow-origin",
        env = "CHARLA_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// A host name (HOST or HOST:PORT) this server answers to, besides its bound address (and
    /// `localhost`/`127.0.0.1`/`[::1]` on a loopback address). `/ws` requests whose `Host`
    /// is none of these are refused (DNS rebinding). Repeat, or separate with commas.
    #[arg(long = "allow-host", env = "CHARLA_ALLOW_HOST", value_delimiter = ',')]
    pub allow_hosts: Vec<String>,

    /// Refuse WebSocket requests that carry no Origin header (non-browser clients).
    #[arg(long, env = "CHARLA_REQUIRE_ORIGIN")]
    pub require_origin: bool,

    /// Most WebSocket connections at once; past it upgrades get 503.
    #[arg(long, env = "CHARLA_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most open TCP connections from one IP address, counted at accept time (page loads and
    /// WebSockets alike); past it new ones are closed before a byte is read.
    #[arg(long, env = "CHARLA_MAX_TCP_PER_IP", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tcp_per_ip: u32,

    /// Milliseconds a client may take to send a request's headers before it is cut off.
    #[arg(long = "header-timeout-ms", env = "CHARLA_HEADER_TIMEOUT_MS", default_value = "5000",
          value_parser = millis(100))]
    pub header_timeout: Duration,

    /// How long a read or a write of an HTTP connection (not yet a WebSocket) may make no
    /// progress before it is cut off: a request body sent a byte now and then, a response
    /// that is never read, a keep-alive connection left idle: 10s, 30s, 2m.
    #[arg(long, env = "CHARLA_HTTP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_timeout: Duration,

    /// Most WebSocket connections from one IP address; past it upgrades get 429.
    #[arg(long, env = "CHARLA_MAX_CONNECTIONS_PER_IP", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,

    /// `send`s a connection may make per second, on average.
    #[arg(long, env = "CHARLA_SEND_RATE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub send_rate: u32,

    /// `send`s a connection may make at once after a pause.
    #[arg(long, env = "CHARLA_SEND_BURST", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub send_burst: u32,

    /// `send`s per second from one IP address (an IPv6 /64), all its connections together;
    /// reconnecting or opening more sockets buys no more.
    #[arg(long, env = "CHARLA_IP_SEND_RATE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ip_send_rate: u32,

    /// `send`s one IP address may make at once after a pause.
    #[arg(long, env = "CHARLA_IP_SEND_BURST", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ip_send_burst: u32,

    /// Lines the whole server accepts per second (and at once); past it `send`s are refused
    /// with `unavailable` (carrying their nonce) instead of queueing without bound.
    #[arg(long, env = "CHARLA_MAX_LINES_PER_SEC", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_lines_per_sec: u32,

    /// Other frames (typing, and anything refused) a connection may send per second, and at
    /// once. Typing past it is conflated (the latest text goes out when allowed), not refused.
    #[arg(long, env = "CHARLA_FRAME_RATE", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub frame_rate: u32,

    /// Seconds a connection may stay over its rate limit before it is closed with 1008.
    #[arg(long, env = "CHARLA_RATE_LIMIT_CLOSE_AFTER", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_close_after: u32,

    /// Bytes of chat frames that may wait for one slow client before it is disconnected
    /// (close 1013); live-typing updates never count, they replace each other.
    #[arg(long, env = "CHARLA_OUTBOX_BYTES", default_value_t = Config::DEFAULT_OUTBOX_BYTES)]
    pub outbox_bytes: usize,

    /// How long a session (its id, name and resume token) lives unused: 45s, 30m, 12h, 7d.
    /// A client that comes back later gets a new id.
    #[arg(long, env = "CHARLA_SESSION_TTL", default_value = "7d", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// How long a resume token still works after it was replaced (a resume hands out a new
    /// one; the old one covers a welcome that was lost), counted from the replacement.
    #[arg(long, env = "CHARLA_RESUME_GRACE", default_value = "10m", value_parser = parse_duration)]
    pub resume_grace: Duration,

    /// Most sessions kept; past it the least recently used are forgotten.
    #[arg(long, env = "CHARLA_MAX_SESSIONS", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: u32,

    /// New sessions one IP address may open per minute (each new page or v1 client is one;
    /// resuming is not); past it the connection is closed with 1008.
    #[arg(long, env = "CHARLA_NEW_SESSIONS_PER_MIN", default_value_t = 120,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub new_sessions_per_min: u32,

    /// Sessions one IP address may resume per minute (each resume mints a token); past it
    /// the connection is closed with 1008. Reconnecting pages resume: keep it well above
    /// what the pages behind one address reconnect.
    #[arg(long, env = "CHARLA_RESUMES_PER_MIN", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub resumes_per_min: u32,

    /// Most commits waiting for the disk; past it `send`s get `unavailable` and new sessions
    /// are refused (close 1013) rather than queued without bound.
    #[arg(long, env = "CHARLA_COMMIT_QUEUE", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub commit_queue: u32,

    /// Fault injection for tests (no flag): wait this long before each commit, as a slow
    /// disk would.
    #[arg(skip)]
    pub commit_stall: Option<Duration>,

    /// How long after sending a line its author may still edit or delete it (moderators
    /// delete any line at any time): 30s, 15m, 2h.
    #[arg(long, env = "CHARLA_EDIT_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub edit_window: Duration,

    /// Most rooms one connection may be in at once; past it `join` gets `too_many_rooms`.
    #[arg(long, env = "CHARLA_MAX_ROOMS_PER_CONN", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rooms_per_conn: u32,

    /// Most rooms the server holds in memory. Past it, a new room takes the place of one
    /// nobody is in (its lines stay on disk, or in Redis, and are read back when someone
    /// joins it); if every room is in use (or, with `--memory`, holds lines), joining a new
    /// room gets `rooms_full`.
    #[arg(long, env = "CHARLA_MAX_ROOMS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rooms: u32,

    /// The most history lines all rooms keep in memory together. Past it, rooms nobody is
    /// in leave memory (their lines stay on disk, or in Redis, and are read back when
    /// someone joins); so do they when `--max-rooms` rooms are in memory and a new one is
    /// asked for.
    #[arg(long, env = "CHARLA_MAX_HISTORY_LINES", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_history_lines: u32,

    /// How long a room's history is kept after its last line: a room quiet for longer
    /// loses its lines (from the file, and from memory once nobody is in it): 30d, 12h;
    /// 0 keeps history for good. (With `--redis`, history is trimmed by `--history-cap`
    /// only.)
    #[arg(long, env = "CHARLA_ROOM_RETENTION", default_value = "30d",
          value_parser = parse_duration_or_zero)]
    pub room_retention: Duration,

    /// Rooms up to this many members get their member list pushed with every presence
    /// change; bigger rooms get the count, and the list on request (`members`).
    #[arg(long, env = "CHARLA_PRESENCE_LIST_MAX", default_value_t = 100)]
    pub presence_list_max: u32,

    /// The most products the catalog holds (`POST /api/products` past it: 507).
    #[arg(long, env = "CHARLA_MAX_PRODUCTS", default_value_t = 10_000)]
    pub max_products: u32,

    /// Sign-in: the HS256 secret the app signs its tokens with.
    #[arg(
        long,
        env = "CHARLA_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    pub jwt_secret: Option<String>,

    /// Sign-in: a PEM public key the app's tokens are checked with (RSA: RS256, EC P-256:
    /// ES256, Ed25519: EdDSA).
    #[arg(long, env = "CHARLA_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,

    /// Sign-in: the `iss` every token must carry, if set.
    #[arg(long, env = "CHARLA_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Sign-in: the `aud` every token must carry, if set.
    #[arg(long, env = "CHARLA_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock skew allowed on a token's `exp` (0s to turn it off).
    #[arg(long, env = "CHARLA_JWT_LEEWAY", default_value = "30s", value_parser = parse_duration_or_zero)]
    pub jwt_leeway: Duration,

    /// Whether clients sign in: off (guests only), optional (users and guests) or required.
    /// Default: off without a key, optional with one.
    #[arg(long, env = "CHARLA_AUTH", value_enum)]
    pub auth: Option<crate::auth::AuthMode>,

    /// A room name, or a prefix pattern ending in `*` (`team-*`), that only users whose
    /// token grants it (`rooms` claim) may join. Repeat, or separate with commas.
    #[arg(
        long = "private-rooms",
        env = "CHARLA_PRIVATE_ROOMS",
        value_delimiter = ','
    )]
    pub private_rooms: Vec<String>,

    /// How long before a token's `exp` the server asks the client for a new one
    /// (`token_expiring`): 60s, 5m.
    #[arg(long, env = "CHARLA_REFRESH_BEFORE", default_value = "60s", value_parser = parse_duration)]
    pub refresh_before: Duration,

    /// Where the page gets its token: a URL of the app, fetched with the browser's cookies,
    /// answering `{"token": ...}`.
    #[arg(long, env = "CHARLA_TOKEN_URL")]
    pub token_url: Option<String>,

    /// Adds a "sign in as…" form whose tokens the server mints itself (with --jwt-secret, or
    /// a random secret). For trying sign-in out: NEVER in production.
    #[arg(long, env = "CHARLA_DEV_LOGIN")]
    pub dev_login: bool,

    /// The life of a dev-login token.
    #[arg(long, env = "CHARLA_DEV_TOKEN_TTL", default_value = "1h", value_parser = parse_duration)]
    pub dev_token_ttl: Duration,

    /// The key of the server API (`Authorization: Bearer KEY`) for the app's backend;
    /// without one the API answers 404.
    #[arg(long, env = "CHARLA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl Config {
    /// Where the server listens unless told otherwise.
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:3000";
    /// History lines kept unless told otherwise.
    pub const DEFAULT_HISTORY_CAP: u32 = 10_000;
    /// The longest text unless told otherwise.
    pub const DEFAULT_MAX_TEXT_CHARS: u32 = 2_000;
    /// The largest client frame unless told otherwise (16 KiB).
    pub const DEFAULT_MAX_FRAME_BYTES: u32 = 16 * 1024;
    /// A slow client's outbound queue limit unless told otherwise (1 MiB).
    pub const DEFAULT_OUTBOX_BYTES: usize = 1 << 20;
}

impl Default for Config {
    /// The same values as the command line's defaults, whatever the environment says.
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            dist: PathBuf::from("dist"),
            history_cap: Config::DEFAULT_HISTORY_CAP,
            store: Store::default(),
            welcome_lines: 500,
            heartbeat: Duration::from_secs(15),
            max_frame_bytes: Config::DEFAULT_MAX_FRAME_BYTES,
            max_text_chars: Config::DEFAULT_MAX_TEXT_CHARS,
            allow_hosts: Vec::new(),
            allow_origins: Vec::new(),
            require_origin: false,
            http_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_tcp_per_ip: 200,
            header_timeout: Duration::from_secs(5),
            max_connections_per_ip: 100,
            send_rate: 10,
            send_burst: 20,
            ip_send_rate: 30,
            ip_send_burst: 60,
            max_lines_per_sec: 20_000,
            frame_rate: 50,
            rate_limit_close_after: 10,
            outbox_bytes: Config::DEFAULT_OUTBOX_BYTES,
            commit_queue: 65_536,
            commit_stall: None,
            session_ttl: Duration::from_secs(7 * 86_400),
            resume_grace: Duration::from_secs(600),
            max_sessions: 1_000_000,
            new_sessions_per_min: 120,
            resumes_per_min: 600,
            edit_window: Duration::from_secs(15 * 60),
            max_rooms_per_conn: 20,
            max_rooms: 10_000,
            max_history_lines: 1_000_000,
            room_retention: Duration::from_secs(30 * 86_400),
            presence_list_max: 100,
            max_products: 10_000,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway: Duration::from_secs(30),
            auth: None,
            private_rooms: Vec::new(),
            refresh_before: Duration::from_secs(60),
            token_url: None,
            dev_login: false,
            dev_token_ttl: Duration::from_secs(3_600),
            api_key: None,
        }
    }
}

/// Where history and sessions are kept. On the command line: `--data-dir DIR` (SQLite, the
/// default, in `data`), `--memory`, or `--redis URL` (which wins over `--memory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// An SQLite file (`charla.sqlite3`) in this directory, created if missing; the product
    /// exercise keeps its catalog beside it.
    Sqlite(PathBuf),
    /// In memory only: lost on restart.
    Memory,
    /// Shared with every other server given the same Redis (`redis://HOST:PORT[/DB]`):
    /// several servers act as one chat.
    Redis(String),
}

impl Default for Store {
    fn default() -> Self {
        Store::Sqlite(PathBuf::from(DEFAULT_DATA_DIR))
    }
}

impl Store {
    /// The directory of this server's own files, if it keeps any (SQLite).
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Store::Sqlite(dir) => Some(dir),
            Store::Memory | Store::Redis(_) => None,
        }
    }
}

/// Where the history is, for the log: a Redis URL without its password.
impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Sqlite(dir) => write!(f, "in {}", dir.join("charla.sqlite3").display()),
            Store::Memory => f.write_str("in memory"),
            Store::Redis(url) => match (url.split_once("://"), url.rsplit_once('@')) {
                (Some((scheme, _)), Some((_, host))) => write!(
                    f,
                    "in Redis at {scheme}://***@{host}, shared with every server on it"
                ),
                _ => write!(f, "in Redis at {url}, shared with every server on it"),
            },
        }
    }
}

const DEFAULT_DATA_DIR: &str = "data";

/// The three flags that choose a [`Store`], by hand: clap's derive cannot make one enum
/// out of several flags.
impl clap::Args for Store {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(
            Arg::new("memory")
                .long("memory")
                .env("CHARLA_MEMORY")
                .action(ArgAction::SetTrue)
                .help("Keep the history in memory only (lost on restart) instead of in SQLite"),
        )
        .arg(
            Arg::new("redis")
                .long("redis")
                .env("CHARLA_REDIS")
                .value_name("URL")
                .help(
                    "Share rooms, history, sessions and presence with every other server \
                     given the same Redis (redis://HOST:PORT[/DB]): several servers act as \
                     one chat. Without it the server keeps everything itself (SQLite, or \
                     memory with `--memory`)",
                ),
        )
        .arg(
            Arg::new("data_dir")
                .long("data-dir")
                .env("CHARLA_DATA_DIR")
                .default_value(DEFAULT_DATA_DIR)
                .value_parser(clap::value_parser!(PathBuf))
                .help("Where the SQLite history lives (created if missing)"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Store {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        if let Some(url) = matches.get_one::<String>("redis") {
            return Ok(Store::Redis(url.clone()));
        }
        if matches.get_flag("memory") {
            return Ok(Store::Memory);
        }
        Ok(matches
            .get_one::<PathBuf>("data_dir")
            .map_or_else(Store::default, |dir| Store::Sqlite(dir.clone())))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// Parses a whole number of milliseconds, at least `min`, as a [`Duration`].
fn millis(min: u64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| match text.parse::<u64>() {
        Ok(ms) if ms >= min => Ok(Duration::from_millis(ms)),
        Ok(_) => Err(format!("at least {min} (milliseconds)")),
        Err(e) => Err(e.to_string()),
    }
}

impl Config {
    /// The sign-in settings.
    pub(crate) fn auth_settings(&self) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            mode: self.auth,
            secret: self.jwt_secret.clone(),
            public_key: self.jwt_public_key.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            private_rooms: self.private_rooms.clone(),
            refresh_before: self.refresh_before,
            leeway: self.jwt_leeway,
            token_url: self.token_url.clone(),
            dev_login: self.dev_login,
            dev_token_ttl: self.dev_token_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn default_matches_the_cli_defaults() {
        let parsed = Config::try_parse_from(["backend"]).expect("parses");
        let default = Config::default();
        // Environment variables could override the CLI parse; only compare when unset.
        if std::env::vars().all(|(k, _)| !k.starts_with("CHARLA_")) {
            // Debug output covers every field, so a new flag cannot drift from Default.
            assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
        }
    }

    #[test]
    fn origins_repeat_and_split_on_commas() {
        let c = Config::try_parse_from([
            "backend",
            "--allow-origin",
            "http://a.example",
            "--allow-origin",
            "http://b.example,http://c.example",
        ])
        .expect("parses");
        assert_eq!(
            c.allow_origins,
            ["http://a.example", "http://b.example", "http://c.example"]
        );
    }

    #[test]
    fn durations_take_a_unit() {
        let ttl = |t: &str| {
            Config::try_parse_from(["backend", "--session-ttl", t]).map(|c| c.session_ttl.as_secs())
        };
        assert_eq!(ttl("7d").ok(), Some(7 * 86_400));
        assert_eq!(ttl("12h").ok(), Some(12 * 3_600));
        assert_eq!(ttl("30m").ok(), Some(1_800));
        assert_eq!(ttl("45").ok(), Some(45));
        assert!(ttl("0s").is_err() && ttl("7w").is_err() && ttl("d").is_err());
    }

    #[test]
    fn the_sign_in_flags_parse_as_documented() {
        let c = Config::try_parse_from([
            "backend",
            "--jwt-secret",
            "s",
            "--auth",
            "required",
            "--private-rooms",
            "team-*,staff",
            "--private-rooms",
            "ops",
            "--refresh-before",
            "30s",
            "--jwt-leeway",
            "0s",
            "--dev-token-ttl",
            "10m",
        ])
        .expect("parses");
        assert_eq!(c.auth, Some(crate::auth::AuthMode::Required));
        assert_eq!(c.private_rooms, ["team-*", "staff", "ops"]);
        assert_eq!(c.refresh_before.as_secs(), 30);
        assert_eq!(c.jwt_leeway.as_secs(), 0);
        assert_eq!(c.dev_token_ttl.as_secs(), 600);
        // A secret and a public key at once is refused, not silently resolved.
        assert!(
            Config::try_parse_from(["backend", "--jwt-secret", "s", "--jwt-public-key", "k.pem"])
                .is_err()
        );
    }

    #[test]
    fn the_store_is_one_choice_of_three_flags() {
        let store = |args: &[&str]| {
            let argv = std::iter::once("backend").chain(args.iter().copied());
            Config::try_parse_from(argv).map(|c| c.store).ok()
        };
        assert_eq!(store(&[]), Some(Store::Sqlite(PathBuf::from("data"))));
        assert_eq!(
            store(&["--data-dir", "/tmp/x"]),
            Some(Store::Sqlite(PathBuf::from("/tmp/x")))
        );
        assert_eq!(store(&["--memory"]), Some(Store::Memory));
        let redis = Store::Redis("redis://127.0.0.1:6379".into());
        assert_eq!(
            store(&["--redis", "redis://127.0.0.1:6379"]),
            Some(redis.clone())
        );
        // As before the enum: Redis wins over --memory.
        assert_eq!(
            store(&["--memory", "--redis", "redis://127.0.0.1:6379"]),
            Some(redis)
        );
        // The log never shows a Redis password.
        let secret = Store::Redis("redis://:hunter2@db:6379".into()).to_string();
        assert!(
            !secret.contains("hunter2") && secret.contains("db:6379"),
            "{secret}"
        );
    }

    #[test]
    fn millisecond_flags_are_durations_with_a_floor() {
        let parse = |args: &[&str]| {
            let argv = std::iter::once("backend").chain(args.iter().copied());
            Config::try_parse_from(argv).map(|c| (c.heartbeat, c.header_timeout))
        };
        let (beat, header) =
            parse(&["--heartbeat-ms", "250", "--header-timeout-ms", "900"]).expect("parses");
        assert_eq!((beat.as_millis(), header.as_millis()), (250, 900));
        assert!(parse(&["--heartbeat-ms", "9"]).is_err());
        assert!(parse(&["--header-timeout-ms", "99"]).is_err());
        assert!(parse(&["--heartbeat-ms", "1s"]).is_err());
    }

    #[test]
    fn a_zero_history_cap_is_refused() {
        assert!(Config::try_parse_from(["backend", "--history-cap", "0"]).is_err());
    }
}
