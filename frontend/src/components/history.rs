//! The history of the room in view: one line each, `<name> -> <text>` with the sender's id on
//! hover, oldest first; then this page's lines there still on their way (pending until the
//! server acknowledges them).

use leptos::prelude::*;
use shared::{ChangeKind, ChatLine, PendingLine, Seq};

use crate::use_connection;
use crate::{
    ChatState, RoomState,
    i18n::{Texts, use_i18n},
};

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

/// One room's lines (`#history`), oldest first; this page's own marked `mine`. An edited
/// line says "(edited)"; a removed one shows "line removed" instead of its text. One's own
/// lines offer edit and delete, and a moderator's page offers remove on everyone's: plain
/// buttons, so the keyboard reaches them; an edit is an input (Enter saves, Escape cancels).
/// The buttons' visible words come from CSS (`attr(data-label)`) and their names from
/// `aria-label`, so a line's text (copied, or read by a test) stays `<name> -> <text>`.
#[component]
fn HistoryLines(
    /// The room whose lines these are.
    room: RoomState,
) -> impl IntoView {
    let editing = RwSignal::new(None::<Seq>);
    view! {
        <ol id="history" class="history" aria-live="polite" aria-relevant="additions">
            <For
                each=move || room.history.get()
                key=|line| (line.seq, line.removed, line.text.clone())
                let(line)
            >
                <HistoryLine line editing />
            </For>
        </ol>
    }
}

/// One line of the history, with its edit/delete controls.
#[component]
fn HistoryLine(
    /// The line.
    line: ChatLine,
    /// Which line of the room is being edited (one at a time).
    editing: RwSignal<Option<Seq>>,
) -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let i18n = use_i18n();
    let seq = line.seq;
    let (removed, edited) = (line.removed, line.edited);
    let mine = {
        let line = line.clone();
        move || state.owns(&line)
    };
    let can_edit = {
        let mine = mine.clone();
        move || !removed && mine()
    };
    let can_remove = {
        let mine = mine.clone();
        move || !removed && !mine() && state.moderates()
    };
    let is_editing = move || editing.get() == Some(seq);
    let from = line
        .name
        .as_ref()
        .map_or_else(|| line.from.to_string(), |n| n.to_string());
    // Whom a moderator's kick, mute or ban of the line's author names: the signed-in
    // user (on every tab and device), or the guest's session.
    let subject = line
        .user
        .as_ref()
        .map_or_else(|| line.from.to_string(), |u| u.as_str().to_owned());
    let draft = RwSignal::new(line.text.clone());
    let save = move || {
        let text = draft.get_untracked();
        if !text.trim().is_empty() {
            conn.edit(seq, text);
        }
        editing.set(None);
    };
    let text = line.text.clone();
    // The edit box takes the focus when it opens, with the caret after the text, so the
    // keyboard goes on from there.
    let edit_box = NodeRef::<leptos::html::Input>::new();
    Effect::new(move || {
        if let Some(input) = edit_box.get() {
            let _ = input.focus();
            let end = u32::try_from(input.value().encode_utf16().count()).unwrap_or(u32::MAX);
            let _ = input.set_selection_range(end, end);
        }
    });
    view! {
        <li title=line.from.to_string() class:mine=mine.clone() class:removed=removed>
            <span class="from">{from.clone()}</span>
            " -> "
            <Show
                when=is_editing
                fallback=move || {
                    if removed {
                        view! { <span class="text gone">{move || i18n.t().line_removed}</span> }
                            .into_any()
                    } else {
                        view! { <span class="text">{text.clone()}</span> }.into_any()
                    }
                }
            >
                <input
                    node_ref=edit_box
                    class="edit-line"
                    type="text"
                    aria-label=move || i18n.t().edit_label
                    value=draft.get_untracked()
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:keydown=move |ev| match ev.key().as_str() {
                        "Enter" => save(),
                        "Escape" => editing.set(None),
                        _ => {}
                    }
                />
                <button type="button" class="quiet save-edit" on:click=move |_| save()>
                    {move || i18n.t().save}
                </button>
                <button type="button" class="quiet cancel-edit" on:click=move |_| editing.set(None)>
                    {move || i18n.t().cancel}
                </button>
            </Show>
            <Show when=move || edited && !removed>
                <span class="edited">" " {move || i18n.t().edited_mark}</span>
            </Show>
            <Show when=move || can_edit() && !is_editing()>
                <span class="line-actions">
                    <button
                        type="button"
                        class="quiet edit"
                        aria-label=move || format!("{} {seq}", i18n.t().edit_line)
                        data-label=move || i18n.t().edit
                        on:click=move |_| editing.set(Some(seq))
                    ></button>
                    <button
                        type="button"
                        class="quiet delete"
                        aria-label=move || format!("{} {seq}", i18n.t().delete_line)
                        data-label=move || i18n.t().delete_own
                        on:click=move |_| conn.delete(seq)
                    ></button>
                </span>
            </Show>
            <Show when=can_remove.clone()>
                <span class="line-actions">
                    <button
                        type="button"
                        class="quiet delete moderate"
                        aria-label=move || format!("{} {seq}", i18n.t().remove_line)
                        data-label=move || i18n.t().remove
                        on:click=move |_| conn.delete(seq)
                    ></button>
                    <PeopleActions subject=subject.clone() who=from.clone() />
                </span>
            </Show>
        </li>
    }
}

/// A moderator's kick, mute (10 minutes) and ban of a line's author (`subject`, shown as
/// `who`), from the line's controls.
#[component]
fn PeopleActions(subject: String, who: String) -> impl IntoView {
    /// Each action: what it does, its class, its word and its label's start.
    type Words = fn(&Texts) -> &'static str;
    const ACTIONS: [(ChangeKind, &str, Words, Words); 3] = [
        (
            ChangeKind::Kick,
            "quiet moderate kick",
            |t| t.kick,
            |t| t.kick_label,
        ),
        (
            ChangeKind::Mute,
            "quiet moderate mute",
            |t| t.mute,
            |t| t.mute_label,
        ),
        (
            ChangeKind::Ban,
            "quiet moderate ban",
            |t| t.ban,
            |t| t.ban_label,
        ),
    ];
    let conn = use_connection();
    let i18n = use_i18n();
    ACTIONS
        .into_iter()
        .map(|(kind, class, word, label)| {
            let (subject, who) = (subject.clone(), who.clone());
            view! {
                <button
                    type="button"
                    class=class
                    aria-label=move || format!("{} {who}", label(i18n.t()))
                    data-label=move || word(i18n.t())
                    on:click=move |_| conn.moderate(kind, subject.clone())
                ></button>
            }
        })
        .collect_view()
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
