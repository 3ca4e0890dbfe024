//! The transports lesson (`/transports`): the server's tick (one every 500 ms) arriving
//! four ways side by side — periodic polling every N s (N adjustable), long polling,
//! Server-Sent Events and a WebSocket. Each lane shows, live, the delay of every tick from
//! the moment the server made it (a small chart, and the last and mean delay), the requests
//! made and the bytes on the wire, headers included, as the server counted them at its
//! socket (`GET /transports/stats`, every second). Its words are its own ([`words`]), so
//! the chat's app carries none of them.
//!
//! Delays use the server's clock: every stats answer says the server's time, and the page
//! keeps the offset of the quickest round trip (half of it either way), as NTP does.
//!
//! For tests and people alike the numbers are in the page: each lane is
//! `section[data-transport]` with `.events`, `.mean-delay[data-ms]`, `.requests` and
//! `.bytes[data-in][data-out]`, and its chart's bars carry `data-ms`.

use std::{cell::Cell, collections::VecDeque, rc::Rc};

use futures_util::StreamExt;
use leptos::{prelude::*, task::spawn_local};
use serde::Deserialize;
use shared::lesson::{Cost, Stats, Tick, Ticks, Transport as Kind};
use wasm_bindgen::{JsCast, closure::Closure};

use crate::connection::sleep_ms;
use crate::i18n::{Lang, use_i18n};

/// The delays a chart shows (the newest).
pub const CHART_POINTS: usize = 40;
/// Polling's interval at first, in seconds.
pub const DEFAULT_POLL_S: u32 = 2;
/// Polling's interval bounds, in seconds.
pub const POLL_S: std::ops::RangeInclusive<u32> = 1..=10;

/// What one lane shows. `Copy`: signals only.
#[derive(Clone, Copy)]
struct Lane {
    kind: Kind,
    /// The last tick's number seen (each tick counts once).
    last: RwSignal<u64>,
    events: RwSignal<u64>,
    /// The newest delays, in ms, oldest first.
    delays: RwSignal<VecDeque<f64>>,
    /// The sum of every delay, for the mean.
    total_ms: RwSignal<f64>,
    cost: RwSignal<Cost>,
}

impl Lane {
    fn new(kind: Kind) -> Self {
        Lane {
            kind,
            last: RwSignal::new(0),
            events: RwSignal::new(0),
            delays: RwSignal::new(VecDeque::new()),
            total_ms: RwSignal::new(0.0),
            cost: RwSignal::new(Cost::default()),
        }
    }

    /// A tick arrived at `now` (the server's clock): counted once, its delay kept.
    fn arrived(&self, tick: Tick, now: f64) {
        if tick.n <= self.last.get_untracked() {
            return;
        }
        self.last.set(tick.n);
        let delay = (now - tick.at as f64).max(0.0);
        self.events.update(|n| *n += 1);
        self.total_ms.update(|t| *t += delay);
        self.delays.update(|d| {
            if d.len() == CHART_POINTS {
                d.pop_front();
            }
            d.push_back(delay);
        });
    }

    fn mean_ms(&self) -> Option<f64> {
        let events = self.events.get();
        (events > 0).then(|| self.total_ms.get() / events as f64)
    }
}

/// What the lesson's tasks share: the lanes, the page's id, the clock offset, and whether
/// the page is still open.
#[derive(Clone)]
struct Lesson {
    lanes: [Lane; 4],
    client: Rc<str>,
    /// Server time less this page's, in ms (from the quickest stats round trip).
    offset: Rc<Cell<(f64, f64)>>,
    /// Whether the page is still open (disposed with it).
    open: RwSignal<bool>,
    poll_every: RwSignal<u32>,
}

impl Lesson {
    /// Whether the page is still open.
    fn open(&self) -> bool {
        self.open.try_get_untracked().unwrap_or(false)
    }

    /// Now, on the server's clock.
    fn now(&self) -> f64 {
        js_sys::Date::now() + self.offset.get().0
    }

    fn lane(&self, kind: Kind) -> Lane {
        self.lanes[kind as usize]
    }

    fn url(&self, what: &str, after: u64) -> String {
        format!("/transports/{what}?c={}&after={after}", self.client)
    }

