//! Several servers as one, on Redis (`--redis`): this server's side of the cluster.
//!
//! Redis numbers every room's lines (see [`store::redis`](crate::store::redis)); this module
//! carries everything else between servers, as the hub's [`RoomLink`]:
//!
//! - **Following a room.** A server follows (subscribes to) only the rooms it has members in.
//!   The first joiner waits while the server subscribes, reads the other servers' presence,
//!   and reads the room's stream from its last known `seq`; then the room greets it
//!   ([`Room::synced`]). The last member leaving unsubscribes.
//! - **Lines.** The append script publishes each line on its room's channel. Every server
//!   hands what arrives to [`Room::publish`], which skips lines already delivered (this
//!   server's own, which its committer delivered) and holds back a line whose predecessors
//!   have not arrived, asking for a fill ([`RoomLink::fill`]): the missing lines are read
//!   from the stream. No client ever sees a gap. After a lost Redis connection every
//!   followed room is filled the same way.
//! - **Typing and presence.** Each server publishes its own members of a room (coalesced:
//!   at most what the room's presence clock lets out, plus a heartbeat every
//!   [`HEARTBEAT`]) and keeps the latest per room in a hash for servers that start
//!   following later. Every room adds up its own members and the others'; a server that
//!   stops saying anything is dropped after [`FORGET_AFTER`].
//! - **Sessions.** A client resuming on a server that has not seen its session gets it
//!   looked up ([`Cluster::find_session`]).
//!
//! One task does all of this on one pub/sub connection and one command connection; the
//! rooms never wait on it. What the rooms ask waits in a bounded [`Mailbox`]: catching up,
//! releasing and filling a room once each (they come first: a join never waits behind
//! typing), presence latest per room, typing latest per typist. A Redis outage therefore
//! holds at most a few entries per room and per typist, however long it lasts and however
//! much anyone types. Redis traffic per line is one publish, received
//! once by each server following the room: O(servers), not O(clients).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use redis::aio::{MultiplexedConnection, PubSubSink};
use serde::{Deserialize, Serialize};
use shared::{ChatLine, Member, RoomName, Seq, Typist, UserId};

use crate::{
    auth::Auth,
    committer::now_ms,
    hub::{Hub, Room, RoomLink},
    outbox::RoomKey,
    store::{
        RuleOp, StoredRead, StoredRule, StoredSession,
        redis::{
            READS_CHANNEL, READS_KEY, RULES_CHANNEL, RULES_KEY, SessionJson, channel,
            line_of_entry, lines_key, presence_key, reads_of, session_key,
        },
    },
};

/// How often a server repeats who it has in each room it follows.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// A server silent this long has left every room (it died).
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(3);
/// Lines read from a stream at once.
const FILL_PAGE: usize = 500;
/// How long one Redis call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The prefix of every room channel.
const CHANNEL_PREFIX: &str = "charla:room:";

/// What travels on a room's channel between servers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Bus {
    /// A line just appended (published by the append script).
    Line {
        /// Its `seq` (the line's own field is 0).
        seq: u64,
        /// The line.
        line: ChatLine,
    },
    /// A member of `node` typed.
    Typing { node: String, typist: Typist },
    /// `node`'s members of the room now.
    Presence {
        node: String,
        online: u32,
        members: Option<Vec<Member>>,
    },
}

/// A server's members of a room, as kept in the room's presence hash.
#[derive(Debug, Serialize, Deserialize)]
struct PresenceEntry {
    online: u32,
    members: Option<Vec<Member>>,
    /// When it was said, in ms since the Unix epoch.
    at: u64,
}

/// The channel on which servers tell each other to close a user's connections.
const USERS_CHANNEL: &str = "charla:users";
/// The hash of every server's latest [`NodeReport`], by server name.
const NODES_KEY: &str = "charla:nodes";

