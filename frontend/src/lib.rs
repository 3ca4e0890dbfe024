//! Charla's page: Leptos (client-side rendered), compiled to WebAssembly and built by trunk.
//!
//! # Layout
//!
//! - [`connection`]: the one module that owns the WebSocket. [`ChatState`] holds what the page
//!   shows as signals (connection state, this page's id and name, the rooms it is in, the room
//!   in view, and per room a [`RoomState`]: history, members, typists, unread count);
//!   [`Connection`] keeps the socket open (saying `hello` first, reconnecting with backoff
//!   and resuming the session), signs in (the server's `/api/config`; a token from the app's
//!   token URL or the dev-login, presented in the `hello` and refreshed on `token_expiring`),
//!   applies every [`shared::ServerMsg`] in one exhaustive `match` ([`Connection::apply`]),
//!   and carries out what the user does (send, type, join, leave, switch rooms, rename, sign
//!   in and out). `connection::storage` keeps name, rooms, resume token, pending lines and
//!   the dev-login identity in the browser; `connection::socket` the WebSocket itself,
//!   `connection::state` the signals, `connection::sign_in` the token's life.
//! - [`components`]: views that only read [`ChatState`]'s signals and call [`Connection`]:
//!   status bar, sign-in area, name form, rooms panel, room header and members, composer,
//!   live typing, history, the navigation (`components::nav`), and the exercise pages:
//!   echo and named events (`components::echo`), the random ticker (`components::random`),
//!   the live product list (`components::products`).
//! - [`exercises`]: what the exercise pages show, as signals, fed by the same `match`.
//! - [`App`]: puts them together for one [`Site`]: the chat (`/` shows `general`,
//!   `/r/<name>` that room, joined on arrival, so a link opens a room and back/forward move
//!   between rooms) or the exercises, each a wasm of its own; every page's link and title
//!   come from one table, `components::nav::PAGES`. [`router`] keeps the view in step with
//!   the address bar. `main.rs` mounts the chat, `bin/exercises.rs` the exercises.
//! - [`i18n`]: every text the page shows, in Spanish and English ([`i18n::Texts`]), the
//!   language in the context ([`i18n::I18n`]) and the switch in the header
//!   ([`i18n::LangSwitch`]). Components read their words with `use_i18n().t()`.
//!
//! Every piece of user text (lines, names, typing) is rendered as text (`{text}`), never as
//! HTML.

pub mod components;
pub mod connection;
pub mod console;
pub mod exercises;
pub mod i18n;
pub mod router;

use leptos::prelude::*;

pub use connection::{
    AuthConfig, AuthMode, ChatState, ConnState, Connection, DevIdentity, Frames, GoTo, LiveText,
    Notice, RoomState, RouteError, SendError, SignInNotice, TransportKind, minutes_left, room_path,
    use_connection,
};

use components::{NameForm, NavBar, NotFound, RoomPage, RoomsPanel, SignIn, StatusBar};
use i18n::{provide_i18n, use_i18n};
use router::{Router, use_router};

/// Which of the page's two apps a wasm is. The chat (`src/main.rs`, what `/` loads) and the
/// exercises (`src/bin/exercises.rs`, built into `dist/exercises/` and loaded on their
/// paths) share this crate, its header and its connection, but each links only its own
/// views, so the chat's first visit downloads none of the exercises (trunk 0.21 cannot split
/// one wasm). A link to the other app's path is a page load (see [`router`]).
#[derive(Clone, Copy)]
pub struct Site {
    /// Whether this app shows a path (the chat also answers the paths that are no page, with
    /// "not found").
    pub shows: fn(&str) -> bool,
    /// The view of one of this app's whole-width pages, by path (`None`: not found).
    pub page: fn(&str) -> Option<AnyView>,
    /// Which of the server's messages it reads.
    pub frames: Frames,
}

impl Site {
    /// The chat: `/`, `/r/<room>`, and "not found" for any path that is no page.
    pub const CHAT: Site = Site {
        shows: |path| !shared::exercises::is_page(path),
        page: |_| None,
        frames: Frames::CHAT,
    };
}

/// The whole page: connects to `/ws?v=2` on the page's own host and shows `site`'s pages, in
/// the language chosen (see [`i18n`]).
#[component]
pub fn App(
    /// Which app this is.
    site: Site,
) -> impl IntoView {
    provide_i18n();
    Router::provide(site.shows);
    let state = ChatState::new();
    let conn = Connection::reading(state, site.frames);
    conn.connect();
    // A room in view is read only while the page is in sight: read it when it comes back.
    let on_shown = window_event_listener_untyped("visibilitychange", move |_| {
        if !document().hidden() {
            conn.page_shown();
        }
    });
    // The socket and its timers belong to the page: gone with it.
    on_cleanup(move || {
        on_shown.remove();
        conn.disconnect();
    });
    // Every component reaches the connection through the context (`use_connection`).
    provide_context(conn);
    view! { <Shell site /> }
}

/// What a path shows: the chat's room beside the rooms panel, one of the app's whole-width
/// pages, or "not found" (the whole width too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Page(&'static str),
    NotFound,
}

