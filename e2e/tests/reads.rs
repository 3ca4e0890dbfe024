//! Read positions in real browsers: one user signed in on a laptop and a phone, both in
//! `general` and `dev`, while Bob talks in `dev`. Both show the same unread count; reading
//! `dev` on either clears the badge on the other (the server keeps the position and tells
//! every page of the user), and a line after it counts from there on both.

#![allow(missing_docs)]

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, click, connected_id, dev_sign_in, set_name, start_backend_args,
    text, type_in, type_into, wait_history, wait_text,
};
use fantoccini::Client;

/// Waits until the room in view is `room`.
async fn in_room(page: &Client, room: &str) {
    wait_text(page, "#room-title", |s| s.contains(room)).await;
}

/// Waits until `room`'s badge in the side panel reads `count` ("" for none).
async fn unread_is(page: &Client, room: &str, count: &str) {
    wait_text(
        page,
        &format!("#rooms li[data-room='{room}'] .unread"),
        |s| s == count,
    )
    .await;
}

/// Joins `room` with the keyboard (the join form shows it), then goes back to `general`.
async fn join_and_come_back(page: &Client, room: &str) {
    type_in(page, "#join-room-input", room).await;
    type_in(page, "#join-room-input", ENTER).await;
    in_room(page, room).await;
    page.back().await.expect("back");
    in_room(page, "general").await;
}

/// Bob says `text` in the room he is in.
async fn bob_says(bob: &Client, text: &str) {
    type_into(bob, text).await;
    type_into(bob, ENTER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_room_on_one_device_clears_its_unread_badge_on_the_other() {
    let backend = start_backend_args(&["--jwt-secret", "s", "--dev-login"]).await;
    let driver = Driver::start().await;
    let laptop = driver.open_sized(&backend.url(), DESKTOP).await;
    let phone = driver.open_sized(&backend.url(), PHONE).await;
    let bob = driver.open_sized(&backend.url(), DESKTOP).await;
    for page in [&laptop, &phone, &bob] {
        connected_id(page).await;
    }
    dev_sign_in(&laptop, "ana", "Ana", "").await;
    dev_sign_in(&phone, "ana", "Ana", "").await;
    set_name(&bob, "Bob").await;
    type_in(&bob, "#join-room-input", "dev").await;
    type_in(&bob, "#join-room-input", ENTER).await;
    in_room(&bob, "dev").await;
    join_and_come_back(&laptop, "dev").await;
    // On a phone the rooms panel (with the join form) unfolds from its toggle, and folds
    // away again when the room changes.
    click(&phone, "#rooms-toggle").await;
    join_and_come_back(&phone, "dev").await;

    bob_says(&bob, "uno").await;
    bob_says(&bob, "dos").await;
    wait_history(&bob, &["Bob -> uno".to_owned(), "Bob -> dos".to_owned()]).await;
    unread_is(&laptop, "dev", "2").await;
    unread_is(&phone, "dev", "2").await;
    wait_text(&phone, "#rooms-toggle .unread", |s| s == "2").await;

    // Ana reads dev on the laptop: the phone's badge goes too.
    click(&laptop, "#rooms li[data-room='dev'] a").await;
    in_room(&laptop, "dev").await;
    wait_history(&laptop, &["Bob -> uno".to_owned(), "Bob -> dos".to_owned()]).await;
    unread_is(&laptop, "dev", "").await;
    unread_is(&phone, "dev", "").await;
    assert_eq!(text(&phone, "#rooms-toggle .unread").await, "");

    // Back in general on the laptop, one more line counts from the position on both; read on
    // the phone this time, it clears on the laptop.
    laptop.back().await.expect("back");
    in_room(&laptop, "general").await;
    bob_says(&bob, "tres").await;
    unread_is(&laptop, "dev", "1").await;
    unread_is(&phone, "dev", "1").await;
    click(&phone, "#rooms-toggle").await;
    click(&phone, "#rooms li[data-room='dev'] a").await;
    in_room(&phone, "dev").await;
    wait_history(
        &phone,
        &[
            "Bob -> uno".to_owned(),
            "Bob -> dos".to_owned(),
            "Bob -> tres".to_owned(),
        ],
    )
    .await;
    unread_is(&laptop, "dev", "").await;
}
