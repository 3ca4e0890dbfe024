//! The hub: the rooms, the sessions, and who is connected.
//!
//! The hub is a registry: it finds or creates a [`Room`] by name (under a short registry
//! lock), and everything that concerns a room then happens under that room's own lock (see
//! [`room`]). Sessions (resume token → id and name) have a lock of their own. Nothing here
//! awaits a client or the disk: lines arrive numbered and durable from the
//! [`Committer`](crate::committer).

mod archive;
mod room;
mod sessions;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use base64::Engine as _;
use shared::{ChatLine, ConnId, DisplayName, RoomName, ServerMsg, UserId};

pub(crate) use archive::ArchiveLink;
pub(crate) use room::{
    After, Greeting, Registers, RepeatedAck, Room, RoomConfig, RoomLink, RoomMember,
};
pub(crate) use sessions::{OpenRefused, Opened, SessionChanges, SessionRules, Sessions};

use crate::{
    metrics::Metrics,
    outbox::{CloseReason, ConnKey, Frame, Outbox, RoomKey},
    reads::Reads,
    rules::Rules,
};

/// How the hub is sized.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubConfig {
    /// How each room is sized.
    pub room: RoomConfig,
    /// Each outbox's byte limit (see [`Outbox`]).
    pub outbox_bytes: usize,
    /// The most rooms the server holds in memory at once (quiet rooms leave to make room,
    /// when their lines are kept elsewhere: see [`Room::is_quiet`]).
    pub max_rooms: usize,
    /// The most lines all rooms keep in memory together (`--max-history-lines`): past it,
    /// quiet rooms leave memory.
    pub max_history_lines: usize,
}

/// Shared state of the relay. Cheap to share as `Arc<Hub>`.
pub(crate) struct Hub {
    /// Every room by name. Held only to find, create or forget a room; a joiner holds it
    /// (shared) while it joins, so a room cannot be forgotten under it.
    rooms: RwLock<HashMap<RoomName, Arc<Room>>>,
    next_room: AtomicU64,
    /// Resume tokens → the session they give back.
    pub(crate) sessions: Sessions,
    /// Every open connection's outbox, to close them all on shutdown.
    conns: Mutex<HashMap<ConnKey, Arc<Outbox>>>,
    /// The echo server's connections (`/echo`), closed at shutdown like the chat's.
    echoes: Mutex<HashMap<ConnKey, Arc<Outbox>>>,
    /// Each signed-in user's open connections, so the server API can close them.
    users: Mutex<HashMap<UserId, HashMap<ConnKey, Arc<Outbox>>>>,
    next_conn: AtomicU64,
    config: HubConfig,
    /// Gauges are kept where the numbers change.
    metrics: Arc<Metrics>,
    /// The other servers, if this one is part of a cluster.
    link: Option<Arc<dyn RoomLink>>,
    /// This server's own file, alone and on SQLite: where rooms that left memory are read
    /// back from.
    archive: Option<Arc<dyn RoomLink>>,
    /// Rooms with lines in the file that are not in memory (they left it, or did not fit at
    /// start): made again from the file when someone joins them. Names only.
    archived: Mutex<std::collections::HashSet<RoomName>>,
    /// Every room's bans, mutes and slow modes.
    pub(crate) rules: Arc<Rules>,
    /// Every signed-in user's read position in each room.
    pub(crate) reads: Arc<Reads>,
}

/// Who a session is.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The public id.
    pub id: ConnId,
    /// The display name.
    pub name: DisplayName,
}

/// Why a connection could not join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinRefused {
    /// The server already holds `--max-rooms` rooms.
    RoomsFull,
}

/// The loaded lines, room by room: the rooms to hold in memory, and the ones left in the
/// store. `general` always exists (v1 clients are put there) and is never left out. With
/// an archive (rooms can be read back on demand), the most recently active rooms are held,
/// as many as `--max-rooms` and `--max-history-lines` allow; without one, every room.
fn rooms_to_open(
    lines: Vec<ChatLine>,
    config: &HubConfig,
    archive: bool,
) -> (Vec<(RoomName, Vec<ChatLine>)>, HashSet<RoomName>) {
    let mut by_room: HashMap<RoomName, Vec<ChatLine>> =
        HashMap::from([(RoomName::general(), Vec::new())]);
    for line in lines {
        by_room.entry(line.room.clone()).or_default().push(line);
    }
    let mut by_room: Vec<(RoomName, Vec<ChatLine>)> = by_room.into_iter().collect();
    let mut archived = HashSet::new();
    if archive {
        by_room.sort_by_key(|(name, lines)| {
            let newest = lines.last().map_or(0, |l| l.at);
            (name != &RoomName::general(), std::cmp::Reverse(newest))
        });
        let (mut kept, mut rooms) = (0, 0);
        by_room.retain(|(name, lines)| {
            kept += lines.len().min(config.room.history_cap.max(1));
            rooms += 1;
            let fits =
                rooms == 1 || (rooms <= config.max_rooms && kept <= config.max_history_lines);
            if !fits {
                archived.insert(name.clone());
            }
            fits
        });
    }
    (by_room, archived)
}