    fn arrived(&self, kind: Kind, ticks: &[Tick]) {
        let now = self.now();
        let lane = self.lane(kind);
        for tick in ticks {
            lane.arrived(*tick, now);
        }
    }
}

/// A random id for this page's numbers.
fn client_id() -> String {
    (0..4)
        .map(|_| {
            format!(
                "{:08x}",
                (js_sys::Math::random() * f64::from(u32::MAX)) as u32
            )
        })
        .collect()
}

async fn get_json<T: for<'de> Deserialize<'de>>(url: &str) -> Option<T> {
    let response = gloo_net::http::Request::get(url).send().await.ok()?;
    if !response.ok() {
        return None;
    }
    response.json().await.ok()
}

/// Polling: ask, then wait N s, again and again.
async fn poll(lesson: Lesson) {
    while lesson.open() {
        let lane = lesson.lane(Kind::Poll);
        let url = lesson.url("poll", lane.last.get_untracked());
        if let Some(got) = get_json::<Ticks>(&url).await {
            lesson.arrived(Kind::Poll, &got.ticks);
        }
        sleep_ms(lesson.poll_every.get_untracked().saturating_mul(1000)).await;
    }
}

/// Long polling: ask; the answer comes once there is news; ask again at once.
async fn long_poll(lesson: Lesson) {
    while lesson.open() {
        let lane = lesson.lane(Kind::LongPoll);
        let url = lesson.url("long-poll", lane.last.get_untracked());
        match get_json::<Ticks>(&url).await {
            Some(got) => lesson.arrived(Kind::LongPoll, &got.ticks),
            None => sleep_ms(1000).await,
        }
    }
}

/// Server-Sent Events: an `EventSource`, closed when the page goes.
fn sse(lesson: Lesson) -> Option<web_sys::EventSource> {
    let source = web_sys::EventSource::new(&format!("/transports/sse?c={}", lesson.client)).ok()?;
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(data) = event.data().as_string()
                && let Ok(tick) = serde_json::from_str::<Tick>(&data)
            {
                lesson.arrived(Kind::Sse, &[tick]);
            }
        });
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // Lives as long as the page: the source is closed when it goes.
    on_message.forget();
    Some(source)
}

/// A WebSocket: one frame per tick; opened again a second after it closes.
async fn websocket(lesson: Lesson) {
    let location = web_sys::window().map(|w| w.location());
    let host = location
        .as_ref()
        .and_then(|l| l.host().ok())
        .unwrap_or_default();
    let scheme = match location.and_then(|l| l.protocol().ok()).as_deref() {
        Some("https:") => "wss",
        _ => "ws",
    };
    let url = format!("{scheme}://{host}/transports/ws?c={}", lesson.client);
    while lesson.open() {
        if let Ok(mut ws) = gloo_net::websocket::futures::WebSocket::open(&url) {
            while let Some(Ok(gloo_net::websocket::Message::Text(text))) = ws.next().await {
                if !lesson.open() {
                    let _ = ws.close(None, None);
                    return;
                }
                if let Ok(tick) = serde_json::from_str::<Tick>(&text) {
                    lesson.arrived(Kind::Ws, &[tick]);
                }
            }
        }
        sleep_ms(1000).await;
    }
}

/// Every second: what each transport cost, and the server's clock.
async fn stats(lesson: Lesson) {
    while lesson.open() {
        let sent = js_sys::Date::now();
        if let Some(stats) =
            get_json::<Stats>(&format!("/transports/stats?c={}", lesson.client)).await
        {
            let back = js_sys::Date::now();
            let round_trip = back - sent;
            let (_, best) = lesson.offset.get();
            if round_trip < best {
                lesson
                    .offset
                    .set((stats.now as f64 - (sent + back) / 2.0, round_trip));
            }
            for kind in Kind::ALL {
                lesson.lane(kind).cost.set(stats.of(kind));
            }
        }
        sleep_ms(1000).await;
    }
}

