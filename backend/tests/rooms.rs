//! Rooms through real sockets: each room its own order, history, typing and presence; the
//! limits and their typed errors; resume across rooms and restarts; the v1 data migration.

use std::{collections::BTreeMap, time::Duration};

use backend::Config;
use shared::{ClientMsg, ErrorCode, RoomName, Seq, ServerMsg};
use testkit::{Client, Picked, TestServer, assert_gapless_once, fresh_data_dir, room, unlimited};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_two_rooms_fifty_lines_each_every_room_in_one_gapless_order() {
    const LINES: usize = 50;
    let server = TestServer::start_with(unlimited()).await;
    let mut senders = Vec::new();
    for _ in 0..5 {
        senders.push(server.client_in(&["alpha", "beta"]).await);
    }
    // Two watchers, each in one room only: they must never see the other room's lines.
    let mut only_alpha = server.client_in(&["alpha"]).await;
    let mut only_beta = server.client_in(&["beta"]).await;

    let mut tasks = Vec::new();
    for (n, mut client) in senders.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..LINES {
                client
                    .send_to("alpha", &format!("c{n} a{i}"), &format!("a-{i}"))
                    .await;
                client
                    .send_to("beta", &format!("c{n} b{i}"), &format!("b-{i}"))
                    .await;
            }
            let mut seen: BTreeMap<RoomName, Vec<shared::ChatLine>> = BTreeMap::new();
            while seen.values().map(Vec::len).sum::<usize>() < 5 * LINES * 2 {
                match client.recv().await {
                    ServerMsg::Message(line) => {
                        seen.entry(line.room.clone()).or_default().push(line)
                    }
                    ServerMsg::Ack(_) | ServerMsg::Presence(_) | ServerMsg::Typing(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            seen
        }));
    }
    let mut views = Vec::new();
    for task in tasks {
        views.push(task.await.expect("sender task"));
    }
    let alpha = &views[0][&room("alpha")];
    let beta = &views[0][&room("beta")];
    assert_eq!(alpha.len(), 5 * LINES);
    assert_eq!(beta.len(), 5 * LINES);
    assert_gapless_once(alpha);
    assert_gapless_once(beta);
    assert!(
        alpha
            .iter()
            .all(|l| l.room.as_str() == "alpha" && l.text.contains(" a"))
    );
    assert!(
        beta.iter()
            .all(|l| l.room.as_str() == "beta" && l.text.contains(" b"))
    );
    for view in &views {
        assert_eq!(&view[&room("alpha")], alpha, "every member sees one order");
        assert_eq!(&view[&room("beta")], beta, "every member sees one order");
    }
    for (watcher, expected) in [(&mut only_alpha, alpha), (&mut only_beta, beta)] {
        let mut got = Vec::new();
        while got.len() < expected.len() {
            got.push(watcher.recv_line().await);
        }
        assert_eq!(
            &got, expected,
            "a watcher sees its room, in order, and nothing else"
        );
        let rest = watcher.drain(Duration::from_millis(200), 1_000).await;
        assert!(
            rest.iter().all(|m| !matches!(m, ServerMsg::Message(_))),
            "no line of a room it is not in: {rest:?}"
        );
    }
}

