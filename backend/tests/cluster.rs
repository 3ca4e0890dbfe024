//! Several servers as one, on Redis (`--redis`): one order per room across nodes, typing and
//! presence across nodes, sessions and nonces shared, and no acked line lost or repeated
//! when a node dies or Redis restarts. Every test starts its own `redis-server` on a free
//! port with a temp directory (`appendfsync always`), and real servers on real ports.

use std::{collections::BTreeMap, path::Path, time::Duration};

use backend::Config;
use shared::{ChatLine, ClientMsg, ErrorCode, RoomName, Seq};
use testkit::{
    Client, RedisServer, ServerProcess, SessionClient, TIMEOUT, TestServer, assert_gapless_once,
    fresh_data_dir, room,
};

/// A node of the cluster on `redis`, in this process.
async fn node(redis: &RedisServer) -> TestServer {
    TestServer::start_with(Config {
        store: backend::Store::Redis(redis.url()),
        ..testkit::unlimited()
    })
    .await
}

/// A node of the cluster on `redis`, as its own process (to be killed).
async fn node_process(redis: &RedisServer) -> ServerProcess {
    let dir = fresh_data_dir();
    let dir = dir.to_str().expect("a UTF-8 path");
    let url = redis.url();
    let args = [
        "--redis",
        &url,
        "--data-dir",
        dir,
        "--dist",
        "no-page-needed",
    ];
    ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_backend")), &args).await
}

/// Reads until every client shows `lines` lines in each of `rooms` and has nothing
/// pending, reconnecting client `i` to `urls[i]` whenever its socket drops. All are pumped in
/// turn: one client's resends must not wait on another's reading.
async fn catch_up(
    clients: &mut [SessionClient],
    urls: &[String],
    rooms: &[RoomName],
    lines: usize,
) {
    let deadline = tokio::time::Instant::now() + TIMEOUT * 3;
    loop {
        let done = |c: &SessionClient| {
            c.session.pending().is_empty()
                && rooms
                    .iter()
                    .all(|r| c.shown.get(r).map_or(0, Vec::len) >= lines)
        };
        if clients.iter().all(done) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "caught up in time: {:?} shown, {:?} pending",
            clients
                .iter()
                .map(|c| rooms
                    .iter()
                    .map(|r| c.shown.get(r).map_or(0, Vec::len))
                    .collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            clients
                .iter()
                .map(|c| c.session.pending().len())
                .collect::<Vec<_>>()
        );
        for (c, url) in clients.iter_mut().zip(urls) {
            if !c.is_connected() {
                c.connect(url).await;
            }
            c.pump(Duration::from_millis(5)).await;
        }
    }
}

