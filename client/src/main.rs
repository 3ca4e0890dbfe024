//! `charla`: the command line on [`client`]. `charla chat URL` (a line-based chat),
//! `charla send URL TEXT` (exits 0 once stored), `charla tail URL` (lines as text or JSON
//! lines, for scripts), each signed in with `--token` or `--token-file`; `charla token`
//! mints a sign-in token as an app would. `charla <command> --help` says more.
//!
//! Exit codes: 0 done; 1 could not connect (or timed out); 2 refused (the error code is
//! printed); 3 the sign-in was refused (`auth_required`, `bad_token`, `token_expired`) or
//! the app disconnected the user (4003).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use client::{
    Client, ConnectError, Event, Options, SendError, SignedOut, TokenSource, Transport, line_text,
};
use shared::{ConnId, ErrorCode, RoomName, Seq};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Charla from a terminal.
#[derive(Parser)]
#[command(name = "charla", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to sign in (neither: as a guest).
#[derive(Args)]
struct SignIn {
    /// A sign-in token from the app (a JWT). It cannot be refreshed: the server ends the
    /// connection when it expires.
    #[arg(
        long,
        env = "CHARLA_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// A file holding the sign-in token, read again whenever a new one is needed: whatever
    /// rewrites it (before the token expires) keeps the connection signed in.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl SignIn {
    fn source(self) -> Option<TokenSource> {
        match (self.token, self.token_file) {
            (_, Some(path)) => Some(TokenSource::file(path)),
            (Some(token), None) => Some(TokenSource::fixed(token)),
            (None, None) => None,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Chat from a terminal: prints the room's history as `<name or id> -> <text>`, then
    /// live lines as they come and who is typing (`… is typing: text`) on lines of their
    /// own; every line typed on stdin is sent. Reconnects and resumes by itself. Ends at
    /// the end of stdin (Ctrl-D).
    Chat(ChatArgs),
    /// Sends one line; exits 0 once the server has stored it (printing its seq), non-zero
    /// with the error code otherwise (2: refused, 1: could not connect or timed out, 3: the
    /// sign-in was refused or the app disconnected the user).
    Send(SendArgs),
    /// Prints a room's lines, then follows it: one line each, as `<name or id> -> <text>`
    /// or (with --json) as the line's JSON object.
    Tail(TailArgs),
    /// Prints a sign-in token (HS256, what an app's backend makes for each of its users)
    /// for a server run with the same --jwt-secret: for trying sign-in out and for scripts.
    Token(TokenArgs),
    /// The load generator: drives a server with many real clients and prints a table
    /// (scripts/bench.sh runs every scenario; docs/BENCHMARKS.md explains the numbers).
    Bench(BenchArgs),
}

/// `charla chat`: where to chat, and as whom.
#[derive(Args)]
struct ChatArgs {
    /// The server: ws://host:port or http://host:port.
    url: String,
    /// The room.
    #[arg(long, default_value = "general")]
    room: String,
    /// The display name to use.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    sign_in: SignIn,
}

/// `charla send`: the line, where to send it, and how long to wait for its ack.
#[derive(Args)]
struct SendArgs {
    /// The server: ws://host:port or http://host:port.
    url: String,
    /// The line.
    text: String,
    /// The room.
    #[arg(long, default_value = "general")]
    room: String,
    /// The display name to send it under.
    #[arg(long)]
    name: Option<String>,
    /// How long to wait for the server's acknowledgement, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    sign_in: SignIn,
}

/// `charla tail`: which room, from where, and how to print it.
#[derive(Args)]
struct TailArgs {
    /// The server: ws://host:port or http://host:port.
    url: String,
    /// The room.
    #[arg(long, default_value = "general")]
    room: String,
    /// Only lines after this seq (0: the latest page).
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// One JSON object per line (seq, from, name, text, at, room).
    #[arg(long)]
    json: bool,
    /// Print what is there and exit, instead of following.
    #[arg(long)]
    no_follow: bool,
    #[command(flatten)]
    sign_in: SignIn,
}

/// `charla token`: the secret and the claims to sign.
#[derive(Args)]
struct TokenArgs {
    /// The secret the server checks tokens with (its --jwt-secret).
    #[arg(long, env = "CHARLA_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// The user's id (the `sub` claim): 1 to 64 characters.
    #[arg(long)]
    sub: String,
    /// The display name (`name`).
    #[arg(long)]
    name: Option<String>,
    /// A private room the user may join, or a prefix ending in `*` (`team-*`). Repeat,
    /// or separate with commas.
    #[arg(long, value_delimiter = ',')]
    rooms: Vec<String>,
    /// A role (`moderator`, `admin`). Repeat, or separate with commas.
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// How long it is valid: 45s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = client::token::parse_duration)]
    ttl: Duration,
    /// The issuer (`iss`), for a server run with --jwt-issuer.
    #[arg(long)]
    issuer: Option<String>,
    /// The audience (`aud`), for a server run with --jwt-audience.
    #[arg(long)]
    audience: Option<String>,
}

/// `charla bench`: where the servers are, how to connect, and the scenario.
#[derive(Args)]
struct BenchArgs {
    /// The server's address (host:port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
    /// More servers of the same cluster (`backend --redis`): the clients are spread over
    /// --addr and these in turn (fanout, idle, latency). Repeat, or separate with commas.
    #[arg(long, value_delimiter = ',')]
    also_addr: Vec<std::net::SocketAddr>,
    /// Source addresses to spread the clients over (each is its own client address for
    /// the server's limits; together they fit 20,000 sockets in the port range).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"
    )]
    sources: Vec<std::net::IpAddr>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// The server's process id: its CPU and memory are read from /proc. With several
    /// servers, repeat it: CPU is added up over all of them (memory is the first's).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// How the clients connect: `websocket`, or `sse` (the fallback transport; fanout
    /// only, whose receivers then read Server-Sent Events while the senders stay on
    /// WebSockets).
    #[arg(long, default_value = "websocket", value_parser = parse_transport)]
    transport: Transport,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N clients in general, S senders with W lines in flight each: deliveries/s and the
    /// server's CPU per delivery.
    Fanout {
        /// Clients.
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Senders (among the clients).
        #[arg(long, default_value_t = 10)]
        senders: usize,
        /// Lines in flight per sender.
        #[arg(long, default_value_t = 1, conflicts_with = "gated")]
        window: usize,
        /// Gated: each sender sends its next line only once every client has received its
        /// previous one, so no two lines of a sender share a write.
        #[arg(long)]
        gated: bool,
        /// Line size, in bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// N clients, a fixed total rate of lines: send → delivery latency percentiles.
    Latency {
        /// Clients.
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Lines per second, in all.
        #[arg(long, default_value_t = 20)]
        rate: u32,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// N clients; the tool kills the server (SIGKILL) and starts it again: time until every
    /// client resumed with its id, and proof that no line was lost or shown twice.
    Storm {
        /// Clients (10 of them send lines, each one every --send-every-ms).
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// How often each of the 10 senders sends a line, in milliseconds (100: the room
        /// gets 100 lines a second, 1,000,000 deliveries a second with 10,000 clients).
        #[arg(long, default_value_t = 100)]
        send_every_ms: u64,
        /// How to start the server (run with `sh -c`; it must listen on --addr and keep its
        /// sessions, i.e. not --memory).
        #[arg(long)]
        server_cmd: String,
        /// How long the clients chat before the kill, in seconds.
        #[arg(long, default_value_t = 3)]
        before: u64,
    },
    /// N idle connections: connects/s, handshake latency, server RSS per connection.
    Idle {
        /// Connections.
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// How long to hold them before measuring, in seconds.
        #[arg(long, default_value_t = 3)]
        hold: u64,
    },
}

fn room(name: &str) -> Result<RoomName, ExitCode> {
    RoomName::parse(name).map_err(|why| {
        eprintln!("error: bad_room: {why}");
        ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Chat(args) => args.run().await,
        Command::Send(args) => args.run().await,
        Command::Tail(args) => args.run().await,
        Command::Token(args) => args.run(),
        Command::Bench(args) => args.run().await,
    };
    result.err().unwrap_or(ExitCode::SUCCESS)
}

impl ChatArgs {
    /// Checks the room's name, then chats until the end of stdin.
    async fn run(self) -> Result<(), ExitCode> {
        let room = room(&self.room)?;
        chat(&self.url, room, self.name, self.sign_in.source()).await
    }
}

impl SendArgs {
    /// Checks the room's name, then sends the line and waits for its ack.
    async fn run(self) -> Result<(), ExitCode> {
        let room = room(&self.room)?;
        let timeout = Duration::from_secs(self.timeout);
        let token = self.sign_in.source();
        send(&self.url, room, self.text, self.name, token, timeout).await
    }
}

impl TailArgs {
    /// Checks the room's name, then prints its lines (and follows it, unless told not to).
    async fn run(self) -> Result<(), ExitCode> {
        let room = room(&self.room)?;
        let token = self.sign_in.source();
        let (after, follow) = (Seq(self.after), !self.no_follow);
        tail(&self.url, room, after, self.json, follow, token).await
    }
}

impl TokenArgs {
    /// Mints the token and prints it.
    fn run(self) -> Result<(), ExitCode> {
        let claims = client::token::Claims {
            sub: self.sub,
            name: self.name,
            rooms: self.rooms,
            roles: self.roles,
            ttl: self.ttl,
            issuer: self.issuer,
            audience: self.audience,
        };
        mint(&self.secret, &claims)
    }
}

/// `websocket` or `sse`, for `charla bench fanout --transport`.
fn parse_transport(s: &str) -> Result<Transport, String> {
    match s {
        "websocket" | "ws" => Ok(Transport::WebSocket),
        "sse" => Ok(Transport::Sse),
        _ => Err(format!("not a transport: {s} (websocket or sse)")),
    }
}

impl BenchArgs {
    /// Runs the scenario, prints its table, and writes it as JSON if asked to.
    async fn run(self) -> Result<(), ExitCode> {
        let target = client::bench::Target {
            addr: self.addr,
            also: self.also_addr,
            sources: self.sources,
            in_flight: self.in_flight,
            transport: self.transport,
        };
        if self.transport == Transport::Sse && !matches!(self.scenario, Scenario::Fanout { .. }) {
            eprintln!("error: --transport sse is for fanout only");
            return Err(ExitCode::from(2));
        }
        let report = self
            .scenario
            .run(&target, &self.server_pid)
            .await
            .map_err(|err| {
                eprintln!("error: {err}");
                ExitCode::from(1)
            })?;
        print!("{}", report.table());
        match self.json {
            Some(path) => write_json(&report, &path),
            None => Ok(()),
        }
    }
}

/// The exit code when the sign-in was refused or the user disconnected by the app.
const SIGNED_OUT: u8 = 3;

fn mint(secret: &str, claims: &client::token::Claims) -> Result<(), ExitCode> {
    match client::token::mint_hs256(secret.as_bytes(), claims) {
        Ok(token) => {
            println!("{token}");
            Ok(())
        }
        Err(err) => {
            eprintln!("error: {err}");
            Err(ExitCode::from(2))
        }
    }
}

/// Says why the sign-in ended, as `error: <code>: …` (`disconnected` for a 4003).
fn signed_out(failure: &SignedOut) -> ExitCode {
    let code = failure.code().map_or("disconnected", ErrorCode::as_str);
    eprintln!("error: {code}: {failure}");
    ExitCode::from(SIGNED_OUT)
}

async fn connect(url: &str, options: Options) -> Result<(Client, client::Events), ExitCode> {
    Client::connect(url, options)
        .await
        .map_err(|err| match err {
            ConnectError::SignIn { failure, .. } => signed_out(&failure),
            err => {
                eprintln!("error: {err}");
                ExitCode::from(1)
            }
        })
}

async fn send(
    url: &str,
    room: RoomName,
    text: String,
    name: Option<String>,
    token: Option<TokenSource>,
    timeout: Duration,
) -> Result<(), ExitCode> {
    let options = Options {
        rooms: vec![(room.clone(), Seq(0))],
        name,
        resume: None,
        token,
    };
    let (chat, mut events) = connect(url, options).await?;
    // A room this user may not enter is refused with `forbidden` before the line is
    // (`not_joined`): the first says why.
    let mut forbidden = None;
    let sent = tokio::time::timeout(timeout, async {
        let sending = chat.send(&room, text);
        tokio::pin!(sending);
        loop {
            // Events first: the `forbidden` comes before the refusal it explains, and an
            // unbiased select could settle the send before reading it.
            tokio::select! {
                biased;
                Some(event) = events.next() => {
                    if let Event::Error { code: ErrorCode::Forbidden, message, room: r } = event
                        && r.as_ref() == Some(&room)
                    {
                        forbidden = Some(message);
                    }
                }
                sent = &mut sending => break sent,
            }
        }
    })
    .await;
    let result = match sent {
        Ok(Ok(seq)) => {
            println!("{seq}");
            Ok(())
        }
        Ok(Err(SendError::SignedOut(failure))) => Err(signed_out(&failure)),
        Ok(Err(err)) => {
            match forbidden {
                Some(message) => eprintln!("error: forbidden: {message}"),
                None => {
                    let code = err.code().map_or("closed", |c| c.as_str());
                    eprintln!("error: {code}: {err}");
                }
            }
            Err(ExitCode::from(2))
        }
        Err(_) => {
            eprintln!("error: timeout: no acknowledgement within {timeout:?}");
            Err(ExitCode::from(1))
        }
    };
    chat.close().await;
    result
}

async fn tail(
    url: &str,
    room: RoomName,
    after: Seq,
    json: bool,
    follow: bool,
    token: Option<TokenSource>,
) -> Result<(), ExitCode> {
    let options = Options {
        rooms: vec![(room.clone(), after)],
        token,
        ..Options::default()
    };
    let (chat, mut events) = connect(url, options).await?;
    let mut out = tokio::io::stdout();
    let print = |line: &shared::ChatLine| {
        if json {
            serde_json::to_string(line).unwrap_or_default()
        } else {
            line_text(line)
        }
    };
    let mut result = Ok(());
    while let Some(event) = events.next().await {
        let lines = match event {
            Event::Joined { room: r, lines, .. } if r == room => {
                let done = !follow;
                let text: String = lines.iter().map(|l| print(l) + "\n").collect();
                if out.write_all(text.as_bytes()).await.is_err() || done {
                    break;
                }
                let _ = out.flush().await;
                continue;
            }
            Event::Line(line) if line.room == room => print(&line) + "\n",
            Event::Error {
                code: ErrorCode::Forbidden,
                message,
                room: Some(r),
            } if r == room => {
                eprintln!("error: forbidden: {message}");
                result = Err(ExitCode::from(2));
                break;
            }
            Event::SignedOut(failure) => {
                result = Err(signed_out(&failure));
                break;
            }
            _ => continue,
        };
        if out.write_all(lines.as_bytes()).await.is_err() {
            break;
        }
        let _ = out.flush().await;
    }
    let _ = out.flush().await;
    chat.close().await;
    result
}

async fn chat(
    url: &str,
    room: RoomName,
    name: Option<String>,
    token: Option<TokenSource>,
) -> Result<(), ExitCode> {
    let options = Options {
        rooms: vec![(room.clone(), Seq(0))],
        name,
        resume: None,
        token,
    };
    let (chat, mut events) = connect(url, options).await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    let mut me = None;
    let mut sending = tokio::task::JoinSet::new();
    let result = loop {
        let step = tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(line)) => {
                    send_typed(&chat, &room, line, &mut sending);
                    Step::Skip
                }
                _ => Step::Stop(Ok(())),
            },
            event = events.next() => on_event(event, &room, &mut me),
        };
        let text = match step {
            Step::Print(text) => text,
            Step::Skip => continue,
            Step::Stop(result) => break result,
        };
        if out.write_all(text.as_bytes()).await.is_err() {
            break Ok(());
        }
        let _ = out.flush().await;
    };
    wait_for_acks(sending).await;
    chat.close().await;
    result
}

