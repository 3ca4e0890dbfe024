//! The operator's console (`/admin`) in a real browser against the real backend: a sign-in
//! screen that refuses a wrong key and says why; with the API key, charts that move while a
//! load runs (checked on the charts' own data points: the polylines' `points`), the rooms
//! table sorted and filtered from the keyboard; a room's page deleting a line (gone from an
//! open chat page) and kicking a guest (who is told); a signed-in user found and
//! disconnected; axe-core clean on every screen at desktop and phone widths. The README's
//! screenshot of the console is taken here.

#![allow(missing_docs)]

use std::time::Duration;

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, TIMEOUT, assert_accessible, js, press, resize, text, texts,
    type_in, wait_text,
};
use fantoccini::Client;
use testkit::TestServer;

const KEY: &str = "console-k3y";

/// The data points of the chart of `series`: each `(x, y)` of its polyline.
async fn points(page: &Client, series: &str) -> Vec<(f64, f64)> {
    let script = format!(
        "const p = document.querySelector(\"[data-series='{series}'] polyline\"); \
         return p ? p.getAttribute('points') || '' : '';"
    );
    let points = js(page, &script).await;
    points
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pair| {
            let (x, y) = pair.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

/// Waits until the chart of `series` draws some point above its floor (a value above zero:
/// the floor is y = 98 of 100).
async fn chart_rises(page: &Client, series: &str) -> Vec<(f64, f64)> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let drawn = points(page, series).await;
        if drawn.iter().any(|&(_, y)| y < 97.0) {
            return drawn;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {series} chart never moved: {drawn:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A load on `server` until `stop` says so: one talker saying a line at a time (each
/// waited for) to three readers in `general`, and one reader in `dev`.
async fn run_load(
    server: &TestServer,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(server.client_in(&["general"]).await);
    }
    readers.push(server.client_in(&["dev"]).await);
    let mut talker = server.client_in(&["general"]).await;
    tokio::spawn(async move {
        let mut n = 0u64;
        while !*stop.borrow() {
            n += 1;
            let nonce = format!("load-{n}");
            talker
                .send_with_nonce(&format!("load line {n}"), &nonce)
                .await;
            talker.recv_ack_of(&nonce).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(readers);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_with_the_key_and_its_charts_move_under_load() {
    // The load says some fifty lines a second from one connection: over the send limits.
    let backend = e2e::start_backend_args(&[
        "--api-key",
        KEY,
        "--jwt-secret",
        "s",
        "--dev-login",
        "--send-rate",
        "1000",
        "--send-burst",
        "1000",
        "--ip-send-rate",
        "1000",
        "--ip-send-burst",
        "1000",
    ])
    .await;
    let driver = Driver::start().await;
    let page = driver
        .open_sized(&format!("{}admin", backend.url()), DESKTOP)
        .await;

    // Without a key: the sign-in screen, and no data.
    wait_text(&page, "#console-sign-in h2", |s| s == "Sign in").await;
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&page, size).await;
        assert_accessible(&page, &format!("console sign-in, {width}")).await;
    }
    resize(&page, DESKTOP).await;
    // A wrong key is refused, and the screen says why.
    type_in(&page, "#console-key", "not-the-key").await;
    type_in(&page, "#console-key", ENTER).await;
    wait_text(&page, "#console-key-problem", |s| s.contains("401")).await;

    // The right key, from the keyboard: the console, live.
    let field = page
        .find(fantoccini::Locator::Css("#console-key"))
        .await
        .expect("the key field");
    field.clear().await.expect("clear the field");
    type_in(&page, "#console-key", KEY).await;
    type_in(&page, "#console-key", ENTER).await;
    wait_text(&page, "#console-live", |s| s == "live").await;
    let titles = texts(&page, ".chart .chart-title").await;
    assert_eq!(
        titles,
        [
            "Connections",
            "Lines",
            "Deliveries",
            "Bytes out",
            "Outbox backlog",
            "Closed as slow",
            "Commit latency",
            "Memory (RSS)",
            "CPU"
        ]
    );
    let before = points(&page, "lines").await;

    // A load runs: lines, deliveries, bytes out and connections rise on the charts.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = run_load(&backend, stopped).await;
    for series in ["lines", "deliveries", "bytes_out", "connections"] {
        chart_rises(&page, series).await;
    }
    let during = points(&page, "lines").await;
    assert!(
        during.len() > before.len(),
        "a point a second: {} then {}",
        before.len(),
        during.len()
    );
    let now = text(&page, "[data-series='connections'] .chart-now").await;
    assert!(
        now.parse::<u32>().is_ok_and(|n| n >= 5),
        "five connections of the load (and none of the console's own): {now:?}"
    );

    // The servers: this one alone, following both rooms of the load.
    wait_text(
        &page,
        "#console-nodes tr[data-node='this server'] td:last-child",
        |s| s == "dev, general",
    )
    .await;

    // The rooms table: both rooms, busiest first; sorted by name from the keyboard.
    wait_text(&page, "#console-rooms tbody tr[data-room='dev'] th", |s| {
        s == "dev"
    })
    .await;
    assert_eq!(
        texts(&page, "#console-rooms tbody th").await,
        ["general", "dev"],
        "by connections, most first"
    );
    press(&page, "#console-rooms th[data-column='room'] button").await;
    wait_text(&page, "#console-rooms tbody th", |s| s == "dev").await;
    let sorted = js(
        &page,
        "return document.querySelector(\"#console-rooms th[data-column='room']\").getAttribute('aria-sort');",
    )
    .await;
    assert_eq!(sorted.as_str(), Some("ascending"));
    type_in(&page, "#rooms-filter", "gen").await;
    wait_text(&page, "#console-rooms tbody th", |s| s == "general").await;
    assert_eq!(texts(&page, "#console-rooms tbody th").await, ["general"]);

    // The README's screenshot, while the load runs, from the top.
    js(&page, "window.scrollTo(0, 0); return null;").await;
    let shot = page.screenshot().await.expect("screenshot");
    e2e::side_by_side(
        &[shot],
        &e2e::workspace_root().join("target/e2e/console.png"),
    );
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&page, size).await;
        assert_accessible(&page, &format!("console, {width}")).await;
    }
    stop.send_replace(true);
    load.await.expect("the load ran");

    // A room's page: a chat page in general is among its members; the console deletes the
    // newest line (it goes from the chat page too) and kicks the chat page's guest (who is
    // told), each in the room's audit.
    let chat = driver.open_sized(&backend.url(), DESKTOP).await;
    let chat_id = e2e::connected_id(&chat).await;
    e2e::set_name(&chat, "Chato").await;
    resize(&page, DESKTOP).await;
    type_in(&page, "#rooms-filter", "\u{E003}\u{E003}\u{E003}").await;
    press(
        &page,
        "#console-rooms tr[data-room='general'] button.open-room",
    )
    .await;
    wait_text(&page, "#room-title", |s| s == "Room general").await;
    wait_text(
        &page,
        &format!("#room-members tr[data-member='{chat_id}'] th"),
        |s| s == "Chato",
    )
    .await;
    let newest = js(
        &page,
        "const l = document.querySelectorAll('#room-lines li'); \
         return l.length ? l[l.length - 1].dataset.seq : null;",
    )
    .await;
    let newest = newest.as_str().expect("lines are shown").to_owned();
    let text_of_newest = text(
        &page,
        &format!("#room-lines li[data-seq='{newest}'] .line-text"),
    )
    .await;
    let (_, said) = text_of_newest.split_once(" -> ").expect("name -> text");
    let said = said.to_owned();
    let shown = e2e::history(&chat).await;
    assert!(
        shown.iter().any(|l| l.ends_with(&said)),
        "{said:?} in {shown:?}"
    );
    press(
        &page,
        &format!("#room-lines li[data-seq='{newest}'] button.delete"),
    )
    .await;
    wait_text(
        &page,
        &format!("#room-lines li[data-seq='{newest}'] .line-text"),
        |s| s.ends_with("line removed"),
    )
    .await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let shown = e2e::history(&chat).await;
        if !shown.iter().any(|l| l.ends_with(&said))
            && shown.iter().any(|l| l.ends_with("line removed"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chat page still shows {said:?}: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    press(
        &page,
        &format!("#room-members tr[data-member='{chat_id}'] button.kick"),
    )
    .await;
    wait_text(&chat, "#notice", |s| {
        s == "api removed you from general. You may join it again."
    })
    .await;
    wait_text(&page, "#room-audit tbody tr:first-child", |s| {
        s.contains("kick")
    })
    .await;
    let audit = texts(&page, "#room-audit tbody tr").await;
    assert!(
        audit
            .iter()
            .any(|r| r.contains("delete") && r.contains(&newest)),
        "{audit:?}"
    );
    let shot = page.screenshot().await.expect("screenshot");
    e2e::side_by_side(
        &[shot],
        &e2e::workspace_root().join("target/e2e/console-room.png"),
    );
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&page, size).await;
        assert_accessible(&page, &format!("console, a room's page, {width}")).await;
    }
    resize(&page, DESKTOP).await;

    // Users and sessions: a signed-in user found by id, with their connection, then
    // disconnected from the console (their page is told, and stays out).
    let ana = driver.open_sized(&backend.url(), DESKTOP).await;
    e2e::connected_id(&ana).await;
    e2e::dev_sign_in(&ana, "ana", "Ana", "").await;
    type_in(&page, "#people-query", "ana").await;
    type_in(&page, "#people-query", ENTER).await;
    wait_text(
        &page,
        "#people-found tr[data-user='ana'] td:nth-of-type(4)",
        |s| s == "1",
    )
    .await;
    assert_eq!(texts(&page, "#people-found tbody th").await, ["ana"]);
    press(&page, "#people-found tr[data-user='ana'] button.disconnect").await;
    wait_text(&ana, "#sign-in-notice", |s| {
        s.starts_with("You were signed out by the server.")
    })
    .await;
    wait_text(&page, "#people-notice", |s| s == "disconnect: ana, done.").await;
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(&page, size).await;
        assert_accessible(&page, &format!("console, users and sessions, {width}")).await;
    }
}
