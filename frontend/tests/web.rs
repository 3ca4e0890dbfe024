//! Components mounted in a real page (headless Chromium), asserting on the DOM they render
//! from their signals. No server: each test drives the connection with the frames a server
//! would send (`Connection::apply`), as the socket does.
//! Run: `cargo test -p frontend --target wasm32-unknown-unknown`.

#![allow(missing_docs)]

use frontend::{
    AuthConfig, AuthMode, ChatState, ConnState, Connection, GoTo,
    components::{
        BinaryFrames, Composer, EchoServer, History, LiveProductsPage, LiveTyping, Members,
        NamedEvents, NavBar, ProductsPage, RandomPage, RoomHeader, RoomsPanel, SignIn, StatusBar,
        TransportsPage,
    },
    i18n::{EN, ES, I18n, Lang, LangSwitch, provide_i18n},
};
use leptos::{mount::mount_to, prelude::*, task::tick};
use shared::{
    ChatLine, ConnId, DisplayName, ErrorCode, Member, RoomName, Seq, ServerLimits, ServerMsg,
    Typist, UserId, UserInfo,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

/// A fresh element in the page to mount components into.
fn container() -> HtmlElement {
    let document = document();
    let section = document.create_element("section").expect("create");
    document
        .body()
        .expect("body")
        .append_child(&section)
        .expect("append");
    section.unchecked_into()
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("a room name")
}

fn name(name: &str) -> DisplayName {
    DisplayName::parse(name).expect("a display name")
}

/// A line of `room` from `from` (called `who`, if given).
fn line(room_name: &str, seq: u64, from: &str, who: Option<&str>, text: &str) -> ChatLine {
    ChatLine {
        room: room(room_name),
        seq: Seq(seq),
        from: ConnId::new(from),
        name: who.map(name),
        user: None,
        text: text.into(),
        at: 1_763_769_600_000,
        nonce: None,
        edited: false,
        removed: false,
        change: None,
    }
}

/// A v2 welcome for `id`, called `who`.
fn welcome(id: &str, who: &str) -> ServerMsg {
    ServerMsg::Welcome(shared::server::Welcome {
        id: ConnId::new(id),
        history: vec![],
        online: 1,
        protocol: 2,
        resume: "token".into(),
        has_more: false,
        resumed: false,
        name: Some(name(who)),
        limits: Some(ServerLimits {
            max_text_chars: 2000,
            max_rooms_per_conn: 20,
            send_rate: 10,
            send_burst: 20,
        }),
        greeting: None,
        user: None,
    })
}

/// `room` as the server shows it on joining: its latest page.
fn joined(room_name: &str, lines: Vec<ChatLine>, online: u32) -> ServerMsg {
    ServerMsg::Joined(shared::server::Joined {
        room: room(room_name),
        lines,
        has_more: false,
        resumed: false,
        online,
        members: None,
        typing: vec![],
        typing_more: false,
        private: false,
        ..Default::default()
    })
}

fn typing(room_name: &str, from: &str, who: &str, text: &str) -> ServerMsg {
    ServerMsg::Typing(shared::server::Typing {
        room: room(room_name),
        from: ConnId::new(from),
        name: Some(name(who)),
        user: None,
        text: text.into(),
    })
}

fn member(id: &str, who: &str) -> Member {
    Member {
        id: ConnId::new(id),
        name: name(who),
        user: None,
    }
}

/// A connection with no server: its state is driven by `apply`, as the socket would.
fn offline() -> (ChatState, Connection) {
    let state = ChatState::new();
    (state, Connection::new(state))
}

/// An offline connection welcomed as `me` ("Me"), in `general` and `dev`, `general` in view.
fn in_general_and_dev() -> (ChatState, Connection) {
    let (state, conn) = offline();
    conn.apply(welcome("me", "Me"));
    conn.apply(joined("general", vec![], 2));
    conn.show(room("dev"));
    conn.apply(joined("dev", vec![], 2));
    conn.show(room("general"));
    (state, conn)
}

fn texts(root: &Element, selector: &str) -> Vec<String> {
    let list = root.query_selector_all(selector).expect("query");
    (0..list.length())
        .filter_map(|i| list.item(i))
        .map(|n| n.text_content().unwrap_or_default())
        .collect()
}

fn items(root: &Element) -> Vec<String> {
    texts(root, "#history li")
}

fn element<T: JsCast>(root: &Element, selector: &str) -> T {
    root.query_selector(selector)
        .expect("query")
        .unwrap_or_else(|| panic!("{selector} is rendered"))
        .unchecked_into()
}

fn text_of(root: &Element, selector: &str) -> String {
    element::<Element>(root, selector)
        .text_content()
        .unwrap_or_default()
}

fn attr(root: &Element, selector: &str, name: &str) -> Option<String> {
    element::<Element>(root, selector).get_attribute(name)
}

fn absent(root: &Element, selector: &str) -> bool {
    root.query_selector(selector).expect("query").is_none()
}

/// Types `text` into the input `selector` (as one input event).
fn type_in(root: &Element, selector: &str, text: &str) {
    let input: HtmlInputElement = element(root, selector);
    input.set_value(text);
    input
        .dispatch_event(&web_sys::Event::new("input").expect("event"))
        .expect("dispatch");
}

/// Types `text` into the composer and presses Send.
fn submit(root: &Element, text: &str) {
    type_in(root, "#composer-input", text);
    element::<HtmlElement>(root, "#send").click();
}

#[wasm_bindgen_test]
async fn history_lines_read_name_arrow_text_with_the_sender_id_on_hover() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <History /> }
    });
    tick().await;
    assert!(items(&root).is_empty());
    assert!(text_of(&root, ".empty").contains("No lines yet"));

    conn.apply(welcome("me", "Me"));
    conn.apply(joined(
        "general",
        vec![
            line("general", 1, "AAAA", Some("Ana"), "hola"),
            line("general", 2, "me", Some("Me"), "qué tal"),
            // A line from before names: its sender's id stands in.
            line("general", 3, "OLD1", None, "old"),
        ],
        2,
    ));
    tick().await;
    assert_eq!(
        items(&root),
        ["Ana -> hola", "Me -> qué tal", "OLD1 -> old"]
    );
    assert_eq!(attr(&root, "#history li", "title").as_deref(), Some("AAAA"));
    assert!(absent(&root, ".empty"));
    // The page's own lines are marked.
    assert_eq!(texts(&root, "#history li.mine"), ["Me -> qué tal"]);

    // Two people may share a name: their ids (on hover) tell them apart.
    conn.apply(ServerMsg::Message(line(
        "general",
        4,
        "BBBB",
        Some("Ana"),
        "I am another Ana",
    )));
    // A repeated line (same seq) is not shown twice.
    conn.apply(ServerMsg::Message(line(
        "general",
        4,
        "BBBB",
        Some("Ana"),
        "I am another Ana",
    )));
    tick().await;
    assert_eq!(
        items(&root),
        [
            "Ana -> hola",
            "Me -> qué tal",
            "OLD1 -> old",
            "Ana -> I am another Ana"
        ]
    );
    let list = root.query_selector_all("#history li").expect("query");
    let titles: Vec<Option<String>> = (0..list.length())
        .filter_map(|i| list.item(i))
        .map(|n| n.unchecked_into::<Element>().get_attribute("title"))
        .collect();
    assert_eq!(titles[0].as_deref(), Some("AAAA"));
    assert_eq!(titles[3].as_deref(), Some("BBBB"));
    assert_eq!(
        attr(&root, "#history", "aria-live").as_deref(),
        Some("polite")
    );
}

#[wasm_bindgen_test]
async fn each_room_has_its_own_history() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    conn.apply(ServerMsg::Message(line(
        "general",
        1,
        "AAAA",
        Some("Ana"),
        "in general",
    )));
    conn.apply(ServerMsg::Message(line(
        "dev",
        1,
        "BBBB",
        Some("Bob"),
        "in dev",
    )));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <RoomHeader />
            <History />
        }
    });
    tick().await;
    assert_eq!(text_of(&root, "#room-title"), "general");
    assert_eq!(items(&root), ["Ana -> in general"]);
    conn.show(room("dev"));
    tick().await;
    assert_eq!(text_of(&root, "#room-title"), "dev");
    assert_eq!(items(&root), ["Bob -> in dev"]);
    // A line for a room this page is not in is not shown anywhere.
    conn.apply(ServerMsg::Message(line(
        "elsewhere",
        1,
        "CCCC",
        Some("Cai"),
        "no",
    )));
    tick().await;
    assert_eq!(items(&root), ["Bob -> in dev"]);
}

