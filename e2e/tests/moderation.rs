//! Keeping a room civil, in real browsers against the real backend: an author edits their
//! line from the keyboard and every page shows it "(edited)"; a moderator (signed in through
//! the dev-login form with the role) removes someone's line and it disappears from two other
//! open pages and from a page opened afterwards; a moderator mutes one user (their composer
//! is disabled) and bans another (their page leaves the room, says so, and is refused it
//! after a reload and from another browser); the controls pass axe-core at both widths.

#![allow(missing_docs)]

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, assert_accessible, connected_id, dev_sign_in, history, js,
    press, resize, set_name, start_backend_args, type_in, type_into, wait_history, wait_text,
};
use fantoccini::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_edits_and_a_moderator_removes_a_line_on_every_open_page_and_later_ones() {
    let backend = start_backend_args(&["--jwt-secret", "s", "--dev-login"]).await;
    let driver = Driver::start().await;
    let ana = driver.open_sized(&backend.url(), DESKTOP).await;
    let bea = driver.open_sized(&backend.url(), DESKTOP).await;
    let moderator = driver.open_sized(&backend.url(), DESKTOP).await;
    for page in [&ana, &bea, &moderator] {
        connected_id(page).await;
    }
    set_name(&ana, "Ana").await;
    set_name(&bea, "Bea").await;
    dev_sign_in(&moderator, "mod", "Mod", "moderator").await;

    type_into(&ana, "hola").await;
    type_into(&ana, ENTER).await;
    type_into(&bea, "compren criptomonedas").await;
    type_into(&bea, ENTER).await;
    let lines = [
        "Ana -> hola".to_owned(),
        "Bea -> compren criptomonedas".to_owned(),
    ];
    for page in [&ana, &bea, &moderator] {
        wait_history(page, &lines).await;
    }

    // Ana edits her line from the keyboard: edit, type, Enter.
    press(&ana, "#history li.mine button.edit").await;
    let focused = js(&ana, "return document.activeElement.className;").await;
    assert_eq!(
        focused.as_str(),
        Some("edit-line"),
        "the edit box takes the focus"
    );
    type_in(&ana, "#history input.edit-line", " a todos").await;
    type_in(&ana, "#history input.edit-line", ENTER).await;
    let edited = [
        "Ana -> hola a todos (edited)".to_owned(),
        "Bea -> compren criptomonedas".to_owned(),
    ];
    for page in [&ana, &bea, &moderator] {
        wait_history(page, &edited).await;
    }
    // Guests see no moderator controls; the moderator does, on others' lines.
    for page in [&ana, &bea] {
        let count = js(
            page,
            "return document.querySelectorAll('button.moderate').length;",
        )
        .await;
        assert_eq!(count.as_u64(), Some(0));
    }
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&moderator, size).await;
        assert_accessible(&moderator, &format!("moderator's history, {width}")).await;
    }
    resize(&moderator, DESKTOP).await;

    // The moderator removes Bea's line (keyboard only).
    press(&moderator, "#history li:nth-child(2) button.moderate").await;
    let removed = [
        "Ana -> hola a todos (edited)".to_owned(),
        "Bea -> line removed".to_owned(),
    ];
    for page in [&ana, &bea, &moderator] {
        wait_history(page, &removed).await;
    }
    // A page opened afterwards shows the same, and the removed text is nowhere on it.
    let later = driver.open_sized(&backend.url(), DESKTOP).await;
    connected_id(&later).await;
    wait_history(&later, &removed).await;
    let body = js(&later, "return document.body.textContent;").await;
    assert!(
        !body.as_str().unwrap_or_default().contains("criptomonedas"),
        "the removed text is not on a later page"
    );
    assert_eq!(history(&later).await, removed);
    assert_accessible(&ana, "author's history after an edit, desktop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_page_cannot_send_and_a_banned_one_says_so_and_cannot_rejoin() {
    let backend = start_backend_args(&["--jwt-secret", "s", "--dev-login"]).await;
    let driver = Driver::start().await;
    let moderator = driver.open_sized(&backend.url(), DESKTOP).await;
    let bob = driver.open_sized(&backend.url(), DESKTOP).await;
    let ana = driver.open_sized(&backend.url(), PHONE).await;
    for page in [&moderator, &bob, &ana] {
        connected_id(page).await;
    }
    dev_sign_in(&moderator, "mod", "Mod", "moderator").await;
    dev_sign_in(&bob, "bob", "Bob", "").await;
    set_name(&ana, "Ana").await;
    type_into(&ana, "hola").await;
    type_into(&ana, ENTER).await;
    type_into(&bob, "spam spam").await;
    type_into(&bob, ENTER).await;
    let lines = ["Ana -> hola".to_owned(), "Bob -> spam spam".to_owned()];
    for page in [&moderator, &bob, &ana] {
        wait_history(page, &lines).await;
    }

    // The moderator mutes Ana (keyboard only): her composer is disabled and says why.
    press(&moderator, "#history li:nth-child(1) button.mute").await;
    wait_text(&ana, "#room-rule", |s| {
        s == "You are muted here for 10 more minutes: you can read, not send."
    })
    .await;
    let disabled = js(
        &ana,
        "return document.querySelector('#composer-input').disabled;",
    )
    .await;
    assert_eq!(disabled.as_bool(), Some(true));
    for (size, width) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        resize(&ana, size).await;
        assert_accessible(&ana, &format!("a muted page, {width}")).await;
    }

    // And bans Bob: his page leaves the room and says who did it.
    press(&moderator, "#history li:nth-child(2) button.ban").await;
    wait_text(&bob, "#notice", |s| s == "mod banned you from general.").await;
    wait_history(&bob, &[]).await;
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&bob, size).await;
        assert_accessible(&bob, &format!("a banned page, {width}")).await;
    }
    // The others still read; Bob's later lines never reach them.
    type_into(&moderator, "portaos bien").await;
    type_into(&moderator, ENTER).await;
    let after = [
        "Ana -> hola".to_owned(),
        "Bob -> spam spam".to_owned(),
        "Mod -> portaos bien".to_owned(),
    ];
    wait_history(&ana, &after).await;
    // Reloaded, or opened in another tab as the same user, his page is refused the room.
    bob.refresh().await.expect("reload");
    wait_text(&bob, "#notice", |s| {
        s == "You are banned from general: you may not join it."
    })
    .await;
    let other_tab = driver.open_sized(&backend.url(), DESKTOP).await;
    sign_in_refused_room(&other_tab).await;
    assert_eq!(history(&bob).await, Vec::<String>::new());
    assert_eq!(history(&ana).await, after);
}

/// Signs a fresh browser (another device) in as Bob, who is banned from `general`: it is
/// refused the room.
async fn sign_in_refused_room(page: &Client) {
    connected_id(page).await;
    type_in(page, "#dev-sub", "bob").await;
    type_in(page, "#dev-name", "Bob").await;
    type_in(page, "#dev-name", ENTER).await;
    wait_text(page, "#notice", |s| {
        s == "You are banned from general: you may not join it."
    })
    .await;
}
