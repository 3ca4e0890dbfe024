//! The random ticker page (`/random`): the server's greeting, and random numbers (1–1000)
//! every N ms (N ≥ 100) until stopped; N can be changed while it runs. The ticker stops when
//! the page is left.

use leptos::prelude::*;
use shared::exercises::{MAX_TICKER_MS, MIN_TICKER_MS};

use crate::i18n::use_i18n;
use crate::use_connection;

/// The interval the form starts with, in ms.
const DEFAULT_EVERY_MS: u32 = 1_000;

/// The whole random ticker page.
#[component]
pub fn RandomPage() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    // Leaving the page stops its ticker.
    on_cleanup(move || {
        if exercises
            .ticker_wanted
            .try_get_untracked()
            .flatten()
            .is_some()
        {
            exercises.ticker_wanted.try_set(None);
            conn.stop_ticker();
        }
    });
    view! {
        <section class="exercise" aria-labelledby="random-title">
            <h2 id="random-title">{move || i18n.t().random_title}</h2>
            <p id="greeting">
                {move || {
                    exercises
                        .greeting
                        .get()
                        .map(|g| (i18n.t().greeting)(&g))
                        .unwrap_or_default()
                }}
            </p>
            <TickerCard />
            <RandomsCard />
        </section>
    }
}

/// The ticker's card: the interval form, the bounds it takes, and what the ticker is doing.
/// The form's text, its refusal and "offline" live here, shared by the form and the state line.
#[component]
fn TickerCard() -> impl IntoView {
    let i18n = use_i18n();
    let every = RwSignal::new(DEFAULT_EVERY_MS.to_string());
    let invalid = RwSignal::new(false);
    let offline = RwSignal::new(false);
    view! {
        <section class="card" aria-labelledby="ticker-title">
            <h3 id="ticker-title">{move || i18n.t().ticker_title}</h3>
            <TickerForm every invalid offline />
            <p id="ticker-help" class=move || if invalid.get() { "field-error" } else { "hint" }>
                {move || (i18n.t().ticker_bounds)(MIN_TICKER_MS)}
            </p>
            <TickerState offline />
        </section>
    }
}

/// The interval typed, if it is a whole number of ms within the server's bounds.
fn parse_every(text: &str) -> Option<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|ms| (MIN_TICKER_MS..=MAX_TICKER_MS).contains(ms))
}

/// The interval form: "start" (or "change" while running) asks the server for the ticker at
/// the interval typed, checked here first; "stop" ends it.
#[component]
fn TickerForm(
    /// The interval as typed, in ms.
    every: RwSignal<String>,
    /// Whether the last interval submitted was refused here.
    invalid: RwSignal<bool>,
    /// Whether the last start could not be sent (not connected).
    offline: RwSignal<bool>,
) -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let every_ms = parse_every(&every.get_untracked());
        invalid.set(every_ms.is_none());
        let Some(every_ms) = every_ms else {
            return;
        };
        if exercises.ticker_wanted.get_untracked().is_none() {
            exercises.randoms.set(Vec::new());
        }
        exercises.ticker_wanted.set(Some(every_ms));
        let sent = conn.start_ticker(every_ms);
        // Not connected: the connection asks for it once it is (`Exercises::resubscribe`).
        offline.set(!sent);
    };
    let stop = move |_| {
        exercises.ticker_wanted.set(None);
        exercises.ticker_running.set(None);
        offline.set(false);
        conn.stop_ticker();
    };
    let running = move || exercises.ticker_wanted.get().is_some();
    view! {
        <form id="ticker-form" class="inline-form" on:submit=start novalidate>
            <label for="ticker-ms">{move || i18n.t().ticker_every}</label>
            <input
                id="ticker-ms"
                type="number"
                inputmode="numeric"
                min=MIN_TICKER_MS
                max=MAX_TICKER_MS
                step="100"
                aria-invalid=move || invalid.get().to_string()
                aria-describedby="ticker-help"
                prop:value=move || every.get()
                on:input=move |ev| every.set(event_target_value(&ev))
            />
            <button id="ticker-start" type="submit">
                {move || if running() { i18n.t().ticker_change } else { i18n.t().ticker_start }}
            </button>
            <button id="ticker-stop" type="button" on:click=stop disabled=move || !running()>
                {move || i18n.t().ticker_stop}
            </button>
        </form>
    }
}

/// What the ticker is doing (`#ticker-state`): stopped, running every N ms, starting (asked,
/// not yet confirmed), or waiting for the connection.
#[component]
fn TickerState(
    /// Whether the last start could not be sent (not connected).
    offline: RwSignal<bool>,
) -> impl IntoView {
    let exercises = use_connection().exercises;
    let i18n = use_i18n();
    view! {
        <p id="ticker-state" role="status">
            {move || match (exercises.ticker_wanted.get(), exercises.ticker_running.get()) {
                (None, _) => i18n.t().ticker_stopped.to_owned(),
                (Some(_), Some(ms)) => (i18n.t().ticker_running)(ms),
                (Some(_), None) if offline.get() => i18n.t().offline.to_owned(),
                (Some(_), None) => i18n.t().ticker_starting.to_owned(),
            }}
        </p>
    }
}

/// The random numbers received since the ticker was started, oldest first.
#[component]
fn RandomsCard() -> impl IntoView {
    let exercises = use_connection().exercises;
    let i18n = use_i18n();
    view! {
        <section class="card" aria-labelledby="randoms-title">
            <h3 id="randoms-title">{move || i18n.t().randoms_title}</h3>
            <Show
                when=move || !exercises.randoms.get().is_empty()
                fallback=move || view! { <p class="empty">{move || i18n.t().randoms_none}</p> }
            >
                <ol id="randoms" class="randoms">
                    {move || {
                        exercises
                            .randoms
                            .get()
                            .into_iter()
                            .map(|n| view! { <li>{n}</li> })
                            .collect_view()
                    }}
                </ol>
            </Show>
        </section>
    }
}
