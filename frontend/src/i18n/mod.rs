//! The page's languages: every text it shows, in Spanish ([`ES`], `i18n/es.rs`) and English
//! ([`EN`], `i18n/en.rs`), one file each, and the switch between them.
//!
//! # One typed place
//!
//! [`Texts`] has one field per text the page shows: `&'static str` for a fixed text,
//! `fn(...) -> String` for a text holding values (a count, a room, a reason). [`ES`] and
//! [`EN`] are both plain struct literals, so **a text missing in either language is a compile
//! error**, and a new text is added by adding a field and filling it in twice. Only texts live
//! here: what people write (lines, names, live text), room names and ids are data and are shown
//! as they are, in any language.
//!
//! # Choosing the language
//!
//! [`provide_i18n`] (called once, by [`App`](crate::App)) puts an [`I18n`] in the reactive
//! context: the language kept in `localStorage` (`charla.lang`) if the user chose one with
//! [`LangSwitch`], otherwise the browser's first preferred language that is one of these
//! (English when none is). It keeps `<html lang>` equal to the language shown. Components read
//! their texts with `use_i18n().t()` inside reactive closures, so switching re-renders every
//! text at once, without a reload. Without a context (component tests mount components without
//! `App`), [`use_i18n`] gives English.

use leptos::prelude::*;
use shared::{ErrorCode, NameError, Problem, RoomName};
use wasm_bindgen::JsCast;

use crate::connection::storage::{self, Store};

mod en;
mod es;

pub use en::EN;
pub use es::ES;

/// A language the page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Spanish.
    Es,
    /// English.
    En,
}

impl Lang {
    /// Every language, in the order the switch shows them.
    pub const ALL: [Lang; 2] = [Lang::Es, Lang::En];

    /// The language's BCP 47 code: `"es"` or `"en"` (for `lang` attributes and storage).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    /// The language of a BCP 47 tag, by its primary subtag (`"es"`, `"es-ES"`, `"es-419"`,
    /// `"en-US"`, …, in any case); `None` for any other language.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL
            .into_iter()
            .find(|lang| primary.eq_ignore_ascii_case(lang.code()))
    }

    /// Every text of the page in this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Es => &ES,
            Lang::En => &EN,
        }
    }

    /// The language's name in itself, as the switch shows it: "Español", "English".
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Es => "Español",
            Lang::En => "English",
        }
    }
}

/// Every text the page shows, in one language. See the [module docs](self): both [`ES`] and
/// [`EN`] must fill in every field.
pub struct Texts {
    // ---- The page's frame (header, document title, side panel). ----
    /// The app's name, in the header.
    pub app_name: &'static str,
    /// The document title: the room in view, and how many lines are unread (when any).
    pub title: fn(&str, u32) -> String,
    /// The rooms panel: its heading, its landmark's label, and the button showing it on a
    /// phone.
    pub rooms: &'static str,
    /// Said (to screen readers) after an unread count.
    pub unread: &'static str,
    /// The label of the language switch.
    pub language: &'static str,

    // ---- Status bar. ----
    /// Before this page's name.
    pub you_are: &'static str,
    /// The hover text of this page's connection id.
    pub your_id: &'static str,
    /// Stands in for the id until the server gives one.
    pub no_id_yet: &'static str,
    /// The connection is opening.
    pub connecting: &'static str,
    /// The connection is open and welcomed.
    pub connected: &'static str,
    /// Not connected, and not trying.
    pub disconnected: &'static str,
    /// Dropped; the next attempt in this many seconds.
    pub reconnecting_in: fn(u32) -> String,
    /// Dropped; the next attempt any moment now.
    pub reconnecting_soon: &'static str,
    /// The button that tries to connect right away.
    pub reconnect_now: &'static str,
    /// What the transport pill in the status bar says it is (its label is the transport's
    /// name: "WebSocket", "SSE + POST").
    pub transport_title: &'static str,

