//! One connection's state ([`Connection`]): who it is, the rooms it is in, its outbox and
//! its rate limits, and the few things every handler does with them: answer within the
//! frame rate, refuse with a typed `error`, store session changes. The handlers are in
//! [`dispatch`](super::dispatch); the loop that feeds them is [`runtime`](super::runtime).

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
    time::Instant,
};

use shared::{ConnId, DisplayName, ErrorCode, RoomName, Seq, ServerMsg};

mod sign_in;

use crate::{
    committer::{Committer, Job, SessionJob},
    hub::{Hub, Room, RoomMember, SessionChanges},
    metrics::{Metrics, TypeLabel},
    outbox::{CloseReason, ConnKey, Frame, Outbox, RoomKey},
    products::Catalog,
    rate::{AddressKey, Persistence, TokenBucket},
    state::{AppState, Limits, SharedSendLimits},
    store::ResumeToken,
};
pub(crate) use sign_in::SignIn;
pub(super) use sign_in::{TokenDue, refusal};

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

/// Who a welcomed connection is.
pub(super) struct Who {
    pub(super) token: ResumeToken,
    pub(super) id: ConnId,
    pub(super) name: DisplayName,
}

/// A refusal to send back: the code, why, and what it concerned.
pub(super) struct Refused {
    pub(super) code: ErrorCode,
    pub(super) message: String,
    pub(super) room: Option<RoomName>,
    pub(super) nonce: Option<String>,
}

impl Refused {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refused {
            code,
            message: message.into(),
            room: None,
            nonce: None,
        }
    }

    pub(super) fn about(mut self, room: Option<RoomName>, nonce: Option<String>) -> Self {
        self.room = room;
        self.nonce = nonce;
        self
    }
}

/// The refusal of a room name that is not one; it names what was sent (the error's `room`
/// field holds only valid names), shortened.
pub(super) fn bad_room(sent: &str, why: &shared::NameError) -> Refused {
    let shown: String = sent.chars().take(40).collect();
    Refused::new(
        ErrorCode::BadRoom,
        format!("bad room name {shown:?}: {why}"),
    )
}

/// What handling a frame (or a timer) came to: the connection goes on, or it closes with a
/// reason (what is queued goes out first, then the close).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on reading.
    Continue,
    /// Close with this reason.
    Close(CloseReason),
}

/// A connection before its welcome: registered with the hub (it has a number and an
/// outbox, so refusals reach it), signing in, not yet anyone. [`welcome`](Arrival::welcome)
/// makes it a [`Connection`].
pub(crate) struct Arrival {
    pub(super) app: AppState,
    pub(super) key: ConnKey,
    pub(super) outbox: Arc<Outbox>,
    /// The client's address, as rate limits count it.
    pub(super) address: AddressKey,
    pub(super) sign_in: SignIn,
    /// When the client last said anything.
    pub(super) last_heard: Instant,
}

impl Arrival {
    /// A connection registered with the hub, not yet welcomed.
    pub(crate) fn new(app: &AppState, peer: IpAddr) -> Self {
        let (key, outbox) = app.hub.connect();
        Arrival {
            app: app.clone(),
            key,
            outbox,
            address: AddressKey::from(peer),
            sign_in: SignIn::new(app.auth.clone()),
            last_heard: Instant::now(),
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

    /// The server's counters.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.app.metrics
    }

    /// Notes that the client said something.
    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// Queues an `error` frame.
    pub(super) fn send_error(&self, refused: Refused) {
        send_error(&self.app.metrics, &self.outbox, refused);
    }
}

/// Queues the `error` frame of a refusal, counted.
fn send_error(metrics: &Metrics, outbox: &Outbox, refused: Refused) {
    metrics.error(refused.code.as_str());
    outbox.push(Frame::encode(&ServerMsg::Error(shared::server::Error {
        code: refused.code,
        message: refused.message,
        room: refused.room,
        nonce: refused.nonce,
    })));
}

/// One connection: who it is, the rooms it is in, its outbox, and its rate limits. Dropping
/// it takes it out of every room.
pub(crate) struct Connection {
    pub(super) hub: Arc<Hub>,
    pub(super) committer: Arc<Committer>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) limits: Limits,
    pub(super) key: ConnKey,
    pub(super) outbox: Arc<Outbox>,
    /// Who it is: a connection exists only once welcomed (before, it is an [`Arrival`]).
    pub(super) who: Who,
    pub(super) rooms: HashMap<RoomName, Arc<Room>>,
    pub(super) sends: TokenBucket,
    /// Send limits shared with the address's and the session's other connections.
    pub(super) shared_sends: Arc<SharedSendLimits>,
    /// The client's address, as rate limits count it.
    pub(super) address: AddressKey,
    pub(super) frames: TokenBucket,
    pub(super) over_limit: Persistence,
    /// Per room, the newest typing text that arrived over the frame rate; sent when a token
    /// frees up (latest value wins, per room).
    /// (B-tree maps here and below: half a hash map's size when empty, which they nearly
    /// always are, in every connection.)
    pub(super) held_typing: BTreeMap<RoomKey, (Arc<Room>, String)>,
    /// The session was told it sent a line with a nonce (it is then never evicted).
    pub(super) told_nonces: bool,
    /// When the client last said anything (any frame counts, for the heartbeat).
    pub(super) last_heard: Instant,
    /// The product list, which this connection may watch and change.
    pub(super) catalog: Arc<Catalog>,
    /// The random tickers this connection runs, by the client's number for them.
    pub(super) tickers: BTreeMap<u32, Ticker>,
    /// Who signed in (none: a guest), and the token's timer.
    pub(super) sign_in: SignIn,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Every timer and subscription ends with its connection.
        self.tickers.clear();
        if let Some(user) = &self.sign_in.user {
            self.hub.signed_out(&user.id, self.key);
        }
        self.catalog.unwatch(self.key);
        for room in self.rooms.values() {
            self.hub.leave(room, self.key);
        }
        // The session was in use until now: its time to live starts over.
        let now = self.hub.sessions.now_ms();
        if let Some(stored) = self.hub.sessions.closed(&self.who.token, now) {
            self.store_later(SessionChanges {
                store: vec![stored],
                ..SessionChanges::default()
            });
        }
    }
}

