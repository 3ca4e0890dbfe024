//! The display-name form: what this page is called on every line it sends.

use leptos::{html, prelude::*};

use shared::NameError;

use crate::i18n::use_i18n;
use crate::use_connection;

/// A labelled input holding this page's name and a button to change it. A name is 1–32
/// characters once trimmed, without control characters; a refused one says why.
#[component]
pub fn NameForm() -> impl IntoView {
    let conn = use_connection();
    let my_name = conn.state.my_name;
    let i18n = use_i18n();
    let input = NodeRef::<html::Input>::new();
    // Kept as the reason, not as words: shown in the language in view.
    let error = RwSignal::new(None::<NameError>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(field) = input.get_untracked() else {
            return;
        };
        match conn.set_name(&field.value()) {
            Ok(()) => error.set(None),
            Err(err) => error.set(Some(err)),
        }
    };
    view! {
        <form id="name-form" class="name-form" on:submit=submit>
            <label for="name-input">{move || i18n.t().your_name}</label>
            <input
                id="name-input"
                type="text"
                autocomplete="nickname"
                spellcheck="false"
                node_ref=input
                prop:value=move || my_name.get()
            />
            <button type="submit">{move || i18n.t().set_name}</button>
            <p id="name-error" class="notice" role="alert">
                {move || {
                    error.with(|err| err.as_ref().map(i18n.t().invalid_name).unwrap_or_default())
                }}
            </p>
        </form>
    }
}