#[wasm_bindgen_test]
async fn the_room_list_counts_unread_lines_of_rooms_not_in_view_until_shown() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <RoomsPanel /> }
    });
    tick().await;
    assert_eq!(texts(&root, "#rooms li .room-name"), ["general", "dev"]);
    assert_eq!(
        attr(&root, "#rooms li[data-room='dev'] a", "href").as_deref(),
        Some("/r/dev")
    );
    assert_eq!(
        attr(&root, "#rooms li[data-room='general'] a", "aria-current").as_deref(),
        Some("page")
    );
    assert_eq!(
        attr(&root, "#rooms li[data-room='dev'] a", "aria-current"),
        None
    );
    assert!(absent(&root, "#rooms .unread"), "nothing unread yet");

    // Two lines from others in dev (not in view): its badge counts them.
    conn.apply(ServerMsg::Message(line(
        "dev",
        1,
        "AAAA",
        Some("Ana"),
        "one",
    )));
    conn.apply(ServerMsg::Message(line(
        "dev",
        2,
        "BBBB",
        Some("Bob"),
        "two",
    )));
    // A repeat, this page's own line (from another tab of its session), and a line in the
    // room in view are not unread.
    conn.apply(ServerMsg::Message(line(
        "dev",
        2,
        "BBBB",
        Some("Bob"),
        "two",
    )));
    conn.apply(ServerMsg::Message(line("dev", 3, "me", Some("Me"), "mine")));
    conn.apply(ServerMsg::Message(line(
        "general",
        1,
        "AAAA",
        Some("Ana"),
        "here",
    )));
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "2");
    assert!(absent(&root, "#rooms li[data-room='general'] .unread"));
    assert!(
        text_of(&root, "#rooms li[data-room='dev'] a").contains("2 unread"),
        "the link says what the number is"
    );
    assert_eq!(state.room(&room("dev")).unread.get_untracked(), 2);

    // Switching to dev clears its badge and moves `aria-current`.
    conn.show(room("dev"));
    tick().await;
    assert!(absent(&root, "#rooms li[data-room='dev'] .unread"));
    assert_eq!(
        attr(&root, "#rooms li[data-room='dev'] a", "aria-current").as_deref(),
        Some("page")
    );
    assert_eq!(
        attr(&root, "#rooms li[data-room='general'] a", "aria-current"),
        None
    );

    // Now general is the one not in view.
    conn.apply(ServerMsg::Message(line(
        "general",
        2,
        "AAAA",
        Some("Ana"),
        "again",
    )));
    tick().await;
    assert_eq!(
        text_of(&root, "#rooms li[data-room='general'] .unread"),
        "1"
    );
}

#[wasm_bindgen_test]
async fn several_typists_show_at_once_each_update_replacing_only_their_own() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    let _mounted = mount_to(
        root.clone(),
        move || view! { <LiveTyping state=conn.state /> },
    );
    tick().await;
    assert_eq!(text_of(&root, "#live"), "Nobody is typing.");
    assert!(texts(&root, "#typists li").is_empty());

    conn.apply(typing("general", "AAAA", "Ana", "h"));
    conn.apply(typing("general", "BBBB", "Bob", "bo"));
    conn.apply(typing("general", "AAAA", "Ana", "ho"));
    // Typing in another room never shows here.
    conn.apply(typing("dev", "CCCC", "Cai", "elsewhere"));
    tick().await;
    assert_eq!(texts(&root, "#typists li"), ["Ana: ho", "Bob: bo"]);
    assert_eq!(attr(&root, "#typists li", "title").as_deref(), Some("AAAA"));
    assert!(absent(&root, "#live .idle"));

    // This page's own text is marked as its own.
    conn.apply(typing("general", "me", "Me", "mine"));
    tick().await;
    assert_eq!(
        texts(&root, "#typists li"),
        ["Ana: ho", "Bob: bo", "Me (you): mine"]
    );

    // An emptied box clears only that typist.
    conn.apply(typing("general", "BBBB", "Bob", ""));
    tick().await;
    assert_eq!(texts(&root, "#typists li"), ["Ana: ho", "Me (you): mine"]);

    // The other room's typist shows there.
    conn.show(room("dev"));
    tick().await;
    assert_eq!(texts(&root, "#typists li"), ["Cai: elsewhere"]);
    conn.show(room("general"));
    conn.apply(typing("general", "AAAA", "Ana", ""));
    conn.apply(typing("general", "me", "Me", ""));
    tick().await;
    assert!(texts(&root, "#typists li").is_empty());
    assert_eq!(text_of(&root, "#live"), "Nobody is typing.");

    // Who was typing when this page joined shows at once.
    conn.apply(ServerMsg::Joined(shared::server::Joined {
        room: room("general"),
        lines: vec![],
        has_more: false,
        resumed: false,
        online: 3,
        members: None,
        typing: vec![Typist {
            from: ConnId::new("DDDD"),
            name: name("Dee"),
            user: None,
            text: "already typing".into(),
        }],
        typing_more: false,
        private: false,
        ..Default::default()
    }));
    tick().await;
    assert_eq!(texts(&root, "#typists li"), ["Dee: already typing"]);
}

#[wasm_bindgen_test]
async fn names_and_text_holding_markup_render_as_text() {
    let root = container();
    let (_, conn) = offline();
    let evil = r#"<img src=x onerror="window.__charla_xss=1"><b>bold</b>"#;
    let bold = "<b>x</b>";
    conn.apply(welcome("me", bold));
    conn.apply(ServerMsg::Joined(shared::server::Joined {
        room: room("general"),
        lines: vec![line("general", 1, "AAAA", Some(bold), evil)],
        has_more: false,
        resumed: false,
        online: 2,
        members: Some(vec![member("AAAA", bold), member("me", bold)]),
        typing: vec![],
        typing_more: false,
        private: false,
        ..Default::default()
    }));
    conn.apply(typing("general", "AAAA", bold, evil));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <StatusBar />
            <Members state=conn.state />
            <LiveTyping state=conn.state />
            <History />
        }
    });
    tick().await;
    assert_eq!(items(&root), [format!("{bold} -> {evil}")]);
    assert_eq!(texts(&root, "#typists li"), [format!("{bold}: {evil}")]);
    assert_eq!(texts(&root, "#members li"), [bold, bold]);
    assert_eq!(text_of(&root, "#my-name"), bold);
    assert!(absent(&root, "img"), "no element was made");
    assert!(absent(&root, "b"), "no element was made");
}

#[wasm_bindgen_test]
async fn members_show_by_name_with_their_id_on_hover_and_follow_presence() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <RoomHeader />
            <Members state=conn.state />
        }
    });
    conn.apply(ServerMsg::Presence(shared::server::Presence {
        room: room("general"),
        online: 2,
        members: Some(vec![member("me", "Me"), member("AAAA", "Ana")]),
    }));
    tick().await;
    assert_eq!(texts(&root, "#members li"), ["Me", "Ana"]);
    assert_eq!(
        attr(&root, "#members li.me", "title").as_deref(),
        Some("me")
    );
    assert_eq!(text_of(&root, "#online"), "2 online");

    // Presence in another room changes nothing here.
    conn.apply(ServerMsg::Presence(shared::server::Presence {
        room: room("dev"),
        online: 7,
        members: Some(vec![member("ZZZZ", "Zoe")]),
    }));
    tick().await;
    assert_eq!(texts(&root, "#members li"), ["Me", "Ana"]);
    assert_eq!(text_of(&root, "#online"), "2 online");

    // A big room: a count, and the list on demand.
    conn.apply(ServerMsg::Presence(shared::server::Presence {
        room: room("general"),
        online: 4000,
        members: None,
    }));
    tick().await;
    assert_eq!(text_of(&root, "#online"), "4000 online");
    assert!(texts(&root, "#members li").is_empty());
    assert!(!absent(&root, "#list-members"));
    // Asked for, it comes a page at a time: the first replaces, the next ones add.
    conn.apply(ServerMsg::Members(shared::server::Members {
        room: room("general"),
        members: vec![member("AAAA", "Ana")],
        offset: None,
        has_more: true,
    }));
    tick().await;
    assert_eq!(texts(&root, "#members li"), ["Ana"]);
    assert!(absent(&root, "#list-members"));
    conn.apply(ServerMsg::Members(shared::server::Members {
        room: room("general"),
        members: vec![member("BBBB", "Bea")],
        offset: Some(1),
        has_more: false,
    }));
    tick().await;
    assert_eq!(texts(&root, "#members li"), ["Ana", "Bea"]);
}

#[wasm_bindgen_test]
async fn the_status_bar_shows_name_id_and_connection_state() {
    let root = container();
    let (state, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <StatusBar /> }
    });
    tick().await;
    assert_eq!(text_of(&root, "#conn-state"), "connecting");
    assert!(absent(&root, "#reconnect"));

    conn.apply(welcome("q8Zr2vLk0aYbXw1c", "guest-4f2a"));
    tick().await;
    assert_eq!(text_of(&root, "#my-id"), "q8Zr2vLk0aYbXw1c");
    assert_eq!(text_of(&root, "#my-name"), "guest-4f2a");
    assert_eq!(text_of(&root, "#conn-state"), "connected");

    conn.apply(ServerMsg::NameSet(shared::server::NameSet {
        name: name("Ana"),
    }));
    tick().await;
    assert_eq!(text_of(&root, "#my-name"), "Ana");

    state.status.set(ConnState::Reconnecting);
    state.retry_in.set(Some(3));
    tick().await;
    assert_eq!(
        text_of(&root, "#conn-state"),
        "disconnected · reconnecting in 3 s"
    );
    assert!(!absent(&root, "#reconnect"));
    state.retry_in.set(Some(0));
    tick().await;
    assert_eq!(
        text_of(&root, "#conn-state"),
        "disconnected · reconnecting…"
    );
}