/// The whole lesson page.
#[component]
pub fn TransportsPage() -> impl IntoView {
    let i18n = use_i18n();
    let lesson = Lesson {
        lanes: Kind::ALL.map(Lane::new),
        client: client_id().into(),
        offset: Rc::new(Cell::new((0.0, f64::INFINITY))),
        open: RwSignal::new(true),
        poll_every: RwSignal::new(DEFAULT_POLL_S),
    };
    spawn_local(poll(lesson.clone()));
    spawn_local(long_poll(lesson.clone()));
    spawn_local(websocket(lesson.clone()));
    spawn_local(stats(lesson.clone()));
    let source = StoredValue::new_local(sse(lesson.clone()));
    let open = lesson.open;
    on_cleanup(move || {
        open.try_set(false);
        source.try_with_value(|source| {
            if let Some(source) = source {
                source.close();
            }
        });
    });
    let lanes = lesson.lanes;
    // One scale for every chart: the largest delay shown anywhere (at least 100 ms).
    let scale = Memo::new(move |_| {
        lanes
            .iter()
            .flat_map(|lane| lane.delays.get())
            .fold(100.0_f64, f64::max)
    });
    let every = lesson.poll_every;
    view! {
        <section class="exercise transports" aria-labelledby="transports-title">
            <h2 id="transports-title">{move || i18n.t().transports_title}</h2>
            <p>{move || words(i18n.lang.get()).intro}</p>
            <p class="poll-every">
                <label for="poll-every">{move || words(i18n.lang.get()).every}</label>
                " "
                <input
                    id="poll-every"
                    type="number"
                    min=*POLL_S.start()
                    max=*POLL_S.end()
                    prop:value=move || every.get().to_string()
                    on:change=move |ev| {
                        match event_target_value(&ev)
                            .trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|s| POLL_S.contains(s))
                        {
                            Some(s) => every.set(s),
                            // Out of bounds: the box shows the interval in use again.
                            None => {
                                event_target::<web_sys::HtmlInputElement>(&ev)
                                    .set_value(&every.get_untracked().to_string());
                            }
                        }
                    }
                />
                " "
                <span>{move || words(i18n.lang.get()).seconds}</span>
            </p>
            <div class="lanes">
                {lanes.into_iter().map(|lane| view! { <LaneView lane scale /> }).collect_view()}
            </div>
        </section>
    }
}

/// One transport's lane: its name, when to use it, its numbers and its chart.
#[component]
fn LaneView(lane: Lane, scale: Memo<f64>) -> impl IntoView {
    let i18n = use_i18n();
    let key = lane.kind.path();
    let w = move || words(i18n.lang.get());
    let title_id = format!("lane-{key}-title");
    let labelled_by = title_id.clone();
    let ms = |v: f64| format!("{v:.0} ms");
    view! {
        <section class="card lane" data-transport=key aria-labelledby=labelled_by>
            <h3 id=title_id>{move || w().lanes[lane.kind as usize].0}</h3>
            <p class="hint">{move || w().lanes[lane.kind as usize].1}</p>
            <dl class="lane-numbers">
                <dt>{move || w().events}</dt>
                <dd class="events">{move || lane.events.get()}</dd>
                <dt>{move || w().last_delay}</dt>
                <dd class="last-delay">
                    {move || lane.delays.with(|d| d.back().copied()).map(ms).unwrap_or_default()}
                </dd>
                <dt>{move || w().mean_delay}</dt>
                <dd
                    class="mean-delay"
                    data-ms=move || lane.mean_ms().map(|m| format!("{m:.1}"))
                >
                    {move || lane.mean_ms().map(ms).unwrap_or_default()}
                </dd>
                <dt>{move || w().requests}</dt>
                <dd class="requests">{move || lane.cost.get().requests}</dd>
                <dt>{move || w().bytes}</dt>
                <dd
                    class="bytes"
                    data-in=move || lane.cost.get().bytes_in
                    data-out=move || lane.cost.get().bytes_out
                >
                    {move || {
                        let cost = lane.cost.get();
                        format!("↑ {} · ↓ {}", size(cost.bytes_in), size(cost.bytes_out))
                    }}
                </dd>
            </dl>
            <DelayChart lane scale />
        </section>
    }
}

/// Bytes, for people.
fn size(bytes: u64) -> String {
    if bytes < 10_000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KB", bytes as f64 / 1000.0)
    }
}

/// The chart's size, in its own units.
const CHART_W: f64 = 200.0;
const CHART_H: f64 = 60.0;

