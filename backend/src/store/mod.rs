//! Where history lines and sessions are kept: [`SqliteStore`] (durable, the default),
//! [`MemoryStore`] (`--memory`, lost on restart) or [`RedisStore`] (`--redis`, shared by
//! several servers, which then number lines in Redis).
//!
//! Only the [`Committer`](crate::committer::Committer) calls a store, from its own thread, so
//! a store may block on the disk: nothing else waits for it.

mod memory;
pub(crate) mod redis;
mod sqlite;

pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use sqlite::{Archive, SqliteStore};

use serde::{Deserialize, Serialize};
use shared::{Change, ChangeKind, ChatLine, ConnId, DisplayName, RoomName, Seq, UserId};

/// Why a store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (disk full, file unreadable or locked, …).
    #[error("history store: SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis refused a command, or the connection to it broke.
    #[error("history store: Redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The Redis URL is not one (`redis://[:PASSWORD@]HOST:PORT[/DB]`).
    #[error("history store: bad Redis URL (redis://[:PASSWORD@]HOST:PORT[/DB]): {0}")]
    RedisUrl(::redis::RedisError),
    /// The data directory could not be made.
    #[error("history store: {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// What the store holds does not read back (a room name, a number out of range, JSON):
    /// written by another program, or by a newer release.
    #[error("history store: {what} does not read back: {why}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it does not.
        why: String,
    },
    /// The schema is newer than this release knows.
    #[error(
        "history store: the data directory was written by a newer release (schema {found}; \
         this one reads up to {known})"
    )]
    NewerSchema {
        /// The store's version.
        found: i64,
        /// The newest this release knows.
        known: i64,
    },
    /// A value out of the range the store keeps (a `seq` or time past `i64::MAX`).
    #[error("history store: {0} is out of range")]
    OutOfRange(&'static str),
    /// Redis gave no connection (none was open, and opening one failed).
    #[error("history store: Redis unreachable: {0}")]
    RedisUnreachable(::redis::RedisError),
    /// A value could not be written as JSON.
    #[error("history store: JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A socket option could not be set on the connection to Redis.
    #[error("history store: Redis: {0}")]
    Socket(#[from] std::io::Error),
    /// The operation is not one this store does (numbering lines on a store that leaves
    /// it to the committer).
    #[error("history store: {0}")]
    Unsupported(&'static str),
}

/// A private resume token: whoever holds it gets its session's id and name back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResumeToken(pub String);

/// A session as kept: the token, the public id it gives back, and the display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The private token.
    pub token: ResumeToken,
    /// The public id.
    pub id: ConnId,
    /// The display name (none for sessions from before names).
    pub name: Option<DisplayName>,
    /// When it was last used (opened, resumed or left), in ms since the Unix epoch: it
    /// expires after `--session-ttl` of disuse.
    pub last_used: u64,
    /// Whether a newer token replaced this one (rotation): it still resumes for a short
    /// grace period, in case the client never got its new token.
    pub replaced: bool,
    /// The signed-in user the session belongs to (none: a guest's). Only that user's
    /// token resumes it.
    pub user: Option<UserId>,
}

/// Every token of `user` issued before `before` (seconds since the Unix epoch) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The user.
    pub user: UserId,
    /// Tokens with an `iat` below this are refused.
    pub before: u64,
}

/// A `send` nonce already accepted: a resend of it is acked again, never appended again.
/// Kept as long as its sender's session lives, whatever the history cap dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredNonce {
    /// The sender's id.
    pub sender: ConnId,
    /// The room it was sent to.
    pub room: RoomName,
    /// The nonce.
    pub nonce: String,
    /// Where the line is.
    pub seq: Seq,
}

/// A rule a moderator set on a room and that holds until lifted (or until its end): a ban
/// or a mute of one person, or the room's slow mode. Kept apart from the room's lines, so it
/// outlives the history cap and the room's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRule {
    /// The room.
    pub room: RoomName,
    /// `ban`, `mute` or `slow_mode`.
    pub kind: ChangeKind,
    /// Whom it holds (a user's id or a guest's session id; `""` for a slow mode).
    pub user: String,
    /// Its end, in ms since the Unix epoch (none: until lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// A slow mode's interval, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u32>,
    /// Who set it.
    pub by: String,
    /// When, in ms since the Unix epoch.
    pub at: u64,
}

/// What a moderation entry does to a room's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOp {
    /// Sets (or replaces) a rule.
    Put(StoredRule),
    /// Lifts the rule of this kind on this person (`""`: the slow mode) in this room.
    Lift(RoomName, ChangeKind, String),
}

impl RuleOp {
    /// What `change`, accepted in `room` at `at`, does to its rules: none for an edit, a
    /// deletion or a kick (which hold nothing).
    pub fn of(room: &RoomName, change: &Change, at: u64) -> Option<RuleOp> {
        let user = change.user.clone().unwrap_or_default();
        let put = |kind| {
            Some(RuleOp::Put(StoredRule {
                room: room.clone(),
                kind,
                user: user.clone(),
                until: change.until,
                secs: change.secs,
                by: change.by.clone().unwrap_or_default(),
                at,
            }))
        };
        match change.kind {
            ChangeKind::Ban | ChangeKind::Mute => put(change.kind),
            ChangeKind::SlowMode if change.secs.unwrap_or(0) > 0 => put(ChangeKind::SlowMode),
            ChangeKind::SlowMode => Some(RuleOp::Lift(
                room.clone(),
                ChangeKind::SlowMode,
                String::new(),
            )),
            ChangeKind::Unban => Some(RuleOp::Lift(room.clone(), ChangeKind::Ban, user)),
            ChangeKind::Unmute => Some(RuleOp::Lift(room.clone(), ChangeKind::Mute, user)),
            ChangeKind::Edit | ChangeKind::Delete | ChangeKind::Kick => None,
        }
    }
}