/// One server's load, as it reports it once a second (for the operators' consoles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeReport {
    /// The server's name among the others.
    pub node: String,
    /// When it reported, in ms since the epoch.
    pub at: u64,
    /// Its open connections.
    pub connections: u64,
    /// Lines made durable by it in the last second.
    pub lines: u64,
    /// Frames it wrote to clients in the last second.
    pub deliveries: u64,
    /// Its CPU use, in percent of one core.
    pub cpu: f32,
    /// Its resident memory, in bytes.
    pub rss: u64,
    /// The rooms it has members in (and so follows), by name.
    pub rooms: Vec<RoomName>,
}

/// `d` in whole milliseconds.
fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A request, on [`USERS_CHANNEL`], to close a user's connections (and to refuse their
/// tokens issued before `revoked_before`); each server answers with how many it closed,
/// pushed on `reply`.
#[derive(Debug, Serialize, Deserialize)]
struct CloseUser {
    user: UserId,
    #[serde(default)]
    revoked_before: Option<u64>,
    reply: String,
}

/// What a server needs to carry out a [`CloseUser`].
struct Users {
    hub: Arc<Hub>,
    auth: Arc<Auth>,
}

/// What the rooms ask of the cluster task.
#[derive(Clone)]
enum Command {
    Sync(Arc<Room>),
    Release(Arc<Room>),
    Fill(Arc<Room>),
    Presence(Arc<Room>, u32, Option<Vec<Member>>),
    Typing(Arc<Room>, Typist),
}

/// Redis did not answer in time (or the answer could not be read): the caller must not act
/// as if the other servers had said "no".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the other servers could not be reached (Redis did not answer)")]
pub(crate) struct Unreachable;

/// This server's handle on the cluster.
pub(crate) struct Cluster {
    /// This server's name among the others (random per start).
    node: String,
    client: redis::Client,
    commands: Arc<Mailbox>,
    lookups: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The hub and the auth of this server, once made (after the cluster).
    users: std::sync::OnceLock<Users>,
}

impl Cluster {
    /// A handle on the cluster that `url` names; [`start`](Self::start) runs it.
    pub(crate) fn new(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        Ok(Arc::new(Cluster {
            node: crate::hub::random_token(9),
            client: redis::Client::open(url)?,
            commands: Arc::new(Mailbox::default()),
            lookups: tokio::sync::Mutex::new(None),
            users: std::sync::OnceLock::new(),
        }))
    }

    /// What the rooms hold to reach the cluster.
    pub(crate) fn link(&self) -> Arc<dyn RoomLink> {
        Arc::new(Link {
            commands: self.commands.clone(),
        })
    }

