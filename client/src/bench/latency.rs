//! `latency`: N clients, a fixed total send rate: send → delivery latency at every client,
//! from an HDR histogram.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// Send → delivery times, in µs, shared by every receiver of a `latency` run.
type Latencies = Arc<std::sync::Mutex<Histogram<u64>>>;

/// `latency`: `clients` in `general`; one sender sends `rate` lines a second for
/// `duration`, each carrying its send time; every client records send → delivery.
pub async fn latency(
    target: &Target,
    clients: usize,
    rate: u32,
    duration: Duration,
) -> Result<Report, String> {
    let mut report = Report::new("latency");
    let (mut sockets, _, _) = connect_all(target, clients + 1).await?;
    let epoch = Instant::now();
    let histogram = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new(3).map_err(|e| e.to_string())?,
    ));
    let mut tasks = JoinSet::new();
    let sender = sockets.pop().ok_or("no sender")?;
    for ws in sockets {
        time_deliveries(ws, epoch, histogram.clone(), &mut tasks);
    }
    let cpu_before = cpu_seconds(None);
    let started = Instant::now();
    let n = send_at_rate(sender, epoch, rate, started, duration, &mut tasks).await?;
    // The last lines' deliveries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wall = started.elapsed();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let histogram = histogram
        .lock()
        .map_err(|_| "a receiver panicked".to_owned())?
        .clone();
    report.row("clients", clients as f64, "");
    report.row("lines sent", n as f64, "");
    report.row("rate", f64::from(rate), "lines/s");
    report.row("deliveries measured", histogram.len() as f64, "");
    percentiles(&mut report, "send → delivery", &histogram);
    own_cpu(&mut report, cpu_before, wall);
    Ok(report)
}

/// Reads a `latency` client's frames, recording each `message`'s time since it was sent.
fn time_deliveries(ws: Socket, epoch: Instant, histogram: Latencies, tasks: &mut JoinSet<()>) {
    let (_, mut stream) = ws.split();
    tasks.spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            if !text.starts_with(r#"{"type":"message""#) {
                continue;
            }
            let Some(at) = sent_at(&text) else {
                continue;
            };
            let now = micros_since(epoch);
            if let Ok(mut all) = histogram.lock() {
                let _ = all.record(now.saturating_sub(at));
            }
        }
    });
}

/// When a `latency` line was sent: its text is `t<µs since the epoch>`.
fn sent_at(text: &str) -> Option<u64> {
    text.split(r#""text":"t"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse::<u64>().ok())
}

/// Sends `rate` lines a second from `sender` until `duration` after `started`, each
/// stamped with its send time; its acks are read (and dropped) by a task in `tasks`.
/// Returns how many lines were sent.
async fn send_at_rate(
    sender: Socket,
    epoch: Instant,
    rate: u32,
    started: Instant,
    duration: Duration,
    tasks: &mut JoinSet<()>,
) -> Result<u64, String> {
    let (mut sink, mut acks) = sender.split();
    tasks.spawn(async move { while let Some(Ok(_)) = acks.next().await {} });
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tick = tokio::time::interval(every);
    let mut n = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        n += 1;
        let at = epoch.elapsed().as_micros();
        let frame = send_frame(format_args!("t{at}"), format_args!("l{n}"));
        if sink.send(frame).await.is_err() {
            return Err("the sender's connection closed".into());
        }
    }
    Ok(n)
}
