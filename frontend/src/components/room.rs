//! The room in view: [`RoomPage`] follows the URL (`/` is `general`, `/r/<name>` that room),
//! [`RoomView`] lays the room out, [`RoomHeader`] names it (with a lock when it is private),
//! counts who is online and offers to leave, and [`Members`] lists who is here.

use leptos::prelude::*;

use crate::use_connection;
use crate::{
    ChatState,
    components::{Composer, History, LiveTyping, PrivateLock},
    i18n::use_i18n,
};

/// The room the URL names, shown (and joined if need be); or why the URL names no room.
#[component]
pub fn RoomPage() -> impl IntoView {
    let conn = use_connection();
    let path = crate::router::use_router().path();
    let wanted = Memo::new(move |_| path.with(|p| crate::router::chat_route(p).flatten()));
    Effect::new(move |_| conn.show_route(wanted.get().as_deref()));
    let state = conn.state;
    let i18n = use_i18n();
    view! {
        <Show
            when=move || state.route_error.with(Option::is_none)
            fallback=move || {
                view! {
                    <h2 id="room-title">{move || i18n.t().no_such_room}</h2>
                    <p id="room-error" class="notice" role="alert">
                        {move || {
                            state
                                .route_error
                                .with(|e| e.as_ref().map(|e| e.text(i18n.t())).unwrap_or_default())
                        }}
                    </p>
                    <p>
                        <a href="/r/general">{move || i18n.t().go_to_general}</a>
                    </p>
                }
            }
        >
            <RoomView />
        </Show>
    }
}

/// What the router shows for a path that is no page of Charla.
#[component]
pub fn NotFound() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <h2 id="room-title">{move || i18n.t().nothing_here}</h2>
        <p>
            <a href="/">{move || i18n.t().go_to_general}</a>
        </p>
    }
}

/// The room in view: header, who is here, composer, who is typing, history.
#[component]
pub fn RoomView() -> impl IntoView {
    let conn = use_connection();
    view! {
        <RoomHeader />
        <Members state=conn.state />
        <Composer />
        <LiveTyping state=conn.state />
        <History />
    }
}

/// The room's name (`#room-title`, with a lock when the room is private), how many are in it
/// (`#online`: "2 online"), and the button to leave it (disabled when it is the only room).
#[component]
pub fn RoomHeader() -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let only_room = move || state.joined.with(|joined| joined.len() <= 1);
    let i18n = use_i18n();
    view! {
        <div class="room-head">
            <h2 id="room-title">
                <span class="room-title-name">{move || state.current.get().to_string()}</span>
                {move || state.in_view().private.get().then(|| view! { <PrivateLock /> })}
            </h2>
            <span id="online" class="online">
                {move || (i18n.t().online)(state.in_view().online.get())}
            </span>
            <button
                id="leave-room"
                class="quiet"
                type="button"
                disabled=only_room
                on:click=move |_| conn.leave_room(&state.current.get_untracked())
            >
                {move || i18n.t().leave_room}
            </button>
        </div>
    }
}

/// Who is in the room in view, by name (their id on hover). The server lists members of
/// rooms up to a hundred; for bigger ones the list is fetched on demand.
#[component]
pub fn Members(state: ChatState) -> impl IntoView {
    let conn = use_connection();
    let members = move || state.in_view().members.get();
    let i18n = use_i18n();
    view! {
        <section class="members" aria-labelledby="members-heading">
            <h3 id="members-heading">{move || i18n.t().who_is_here}</h3>
            <ul id="members" class="members-list">
                {move || {
                    members()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|member| {
                            let me = state.is_me(&member.id);
                            view! {
                                <li title=member.id.to_string() class:me=me>
                                    {member.name.to_string()}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            <Show when=move || members().is_none()>
                <p class="big-room">
                    {move || i18n.t().too_many_to_list}
                    " "
                    <button
                        id="list-members"
                        class="quiet"
                        type="button"
                        on:click=move |_| conn.list_members()
                    >
                        {move || i18n.t().list_everyone}
                    </button>
                </p>
            </Show>
        </section>
    }
}
