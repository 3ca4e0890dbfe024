//! One WebSocket connection: admission and upgrade here; then [`runtime`] (the connection's
//! one task: the greeting, then the loop), [`connection`] (an [`Arrival`] before its
//! welcome, a [`Connection`] after: its state and what every handler does with it),
//! [`dispatch`] (the one `match` on `ClientMsg`, the handlers, the welcome and sign-in),
//! [`write`] (batched writes), [`wire`] (what the loop needs of a socket: any WebSocket
//! stream, so the tests below run a connection over an in-memory pipe, with no server),
//! [`upgrade`] (the handshake) and [`echo`] (`/echo`, a second handler on the same loop).
//!
//! Before the upgrade, [`Admission`](crate::admission::Admission) checks the origin and the
//! connection limits. A v1 connection (`GET /ws`) is welcomed at once, in `general`; a v2
//! one (`GET /ws?v=2`) is welcomed once its first frame, the `hello`, has said which session
//! to resume and which rooms to rejoin (the token never travels in the URL). When its task
//! ends, the connection leaves its rooms and its place is freed.

mod connection;
mod dispatch;
pub(crate) mod echo;
mod runtime;
pub(crate) mod sse;
mod upgrade;
mod wire;
mod write;

use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{ConnectInfo, RawQuery, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) use connection::{Arrival, Connection, Hello};
pub(crate) use upgrade::{Upgrade, UpgradeRejection};

use crate::{admission::Permit, metrics::ReasonLabel, state::AppState};

/// The read buffer each connection starts with (tungstenite allocates it up front and
/// keeps it). 256 bytes hold a hello, a typing update or a short line; a bigger frame grows
/// it. Measured: 1 KiB → 256 B took 0.76 KB off every idle connection (docs/BENCHMARKS.md).
pub(crate) const READ_BUFFER_BYTES: usize = 256;

/// `/ws`'s read buffer: smaller still, since a chat connection mostly waits. tungstenite
/// reads a frame's header, then makes room for exactly its payload, so a bigger frame costs
/// one more read, not a failure; what stays allocated afterwards is about the last frame.
pub(crate) const WS_READ_BUFFER_BYTES: usize = 64;

/// How long a connection may take to deliver its close frame once it decided to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Which handshake a connection asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// `GET /ws`: welcomed at once, in `general`.
    V1,
    /// `GET /ws?v=2`: welcomed after its `hello`.
    V2,
}

impl Handshake {
    /// Reads `v=2` from the query string; anything else is v1.
    fn from_query(query: Option<&str>) -> Self {
        let v2 = query.is_some_and(|q| q.split('&').any(|pair| pair == "v=2"));
        if v2 { Handshake::V2 } else { Handshake::V1 }
    }
}

/// `GET /ws`: checks the origin and the connection limits (403 / 503 / 429 before any
/// upgrade), then upgrades and runs the connection. Frames over the size limit are refused by
/// the WebSocket layer before their payload is read.
pub(crate) async fn upgrade(
    ws: Upgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let handshake = Handshake::from_query(query.as_deref());
    if handshake == Handshake::V1 && app.auth.mode() == crate::auth::AuthMode::Required {
        // A v1 client cannot present a token (it has no `hello`): refused before the upgrade.
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            "this server requires sign-in: connect to /ws?v=2 and send a token in the hello",
        )
            .into_response();
    }
    let permit = match admit(&app, &headers, peer) {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    let limits = app.limits;
    // Small buffers: per-connection memory is what a server with ten thousand clients runs
    // out of first. The read buffer is allocated whole up front and grows only for a frame
    // larger than it, so it starts at what most frames need (a hello, a typing update).
    // tungstenite's write buffer carries only pings, pongs and the close: data frames are
    // written by `write` from the shared bytes.
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(0);
    ws.on_upgrade(config, move |socket| {
        run(socket, app, handshake, peer, permit)
    })
}

/// Checks a WebSocket upgrade's host, origin and connection limits (`/ws` and `/echo`
/// alike): a place for the connection, or the response that refuses it (403 / 503 / 429).
fn admit(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<Permit, Refused> {
    let admitted = app
        .admission
        .check_origin(headers)
        .and_then(|()| app.admission.admit(peer.ip()));
    admitted.map_err(|refusal| {
        tracing::info!(%peer, reason = refusal.label(), "refused a WebSocket upgrade");
        let reason = refusal.label();
        app.metrics
            .connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
        Refused(refusal)
    })
}

/// An upgrade refused before it happened; its response says why.
pub(crate) struct Refused(crate::admission::Refusal);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0.status(), self.0.message()).into_response()
    }
}

/// Runs one connection until the client leaves, the socket fails, or a close was written.
/// Not an `async fn`: the setup runs here, and the future returned keeps only what the
/// connection needs while it lives (every byte of it is held by every idle connection).
fn run<W: wire::Wire>(
    socket: W,
    app: AppState,
    handshake: Handshake,
    peer: SocketAddr,
    permit: Permit,
) -> impl Future<Output = ()> + Send + 'static {
    let conn = Arrival::new(&app, peer.ip());
    app.metrics.connections_accepted.inc();
    let key = conn.key();
    tracing::debug!(conn = key.0, ?handshake, "client connected");
    let heartbeat = write::Heartbeat::new(app.limits.heartbeat);
    let live = Box::new((socket, conn));
    let hub = app.hub.clone();
    async move {
        // The connection leaves its rooms when `serve` drops it (`Drop for Connection`).
        runtime::serve(live, handshake, heartbeat).await;
        let online = hub.disconnect(key);
        drop(permit);
        tracing::debug!(conn = key.0, online, "client disconnected");
    }
}