#[wasm_bindgen_test]
async fn the_status_bar_says_which_transport_the_page_is_on() {
    let root = container();
    let (state, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <StatusBar /> }
    });
    tick().await;
    assert_eq!(text_of(&root, "#transport"), "WebSocket");
    state.transport.set(frontend::TransportKind::Sse);
    tick().await;
    assert_eq!(text_of(&root, "#transport"), "SSE + POST");
    let title = root
        .query_selector("#transport")
        .ok()
        .flatten()
        .and_then(|e| e.get_attribute("title"));
    assert_eq!(title.as_deref(), Some("How this page talks to the server"));
}

#[wasm_bindgen_test]
async fn a_name_is_checked_before_it_is_sent() {
    let (state, conn) = offline();
    assert!(conn.set_name("   ").is_err());
    assert!(conn.set_name(&"x".repeat(33)).is_err());
    assert!(conn.set_name("a\nb").is_err());
    assert_eq!(state.my_name.get_untracked(), "");
    assert!(conn.set_name("  Ana  ").is_ok());
    assert_eq!(state.my_name.get_untracked(), "Ana", "trimmed");
}

#[wasm_bindgen_test]
async fn the_composer_refuses_a_blank_line_visibly() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <Composer /> }
    });
    tick().await;
    let input: HtmlInputElement = element(&root, "#composer-input");
    let label = root.query_selector("label[for=composer-input]").expect("q");
    assert!(label.is_some_and(|l| l.text_content().unwrap_or_default() == "Your message"));

    submit(&root, "   ");
    tick().await;
    assert_eq!(
        text_of(&root, "#notice"),
        "Type something first: blank lines are not sent."
    );
    assert_eq!(input.value(), "   ", "a refused line stays in the box");

    // The server's limit, from its welcome, is the one the composer applies.
    conn.apply(ServerMsg::Welcome(shared::server::Welcome {
        id: ConnId::new("me"),
        history: vec![],
        online: 1,
        protocol: 2,
        resume: "token".into(),
        has_more: false,
        resumed: false,
        name: None,
        limits: Some(ServerLimits {
            max_text_chars: 5,
            max_rooms_per_conn: 20,
            send_rate: 10,
            send_burst: 20,
        }),
        greeting: None,
        user: None,
    }));
    submit(&root, "too long");
    tick().await;
    assert_eq!(text_of(&root, "#notice"), "Too long: at most 5 characters.");
}

#[wasm_bindgen_test]
async fn a_line_sent_offline_is_pending_until_acknowledged_then_shown_once() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    conn.apply(joined(
        "general",
        vec![line("general", 1, "AAAA", Some("Ana"), "hola")],
        2,
    ));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <Composer />
            <History />
        }
    });
    tick().await;
    let input: HtmlInputElement = element(&root, "#composer-input");
    submit(&root, "are you there?");
    tick().await;
    // No server: the line waits, visibly, and the box is free for the next one.
    assert_eq!(input.value(), "");
    assert_eq!(
        texts(&root, "#pending li"),
        ["Me -> are you there? sending…"]
    );
    assert_eq!(items(&root), ["Ana -> hola"]);
    // It is pending in general only.
    conn.show(room("dev"));
    tick().await;
    assert!(texts(&root, "#pending li").is_empty());
    conn.show(room("general"));
    tick().await;

    // The server stores it: its line arrives (ack first, as the server sends them).
    let nonce = state.pending.get_untracked()[0].nonce.clone();
    conn.apply(ServerMsg::Ack(shared::server::Ack {
        room: room("general"),
        nonce: nonce.clone(),
        seq: Seq(2),
    }));
    let mut mine = line("general", 2, "me", Some("Me"), "are you there?");
    mine.nonce = Some(nonce);
    conn.apply(ServerMsg::Message(mine.clone()));
    tick().await;
    assert!(absent(&root, "#pending li"), "no longer pending");
    assert_eq!(items(&root), ["Ana -> hola", "Me -> are you there?"]);

    // After a drop, the resumed room replays the same line: it is not shown twice.
    conn.apply(welcome("me", "Me"));
    conn.apply(ServerMsg::Joined(shared::server::Joined {
        room: room("general"),
        lines: vec![mine],
        has_more: false,
        resumed: true,
        online: 2,
        members: None,
        typing: vec![],
        typing_more: false,
        private: false,
        ..Default::default()
    }));
    tick().await;
    assert_eq!(items(&root), ["Ana -> hola", "Me -> are you there?"]);
}

#[wasm_bindgen_test]
async fn older_lines_load_above_the_history() {
    let root = container();
    let (_, conn) = offline();
    conn.apply(welcome("me", "Me"));
    conn.apply(ServerMsg::Joined(shared::server::Joined {
        room: room("general"),
        lines: vec![
            line("general", 3, "AAAA", Some("Ana"), "three"),
            line("general", 4, "AAAA", Some("Ana"), "four"),
        ],
        has_more: true,
        resumed: false,
        online: 1,
        members: None,
        typing: vec![],
        typing_more: false,
        private: false,
        ..Default::default()
    }));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <History /> }
    });
    tick().await;
    assert!(!absent(&root, "#load-older"));
    conn.apply(ServerMsg::Older(shared::server::Older {
        room: room("general"),
        lines: vec![
            line("general", 1, "AAAA", Some("Ana"), "one"),
            line("general", 2, "AAAA", Some("Ana"), "two"),
        ],
        has_more: false,
    }));
    tick().await;
    assert_eq!(
        items(&root),
        ["Ana -> one", "Ana -> two", "Ana -> three", "Ana -> four"]
    );
    assert!(absent(&root, "#load-older"), "nothing older left");
}

#[wasm_bindgen_test]
async fn the_join_form_refuses_a_bad_name_and_joins_a_good_one() {
    let root = container();
    let (state, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <RoomsPanel /> }
    });
    tick().await;
    assert_eq!(texts(&root, "#rooms li .room-name"), ["general"]);

    type_in(&root, "#join-room-input", "no way!");
    element::<HtmlElement>(&root, "#join-room button").click();
    tick().await;
    assert!(
        text_of(&root, "#join-room-error").contains("“no way!” is not a room name"),
        "{}",
        text_of(&root, "#join-room-error")
    );
    assert_eq!(state.joined.get_untracked(), [room("general")]);

    // Trimmed and lower-cased: " Dev " is `dev`, shown at once, and the URL follows.
    type_in(&root, "#join-room-input", " Dev ");
    element::<HtmlElement>(&root, "#join-room button").click();
    tick().await;
    assert_eq!(text_of(&root, "#join-room-error"), "");
    assert_eq!(texts(&root, "#rooms li .room-name"), ["general", "dev"]);
    assert_eq!(state.current.get_untracked(), room("dev"));
    assert_eq!(
        state.go_to.get_untracked(),
        Some(GoTo {
            room: room("dev"),
            replace: false
        })
    );
    assert_eq!(
        element::<HtmlInputElement>(&root, "#join-room-input").value(),
        ""
    );
}

#[wasm_bindgen_test]
async fn leaving_the_room_in_view_shows_another_and_asks_the_url_to_follow() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    conn.show(room("dev"));
    conn.apply(ServerMsg::Message(line(
        "dev",
        1,
        "AAAA",
        Some("Ana"),
        "hola",
    )));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <RoomsPanel />
            <RoomHeader />
        }
    });
    tick().await;
    assert_eq!(text_of(&root, "#room-title"), "dev");
    assert!(!element::<Element>(&root, "#leave-room").has_attribute("disabled"));
    element::<HtmlElement>(&root, "#leave-room").click();
    tick().await;
    assert_eq!(texts(&root, "#rooms li .room-name"), ["general"]);
    assert_eq!(text_of(&root, "#room-title"), "general");
    assert_eq!(
        state.go_to.get_untracked(),
        Some(GoTo {
            room: room("general"),
            replace: true
        })
    );
    // What was shown there is forgotten; the last room cannot be left.
    assert!(state.room(&room("dev")).history.get_untracked().is_empty());
    assert!(element::<Element>(&root, "#leave-room").has_attribute("disabled"));
    // Lines still on their way to the room left are not shown anywhere.
    conn.apply(ServerMsg::Message(line(
        "dev",
        2,
        "AAAA",
        Some("Ana"),
        "late",
    )));
    assert!(state.room(&room("dev")).history.get_untracked().is_empty());
}

#[wasm_bindgen_test]
async fn a_refused_join_takes_the_room_off_the_list_and_says_why() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    conn.show(room("dev"));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <RoomsPanel />
            <Composer />
        }
    });
    conn.apply(ServerMsg::Error(shared::server::Error {
        code: ErrorCode::TooManyRooms,
        message: "at most 20 rooms".into(),
        room: Some(room("dev")),
        nonce: None,
    }));
    tick().await;
    assert_eq!(texts(&root, "#rooms li .room-name"), ["general"]);
    assert_eq!(state.current.get_untracked(), room("general"));
    assert!(text_of(&root, "#notice").contains("Could not join dev"));
}

