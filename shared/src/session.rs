//! The client's side of a session, with no I/O: what a client must remember so that no line
//! is lost or shown twice across dropped connections, and when to try reconnecting.
//!
//! The page (and the tests' clients) drive it: feed it what the server sends, send what it
//! returns, and show the lines it lets through. It keeps:
//!
//! - the last `seq` shown, so a reconnect asks for exactly the lines after it, and a line
//!   seen twice (a replay overlapping the live stream) is dropped;
//! - the lines sent but not yet acknowledged, by nonce, to resend after a reconnect (the
//!   server appends a nonce once per client, so a resend is acked, never appended again);
//! - the reconnect schedule: exponential backoff with full jitter, reset after a connection
//!   that stayed up.

use std::collections::BTreeMap;

use crate::{ChatLine, ClientMsg, ConnId, RoomName, Seq};

/// A line sent but not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLine {
    /// The room it was sent to.
    pub room: RoomName,
    /// The nonce it was sent with.
    pub nonce: String,
    /// Its text.
    pub text: String,
}

/// What a `joined` means for the lines shown in its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Replace everything shown with these lines (a new session, or too far behind).
    Replace(Vec<ChatLine>),
    /// Append these lines (a resumed room: exactly the ones missed).
    Append(Vec<ChatLine>),
}

impl Shown {
    /// Applies this to a list of shown lines.
    pub fn apply_to(self, shown: &mut Vec<ChatLine>) {
        match self {
            Shown::Replace(lines) => *shown = lines,
            Shown::Append(lines) => shown.extend(lines),
        }
    }
}

/// Reconnect delays: full jitter over an exponentially growing ceiling.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base_ms`, doubles per attempt, never above `cap_ms`.
    pub const fn new(base_ms: u64, cap_ms: u64) -> Self {
        Backoff {
            base_ms,
            cap_ms,
            attempt: 0,
        }
    }

    /// The next delay in ms: uniform over `[0, min(cap, base·2^attempt)]`, picked by `unit`
    /// (a random number in `[0, 1)`; passed in so this stays deterministic to test).
    pub fn next_delay_ms(&mut self, unit: f64) -> u64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(32))
            .min(self.cap_ms);
        self.attempt = self.attempt.saturating_add(1);
        (ceiling as f64 * unit.clamp(0.0, 1.0)) as u64
    }

    /// Back to the first, shortest delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How long a connection must stay up before the backoff starts over.
pub const STABLE_AFTER_MS: u64 = 10_000;

/// Where a client stands in one room: the newest and oldest `seq` it shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RoomCursor {
    last: Option<Seq>,
    oldest: Option<Seq>,
}

/// The client's session state. See the module docs.
#[derive(Debug, Clone)]
pub struct ClientSession {
    /// Ids this client has had, the current one last (a lost resume means a new id).
    ids: Vec<ConnId>,
    resume: Option<String>,
    /// The display name to ask for in the next `hello`.
    name: Option<String>,
    /// The rooms this client is in, and how far it has read each.
    rooms: BTreeMap<RoomName, RoomCursor>,
    pending: Vec<PendingLine>,
    nonce_prefix: String,
    next_nonce: u64,
    backoff: Backoff,
    connected_at_ms: Option<u64>,
}

impl ClientSession {
    /// A session that has never connected, in `general`. `nonce_prefix` must be unique to
    /// this client (e.g. random), so its nonces never collide with another's.
    pub fn new(nonce_prefix: impl Into<String>) -> Self {
        ClientSession {
            ids: Vec::new(),
            resume: None,
            name: None,
            rooms: BTreeMap::from([(RoomName::general(), RoomCursor::default())]),
            pending: Vec::new(),
            nonce_prefix: nonce_prefix.into(),
            next_nonce: 0,
            backoff: Backoff::new(250, 10_000),
            connected_at_ms: None,
        }
    }

    /// This client's current public id, once welcomed.
    pub fn id(&self) -> Option<&ConnId> {
        self.ids.last()
    }

    /// Whether `id` is (or was) this client's: its lines are this client's own.
    pub fn is_mine(&self, id: &ConnId) -> bool {
        self.ids.contains(id)
    }

    /// The resume token, once welcomed (to keep across page loads).
    pub fn resume_token(&self) -> Option<&str> {
        self.resume.as_deref()
    }

    /// Restores a resume token kept from an earlier page load.
    pub fn set_resume_token(&mut self, token: impl Into<String>) {
        self.resume = Some(token.into());
    }

    /// Asks for this display name in the next `hello` (and returns the `set_name` to send
    /// now, if connected).
    pub fn set_name(&mut self, name: impl Into<String>) -> ClientMsg {
        let name = name.into();
        self.name = Some(name.clone());
        ClientMsg::SetName { name }
    }

