//! Who is who, in real browsers against the real backend: signing in through the dev-login
//! form, a private room its user talks in and a guest cannot join, a token refreshed on the
//! open connection past the first one's expiry, a sign-in that expires because the app will
//! not renew it (a tiny "app" this test runs mints the page's token), a user disconnected
//! through the server API, and a server that takes signed-in users only.

#![allow(missing_docs)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use e2e::{
    DESKTOP, Driver, ENTER, PHONE, TIMEOUT, assert_accessible, click, connected_id, history, js,
    resize, start_backend_args, text, texts, type_in, type_into, wait_history, wait_text,
};
use fantoccini::Client;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the sign-in area says of a guest.
const GUEST: &str = "Not signed in: you are a guest";

/// Signs in through the dev-login form, with the keyboard only (Enter in the last field).
async fn sign_in_with_the_form(page: &Client, sub: &str, name: &str, rooms: &str) {
    type_in(page, "#dev-sub", sub).await;
    if !name.is_empty() {
        type_in(page, "#dev-name", name).await;
    }
    if !rooms.is_empty() {
        type_in(page, "#dev-rooms", rooms).await;
    }
    type_in(page, "#dev-rooms", ENTER).await;
}

/// Waits until the sign-in area says `who`.
async fn signed_in_as(page: &Client, who: &str) {
    wait_text(page, "#signed-in", |s| s == who).await;
}

async fn in_room(page: &Client, room: &str) {
    wait_text(page, "#room-title .room-title-name", |s| s == room).await;
}

async fn accessible_at_both_widths(page: &Client, label: &str) {
    for (size, width) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        resize(page, size).await;
        assert_accessible(page, &format!("{label}, {width}")).await;
    }
    resize(page, DESKTOP).await;
}

/// How many requests the page has made to a URL ending in `path` (Resource Timing).
async fn fetches(page: &Client, path: &str) -> u64 {
    let script = format!(
        "return performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === {}).length;",
        json!(path)
    );
    js(page, &script).await.as_u64().expect("a count")
}

/// Starts recording every text the status pill shows from now on (`window.__states`).
async fn record_status(page: &Client) {
    js(
        page,
        "const pill = document.querySelector('#conn-state');
         window.__states = [pill.textContent];
         new MutationObserver(() => window.__states.push(pill.textContent))
             .observe(pill, { childList: true, characterData: true, subtree: true });",
    )
    .await;
}