/// A bar per delay, the newest on the right, all lanes on one scale.
#[component]
fn DelayChart(lane: Lane, scale: Memo<f64>) -> impl IntoView {
    let i18n = use_i18n();
    let bar = CHART_W / CHART_POINTS as f64;
    let label = move || {
        let w = words(i18n.lang.get());
        format!("{} ({} {:.0} ms)", w.chart, w.scale, scale.get())
    };
    view! {
        <svg
            class="delay-chart"
            role="img"
            aria-label=label
            viewBox=format!("0 0 {CHART_W} {CHART_H}")
            preserveAspectRatio="none"
        >
            {move || {
                let top = scale.get();
                lane.delays
                    .get()
                    .into_iter()
                    .enumerate()
                    .map(|(i, delay)| {
                        let h = (delay / top * CHART_H).clamp(1.0, CHART_H);
                        view! {
                            <rect
                                x=format!("{:.1}", i as f64 * bar)
                                y=format!("{:.1}", CHART_H - h)
                                width=format!("{:.1}", bar * 0.8)
                                height=format!("{h:.1}")
                                data-ms=format!("{delay:.0}")
                            />
                        }
                    })
                    .collect_view()
            }}
        </svg>
    }
}

/// The lesson's words in one language.
pub struct Words {
    intro: &'static str,
    every: &'static str,
    seconds: &'static str,
    events: &'static str,
    last_delay: &'static str,
    mean_delay: &'static str,
    requests: &'static str,
    bytes: &'static str,
    chart: &'static str,
    scale: &'static str,
    /// Per transport, in [`Kind::ALL`]'s order: its name and when to use it.
    lanes: [(&'static str, &'static str); 4],
}

const EN: Words = Words {
    intro: "The server makes a tick every 500 ms. Here it arrives four ways at once: watch \
            how long each tick takes to get here, and what each way costs on the wire \
            (counted by the server at its socket, HTTP headers included).",
    every: "Poll every",
    seconds: "seconds",
    events: "Ticks",
    last_delay: "Last delay",
    mean_delay: "Mean delay",
    requests: "Requests",
    bytes: "Bytes (up · down)",
    chart: "Delay of each of the last ticks",
    scale: "top of the scale:",
    lanes: [
        (
            "Polling",
            "Ask every N seconds: fine for data that changes slowly, but each tick waits up \
             to N s and every ask costs a whole request, news or not.",
        ),
        (
            "Long polling",
            "The server holds each request until there is news: nearly instant where only \
             plain HTTP gets through, yet every tick still costs a request and its headers.",
        ),
        (
            "Server-Sent Events",
            "One response that never ends: for streams from the server (feeds, \
             notifications), reconnecting by itself; the client answers with ordinary requests.",
        ),
        (
            "WebSocket",
            "One connection both ways, a few bytes a message: the optimal choice for chat, \
             games and anything two-way, where proxies let the upgrade through.",
        ),
    ],
};

const ES: Words = Words {
    intro: "El servidor genera un tic cada 500 ms. Aquí llega de cuatro maneras a la vez: \
            mira cuánto tarda cada tic en llegar y cuánto cuesta cada manera en la red \
            (contado por el servidor en su socket, cabeceras HTTP incluidas).",
    every: "Sondear cada",
    seconds: "segundos",
    events: "Tics",
    last_delay: "Último retraso",
    mean_delay: "Retraso medio",
    requests: "Peticiones",
    bytes: "Bytes (subida · bajada)",
    chart: "Retraso de cada uno de los últimos tics",
    scale: "tope de la escala:",
    lanes: [
        (
            "Sondeo",
            "Preguntar cada N segundos: sirve para datos que cambian poco, pero cada tic \
             espera hasta N s y cada pregunta cuesta una petición entera, haya novedades o no.",
        ),
        (
            "Sondeo largo",
            "El servidor retiene cada petición hasta que hay novedades: casi inmediato donde \
             solo pasa HTTP simple, aunque cada tic sigue costando una petición y sus cabeceras.",
        ),
        (
            "Server-Sent Events",
            "Una respuesta que no termina: para flujos del servidor (noticias, avisos), con \
             reconexión incluida; el cliente contesta con peticiones normales.",
        ),
        (
            "WebSocket",
            "Una conexión en ambos sentidos, pocos bytes por mensaje: la solución óptima para \
             chat, juegos y todo lo bidireccional, donde los proxies dejan pasar el upgrade.",
        ),
    ],
};

/// The lesson's words in `lang`.
pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Es => &ES,
        Lang::En => &EN,
    }
}
