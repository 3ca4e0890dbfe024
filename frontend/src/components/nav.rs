//! The app's pages as one table ([`PAGES`]): the router's routes, the navigation bar, the
//! titles and the layout all read it. The bar's links are the router's `<A>`, which marks
//! the page in view `aria-current="page"`; the language switch sits beside them.

use leptos::{prelude::*, tachys::view::iterators::StaticVec};
use leptos_router::{
    StaticSegment,
    any_nested_route::{AnyNestedRoute, IntoAnyNestedRoute},
    components::{A, Route, RouteProps},
};

use super::{EchoPage, LiveProductsPage, ProductsPage, RandomPage};
use crate::i18n::{LangSwitch, Texts, use_i18n};

/// A page of the app: its path, its link in the bar, its title (none: the chat's own, which
/// names the room and the unread count), whether a path is it, and its view (none: the
/// chat's, whose routes `/` and `/r/:room` show a room beside the rooms panel). The other
/// pages take the whole width.
pub struct Page {
    /// Where it is (the link's `href`).
    pub path: &'static str,
    /// The text of its link.
    pub link: fn(&Texts) -> &'static str,
    /// Its title, before the app's name.
    pub title: Option<fn(&Texts) -> &'static str>,
    /// Whether a path shows it.
    pub shows: fn(&str) -> bool,
    /// What it shows, under its path (none: the chat).
    pub view: Option<fn() -> AnyView>,
}

/// Every page, in the bar's order: the one table the routes, the bar, the titles and the
/// layout read.
pub const PAGES: [Page; 5] = [
    Page {
        path: "/",
        link: |t| t.nav_chat,
        title: None,
        shows: |path| path == "/" || path.starts_with("/r/"),
        view: None,
    },
    Page {
        path: "/echo",
        link: |t| t.nav_echo,
        title: Some(|t| t.echo_title),
        shows: |path| path == "/echo",
        view: Some(|| view! { <EchoPage /> }.into_any()),
    },
    Page {
        path: "/random",
        link: |t| t.nav_random,
        title: Some(|t| t.random_title),
        shows: |path| path == "/random",
        view: Some(|| view! { <RandomPage /> }.into_any()),
    },
    Page {
        path: "/products",
        link: |t| t.nav_products,
        title: Some(|t| t.products_title),
        shows: |path| path == "/products",
        view: Some(|| view! { <ProductsPage /> }.into_any()),
    },
    Page {
        path: "/realtimeproducts",
        link: |t| t.nav_live_products,
        title: Some(|t| t.live_products_title),
        shows: |path| path == "/realtimeproducts",
        view: Some(|| view! { <LiveProductsPage /> }.into_any()),
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

/// The routes of every page with a view of its own (the exercises), for the router.
pub fn page_routes() -> StaticVec<AnyNestedRoute> {
    PAGES
        .iter()
        .filter_map(|page| {
            let view = page.view?;
            let path = StaticSegment(page.path.trim_start_matches('/'));
            let route = Route(RouteProps::builder().path(path).view(view).build());
            Some(route.into_any_nested_route())
        })
        .collect::<Vec<_>>()
        .into()
}

/// The site's navigation bar, on every page.
#[component]
pub fn NavBar() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="site-bar">
            <nav id="site-nav" class="site-nav" aria-label=move || i18n.t().nav_label>
                <ul>
                    {PAGES
                        .iter()
                        .map(|page| {
                            let (href, text) = (page.path, page.link);
                            view! {
                                <li>
                                    <A href=href>{move || text(i18n.t())}</A>
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
