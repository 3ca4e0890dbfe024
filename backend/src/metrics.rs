//! Counters and gauges for `/metrics`, in the Prometheus/OpenMetrics text format
//! (`prometheus-client`). Names start with `charla_`.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// A `type` label: a message type as on the wire (`invalid`, `binary` for what is not one).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// The message type.
    pub r#type: &'static str,
}

/// A `code` label: an error code as on the wire.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The error code.
    pub code: &'static str,
}

/// A `reason` label: why a connection was refused or closed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason.
    pub reason: &'static str,
}

/// Every metric the server keeps. Updating one is a few atomic operations.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// WebSocket connections accepted since start.
    pub connections_accepted: Counter,
    /// Upgrades refused, by reason (origin, limits).
    pub connections_refused: Family<ReasonLabel, Counter>,
    /// Frames received, by message type.
    pub frames_in: Family<TypeLabel, Counter>,
    /// Frames written to clients, by message type.
    pub frames_out: Family<TypeLabel, Counter>,
    /// `error` frames sent, by code.
    pub errors: Family<CodeLabel, Counter>,
    /// Frames over a rate limit: `send` and `frame` refused, `typing` conflated.
    pub rate_limited: Family<TypeLabel, Counter>,
    /// Connections the server closed, by reason (`slow_consumer`, `too_big`, …).
    pub closes: Family<ReasonLabel, Counter>,
    /// Lines kept in memory, every room's.
    pub history_lines: Gauge,
    /// Rooms the server holds.
    pub rooms: Gauge,
    /// Presence frames built (each goes once to every member of its room).
    pub presence_flushes: Counter,
    /// Group commits made (lines committed ÷ commits = lines per fsync).
    pub commits: Counter,
    /// Microseconds spent in group commits (÷ commits = the mean commit latency).
    pub commit_micros: Counter,
    /// Lines made durable.
    pub lines_committed: Counter,
    /// Frames written to clients, every type's (what `frames_out` counts, without a label).
    pub deliveries: Counter,
    /// Bytes of frames written to clients.
    pub bytes_out: Counter,
    /// Random tickers running (each ends with its connection).
    pub tickers: Gauge,
    /// Open `/echo` connections.
    pub echo_connections: Gauge,
    /// Products in the catalog.
    pub products: Gauge,
    /// Connections watching the product list.
    pub product_watchers: Gauge,
    /// HTTP connections cut off for making no progress within `--http-timeout`.
    pub http_timeouts: Counter,
    /// Requests of the rooms waiting for the cluster task (`--redis`).
    pub cluster_waiting: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers each named field of `$m` in `$registry`, under the field's name, with its help.
macro_rules! register {
    ($registry:ident, $m:ident, $($field:ident: $help:literal,)*) => {
        $($registry.register(stringify!($field), $help, $m.$field.clone());)*
    };
}

impl Metrics {
    /// Fresh metrics, all zero, registered under `charla_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("charla");
        let m = Metrics {
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_refused: Family::default(),
            frames_in: Family::default(),
            frames_out: Family::default(),
            errors: Family::default(),
            rate_limited: Family::default(),
            closes: Family::default(),
            history_lines: Gauge::default(),
            rooms: Gauge::default(),
            presence_flushes: Counter::default(),
            http_timeouts: Counter::default(),
            cluster_waiting: Gauge::default(),
            commits: Counter::default(),
            lines_committed: Counter::default(),
            commit_micros: Counter::default(),
            deliveries: Counter::default(),
            bytes_out: Counter::default(),
            tickers: Gauge::default(),
            echo_connections: Gauge::default(),
            products: Gauge::default(),
            product_watchers: Gauge::default(),
            registry: Registry::default(),
        };
        // Each under its field's name, in this order on /metrics.
        register!(
            registry,
            m,
            connections: "Open WebSocket connections",
            connections_accepted: "WebSocket connections accepted",
            connections_refused: "WebSocket upgrades refused, by reason",
            frames_in: "Frames received, by type",
            frames_out: "Frames written, by type",
            errors: "Error frames sent, by code",
            rate_limited: "Frames over a rate limit (send/frame refused, typing conflated)",
            closes: "Connections closed by the server, by reason",
            history_lines: "Lines kept in memory, every room's",
            rooms: "Rooms the server holds",
            cluster_waiting: "Requests of the rooms waiting for the cluster task (--redis)",
            http_timeouts: "HTTP connections cut off for making no progress within --http-timeout",
            presence_flushes: "Presence frames built, each sent to every member of its room",
            commits: "Group commits made",
            commit_micros: "Microseconds spent in group commits",
            lines_committed: "Lines made durable",
            deliveries: "Frames written to clients",
            bytes_out: "Bytes of frames written to clients",
            tickers: "Random tickers running",
            echo_connections: "Open /echo connections",
            products: "Products in the catalog",
            product_watchers: "Connections watching the product list",
        );
        Metrics { registry, ..m }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts one frame received of `r#type`.
    pub fn frame_in(&self, r#type: &'static str) {
        self.frames_in.get_or_create(&TypeLabel { r#type }).inc();
    }

    /// Counts one `error` frame of `code`.
    pub fn error(&self, code: &'static str) {
        self.errors.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts one connection closed by the server for `reason`.
    pub fn close(&self, reason: &'static str) {
        self.closes.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts one group commit that took `took`.
    pub fn committed(&self, took: std::time::Duration) {
        self.commits.inc();
        self.commit_micros
            .inc_by(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// Connections closed as slow consumers since start.
    pub fn slow_closes(&self) -> u64 {
        self.closes
            .get_or_create(&ReasonLabel {
                reason: "slow_consumer",
            })
            .get()
    }
}
