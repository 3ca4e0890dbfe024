//! The history of the room in view: one line each, `<name> -> <text>` with the sender's id on
//! hover, oldest first; then this page's lines there still on their way (pending until the
//! server acknowledges them).

use leptos::prelude::*;
use shared::PendingLine;

use crate::use_connection;
use crate::{ChatState, RoomState, i18n::use_i18n};

/// The room's history, with a "load older" button while older lines exist, and the pending
/// lines below it. New lines are announced to screen readers (`aria-live`); the list is made
/// anew for each room, so switching rooms does not read a whole history out.
#[component]
pub fn History() -> impl IntoView {
    let conn = use_connection();
    let state: ChatState = conn.state;
    let i18n = use_i18n();
    let nothing_yet =
        move || state.in_view().history.with(Vec::is_empty) && pending_here(state).is_empty();
    view! {
        <section class="history-box" aria-labelledby="history-heading">
            <h3 id="history-heading">{move || i18n.t().history}</h3>
            <Show when=move || state.in_view().has_more.get()>
                <button
                    id="load-older"
                    class="quiet"
                    type="button"
                    on:click=move |_| conn.load_older()
                >
                    {move || i18n.t().load_older}
                </button>
            </Show>
            <Show when=nothing_yet>
                <p class="empty">{move || i18n.t().no_lines_yet}</p>
            </Show>
            {move || {
                let room = state.in_view();
                view! { <HistoryLines room /> }
            }}
            <PendingLines />
        </section>
    }
}

/// This page's lines still on their way in the room in view (tracked).
fn pending_here(state: ChatState) -> Vec<PendingLine> {
    let room = state.current.get();
    state
        .pending
        .get()
        .into_iter()
        .filter(|p| p.room == room)
        .collect()
}

/// One room's lines (`#history`), oldest first; this page's own marked `mine`.
#[component]
fn HistoryLines(
    /// The room whose lines these are.
    room: RoomState,
) -> impl IntoView {
    let state = use_connection().state;
    view! {
        <ol id="history" class="history" aria-live="polite" aria-relevant="additions">
            <For each=move || room.history.get() key=|line| line.seq let(line)>
                <li
                    title=line.from.to_string()
                    class:mine={
                        let from = line.from.clone();
                        move || state.is_me(&from)
                    }
                >
                    <span class="from">
                        {line.name.as_ref().map_or_else(|| line.from.to_string(), |n| n.to_string())}
                    </span>
                    " -> "
                    <span class="text">{line.text}</span>
                </li>
            </For>
        </ol>
    }
}

/// This page's lines in the room in view that the server has not acknowledged yet
/// (`#pending`), each under this page's name (or id, before it has one).
#[component]
fn PendingLines() -> impl IntoView {
    let state = use_connection().state;
    let i18n = use_i18n();
    let me = move || {
        let name = state.my_name.get();
        if !name.is_empty() {
            name
        } else {
            state
                .my_id
                .get()
                .map_or_else(|| i18n.t().you.to_owned(), |id| id.to_string())
        }
    };
    view! {
        <ol id="pending" class="history pending" aria-label=move || i18n.t().sending_list>
            <For each=move || pending_here(state) key=|p| p.nonce.clone() let(p)>
                <li class="pending" title=move || i18n.t().not_acknowledged>
                    <span class="from">{me}</span>
                    " -> "
                    <span class="text">{p.text}</span>
                    <span class="state">" " {move || i18n.t().sending}</span>
                </li>
            </For>
        </ol>
    }
}
