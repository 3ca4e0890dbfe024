//! A room's page in the console: who is in it (each with kick, mute for 10 minutes and
//! ban), its latest lines (each with delete), its slow mode, and its audit entries; asked
//! for again every [`api::REFRESH_MS`] and after each action. Every action goes through the
//! server API (`DELETE …/messages/{seq}`, `POST …/moderation`), so it is an entry of the
//! room's log and of the audit log like a moderator's on the page.

use leptos::{prelude::*, task::spawn_local};
use serde::Deserialize;
use serde_json::json;
use shared::ChatLine;

use super::{
    Console,
    api::{self, Failed},
};
use crate::connection::sleep_ms;

/// How many of the latest lines it shows.
const LATEST: u64 = 50;
/// How long a mute from the console lasts.
const MUTE_MS: u64 = 10 * 60 * 1000;

/// A member, as `GET /api/rooms/{room}/members` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MemberRow {
    /// The session's public id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The signed-in user, if any.
    #[serde(default)]
    pub user: Option<String>,
}

impl MemberRow {
    /// Whom a kick, mute or ban names: the user (every tab and device), else the session.
    pub fn target(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.id)
    }
}

/// An audit entry, as `GET /api/audit` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditRow {
    /// When, in ms since the epoch.
    pub at: u64,
    /// Who.
    pub by: String,
    /// What.
    pub action: String,
    /// To whom (or which line, or how many seconds).
    pub target: String,
    /// The entry's own `seq`.
    pub seq: u64,
}

/// `GET /api/rooms`'s row, for the room's `last_seq`.
#[derive(Debug, Clone, Deserialize)]
struct RoomHead {
    room: String,
    last_seq: u64,
}

/// Everything the page shows of the room, read together.
#[derive(Debug, Clone, Default, PartialEq)]
struct Shown {
    members: Vec<MemberRow>,
    lines: Vec<ChatLine>,
    audit: Vec<AuditRow>,
}

/// Reads the room's members, latest lines and audit entries.
async fn read(console: Console, room: &str) -> Result<Shown, Failed> {
    let members = api::get(console, &format!("/api/rooms/{room}/members")).await?;
    let heads: Vec<RoomHead> = api::get(console, "/api/rooms").await?;
    let last = heads
        .iter()
        .find(|h| h.room == room)
        .map_or(0, |h| h.last_seq);
    let after = last.saturating_sub(LATEST);
    let lines: Vec<ChatLine> = api::get(
        console,
        &format!("/api/rooms/{room}/messages?after={after}&limit={LATEST}"),
    )
    .await?;
    let audit = api::get(console, &format!("/api/audit?room={room}&limit=20")).await?;
    Ok(Shown {
        members,
        // Edits, deletions and moderation are entries, not lines: they show in their target.
        lines: lines.into_iter().filter(|l| l.change.is_none()).collect(),
        audit,
    })
}

