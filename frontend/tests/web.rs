//! Components mounted in a real page (headless Chromium), asserting on the DOM they render
//! from their signals. Run: `cargo test -p frontend --target wasm32-unknown-unknown`.

#![allow(missing_docs)]

use frontend::{
    ChatState, ConnState, Connection,
    components::{Composer, History, LiveTyping, StatusBar},
};
use leptos::{mount::mount_to, prelude::*, task::tick};
use shared::{ChatLine, ConnId, Seq, ServerMsg};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

/// A fresh element in the page to mount one component into.
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

fn line(seq: u64, from: &str, text: &str) -> ChatLine {
    ChatLine {
        seq: Seq(seq),
        from: ConnId::new(from),
        text: text.into(),
        at: 1_763_769_600_000,
        nonce: None,
    }
}

fn welcome(id: &str, history: Vec<ChatLine>, online: u32) -> ServerMsg {
    ServerMsg::Welcome {
        id: ConnId::new(id),
        history,
        online,
        protocol: 1,
        resume: "token".into(),
        has_more: false,
        resumed: false,
    }
}

/// A connection with no server: its state is driven by `apply`, as the socket would.
fn offline() -> (ChatState, Connection) {
    let state = ChatState::new();
    (state, Connection::new(state))
}

fn items(root: &Element) -> Vec<String> {
    let list = root.query_selector_all("#history li").expect("query");
    (0..list.length())
        .filter_map(|i| list.item(i))
        .map(|n| n.text_content().unwrap_or_default())
        .collect()
}

fn element<T: JsCast>(root: &Element, selector: &str) -> T {
    root.query_selector(selector)
        .expect("query")
        .unwrap_or_else(|| panic!("{selector} is rendered"))
        .unchecked_into()
}

/// Types `text` into the composer (as one input event) and presses Send.
fn submit(root: &Element, text: &str) {
    let input: HtmlInputElement = element(root, "#composer-input");
    input.set_value(text);
    input
        .dispatch_event(&web_sys::Event::new("input").expect("event"))
        .expect("dispatch");
    element::<HtmlElement>(root, "#send").click();
}

fn text_of(root: &Element, selector: &str) -> String {
    root.query_selector(selector)
        .expect("query")
        .unwrap_or_else(|| panic!("{selector} is rendered"))
        .text_content()
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn history_renders_one_line_each_from_its_signal() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || view! { <History conn=conn /> });
    tick().await;
    assert!(items(&root).is_empty());
    assert!(text_of(&root, ".empty").contains("No lines yet"));

    conn.apply(welcome(
        "me",
        vec![line(1, "AAAA", "hola"), line(2, "me", "qué tal")],
        2,
    ));
    tick().await;
    assert_eq!(items(&root), ["AAAA -> hola", "me -> qué tal"]);
    assert!(root.query_selector(".empty").expect("query").is_none());
    // The page's own lines are marked.
    let mine = root.query_selector_all("#history li.mine").expect("query");
    assert_eq!(mine.length(), 1);

    conn.apply(ServerMsg::Message(line(3, "BBBB", "bien")));
    // A repeated line (same seq) is not shown twice.
    conn.apply(ServerMsg::Message(line(3, "BBBB", "bien")));
    tick().await;
    assert_eq!(
        items(&root),
        ["AAAA -> hola", "me -> qué tal", "BBBB -> bien"]
    );
    let list = root.query_selector("#history").expect("q").expect("list");
    assert_eq!(list.get_attribute("aria-live").as_deref(), Some("polite"));
}

#[wasm_bindgen_test]
async fn the_live_paragraph_shows_the_latest_text_and_clears() {
    let root = container();
    let (state, conn) = offline();
    conn.apply(welcome("me", vec![], 2));
    let _mounted = mount_to(root.clone(), move || view! { <LiveTyping state=state /> });
    tick().await;
    assert_eq!(text_of(&root, "#live"), "Nobody is typing.");

    let typing = |from: &str, text: &str| ServerMsg::Typing {
        from: ConnId::new(from),
        text: text.into(),
    };
    conn.apply(typing("XXXX", "h"));
    conn.apply(typing("XXXX", "ho"));
    tick().await;
    assert_eq!(text_of(&root, "#live"), "XXXX is typing: ho");

    conn.apply(typing("me", "mine"));
    tick().await;
    assert_eq!(text_of(&root, "#live"), "me (you) is typing: mine");

    // Another typist emptying their box does not clear what is shown.
    conn.apply(typing("XXXX", ""));
    tick().await;
    assert_eq!(text_of(&root, ".live-text"), "mine");

    conn.apply(typing("me", ""));
    tick().await;
    assert_eq!(text_of(&root, "#live"), "Nobody is typing.");
}

