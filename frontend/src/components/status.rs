//! The status bar: this page's name and id, and the connection state.

use leptos::prelude::*;

use crate::use_connection;
use crate::{ChatState, ConnState, i18n::use_i18n};

/// Shows who this page is (its name; its id, which tells apart two people of the same name)
/// and whether it is connected (or when it will try again). While it waits to reconnect it
/// offers to try right away.
#[component]
pub fn StatusBar() -> impl IntoView {
    let conn = use_connection();
    let state: ChatState = conn.state;
    let i18n = use_i18n();
    view! {
        <div class="status" role="status">
            <span class="me">
                {move || i18n.t().you_are}
                <strong id="my-name">{move || state.my_name.get()}</strong>
                " "
                <code id="my-id" title=move || i18n.t().your_id>
                    {move || {
                        state
                            .my_id
                            .get()
                            .map_or_else(|| i18n.t().no_id_yet.to_owned(), |id| id.to_string())
                    }}
                </code>
            </span>
            <span id="conn-state" class=move || format!("pill {}", state.status.get().label())>
                {move || state.status_text(i18n.t())}
            </span>
            <span id="transport" class="pill transport" title=move || i18n.t().transport_title>
                {move || state.transport.get().label()}
            </span>
            <Show when=move || {
                matches!(state.status.get(), ConnState::Reconnecting | ConnState::Disconnected)
            }>
                <button id="reconnect" class="quiet" type="button" on:click=move |_| conn.open()>
                    {move || i18n.t().reconnect_now}
                </button>
            </Show>
        </div>
    }
}
