//! Where WebSockets cannot open: real Chromium pages behind a proxy that refuses every
//! WebSocket upgrade (as corporate proxies that strip `Upgrade` do) fall back to the SSE
//! transport by themselves, chat and type live over it, lose nothing and repeat nothing
//! across a server restart, and move to a WebSocket once the proxy lets upgrades through.

#![allow(missing_docs)]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use e2e::{
    Driver, ENTER, connected_id, start_backend_with, text, type_into, wait_history, wait_text,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// An HTTP proxy in front of the server that refuses WebSocket upgrades until told not to.
struct Proxy {
    addr: SocketAddr,
    allow_upgrades: Arc<AtomicBool>,
    upgrades_refused: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let allow_upgrades = Arc::new(AtomicBool::new(false));
        let upgrades_refused = Arc::new(AtomicUsize::new(0));
        let (allow, refused) = (allow_upgrades.clone(), upgrades_refused.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, allow.clone(), refused.clone()));
            }
        });
        Proxy {
            addr,
            allow_upgrades,
            upgrades_refused,
        }
    }
}

/// One client connection: its first request's head is read; an upgrade is refused (unless
/// allowed), anything else is relayed both ways as it is.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    allow: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
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
    if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_that_refuses_websockets_pages_chat_over_sse_then_move_to_a_websocket() {
    let server_addr = SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
    let proxy = Proxy::start(server_addr).await;
    let proxy_host = proxy.addr.to_string();
    let config = |c: &mut backend::Config| c.allow_hosts = vec![proxy_host.clone()];
    let backend = start_backend_with(Some(server_addr), None, config).await;
    let dir = backend.data_dir.clone();
    let driver = Driver::start().await;
    let page_url = format!("http://{}/", proxy.addr);
    let alice = driver.open(&page_url).await;
    let bob = driver.open(&page_url).await;
    for page in [&alice, &bob] {
        connected_id(page).await;
        wait_text(page, "#transport", |s| s == "SSE + POST").await;
    }
    assert!(
        proxy.upgrades_refused.load(Ordering::SeqCst) >= 2,
        "the pages tried WebSockets first"
    );
    let (alice_name, bob_name) = (text(&alice, "#my-name").await, text(&bob, "#my-name").await);

    // Live typing and a line, over SSE and POSTs.
    type_into(&alice, "hola por SSE").await;
    wait_text(&bob, "#typists li", |s| s.ends_with("hola por SSE")).await;
    type_into(&alice, ENTER).await;
    let mut expected = vec![format!("{alice_name} -> hola por SSE")];
    for page in [&alice, &bob] {
        wait_history(page, &expected).await;
    }

    // A line sent while the server restarts arrives once.
    backend.stop().await;
    type_into(&bob, "durante el reinicio").await;
    type_into(&bob, ENTER).await;
    wait_text(&bob, "#pending", |s| s.contains("durante el reinicio")).await;
    let backend = start_backend_with(Some(server_addr), Some(&dir), config).await;
    expected.push(format!("{bob_name} -> durante el reinicio"));
    for page in [&alice, &bob] {
        wait_history(page, &expected).await;
        wait_text(page, "#transport", |s| s == "SSE + POST").await;
    }
    wait_text(&bob, "#pending", |s| !s.contains("durante el reinicio")).await;

    // The proxy lets upgrades through: both pages move to a WebSocket by themselves, with
    // nothing lost or repeated on the way.
    proxy.allow_upgrades.store(true, Ordering::SeqCst);
    for page in [&alice, &bob] {
        wait_text(page, "#transport", |s| s == "WebSocket").await;
    }
    type_into(&alice, "ya por WebSocket").await;
    type_into(&alice, ENTER).await;
    expected.push(format!("{alice_name} -> ya por WebSocket"));
    for page in [&alice, &bob] {
        wait_history(page, &expected).await;
        assert_eq!(text(page, "#conn-state").await, "connected");
    }
    for page in [alice, bob] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}