#[wasm_bindgen_test]
async fn the_status_bar_shows_id_state_and_online_count() {
    let root = container();
    let (state, conn) = offline();
    let _mounted = mount_to(root.clone(), move || view! { <StatusBar conn=conn /> });
    tick().await;
    assert_eq!(text_of(&root, "#conn-state"), "connecting");
    assert!(root.query_selector("#reconnect").expect("q").is_none());

    conn.apply(welcome("q8Zr2vLk0aYbXw1c", vec![], 2));
    tick().await;
    assert_eq!(text_of(&root, "#my-id"), "q8Zr2vLk0aYbXw1c");
    assert_eq!(text_of(&root, "#conn-state"), "connected");
    assert_eq!(text_of(&root, "#online"), "2 online");

    conn.apply(ServerMsg::Presence { online: 3 });
    tick().await;
    assert_eq!(text_of(&root, "#online"), "3 online");

    state.status.set(ConnState::Reconnecting);
    state.retry_in.set(Some(3));
    tick().await;
    assert_eq!(
        text_of(&root, "#conn-state"),
        "disconnected · reconnecting in 3 s"
    );
    assert!(root.query_selector("#reconnect").expect("q").is_some());
    state.retry_in.set(Some(0));
    tick().await;
    assert_eq!(
        text_of(&root, "#conn-state"),
        "disconnected · reconnecting…"
    );
}

#[wasm_bindgen_test]
async fn text_holding_markup_renders_as_text() {
    let root = container();
    let (state, conn) = offline();
    let evil = r#"<img src=x onerror="window.__charla_xss=1"><b>bold</b>"#;
    conn.apply(welcome("me", vec![line(1, "AAAA", evil)], 1));
    conn.apply(ServerMsg::Typing {
        from: ConnId::new("AAAA"),
        text: evil.into(),
    });
    let _mounted = mount_to(root.clone(), move || {
        view! {
            <LiveTyping state=state />
            <History conn=conn />
        }
    });
    tick().await;
    assert_eq!(items(&root), [format!("AAAA -> {evil}")]);
    assert_eq!(text_of(&root, ".live-text"), evil);
    assert!(
        root.query_selector("img").expect("q").is_none(),
        "no element was made"
    );
    assert!(
        root.query_selector("b").expect("q").is_none(),
        "no element was made"
    );
}

#[wasm_bindgen_test]
async fn the_composer_refuses_a_blank_line_visibly() {
    let root = container();
    let (_, conn) = offline();
    let _mounted = mount_to(root.clone(), move || view! { <Composer conn=conn /> });
    tick().await;
    let input: HtmlInputElement = element(&root, "#composer-input");
    // The input is labelled.
    let label = root.query_selector("label[for=composer-input]").expect("q");
    assert!(label.is_some_and(|l| l.text_content().unwrap_or_default() == "Your message"));

    submit(&root, "   ");
    tick().await;
    assert_eq!(
        text_of(&root, "#notice"),
        "Type something first: blank lines are not sent."
    );
    assert_eq!(input.value(), "   ", "a refused line stays in the box");
}

#[wasm_bindgen_test]
async fn a_line_sent_offline_is_pending_until_acknowledged_then_shown_once() {
    let root = container();
    let (state, conn) = offline();
    conn.apply(welcome("me", vec![line(1, "AAAA", "hola")], 2));
    let _mounted = mount_to(root.clone(), move || {
        view! {
            <Composer conn=conn />
            <History conn=conn />
        }
    });
    tick().await;
    let input: HtmlInputElement = element(&root, "#composer-input");
    submit(&root, "are you there?");
    tick().await;
    // No server: the line waits, visibly, and the box is free for the next one.
    assert_eq!(input.value(), "");
    assert_eq!(
        text_of(&root, "#pending li"),
        "me -> are you there? sending…"
    );
    assert_eq!(items(&root), ["AAAA -> hola"]);

    // The server stores it: its line arrives (ack first, as the server sends them).
    let nonce = state.pending.get_untracked()[0].nonce.clone();
    conn.apply(ServerMsg::Ack {
        nonce: nonce.clone(),
        seq: Seq(2),
    });
    let mut mine = line(2, "me", "are you there?");
    mine.nonce = Some(nonce);
    conn.apply(ServerMsg::Message(mine.clone()));
    tick().await;
    assert!(
        root.query_selector("#pending li").expect("q").is_none(),
        "no longer pending"
    );
    assert_eq!(items(&root), ["AAAA -> hola", "me -> are you there?"]);

    // A resumed session replaying the same line does not show it twice.
    conn.apply(ServerMsg::Welcome {
        id: ConnId::new("me"),
        history: vec![mine],
        online: 2,
        protocol: 1,
        resume: "token".into(),
        has_more: false,
        resumed: true,
    });
    tick().await;
    assert_eq!(items(&root), ["AAAA -> hola", "me -> are you there?"]);
}

#[wasm_bindgen_test]
async fn older_lines_load_above_the_history() {
    let root = container();
    let (_, conn) = offline();
    conn.apply(ServerMsg::Welcome {
        id: ConnId::new("me"),
        history: vec![line(3, "AAAA", "three"), line(4, "AAAA", "four")],
        online: 1,
        protocol: 1,
        resume: "token".into(),
        has_more: true,
        resumed: false,
    });
    let _mounted = mount_to(root.clone(), move || view! { <History conn=conn /> });
    tick().await;
    assert!(root.query_selector("#load-older").expect("q").is_some());
    conn.apply(ServerMsg::Older {
        lines: vec![line(1, "AAAA", "one"), line(2, "AAAA", "two")],
        has_more: false,
    });
    tick().await;
    assert_eq!(
        items(&root),
        [
            "AAAA -> one",
            "AAAA -> two",
            "AAAA -> three",
            "AAAA -> four"
        ]
    );
    assert!(
        root.query_selector("#load-older").expect("q").is_none(),
        "nothing older left"
    );
}