/// The page of room `name`.
#[component]
pub fn RoomPage(
    /// The room.
    name: String,
) -> impl IntoView {
    let console = expect_context::<Console>();
    let shown = RwSignal::new(Shown::default());
    let notice = RwSignal::new(String::new());
    let open = RwSignal::new(true);
    on_cleanup(move || {
        open.try_set(false);
    });
    let room = StoredValue::new(name.clone());
    let refresh = move || {
        spawn_local(async move {
            let room = room.get_value();
            match read(console, &room).await {
                Ok(now) => {
                    shown.try_set(now);
                }
                Err(failed) => {
                    notice.try_set(failed.says());
                }
            }
        });
    };
    spawn_local(async move {
        while open.try_get_untracked() == Some(true) {
            refresh();
            sleep_ms(api::REFRESH_MS).await;
        }
    });
    // Runs one action, says how it went, and reads the page again.
    let act =
        move |method: &'static str, path: String, body: Option<serde_json::Value>, done: String| {
            spawn_local(async move {
                match api::send(console, method, &path, body.as_ref()).await {
                    Ok(_) => notice.try_set(done),
                    Err(failed) => notice.try_set(failed.says()),
                };
                refresh();
            });
        };
    let moderate = move |action: &'static str, target: String, until: Option<u64>| {
        let room = room.get_value();
        let body = json!({ "action": action, "user": target, "until": until });
        let done = format!("{action}: {target}, done.");
        act(
            "POST",
            format!("/api/rooms/{room}/moderation"),
            Some(body),
            done,
        );
    };
    let slow = RwSignal::new(String::from("0"));
    let set_slow = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let room = room.get_value();
        match slow.get_untracked().trim().parse::<u32>() {
            Ok(secs) if secs <= 3600 => act(
                "POST",
                format!("/api/rooms/{room}/moderation"),
                Some(json!({ "action": "slow_mode", "secs": secs })),
                format!("Slow mode: {secs} s."),
            ),
            _ => notice.set("Slow mode is a number of seconds from 0 to 3600.".into()),
        }
    };
    let members = move || {
        shown.with(|s| s.members.clone()).into_iter().map(|m| {
            let target = m.target().to_owned();
            let (kick, mute, ban) = (target.clone(), target.clone(), target.clone());
            let who = m.name.clone();
            view! {
                <tr data-member=m.id.clone()>
                    <th scope="row">{m.name.clone()}</th>
                    <td><code>{m.id.clone()}</code></td>
                    <td>{m.user.clone().unwrap_or_else(|| "guest".into())}</td>
                    <td class="actions">
                        <button type="button" class="kick" aria-label=format!("Kick {who}")
                            on:click=move |_| moderate("kick", kick.clone(), None)>"Kick"</button>
                        <button type="button" class="mute" aria-label=format!("Mute {who} for 10 minutes")
                            on:click=move |_| moderate("mute", mute.clone(), Some(js_sys::Date::now() as u64 + MUTE_MS))>"Mute 10 min"</button>
                        <button type="button" class="ban" aria-label=format!("Ban {who}")
                            on:click=move |_| moderate("ban", ban.clone(), None)>"Ban"</button>
                    </td>
                </tr>
            }
        }).collect_view()
    };
    let lines = move || {
        shown.with(|s| s.lines.clone()).into_iter().map(|line| {
            let seq = line.seq.0;
            let who = line.name.as_ref().map_or_else(|| line.from.as_str().to_owned(), ToString::to_string);
            let text = if line.removed {
                "line removed".to_owned()
            } else if line.edited {
                format!("{} (edited)", line.text)
            } else {
                line.text.clone()
            };
            let delete = (!line.removed).then(|| {
                let path = format!("/api/rooms/{}/messages/{seq}", room.get_value());
                view! {
                    <button type="button" class="delete" aria-label=format!("Delete line {seq}")
                        on:click=move |_| act("DELETE", path.clone(), None, format!("Line {seq} deleted."))>
                        "Delete"
                    </button>
                }
            });
            view! {
                <li data-seq=seq>
                    <span class="line-text">{format!("{who} -> {text}")}</span>
                    {delete}
                </li>
            }
        }).collect_view()
    };
    let audit = move || {
        shown
            .with(|s| s.audit.clone())
            .into_iter()
            .map(|a| {
                view! {
                    <tr>
                        <td>{format!("#{}", a.seq)}</td>
                        <td>{a.by}</td>
                        <td>{a.action}</td>
                        <td>{a.target}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section id="console-room" aria-labelledby="room-title">
            <h2 id="room-title">"Room " {name.clone()}</h2>
            <button type="button" id="room-back" on:click=move |_| console.room.set(None)>
                "All rooms"
            </button>
            <p id="room-notice" role="status">{move || notice.get()}</p>
            <form id="slow-mode-form" on:submit=set_slow>
                <label for="slow-mode-secs">"Slow mode, seconds (0: off)"</label>
                <input id="slow-mode-secs" type="number" min="0" max="3600"
                    prop:value=move || slow.get() on:input=move |ev| slow.set(event_target_value(&ev)) />
                <button type="submit">"Set"</button>
            </form>
            <h3 id="members-title">"Members"</h3>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Members, scrolls sideways"><table id="room-members" aria-labelledby="members-title">
                <thead><tr><th scope="col">"Name"</th><th scope="col">"Id"</th><th scope="col">"User"</th><th scope="col">"Actions"</th></tr></thead>
                <tbody>{members}</tbody>
            </table></div>
            <h3 id="lines-title">"Latest lines"</h3>
            <ol id="room-lines" aria-labelledby="lines-title">{lines}</ol>
            <h3 id="audit-title">"Audit"</h3>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Audit, scrolls sideways"><table id="room-audit" aria-labelledby="audit-title">
                <thead><tr><th scope="col">"Entry"</th><th scope="col">"By"</th><th scope="col">"Action"</th><th scope="col">"Target"</th></tr></thead>
                <tbody>{audit}</tbody>
            </table></div>
        </section>
    }
}
