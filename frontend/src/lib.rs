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
//! - [`App`]: puts them together under a `leptos_router` [`Router`]: `/` shows `general`,
//!   `/r/<name>` that room (joined on arrival), so a link opens a room and back/forward move
//!   between rooms; every other page's route, link and title come from one table,
//!   `components::nav::PAGES`. `main.rs` only mounts it.
//! - [`i18n`]: every text the page shows, in Spanish and English ([`i18n::Texts`]), the
//!   language in the context ([`i18n::I18n`]) and the switch in the header
//!   ([`i18n::LangSwitch`]). Components read their words with `use_i18n().t()`.
//!
//! Every piece of user text (lines, names, typing) is rendered as text (`{text}`), never as
//! HTML.

pub mod components;
pub mod connection;
pub mod exercises;
pub mod i18n;

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    components::{
        Outlet, ParentRoute, ParentRouteProps, Route, RouteChildren, Router, Routes, RoutesProps,
    },
    hooks::use_navigate,
    path,
};

pub use connection::{
    AuthConfig, AuthMode, ChatState, ConnState, Connection, DevIdentity, GoTo, LiveText, Notice,
    RoomState, RouteError, SendError, SignInNotice, room_path, use_connection,
};

use components::{NameForm, NavBar, NotFound, RoomPage, RoomsPanel, SignIn, StatusBar};
use i18n::{provide_i18n, use_i18n};
use leptos_router::hooks::use_location;

/// The whole page: connects to `/ws?v=2` on the page's own host and shows the chat, in the
/// language chosen (see [`i18n`]).
#[component]
pub fn App() -> impl IntoView {
    provide_i18n();
    let state = ChatState::new();
    let conn = Connection::new(state);
    conn.connect();
    // The socket and its timers belong to the page: gone with it.
    on_cleanup(move || conn.disconnect());
    // Every component reaches the connection through the context (`use_connection`).
    provide_context(conn);
    view! {
        <Router>
            <Shell />
        </Router>
    }
}

/// The router's routes: the chat's two (`/`, `/r/:room`) in its layout, then every page of
/// [`components::nav::PAGES`] with a view of its own, the whole width; anything else is
/// "not found", the whole width too.
fn routes(panel_open: RwSignal<bool>) -> impl IntoView {
    let chat = view! {
        <ParentRoute path=path!("") view=move || view! { <ChatLayout panel_open /> }>
            <Route path=path!("") view=RoomPage />
            <Route path=path!("r/:room") view=RoomPage />
        </ParentRoute>
    }
    .into_inner();
    let pages = ParentRoute(
        ParentRouteProps::builder()
            .path(path!(""))
            .view(|| view! { <Wide><Outlet /></Wide> })
            .children(RouteChildren::to_children(components::nav::page_routes))
            .build(),
    );
    Routes(
        RoutesProps::builder()
            .fallback(|| view! { <Wide><NotFound /></Wide> })
            .children(RouteChildren::to_children(move || (chat, pages)))
            .build(),
    )
}

/// The chat's layout: the rooms panel (folded away on a phone unless `panel_open`) beside
/// the room the route shows.
#[component]
fn ChatLayout(panel_open: RwSignal<bool>) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="layout">
            <nav id="room-panel" class="panel" class:open=move || panel_open.get() aria-label=move || i18n.t().rooms>
                <RoomsPanel />
            </nav>
            <main class="chat">
                <Outlet />
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
fn Shell() -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let i18n = use_i18n();
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
    let location = use_location();
    // The chat's pages show the rooms; the exercise pages do not.
    let is_chat = Memo::new(move |_| location.pathname.with(|p| components::nav::is_chat(p)));
    keep_title(state, i18n, location.pathname);
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
            {routes(panel_open)}
        </div>
    }
}

/// Keeps the document's title up to date: a page's own title (from
/// [`components::nav::PAGES`]) after the app's name, or on the chat's pages the room in view
/// and the lines not yet seen, so a background tab shows that something arrived.
fn keep_title(state: ChatState, i18n: i18n::I18n, pathname: Memo<String>) {
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
