//! What the operator's console (`/admin`) and the server agree on: one [`Sample`] of the
//! server's load a second, sent on the admins' stats stream (`GET /api/admin/stats`, Server-Sent
//! Events: first a `history` event with the samples of the last [`WINDOW_SECS`] seconds, then
//! a `sample` event every second), each the JSON of a [`Sample`].

use serde::{Deserialize, Serialize};

/// How many seconds of samples the server keeps and the console draws: 15 minutes.
pub const WINDOW_SECS: usize = 15 * 60;

/// The server's load over one second (rates are per second; gauges as the second ended).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the second ended, in milliseconds since the Unix epoch.
    pub at: u64,
    /// Open connections (WebSocket and SSE).
    pub connections: u64,
    /// Lines made durable in that second.
    pub lines: u64,
    /// Frames written to clients in that second.
    pub deliveries: u64,
    /// Bytes of frames written to clients in that second.
    pub bytes_out: u64,
    /// Bytes queued for clients and not yet written, every connection's.
    pub backlog: u64,
    /// Clients closed as slow consumers in that second.
    pub slow_closes: u64,
    /// The mean time a group commit took in that second, in microseconds (0: none made).
    pub commit_us: u64,
    /// The server process's resident memory, in bytes.
    pub rss: u64,
    /// The server process's CPU use in that second, in percent of one core.
    pub cpu: f32,
}

/// One of the console's charts: a field of [`Sample`].
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// Its id (the chart's `data-series`).
    pub id: &'static str,
    /// What it shows.
    pub title: &'static str,
    /// Its unit, after each number.
    pub unit: &'static str,
    /// The field, as a number.
    pub value: fn(&Sample) -> f64,
}

/// Every chart the console draws, in order.
pub const SERIES: [Series; 9] = [
    Series {
        id: "connections",
        title: "Connections",
        unit: "",
        value: |s| s.connections as f64,
    },
    Series {
        id: "lines",
        title: "Lines",
        unit: "/s",
        value: |s| s.lines as f64,
    },
    Series {
        id: "deliveries",
        title: "Deliveries",
        unit: "/s",
        value: |s| s.deliveries as f64,
    },
    Series {
        id: "bytes_out",
        title: "Bytes out",
        unit: "B/s",
        value: |s| s.bytes_out as f64,
    },
    Series {
        id: "backlog",
        title: "Outbox backlog",
        unit: "B",
        value: |s| s.backlog as f64,
    },
    Series {
        id: "slow_closes",
        title: "Closed as slow",
        unit: "/s",
        value: |s| s.slow_closes as f64,
    },
    Series {
        id: "commit_us",
        title: "Commit latency",
        unit: "µs",
        value: |s| s.commit_us as f64,
    },
    Series {
        id: "rss",
        title: "Memory (RSS)",
        unit: "B",
        value: |s| s.rss as f64,
    },
    Series {
        id: "cpu",
        title: "CPU",
        unit: "%",
        value: |s| f64::from(s.cpu),
    },
];

/// The width of a chart's drawing: one unit a second of the window.
pub const CHART_WIDTH: f64 = WINDOW_SECS as f64;
/// The height of a chart's drawing.
pub const CHART_HEIGHT: f64 = 100.0;

/// A chart of `value` over `samples` (oldest first): its polyline's points (`x,y` pairs,
/// the newest sample at the right edge, one unit a second back in time, the top at the
/// window's peak) and that peak. Samples older than the window are left out.
pub fn chart_points(samples: &[Sample], value: fn(&Sample) -> f64) -> (String, f64) {
    let Some(newest) = samples.last().map(|s| s.at) else {
        return (String::new(), 0.0);
    };
    let x_of = |s: &Sample| CHART_WIDTH - newest.saturating_sub(s.at) as f64 / 1000.0;
    let shown: Vec<&Sample> = samples.iter().filter(|s| x_of(s) >= 0.0).collect();
    let peak = shown.iter().map(|s| value(s)).fold(0.0, f64::max);
    let scale = if peak > 0.0 { peak } else { 1.0 };
    let mut points = String::new();
    for s in shown {
        // A margin of 2 at the top and the bottom, so the line is never cut.
        let y = CHART_HEIGHT - 2.0 - value(s) / scale * (CHART_HEIGHT - 4.0);
        if !points.is_empty() {
            points.push(' ');
        }
        points.push_str(&format!("{:.1},{:.1}", x_of(s), y));
    }
    (points, peak)
}