impl Hub {
    /// A hub over the history and sessions loaded from the store.
    pub(crate) fn new(
        lines: Vec<ChatLine>,
        sessions: Sessions,
        config: HubConfig,
        metrics: Arc<Metrics>,
        link: Option<Arc<dyn RoomLink>>,
        archive: Option<Arc<dyn RoomLink>>,
        registers: Registers,
    ) -> Self {
        let next_room = AtomicU64::new(0);
        let (by_room, archived) = rooms_to_open(lines, &config, archive.is_some());
        let rooms = by_room
            .into_iter()
            .map(|(name, lines)| {
                let key = next_room_key(&next_room);
                let room = Room::new(
                    name.clone(),
                    key,
                    lines,
                    config.room,
                    metrics.clone(),
                    link.clone(),
                    registers.clone(),
                );
                (name, Arc::new(room))
            })
            .collect::<HashMap<_, _>>();
        if let Some(general) = rooms.get(&RoomName::general()) {
            general.mark_has_lines();
        }
        metrics.rooms.set(gauge(rooms.len()));
        Hub {
            rooms: RwLock::new(rooms),
            next_room,
            sessions,
            conns: Mutex::new(HashMap::new()),
            echoes: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            config,
            metrics,
            link,
            archive,
            archived: Mutex::new(archived),
            rules: registers.rules,
            reads: registers.reads,
        }
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<ConnKey, Arc<Outbox>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection: its number and its (empty) outbox.
    pub(crate) fn connect(&self) -> (ConnKey, Arc<Outbox>) {
        let key = ConnKey(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let outbox = Arc::new(Outbox::new(self.config.outbox_bytes));
        let mut conns = self.conns();
        conns.insert(key, outbox.clone());
        self.metrics.connections.set(gauge(conns.len()));
        (key, outbox)
    }

    /// Bytes queued for every open connection and not yet written (the operator's console
    /// reads it once a second: one short lock per connection, none on the fan-out's path).
    pub(crate) fn backlog(&self) -> u64 {
        let conns = self.conns();
        conns.values().map(|o| o.waiting_bytes() as u64).sum()
    }

    /// Registers an echo connection (`/echo`): an outbox the shutdown closes like the chat's,
    /// not counted among the chat's connections.
    pub(crate) fn connect_echo(&self) -> (ConnKey, Arc<Outbox>) {
        let key = ConnKey(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let outbox = Arc::new(Outbox::new(self.config.outbox_bytes));
        self.echoes().insert(key, outbox.clone());
        (key, outbox)
    }

    /// Forgets an echo connection.
    pub(crate) fn disconnect_echo(&self, key: ConnKey) {
        self.echoes().remove(&key);
    }

    /// Connections of any kind still open (the chat's and the echo's).
    pub(crate) fn open_connections(&self) -> usize {
        self.conns().len() + self.echoes().len()
    }

    fn echoes(&self) -> MutexGuard<'_, HashMap<ConnKey, Arc<Outbox>>> {
        self.echoes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets a connection (it has left its rooms already). Returns how many remain.
    pub(crate) fn disconnect(&self, key: ConnKey) -> usize {
        let mut conns = self.conns();
        conns.remove(&key);
        self.metrics.connections.set(gauge(conns.len()));
        conns.len()
    }

    /// Puts a connection in a room (creating the room if it is new) and queues its greeting.
    pub(crate) fn join(
        &self,
        name: &RoomName,
        key: ConnKey,
        member: RoomMember,
        after: After,
        greeting: Greeting,
    ) -> Result<Arc<Room>, JoinRefused> {
        {
            let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(room) = rooms.get(name) {
                room.join(key, member, after, greeting);
                return Ok(room.clone());
            }
        }
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        let room = self.find_or_create(&mut rooms, name, |_| {})?;
        room.join(key, member, after, greeting);
        Ok(room)
    }

    /// The room `name` in the registry, or a new one (`made` runs on it before it is
    /// shared), unless the server holds `--max-rooms` already.
    fn find_or_create(
        &self,
        rooms: &mut HashMap<RoomName, Arc<Room>>,
        name: &RoomName,
        made: impl FnOnce(&Room),
    ) -> Result<Arc<Room>, JoinRefused> {
        if let Some(room) = rooms.get(name) {
            return Ok(room.clone()); // Someone created it meanwhile.
        }
        if rooms.len() >= self.config.max_rooms {
            self.make_room(rooms, 1);
        }
        if rooms.len() >= self.config.max_rooms {
            return Err(JoinRefused::RoomsFull);
        }
        let key = next_room_key(&self.next_room);
        // A room whose lines are in the file is read back from it (its joiners wait);
        // any other starts empty, at once.
        let from_file = self
            .archived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let link = if from_file {
            self.archive.clone()
        } else {
            self.link.clone()
        };
        let room = Arc::new(Room::new(
            name.clone(),
            key,
            Vec::new(),
            self.config.room,
            self.metrics.clone(),
            link,
            Registers {
                rules: self.rules.clone(),
                reads: self.reads.clone(),
            },
        ));
        made(&room);
        rooms.insert(name.clone(), room.clone());
        self.metrics.rooms.set(gauge(rooms.len()));
        Ok(room)
    }

    /// Lets up to `count` quiet rooms leave memory (not `general`; none that something else
    /// holds, such as a line in flight). Returns how many left.
    fn make_room(&self, rooms: &mut HashMap<RoomName, Arc<Room>>, count: usize) -> usize {
        let leaving: Vec<RoomName> = rooms
            .iter()
            .filter(|(name, room)| self.may_leave(name, room))
            .map(|(name, _)| name.clone())
            .take(count)
            .collect();
        for name in &leaving {
            self.evict(rooms, name);
        }
        self.metrics.rooms.set(gauge(rooms.len()));
        leaving.len()
    }

    /// Whether `room` may leave memory now: see [`Room::is_quiet`]; not `general`, and
    /// nothing else holds it.
    fn may_leave(&self, name: &RoomName, room: &Arc<Room>) -> bool {
        *name != RoomName::general()
            && Arc::strong_count(room) == 1
            && room.is_quiet(self.archive.is_some())
    }

    /// The history of these rooms expired (`--room-retention`): those nobody is in leave
    /// memory, and none is read back from the file any more. Returns how many left.
    pub(crate) fn forget_expired(&self, names: &[RoomName]) -> usize {
        let mut archived = self.archived.lock().unwrap_or_else(PoisonError::into_inner);
        for name in names {
            archived.remove(name);
        }
        drop(archived);
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        let mut left = 0;
        for name in names {
            let Some(room) = rooms.get(name) else {
                continue;
            };
            if self.may_leave(name, room) {
                rooms.remove(name);
                left += 1;
            } else {
                // Someone is in it: the lines they saw are no longer shown to newcomers.
                room.clear_history();
            }
        }
        self.metrics.rooms.set(gauge(rooms.len()));
        left
    }

    /// Takes a room out of memory; one with lines is read back from the file if joined.
    fn evict(&self, rooms: &mut HashMap<RoomName, Arc<Room>>, name: &RoomName) {
        if let Some(room) = rooms.remove(name)
            && self.archive.is_some()
            && room.has_lines()
        {
            self.archived
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.clone());
        }
    }

    /// Keeps the lines in memory within `--max-history-lines`: quiet rooms leave memory
    /// (their lines stay in the store, read back when someone joins) while the total is
    /// over. Returns how many rooms left.
    pub(crate) fn trim_memory(&self) -> usize {
        let over = |hub: &Hub| {
            usize::try_from(hub.metrics.history_lines.get()).unwrap_or(0)
                > hub.config.max_history_lines
        };
        if !over(self) {
            return 0;
        }
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        let mut left = 0;
        // The biggest quiet rooms first: fewest rooms read back later.
        let mut quiet: Vec<(usize, RoomName)> = rooms
            .iter()
            .filter(|(name, room)| self.may_leave(name, room))
            .map(|(name, room)| (room.kept_lines(), name.clone()))
            .collect();
        quiet.sort_unstable_by_key(|q| std::cmp::Reverse(q.0));
        for (_, name) in quiet {
            if !over(self) {
                break;
            }
            self.evict(&mut rooms, &name);
            left += 1;
        }
        self.metrics.rooms.set(gauge(rooms.len()));
        left
    }

    /// Takes a connection out of a room; forgets the room if nobody is left and nothing was
    /// ever said in it. Returns whether the connection was in it.
    pub(crate) fn leave(&self, room: &Arc<Room>, key: ConnKey) -> bool {
        let was_in = room.leave(key);
        if room.is_disposable() {
            let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
            // Checked again under the registry lock: nobody can be joining it now.
            if room.is_disposable() && rooms.get(&room.name).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(&room.name);
                self.metrics.rooms.set(gauge(rooms.len()));
            }
        }
        was_in
    }

    /// A room by name, created if it is new (the server API posts into rooms nobody is
    /// in); `RoomsFull` if the server holds `--max-rooms` already.
    pub(crate) fn room_for_api(&self, name: &RoomName) -> Result<Arc<Room>, JoinRefused> {
        if let Some(room) = self.room(name) {
            return Ok(room);
        }
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        // Marked before it is shared: a room about to get a line is never forgotten.
        self.find_or_create(&mut rooms, name, Room::mark_has_lines)
    }

    /// A room by name, if it exists.
    pub(crate) fn room(&self, name: &RoomName) -> Option<Arc<Room>> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        rooms.get(name).cloned()
    }

