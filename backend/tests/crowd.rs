//! A hostile crowd against every frame the server builds for one client (issue #20, item 1):
//! greetings, `older`, `members`, the product catalog and `GET /api/products` fit a byte
//! budget below what a client's outbox accepts, by paging or trimming with a marker, so
//! that no crowd can make a room unjoinable by closing its newcomers as slow consumers.

#![allow(missing_docs)]

use std::collections::HashSet;

use backend::Config;
use shared::{ClientMsg, NewProduct, Product, Seq, ServerMsg, decode_server};
use testkit::{Client, Picked, TestServer, request, unlimited};
use tokio_tungstenite::tungstenite::Message;

/// The longest live text a client may type, each character escaped to six bytes of JSON.
fn worst_text() -> String {
    "\u{0}".repeat(shared::limits::MAX_TEXT_CHARS)
}

/// Reads until the next `joined`, skipping live frames; returns its raw size and the frame.
async fn raw_joined(client: &mut Client) -> (usize, ServerMsg) {
    loop {
        let Message::Text(text) = client.recv_raw().await else {
            panic!("expected a text frame");
        };
        let msg = decode_server(text.as_str()).expect("server frames decode");
        match msg {
            ServerMsg::Joined(_) => return (text.len(), msg),
            ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
            other => panic!("expected joined, got {other:?}"),
        }
    }
}

fn hello_general(resume: Option<String>, after: u64) -> ClientMsg {
    ClientMsg::Hello {
        resume,
        rooms: Some([("general".to_owned(), Seq(after))].into()),
        name: None,
        token: None,
    }
}

#[tokio::test]
async fn a_crowd_typing_the_longest_texts_cannot_keep_a_newcomer_out() {
    // The default configuration: 1 MiB per outbox, 100 connections per address.
    let server = TestServer::start().await;
    let url = format!("ws://{}/ws", server.addr);
    let mut watcher = server.client_in(&["general"]).await;
    // Someone who will come back (resume) once the crowd has typed.
    let mut returning = Client::hello(&url, &hello_general(None, 0)).await;
    let _ = returning.recv_joined().await;
    let token = returning.resume.clone();
    returning.close().await;

    // 95 guests from one address, each typing 2,000 `\u0000`: ~1.1 MB of live text.
    const CROWD: usize = 95;
    let text = worst_text();
    let mut crowd = Vec::new();
    for _ in 0..CROWD {
        let mut typist = server.client_in(&["general"]).await;
        typist.typing(&text).await;
        // A connection handles its frames in order: the pong says the text is in the room.
        pong(&mut typist).await;
        crowd.push(typist);
    }

    // A newcomer is let in, with as many typists as its greeting's budget holds.
    let mut newcomer = Client::hello(&url, &hello_general(None, 0)).await;
    let (size, joined) = raw_joined(&mut newcomer).await;
    let ServerMsg::Joined(shared::server::Joined {
        typing,
        typing_more,
        online,
        ..
    }) = joined
    else {
        unreachable!("raw_joined returns joined frames");
    };
    assert!(
        size <= Config::DEFAULT_OUTBOX_BYTES / 8 + 1024,
        "the greeting is {size} bytes"
    );
    assert!(typing_more, "more typists than the greeting holds");
    assert!(
        !typing.is_empty() && typing.len() < CROWD,
        "{}",
        typing.len()
    );
    assert!(typing.iter().all(|t| t.text == text), "texts are whole");
    assert_eq!(online, u32::try_from(CROWD + 2).expect("small"));
    // It stays: the next thing it asks is answered.
    pong(&mut newcomer).await;

    // A page that resumes is let in too.
    let mut back = Client::hello(&url, &hello_general(Some(token), 0)).await;
    let (size, _) = raw_joined(&mut back).await;
    assert!(size <= Config::DEFAULT_OUTBOX_BYTES / 8 + 1024);

    // The members who were there all along were never closed.
    pong(&mut watcher).await;
}

/// Pings and reads until the pong, skipping live frames.
async fn pong(client: &mut Client) {
    client.send_msg(&ClientMsg::Ping).await;
    client
        .recv_skipping_live("pong", |m| match m {
            ServerMsg::Pong => Picked::Found(()),
            other => Picked::Other(other),
        })
        .await;
}