    // ---- Sign-in (who is who). ----
    /// The sign-in area's label.
    pub sign_in_area: &'static str,
    /// Who is signed in: their name, and their user id (when it differs from the name).
    pub signed_in_as: fn(&str, Option<&str>) -> String,
    /// Not signed in.
    pub guest: &'static str,
    /// Said (to screen readers, and on hover) of a private room's lock.
    pub private_room: &'static str,
    /// The server takes signed-in users only, and this page has none.
    pub sign_in_required: &'static str,
    /// The server refused the sign-in (whether it takes signed-in users only).
    pub sign_in_refused: fn(bool) -> String,
    /// The sign-in expired (whether the server takes signed-in users only).
    pub sign_in_expired: fn(bool) -> String,
    /// The app's backend disconnected this user.
    pub signed_out_by_server: &'static str,
    /// A join refused because the room is private and not granted.
    pub join_forbidden: fn(&RoomName) -> String,
    /// A join refused because a moderator banned this user (or session) from the room.
    pub join_banned: fn(&RoomName) -> String,
    /// A moderator put this page out of a room: the room, whether it was a ban (else a
    /// kick), who did it, and the minutes a ban has left (none: for good).
    pub put_out: fn(&RoomName, bool, &str, Option<u64>) -> String,
    /// This page is muted in the room in view, for these minutes more (none: until
    /// unmuted).
    pub muted_here: fn(Option<u64>) -> String,
    /// The room in view is in slow mode: one line per this many seconds.
    pub slow_mode_on: fn(u32) -> String,
    /// The dev-login form's heading.
    pub dev_login_title: &'static str,
    /// What the dev-login form is.
    pub dev_login_hint: &'static str,
    /// The user id input's label.
    pub dev_user_id: &'static str,
    /// The display name input's label.
    pub dev_display_name: &'static str,
    /// The private rooms input's label.
    pub dev_rooms: &'static str,
    /// The dev-login's roles field (`moderator`, `admin`).
    pub dev_roles: &'static str,
    /// The dev-login form's button.
    pub dev_sign_in: &'static str,
    /// While the dev-login form waits for its token.
    pub signing_in: &'static str,
    /// The sign-out button.
    pub sign_out: &'static str,
    /// The dev-login form's user id was blank.
    pub dev_user_id_missing: &'static str,
    /// The server did not sign this page in (its words, if any).
    pub dev_login_failed: fn(Option<&str>) -> String,

    // ---- Name form. ----
    /// The name input's label.
    pub your_name: &'static str,
    /// The name form's button.
    pub set_name: &'static str,
    /// Why a name (display or room name) is not valid.
    pub name_error: fn(&NameError) -> String,
    /// A display name was refused, and why.
    pub invalid_name: fn(&NameError) -> String,

    // ---- Rooms panel: the join form. ----
    /// The join input's label.
    pub join_label: &'static str,
    /// The join input's placeholder.
    pub join_placeholder: &'static str,
    /// The join button.
    pub join: &'static str,
    /// What was typed (or is in the URL) is not a room name, and why.
    pub not_a_room_name: fn(&str, &NameError) -> String,

    // ---- The room in view: route errors, header, members. ----
    /// The heading when the URL names no valid room.
    pub no_such_room: &'static str,
    /// The link back to `general`.
    pub go_to_general: &'static str,
    /// The heading of a path that is no page.
    pub nothing_here: &'static str,
    /// How many are in the room.
    pub online: fn(u32) -> String,
    /// The button to leave the room.
    pub leave_room: &'static str,
    /// The members list's heading.
    pub who_is_here: &'static str,
    /// Said instead of the members of a big room.
    pub too_many_to_list: &'static str,
    /// The button asking for a big room's members.
    pub list_everyone: &'static str,

    // ---- Composer and its notices. ----
    /// The composer's label.
    pub your_message: &'static str,
    /// The composer's placeholder, naming the room in view.
    pub composer_placeholder: fn(&str) -> String,
    /// The send button.
    pub send: &'static str,
    /// A blank line was not sent.
    pub blank_line: &'static str,
    /// A line over the server's limit (this many characters) was not sent.
    pub too_long: fn(usize) -> String,
    /// The server rate-limited a line; it goes out again by itself.
    pub slow_down: &'static str,
    /// The server could not store a line for now; it goes out again by itself.
    pub server_busy: &'static str,
    /// The reason shown for a server's refusal: its code's, or the server's own words.
    pub server_reason: fn(ErrorCode, &str) -> String,
    /// The server refused a line for good (code, reason).
    pub line_refused: fn(ErrorCode, &str) -> String,
    /// The server refused to let this page into a room (room, code, reason).
    pub join_refused: fn(&RoomName, ErrorCode, &str) -> String,
    /// The server refused something else (code, reason).
    pub refused: fn(ErrorCode, &str) -> String,