    /// Starts the cluster task (once).
    pub(crate) fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.run().await })
    }

    /// Shows how many requests of the rooms wait for the cluster task on `gauge`.
    pub(crate) fn count_waiting(&self, gauge: prometheus_client::metrics::gauge::Gauge) {
        let _ = self.commands.gauge.set(gauge);
    }

    /// Lets the cluster close this server's connections of a user when any server asks.
    pub(crate) fn serve_users(&self, hub: Arc<Hub>, auth: Arc<Auth>) {
        let _ = self.users.set(Users { hub, auth });
    }

    /// Closes every connection of `user` on every server (telling each of a revocation);
    /// returns how many were closed in all. `Err` if Redis did not answer.
    pub(crate) async fn close_user(
        &self,
        user: &UserId,
        revoked_before: Option<u64>,
    ) -> Result<usize, Unreachable> {
        // Its own connection: the replies are waited for with a blocking pop.
        let mut conn = timed(self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| Unreachable)?;
        let reply = format!("charla:reply:{}", crate::hub::random_token(12));
        let request = CloseUser {
            user: user.clone(),
            revoked_before,
            reply: reply.clone(),
        };
        let json = serde_json::to_string(&request).map_err(|_| Unreachable)?;
        let servers: usize = timed(
            redis::cmd("PUBLISH")
                .arg(USERS_CHANNEL)
                .arg(json)
                .query_async(&mut conn),
        )
        .await
        .map_err(|_| Unreachable)?;
        let mut closed = 0;
        let deadline = Instant::now() + CALL_TIMEOUT;
        for _ in 0..servers {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            if left <= 0.0 {
                break; // A server that did not answer in time closed nothing we can count.
            }
            let popped: Option<(String, usize)> = tokio::time::timeout(
                CALL_TIMEOUT + Duration::from_millis(500),
                redis::cmd("BLPOP")
                    .arg(&reply)
                    .arg(left)
                    .query_async(&mut conn),
            )
            .await
            .map_err(|_| Unreachable)?
            .map_err(|_| Unreachable)?;
            match popped {
                Some((_, n)) => closed += n,
                None => break,
            }
        }
        let _: Result<(), _> = redis::cmd("DEL").arg(&reply).query_async(&mut conn).await;
        Ok(closed)
    }

    /// A rule another server (or this one) set or lifted: it holds here too.
    fn on_rule(&self, payload: &[u8]) {
        let Some(users) = self.users.get() else {
            return;
        };
        match serde_json::from_slice::<RuleOp>(payload) {
            Ok(op) => users.hub.rules.apply(&op),
            Err(err) => tracing::warn!(%err, "unreadable rule message"),
        }
    }

    /// Every room's rules, as Redis holds them, replace this server's.
    async fn read_rules(&self, conn: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
        let Some(users) = self.users.get() else {
            return Ok(());
        };
        let rules: Vec<(String, String)> =
            timed(redis::cmd("HGETALL").arg(RULES_KEY).query_async(conn)).await?;
        let rules = rules
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str::<StoredRule>(&json).ok())
            .collect();
        users.hub.rules.replace(rules, now_ms());
        Ok(())
    }

    /// A read position another server (or this one) moved: this server's connections of
    /// the user hear it.
    fn on_read(&self, payload: &[u8]) {
        let Some(users) = self.users.get() else {
            return;
        };
        match serde_json::from_slice::<StoredRead>(payload) {
            Ok(read) => {
                users.hub.read_moved(&read.user, &read.room, read.seq);
            }
            Err(err) => tracing::warn!(%err, "unreadable read-position message"),
        }
    }

    /// Every read position Redis holds: those further than this server's move here (and
    /// are told to the user's connections).
    async fn read_positions(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        let Some(users) = self.users.get() else {
            return Ok(());
        };
        let fields: Vec<(String, u64)> =
            timed(redis::cmd("HGETALL").arg(READS_KEY).query_async(conn)).await?;
        for read in reads_of(fields) {
            users.hub.read_moved(&read.user, &read.room, read.seq);
        }
        Ok(())
    }

    /// Carries out another server's (or this one's) [`CloseUser`], and answers it.
    fn on_close_user(&self, payload: &[u8]) {
        let Some(users) = self.users.get() else {
            return;
        };
        let Ok(request) = serde_json::from_slice::<CloseUser>(payload) else {
            tracing::warn!("unreadable close-user message");
            return;
        };
        if let Some(before) = request.revoked_before {
            users.auth.revoke(&request.user, before);
        }
        let closed = users.hub.disconnect_user(&request.user);
        let client = self.client.clone();
        tokio::spawn(async move {
            let Ok(mut conn) = timed(client.get_multiplexed_async_connection()).await else {
                return;
            };
            let _: Result<(), _> = timed(
                redis::pipe()
                    .cmd("RPUSH")
                    .arg(&request.reply)
                    .arg(closed)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&request.reply)
                    .arg(10)
                    .ignore()
                    .query_async(&mut conn),
            )
            .await;
        });
    }

    /// The lookups' connection (made again after a failure), cloned out of its lock.
    async fn lookup_conn(&self) -> Result<MultiplexedConnection, Unreachable> {
        let mut lookups = self.lookups.lock().await;
        if lookups.is_none() {
            let conn =
                tokio::time::timeout(CALL_TIMEOUT, self.client.get_multiplexed_async_connection())
                    .await;
            match conn {
                Ok(Ok(conn)) => *lookups = Some(conn),
                _ => return Err(Unreachable),
            }
        }
        lookups.clone().ok_or(Unreachable)
    }

    /// Runs `cmd` on the lookups' connection, forgetting the connection if it fails.
    async fn lookup<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Unreachable> {
        let mut conn = self.lookup_conn().await?;
        match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            _ => {
                *self.lookups.lock().await = None;
                Err(Unreachable)
            }
        }
    }

    /// This server's name among the others.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Tells the other servers (and their consoles) this server's load, in `charla:nodes`.
    pub(crate) async fn report(&self, report: &NodeReport) -> Result<(), Unreachable> {
        let json = serde_json::to_string(report).map_err(|_| Unreachable)?;
        let mut set = redis::cmd("HSET");
        set.arg(NODES_KEY).arg(&self.node).arg(json);
        self.lookup::<()>(set).await
    }

    /// Every server's latest report, by name; a server silent for twice [`FORGET_AFTER`]
    /// is gone (and forgotten from the hash).
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeReport>, Unreachable> {
        let mut all = redis::cmd("HGETALL");
        all.arg(NODES_KEY);
        let found: HashMap<String, String> = self.lookup(all).await?;
        let oldest = now_ms().saturating_sub(duration_ms(FORGET_AFTER) * 2);
        let mut nodes = Vec::new();
        let mut gone = Vec::new();
        for (node, json) in found {
            match serde_json::from_str::<NodeReport>(&json) {
                Ok(report) if report.at >= oldest => nodes.push(report),
                _ => gone.push(node),
            }
        }
        if !gone.is_empty() {
            let mut forget = redis::cmd("HDEL");
            forget.arg(NODES_KEY).arg(gone);
            // Tidying only: a failure leaves them for the next reader.
            let _ = self.lookup::<()>(forget).await;
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// The session `token` names, as another server stored it. `Err` if Redis did not
    /// answer (the caller must not open a new session in its place: resent lines would
    /// then count as another sender's).
    pub(crate) async fn find_session(
        &self,
        token: &str,
    ) -> Result<Option<StoredSession>, Unreachable> {
        // The connection is multiplexed: lookups (a storm of clients resuming here after
        // their node died) run side by side.
        let mut get = redis::cmd("GET");
        get.arg(session_key(token));
        let json: Option<String> = self.lookup(get).await?;
        Ok(json
            .and_then(|j| serde_json::from_str::<SessionJson>(&j).ok())
            .map(|s| s.into_stored(token)))
    }

    async fn run(&self) {
        let commands = self.commands.clone();
        let mut followed: HashMap<RoomName, Arc<Room>> = HashMap::new();
        // Rooms whose catching up Redis interrupted: their joiners still wait.
        let mut unsynced: Vec<Arc<Room>> = Vec::new();
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let mut links = Links {
                followed: &mut followed,
                unsynced: &mut unsynced,
            };
            match self.session(&mut links, &commands).await {
                Ok(Stop) => return,
                Err(err) => {
                    tracing::warn!(%err, "lost Redis; following the rooms again once it is back");
                }
            }
            if started.elapsed() > Duration::from_secs(5) {
                backoff = Duration::from_millis(100); // It was up: try again soon.
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// One Redis connection's life: follows every followed room again (filling what was
    /// missed), then serves the rooms and the channels until Redis goes away.
    async fn session(
        &self,
        links: &mut Links<'_>,
        commands: &Mailbox,
    ) -> Result<Stop, redis::RedisError> {
        let (mut sink, mut stream) = timed(self.client.get_async_pubsub()).await?.split();
        let mut conn = timed(self.client.get_multiplexed_async_connection()).await?;
        timed(sink.subscribe(USERS_CHANNEL)).await?;
        timed(sink.subscribe(RULES_CHANNEL)).await?;
        timed(sink.subscribe(READS_CHANNEL)).await?;
        // Rules set and positions read while this server was not listening (it started, or
        // lost Redis): read them all again, now that the ones to come will be heard.
        self.read_rules(&mut conn).await?;
        self.read_positions(&mut conn).await?;
        for (name, room) in links.followed.iter() {
            timed(sink.subscribe(channel(name))).await?;
            fill(&mut conn, room).await?;
        }
        while let Some(room) = links.unsynced.pop() {
            let sync = Command::Sync(room.clone());
            if let Err(err) = self
                .on_command(sync, links.followed, &mut sink, &mut conn)
                .await
            {
                links.unsynced.push(room);
                return Err(err);
            }
        }
        let followed = &mut *links.followed;
        tracing::info!(node = %self.node, rooms = followed.len(), "following the cluster");
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "the subscription ended",
                        )));
                    };
                    self.on_bus(followed, msg.get_channel_name(), msg.get_payload_bytes());
                }
                command = commands.next() => {
                    let Some(command) = command else { return Ok(Stop) };
                    let syncing = match &command {
                        Command::Sync(room) => Some(room.clone()),
                        _ => None,
                    };
                    if let Err(err) = self.on_command(command, followed, &mut sink, &mut conn).await {
                        links.unsynced.extend(syncing);
                        return Err(err);
                    }
                }
                _ = heartbeat.tick() => {
                    self.beat(followed, &mut conn).await?;
                }
            }
        }
    }

    fn on_bus(&self, followed: &HashMap<RoomName, Arc<Room>>, channel: &str, payload: &[u8]) {
        if channel == USERS_CHANNEL {
            return self.on_close_user(payload);
        }
        if channel == RULES_CHANNEL {
            return self.on_rule(payload);
        }
        if channel == READS_CHANNEL {
            return self.on_read(payload);
        }
        let Some(room) = channel
            .strip_prefix(CHANNEL_PREFIX)
            .and_then(|name| RoomName::parse(name).ok())
            .and_then(|name| followed.get(&name))
        else {
            return; // A room no longer followed.
        };
        match serde_json::from_slice::<Bus>(payload) {
            Ok(Bus::Line { seq, mut line }) => {
                line.seq = Seq(seq);
                room.publish(vec![line], Vec::new());
            }
            Ok(Bus::Typing { node, typist }) if node != self.node => {
                room.remote_typing(&node, typist);
            }
            Ok(Bus::Presence {
                node,
                online,
                members,
            }) if node != self.node => {
                room.set_remote(&node, online, members, Instant::now() + FORGET_AFTER);
            }
            Ok(_) => {} // This server's own typing and presence.
            Err(err) => tracing::warn!(%err, channel, "unreadable cluster message"),
        }
    }

    async fn on_command(
        &self,
        command: Command,
        followed: &mut HashMap<RoomName, Arc<Room>>,
        sink: &mut PubSubSink,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        match command {
            Command::Sync(room) => {
                if !followed.contains_key(&room.name) {
                    timed(sink.subscribe(channel(&room.name))).await?;
                    followed.insert(room.name.clone(), room.clone());
                }
                self.read_presence(&room, conn).await?;
                fill(conn, &room).await?;
                if room.synced() {
                    let (online, members) = room.local_presence();
                    self.say_presence(&room, online, members, conn).await?;
                } else {
                    followed.remove(&room.name);
                    timed(sink.unsubscribe(channel(&room.name))).await?;
                }
            }
            Command::Release(room) => {
                if followed.remove(&room.name).is_some() {
                    timed(sink.unsubscribe(channel(&room.name))).await?;
                }
            }
            Command::Fill(room) => fill(conn, &room).await?,
            Command::Presence(room, online, members) => {
                self.say_presence(&room, online, members, conn).await?;
            }
            Command::Typing(room, typist) => {
                let bus = Bus::Typing {
                    node: self.node.clone(),
                    typist,
                };
                publish(conn, &room.name, &bus).await?;
            }
        }
        Ok(())
    }

    /// Tells the others (and the presence hash) who this server has in `room`.
    async fn say_presence(
        &self,
        room: &Room,
        online: u32,
        members: Option<Vec<Member>>,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        let key = presence_key(&room.name);
        if online == 0 {
            timed(
                redis::cmd("HDEL")
                    .arg(&key)
                    .arg(&self.node)
                    .query_async::<()>(conn),
            )
            .await?;
        } else {
            let entry = PresenceEntry {
                online,
                members: members.clone(),
                at: now_ms(),
            };
            let json = serde_json::to_string(&entry).unwrap_or_default();
            timed(
                redis::cmd("HSET")
                    .arg(&key)
                    .arg(&self.node)
                    .arg(json)
                    .query_async::<()>(conn),
            )
            .await?;
        }
        let bus = Bus::Presence {
            node: self.node.clone(),
            online,
            members,
        };
        publish(conn, &room.name, &bus).await
    }

    /// Reads what the other servers last said of `room` (before greeting its first joiner
    /// here), forgetting servers that went silent.
    async fn read_presence(
        &self,
        room: &Arc<Room>,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        let key = presence_key(&room.name);
        let all: HashMap<String, String> =
            timed(redis::cmd("HGETALL").arg(&key).query_async(conn)).await?;
        let now = now_ms();
        let forget_ms = u64::try_from(FORGET_AFTER.as_millis()).unwrap_or(u64::MAX);
        for (node, json) in all {
            if node == self.node {
                continue;
            }
            let entry = serde_json::from_str::<PresenceEntry>(&json).ok();
            match entry {
                Some(e) if now.saturating_sub(e.at) < forget_ms => {
                    let left = Duration::from_millis(forget_ms - now.saturating_sub(e.at));
                    room.set_remote(&node, e.online, e.members, Instant::now() + left);
                }
                _ => {
                    // A dead server's last word: nobody will take it back.
                    timed(
                        redis::cmd("HDEL")
                            .arg(&key)
                            .arg(&node)
                            .query_async::<()>(conn),
                    )
                    .await?;
                }
            }
        }
        room.expire_remote(Instant::now());
        Ok(())
    }

    /// The heartbeat: says again who this server has in every followed room, and forgets
    /// servers that stopped saying. (A room not followed holds no one else's members: it
    /// forgets them when released and reads them again when followed.)
    async fn beat(
        &self,
        followed: &HashMap<RoomName, Arc<Room>>,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        let now = Instant::now();
        for room in followed.values() {
            let (online, members) = room.local_presence();
            if online > 0 {
                self.say_presence(room, online, members, conn).await?;
            }
            room.expire_remote(now);
        }
        Ok(())
    }
}

