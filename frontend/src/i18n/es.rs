//! Every text of the page in Spanish: a plain [`Texts`] literal, so a missing text does not
//! compile.

use shared::{ErrorCode, NameError, Problem};

use super::Texts;

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
    transport_title: "Cómo habla esta página con el servidor",

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
    join_banned: |room| format!("Tienes prohibida la entrada en {room}."),
    put_out: |room, ban, by, minutes| match (ban, minutes) {
        (false, _) => format!("{by} te ha sacado de {room}. Puedes volver a entrar."),
        (true, Some(m)) => {
            format!("{by} te ha prohibido la entrada en {room} durante {m} minutos más.")
        }
        (true, None) => format!("{by} te ha prohibido la entrada en {room}."),
    },
    muted_here: |minutes| match minutes {
        Some(m) => {
            format!("Estás silenciado aquí durante {m} minutos más: puedes leer, no escribir.")
        }
        None => "Estás silenciado aquí: puedes leer, no escribir.".to_owned(),
    },
    slow_mode_on: |secs| format!("Modo lento: un mensaje cada {secs} s."),
    dev_login_title: "Entrar como…",
    dev_login_hint: "Inicio de sesión de desarrollo: el servidor crea el token. Nunca en producción.",
    dev_user_id: "Id de usuario",
    dev_display_name: "Nombre visible (opcional)",
    dev_rooms: "Salas privadas (opcional, separadas por comas, p. ej. team-*)",
    dev_roles: "Roles (opcional: moderator o admin)",
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
            ErrorCode::EditWindowPassed => "ya ha pasado el tiempo para cambiarlo",
            ErrorCode::Banned => "tienes prohibida la entrada en esa sala",
            ErrorCode::Muted => "estás silenciado en esa sala",
            ErrorCode::SlowMode => "la sala está en modo lento: espera un poco",
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
    edited_mark: "(editado)",
    line_removed: "mensaje eliminado",
    edit: "editar",
    edit_line: "Editar el mensaje",
    delete_own: "borrar",
    delete_line: "Borrar el mensaje",
    remove: "eliminar",
    remove_line: "Eliminar (como moderador) el mensaje",
    kick: "expulsar",
    kick_label: "Sacar de la sala (puede volver):",
    mute: "silenciar",
    mute_label: "Silenciar 10 minutos:",
    ban: "vetar",
    ban_label: "Prohibir la entrada en la sala:",
    edit_label: "Nuevo texto del mensaje",
    save: "guardar",
    cancel: "cancelar",
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
    nav_transports: "Transportes",
    transports_title: "Transportes en tiempo real, lado a lado",
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
