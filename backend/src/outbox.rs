//! One connection's outbound queue: the only thing the hub touches to reach a client.
//!
//! The hub pushes already-encoded frames and never waits; the connection's task takes
//! everything that is ready in one batch, writes it, and flushes once. Two rules keep the
//! queue bounded whatever the client does:
//!
//! - chat frames count against a byte limit; past it the client is a *slow consumer* and the
//!   outbox closes itself with 1013 (the client reconnects and gets the history again);
//! - latest-value-wins frames (live typing per typist and room, presence per room) do not
//!   count: one per [`Slot`] waits at most, and a newer one replaces the older in place, so
//!   typing and presence can never pile up whatever the client's speed.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
};

use axum::extract::ws::{CloseFrame, Utf8Bytes, close_code};
use futures_util::task::AtomicWaker;
use shared::{ServerMsg, encode};
use tokio::sync::Notify;

/// A connection, as the server numbers them (one public id may have two connections for a
/// moment, when a client resumes before its old socket is noticed gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey(pub u64);

/// A room, as the server numbers them (cheaper to hash than its name). 64 bits: a server
/// that made a million rooms a second would take 584,000 years to reuse a number (a 32-bit
/// one wrapped after 4 billion, and two rooms then shared their outbox slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomKey(pub u64);

/// What a latest-value-wins frame replaces: the one of the same slot not yet written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// One typist's live text in one room.
    Typing {
        /// The room.
        room: RoomKey,
        /// The typist's connection.
        typist: ConnKey,
    },
    /// Who is in one room.
    Presence {
        /// The room.
        room: RoomKey,
    },
}

/// An encoded server frame, and its message type (for metrics). Cloning shares the bytes:
/// a broadcast encodes once and every recipient's outbox holds the same buffer.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The message's `type`.
    pub kind: &'static str,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// The JSON text.
    Text(Utf8Bytes),
    /// A frame carrying a page of lines, still in pieces: `head`, then each line's kept
    /// bytes (from `skip` on, after a `{`), comma-separated, then `tail`. The lines are
    /// shared with the room's history and written as they are, with no copy
    /// ([`Frame::for_each_piece`]).
    Spliced(std::sync::Arc<Spliced>),
    /// A binary frame (the binary exercise).
    Binary(axum::body::Bytes),
}

#[derive(Debug)]
struct Spliced {
    head: String,
    lines: Vec<Utf8Bytes>,
    skip: usize,
    tail: String,
    len: usize,
}

impl Frame {
    /// Encodes a message once.
    pub fn encode(msg: &ServerMsg) -> Frame {
        Frame {
            kind: msg.type_name(),
            body: Body::Text(Utf8Bytes::from(encode(msg))),
        }
    }

    /// A frame made of `head`, the `lines` (each as `{` and its bytes from `skip` on),
    /// comma-separated, and `tail`.
    pub fn spliced(
        kind: &'static str,
        head: String,
        lines: Vec<Utf8Bytes>,
        skip: usize,
        tail: String,
    ) -> Frame {
        // Each line is `{` and its bytes after `skip`, with a comma between two lines.
        let body: usize =
            lines.iter().map(|l| l.len() + 1 - skip).sum::<usize>() + lines.len().saturating_sub(1);
        let len = head.len() + body + tail.len();
        Frame {
            kind,
            body: Body::Spliced(std::sync::Arc::new(Spliced {
                head,
                lines,
                skip,
                tail,
                len,
            })),
        }
    }

    /// A text frame of `text` as it is (for tests of what carries frames).
    #[cfg(test)]
    pub(crate) fn for_test(text: String) -> Frame {
        Frame {
            kind: "test",
            body: Body::Text(Utf8Bytes::from(text)),
        }
    }

    /// A text frame of these bytes as they came (the echo server's).
    pub fn echo(text: Utf8Bytes) -> Frame {
        Frame {
            kind: "echo_frame",
            body: Body::Text(text),
        }
    }

    /// A binary frame of these bytes.
    pub fn binary(bytes: impl Into<axum::body::Bytes>) -> Frame {
        Frame {
            kind: "binary_frame",
            body: Body::Binary(bytes.into()),
        }
    }

    /// The JSON text, if it is already in one piece.
    pub fn text(&self) -> Option<&Utf8Bytes> {
        match &self.body {
            Body::Text(bytes) => Some(bytes),
            Body::Spliced(_) | Body::Binary(_) => None,
        }
    }

