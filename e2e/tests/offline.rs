//! Exactly once from the page's side: lines typed while the server is down, lines pending
//! when the tab reloads, and the server's own limits obeyed by the page.

#![allow(missing_docs)]

use e2e::{
    Driver, ENTER, connected_id, js, start_backend, start_backend_with, text, type_into,
    wait_history, wait_text,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_lines_typed_while_the_server_is_down_all_arrive_once_when_it_is_back() {
    // The default limits: 10 sends a second, bursts of 20 — the page must pace its backlog.
    let backend = start_backend(None, None).await;
    let (addr, dir) = (backend.addr, backend.data_dir.clone());
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    let bob = driver.open(&backend.url()).await;
    let alice_id = connected_id(&alice).await;
    connected_id(&bob).await;
    backend.stop().await;
    wait_text(&alice, "#conn-state", |s| s.starts_with("disconnected")).await;
    let expected: Vec<String> = (1..=50).map(|i| format!("line {i}")).collect();
    for line in &expected {
        type_into(&alice, line).await;
        type_into(&alice, ENTER).await;
    }
    let pending = js(
        &alice,
        "return document.querySelectorAll('#pending li').length;",
    )
    .await;
    assert_eq!(pending, json!(50), "all fifty wait, shown as sending");

    let backend = start_backend(Some(addr), Some(&dir)).await;
    let name = text(&alice, "#my-name").await;
    let shown: Vec<String> = expected.iter().map(|l| format!("{name} -> {l}")).collect();
    for page in [&alice, &bob] {
        wait_history(page, &shown).await;
    }
    wait_text(&alice, "#pending", |s| !s.contains("sending")).await;
    assert_eq!(text(&alice, "#my-id").await, alice_id);
    for page in [alice, bob] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_pending_when_the_tab_reloads_are_sent_once_after_it() {
    // A slow disk: lines stay unacknowledged for seconds, long enough to reload meanwhile.
    let backend = start_backend_with(None, None, |c| {
        c.commit_stall = Some(std::time::Duration::from_millis(2_000));
    })
    .await;
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    let alice_id = connected_id(&alice).await;
    let name = text(&alice, "#my-name").await;
    let mut expected = Vec::new();
    for line in ["pending 1", "pending 2", "pending 3"] {
        type_into(&alice, line).await;
        type_into(&alice, ENTER).await;
        expected.push(format!("{name} -> {line}"));
    }
    wait_text(&alice, "#pending", |s| s.matches("sending").count() == 3).await;
    // The tab reloads before any is acknowledged: they come back, still pending, and are
    // sent again with the same nonces; the server, which may already have them, keeps each
    // once.
    alice.refresh().await.expect("reload");
    wait_text(&alice, "#pending", |s| {
        s.matches("sending").count() == 3 && s.contains("pending 3")
    })
    .await;
    wait_text(&alice, "#conn-state", |s| s == "connected").await;
    wait_history(&alice, &expected).await;
    wait_text(&alice, "#pending", |s| !s.contains("sending")).await;
    assert_eq!(
        text(&alice, "#my-id").await,
        alice_id,
        "same session after the reload"
    );
    let bob = driver.open(&backend.url()).await;
    connected_id(&bob).await;
    wait_history(&bob, &expected).await;
    for page in [alice, bob] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_obeys_the_servers_text_limit() {
    let backend = start_backend_with(None, None, |c| c.max_text_chars = 100).await;
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    connected_id(&alice).await;
    type_into(&alice, &"a".repeat(101)).await;
    type_into(&alice, ENTER).await;
    wait_text(&alice, "#notice", |s| s.contains("100")).await;
    assert_eq!(
        js(
            &alice,
            "return document.querySelectorAll('#pending li, #history li').length;"
        )
        .await,
        json!(0),
        "not sent"
    );
    alice
        .find(fantoccini::Locator::Css("#composer-input"))
        .await
        .expect("input")
        .clear()
        .await
        .expect("clear");
    type_into(&alice, &"b".repeat(100)).await;
    type_into(&alice, ENTER).await;
    let name = text(&alice, "#my-name").await;
    wait_history(&alice, &[format!("{name} -> {}", "b".repeat(100))]).await;
    alice.close().await.expect("close");
    backend.stop().await;
}
