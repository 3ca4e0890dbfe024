//! The side panel: the rooms this page is in, each a link to its page with its unread count,
//! and the form to join (or create) a room by name.

use leptos::{html, prelude::*};
use shared::RoomName;

use crate::{ChatState, Connection, room_path};

/// The list of rooms (`#rooms`) and the join form. The room in view is marked
/// `aria-current="page"`; a room with lines not yet seen shows how many.
#[component]
pub fn RoomsPanel(conn: Connection) -> impl IntoView {
    let state = conn.state;
    view! {
        <h2 id="rooms-heading">"Rooms"</h2>
        <ul id="rooms" class="rooms" aria-labelledby="rooms-heading">
            <For each=move || state.joined.get() key=RoomName::clone let(room)>
                <RoomLink state=state room=room />
            </For>
        </ul>
        <JoinRoom conn=conn />
    }
}

/// One room of the panel: `<li data-room="dev"><a href="/r/dev">dev <span class="unread">2`.
#[component]
fn RoomLink(state: ChatState, room: RoomName) -> impl IntoView {
    let view = state.room(&room);
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
                <span class="visually-hidden">" unread"</span>
            }
        })
    };
    let current = here.clone();
    view! {
        <li data-room=room.to_string() class:here=here>
            <a href=room_path(&room) aria-current=move || current().then_some("page")>
                <span class="room-name">{room.to_string()}</span>
                {unread}
            </a>
        </li>
    }
}

/// The form to join a room by name (created if nobody is in it yet), which then shows it.
/// Names are lower-cased and trimmed; one that is still not a room name is refused here.
#[component]
pub fn JoinRoom(conn: Connection) -> impl IntoView {
    let input = NodeRef::<html::Input>::new();
    let error = RwSignal::new(None::<String>);
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
            Err(err) => error.set(Some(format!(
                "“{}” is not a room name: {err}.",
                typed.trim()
            ))),
        }
    };
    view! {
        <form id="join-room" class="join-room" on:submit=submit>
            <label for="join-room-input">"Join or create a room"</label>
            <div class="row">
                <input
                    id="join-room-input"
                    type="text"
                    autocomplete="off"
                    autocapitalize="none"
                    spellcheck="false"
                    placeholder="e.g. dev"
                    node_ref=input
                />
                <button type="submit">"Join"</button>
            </div>
            <p id="join-room-error" class="notice" role="alert">
                {move || error.get().unwrap_or_default()}
            </p>
        </form>
    }
}
