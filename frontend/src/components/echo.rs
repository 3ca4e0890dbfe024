//! The echo page (`/echo`): the plain echo server (its own socket to `/echo`, "Mensaje N"
//! and what came back), named events (`tic` once a second on the chat's JSON socket, and
//! ordinary `echo` messages that come back), and binary frames (256 B or 64 KiB, checked).

use std::time::Duration;

use futures_util::{
    StreamExt,
    future::{AbortHandle, Abortable},
};
use gloo_net::websocket::{Message, futures::WebSocket as Stream};
use leptos::{prelude::*, task::spawn_local};
use shared::{exercises::BINARY_SIZES, session::Backoff};
use wasm_bindgen::JsCast;
use web_sys::WebSocket;

use crate::use_connection;
use crate::{connection::page_ws_url, i18n::use_i18n};

/// The echo socket's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoState {
    /// Opening.
    Connecting,
    /// Open.
    Open,
    /// Dropped (or never opened); trying again soon.
    Down,
}

/// Waits between attempts to reopen the echo socket: full jitter under a ceiling that
/// starts at 1 s and doubles up to 8 s (the chat socket's backoff, from `shared`).
const BACKOFF: Backoff = Backoff::new(1_000, 8_000);
/// The most echoes the page keeps.
const KEPT: usize = 100;

/// The plain echo socket: open while the page is, reopened (with backoff) when it drops.
#[derive(Clone, Copy)]
struct EchoSocket {
    state: RwSignal<EchoState>,
    received: RwSignal<Vec<String>>,
    ws: StoredValue<Option<(WebSocket, AbortHandle)>, LocalStorage>,
    retry: StoredValue<Option<TimeoutHandle>, LocalStorage>,
    backoff: StoredValue<Backoff>,
    /// False once the page is gone: nothing reopens then.
    alive: StoredValue<bool>,
}

impl EchoSocket {
    fn new() -> Self {
        EchoSocket {
            state: RwSignal::new(EchoState::Connecting),
            received: RwSignal::new(Vec::new()),
            ws: StoredValue::new_local(None),
            retry: StoredValue::new_local(None),
            backoff: StoredValue::new(BACKOFF),
            alive: StoredValue::new(true),
        }
    }

    fn open(self) {
        if !self.alive.get_value() {
            return;
        }
        // Once down, it says so until a socket is open again (the course's "¡¡DESCONECTADO!!").
        if self.state.get_untracked() != EchoState::Down {
            self.state.set(EchoState::Connecting);
        }
        let Some(url) = page_ws_url("/echo") else {
            self.state.set(EchoState::Down);
            return;
        };
        let Ok(ws) = WebSocket::new(&url) else {
            self.dropped();
            return;
        };
        let Ok(mut stream) = Stream::try_from(ws.clone()) else {
            let _ = ws.close();
            self.dropped();
            return;
        };
        let (abort, registration) = AbortHandle::new_pair();
        self.ws.set_value(Some((ws.clone(), abort)));
        let opened = {
            let state = self.state;
            let backoff = self.backoff;
            wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
                backoff.update_value(Backoff::reset);
                state.set(EchoState::Open);
            })
        };
        ws.add_event_listener_with_callback("open", opened.as_ref().unchecked_ref())
            .ok();
        opened.forget();
        spawn_local(async move {
            let read = async {
                while let Some(frame) = stream.next().await {
                    match frame {
                        Ok(Message::Text(text)) => self.received.update(|r| {
                            r.push(text);
                            if r.len() > KEPT {
                                r.remove(0);
                            }
                        }),
                        Ok(Message::Bytes(_)) | Err(_) => {}
                    }
                }
            };
            let _ = Abortable::new(read, registration).await;
            self.dropped();
        });
    }

    /// The socket closed: say so, and try again after a backoff.
    fn dropped(self) {
        if !self.alive.try_get_value().unwrap_or(false) {
            return;
        }
        self.ws.set_value(None);
        self.state.set(EchoState::Down);
        let delay_ms = self
            .backoff
            .try_update_value(|b| b.next_delay_ms(js_sys::Math::random()))
            .unwrap_or(1_000);
        let delay = Duration::from_millis(delay_ms);
        let retry = set_timeout_with_handle(move || self.open(), delay).ok();
        self.retry.set_value(retry);
    }

    fn send(self, text: &str) -> bool {
        self.ws.with_value(|ws| {
            ws.as_ref()
                .filter(|(ws, _)| ws.ready_state() == WebSocket::OPEN)
                .is_some_and(|(ws, _)| ws.send_with_str(text).is_ok())
        })
    }

    fn close(self) {
        self.alive.try_set_value(false);
        if let Some(Some(retry)) = self.retry.try_update_value(Option::take) {
            retry.clear();
        }
        if let Some(Some((ws, abort))) = self.ws.try_update_value(Option::take) {
            abort.abort();
            let _ = ws.close();
        }
    }
}

/// The whole echo page.
#[component]
pub fn EchoPage() -> impl IntoView {
    let _conn = use_connection();
    let i18n = use_i18n();
    view! {
        <section class="exercise" aria-labelledby="echo-title">
            <h2 id="echo-title">{move || i18n.t().echo_title}</h2>
            <EchoServer />
            <NamedEvents />
            <BinaryFrames />
        </section>
    }
}

