//! The transports lesson: one live event stream (a tick every [`TICK_EVERY`]), served four
//! ways side by side, for the `/transports` page to show how each one fares.
//!
//! - `GET /transports/poll?c=<client>&after=<n>`: periodic polling ("sondeo"): the ticks
//!   after `n`, at once (none yet: an empty list; `after` absent or 0: the latest tick).
//! - `GET /transports/long-poll?c=…&after=<n>`: long polling: the same, but the answer
//!   waits until there is a tick after `n` (at most [`LONG_POLL_WAIT`], then an empty list).
//! - `GET /transports/sse?c=…`: Server-Sent Events: one event per tick (`id:` its number,
//!   so an `EventSource` that reconnects continues after the last it saw).
//! - `GET /transports/ws?c=…`: a WebSocket: one text frame per tick.
//! - `GET /transports/stats?c=…`: what each of that client's transports cost so far, counted
//!   at the socket ([`crate::accept::tally`]): requests, and bytes each way with every HTTP
//!   header, chunk and frame header included; and the server's clock (`now`), so the page
//!   can put its own clock beside it.
//!
//! A tick is `{"n": <number>, "at": <ms since the epoch when the server made it>}`; the page
//! takes a tick's delay as the time it arrived less `at`.
//!
//! `c` names the page (1 to 64 of `A-Z a-z 0-9 - _`): its numbers are its own. Bounds: at
//! most [`MAX_CLIENTS`] clients are remembered (the least recently seen go first) and at
//! most [`MAX_WAITING`] long polls, event streams and WebSockets are open at once (past it,
//! `503 busy`). The ticker runs only while someone watches: it stops [`IDLE_AFTER`] after
//! the last request when no stream is open, so a server nobody takes the lesson on does
//! nothing for it. Host and Origin are checked as for `/ws`; every refusal is a typed
//! `{"error", "message"}`.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::lesson::{Cost, Stats, Tick, Transport};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

use crate::{
    accept::tally::{Meter, Wire},
    committer::now_ms,
    state::AppState,
    ws::{
        Upgrade,
        sse::{LongLived, event_stream},
    },
};

/// How often the server makes a tick.
pub const TICK_EVERY: Duration = Duration::from_millis(500);
/// The ticks kept for polls that come late.
pub const TICKS_KEPT: usize = 64;
/// The longest a long poll waits for a tick (less, under a short `--http-timeout`).
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(20);
/// The most clients whose numbers are kept.
pub const MAX_CLIENTS: usize = 512;
/// The most long polls, event streams and WebSockets open at once.
pub const MAX_WAITING: usize = 256;
/// The ticker stops this long after the last request, when no stream is open.
pub const IDLE_AFTER: Duration = Duration::from_secs(30);

/// One page's meters, one per transport.
struct Client {
    meters: [Arc<Meter>; 4],
    seen: Instant,
}

/// The lesson's state: the ticks, who watches, and what each client's transports cost.
pub(crate) struct Lesson {
    ticks: Mutex<VecDeque<Tick>>,
    /// The latest tick's number (0: none yet).
    latest: watch::Sender<u64>,
    next: AtomicU64,
    running: AtomicBool,
    /// When the last request came.
    seen: Mutex<Instant>,
    clients: Mutex<HashMap<String, Client>>,
    waiting: Arc<Semaphore>,
    /// Set at shutdown: streams and WebSockets end.
    closing: watch::Sender<bool>,
    /// The long poll's wait under this server's `--http-timeout`.
    long_poll_wait: Duration,
}

/// A refusal: `{"error", "message"}`.
fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "message": message })),
    )
        .into_response()
}

fn busy() -> Response {
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many lesson streams are open: try again later",
    )
}

impl Lesson {
    /// The lesson of a server whose HTTP deadline is `http_timeout`.
    pub(crate) fn new(http_timeout: Duration) -> Self {
        Lesson {
            ticks: Mutex::new(VecDeque::with_capacity(TICKS_KEPT)),
            latest: watch::Sender::new(0),
            next: AtomicU64::new(1),
            running: AtomicBool::new(false),
            seen: Mutex::new(Instant::now()),
            clients: Mutex::new(HashMap::new()),
            waiting: Arc::new(Semaphore::new(MAX_WAITING)),
            closing: watch::Sender::new(false),
            long_poll_wait: LONG_POLL_WAIT.min(http_timeout / 2),
        }
    }