    /// The JSON text, in one piece (assembled now if it was spliced; empty for a binary
    /// frame, which has no text). The tests read frames with it; the server writes the
    /// pieces as they are ([`Frame::for_each_piece`]).
    #[cfg(test)]
    pub fn into_bytes(self) -> Utf8Bytes {
        match self.body {
            Body::Text(bytes) => bytes,
            Body::Binary(_) => Utf8Bytes::from_static(""),
            Body::Spliced(parts) => {
                let mut out = String::with_capacity(parts.len);
                out.push_str(&parts.head);
                for (i, line) in parts.lines.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('{');
                    out.push_str(&line.as_str()[parts.skip..]);
                }
                out.push_str(&parts.tail);
                Utf8Bytes::from(out)
            }
        }
    }

    /// Whether it is a binary frame (otherwise, text).
    pub fn is_binary(&self) -> bool {
        matches!(self.body, Body::Binary(_))
    }

    /// Hands over the payload's bytes in order, without assembling them: a spliced frame's
    /// pieces (head, each line after its `{` or `,{`, tail) are written as they are shared.
    pub fn for_each_piece<'a>(&'a self, mut piece: impl FnMut(&'a [u8])) {
        match &self.body {
            Body::Text(bytes) => piece(bytes.as_str().as_bytes()),
            Body::Binary(bytes) => piece(bytes),
            Body::Spliced(parts) => {
                piece(parts.head.as_bytes());
                for (i, line) in parts.lines.iter().enumerate() {
                    piece(if i == 0 { b"{" } else { b",{" });
                    piece(&line.as_str().as_bytes()[parts.skip..]);
                }
                piece(parts.tail.as_bytes());
            }
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Text(bytes) => bytes.len(),
            Body::Spliced(parts) => parts.len,
            Body::Binary(bytes) => bytes.len(),
        }
    }
}

/// Why an outbox stopped taking frames; becomes the WebSocket close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client did not read fast enough (its queue passed the byte limit).
    SlowConsumer,
    /// The server is shutting down.
    GoingAway,
    /// The client sent a frame over the size limit.
    TooBig,
    /// The client sent a text frame that is not UTF-8.
    InvalidUtf8,
    /// The client broke the WebSocket protocol (bad framing, unmasked frames, …).
    ProtocolError,
    /// The client stayed over its rate limit for too long.
    RateLimited,
    /// The server could not make the client's session durable (its disk is failing or its
    /// commit queue is full): no welcome without a session a crash cannot lose.
    Busy,
    /// The client's address opened its share of new sessions this minute.
    TooManySessions,
    /// The client's address resumed its share of sessions this minute.
    TooManyResumes,
    /// The client closed the connection: the server answers its close frame (1000).
    ClientClosed,
    /// Sign-in is required and the `hello` had no token (4001).
    AuthRequired,
    /// The token was refused (4001).
    BadToken,
    /// The token expired with no valid refresh (4001).
    TokenExpired,
    /// The app's backend disconnected this user through the server API (4003).
    Disconnected,
}

/// The close code of a refused or expired sign-in.
pub const CLOSE_AUTH: u16 = 4001;
/// The close code of a user disconnected through the server API.
pub const CLOSE_DISCONNECTED: u16 = 4003;

impl CloseReason {
    /// The close frame sent to the client, as tungstenite writes it.
    pub fn ws_frame(self) -> tungstenite::protocol::CloseFrame {
        let frame = self.frame();
        tungstenite::protocol::CloseFrame {
            code: frame.code.into(),
            reason: frame.reason.as_str().into(),
        }
    }

    /// The close frame sent to the client.
    pub fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            CloseReason::SlowConsumer => {
                (close_code::AGAIN, "slow consumer: too many frames waiting")
            }
            CloseReason::GoingAway => (close_code::AWAY, "server shutting down"),
            CloseReason::TooBig => (close_code::SIZE, "frame too large"),
            CloseReason::InvalidUtf8 => (close_code::INVALID, "text frame is not UTF-8"),
            CloseReason::ProtocolError => (close_code::PROTOCOL, "WebSocket protocol error"),
            CloseReason::RateLimited => (close_code::POLICY, "over the rate limit for too long"),
            CloseReason::Busy => (close_code::AGAIN, "server busy: try again later"),
            CloseReason::ClientClosed => (close_code::NORMAL, "bye"),
            CloseReason::TooManySessions => (
                close_code::POLICY,
                "too many new sessions from your address: resume one, or wait a minute",
            ),
            CloseReason::TooManyResumes => (
                close_code::POLICY,
                "too many resumes from your address: wait a minute",
            ),
            CloseReason::AuthRequired => (CLOSE_AUTH, "sign-in required"),
            CloseReason::BadToken => (CLOSE_AUTH, "sign-in refused"),
            CloseReason::TokenExpired => (CLOSE_AUTH, "sign-in expired"),
            CloseReason::Disconnected => (CLOSE_DISCONNECTED, "disconnected by the server"),
        };
        CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }
    }

    /// A short name, for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::GoingAway => "going_away",
            CloseReason::TooBig => "too_big",
            CloseReason::InvalidUtf8 => "invalid_utf8",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::Busy => "busy",
            CloseReason::TooManySessions => "too_many_sessions",
            CloseReason::TooManyResumes => "too_many_resumes",
            CloseReason::ClientClosed => "client_closed",
            CloseReason::AuthRequired => "auth_required",
            CloseReason::BadToken => "bad_token",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::Disconnected => "disconnected",
        }
    }
}