    /// The rooms this client is in, by name.
    pub fn rooms(&self) -> impl Iterator<Item = &RoomName> {
        self.rooms.keys()
    }

    /// Whether this client is in `room`.
    pub fn is_in(&self, room: &RoomName) -> bool {
        self.rooms.contains_key(room)
    }

    /// The last `seq` shown in `room`.
    pub fn last_seq(&self, room: &RoomName) -> Option<Seq> {
        self.rooms.get(room).and_then(|c| c.last)
    }

    /// The oldest `seq` shown in `room` (to ask for older lines before it).
    pub fn oldest_seq(&self, room: &RoomName) -> Option<Seq> {
        self.rooms.get(room).and_then(|c| c.oldest)
    }

    /// Lines sent and not yet acknowledged, oldest first.
    pub fn pending(&self) -> &[PendingLine] {
        &self.pending
    }

    /// The first frame of every connection (`/ws?v=2`): the token to resume, and every room
    /// with the last `seq` held there, so the server replies with exactly what was missed.
    pub fn hello(&self) -> ClientMsg {
        ClientMsg::Hello {
            resume: self.resume.clone(),
            rooms: Some(
                self.rooms
                    .iter()
                    .map(|(room, c)| (room.as_str().to_owned(), c.last.unwrap_or_default()))
                    .collect(),
            ),
            name: self.name.clone(),
        }
    }

    /// Enters `room` (remembered for the next `hello`); returns the `join` to send.
    pub fn join(&mut self, room: RoomName) -> ClientMsg {
        let msg = ClientMsg::Join {
            room: room.as_str().to_owned(),
        };
        self.rooms.entry(room).or_default();
        msg
    }

    /// Leaves `room`, forgetting its cursor and its unsent lines; returns the `leave` to send.
    pub fn leave(&mut self, room: &RoomName) -> ClientMsg {
        self.rooms.remove(room);
        self.pending.retain(|p| &p.room != room);
        ClientMsg::Leave {
            room: room.as_str().to_owned(),
        }
    }

    /// Queues a line for `room` and returns the frame to send. Send it now if connected; if
    /// not (or if the connection drops first) it is sent again after the next `welcome`.
    pub fn send(&mut self, room: RoomName, text: String) -> ClientMsg {
        self.next_nonce += 1;
        let nonce = format!("{}-{}", self.nonce_prefix, self.next_nonce);
        let frame = ClientMsg::Send {
            room: Some(room.as_str().to_owned()),
            text: text.clone(),
            nonce: Some(nonce.clone()),
        };
        self.pending.push(PendingLine { room, nonce, text });
        frame
    }

    /// Applies a `welcome`: remembers the id and token, and returns the frames to send right
    /// away (every pending line, again; the server appends each nonce once).
    pub fn on_welcome(&mut self, id: ConnId, resume: String) -> Vec<ClientMsg> {
        if self.ids.last() != Some(&id) {
            self.ids.push(id);
        }
        if !resume.is_empty() {
            self.resume = Some(resume);
        }
        self.pending
            .iter()
            .map(|p| ClientMsg::Send {
                room: Some(p.room.as_str().to_owned()),
                text: p.text.clone(),
                nonce: Some(p.nonce.clone()),
            })
            .collect()
    }

    /// Applies a `joined`: returns the lines to show in `room`.
    pub fn on_joined(&mut self, room: RoomName, lines: Vec<ChatLine>, resumed: bool) -> Shown {
        let cursor = self.rooms.entry(room).or_default();
        if !resumed {
            *cursor = RoomCursor {
                last: None,
                oldest: lines.first().map(|l| l.seq),
            };
        }
        let fresh = lines.into_iter().filter_map(|l| self.accept(l)).collect();
        if resumed {
            Shown::Append(fresh)
        } else {
            Shown::Replace(fresh)
        }
    }

    /// A live line: returns it if it is new (show it), `None` if it was already shown or
    /// belongs to a room this client is not in.
    pub fn on_line(&mut self, line: ChatLine) -> Option<ChatLine> {
        self.accept(line)
    }