/// The cluster task ended because the server is stopping.
struct Stop;

/// What the cluster task keeps across Redis connections.
struct Links<'a> {
    /// The rooms this server follows.
    followed: &'a mut HashMap<RoomName, Arc<Room>>,
    /// Rooms whose catching up a lost connection interrupted: done again first thing.
    unsynced: &'a mut Vec<Arc<Room>>,
}

/// Publishes on a room's channel.
async fn publish(
    conn: &mut MultiplexedConnection,
    room: &RoomName,
    bus: &Bus,
) -> Result<(), redis::RedisError> {
    let json = serde_json::to_string(bus).unwrap_or_default();
    timed(
        redis::cmd("PUBLISH")
            .arg(channel(room))
            .arg(json)
            .query_async::<()>(conn),
    )
    .await
}

/// Reads the lines `room` has not delivered from its stream, and publishes them to it.
async fn fill(conn: &mut MultiplexedConnection, room: &Arc<Room>) -> Result<(), redis::RedisError> {
    loop {
        let after = room.last_seq();
        let entries: Vec<(String, Vec<Vec<u8>>)> = timed(
            redis::cmd("XRANGE")
                .arg(lines_key(&room.name))
                .arg(format!("{}-0", after.0 + 1))
                .arg("+")
                .arg("COUNT")
                .arg(FILL_PAGE)
                .query_async(conn),
        )
        .await?;
        let count = entries.len();
        let lines: Vec<ChatLine> = entries
            .into_iter()
            .filter_map(|(id, fields)| line_of_entry(&id, fields.get(1)?))
            .collect();
        match lines.first() {
            None => {
                room.fill_failed();
                return Ok(());
            }
            // The stream was trimmed past what this server holds: start over from it.
            Some(first) if first.seq.0 > after.0 + 1 => room.restart_at(lines),
            Some(_) => room.publish(lines, Vec::new()),
        }
        if count < FILL_PAGE {
            return Ok(());
        }
    }
}

