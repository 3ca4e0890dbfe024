//! An HTTP proxy in front of a server that refuses WebSocket upgrades (answering `403`, as
//! corporate proxies that strip `Upgrade` do) until told to let them through; anything else
//! it relays both ways as it is.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A running proxy (it runs until the test's runtime ends).
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Whether upgrades go through (false at the start).
    pub allow_upgrades: Arc<AtomicBool>,
    /// How many upgrades were refused.
    pub upgrades_refused: Arc<AtomicUsize>,
    /// How many upgrades went through.
    pub upgrades_passed: Arc<AtomicUsize>,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let proxy = Proxy {
            addr: listener.local_addr().expect("the proxy's address"),
            allow_upgrades: Arc::default(),
            upgrades_refused: Arc::default(),
            upgrades_passed: Arc::default(),
        };
        let counts = (
            proxy.allow_upgrades.clone(),
            proxy.upgrades_refused.clone(),
            proxy.upgrades_passed.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, counts.clone()));
            }
        });
        proxy
    }

    /// Lets upgrades through from now on.
    pub fn allow(&self) {
        self.allow_upgrades.store(true, Ordering::SeqCst);
    }

    /// How many upgrades were refused so far.
    pub fn refused(&self) -> usize {
        self.upgrades_refused.load(Ordering::SeqCst)
    }

    /// How many upgrades went through so far.
    pub fn passed(&self) -> usize {
        self.upgrades_passed.load(Ordering::SeqCst)
    }
}

/// One client connection: its first request's head is read; an upgrade is refused (unless
/// allowed), anything else is relayed both ways as it is.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    (allow, refused, passed): (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicUsize>),
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let upgrade = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("upgrade: websocket");
    if upgrade && !allow.load(Ordering::SeqCst) {
        refused.fetch_add(1, Ordering::SeqCst);
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        // The server is down: the client sees its connection end, as through any proxy.
        return;
    };
    if upgrade {
        passed.fetch_add(1, Ordering::SeqCst);
    }
    if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