    /// Ends every stream and WebSocket (the server is shutting down).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// A request came: the ticker runs (started if it was not).
    fn wake(self: &Arc<Self>) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        if !self.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().tick());
        }
    }

    /// Whether the ticker may stop: no request for [`IDLE_AFTER`], no stream open.
    fn idle(&self) -> bool {
        let seen = *self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self.waiting.available_permits() < MAX_WAITING;
        (seen.elapsed() >= IDLE_AFTER && !open) || *self.closing.borrow()
    }

    async fn tick(self: Arc<Self>) {
        let mut every = tokio::time::interval(TICK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if self.idle() {
                self.running.store(false, Ordering::Release);
                // A request between the check and the store would find it running: look again.
                if self.idle() || self.running.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
            let tick = Tick {
                n: self.next.fetch_add(1, Ordering::Relaxed),
                at: now_ms(),
            };
            {
                let mut ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
                if ticks.len() == TICKS_KEPT {
                    ticks.pop_front();
                }
                ticks.push_back(tick);
            }
            self.latest.send_replace(tick.n);
        }
    }

    /// The ticks after `after` (0: the latest one alone).
    fn after(&self, after: u64) -> Vec<Tick> {
        let ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
        if after == 0 {
            return ticks.back().copied().into_iter().collect();
        }
        ticks.iter().filter(|t| t.n > after).copied().collect()
    }

    /// The meter of `client`'s `kind` (the client remembered from now on).
    fn meter(&self, client: &str, kind: Transport) -> Arc<Meter> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.contains_key(client) && clients.len() >= MAX_CLIENTS {
            let oldest = clients
                .iter()
                .min_by_key(|(_, c)| c.seen)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                clients.remove(&oldest);
            }
        }
        let entry = clients.entry(client.to_owned()).or_insert_with(|| Client {
            meters: Default::default(),
            seen: Instant::now(),
        });
        entry.seen = Instant::now();
        entry.meters[kind as usize].clone()
    }

    /// What `client`'s transports cost so far.
    fn stats(&self, client: &str) -> Stats {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let cost = |kind: Transport| {
            clients.get(client).map_or_else(Cost::default, |c| {
                let m = &c.meters[kind as usize];
                Cost {
                    requests: m.requests.load(Ordering::Relaxed),
                    bytes_in: m.bytes_in.load(Ordering::Relaxed),
                    bytes_out: m.bytes_out.load(Ordering::Relaxed),
                }
            })
        };
        Stats {
            now: now_ms(),
            poll: cost(Transport::Poll),
            long_poll: cost(Transport::LongPoll),
            sse: cost(Transport::Sse),
            ws: cost(Transport::Ws),
        }
    }
}

/// The lesson's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/transports/poll", get(poll))
        .route("/transports/long-poll", get(long_poll))
        .route("/transports/sse", get(sse))
        .route("/transports/ws", get(ws))
        .route("/transports/stats", get(stats))
}

type Params = Query<HashMap<String, String>>;

/// A request's client (`c`) and `after`, once its Host and Origin pass; or the refusal.
fn check(
    app: &AppState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(String, u64), Box<Response>> {
    if let Err(refusal) = app.admission.check_origin(headers) {
        return Err(Box::new(refused(
            refusal.status(),
            "refused",
            refusal.message(),
        )));
    }
    let client = params.get("c").map(String::as_str).unwrap_or_default();
    let valid = (1..=64).contains(&client.len())
        && client
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(Box::new(refused(
            StatusCode::BAD_REQUEST,
            "bad_client",
            "c must name the page: 1 to 64 of A-Z a-z 0-9 - _",
        )));
    }
    let after = match params.get("after") {
        None => 0,
        Some(after) => after.parse().map_err(|_| {
            Box::new(refused(
                StatusCode::BAD_REQUEST,
                "bad_after",
                "after must be a tick number (a whole number, 0 or more)",
            ))
        })?,
    };
    Ok((client.to_owned(), after))
}

