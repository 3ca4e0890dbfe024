//! `storm`: clients chatting while the server is killed and restarted: every acked line in
//! the history once, nothing lost, nothing twice.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpSocket, sync::Semaphore, task::JoinSet};
use tokio_tungstenite::{MaybeTlsStream, client_async_with_config, tungstenite::Message};

use super::*;

/// A storm client's session and what it has seen of `general`, kept in O(1): lines must
/// arrive in `seq` order, so a `seq` at or below the last one is a repeat, and one past the
/// next is a gap.
#[derive(Debug, Default)]
struct StormClient {
    token: String,
    id: String,
    last: u64,
    lines: u64,
    gaps: u64,
    repeats: u64,
    /// Reconnections answered with the latest page instead of the missed lines (the client
    /// was further behind than a greeting holds; the page loads older lines on demand).
    pages: u64,
}

/// A field's string value in a server frame (`"name":"value"`), without a full decode.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(r#""{name}":""#);
    let rest = &text[text.find(&key)? + key.len()..];
    rest.split('"').next()
}

/// A field's number value in a server frame (`"name":123`).
fn number(text: &str, name: &str) -> Option<u64> {
    let key = format!(r#""{name}":"#);
    let rest = &text[text.find(&key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl StormClient {
    /// Connects (resuming if it has a token, from the last `seq` seen) and reads until its
    /// `joined`; returns the socket and whether the session resumed with the same id.
    async fn connect(&mut self, target: &Target, source: IpAddr) -> Result<(Socket, bool), String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| e.to_string())?;
        let tcp = socket
            .connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let url = format!("ws://{}/ws?v=2", target.addr);
        let (mut ws, _) =
            client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(crate::ws_config()))
                .await
                .map_err(|e| e.to_string())?;
        let hello = if self.token.is_empty() {
            r#"{"type":"hello"}"#.to_owned()
        } else {
            format!(
                r#"{{"type":"hello","resume":"{}","rooms":{{"general":{}}}}}"#,
                self.token, self.last
            )
        };
        ws.send(Message::text(hello))
            .await
            .map_err(|e| e.to_string())?;
        let mut resumed = false;
        while let Some(frame) = ws.next().await {
            let Ok(Message::Text(text)) = frame else {
                return Err("closed before joining".into());
            };
            if text.starts_with(r#"{"type":"welcome""#) {
                let id = field(&text, "id").unwrap_or_default().to_owned();
                resumed = !self.id.is_empty() && id == self.id;
                self.id = id;
                if let Some(token) = field(&text, "resume") {
                    self.token = token.to_owned();
                }
            } else if text.starts_with(r#"{"type":"joined""#) {
                let exact = text.contains(r#""resumed":true"#);
                if !exact && self.lines > 0 {
                    // The latest page, not the missed lines: start over from it.
                    self.pages += 1;
                    self.lines = 0;
                }
                // The lines inside, each `{"room":…,"seq":…,…,"text":"…"}`.
                for line in text.split(r#"{"room":"#).skip(1) {
                    self.take(line);
                }
                return Ok((ws, resumed));
            }
        }
        Err("closed before joining".into())
    }

    /// One line (a `message`, or a line inside a `joined`).
    fn take(&mut self, line: &str) {
        let Some(seq) = number(line, "seq") else {
            return;
        };
        if self.lines > 0 && seq <= self.last {
            self.repeats += 1;
            return;
        }
        if self.lines > 0 && seq > self.last + 1 {
            self.gaps += seq - self.last - 1;
        }
        self.lines += 1;
        self.last = seq;
    }
}

/// Every line of `general`, oldest first, read by a new client (the latest page, then
/// `load_older` until there is no more).
async fn whole_history(target: &Target) -> Result<Vec<String>, String> {
    let mut reader = StormClient::default();
    let source = target.sources[0];
    let (mut ws, _) = reader.connect(target, source).await?;
    let mut pages: Vec<Vec<(u64, String)>> = Vec::new();
    let mut page = |text: &str| {
        let lines: Vec<(u64, String)> = text
            .split(r#"{"room":"#)
            .skip(1)
            .filter_map(|l| Some((number(l, "seq")?, field(l, "text")?.to_owned())))
            .collect();
        let oldest = lines.first().map(|(seq, _)| *seq);
        pages.push(lines);
        (oldest, text.contains(r#""has_more":true"#))
    };
    // The joined was read by connect: ask for it again by rejoining.
    ws.send(Message::text(r#"{"type":"join","room":"general"}"#))
        .await
        .map_err(|e| e.to_string())?;
    let mut next = None;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| "no history within 10 s".to_owned())?
    {
        let Ok(Message::Text(text)) = frame else {
            return Err("the history reader was closed".into());
        };
        let kind = if text.starts_with(r#"{"type":"joined""#) {
            "joined"
        } else if text.starts_with(r#"{"type":"older""#) {
            "older"
        } else {
            continue;
        };
        let (oldest, more) = page(&text);
        if kind == "joined" && next.is_some() {
            continue;
        }
        match (oldest, more) {
            (Some(oldest), true) => {
                next = Some(oldest);
                let ask = format!(r#"{{"type":"load_older","before":{oldest},"limit":500}}"#);
                ws.send(Message::text(ask))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            _ => break,
        }
    }
    let _ = ws.close(None).await;
    let mut lines: Vec<(u64, String)> = pages.into_iter().flatten().collect();
    lines.sort_by_key(|(seq, _)| *seq);
    lines.dedup_by_key(|(seq, _)| *seq);
    Ok(lines.into_iter().map(|(_, text)| text).collect())
}

/// What the storm's clients share with the tool.
#[derive(Default)]
struct StormState {
    connected: AtomicU64,
    resumed: AtomicU64,
    closed_by_server: AtomicU64,
    /// Microseconds after the restart at which the last client resumed.
    last_resume_us: AtomicU64,
    /// When the server was started again (µs after the epoch), once it was.
    restarted_us: AtomicU64,
}

/// The server a storm runs itself, so that it can kill it: `cmd` through `sh -c`.
struct StormServer {
    cmd: String,
    addr: SocketAddr,
    process: tokio::process::Child,
}

impl StormServer {
    /// Starts the server and waits until it listens on `addr`.
    async fn start(cmd: &str, addr: SocketAddr) -> Result<Self, String> {
        let process = Self::spawn(cmd)?;
        let server = StormServer {
            cmd: cmd.to_owned(),
            addr,
            process,
        };
        server.wait_up().await?;
        Ok(server)
    }

    /// Runs `cmd`; the process is killed if the storm ends early (dropped).
    fn spawn(cmd: &str) -> Result<tokio::process::Child, String> {
        tokio::process::Command::new("sh")
            .args(["-c", &format!("exec {cmd}")])
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start the server: {e}"))
    }

    /// Waits (10 s at most) until the server accepts connections.
    async fn wait_up(&self) -> Result<(), String> {
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("the server did not start listening".to_owned())
    }

    /// kill -9, and start it again at once; the restart's time goes in `restarted_us`
    /// (µs after `epoch`) before the server listens, so resumes are timed from it.
    async fn restart(&mut self, shared: &StormState, epoch: Instant) -> Result<(), String> {
        self.process.start_kill().map_err(|e| e.to_string())?;
        let _ = self.process.wait().await;
        self.process = Self::spawn(&self.cmd)?;
        shared
            .restarted_us
            .store(micros_since(epoch), Ordering::Relaxed);
        self.wait_up().await
    }

    /// Kills the server for good.
    async fn stop(mut self) {
        let _ = self.process.start_kill();
        let _ = self.process.wait().await;
    }
}

/// One storm client's task: it connects, reconnects and resumes through restarts, checks
/// what it reads, and (for a sender) sends a line every `send_every`, resending what was
/// not acked after a reconnection.
struct StormPeer {
    /// Which client this is, for unique nonces.
    index: usize,
    target: Target,
    source: IpAddr,
    /// Bounds the handshakes in flight, over every client.
    gate: Arc<Semaphore>,
    shared: Arc<StormState>,
    epoch: Instant,
    sender: bool,
    send_every: Duration,
    /// What this client has seen, published for the tool's checks after every frame.
    seen: Arc<std::sync::Mutex<StormClient>>,
    /// The nonces the server acked.
    acked: Arc<std::sync::Mutex<Vec<String>>>,
    session: StormClient,
    sent: u64,
    /// The nonces sent and not yet acked.
    pending: Vec<String>,
}

/// The sending half of a storm client's connection.
type StormSink = futures_util::stream::SplitSink<Socket, Message>;

impl StormPeer {
    /// Runs until aborted: connect, chat until the connection ends, again.
    async fn run(mut self) {
        // The page's reconnect backoff: full jitter, 250 ms doubling up to 4 s.
        let mut backoff = shared::session::Backoff::new(250, 4_000);
        let mut first = true;
        loop {
            let (ws, resumed) = self.reconnect(&mut backoff).await;
            self.count(first, resumed);
            first = false;
            self.chat(ws).await;
        }
    }

    /// Connects (one of the gate's handshakes at a time), waiting out the backoff after each
    /// failure; returns the socket and whether the session resumed with the same id.
    async fn reconnect(&mut self, backoff: &mut shared::session::Backoff) -> (Socket, bool) {
        loop {
            let permit = self.gate.clone().acquire_owned().await.ok();
            let result = self.session.connect(&self.target, self.source).await;
            drop(permit);
            match result {
                Ok(ok) => {
                    backoff.reset();
                    return ok;
                }
                Err(_) => {
                    let wait = backoff.next_delay_ms(crate::unit());
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
        }
    }

    /// Counts a connection: the first one, or a resume (and how long after the restart).
    fn count(&self, first: bool, resumed: bool) {
        if first {
            self.shared.connected.fetch_add(1, Ordering::Relaxed);
        } else if resumed {
            self.shared.resumed.fetch_add(1, Ordering::Relaxed);
            let restarted = self.shared.restarted_us.load(Ordering::Relaxed);
            let now = micros_since(self.epoch);
            if restarted > 0 {
                self.shared
                    .last_resume_us
                    .fetch_max(now.saturating_sub(restarted), Ordering::Relaxed);
            }
        }
    }

    /// Resends what was not acked, then reads (and sends, for a sender) until the
    /// connection ends.
    async fn chat(&mut self, ws: Socket) {
        let (mut sink, mut stream) = ws.split();
        // What was not acked goes again: the server appends each nonce once.
        for nonce in &self.pending {
            let _ = sink.send(send_frame(nonce, nonce)).await;
        }
        let mut tick = tokio::time::interval(self.send_every);
        loop {
            let open = tokio::select! {
                frame = stream.next() => self.on_frame(frame),
                _ = tick.tick(), if self.sender => self.send_next(&mut sink).await,
            };
            if !open {
                break;
            }
            self.publish();
        }
    }

    /// One frame: lines are checked, acks settle their nonce. `false` once the
    /// connection has ended.
    fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> bool {
        match frame {
            Some(Ok(Message::Text(text))) => {
                if text.starts_with(r#"{"type":"message""#) {
                    self.session.take(&text);
                } else if text.starts_with(r#"{"type":"ack""#)
                    && let Some(nonce) = field(&text, "nonce")
                {
                    self.pending.retain(|p| p != nonce);
                    if let Ok(mut acked) = self.acked.lock() {
                        acked.push(nonce.to_owned());
                    }
                }
                true
            }
            Some(Ok(Message::Close(frame))) => {
                if frame.is_some_and(|f| u16::from(f.code) == 1013) {
                    self.shared.closed_by_server.fetch_add(1, Ordering::Relaxed);
                }
                false
            }
            Some(Ok(_)) => true,
            Some(Err(_)) | None => false,
        }
    }

    /// Sends the next line, its nonce as its text; `false` when the connection is gone.
    async fn send_next(&mut self, sink: &mut StormSink) -> bool {
        self.sent += 1;
        let nonce = format!("s{}-{}", self.index, self.sent);
        self.pending.push(nonce.clone());
        sink.send(send_frame(&nonce, &nonce)).await.is_ok()
    }

    /// Publishes what this client has seen, for the tool's checks.
    fn publish(&self) {
        if let Ok(mut s) = self.seen.lock() {
            s.last = self.session.last;
            s.lines = self.session.lines;
            s.gaps = self.session.gaps;
            s.repeats = self.session.repeats;
            s.pages = self.session.pages;
        }
    }
}

/// The storm's clients, as the tool watches them.
struct Crowd {
    /// What each client has seen.
    seen: Vec<Arc<std::sync::Mutex<StormClient>>>,
    /// What each sender had acked.
    acked: Vec<Arc<std::sync::Mutex<Vec<String>>>>,
    tasks: JoinSet<()>,
}

impl Crowd {
    /// Starts `clients` clients, the first `senders` of them sending a line every
    /// `send_every`.
    fn spawn(
        target: &Target,
        clients: usize,
        senders: usize,
        send_every: Duration,
        shared: &Arc<StormState>,
        epoch: Instant,
    ) -> Self {
        let gate = Arc::new(Semaphore::new(target.in_flight.max(1)));
        let mut crowd = Crowd {
            seen: Vec::with_capacity(clients),
            acked: Vec::new(),
            tasks: JoinSet::new(),
        };
        for index in 0..clients {
            let sender = index < senders;
            let peer = StormPeer {
                index,
                target: target.clone(),
                source: target.sources[index % target.sources.len()],
                gate: gate.clone(),
                shared: shared.clone(),
                epoch,
                sender,
                send_every,
                seen: Arc::default(),
                acked: Arc::default(),
                session: StormClient::default(),
                sent: 0,
                pending: Vec::new(),
            };
            crowd.seen.push(peer.seen.clone());
            if sender {
                crowd.acked.push(peer.acked.clone());
            }
            crowd.tasks.spawn(peer.run());
        }
        crowd
    }

    /// Stops every client.
    async fn stop(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Every client's counts added up (lines, gaps, repeats, pages).
    fn seen(&self) -> StormClient {
        let mut all = StormClient::default();
        for seen in &self.seen {
            if let Ok(s) = seen.lock() {
                all.gaps += s.gaps;
                all.repeats += s.repeats;
                all.lines += s.lines;
                all.pages += s.pages;
            }
        }
        all
    }

    /// Every line the senders had acked.
    fn acked(&self) -> Vec<String> {
        self.acked
            .iter()
            .filter_map(|a| a.lock().ok().map(|a| a.clone()))
            .flatten()
            .collect()
    }
}

/// Polls `done` every `every` until it holds (`true`) or `within` has passed (`false`).
async fn poll_until(within: Duration, every: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// `storm`: `clients` connected to a server the tool runs itself (`server_cmd`, through
/// `sh -c`, so it can kill it); 10 of them send a line every `send_every` each. After `before`, the
/// server is killed with SIGKILL and started again; every client reconnects (backoff with
/// full jitter, as the page) and resumes, and senders resend what was not acked. Measures
/// the time from the restart until every client resumed with its id, and checks that no
/// client saw a gap or a line twice and that every acked line is in the history once.
pub async fn storm(
    target: &Target,
    clients: usize,
    server_cmd: &str,
    before: Duration,
    send_every: Duration,
) -> Result<Report, String> {
    let mut server = StormServer::start(server_cmd, target.addr).await?;
    let epoch = Instant::now();
    let shared = Arc::new(StormState::default());
    let senders = 10.min(clients.saturating_sub(1));
    let mut crowd = Crowd::spawn(target, clients, senders, send_every, &shared, epoch);
    let everyone = clients as u64;
    let connected = || shared.connected.load(Ordering::Relaxed) >= everyone;
    if !poll_until(
        Duration::from_secs(120),
        Duration::from_millis(50),
        connected,
    )
    .await
    {
        return Err("not every client connected within 120 s".into());
    }
    tokio::time::sleep(before).await;
    server.restart(&shared, epoch).await?;
    let resumed = || shared.resumed.load(Ordering::Relaxed) >= everyone;
    poll_until(Duration::from_secs(60), Duration::from_millis(20), resumed).await;
    // The senders go on a little: their resends and new lines must arrive too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    crowd.stop().await;
    let history = whole_history(target).await;
    server.stop().await;
    let check = HistoryCheck::new(&crowd.acked(), &history?);
    let mut report = Report::new("storm");
    report.row("clients", clients as f64, "");
    report.row(
        "lines sent per second, all senders",
        senders as f64 / send_every.as_secs_f64(),
        "",
    );
    storm_rows(&mut report, clients, &shared, &crowd.seen(), &check);
    Ok(report)
}

/// The history read after a storm, held against the lines the senders had acked.
struct HistoryCheck {
    acked: usize,
    /// Acked lines that are not in the history.
    lost: usize,
    /// Lines in the history more than once.
    twice: usize,
    /// Distinct lines in the history.
    distinct: usize,
}

impl HistoryCheck {
    /// Counts `acked` lines missing from `history`, and lines in it twice.
    fn new(acked: &[String], history: &[String]) -> Self {
        let observed: std::collections::HashMap<&str, usize> =
            history
                .iter()
                .fold(std::collections::HashMap::new(), |mut m, t| {
                    *m.entry(t.as_str()).or_default() += 1;
                    m
                });
        let lost = acked
            .iter()
            .filter(|n| !observed.contains_key(n.as_str()))
            .count();
        let twice = observed.values().filter(|&&n| n > 1).count();
        HistoryCheck {
            acked: acked.len(),
            lost,
            twice,
            distinct: observed.len(),
        }
    }
}

/// The storm's findings: resumes, what the history holds, what the clients saw; and a note
/// when a client did not resume or a line was lost or repeated.
fn storm_rows(
    report: &mut Report,
    clients: usize,
    shared: &StormState,
    seen: &StormClient,
    check: &HistoryCheck,
) {
    let resumed = shared.resumed.load(Ordering::Relaxed);
    report.row("resumed with the same id", resumed as f64, "");
    report.row(
        "every client resumed within",
        shared.last_resume_us.load(Ordering::Relaxed) as f64 / 1e6,
        "s of the restart",
    );
    report.row(
        "closed by the server (1013)",
        shared.closed_by_server.load(Ordering::Relaxed) as f64,
        "",
    );
    report.row("lines acked", check.acked as f64, "");
    report.row(
        "acked lines missing from the history",
        check.lost as f64,
        "",
    );
    report.row("lines in the history twice", check.twice as f64, "");
    report.row("lines in the history", check.distinct as f64, "");
    report.row("lines seen, all clients", seen.lines as f64, "");
    report.row(
        "resumes answered with the latest page",
        seen.pages as f64,
        "(too far behind; older lines on demand)",
    );
    report.row("gaps seen by clients", seen.gaps as f64, "lines");
    report.row("lines shown twice to a client", seen.repeats as f64, "");
    if resumed < clients as u64 {
        report.note(format!(
            "{} clients did not resume",
            clients as u64 - resumed
        ));
    }
    if check.lost + check.twice > 0 || seen.gaps + seen.repeats > 0 {
        report.note("LINES WERE LOST OR REPEATED");
    }
}