#[wasm_bindgen_test]
async fn a_url_that_names_no_room_says_why() {
    let (state, conn) = offline();
    conn.show_route(Some("Not A Room"));
    assert!(
        state
            .route_error
            .get_untracked()
            .is_some_and(|e| e.text(&EN).contains("“Not A Room” is not a room name"))
    );
    assert_eq!(state.joined.get_untracked(), [room("general")]);
    conn.show_route(Some("dev"));
    assert_eq!(state.route_error.get_untracked(), None);
    assert_eq!(state.current.get_untracked(), room("dev"));
    conn.show_route(None);
    assert_eq!(state.current.get_untracked(), room("general"));
    assert_eq!(state.joined.get_untracked(), [room("general"), room("dev")]);
}

#[wasm_bindgen_test]
async fn each_room_keeps_its_own_draft() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <Composer /> }
    });
    tick().await;
    type_in(&root, "#composer-input", "half a thought");
    conn.show(room("dev"));
    tick().await;
    assert_eq!(
        element::<HtmlInputElement>(&root, "#composer-input").value(),
        ""
    );
    conn.show(room("general"));
    tick().await;
    assert_eq!(
        element::<HtmlInputElement>(&root, "#composer-input").value(),
        "half a thought"
    );
    assert_eq!(state.draft.get_untracked(), "half a thought");
}

#[wasm_bindgen_test]
async fn a_late_left_does_not_undo_a_join_made_since() {
    let (state, conn) = in_general_and_dev();
    conn.leave_room(&room("dev"));
    conn.show(room("dev"));
    // The server's reply to the leave arrives after the page joined again.
    conn.apply(ServerMsg::Left(shared::server::Left::reply(room("dev"))));
    conn.apply(joined(
        "dev",
        vec![line("dev", 1, "AAAA", Some("Ana"), "welcome back")],
        2,
    ));
    assert_eq!(state.joined.get_untracked(), [room("general"), room("dev")]);
    assert_eq!(state.room(&room("dev")).history.get_untracked().len(), 1);
}

#[wasm_bindgen_test]
async fn switching_the_language_rewords_the_page_without_a_reload() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    let i18n = I18n::new(Lang::Es);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        provide_context(conn);
        view! {
            <StatusBar />
            <RoomHeader />
            <Composer />
            <LiveTyping state=conn.state />
        }
    });
    tick().await;
    assert_eq!(text_of(&root, "#conn-state"), "conectado");
    assert_eq!(text_of(&root, "#online"), "2 en línea");
    assert_eq!(text_of(&root, "#leave-room"), "Salir de la sala");
    assert_eq!(text_of(&root, "#live"), "Nadie está escribiendo.");
    assert_eq!(text_of(&root, "label[for=composer-input]"), "Tu mensaje");
    // Data is never translated: the room's name and this page's stay as they are.
    assert_eq!(text_of(&root, "#room-title"), "general");
    assert_eq!(text_of(&root, "#my-name"), "Me");

    // A notice is kept as what happened, so it follows the language too.
    submit(&root, "   ");
    tick().await;
    assert_eq!(text_of(&root, "#notice"), ES.blank_line);
    conn.apply(ServerMsg::Error(shared::server::Error {
        code: ErrorCode::RateLimited,
        message: "slow down".into(),
        room: None,
        nonce: None,
    }));
    tick().await;
    assert_eq!(
        text_of(&root, "#notice"),
        "El servidor lo ha rechazado (rate_limited): demasiados mensajes seguidos"
    );

    i18n.lang.set(Lang::En);
    tick().await;
    assert_eq!(text_of(&root, "#conn-state"), "connected");
    assert_eq!(text_of(&root, "#online"), "2 online");
    assert_eq!(text_of(&root, "#leave-room"), "Leave room");
    assert_eq!(text_of(&root, "#live"), "Nobody is typing.");
    assert_eq!(text_of(&root, "label[for=composer-input]"), "Your message");
    assert_eq!(
        text_of(&root, "#notice"),
        "The server refused that (rate_limited): slow down"
    );
    assert_eq!(
        attr(&root, "#composer-input", "placeholder").as_deref(),
        Some("Message general; everyone there sees it as you type")
    );

    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(text_of(&root, "#conn-state"), "conectado");
    assert!(
        attr(&root, "#composer-input", "placeholder").is_some_and(|p| p.contains("general")),
        "the placeholder still names the room"
    );
}

#[wasm_bindgen_test]
async fn the_language_switch_marks_applies_and_remembers_the_choice() {
    let storage = window()
        .local_storage()
        .expect("localStorage")
        .expect("localStorage");
    let html = document().document_element().expect("<html>");
    let lang_before = html.get_attribute("lang");
    storage.remove_item("charla.lang").expect("remove");

    let root = container();
    let (_, conn) = offline();
    let mounted = mount_to(root.clone(), move || {
        provide_i18n();
        provide_context(conn);
        view! {
            <LangSwitch />
            <StatusBar />
        }
    });
    tick().await;
    assert_eq!(text_of(&root, "#lang-es"), "Español");
    assert_eq!(text_of(&root, "#lang-en"), "English");
    assert_eq!(attr(&root, "#lang-es", "lang").as_deref(), Some("es"));
    assert_eq!(attr(&root, "#lang-en", "lang").as_deref(), Some("en"));
    assert_eq!(
        attr(&root, "#lang-switch", "role").as_deref(),
        Some("group")
    );
    assert_eq!(
        storage.get_item("charla.lang").expect("read"),
        None,
        "opening the page stores nothing"
    );

    element::<HtmlElement>(&root, "#lang-es").click();
    tick().await;
    assert_eq!(html.get_attribute("lang").as_deref(), Some("es"));
    assert_eq!(
        storage.get_item("charla.lang").expect("read").as_deref(),
        Some("es")
    );
    assert_eq!(
        attr(&root, "#lang-es", "aria-pressed").as_deref(),
        Some("true")
    );
    assert_eq!(
        attr(&root, "#lang-en", "aria-pressed").as_deref(),
        Some("false")
    );
    assert_eq!(
        attr(&root, "#lang-switch", "aria-label").as_deref(),
        Some("Idioma")
    );
    assert_eq!(text_of(&root, "#conn-state"), "conectando");
    drop(mounted);

    // The next visit starts in the language chosen.
    let again = container();
    let (_, conn) = offline();
    let mounted = mount_to(again.clone(), move || {
        provide_i18n();
        provide_context(conn);
        view! {
            <LangSwitch />
            <StatusBar />
        }
    });
    tick().await;
    assert_eq!(
        attr(&again, "#lang-es", "aria-pressed").as_deref(),
        Some("true")
    );
    assert_eq!(text_of(&again, "#conn-state"), "conectando");

    element::<HtmlElement>(&again, "#lang-en").click();
    tick().await;
    assert_eq!(html.get_attribute("lang").as_deref(), Some("en"));
    assert_eq!(
        storage.get_item("charla.lang").expect("read").as_deref(),
        Some("en")
    );
    assert_eq!(
        attr(&again, "#lang-en", "aria-pressed").as_deref(),
        Some("true")
    );
    assert_eq!(
        attr(&again, "#lang-es", "aria-pressed").as_deref(),
        Some("false")
    );
    assert_eq!(text_of(&again, "#conn-state"), "connecting");
    drop(mounted);

    storage.remove_item("charla.lang").expect("remove");
    match lang_before {
        Some(lang) => html.set_attribute("lang", &lang).expect("set lang"),
        None => html.remove_attribute("lang").expect("remove lang"),
    }
}

/// Waits (on the browser's timers) until `ready()` holds; fails after 10 s.
async fn wait_until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..200 {
        if ready() {
            return;
        }
        let pause = js_sys::Promise::new(&mut |resolve, _| {
            let _ = web_sys::window()
                .expect("window")
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 50);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(pause).await;
    }
    panic!("{what} never happened");
}

fn product(id: u64, title: &str, code: &str) -> shared::Product {
    shared::Product {
        id,
        title: title.into(),
        description: format!("{title}, described"),
        code: code.into(),
        price: shared::Price(12.5),
        stock: 3,
    }
}

#[wasm_bindgen_test]
async fn a_binary_frame_shows_its_size_and_a_checksum_checked_against_the_announcement() {
    use shared::exercises::{binary_pattern, checksum};
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <BinaryFrames /> }
    });
    tick().await;
    assert_eq!(texts(&root, "button"), ["Ask for 256 B", "Ask for 64 KiB"]);
    let bytes = binary_pattern(65_536);
    let sum = checksum(&bytes);
    conn.apply(ServerMsg::Binary(shared::server::Binary {
        size: 65_536,
        checksum: sum,
    }));
    tick().await;
    assert_eq!(text_of(&root, "#binary-result"), "Waiting for the frame…");
    conn.exercises.binary_frame(&bytes);
    tick().await;
    assert_eq!(
        text_of(&root, "#binary-result"),
        format!("65536 bytes · checksum 0x{sum:08x} · verified ✓")
    );
    assert_eq!(
        attr(&root, "#binary-result", "class").as_deref(),
        Some("verified")
    );

    // One byte off: the size matches, the checksum does not.
    let mut bad = binary_pattern(256);
    bad[100] ^= 1;
    conn.apply(ServerMsg::Binary(shared::server::Binary {
        size: 256,
        checksum: checksum(&binary_pattern(256)),
    }));
    conn.exercises.binary_frame(&bad);
    tick().await;
    assert!(
        text_of(&root, "#binary-result").ends_with("does not match ✗"),
        "{}",
        text_of(&root, "#binary-result")
    );
    assert_eq!(
        attr(&root, "#binary-result", "class").as_deref(),
        Some("mismatch")
    );
}

