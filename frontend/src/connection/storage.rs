//! What the page keeps in the browser between loads.
//!
//! - `localStorage` (every tab of this browser, across restarts): the display name
//!   ([`NAME`]) and the rooms joined ([`ROOMS`]), so a reload comes back as the same person
//!   in the same rooms; the language chosen with the switch ([`LANG`]), once chosen; and who
//!   the dev-login form signed in as ([`DEV_LOGIN`]), until "sign out" (never a token: a new
//!   one is asked for at each load).
//! - `sessionStorage` (this tab only, across reloads): the resume token ([`RESUME`]), so a
//!   reload keeps the same id, and the lines not yet acknowledged ([`PENDING`]), so a reload
//!   neither loses nor duplicates them (they go out again with the same nonces).
//!
//! Storage can be missing or full (private windows, quotas): every read falls back to
//! nothing and every write is best effort.

use shared::{ClientMsg, DisplayName, PendingLine, RoomName, encode};

/// `localStorage` key of the display name.
pub const NAME: &str = "charla.name";
/// `localStorage` key of the page's language chosen with the switch (`es`, `en`); absent
/// until the user chooses one (the browser's languages decide until then).
pub const LANG: &str = "charla.lang";
/// `localStorage` key of the rooms joined: their names, comma-separated, in joining order.
pub const ROOMS: &str = "charla.rooms";
/// `localStorage` key of the dev-login identity (JSON: `sub`, `name`, `rooms`).
pub const DEV_LOGIN: &str = "charla.dev_login";
/// `sessionStorage` key of the resume token.
pub const RESUME: &str = "charla.resume";
/// `sessionStorage` key of the pending lines: one `send` frame (JSON) per line.
pub const PENDING: &str = "charla.pending";

/// Which of the browser's two stores.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    /// `localStorage`.
    Local,
    /// `sessionStorage`.
    Session,
}

fn storage(store: Store) -> Option<web_sys::Storage> {
    let window = web_sys::window()?;
    match store {
        Store::Local => window.local_storage().ok().flatten(),
        Store::Session => window.session_storage().ok().flatten(),
    }
}

/// Reads `key` (`None` when absent or when storage is unavailable).
pub fn read(store: Store, key: &str) -> Option<String> {
    storage(store)?.get_item(key).ok().flatten()
}

/// Writes `key` (best effort).
pub fn write(store: Store, key: &str, value: &str) {
    if let Some(storage) = storage(store) {
        let _ = storage.set_item(key, value);
    }
}

/// Removes `key` (best effort).
pub fn remove(store: Store, key: &str) {
    if let Some(storage) = storage(store) {
        let _ = storage.remove_item(key);
    }
}

/// The display name kept from an earlier visit, or a new `guest-xxxx` (kept from now on).
pub fn load_name() -> DisplayName {
    if let Some(name) = read(Store::Local, NAME).and_then(|n| DisplayName::parse(&n).ok()) {
        return name;
    }
    let suffix = (js_sys::Math::random() * 65_536.0) as u32 & 0xffff;
    let generated = format!("guest-{suffix:04x}");
    write(Store::Local, NAME, &generated);
    DisplayName::parse(&generated).expect("guest-xxxx is a valid name")
}

/// The rooms kept from an earlier visit, in order (invalid or repeated names skipped);
/// just `general` the first time.
pub fn load_rooms() -> Vec<RoomName> {
    let mut rooms: Vec<RoomName> = Vec::new();
    for name in read(Store::Local, ROOMS).unwrap_or_default().split(',') {
        if let Ok(room) = RoomName::parse(name)
            && !rooms.contains(&room)
        {
            rooms.push(room);
        }
    }
    if rooms.is_empty() {
        rooms.push(RoomName::general());
    }
    rooms
}

/// Keeps the rooms joined.
pub fn save_rooms(rooms: &[RoomName]) {
    let names: Vec<&str> = rooms.iter().map(RoomName::as_str).collect();
    write(Store::Local, ROOMS, &names.join(","));
}

/// Keeps the pending lines, as the `send` frames that carry them.
pub fn save_pending(pending: &[PendingLine]) {
    let frames: Vec<String> = pending
        .iter()
        .map(|p| {
            encode(&ClientMsg::Send {
                room: Some(p.room.as_str().to_owned()),
                text: p.text.clone(),
                nonce: Some(p.nonce.clone()),
            })
        })
        .collect();
    // Compact JSON never holds a raw new line (one in a string is escaped): one per line.
    write(Store::Session, PENDING, &frames.join("\n"));
}

/// A kept `send` frame, read back: its `type` is always `send`, so a plain struct (which
/// skips it) reads it without `ClientMsg`'s whole decoder (6.7 KB brotli of the page).
#[derive(serde::Deserialize)]
struct KeptSend {
    room: Option<String>,
    text: String,
    nonce: String,
}

/// The pending lines kept by an earlier load of this tab (anything unreadable skipped).
pub fn load_pending() -> Vec<PendingLine> {
    read(Store::Session, PENDING)
        .unwrap_or_default()
        .lines()
        .filter_map(|frame| {
            let kept: KeptSend = serde_json::from_str(frame).ok()?;
            Some(PendingLine {
                room: match kept.room {
                    Some(room) => RoomName::parse(&room).ok()?,
                    None => RoomName::general(),
                },
                nonce: kept.nonce,
                text: kept.text,
            })
        })
        .collect()
}
