//! The page's languages: every text it shows, in Spanish ([`ES`]) and English ([`EN`]), and
//! the switch between them.
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

/// Every text in Spanish.
pub static ES: Texts = Texts {
    app_name: "Charla",
    title: |room, unread| match unread {
        0 => format!("{room} · Charla"),
        n => format!("({n}) {room} · Charla"),
    },
    rooms: "Salas",
    unread: "sin leer",
    language: "Idioma",

    you_are: "Eres ",
    your_id: "Tu id de conexión",
    no_id_yet: "…",
    connecting: "conectando",
    connected: "conectado",
    disconnected: "desconectado",
    reconnecting_in: |secs| format!("desconectado · reconectando en {secs} s"),
    reconnecting_soon: "desconectado · reconectando…",
    reconnect_now: "Reconectar ahora",

    sign_in_area: "Inicio de sesión",
    signed_in_as: |name, id| match id {
        Some(id) => format!("Sesión iniciada como {name} ({id})"),
        None => format!("Sesión iniciada como {name}"),
    },
    guest: "Sin sesión iniciada: eres invitado",
    private_room: "privada",
    sign_in_required: "Este chat requiere iniciar sesión.",
    sign_in_refused: |required| {
        if required {
            "El servidor ha rechazado tu inicio de sesión. Vuelve a iniciar sesión para entrar."
                .to_owned()
        } else {
            "El servidor ha rechazado tu inicio de sesión: sigues como invitado.".to_owned()
        }
    },
    sign_in_expired: |required| {
        if required {
            "Tu sesión ha caducado. Vuelve a iniciar sesión para entrar.".to_owned()
        } else {
            "Tu sesión ha caducado: sigues como invitado.".to_owned()
        }
    },
    signed_out_by_server: "El servidor ha cerrado tu sesión. Pulsa «Reconectar ahora» para volver.",
    join_forbidden: |room| format!("{room} es una sala privada: no tienes permiso para entrar."),
    dev_login_title: "Entrar como…",
    dev_login_hint: "Inicio de sesión de desarrollo: el servidor crea el token. Nunca en producción.",
    dev_user_id: "Id de usuario",
    dev_display_name: "Nombre visible (opcional)",
    dev_rooms: "Salas privadas (opcional, separadas por comas, p. ej. team-*)",
    dev_sign_in: "Entrar",
    signing_in: "Entrando…",
    sign_out: "Cerrar sesión",
    dev_user_id_missing: "Escribe primero un id de usuario.",
    dev_login_failed: |reason| match reason {
        Some(reason) => format!("No se ha podido iniciar sesión: {reason}"),
        None => "No se ha podido iniciar sesión.".to_owned(),
    },

    your_name: "Tu nombre",
    set_name: "Cambiar nombre",
    name_error: |err| match err {
        NameError::Empty => "el nombre está vacío".to_owned(),
        NameError::TooLong(max) => format!("el nombre tiene más de {max} caracteres"),
        NameError::BadRoomChar => "un nombre de sala solo puede tener a-z, 0-9, _ y -".to_owned(),
        NameError::ControlChar => "un nombre no puede tener caracteres de control".to_owned(),
        NameError::InvisibleChar => {
            "un nombre no puede tener caracteres invisibles ni que cambien la dirección".to_owned()
        }
    },
    invalid_name: |err| format!("Nombre no válido: {}.", (ES.name_error)(err)),

    join_label: "Entrar en una sala o crearla",
    join_placeholder: "p. ej. dev",
    join: "Entrar",
    not_a_room_name: |name, err| {
        format!(
            "«{name}» no es un nombre de sala: {}.",
            (ES.name_error)(err)
        )
    },

    no_such_room: "Esa sala no existe",
    go_to_general: "Ir a general",
    nothing_here: "Aquí no hay nada",
    online: |n| format!("{n} en línea"),
    leave_room: "Salir de la sala",
    who_is_here: "Quién está aquí",
    too_many_to_list: "Son demasiados para mostrarlos aquí.",
    list_everyone: "Ver a todos",

    your_message: "Tu mensaje",
    composer_placeholder: |room| {
        format!("Escribe un mensaje en {room}; todos lo ven mientras escribes")
    },
    send: "Enviar",
    blank_line: "Escribe algo primero: los mensajes vacíos no se envían.",
    too_long: |max| format!("Demasiado largo: como máximo {max} caracteres."),
    slow_down: "Más despacio: tu mensaje se volverá a enviar en breve.",
    server_busy: "Envío en pausa: el servidor no puede guardar mensajes ahora. Los tuyos esperan aquí y saldrán solos, una vez, en cuanto pueda.",
    server_reason: |code, message| {
        let reason = match code {
            ErrorCode::BadJson => "el mensaje no era JSON válido",
            ErrorCode::UnknownType => "tipo de mensaje desconocido",
            ErrorCode::BadField => "falta un campo o su tipo no es el correcto",
            ErrorCode::Empty => "el mensaje está vacío",
            ErrorCode::TooLarge => "el mensaje es demasiado largo",
            ErrorCode::BinaryFrame => "solo se admiten mensajes de texto",
            ErrorCode::RateLimited => "demasiados mensajes seguidos",
            ErrorCode::Unavailable => "el servidor no ha podido guardarlo",
            ErrorCode::BadRoom => "el nombre de sala no es válido",
            ErrorCode::BadName => "el nombre no es válido",
            ErrorCode::NotJoined => "no estás en esa sala",
            ErrorCode::TooManyRooms => "ya estás en el máximo de salas",
            ErrorCode::RoomsFull => "el servidor no admite más salas",
            ErrorCode::AlreadyWelcomed => "la conexión ya estaba iniciada",
            ErrorCode::NotFound => "no existe",
            ErrorCode::TooManyTickers => "ya tienes en marcha el máximo de tickers",
            ErrorCode::AuthRequired => "hay que iniciar sesión",
            ErrorCode::BadToken => "el token de inicio de sesión no es válido",
            ErrorCode::TokenExpired => "el inicio de sesión ha caducado",
            ErrorCode::Forbidden => "no tienes permiso para eso",
            // A code this build does not know: the server's own words.
            _ => return message.to_owned(),
        };
        reason.to_owned()
    },
    line_refused: |code, reason| format!("El servidor ha rechazado tu mensaje ({code}): {reason}"),
    join_refused: |room, code, reason| {
        format!("No se ha podido entrar en {room} ({code}): {reason}")
    },
    refused: |code, reason| format!("El servidor lo ha rechazado ({code}): {reason}"),

    typing_now: "Escribiendo ahora",
    typist_you: |name| format!("{name} (tú)"),
    nobody_typing: "Nadie está escribiendo.",

    history: "Historial",
    load_older: "Cargar mensajes anteriores",
    no_lines_yet: "Todavía no hay mensajes. ¡Di algo!",
    you: "tú",
    sending_list: "Enviando",
    not_acknowledged: "El servidor aún no lo ha confirmado",
    sending: "enviando…",
    nav_label: "Ejercicios",
    nav_chat: "Chat",
    nav_echo: "Eco",
    nav_random: "Aleatorio",
    nav_products: "Productos",
    nav_live_products: "Productos en vivo",
    offline: "Sin conexión: se enviará cuando vuelva.",
    echo_title: "Eco",
    echo_server: "Servidor de eco",
    echo_server_intro: "Cada mensaje va al WebSocket simple /echo y vuelve tal como salió.",
    echo_connected: "Conectado",
    echo_connecting: "Conectando…",
    echo_disconnected: "¡¡DESCONECTADO!!",
    echo_send: "Enviar mensaje",
    echo_received: "Recibidos",
    events_title: "Eventos con nombre",
    events_intro: "Mientras está activo, un evento tic va al servidor cada segundo: el servidor lo registra y no responde. Los mensajes comunes vuelven como eco.",
    tic_start: "Empezar TIC",
    tic_stop: "Parar TIC",
    tic_none: "Todavía no se envió ningún tic.",
    tic_last: |n| format!("Último enviado: TIC-{n}"),
    json_echo_label: "Mensaje",
    binary_title: "Tramas binarias",
    binary_intro: "Pide al servidor una trama binaria: la página comprueba su tamaño y su suma de control.",
    binary_ask: |size| format!("Pedir {size}"),
    binary_waiting: "Esperando la trama…",
    binary_result: |size, sum, ok| {
        let verdict = if ok {
            "verificada ✓"
        } else {
            "no coincide ✗"
        };
        format!("{size} bytes · suma de control 0x{sum:08x} · {verdict}")
    },
    random_title: "Números aleatorios",
    greeting: |g| format!("El servidor dice: «{g}»"),
    ticker_title: "Temporizador",
    ticker_every: "Cada (milisegundos)",
    ticker_start: "Empezar",
    ticker_change: "Cambiar intervalo",
    ticker_stop: "Parar",
    ticker_bounds: |min| format!("Al menos {min} ms."),
    ticker_stopped: "Detenido",
    ticker_running: |ms| format!("Un número cada {ms} ms"),
    ticker_starting: "Empezando…",
    randoms_title: "Números recibidos (el más reciente primero)",
    randoms_none: "Todavía no llegó ningún número.",
    products_title: "Productos",
    live_products_title: "Productos en tiempo real",
    products_intro: "La lista de productos, tal como la devuelve GET /api/products.",
    live_intro: "Los cambios aparecen aquí en cuanto ocurren, desde cualquier página o desde la API HTTP.",
    products_none: "Todavía no hay productos.",
    loading: "Cargando…",
    products_failed: "No se pudieron cargar los productos.",
    reload: "Recargar",
    see_live: "Verlos en tiempo real",
    field_title: "Título",
    field_description: "Descripción",
    field_code: "Código",
    field_price: "Precio",
    field_stock: "Stock",
    actions: "Acciones",
    delete: "Eliminar",
    delete_named: |title| format!("Eliminar {title}"),
    add_product_title: "Agregar un producto",
    add_product: "Agregar",
    product_added: |id| format!("Producto {id} agregado."),
    product_refused: "El servidor rechazó el producto: revisa los campos marcados.",
    problem: |p| {
        match p {
            Problem::Missing => "Es obligatorio.",
            Problem::NotText => "Debe ser texto.",
            Problem::Blank => "No puede estar vacío.",
            Problem::TooLong => "Es demasiado largo.",
            Problem::BadChars => "Solo letras, números, - y _.",
            Problem::NotANumber => "Debe ser un número.",
            Problem::Negative => "Debe ser 0 o más.",
            Problem::NotWhole => "Debe ser un número entero.",
            Problem::TooBig => "Es demasiado grande.",
            Problem::Taken => "Otro producto ya tiene este código.",
            _ => "No es válido.",
        }
        .to_owned()
    },
};

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
    dev_login_title: "Sign in as…",
    dev_login_hint: "Development sign-in: the server makes the token itself. Never in production.",
    dev_user_id: "User id",
    dev_display_name: "Display name (optional)",
    dev_rooms: "Private rooms (optional, comma-separated, e.g. team-*)",
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
