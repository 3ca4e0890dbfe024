//! Keeping a room civil, in real browsers against the real backend: an author edits their
//! line from the keyboard and every page shows it "(edited)"; a moderator (signed in through
//! the dev-login form with the role) removes someone's line and it disappears from two other
//! open pages and from a page opened afterwards; the controls pass axe-core at both widths.

#![allow(missing_docs)]

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, assert_accessible, connected_id, history, js, resize, set_name,
    start_backend_args, type_in, type_into, wait_history, wait_text,
};
use fantoccini::{Client, Locator};

/// Focuses `css` and presses Enter on it: a button used from the keyboard alone.
async fn press(page: &Client, css: &str) {
    let button = page
        .wait()
        .at_most(e2e::TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    button.send_keys(ENTER).await.expect("Enter on the button");
}

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
    type_in(&moderator, "#dev-sub", "mod").await;
    type_in(&moderator, "#dev-name", "Mod").await;
    type_in(&moderator, "#dev-roles", "moderator").await;
    type_in(&moderator, "#dev-roles", ENTER).await;
    wait_text(&moderator, "#signed-in", |s| s == "Signed in as Mod (mod)").await;
    connected_id(&moderator).await;

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
