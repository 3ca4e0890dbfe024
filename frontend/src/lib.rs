//! Charla's page: Leptos (client-side rendered), compiled to WebAssembly and built by trunk.
//!
//! # Layout
//!
//! - [`connection`]: the one module that owns the WebSocket. [`ChatState`] holds what the page
//!   shows as signals (connection state, this page's id and name, the rooms it is in, the room
//!   in view, and per room a [`RoomState`]: history, members, typists, unread count);
//!   [`Connection`] keeps the socket open (saying `hello` first, reconnecting with backoff
//!   and resuming the session), applies every [`shared::ServerMsg`] in one exhaustive `match`
//!   ([`Connection::apply`]), and carries out what the user does (send, type, join, leave,
//!   switch rooms, rename). `connection::storage` keeps name, rooms, resume token and pending
//!   lines in the browser.
//! - [`components`]: views that only read [`ChatState`]'s signals and call [`Connection`]:
//!   status bar, name form, rooms panel, room header and members, composer, live typing,
//!   history.
//! - [`App`]: puts them together under a `leptos_router` [`Router`]: `/` shows `general`,
//!   `/r/<name>` that room (joined on arrival), so a link opens a room and back/forward move
//!   between rooms. `main.rs` only mounts it.
//!
//! Every piece of user text (lines, names, typing) is rendered as text (`{text}`), never as
//! HTML.

pub mod components;
pub mod connection;

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    components::{Route, Router, Routes},
    hooks::use_navigate,
    path,
};

pub use connection::{
    ChatState, ConnState, Connection, GoTo, LiveText, RoomState, SendError, room_path,
};

use components::{NameForm, NotFound, RoomPage, RoomsPanel, StatusBar};

/// The whole page: connects to `/ws?v=2` on the page's own host and shows the chat.
#[component]
pub fn App() -> impl IntoView {
    let state = ChatState::new();
    let conn = Connection::new(state);
    conn.connect();
    // The socket and its timers belong to the page: gone with it.
    on_cleanup(move || conn.disconnect());
    view! {
        <Router>
            <Shell conn=conn />
        </Router>
    }
}

/// Lines not yet seen in every room this page is in (tracked).
fn total_unread(state: ChatState) -> u32 {
    state
        .joined
        .with(|joined| joined.iter().map(|r| state.room(r).unread.get()).sum())
}

/// The page's frame: header (name, status), the rooms panel, and the room the URL names.
#[component]
fn Shell(conn: Connection) -> impl IntoView {
    let state = conn.state;
    // On a phone-sized screen the panel folds away behind a button; on a desktop the style
    // sheet always shows it.
    let panel_open = RwSignal::new(false);
    let navigate = use_navigate();
    // The connection asks for navigations (joining from the form, leaving the room in
    // view); the router carries them out, so the URL always names the room in view.
    Effect::new(move |_| {
        if let Some(GoTo { room, replace }) = state.go_to.get() {
            state.go_to.set(None);
            navigate(
                &room_path(&room),
                NavigateOptions {
                    replace,
                    ..Default::default()
                },
            );
        }
    });
    Effect::new(move |_| {
        state.current.track();
        panel_open.set(false);
    });
    Effect::new(move |_| {
        let room = state.current.get();
        let unread = total_unread(state);
        let title = match unread {
            0 => format!("{room} · Charla"),
            n => format!("({n}) {room} · Charla"),
        };
        document().set_title(&title);
    });
    view! {
        <div class="app">
            <header class="top">
                <div class="brand">
                    <button
                        id="rooms-toggle"
                        class="quiet toggle"
                        type="button"
                        aria-controls="room-panel"
                        aria-expanded=move || panel_open.get().to_string()
                        on:click=move |_| panel_open.update(|open| *open = !*open)
                    >
                        "Rooms"
                        // Folded away, the panel's badges are out of sight: their sum is not.
                        {move || {
                            let unread = total_unread(state);
                            (unread > 0)
                                .then(|| {
                                    view! {
                                        " "
                                        <span class="unread">{unread}</span>
                                        <span class="visually-hidden">" unread"</span>
                                    }
                                })
                        }}
                    </button>
                    <h1>"Charla"</h1>
                </div>
                <StatusBar conn=conn />
                <NameForm conn=conn />
            </header>
            <div class="layout">
                <nav id="room-panel" class="panel" class:open=move || panel_open.get() aria-label="Rooms">
                    <RoomsPanel conn=conn />
                </nav>
                <main class="chat">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=move || view! { <RoomPage conn=conn /> } />
                        <Route path=path!("/r/:room") view=move || view! { <RoomPage conn=conn /> } />
                    </Routes>
                </main>
            </div>
        </div>
    }
}