/// What `charla chat` does after a line typed or an event.
enum Step {
    /// Prints this on stdout.
    Print(String),
    /// Nothing to print (or it went to stderr).
    Skip,
    /// Ends the chat, with this result.
    Stop(Result<(), ExitCode>),
}

/// Sends a line typed on stdin (unless blank), beside the chat: its ack comes back as the
/// line itself, and a refusal is said on stderr.
fn send_typed(
    chat: &Client,
    room: &RoomName,
    line: String,
    sending: &mut tokio::task::JoinSet<()>,
) {
    if line.trim().is_empty() {
        return;
    }
    let chat = chat.clone();
    let room = room.clone();
    sending.spawn(async move {
        if let Err(err) = chat.send(&room, line).await {
            eprintln!("error: {err}");
        }
    });
}

/// What one event shows in `charla chat`: lines and who is typing on stdout, the
/// connection's ups and downs and refusals on stderr. `me` is this session's id (from the
/// welcome), whose own typing is not shown.
fn on_event(event: Option<Event>, room: &RoomName, me: &mut Option<ConnId>) -> Step {
    let Some(event) = event else {
        return Step::Stop(Ok(()));
    };
    match event {
        Event::Welcome { id, resumed, .. } => {
            *me = Some(id);
            if resumed {
                eprintln!("(reconnected)");
            }
            Step::Skip
        }
        Event::Joined { room: r, lines, .. } if r == *room => {
            Step::Print(lines.iter().map(|l| line_text(l) + "\n").collect())
        }
        Event::Line(line) if line.room == *room => Step::Print(line_text(&line) + "\n"),
        Event::Typing {
            room: r,
            from,
            name,
            text,
            ..
        } if r == *room && Some(&from) != me.as_ref() => {
            if text.is_empty() {
                return Step::Skip;
            }
            let who = name.map_or_else(|| from.to_string(), |n| n.to_string());
            Step::Print(format!("{who} is typing: {text}\n"))
        }
        Event::Transport(Transport::Sse) => {
            eprintln!("(over SSE + POST: a WebSocket could not open on the way)");
            Step::Skip
        }
        Event::Transport(Transport::WebSocket) if me.is_some() => {
            eprintln!("(back on a WebSocket)");
            Step::Skip
        }
        Event::Disconnected { retry_in_ms } => {
            eprintln!("(disconnected; reconnecting in {retry_in_ms} ms)");
            Step::Skip
        }
        Event::Error {
            code: ErrorCode::Forbidden,
            message,
            room: Some(r),
        } if r == *room => {
            eprintln!("error: forbidden: {message}");
            Step::Stop(Err(ExitCode::from(2)))
        }
        Event::Error { code, message, .. } => {
            eprintln!("error: {code}: {message}");
            Step::Skip
        }
        Event::TokenRefreshFailed { why } => {
            eprintln!("(could not refresh the sign-in token: {why})");
            Step::Skip
        }
        Event::SignedOut(failure) => Step::Stop(Err(signed_out(&failure))),
        _ => Step::Skip,
    }
}