    /// An ack: the line with this nonce is durable. Returns whether it was pending.
    pub fn on_ack(&mut self, nonce: &str) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p.nonce != nonce);
        self.pending.len() != before
    }

    /// Older lines arrived (`older`): returns those to put before the shown ones.
    pub fn on_older(&mut self, room: &RoomName, lines: Vec<ChatLine>) -> Vec<ChatLine> {
        let Some(cursor) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        let oldest = cursor.oldest;
        let older: Vec<ChatLine> = lines
            .into_iter()
            .filter(|l| oldest.is_none_or(|o| l.seq < o))
            .collect();
        if let Some(first) = older.first() {
            cursor.oldest = Some(first.seq);
        }
        older
    }

    /// The socket opened, at `now_ms`.
    pub fn on_connected(&mut self, now_ms: u64) {
        self.connected_at_ms = Some(now_ms);
    }

    /// The socket closed (or never opened) at `now_ms`: returns how long to wait before the
    /// next attempt, with `unit` a random number in `[0, 1)`.
    pub fn on_disconnected(&mut self, now_ms: u64, unit: f64) -> u64 {
        if let Some(since) = self.connected_at_ms.take()
            && now_ms.saturating_sub(since) >= STABLE_AFTER_MS
        {
            self.backoff.reset();
        }
        self.backoff.next_delay_ms(unit)
    }

    /// Lets a line through once, in its room's `seq` order; settles the pending line it
    /// carries.
    fn accept(&mut self, line: ChatLine) -> Option<ChatLine> {
        if let Some(nonce) = &line.nonce
            && self.ids.contains(&line.from)
        {
            self.pending.retain(|p| &p.nonce != nonce);
        }
        let cursor = self.rooms.get_mut(&line.room)?;
        if cursor.last.is_some_and(|last| line.seq <= last) {
            return None;
        }
        cursor.last = Some(line.seq);
        if cursor.oldest.is_none() {
            cursor.oldest = Some(line.seq);
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, VecDeque};

    use crate::ServerMsg;

    #[test]
    fn backoff_doubles_to_its_cap_with_full_jitter_and_resets_after_a_stable_connection() {
        let mut b = Backoff::new(250, 10_000);
        let ceilings: Vec<u64> = (0..8).map(|_| b.next_delay_ms(1.0)).collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(b.next_delay_ms(0.0), 0);
        assert_eq!(b.next_delay_ms(0.5), 5_000);

        let mut s = ClientSession::new("p");
        assert_eq!(s.on_disconnected(0, 1.0), 250);
        assert_eq!(s.on_disconnected(0, 1.0), 500);
        s.on_connected(1_000);
        assert_eq!(
            s.on_disconnected(2_000, 1.0),
            1_000,
            "a short connection keeps growing"
        );
        s.on_connected(3_000);
        assert_eq!(
            s.on_disconnected(3_000 + STABLE_AFTER_MS, 1.0),
            250,
            "a stable one resets"
        );
    }

    /// A server as the protocol describes it, small enough to reason about.
    struct ModelServer {
        lines: Vec<ChatLine>,
        accepted: HashMap<String, Seq>,
        /// A resume asking for more than this many lines is "too far behind".
        replay_max: usize,
        /// How many already-seen lines a replay repeats (a careful client must cope).
        overlap: usize,
    }

    impl ModelServer {
        fn append(&mut self, from: &str, text: String, nonce: Option<String>) -> ChatLine {
            let line = ChatLine {
                room: RoomName::general(),
                seq: Seq(self.lines.len() as u64 + 1),
                from: ConnId::new(from),
                name: None,
                text,
                at: 0,
                nonce,
            };
            self.lines.push(line.clone());
            line
        }

        /// The reply to a `hello`: the welcome, then `general` as the client left it.
        fn welcome(&self, hello: &ClientMsg) -> [ServerMsg; 2] {
            let ClientMsg::Hello {
                rooms: Some(rooms), ..
            } = hello
            else {
                panic!("the session always says hello with its rooms: {hello:?}");
            };
            let after = rooms.get("general").map_or(0, |s| s.0);
            let (lines, resumed) =
                if after > 0 && self.lines.len() - after as usize <= self.replay_max {
                    let from = (after as usize).saturating_sub(self.overlap);
                    (self.lines[from..].to_vec(), true)
                } else {
                    (self.lines.clone(), false)
                };
            [
                ServerMsg::Welcome {
                    id: ConnId::new("me"),
                    history: Vec::new(),
                    online: 2,
                    protocol: 2,
                    resume: "token".into(),
                    has_more: false,
                    resumed: false,
                    name: None,
                    limits: None,
                },
                ServerMsg::Joined {
                    room: RoomName::general(),
                    lines,
                    has_more: false,
                    resumed,
                    online: 2,
                    members: None,
                    typing: Vec::new(),
                },
            ]
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        OtherSends,
        ClientSends,
        ServerReads,
        ClientReads,
        Drop,
        Connect,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::OtherSends),
            3 => Just(Op::ClientSends),
            4 => Just(Op::ServerReads),
            5 => Just(Op::ClientReads),
            1 => Just(Op::Drop),
            2 => Just(Op::Connect),
        ]
    }

    struct Link {
        to_client: VecDeque<ServerMsg>,
        to_server: VecDeque<ClientMsg>,
    }

    fn client_reads(session: &mut ClientSession, shown: &mut Vec<ChatLine>, link: &mut Link) {
        let Some(msg) = link.to_client.pop_front() else {
            return;
        };
        match msg {
            ServerMsg::Welcome { id, resume, .. } => {
                let resend = session.on_welcome(id, resume);
                link.to_server.extend(resend);
            }
            ServerMsg::Joined {
                room,
                lines,
                resumed,
                ..
            } => session.on_joined(room, lines, resumed).apply_to(shown),
            ServerMsg::Message(line) => shown.extend(session.on_line(line)),
            ServerMsg::Ack { nonce, .. } => {
                session.on_ack(&nonce);
            }
            other => panic!("the model sends no {other:?}"),
        }
    }

    fn server_reads(server: &mut ModelServer, link: &mut Link, others: &mut [Link]) {
        let Some(ClientMsg::Send {
            text,
            nonce: Some(nonce),
            ..
        }) = link.to_server.pop_front()
        else {
            return;
        };
        if let Some(seq) = server.accepted.get(&nonce) {
            link.to_client.push_back(ServerMsg::Ack {
                room: RoomName::general(),
                nonce,
                seq: *seq,
            });
            return;
        }
        let line = server.append("me", text, Some(nonce.clone()));
        server.accepted.insert(nonce.clone(), line.seq);
        link.to_client.push_back(ServerMsg::Ack {
            room: RoomName::general(),
            nonce,
            seq: line.seq,
        });
        link.to_client.push_back(ServerMsg::Message(line.clone()));
        for other in others {
            other.to_client.push_back(ServerMsg::Message(line.clone()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// Any interleaving of drops, resends and replays: every line shown once, in `seq`
        /// order, every sent line in the history exactly once, nothing left pending.
        #[test]
        fn every_line_once_in_order_across_drops(
            ops in proptest::collection::vec(op(), 0..120),
            replay_max in 0usize..6,
            overlap in 0usize..3,
        ) {
            let mut server = ModelServer { lines: Vec::new(), accepted: HashMap::new(), replay_max, overlap };
            let mut session = ClientSession::new("me");
            let mut shown: Vec<ChatLine> = Vec::new();
            let mut link: Option<Link> = None;
            let mut sent = 0;
            let mut others = 0;
            for op in ops {
                match op {
                    Op::OtherSends => {
                        others += 1;
                        let line = server.append("other", format!("o{others}"), None);
                        if let Some(link) = &mut link {
                            link.to_client.push_back(ServerMsg::Message(line));
                        }
                    }
                    Op::ClientSends => {
                        sent += 1;
                        let frame = session.send(RoomName::general(), format!("c{sent}"));
                        if let Some(link) = &mut link {
                            link.to_server.push_back(frame);
                        }
                    }
                    Op::ServerReads => {
                        if let Some(link) = &mut link {
                            server_reads(&mut server, link, &mut []);
                        }
                    }
                    Op::ClientReads => {
                        if let Some(link) = &mut link {
                            client_reads(&mut session, &mut shown, link);
                        }
                        // A line is never on screen twice: shown as sent and still pending.
                        for line in &shown {
                            prop_assert!(!session.pending().iter().any(|p| Some(&p.nonce) == line.nonce.as_ref()));
                        }
                    }
                    Op::Drop => link = None,
                    Op::Connect => {
                        if link.is_none() {
                            link = Some(Link { to_client: VecDeque::from(server.welcome(&session.hello())), to_server: VecDeque::new() });
                        }
                    }
                }
            }
            // Finally the network behaves: connect and drain both ways.
            if link.is_none() {
                link = Some(Link { to_client: VecDeque::from(server.welcome(&session.hello())), to_server: VecDeque::new() });
            }
            let mut link = link.expect("connected");
            while !link.to_client.is_empty() || !link.to_server.is_empty() {
                client_reads(&mut session, &mut shown, &mut link);
                server_reads(&mut server, &mut link, &mut []);
            }

            prop_assert!(session.pending().is_empty(), "left pending: {:?}", session.pending());
            prop_assert_eq!(&shown, &server.lines, "shown = the history, each line once, in order");
            for i in 1..=sent {
                let text = format!("c{i}");
                prop_assert_eq!(server.lines.iter().filter(|l| l.text == text).count(), 1, "{} appended once", text);
            }
        }
    }
}
