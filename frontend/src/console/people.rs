//! The console's users and sessions: search who is in the rooms by user id, session id or
//! name (`GET /api/users?q=`), see each one's rooms and connections, and disconnect a
//! signed-in user (every tab and device, on every server) or revoke their tokens.

use leptos::{prelude::*, task::spawn_local};
use serde::Deserialize;

use super::{Console, api};

/// One person, as `GET /api/users` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PersonRow {
    /// The signed-in user (`None`: a guest).
    #[serde(default)]
    pub user: Option<String>,
    /// Their sessions' public ids.
    pub ids: Vec<String>,
    /// Their display name.
    pub name: String,
    /// The rooms they are in.
    pub rooms: Vec<String>,
    /// Their open connections on this server.
    pub connections: u64,
}

/// The search and its results.
#[component]
pub fn People() -> impl IntoView {
    let console = expect_context::<Console>();
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(None::<Vec<PersonRow>>);
    let notice = RwSignal::new(String::new());
    let search = move || {
        let q: String = query.get_untracked().trim().to_owned();
        spawn_local(async move {
            let path = format!("/api/users?q={}", js_sys::encode_uri_component(&q));
            match api::get::<Vec<PersonRow>>(console, &path).await {
                Ok(people) => {
                    found.try_set(Some(people));
                }
                Err(failed) => {
                    notice.try_set(failed.says());
                }
            }
        });
    };
    let act = move |what: &'static str, user: String| {
        spawn_local(async move {
            let path = format!("/api/users/{}/{what}", js_sys::encode_uri_component(&user));
            match api::send(console, "POST", &path, None::<&()>).await {
                Ok(_) => notice.try_set(format!("{what}: {user}, done.")),
                Err(failed) => notice.try_set(failed.says()),
            };
            search();
        });
    };
    let rows = move || {
        found.get().map(|people| {
            people
                .into_iter()
                .map(|p| {
                    let actions = p.user.clone().map(|user| {
                        let (cut, revoke) = (user.clone(), user.clone());
                        view! {
                            <button type="button" class="disconnect" aria-label=format!("Disconnect {user}")
                                on:click=move |_| act("disconnect", cut.clone())>"Disconnect"</button>
                            <button type="button" class="revoke" aria-label=format!("Revoke {user}'s tokens")
                                on:click=move |_| act("revoke", revoke.clone())>"Revoke"</button>
                        }
                    });
                    view! {
                        <tr data-user=p.user.clone().unwrap_or_default()>
                            <th scope="row">{p.user.clone().unwrap_or_else(|| "guest".into())}</th>
                            <td>{p.name.clone()}</td>
                            <td><code>{p.ids.join(", ")}</code></td>
                            <td>{p.rooms.join(", ")}</td>
                            <td>{p.connections}</td>
                            <td class="actions">{actions}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <section id="console-people" aria-labelledby="people-title">
            <h2 id="people-title">"Users and sessions"</h2>
            <form id="people-search" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                search();
            }>
                <label for="people-query">"User id, session id or name"</label>
                <input id="people-query" type="search" prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev)) />
                <button type="submit">"Search"</button>
            </form>
            <p id="people-notice" role="status">{move || notice.get()}</p>
            <div class="table-scroll" tabindex="0" role="region" aria-label="People found, scrolls sideways"><table id="people-found">
                <caption class="visually-hidden">"Who is in the rooms now"</caption>
                <thead>
                    <tr>
                        <th scope="col">"User"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Sessions"</th>
                        <th scope="col">"Rooms"</th>
                        <th scope="col">"Connections"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table></div>
            <p class="notice" role="status">
                {move || found.with(|f| f.as_ref().is_some_and(Vec::is_empty)).then_some("Nobody matches.")}
            </p>
        </section>
    }
}
