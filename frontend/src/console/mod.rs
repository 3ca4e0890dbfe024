//! The operator's console (`/admin`, a wasm of its own: `src/bin/console.rs`): for whoever
//! holds the API key or an admin's token. Without one it shows a sign-in screen; with one,
//! live charts of the last 15 minutes, drawn here in SVG from the admins' stats stream
//! ([`stream`], [`chart`]), the rooms ([`rooms`]), sortable and filterable, each with a page
//! of its own ([`room`]: members, latest lines, moderation, audit), and the users and
//! sessions ([`people`]), and the servers with their load ([`nodes`]; several with `--redis`). Every request goes through the server API ([`api`]).
//!
//! The credential is kept in `sessionStorage` (gone with the tab) and sent as
//! `Authorization: Bearer …` on every request; a 401 or 403 sends the page back to the
//! sign-in screen, saying why.

pub mod api;
pub mod chart;
pub mod nodes;
pub mod people;
pub mod room;
pub mod rooms;
pub mod stream;

use leptos::prelude::*;
use shared::console::{SERIES, Sample, WINDOW_SECS};

use crate::connection::storage::{self, Store};

/// Where the credential is kept.
const KEY_STORAGE: &str = "charla.console";

/// The console's state. `Copy`: signals only.
#[derive(Clone, Copy)]
pub struct Console {
    /// The API key or admin's token in use (`None`: the sign-in screen).
    pub credential: RwSignal<Option<String>>,
    /// Why the last credential was refused, for the sign-in screen.
    pub refused: RwSignal<Option<String>>,
    /// The samples of the last 15 minutes, oldest first.
    pub samples: RwSignal<Vec<Sample>>,
    /// Whether the stats stream is open.
    pub live: RwSignal<bool>,
    /// The room whose page is open (`None`: the rooms table).
    pub room: RwSignal<Option<String>>,
}

impl Console {
    /// A console with the credential kept in this tab, if any.
    pub fn new() -> Self {
        Console {
            credential: RwSignal::new(storage::read(Store::Session, KEY_STORAGE)),
            refused: RwSignal::new(None),
            samples: RwSignal::new(Vec::with_capacity(WINDOW_SECS)),
            live: RwSignal::new(false),
            room: RwSignal::new(None),
        }
    }

    /// Uses `credential` from now on (and keeps it for this tab).
    pub fn sign_in(&self, credential: String) {
        storage::write(Store::Session, KEY_STORAGE, &credential);
        self.refused.set(None);
        self.credential.set(Some(credential));
    }

    /// Back to the sign-in screen, saying `why` (none: the user signed out).
    pub fn sign_out(&self, why: Option<String>) {
        storage::remove(Store::Session, KEY_STORAGE);
        self.samples.set(Vec::new());
        self.live.set(false);
        self.refused.set(why);
        self.credential.set(None);
    }

    /// A request refused with `status` (and the server's `message`): for 401, 403 and 404
    /// the credential no longer opens the console, and the page goes back to its sign-in
    /// screen; any status, what to say.
    pub fn refused_with(&self, status: u16, message: String) -> api::Failed {
        if matches!(status, 401 | 403 | 404) {
            self.sign_out(Some(refusal(status)));
        }
        api::Failed::Status(status, message)
    }

    /// The stream's `history`: what the server kept.
    pub fn history(&self, samples: Vec<Sample>) {
        self.samples.set(samples);
    }

    /// One more second, the oldest dropped past the window.
    pub fn sample(&self, sample: Sample) {
        self.samples.update(|kept| {
            if kept.len() >= WINDOW_SECS {
                kept.remove(0);
            }
            kept.push(sample);
        });
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a request was refused, for people.
pub(crate) fn refusal(status: u16) -> String {
    match status {
        401 => "That key or token was refused (401): check it and try again.".into(),
        403 => "That token's user is not an admin (403).".into(),
        404 => "This server has no console: start it with --api-key, or with sign-in (404).".into(),
        other => format!("The server answered {other}."),
    }
}

/// The whole console page: the sign-in screen, or the charts and the rooms.
#[component]
pub fn ConsoleApp() -> impl IntoView {
    let console = Console::new();
    provide_context(console);
    view! {
        <div class="app console">
            <header class="console-header">
                <h1>"Charla console"</h1>
                <a href="/">"Back to the chat"</a>
            </header>
            {move || match console.credential.get() {
                None => view! { <SignInScreen /> }.into_any(),
                Some(credential) => view! { <Dashboard credential /> }.into_any(),
            }}
        </div>
    }
}

/// The sign-in screen: the API key or an admin's token.
#[component]
pub fn SignInScreen() -> impl IntoView {
    let console = expect_context::<Console>();
    let typed = RwSignal::new(String::new());
    let blank = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let credential = typed.get_untracked().trim().to_owned();
        if credential.is_empty() {
            blank.set(true);
            return;
        }
        console.sign_in(credential);
    };
    view! {
        <main id="console-sign-in" class="card">
            <h2>"Sign in"</h2>
            <p>"The console is for operators: give the server's API key, or a token whose user has the role admin."</p>
            <form on:submit=submit>
                <label for="console-key">"API key or admin token"</label>
                <input
                    id="console-key"
                    type="password"
                    autocomplete="off"
                    aria-invalid=move || blank.get().to_string()
                    aria-describedby="console-key-problem"
                    prop:value=move || typed.get()
                    on:input=move |ev| {
                        blank.set(false);
                        typed.set(event_target_value(&ev));
                    }
                />
                <button type="submit">"Open the console"</button>
            </form>
            <p id="console-key-problem" class="notice" role="alert">
                {move || {
                    if blank.get() {
                        Some("Type the key or the token first.".to_owned())
                    } else {
                        console.refused.get()
                    }
                }}
            </p>
        </main>
    }
}

/// The console proper: the charts, fed by the stream, and the rooms.
#[component]
fn Dashboard(credential: String) -> impl IntoView {
    let console = expect_context::<Console>();
    let following = RwSignal::new(true);
    stream::follow(console, credential, following);
    on_cleanup(move || {
        following.try_set(false);
    });
    view! {
        <main id="console">
            <p class="console-status">
                <span class=move || if console.live.get() { "pill connected" } else { "pill reconnecting" } id="console-live">
                    {move || if console.live.get() { "live" } else { "connecting…" }}
                </span>
                <button type="button" id="console-sign-out" on:click=move |_| console.sign_out(None)>
                    "Sign out"
                </button>
            </p>
            <section aria-labelledby="charts-title">
                <h2 id="charts-title">"The last 15 minutes"</h2>
                <div class="charts">
                    {SERIES.iter().map(|series| view! { <chart::Chart series=*series /> }).collect_view()}
                </div>
            </section>
            <nodes::Nodes />
            {move || match console.room.get() {
                Some(name) => view! { <room::RoomPage name /> }.into_any(),
                None => view! { <rooms::Rooms /> }.into_any(),
            }}
            <people::People />
        </main>
    }
}
