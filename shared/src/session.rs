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

use crate::{ChatLine, ClientMsg, ConnId, ErrorCode, RoomName, Seq, ServerLimits};

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
    /// Entries that change earlier lines (edits, deletions) are applied to them, not shown.
    pub fn apply_to(self, shown: &mut Vec<ChatLine>) {
        let lines = match self {
            Shown::Replace(lines) => {
                shown.clear();
                lines
            }
            Shown::Append(lines) => lines,
        };
        for line in lines {
            line.show_in(shown);
        }
    }
}

/// The lines to show of a page of a room's log (`joined`, `older`), oldest first: its
/// lines, with its edits and deletions applied to them.
pub fn lines_to_show(page: Vec<ChatLine>) -> Vec<ChatLine> {
    let mut shown = Vec::with_capacity(page.len());
    for line in page {
        line.show_in(&mut shown);
    }
    shown
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

/// Paces resends under the server's send rate, so a backlog (lines typed offline, lines the
/// server asked to have again) goes out as fast as the server takes it and no faster.
#[derive(Debug, Clone)]
struct Pacer {
    /// Sends per ms.
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ms: u64,
}

impl Pacer {
    /// Under the server's limits: 80 % of its rate, half its burst (other tabs of the same
    /// address share the address's allowance).
    fn for_limits(limits: &ServerLimits, now_ms: u64) -> Self {
        let burst = (f64::from(limits.send_burst) / 2.0).max(1.0);
        Pacer {
            rate: f64::from(limits.send_rate.max(1)) * 0.8 / 1000.0,
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last_ms = self.last_ms.max(now_ms);
    }

    fn try_take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there.
    fn next_ms(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            now_ms
        } else {
            now_ms + ((1.0 - self.tokens) / self.rate).ceil() as u64
        }
    }
}

/// How long to wait before sending again a line the server refused with `unavailable`.
pub const UNAVAILABLE_RETRY_MS: u64 = 1_000;

/// What a refusal of a pending line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server will take it later (`unavailable`, `rate_limited`): it stays pending and
    /// goes out again when [`ClientSession::due`] says so.
    Retry,
    /// The line itself was refused (blank, too long, a room not joined, …): it is no longer
    /// pending. Show why.
    Dropped(PendingLine),
    /// No pending line has that nonce.
    Unknown,
}

/// The client's session state. See the module docs.
#[derive(Debug, Clone)]
pub struct ClientSession {
    /// Ids this client has had, the current one last (a lost resume means a new id).
    ids: Vec<ConnId>,
    resume: Option<String>,
    /// The display name to ask for in the next `hello`.
    name: Option<String>,
    /// The sign-in token to present in the next `hello` (none: a guest).
    token: Option<String>,
    /// The rooms this client is in, and how far it has read each.
    rooms: BTreeMap<RoomName, RoomCursor>,
    pending: Vec<PendingLine>,
    /// Pending lines not in flight, by nonce: when each may be sent (again).
    waiting: BTreeMap<String, u64>,
    pacer: Option<Pacer>,
    /// Whether the current connection has been welcomed: lines go out only then, so a line
    /// is never sent under a session the client has not learnt the token of (a welcome lost
    /// with the connection would otherwise leave that line to be appended again under a
    /// new id).
    welcomed: bool,
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
            token: None,
            rooms: BTreeMap::from([(RoomName::general(), RoomCursor::default())]),
            pending: Vec::new(),
            waiting: BTreeMap::new(),
            pacer: None,
            welcomed: false,
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

    /// Signs in with this token from the next `hello` on (none: a guest). A refreshed
    /// token is set here too, so a reconnect presents the newest one.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The token the next `hello` presents, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
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
            token: self.token.clone(),
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

    /// Enters `room` as a client that has already read its lines up to `after` (0: none):
    /// the next `hello` asks for exactly the lines after it (`charla tail --after`).
    pub fn join_after(&mut self, room: RoomName, after: Seq) {
        self.rooms.insert(
            room,
            RoomCursor {
                last: (after > Seq(0)).then_some(after),
                oldest: None,
            },
        );
    }

