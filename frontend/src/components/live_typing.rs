//! Who is typing in the room in view, each with their latest text: the classic live-typing
//! paragraph, for several typists at once.

use leptos::prelude::*;

use crate::{ChatState, i18n::use_i18n};

/// `#live`: one `#typists li` per member typing in the room in view, `<name>: <text>` (this
/// page's own as `<name> (you): <text>`), their id on hover, in the order they started. Each
/// update replaces that typist's text; an emptied box or a leaver removes the line. "Nobody is
/// typing." when the list is empty.
#[component]
pub fn LiveTyping(state: ChatState) -> impl IntoView {
    let typists = move || state.in_view().typists.get();
    let i18n = use_i18n();
    view! {
        <div id="live" class="live" aria-live="polite">
            <ul id="typists" class="typists" aria-label=move || i18n.t().typing_now>
                {move || {
                    let t = i18n.t();
                    typists()
                        .into_iter()
                        .map(|live| {
                            let who = if state.is_me(&live.from) {
                                (t.typist_you)(&live.name)
                            } else {
                                live.name
                            };
                            view! {
                                <li title=live.from.to_string()>
                                    <span class="who">{who}</span>
                                    ": "
                                    <span class="live-text">{live.text}</span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            <Show when=move || typists().is_empty()>
                <p class="idle">{move || i18n.t().nobody_typing}</p>
            </Show>
        </div>
    }
}