#[wasm_bindgen_test]
async fn json_echoes_list_in_order_and_tics_start_stopped() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <NamedEvents /> }
    });
    tick().await;
    assert_eq!(text_of(&root, "#tic-last"), "No tic sent yet.");
    assert_eq!(
        attr(&root, "#tic-toggle", "aria-pressed").as_deref(),
        Some("false")
    );
    for text in ["uno", "<b>dos</b>"] {
        conn.apply(ServerMsg::Echo(shared::server::Echo { text: text.into() }));
    }
    tick().await;
    assert_eq!(texts(&root, "#json-echoes li"), ["uno", "<b>dos</b>"]);
    // Offline, a message is kept in the box and the page says why.
    type_in(&root, "#json-echo-input", "tres");
    element::<HtmlElement>(&root, "#json-echo-send").click();
    tick().await;
    assert_eq!(
        element::<HtmlInputElement>(&root, "#json-echo-input").value(),
        "tres"
    );
    assert!(text_of(&root, "[role=alert]").starts_with("Not connected"));
}

#[wasm_bindgen_test]
async fn the_echo_server_section_says_disconnected_in_either_language_when_it_cannot_connect() {
    let root = container();
    let i18n = I18n::new(Lang::Es);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        view! { <EchoServer /> }
    });
    // The test page's server has no echo server at /echo.
    let state = root.clone();
    wait_until("¡¡DESCONECTADO!!", move || {
        text_of(&state, "#echo-state") == "¡¡DESCONECTADO!!"
    })
    .await;
    assert_eq!(attr(&root, "#echo-send", "disabled").as_deref(), Some(""));
    i18n.lang.set(Lang::En);
    tick().await;
    assert_eq!(text_of(&root, "#echo-state"), "DISCONNECTED");
}

#[wasm_bindgen_test]
async fn the_random_page_shows_the_greeting_each_number_and_the_tickers_state() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    let exercises = conn.exercises;
    let mut greeted = welcome("me", "Me");
    if let ServerMsg::Welcome(shared::server::Welcome { greeting, .. }) = &mut greeted {
        *greeting = Some("Hola cliente WS!".into());
    }
    conn.apply(greeted);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <RandomPage /> }
    });
    tick().await;
    assert_eq!(
        text_of(&root, "#greeting"),
        "The server says: “Hola cliente WS!”"
    );
    assert_eq!(text_of(&root, "#ticker-state"), "Stopped");
    assert_eq!(text_of(&root, "#ticker-start"), "Start");

    // Too fast: refused by the form, nothing asked.
    type_in(&root, "#ticker-ms", "99");
    element::<HtmlElement>(&root, "#ticker-start").click();
    tick().await;
    assert_eq!(
        attr(&root, "#ticker-ms", "aria-invalid").as_deref(),
        Some("true")
    );
    assert_eq!(exercises.ticker_wanted.get_untracked(), None);

    type_in(&root, "#ticker-ms", "250");
    element::<HtmlElement>(&root, "#ticker-start").click();
    tick().await;
    assert_eq!(exercises.ticker_wanted.get_untracked(), Some(250));
    assert_eq!(text_of(&root, "#ticker-start"), "Change interval");
    conn.apply(ServerMsg::Ticker(shared::server::Ticker {
        ticker: 1,
        every_ms: 250,
    }));
    for n in [7, 1000, 1] {
        conn.apply(ServerMsg::Random(shared::server::Random { ticker: 1, n }));
    }
    tick().await;
    assert_eq!(text_of(&root, "#ticker-state"), "A number every 250 ms");
    assert_eq!(
        texts(&root, "#randoms li"),
        ["1", "1000", "7"],
        "newest first"
    );

    element::<HtmlElement>(&root, "#ticker-stop").click();
    conn.apply(ServerMsg::Random(shared::server::Random {
        ticker: 1,
        n: 5,
    }));
    tick().await;
    assert_eq!(text_of(&root, "#ticker-state"), "Stopped");
    assert_eq!(
        texts(&root, "#randoms li").len(),
        3,
        "late numbers are not shown"
    );
}

#[wasm_bindgen_test]
async fn the_live_product_list_follows_every_change_in_id_order_and_shows_field_errors() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    let i18n = I18n::new(Lang::En);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        provide_context(conn);
        view! { <LiveProductsPage /> }
    });
    tick().await;
    assert!(
        conn.exercises.watching.get_untracked(),
        "the page watches while open"
    );
    // The list comes in pages; a product added meanwhile is not shown twice when its
    // page arrives.
    conn.apply(ServerMsg::Products(shared::server::Products {
        products: vec![product(1, "Mate", "MATE")],
        after: None,
        has_more: true,
    }));
    conn.apply(ServerMsg::ProductAdded(shared::server::ProductAdded {
        product: product(2, "Yerba", "YERBA"),
    }));
    conn.apply(ServerMsg::Products(shared::server::Products {
        products: vec![product(2, "Yerba", "YERBA"), product(3, "Termo", "TERMO")],
        after: Some(1),
        has_more: false,
    }));
    tick().await;
    assert_eq!(
        texts(&root, "#live-products td.title"),
        ["Mate", "Yerba", "Termo"]
    );
    assert_eq!(
        attr(
            &root,
            "#live-products tr[data-id='2'] button.delete",
            "aria-label"
        )
        .as_deref(),
        Some("Delete Yerba")
    );
    conn.apply(ServerMsg::ProductRemoved(shared::server::ProductRemoved {
        id: 1,
    }));
    tick().await;
    assert_eq!(texts(&root, "#live-products td.title"), ["Yerba", "Termo"]);

    // The form checks with the server's rules before sending anything.
    type_in(&root, "#product-title", "Bombilla");
    type_in(&root, "#product-price", "-2");
    element::<HtmlElement>(&root, "#product-add").click();
    tick().await;
    assert_eq!(text_of(&root, "#product-price-error"), "Must be 0 or more.");
    assert_eq!(text_of(&root, "#product-code-error"), "Must not be blank.");
    assert_eq!(
        attr(&root, "#product-price", "aria-invalid").as_deref(),
        Some("true")
    );
    assert_eq!(
        attr(&root, "#product-price", "aria-describedby").as_deref(),
        Some("product-price-error")
    );
    assert_eq!(
        attr(&root, "#product-title", "aria-invalid").as_deref(),
        Some("false")
    );

    // What the server refuses shows on its field, in the reader's language.
    conn.exercises
        .form
        .set(frontend::exercises::ProductForm::Sending {
            code: "YERBA".into(),
        });
    conn.apply(ServerMsg::ProductRefused(shared::server::ProductRefused {
        code: "YERBA".into(),
        errors: vec![shared::FieldError::new(
            shared::ProductField::Code,
            shared::Problem::Taken,
        )],
    }));
    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(
        text_of(&root, "#product-code-error"),
        "Otro producto ya tiene este código."
    );
    assert_eq!(
        texts(&root, "#live-products th"),
        [
            "Título",
            "Descripción",
            "Código",
            "Precio",
            "Stock",
            "Acciones"
        ]
    );
}

#[wasm_bindgen_test]
async fn the_navigation_bar_links_every_page_in_the_language_shown() {
    let root = container();
    let i18n = I18n::new(Lang::En);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        frontend::router::Router::provide(|_| true);
        view! { <NavBar /> }
    });
    tick().await;
    let hrefs: Vec<String> = {
        let links = root.query_selector_all("#site-nav a").expect("links");
        (0..links.length())
            .filter_map(|i| links.item(i))
            .filter_map(|n| n.dyn_into::<Element>().ok())
            .filter_map(|e| e.get_attribute("href"))
            .collect()
    };
    assert_eq!(
        hrefs,
        [
            "/",
            "/echo",
            "/random",
            "/products",
            "/realtimeproducts",
            "/transports"
        ]
    );
    assert_eq!(
        texts(&root, "#site-nav a"),
        [
            "Chat",
            "Echo",
            "Random",
            "Products",
            "Live products",
            "Transports"
        ]
    );
    assert!(
        root.query_selector_all("#site-nav a[aria-current=page]")
            .expect("query")
            .length()
            <= 1
    );
    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(
        texts(&root, "#site-nav a"),
        [
            "Chat",
            "Eco",
            "Aleatorio",
            "Productos",
            "Productos en vivo",
            "Transportes"
        ]
    );
    assert_eq!(text_of(&root, "#lang-es"), "Español");
}