    /// Notes a connection of a signed-in user (until [`Hub::signed_out`]).
    pub(crate) fn signed_in(&self, user: &UserId, key: ConnKey, outbox: &Arc<Outbox>) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users
            .entry(user.clone())
            .or_default()
            .insert(key, outbox.clone());
    }

    /// Forgets a connection of a signed-in user.
    pub(crate) fn signed_out(&self, user: &UserId, key: ConnKey) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = users.get_mut(user) {
            conns.remove(&key);
            if conns.is_empty() {
                users.remove(user);
            }
        }
    }

    /// Pushes `frame` to every connection of `user` on this server; returns how many.
    pub(crate) fn tell_user(&self, user: &UserId, frame: &Frame) -> usize {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(conns) = users.get(user) else {
            return 0;
        };
        for outbox in conns.values() {
            outbox.push(frame.clone());
        }
        conns.len()
    }

    /// `user`'s read position in `room` moved to `seq` on another server: it moves here
    /// too, and every connection of theirs here hears it. Nothing if it was not further than
    /// the one held.
    pub(crate) fn read_moved(&self, user: &UserId, room: &RoomName, seq: shared::Seq) {
        if self.reads.advance(user, room, seq) {
            self.tell_read(user, room, seq);
        }
    }

    /// Tells every connection of `user` here that their read position in `room` is `seq`.
    pub(crate) fn tell_read(&self, user: &UserId, room: &RoomName, seq: shared::Seq) {
        let mark = shared::server::ReadMark {
            room: room.clone(),
            seq,
        };
        self.tell_user(user, &Frame::encode(&ServerMsg::Read(mark)));
    }

    /// Closes every connection of `user` on this server with 4003; returns how many.
    pub(crate) fn disconnect_user(&self, user: &UserId) -> usize {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(conns) = users.get(user) else {
            return 0;
        };
        for outbox in conns.values() {
            outbox.close(CloseReason::Disconnected);
        }
        conns.len()
    }

    /// How many connections signed-in user `user` has open on this server.
    pub(crate) fn connections_of(&self, user: &UserId) -> usize {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.get(user).map_or(0, HashMap::len)
    }

    /// Every room this server holds, by name.
    pub(crate) fn rooms(&self) -> Vec<Arc<Room>> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Arc<Room>> = rooms.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Closes every connection with 1001 "going away" (server shutdown).
    pub(crate) fn close_all(&self) {
        for outbox in self.conns().values() {
            outbox.close(CloseReason::GoingAway);
        }
        for outbox in self.echoes().values() {
            outbox.close(CloseReason::GoingAway);
        }
    }
}