/// Every text the status pill showed since [`record_status`].
async fn recorded_status(page: &Client) -> Vec<String> {
    serde_json::from_value(js(page, "return window.__states;").await).expect("a list")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signed_in_through_the_dev_form_talks_in_a_private_room_that_a_guest_cannot_join() {
    let backend = start_backend_args(&[
        "--jwt-secret",
        "s",
        "--dev-login",
        "--private-rooms",
        "team-*",
    ])
    .await;
    let driver = Driver::start().await;
    let alice = driver.open_sized(&backend.url(), DESKTOP).await;
    connected_id(&alice).await;
    signed_in_as(&alice, GUEST).await;

    // Alice signs in as herself, granted every team-* room; the page connects again as her.
    sign_in_with_the_form(&alice, "alice", "Alice", "team-*").await;
    signed_in_as(&alice, "Signed in as Alice (alice)").await;
    connected_id(&alice).await;
    wait_text(&alice, "#my-name", |s| s == "Alice").await;
    assert!(
        texts(&alice, "#dev-login").await.is_empty(),
        "the form is gone once signed in"
    );

    // The sign-in is remembered: a link opened later signs her in again by itself, into
    // the private room, which shows its lock.
    alice
        .goto(&format!("{}r/team-x", backend.url()))
        .await
        .expect("open team-x");
    signed_in_as(&alice, "Signed in as Alice (alice)").await;
    connected_id(&alice).await;
    in_room(&alice, "team-x").await;
    wait_text(&alice, "#room-title .lock", |s| s.trim() == "private").await;
    wait_text(&alice, "#rooms li[data-room='team-x'] a", |s| {
        s.contains("private")
    })
    .await;
    type_into(&alice, "only for the team").await;
    type_into(&alice, ENTER).await;
    wait_history(&alice, &["Alice -> only for the team".to_owned()]).await;

    // A guest following the same link is refused the room and shown why; the page falls
    // back to general, and never shows team-x's lines.
    let guest = driver
        .open_sized(&format!("{}r/team-x", backend.url()), DESKTOP)
        .await;
    connected_id(&guest).await;
    signed_in_as(&guest, GUEST).await;
    wait_text(&guest, "#notice", |s| {
        s == "team-x is a private room: you may not join it."
    })
    .await;
    in_room(&guest, "general").await;
    assert!(
        !texts(&guest, "#rooms li")
            .await
            .iter()
            .any(|r| r.contains("team-x")),
        "team-x is not on the guest's list"
    );
    type_into(&alice, "still only for the team").await;
    type_into(&alice, ENTER).await;
    wait_history(
        &alice,
        &[
            "Alice -> only for the team".to_owned(),
            "Alice -> still only for the team".to_owned(),
        ],
    )
    .await;
    // (The guest's page is connected to the same server, which has sent alice's line to
    // every member of team-x by now: alice has it back.)
    let page_text = text(&guest, "body").await;
    assert!(
        !page_text.contains("only for the team"),
        "the guest never sees team-x's lines"
    );
    assert!(history(&guest).await.is_empty());

    accessible_at_both_widths(&guest, "a guest, the dev-login form and a refused join").await;
    accessible_at_both_widths(&alice, "signed in, in a private room").await;

    // Signing out forgets her: the page comes back as a guest, and team-x is refused.
    click(&alice, "#sign-out").await;
    signed_in_as(&alice, GUEST).await;
    connected_id(&alice).await;
    wait_text(&alice, "#notice", |s| {
        s == "team-x is a private room: you may not join it."
    })
    .await;
    wait_text(&alice, "#dev-login-title", |s| s == "Sign in as…").await;
    let kept = js(&alice, "return localStorage.getItem('charla.dev_login');").await;
    assert_eq!(kept, serde_json::Value::Null, "the identity is forgotten");

    for page in [alice, guest] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_refreshed_on_the_open_connection_and_lines_flow_past_the_first_ones_expiry() {
    // A token lives 8 s and the server asks for a new one 6 s before it expires, so about
    // every 2 s; no leeway, so a token not renewed ends the sign-in at its `exp`.
    let backend = start_backend_args(&[
        "--jwt-secret",
        "s",
        "--dev-login",
        "--dev-token-ttl",
        "8s",
        "--refresh-before",
        "6s",
        "--jwt-leeway",
        "0s",
    ])
    .await;
    let driver = Driver::start().await;
    let dana = driver.open_sized(&backend.url(), DESKTOP).await;
    let watcher = driver.open_sized(&backend.url(), DESKTOP).await;
    connected_id(&dana).await;
    connected_id(&watcher).await;

    // The first token's `exp` is at most this (minted after this instant, living 8 s).
    let first_exp = now_secs() + 8 + 1;
    sign_in_with_the_form(&dana, "dana", "Dana", "").await;
    signed_in_as(&dana, "Signed in as Dana (dana)").await;
    let id = connected_id(&dana).await;
    record_status(&dana).await;
    let minted = fetches(&dana, "/api/dev/token").await;
    assert_eq!(minted, 1, "one token so far: the form's");

    // The page renews its token by itself (a new one from the dev-login, sent as `refresh`).
    let deadline = Instant::now() + TIMEOUT;
    while fetches(&dana, "/api/dev/token").await < 3 {
        assert!(
            Instant::now() < deadline,
            "the page did not renew its token twice"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Past the first token's expiry (a deadline on the clock, not an event to hope for)…
    while now_secs() <= first_exp + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // …the same connection is still open and signed in, and a line sent now is delivered.
    assert_eq!(text(&dana, "#conn-state").await, "connected");
    assert_eq!(text(&dana, "#my-id").await, id, "the same connection");
    assert_eq!(text(&dana, "#signed-in").await, "Signed in as Dana (dana)");
    assert_eq!(text(&dana, "#sign-in-notice").await, "");
    type_into(&dana, "after the first token expired").await;
    type_into(&dana, ENTER).await;
    let line = ["Dana -> after the first token expired".to_owned()];
    wait_history(&dana, &line).await;
    wait_history(&watcher, &line).await;
    assert!(texts(&dana, "#pending li").await.is_empty());
    let seen = recorded_status(&dana).await;
    assert!(
        seen.iter().all(|s| s == "connected"),
        "the status never left connected: {seen:?}"
    );
    assert_eq!(text(&dana, "#my-id").await, id, "no reconnect at all");

    for page in [dana, watcher] {
        page.close().await.expect("close");
    }
    backend.stop().await;
}

/// A tiny "app" Charla runs beside, on 127.0.0.1: `GET /login` signs the browser in (a
/// cookie), `GET /token` answers the first signed-in request with a short-lived token
/// (minted with the server's secret) and every later one with 401, with the CORS headers a
/// credentialed cross-origin `fetch` needs.
struct App {
    addr: SocketAddr,
    /// Requests to `/token`.
    token_requests: Arc<AtomicUsize>,
    /// Of those, how many carried the app's cookie.
    with_cookie: Arc<AtomicUsize>,
    /// The page's origin, allowed to read the answers.
    page_origin: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start(secret: &'static str, lifetime: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token_requests = Arc::new(AtomicUsize::new(0));
        let with_cookie = Arc::new(AtomicUsize::new(0));
        let page_origin = Arc::new(Mutex::new(String::new()));
        let state = (
            token_requests.clone(),
            with_cookie.clone(),
            page_origin.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = App::answer(stream, secret, lifetime, state).await;
                });
            }
        });
        App {
            addr,
            token_requests,
            with_cookie,
            page_origin,
            task,
        }
    }

    fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    async fn answer(
        mut stream: TcpStream,
        secret: &str,
        lifetime: Duration,
        (token_requests, with_cookie, page_origin): (
            Arc<AtomicUsize>,
            Arc<AtomicUsize>,
            Arc<Mutex<String>>,
        ),
    ) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
            if n == 0 || head.len() > 64 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let (method, path) = (
            request_line.next().unwrap_or_default(),
            request_line.next().unwrap_or_default(),
        );
        let signed_in = lines.any(|line| {
            line.to_ascii_lowercase().starts_with("cookie:") && line.contains("app_session=carol")
        });
        let origin = page_origin.lock().expect("origin").clone();
        let cors = format!(
            "Access-Control-Allow-Origin: {origin}\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
        );
        let (status, extra, content_type, body) = match (method, path) {
            ("GET", "/login") => (
                "200 OK",
                "Set-Cookie: app_session=carol; Path=/; HttpOnly; SameSite=Lax\r\n".to_owned(),
                "text/html; charset=utf-8",
                "<!DOCTYPE html><html lang=\"en\"><title>App</title><p>Signed in to the app.</p>"
                    .to_owned(),
            ),
            ("OPTIONS", "/token") => (
                "204 No Content",
                format!("{cors}Access-Control-Allow-Methods: GET\r\n"),
                "text/plain",
                String::new(),
            ),
            ("GET", "/token") => {
                let first = token_requests.fetch_add(1, Ordering::SeqCst) == 0;
                if signed_in {
                    with_cookie.fetch_add(1, Ordering::SeqCst);
                }
                if first && signed_in {
                    let now = now_secs();
                    let claims = json!({
                        "sub": "carol",
                        "name": "Carol",
                        "iat": now,
                        "exp": now + lifetime.as_secs(),
                    });
                    let token = jsonwebtoken::encode(
                        &jsonwebtoken::Header::default(),
                        &claims,
                        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())
                            .expect("an HS256 key"),
                    )
                    .expect("a token");
                    (
                        "200 OK",
                        cors,
                        "application/json",
                        json!({ "token": token }).to_string(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        cors,
                        "application/json",
                        json!({ "error": "not signed in" }).to_string(),
                    )
                }
            }
            _ => (
                "404 Not Found",
                String::new(),
                "text/plain",
                "not found".to_owned(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_the_app_will_not_renew_expires_and_the_page_says_so() {
    // The app's token lives 8 s; the server asks for a new one 6 s before, which the app
    // refuses; no leeway: at its `exp` the server ends the sign-in.
    let app = App::start("s", Duration::from_secs(8)).await;
    let token_url = app.token_url();
    let backend = start_backend_args(&[
        "--jwt-secret",
        "s",
        "--token-url",
        &token_url,
        "--refresh-before",
        "6s",
        "--jwt-leeway",
        "0s",
    ])
    .await;
    *app.page_origin.lock().expect("origin") = format!("http://{}", backend.addr);
    let driver = Driver::start().await;

    // The browser signs in to the app first (its cookie), then opens the chat, whose page
    // fetches its token from the app with that cookie.
    let carol = driver
        .open_sized(&format!("http://{}/login", app.addr), DESKTOP)
        .await;
    carol.goto(&backend.url()).await.expect("open the chat");
    signed_in_as(&carol, "Signed in as Carol (carol)").await;
    connected_id(&carol).await;

    // The page asks the app again on `token_expiring`, is refused, and the token runs out.
    wait_text(&carol, "#sign-in-notice", |s| {
        s == "Your sign-in expired: you are a guest now."
    })
    .await;
    let asked = app.token_requests.load(Ordering::SeqCst);
    assert!(asked >= 2, "the page tried to renew the token");
    assert_eq!(
        app.with_cookie.load(Ordering::SeqCst),
        asked,
        "every request carried the app's cookie"
    );
    // Under `optional` the page comes back by itself, as a guest; the notice stays.
    signed_in_as(&carol, GUEST).await;
    connected_id(&carol).await;
    assert_eq!(
        text(&carol, "#sign-in-notice").await,
        "Your sign-in expired: you are a guest now."
    );
    let role = js(
        &carol,
        "return document.querySelector('#sign-in-notice').getAttribute('role');",
    )
    .await;
    assert_eq!(role, json!("alert"));
    // And in Spanish.
    click(&carol, "#lang-es").await;
    wait_text(&carol, "#sign-in-notice", |s| {
        s == "Tu sesión ha caducado: sigues como invitado."
    })
    .await;
    accessible_at_both_widths(&carol, "an expired sign-in").await;

    carol.close().await.expect("close");
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_disconnected_through_the_server_api_is_told_and_not_reconnected() {
    let backend = start_backend_args(&["--jwt-secret", "s", "--dev-login", "--api-key", "k"]).await;
    let driver = Driver::start().await;
    let erin = driver.open_sized(&backend.url(), DESKTOP).await;
    connected_id(&erin).await;
    sign_in_with_the_form(&erin, "erin", "", "").await;
    signed_in_as(&erin, "Signed in as erin").await;
    connected_id(&erin).await;

    // The app's backend disconnects her (close 4003).
    let response = testkit::request(
        backend.addr,
        "POST",
        "/api/users/erin/disconnect",
        &[("Authorization", "Bearer k")],
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    wait_text(&erin, "#sign-in-notice", |s| {
        s.starts_with("You were signed out by the server.")
    })
    .await;
    wait_text(&erin, "#conn-state", |s| s == "disconnected").await;
    // It does not come back by itself: watched for 3 s, where an ordinary drop is retried
    // within a quarter of a second.
    record_status(&erin).await;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = recorded_status(&erin).await;
    assert!(
        seen.iter().all(|s| s == "disconnected"),
        "it stayed disconnected: {seen:?}"
    );
    accessible_at_both_widths(&erin, "signed out by the server").await;

    // The person decides: "Reconnect now" comes back, as a guest, with the form offered.
    click(&erin, "#reconnect").await;
    connected_id(&erin).await;
    signed_in_as(&erin, GUEST).await;
    wait_text(&erin, "#dev-login-title", |s| s == "Sign in as…").await;

    erin.close().await.expect("close");
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_sign_in_is_required_the_page_waits_for_it_instead_of_reconnecting() {
    let backend =
        start_backend_args(&["--jwt-secret", "s", "--dev-login", "--auth", "required"]).await;
    let driver = Driver::start().await;
    let page = driver.open_sized(&backend.url(), DESKTOP).await;
    wait_text(&page, "#sign-in-notice", |s| {
        s == "This chat requires signing in."
    })
    .await;
    wait_text(&page, "#conn-state", |s| s == "disconnected").await;
    assert_eq!(text(&page, "#my-id").await, "…", "never welcomed");
    accessible_at_both_widths(&page, "sign-in required").await;

    sign_in_with_the_form(&page, "frank", "Frank", "").await;
    signed_in_as(&page, "Signed in as Frank (frank)").await;
    connected_id(&page).await;
    assert_eq!(text(&page, "#sign-in-notice").await, "");

    page.close().await.expect("close");
    backend.stop().await;
}
