//! The history: one line each, `<sender id> -> <text>`, oldest first.

use leptos::prelude::*;

use crate::ChatState;

/// The message history. New lines are announced to screen readers (`aria-live`).
#[component]
pub fn History(state: ChatState) -> impl IntoView {
    let is_mine = move |from: &shared::ConnId| state.my_id.with(|me| me.as_ref() == Some(from));
    view! {
        <section class="history-box" aria-label="History">
            <h2>"History"</h2>
            <Show when=move || state.history.with(Vec::is_empty)>
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
        </section>
    }
}