/// A Redis call that gives up after [`CALL_TIMEOUT`].
async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, redis::RedisError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "Redis did not answer in time",
        ))),
    }
}

/// The rooms' end of the cluster: every call only leaves a request in the mailbox.
struct Link {
    commands: Arc<Mailbox>,
}

impl RoomLink for Link {
    fn sync(&self, room: &Arc<Room>) {
        self.commands.put(Command::Sync(room.clone()));
    }

    fn release(&self, room: &Arc<Room>) {
        self.commands.put(Command::Release(room.clone()));
    }

    fn fill(&self, room: &Arc<Room>, _after: Seq) {
        self.commands.put(Command::Fill(room.clone()));
    }

    fn presence(&self, room: &Arc<Room>, online: u32, members: Option<Vec<Member>>) {
        self.commands
            .put(Command::Presence(room.clone(), online, members));
    }

    fn typing(&self, room: &Arc<Room>, typist: &Typist) {
        self.commands
            .put(Command::Typing(room.clone(), typist.clone()));
    }
}

/// What the rooms ask of the cluster task, bounded: see the module docs.
#[derive(Default)]
struct Mailbox {
    inner: std::sync::Mutex<Waiting>,
    ready: tokio::sync::Notify,
    /// `charla_cluster_waiting`, once the server's metrics exist.
    gauge: std::sync::OnceLock<prometheus_client::metrics::gauge::Gauge>,
}

