//! The transports lesson's wire types (`/transports/*`, see docs/PROTOCOL.md): the server's
//! tick, the poll answers, and what each transport cost, as the server and the page both
//! read them.

use serde::{Deserialize, Serialize};

/// The four ways a tick travels, in the order the page shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Periodic polling (`/transports/poll`).
    Poll,
    /// Long polling (`/transports/long-poll`).
    LongPoll,
    /// Server-Sent Events (`/transports/sse`).
    Sse,
    /// A WebSocket (`/transports/ws`).
    Ws,
}

impl Transport {
    /// Every transport, in the page's order.
    pub const ALL: [Transport; 4] = [
        Transport::Poll,
        Transport::LongPoll,
        Transport::Sse,
        Transport::Ws,
    ];

    /// Its endpoint's last path segment, and the page's `data-transport`.
    pub fn path(self) -> &'static str {
        match self {
            Transport::Poll => "poll",
            Transport::LongPoll => "long-poll",
            Transport::Sse => "sse",
            Transport::Ws => "ws",
        }
    }
}

/// One tick: its number (from 1) and when the server made it, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// Its number.
    pub n: u64,
    /// When the server made it.
    pub at: u64,
}

/// A poll's or a long poll's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticks {
    /// The ticks after the one asked for, oldest first.
    pub ticks: Vec<Tick>,
}

/// What one transport cost so far, counted at the server's socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// HTTP requests (a WebSocket's handshake is one).
    pub requests: u64,
    /// Bytes from the page: request heads, and frames after an upgrade.
    pub bytes_in: u64,
    /// Bytes to the page: responses whole, and frames after an upgrade.
    pub bytes_out: u64,
}

/// `/transports/stats`: the server's clock and each transport's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The server's time, in ms since the epoch.
    pub now: u64,
    /// Polling's.
    pub poll: Cost,
    /// Long polling's.
    pub long_poll: Cost,
    /// Server-Sent Events'.
    pub sse: Cost,
    /// The WebSocket's.
    pub ws: Cost,
}

impl Stats {
    /// The cost of `transport`.
    pub fn of(&self, transport: Transport) -> Cost {
        match transport {
            Transport::Poll => self.poll,
            Transport::LongPoll => self.long_poll,
            Transport::Sse => self.sse,
            Transport::Ws => self.ws,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shapes_are_the_documented_ones() {
        let tick = Tick {
            n: 4,
            at: 1_796_624_901_224,
        };
        assert_eq!(
            serde_json::to_string(&tick).expect("json"),
            r#"{"n":4,"at":1796624901224}"#
        );
        let stats: Stats = serde_json::from_str(
            r#"{"long_poll":{"bytes_in":218,"bytes_out":342,"requests":2},"now":1796624902677,
                "poll":{"bytes_in":108,"bytes_out":198,"requests":1},
                "sse":{"bytes_in":117,"bytes_out":321,"requests":1},
                "ws":{"bytes_in":0,"bytes_out":0,"requests":0}}"#,
        )
        .expect("the documented stats");
        assert_eq!(stats.of(Transport::LongPoll).bytes_out, 342);
        assert_eq!(stats.of(Transport::Ws), Cost::default());
        let paths: Vec<_> = Transport::ALL.iter().map(|t| t.path()).collect();
        assert_eq!(paths, ["poll", "long-poll", "sse", "ws"]);
    }
}
