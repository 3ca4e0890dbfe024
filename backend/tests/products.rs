//! The product API and the live product list, through real HTTP requests and real
//! WebSocket clients: every status code, the broadcast of every change to every watcher
//! (whoever made it), and products surviving a restart in SQLite.

#![allow(missing_docs)]

use serde_json::json;
use shared::{ClientMsg, ErrorCode, NewProduct, Price, Problem, Product, ProductField, ServerMsg};
use testkit::{Client, HttpResponse, TestServer, request};

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn post(server: &TestServer, body: &serde_json::Value) -> HttpResponse {
    request(
        server.addr,
        "POST",
        "/api/products",
        &[JSON],
        body.to_string().as_bytes(),
    )
    .await
}

fn mate(code: &str) -> serde_json::Value {
    json!({"title": "Mate", "description": "Calabaza y bombilla", "code": code,
           "price": 12.5, "stock": 3})
}

async fn list(server: &TestServer) -> Vec<Product> {
    let response = request(server.addr, "GET", "/api/products", &[], b"").await;
    assert_eq!(response.status, 200);
    serde_json::from_str(&response.body).expect("a product list")
}

/// A client watching the products: returns it and the list it was sent.
async fn watcher(server: &TestServer) -> (Client, Vec<Product>) {
    let mut client = server.client_in(&["general"]).await;
    client.send_msg(&ClientMsg::WatchProducts).await;
    loop {
        match client.recv().await {
            ServerMsg::Products(shared::server::Products { products, .. }) => {
                return (client, products);
            }
            ServerMsg::Presence(_) => {}
            other => panic!("expected the product list, got {other:?}"),
        }
    }
}

/// The next product change, skipping presence.
async fn next_change(client: &mut Client) -> ServerMsg {
    loop {
        match client.recv().await {
            ServerMsg::Presence(_) => {}
            other => return other,
        }
    }
}