/// The requests waiting, by kind. A room's catching up, release and fill are each asked
/// once until done; presence and typing keep only their latest value.
#[derive(Default)]
struct Waiting {
    /// Catch-ups, releases and fills, in order, each (kind, room) once.
    control: VecDeque<Command>,
    queued: HashSet<(u8, RoomKey)>,
    /// The latest presence per room, and the rooms in the order they first waited.
    presence: HashMap<RoomKey, Command>,
    presence_order: VecDeque<RoomKey>,
    /// The latest text per (room, typist), and the typists in the order they first waited.
    typing: HashMap<(RoomKey, TypistKey), Command>,
    typing_order: VecDeque<(RoomKey, TypistKey)>,
}

/// Who a typist is across servers: the signed-in user, or the guest connection.
#[derive(Clone, PartialEq, Eq, Hash)]
enum TypistKey {
    User(UserId),
    Guest(shared::ConnId),
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Plain queue operations: consistent after any panic.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leaves a request (replacing an older one it makes pointless).
    fn put(&self, command: Command) {
        let mut waiting = self.lock();
        match &command {
            Command::Sync(room) | Command::Release(room) | Command::Fill(room) => {
                let kind = match command {
                    Command::Sync(_) => 0,
                    Command::Release(_) => 1,
                    _ => 2,
                };
                if waiting.queued.insert((kind, room.key)) {
                    waiting.control.push_back(command);
                }
            }
            Command::Presence(room, ..) => {
                let key = room.key;
                if waiting.presence.insert(key, command).is_none() {
                    waiting.presence_order.push_back(key);
                }
            }
            Command::Typing(room, typist) => {
                let who = typist
                    .user
                    .clone()
                    .map_or_else(|| TypistKey::Guest(typist.from.clone()), TypistKey::User);
                let key = (room.key, who);
                if waiting.typing.insert(key.clone(), command).is_none() {
                    waiting.typing_order.push_back(key);
                }
            }
        }
        self.show(&waiting);
        drop(waiting);
        self.ready.notify_one();
    }