/// What the connection's task gets from [`Outbox::next_batch`].
#[derive(Debug, Default)]
pub struct Batch {
    /// Frames to write, in order.
    pub frames: Vec<Frame>,
    /// If set, send this close after the frames and stop writing.
    pub close: Option<CloseReason>,
}

/// A connection's bounded outbound queue. Shared by the hub (pushes) and the connection's task (takes).
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    /// Wakes the connection's task. Waking takes the waker out, so the pushes after the first
    /// one cost nothing until the task looks again; the task registers before its second
    /// look, so a push between a look and the wait is never missed (`next_batch`).
    ready: AtomicWaker,
    /// Wakes whoever waits in [`Outbox::closed`] (a writer stuck on a client that stopped
    /// reading must not stay stuck).
    closing: Notify,
    /// Bytes of chat frames that may wait before the client counts as a slow consumer.
    limit_bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Pending>,
    /// The newest frame of each slot with one waiting in `queue`.
    latest: HashMap<Slot, Frame>,
    /// Bytes of the `Pending::Frame`s in `queue`.
    queued_bytes: usize,
    /// Bytes of the batch the writer took and has not finished writing: they wait too.
    in_flight_bytes: usize,
    closed: Option<CloseReason>,
    /// The close was handed to the connection's task; nothing more will be taken.
    close_taken: bool,
}

/// The capacity a drained queue may keep (in frames).
const KEPT_QUEUE: usize = 32;

#[derive(Debug)]
enum Pending {
    Frame(Frame),
    /// A placeholder for this slot's newest frame, which lives in `Inner::latest`.
    Latest(Slot),
}

impl Outbox {
    /// An empty outbox that tolerates `limit_bytes` of waiting chat frames.
    pub fn new(limit_bytes: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner::default()),
            ready: AtomicWaker::new(),
            closing: Notify::new(),
            limit_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding this lock leaves a queue that is still consistent
        // (every change is a single push or drain), so keep going rather than poison the hub.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame without waiting. Returns `false` if the outbox is closed, or closes it
    /// (slow consumer) because the frame would pass the byte limit.
    pub fn push(&self, frame: Frame) -> bool {
        self.push_all([frame])
    }