/// The plain echo server: a button that sends "Mensaje N", and what came back.
#[component]
pub fn EchoServer() -> impl IntoView {
    let i18n = use_i18n();
    let socket = EchoSocket::new();
    socket.open();
    on_cleanup(move || socket.close());
    let sent = RwSignal::new(0u32);
    let send = move |_| {
        let n = sent.get_untracked() + 1;
        // The exercise's own message, the same in every language.
        if socket.send(&format!("Mensaje {n}")) {
            sent.set(n);
        }
    };
    view! {
        <section class="card" aria-labelledby="echo-server-title">
            <h3 id="echo-server-title">{move || i18n.t().echo_server}</h3>
            <p>{move || i18n.t().echo_server_intro}</p>
            <p id="echo-state" role="status" class=move || match socket.state.get() {
                EchoState::Open => "pill connected",
                EchoState::Connecting => "pill connecting",
                EchoState::Down => "pill down",
            }>
                {move || match socket.state.get() {
                    EchoState::Open => i18n.t().echo_connected,
                    EchoState::Connecting => i18n.t().echo_connecting,
                    EchoState::Down => i18n.t().echo_disconnected,
                }}
            </p>
            <button
                id="echo-send"
                type="button"
                on:click=send
                disabled=move || socket.state.get() != EchoState::Open
            >
                {move || i18n.t().echo_send}
            </button>
            <h4>{move || i18n.t().echo_received}</h4>
            <ul id="echoes" class="echoes" aria-live="polite">
                <For
                    each=move || socket.received.get().into_iter().enumerate()
                    key=|(i, _)| *i
                    children=move |(_, text)| view! { <li class="echoed">{text}</li> }
                />
            </ul>
        </section>
    }
}

/// Named events: a `tic` every second while on (logged by the server, never answered), and
/// ordinary `echo` messages (answered) on the chat's JSON socket.
#[component]
pub fn NamedEvents() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <section class="card" aria-labelledby="events-title">
            <h3 id="events-title">{move || i18n.t().events_title}</h3>
            <p>{move || i18n.t().events_intro}</p>
            <TicToggle />
            <JsonEcho />
        </section>
    }
}

/// The `tic` switch: while on, a `tic` goes out every second (counted only when sent), and
/// the last one sent shows below it. The timer ends with the page.
#[component]
fn TicToggle() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    let ticking = RwSignal::new(false);
    let timer: StoredValue<Option<IntervalHandle>, LocalStorage> = StoredValue::new_local(None);
    let stop = move || {
        if let Some(Some(t)) = timer.try_update_value(Option::take) {
            t.clear();
        }
    };
    on_cleanup(stop);
    let toggle = move |_| {
        if ticking.get_untracked() {
            stop();
            ticking.set(false);
            return;
        }
        let handle = set_interval_with_handle(
            move || {
                let n = exercises.tics.get_untracked() + 1;
                if conn.tic(n) {
                    exercises.tics.set(n);
                }
            },
            Duration::from_secs(1),
        );
        timer.set_value(handle.ok());
        ticking.set(true);
    };
    view! {
        <button
            id="tic-toggle"
            type="button"
            aria-pressed=move || ticking.get().to_string()
            on:click=toggle
        >
            {move || if ticking.get() { i18n.t().tic_stop } else { i18n.t().tic_start }}
        </button>
        <p id="tic-last" role="status">
            {move || match exercises.tics.get() {
                0 => i18n.t().tic_none.to_owned(),
                n => (i18n.t().tic_last)(n),
            }}
        </p>
    }
}

/// The JSON echo: a form whose text goes out as an `echo` (kept in the box if it could not be
/// sent, with a notice), and what came back, oldest first.
#[component]
fn JsonEcho() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    let draft = RwSignal::new(String::new());
    let offline = RwSignal::new(false);
    let send_echo = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = draft.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        let sent = conn.echo(text);
        offline.set(!sent);
        if sent {
            draft.set(String::new());
        }
    };
    view! {
        <form id="json-echo-form" class="inline-form" on:submit=send_echo>
            <label for="json-echo-input">{move || i18n.t().json_echo_label}</label>
            <input
                id="json-echo-input"
                type="text"
                autocomplete="off"
                maxlength="2000"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
            />
            <button id="json-echo-send" type="submit">{move || i18n.t().send}</button>
        </form>
        <Show when=move || offline.get()>
            <p class="notice" role="alert">{move || i18n.t().offline}</p>
        </Show>
        <ul id="json-echoes" class="echoes" aria-live="polite">
            <For
                each=move || exercises.echoes.get().into_iter().enumerate()
                key=|(i, _)| *i
                children=move |(_, text)| view! { <li class="echoed">{text}</li> }
            />
        </ul>
    }
}

/// Binary frames: ask for 256 B or 64 KiB; the page shows the size and the checksum it
/// verified.
#[component]
pub fn BinaryFrames() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let exercises = conn.exercises;
    let ask = move |size: u32| {
        exercises.binary.set(None);
        conn.binary(size);
    };
    view! {
        <section class="card" aria-labelledby="binary-title">
            <h3 id="binary-title">{move || i18n.t().binary_title}</h3>
            <p>{move || i18n.t().binary_intro}</p>
            <div class="buttons">
                {BINARY_SIZES
                    .into_iter()
                    .map(|size| {
                        view! {
                            <button
                                id=format!("binary-{size}")
                                type="button"
                                on:click=move |_| ask(size)
                            >
                                {move || (i18n.t().binary_ask)(&size_label(size))}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            <p id="binary-result" role="status" class=move || match exercises.binary.get() {
                Some(check) if check.verified => "verified",
                Some(_) => "mismatch",
                None => "",
            }>
                {move || match (exercises.binary.get(), exercises.binary_expected.get()) {
                    (Some(check), _) => {
                        (i18n.t().binary_result)(check.size, check.checksum, check.verified)
                    }
                    (None, Some(_)) => i18n.t().binary_waiting.to_owned(),
                    (None, None) => String::new(),
                }}
            </p>
        </section>
    }
}

/// "256 B", "64 KiB".
pub fn size_label(size: u32) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}