/// The name of someone who has not picked one: `guest-` and four characters of their id.
pub(crate) fn guest_name(id: &ConnId) -> DisplayName {
    let tail: String = id
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect::<String>()
        .to_ascii_lowercase();
    DisplayName::parse(&format!("guest-{tail}"))
        .unwrap_or_else(|_| unreachable!("guest-xxxx is a valid name"))
}

/// `bytes` random bytes from the OS, as URL-safe base64: ids (12 bytes, 96 bits) and resume
/// tokens (16 bytes, 128 bits).
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Err(err) = getrandom::fill(&mut buf) {
        // No randomness means ids and tokens could be guessed; refuse to carry on.
        panic!("the OS random source failed: {err}");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// The next room number (never one in use: see [`RoomKey`]).
fn next_room_key(counter: &AtomicU64) -> RoomKey {
    RoomKey(counter.fetch_add(1, Ordering::Relaxed))
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_16_url_safe_chars_and_distinct() {
        let ids: HashSet<String> = (0..1000).map(|_| random_token(12)).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 16);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        assert_eq!(random_token(16).len(), 22);
    }

    #[test]
    fn room_numbers_do_not_wrap_where_32_bits_would() {
        let counter = AtomicU64::new(u64::from(u32::MAX) - 1);
        let keys: HashSet<RoomKey> = (0..4).map(|_| next_room_key(&counter)).collect();
        assert_eq!(keys.len(), 4);
        assert!(keys.contains(&RoomKey(u64::from(u32::MAX) + 2)));
        assert!(
            !keys.contains(&RoomKey(0)),
            "room 0 is not handed out again"
        );
    }

    #[test]
    fn guests_are_named_after_their_id() {
        let name = guest_name(&ConnId::new("q8-Zr2vLk0aYbXw1c"));
        assert_eq!(name.as_str(), "guest-q8zr");
    }
}
