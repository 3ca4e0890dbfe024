//! The navigation bar: the chat and every exercise page, and the language switch. The link
//! of the page in view is marked `aria-current="page"`.

use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::i18n::{LangSwitch, Texts, use_i18n};

/// A page in the bar: its path, the text of its link, and whether a path is it.
type Page = (&'static str, fn(&Texts) -> &'static str, fn(&str) -> bool);

/// The pages, in the bar's order.
const PAGES: [Page; 5] = [
    (
        "/",
        |t| t.nav_chat,
        |path| path == "/" || path.starts_with("/r/"),
    ),
    ("/echo", |t| t.nav_echo, |path| path == "/echo"),
    ("/random", |t| t.nav_random, |path| path == "/random"),
    ("/products", |t| t.nav_products, |path| path == "/products"),
    (
        "/realtimeproducts",
        |t| t.nav_live_products,
        |path| path == "/realtimeproducts",
    ),
];

/// The site's navigation bar, on every page.
#[component]
pub fn NavBar() -> impl IntoView {
    let i18n = use_i18n();
    let location = use_location();
    view! {
        <div class="site-bar">
            <nav id="site-nav" class="site-nav" aria-label=move || i18n.t().nav_label>
                <ul>
                    {PAGES
                        .into_iter()
                        .map(|(href, text, is_it)| {
                            view! {
                                <li>
                                    <a
                                        href=href
                                        aria-current=move || {
                                            location.pathname.with(|p| is_it(p)).then_some("page")
                                        }
                                    >
                                        {move || text(i18n.t())}
                                    </a>
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