#[tokio::test]
async fn a_typing_crowd_costs_each_member_a_paced_stream_that_ends_on_every_latest_text() {
    use std::{collections::HashMap, time::Instant};

    let server = TestServer::start_with(unlimited()).await;
    let mut member = server.client_in(&["general"]).await;
    // 60 typists, each changing a 3 KB text three times at once: 540 KB offered, far past
    // the room's burst; each typist's last text is what must arrive.
    let mut crowd = Vec::new();
    for _ in 0..60 {
        crowd.push(server.client_in(&["general"]).await);
    }
    // The member reads all the while, counting the bytes of live text it is sent.
    let reader = tokio::spawn(async move {
        let mut last: HashMap<shared::ConnId, String> = HashMap::new();
        let mut bytes = 0;
        while !(last.len() == 60 && last.values().all(|t| t.contains(":2:"))) {
            let Message::Text(frame) = member.recv_raw().await else {
                continue;
            };
            if let Ok(ServerMsg::Typing(shared::server::Typing { from, text, .. })) =
                decode_server(frame.as_str())
            {
                bytes += frame.len();
                last.insert(from, text);
            }
        }
        (bytes, Instant::now())
    });
    let started = Instant::now();
    for (i, typist) in crowd.iter_mut().enumerate() {
        for version in 0..3 {
            let text = format!("{i}:{version}:{}", "\u{0}".repeat(500));
            typist.typing(&text).await;
        }
    }
    let (bytes, ended) = reader.await.expect("the reader");
    // Whatever the machine's pace, the room cannot have sent more than its burst and its
    // rate over the time since the first change was offered (and one frame in flight).
    let elapsed = ended.duration_since(started).as_secs_f64();
    let most = backend_limits::TYPING_BURST_BYTES as f64
        + backend_limits::TYPING_BYTES_PER_SEC as f64 * elapsed
        + 4_000.0;
    assert!(
        (bytes as f64) <= most,
        "{bytes} bytes of typing in {elapsed:.2} s: more than the room's budget ({most:.0})"
    );
}

/// The room's typing budget, as `backend` documents it (docs/GUARANTEES.md).
mod backend_limits {
    pub const TYPING_BURST_BYTES: usize = 128 * 1024;
    pub const TYPING_BYTES_PER_SEC: usize = 128 * 1024;
}

/// Sends `n` lines of the worst text from `client`, waiting for each ack; returns the seqs.
async fn say_long_lines(client: &mut Client, n: usize) -> Vec<u64> {
    let text = worst_text();
    let mut seqs = Vec::new();
    for i in 0..n {
        let nonce = format!("long-{i}");
        client.send_with_nonce(&text, &nonce).await;
        seqs.push(client.recv_ack_of(&nonce).await);
    }
    seqs
}

#[tokio::test]
async fn older_pages_of_the_longest_lines_fit_the_outbox_and_page_back_to_the_start() {
    // 40 lines of ~12 KB (480 KB) against an outbox of 256 KiB.
    let server = TestServer::start_with(Config {
        outbox_bytes: 256 * 1024,
        ..unlimited()
    })
    .await;
    let mut author = server.client_in(&["general"]).await;
    let seqs = say_long_lines(&mut author, 40).await;

    let mut reader = server.client_in(&["general"]).await;
    let budget = 256 * 1024 / 8 + 1024;
    let mut before = seqs[seqs.len() - 1] + 1;
    let mut got = Vec::new();
    loop {
        reader
            .send_msg(&ClientMsg::LoadOlder {
                room: None,
                before: Seq(before),
                limit: 500,
            })
            .await;
        let (size, lines, has_more) = loop {
            let Message::Text(text) = reader.recv_raw().await else {
                panic!("expected text");
            };
            match decode_server(text.as_str()).expect("decodes") {
                ServerMsg::Older(shared::server::Older {
                    lines, has_more, ..
                }) => break (text.len(), lines, has_more),
                ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
                other => panic!("expected older, got {other:?}"),
            }
        };
        assert!(size <= budget, "an older page of {size} bytes");
        assert!(!lines.is_empty(), "each page moves back");
        before = lines[0].seq.0;
        let mut page: Vec<u64> = lines.iter().map(|l| l.seq.0).collect();
        page.append(&mut got);
        got = page;
        if !has_more {
            break;
        }
    }
    assert_eq!(got, seqs, "every line once, in order");
}

