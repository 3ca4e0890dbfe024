//! The exercise pages in real browsers, against the real server: the echo round trip (and
//! "DISCONNECTED" / "¡¡DESCONECTADO!!" while the server is down), tics and JSON echoes, a
//! 64 KiB binary frame verified by the page, random numbers arriving and stopping, and the
//! live product list in two browsers (a product created by an HTTP POST shows in both; one
//! deleted from one page disappears from the other). Pages in Spanish and in English; axe-core
//! at a desktop and a phone width on every page.

#![allow(missing_docs)]

use std::time::Duration;

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, TIMEOUT, assert_accessible, click, js, resize, start_backend,
    text, texts, type_in, wait_text, wait_texts,
};
use fantoccini::{Client, Locator};
use testkit::{TestServer, metric, request};

/// Waits until the JSON socket is connected (the status pill, in either language).
async fn json_connected(page: &Client) {
    wait_text(page, "#conn-state", |s| {
        s == "connected" || s == "conectado"
    })
    .await;
}

/// Switches the page's language with its switch, as a person would.
async fn switch_to(page: &Client, lang: &str) {
    click(page, &format!("#lang-{lang}")).await;
    let root = js(page, "return document.documentElement.lang").await;
    assert_eq!(root.as_str(), Some(lang));
}

/// Asserts no accessibility violation at a desktop and a phone width.
async fn accessible_at_both_widths(page: &Client, label: &str) {
    resize(page, DESKTOP).await;
    assert_accessible(page, &format!("{label}, desktop")).await;
    resize(page, PHONE).await;
    assert_accessible(page, &format!("{label}, phone")).await;
    resize(page, DESKTOP).await;
}

/// How many elements `css` matches.
async fn count(page: &Client, css: &str) -> usize {
    page.find_all(Locator::Css(css))
        .await
        .map_or(0, |v| v.len())
}

