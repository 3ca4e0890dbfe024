//! The live-typing paragraph: whoever typed last, as they type, replacing the previous text.

use leptos::prelude::*;

use crate::ChatState;

/// Shows the latest live text from anyone (this page's own included), labelled with the
/// typist's id; empty when nobody is typing.
#[component]
pub fn LiveTyping(state: ChatState) -> impl IntoView {
    view! {
        <p id="live" class="live" aria-live="polite">
            {move || match state.live.get() {
                Some(live) => {
                    let who = if state.my_id.with(|me| me.as_ref() == Some(&live.from)) {
                        format!("{} (you)", live.from)
                    } else {
                        live.from.to_string()
                    };
                    view! {
                        <span class="who">{who}</span>
                        " is typing: "
                        <span class="live-text">{live.text}</span>
                    }
                        .into_any()
                }
                None => view! { <span class="idle">"Nobody is typing."</span> }.into_any(),
            }}
        </p>
    }
}