impl Route {
    fn of(path: &str, site: Site) -> Self {
        if router::chat_route(path).is_some() {
            return Route::Chat;
        }
        match components::nav::page_of(path) {
            Some(page) if (site.shows)(path) => Route::Page(page.path),
            _ => Route::NotFound,
        }
    }
}

/// The view the address shows: re-rendered only when the route changes (a room to another
/// room is the same route; [`RoomPage`] follows the path itself).
fn routes(site: Site, panel_open: RwSignal<bool>) -> impl IntoView {
    let path = use_router().path();
    let route = Memo::new(move |_| path.with(|p| Route::of(p, site)));
    move || match route.get() {
        Route::Chat => view! {
            <ChatLayout panel_open>
                <RoomPage />
            </ChatLayout>
        }
        .into_any(),
        Route::Page(page) => match (site.page)(page) {
            Some(view) => view! { <Wide>{view}</Wide> }.into_any(),
            None => view! { <Wide><NotFound /></Wide> }.into_any(),
        },
        Route::NotFound => view! { <Wide><NotFound /></Wide> }.into_any(),
    }
}

/// The chat's layout: the rooms panel (folded away on a phone unless `panel_open`) beside
/// the room the route shows.
#[component]
fn ChatLayout(panel_open: RwSignal<bool>, children: Children) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="layout">
            <nav id="room-panel" class="panel" class:open=move || panel_open.get() aria-label=move || i18n.t().rooms>
                <RoomsPanel />
            </nav>
            <main class="chat">
                {children()}
            </main>
        </div>
    }
}

/// Every other page's layout: the whole width.
#[component]
fn Wide(children: Children) -> impl IntoView {
    view! {
        <div class="layout wide">
            <main class="chat exercises">{children()}</main>
        </div>
    }
}

/// Lines not yet seen in every room this page is in (tracked).
fn total_unread(state: ChatState) -> u32 {
    state
        .joined
        .with(|joined| joined.iter().map(|r| state.room(r).unread.get()).sum())
}

/// The page's frame: header (name, status, language), then what the route shows in its
/// layout: the chat's pages beside the rooms panel, the others the whole width (the routes
/// come from [`components::nav::PAGES`]).
#[component]
fn Shell(site: Site) -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let i18n = use_i18n();
    // On a phone-sized screen the panel folds away behind a button; on a desktop the style
    // sheet always shows it.
    let panel_open = RwSignal::new(false);
    let router = use_router();
    // The connection asks for navigations (joining from the form, leaving the room in
    // view); the router carries them out, so the URL always names the room in view.
    Effect::new(move |_| {
        if let Some(GoTo { room, replace }) = state.go_to.get() {
            state.go_to.set(None);
            router.navigate(&room_path(&room), replace);
        }
    });
    Effect::new(move |_| {
        state.current.track();
        panel_open.set(false);
    });
    let path = router.path();
    // The chat's pages show the rooms; the exercise pages do not.
    let is_chat = Memo::new(move |_| path.with(|p| components::nav::is_chat(p)));
    keep_title(state, i18n, path);
    view! {
        <div class="app">
            <header class="top">
                <NavBar />
                <div class="brand">
                    <Show when=move || is_chat.get()>
                        <RoomsToggle panel_open />
                    </Show>
                    <h1>{move || i18n.t().app_name}</h1>
                </div>
                <StatusBar />
                <SignIn />
                <Show when=move || is_chat.get()>
                    <NameForm />
                </Show>
            </header>
            {routes(site, panel_open)}
        </div>
    }
}

/// Keeps the document's title up to date: a page's own title (from
/// [`components::nav::PAGES`]) after the app's name, or on the chat's pages the room in view
/// and the lines not yet seen, so a background tab shows that something arrived.
fn keep_title(state: ChatState, i18n: i18n::I18n, pathname: ReadSignal<String>) {
    Effect::new(move |_| {
        let t = i18n.t();
        let page = pathname.with(|p| {
            components::nav::page_of(p)
                .and_then(|page| page.title)
                .map(|title| title(t))
        });
        let title = match page {
            Some(page) => format!("{page} · {}", t.app_name),
            None => (t.title)(state.current.get().as_str(), total_unread(state)),
        };
        document().set_title(&title);
    });
}

/// The header's button (`#rooms-toggle`) that unfolds the rooms panel on a phone-sized
/// screen, with the unread lines of every room on it while the panel's own badges are folded
/// away.
#[component]
fn RoomsToggle(
    /// Whether the rooms panel is unfolded.
    panel_open: RwSignal<bool>,
) -> impl IntoView {
    let state = use_connection().state;
    let i18n = use_i18n();
    view! {
        <button
            id="rooms-toggle"
            class="quiet toggle"
            type="button"
            aria-controls="room-panel"
            aria-expanded=move || panel_open.get().to_string()
            on:click=move |_| panel_open.update(|open| *open = !*open)
        >
            {move || i18n.t().rooms}
            // Folded away, the panel's badges are out of sight: their sum is not.
            {move || {
                let unread = total_unread(state);
                (unread > 0)
                    .then(|| {
                        view! {
                            " "
                            <span class="unread">{unread}</span>
                            <span class="visually-hidden">
                                " "
                                {move || i18n.t().unread}
                            </span>
                        }
                    })
            }}
        </button>
    }
}
