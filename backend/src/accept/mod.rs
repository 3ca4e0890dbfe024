//! The accept loop: every TCP connection, from accept to close, including the graceful
//! shutdown with a hard deadline.
//!
//! `axum::serve` has neither a header read timeout nor a per-address cap on TCP connections,
//! so an attacker could hold thousands of sockets open by sending half a request line each
//! (slowloris), and a client reading a file one byte at a time could hold shutdown forever.
//! Here hyper is driven directly:
//!
//! - at most `--max-tcp-per-ip` open TCP connections per address, checked at accept time
//!   (before a byte is read); past it the socket is closed at once;
//! - a request's headers must arrive within `--header-timeout-ms`, or the connection is closed;
//! - until it is upgraded, every read and write of a connection must make progress within
//!   `--http-timeout` ([`deadline`]): a trickling body, an unread response and an idle
//!   keep-alive connection end;
//! - addresses are counted as the rate limits count them: an IPv6 host's whole /64 is one
//!   address ([`AddressKey`]);
//! - on shutdown, accepting stops, every connection is asked to finish, and whatever is still
//!   open after the grace period is dropped.

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower::ServiceExt as _;

use crate::{
    metrics::{Metrics, ReasonLabel},
    rate::AddressKey,
};

mod deadline;
pub(crate) mod tally;

use deadline::DeadlineIo;
use tally::Tally;

/// How the accept loop guards the door.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptLimits {
    /// Open TCP connections one address may hold.
    pub max_tcp_per_ip: usize,
    /// How long a request's headers may take to arrive.
    pub header_timeout: Duration,
    /// How long a read or write of a connection not upgraded may make no progress.
    pub http_timeout: Duration,
    /// How long connections get to finish once shutdown starts.
    pub grace: Duration,
}

/// Open TCP connections per address.
#[derive(Debug, Default)]
struct TcpCounts(Mutex<HashMap<AddressKey, usize>>);

/// A place held by one TCP connection; dropping it frees the place.
struct TcpPermit {
    counts: Arc<TcpCounts>,
    ip: AddressKey,
}

impl TcpCounts {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<TcpPermit> {
        let ip = AddressKey::from(ip);
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(TcpPermit {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for TcpPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, calls
/// `on_shutdown` (which closes the WebSockets), asks every HTTP connection to finish, and
/// drops those still open after the grace period.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: AcceptLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    on_shutdown: impl FnOnce(),
) {
    let counts = Arc::new(TcpCounts::default());
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    while let Some((tcp, peer)) = accept(&listener, &mut shutdown).await {
        while conns.try_join_next().is_some() {} // reap the finished ones
        let Some(permit) = counts.take(peer.ip(), limits.max_tcp_per_ip) else {
            metrics
                .connections_refused
                .get_or_create(&ReasonLabel {
                    reason: "too_many_tcp_from_address",
                })
                .inc();
            drop(tcp); // closed before a byte is read
            continue;
        };
        // Small frames (acks, typing) must go out now, not wait on Nagle's algorithm for the
        // peer's delayed ACK (a 40 ms stall per exchange).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        conns.spawn(connection(
            tcp,
            peer,
            router.clone(),
            limits,
            closing_rx.clone(),
            permit,
            metrics.clone(),
        ));
    }
    on_shutdown();
    let _ = closing_tx.send(true);
    let finished = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.grace, finished).await.is_err() {
        tracing::info!(
            still_open = conns.len(),
            "shutdown grace period over: dropping the connections still open"
        );
    }
    conns.shutdown().await;
}

/// The next connection, or none once `shutdown` completes.
async fn accept(
    listener: &TcpListener,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.as_mut() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(err) => {
                    // Out of file descriptors, most likely: let some close before trying again.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

/// One TCP connection: HTTP/1.1 with upgrades (the WebSocket), until it closes or shutdown.
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: AcceptLimits,
    mut closing: watch::Receiver<bool>,
    permit: TcpPermit,
    metrics: Arc<Metrics>,
) {
    let upgraded = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let io = DeadlineIo::new(
        tcp,
        limits.http_timeout,
        upgraded.clone(),
        metrics,
        tally.clone(),
    );
    let long_lived = crate::ws::sse::LongLived(upgraded.clone());
    let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(long_lived.clone());
        request.extensions_mut().insert(tally.next_request());
        request.map(Body::new)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let closing = async move {
        // (The guard `wait_for` returns must not live across an await.)
        let _ = closing.wait_for(|closing| *closing).await.map(|_| ());
    };
    tokio::select! {
        _ = connection.as_mut() => {}
        () = closing => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
    // Served, or handed over to a WebSocket (hyper's connection ends with the upgrade):
    // from here on the WebSocket's own deadlines rule.
    upgraded.store(true, Ordering::Relaxed);
    // An upgraded socket (a WebSocket) lives on in its own task, with its own admission
    // permit; the TCP place is freed when hyper hands it over.
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_places_are_counted_per_ipv6_64() {
        let counts = Arc::new(TcpCounts::default());
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2:3:4".parse().expect("ip");
        let first = counts.take(a, 1).expect("a place");
        assert!(counts.take(b, 1).is_none(), "the /64 holds its one place");
        assert!(counts.take("2001:db9::1".parse().expect("ip"), 1).is_some());
        drop(first);
        assert!(counts.take(b, 1).is_some());
    }
}
