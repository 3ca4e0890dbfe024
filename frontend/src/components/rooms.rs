//! The side panel: the rooms this page is in, each a link to its page with its unread count
//! (and a lock when private), and the form to join (or create) a room by name.

use leptos::{html, prelude::*};
use shared::{NameError, RoomName};

use crate::use_connection;
use crate::{ChatState, components::PrivateLock, i18n::use_i18n, room_path};

/// The list of rooms (`#rooms`) and the join form. The room in view is marked
/// `aria-current="page"`; a room with lines not yet seen shows how many.
#[component]
pub fn RoomsPanel() -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let i18n = use_i18n();
    view! {
        <h2 id="rooms-heading">{move || i18n.t().rooms}</h2>
        <ul id="rooms" class="rooms" aria-labelledby="rooms-heading">
            <For each=move || state.joined.get() key=RoomName::clone let(room)>
                <RoomLink state=state room=room />
            </For>
        </ul>
        <JoinRoom />
    }
}

/// One room of the panel: `<li data-room="dev"><a href="/r/dev">dev <span class="unread">2`.
#[component]
fn RoomLink(state: ChatState, room: RoomName) -> impl IntoView {
    let view = state.room(&room);
    let i18n = use_i18n();
    let here = {
        let room = room.clone();
        move || {
            state.route_error.with(Option::is_none)
                && state.current.with(|current| *current == room)
        }
    };
    let unread = move || {
        let count = view.unread.get();
        (count > 0).then(|| {
            view! {
                <span class="unread">{count}</span>
                <span class="visually-hidden">" " {move || i18n.t().unread}</span>
            }
        })
    };
    let current = here.clone();
    view! {
        <li data-room=room.to_string() class:here=here>
            <a href=room_path(&room) aria-current=move || current().then_some("page")>
                <span class="room-name">{room.to_string()}</span>
                {move || view.private.get().then(|| view! { <PrivateLock /> })}
                {unread}
            </a>
        </li>
    }
}

/// The form to join a room by name (created if nobody is in it yet), which then shows it.
/// Names are lower-cased and trimmed; one that is still not a room name is refused here.
#[component]
pub fn JoinRoom() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let input = NodeRef::<html::Input>::new();
    // What was typed and why it is no room name: shown in the language in view.
    let error = RwSignal::new(None::<(String, NameError)>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(field) = input.get_untracked() else {
            return;
        };
        let typed = field.value();
        match RoomName::parse(&typed.trim().to_lowercase()) {
            Ok(room) => {
                error.set(None);
                field.set_value("");
                conn.show(room.clone());
                conn.go_to(room, false);
            }
            Err(err) => error.set(Some((typed.trim().to_owned(), err))),
        }
    };
    view! {
        <form id="join-room" class="join-room" on:submit=submit>
            <label for="join-room-input">{move || i18n.t().join_label}</label>
            <div class="row">
                <input
                    id="join-room-input"
                    type="text"
                    autocomplete="off"
                    autocapitalize="none"
                    spellcheck="false"
                    placeholder=move || i18n.t().join_placeholder
                    node_ref=input
                />
                <button type="submit">{move || i18n.t().join}</button>
            </div>
            <p id="join-room-error" class="notice" role="alert">
                {move || {
                    error
                        .with(|err| {
                            err.as_ref()
                                .map(|(typed, err)| (i18n.t().not_a_room_name)(typed, err))
                                .unwrap_or_default()
                        })
                }}
            </p>
        </form>
    }
}
