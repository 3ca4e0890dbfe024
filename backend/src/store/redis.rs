//! History, sessions and accepted nonces in Redis (`--redis`), shared by every server given
//! the same Redis: several servers act as one chat.
//!
//! Redis decides each room's order. One Lua script ([`APPEND`]) checks the sender's
//! (room, nonce) dedupe record, takes the room's next `seq`, appends the line to the room's
//! stream (trimmed to the history cap), remembers the nonce and publishes the line on the
//! room's channel, atomically. The committer acks a line only after that script answered, so
//! an ack means the line is in Redis (and on Redis's disk as its `appendfsync` says: see
//! docs/DEPLOY.md).
//!
//! Keys (all under `charla:`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `seq:{room}` | string | the room's last `seq` |
//! | `lines:{room}` | stream | the kept lines, entry id `<seq>-0`, field `l` = the line's JSON |
//! | `nonces:{id}` / `nonce-order:{id}` | hash / list | a sender's accepted nonces (newest 1,024), expiring with the session TTL |
//! | `session:{token}` | string | a session's JSON, expiring like the single-node sessions |
//! | `presence:{room}` | hash | each node's members of the room (see `cluster`) |
//! | `rules` | hash | every room's bans, mutes and slow modes (`{room}\n{kind}\n{user}` → JSON) |
//! | `audit` | list | the audit log, newest first (JSON each, the newest 100,000) |
//! | channel `rules` | pub/sub | each rule set or lifted, for every server |
//! | channel `room:{room}` | pub/sub | lines, typing and presence between nodes |
//!
//! Sessions and nonces are never deleted by a node: Redis expires them (a node's view of a
//! session may be stale while another node uses it).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::{ChangeKind, ChatLine, ConnId, DisplayName, RoomName, Seq, UserId};

use super::{
    AUDIT_KEEP, Appended, AuditEntry, Batch, HistoryStore, Loaded, ResumeToken, Revocation, RuleOp,
    StoreError, StoredRead, StoredRule, StoredSession,
};

/// Nonces remembered per sender (its newest), as the single-node committer keeps.
const NONCES_PER_SENDER: u32 = 1_024;

/// How long one Redis call may take before the batch is refused (`unavailable`).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// KEYS: seq, stream, nonces, nonce order. ARGV: dedupe field (room and nonce), the line's JSON
/// (with `seq` 0), history cap, nonce TTL in ms, channel, nonces kept per sender.
/// Returns {1, seq} for a new line, {0, seq} for a nonce already accepted.
const APPEND: &str = r#"
local done = redis.call('HGET', KEYS[3], ARGV[1])
if done then return {0, tonumber(done)} end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'l', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('RPUSH', KEYS[4], ARGV[1])
if redis.call('LLEN', KEYS[4]) > tonumber(ARGV[6]) then
  redis.call('HDEL', KEYS[3], redis.call('LPOP', KEYS[4]))
end
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[5], '{"line":{"seq":' .. seq .. ',"line":' .. ARGV[2] .. '}}')
return {1, seq}
"#;

/// The key of a room's `seq` counter.
pub(crate) fn seq_key(room: &RoomName) -> String {
    format!("charla:seq:{room}")
}

/// The key of a room's stream of kept lines.
pub(crate) fn lines_key(room: &RoomName) -> String {
    format!("charla:lines:{room}")
}

/// The pub/sub channel of a room.
pub(crate) fn channel(room: &RoomName) -> String {
    format!("charla:room:{room}")
}

/// The key of a room's per-node presence.
pub(crate) fn presence_key(room: &RoomName) -> String {
    format!("charla:presence:{room}")
}

/// The key of a session.
pub(crate) fn session_key(token: &str) -> String {
    format!("charla:session:{token}")
}

/// A session as Redis keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionJson {
    id: ConnId,
    #[serde(default)]
    name: Option<DisplayName>,
    last_used: u64,
    replaced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<UserId>,
}

