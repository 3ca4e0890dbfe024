//! One connection's state and the server's one dispatch on [`ClientMsg`]
//! ([`Connection::on_text`]): rate limits, validation, then the rooms, the hub and the
//! committer. Refusals go back to the sender as `error` frames (naming the room and the
//! nonce they concern) and the connection stays.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use shared::{
    ClientMsg, ConnId, DisplayName, ErrorCode, RoomName, Seq, ServerMsg, decode_client,
    limits::{MAX_NONCE_CHARS, PROTOCOL_VERSION},
};

use tokio::sync::oneshot;

mod exercises;

use crate::{
    auth::Auth,
    auth::{Action, AuthMode, Forbidden, TokenRefused, User, now_secs},
    cluster::Cluster,
    committer::{Committer, Job, LineJob, SessionJob, now_ms},
    hub::{
        After, Greeting, Hub, JoinRefused, OpenRefused, Opened, Room, RoomMember, SessionChanges,
    },
    metrics::{Metrics, TypeLabel},
    outbox::{CloseReason, ConnKey, Frame, Outbox, RoomKey},
    products::Catalog,
    rate::{AddressKey, Persistence, TokenBucket},
    state::{AppState, Limits, SendRefused, SharedSendLimits},
    store::ResumeToken,
};

/// What a v2 client's `hello` asks for.
#[derive(Debug, Default)]
pub(crate) struct Hello {
    /// The resume token of the session to resume.
    pub resume: Option<String>,
    /// The rooms to rejoin, with the last `seq` held in each.
    pub rooms: Option<BTreeMap<String, Seq>>,
    /// The display name to use.
    pub name: Option<String>,
    /// The sign-in token.
    pub token: Option<String>,
}

/// What the connection's sign-in timer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenDue {
    /// Tell the client to refresh (`token_expiring`).
    Expiring,
    /// The token is past its `exp` (and the leeway): `token_expired`, close 4001.
    Expired,
}

/// The most lines one `load_older` returns.
const MAX_OLDER: u32 = 500;

/// Who a welcomed connection is.
struct Who {
    token: ResumeToken,
    id: ConnId,
    name: DisplayName,
}

/// A refusal to send back: the code, why, and what it concerned.
struct Refused {
    code: ErrorCode,
    message: String,
    room: Option<RoomName>,
    nonce: Option<String>,
}

impl Refused {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refused {
            code,
            message: message.into(),
            room: None,
            nonce: None,
        }
    }

    fn about(mut self, room: Option<RoomName>, nonce: Option<String>) -> Self {
        self.room = room;
        self.nonce = nonce;
        self
    }
}

/// The longest a sign-in timer waits at once (an `Instant` far enough ahead would
/// overflow).
const MAX_TIMER: Duration = Duration::from_secs(30 * 86_400);

/// The refusal of a room name that is not one; it names what was sent (the error's `room`
/// field holds only valid names), shortened.
fn bad_room(sent: &str, why: &shared::NameError) -> Refused {
    let shown: String = sent.chars().take(40).collect();
    Refused::new(
        ErrorCode::BadRoom,
        format!("bad room name {shown:?}: {why}"),
    )
}

