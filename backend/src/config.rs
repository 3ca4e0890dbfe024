//! The server's settings: command-line flags, each with an environment variable.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

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

    /// How many history lines to keep; the oldest are dropped past it.
    #[arg(long, env = "CHARLA_HISTORY_CAP", default_value_t = Config::DEFAULT_HISTORY_CAP,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub history_cap: u32,

    /// Keep the history in memory (lost on restart). Today the only store.
    #[arg(long, env = "CHARLA_MEMORY")]
    pub memory: bool,

    /// The largest frame a client may send, in bytes; a larger one closes its connection with
    /// 1009 (message too big).
    #[arg(long, env = "CHARLA_MAX_FRAME_BYTES", default_value_t = Config::DEFAULT_MAX_FRAME_BYTES,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_frame_bytes: u32,

    /// Bytes of chat frames that may wait for one slow client before it is disconnected
    /// (close 1013); live-typing updates never count, they replace each other.
    #[arg(long, env = "CHARLA_OUTBOX_BYTES", default_value_t = Config::DEFAULT_OUTBOX_BYTES)]
    pub outbox_bytes: usize,
}

impl Config {
    /// Where the server listens unless told otherwise.
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:3000";
    /// History lines kept unless told otherwise.
    pub const DEFAULT_HISTORY_CAP: u32 = 10_000;
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
            memory: false,
            max_frame_bytes: Config::DEFAULT_MAX_FRAME_BYTES,
            outbox_bytes: Config::DEFAULT_OUTBOX_BYTES,
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
            assert_eq!(parsed.addr, default.addr);
            assert_eq!(parsed.dist, default.dist);
            assert_eq!(parsed.history_cap, default.history_cap);
            assert_eq!(parsed.memory, default.memory);
            assert_eq!(parsed.max_frame_bytes, default.max_frame_bytes);
            assert_eq!(parsed.outbox_bytes, default.outbox_bytes);
        }
    }

    #[test]
    fn a_zero_history_cap_is_refused() {
        assert!(Config::try_parse_from(["backend", "--history-cap", "0"]).is_err());
    }
}