#[wasm_bindgen_test]
async fn the_transports_lesson_shows_four_lanes_in_the_language_shown() {
    let root = container();
    let i18n = I18n::new(Lang::En);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        view! { <TransportsPage /> }
    });
    tick().await;
    assert_eq!(
        text_of(&root, "#transports-title"),
        "Real-time transports, side by side"
    );
    let lanes: Vec<String> = {
        let found = root
            .query_selector_all("section[data-transport]")
            .expect("lanes");
        (0..found.length())
            .filter_map(|i| found.item(i))
            .filter_map(|n| n.dyn_into::<Element>().ok())
            .filter_map(|e| e.get_attribute("data-transport"))
            .collect()
    };
    assert_eq!(lanes, ["poll", "long-poll", "sse", "ws"]);
    assert_eq!(
        texts(&root, "section[data-transport] h3"),
        ["Polling", "Long polling", "Server-Sent Events", "WebSocket"]
    );
    // Nothing has arrived (this test's server has no lesson): no mean, no bars, no
    // request counted yet.
    assert_eq!(texts(&root, ".mean-delay"), ["", "", "", ""]);
    assert_eq!(texts(&root, ".requests"), ["0", "0", "0", "0"]);
    let input = root
        .query_selector("#poll-every")
        .ok()
        .flatten()
        .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
        .expect("the interval box");
    assert_eq!(input.value(), "2");
    // Labelled: a person (and a screen reader) knows what the box is.
    assert_eq!(text_of(&root, "label[for=poll-every]"), "Poll every");
    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(
        texts(&root, "section[data-transport] h3"),
        ["Sondeo", "Sondeo largo", "Server-Sent Events", "WebSocket"]
    );
    assert_eq!(text_of(&root, "label[for=poll-every]"), "Sondear cada");
}

#[wasm_bindgen_test]
async fn the_product_list_says_so_when_the_api_cannot_be_reached() {
    let root = container();
    let i18n = I18n::new(Lang::Es);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        view! { <ProductsPage /> }
    });
    tick().await;
    assert_eq!(text_of(&root, "#products-title"), "Productos");
    // The test page's server has no /api/products.
    let shown = root.clone();
    wait_until("the failure notice", move || {
        shown
            .query_selector("[role=alert]")
            .ok()
            .flatten()
            .and_then(|e| e.text_content())
            .is_some_and(|t| t == "No se pudieron cargar los productos.")
    })
    .await;
    assert_eq!(text_of(&root, "#products-reload"), "Recargar");
}

/// The server's sign-in settings, as `/api/config` gives them.
fn auth(mode: AuthMode, dev_login: bool) -> AuthConfig {
    AuthConfig {
        auth: mode,
        token_url: None,
        dev_login,
    }
}

/// A welcome for `id` signed in as the user `sub` (called `who`, if given).
fn welcome_user(id: &str, sub: &str, who: Option<&str>) -> ServerMsg {
    let mut welcomed = welcome(id, who.unwrap_or(sub));
    if let ServerMsg::Welcome(shared::server::Welcome { user, .. }) = &mut welcomed {
        *user = Some(UserInfo {
            id: UserId::new(sub),
            name: who.map(name),
            roles: Vec::new(),
        });
    }
    welcomed
}

/// The `welcome` of `sub` ("who") whose token carries the role `moderator`.
fn welcome_moderator(id: &str, sub: &str, who: &str) -> ServerMsg {
    let mut welcomed = welcome_user(id, sub, Some(who));
    if let ServerMsg::Welcome(shared::server::Welcome {
        user: Some(user), ..
    }) = &mut welcomed
    {
        user.roles = vec!["moderator".into()];
    }
    welcomed
}

/// The refusal the server sends before it closes with 4001.
fn sign_in_error(code: ErrorCode, message: &str) -> ServerMsg {
    ServerMsg::Error(shared::server::Error {
        code,
        message: message.into(),
        room: None,
        nonce: None,
    })
}

#[wasm_bindgen_test]
async fn the_sign_in_area_shows_who_is_signed_in_from_the_welcome_or_guest() {
    let root = container();
    let (state, conn) = offline();
    let i18n = I18n::new(Lang::En);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        provide_context(conn);
        view! { <SignIn /> }
    });
    tick().await;
    assert!(
        absent(&root, "#sign-in"),
        "a server without sign-in: nothing shown"
    );

    state.auth.set(Some(auth(AuthMode::Optional, false)));
    tick().await;
    assert_eq!(
        text_of(&root, "#signed-in"),
        "Not signed in: you are a guest"
    );
    assert_eq!(
        attr(&root, "#sign-in", "aria-label").as_deref(),
        Some("Sign-in")
    );
    assert!(
        absent(&root, "#dev-login"),
        "no dev-login unless the server offers it"
    );

    conn.apply(welcome_user("q8Zr2vLk0aYbXw1c", "alice", Some("Alice")));
    tick().await;
    assert_eq!(text_of(&root, "#signed-in"), "Signed in as Alice (alice)");
    assert_eq!(
        state.me.get_untracked().map(|u| u.id),
        Some(UserId::new("alice"))
    );
    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(
        text_of(&root, "#signed-in"),
        "Sesión iniciada como Alice (alice)"
    );
    i18n.lang.set(Lang::En);

    // A user whose token has no name: their id.
    conn.apply(welcome_user("q8Zr2vLk0aYbXw1c", "bob", None));
    tick().await;
    assert_eq!(text_of(&root, "#signed-in"), "Signed in as bob");

    // A guest's welcome (`"user": null`).
    conn.apply(welcome("q8Zr2vLk0aYbXw1c", "guest-4f2a"));
    tick().await;
    assert_eq!(
        text_of(&root, "#signed-in"),
        "Not signed in: you are a guest"
    );
}

#[wasm_bindgen_test]
async fn a_private_room_shows_a_lock_named_private_in_its_header_and_the_room_list() {
    let root = container();
    let (_, conn) = in_general_and_dev();
    conn.show(room("team-x"));
    let mut team = joined("team-x", vec![], 1);
    if let ServerMsg::Joined(shared::server::Joined { private, .. }) = &mut team {
        *private = true;
    }
    conn.apply(team);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! {
            <RoomsPanel />
            <RoomHeader />
        }
    });
    tick().await;
    assert_eq!(text_of(&root, "#room-title .room-title-name"), "team-x");
    assert_eq!(text_of(&root, "#room-title .lock"), " private");
    assert_eq!(
        text_of(&root, "#room-title .lock .visually-hidden"),
        " private"
    );
    assert_eq!(
        attr(&root, "#room-title .lock", "title").as_deref(),
        Some("private")
    );
    assert_eq!(
        attr(&root, "#room-title .lock svg", "aria-hidden").as_deref(),
        Some("true"),
        "the icon itself is not read out"
    );
    assert!(
        text_of(&root, "#rooms li[data-room='team-x'] a").contains("private"),
        "the room list says it too"
    );
    assert!(absent(&root, "#rooms li[data-room='general'] .lock"));
    assert!(absent(&root, "#rooms li[data-room='dev'] .lock"));

    // A room that is not private shows no lock.
    conn.show(room("dev"));
    tick().await;
    assert_eq!(text_of(&root, "#room-title"), "dev");
    assert!(absent(&root, "#room-title .lock"));
}

#[wasm_bindgen_test]
async fn a_refused_or_expired_sign_in_is_announced_and_the_page_is_a_guest_again() {
    let root = container();
    let (state, conn) = offline();
    state.auth.set(Some(auth(AuthMode::Optional, false)));
    let i18n = I18n::new(Lang::En);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        provide_context(conn);
        view! { <SignIn /> }
    });
    conn.apply(welcome_user("q8Zr2vLk0aYbXw1c", "alice", Some("Alice")));
    tick().await;
    assert_eq!(text_of(&root, "#sign-in-notice"), "");
    assert_eq!(
        attr(&root, "#sign-in-notice", "role").as_deref(),
        Some("alert")
    );

    conn.apply(sign_in_error(ErrorCode::BadToken, "the token is not valid"));
    tick().await;
    assert_eq!(
        text_of(&root, "#sign-in-notice"),
        "The server refused your sign-in: you are a guest now."
    );
    assert_eq!(
        text_of(&root, "#signed-in"),
        "Not signed in: you are a guest"
    );
    assert_eq!(state.me.get_untracked(), None);

    // Signed in again, then the token runs out.
    conn.apply(welcome_user("q8Zr2vLk0aYbXw1c", "alice", Some("Alice")));
    tick().await;
    assert_eq!(text_of(&root, "#sign-in-notice"), "", "a sign-in clears it");
    conn.apply(sign_in_error(ErrorCode::TokenExpired, "the token expired"));
    tick().await;
    assert_eq!(
        text_of(&root, "#sign-in-notice"),
        "Your sign-in expired: you are a guest now."
    );
    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(
        text_of(&root, "#sign-in-notice"),
        "Tu sesión ha caducado: sigues como invitado."
    );
    i18n.lang.set(Lang::En);

    // Where the server takes signed-in users only, there is no guest to fall back to.
    state.auth.set(Some(auth(AuthMode::Required, false)));
    conn.apply(sign_in_error(ErrorCode::TokenExpired, "the token expired"));
    tick().await;
    assert_eq!(
        text_of(&root, "#sign-in-notice"),
        "Your sign-in expired. Sign in again to join."
    );
    conn.apply(sign_in_error(ErrorCode::BadToken, "bad signature"));
    tick().await;
    assert_eq!(
        text_of(&root, "#sign-in-notice"),
        "The server refused your sign-in. Sign in again to join."
    );
    conn.apply(sign_in_error(ErrorCode::AuthRequired, "sign in first"));
    tick().await;
    assert_eq!(
        text_of(&root, "#sign-in-notice"),
        "This chat requires signing in."
    );
}