/// One connection: who it is, the rooms it is in, its outbox, and its rate limits. Dropping
/// it takes it out of every room.
pub(crate) struct Connection {
    hub: Arc<Hub>,
    committer: Arc<Committer>,
    cluster: Option<Arc<Cluster>>,
    pub(super) metrics: Arc<Metrics>,
    limits: Limits,
    key: ConnKey,
    outbox: Arc<Outbox>,
    /// Set by the welcome (at once for v1, after the `hello` for v2).
    who: Option<Who>,
    rooms: HashMap<RoomName, Arc<Room>>,
    sends: TokenBucket,
    /// Send limits shared with the address's and the session's other connections.
    shared_sends: Arc<SharedSendLimits>,
    /// The client's address, as rate limits count it.
    address: AddressKey,
    frames: TokenBucket,
    over_limit: Persistence,
    /// Per room, the newest typing text that arrived over the frame rate; sent when a token
    /// frees up (latest value wins, per room).
    /// (B-tree maps here and below: half a hash map's size when empty, which they nearly
    /// always are, in every connection.)
    held_typing: BTreeMap<RoomKey, (Arc<Room>, String)>,
    /// The session was told it sent a line with a nonce (it is then never evicted).
    told_nonces: bool,
    /// When the client last said anything (any frame counts, for the heartbeat).
    last_heard: Instant,
    /// The product list, which this connection may watch and change.
    catalog: Arc<Catalog>,
    /// The random tickers this connection runs, by the client's number for them.
    tickers: BTreeMap<u32, exercises::Ticker>,
    /// Token checks and the policy.
    auth: Arc<Auth>,
    /// The signed-in user (none: a guest). Boxed: most connections have none.
    user: Option<Box<User>>,
    /// When the sign-in timer fires next, and what it does then.
    token_due: Option<(Instant, TokenDue)>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Every timer and subscription ends with its connection.
        self.tickers.clear();
        if let Some(user) = &self.user {
            self.hub.signed_out(&user.id, self.key);
        }
        self.catalog.unwatch(self.key);
        for room in self.rooms.values() {
            self.hub.leave(room, self.key);
        }
        // The session was in use until now: its time to live starts over.
        if let Some(who) = &self.who
            && let Some(stored) = self
                .hub
                .sessions
                .closed(&who.token, self.hub.sessions.now_ms())
        {
            self.store_later(SessionChanges {
                store: vec![stored],
                ..SessionChanges::default()
            });
        }
    }
}

impl Connection {
    /// A connection registered with the hub, not yet welcomed, with full rate buckets.
    pub(crate) fn new(app: &AppState, peer: IpAddr) -> Self {
        let now = Instant::now();
        let limits = app.limits;
        let (key, outbox) = app.hub.connect();
        Connection {
            hub: app.hub.clone(),
            committer: app.committer.clone(),
            cluster: app.cluster.clone(),
            metrics: app.metrics.clone(),
            limits,
            key,
            outbox,
            who: None,
            rooms: HashMap::new(),
            sends: TokenBucket::new(limits.send_rate, limits.send_burst, now),
            shared_sends: app.sends.clone(),
            address: AddressKey::from(peer),
            frames: TokenBucket::new(limits.frame_rate, limits.frame_rate, now),
            over_limit: Persistence::new(limits.close_after),
            held_typing: BTreeMap::new(),
            told_nonces: false,
            last_heard: now,
            catalog: app.catalog.clone(),
            tickers: BTreeMap::new(),
            auth: app.auth.clone(),
            user: None,
            token_due: None,
        }
    }

    /// The connection's number.
    pub(crate) fn key(&self) -> ConnKey {
        self.key
    }

    /// Its outbound queue.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// When the client last said anything (for the heartbeat).
    pub(crate) fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Notes that the client said something (any frame counts for the heartbeat).
    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// Welcomes the connection once its session is durable: a v1 one (`hello` is `None`)
    /// as a new session in `general`, whose lines are the `welcome`'s `history`; a v2 one as
    /// its `hello` says (the session to resume, the rooms to rejoin with the last `seq` held
    /// in each, its name), with a `joined` per room after the `welcome`.
    pub(crate) async fn welcome(&mut self, hello: Option<Hello>) -> Result<(), CloseReason> {
        let v1 = hello.is_none();
        let Hello {
            resume,
            rooms,
            name,
            token,
        } = hello.unwrap_or_default();
        self.sign_in(token)?;
        let (name, bad_name) = self.name_to_use(name.as_deref());
        let resume = resume.filter(|t| !t.is_empty() && t.len() <= 64);
        if let Some(token) = &resume {
            self.ask_the_cluster(token).await?;
        }
        let opened = self.open_session(resume.as_deref(), name).await?;
        let welcome = self.welcome_msg(&opened);
        if let Some(user) = &self.user {
            self.hub.signed_in(&user.id, self.key, &self.outbox);
        }
        tracing::info!(
            conn = self.key.0,
            id = %opened.session.id,
            resumed = opened.resumed,
            "client welcomed"
        );
        self.who = Some(Who {
            token: opened.token,
            id: opened.session.id,
            name: opened.session.name,
        });
        if v1 {
            self.join_general_v1(welcome);
            return Ok(());
        }
        self.outbox.push(Frame::encode(&welcome));
        if let Some(why) = bad_name {
            self.send_error(Refused::new(ErrorCode::BadName, why.to_string()));
        }
        self.join_hello_rooms(rooms);
        Ok(())
    }

