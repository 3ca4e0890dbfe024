//! Browser support for the end-to-end tests in `tests/`: a chromedriver on a free port, headless
//! Chromium sessions, DOM polling with a deadline, the page's server (the real backend serving
//! the trunk build, via `testkit`), axe-core accessibility checks, and screenshots.
//!
//! Needs `chromedriver` and Chromium (`scripts/setup.sh --browser` installs them, and
//! axe-core into `.tools/axe`) and a built page (`trunk build --release --offline`);
//! `scripts/test.sh` does all of it.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use testkit::TestServer;

/// How long the page may take to show something before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The Enter key, for `send_keys`.
pub const ENTER: &str = "\u{E007}";
/// A desktop window and a phone-sized one.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// See [`DESKTOP`].
pub const PHONE: (u32, u32) = (390, 844);

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The real server serving the trunk build from `dist/`, on `addr` (port 0: a free one),
/// over `data_dir` (none: a fresh one).
pub async fn start_backend(addr: Option<SocketAddr>, data_dir: Option<&Path>) -> TestServer {
    start_backend_with(addr, data_dir, |_| {}).await
}

/// [`start_backend`], with the configuration changed by `tweak` first.
pub async fn start_backend_with(
    addr: Option<SocketAddr>,
    data_dir: Option<&Path>,
    tweak: impl FnOnce(&mut backend::Config),
) -> TestServer {
    let dist = workspace_root().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "no page in {}: run `trunk build --release --offline` first (scripts/test.sh does)",
        dist.display()
    );
    let mut config = backend::Config {
        dist,
        ..Default::default()
    };
    if let Some(dir) = data_dir {
        config.store = backend::Store::Sqlite(dir.to_path_buf());
    }
    tweak(&mut config);
    let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    TestServer::start_at(addr, config).await
}

/// The real server serving the trunk build, configured by `args` as the `backend` binary's
/// command line would be (`["--dev-login", "--private-rooms", "team-*"]`), on a free port
/// over a fresh data directory.
pub async fn start_backend_args(args: &[&str]) -> TestServer {
    use clap::Parser;
    let parsed =
        backend::Config::try_parse_from(std::iter::once("backend").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("backend flags {args:?}: {e}"));
    start_backend_with(None, None, move |config| {
        let dist = std::mem::take(&mut config.dist);
        *config = backend::Config { dist, ..parsed };
    })
    .await
}

