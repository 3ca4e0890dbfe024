//! The page's router: which view the address shows, kept in step with the browser's history.
//! One path signal ([`Router::path`]); clicks on links inside the page and back/forward move
//! it, and [`Router::navigate`] is how the connection changes it (joining from the form,
//! leaving the room in view).
//!
//! Charla's page is two apps, each a wasm of its own, so that the chat's first visit does not
//! download the exercises (see [`crate::Site`]). A router knows which paths its app shows: a
//! link to any other path is left to the browser, which loads the app that shows it.
//! (`leptos_router` did the same for one app and cost 36 KB brotli of the chat's first
//! visit; what the page needs of it is this file.)

use leptos::{ev, prelude::*};
use wasm_bindgen::{JsCast, JsValue};

/// The address the page shows, and which paths this app handles itself. `Copy`: a signal
/// and a function pointer.
#[derive(Clone, Copy)]
pub struct Router {
    path: RwSignal<String>,
    shows: fn(&str) -> bool,
}

impl Router {
    /// Starts following the address bar for an app that shows the paths `shows` accepts,
    /// and provides itself to the components below ([`use_router`]). Stops when the owner
    /// is cleaned up.
    pub fn provide(shows: fn(&str) -> bool) -> Self {
        let router = Self {
            path: RwSignal::new(current_path()),
            shows,
        };
        let on_pop = window_event_listener(ev::popstate, move |_| router.path.set(current_path()));
        let on_click = window_event_listener(ev::click, move |ev| router.follow(&ev));
        on_cleanup(move || {
            on_pop.remove();
            on_click.remove();
        });
        provide_context(router);
        router
    }

    /// The path in the address bar (tracked), without query or fragment.
    pub fn path(&self) -> ReadSignal<String> {
        self.path.read_only()
    }

    /// Whether this app shows `path` itself (a link to any other is a page load).
    pub fn shows(&self, path: &str) -> bool {
        (self.shows)(path)
    }

    /// Goes to `url` (a path, with a query or fragment if need be): in this app, a new
    /// history entry (or, with `replace`, in place of the current one); any other app's path
    /// is loaded.
    pub fn navigate(&self, url: &str, replace: bool) {
        let Some(path) = internal_path(url) else {
            return;
        };
        let window = window();
        if !self.shows(path) {
            let _ = window.location().assign(url);
            return;
        }
        if let Ok(history) = window.history() {
            let _ = if replace {
                history.replace_state_with_url(&JsValue::NULL, "", Some(url))
            } else if untrack(|| self.path.get()) != path {
                history.push_state_with_url(&JsValue::NULL, "", Some(url))
            } else {
                Ok(())
            };
        }
        self.path.set(path.to_owned());
    }

    /// A click anywhere on the page: a plain left click on a link to a path of this app
    /// navigates in place; anything else (another app's path, a modifier key, `target`,
    /// `download`, another origin) is left to the browser.
    fn follow(&self, ev: &ev::MouseEvent) {
        if ev.default_prevented()
            || ev.button() != 0
            || ev.ctrl_key()
            || ev.meta_key()
            || ev.shift_key()
            || ev.alt_key()
        {
            return;
        }
        let link = ev
            .target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            .and_then(|element| element.closest("a[href]").ok().flatten());
        let Some(link) = link else {
            return;
        };
        if link.has_attribute("target") || link.has_attribute("download") {
            return;
        }
        let Some(href) = link.get_attribute("href") else {
            return;
        };
        if internal_path(&href).is_some_and(|path| self.shows(path)) {
            ev.prevent_default();
            self.navigate(&href, false);
        }
    }
}

/// The router the app provided.
///
/// # Panics
///
/// Outside an app that called [`Router::provide`] (a programming error, not user input).
pub fn use_router() -> Router {
    expect_context::<Router>()
}

/// The path part of a link to this origin (`/r/dev?x#y` → `/r/dev`); `None` for anything
/// else (another origin, `//host`, `mailto:`, a relative link: the page links none of them).
pub fn internal_path(href: &str) -> Option<&str> {
    if !href.starts_with('/') || href.starts_with("//") {
        return None;
    }
    let end = href.find(['?', '#']).unwrap_or(href.len());
    Some(&href[..end])
}

/// What the chat shows at `path`: `Some(None)` for `/` (`general`), `Some(Some(name))` for
/// `/r/<name>` (percent-decoded), `None` for a path that is no room.
pub fn chat_route(path: &str) -> Option<Option<String>> {
    if path == "/" {
        return Some(None);
    }
    let name = path.strip_prefix("/r/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let decoded = js_sys::decode_uri_component(name)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| name.to_owned());
    Some(Some(decoded))
}

fn current_path() -> String {
    window()
        .location()
        .pathname()
        .unwrap_or_else(|_| "/".to_owned())
}