/// The hash of every room's rules: `{room}\n{kind}\n{user}` → the rule's JSON.
pub(crate) const RULES_KEY: &str = "charla:rules";
/// The channel on which a rule set or lifted is told to every server.
pub(crate) const RULES_CHANNEL: &str = "charla:rules";
/// The list of audit entries, newest first (JSON each).
pub(crate) const AUDIT_KEY: &str = "charla:audit";
/// Audit entries read to find a room's (the list is not indexed by room).
const AUDIT_SCAN: isize = 10_000;

/// A rule's field in [`RULES_KEY`].
fn rule_field(room: &RoomName, kind: ChangeKind, user: &str) -> String {
    format!("{room}\n{}\n{user}", kind.as_str())
}

/// The hash of read positions: `{room}\n{user}` → the newest `seq` the user read there.
pub(crate) const READS_KEY: &str = "charla:reads";
/// The channel on which a read position moved forward is told to every server (JSON of a
/// [`StoredRead`]).
pub(crate) const READS_CHANNEL: &str = "charla:reads";

/// Moves a read position forward only (KEYS: the hash, the channel; ARGV: the field, the
/// `seq`, the message), and tells every server when it moved.
const ADVANCE_READ: &str = "
    local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
    if tonumber(ARGV[2]) > held then
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('PUBLISH', KEYS[2], ARGV[3])
    end
    return 0";

/// A read position's field in [`READS_KEY`] (a room name holds no newline).
fn read_field(room: &RoomName, user: &UserId) -> String {
    format!("{room}\n{user}")
}

/// Every read position in [`READS_KEY`]'s answer to `HGETALL` (unreadable fields skipped).
pub(crate) fn reads_of(fields: Vec<(String, u64)>) -> Vec<StoredRead> {
    fields
        .into_iter()
        .filter_map(|(field, seq)| {
            let (room, user) = field.split_once('\n')?;
            Some(StoredRead {
                user: UserId::new(user),
                room: RoomName::parse(room).ok()?,
                seq: Seq(seq),
            })
        })
        .collect()
}

/// The hash of revoked users: user → tokens issued before this (seconds) are refused.
pub(crate) const REVOKED_KEY: &str = "charla:revoked";

impl SessionJson {
    /// The stored session this JSON is, under `token`.
    pub(crate) fn into_stored(self, token: &str) -> StoredSession {
        StoredSession {
            token: ResumeToken(token.to_owned()),
            id: self.id,
            name: self.name,
            last_used: self.last_used,
            replaced: self.replaced,
            user: self.user,
        }
    }
}

/// Reads a stream entry (id `<seq>-0`, field `l`) back into its line.
pub(crate) fn line_of_entry(id: &str, json: &[u8]) -> Option<ChatLine> {
    let seq = id.split('-').next()?.parse::<u64>().ok()?;
    let mut line: ChatLine = serde_json::from_slice(json).ok()?;
    line.seq = Seq(seq);
    Some(line)
}

/// The shared store: see the module docs. Used by the committer's thread only (it blocks).
pub struct RedisStore {
    client: redis::Client,
    conn: Option<redis::Connection>,
    append: redis::Script,
    history_cap: u32,
    session_ttl_ms: u64,
    /// How long a replaced token lives (`--resume-grace`), in ms.
    grace_ms: u64,
}