/// One moderation action, as the audit log keeps it (and `GET /api/audit` gives it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, in ms since the Unix epoch.
    pub at: u64,
    /// Who: a moderator's user id, or `api`.
    pub by: String,
    /// What: `delete`, `edit` (through the API), `kick`, `ban`, `unban`, `mute`, `unmute`,
    /// `slow_mode`.
    pub action: String,
    /// Where.
    pub room: RoomName,
    /// To what or whom: the person (a user's id or a guest's session id), the line's `seq`
    /// for `delete` and `edit`, the seconds for `slow_mode`.
    pub target: String,
    /// A ban's or a mute's end (absent: until lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// The entry's `seq` in the room's log.
    pub seq: Seq,
}

impl AuditEntry {
    /// The audit entry of `entry` (a moderation entry of a room's log).
    pub fn of(entry: &ChatLine) -> Option<AuditEntry> {
        let change = entry.change.as_ref()?;
        let target = match change.kind {
            ChangeKind::Edit | ChangeKind::Delete => change.target.to_string(),
            ChangeKind::SlowMode => change.secs.unwrap_or(0).to_string(),
            _ => change.user.clone().unwrap_or_default(),
        };
        Some(AuditEntry {
            at: entry.at,
            by: match change.kind {
                // An edit's author is its `user` (the API's: `api`).
                ChangeKind::Edit => entry
                    .user
                    .as_ref()
                    .map_or_else(|| "api".to_owned(), |u| u.as_str().to_owned()),
                _ => change.by.clone().unwrap_or_default(),
            },
            action: change.kind.as_str().to_owned(),
            room: entry.room.clone(),
            target,
            until: change.until,
            seq: entry.seq,
        })
    }
}

/// A signed-in user's read position in a room: they have read every entry up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRead {
    /// The user.
    pub user: UserId,
    /// The room.
    pub room: RoomName,
    /// The newest entry read.
    pub seq: Seq,
}

/// The most audit entries a store keeps (the oldest go first).
pub const AUDIT_KEEP: usize = 100_000;

/// What a store holds at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The kept lines of every room, each room's in `seq` order.
    pub lines: Vec<ChatLine>,
    /// Every session.
    pub sessions: Vec<StoredSession>,
    /// Every accepted nonce still remembered.
    pub nonces: Vec<StoredNonce>,
    /// Every user's revocation.
    pub revocations: Vec<Revocation>,
    /// Every room's rules (bans, mutes, slow modes), expired ones included.
    pub rules: Vec<StoredRule>,
    /// Every signed-in user's read position in each room.
    pub reads: Vec<StoredRead>,
}

/// One group commit: everything in it becomes durable together, or nothing does.
#[derive(Debug, Default)]
pub struct Batch {
    /// New lines, each room's in `seq` order.
    pub lines: Vec<ChatLine>,
    /// New or changed sessions (a session with a known token replaces it).
    pub sessions: Vec<StoredSession>,
    /// Per room, lines below this `seq` may be forgotten (the history cap).
    pub forget_below: Vec<(RoomName, Seq)>,
    /// Nonces remembered (new lines' nonces are remembered with the lines themselves).
    pub forget_nonces: Vec<StoredNonce>,
    /// Sessions that expired (or were evicted), and every nonce of their ids.
    pub forget_sessions: Vec<(ResumeToken, ConnId)>,
    /// Users whose older tokens are refused from now on.
    pub revocations: Vec<Revocation>,
    /// Rooms' rules set or lifted by the batch's moderation entries.
    pub rules: Vec<RuleOp>,
    /// Moderation actions for the audit log.
    pub audit: Vec<AuditEntry>,
    /// Read positions moved forward (a store keeps the highest it was given).
    pub reads: Vec<StoredRead>,
}

/// What became of a line given to [`HistoryStore::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended at this `seq`.
    New(Seq),
    /// Its sender's nonce was already accepted in that room, at this `seq`: not appended.
    Repeat(Seq),
    /// Not appended: the store failed for this line (others of the batch may have made it).
    Failed,
}

/// Keeps history lines and sessions.
pub trait HistoryStore: Send {
    /// Everything kept, for start-up.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Makes a batch durable in one transaction; returns only once it is.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
    /// Whether the store numbers lines itself (several servers share it, so no one server
    /// may): then the committer gives it lines through [`append`](Self::append) instead of
    /// numbering them and passing them to `commit`.
    fn numbers_lines(&self) -> bool {
        false
    }
    /// Deletes the lines (and nonces) of every room whose newest line is older than
    /// `quiet_since` (ms since the epoch); returns their names. A store that keeps history
    /// elsewhere's way (in memory, in Redis) deletes nothing.
    fn expire_rooms(&mut self, quiet_since: u64) -> Result<Vec<RoomName>, StoreError> {
        let _ = quiet_since;
        Ok(Vec::new())
    }
    /// The newest audit entries (of `room`, or of every room), newest first, at most
    /// `limit`.
    fn audit(
        &mut self,
        room: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// For a store that [`numbers_lines`](Self::numbers_lines): appends `lines` (their
    /// `seq` is ignored) in order, each at its room's next `seq` unless its sender's nonce
    /// was already accepted in that room; durable when it returns.
    fn append(&mut self, lines: &[ChatLine]) -> Result<Vec<Appended>, StoreError> {
        let _ = lines;
        Err(StoreError::Unsupported(
            "this store leaves numbering to the committer",
        ))
    }
}