    /// Leaves `room`, forgetting its cursor and its unsent lines; returns the `leave` to send.
    pub fn leave(&mut self, room: &RoomName) -> ClientMsg {
        self.rooms.remove(room);
        let waiting = &mut self.waiting;
        self.pending.retain(|p| {
            let keep = &p.room != room;
            if !keep {
                waiting.remove(&p.nonce);
            }
            keep
        });
        ClientMsg::Leave {
            room: room.as_str().to_owned(),
        }
    }

    /// Queues a line for `room`. Returns the frame to send now, if the connection is
    /// welcomed and no older line waits; otherwise the line waits, shown as pending, and
    /// goes out (in order) from [`ClientSession::due`] or after the next `welcome`.
    pub fn send(&mut self, room: RoomName, text: String) -> Option<ClientMsg> {
        self.next_nonce += 1;
        let nonce = format!("{}-{}", self.nonce_prefix, self.next_nonce);
        let frame = ClientMsg::Send {
            room: Some(room.as_str().to_owned()),
            text: text.clone(),
            nonce: Some(nonce.clone()),
        };
        self.pending.push(PendingLine {
            room,
            nonce: nonce.clone(),
            text,
        });
        if self.welcomed && self.waiting.is_empty() {
            return Some(frame);
        }
        self.waiting.insert(nonce, 0);
        None
    }

    /// Applies a `welcome`: remembers the id and token (and the server's limits, to pace
    /// resends under them), and returns the frames to send right away: pending lines, again
    /// (the server appends each nonce once), as many as the pace allows; the rest come from
    /// [`ClientSession::due`].
    pub fn on_welcome(&mut self, id: ConnId, resume: String) -> Vec<ClientMsg> {
        self.on_welcome_at(id, resume, None, 0)
    }

    /// [`ClientSession::on_welcome`] with the welcome's `limits` and the time, in ms.
    pub fn on_welcome_at(
        &mut self,
        id: ConnId,
        resume: String,
        limits: Option<ServerLimits>,
        now_ms: u64,
    ) -> Vec<ClientMsg> {
        if self.ids.last() != Some(&id) {
            self.ids.push(id);
        }
        if !resume.is_empty() {
            self.resume = Some(resume);
        }
        if let Some(limits) = limits {
            self.pacer = Some(Pacer::for_limits(&limits, now_ms));
        }
        self.welcomed = true;
        // Every pending line is to be sent again on this connection, oldest first.
        self.waiting = self
            .pending
            .iter()
            .map(|p| (p.nonce.clone(), now_ms))
            .collect();
        self.due(now_ms)
    }

    /// The frames that may go now: pending lines waiting to be sent (again) whose time has
    /// come, oldest first, within the pace. Call it again at [`ClientSession::next_due_ms`].
    pub fn due(&mut self, now_ms: u64) -> Vec<ClientMsg> {
        let mut frames = Vec::new();
        if !self.welcomed {
            return frames;
        }
        let ready: Vec<PendingLine> = self
            .pending
            .iter()
            .filter(|p| self.waiting.get(&p.nonce).is_some_and(|at| *at <= now_ms))
            .cloned()
            .collect();
        for line in ready {
            if let Some(pacer) = &mut self.pacer
                && !pacer.try_take(now_ms)
            {
                break;
            }
            self.waiting.remove(&line.nonce);
            frames.push(ClientMsg::Send {
                room: Some(line.room.as_str().to_owned()),
                text: line.text,
                nonce: Some(line.nonce),
            });
        }
        frames
    }

    /// When [`ClientSession::due`] will have something to send, if ever.
    pub fn next_due_ms(&mut self, now_ms: u64) -> Option<u64> {
        if !self.welcomed {
            return None;
        }
        let first = *self.waiting.values().min()?;
        let paced = self.pacer.as_mut().map_or(now_ms, |p| p.next_ms(now_ms));
        Some(first.max(paced))
    }