impl RedisStore {
    /// Opens `url` (redis://HOST:PORT[/DB]) and checks that Redis answers.
    pub fn open(
        url: &str,
        history_cap: u32,
        session_ttl: Duration,
        grace: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::RedisUrl)?;
        let mut store = RedisStore {
            client,
            conn: None,
            append: redis::Script::new(APPEND),
            history_cap,
            session_ttl_ms: u64::try_from(session_ttl.as_millis()).unwrap_or(u64::MAX),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        };
        let _: String = redis::cmd("PING")
            .query(store.conn()?)
            .map_err(|e| store.failed(&e))?;
        Ok(store)
    }

    /// The connection, opened again if the last one failed.
    fn conn(&mut self) -> Result<&mut redis::Connection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect()?,
        };
        Ok(self.conn.insert(conn))
    }

    /// A new connection, with deadlines on every call and the append script loaded (a
    /// restarted Redis forgets it; EVALSHA after that).
    fn connect(&mut self) -> Result<redis::Connection, StoreError> {
        let mut conn = self
            .client
            .get_connection_with_timeout(CALL_TIMEOUT)
            .map_err(StoreError::RedisUnreachable)?;
        conn.set_read_timeout(Some(CALL_TIMEOUT))?;
        conn.set_write_timeout(Some(CALL_TIMEOUT))?;
        self.append.load(&mut conn)?;
        Ok(conn)
    }

    /// Drops the connection after an error (the next call reconnects) and describes it.
    fn failed(&mut self, err: &redis::RedisError) -> StoreError {
        self.conn = None;
        StoreError::Redis(err.clone())
    }

    /// After a failed append: each line whose dedupe field was recorded is in, at its
    /// `seq`; the others are not. `None` if Redis does not answer.
    fn recover(&mut self, lines: &[ChatLine], fields: &[String]) -> Option<Vec<Appended>> {
        let mut pipe = redis::pipe();
        for (line, field) in lines.iter().zip(fields) {
            pipe.cmd("HGET")
                .arg(format!("charla:nonces:{}", line.from))
                .arg(field);
        }
        let found: redis::RedisResult<Vec<Option<u64>>> = pipe.query(self.conn().ok()?);
        let found = found.map_err(|e| self.failed(&e)).ok()?;
        Some(
            found
                .into_iter()
                .map(|seq| seq.map_or(Appended::Failed, |seq| Appended::New(Seq(seq))))
                .collect(),
        )
    }

    fn ttl_of(&self, session: &StoredSession) -> u64 {
        let ttl = if session.replaced {
            self.session_ttl_ms.min(self.grace_ms)
        } else {
            self.session_ttl_ms
        };
        ttl.max(1)
    }
}