/// A number for people, in `unit`: bytes as KB, MB and GB (of 1,024), other numbers as k
/// and M past a thousand, percent with one decimal.
pub fn show_value(value: f64, unit: &str) -> String {
    if let Some(rest) = unit.strip_prefix('B') {
        let (scaled, prefix) = match value {
            v if v >= 1024.0 * 1024.0 * 1024.0 => (v / (1024.0 * 1024.0 * 1024.0), "GB"),
            v if v >= 1024.0 * 1024.0 => (v / (1024.0 * 1024.0), "MB"),
            v if v >= 1024.0 => (v / 1024.0, "KB"),
            v => return format!("{v:.0} B{rest}"),
        };
        return format!("{scaled:.1} {prefix}{rest}");
    }
    let number = match value {
        v if unit == "%" => format!("{v:.1}"),
        v if v >= 1_000_000.0 => format!("{:.1} M", v / 1_000_000.0),
        v if v >= 1_000.0 => format!("{:.1} k", v / 1_000.0),
        v => format!("{v:.0}"),
    };
    let space = if unit.is_empty() || unit == "%" || unit.starts_with('/') {
        ""
    } else {
        " "
    };
    format!("{number}{space}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_plain_json_both_ways() {
        let sample = Sample {
            at: 1,
            connections: 2,
            lines: 3,
            deliveries: 4,
            bytes_out: 5,
            backlog: 6,
            slow_closes: 7,
            commit_us: 8,
            rss: 9,
            cpu: 12.5,
        };
        let text = serde_json::to_string(&sample).expect("encodes");
        assert_eq!(
            text,
            r#"{"at":1,"connections":2,"lines":3,"deliveries":4,"bytes_out":5,"backlog":6,"slow_closes":7,"commit_us":8,"rss":9,"cpu":12.5}"#
        );
        assert_eq!(serde_json::from_str::<Sample>(&text).ok(), Some(sample));
    }

    #[test]
    fn every_series_reads_its_own_field() {
        let sample = Sample {
            connections: 1,
            lines: 2,
            deliveries: 3,
            bytes_out: 4,
            backlog: 5,
            slow_closes: 6,
            commit_us: 7,
            rss: 8,
            cpu: 9.0,
            at: 0,
        };
        let values: Vec<f64> = SERIES.iter().map(|s| (s.value)(&sample)).collect();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let ids: std::collections::HashSet<_> = SERIES.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), SERIES.len(), "ids are unique");
    }

    #[test]
    fn a_chart_puts_the_newest_second_at_the_right_and_the_peak_at_the_top() {
        let at = |secs: u64, lines: u64| Sample {
            at: 1_000_000 + secs * 1000,
            lines,
            ..Sample::default()
        };
        // One sample older than the window, left out.
        let samples = [at(0, 99), at(100, 0), at(999, 5), at(1000, 10)];
        let (points, peak) = chart_points(&samples, |s| s.lines as f64);
        assert_eq!(peak, 10.0, "the sample out of the window does not count");
        assert_eq!(points, "0.0,98.0 899.0,50.0 900.0,2.0");
        assert_eq!(chart_points(&[], |s| s.lines as f64), (String::new(), 0.0));
        // All zero: a flat line at the bottom, not a division by zero.
        let (flat, _) = chart_points(&[at(1, 0), at(2, 0)], |s| s.lines as f64);
        assert_eq!(flat, "899.0,98.0 900.0,98.0");
    }

    #[test]
    fn values_read_with_their_units() {
        assert_eq!(show_value(512.0, "B"), "512 B");
        assert_eq!(show_value(2048.0, "B/s"), "2.0 KB/s");
        assert_eq!(show_value(3.5 * 1024.0 * 1024.0, "B"), "3.5 MB");
        assert_eq!(show_value(12.0, ""), "12");
        assert_eq!(show_value(12_345.0, "/s"), "12.3 k/s");
        assert_eq!(show_value(2_500_000.0, ""), "2.5 M");
        assert_eq!(show_value(37.25, "%"), "37.2%");
        assert_eq!(show_value(840.0, "µs"), "840 µs");
    }
}
