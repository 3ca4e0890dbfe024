//! The console's servers: alone, this one; with `--redis`, every server of the cluster
//! (`GET /api/admin/nodes`, each reporting once a second), with its connections and load
//! and the rooms it follows. Asked for again every [`api::REFRESH_MS`].

use leptos::prelude::*;
use serde::Deserialize;
use shared::console::show_value;

use super::{Console, api};

/// One server's latest report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NodeRow {
    /// Its name among the others.
    pub node: String,
    /// Its open connections.
    pub connections: u64,
    /// Lines made durable in its last second.
    pub lines: u64,
    /// Frames written in its last second.
    pub deliveries: u64,
    /// Its CPU use, in percent of one core.
    pub cpu: f32,
    /// Its resident memory, in bytes.
    pub rss: u64,
    /// The rooms it follows.
    pub rooms: Vec<String>,
}

/// The servers' table.
#[component]
pub fn Nodes() -> impl IntoView {
    let console = expect_context::<Console>();
    let rows = api::kept_fresh::<NodeRow>(console, "/api/admin/nodes");
    view! {
        <section id="console-nodes" aria-labelledby="nodes-title">
            <h2 id="nodes-title">"Servers"</h2>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Servers, scrolls sideways"><table>
                <caption class="visually-hidden">"Each server's load and the rooms it follows"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Server"</th>
                        <th scope="col">"Connections"</th>
                        <th scope="col">"Lines"</th>
                        <th scope="col">"Deliveries"</th>
                        <th scope="col">"CPU"</th>
                        <th scope="col">"Memory"</th>
                        <th scope="col">"Rooms followed"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || rows.get().into_iter().map(|n| view! {
                        <tr data-node=n.node.clone()>
                            <th scope="row">{n.node.clone()}</th>
                            <td>{n.connections}</td>
                            <td>{show_value(n.lines as f64, "/s")}</td>
                            <td>{show_value(n.deliveries as f64, "/s")}</td>
                            <td>{show_value(f64::from(n.cpu), "%")}</td>
                            <td>{show_value(n.rss as f64, "B")}</td>
                            <td>{if n.rooms.is_empty() { "—".to_owned() } else { n.rooms.join(", ") }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}