    fn show(&self, waiting: &Waiting) {
        if let Some(gauge) = self.gauge.get() {
            gauge.set(i64::try_from(waiting.len()).unwrap_or(i64::MAX));
        }
    }

    /// The next request: control first, then presence, then typing.
    fn take(&self) -> Option<Command> {
        let mut waiting = self.lock();
        let command = waiting.pop();
        self.show(&waiting);
        command
    }

    /// Waits for the next request. (Never `None`: the rooms' link lives as long as the
    /// server; the option keeps the task's loop shape.)
    async fn next(&self) -> Option<Command> {
        loop {
            let notified = self.ready.notified();
            if let Some(command) = self.take() {
                return Some(command);
            }
            notified.await;
        }
    }
}

impl Waiting {
    fn len(&self) -> usize {
        self.control.len() + self.presence.len() + self.typing.len()
    }

    fn pop(&mut self) -> Option<Command> {
        let waiting = self;
        if let Some(command) = waiting.control.pop_front() {
            let (kind, key) = match &command {
                Command::Sync(room) => (0, room.key),
                Command::Release(room) => (1, room.key),
                Command::Fill(room) => (2, room.key),
                Command::Presence(room, ..) | Command::Typing(room, _) => (3, room.key),
            };
            waiting.queued.remove(&(kind, key));
            return Some(command);
        }
        while let Some(key) = waiting.presence_order.pop_front() {
            if let Some(command) = waiting.presence.remove(&key) {
                return Some(command);
            }
        }
        while let Some(key) = waiting.typing_order.pop_front() {
            if let Some(command) = waiting.typing.remove(&key) {
                return Some(command);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hub::RoomConfig, metrics::Metrics};
    use shared::{ConnId, DisplayName};

    fn room(name: &str, key: u64) -> Arc<Room> {
        let config = RoomConfig {
            history_cap: 10,
            welcome_lines: 10,
            presence_list_max: 10,
        };
        Arc::new(Room::new(
            RoomName::parse(name).expect("a room name"),
            RoomKey(key),
            Vec::new(),
            config,
            Arc::new(Metrics::new()),
            None,
            crate::hub::Registers::default(),
        ))
    }

    fn typist(id: &str, text: &str) -> Typist {
        Typist {
            from: ConnId::new(id),
            name: DisplayName::parse("Ana").expect("a name"),
            user: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn the_mailbox_keeps_one_update_per_typist_and_room_and_serves_catching_up_first() {
        let mailbox = Mailbox::default();
        let sala = room("sala", 1);
        for i in 0..10_000 {
            mailbox.put(Command::Typing(
                sala.clone(),
                typist("AAAA", &format!("{i}")),
            ));
            mailbox.put(Command::Typing(
                sala.clone(),
                typist("BBBB", &format!("{i}")),
            ));
            mailbox.put(Command::Presence(sala.clone(), i, None));
        }
        assert_eq!(mailbox.lock().len(), 3, "two typists and one presence");
        let otra = room("otra", 2);
        mailbox.put(Command::Sync(otra.clone()));
        mailbox.put(Command::Sync(otra.clone()));
        assert!(matches!(mailbox.take(), Some(Command::Sync(r)) if r.key == otra.key));
        assert!(matches!(
            mailbox.take(),
            Some(Command::Presence(_, 9_999, _))
        ));
        let Some(Command::Typing(_, first)) = mailbox.take() else {
            panic!("typing last");
        };
        assert_eq!(first.text, "9999", "the latest text");
        assert!(matches!(mailbox.take(), Some(Command::Typing(..))));
        assert!(
            mailbox.take().is_none(),
            "a repeated catch-up is asked once"
        );
    }
}
