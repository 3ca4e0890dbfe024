//! The status bar: this page's id, the connection state, how many are online.

use leptos::prelude::*;

use crate::{ChatState, ConnState, Connection};

/// Shows who this page is, whether it is connected (or when it will try again), and how
/// many clients are online. While it waits to reconnect it offers to try right away.
#[component]
pub fn StatusBar(conn: Connection) -> impl IntoView {
    let state: ChatState = conn.state;
    view! {
        <div class="status" role="status">
            <span>
                "You are "
                <code id="my-id">
                    {move || state.my_id.get().map_or_else(|| "…".to_owned(), |id| id.to_string())}
                </code>
            </span>
            <span id="conn-state" class=move || format!("pill {}", state.status.get().label())>
                {move || state.status_text()}
            </span>
            <span id="online">{move || format!("{} online", state.online.get())}</span>
            <Show when=move || {
                matches!(state.status.get(), ConnState::Reconnecting | ConnState::Disconnected)
            }>
                <button id="reconnect" class="quiet" type="button" on:click=move |_| conn.open()>
                    "Reconnect now"
                </button>
            </Show>
        </div>
    }
}
