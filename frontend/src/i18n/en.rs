//! Every text of the page in English: a plain [`Texts`] literal, so a missing text does not
//! compile.

use shared::{NameError, Problem};

use super::Texts;

/// Every text in English.
pub static EN: Texts = Texts {
    app_name: "Charla",
    title: |room, unread| match unread {
        0 => format!("{room} · Charla"),
        n => format!("({n}) {room} · Charla"),
    },
    rooms: "Rooms",
    unread: "unread",
    language: "Language",

    you_are: "You are ",
    your_id: "Your connection id",
    no_id_yet: "…",
    connecting: "connecting",
    connected: "connected",
    disconnected: "disconnected",
    reconnecting_in: |secs| format!("disconnected · reconnecting in {secs} s"),
    reconnecting_soon: "disconnected · reconnecting…",
    reconnect_now: "Reconnect now",
    transport_title: "How this page talks to the server",

    sign_in_area: "Sign-in",
    signed_in_as: |name, id| match id {
        Some(id) => format!("Signed in as {name} ({id})"),
        None => format!("Signed in as {name}"),
    },
    guest: "Not signed in: you are a guest",
    private_room: "private",
    sign_in_required: "This chat requires signing in.",
    sign_in_refused: |required| {
        if required {
            "The server refused your sign-in. Sign in again to join.".to_owned()
        } else {
            "The server refused your sign-in: you are a guest now.".to_owned()
        }
    },
    sign_in_expired: |required| {
        if required {
            "Your sign-in expired. Sign in again to join.".to_owned()
        } else {
            "Your sign-in expired: you are a guest now.".to_owned()
        }
    },
    signed_out_by_server: "You were signed out by the server. Press “Reconnect now” to come back.",
    join_forbidden: |room| format!("{room} is a private room: you may not join it."),
    join_banned: |room| format!("You are banned from {room}: you may not join it."),
    put_out: |room, ban, by, minutes| match (ban, minutes) {
        (false, _) => format!("{by} removed you from {room}. You may join it again."),
        (true, Some(m)) => format!("{by} banned you from {room} for {m} more minutes."),
        (true, None) => format!("{by} banned you from {room}."),
    },
    muted_here: |minutes| match minutes {
        Some(m) => format!("You are muted here for {m} more minutes: you can read, not send."),
        None => "You are muted here: you can read, not send.".to_owned(),
    },
    slow_mode_on: |secs| format!("Slow mode: one line every {secs} s."),
    dev_login_title: "Sign in as…",
    dev_login_hint: "Development sign-in: the server makes the token itself. Never in production.",
    dev_user_id: "User id",
    dev_display_name: "Display name (optional)",
    dev_rooms: "Private rooms (optional, comma-separated, e.g. team-*)",
    dev_roles: "Roles (optional: moderator or admin)",
    dev_sign_in: "Sign in",
    signing_in: "Signing in…",
    sign_out: "Sign out",
    dev_user_id_missing: "Type a user id first.",
    dev_login_failed: |reason| match reason {
        Some(reason) => format!("Could not sign in: {reason}"),
        None => "Could not sign in.".to_owned(),
    },

    your_name: "Your name",
    set_name: "Set name",
    name_error: |err| match err {
        NameError::Empty => "the name is empty".to_owned(),
        NameError::TooLong(max) => format!("the name is longer than {max} characters"),
        NameError::BadRoomChar => "a room name may only hold a-z, 0-9, _ and -".to_owned(),
        NameError::ControlChar => "a name may not hold control characters".to_owned(),
        NameError::InvisibleChar => {
            "a name may not hold invisible or direction-changing characters".to_owned()
        }
    },
    invalid_name: |err| format!("Not a valid name: {}.", (EN.name_error)(err)),

    join_label: "Join or create a room",
    join_placeholder: "e.g. dev",
    join: "Join",
    not_a_room_name: |name, err| format!("“{name}” is not a room name: {}.", (EN.name_error)(err)),

    no_such_room: "No such room",
    go_to_general: "Go to general",
    nothing_here: "Nothing here",
    online: |n| format!("{n} online"),
    leave_room: "Leave room",
    who_is_here: "Who is here",
    too_many_to_list: "Too many to list here.",
    list_everyone: "List everyone",

    your_message: "Your message",
    composer_placeholder: |room| format!("Message {room}; everyone there sees it as you type"),
    send: "Send",
    blank_line: "Type something first: blank lines are not sent.",
    too_long: |max| format!("Too long: at most {max} characters."),
    slow_down: "Slow down: your line will be sent again shortly.",
    server_busy: "Sending is paused: the server cannot store lines right now. Yours wait here and go out by themselves, once, as soon as it can.",
    // The server writes its reasons in English.
    server_reason: |_, message| message.to_owned(),
    line_refused: |code, reason| format!("The server refused your line ({code}): {reason}"),
    join_refused: |room, code, reason| format!("Could not join {room} ({code}): {reason}"),
    refused: |code, reason| format!("The server refused that ({code}): {reason}"),

    typing_now: "Typing now",
    typist_you: |name| format!("{name} (you)"),
    nobody_typing: "Nobody is typing.",

    history: "History",
    load_older: "Load older lines",
    no_lines_yet: "No lines yet. Say something!",
    edited_mark: "(edited)",
    line_removed: "line removed",
    edit: "edit",
    edit_line: "Edit line",
    delete_own: "delete",
    delete_line: "Delete line",
    remove: "remove",
    remove_line: "Remove (as moderator) line",
    kick: "kick",
    kick_label: "Put out of the room (may rejoin):",
    mute: "mute",
    mute_label: "Mute for 10 minutes:",
    ban: "ban",
    ban_label: "Ban from the room:",
    edit_label: "New text of the line",
    save: "save",
    cancel: "cancel",
    you: "you",
    sending_list: "Sending",
    not_acknowledged: "Not yet acknowledged by the server",
    sending: "sending…",
    nav_label: "Exercises",
    nav_chat: "Chat",
    nav_echo: "Echo",
    nav_random: "Random",
    nav_products: "Products",
    nav_live_products: "Live products",
    nav_transports: "Transports",
    transports_title: "Real-time transports, side by side",
    offline: "Not connected: it goes out once the connection is back.",
    echo_title: "Echo",
    echo_server: "Echo server",
    echo_server_intro: "Every message goes to the plain WebSocket at /echo and comes back as it left.",
    echo_connected: "Connected",
    echo_connecting: "Connecting…",
    echo_disconnected: "DISCONNECTED",
    echo_send: "Send a message",
    echo_received: "Received",
    events_title: "Named events",
    events_intro: "While on, a tic event goes to the server every second: the server logs it and does not answer. Ordinary messages come back as echoes.",
    tic_start: "Start TIC",
    tic_stop: "Stop TIC",
    tic_none: "No tic sent yet.",
    tic_last: |n| format!("Last sent: TIC-{n}"),
    json_echo_label: "Message",
    binary_title: "Binary frames",
    binary_intro: "Ask the server for one binary frame: the page checks its size and checksum.",
    binary_ask: |size| format!("Ask for {size}"),
    binary_waiting: "Waiting for the frame…",
    binary_result: |size, sum, ok| {
        let verdict = if ok {
            "verified ✓"
        } else {
            "does not match ✗"
        };
        format!("{size} bytes · checksum 0x{sum:08x} · {verdict}")
    },
    random_title: "Random numbers",
    greeting: |g| format!("The server says: “{g}”"),
    ticker_title: "Ticker",
    ticker_every: "Every (milliseconds)",
    ticker_start: "Start",
    ticker_change: "Change interval",
    ticker_stop: "Stop",
    ticker_bounds: |min| format!("At least {min} ms."),
    ticker_stopped: "Stopped",
    ticker_running: |ms| format!("A number every {ms} ms"),
    ticker_starting: "Starting…",
    randoms_title: "Numbers received (newest first)",
    randoms_none: "No number yet.",
    products_title: "Products",
    live_products_title: "Live products",
    products_intro: "The product list, as GET /api/products returns it.",
    live_intro: "Changes show here as they happen, from any page or from the HTTP API.",
    products_none: "No products yet.",
    loading: "Loading…",
    products_failed: "The products could not be loaded.",
    reload: "Reload",
    see_live: "See them live",
    field_title: "Title",
    field_description: "Description",
    field_code: "Code",
    field_price: "Price",
    field_stock: "Stock",
    actions: "Actions",
    delete: "Delete",
    delete_named: |title| format!("Delete {title}"),
    add_product_title: "Add a product",
    add_product: "Add",
    product_added: |id| format!("Product {id} added."),
    product_refused: "The server refused the product: see the marked fields.",
    problem: |p| {
        match p {
            Problem::Missing => "Required.",
            Problem::NotText => "Must be text.",
            Problem::Blank => "Must not be blank.",
            Problem::TooLong => "Too long.",
            Problem::BadChars => "Only letters, digits, - and _.",
            Problem::NotANumber => "Must be a number.",
            Problem::Negative => "Must be 0 or more.",
            Problem::NotWhole => "Must be a whole number.",
            Problem::TooBig => "Too big.",
            Problem::Taken => "Another product already has this code.",
            _ => "Not valid.",
        }
        .to_owned()
    },
};