    /// The server refused the `send` with this nonce: a line it will take later waits and
    /// goes out again (after a second for `unavailable`, at the pace for `rate_limited`);
    /// any other refusal drops the line and returns it.
    pub fn on_refused(&mut self, nonce: &str, code: ErrorCode, now_ms: u64) -> Refusal {
        let Some(at) = self.pending.iter().position(|p| p.nonce == nonce) else {
            return Refusal::Unknown;
        };
        match code {
            ErrorCode::Unavailable => {
                self.waiting
                    .insert(nonce.to_owned(), now_ms + UNAVAILABLE_RETRY_MS);
                Refusal::Retry
            }
            ErrorCode::RateLimited => {
                let paced = self.pacer.as_mut().map_or(now_ms + 1_000, |p| {
                    // The server's bucket is empty: let ours be, too.
                    p.tokens = 0.0;
                    p.next_ms(now_ms)
                });
                self.waiting.insert(nonce.to_owned(), paced);
                Refusal::Retry
            }
            _ => {
                self.waiting.remove(nonce);
                Refusal::Dropped(self.pending.remove(at))
            }
        }
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
        self.waiting.remove(nonce);
        self.pending.len() != before
    }

    /// Restores lines that were pending when the page was last closed (kept in the
    /// browser's storage): they are sent again, with the same nonces, after the next
    /// welcome. Nonces already pending are skipped.
    pub fn restore_pending(&mut self, lines: Vec<PendingLine>) {
        for line in lines {
            if !self.pending.iter().any(|p| p.nonce == line.nonce) {
                self.rooms.entry(line.room.clone()).or_default();
                self.pending.push(line);
            }
        }
    }

    /// Continues numbering nonces after `n` (restored from storage, so a reloaded page never
    /// reuses a nonce of its session).
    pub fn continue_nonces_after(&mut self, n: u64) {
        self.next_nonce = self.next_nonce.max(n);
    }