#[tokio::test]
async fn join_leave_presence_and_typing_stay_in_their_room() {
    let server = TestServer::start().await;
    let mut ana = server.client_in(&["general", "dev"]).await;
    let mut ben = server.client_in(&["general"]).await;
    ana.await_presence("general", 2).await;

    // Ben joins dev: his joined carries the room as it is; Ana sees him arrive by name.
    let joined = ben.join("dev").await;
    assert_eq!(joined.room, room("dev"));
    assert_eq!(joined.online, 2);
    let names: Vec<String> = joined
        .members
        .expect("small rooms list their members")
        .iter()
        .map(|m| m.name.to_string())
        .collect();
    assert_eq!(names.len(), 2);
    let seen = ana.await_presence("dev", 2).await;
    let members = seen.members.expect("member list");
    assert!(
        members
            .iter()
            .any(|m| m.id == ben.id && Some(&m.name) == ben.name.as_ref())
    );

    // Typing in dev shows in dev only, for every member, typist included.
    ana.typing_in("dev", "hola dev").await;
    let ana_name = ana.name.clone();
    for client in [&mut ana, &mut ben] {
        let typing = client.recv_typing().await;
        assert_eq!(
            (typing.room.as_str(), typing.text.as_str()),
            ("dev", "hola dev")
        );
        assert_eq!(typing.name, ana_name);
    }
    // A newcomer to dev learns who is typing from its joined.
    let mut cid = server.client_in(&["general"]).await;
    let joined = cid.join("dev").await;
    assert_eq!(joined.typing.len(), 1);
    assert_eq!(joined.typing[0].text, "hola dev");
    // Ana leaves dev: her text is cleared there and the count drops.
    ana.send_msg(&ClientMsg::Leave { room: "dev".into() }).await;
    loop {
        match ana.recv().await {
            ServerMsg::Left(shared::server::Left { room: left, .. }) => {
                assert_eq!(left.as_str(), "dev");
                break;
            }
            ServerMsg::Presence(_) | ServerMsg::Typing(_) => {}
            other => panic!("expected left, got {other:?}"),
        }
    }
    let cleared = ben.recv_typing().await;
    assert_eq!(
        (cleared.room.as_str(), cleared.text.as_str(), &cleared.from),
        ("dev", "", &ana.id)
    );
    ben.await_presence("dev", 2).await;
    // Now she is not in dev: sending there is refused, with the room and the nonce.
    ana.send_to("dev", "hi?", "n-1").await;
    let refused = ana.expect_error(ErrorCode::NotJoined).await;
    assert_eq!(refused.room, Some(room("dev")));
    assert_eq!(refused.nonce.as_deref(), Some("n-1"));
    // Nothing she typed in general ever showed in dev, and nothing of dev shows in general.
    ben.typing_in("general", "only general").await;
    let typing = ana.recv_typing().await;
    assert_eq!(typing.room.as_str(), "general");
}

#[tokio::test]
async fn presence_is_coalesced_to_a_few_frames_a_second_per_room() {
    let server = TestServer::start_with(Config {
        max_connections_per_ip: 1_000,
        ..unlimited()
    })
    .await;
    let mut watcher = server.client_in(&["storm"]).await;
    let started = std::time::Instant::now();
    let mut joiners = Vec::new();
    for _ in 0..60 {
        joiners.push(server.client_in(&["storm"]).await);
    }
    // Read until the last count arrives, then a little longer for anything late.
    let mut frames = 0;
    loop {
        let seen = watcher.recv_presence().await;
        frames += 1;
        if seen.online == 61 {
            break;
        }
    }
    frames += watcher
        .drain(Duration::from_millis(600), 100)
        .await
        .iter()
        .filter(|m| matches!(m, ServerMsg::Presence(_)))
        .count();
    let secs = started.elapsed().as_secs_f64();
    let bound = (secs / 0.25).ceil() as usize + 1;
    assert!(
        frames <= bound,
        "{frames} presence frames in {secs:.2} s for 60 joins: more than 4 a second"
    );
    assert!(frames >= 1);
}