/// A room's whole history, as a newcomer to `url` is greeted with it.
async fn history(url: &str, name: &str) -> Vec<ChatLine> {
    let hello = ClientMsg::Hello {
        resume: None,
        rooms: Some(BTreeMap::from([(name.to_owned(), Seq(0))])),
        name: None,
        token: None,
    };
    let mut client = Client::hello(url, &hello).await;
    client.recv_joined().await.lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_give_every_client_the_same_gapless_order_in_every_room() {
    let redis = RedisServer::start().await;
    let (a, b) = (node(&redis).await, node(&redis).await);
    let rooms = [room("uno"), room("dos")];
    let mut tasks = Vec::new();
    for i in 0..6 {
        let url = if i < 3 { a.ws_url() } else { b.ws_url() };
        let rooms = rooms.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = SessionClient::new(&format!("c{i}"));
            for r in &rooms {
                c.join(r.clone()).await;
            }
            assert!(c.connect(&url).await, "client {i} connects");
            for n in 0..50 {
                c.send_in(rooms[n % 2].clone(), &format!("c{i}-{n}")).await;
                c.pump(Duration::from_millis(1)).await;
            }
            catch_up(std::slice::from_mut(&mut c), &[url], &rooms, 150).await;
            c
        }));
    }
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.expect("client task"));
    }
    for r in &rooms {
        let first = clients[0].shown[r].clone();
        assert_eq!(first.len(), 150, "6 clients × 25 lines in {r}");
        assert_gapless_once(&first);
        for (i, c) in clients.iter().enumerate() {
            assert_eq!(c.shown[r], first, "client {i} sees {r} in the same order");
        }
        // A newcomer on either node is greeted with the same history.
        assert_eq!(history(&a.ws_url(), r.as_str()).await, first);
        assert_eq!(history(&b.ws_url(), r.as_str()).await, first);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_presence_cross_nodes() {
    let redis = RedisServer::start().await;
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut ana = a.client_in(&["sala"]).await;
    let mut bea = b.client_in(&["sala"]).await;
    let both = ana.await_presence("sala", 2).await;
    let ids: Vec<_> = both
        .members
        .expect("a small room lists its members")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert!(ids.contains(&ana.id) && ids.contains(&bea.id), "{ids:?}");
    bea.await_presence("sala", 2).await;

    bea.typing_in("sala", "hola desde B").await;
    let seen = ana.recv_typing().await;
    assert_eq!(
        (seen.from, seen.text.as_str()),
        (bea.id.clone(), "hola desde B")
    );

    // A third member, on A, is greeted with the count of both nodes and B's typist.
    let mut cai = a.client_in(&["sala"]).await;
    cai.await_presence("sala", 3).await;
    bea.close().await;
    ana.await_presence("sala", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_made_on_one_node_resumes_on_another_and_a_resent_nonce_is_not_appended() {
    let redis = RedisServer::start().await;
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut on_a = a.client_in(&["general"]).await;
    on_a.send_with_nonce("una vez", "n-1").await;
    let seq = on_a.recv_ack_of("n-1").await;
    let (id, token) = (on_a.id.clone(), on_a.resume.clone());
    on_a.close().await;

    let (mut on_b, joined) = Client::resume(&b.ws_url(), &token, &[("general", seq)]).await;
    assert!(on_b.resumed, "the token made on A resumes on B");
    assert_eq!(on_b.id, id, "same id on B");
    assert!(joined[0].resumed && joined[0].lines.is_empty());
    on_b.send_with_nonce("una vez", "n-1").await;
    assert_eq!(on_b.recv_ack_of("n-1").await, seq, "acked again, same seq");

    let lines = history(&b.ws_url(), "general").await;
    assert_eq!(lines.len(), 1, "appended once: {lines:?}");
    assert_eq!(lines[0].text, "una vez");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_rotated_on_one_node_stops_working_on_the_other_when_its_grace_ends() {
    const GRACE: Duration = Duration::from_secs(2);
    let redis = RedisServer::start().await;
    let node = |redis: &RedisServer| {
        TestServer::start_with(Config {
            store: backend::Store::Redis(redis.url()),
            resume_grace: GRACE,
            ..testkit::unlimited()
        })
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    // Made on B, so B holds it in its own table.
    let on_b = b.client_in(&["general"]).await;
    let (id, token) = (on_b.id.clone(), on_b.resume.clone());
    on_b.close().await;
    // Rotated on A.
    let (on_a, _) = Client::resume(&a.ws_url(), &token, &[("general", 0)]).await;
    assert!(on_a.resumed && on_a.id == id);
    let rotated = tokio::time::Instant::now();
    on_a.close().await;
    // Once its grace is over, the old token resumes nothing on B either.
    tokio::time::sleep_until(rotated + GRACE + Duration::from_millis(300)).await;
    let (late, _) = Client::resume(&b.ws_url(), &token, &[("general", 0)]).await;
    assert!(!late.resumed, "B follows A's rotation");
    assert_ne!(late.id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_node_mid_stream_loses_no_acked_line_and_repeats_none() {
    let redis = RedisServer::start().await;
    let mut a = node_process(&redis).await;
    let b = node_process(&redis).await;
    let general = [RoomName::general()];

    // A watcher on B, and a member on A, in a room of their own: A's member must leave B's
    // count when A dies.
    let hello = |room: &str| ClientMsg::Hello {
        resume: None,
        rooms: Some(BTreeMap::from([(room.to_owned(), Seq(0))])),
        name: None,
        token: None,
    };
    let mut watcher = Client::hello(&b.ws_url(), &hello("vigia")).await;
    watcher.recv_joined().await;
    let mut on_a = Client::hello(&a.ws_url(), &hello("vigia")).await;
    on_a.recv_joined().await;
    watcher.await_presence("vigia", 2).await;

    let mut clients = Vec::new();
    for i in 0..4 {
        let mut c = SessionClient::new(&format!("k{i}"));
        let url = if i < 2 { a.ws_url() } else { b.ws_url() };
        assert!(c.connect(&url).await);
        clients.push(c);
    }
    let ids: Vec<_> = clients.iter().map(|c| c.session.id().cloned()).collect();
    let mut acked_before = Vec::new();
    for n in 0..40 {
        if n == 20 {
            acked_before = clients
                .iter()
                .flat_map(|c| c.acked.keys().cloned())
                .collect();
            a.signal("KILL");
            a.wait_exit(TIMEOUT).await;
        }
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(&format!("k{i}-{n}")).await;
            c.pump(Duration::from_millis(2)).await;
        }
    }
    assert!(!acked_before.is_empty(), "lines were acked before the kill");
    // A's clients reconnect through "the load balancer" to B.
    let to_b = vec![b.ws_url(); clients.len()];
    catch_up(&mut clients, &to_b, &general, 160).await;
    for (c, id) in clients.iter().zip(&ids) {
        assert_eq!(c.session.id(), id.as_ref(), "every client kept its id");
    }
    let lines = history(&b.ws_url(), "general").await;
    assert_eq!(lines.len(), 160, "4 clients × 40 lines, each once");
    assert_gapless_once(&lines);
    for c in &clients {
        assert_eq!(c.general(), lines, "every client shows the history, once");
    }
    let nonces: Vec<&str> = lines.iter().filter_map(|l| l.nonce.as_deref()).collect();
    for n in &acked_before {
        assert!(nonces.contains(&n.as_str()), "acked line {n} survived");
    }
    // A's member left B's count within a few heartbeats.
    watcher.await_presence("vigia", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_holds_one_typing_update_per_typist_and_joins_go_first_after_it() {
    let mut redis = RedisServer::start().await;
    let a = node(&redis).await;
    let mut typists = Vec::new();
    for _ in 0..3 {
        typists.push(a.client_in(&["sala"]).await);
    }
    redis.kill().await;
    // Thousands of keystrokes while Redis is gone.
    for i in 0..1_000 {
        for t in &mut typists {
            t.typing_in("sala", &format!("tecla {i}")).await;
        }
    }
    // Each connection handles its frames in order: the pong says its typing was handled.
    for t in &mut typists {
        t.send_msg(&ClientMsg::Ping).await;
        t.recv_skipping_live("pong", |m| match m {
            shared::ServerMsg::Pong => testkit::Picked::Found(()),
            other => testkit::Picked::Other(other),
        })
        .await;
    }
    let (_, metrics) = a.get("/metrics").await;
    let waiting = testkit::metric(&metrics, "charla_cluster_waiting").expect("the gauge");
    assert!(
        waiting <= 3.0 + 2.0,
        "3,000 keystrokes during the outage left {waiting} requests waiting"
    );
    // A join during the outage is greeted once Redis is back, ahead of the typing.
    typists[0]
        .send_msg(&ClientMsg::Join {
            room: "otra".into(),
        })
        .await;
    redis.restart().await;
    let joined = typists[0].recv_joined().await;
    assert_eq!(joined.room.as_str(), "otra");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_fails_part_way_acks_the_lines_that_made_it_and_refuses_only_the_rest() {
    let redis = RedisServer::start().await;
    // A room whose counter is broken: its append script fails, the other room's does not.
    let mut raw = redis::Client::open(redis.url())
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let () = redis::cmd("SET")
        .arg("charla:seq:roto")
        .arg("not a number")
        .query_async(&mut raw)
        .await
        .expect("SET");
    // A slow commit, so that the two lines below share one batch (one pipeline).
    let a = TestServer::start_with(Config {
        store: backend::Store::Redis(redis.url()),
        commit_stall: Some(Duration::from_millis(500)),
        ..testkit::unlimited()
    })
    .await;
    let mut client = a.client_in(&["ok", "roto"]).await;
    client.send_to("ok", "primera", "n-0").await;
    client.send_to("roto", "perdida", "n-r").await;
    client.send_to("ok", "llega", "n-o").await;
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    while acked.len() + refused.len() < 3 {
        match client.recv().await {
            shared::ServerMsg::Ack(shared::server::Ack { nonce, seq, .. }) => {
                acked.push((nonce, seq.0))
            }
            shared::ServerMsg::Error(shared::server::Error {
                code,
                nonce: Some(nonce),
                ..
            }) => {
                assert_eq!(code, ErrorCode::Unavailable);
                refused.push(nonce);
            }
            _ => {}
        }
    }
    acked.sort();
    assert_eq!(
        acked,
        [("n-0".to_owned(), 1), ("n-o".to_owned(), 2)],
        "the lines whose script ran are acked"
    );
    assert_eq!(refused, ["n-r"], "only the line that failed is refused");
    // Resent, the acked line is recognised, not appended again.
    client.send_to("ok", "llega", "n-o").await;
    assert_eq!(client.recv_ack_of("n-o").await, 2);
    let lines = history(&a.ws_url(), "ok").await;
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["primera", "llega"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_stream_loses_no_acked_line_and_refused_sends_go_out_once() {
    let mut redis = RedisServer::start().await;
    let (a, b) = (node(&redis).await, node(&redis).await);
    let general = [RoomName::general()];
    let urls = [a.ws_url(), b.ws_url()];
    let mut clients = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let mut c = SessionClient::new(&format!("r{i}"));
        assert!(c.connect(url).await);
        clients.push(c);
    }
    let mut acked_before = Vec::new();
    for n in 0..60 {
        if n == 20 {
            // Wait for the first 20 of each to be acked, then crash Redis.
            // (A line sent before its room greeted the sender comes back in the greeting,
            // which the session takes as its ack: count what is shown, not the acks.)
            catch_up(&mut clients, &urls, &general, 40).await;
            acked_before.extend(clients[0].general().iter().filter_map(|l| l.nonce.clone()));
            assert_eq!(acked_before.len(), 40, "all 40 acked before the crash");
            redis.kill().await;
        }
        if n == 30 {
            // A room nobody follows yet, joined during the outage: greeted once Redis is back.
            clients[1].join(room("durante")).await;
        }
        if n == 35 {
            redis.restart().await;
        }
        for c in &mut clients {
            c.send(&format!("line-{n}")).await;
            c.pump(Duration::from_millis(5)).await;
        }
    }
    catch_up(&mut clients, &urls, &general, 120).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !clients[1].shown.contains_key(&room("durante")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room joined during the outage was joined once Redis came back"
        );
        clients[1].pump(Duration::from_millis(50)).await;
    }
    for c in &clients {
        assert!(c.is_connected(), "pages stayed connected");
    }
    let unavailable: Vec<_> = clients
        .iter()
        .flat_map(|c| c.refused.iter())
        .filter(|(code, _)| *code == ErrorCode::Unavailable)
        .collect();
    assert!(
        !unavailable.is_empty(),
        "sends during the outage were refused with unavailable"
    );
    let lines = history(&a.ws_url(), "general").await;
    assert_eq!(lines.len(), 120, "2 clients × 60 lines, each once");
    assert_gapless_once(&lines);
    let nonces: Vec<&str> = lines.iter().filter_map(|l| l.nonce.as_deref()).collect();
    for n in &acked_before {
        assert!(nonces.contains(&n.as_str()), "acked line {n} survived");
    }
    for (_, nonce) in unavailable {
        assert_eq!(
            nonces.iter().filter(|n| *n == nonce).count(),
            1,
            "refused {nonce} went out once"
        );
    }
    for c in &clients {
        assert_eq!(c.general(), lines);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_sent_before_its_room_caught_up_is_acked_after_the_greeting() {
    let redis = RedisServer::start().await;
    let (a, b) = (node(&redis).await, node(&redis).await);
    // Lines in rooms B has never seen: a first joiner there waits while B catches up.
    let mut on_a = a.client_in(&["fresca", "fria"]).await;
    for n in 0..20 {
        on_a.send_to("fresca", &format!("antes-{n}"), &format!("a-{n}"))
            .await;
        on_a.send_to("fria", &format!("antes-{n}"), &format!("b-{n}"))
            .await;
    }
    on_a.recv_ack_of("b-19").await;

    // The `charla send` way: connect and send at once, without waiting for anything.
    let options = client::Options {
        rooms: vec![(room("fresca"), Seq(0))],
        ..client::Options::default()
    };
    let (cli, _events) = client::Client::connect(&b.url(), options)
        .await
        .expect("connects");
    let seq = tokio::time::timeout(TIMEOUT, cli.send(&room("fresca"), "desde charla"))
        .await
        .expect("acked in time")
        .expect("acked");
    assert_eq!(seq, Seq(21));

    // A raw client sends before any `joined`: its ack comes after its greeting.
    let hello = ClientMsg::Hello {
        resume: None,
        rooms: Some(BTreeMap::from([("fria".to_owned(), Seq(0))])),
        name: None,
        token: None,
    };
    let mut raw = Client::hello(&b.ws_url(), &hello).await;
    raw.send_to("fria", "enseguida", "n-1").await;
    let joined = raw.recv_joined().await;
    assert!(joined.lines.len() >= 20, "greeted with the room's history");
    assert_eq!(raw.recv_ack_of("n-1").await, 21);
    for name in ["fresca", "fria"] {
        let lines = history(&a.ws_url(), name).await;
        assert_eq!(lines.len(), 21);
        assert_gapless_once(&lines);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_spreads_fanout_over_two_nodes_and_every_line_reaches_every_client() {
    let redis = RedisServer::start().await;
    let (a, b) = (
        TestServer::start_with(Config {
            store: backend::Store::Redis(redis.url()),
            ..testkit::for_load()
        })
        .await,
        TestServer::start_with(Config {
            store: backend::Store::Redis(redis.url()),
            ..testkit::for_load()
        })
        .await,
    );
    let target = client::bench::Target {
        addr: a.addr,
        also: vec![b.addr],
        sources: vec!["127.0.0.1".parse().expect("ip")],
        in_flight: 16,
        transport: client::Transport::WebSocket,
    };
    let report = client::bench::fanout(
        &target,
        40,
        4,
        client::bench::Pace::Window(4),
        64,
        Duration::from_millis(500),
        &[std::process::id()],
    )
    .await
    .expect("fanout runs");
    assert_eq!(report.get("servers"), Some(2.0));
    assert!(report.get("lines acked").is_some_and(|n| n >= 4.0));
    // Senders and readers sit on both nodes: every line reaches all 40 clients.
    let deliveries = report.get("deliveries/s").expect("deliveries/s");
    let lines = report.get("lines/s").expect("lines/s");
    assert!(deliveries >= lines * 30.0, "{}", report.table());
}
