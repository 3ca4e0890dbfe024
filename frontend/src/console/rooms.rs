//! The console's rooms: every room the server holds (`GET /api/rooms`, asked again every
//! [`api::REFRESH_MS`]), in a table sorted by any column (its header's button; again: the other
//! way) and filtered by name.

use leptos::prelude::*;
use serde::Deserialize;

use super::{Console, api};

/// One room, as `GET /api/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoomRow {
    /// Its name.
    pub room: String,
    /// Connections in it, on every server.
    pub online: u64,
    /// Lines kept in memory.
    #[serde(default)]
    pub lines: u64,
    /// When its newest entry came, in ms since the epoch.
    #[serde(default)]
    pub last_at: Option<u64>,
    /// Whether it is private.
    #[serde(default)]
    pub private: bool,
}

/// A column to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// By name.
    Room,
    /// By connections.
    Online,
    /// By lines kept.
    Lines,
    /// By last activity.
    LastAt,
    /// Private ones first (or last).
    Private,
}

impl Column {
    const ALL: [(Column, &'static str, &'static str); 5] = [
        (Column::Room, "room", "Room"),
        (Column::Online, "online", "Online"),
        (Column::Lines, "lines", "Lines"),
        (Column::LastAt, "last_at", "Last activity"),
        (Column::Private, "private", "Private"),
    ];
}

/// `rows` whose name holds `filter` (any case), sorted by `column` (`ascending` or not;
/// ties by name).
pub fn shown(rows: &[RoomRow], filter: &str, column: Column, ascending: bool) -> Vec<RoomRow> {
    let filter = filter.trim().to_lowercase();
    let mut rows: Vec<RoomRow> = rows
        .iter()
        .filter(|r| r.room.to_lowercase().contains(&filter))
        .cloned()
        .collect();
    rows.sort_by(|a, b| {
        let order = match column {
            Column::Room => a.room.cmp(&b.room),
            Column::Online => a.online.cmp(&b.online),
            Column::Lines => a.lines.cmp(&b.lines),
            Column::LastAt => a.last_at.cmp(&b.last_at),
            Column::Private => a.private.cmp(&b.private),
        };
        let order = if ascending { order } else { order.reverse() };
        order.then_with(|| a.room.cmp(&b.room))
    });
    rows
}

/// How long ago `at` (ms since the epoch) was, for people.
fn ago(at: Option<u64>) -> String {
    let Some(at) = at else {
        return "—".into();
    };
    let now = js_sys::Date::now() as u64;
    let secs = now.saturating_sub(at) / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The rooms table, kept fresh while it is shown.
#[component]
pub fn Rooms() -> impl IntoView {
    let console = expect_context::<Console>();
    let rows = api::kept_fresh::<RoomRow>(console, "/api/rooms");
    let filter = RwSignal::new(String::new());
    let sort = RwSignal::new((Column::Online, false));
    let visible = Memo::new(move |_| {
        let (column, ascending) = sort.get();
        rows.with(|rows| filter.with(|f| shown(rows, f, column, ascending)))
    });
    let header = move |(column, id, title): (Column, &'static str, &'static str)| {
        let aria_sort = move || match sort.get() {
            (c, true) if c == column => "ascending",
            (c, false) if c == column => "descending",
            _ => "none",
        };
        view! {
            <th scope="col" aria-sort=aria_sort data-column=id>
                <button
                    type="button"
                    on:click=move |_| {
                        sort.update(|(c, ascending)| {
                            if *c == column {
                                *ascending = !*ascending;
                            } else {
                                *c = column;
                                *ascending = column == Column::Room;
                            }
                        })
                    }
                >
                    {title}
                </button>
            </th>
        }
    };
    view! {
        <section aria-labelledby="rooms-title" id="console-rooms">
            <h2 id="rooms-title">"Rooms"</h2>
            <label for="rooms-filter">"Filter by name"</label>
            <input
                id="rooms-filter"
                type="search"
                prop:value=move || filter.get()
                on:input=move |ev| filter.set(event_target_value(&ev))
            />
            <div class="table-scroll" tabindex="0" role="region" aria-label="Rooms, scrolls sideways"><table>
                <caption class="visually-hidden">"Every room the server holds; sort by any column"</caption>
                <thead>
                    <tr>{Column::ALL.into_iter().map(header).collect_view()}</tr>
                </thead>
                <tbody>
                    <For
                        each=move || visible.get()
                        key=|row| (row.room.clone(), row.online, row.lines, row.last_at, row.private)
                        let(row)
                    >
                        <tr data-room=row.room.clone()>
                            <th scope="row">
                                <button
                                    type="button"
                                    class="open-room"
                                    on:click={
                                        let room = row.room.clone();
                                        move |_| console.room.set(Some(room.clone()))
                                    }
                                >
                                    {row.room.clone()}
                                </button>
                            </th>
                            <td>{row.online}</td>
                            <td>{row.lines}</td>
                            <td>{ago(row.last_at)}</td>
                            <td>{if row.private { "yes" } else { "no" }}</td>
                        </tr>
                    </For>
                </tbody>
            </table></div>
            <p class="notice" role="status">
                {move || visible.with(Vec::is_empty).then_some("No room matches.")}
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(room: &str, online: u64, lines: u64) -> RoomRow {
        RoomRow {
            room: room.into(),
            online,
            lines,
            last_at: None,
            private: false,
        }
    }

    #[test]
    fn rows_filter_by_name_and_sort_by_any_column_either_way() {
        let rows = [
            row("general", 5, 10),
            row("dev", 2, 30),
            row("devops", 5, 1),
        ];
        let names = |rows: Vec<RoomRow>| rows.into_iter().map(|r| r.room).collect::<Vec<_>>();
        assert_eq!(
            names(shown(&rows, "", Column::Online, false)),
            ["devops", "general", "dev"],
            "ties by name"
        );
        assert_eq!(
            names(shown(&rows, "DEV", Column::Lines, true)),
            ["devops", "dev"]
        );
        assert_eq!(
            names(shown(&rows, "", Column::Room, true)),
            ["dev", "devops", "general"]
        );
        assert!(shown(&rows, "nope", Column::Room, true).is_empty());
    }
}