#[wasm_bindgen_test]
async fn a_forbidden_join_takes_the_room_off_the_list_and_says_it_is_private() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    conn.show(room("team-x"));
    let i18n = I18n::new(Lang::En);
    let _mounted = mount_to(root.clone(), move || {
        provide_context(i18n);
        provide_context(conn);
        view! {
            <RoomsPanel />
            <Composer />
        }
    });
    tick().await;
    assert_eq!(
        texts(&root, "#rooms li .room-name"),
        ["general", "dev", "team-x"]
    );
    conn.apply(ServerMsg::Error(shared::server::Error {
        code: ErrorCode::Forbidden,
        message: "team-x is private".into(),
        room: Some(room("team-x")),
        nonce: None,
    }));
    tick().await;
    assert_eq!(texts(&root, "#rooms li .room-name"), ["general", "dev"]);
    assert_eq!(state.current.get_untracked(), room("general"));
    assert_eq!(
        text_of(&root, "#notice"),
        "team-x is a private room: you may not join it."
    );
    assert_eq!(attr(&root, "#notice", "role").as_deref(), Some("alert"));
    i18n.lang.set(Lang::Es);
    tick().await;
    assert_eq!(
        text_of(&root, "#notice"),
        "team-x es una sala privada: no tienes permiso para entrar."
    );
}

#[wasm_bindgen_test]
async fn the_dev_login_form_is_labelled_refuses_a_blank_id_and_says_when_the_server_refuses() {
    let root = container();
    let (state, conn) = offline();
    state.auth.set(Some(auth(AuthMode::Optional, true)));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <SignIn /> }
    });
    tick().await;
    for (input, label) in [
        ("dev-sub", "User id"),
        ("dev-name", "Display name (optional)"),
        (
            "dev-rooms",
            "Private rooms (optional, comma-separated, e.g. team-*)",
        ),
    ] {
        assert_eq!(text_of(&root, &format!("label[for={input}]")), label);
        assert!(!absent(&root, &format!("#{input}")));
    }
    assert_eq!(
        text_of(&root, "#dev-login-title"),
        "Sign in as…",
        "the form is named by its heading"
    );
    assert!(absent(&root, "#sign-out"), "nobody to sign out yet");

    // A blank id is refused by the form, before anything is asked.
    type_in(&root, "#dev-sub", "   ");
    element::<HtmlElement>(&root, "#dev-sign-in").click();
    tick().await;
    assert_eq!(text_of(&root, "#dev-login-error"), "Type a user id first.");
    assert_eq!(
        attr(&root, "#dev-sub", "aria-invalid").as_deref(),
        Some("true")
    );
    assert!(!state.signing_in.get_untracked());

    // The test page's server has no /api/dev/token: the sign-in fails, visibly.
    type_in(&root, "#dev-sub", "alice");
    type_in(&root, "#dev-rooms", "team-*");
    element::<HtmlElement>(&root, "#dev-sign-in").click();
    tick().await;
    assert_eq!(text_of(&root, "#dev-login-error"), "");
    let shown = root.clone();
    wait_until("the refused sign-in", move || {
        !text_of(&shown, "#sign-in-notice").is_empty()
    })
    .await;
    assert_eq!(text_of(&root, "#sign-in-notice"), "Could not sign in.");
    assert!(!state.signing_in.get_untracked());
    assert_eq!(state.dev_identity.get_untracked(), None, "nothing kept");
    assert_eq!(
        attr(&root, "#dev-sign-in", "disabled"),
        None,
        "the form can be sent again"
    );
}

fn edited(seq: u64, target: u64, text: &str) -> ServerMsg {
    ServerMsg::MessageEdited(shared::server::MessageEdited {
        room: room("general"),
        seq: Seq(seq),
        target: Seq(target),
        text: text.into(),
        at: 1_763_769_600_001,
        from: ConnId::new("AAAA"),
        user: None,
        nonce: None,
    })
}

fn deleted(seq: u64, target: u64) -> ServerMsg {
    ServerMsg::MessageDeleted(shared::server::MessageDeleted {
        room: room("general"),
        seq: Seq(seq),
        target: Seq(target),
        by: "mod".into(),
        at: 1_763_769_600_001,
        from: ConnId::new("MMMM"),
        nonce: None,
    })
}

#[wasm_bindgen_test]
async fn an_edited_line_says_so_and_a_removed_line_shows_no_text_each_entry_applied_once() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <History /> }
    });
    conn.apply(welcome("me", "Me"));
    conn.apply(joined(
        "general",
        vec![
            line("general", 1, "AAAA", Some("Ana"), "hola"),
            line("general", 2, "BBBB", Some("Bea"), "spam"),
        ],
        2,
    ));
    conn.apply(edited(3, 1, "hola a todos"));
    conn.apply(deleted(4, 2));
    tick().await;
    assert_eq!(
        items(&root),
        ["Ana -> hola a todos (edited)", "Bea -> line removed"]
    );
    // A later edit wins; the earlier one arriving again (a replay) changes nothing.
    conn.apply(edited(5, 1, "hola, final"));
    conn.apply(edited(3, 1, "hola a todos"));
    // An edit never brings a removed line back.
    conn.apply(edited(6, 2, "spam again"));
    tick().await;
    assert_eq!(
        items(&root),
        ["Ana -> hola, final (edited)", "Bea -> line removed"]
    );
    assert!(!root.text_content().unwrap_or_default().contains("spam"));

    // A page opened afterwards gets the lines as they are now, with the entries after
    // them, and shows the same.
    let page = container();
    let (_, late) = offline();
    let _late = mount_to(page.clone(), move || {
        provide_context(late);
        view! { <History /> }
    });
    late.apply(welcome("me2", "Me"));
    let mut one = line("general", 1, "AAAA", Some("Ana"), "hola, final");
    one.edited = true;
    let mut two = line("general", 2, "BBBB", Some("Bea"), "");
    two.removed = true;
    let mut entry = line("general", 5, "AAAA", None, "hola, final");
    entry.change = Some(shared::Change::edit(Seq(1)));
    late.apply(joined("general", vec![one, two, entry], 2));
    tick().await;
    assert_eq!(
        items(&page),
        ["Ana -> hola, final (edited)", "Bea -> line removed"]
    );
}

#[wasm_bindgen_test]
async fn own_lines_offer_edit_and_delete_and_only_moderators_may_remove_others() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <History /> }
    });
    conn.apply(welcome("me", "Me"));
    conn.apply(joined(
        "general",
        vec![
            line("general", 1, "AAAA", Some("Ana"), "hola"),
            line("general", 2, "me", Some("Me"), "mío"),
        ],
        2,
    ));
    tick().await;
    // A guest: edit and delete on its own line only; no moderator controls.
    assert_eq!(
        attr(&root, "#history li.mine button.edit", "aria-label").as_deref(),
        Some("Edit line 2")
    );
    assert_eq!(
        attr(&root, "#history li.mine button.delete", "aria-label").as_deref(),
        Some("Delete line 2")
    );
    assert_eq!(texts(&root, "#history li button").len(), 2);
    assert!(absent(&root, "button.moderate"));
    // The buttons' words do not join the line's text.
    assert_eq!(items(&root), ["Ana -> hola", "Me -> mío"]);

    // Edit opens a labelled box in place; Escape puts the line back.
    element::<HtmlElement>(&root, "#history li.mine button.edit").click();
    tick().await;
    let input: HtmlInputElement = element(&root, "#history li.mine input.edit-line");
    assert_eq!(input.value(), "mío");
    assert_eq!(
        input.get_attribute("aria-label").as_deref(),
        Some("New text of the line")
    );
    let escape = web_sys::KeyboardEventInit::new();
    escape.set_key("Escape");
    let event = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &escape)
        .expect("event");
    input.dispatch_event(&event).expect("dispatch");
    tick().await;
    assert!(absent(&root, "input.edit-line"));
    assert_eq!(items(&root), ["Ana -> hola", "Me -> mío"]);

    // A user who is not a moderator sees no remove on others' lines either.
    conn.apply(welcome_user("me", "bob", Some("Bob")));
    tick().await;
    assert!(absent(&root, "button.moderate"));
    // A moderator does, on others' lines (and still edit/delete on their own).
    conn.apply(welcome_moderator("me", "alice", "Alice"));
    tick().await;
    assert_eq!(
        attr(
            &root,
            "#history li:not(.mine) button.moderate",
            "aria-label"
        )
        .as_deref(),
        Some("Remove (as moderator) line 1")
    );
    assert!(absent(&root, "#history li.mine button.moderate"));
    // A removed line offers nothing.
    conn.apply(deleted(3, 1));
    tick().await;
    assert!(absent(&root, "button.moderate"));
}

