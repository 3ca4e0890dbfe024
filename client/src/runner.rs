//! The background task that owns the socket and the session: it connects, says `hello`,
//! turns server messages into [`Event`]s and acks, reconnects with backoff (resuming the
//! session and resending what is unacknowledged), and keeps the sign-in fresh — asking the
//! token source for a new token on `token_expiring` and before a reconnection, and stopping
//! for good after a close with 4001 or 4003.
//!
//! Where a WebSocket cannot open it falls back to the SSE transport ([`crate::sse`]): at
//! once when the first WebSocket is refused by something in the way (an HTTP answer but
//! 401, a response that is not an upgrade), and after [`FALL_BACK_AFTER`] connections in a
//! row end before their welcome. On SSE it tries a WebSocket every [`UPGRADE_EVERY`]; once
//! one opens, the SSE transport is ended and the session resumes on the WebSocket at once,
//! its unacknowledged lines resent (the server appends each nonce once).

use std::{
    collections::HashMap,
    ops::ControlFlow::{self, Break, Continue},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use shared::{
    ClientMsg, ClientSession, ErrorCode, RoomName, Seq, ServerMsg, decode_server, encode,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{self, Message},
};

use crate::{
    CLOSE_TOKEN_REFUSED, CLOSE_USER_DISCONNECTED, Command, Event, PING_EVERY, SendError, SignedOut,
    TOKEN_FRESH_FOR, TOKEN_RETRY, TOKEN_RETRY_MIN, TokenSource, Transport,
    apply::{Applied, LineFate, apply},
    now_ms, refuses_the_token,
    sse::{Incoming, SseSocket},
    token, unit, ws_config,
};

/// After this many connections in a row that end before their welcome, the runner tries
/// the other transport.
pub const FALL_BACK_AFTER: u32 = 2;
/// How often a session on the SSE transport tries to move back to a WebSocket.
pub const UPGRADE_EVERY: Duration = Duration::from_secs(5);

/// Starts the task for a session that is ready to say `hello`; `welcomed` hears of the first
/// welcome, or of why there was none.
pub(crate) fn start(
    url: String,
    session: ClientSession,
    source: Option<TokenSource>,
    events: mpsc::UnboundedSender<Event>,
    welcomed: oneshot::Sender<Result<(), NotWelcomed>>,
    commands: mpsc::UnboundedReceiver<Command>,
) {
    let (tokens, tokens_rx) = mpsc::unbounded_channel();
    let runner = Runner {
        url,
        session,
        acks: HashMap::new(),
        events,
        welcomed: Some(welcomed),
        source,
        tokens,
        fetching: false,
        expires: None,
        retry_at: None,
        connection: 0,
        welcomed_here: false,
        refused: None,
        transport: Transport::WebSocket,
        announced: None,
        failures: 0,
        upgraded: None,
    };
    tokio::spawn(runner.run(commands, tokens_rx));
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The background task that owns the socket and the session.
pub(crate) struct Runner {
    url: String,
    session: ClientSession,
    /// Who waits for which nonce's ack.
    acks: HashMap<String, oneshot::Sender<Result<Seq, SendError>>>,
    events: mpsc::UnboundedSender<Event>,
    /// Told of the first welcome (or of why there was none).
    welcomed: Option<oneshot::Sender<Result<(), NotWelcomed>>>,
    /// Where new sign-in tokens come from (none: a guest).
    source: Option<TokenSource>,
    /// Where a token fetch running beside the connection reports to.
    tokens: mpsc::UnboundedSender<Fetched>,
    /// Whether a fetch is running (one at a time).
    fetching: bool,
    /// When the current token expires, while the server waits for a `refresh`.
    expires: Option<tokio::time::Instant>,
    /// When to ask the token source again, after it gave no new token.
    retry_at: Option<tokio::time::Instant>,
    /// The number of the current connection: a fetch started on an earlier one is stale.
    connection: u64,
    /// Whether the current connection was welcomed.
    welcomed_here: bool,
    /// The token refusal the current connection got (a close with 4001 follows it).
    refused: Option<(ErrorCode, String)>,
    /// The transport the next connection uses.
    transport: Transport,
    /// The transport last told to the events' reader.
    announced: Option<Transport>,
    /// Connections in a row that ended before their welcome.
    failures: u32,
    /// A WebSocket that opened beside the SSE transport, for the next connection.
    upgraded: Option<Box<Socket>>,
}

/// One connection, on either transport, its `hello` sent.
enum Conn {
    Ws(Box<Socket>),
    Sse(SseSocket),
}

/// What came in on a connection.
enum Said {
    Text(String),
    /// Closed by the server, with its code and reason (none: no close frame's code).
    Close(Option<(u16, String)>),
    Ended,
    /// Anything else (a WebSocket's own pings, binary frames).
    Other,
}

impl Conn {
    async fn send(&mut self, msg: &ClientMsg) -> bool {
        match self {
            Conn::Ws(ws) => ws.send(Message::text(encode(msg))).await.is_ok(),
            Conn::Sse(sse) => sse.send(encode(msg)),
        }
    }

    async fn next(&mut self) -> Said {
        match self {
            Conn::Ws(ws) => match ws.next().await {
                Some(Ok(Message::Text(text))) => Said::Text(text.as_str().to_owned()),
                Some(Ok(Message::Close(frame))) => Said::Close(
                    frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
                ),
                None | Some(Err(_)) => Said::Ended,
                Some(Ok(_)) => Said::Other,
            },
            Conn::Sse(sse) => match sse.next().await {
                Incoming::Text(text) => Said::Text(text),
                Incoming::Close(code, reason) => Said::Close(Some((code, reason))),
                Incoming::Ended => Said::Ended,
            },
        }
    }

    /// Closes it (a close frame, or the transport's `DELETE`), within `within`.
    async fn close(&mut self, within: Duration) {
        match self {
            Conn::Ws(ws) => {
                let _ = tokio::time::timeout(within, ws.as_mut().close(None)).await;
            }
            Conn::Sse(sse) => sse.close(within).await,
        }
    }
}

/// Why no connection opened.
enum NotOpened {
    /// The sign-in was refused before the upgrade.
    SignedOut(SignedOut),
    /// It could not open; `switch`: something in the way refused the WebSocket, so the
    /// other transport is worth trying at once.
    Failed { why: String, switch: bool },
}

/// A token fetch's result, for the connection it was started on.
struct Fetched {
    connection: u64,
    token: Result<String, String>,
}

/// Why the first connection was not welcomed.
pub(crate) enum NotWelcomed {
    Unreachable(String),
    SignedOut(SignedOut),
}

/// How one connection ended.
enum Ended {
    /// Dropped: reconnect.
    Dropped,
    /// A WebSocket opened beside the SSE transport, which has been ended: resume on it now.
    Upgrade(Box<Socket>),
    /// Closed by the user: stop.
    Closed,
    /// The server refused the token or disconnected the user: stop, unless a fresh token
    /// can replace an expired one.
    SignedOut(SignedOut),
}

/// The sign-in refusal an HTTP status before the upgrade means (401 under `--auth
/// required` for a version 1 `/ws`, or from a proxy in front of the server).
fn refused_upgrade(err: &tungstenite::Error) -> Option<SignedOut> {
    match err {
        tungstenite::Error::Http(response) if response.status().as_u16() == 401 => {
            Some(SignedOut::Refused {
                code: ErrorCode::AuthRequired,
                message: "the server answered 401 Unauthorized: sign in with a token".into(),
            })
        }
        _ => None,
    }
}

/// Whether a WebSocket was refused by something that answered HTTP but would not upgrade
/// (a proxy that strips `Upgrade`, a box that answers 403): not a server that is down.
fn refused_on_the_way(err: &tungstenite::Error) -> bool {
    matches!(
        err,
        tungstenite::Error::Http(_) | tungstenite::Error::Protocol(_)
    )
}

/// `host:port` of a plain `ws://` URL, where the SSE transport is on `http://`; none for
/// `wss://` (this client's SSE transport is plain HTTP only).
fn sse_authority(url: &str) -> Option<String> {
    let rest = url.strip_prefix("ws://")?;
    Some(rest.split('/').next().unwrap_or(rest).to_owned())
}

impl Runner {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut tokens: mpsc::UnboundedReceiver<Fetched>,
    ) {
        // Why the first WebSocket was refused, when the SSE transport was tried at once.
        let mut refused_ws = None;
        loop {
            self.connection += 1;
            self.welcomed_here = false;
            self.refused = None;
            self.expires = None;
            self.retry_at = None;
            let ended = match self.open().await {
                Ok(conn) => self.connected(conn, &mut commands, &mut tokens).await,
                Err(NotOpened::SignedOut(failure)) => Ended::SignedOut(failure),
                Err(NotOpened::Failed { why, switch }) => {
                    if switch && self.welcomed.is_some() && self.transport == Transport::WebSocket {
                        // The first WebSocket was refused on the way: SSE, at once.
                        self.transport = Transport::Sse;
                        refused_ws = Some(why);
                        continue;
                    }
                    if let Some(first) = self.welcomed.take() {
                        let why = match refused_ws.take() {
                            Some(ws) => format!("{ws}; then {why}"),
                            None => why,
                        };
                        let _ = first.send(Err(NotWelcomed::Unreachable(why)));
                        return;
                    }
                    Ended::Dropped
                }
            };
            self.count_failure();
            match ended {
                Ended::Closed => break,
                Ended::SignedOut(failure) => {
                    if let Some(first) = self.welcomed.take() {
                        let _ = first.send(Err(NotWelcomed::SignedOut(failure)));
                        return;
                    }
                    if !self.replaced_expired_token(&failure).await {
                        self.fail_pending(&SendError::SignedOut(failure.clone()));
                        let _ = self.events.send(Event::SignedOut(failure));
                        return;
                    }
                }
                Ended::Upgrade(ws) => {
                    self.session.on_disconnected(now_ms(), unit());
                    self.upgraded = Some(ws);
                    continue;
                }
                Ended::Dropped => {
                    if let Some(first) = self.welcomed.take() {
                        let _ = first.send(Err(NotWelcomed::Unreachable(
                            "closed before the welcome".into(),
                        )));
                        return;
                    }
                }
            }
            // Wait, then make sure the token is worth presenting; if it has expired and no
            // fresh one can be had, wait again rather than have it refused for good.
            loop {
                if !self.wait_offline(&mut commands).await {
                    return;
                }
                if self.freshen_token().await {
                    break;
                }
            }
        }
        self.fail_pending(&SendError::Closed);
    }

    /// Opens the next connection on the current transport and says `hello` on it.
    async fn open(&mut self) -> Result<Conn, NotOpened> {
        if let Some(ws) = self.upgraded.take() {
            self.transport = Transport::WebSocket;
            return self.hello_on(*ws).await;
        }
        match self.transport {
            Transport::WebSocket => {
                match connect_async_with_config(&self.url, Some(ws_config()), true).await {
                    Ok((ws, _)) => self.hello_on(ws).await,
                    Err(err) => Err(match refused_upgrade(&err) {
                        Some(failure) => NotOpened::SignedOut(failure),
                        None => NotOpened::Failed {
                            switch: refused_on_the_way(&err),
                            why: err.to_string(),
                        },
                    }),
                }
            }
            Transport::Sse => {
                let Some(authority) = sse_authority(&self.url) else {
                    return Err(NotOpened::Failed {
                        why: "the SSE transport is only over plain http".into(),
                        switch: false,
                    });
                };
                self.session.on_connected(now_ms());
                let hello = encode(&self.session.hello());
                match SseSocket::open(&authority, &hello).await {
                    Ok(sse) => {
                        self.announce();
                        Ok(Conn::Sse(sse))
                    }
                    Err(err) => Err(NotOpened::Failed {
                        why: format!("over SSE: {err}"),
                        switch: false,
                    }),
                }
            }
        }
    }

    /// Says `hello` on a WebSocket that has just opened.
    async fn hello_on(&mut self, mut ws: Socket) -> Result<Conn, NotOpened> {
        self.session.on_connected(now_ms());
        let hello = Message::text(encode(&self.session.hello()));
        if let Err(err) = ws.send(hello).await {
            return Err(NotOpened::Failed {
                why: err.to_string(),
                switch: false,
            });
        }
        self.announce();
        Ok(Conn::Ws(Box::new(ws)))
    }

    /// Tells the events' reader the transport, when it is not the one last told.
    fn announce(&mut self) {
        if self.announced != Some(self.transport) {
            self.announced = Some(self.transport);
            let _ = self.events.send(Event::Transport(self.transport));
        }
    }

    /// After a connection: one that ended before its welcome counts, and after
    /// [`FALL_BACK_AFTER`] of them in a row the other transport is tried (plain http only).
    fn count_failure(&mut self) {
        if self.welcomed_here {
            self.failures = 0;
            return;
        }
        self.failures += 1;
        if self.failures >= FALL_BACK_AFTER && sse_authority(&self.url).is_some() {
            self.failures = 0;
            self.transport = match self.transport {
                Transport::WebSocket => Transport::Sse,
                Transport::Sse => Transport::WebSocket,
            };
        }
    }

    /// Waits out the backoff; lines and joins meanwhile are kept for the next connection.
    /// `false` when the client was closed meanwhile.
    async fn wait_offline(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> bool {
        let wait = self.session.on_disconnected(now_ms(), unit());
        let _ = self.events.send(Event::Disconnected { retry_in_ms: wait });
        let sleep = tokio::time::sleep(Duration::from_millis(wait));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = commands.recv() => match command {
                    None => {
                        self.fail_pending(&SendError::Closed);
                        return false;
                    }
                    Some(Command::Close(done)) => {
                        self.fail_pending(&SendError::Closed);
                        let _ = done.send(());
                        return false;
                    }
                    Some(command) => self.offline_command(command),
                }
            }
        }
    }

    /// After `token_expired` on a connection that was welcomed (the source failed to give
    /// a new token in time), one more try with a fresh token: whether there is one.
    async fn replaced_expired_token(&mut self, failure: &SignedOut) -> bool {
        let expired = failure.code() == Some(ErrorCode::TokenExpired);
        let Some(source) = self.source.clone().filter(TokenSource::can_refresh) else {
            return false;
        };
        if !expired || !self.welcomed_here {
            return false;
        }
        match source.fetch().await {
            Ok(token) if Some(token.as_str()) != self.session.token() => {
                self.session.set_token(Some(token));
                true
            }
            _ => false,
        }
    }

    /// Before a reconnection: a file source is read again, and a callback is asked again
    /// when the token expires within [`TOKEN_FRESH_FOR`]. `false` when the token has
    /// expired and no new one could be had (try again after the next wait).
    async fn freshen_token(&mut self) -> bool {
        let Some(source) = self.source.clone().filter(TokenSource::can_refresh) else {
            return true;
        };
        let exp = self.session.token().and_then(token::expires_at);
        let now = token::now_secs();
        let stale = exp.is_none_or(|exp| exp <= now + TOKEN_FRESH_FOR.as_secs());
        if !stale && !source.is_file() {
            return true;
        }
        match source.fetch().await {
            Ok(token) => {
                self.session.set_token(Some(token));
                true
            }
            Err(why) => {
                let _ = self.events.send(Event::TokenRefreshFailed {
                    why: why.to_string(),
                });
                exp.is_none_or(|exp| exp > now)
            }
        }
    }

    fn fail_pending(&mut self, why: &SendError) {
        for (_, acked) in self.acks.drain() {
            let _ = acked.send(Err(why.clone()));
        }
    }

    /// A command while there is no socket: lines, joins and tokens are remembered for the
    /// next connection; other frames are dropped.
    fn offline_command(&mut self, command: Command) {
        match command {
            Command::Send { room, text, acked } => {
                let _ = self.queue_line(room, text, acked);
            }
            Command::Join(room) => {
                let _ = self.session.join(room);
            }
            Command::Token(token) => self.session.set_token(Some(token)),
            Command::Frame(_) | Command::Close(_) => {}
        }
    }

    /// Queues a line in the session; returns the frame to send now, if any.
    fn queue_line(
        &mut self,
        room: RoomName,
        text: String,
        acked: oneshot::Sender<Result<Seq, SendError>>,
    ) -> Option<ClientMsg> {
        let frame = self.session.send(room, text);
        if let Some(pending) = self.session.pending().last() {
            self.acks.insert(pending.nonce.clone(), acked);
        }
        frame
    }

    /// Runs one connection: says `hello`, then turns frames, commands, token fetches, due
    /// resends and pings into frames to send, until the connection ends.
    async fn connected(
        &mut self,
        mut conn: Conn,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        tokens: &mut mpsc::UnboundedReceiver<Fetched>,
    ) -> Ended {
        let start = tokio::time::Instant::now();
        let mut ping = tokio::time::interval_at(start + PING_EVERY, PING_EVERY);
        let mut unanswered = 0u32;
        let on_sse = matches!(conn, Conn::Sse(_));
        let mut upgrade = tokio::time::interval_at(start + UPGRADE_EVERY, UPGRADE_EVERY);
        let (probed, mut probes) = mpsc::channel::<Socket>(1);
        let mut probing = false;
        loop {
            let due_in = self
                .session
                .next_due_ms(now_ms())
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
            let retry_at = self.retry_at;
            let next = tokio::select! {
                said = conn.next() => self.on_frame(said, &mut unanswered),
                command = commands.recv() => self.on_command(command, &mut conn).await,
                Some(fetched) = tokens.recv() => Continue(self.on_fetched(fetched)),
                () = tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)),
                    if retry_at.is_some() =>
                {
                    self.retry_at = None;
                    self.start_fetch();
                    Continue(Vec::new())
                }
                () = tokio::time::sleep(due_in.unwrap_or_default()), if due_in.is_some() => {
                    Continue(self.session.due(now_ms()))
                }
                _ = ping.tick() => {
                    unanswered += 1;
                    if unanswered > 2 {
                        return self.dropped();
                    }
                    Continue(vec![ClientMsg::Ping])
                }
                _ = upgrade.tick(), if on_sse && self.welcomed_here && !probing => {
                    probing = true;
                    let (url, probed) = (self.url.clone(), probed.clone());
                    tokio::spawn(async move {
                        let opening = connect_async_with_config(&url, Some(ws_config()), true);
                        if let Ok(Ok((ws, _))) = tokio::time::timeout(UPGRADE_EVERY, opening).await {
                            let _ = probed.send(ws).await;
                        } else {
                            // Still refused: the next tick tries again.
                            drop(probed);
                        }
                    });
                    Continue(Vec::new())
                }
                Some(ws) = probes.recv() => {
                    conn.close(Duration::from_secs(2)).await;
                    return Ended::Upgrade(Box::new(ws));
                }
            };
            let out = match next {
                Continue(out) => out,
                Break(ended) => return ended,
            };
            for msg in out {
                if !conn.send(&msg).await {
                    return self.dropped();
                }
            }
        }
    }

    /// A frame from the server: its replies, or how the connection ended. A pong answers
    /// the pings (`unanswered` starts over); a newer server's message types are skipped.
    fn on_frame(&mut self, said: Said, unanswered: &mut u32) -> ControlFlow<Ended, Vec<ClientMsg>> {
        match said {
            Said::Text(text) => match decode_server(&text) {
                Ok(msg) => {
                    if matches!(msg, ServerMsg::Pong) {
                        *unanswered = 0;
                    }
                    Continue(self.apply(msg))
                }
                Err(_) => Continue(Vec::new()),
            },
            Said::Close(frame) => Break(self.closed_by_server(frame)),
            Said::Ended => Break(self.dropped()),
            Said::Other => Continue(Vec::new()),
        }
    }

    /// A command from the [`Client`](crate::Client): the frames it sends, or the end of the
    /// connection when the client was closed (or dropped).
    async fn on_command(
        &mut self,
        command: Option<Command>,
        conn: &mut Conn,
    ) -> ControlFlow<Ended, Vec<ClientMsg>> {
        match command {
            None => {
                conn.close(Duration::from_secs(2)).await;
                Break(Ended::Closed)
            }
            Some(Command::Close(done)) => {
                conn.close(Duration::from_secs(2)).await;
                self.fail_pending(&SendError::Closed);
                let _ = done.send(());
                Break(Ended::Closed)
            }
            Some(Command::Send { room, text, acked }) => {
                Continue(self.queue_line(room, text, acked).into_iter().collect())
            }
            Some(Command::Join(room)) => Continue(vec![self.session.join(room)]),
            Some(Command::Token(token)) => {
                self.session.set_token(Some(token.clone()));
                Continue(vec![ClientMsg::Refresh { token }])
            }
            Some(Command::Frame(msg)) => Continue(vec![msg]),
        }
    }

    /// The socket ended without a close frame: dropped, unless the server had refused the
    /// token (then the close that should follow was lost, and the refusal stands).
    fn dropped(&mut self) -> Ended {
        match self.refused.take() {
            Some((code, message)) => Ended::SignedOut(SignedOut::Refused { code, message }),
            None => Ended::Dropped,
        }
    }

    /// The server closed the socket: 4001 and 4003 end the sign-in; anything else is a drop.
    fn closed_by_server(&mut self, frame: Option<(u16, String)>) -> Ended {
        let (code, reason) =
            frame.map_or((None, String::new()), |(code, reason)| (Some(code), reason));
        match code {
            Some(CLOSE_USER_DISCONNECTED) => Ended::SignedOut(SignedOut::Disconnected { reason }),
            Some(CLOSE_TOKEN_REFUSED) => {
                let (code, message) = self.refused.take().unwrap_or((ErrorCode::BadToken, reason));
                Ended::SignedOut(SignedOut::Refused { code, message })
            }
            _ => self.dropped(),
        }
    }

    /// The server asked for a new token: ask the source (if it can give one), beside the
    /// connection.
    fn on_token_expiring(&mut self, in_ms: u64) {
        if self.source.as_ref().is_some_and(TokenSource::can_refresh) {
            self.expires = Some(tokio::time::Instant::now() + Duration::from_millis(in_ms));
            self.retry_at = None;
            self.start_fetch();
        }
    }

    /// Asks the token source for a token, beside the connection; the answer comes back as a
    /// [`Fetched`].
    fn start_fetch(&mut self) {
        let Some(source) = self.source.clone() else {
            return;
        };
        if self.fetching {
            return;
        }
        self.fetching = true;
        let tokens = self.tokens.clone();
        let connection = self.connection;
        tokio::spawn(async move {
            let token = source.fetch().await.map_err(|e| e.to_string());
            let _ = tokens.send(Fetched { connection, token });
        });
    }

    /// A fetch's answer: a new token goes out as a `refresh`; none, and the source is asked
    /// again in a while, as long as the current token lasts.
    fn on_fetched(&mut self, fetched: Fetched) -> Vec<ClientMsg> {
        self.fetching = false;
        if fetched.connection != self.connection {
            // Started for a connection that is gone; this one may be waiting for its own.
            if self.expires.is_some() && self.retry_at.is_none() {
                self.start_fetch();
            }
            return Vec::new();
        }
        let why = match fetched.token {
            Ok(token) if Some(token.as_str()) != self.session.token() => {
                self.session.set_token(Some(token.clone()));
                return vec![ClientMsg::Refresh { token }];
            }
            Ok(_) => "the token source gave the token already in use".to_owned(),
            Err(why) => why,
        };
        let _ = self.events.send(Event::TokenRefreshFailed { why });
        let now = tokio::time::Instant::now();
        if let Some(expires) = self.expires {
            let wait =
                (expires.saturating_duration_since(now) / 4).clamp(TOKEN_RETRY_MIN, TOKEN_RETRY);
            if now + wait < expires {
                self.retry_at = Some(now + wait);
            }
        }
        Vec::new()
    }

    /// Applies one server message: events out, acks to who waits for them, and the frames
    /// to send in reply. The sign-in's messages are the runner's; the rest is
    /// [`apply`](crate::apply::apply)'s.
    fn apply(&mut self, msg: ServerMsg) -> Vec<ClientMsg> {
        match &msg {
            // The close with 4001 that follows says the rest.
            ServerMsg::Error(shared::server::Error { code, message, .. })
                if refuses_the_token(*code) =>
            {
                self.refused = Some((*code, message.clone()));
                return Vec::new();
            }
            ServerMsg::TokenExpiring(shared::server::TokenExpiring { in_ms }) => {
                self.on_token_expiring(*in_ms);
            }
            ServerMsg::TokenRefreshed(_) => {
                self.expires = None;
                self.retry_at = None;
            }
            _ => {}
        }
        let Applied {
            event,
            line,
            replies,
        } = apply(&mut self.session, msg);
        let settled = match line {
            Some(LineFate::Acked { nonce, seq }) => Some((nonce, Ok(seq))),
            Some(LineFate::Refused {
                nonce,
                code,
                message,
            }) => Some((nonce, Err(SendError::Refused { code, message }))),
            Some(LineFate::Retrying { .. }) | None => None,
        };
        if let Some((nonce, result)) = settled
            && let Some(acked) = self.acks.remove(&nonce)
        {
            let _ = acked.send(result);
        }
        if let Some(event) = event {
            if matches!(event, Event::Welcome { .. }) {
                self.welcomed_here = true;
                if let Some(first) = self.welcomed.take() {
                    let _ = first.send(Ok(()));
                }
            }
            let _ = self.events.send(event);
        }
        replies
    }
}