#[tokio::test]
async fn every_status_code_of_the_api() {
    let server = TestServer::start().await;
    assert!(list(&server).await.is_empty());

    let created = post(&server, &mate("MATE-01")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let product: Product = serde_json::from_str(&created.body).expect("the product");
    assert_eq!(
        (product.title.as_str(), product.price, product.stock),
        ("Mate", Price(12.5), 3)
    );
    assert_eq!(
        created.header("location"),
        Some(format!("/api/products/{}", product.id).as_str())
    );
    assert_eq!(list(&server).await, vec![product.clone()]);

    // The same code again: 409, naming the field.
    let taken = post(&server, &mate("MATE-01")).await;
    assert_eq!(taken.status, 409);
    assert_eq!(taken.json()["errors"][0]["field"], "code");
    assert_eq!(taken.json()["errors"][0]["problem"], "taken");

    // Every broken field at once: 400.
    let bad = post(
        &server,
        &json!({"title": " ", "code": "MATE 02", "price": -1, "stock": 2.5}),
    )
    .await;
    assert_eq!(bad.status, 400);
    let problems: Vec<(String, String)> = bad.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().expect("field").to_owned(),
                e["problem"].as_str().expect("problem").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("title", "blank"),
        ("description", "missing"),
        ("code", "bad_chars"),
        ("price", "negative"),
        ("stock", "not_whole"),
    ];
    assert_eq!(
        problems,
        expected
            .iter()
            .map(|(f, p)| ((*f).to_owned(), (*p).to_owned()))
            .collect::<Vec<_>>()
    );
    // Zero is a price and a stock.
    let free = post(
        &server,
        &json!({"title": "Regalo", "description": "Gratis", "code": "free", "price": 0, "stock": 0}),
    )
    .await;
    assert_eq!(free.status, 201);

    // Not JSON: 400; not declared as JSON: 415; too big: 413.
    let not_json = request(server.addr, "POST", "/api/products", &[JSON], b"{title").await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["error"], "bad_json");
    let form = request(
        server.addr,
        "POST",
        "/api/products",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"title=x",
    )
    .await;
    assert_eq!(form.status, 415);
    let huge = json!({"title": "x".repeat(20_000)}).to_string();
    let too_big = request(
        server.addr,
        "POST",
        "/api/products",
        &[JSON],
        huge.as_bytes(),
    )
    .await;
    assert_eq!(too_big.status, 413);

    // Delete: 204, then 404; an id that is not a number: 404.
    let path = format!("/api/products/{}", product.id);
    assert_eq!(
        request(server.addr, "DELETE", &path, &[], b"").await.status,
        204
    );
    let again = request(server.addr, "DELETE", &path, &[], b"").await;
    assert_eq!(again.status, 404);
    assert_eq!(again.json()["error"], "not_found");
    let nan = request(server.addr, "DELETE", "/api/products/abc", &[], b"").await;
    assert_eq!(nan.status, 404);
    assert_eq!(list(&server).await.len(), 1);

    // A page from another origin may not write.
    let foreign = request(
        server.addr,
        "POST",
        "/api/products",
        &[JSON, ("Origin", "http://evil.example")],
        mate("EVIL").to_string().as_bytes(),
    )
    .await;
    assert_eq!(foreign.status, 403);
    // Who may write is checked before the body is read: a big body from a foreign page is
    // refused as foreign.
    let foreign_big = request(
        server.addr,
        "POST",
        "/api/products",
        &[JSON, ("Origin", "http://evil.example")],
        huge.as_bytes(),
    )
    .await;
    assert_eq!(foreign_big.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn writes_over_the_rate_get_429() {
    let server = TestServer::start_with(backend::Config {
        ip_send_rate: 1,
        ip_send_burst: 3,
        ..backend::Config::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(post(&server, &mate(&format!("c{i}"))).await.status);
    }
    assert_eq!(statuses, [201, 201, 201, 429, 429]);
    server.stop().await;
}

#[tokio::test]
async fn a_change_from_the_api_or_a_page_reaches_every_watcher() {
    let server = TestServer::start().await;
    let (mut a, list_a) = watcher(&server).await;
    let (mut b, list_b) = watcher(&server).await;
    assert!(list_a.is_empty() && list_b.is_empty());

    let created = post(&server, &mate("MATE-01")).await;
    assert_eq!(created.status, 201);
    let product: Product = serde_json::from_str(&created.body).expect("product");
    for client in [&mut a, &mut b] {
        assert_eq!(
            next_change(client).await,
            ServerMsg::ProductAdded(shared::server::ProductAdded {
                product: product.clone()
            })
        );
    }

    // Deleted from one page (over its WebSocket): gone from the other.
    a.send_msg(&ClientMsg::DeleteProduct { id: product.id })
        .await;
    for client in [&mut a, &mut b] {
        assert_eq!(
            next_change(client).await,
            ServerMsg::ProductRemoved(shared::server::ProductRemoved { id: product.id })
        );
    }
    a.send_msg(&ClientMsg::DeleteProduct { id: product.id })
        .await;
    a.expect_error(ErrorCode::NotFound).await;

    // Created from a page's form (over its WebSocket): every watcher, once; the HTTP list
    // agrees.
    let new = NewProduct {
        title: "Yerba".into(),
        description: "1 kg".into(),
        code: "YERBA".into(),
        price: Price(4.75),
        stock: 10,
    };
    b.send_msg(&ClientMsg::AddProduct {
        product: new.clone(),
    })
    .await;
    let mut seen = Vec::new();
    for client in [&mut a, &mut b] {
        match next_change(client).await {
            ServerMsg::ProductAdded(shared::server::ProductAdded { product }) => seen.push(product),
            other => panic!("expected product_added, got {other:?}"),
        }
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(list(&server).await, vec![seen[0].clone()]);

    // A refused form gets every field's problem; nobody else hears of it.
    b.send_msg(&ClientMsg::AddProduct { product: new }).await;
    match next_change(&mut b).await {
        ServerMsg::ProductRefused(shared::server::ProductRefused { code, errors }) => {
            assert_eq!(code, "YERBA");
            assert_eq!(
                (errors[0].field, errors[0].problem),
                (ProductField::Code, Problem::Taken)
            );
        }
        other => panic!("expected product_refused, got {other:?}"),
    }
    a.send_msg(&ClientMsg::Echo { text: "m".into() }).await;
    assert_eq!(
        next_change(&mut a).await,
        ServerMsg::Echo(shared::server::Echo { text: "m".into() }),
        "the refusal went to its sender only"
    );

    // Not watching any more: no changes.
    a.send_msg(&ClientMsg::UnwatchProducts).await;
    let _ = post(&server, &mate("OTRO")).await;
    a.send_msg(&ClientMsg::Echo { text: "n".into() }).await;
    assert_eq!(
        next_change(&mut a).await,
        ServerMsg::Echo(shared::server::Echo { text: "n".into() })
    );
    assert!(matches!(
        next_change(&mut b).await,
        ServerMsg::ProductAdded(_)
    ));
    server.stop().await;
}

#[tokio::test]
async fn a_page_that_does_not_watch_still_hears_of_its_own_product() {
    let server = TestServer::start().await;
    let mut client = server.client_in(&["general"]).await;
    client
        .send_msg(&ClientMsg::AddProduct {
            product: NewProduct {
                title: "Termo".into(),
                description: "1 l".into(),
                code: "TERMO".into(),
                price: Price(30.0),
                stock: 1,
            },
        })
        .await;
    match next_change(&mut client).await {
        ServerMsg::ProductAdded(shared::server::ProductAdded { product }) => {
            assert_eq!(product.code, "TERMO")
        }
        other => panic!("expected product_added, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn products_survive_a_restart_in_sqlite_in_the_same_order() {
    let server = TestServer::start().await;
    for code in ["b", "a", "c"] {
        assert_eq!(post(&server, &mate(code)).await.status, 201);
    }
    let before = list(&server).await;
    let codes: Vec<&str> = before.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["b", "a", "c"], "creation order, not code order");
    let data_dir = server.data_dir.clone();
    server.stop().await;
    let server = TestServer::start_with(backend::Config {
        store: backend::Store::Sqlite(data_dir),
        ..backend::Config::default()
    })
    .await;
    assert_eq!(list(&server).await, before);
    let (_, watched) = watcher(&server).await;
    assert_eq!(watched, before, "the page's list and the API's agree");
    server.stop().await;
}
