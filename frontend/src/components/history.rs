//! The history: one line each, `<sender id> -> <text>`, oldest first; then this page's lines
//! still on their way (pending until the server acknowledges them).

use leptos::prelude::*;

use crate::{ChatState, Connection};

/// The message history, with a "load older" button while older lines exist, and the
/// pending lines below it. New lines are announced to screen readers (`aria-live`).
#[component]
pub fn History(conn: Connection) -> impl IntoView {
    let state: ChatState = conn.state;
    let is_mine = move |from: &shared::ConnId| state.my_id.with(|me| me.as_ref() == Some(from));
    let me = move || {
        state
            .my_id
            .get()
            .map_or_else(|| "you".to_owned(), |id| id.to_string())
    };
    view! {
        <section class="history-box" aria-label="History">
            <h2>"History"</h2>
            <Show when=move || state.has_more.get()>
                <button id="load-older" class="quiet" type="button" on:click=move |_| conn.load_older()>
                    "Load older lines"
                </button>
            </Show>
            <Show when=move || state.history.with(Vec::is_empty) && state.pending.with(Vec::is_empty)>
                <p class="empty">"No lines yet. Say something!"</p>
            </Show>
            <ol id="history" class="history" aria-live="polite" aria-relevant="additions">
                <For each=move || state.history.get() key=|line| line.seq let(line)>
                    <li class:mine={
                        let from = line.from.clone();
                        move || is_mine(&from)
                    }>
                        <span class="from">{line.from.to_string()}</span>
                        " -> "
                        <span class="text">{line.text}</span>
                    </li>
                </For>
            </ol>
            <ol id="pending" class="history pending" aria-label="Sending">
                <For each=move || state.pending.get() key=|p| p.nonce.clone() let(p)>
                    <li class="pending" title="Not yet acknowledged by the server">
                        <span class="from">{me}</span>
                        " -> "
                        <span class="text">{p.text}</span>
                        <span class="state">" sending…"</span>
                    </li>
                </For>
            </ol>
        </section>
    }
}
