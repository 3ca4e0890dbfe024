//! The transports lesson in a real browser, against the real server: the server's tick
//! arrives over polling, long polling, SSE and a WebSocket side by side; polling's delays
//! (every 2 s) are visibly larger than the WebSocket's, read from the page's own numbers;
//! each lane shows the requests it made and the bytes the server counted for it at its
//! socket, headers included (a request's head is hundreds of bytes; a WebSocket tick a few
//! dozen); its chart has a bar per tick; the page speaks Spanish and English, and axe-core
//! finds nothing at a desktop and a phone width.

#![allow(missing_docs)]

use std::time::Duration;

use e2e::{
    DESKTOP, Driver, PHONE, TIMEOUT, assert_accessible, click, js, resize, start_backend, text,
    texts,
};
use fantoccini::Client;
use serde_json::json;

const LANES: [&str; 4] = ["poll", "long-poll", "sse", "ws"];

/// A number the page shows: an element's attribute, or its text when `attr` is none.
async fn number(page: &Client, css: &str, attr: Option<&str>) -> Option<f64> {
    let script = format!(
        "const e = document.querySelector({}); if (!e) return null; \
         const v = {}; return v == null ? null : String(v);",
        json!(css),
        match attr {
            Some(attr) => format!("e.getAttribute({})", json!(attr)),
            None => "e.textContent".to_owned(),
        }
    );
    js(page, &script).await.as_str()?.trim().parse().ok()
}

/// Waits (up to twice [`TIMEOUT`]: polling is slow on purpose) until the number satisfies `ok`.
async fn wait_number(
    page: &Client,
    css: &str,
    attr: Option<&str>,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    loop {
        let now = number(page, css, attr).await;
        if let Some(n) = now.filter(|n| ok(*n)) {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css} {attr:?} never matched; it shows {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lane(kind: &str, what: &str) -> String {
    format!("[data-transport=\"{kind}\"] {what}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_transports_side_by_side_and_polling_waits_longer_than_the_websocket() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    let page = driver
        .open(&format!("http://{}/transports", backend.addr))
        .await;
    click(&page, "#lang-en").await;
    assert_eq!(
        js(&page, "return document.getElementById('poll-every').value").await,
        json!("2"),
        "polling every 2 s at first"
    );

    // Every lane gets ticks; polling's come in bunches, every 2 s.
    for kind in LANES {
        wait_number(&page, &lane(kind, ".events"), None, |n| n >= 8.0).await;
    }
    let mean = |kind: &'static str| {
        let page = &page;
        async move {
            number(page, &lane(kind, ".mean-delay"), Some("data-ms"))
                .await
                .expect("a mean delay")
        }
    };
    let (poll, long_poll, sse, ws) = (
        mean("poll").await,
        mean("long-poll").await,
        mean("sse").await,
        mean("ws").await,
    );
    // A tick waits up to 2 s for the next poll: about a second on average. Pushed, it
    // waits for nothing but the machine.
    assert!(
        poll > 300.0 && poll > ws * 3.0,
        "polling's delays ({poll} ms) are not visibly larger than the WebSocket's ({ws} ms)"
    );
    assert!(
        poll > sse && poll > long_poll,
        "poll {poll} ms, long poll {long_poll} ms, SSE {sse} ms"
    );
    // A bar per tick in each chart (up to 40), each with its delay.
    for kind in LANES {
        let bars = texts(&page, &lane(kind, ".delay-chart rect")).await.len();
        assert!(bars >= 8, "{kind}: {bars} bars");
    }

    // Requests and bytes, as the server counted them (refreshed every second).
    for kind in LANES {
        wait_number(&page, &lane(kind, ".requests"), None, |n| n >= 1.0).await;
        wait_number(&page, &lane(kind, ".bytes"), Some("data-out"), |n| n > 0.0).await;
    }
    let polls = wait_number(&page, &lane("poll", ".requests"), None, |n| n >= 3.0).await;
    let poll_in = number(&page, &lane("poll", ".bytes"), Some("data-in"))
        .await
        .expect("poll bytes in");
    assert!(
        poll_in / polls >= 200.0,
        "a browser's request head is hundreds of bytes: {poll_in} B over {polls} requests"
    );
    let ws_requests = number(&page, &lane("ws", ".requests"), None).await;
    assert_eq!(ws_requests, Some(1.0), "one WebSocket handshake");
    let long_polls = number(&page, &lane("long-poll", ".requests"), None)
        .await
        .expect("long polls");
    assert!(
        long_polls >= 4.0,
        "a long poll per tick or so: {long_polls}"
    );
    let ws_events = number(&page, &lane("ws", ".events"), None)
        .await
        .expect("ws events");
    let ws_out = number(&page, &lane("ws", ".bytes"), Some("data-out"))
        .await
        .expect("ws bytes out");
    let poll_out = number(&page, &lane("poll", ".bytes"), Some("data-out"))
        .await
        .expect("poll bytes out");
    // The handshake's 101 is a couple hundred bytes; after it a tick is a small frame,
    // while every poll's answer repeats its headers.
    assert!(
        (ws_out - 300.0) / ws_events < poll_out / polls,
        "WebSocket {ws_out} B for {ws_events} ticks, polling {poll_out} B for {polls} answers"
    );

    // Polling's interval can be changed; out-of-range values are not taken.
    js(
        &page,
        "const e = document.getElementById('poll-every'); e.value = '1'; \
         e.dispatchEvent(new Event('change'));",
    )
    .await;
    js(
        &page,
        "const e = document.getElementById('poll-every'); e.value = '0'; \
         e.dispatchEvent(new Event('change'));",
    )
    .await;
    let shown = js(&page, "return document.getElementById('poll-every').value").await;
    assert_eq!(shown, json!("1"), "0 s is refused, 1 s kept");

    // Spanish, then English again.
    click(&page, "#lang-es").await;
    assert_eq!(text(&page, &lane("poll", "h3")).await, "Sondeo");
    assert_eq!(text(&page, &lane("long-poll", "h3")).await, "Sondeo largo");
    assert!(
        text(&page, &lane("ws", ".hint"))
            .await
            .contains("solución óptima")
    );
    click(&page, "#lang-en").await;
    assert_eq!(text(&page, &lane("poll", "h3")).await, "Polling");

    resize(&page, DESKTOP).await;
    assert_accessible(&page, "transports, desktop").await;
    let shot = page.screenshot().await.expect("a screenshot");
    let out = e2e::workspace_root().join("target/transports.png");
    std::fs::write(&out, shot).expect("write the screenshot");
    resize(&page, PHONE).await;
    assert_accessible(&page, "transports, phone").await;
    page.close().await.expect("close");
    backend.stop().await;
}