    /// The number of the last nonce made (to keep with the pending lines).
    pub fn last_nonce_number(&self) -> u64 {
        self.next_nonce
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

    /// The socket opened, at `now_ms` (lines wait for its `welcome`).
    pub fn on_connected(&mut self, now_ms: u64) {
        self.connected_at_ms = Some(now_ms);
        self.welcomed = false;
    }

    /// The socket closed (or never opened) at `now_ms`: returns how long to wait before the
    /// next attempt, with `unit` a random number in `[0, 1)`.
    pub fn on_disconnected(&mut self, now_ms: u64, unit: f64) -> u64 {
        self.welcomed = false;
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
            self.waiting.remove(nonce);
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

    /// Promises a faulty server would break; the property below must catch each.
    #[derive(Debug, Clone, Copy, Default)]
    struct Faults {
        /// Forget a nonce once its line falls past the history cap.
        forget_nonces_with_cap: bool,
        /// Lose the tokens made since the last restart (welcomed before they were durable).
        lose_new_tokens_on_restart: bool,
    }

    /// A server as the protocol describes it, small enough to reason about: a history cap,
    /// tokens that may be unknown (a new id), restarts, and refusals while busy.
    struct ModelServer {
        /// Every line ever appended; only the last `cap` are kept for replays and pages.
        log: Vec<ChatLine>,
        cap: usize,
        /// (id, nonce) → seq.
        accepted: HashMap<(String, String), Seq>,
        /// token → id, and the tokens made since the last restart.
        tokens: HashMap<String, String>,
        new_tokens: Vec<String>,
        made: u32,
        /// A resume asking for more than this many lines is "too far behind".
        replay_max: usize,
        /// How many already-seen lines a replay repeats (a careful client must cope).
        overlap: usize,
        /// While busy, every `send` is refused with `unavailable`.
        busy: bool,
        faults: Faults,
    }

    const LIMITS: ServerLimits = ServerLimits {
        max_text_chars: 2_000,
        max_rooms_per_conn: 20,
        send_rate: 10,
        send_burst: 4,
    };

    impl ModelServer {
        fn new(cap: usize, replay_max: usize, overlap: usize, faults: Faults) -> Self {
            ModelServer {
                log: Vec::new(),
                cap,
                accepted: HashMap::new(),
                tokens: HashMap::new(),
                new_tokens: Vec::new(),
                made: 0,
                replay_max,
                overlap,
                busy: false,
                faults,
            }
        }

        fn first_kept(&self) -> usize {
            self.log.len().saturating_sub(self.cap)
        }

        fn append(&mut self, from: &str, text: String, nonce: Option<String>) -> ChatLine {
            let line = ChatLine {
                room: RoomName::general(),
                seq: Seq(self.log.len() as u64 + 1),
                from: ConnId::new(from),
                name: None,
                user: None,
                text,
                at: 0,
                nonce,
                edited: false,
                removed: false,
                change: None,
            };
            self.log.push(line.clone());
            if self.faults.forget_nonces_with_cap {
                let first = Seq(self.first_kept() as u64 + 1);
                self.accepted.retain(|_, seq| *seq >= first);
            }
            line
        }

        /// The reply to a `hello`: the id it gets, the welcome, then `general`.
        fn hello(&mut self, hello: &ClientMsg) -> (String, [ServerMsg; 2]) {
            let ClientMsg::Hello {
                resume,
                rooms: Some(rooms),
                ..
            } = hello
            else {
                panic!("the session always says hello with its rooms: {hello:?}");
            };
            let known = resume.as_ref().and_then(|t| self.tokens.get(t)).cloned();
            let (id, resumed) = match known {
                Some(id) => (id, true),
                None => {
                    self.made += 1;
                    (format!("c{}", self.made), false)
                }
            };
            self.made += 1;
            let token = format!("t{}", self.made);
            self.tokens.insert(token.clone(), id.clone());
            self.new_tokens.push(token.clone());
            let after = rooms.get("general").map_or(0, |s| s.0 as usize);
            let first = self.first_kept();
            let (lines, replayed) = if after > 0
                && after >= first
                && after <= self.log.len()
                && self.log.len() - after <= self.replay_max
            {
                let from = after.saturating_sub(self.overlap).max(first);
                (self.log[from..].to_vec(), true)
            } else {
                (self.log[first..].to_vec(), false)
            };
            let welcome = ServerMsg::Welcome(crate::server::Welcome {
                id: ConnId::new(id.clone()),
                history: Vec::new(),
                online: 2,
                protocol: 2,
                resume: token,
                has_more: false,
                resumed,
                name: None,
                limits: Some(LIMITS),
                greeting: None,
                user: None,
            });
            let joined = ServerMsg::Joined(crate::server::Joined {
                room: RoomName::general(),
                lines,
                has_more: first > 0,
                resumed: replayed,
                online: 2,
                members: None,
                typing: Vec::new(),
                typing_more: false,
                private: false,
                ..Default::default()
            });
            (id, [welcome, joined])
        }

        fn restart(&mut self) {
            if self.faults.lose_new_tokens_on_restart {
                for token in self.new_tokens.drain(..) {
                    self.tokens.remove(&token);
                }
            }
            self.new_tokens.clear();
            self.busy = false;
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
        Restart,
        ToggleBusy,
        Tick,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::OtherSends),
            3 => Just(Op::ClientSends),
            4 => Just(Op::ServerReads),
            5 => Just(Op::ClientReads),
            1 => Just(Op::Drop),
            2 => Just(Op::Connect),
            1 => Just(Op::Restart),
            1 => Just(Op::ToggleBusy),
            2 => Just(Op::Tick),
        ]
    }

    /// One connection: the id the server gave it, and the frames in flight each way.
    struct Link {
        id: String,
        to_client: VecDeque<ServerMsg>,
        to_server: VecDeque<ClientMsg>,
    }

    struct World {
        server: ModelServer,
        session: ClientSession,
        shown: Vec<ChatLine>,
        link: Option<Link>,
        now_ms: u64,
    }

    impl World {
        fn connect(&mut self) {
            if self.link.is_none() {
                self.session.on_connected(self.now_ms);
                let (id, frames) = self.server.hello(&self.session.hello());
                self.link = Some(Link {
                    id,
                    to_client: VecDeque::from(frames),
                    to_server: VecDeque::new(),
                });
            }
        }

        fn drop_link(&mut self) {
            if self.link.take().is_some() {
                self.session.on_disconnected(self.now_ms, 0.5);
            }
        }

        fn client_sends(&mut self, frames: Vec<ClientMsg>) {
            if let Some(link) = &mut self.link {
                link.to_server.extend(frames);
            }
        }

        fn client_reads(&mut self) {
            let Some(msg) = self.link.as_mut().and_then(|l| l.to_client.pop_front()) else {
                return;
            };
            let now = self.now_ms;
            match msg {
                ServerMsg::Welcome(crate::server::Welcome {
                    id, resume, limits, ..
                }) => {
                    let frames = self.session.on_welcome_at(id, resume, limits, now);
                    self.client_sends(frames);
                }
                ServerMsg::Joined(crate::server::Joined {
                    room,
                    lines,
                    resumed,
                    ..
                }) => self
                    .session
                    .on_joined(room, lines, resumed)
                    .apply_to(&mut self.shown),
                ServerMsg::Message(line) => self.shown.extend(self.session.on_line(line)),
                ServerMsg::Ack(crate::server::Ack { nonce, .. }) => {
                    self.session.on_ack(&nonce);
                }
                ServerMsg::Error(crate::server::Error {
                    code,
                    nonce: Some(nonce),
                    ..
                }) => {
                    self.session.on_refused(&nonce, code, now);
                }
                other => panic!("the model sends no {other:?}"),
            }
        }

        fn server_reads(&mut self) {
            let Some(link) = &mut self.link else { return };
            let Some(ClientMsg::Send {
                text,
                nonce: Some(nonce),
                ..
            }) = link.to_server.pop_front()
            else {
                return;
            };
            let server = &mut self.server;
            let room = RoomName::general();
            if server.busy {
                link.to_client
                    .push_back(ServerMsg::Error(crate::server::Error {
                        code: ErrorCode::Unavailable,
                        message: "busy".into(),
                        room: Some(room),
                        nonce: Some(nonce),
                    }));
                return;
            }
            let key = (link.id.clone(), nonce.clone());
            if let Some(seq) = server.accepted.get(&key) {
                link.to_client.push_back(ServerMsg::Ack(crate::server::Ack {
                    room,
                    nonce,
                    seq: *seq,
                }));
                return;
            }
            let line = server.append(&link.id, text, Some(nonce.clone()));
            server.accepted.insert(key, line.seq);
            link.to_client.push_back(ServerMsg::Ack(crate::server::Ack {
                room,
                nonce,
                seq: line.seq,
            }));
            link.to_client.push_back(ServerMsg::Message(line));
        }

        fn tick(&mut self, ms: u64) {
            self.now_ms += ms;
            let frames = self.session.due(self.now_ms);
            self.client_sends(frames);
        }
    }

    /// Runs `ops`, then lets the network behave until the client is idle; checks that every
    /// line the client sent is in the history exactly once, that nothing is left pending,
    /// and that the client shows each line once, in order, as the server has it.
    fn run_world(
        ops: &[Op],
        cap: usize,
        replay_max: usize,
        overlap: usize,
        faults: Faults,
    ) -> Result<(), TestCaseError> {
        let mut w = World {
            server: ModelServer::new(cap, replay_max, overlap, faults),
            session: ClientSession::new("me"),
            shown: Vec::new(),
            link: None,
            now_ms: 0,
        };
        let (mut sent, mut others) = (0, 0);
        for op in ops {
            match op {
                Op::OtherSends => {
                    others += 1;
                    let line = w.server.append("other", format!("o{others}"), None);
                    if let Some(link) = &mut w.link {
                        link.to_client.push_back(ServerMsg::Message(line));
                    }
                }
                Op::ClientSends => {
                    sent += 1;
                    let frame = w.session.send(RoomName::general(), format!("c{sent}"));
                    w.client_sends(frame.into_iter().collect());
                }
                Op::ServerReads => w.server_reads(),
                Op::ClientReads => {
                    w.client_reads();
                    // A line is never on screen twice: shown as sent and still pending.
                    for line in &w.shown {
                        prop_assert!(
                            !w.session
                                .pending()
                                .iter()
                                .any(|p| Some(&p.nonce) == line.nonce.as_ref())
                        );
                    }
                }
                Op::Drop => w.drop_link(),
                Op::Connect => w.connect(),
                Op::Restart => {
                    w.drop_link();
                    w.server.restart();
                }
                Op::ToggleBusy => w.server.busy = !w.server.busy,
                Op::Tick => w.tick(500),
            }
        }
        // Finally the network behaves and the server is not busy: connect and drain.
        w.server.busy = false;
        w.connect();
        for _ in 0..10_000 {
            let idle = w
                .link
                .as_ref()
                .is_some_and(|l| l.to_client.is_empty() && l.to_server.is_empty());
            if idle && w.session.pending().is_empty() {
                break;
            }
            w.client_reads();
            w.server_reads();
            w.tick(100);
        }
        prop_assert!(
            w.session.pending().is_empty(),
            "left pending: {:?}",
            w.session.pending()
        );
        for i in 1..=sent {
            let text = format!("c{i}");
            let copies = w.server.log.iter().filter(|l| l.text == text).count();
            prop_assert_eq!(copies, 1, "{} appended {} times", text, copies);
        }
        for pair in w.shown.windows(2) {
            prop_assert!(
                pair[0].seq < pair[1].seq,
                "shown in order, once: {:?}",
                w.shown
            );
        }
        for line in &w.shown {
            prop_assert_eq!(line, &w.server.log[line.seq.0 as usize - 1]);
        }
        prop_assert_eq!(
            w.shown.last().map(|l| l.seq.0 as usize),
            (!w.server.log.is_empty()).then_some(w.server.log.len()),
            "caught up"
        );
        Ok(())
    }

    fn world_config() -> impl Strategy<Value = (Vec<Op>, usize, usize, usize)> {
        (
            proptest::collection::vec(op(), 0..120),
            1usize..8,
            0usize..6,
            0usize..3,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// Any interleaving of drops, restarts, refusals, resends, replays and a capped
        /// history: every sent line once in the history, nothing left pending, every line
        /// shown once, in order.
        #[test]
        fn every_line_once_in_order_across_drops(
            (ops, cap, replay_max, overlap) in world_config(),
        ) {
            run_world(&ops, cap, replay_max, overlap, Faults::default())?;
        }
    }

    /// Runs the property against a faulty server: it must find a counterexample.
    fn catches(faults: Faults) -> bool {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 3_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&world_config(), |(ops, cap, replay_max, overlap)| {
                run_world(&ops, cap, replay_max, overlap, faults)
            })
            .is_err()
    }

    #[test]
    fn the_property_catches_a_server_that_forgets_nonces_with_the_history_cap() {
        assert!(catches(Faults {
            forget_nonces_with_cap: true,
            ..Faults::default()
        }));
    }

    #[test]
    fn the_property_catches_a_server_that_loses_tokens_it_welcomed_with() {
        assert!(catches(Faults {
            lose_new_tokens_on_restart: true,
            ..Faults::default()
        }));
    }
}