    // ---- Live typing. ----
    /// The typists list's label.
    pub typing_now: &'static str,
    /// This page's own typist line's name.
    pub typist_you: fn(&str) -> String,
    /// Nobody is typing in the room.
    pub nobody_typing: &'static str,

    // ---- History. ----
    /// The history's heading.
    pub history: &'static str,
    /// The button loading older lines.
    pub load_older: &'static str,
    /// The room has no lines yet.
    pub no_lines_yet: &'static str,
    /// After an edited line's text.
    pub edited_mark: &'static str,
    /// Instead of a removed line's text.
    pub line_removed: &'static str,
    /// The button editing one's own line, and its label's start (the line's number follows).
    pub edit: &'static str,
    /// See `edit`.
    pub edit_line: &'static str,
    /// The button deleting one's own line, and its label's start.
    pub delete_own: &'static str,
    /// See `delete`.
    pub delete_line: &'static str,
    /// A moderator's button removing someone's line, and its label's start.
    pub remove: &'static str,
    /// See `remove`.
    pub remove_line: &'static str,
    /// A moderator's button putting a line's author out of the room, and its label's
    /// start (the author follows).
    pub kick: &'static str,
    /// See `kick`.
    pub kick_label: &'static str,
    /// A moderator's button muting a line's author for 10 minutes, and its label's start.
    pub mute: &'static str,
    /// See `mute`.
    pub mute_label: &'static str,
    /// A moderator's button banning a line's author from the room, and its label's start.
    pub ban: &'static str,
    /// See `ban`.
    pub ban_label: &'static str,
    /// The edit box's label.
    pub edit_label: &'static str,
    /// Saves an edit.
    pub save: &'static str,
    /// Drops an edit.
    pub cancel: &'static str,
    /// This page's own pending lines' sender, before it has a name or an id.
    pub you: &'static str,
    /// The pending lines list's label.
    pub sending_list: &'static str,
    /// The hover text of a pending line.
    pub not_acknowledged: &'static str,
    /// After a pending line.
    pub sending: &'static str,

    // ---- The navigation bar. ----
    /// The navigation landmark's label.
    pub nav_label: &'static str,
    /// The chat's link.
    pub nav_chat: &'static str,
    /// The echo page's link.
    pub nav_echo: &'static str,
    /// The random ticker page's link.
    pub nav_random: &'static str,
    /// The product list's link.
    pub nav_products: &'static str,
    /// The live product list's link.
    pub nav_live_products: &'static str,
    /// The transports lesson's link.
    pub nav_transports: &'static str,
    /// The transports lesson's heading (its other words are its own, in the exercises' app).
    pub transports_title: &'static str,
    /// Not connected: what was asked goes out once the connection is back.
    pub offline: &'static str,

    // ---- The echo page. ----
    /// Its heading.
    pub echo_title: &'static str,
    /// The echo server section's heading.
    pub echo_server: &'static str,
    /// What the echo server does.
    pub echo_server_intro: &'static str,
    /// The echo socket is open.
    pub echo_connected: &'static str,
    /// The echo socket is opening.
    pub echo_connecting: &'static str,
    /// The echo socket dropped (it reopens by itself).
    pub echo_disconnected: &'static str,
    /// The button sending "Mensaje N".
    pub echo_send: &'static str,
    /// The heading of what came back.
    pub echo_received: &'static str,
    /// The named events section's heading.
    pub events_title: &'static str,
    /// What the named events section does.
    pub events_intro: &'static str,
    /// Starts the tics.
    pub tic_start: &'static str,
    /// Stops the tics.
    pub tic_stop: &'static str,
    /// No tic sent yet.
    pub tic_none: &'static str,
    /// The last tic sent.
    pub tic_last: fn(u64) -> String,
    /// The label of the message echoed over the JSON socket.
    pub json_echo_label: &'static str,
    /// The binary section's heading.
    pub binary_title: &'static str,
    /// What the binary section does.
    pub binary_intro: &'static str,
    /// The button asking for a frame of this size.
    pub binary_ask: fn(&str) -> String,
    /// A frame was asked for and has not arrived.
    pub binary_waiting: &'static str,
    /// A frame arrived: its size, its checksum, and whether it checked out.
    pub binary_result: fn(u32, u32, bool) -> String,