/// Waits until `css` matches at least `n` elements.
async fn wait_count(page: &Client, css: &str, n: usize) -> usize {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let now = count(page, css).await;
        if now >= n {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css}: {now} of {n} elements"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/metrics` until `name` reads `value`.
async fn await_metric(server: &TestServer, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (_, body) = server.get("/metrics").await;
        if metric(&body, name) == Some(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never read {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trip_then_disconnected_in_spanish_and_back() {
    let backend = start_backend(None, None).await;
    let addr = backend.addr;
    let driver = Driver::start().await;
    let page = driver
        .open_sized(&format!("{}echo", backend.url()), DESKTOP)
        .await;
    wait_text(&page, "#echo-state", |s| s == "Connected").await;
    // The keyboard alone: focus the button and press Enter, twice.
    let button = page
        .find(Locator::Css("#echo-send"))
        .await
        .expect("the send button");
    button.send_keys(ENTER).await.expect("enter");
    wait_texts(&page, "#echoes li", &["Mensaje 1".to_owned()]).await;
    button.send_keys(ENTER).await.expect("enter");
    wait_texts(
        &page,
        "#echoes li",
        &["Mensaje 1".to_owned(), "Mensaje 2".to_owned()],
    )
    .await;
    // What came back shows in blue.
    let color = js(
        &page,
        "return getComputedStyle(document.querySelector('#echoes li')).color",
    )
    .await;
    let color = color.as_str().unwrap_or_default().to_owned();
    let rgb: Vec<u32> = color
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    assert!(
        rgb.len() == 3 && rgb[2] > rgb[0] + 60 && rgb[2] > rgb[1] + 40,
        "blue: {color}"
    );
    accessible_at_both_widths(&page, "echo page, English").await;

    // In Spanish, the server goes away: ¡¡DESCONECTADO!!; it comes back: the page reconnects.
    switch_to(&page, "es").await;
    wait_text(&page, "#echo-state", |s| s == "Conectado").await;
    let data_dir = backend.data_dir.clone();
    backend.stop().await;
    wait_text(&page, "#echo-state", |s| s == "¡¡DESCONECTADO!!").await;
    accessible_at_both_widths(&page, "echo page, Spanish, disconnected").await;
    let backend = e2e::start_backend(Some(addr), Some(&data_dir)).await;
    wait_text(&page, "#echo-state", |s| s == "Conectado").await;
    click(&page, "#echo-send").await;
    wait_texts(
        &page,
        "#echoes li",
        &[
            "Mensaje 1".to_owned(),
            "Mensaje 2".to_owned(),
            "Mensaje 3".to_owned(),
        ],
    )
    .await;
    // Switching back is remembered across a reload.
    switch_to(&page, "en").await;
    page.refresh().await.expect("reload");
    wait_text(&page, "#echo-state", |s| s == "Connected").await;
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tics_json_echoes_and_a_64_kib_binary_frame_verified_in_the_page() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    let page = driver
        .open_sized(&format!("{}echo", backend.url()), DESKTOP)
        .await;
    json_connected(&page).await;

    click(&page, "#tic-toggle").await;
    wait_text(&page, "#tic-last", |s| s == "Last sent: TIC-2").await;
    click(&page, "#tic-toggle").await;
    let stopped_at = text(&page, "#tic-last").await;

    type_in(&page, "#json-echo-input", "hola").await;
    type_in(&page, "#json-echo-input", ENTER).await;
    wait_texts(&page, "#json-echoes li", &["hola".to_owned()]).await;
    // No tic was echoed: the only JSON echo is the message's.
    assert_eq!(texts(&page, "#json-echoes li").await, ["hola"]);

    for (button, size) in [("#binary-65536", 65_536), ("#binary-256", 256)] {
        click(&page, button).await;
        let shown = wait_text(&page, "#binary-result", |s| {
            s.starts_with(&format!("{size} bytes"))
        })
        .await;
        assert!(shown.ends_with("verified ✓"), "{shown}");
        let class = js(
            &page,
            "return document.querySelector('#binary-result').className",
        )
        .await;
        assert_eq!(class.as_str(), Some("verified"));
    }
    assert_eq!(
        text(&page, "#tic-last").await,
        stopped_at,
        "no tic after the stop"
    );
    accessible_at_both_widths(&page, "echo page with results").await;
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_numbers_arrive_every_interval_and_stop() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    let page = driver
        .open_sized(&format!("{}random", backend.url()), DESKTOP)
        .await;
    json_connected(&page).await;
    wait_text(&page, "#greeting", |s| s.contains("Hola cliente WS!")).await;
    accessible_at_both_widths(&page, "random page, stopped").await;

    // Too fast is refused by the form itself.
    let input = page
        .find(Locator::Css("#ticker-ms"))
        .await
        .expect("interval");
    input.clear().await.expect("clear");
    input.send_keys("50").await.expect("type");
    input.send_keys(ENTER).await.expect("enter");
    wait_text(&page, "#ticker-state", |s| s == "Stopped").await;
    let invalid = js(
        &page,
        "return document.querySelector('#ticker-ms').getAttribute('aria-invalid')",
    )
    .await;
    assert_eq!(invalid.as_str(), Some("true"));

    input.clear().await.expect("clear");
    input.send_keys("100").await.expect("type");
    input.send_keys(ENTER).await.expect("enter");
    wait_text(&page, "#ticker-state", |s| s == "A number every 100 ms").await;
    wait_count(&page, "#randoms li", 5).await;
    for n in texts(&page, "#randoms li").await {
        let n: u32 = n.parse().expect("a number");
        assert!((1..=1000).contains(&n), "{n}");
    }
    await_metric(&backend, "charla_tickers", 1.0).await;
    // Change the interval while it runs: still one ticker.
    input.clear().await.expect("clear");
    input.send_keys("200").await.expect("type");
    click(&page, "#ticker-start").await;
    wait_text(&page, "#ticker-state", |s| s == "A number every 200 ms").await;
    await_metric(&backend, "charla_tickers", 1.0).await;
    accessible_at_both_widths(&page, "random page, running").await;

    click(&page, "#ticker-stop").await;
    wait_text(&page, "#ticker-state", |s| s == "Stopped").await;
    await_metric(&backend, "charla_tickers", 0.0).await;
    let after_stop = count(&page, "#randoms li").await;
    // Starting again later, and leaving the page, stops it on the server too.
    click(&page, "#ticker-start").await;
    await_metric(&backend, "charla_tickers", 1.0).await;
    click(&page, "#site-nav a[href='/echo']").await;
    wait_text(&page, "#echo-title", |s| s == "Echo").await;
    await_metric(&backend, "charla_tickers", 0.0).await;
    assert!(after_stop >= 5);
    backend.stop().await;
}

/// The product titles in the table `css`, in order.
async fn titles(page: &Client, table: &str) -> Vec<String> {
    texts(page, &format!("{table} td.title")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_posted_over_http_shows_in_two_browsers_and_a_delete_in_one_reaches_the_other() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    let live = format!("{}realtimeproducts", backend.url());
    let alice = driver.open_sized(&live, DESKTOP).await;
    let bob = driver.open_sized(&live, PHONE).await;
    switch_to(&bob, "es").await;
    for page in [&alice, &bob] {
        json_connected(page).await;
    }
    wait_text(&alice, "#live-title", |s| s == "Live products").await;
    wait_text(&bob, "#live-title", |s| s == "Productos en tiempo real").await;

    // The "emit inside the POST": a curl-like request updates both pages.
    let addr = backend.addr;
    let post = |body: &'static str| async move {
        request(
            addr,
            "POST",
            "/api/products",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await
    };
    let created = post(
        r#"{"title":"Mate","description":"Calabaza","code":"MATE-01","price":12.5,"stock":3}"#,
    )
    .await;
    assert_eq!(created.status, 201);
    for page in [&alice, &bob] {
        wait_texts(page, "#live-products td.title", &["Mate".to_owned()]).await;
    }

    // Alice adds one with the page's form, keyboard only; both see it, after Mate.
    for (field, value) in [
        ("title", "Yerba"),
        ("description", "1 kg"),
        ("code", "YERBA-1"),
        ("price", "4,75"),
        ("stock", "10"),
    ] {
        type_in(&alice, &format!("#product-{field}"), value).await;
    }
    type_in(&alice, "#product-stock", ENTER).await;
    let both = ["Mate".to_owned(), "Yerba".to_owned()];
    for page in [&alice, &bob] {
        wait_texts(page, "#live-products td.title", &both).await;
    }
    wait_text(&alice, "#product-form-state", |s| s.starts_with("Product ")).await;
    assert_eq!(
        js(
            &alice,
            "return document.querySelector('#product-title').value"
        )
        .await
        .as_str(),
        Some(""),
        "the form empties once saved"
    );

    // A bad form shows each field's problem (Bob, in Spanish) and sends nothing.
    type_in(&bob, "#product-title", "Termo").await;
    type_in(&bob, "#product-price", "-1").await;
    type_in(&bob, "#product-price", ENTER).await;
    wait_text(&bob, "#product-price-error", |s| s == "Debe ser 0 o más.").await;
    wait_text(&bob, "#product-code-error", |s| {
        s == "No puede estar vacío."
    })
    .await;
    accessible_at_both_widths(&bob, "live products, Spanish, with field errors").await;
    // A taken code is refused by the server, named on its field.
    for (field, value) in [("description", "1 l"), ("code", "MATE-01"), ("stock", "1")] {
        type_in(&bob, &format!("#product-{field}"), value).await;
    }
    let price = bob
        .find(Locator::Css("#product-price"))
        .await
        .expect("price");
    price.clear().await.expect("clear");
    price.send_keys("30").await.expect("type");
    price.send_keys(ENTER).await.expect("enter");
    wait_text(&bob, "#product-code-error", |s| {
        s == "Otro producto ya tiene este código."
    })
    .await;

    // Bob deletes Mate from his page: it disappears from Alice's.
    click(&bob, "#live-products tr:first-child button.delete").await;
    for page in [&alice, &bob] {
        wait_texts(page, "#live-products td.title", &["Yerba".to_owned()]).await;
    }
    accessible_at_both_widths(&alice, "live products, English").await;

    // The plain list shows the same products in the same order.
    alice
        .goto(&format!("{}products", backend.url()))
        .await
        .expect("products page");
    wait_texts(&alice, "#products-table td.title", &["Yerba".to_owned()]).await;
    assert_eq!(
        titles(&alice, "#products-table").await,
        titles(&bob, "#live-products").await
    );
    accessible_at_both_widths(&alice, "products page").await;
    backend.stop().await;
}
