//! What a first visit costs, measured in headless Chromium against the real server: the bytes
//! transferred for the page and each of its files (Resource Timing), and how long a page
//! opening on a 1,000-line history takes to show its last line after the welcome (User
//! Timing marks the page sets). Prints the numbers
//! (`cargo test -p e2e --test page_weight -- --nocapture`); asserts only that compression is
//! in effect and the last line shows, not a size or a time.

#![allow(missing_docs)]

use e2e::{DESKTOP, Driver, connected_id, js, start_backend, start_backend_with, wait_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_visit_transfers_the_page_compressed() {
    let backend = start_backend(None, None).await;
    let driver = Driver::start().await;
    let page = driver.open_sized(&backend.url(), DESKTOP).await;
    connected_id(&page).await;
    let entries = js(
        &page,
        r#"
        const nav = performance.getEntriesByType('navigation')[0];
        const all = [nav, ...performance.getEntriesByType('resource')];
        return all.map(e => [e.name.split('/').pop() || '/', e.transferSize, e.encodedBodySize, e.decodedBodySize]);
        "#,
    )
    .await;
    let entries: Vec<(String, u64, u64, u64)> =
        serde_json::from_value(entries).expect("resource timings");
    println!("first visit, headless Chromium (bytes):");
    println!(
        "{:<45} {:>10} {:>10} {:>10}",
        "file", "transfer", "encoded", "decoded"
    );
    let mut total = 0;
    for (name, transfer, encoded, decoded) in &entries {
        println!("{name:<45} {transfer:>10} {encoded:>10} {decoded:>10}");
        total += transfer;
    }
    println!("{:<45} {total:>10}", "total transferred");
    let wasm = entries
        .iter()
        .find(|(name, ..)| name.ends_with(".wasm"))
        .expect("the page loaded its wasm");
    assert!(
        wasm.2 * 2 < wasm.3,
        "the wasm came compressed (encoded {} of {} bytes)",
        wasm.2,
        wasm.3
    );
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_opening_on_a_1000_line_history_shows_its_last_line_soon_after_the_welcome() {
    let backend = start_backend_with(None, None, |config| {
        *config = backend::Config {
            dist: config.dist.clone(),
            store: config.store.clone(),
            ..testkit::unlimited()
        };
    })
    .await;
    let mut writer = backend.client().await;
    for n in 1..=1_000 {
        writer
            .send_with_nonce(&format!("line {n}"), &format!("n{n}"))
            .await;
    }
    // The last one is stored once its ack is back.
    writer.recv_ack_of("n1000").await;
    let driver = Driver::start().await;
    let page = driver.open_sized(&backend.url(), DESKTOP).await;
    wait_text(&page, "#history li:last-child", |s| {
        s.ends_with("-> line 1000")
    })
    .await;
    let timing = js(
        &page,
        r#"
        const at = name => performance.getEntriesByName(name)[0]?.startTime ?? null;
        return [at('charla:welcome'), at('charla:joined-shown'),
                document.querySelectorAll('#history li').length];
        "#,
    )
    .await;
    let (welcome, shown, lines): (Option<f64>, Option<f64>, u64) =
        serde_json::from_value(timing).expect("marks");
    let (welcome, shown) = (
        welcome.expect("the page marks its welcome"),
        shown.expect("the page marks its history shown"),
    );
    println!("a page opening on 1,000 lines ({lines} shown, the latest page):");
    println!("  welcome arrived            {welcome:>8.1} ms after navigation");
    println!("  last line shown            {shown:>8.1} ms after navigation");
    println!("  welcome → last line shown  {:>8.1} ms", shown - welcome);
    assert!(shown >= welcome);
    backend.stop().await;
}
