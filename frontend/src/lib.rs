//! Charla's page: Leptos (client-side rendered), compiled to WebAssembly and built by trunk.
//!
//! # Layout
//!
//! - [`connection`]: the one module that owns the WebSocket. [`ChatState`] holds what the page
//!   shows as signals; [`Connection`] keeps the socket open (reconnecting with backoff and
//!   resuming the session), applies every [`shared::ServerMsg`] in one exhaustive `match`
//!   ([`Connection::apply`]), and sends `send`/`typing`.
//! - [`components`]: views that only read [`ChatState`]'s signals and call [`Connection`]:
//!   status bar, composer, live-typing paragraph, history.
//! - [`App`]: puts them together. `main.rs` only mounts it.
//!
//! Every piece of user text is rendered as text (`{text}`), never as HTML.

pub mod components;
pub mod connection;

use leptos::prelude::*;

pub use connection::{ChatState, ConnState, Connection, LiveText, SendError};

use components::{Composer, History, LiveTyping, StatusBar};

/// The whole page: connects to `/ws` on the page's own host and shows the chat.
#[component]
pub fn App() -> impl IntoView {
    let state = ChatState::new();
    let conn = Connection::new(state);
    conn.connect();
    view! {
        <main class="chat">
            <header class="top">
                <h1>"Charla"</h1>
                <StatusBar conn=conn />
            </header>
            <Composer conn=conn />
            <LiveTyping state=state />
            <History conn=conn />
        </main>
    }
}