    // ---- The random ticker page. ----
    /// Its heading.
    pub random_title: &'static str,
    /// The server's greeting, quoted.
    pub greeting: fn(&str) -> String,
    /// The ticker section's heading.
    pub ticker_title: &'static str,
    /// The interval input's label.
    pub ticker_every: &'static str,
    /// Starts the ticker.
    pub ticker_start: &'static str,
    /// Changes a running ticker's interval.
    pub ticker_change: &'static str,
    /// Stops the ticker.
    pub ticker_stop: &'static str,
    /// The interval's bounds (its least value).
    pub ticker_bounds: fn(u32) -> String,
    /// No ticker runs.
    pub ticker_stopped: &'static str,
    /// The ticker runs at this interval.
    pub ticker_running: fn(u32) -> String,
    /// The ticker was asked for; the server has not confirmed it yet.
    pub ticker_starting: &'static str,
    /// The numbers' heading.
    pub randoms_title: &'static str,
    /// No number yet.
    pub randoms_none: &'static str,

    // ---- The product pages. ----
    /// The product list's heading.
    pub products_title: &'static str,
    /// The live product list's heading.
    pub live_products_title: &'static str,
    /// What the product list page shows.
    pub products_intro: &'static str,
    /// What the live product list page shows.
    pub live_intro: &'static str,
    /// No products.
    pub products_none: &'static str,
    /// Loading.
    pub loading: &'static str,
    /// The list could not be loaded.
    pub products_failed: &'static str,
    /// Loads the list again.
    pub reload: &'static str,
    /// The link to the live list.
    pub see_live: &'static str,
    /// The title field.
    pub field_title: &'static str,
    /// The description field.
    pub field_description: &'static str,
    /// The code field.
    pub field_code: &'static str,
    /// The price field.
    pub field_price: &'static str,
    /// The stock field.
    pub field_stock: &'static str,
    /// The actions column's heading.
    pub actions: &'static str,
    /// A delete button.
    pub delete: &'static str,
    /// A delete button's accessible name: which product it deletes.
    pub delete_named: fn(&str) -> String,
    /// The add form's heading.
    pub add_product_title: &'static str,
    /// The add form's button.
    pub add_product: &'static str,
    /// The product was created, with this id.
    pub product_added: fn(u64) -> String,
    /// The server refused the product (each field says why).
    pub product_refused: &'static str,
    /// What is wrong with a field.
    pub problem: fn(Problem) -> String,
}

/// The page's language, in the reactive context. `Copy`: read it anywhere.
#[derive(Clone, Copy)]
pub struct I18n {
    /// The language shown.
    pub lang: RwSignal<Lang>,
}

impl I18n {
    /// A context showing `lang`, on its own (neither read from nor tied to the browser's
    /// storage until [`I18n::set`] is called): for tests, and for pages without [`App`](crate::App).
    pub fn new(lang: Lang) -> Self {
        I18n {
            lang: RwSignal::new(lang),
        }
    }

    /// The texts of the language shown (tracked: a closure calling this re-runs on a switch).
    pub fn t(&self) -> &'static Texts {
        self.lang.get().texts()
    }

    /// Shows `lang` from now on, and keeps the choice in the browser for the next visits.
    pub fn set(&self, lang: Lang) {
        self.lang.set(lang);
        storage::write(Store::Local, storage::LANG, lang.code());
    }
}

/// Puts the page's [`I18n`] in the context and returns it: the language chosen earlier (kept
/// in `localStorage`), else the browser's first preferred language that the page is written
/// in, else English. Keeps `<html lang>` in step with it. Stores nothing by itself: only a
/// choice made with the switch is kept.
pub fn provide_i18n() -> I18n {
    let i18n = I18n::new(initial_lang());
    provide_context(i18n);
    Effect::new(move |_| {
        let code = i18n.lang.get().code();
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", code);
        }
    });
    i18n
}

