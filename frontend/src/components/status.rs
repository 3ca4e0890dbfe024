//! The status bar: this page's id, the connection state, how many are online.

use leptos::prelude::*;

use crate::{ChatState, ConnState, Connection};

/// Shows who this page is, whether it is connected, and how many clients are online. When the
/// server has gone away it says so and offers to reconnect.
#[component]
pub fn StatusBar(state: ChatState, conn: Connection) -> impl IntoView {
    view! {
        <div class="status" role="status">
            <span>
                "You are "
                <code id="my-id">
                    {move || state.my_id.get().map_or_else(|| "…".to_owned(), |id| id.to_string())}
                </code>
            </span>
            <span id="conn-state" class=move || format!("pill {}", state.status.get().label())>
                {move || state.status.get().label()}
            </span>
            <span id="online">{move || format!("{} online", state.online.get())}</span>
            <Show when=move || state.status.get() == ConnState::Disconnected>
                <button id="reconnect" type="button" on:click=move |_| conn.connect()>
                    "Reconnect"
                </button>
            </Show>
        </div>
    }
}
