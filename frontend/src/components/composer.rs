//! The composer: the input box of the room in view. Every keystroke goes out as live typing
//! there; Enter or Send adds the line to its history (pending until the server acknowledges
//! it).

use leptos::prelude::*;

use crate::use_connection;
use crate::{Notice, i18n::use_i18n};

/// The labelled input box and its Send button. Blank lines are refused with a visible message.
#[component]
pub fn Composer() -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let draft = state.draft;
    let notice = state.notice;
    let i18n = use_i18n();
    // A moderator's mute here stops the composer offering to send; a slow mode is said.
    let muted = move || state.in_view().muted.get();
    let rule = move || match (muted(), state.in_view().slow_mode.get()) {
        (Some(until), _) => (i18n.t().muted_here)(until.map(crate::minutes_left)),
        (None, 0) => String::new(),
        (None, secs) => (i18n.t().slow_mode_on)(secs),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = draft.get_untracked();
        match conn.send_line(&text) {
            Ok(()) => {
                notice.set(None);
                draft.set(String::new());
                conn.typing("");
            }
            Err(err) => notice.set(Some(Notice::Send(err))),
        }
    };
    view! {
        <form id="composer" class="composer" on:submit=submit>
            <label for="composer-input">{move || i18n.t().your_message}</label>
            <div class="row">
                <input
                    id="composer-input"
                    type="text"
                    autocomplete="off"
                    aria-describedby="room-rule"
                    prop:disabled=move || muted().is_some()
                    placeholder=move || {
                        (i18n.t().composer_placeholder)(state.current.get().as_str())
                    }
                    prop:value=move || draft.get()
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        draft.set(text.clone());
                        conn.typing(&text);
                    }
                />
                <button id="send" type="submit" prop:disabled=move || muted().is_some()>
                    {move || i18n.t().send}
                </button>
            </div>
            <p id="room-rule" class="room-rule">{rule}</p>
            <p id="notice" class="notice" role="alert">
                {move || {
                    notice.with(|n| n.as_ref().map(|n| n.text(i18n.t())).unwrap_or_default())
                }}
            </p>
        </form>
    }
}