/// A chromedriver on a free port, killed when dropped (even when the test fails).
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver and waits until it listens.
    pub async fn start() -> Self {
        let port = testkit::free_port();
        let child = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .arg(format!("--port={port}"))
            // A group of its own, with the browsers it starts: see `Drop`.
            .process_group(0)
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

    /// A new headless Chromium session showing `url`, phone-sized (520 × 760).
    pub async fn open(&self, url: &str) -> Client {
        self.open_sized(url, (520, 760)).await
    }

    /// A new headless Chromium session of `size` (width, height) showing `url`.
    pub async fn open_sized(&self, url: &str, size: (u32, u32)) -> Client {
        let window = format!("--window-size={},{}", size.0, size.1);
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            window.as_str(),
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
        // chromedriver listens a moment before it answers: a session refused at the door
        // (the connection reset, or refused) is asked for again, within TIMEOUT.
        let deadline = Instant::now() + TIMEOUT;
        let client = loop {
            let session =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{}", self.port))
                    .await;
            match session {
                Ok(client) => break client,
                Err(fantoccini::error::NewSessionError::FailedC(e))
                    if Instant::now() < deadline =>
                {
                    eprintln!("chromedriver did not take the session yet ({e}); asking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("a Chromium session: {e:?}"),
            }
        };
        client.goto(url).await.expect("page loads");
        client
    }
}

impl Drop for Driver {
    /// Ends chromedriver and every browser it started: they share its process group (the
    /// browsers outlive chromedriver otherwise, and a whole e2e run left some 200 Chromium
    /// processes behind on a two-core machine).
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Chrome DevTools Protocol command (`Network.emulateNetworkConditions`, …), through
/// chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Sends the DevTools command `cmd` with `params` to the session's page; returns its result.
pub async fn cdp(client: &Client, cmd: &'static str, params: Value) -> Value {
    client
        .issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("DevTools {cmd}: {e}"))
}

/// Makes the session's page a mid-range phone on a slow network, as Lighthouse's mobile
/// preset does: CPU 4× slower, 1.6 Mbit/s down, 750 kbit/s up, 150 ms round trip. Holds for
/// every navigation of the session after it.
pub async fn throttle_like_a_phone(client: &Client) {
    cdp(client, "Network.enable", json!({})).await;
    cdp(
        client,
        "Network.emulateNetworkConditions",
        json!({
            "offline": false,
            "latency": 150,
            "downloadThroughput": 1_600_000 / 8,
            "uploadThroughput": 750_000 / 8,
        }),
    )
    .await;
    cdp(
        client,
        "Emulation.setCPUThrottlingRate",
        json!({ "rate": 4 }),
    )
    .await;
}

/// Runs `script` in the page and returns its result.
pub async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect("script runs")
}

/// The text of the first element matching `css` ("" if none).
pub async fn text(client: &Client, css: &str) -> String {
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

/// The texts of every element matching `css`.
pub async fn texts(client: &Client, css: &str) -> Vec<String> {
    let script = format!(
        "return Array.from(document.querySelectorAll({})).map(e => e.textContent);",
        json!(css)
    );
    serde_json::from_value(js(client, &script).await).expect("an array of strings")
}

/// The history lines shown, each `<name> -> <text>`.
pub async fn history(client: &Client) -> Vec<String> {
    texts(client, "#history li").await
}

/// Waits (polling the DOM, up to [`TIMEOUT`]) until `css`'s text satisfies `ok`.
pub async fn wait_text(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
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

/// Focuses `css` and presses Enter on it: a button used from the keyboard alone.
pub async fn press(page: &Client, css: &str) {
    let button = page
        .wait()
        .at_most(TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    button.send_keys(ENTER).await.expect("Enter on the button");
}

/// Signs `page` in through the dev-login form as `sub` ("Name"), with `roles`.
pub async fn dev_sign_in(page: &Client, sub: &str, name: &str, roles: &str) {
    type_in(page, "#dev-sub", sub).await;
    type_in(page, "#dev-name", name).await;
    if !roles.is_empty() {
        type_in(page, "#dev-roles", roles).await;
    }
    type_in(page, "#dev-name", ENTER).await;
    wait_text(page, "#signed-in", |s| {
        s == format!("Signed in as {name} ({sub})")
    })
    .await;
    connected_id(page).await;
}

/// Waits until the texts of every `css` match equal `expected`.
pub async fn wait_texts(client: &Client, css: &str, expected: &[String]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = texts(client, css).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} shows {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Waits until the history shows exactly `expected`.
pub async fn wait_history(client: &Client, expected: &[String]) {
    wait_texts(client, "#history li", expected).await;
}

/// Waits until the page is connected; returns its id.
pub async fn connected_id(client: &Client) -> String {
    wait_text(client, "#conn-state", |s| s == "connected").await;
    let id = wait_text(client, "#my-id", |s| s.len() == 16).await;
    assert_eq!(id.len(), 16, "the page shows its server-given id");
    id
}

/// Types `keys` into the element `css`, once the page has rendered it (up to [`TIMEOUT`]).
pub async fn type_in(client: &Client, css: &str, keys: &str) {
    client
        .wait()
        .at_most(TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(keys)
        .await
        .expect("typing");
}

/// Types into the composer.
pub async fn type_into(client: &Client, keys: &str) {
    type_in(client, "#composer-input", keys).await;
}

/// Clicks the element `css`, once the page has rendered it (up to [`TIMEOUT`]: a page just
/// opened may still be loading its wasm).
pub async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Sets this page's display name through the name form, as a person would (keyboard only).
pub async fn set_name(client: &Client, name: &str) {
    let input = client
        .find(Locator::Css("#name-input"))
        .await
        .expect("the name input");
    input.clear().await.expect("clear");
    input.send_keys(name).await.expect("type");
    input.send_keys(ENTER).await.expect("enter");
    wait_text(client, "#my-name", |s| s == name).await;
}

/// Resizes the window.
pub async fn resize(client: &Client, (width, height): (u32, u32)) {
    client
        .set_window_size(width, height)
        .await
        .expect("resize the window");
}

/// Injects axe-core and fails with the list of violations, if any.
pub async fn assert_accessible(client: &Client, label: &str) {
    let axe = workspace_root().join(".tools/axe/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/setup.sh --browser installs axe-core)",
            axe.display()
        )
    });
    js(client, &source).await;
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ['violations'] })
            .then(r => done(r.violations.map(v =>
                `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
            .catch(e => done(['axe failed: ' + e]));
    "#;
    let violations = client
        .execute_async(script, vec![])
        .await
        .expect("axe runs");
    let violations: Vec<String> = serde_json::from_value(violations).expect("a list");
    assert!(
        violations.is_empty(),
        "accessibility violations ({label}):\n{}",
        violations.join("\n")
    );
}

/// Writes the PNG screenshots next to each other, with a gap, as one PNG.
pub fn side_by_side(shots: &[Vec<u8>], out: &Path) {
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
    eprintln!("screenshot: {}", out.display());
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
