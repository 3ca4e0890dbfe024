//! Rooms in real browsers: three sessions, two rooms. A line in one room shows only to its
//! members; a member looking at another room sees the unread count rise; a deep link opens
//! its room; back and forward move between rooms; names show on lines.

#![allow(missing_docs)]

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, assert_accessible, click, connected_id, history, js, resize,
    set_name, start_backend, text, texts, type_in, type_into, wait_history, wait_text, wait_texts,
};

/// Waits until the room in view is `room`.
async fn in_room(page: &fantoccini::Client, room: &str) {
    wait_text(page, "#room-title", |s| s.contains(room)).await;
}

/// The unread badge of `room` in the side panel ("" when none).
async fn unread(page: &fantoccini::Client, room: &str) -> String {
    text(page, &format!("#rooms li[data-room='{room}'] .unread")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_in_one_room_reaches_its_members_only_and_raises_the_unread_badge_elsewhere() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    // Alice follows a deep link straight into `dev`.
    let alice = driver
        .open_sized(&format!("{}r/dev", backend.url()), DESKTOP)
        .await;
    let bob = driver.open_sized(&backend.url(), DESKTOP).await;
    let carol = driver.open_sized(&backend.url(), DESKTOP).await;
    for page in [&alice, &bob, &carol] {
        connected_id(page).await;
    }
    in_room(&alice, "dev").await;
    in_room(&bob, "general").await;
    set_name(&alice, "Alice").await;
    set_name(&bob, "Bob").await;
    set_name(&carol, "Carol").await;

    // Bob joins dev with the keyboard (the join form), which shows dev; then goes back to
    // general with the browser's back button.
    type_in(&bob, "#join-room-input", "dev").await;
    type_in(&bob, "#join-room-input", ENTER).await;
    in_room(&bob, "dev").await;
    wait_text(&bob, "#online", |s| s == "2 online").await;
    wait_texts(
        &alice,
        "#members li",
        &["Alice".to_owned(), "Bob".to_owned()],
    )
    .await;
    bob.back().await.expect("back");
    in_room(&bob, "general").await;
    let rooms = texts(&bob, "#rooms li a").await;
    assert!(
        rooms.iter().any(|r| r.contains("dev")) && rooms.iter().any(|r| r.contains("general")),
        "{rooms:?}"
    );

    // Alice types and sends in dev: Bob, looking at general, sees neither her typing nor her
    // line there, but dev's unread badge rises; Carol (not in dev) sees nothing at all.
    type_into(&alice, "hola dev").await;
    wait_text(&alice, "#typists li", |s| s.ends_with("hola dev")).await;
    type_into(&alice, ENTER).await;
    wait_history(&alice, &["Alice -> hola dev".to_owned()]).await;
    wait_text(&bob, "#rooms li[data-room='dev'] .unread", |s| {
        s.contains('1')
    })
    .await;
    assert!(history(&bob).await.is_empty(), "general shows no dev line");
    assert_eq!(texts(&bob, "#typists li").await, Vec::<String>::new());
    type_into(&alice, "second").await;
    type_into(&alice, ENTER).await;
    wait_text(&bob, "#rooms li[data-room='dev'] .unread", |s| {
        s.contains('2')
    })
    .await;
    assert!(history(&carol).await.is_empty());
    assert!(
        !texts(&carol, "#rooms li")
            .await
            .iter()
            .any(|r| r.contains("dev")),
        "Carol is not in dev"
    );

    // Forward takes Bob back to dev: the lines are there, names on them, the badge is gone.
    bob.forward().await.expect("forward");
    in_room(&bob, "dev").await;
    wait_history(
        &bob,
        &["Alice -> hola dev".to_owned(), "Alice -> second".to_owned()],
    )
    .await;
    wait_text(&bob, "#rooms li[data-room='dev'] .unread", str::is_empty).await;
    assert_eq!(unread(&bob, "dev").await, "");

    // Carol talks in general: Bob (in dev now) gets the badge on general; Alice is not there.
    type_into(&carol, "hola general").await;
    type_into(&carol, ENTER).await;
    wait_text(&bob, "#rooms li[data-room='general'] .unread", |s| {
        s.contains('1')
    })
    .await;
    // The README's screenshot: Bob in dev, with general's unread badge.
    let shot = bob.screenshot().await.expect("screenshot");
    e2e::side_by_side(&[shot], &e2e::workspace_root().join("target/e2e/rooms.png"));
    click(&bob, "#rooms li[data-room='general'] a").await;
    in_room(&bob, "general").await;
    wait_history(&bob, &["Carol -> hola general".to_owned()]).await;

    // Leaving dev takes it off Alice's list and shows Bob one member fewer.
    click(&alice, "#leave-room").await;
    wait_text(&alice, "#room-title", |s| !s.contains("dev")).await;
    assert!(
        !texts(&alice, "#rooms li")
            .await
            .iter()
            .any(|r| r.contains("dev"))
    );
    click(&bob, "#rooms li[data-room='dev'] a").await;
    in_room(&bob, "dev").await;
    wait_text(&bob, "#online", |s| s == "1 online").await;

    // Accessible on a desktop and on a phone, where the room panel folds away behind a button.
    for (size, label) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&bob, size).await;
        assert_accessible(&bob, label).await;
    }
    let hidden = js(
        &bob,
        "const p = document.querySelector('#rooms'); return p.offsetParent === null || getComputedStyle(p).display === 'none' || p.getBoundingClientRect().width === 0;",
    )
    .await;
    assert_eq!(
        hidden,
        serde_json::json!(true),
        "the panel folds away on a phone"
    );
    click(&bob, "#rooms-toggle").await;
    wait_text(&bob, "#rooms", |s| s.contains("general")).await;
    let expanded = js(
        &bob,
        "return document.querySelector('#rooms-toggle').getAttribute('aria-expanded');",
    )
    .await;
    assert_eq!(expanded, serde_json::json!("true"));
    assert_accessible(&bob, "phone, panel open").await;

    for page in [alice, bob, carol] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}