/// A connection's whole life (greeting, dispatch, writes, close) with no server around it:
/// the loop runs over an in-memory pipe, a WebSocket client on its other end.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use shared::{ClientMsg, ErrorCode, ServerMsg, decode_server, encode};
    use tokio::io::DuplexStream;
    use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};
    use tungstenite::Message;

    use super::*;
    use crate::{
        config::{Config, Store},
        settings::Settings,
        startup::Core,
    };

    type Client = WebSocketStream<DuplexStream>;

    /// The app's state over the memory store, as `serve` builds it (no port, no accept loop).
    fn app() -> (Core, AppState) {
        let config = Config {
            store: Store::Memory,
            ..Config::default()
        };
        let settings = Settings::from(&config);
        let core = Core::open(&settings).expect("opens in memory");
        let state = core.app_state(&settings, "127.0.0.1:0".parse().expect("an address"));
        (core, state)
    }

    /// A client connected to a connection task running `run`, as the upgrade would start it.
    async fn connect(app: &AppState, handshake: Handshake) -> Client {
        connect_task(app, handshake).await.0
    }

    /// The same, and the connection's task (it ends once the connection has left the hub).
    async fn connect_task(
        app: &AppState,
        handshake: Handshake,
    ) -> (Client, tokio::task::JoinHandle<()>) {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        let permit = app.admission.admit(peer.ip()).expect("a place");
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let task = tokio::spawn(run(server, app.clone(), handshake, peer, permit));
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (client, task)
    }

    async fn say(client: &mut Client, msg: &ClientMsg) {
        let text = encode(msg);
        client.send(Message::text(text)).await.expect("sent");
    }

    /// The next message from the server (pings are answered by the client's stream).
    async fn next(client: &mut Client) -> ServerMsg {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), client.next())
                .await
                .expect("a frame within 10 s")
                .expect("the connection is open")
                .expect("a frame");
            if let Message::Text(text) = frame {
                return decode_server(text.as_str()).expect("a server message");
            }
        }
    }

    /// The next message that `pick` accepts, skipping others (presence, typing…).
    async fn next_of<T>(client: &mut Client, pick: impl Fn(ServerMsg) -> Option<T>) -> T {
        loop {
            if let Some(found) = pick(next(client).await) {
                return found;
            }
        }
    }

    fn send(text: &str, nonce: &str) -> ClientMsg {
        ClientMsg::Send {
            room: None,
            text: text.into(),
            nonce: Some(nonce.into()),
        }
    }

    #[tokio::test]
    async fn two_connections_chat_without_a_server() {
        let (_core, app) = app();
        let mut ana = connect(&app, Handshake::V2).await;
        say(
            &mut ana,
            &ClientMsg::Hello {
                resume: None,
                rooms: None,
                name: None,
                token: None,
            },
        )
        .await;
        let welcome = next_of(&mut ana, |m| match m {
            ServerMsg::Welcome(w) => Some(w),
            _ => None,
        })
        .await;
        let mut bea = connect(&app, Handshake::V1).await;
        next_of(&mut bea, |m| {
            matches!(m, ServerMsg::Welcome(_)).then_some(())
        })
        .await;

        say(&mut ana, &send("hola", "n1")).await;
        let ack = next_of(&mut ana, |m| match m {
            ServerMsg::Ack(ack) => Some(ack),
            _ => None,
        })
        .await;
        assert_eq!((ack.nonce.as_str(), ack.room.as_str()), ("n1", "general"));
        let line = next_of(&mut bea, |m| match m {
            ServerMsg::Message(line) => Some(line),
            _ => None,
        })
        .await;
        assert_eq!(
            (line.seq, line.from, line.text.as_str()),
            (ack.seq, welcome.id, "hola")
        );
    }

    #[tokio::test]
    async fn a_bad_frame_gets_a_typed_error_and_the_connection_goes_on() {
        let (_core, app) = app();
        let mut ana = connect(&app, Handshake::V1).await;
        next_of(&mut ana, |m| {
            matches!(m, ServerMsg::Welcome(_)).then_some(())
        })
        .await;
        ana.send(Message::text("{not json")).await.expect("sent");
        let error = next_of(&mut ana, |m| match m {
            ServerMsg::Error(error) => Some(error),
            _ => None,
        })
        .await;
        assert_eq!(error.code, ErrorCode::BadJson);
        say(&mut ana, &send("still here", "n2")).await;
        let ack = next_of(&mut ana, |m| match m {
            ServerMsg::Ack(ack) => Some(ack),
            _ => None,
        })
        .await;
        assert_eq!(ack.nonce, "n2");
    }

    #[tokio::test]
    async fn the_clients_close_is_answered_and_frees_its_place() {
        let (core, app) = app();
        let (mut ana, task) = connect_task(&app, Handshake::V1).await;
        next_of(&mut ana, |m| {
            matches!(m, ServerMsg::Welcome(_)).then_some(())
        })
        .await;
        assert_eq!(core.hub.open_connections(), 1);
        ana.close(None).await.expect("close sent");
        // The server answers the close, then the stream ends.
        let mut answered = false;
        while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), ana.next())
            .await
            .expect("the server answers within 10 s")
        {
            answered |= matches!(frame, Ok(Message::Close(_)));
        }
        assert!(answered, "the server answered the close with its own");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the connection's task ends")
            .expect("without a panic");
        assert_eq!(core.hub.open_connections(), 0, "its place is free");
    }
}
