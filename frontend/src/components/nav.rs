//! The site's pages as one table ([`PAGES`]): the navigation bar, the titles and the layout
//! read it. The chat's pages and the exercises are two apps (two wasm files, see
//! [`crate::Site`]); each shows its own pages, and a link to the other's is a page load. The
//! bar marks the page in view `aria-current="page"`; the language switch sits beside it.

use leptos::prelude::*;

use crate::i18n::{LangSwitch, Texts, use_i18n};
use crate::router::use_router;

/// A page of the site: its path, its link in the bar, its title (none: the chat's own, which
/// names the room and the unread count), and whether a path is it. The chat's pages (`/`,
/// `/r/:room`) show a room beside the rooms panel; the others take the whole width, and
/// their views are the exercises' app's (`src/bin/exercises.rs`).
pub struct Page {
    /// Where it is (the link's `href`).
    pub path: &'static str,
    /// The text of its link.
    pub link: fn(&Texts) -> &'static str,
    /// Its title, before the app's name.
    pub title: Option<fn(&Texts) -> &'static str>,
    /// Whether a path shows it.
    pub shows: fn(&str) -> bool,
}

/// Every page, in the bar's order: the one table the bar, the titles and the layout read.
/// The exercises' paths are [`shared::exercises::PAGES`] (the server answers them with their
/// app), in that order.
pub const PAGES: [Page; 6] = [
    Page {
        path: "/",
        link: |t| t.nav_chat,
        title: None,
        shows: |path| path == "/" || path.starts_with("/r/"),
    },
    Page {
        path: "/echo",
        link: |t| t.nav_echo,
        title: Some(|t| t.echo_title),
        shows: |path| path == "/echo",
    },
    Page {
        path: "/random",
        link: |t| t.nav_random,
        title: Some(|t| t.random_title),
        shows: |path| path == "/random",
    },
    Page {
        path: "/products",
        link: |t| t.nav_products,
        title: Some(|t| t.products_title),
        shows: |path| path == "/products",
    },
    Page {
        path: "/realtimeproducts",
        link: |t| t.nav_live_products,
        title: Some(|t| t.live_products_title),
        shows: |path| path == "/realtimeproducts",
    },
    Page {
        path: "/transports",
        link: |t| t.nav_transports,
        title: Some(|t| t.transports_title),
        shows: |path| path == "/transports",
    },
];

/// The page a path shows, if any.
pub fn page_of(path: &str) -> Option<&'static Page> {
    PAGES.iter().find(|page| (page.shows)(path))
}

/// Whether a path is one of the chat's pages (`/`, `/r/<room>`).
pub fn is_chat(path: &str) -> bool {
    page_of(path).is_some_and(|page| page.title.is_none())
}

/// The site's navigation bar, on every page.
#[component]
pub fn NavBar() -> impl IntoView {
    let i18n = use_i18n();
    let router = use_router();
    view! {
        <div class="site-bar">
            <nav id="site-nav" class="site-nav" aria-label=move || i18n.t().nav_label>
                <ul>
                    {PAGES
                        .iter()
                        .map(|page| {
                            let (href, text, shows) = (page.path, page.link, page.shows);
                            let here = move || router.path().with(|p| shows(p)).then_some("page");
                            view! {
                                <li>
                                    <a href=href aria-current=here>{move || text(i18n.t())}</a>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <LangSwitch />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::PAGES;

    #[test]
    fn the_bars_exercise_pages_are_the_ones_the_server_serves_with_their_app() {
        let exercises: Vec<_> = PAGES
            .iter()
            .filter(|page| page.title.is_some())
            .map(|page| page.path)
            .collect();
        assert_eq!(exercises, shared::exercises::PAGES);
        for page in &PAGES {
            assert!((page.shows)(page.path), "{}", page.path);
        }
    }
}