#[tokio::test]
async fn every_room_limit_has_its_typed_error() {
    let server = TestServer::start_with(Config {
        max_rooms_per_conn: 2,
        max_rooms: 3, // general, and two more
        presence_list_max: 1,
        ..Config::default()
    })
    .await;
    let mut ana = server.client_in(&["general"]).await;
    for bad in ["Dev", "a b", "", &"x".repeat(33), "ñ"] {
        ana.send_msg(&ClientMsg::Join { room: bad.into() }).await;
        ana.expect_error(ErrorCode::BadRoom).await;
    }
    ana.send_to("Dev", "x", "n-bad").await;
    let seen = ana.expect_error(ErrorCode::BadRoom).await;
    assert_eq!(seen.nonce.as_deref(), Some("n-bad"));
    ana.join("one").await;
    ana.send_msg(&ClientMsg::Join { room: "two".into() }).await;
    let seen = ana.expect_error(ErrorCode::TooManyRooms).await;
    assert_eq!(seen.room, Some(room("two")));
    // Rejoining a room one is in is not a new room.
    assert_eq!(ana.join("one").await.room, room("one"));

    let mut ben = server.client_in(&["two"]).await; // the third room
    ben.send_msg(&ClientMsg::Join {
        room: "three".into(),
    })
    .await;
    let seen = ben.expect_error(ErrorCode::RoomsFull).await;
    assert_eq!(seen.room, Some(room("three")));
    // An existing room can still be joined, and rooms empty of people and lines go away.
    ben.send_msg(&ClientMsg::Leave { room: "two".into() }).await;
    assert!(matches!(ben.recv().await, ServerMsg::Left(_)));
    assert_eq!(ben.join("three").await.room, room("three"));

    for bad in ["", "   ", &"n".repeat(33), "a\nb"] {
        ben.send_msg(&ClientMsg::SetName { name: bad.into() }).await;
        ben.expect_error(ErrorCode::BadName).await;
    }
    ben.send_msg(&ClientMsg::Hello {
        resume: None,
        rooms: None,
        name: None,
        token: None,
    })
    .await;
    ben.expect_error(ErrorCode::AlreadyWelcomed).await;
    ben.send_msg(&ClientMsg::Typing {
        room: Some("nowhere".into()),
        text: "x".into(),
    })
    .await;
    ben.expect_error(ErrorCode::NotJoined).await;

    // Over --presence-list-max, presence carries the count only; the list is on request.
    let mut cid = server.client_in(&["general"]).await;
    let seen = ana.await_presence("general", 2).await;
    assert_eq!(seen.members, None);
    ana.send_msg(&ClientMsg::Members {
        room: "general".into(),
        offset: None,
    })
    .await;
    let (r, members) = ana
        .recv_skipping_live("members", |m| match m {
            ServerMsg::Members(shared::server::Members {
                room,
                members,
                has_more: false,
                offset: None,
            }) => Picked::Found((room, members)),
            other => Picked::Other(other),
        })
        .await;
    assert_eq!(r.as_str(), "general");
    let mut ids: Vec<_> = members.into_iter().map(|m| m.id).collect();
    ids.sort();
    let mut expected = vec![ana.id.clone(), cid.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    cid.send_msg(&ClientMsg::Ping).await;
    cid.recv_skipping_live("pong", |m| {
        if m == ServerMsg::Pong {
            Picked::Found(())
        } else {
            Picked::Other(m)
        }
    })
    .await;
}

#[tokio::test]
async fn names_are_set_trimmed_carried_on_lines_and_shown_in_presence() {
    let server = TestServer::start().await;
    let mut ana = server.client_in(&["general"]).await;
    let mut ben = server.client_in(&["general"]).await;
    assert!(
        ana.name
            .as_ref()
            .is_some_and(|n| n.as_str().starts_with("guest-"))
    );
    ana.send_msg(&ClientMsg::SetName {
        name: "  <b>Ana</b>  ".into(),
    })
    .await;
    let set = ana
        .recv_skipping_live("name_set", |m| match m {
            ServerMsg::NameSet(shared::server::NameSet { name }) => Picked::Found(name),
            other => Picked::Other(other),
        })
        .await;
    assert_eq!(set.as_str(), "<b>Ana</b>");
    loop {
        let seen = ben.recv_presence().await;
        let members = seen.members.expect("members");
        if members
            .iter()
            .any(|m| m.id == ana.id && m.name.as_str() == "<b>Ana</b>")
        {
            break;
        }
    }
    ana.send_with_nonce("hola", "n-1").await;
    assert_eq!(ana.recv_ack().await, ("n-1".to_owned(), 1));
    assert_eq!(ana.recv_line().await.text, "hola");
    let line = ben.recv_line().await;
    assert_eq!(
        line.name.map(|n| n.to_string()).as_deref(),
        Some("<b>Ana</b>")
    );
    // Two people may share a name; their ids tell them apart.
    ben.send_msg(&ClientMsg::SetName {
        name: "<b>Ana</b>".into(),
    })
    .await;
    ben.send_line("me too").await;
    let line = ana.recv_line().await;
    assert_eq!(line.name.as_ref().map(|n| n.as_str()), Some("<b>Ana</b>"));
    assert_eq!(line.from, ben.id);
    assert_ne!(ben.id, ana.id);
}

#[tokio::test]
async fn a_hello_resumes_two_rooms_with_exactly_the_missed_lines_after_a_restart() {
    let dir = fresh_data_dir();
    let config = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        ..Config::default()
    };
    let server = TestServer::start_with(config()).await;
    let hello = ClientMsg::Hello {
        resume: None,
        rooms: Some(BTreeMap::from([
            ("alpha".into(), Seq(0)),
            ("beta".into(), Seq(0)),
        ])),
        name: Some("Ana".into()),
        token: None,
    };
    let mut ana = Client::hello(&server.ws_url(), &hello).await;
    ana.recv_joined().await;
    ana.recv_joined().await;
    for (r, n) in [("alpha", 3), ("beta", 2)] {
        for i in 1..=n {
            ana.send_to(r, &format!("{r} {i}"), &format!("{r}-{i}"))
                .await;
            ana.recv_ack().await;
            ana.recv_line().await;
        }
    }
    let (token, id) = (ana.resume.clone(), ana.id.clone());
    ana.close().await;
    server.stop().await;

    let server = TestServer::start_with(config()).await;
    let mut ben = server.client_in(&["alpha", "beta"]).await;
    for (r, n) in [("alpha", 2), ("beta", 3)] {
        for i in 1..=n {
            ben.send_to(r, &format!("{r} missed {i}"), &format!("m-{r}-{i}"))
                .await;
            ben.recv_ack().await;
            ben.recv_line().await;
        }
    }
    let (ana, joined) =
        Client::resume(&server.ws_url(), &token, &[("alpha", 3), ("beta", 2)]).await;
    assert_eq!(ana.id, id, "same id after the restart");
    assert!(ana.resumed);
    assert_eq!(
        ana.name.as_ref().map(|n| n.as_str()),
        Some("Ana"),
        "and the same name"
    );
    let got: Vec<(String, Vec<u64>, bool)> = joined
        .iter()
        .map(|j| {
            (
                j.room.to_string(),
                j.lines.iter().map(|l| l.seq.0).collect(),
                j.resumed,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("alpha".to_owned(), vec![4, 5], true),
            ("beta".to_owned(), vec![3, 4, 5], true)
        ],
        "exactly the missed lines of each room"
    );
    // And the nonces accepted before the restart are remembered per room.
    let mut ana = ana;
    ana.send_to("alpha", "alpha 1", "alpha-1").await;
    assert_eq!(ana.recv_ack().await, ("alpha-1".to_owned(), 1));
}

#[tokio::test]
async fn a_data_directory_from_the_first_release_opens_with_its_lines_in_general() {
    // Made by the v1 server (before rooms): three lines and one session.
    let dir = fresh_data_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.sqlite3"),
        dir.join("charla.sqlite3"),
    )
    .expect("copy the fixture");
    let config = || Config {
        store: backend::Store::Sqlite(dir.clone()),
        // Its lines are older than the default retention: kept here, this is about the
        // upgrade (a_quiet_rooms_history_expires_from_memory_and_from_the_file is about
        // retention).
        room_retention: std::time::Duration::ZERO,
        ..Config::default()
    };
    for _restart in 0..2 {
        let server = TestServer::start_with(config()).await;
        let (mut old, joined) = Client::resume(
            &server.ws_url(),
            "ibUnFdbwNW-tsYJlmEhsIA",
            &[("general", 0)],
        )
        .await;
        assert!(old.resumed, "a v1 session still resumes");
        assert_eq!(old.id.as_str(), "YiB4-ODXZ9G8kV-n");
        let texts: Vec<&str> = joined[0].lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            &texts[..3],
            [
                "línea 1 <b>v1</b>",
                "línea 2 <b>v1</b>",
                "línea 3 <b>v1</b>"
            ]
        );
        assert!(
            joined[0]
                .lines
                .iter()
                .all(|l| l.room == RoomName::general())
        );
        assert_gapless_once(&joined[0].lines);
        // A v1 nonce is still deduplicated; a new line continues the seq.
        old.send_with_nonce("línea 2 <b>v1</b>", "fixture-2").await;
        assert_eq!(old.recv_ack().await, ("fixture-2".to_owned(), 2));
        old.send_with_nonce(
            "after the upgrade",
            &format!("up-{}", joined[0].lines.len()),
        )
        .await;
        let (_, seq) = old.recv_ack().await;
        assert_eq!(seq, joined[0].lines.len() as u64 + 1);
        server.stop().await;
    }
}
