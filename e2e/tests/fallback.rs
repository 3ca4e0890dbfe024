//! Where WebSockets cannot open: real Chromium pages behind a proxy that refuses every
//! WebSocket upgrade (as corporate proxies that strip `Upgrade` do) fall back to the SSE
//! transport by themselves, chat and type live over it, lose nothing and repeat nothing
//! across a server restart, and move to a WebSocket once the proxy lets upgrades through.

#![allow(missing_docs)]

use std::net::SocketAddr;

use e2e::{
    Driver, ENTER, connected_id, start_backend_with, text, type_into, wait_history, wait_text,
};
use testkit::proxy::Proxy;

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
    assert!(proxy.refused() >= 2, "the pages tried WebSockets first");
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
    proxy.allow();
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