    /// Queues frames back to back (nothing another task pushes lands between them), without
    /// waiting. Returns `false` if the outbox is closed, or closes it (slow consumer) because
    /// they would pass the byte limit; then none of them is queued.
    pub fn push_all<const N: usize>(&self, frames: [Frame; N]) -> bool {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return false;
        }
        let len: usize = frames.iter().map(Frame::len).sum();
        let accepted = inner.queued_bytes + inner.in_flight_bytes + len <= self.limit_bytes;
        if accepted {
            inner.queued_bytes += len;
            inner.queue.extend(frames.into_iter().map(Pending::Frame));
        } else {
            inner.closed = Some(CloseReason::SlowConsumer);
        }
        drop(inner);
        self.ready.wake();
        if !accepted {
            self.closing.notify_waiters();
        }
        accepted
    }

    /// Bytes that may still wait before the client counts as a slow consumer.
    pub fn free_bytes(&self) -> usize {
        let inner = self.lock();
        self.limit_bytes
            .saturating_sub(inner.queued_bytes + inner.in_flight_bytes)
    }

    /// Bytes queued for this client and not yet written (those being written included).
    pub fn waiting_bytes(&self) -> usize {
        let inner = self.lock();
        inner.queued_bytes + inner.in_flight_bytes
    }

    /// How many bytes one reply built for this client (a greeting, a page of history, of
    /// members or of products) may take: an eighth of the limit, and never more than half of
    /// what may still wait, so that a reply can always be queued and several in a row (a
    /// `hello` rejoining many rooms) still fit. Replies page or trim to this; none closes
    /// the client as a slow consumer.
    pub fn reply_budget(&self) -> usize {
        (self.limit_bytes / 8).min(self.free_bytes() / 2)
    }

    /// The writer finished writing the batch it took: its bytes no longer wait.
    pub fn written(&self) {
        self.lock().in_flight_bytes = 0;
    }

    /// Queues a latest-value-wins frame, replacing the one of the same slot not yet written.
    pub fn push_latest(&self, slot: Slot, frame: Frame) {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return;
        }
        if let Some(waiting) = inner.latest.get_mut(&slot) {
            *waiting = frame;
            return; // Already queued, and so already notified.
        }
        inner.latest.insert(slot, frame);
        inner.queue.push_back(Pending::Latest(slot));
        drop(inner);
        self.ready.wake();
    }

    /// Stops taking frames; the connection's task sends what is queued, then the close.
    pub fn close(&self, reason: CloseReason) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(reason);
        }
        drop(inner);
        self.ready.wake();
        self.closing.notify_waiters();
    }

    /// Completes once the outbox is closed, with the reason.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.closing.notified();
            tokio::pin!(notified);
            // Register before looking, so a close between the look and the wait is not lost.
            notified.as_mut().enable();
            if let Some(reason) = self.lock().closed {
                return reason;
            }
            notified.await;
        }
    }

    /// Whether the outbox has stopped taking frames.
    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Waits until there is something to write, then takes all of it. After a batch that
    /// carries a close, every later call returns an empty batch with no close.
    pub async fn next_batch(&self) -> Batch {
        std::future::poll_fn(|cx| {
            if let Some(batch) = self.take() {
                return std::task::Poll::Ready(batch);
            }
            self.ready.register(cx.waker());
            match self.take() {
                Some(batch) => std::task::Poll::Ready(batch),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    /// Takes everything queued now, if anything (the connection's task waits with `next_batch`).
    pub(crate) fn take(&self) -> Option<Batch> {
        let mut inner = self.lock();
        if inner.close_taken {
            return Some(Batch::default());
        }
        let close = inner.closed;
        // A slow consumer gets no more of the backlog it could not read: just the close.
        if close == Some(CloseReason::SlowConsumer) {
            inner.queue.clear();
            inner.latest.clear();
            inner.queued_bytes = 0;
            inner.in_flight_bytes = 0;
        }
        if inner.queue.is_empty() && close.is_none() {
            return None;
        }
        let mut frames = Vec::with_capacity(inner.queue.len());
        while let Some(pending) = inner.queue.pop_front() {
            match pending {
                Pending::Frame(frame) => frames.push(frame),
                Pending::Latest(slot) => frames.extend(inner.latest.remove(&slot)),
            }
        }
        // A queue that grew for a burst (a backlog of thousands of frames) gives that room
        // back once drained; a small one is kept, to be reused without allocating. The
        // latest-value slots (typing, presence: a few a second at most) give theirs back
        // at once: kept, they were 290 bytes of every idle connection (massif).
        if inner.queue.capacity() > KEPT_QUEUE {
            inner.queue = VecDeque::new();
        }
        inner.latest = HashMap::new();
        inner.in_flight_bytes += inner.queued_bytes;
        inner.queued_bytes = 0;
        inner.close_taken = close.is_some();
        Some(Batch { frames, close })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batch: &Batch) -> Vec<String> {
        batch
            .frames
            .iter()
            .map(|f| f.clone().into_bytes().as_str().to_owned())
            .collect()
    }

    fn f(text: &'static str) -> Frame {
        Frame {
            kind: "test",
            body: Body::Text(Utf8Bytes::from_static(text)),
        }
    }

    #[tokio::test]
    async fn the_batch_being_written_still_counts_against_the_limit() {
        let outbox = Outbox::new(10);
        assert!(outbox.push(f("12345")));
        assert_eq!(texts(&outbox.next_batch().await), ["12345"]);
        // Taken but not yet written: still waiting, as far as the limit goes.
        assert_eq!(outbox.free_bytes(), 5);
        assert!(outbox.push(f("12345")));
        assert!(!outbox.push(f("x")), "10 bytes wait: the limit");
        let outbox = Outbox::new(10);
        assert!(outbox.push(f("12345")));
        outbox.next_batch().await;
        outbox.written();
        assert_eq!(outbox.free_bytes(), 10);
    }

    #[test]
    fn a_spliced_frame_assembles_its_pieces() {
        let lines = vec![
            Utf8Bytes::from_static(r#"{"t":"m","a":1}"#),
            Utf8Bytes::from_static(r#"{"t":"m","a":2}"#),
        ];
        let frame = Frame::spliced("older", r#"{"x":["#.into(), lines, 9, "]}".into());
        // What the writer sends, piece by piece, is the same text, and as long as said.
        let mut written = Vec::new();
        frame.for_each_piece(|piece| written.extend_from_slice(piece));
        let bytes = frame.clone().into_bytes();
        assert_eq!(bytes.as_str(), r#"{"x":[{"a":1},{"a":2}]}"#);
        assert_eq!(written, bytes.as_str().as_bytes());
        assert_eq!(frame.len(), bytes.len());
        assert!(!frame.is_binary());
    }

    fn typing(room: u32, typist: u64) -> Slot {
        Slot::Typing {
            room: RoomKey(room.into()),
            typist: ConnKey(typist),
        }
    }

    #[tokio::test]
    async fn latest_value_wins_per_slot_in_its_first_place() {
        let outbox = Outbox::new(1024);
        outbox.push_latest(typing(1, 1), f("a1"));
        outbox.push(f("line"));
        outbox.push_latest(typing(1, 2), f("b1"));
        outbox.push_latest(typing(2, 1), f("a-in-room-2"));
        outbox.push_latest(Slot::Presence { room: RoomKey(1) }, f("p1"));
        outbox.push_latest(typing(1, 1), f("a2"));
        outbox.push_latest(typing(1, 1), f("a3"));
        outbox.push_latest(Slot::Presence { room: RoomKey(1) }, f("p2"));
        let batch = outbox.next_batch().await;
        assert_eq!(texts(&batch), ["a3", "line", "b1", "a-in-room-2", "p2"]);
        assert!(batch.close.is_none());
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_room_back() {
        let outbox = Outbox::new(1 << 20);
        for _ in 0..1_000 {
            outbox.push(f("m"));
        }
        assert!(outbox.lock().queue.capacity() >= 1_000);
        assert_eq!(outbox.next_batch().await.frames.len(), 1_000);
        assert!(outbox.lock().queue.capacity() <= KEPT_QUEUE);
        // A small queue is kept for the next frames.
        outbox.push(f("again"));
        assert_eq!(texts(&outbox.next_batch().await), ["again"]);
        assert!(outbox.lock().queue.capacity() > 0);
        // Latest-value slots keep nothing once written.
        outbox.push_latest(Slot::Presence { room: RoomKey(1) }, f("p"));
        assert_eq!(texts(&outbox.next_batch().await), ["p"]);
        assert_eq!(outbox.lock().latest.capacity(), 0);
    }

    #[tokio::test]
    async fn batches_keep_order() {
        let outbox = Outbox::new(1024);
        outbox.push(f("m1"));
        outbox.push(f("m2"));
        assert_eq!(texts(&outbox.next_batch().await), ["m1", "m2"]);
        outbox.push(f("m3"));
        assert_eq!(texts(&outbox.next_batch().await), ["m3"]);
    }

    #[tokio::test]
    async fn passing_the_byte_limit_closes_as_slow_consumer() {
        let outbox = Outbox::new(10);
        assert!(outbox.push(f("12345")));
        assert!(outbox.push(f("12345")));
        // Typing never counts against the limit.
        outbox.push_latest(typing(1, 1), f("typing-frame-longer-than-limit"));
        assert!(!outbox.is_closed());
        assert!(!outbox.push(f("x")));
        assert!(outbox.is_closed());
        let batch = outbox.next_batch().await;
        assert!(batch.frames.is_empty());
        assert_eq!(batch.close, Some(CloseReason::SlowConsumer));
        assert!(!outbox.push(f("later")));
        let after = outbox.next_batch().await;
        assert!(after.frames.is_empty() && after.close.is_none());
    }

    #[tokio::test]
    async fn going_away_flushes_what_is_queued_then_closes() {
        let outbox = Outbox::new(100);
        outbox.push(f("last words"));
        outbox.close(CloseReason::GoingAway);
        let batch = outbox.next_batch().await;
        assert_eq!(texts(&batch), ["last words"]);
        assert_eq!(batch.close, Some(CloseReason::GoingAway));
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_push() {
        let outbox = std::sync::Arc::new(Outbox::new(100));
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.next_batch().await.frames.len() }
        });
        tokio::task::yield_now().await;
        outbox.push(f("wake"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .expect("writer woke")
            .expect("writer ran");
        assert_eq!(got, 1);
    }
}