impl Connection {
    /// The connection an arrival becomes once welcomed as `who`, with full rate buckets.
    pub(super) fn new(arrival: Arrival, who: Who) -> Self {
        let now = Instant::now();
        let Arrival {
            app,
            key,
            outbox,
            address,
            sign_in,
            last_heard,
        } = arrival;
        let limits = app.limits;
        if let Some(user) = &sign_in.user {
            app.hub.signed_in(&user.id, key, &outbox);
        }
        Connection {
            hub: app.hub,
            committer: app.committer,
            metrics: app.metrics,
            limits,
            key,
            outbox,
            who,
            rooms: HashMap::new(),
            sends: TokenBucket::new(limits.send_rate, limits.send_burst, now),
            shared_sends: app.sends,
            address,
            frames: TokenBucket::new(limits.frame_rate, limits.frame_rate, now),
            over_limit: Persistence::new(limits.close_after),
            held_typing: BTreeMap::new(),
            told_nonces: false,
            last_heard,
            catalog: app.catalog,
            tickers: BTreeMap::new(),
            sign_in,
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

    /// Stores session changes without waiting (a name, a last use).
    pub(super) fn store_later(&self, changes: SessionChanges) {
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
    pub(super) fn member(&self) -> RoomMember {
        RoomMember {
            id: self.who.id.clone(),
            name: self.who.name.clone(),
            user: self.sign_in.user.as_ref().map(|u| u.id.clone()),
            outbox: self.outbox.clone(),
        }
    }

    /// The room a frame concerns (none named: `general`), if this connection is in it.
    pub(super) fn joined_room(&self, room: Option<&str>) -> Result<Arc<Room>, Refused> {
        let name = match room {
            None => RoomName::general(),
            Some(room) => RoomName::parse(room).map_err(|why| bad_room(room, &why))?,
        };
        match self.rooms.get(&name) {
            // (A moderator may have put it out since it joined.)
            Some(room) if room.has(self.key) => Ok(room.clone()),
            _ => Err(Refused::new(
                ErrorCode::NotJoined,
                format!("not in room `{name}`: join it first"),
            )
            .about(Some(name), None)),
        }
    }

    /// Carries out a request that answers by itself (or not at all), within the frame rate.
    pub(super) fn answer_with(&mut self, now: Instant, act: impl FnOnce(&mut Self)) -> Flow {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        act(self);
        Flow::Continue
    }

    /// Answers a request with `reply()`, within the frame rate.
    pub(super) fn answer(&mut self, now: Instant, reply: impl FnOnce(&mut Self) -> Frame) -> Flow {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        let frame = reply(self);
        self.outbox.push(frame);
        Flow::Continue
    }

    pub(super) fn check_length(&self, text: &str) -> Result<(), Refused> {
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

    /// Tells the sender its frame was refused (connection stays), unless it is over its
    /// frame rate, in which case it is told that instead.
    pub(super) fn refuse(&mut self, now: Instant, refused: Refused) -> Flow {
        if !self.frames.try_take(now) {
            return self.rate_limited(now, "frame");
        }
        self.send_error(refused);
        Flow::Continue
    }

    pub(super) fn rate_limited(&mut self, now: Instant, kind: &'static str) -> Flow {
        self.rate_limited_about(now, kind, None, None)
    }

    /// Over a rate: the frame is dropped and the sender told (with the room and nonce of a
    /// refused `send`); staying over for too long closes the connection.
    pub(super) fn rate_limited_about(
        &mut self,
        now: Instant,
        kind: &'static str,
        room: Option<RoomName>,
        nonce: Option<String>,
    ) -> Flow {
        self.metrics
            .rate_limited
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        if self.over_limit.refused(now) {
            return Flow::Close(CloseReason::RateLimited);
        }
        self.send_error(
            Refused::new(
                ErrorCode::RateLimited,
                "too many frames: slow down; this one was dropped",
            )
            .about(room, nonce),
        );
        Flow::Continue
    }

    pub(super) fn send_error(&self, refused: Refused) {
        send_error(&self.metrics, &self.outbox, refused);
    }
}

/// A running random ticker: its task stops when this is dropped (stopped, replaced, or the
/// connection ended).
pub(crate) struct Ticker {
    pub(super) task: tokio::task::AbortHandle,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