/// The page's [`I18n`]; without one in the context (a component mounted alone, as in the
/// component tests), a fresh English one.
pub fn use_i18n() -> I18n {
    use_context::<I18n>().unwrap_or_else(|| I18n::new(Lang::En))
}

/// The language to start in: the stored choice, the browser's, or English.
fn initial_lang() -> Lang {
    storage::read(Store::Local, storage::LANG)
        .as_deref()
        .and_then(Lang::parse)
        .or_else(|| browser_langs().iter().find_map(|tag| Lang::parse(tag)))
        .unwrap_or(Lang::En)
}

/// The browser's preferred languages, most preferred first (`navigator.languages`, or just
/// `navigator.language` where that list is missing).
fn browser_langs() -> Vec<String> {
    let Some(navigator) =
        web_sys::window().and_then(|w| js_sys::Reflect::get(w.as_ref(), &"navigator".into()).ok())
    else {
        return Vec::new();
    };
    let get = |key: &str| js_sys::Reflect::get(&navigator, &key.into()).ok();
    let listed: Vec<String> = get("languages")
        .and_then(|list| list.dyn_into::<js_sys::Array>().ok())
        .map(|list| list.iter().filter_map(|tag| tag.as_string()).collect())
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    get("language")
        .and_then(|tag| tag.as_string())
        .into_iter()
        .collect()
}