/// A JSON answer that no cache keeps.
fn ticks_response(ticks: &[Tick]) -> Response {
    let mut response = axum::Json(json!({ "ticks": ticks })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A lesson request let in: `after`, and for a transport that waits (`permit`), its place
/// among the [`MAX_WAITING`]. Its traffic is metered from here on (with `frames`, a
/// WebSocket's, what the page sends after the upgrade too), and the ticker runs.
struct Admitted {
    after: u64,
    permit: Option<OwnedSemaphorePermit>,
}

fn admit(
    app: &AppState,
    wire: Option<&Extension<Wire>>,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    kind: Transport,
) -> Result<Admitted, Box<Response>> {
    let (client, after) = check(app, headers, params)?;
    let lesson = &app.lesson;
    let permit = match kind {
        Transport::Poll => None,
        _ => Some(
            lesson
                .waiting
                .clone()
                .try_acquire_owned()
                .map_err(|_| Box::new(busy()))?,
        ),
    };
    if let Some(Extension(wire)) = wire {
        wire.meter(lesson.meter(&client, kind), kind == Transport::Ws);
    }
    lesson.wake();
    Ok(Admitted { after, permit })
}

async fn poll(
    State(app): State<AppState>,
    wire: Option<Extension<Wire>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    match admit(&app, wire.as_ref(), &headers, &params, Transport::Poll) {
        Ok(admitted) => ticks_response(&app.lesson.after(admitted.after)),
        Err(refusal) => *refusal,
    }
}

async fn long_poll(
    State(app): State<AppState>,
    wire: Option<Extension<Wire>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let Admitted { after, permit } =
        match admit(&app, wire.as_ref(), &headers, &params, Transport::LongPoll) {
            Ok(admitted) => admitted,
            Err(refusal) => return *refusal,
        };
    let _permit = permit;
    let lesson = app.lesson.clone();
    let mut latest = lesson.latest.subscribe();
    let mut closing = lesson.closing.subscribe();
    let wait = async {
        tokio::select! {
            _ = latest.wait_for(|n| *n > after) => {}
            _ = closing.wait_for(|closing| *closing) => {}
        }
    };
    let _ = tokio::time::timeout(lesson.long_poll_wait, wait).await;
    // A first poll (after 0) answers with the latest tick, as `poll` does.
    ticks_response(&lesson.after(after))
}

/// The ticks after `after`, as SSE events, once there are some; none when the server closes.
async fn next_events(
    lesson: &Lesson,
    latest: &mut watch::Receiver<u64>,
    closing: &mut watch::Receiver<bool>,
    after: &mut u64,
) -> Option<Bytes> {
    loop {
        let ticks = lesson.after(*after);
        if let Some(last) = ticks.last() {
            *after = last.n;
            let mut out = String::new();
            for tick in ticks {
                let data = serde_json::to_string(&tick).unwrap_or_default();
                out.push_str(&format!("id: {}\ndata: {data}\n\n", tick.n));
            }
            return Some(Bytes::from(out));
        }
        let seen = *after;
        tokio::select! {
            changed = latest.wait_for(|n| *n > seen) => { changed.ok()?; }
            _ = closing.wait_for(|closing| *closing) => return None,
        }
    }
}

async fn sse(
    State(app): State<AppState>,
    wire: Option<Extension<Wire>>,
    long_lived: Option<Extension<LongLived>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(refusal) = check(&app, &headers, &params) {
        return *refusal;
    }
    let after = match headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::parse::<u64>))
    {
        None => 0,
        Some(Ok(Ok(after))) => after,
        Some(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "bad_last_event_id",
                "Last-Event-ID must be a tick number",
            );
        }
    };
    let permit = match admit(&app, wire.as_ref(), &headers, &params, Transport::Sse) {
        Ok(admitted) => admitted.permit,
        Err(refusal) => return *refusal,
    };
    let lesson = app.lesson.clone();
    if let Some(Extension(LongLived(flag))) = long_lived {
        flag.store(true, Ordering::Relaxed);
    }
    struct Streaming {
        lesson: Arc<Lesson>,
        latest: watch::Receiver<u64>,
        closing: watch::Receiver<bool>,
        after: u64,
        _permit: Option<OwnedSemaphorePermit>,
    }
    let state = Streaming {
        latest: lesson.latest.subscribe(),
        closing: lesson.closing.subscribe(),
        lesson,
        after,
        _permit: permit,
    };
    let first = Bytes::from_static(b"retry: 1000\n\n");
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let events = next_events(&s.lesson, &mut s.latest, &mut s.closing, &mut s.after).await?;
        Some((events, s))
    });
    let body = futures_util::stream::iter([first])
        .chain(events)
        .map(Ok::<_, Infallible>);
    event_stream(Body::from_stream(body))
}

async fn ws(
    State(app): State<AppState>,
    upgrade: Upgrade,
    wire: Option<Extension<Wire>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let permit = match admit(&app, wire.as_ref(), &headers, &params, Transport::Ws) {
        Ok(admitted) => admitted.permit,
        Err(refusal) => return *refusal,
    };
    let lesson = app.lesson.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(1024))
        .max_frame_size(Some(1024));
    upgrade.on_upgrade(config, move |socket| async move {
        let _permit = permit;
        let (mut sink, mut stream) = socket.split();
        let (mut latest, mut closing) = (lesson.latest.subscribe(), lesson.closing.subscribe());
        let mut after = 0;
        loop {
            for tick in lesson.after(after) {
                after = tick.n;
                let text = serde_json::to_string(&tick).unwrap_or_default();
                if sink.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            let seen = after;
            tokio::select! {
                changed = latest.wait_for(|n| *n > seen) => if changed.is_err() { break },
                _ = closing.wait_for(|closing| *closing) => break,
                // The page sends nothing; a close, an error or its end ends this.
                frame = stream.next() => match frame {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => return,
                },
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    })
}

async fn stats(State(app): State<AppState>, headers: HeaderMap, Query(params): Params) -> Response {
    let (client, _) = match check(&app, &headers, &params) {
        Ok(checked) => checked,
        Err(refusal) => return *refusal,
    };
    let mut response = axum::Json(app.lesson.stats(&client)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
