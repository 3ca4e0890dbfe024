//! The whole product in real browsers: two (then three) headless Chromium sessions, driven by
//! WebDriver, against the real backend serving the trunk build in `dist/`.
//!
//! Needs `chromedriver` and Chromium (`scripts/setup.sh --browser` installs them) and a built
//! page (`trunk build --release --offline`); `scripts/test.sh` does all of it.

#![allow(missing_docs)]

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// How long the page may take to show something before the test fails.
const TIMEOUT: Duration = Duration::from_secs(15);
const ENTER: &str = "\u{E007}";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The real server, in this process, serving the trunk build.
struct Backend {
    addr: SocketAddr,
    data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Backend {
    /// Starts on a fresh port with a fresh data directory.
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "charla-e2e-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        Self::start_at("127.0.0.1:0".parse().expect("addr"), &dir).await
    }

    /// Starts on `addr` (reusing a port a stopped server just left) over `data_dir`.
    async fn start_at(addr: SocketAddr, data_dir: &Path) -> Self {
        let dist = workspace_root().join("dist");
        assert!(
            dist.join("index.html").is_file(),
            "no page in {}: run `trunk build --release --offline` first (scripts/test.sh does)",
            dist.display()
        );
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(addr).expect("bind");
        let listener = socket.listen(1024).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let config = backend::Config {
            dist,
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(backend::serve(listener, config, async {
            let _ = rx.await;
        }));
        Backend {
            addr,
            data_dir: data_dir.to_path_buf(),
            shutdown: Some(tx),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(TIMEOUT, &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("serve ok");
    }
}

/// A chromedriver on a free port, killed when dropped (even when the test fails).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver on PATH (scripts/setup.sh --browser installs it)");
        let driver = Driver { child, port };
        let deadline = Instant::now() + TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new headless Chromium session showing `url`.
    async fn open(&self, url: &str) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=520,760",
        ];
        let chromium = std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into());
        let mut options = json!({ "args": args });
        if Path::new(&chromium).exists() {
            options["binary"] = json!(chromium);
        }
        let caps = json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session");
        client.goto(url).await.expect("page loads");
        client
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` in the page and returns its result.
async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect("script runs")
}

async fn text(client: &Client, css: &str) -> String {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.textContent : null;",
        json!(css)
    );
    js(client, &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn history(client: &Client) -> Vec<String> {
    let value = js(
        client,
        "return Array.from(document.querySelectorAll('#history li')).map(li => li.textContent);",
    )
    .await;
    serde_json::from_value(value).expect("an array of strings")
}

/// Waits (polling the DOM, up to [`TIMEOUT`]) until `css`'s text satisfies `ok`.
async fn wait_text(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = text(client, css).await;
        if ok(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never matched; it shows {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn wait_history(client: &Client, expected: &[String]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = history(client).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "history is {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn connected_id(client: &Client) -> String {
    wait_text(client, "#conn-state", |s| s == "connected").await;
    let id = text(client, "#my-id").await;
    assert_eq!(id.len(), 16, "the page shows its server-given id");
    id
}

async fn type_into(client: &Client, keys: &str) {
    let input = client
        .find(Locator::Css("#composer-input"))
        .await
        .expect("the input box");
    input.send_keys(keys).await.expect("typing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_type_send_and_a_third_sees_the_history() {
    let mut backend = Backend::start().await;
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    let bob = driver.open(&backend.url()).await;
    let alice_id = connected_id(&alice).await;
    let bob_id = connected_id(&bob).await;
    assert_ne!(alice_id, bob_id);
    wait_text(&alice, "#online", |s| s == "2 online").await;
    wait_text(&bob, "#online", |s| s == "2 online").await;

    // Typing shows, keystroke by keystroke, on both pages, labelled with the typist.
    type_into(&alice, "hola mundo").await;
    for page in [&bob, &alice] {
        wait_text(page, ".live-text", |s| s == "hola mundo").await;
        assert!(text(page, "#live .who").await.starts_with(&alice_id));
    }

    // Enter sends: the line shows with the sender's id on both; the box and paragraph clear.
    type_into(&alice, ENTER).await;
    let mut expected = vec![format!("{alice_id} -> hola mundo")];
    wait_history(&alice, &expected).await;
    wait_history(&bob, &expected).await;
    let value = js(
        &alice,
        "return document.querySelector('#composer-input').value;",
    )
    .await;
    assert_eq!(value, json!(""));
    wait_text(&bob, "#live", |s| s == "Nobody is typing.").await;

    // The Send button works too, and both pages keep the same order.
    type_into(&bob, "second line").await;
    bob.find(Locator::Css("#send"))
        .await
        .expect("send button")
        .click()
        .await
        .expect("click");
    expected.push(format!("{bob_id} -> second line"));
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
        .find(Locator::Css("#composer-input"))
        .await
        .expect("input")
        .clear()
        .await
        .expect("clear");

    // Markup is shown as text and never runs, on the sender's page and on others'.
    let evil = r#"<img src=x onerror="window.__charla_xss=1">"#;
    type_into(&alice, evil).await;
    type_into(&alice, ENTER).await;
    expected.push(format!("{alice_id} -> {evil}"));
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
    wait_text(&alice, ".live-text", |s| s.ends_with("every page")).await;
    let shots = [
        alice.screenshot().await.expect("screenshot"),
        bob.screenshot().await.expect("screenshot"),
    ];
    let out = workspace_root().join("target/e2e/two-tabs.png");
    side_by_side(&shots, &out);

    alice.close().await.expect("close alice");
    bob.close().await.expect("close bob");
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_sent_while_the_server_is_down_arrives_once_when_it_is_back() {
    let mut backend = Backend::start().await;
    let driver = Driver::start().await;
    let alice = driver.open(&backend.url()).await;
    let bob = driver.open(&backend.url()).await;
    let alice_id = connected_id(&alice).await;
    connected_id(&bob).await;
    type_into(&alice, "before the outage").await;
    type_into(&alice, ENTER).await;
    let mut expected = vec![format!("{alice_id} -> before the outage")];
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
    // themselves, Alice keeps her id, and her line is delivered exactly once.
    let backend = Backend::start_at(backend.addr, &backend.data_dir.clone()).await;
    expected.push(format!("{alice_id} -> sent while offline"));
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
}

/// Writes the PNG screenshots next to each other, with a gap, as one PNG.
fn side_by_side(shots: &[Vec<u8>], out: &Path) {
    const GAP: usize = 16;
    let images: Vec<(usize, usize, Vec<u8>)> = shots.iter().map(|png| rgba(png)).collect();
    let height = images.iter().map(|(_, h, _)| *h).max().unwrap_or(0);
    let width = images.iter().map(|(w, _, _)| *w).sum::<usize>() + GAP * (images.len() + 1);
    let mut canvas = vec![0x55u8; width * height * 4];
    let mut x0 = GAP;
    for (w, h, pixels) in &images {
        for y in 0..*h {
            let dst = (y * width + x0) * 4;
            canvas[dst..dst + w * 4].copy_from_slice(&pixels[y * w * 4..(y + 1) * w * 4]);
        }
        x0 += w + GAP;
    }
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(out).expect("create screenshot");
    let mut encoder = png::Encoder::new(
        std::io::BufWriter::new(file),
        u32::try_from(width).expect("width"),
        u32::try_from(height).expect("height"),
    );
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&canvas).expect("png data");
    eprintln!("screenshot of two tabs: {}", out.display());
}

/// Decodes an 8-bit RGB or RGBA PNG into RGBA pixels.
fn rgba(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut reader = png::Decoder::new(png_bytes).read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let pixels = match info.color_type {
        png::ColorType::Rgba => buf[..w * h * 4].to_vec(),
        png::ColorType::Rgb => buf[..w * h * 3]
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    (w, h, pixels)
}