fn moderation(
    room_name: &str,
    seq: u64,
    action: shared::ChangeKind,
    user: Option<&str>,
    until: Option<u64>,
    secs: Option<u32>,
) -> ServerMsg {
    ServerMsg::Moderation(shared::server::Moderation {
        room: room(room_name),
        seq: Seq(seq),
        action,
        user: user.map(str::to_owned),
        until,
        secs,
        by: "mod".into(),
        at: 1_763_769_600_001,
        from: ConnId::new("MMMM"),
        nonce: None,
    })
}

#[wasm_bindgen_test]
async fn a_moderator_is_offered_kick_mute_and_ban_of_others_and_nobody_else_is() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <History /> }
    });
    let mut bob = line("general", 1, "BBBB", Some("Bob"), "hola");
    bob.user = Some(UserId::new("bob"));
    conn.apply(welcome_user("me", "carl", Some("Carl")));
    conn.apply(joined(
        "general",
        vec![bob, line("general", 2, "GGGG", Some("Guest"), "hey")],
        2,
    ));
    tick().await;
    assert!(absent(&root, "button.kick, button.mute, button.ban"));
    conn.apply(welcome_moderator("me", "alice", "Alice"));
    tick().await;
    // Each names the line's author; the words come from CSS, not from the line's text.
    assert_eq!(
        texts(&root, "#history li button.kick")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["", ""]
    );
    let labels = |selector: &str| {
        let list = root.query_selector_all(selector).expect("selector");
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.dyn_into::<Element>().ok())
            .filter_map(|e| e.get_attribute("aria-label"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        labels("#history li button.kick"),
        [
            "Put out of the room (may rejoin): Bob",
            "Put out of the room (may rejoin): Guest"
        ]
    );
    assert_eq!(
        labels("#history li button.mute")[0],
        "Mute for 10 minutes: Bob"
    );
    assert_eq!(
        labels("#history li button.ban")[1],
        "Ban from the room: Guest"
    );
    assert_eq!(
        attr(&root, "#history li button.ban", "data-label").as_deref(),
        Some("ban")
    );
    assert_eq!(items(&root), ["Bob -> hola", "Guest -> hey"]);
    // A moderation entry is not a line: the history shows nothing of it.
    conn.apply(moderation(
        "general",
        3,
        shared::ChangeKind::Kick,
        Some("bob"),
        None,
        None,
    ));
    tick().await;
    assert_eq!(items(&root), ["Bob -> hola", "Guest -> hey"]);
}

#[wasm_bindgen_test]
async fn a_muted_page_cannot_send_slow_mode_is_said_and_a_banned_page_leaves_the_room() {
    let root = container();
    let (state, conn) = in_general_and_dev();
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <Composer /> }
    });
    conn.show(room("dev"));
    tick().await;
    let input: HtmlInputElement = element(&root, "#composer-input");
    assert!(!input.disabled());
    assert_eq!(text_of(&root, "#room-rule"), "");
    // Muted (this guest is `me`): the composer is disabled and says why, for how long.
    let until = js_sys::Date::now() as u64 + 10 * 60_000;
    conn.apply(moderation(
        "dev",
        1,
        shared::ChangeKind::Mute,
        Some("me"),
        Some(until),
        None,
    ));
    tick().await;
    assert!(input.disabled());
    assert!(attr(&root, "#send", "disabled").is_some());
    assert_eq!(
        text_of(&root, "#room-rule"),
        "You are muted here for 10 more minutes: you can read, not send."
    );
    assert_eq!(
        attr(&root, "#composer-input", "aria-describedby").as_deref(),
        Some("room-rule")
    );
    // Someone else's mute changes nothing here; an unmute of this page gives it back.
    conn.apply(moderation(
        "dev",
        2,
        shared::ChangeKind::Unmute,
        Some("other"),
        None,
        None,
    ));
    tick().await;
    assert!(input.disabled());
    conn.apply(moderation(
        "dev",
        3,
        shared::ChangeKind::Unmute,
        Some("me"),
        None,
        None,
    ));
    tick().await;
    assert!(!input.disabled());
    // The room's slow mode, said under the composer; off again, nothing is said.
    conn.apply(moderation(
        "dev",
        4,
        shared::ChangeKind::SlowMode,
        None,
        None,
        Some(30),
    ));
    tick().await;
    assert_eq!(
        text_of(&root, "#room-rule"),
        "Slow mode: one line every 30 s."
    );
    conn.apply(moderation(
        "dev",
        5,
        shared::ChangeKind::SlowMode,
        None,
        None,
        Some(0),
    ));
    tick().await;
    assert_eq!(text_of(&root, "#room-rule"), "");
    // A `joined` says both for a page that comes in later.
    conn.apply(ServerMsg::Joined(shared::server::Joined {
        room: room("dev"),
        slow_mode: Some(5),
        muted: true,
        ..Default::default()
    }));
    tick().await;
    assert!(input.disabled());
    assert_eq!(
        text_of(&root, "#room-rule"),
        "You are muted here: you can read, not send."
    );
    // Banned: the page leaves the room, goes to the next one, and says who and why.
    conn.apply(moderation(
        "dev",
        6,
        shared::ChangeKind::Ban,
        Some("me"),
        None,
        None,
    ));
    conn.apply(ServerMsg::Left(shared::server::Left {
        room: room("dev"),
        reason: Some(shared::ChangeKind::Ban),
        by: Some("mod".into()),
        until: None,
    }));
    tick().await;
    assert!(!state.is_joined(&room("dev")));
    assert_eq!(state.current.get_untracked(), room("general"));
    assert_eq!(text_of(&root, "#notice"), "mod banned you from dev.");
    // Joining again is refused by the server with `banned`, and the page says so.
    conn.show(room("dev"));
    conn.apply(ServerMsg::Error(shared::server::Error {
        code: ErrorCode::Banned,
        message: "you are banned from dev".into(),
        room: Some(room("dev")),
        nonce: None,
    }));
    tick().await;
    assert!(!state.is_joined(&room("dev")));
    assert_eq!(
        text_of(&root, "#notice"),
        "You are banned from dev: you may not join it."
    );
}

fn read_mark(room_name: &str, seq: u64) -> ServerMsg {
    ServerMsg::Read(shared::server::ReadMark {
        room: room(room_name),
        seq: Seq(seq),
    })
}

#[wasm_bindgen_test]
async fn a_signed_in_pages_unread_count_starts_from_the_servers_read_position_and_follows_it() {
    let root = container();
    let (state, conn) = offline();
    conn.apply(welcome_user("me", "ana", Some("Ana")));
    conn.apply(joined("general", vec![], 2));
    conn.show(room("dev"));
    conn.show(room("general"));
    // dev holds four lines from others; the server says ana read up to 2 elsewhere.
    let lines = (1..=4)
        .map(|seq| line("dev", seq, "BBBB", Some("Bob"), &format!("dev {seq}")))
        .collect();
    let ServerMsg::Joined(mut dev) = joined("dev", lines, 2) else {
        unreachable!("joined builds a joined");
    };
    dev.read = Some(Seq(2));
    conn.apply(ServerMsg::Joined(dev));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <RoomsPanel /> }
    });
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "2");

    // Read further on another tab or device: the count drops; a position further back, or
    // one of a room this page is not in, changes nothing.
    conn.apply(read_mark("dev", 3));
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "1");
    conn.apply(read_mark("dev", 1));
    conn.apply(read_mark("elsewhere", 9));
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "1");
    // A new line counts from the position; read up to it elsewhere, the badge goes.
    conn.apply(ServerMsg::Message(line(
        "dev",
        5,
        "BBBB",
        Some("Bob"),
        "five",
    )));
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "2");
    conn.apply(read_mark("dev", 5));
    tick().await;
    assert!(absent(&root, "#rooms li[data-room='dev'] .unread"));
    assert_eq!(state.room(&room("dev")).read.get_untracked(), 5);

    // Shown here, the room is read up to its newest line.
    conn.apply(ServerMsg::Message(line(
        "dev",
        6,
        "BBBB",
        Some("Bob"),
        "six",
    )));
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "1");
    conn.show(room("dev"));
    tick().await;
    assert!(absent(&root, "#rooms li[data-room='dev'] .unread"));
    assert_eq!(state.room(&room("dev")).read.get_untracked(), 6);
}

#[wasm_bindgen_test]
async fn a_guests_page_counts_only_what_arrives_after_it_joined() {
    let root = container();
    let (state, conn) = offline();
    conn.apply(welcome("me", "Me"));
    conn.apply(joined("general", vec![], 2));
    conn.show(room("dev"));
    conn.show(room("general"));
    let lines = (1..=3)
        .map(|seq| line("dev", seq, "BBBB", Some("Bob"), &format!("dev {seq}")))
        .collect();
    conn.apply(joined("dev", lines, 2));
    let _mounted = mount_to(root.clone(), move || {
        provide_context(conn);
        view! { <RoomsPanel /> }
    });
    tick().await;
    assert!(
        absent(&root, "#rooms li[data-room='dev'] .unread"),
        "old lines are not news"
    );
    assert_eq!(state.room(&room("dev")).read.get_untracked(), 3);
    conn.apply(ServerMsg::Message(line(
        "dev",
        4,
        "BBBB",
        Some("Bob"),
        "four",
    )));
    tick().await;
    assert_eq!(text_of(&root, "#rooms li[data-room='dev'] .unread"), "1");
}