/// The language switch: one toggle button per language, each named in its own language
/// (`#lang-es` "Español", `#lang-en` "English"), the one shown pressed. The choice is kept.
#[component]
pub fn LangSwitch() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div id="lang-switch" class="lang-switch" role="group" aria-label=move || i18n.t().language>
            {Lang::ALL
                .into_iter()
                .map(|lang| {
                    view! {
                        <button
                            id=format!("lang-{}", lang.code())
                            class="quiet"
                            type="button"
                            lang=lang.code()
                            aria-pressed=move || (i18n.lang.get() == lang).to_string()
                            on:click=move |_| i18n.set(lang)
                        >
                            {lang.native_name()}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text of `t`, the ones with values filled in with samples.
    fn every_text(t: &Texts) -> Vec<String> {
        let fixed = [
            t.app_name,
            t.rooms,
            t.unread,
            t.language,
            t.you_are,
            t.your_id,
            t.no_id_yet,
            t.connecting,
            t.connected,
            t.disconnected,
            t.reconnecting_soon,
            t.reconnect_now,
            t.transport_title,
            t.sign_in_area,
            t.guest,
            t.private_room,
            t.sign_in_required,
            t.signed_out_by_server,
            t.dev_login_title,
            t.dev_login_hint,
            t.dev_user_id,
            t.dev_display_name,
            t.dev_rooms,
            t.dev_roles,
            t.dev_sign_in,
            t.signing_in,
            t.sign_out,
            t.dev_user_id_missing,
            t.your_name,
            t.set_name,
            t.join_label,
            t.join_placeholder,
            t.join,
            t.no_such_room,
            t.go_to_general,
            t.nothing_here,
            t.leave_room,
            t.who_is_here,
            t.too_many_to_list,
            t.list_everyone,
            t.your_message,
            t.send,
            t.blank_line,
            t.slow_down,
            t.server_busy,
            t.typing_now,
            t.nobody_typing,
            t.history,
            t.load_older,
            t.no_lines_yet,
            t.edited_mark,
            t.line_removed,
            t.edit,
            t.edit_line,
            t.delete_own,
            t.delete_line,
            t.remove,
            t.remove_line,
            t.kick,
            t.kick_label,
            t.mute,
            t.mute_label,
            t.ban,
            t.ban_label,
            t.edit_label,
            t.save,
            t.cancel,
            t.you,
            t.sending_list,
            t.not_acknowledged,
            t.sending,
        ];
        let name_errors = [
            NameError::Empty,
            NameError::TooLong(32),
            NameError::BadRoomChar,
            NameError::ControlChar,
        ];
        let room = RoomName::general();
        let mut all: Vec<String> = fixed.iter().map(|s| (*s).to_owned()).collect();
        all.extend([
            (t.title)("general", 0),
            (t.title)("general", 3),
            (t.reconnecting_in)(3),
            (t.online)(2),
            (t.composer_placeholder)("general"),
            (t.too_long)(2000),
            (t.typist_you)("Ana"),
            (t.signed_in_as)("Alice", Some("alice")),
            (t.signed_in_as)("alice", None),
            (t.sign_in_refused)(true),
            (t.sign_in_refused)(false),
            (t.sign_in_expired)(true),
            (t.sign_in_expired)(false),
            (t.join_forbidden)(&room),
            (t.join_banned)(&room),
            (t.put_out)(&room, true, "ana", Some(10)),
            (t.put_out)(&room, true, "ana", None),
            (t.put_out)(&room, false, "ana", None),
            (t.muted_here)(Some(10)),
            (t.muted_here)(None),
            (t.slow_mode_on)(30),
            (t.dev_login_failed)(Some("bad sub")),
            (t.dev_login_failed)(None),
        ]);
        for err in &name_errors {
            all.push((t.name_error)(err));
            all.push((t.invalid_name)(err));
            all.push((t.not_a_room_name)("No Way", err));
        }
        for &code in ErrorCode::ALL.iter().chain([&ErrorCode::Other]) {
            let reason = (t.server_reason)(code, "the server's words");
            all.push((t.line_refused)(code, &reason));
            all.push((t.join_refused)(&room, code, &reason));
            all.push((t.refused)(code, &reason));
            all.push(reason);
        }
        all
    }

    #[test]
    fn no_text_is_empty_in_either_language() {
        for lang in Lang::ALL {
            for text in every_text(lang.texts()) {
                assert!(!text.trim().is_empty(), "an empty text in {lang:?}");
            }
        }
    }

    #[test]
    fn texts_with_values_show_them() {
        for lang in Lang::ALL {
            let t = lang.texts();
            assert!((t.online)(7).contains('7'));
            assert!((t.reconnecting_in)(9).contains('9'));
            assert!((t.too_long)(2000).contains("2000"));
            assert!((t.typist_you)("Ana").contains("Ana"));
            assert!((t.composer_placeholder)("dev").contains("dev"));
            assert!((t.title)("dev", 4).contains("(4) dev"));
            assert!((t.not_a_room_name)("No Way", &NameError::BadRoomChar).contains("No Way"));
            let room = RoomName::parse("dev").expect("a room name");
            assert!((t.join_refused)(&room, ErrorCode::TooManyRooms, "x").contains("dev"));
            assert!((t.join_forbidden)(&room).contains("dev"));
            assert!((t.join_banned)(&room).contains("dev"));
            let out = (t.put_out)(&room, true, "ana", Some(7));
            assert!(out.contains("dev") && out.contains("ana") && out.contains('7'));
            assert!((t.muted_here)(Some(9)).contains('9'));
            assert!((t.slow_mode_on)(30).contains("30"));
            let who = (t.signed_in_as)("Alice", Some("alice"));
            assert!(who.contains("Alice") && who.contains("alice"));
            assert!((t.dev_login_failed)(Some("bad sub")).contains("bad sub"));
        }
        assert_eq!((EN.online)(2), "2 online");
        assert_eq!((ES.online)(2), "2 en línea");
    }

    #[test]
    fn the_two_languages_differ() {
        assert_ne!(ES.rooms, EN.rooms);
        assert_ne!(ES.connected, EN.connected);
        assert_ne!((ES.online)(1), (EN.online)(1));
    }

    #[test]
    fn language_tags_parse_by_their_primary_subtag() {
        assert_eq!(Lang::parse("es"), Some(Lang::Es));
        assert_eq!(Lang::parse("es-ES"), Some(Lang::Es));
        assert_eq!(Lang::parse("es-419"), Some(Lang::Es));
        assert_eq!(Lang::parse("es-AR"), Some(Lang::Es));
        assert_eq!(Lang::parse("ES"), Some(Lang::Es));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("en-US"), Some(Lang::En));
        assert_eq!(Lang::parse("en-GB"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse("fr-ES"), None);
        assert_eq!(Lang::parse("est"), None);
        assert_eq!(Lang::parse(""), None);
        for lang in Lang::ALL {
            assert_eq!(Lang::parse(lang.code()), Some(lang));
            assert!(!lang.native_name().is_empty());
        }
    }
}