#[tokio::test]
async fn the_member_list_comes_in_pages_that_fit_the_outbox() {
    // 400 members (~18 KB of list) against an outbox of 16 KiB; lists are pushed up to 1,000.
    let server = TestServer::start_with(Config {
        outbox_bytes: 16 * 1024,
        presence_list_max: 1_000,
        ..testkit::for_load()
    })
    .await;
    let mut ids = HashSet::new();
    let mut members = Vec::new();
    for _ in 0..400 {
        let client = server.client_in(&["general"]).await;
        ids.insert(client.id.clone());
        members.push(client);
    }
    let mut asker = server.client_in(&["general"]).await;
    ids.insert(asker.id.clone());

    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let offset = u32::try_from(listed.len()).expect("small");
        asker
            .send_msg(&ClientMsg::Members {
                room: "general".into(),
                offset: (offset > 0).then_some(offset),
            })
            .await;
        let (size, page, has_more) = loop {
            let Message::Text(text) = asker.recv_raw().await else {
                panic!("expected text");
            };
            match decode_server(text.as_str()).expect("decodes") {
                ServerMsg::Members(shared::server::Members {
                    members, has_more, ..
                }) => break (text.len(), members, has_more),
                ServerMsg::Typing(_) | ServerMsg::Presence(_) => {}
                other => panic!("expected members, got {other:?}"),
            }
        };
        assert!(
            size <= 16 * 1024 / 8 + 256,
            "a members page of {size} bytes"
        );
        pages += 1;
        listed.extend(page.into_iter().map(|m| m.id));
        if !has_more {
            break;
        }
    }
    assert!(pages > 1, "the list took {pages} page(s)");
    let unique: HashSet<_> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "nobody listed twice");
    assert_eq!(unique, ids, "everyone listed");

    // A newcomer's greeting leaves out a list that does not fit it (ask with `members`).
    let mut newcomer =
        Client::hello(&format!("ws://{}/ws", server.addr), &hello_general(None, 0)).await;
    let (size, joined) = raw_joined(&mut newcomer).await;
    assert!(size <= 16 * 1024 / 8 + 256, "the greeting is {size} bytes");
    let ServerMsg::Joined(shared::server::Joined {
        members, online, ..
    }) = joined
    else {
        unreachable!("raw_joined returns joined frames");
    };
    assert_eq!(members, None);
    assert_eq!(online, 402);
}

fn product(i: usize) -> NewProduct {
    NewProduct {
        title: format!("Producto {i}"),
        description: "d".repeat(shared::products::MAX_DESCRIPTION_CHARS),
        code: format!("P-{i}"),
        price: shared::Price(1.0),
        stock: 1,
    }
}

/// Adds `n` products of ~1.1 KB each over the WebSocket.
async fn fill_catalog(server: &TestServer, n: usize) {
    let mut clerk = server.client_in(&[]).await;
    for i in 0..n {
        clerk
            .send_msg(&ClientMsg::AddProduct {
                product: product(i),
            })
            .await;
        clerk
            .recv_skipping_live("product_added", |m| match m {
                ServerMsg::ProductAdded(_) => Picked::Found(()),
                other => Picked::Other(other),
            })
            .await;
    }
}

#[tokio::test]
async fn the_product_catalog_comes_in_pages_on_the_socket_and_over_http() {
    // 260 products (~290 KB) against an outbox of 64 KiB and HTTP pages of 256 KiB.
    let server = TestServer::start_with(Config {
        outbox_bytes: 64 * 1024,
        store: backend::Store::Memory,
        ..unlimited()
    })
    .await;
    fill_catalog(&server, 260).await;

    let mut watcher = server.client_in(&[]).await;
    watcher.send_msg(&ClientMsg::WatchProducts).await;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let (size, products, after, has_more) = loop {
            let Message::Text(text) = watcher.recv_raw().await else {
                panic!("expected text");
            };
            match decode_server(text.as_str()).expect("decodes") {
                ServerMsg::Products(shared::server::Products {
                    products,
                    after,
                    has_more,
                }) => break (text.len(), products, after, has_more),
                ServerMsg::Presence(_) => {}
                other => panic!("expected products, got {other:?}"),
            }
        };
        assert!(
            size <= 64 * 1024 / 8 + 256,
            "a products page of {size} bytes"
        );
        assert_eq!(after, ids.last().copied(), "each page says where it starts");
        pages += 1;
        ids.extend(products.iter().map(|p| p.id));
        if !has_more {
            break;
        }
        let last = *ids.last().expect("a page holds one product at least");
        watcher
            .send_msg(&ClientMsg::LoadProducts { after: last })
            .await;
    }
    assert!(pages > 1);
    assert_eq!(
        ids,
        (1..=260).collect::<Vec<u64>>(),
        "every product once, by id"
    );

    // Over HTTP: a page of at most 256 KiB, a `Link` to the next one.
    let mut path = "/api/products".to_owned();
    let mut http_ids = Vec::new();
    let mut http_pages = 0;
    loop {
        let response = request(server.addr, "GET", &path, &[], b"").await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(response.body.len() <= 256 * 1024);
        let page: Vec<Product> = serde_json::from_str(&response.body).expect("a product list");
        http_ids.extend(page.iter().map(|p| p.id));
        http_pages += 1;
        let Some(link) = response.header("link") else {
            break;
        };
        let next = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(url, rest)| {
                assert_eq!(rest, r#"; rel="next""#);
                url.to_owned()
            })
            .expect("a Link header: <url>; rel=\"next\"");
        path = next;
    }
    assert_eq!(http_pages, 2);
    assert_eq!(http_ids, ids);
    let bad = request(server.addr, "GET", "/api/products?after=x", &[], b"").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "bad_query");
}