impl HistoryStore for RedisStore {
    /// Nothing: rooms read their lines from Redis when a member first joins them on this
    /// node, and sessions are looked up when a client resumes.
    /// Revocations are read: every node must refuse a revoked token from its first
    /// connection on.
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let revoked: redis::RedisResult<Vec<(String, u64)>> =
            redis::cmd("HGETALL").arg(REVOKED_KEY).query(self.conn()?);
        let revoked = revoked.map_err(|e| self.failed(&e))?;
        let rules: redis::RedisResult<Vec<(String, String)>> =
            redis::cmd("HGETALL").arg(RULES_KEY).query(self.conn()?);
        let rules = rules
            .map_err(|e| self.failed(&e))?
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str::<StoredRule>(&json).ok())
            .collect();
        let reads: redis::RedisResult<Vec<(String, u64)>> =
            redis::cmd("HGETALL").arg(READS_KEY).query(self.conn()?);
        let reads = reads_of(reads.map_err(|e| self.failed(&e))?);
        Ok(Loaded {
            rules,
            reads,
            revocations: revoked
                .into_iter()
                .map(|(user, before)| Revocation {
                    user: UserId::new(user),
                    before,
                })
                .collect(),
            ..Loaded::default()
        })
    }

    /// Writes sessions (they expire by themselves: forgetting is Redis's job),
    /// revocations, rooms' rules (told to every server) and audit entries.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.sessions.is_empty()
            && batch.revocations.is_empty()
            && batch.rules.is_empty()
            && batch.audit.is_empty()
            && batch.reads.is_empty()
        {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for read in &batch.reads {
            pipe.cmd("EVAL")
                .arg(ADVANCE_READ)
                .arg(2)
                .arg(READS_KEY)
                .arg(READS_CHANNEL)
                .arg(read_field(&read.room, &read.user))
                .arg(read.seq.0)
                .arg(serde_json::to_string(read)?)
                .ignore();
        }
        for op in &batch.rules {
            match op {
                RuleOp::Put(rule) => pipe
                    .cmd("HSET")
                    .arg(RULES_KEY)
                    .arg(rule_field(&rule.room, rule.kind, &rule.user))
                    .arg(serde_json::to_string(rule)?)
                    .ignore(),
                RuleOp::Lift(room, kind, user) => pipe
                    .cmd("HDEL")
                    .arg(RULES_KEY)
                    .arg(rule_field(room, *kind, user))
                    .ignore(),
            };
            pipe.cmd("PUBLISH")
                .arg(RULES_CHANNEL)
                .arg(serde_json::to_string(op)?)
                .ignore();
        }
        for entry in &batch.audit {
            pipe.cmd("LPUSH")
                .arg(AUDIT_KEY)
                .arg(serde_json::to_string(entry)?)
                .ignore();
        }
        if !batch.audit.is_empty() {
            let last = isize::try_from(AUDIT_KEEP).unwrap_or(isize::MAX) - 1;
            pipe.cmd("LTRIM").arg(AUDIT_KEY).arg(0).arg(last).ignore();
        }
        for r in &batch.revocations {
            pipe.cmd("HSET")
                .arg(REVOKED_KEY)
                .arg(r.user.as_str())
                .arg(r.before)
                .ignore();
        }
        for s in &batch.sessions {
            let json = serde_json::to_string(&SessionJson {
                id: s.id.clone(),
                name: s.name.clone(),
                last_used: s.last_used,
                replaced: s.replaced,
                user: s.user.clone(),
            })?;
            pipe.cmd("SET")
                .arg(session_key(&s.token.0))
                .arg(json)
                .arg("PX")
                .arg(self.ttl_of(s))
                .ignore();
        }
        let result: redis::RedisResult<()> = pipe.query(self.conn()?);
        result.map_err(|e| self.failed(&e))
    }

    fn numbers_lines(&self) -> bool {
        true
    }

    fn audit(
        &mut self,
        room: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let last = match room {
            None => isize::try_from(limit)
                .unwrap_or(isize::MAX)
                .saturating_sub(1),
            Some(_) => AUDIT_SCAN - 1,
        };
        let found: redis::RedisResult<Vec<String>> = redis::cmd("LRANGE")
            .arg(AUDIT_KEY)
            .arg(0)
            .arg(last)
            .query(self.conn()?);
        Ok(found
            .map_err(|e| self.failed(&e))?
            .iter()
            .filter_map(|json| serde_json::from_str::<AuditEntry>(json).ok())
            .filter(|e| room.is_none_or(|r| &e.room == r))
            .take(limit)
            .collect())
    }

    fn append(&mut self, lines: &[ChatLine]) -> Result<Vec<Appended>, StoreError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        // Every line is recorded under a dedupe field, its sender's nonce or (without one) a
        // fresh one of the server's: a pipeline that fails part-way has run some scripts and
        // not others, and the fields say which (`recover`).
        let fields: Vec<String> = lines
            .iter()
            .map(|line| match &line.nonce {
                Some(n) => format!("{}\n{n}", line.room),
                None => format!("{}\n\u{1}{}", line.room, crate::hub::random_token(12)),
            })
            .collect();
        let mut pipe = redis::pipe();
        for (line, field) in lines.iter().zip(&fields) {
            let json = serde_json::to_string(line)?;
            pipe.cmd("EVALSHA")
                .arg(self.append.get_hash())
                .arg(4)
                .arg(seq_key(&line.room))
                .arg(lines_key(&line.room))
                .arg(format!("charla:nonces:{}", line.from))
                .arg(format!("charla:nonce-order:{}", line.from))
                .arg(field)
                .arg(json)
                .arg(self.history_cap.max(1))
                .arg(self.session_ttl_ms.max(1))
                .arg(channel(&line.room))
                .arg(NONCES_PER_SENDER);
        }
        let replies: redis::RedisResult<Vec<(u8, u64)>> = pipe.query(self.conn()?);
        let replies = match replies {
            Ok(replies) => replies,
            Err(e) => {
                let err = self.failed(&e);
                // Which scripts ran? Those lines are in (and were published): ack them;
                // refuse only the others. If Redis cannot say, refuse all (resent lines with
                // a nonce are still recognised).
                return self.recover(lines, &fields).ok_or(err);
            }
        };
        Ok(replies
            .into_iter()
            .map(|(new, seq)| {
                if new == 1 {
                    Appended::New(Seq(seq))
                } else {
                    Appended::Repeat(Seq(seq))
                }
            })
            .collect())
    }
}