    /// The name to open the session with, and why the asked one was refused, if it was. A
    /// signed-in user is called what their token says, when it says; else what the hello
    /// asks for; else by their id (if it makes a display name).
    fn name_to_use(&self, asked: Option<&str>) -> (Option<DisplayName>, Option<shared::NameError>) {
        let (mut name, bad_name) = match asked.map(DisplayName::parse) {
            Some(Ok(name)) => (Some(name), None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
        if let Some(user) = &self.user {
            if let Some(from_token) = user.name.clone() {
                name = Some(from_token);
            } else if name.is_none() {
                name = DisplayName::parse(user.id.as_str()).ok();
            }
        }
        (name, bad_name)
    }

    /// With `--redis`, the shared store is the truth about a resume token: one made on
    /// another server is adopted, one rotated or forgotten there is so here too. Without an
    /// answer the client must come back later (`Busy`), not get a new id: its resent lines
    /// would then count as someone else's.
    async fn ask_the_cluster(&self, token: &str) -> Result<(), CloseReason> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        let known = self.hub.sessions.knows(token);
        match cluster.find_session(token).await {
            Ok(Some(stored)) => self.hub.sessions.adopt(stored),
            Ok(None) if known => self.hub.sessions.forget_unshared(token),
            Ok(None) => {}
            Err(()) => return Err(CloseReason::Busy),
        }
        Ok(())
    }

    /// Opens (or resumes) the session and waits until it is durable.
    async fn open_session(
        &self,
        resume: Option<&str>,
        name: Option<DisplayName>,
    ) -> Result<Opened, CloseReason> {
        let opened = self
            .hub
            .sessions
            .open(
                resume,
                name,
                self.user.as_ref().map(|u| &u.id),
                self.address,
                self.hub.sessions.now_ms(),
            )
            .map_err(|refused| match refused {
                OpenRefused::TooManyNew => CloseReason::TooManySessions,
                OpenRefused::TooManyResumes => CloseReason::TooManyResumes,
                OpenRefused::Full => CloseReason::Busy,
            })?;
        let Opened {
            token,
            changes,
            session,
            resumed,
        } = opened;
        if let Err(reason) = self.make_durable(changes).await {
            self.hub.sessions.closed(&token, self.hub.sessions.now_ms());
            return Err(reason);
        }
        Ok(Opened {
            token,
            changes: SessionChanges::default(),
            session,
            resumed,
        })
    }

    /// The `welcome` of a session just opened.
    fn welcome_msg(&self, opened: &Opened) -> ServerMsg {
        let online = self
            .hub
            .room(&RoomName::general())
            .map_or(0, |general| general.online());
        ServerMsg::Welcome {
            id: opened.session.id.clone(),
            history: Vec::new(),
            online: u32::try_from(online).unwrap_or(u32::MAX),
            protocol: PROTOCOL_VERSION,
            resume: opened.token.0.clone(),
            has_more: false,
            resumed: opened.resumed,
            name: Some(opened.session.name.clone()),
            limits: Some(self.limits.for_clients()),
            greeting: Some(shared::exercises::GREETING.to_owned()),
            user: self.user.as_ref().map(|u| u.info()),
        }
    }

    /// A v1 connection is in `general` at once, its history in the `welcome` itself.
    fn join_general_v1(&mut self, welcome: ServerMsg) {
        let general = RoomName::general();
        let member = self.member();
        let greeting = Greeting::Welcome(Box::new(welcome));
        match self
            .hub
            .join(&general, self.key, member, After::default(), greeting)
        {
            Ok(room) => {
                self.rooms.insert(general, room);
            }
            Err(JoinRefused::RoomsFull) => {
                unreachable!("general always exists: the hub creates it and never forgets it")
            }
        }
    }

    /// Joins the rooms a `hello` names (`general` if none), each after the `seq` it holds.
    /// At most as many rooms as a connection may be in, and so at most that many refusals:
    /// a hello naming thousands of rooms gets one error for the rest.
    fn join_hello_rooms(&mut self, rooms: Option<BTreeMap<String, Seq>>) {
        let rooms =
            rooms.unwrap_or_else(|| BTreeMap::from([(RoomName::general().to_string(), Seq(0))]));
        let max = self.limits.max_rooms_per_conn;
        let skipped = rooms.len().saturating_sub(max);
        for (room, after) in rooms.into_iter().take(max) {
            if let Err(refused) = self.join(&room, After(after)) {
                self.send_error(refused);
            }
        }
        if skipped > 0 {
            self.send_error(Refused::new(
                ErrorCode::TooManyRooms,
                format!(
                    "a connection may be in at most {max} rooms: the hello's last {skipped} \
                     were not joined"
                ),
            ));
        }
    }

    /// Hands session changes to the committer and waits until they are on disk.
    async fn make_durable(&self, changes: SessionChanges) -> Result<(), CloseReason> {
        if changes.is_empty() {
            return Ok(());
        }
        let (durable, on_disk) = oneshot::channel();
        let job = Job::Sessions(SessionJob {
            changes,
            durable: Some(durable),
        });
        if self.committer.submit(job).is_err() {
            tracing::warn!(
                conn = self.key.0,
                "commit queue full: a session was refused"
            );
            return Err(CloseReason::Busy);
        }
        match on_disk.await {
            Ok(true) => Ok(()),
            _ => Err(CloseReason::Busy),
        }
    }

    /// Stores session changes without waiting (a name, a last use).
    fn store_later(&self, changes: SessionChanges) {
        let job = Job::Sessions(SessionJob {
            changes,
            durable: None,
        });
        if self.committer.submit(job).is_err() {
            // In memory it is already true; the next change of this session stores it.
            tracing::warn!(
                conn = self.key.0,
                "commit queue full: a session change waits"
            );
        }
    }

    /// This connection as a room member.
    fn member(&self) -> RoomMember {
        let (id, name) = match &self.who {
            Some(who) => (who.id.clone(), who.name.clone()),
            None => unreachable!("members are welcomed first"),
        };
        RoomMember {
            id,
            name,
            user: self.user.as_ref().map(|u| u.id.clone()),
            outbox: self.outbox.clone(),
        }
    }

    /// Joins a room by the name a client gave (again, if already in it: a fresh `joined`).
    fn join(&mut self, room: &str, after: After) -> Result<(), Refused> {
        let name = RoomName::parse(room).map_err(|why| bad_room(room, &why))?;
        if !self.rooms.contains_key(&name) && self.rooms.len() >= self.limits.max_rooms_per_conn {
            let max = self.limits.max_rooms_per_conn;
            return Err(Refused::new(
                ErrorCode::TooManyRooms,
                format!("a connection may be in at most {max} rooms; leave one first"),
            )
            .about(Some(name), None));
        }
        if let Err(Forbidden(why)) = self
            .auth
            .authorize(self.user.as_deref(), &name, Action::Join)
        {
            // Named in the refusal, but nothing of the room is told: not its lines, not
            // its members, not whether it exists.
            return Err(Refused::new(ErrorCode::Forbidden, why).about(Some(name), None));
        }
        let member = self.member();
        let private = self.auth.is_private(&name);
        match self
            .hub
            .join(&name, self.key, member, after, Greeting::Joined { private })
        {
            Ok(joined) => {
                self.rooms.insert(name, joined);
                Ok(())
            }
            Err(JoinRefused::RoomsFull) => Err(Refused::new(
                ErrorCode::RoomsFull,
                "the server has as many rooms as it may hold; join an existing one",
            )
            .about(Some(name), None)),
        }
    }

    /// The room a frame concerns (none named: `general`), if this connection is in it.
    fn joined_room(&self, room: Option<&str>) -> Result<Arc<Room>, Refused> {
        let name = match room {
            None => RoomName::general(),
            Some(room) => RoomName::parse(room).map_err(|why| bad_room(room, &why))?,
        };
        match self.rooms.get(&name) {
            Some(room) => Ok(room.clone()),
            None => Err(Refused::new(
                ErrorCode::NotJoined,
                format!("not in room `{name}`: join it first"),
            )
            .about(Some(name), None)),
        }
    }

    /// Handles one text frame: the server's one dispatch on [`ClientMsg`]. Returns a close
    /// reason if the connection must end.
    pub(crate) fn on_text(&mut self, text: &str, now: Instant) -> Option<CloseReason> {
        let decoded = decode_client(text);
        let msg = match decoded {
            Ok(msg) => msg,
            Err(err) => {
                self.metrics.frame_in("invalid");
                return self.refuse(now, Refused::new(err.code(), err.to_string()));
            }
        };
        self.metrics.frame_in(msg.type_name());
        match msg {
            ClientMsg::Hello { .. } => self.hello_again(now),
            ClientMsg::Refresh { token } => self.refresh(&token, now),
            ClientMsg::Typing { room, text } => self.typing(room.as_deref(), text, now),
            ClientMsg::Send { room, text, nonce } => self.send(room.as_deref(), text, nonce, now),
            ClientMsg::LoadOlder {
                room,
                before,
                limit,
            } => self.load_older(room.as_deref(), before, limit, now),
            ClientMsg::Ping => self.answer(now, |_| Frame::encode(&ServerMsg::Pong)),
            ClientMsg::Join { room } => self.join_asked(&room, now),
            ClientMsg::Leave { room } => self.leave(&room, now),
            ClientMsg::SetName { name } => self.set_name(&name, now),
            ClientMsg::Members { room, offset } => self.members(&room, offset, now),
            // The exercises beside the chat (`exercises.rs`).
            ClientMsg::Echo { text } => self.echo(text, now),
            ClientMsg::Tic { n } => self.tic(n, now),
            ClientMsg::Binary { size } => self.binary(size, now),
            ClientMsg::StartTicker { ticker, every_ms } => self.start_ticker(ticker, every_ms, now),
            ClientMsg::StopTicker { ticker } => self.stop_ticker(ticker, now),
            ClientMsg::WatchProducts => self.watch_products(now),
            ClientMsg::UnwatchProducts => self.unwatch_products(now),
            ClientMsg::LoadProducts { after } => self.load_products(after, now),
            ClientMsg::AddProduct { product } => self.add_product(product, now),
            ClientMsg::DeleteProduct { id } => self.delete_product(id, now),
        }
    }

    /// A second `hello`: only the first frame may be one.
    fn hello_again(&mut self, now: Instant) -> Option<CloseReason> {
        self.refuse(
            now,
            Refused::new(
                ErrorCode::AlreadyWelcomed,
                "hello is only the first frame of a connection",
            ),
        )
    }

    /// A `typing`: shown to the room at once, or held (newest text wins) past the frame
    /// rate.
    fn typing(&mut self, room: Option<&str>, text: String, now: Instant) -> Option<CloseReason> {
        let room = match self.joined_room(room) {
            Ok(room) => room,
            Err(refused) => return self.refuse(now, refused),
        };
        if let Err(why) = self.check_length(&text) {
            return self.refuse(now, why.about(Some(room.name.clone()), None));
        }
        // Over the rate, typing is conflated, not refused: keep only the newest text.
        if self.held_typing.contains_key(&room.key) || !self.frames.try_take(now) {
            self.metrics
                .rate_limited
                .get_or_create(&TypeLabel { r#type: "typing" })
                .inc();
            self.held_typing.insert(room.key, (room, text));
            // Not refused, but a flood all the same: it counts toward the close.
            if self.over_limit.refused(now) {
                return Some(CloseReason::RateLimited);
            }
        } else {
            room.typing(self.key, text);
        }
        None
    }

    /// A `load_older`: a page of the room's history before `before`, within the reply
    /// budget.
    fn load_older(
        &mut self,
        room: Option<&str>,
        before: Seq,
        limit: u32,
        now: Instant,
    ) -> Option<CloseReason> {
        match self.joined_room(room) {
            Ok(room) => self.answer(now, |conn| {
                let limit = usize::try_from(limit.clamp(1, MAX_OLDER)).unwrap_or(1);
                room.older(before, limit, conn.outbox.reply_budget())
            }),
            Err(refused) => self.refuse(now, refused),
        }
    }

    /// A `join`: answered by the room's `joined` (or a typed refusal).
    fn join_asked(&mut self, room: &str, now: Instant) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        if let Err(refused) = self.join(room, After::default()) {
            self.send_error(refused);
        }
        None
    }

    /// A `leave`: out of the room, answered by `left`.
    fn leave(&mut self, room: &str, now: Instant) -> Option<CloseReason> {
        let room = match self.joined_room(Some(room)) {
            Ok(room) => room,
            Err(refused) => return self.refuse(now, refused),
        };
        self.answer(now, |conn| {
            conn.rooms.remove(&room.name);
            conn.held_typing.remove(&room.key);
            conn.hub.leave(&room, conn.key);
            Frame::encode(&ServerMsg::Left {
                room: room.name.clone(),
            })
        })
    }

    /// A `set_name`: a guest's (or a user without a name from the app) new name.
    fn set_name(&mut self, name: &str, now: Instant) -> Option<CloseReason> {
        if self.user.as_ref().is_some_and(|u| u.name.is_some()) {
            let why = "your name comes from your sign-in; change it in the app";
            return self.refuse(now, Refused::new(ErrorCode::Forbidden, why));
        }
        match DisplayName::parse(name) {
            Ok(name) => self.answer(now, |conn| conn.rename(name)),
            Err(why) => self.refuse(
                now,
                Refused::new(ErrorCode::BadName, format!("bad name: {why}")),
            ),
        }
    }

    /// A `members`: a page of who is in the room, within the reply budget.
    fn members(&mut self, room: &str, offset: Option<u32>, now: Instant) -> Option<CloseReason> {
        match self.joined_room(Some(room)) {
            Ok(room) => self.answer(now, |conn| {
                room.members(offset.unwrap_or(0), conn.outbox.reply_budget())
            }),
            Err(refused) => self.refuse(now, refused),
        }
    }

    /// A `send`: checked, then handed to the committer (which acks it once durable).
    fn send(
        &mut self,
        room: Option<&str>,
        text: String,
        nonce: Option<String>,
        now: Instant,
    ) -> Option<CloseReason> {
        let room = match self.joined_room(room) {
            Ok(room) => room,
            Err(refused) => {
                let room = refused.room.clone();
                return self.refuse(now, refused.about(room, nonce));
            }
        };
        let Some(id) = self.who.as_ref().map(|who| who.id.clone()) else {
            unreachable!("frames are dispatched only once welcomed");
        };
        let shared = if self.sends.try_take(now) {
            self.shared_sends.try_send(&id, self.address, now)
        } else {
            Err(SendRefused::Sender)
        };
        match shared {
            Ok(()) => {}
            Err(SendRefused::Sender) => {
                return self.rate_limited_about(now, "send", Some(room.name.clone()), nonce);
            }
            Err(SendRefused::Server) => {
                let refused = Refused::new(
                    ErrorCode::Unavailable,
                    "the server is at its line rate; send it again in a moment",
                )
                .about(Some(room.name.clone()), nonce);
                self.metrics
                    .rate_limited
                    .get_or_create(&TypeLabel { r#type: "server" })
                    .inc();
                self.send_error(refused);
                return None;
            }
        }
        let about =
            |r: Refused, nonce: &Option<String>| r.about(Some(room.name.clone()), nonce.clone());
        if text.trim().is_empty() {
            let refused = Refused::new(ErrorCode::Empty, "a line cannot be blank");
            return self.refuse(now, about(refused, &nonce));
        }
        if let Err(refused) = self.check_length(&text) {
            return self.refuse(now, about(refused, &nonce));
        }
        if nonce
            .as_ref()
            .is_some_and(|n| n.chars().nth(MAX_NONCE_CHARS).is_some())
        {
            let why = format!("nonce is longer than {MAX_NONCE_CHARS} characters");
            return self.refuse(now, about(Refused::new(ErrorCode::BadField, why), &None));
        }
        let Some(who) = &self.who else {
            unreachable!("frames are dispatched only once welcomed");
        };
        if nonce.is_some() && !self.told_nonces {
            // Before the line can be accepted: its client may resend it under this id.
            self.hub.sessions.holds_nonces(&id);
            self.told_nonces = true;
        }
        let job = Job::Line(LineJob {
            room: room.clone(),
            from: id,
            name: who.name.clone(),
            text,
            nonce: nonce.clone(),
            user: self.user.as_ref().map(|u| u.id.clone()),
            reply: None,
        });
        if self.committer.submit(job).is_err() {
            let refused = Refused::new(
                ErrorCode::Unavailable,
                "the server is busy; send it again later",
            );
            return self.refuse(now, about(refused, &nonce));
        }
        None
    }

    /// Changes this session's name everywhere; returns the `name_set` reply.
    fn rename(&mut self, name: DisplayName) -> Frame {
        if let Some(who) = &mut self.who {
            who.name = name.clone();
            if let Some(stored) =
                self.hub
                    .sessions
                    .rename(&who.token, &name, self.hub.sessions.now_ms())
            {
                self.store_later(SessionChanges {
                    store: vec![stored],
                    ..SessionChanges::default()
                });
            }
        }
        for room in self.rooms.values() {
            room.rename(self.key, &name);
        }
        Frame::encode(&ServerMsg::NameSet { name })
    }

    /// Carries out a request that answers by itself (or not at all), within the frame rate.
    fn answer_with(&mut self, now: Instant, act: impl FnOnce(&mut Self)) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        act(self);
        None
    }

    /// Answers a request with `reply()`, within the frame rate.
    fn answer(
        &mut self,
        now: Instant,
        reply: impl FnOnce(&mut Self) -> Frame,
    ) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        let frame = reply(self);
        self.outbox.push(frame);
        None
    }

    /// When the next held-back typing update may go out, if there is one (the clock is
    /// read only then: this runs each time the connection wakes).
    pub(crate) fn held_typing_at(&mut self) -> Option<Instant> {
        if self.held_typing.is_empty() {
            return None;
        }
        Some(self.frames.next_token_at(Instant::now()))
    }

    /// Sends held-back typing updates while the rate allows.
    pub(crate) fn release_typing(&mut self, now: Instant) {
        while !self.held_typing.is_empty() && self.frames.try_take(now) {
            let Some(key) = self.held_typing.keys().next().copied() else {
                return;
            };
            if let Some((room, text)) = self.held_typing.remove(&key) {
                room.typing(self.key, text);
            }
        }
    }

    fn check_length(&self, text: &str) -> Result<(), Refused> {
        let max = self.limits.max_text_chars;
        // Counting stops one past the limit: a long text costs no more than a short one.
        match text.chars().nth(max) {
            Some(_) => Err(Refused::new(
                ErrorCode::TooLarge,
                format!("text is longer than {max} characters"),
            )),
            None => Ok(()),
        }
    }

    /// A binary frame: not part of the protocol.
    pub(crate) fn on_binary(&mut self, now: Instant) -> Option<CloseReason> {
        self.metrics.frame_in("binary");
        self.refuse(
            now,
            Refused::new(
                ErrorCode::BinaryFrame,
                "binary frames are not part of the protocol; send JSON in a text frame",
            ),
        )
    }

    /// Tells the sender its frame was refused (connection stays), unless it is over its
    /// frame rate, in which case it is told that instead.
    fn refuse(&mut self, now: Instant, refused: Refused) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        self.send_error(refused);
        None
    }

    fn rate_limited(&mut self, now: Instant, kind: &'static str) -> Option<CloseReason> {
        self.rate_limited_about(now, kind, None, None)
    }

    /// Over a rate: the frame is dropped and the sender told (with the room and nonce of a
    /// refused `send`); staying over for too long closes the connection.
    fn rate_limited_about(
        &mut self,
        now: Instant,
        kind: &'static str,
        room: Option<RoomName>,
        nonce: Option<String>,
    ) -> Option<CloseReason> {
        self.metrics
            .rate_limited
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        if self.over_limit.refused(now) {
            return Some(CloseReason::RateLimited);
        }
        self.send_error(
            Refused::new(
                ErrorCode::RateLimited,
                "too many frames: slow down; this one was dropped",
            )
            .about(room, nonce),
        );
        None
    }

    /// A WebSocket ping (answered by the WebSocket layer) or pong (`kind`): within the
    /// frame rate, or it counts toward the close like any flood.
    pub(crate) fn on_ws_control(
        &mut self,
        kind: &'static str,
        now: Instant,
    ) -> Option<CloseReason> {
        if self.frames.try_take(now) {
            return None;
        }
        self.metrics
            .rate_limited
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        self.over_limit
            .refused(now)
            .then_some(CloseReason::RateLimited)
    }

    /// Checks the `hello`'s token as `--auth` says: a guest (none, or auth off), a user, or
    /// a refusal (the `error` is queued; the close to send is returned).
    fn sign_in(&mut self, token: Option<String>) -> Result<(), CloseReason> {
        let mode = self.auth.mode();
        let token = token.filter(|_| mode != AuthMode::Off);
        match token {
            None if mode == AuthMode::Required => {
                self.send_error(Refused::new(
                    ErrorCode::AuthRequired,
                    "this server requires sign-in: send a token in the hello",
                ));
                Err(CloseReason::AuthRequired)
            }
            None => Ok(()),
            Some(token) => match self.auth.verify(&token, now_secs()) {
                Ok(user) => {
                    self.signed_in_as(user);
                    Ok(())
                }
                Err(why) => Err(self.token_refused(&why)),
            },
        }
    }

    /// Queues the refusal of a token; returns the close (4001) that follows it.
    fn token_refused(&self, why: &TokenRefused) -> CloseReason {
        self.send_error(Refused::new(why.code(), why.to_string()));
        match why {
            TokenRefused::Expired => CloseReason::TokenExpired,
            TokenRefused::Bad(_) | TokenRefused::Revoked => CloseReason::BadToken,
        }
    }

    /// Takes `user` as who this connection is, and sets the timer for its token.
    fn signed_in_as(&mut self, user: User) {
        self.user = Some(Box::new(user));
        self.arm_token_timer(TokenDue::Expiring);
    }

    /// When (ms since the epoch) the sign-in timer's `due` step is: the refresh request
    /// `--refresh-before` ahead of `exp`, the end at `exp` and the leeway.
    fn token_step_at(&self, due: TokenDue) -> Option<u64> {
        let user = self.user.as_ref()?;
        let refresh_ms = u64::try_from(self.auth.refresh_before.as_millis()).unwrap_or(u64::MAX);
        Some(match due {
            TokenDue::Expiring => user.exp.saturating_mul(1000).saturating_sub(refresh_ms),
            TokenDue::Expired => user
                .exp
                .saturating_add(self.auth.leeway)
                .saturating_mul(1000),
        })
    }

    /// Sets the sign-in timer for its `due` step (at most a year ahead: a token's `exp` may
    /// be anything the app signed; the timer then fires early and is set again).
    fn arm_token_timer(&mut self, due: TokenDue) {
        self.token_due = self.token_step_at(due).map(|at_ms| {
            let wait = Duration::from_millis(at_ms.saturating_sub(now_ms()));
            (Instant::now() + wait.min(MAX_TIMER), due)
        });
    }

    /// When the sign-in timer fires next, if the connection is signed in.
    pub(crate) fn token_due_at(&self) -> Option<Instant> {
        self.token_due.map(|(at, _)| at)
    }

    /// The sign-in timer fired: ask for a refresh, or end an expired sign-in.
    pub(crate) fn on_token_due(&mut self) -> Option<CloseReason> {
        let (_, due) = self.token_due.take()?;
        let step_at = self.token_step_at(due)?;
        let now = now_ms();
        if now < step_at {
            // Fired early (a far `exp`): not yet.
            self.arm_token_timer(due);
            return None;
        }
        match due {
            TokenDue::Expiring => {
                let exp_ms = self.user.as_ref().map_or(0, |u| u.exp.saturating_mul(1000));
                let in_ms = exp_ms.saturating_sub(now);
                self.outbox
                    .push(Frame::encode(&ServerMsg::TokenExpiring { in_ms }));
                self.arm_token_timer(TokenDue::Expired);
                None
            }
            TokenDue::Expired => Some(self.token_refused(&TokenRefused::Expired)),
        }
    }

    /// A `refresh`: a new token for the same user takes over (and its timer); anything
    /// else ends the sign-in with `bad_token` (4001).
    fn refresh(&mut self, token: &str, now: Instant) -> Option<CloseReason> {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        let Some(current) = self.user.as_ref().map(|u| u.id.clone()) else {
            self.send_error(Refused::new(
                ErrorCode::Forbidden,
                "this connection is a guest's: sign in by connecting with a token",
            ));
            return None;
        };
        match self.auth.verify(token, now_secs()) {
            Ok(user) if user.id == current => {
                let exp = user.exp;
                self.signed_in_as(user);
                // A new token already inside `--refresh-before` (or the same one again) is
                // not asked to refresh a second time: it just runs to its end.
                if self
                    .token_step_at(TokenDue::Expiring)
                    .is_some_and(|at| at <= now_ms())
                {
                    self.arm_token_timer(TokenDue::Expired);
                }
                self.outbox
                    .push(Frame::encode(&ServerMsg::TokenRefreshed { exp }));
                None
            }
            Ok(_) => Some(
                self.token_refused(&TokenRefused::Bad("the new token is another user's".into())),
            ),
            Err(why) => Some(self.token_refused(&why)),
        }
    }

    fn send_error(&self, refused: Refused) {
        self.metrics.error(refused.code.as_str());
        self.outbox.push(Frame::encode(&ServerMsg::Error {
            code: refused.code,
            message: refused.message,
            room: refused.room,
            nonce: refused.nonce,
        }));
    }
}
