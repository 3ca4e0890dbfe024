//! `idle`: N connections opened 64 at a time and held: connects per second, handshake latency,
//! and the server's RSS per connection.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// `idle`: opens `clients` connections (`in_flight` handshakes at a time), holds them, and
/// measures the server's memory per connection (`--server-pid`).
pub async fn idle(
    target: &Target,
    clients: usize,
    hold: Duration,
    server_pid: Option<u32>,
) -> Result<Report, String> {
    let mut report = Report::new("idle");
    let rss_before = server_pid.and_then(rss_bytes);
    let cpu_before = cpu_seconds(None);
    let (sockets, handshakes, took) = connect_all(target, clients).await?;
    report.row("connections", sockets.len() as f64, "");
    report.row("in flight", target.in_flight as f64, "handshakes");
    report.row("connects/s", clients as f64 / took.as_secs_f64(), "");
    percentiles(&mut report, "handshake", &handshakes);
    own_cpu(&mut report, cpu_before, took);
    // Let the server settle (greetings written, buffers released), then weigh it.
    tokio::time::sleep(hold).await;
    if let (Some(before), Some(after)) = (rss_before, server_pid.and_then(rss_bytes)) {
        report.row("server RSS", after / 1_048_576.0, "MiB");
        report.row(
            "server RSS per connection",
            (after - before) / clients as f64,
            "bytes",
        );
    }
    // Every connection still open after the hold.
    let mut open = 0u32;
    for mut ws in sockets {
        let alive = tokio::time::timeout(Duration::from_millis(1), ws.next())
            .await
            .map_or(true, |next| {
                matches!(
                    next,
                    Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))
                )
            });
        if alive {
            open += 1;
        }
    }
    report.row("still open after the hold", f64::from(open), "");
    if (open as usize) < clients {
        report.note(format!(
            "{} connections were dropped",
            clients - open as usize
        ));
    }
    Ok(report)
}
