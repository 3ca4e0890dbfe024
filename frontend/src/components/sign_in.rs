//! Who is who: the sign-in area (who this page is signed in as, or "guest"; what went wrong
//! with the sign-in; the dev-login form and "sign out"), and the lock on private rooms.

use leptos::{html, prelude::*};

use crate::use_connection;
use crate::{AuthConfig, DevIdentity, i18n::use_i18n};

/// The sign-in area (`#sign-in`), shown when the server signs users in: who is signed in
/// (`#signed-in`, from the `welcome`), the sign-in notice (`#sign-in-notice`, an alert:
/// refused, expired, signed out by the server, required), and with the server's dev-login
/// the "sign in as…" form or the "sign out" button.
#[component]
pub fn SignIn() -> impl IntoView {
    let conn = use_connection();
    let state = conn.state;
    let i18n = use_i18n();
    let shown = move || {
        state
            .auth
            .with(|c| c.as_ref().is_some_and(AuthConfig::signs_in))
            || state.me.with(Option::is_some)
    };
    let who = move || {
        let t = i18n.t();
        state.me.with(|me| match me {
            Some(user) => {
                let id = user.id.as_str();
                match user.name.as_ref().map(|n| n.as_str()) {
                    Some(name) if name != id => (t.signed_in_as)(name, Some(id)),
                    _ => (t.signed_in_as)(id, None),
                }
            }
            None => t.guest.to_owned(),
        })
    };
    let dev_login = move || {
        state
            .auth
            .with(|c| c.as_ref().is_some_and(AuthConfig::offers_dev_login))
    };
    let remembered = move || state.dev_identity.with(Option::is_some);
    view! {
        <Show when=shown>
            <section id="sign-in" class="sign-in" aria-label=move || i18n.t().sign_in_area>
                <p id="signed-in" class="who" class:guest=move || state.me.with(Option::is_none)>
                    {who}
                </p>
                <Show when=move || dev_login() && remembered()>
                    <button
                        id="sign-out"
                        class="quiet"
                        type="button"
                        on:click=move |_| conn.sign_out()
                    >
                        {move || i18n.t().sign_out}
                    </button>
                </Show>
                <p id="sign-in-notice" class="notice" role="alert">
                    {move || {
                        state
                            .sign_in
                            .with(|n| n.as_ref().map(|n| n.text(i18n.t())).unwrap_or_default())
                    }}
                </p>
                <Show when=move || dev_login() && !remembered()>
                    <DevLoginForm />
                </Show>
            </section>
        </Show>
    }
}

/// The dev-login form (`#dev-login`): a user id, an optional display name and optional
/// private-room patterns; the server mints the token, the page connects again as that user.
#[component]
fn DevLoginForm() -> impl IntoView {
    let conn = use_connection();
    let i18n = use_i18n();
    let sub = NodeRef::<html::Input>::new();
    let name = NodeRef::<html::Input>::new();
    let rooms = NodeRef::<html::Input>::new();
    let roles = NodeRef::<html::Input>::new();
    // The form's own refusal (a blank id), before anything is asked of the server.
    let blank = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let identity =
            DevIdentity::from_form(&input_value(sub), &input_value(name), &input_value(rooms));
        match identity.map(|i| i.with_roles(&input_value(roles))) {
            Some(identity) => {
                blank.set(false);
                conn.sign_in_dev(identity);
            }
            None => blank.set(true),
        }
    };
    view! {
        <form id="dev-login" class="dev-login" aria-labelledby="dev-login-title" on:submit=submit>
            <h2 id="dev-login-title">{move || i18n.t().dev_login_title}</h2>
            <p class="hint">{move || i18n.t().dev_login_hint}</p>
            <div class="fields">
                <DevUserIdField input=sub blank />
                <div class="field">
                    <label for="dev-name">{move || i18n.t().dev_display_name}</label>
                    <input id="dev-name" type="text" autocomplete="nickname" node_ref=name />
                </div>
                <div class="field">
                    <label for="dev-rooms">{move || i18n.t().dev_rooms}</label>
                    <input
                        id="dev-rooms"
                        type="text"
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        node_ref=rooms
                    />
                </div>
                <div class="field">
                    <label for="dev-roles">{move || i18n.t().dev_roles}</label>
                    <input
                        id="dev-roles"
                        type="text"
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        node_ref=roles
                    />
                </div>
                <DevSignInButton />
            </div>
            <p id="dev-login-error" class="notice" role="alert">
                {move || blank.get().then(|| i18n.t().dev_user_id_missing)}
            </p>
        </form>
    }
}

/// What is typed in `input` now (empty before it is mounted).
fn input_value(input: NodeRef<html::Input>) -> String {
    input
        .get_untracked()
        .map(|field| field.value())
        .unwrap_or_default()
}

/// The dev-login's user id field (`#dev-sub`), marked invalid while the form refuses a blank
/// id, and pointing to the form's error for why.
#[component]
fn DevUserIdField(
    /// The input, for the form to read on submit.
    input: NodeRef<html::Input>,
    /// Whether the form refused a blank id.
    blank: RwSignal<bool>,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="field">
            <label for="dev-sub">{move || i18n.t().dev_user_id}</label>
            <input
                id="dev-sub"
                type="text"
                autocomplete="username"
                autocapitalize="none"
                spellcheck="false"
                aria-invalid=move || blank.get().to_string()
                aria-describedby="dev-login-error"
                node_ref=input
            />
        </div>
    }
}

/// The dev-login's submit button (`#dev-sign-in`): disabled, and saying so, while a sign-in
/// is under way.
#[component]
fn DevSignInButton() -> impl IntoView {
    let state = use_connection().state;
    let i18n = use_i18n();
    view! {
        <button id="dev-sign-in" type="submit" disabled=move || state.signing_in.get()>
            {move || {
                let t = i18n.t();
                if state.signing_in.get() { t.signing_in } else { t.dev_sign_in }
            }}
        </button>
    }
}

/// The lock on a private room: an icon, and "private" for screen readers and on hover.
#[component]
pub fn PrivateLock() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <span class="lock" title=move || i18n.t().private_room>
            <svg aria-hidden="true" focusable="false" viewBox="0 0 16 16" width="14" height="14">
                <path
                    fill="currentColor"
                    d="M5 7V5a3 3 0 0 1 6 0v2h.5A1.5 1.5 0 0 1 13 8.5v5a1.5 1.5 0 0 1-1.5 1.5h-7A1.5 1.5 0 0 1 3 13.5v-5A1.5 1.5 0 0 1 4.5 7H5zm1.5 0h3V5a1.5 1.5 0 0 0-3 0v2z"
                />
            </svg>
            <span class="visually-hidden">" " {move || i18n.t().private_room}</span>
        </span>
    }
}