/// Lines typed just before the end of input are stored before leaving (or given up on
/// after a while, if the server stays away).
async fn wait_for_acks(mut sending: tokio::task::JoinSet<()>) {
    let stored = async { while sending.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), stored)
        .await
        .is_err()
    {
        eprintln!("error: timeout: some lines were not acknowledged");
    }
}

impl Scenario {
    /// Runs this scenario against `target`, reading the servers' CPU and memory from
    /// `server_pids`.
    async fn run(
        self,
        target: &client::bench::Target,
        server_pids: &[u32],
    ) -> Result<client::bench::Report, String> {
        use client::bench;
        match self {
            Scenario::Fanout {
                clients,
                senders,
                window,
                gated,
                size,
                seconds,
            } => {
                let pace = if gated {
                    bench::Pace::Gated
                } else {
                    bench::Pace::Window(window)
                };
                bench::fanout(
                    target,
                    clients,
                    senders,
                    pace,
                    size,
                    Duration::from_secs(seconds),
                    server_pids,
                )
                .await
            }
            Scenario::Latency {
                clients,
                rate,
                seconds,
            } => bench::latency(target, clients, rate, Duration::from_secs(seconds)).await,
            Scenario::Storm {
                clients,
                server_cmd,
                before,
                send_every_ms,
            } => {
                let every = Duration::from_millis(send_every_ms.max(1));
                bench::storm(
                    target,
                    clients,
                    &server_cmd,
                    Duration::from_secs(before),
                    every,
                )
                .await
            }
            Scenario::Idle { clients, hold } => {
                let server_pid = server_pids.first().copied();
                bench::idle(target, clients, Duration::from_secs(hold), server_pid).await
            }
        }
    }
}

/// Writes a bench's results as JSON to `path` (for scripts/bench.sh and the docs' tables).
fn write_json(report: &client::bench::Report, path: &std::path::Path) -> Result<(), ExitCode> {
    let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
    if let Err(err) = std::fs::write(path, text + "\n") {
        eprintln!("error: {}: {err}", path.display());
        return Err(ExitCode::from(1));
    }
    Ok(())
}
