//! The classic exercise in real browsers: two (then three) headless Chromium sessions, driven
//! by WebDriver, against the real backend serving the trunk build in `dist/`, in `general`.

#![allow(missing_docs)]

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, assert_accessible, connected_id, js, resize, set_name,
    side_by_side, start_backend, text, type_into, wait_history, wait_text, workspace_root,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_type_send_and_a_third_sees_the_history() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    let bob = driver.open(&backend.url()).await;
    let alice_id = connected_id(&alice).await;
    let bob_id = connected_id(&bob).await;
    assert_ne!(alice_id, bob_id);
    // Until they pick one, everyone has a generated name.
    assert!(text(&alice, "#my-name").await.starts_with("guest-"));
    set_name(&alice, "Alice").await;
    set_name(&bob, "Bob").await;
    wait_text(&alice, "#online", |s| s == "2 online").await;
    wait_text(&bob, "#online", |s| s == "2 online").await;

    // Typing shows, keystroke by keystroke, on both pages, labelled with the typist's name.
    type_into(&alice, "hola mundo").await;
    for page in [&bob, &alice] {
        wait_text(page, "#typists li", |s| s.ends_with("hola mundo")).await;
        assert!(text(page, "#typists li").await.contains("Alice"));
    }

    // Enter sends: the line shows with the sender's name on both; the box and the typing
    // list clear; the sender's id is on the line for hover.
    type_into(&alice, ENTER).await;
    let mut expected = vec!["Alice -> hola mundo".to_owned()];
    wait_history(&alice, &expected).await;
    wait_history(&bob, &expected).await;
    let title = js(&bob, "return document.querySelector('#history li').title;").await;
    assert!(
        title.as_str().is_some_and(|t| t.contains(&alice_id)),
        "{title}"
    );
    let value = js(
        &alice,
        "return document.querySelector('#composer-input').value;",
    )
    .await;
    assert_eq!(value, json!(""));
    wait_text(&bob, "#live", |s| s.contains("Nobody is typing")).await;

    // The Send button works too, and both pages keep the same order.
    type_into(&bob, "second line").await;
    e2e::click(&bob, "#send").await;
    expected.push("Bob -> second line".to_owned());
    wait_history(&alice, &expected).await;
    wait_history(&bob, &expected).await;

    // A blank line is refused with a visible message and not sent.
    type_into(&alice, "   ").await;
    type_into(&alice, ENTER).await;
    wait_text(&alice, "#notice", |s| {
        s.contains("blank lines are not sent")
    })
    .await;
    alice
        .find(fantoccini::Locator::Css("#composer-input"))
        .await
        .expect("input")
        .clear()
        .await
        .expect("clear");

    // Markup is shown as text and never runs, on the sender's page and on others'.
    let evil = r#"<img src=x onerror="window.__charla_xss=1">"#;
    type_into(&alice, evil).await;
    type_into(&alice, ENTER).await;
    expected.push(format!("Alice -> {evil}"));
    for page in [&alice, &bob] {
        wait_history(page, &expected).await;
        let probe = js(
            page,
            "return [document.querySelectorAll('#history img, #live img').length, \
             window.__charla_xss === undefined];",
        )
        .await;
        assert_eq!(probe, json!([0, true]), "no element made, no script run");
    }

    // A third page gets the whole history first, and everyone sees three online.
    let carol = driver.open(&backend.url()).await;
    connected_id(&carol).await;
    wait_history(&carol, &expected).await;
    for page in [&alice, &bob, &carol] {
        wait_text(page, "#online", |s| s == "3 online").await;
    }
    carol.close().await.expect("close carol");
    wait_text(&alice, "#online", |s| s == "2 online").await;

    // The screenshot in the README: Bob typing, shown live on both pages.
    type_into(&bob, "typing… every keystroke shows on every page").await;
    wait_text(&alice, "#typists li", |s| s.ends_with("every page")).await;
    let shots = [
        alice.screenshot().await.expect("screenshot"),
        bob.screenshot().await.expect("screenshot"),
    ];
    side_by_side(&shots, &workspace_root().join("target/e2e/two-tabs.png"));

    // The page has no accessibility violations, on a desktop and on a phone.
    for (size, label) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&alice, size).await;
        assert_accessible(&alice, label).await;
    }

    alice.close().await.expect("close alice");
    bob.close().await.expect("close bob");
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_sent_while_the_server_is_down_arrives_once_when_it_is_back() {
    let backend = start_backend(None, None).await;
    let (addr, data_dir) = (backend.addr, backend.data_dir.clone());
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    let bob = driver.open(&backend.url()).await;
    let alice_id = connected_id(&alice).await;
    connected_id(&bob).await;
    set_name(&alice, "Alice").await;
    type_into(&alice, "before the outage").await;
    type_into(&alice, ENTER).await;
    let mut expected = vec!["Alice -> before the outage".to_owned()];
    wait_history(&bob, &expected).await;

    // The server goes away: every page says so, and counts down to its next attempt.
    backend.stop().await;
    for page in [&alice, &bob] {
        wait_text(page, "#conn-state", |s| {
            s.starts_with("disconnected · reconnecting")
        })
        .await;
    }
    // A line sent now waits, visibly pending.
    type_into(&alice, "sent while offline").await;
    type_into(&alice, ENTER).await;
    wait_text(&alice, "#pending li", |s| {
        s.contains("sent while offline") && s.ends_with("sending…")
    })
    .await;

    // The server comes back on the same address with the same data: the pages reconnect by
    // themselves, Alice keeps her id and name, and her line is delivered exactly once.
    let backend = start_backend(Some(addr), Some(&data_dir)).await;
    expected.push("Alice -> sent while offline".to_owned());
    for page in [&alice, &bob] {
        wait_text(page, "#conn-state", |s| s == "connected").await;
        wait_history(page, &expected).await;
    }
    assert_eq!(
        text(&alice, "#my-id").await,
        alice_id,
        "the session resumed"
    );
    let pending = js(
        &alice,
        "return document.querySelectorAll('#pending li').length;",
    )
    .await;
    assert_eq!(pending, json!(0));
    let carol = driver.open(&backend.url()).await;
    connected_id(&carol).await;
    wait_history(&carol, &expected).await;
    for page in [alice, bob, carol] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}
