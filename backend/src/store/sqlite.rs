//! History in an embedded SQLite file (`<data-dir>/charla.sqlite3`), in WAL mode with
//! `synchronous = FULL`: a committed batch survives a crash, kill -9 and power loss.
//!
//! The schema is versioned with `PRAGMA user_version`. Version 0 is the first release's (one
//! room: `lines(seq, sender, text, at, nonce)`, `sessions(token, id)`); [`SqliteStore::open`]
//! migrates it in one transaction: its lines go to `general`, their nonces to `nonces`, its
//! sessions count as used at the upgrade. Version 3 adds the `products` table (read and
//! written by `crate::products`, over its own connection to the same file). A file from a
//! newer release is refused rather than misread.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params, types::Type};
use shared::{Change, ChangeKind, ChatLine, ConnId, DisplayName, RoomName, Seq, UserId};

use super::{
    AUDIT_KEEP, AuditEntry, Batch, HistoryStore, Loaded, ResumeToken, Revocation, RuleOp,
    StoreError, StoredNonce, StoredRead, StoredRule, StoredSession,
};

/// The schema this release writes.
pub const SCHEMA_VERSION: i64 = 7;

/// Version 7 adds read positions: per signed-in user and room, the newest entry read.
const SCHEMA_V7: &str = "
    CREATE TABLE reads (
        user TEXT NOT NULL,
        room TEXT NOT NULL,
        seq  INTEGER NOT NULL,
        PRIMARY KEY (user, room)
    ) WITHOUT ROWID;";

/// Version 6 adds moderation: the rules set on rooms (bans, mutes, slow modes: they
/// outlive the lines that set them) and the audit log.
const SCHEMA_V6: &str = "
    CREATE TABLE rules (
        room  TEXT NOT NULL,
        kind  TEXT NOT NULL,
        user  TEXT NOT NULL,
        until INTEGER,
        secs  INTEGER,
        by    TEXT NOT NULL,
        at    INTEGER NOT NULL,
        PRIMARY KEY (room, kind, user)
    );
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        by     TEXT NOT NULL,
        action TEXT NOT NULL,
        room   TEXT NOT NULL,
        target TEXT NOT NULL,
        until  INTEGER,
        seq    INTEGER NOT NULL
    );
    CREATE INDEX audit_by_room ON audit (room, id);";

/// Version 5 adds edits and deletions: an entry that changes an earlier line keeps its
/// change (JSON) and its target; a line says whether it was edited or removed (then its text
/// is gone from the file).
const SCHEMA_V5: &str = "
    ALTER TABLE lines ADD COLUMN change TEXT;
    ALTER TABLE lines ADD COLUMN target INTEGER;
    ALTER TABLE lines ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE lines ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;";

/// Version 4 adds sign-in: the user of each line and session, and revoked users.
const SCHEMA_V4: &str = "
    ALTER TABLE lines ADD COLUMN user TEXT;
    ALTER TABLE sessions ADD COLUMN user TEXT;
    CREATE TABLE revocations (
        user   TEXT PRIMARY KEY,
        before INTEGER NOT NULL
    );";

/// Version 3 adds the product list (the live products exercise; `crate::products`).
const SCHEMA_V3: &str = "
    CREATE TABLE products (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        title       TEXT NOT NULL,
        description TEXT NOT NULL,
        code        TEXT NOT NULL UNIQUE,
        price       REAL NOT NULL,
        stock       INTEGER NOT NULL
    );";

const SCHEMA_V2: &str = "
    CREATE TABLE lines (
        room   TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        sender TEXT NOT NULL,
        name   TEXT,
        text   TEXT NOT NULL,
        at     INTEGER NOT NULL,
        nonce  TEXT,
        PRIMARY KEY (room, seq)
    ) WITHOUT ROWID;
    CREATE TABLE sessions (
        token     TEXT PRIMARY KEY,
        id        TEXT NOT NULL,
        name      TEXT,
        last_used INTEGER NOT NULL,
        replaced  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE nonces (
        sender TEXT NOT NULL,
        room   TEXT NOT NULL,
        nonce  TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        PRIMARY KEY (sender, room, nonce)
    ) WITHOUT ROWID;";

/// The durable store.
#[derive(Debug)]
pub struct SqliteStore {
    db: Connection,
}

/// A number the store keeps as SQLite's `INTEGER` (an `i64`).
fn int(n: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::OutOfRange(what))
}

/// A number read back from SQLite's `INTEGER`, checked.
fn stored_u64(n: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        what,
        why: format!("{n} is negative"),
    })
}

/// A room name as stored, checked.
fn stored_room(room: &str) -> Result<RoomName, StoreError> {
    RoomName::parse(room).map_err(|e| StoreError::Corrupt {
        what: "a room name",
        why: format!("`{room}`: {e}"),
    })
}

impl SqliteStore {
    /// Opens (creating or migrating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut db = Connection::open(dir.join("charla.sqlite3"))?;
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        migrate(&mut db)?;
        Ok(SqliteStore { db })
    }
}

/// A second, read-only connection to the store's file, for the rooms that are not in memory:
/// the server reads a room's lines back when someone joins it again (see `hub::archive`).
/// WAL mode lets it read while the committer writes.
#[derive(Debug)]
pub struct Archive {
    db: std::sync::Mutex<Connection>,
}

impl Archive {
    /// Opens the file of the store in `dir` (which [`SqliteStore::open`] made) for reading.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Connection::open_with_flags(
            dir.join("charla.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Archive {
            db: std::sync::Mutex::new(db),
        })
    }

    /// The newest `limit` lines of `room` with a `seq` above `after`, oldest first. Blocks
    /// on the disk: call it off the async threads.
    pub fn lines_after(
        &self,
        room: &RoomName,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<ChatLine>, StoreError> {
        let db = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = db.prepare_cached(
            "SELECT seq, sender, name, text, at, nonce, user, edited, removed, change FROM lines
                 WHERE room = ?1 AND seq > ?2 ORDER BY seq DESC LIMIT ?3",
        )?;
        let after = int(after.0, "a seq")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut lines = stmt
            .query_map(params![room.as_str(), after, limit], |row| {
                line_of_row(row, 0, room.clone())
            })?
            .collect::<Result<Vec<_>, _>>()?;
        lines.reverse();
        Ok(lines)
    }
}

/// A line from a row of `seq, sender, name, text, at, nonce, user, edited, removed, change`
/// starting at column `first`.
fn line_of_row(
    row: &rusqlite::Row<'_>,
    first: usize,
    room: RoomName,
) -> rusqlite::Result<ChatLine> {
    let change = row
        .get::<_, Option<String>>(first + 9)?
        .map(|json| serde_json::from_str::<Change>(&json))
        .transpose()
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(first + 9, Type::Text, Box::new(e))
        })?;
    Ok(ChatLine {
        room,
        seq: Seq(row.get::<_, i64>(first)?.unsigned_abs()),
        from: ConnId::new(row.get::<_, String>(first + 1)?),
        name: stored_name(row.get(first + 2)?),
        user: row.get::<_, Option<String>>(first + 6)?.map(UserId::new),
        text: row.get(first + 3)?,
        at: row.get::<_, i64>(first + 4)?.unsigned_abs(),
        nonce: row.get(first + 5)?,
        edited: row.get::<_, i64>(first + 7)? != 0,
        removed: row.get::<_, i64>(first + 8)? != 0,
        change,
    })
}

/// Brings the file to [`SCHEMA_VERSION`], in one transaction.
fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let tx = db.transaction()?;
    let has_v1_lines = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lines'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if version < 2 && has_v1_lines {
        // Version 0 → 2: one room becomes `general`; sessions gain a name.
        tx.execute_batch(
            "ALTER TABLE lines RENAME TO lines_v1;
             ALTER TABLE sessions RENAME TO sessions_v1;",
        )?;
        tx.execute_batch(SCHEMA_V2)?;
        tx.execute_batch(
            "INSERT INTO lines (room, seq, sender, name, text, at, nonce)
                 SELECT 'general', seq, sender, NULL, text, at, nonce FROM lines_v1;
             INSERT INTO nonces (sender, room, nonce, seq)
                 SELECT sender, 'general', nonce, seq FROM lines_v1 WHERE nonce IS NOT NULL;
             INSERT INTO sessions (token, id, name, last_used, replaced)
                 SELECT token, id, NULL, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 0
                 FROM sessions_v1;
             DROP TABLE lines_v1;
             DROP TABLE sessions_v1;",
        )?;
    } else if version < 2 {
        tx.execute_batch(SCHEMA_V2)?;
    }
    if version < 3 {
        // Version 2 → 3: the product list.
        tx.execute_batch(SCHEMA_V3)?;
    }
    if version < 4 {
        // Version 3 → 4: users.
        tx.execute_batch(SCHEMA_V4)?;
    }
    if version < 5 {
        // Version 4 → 5: edits and deletions.
        tx.execute_batch(SCHEMA_V5)?;
    }
    if version < 6 {
        // Version 5 → 6: moderation.
        tx.execute_batch(SCHEMA_V6)?;
    }
    // Version 6 → 7: read positions.
    tx.execute_batch(SCHEMA_V7)?;
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    tx.commit().map_err(StoreError::from)
}

/// A name read back from the file: kept only if it is still a valid one.
fn stored_name(name: Option<String>) -> Option<DisplayName> {
    name.and_then(|n| DisplayName::parse(&n).ok())
}

impl HistoryStore for SqliteStore {
    fn expire_rooms(&mut self, quiet_since: u64) -> Result<Vec<RoomName>, StoreError> {
        let since = i64::try_from(quiet_since).unwrap_or(i64::MAX);
        let tx = self.db.transaction()?;
        let rooms: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT room FROM lines GROUP BY room HAVING MAX(at) < ?1")?;
            stmt.query_map(params![since], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        for room in &rooms {
            tx.execute("DELETE FROM lines WHERE room = ?1", params![room])?;
            tx.execute("DELETE FROM nonces WHERE room = ?1", params![room])?;
        }
        tx.commit()?;
        Ok(rooms
            .iter()
            .filter_map(|r| RoomName::parse(r).ok())
            .collect())
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            lines: load_lines(&self.db)?,
            sessions: load_sessions(&self.db)?,
            nonces: load_nonces(&self.db)?,
            revocations: load_revocations(&self.db)?,
            rules: load_rules(&self.db)?,
            reads: load_reads(&self.db)?,
        })
    }

    fn audit(
        &mut self,
        room: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.db.prepare_cached(
            "SELECT at, by, action, room, target, until, seq FROM audit
                 WHERE ?1 IS NULL OR room = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![room.map(RoomName::as_str), limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (at, by, action, room, target, until, seq) = row?;
            Ok(AuditEntry {
                at: stored_u64(at, "an audit time")?,
                by,
                action,
                room: stored_room(&room)?,
                target,
                until: until.map(|u| stored_u64(u, "an audit end")).transpose()?,
                seq: Seq(stored_u64(seq, "an audit seq")?),
            })
        })
        .collect()
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        insert_lines(&tx, &batch.lines)?;
        upsert_sessions(&tx, &batch.sessions)?;
        forget(&tx, batch)?;
        revoke(&tx, &batch.revocations)?;
        write_rules(&tx, &batch.rules)?;
        write_audit(&tx, &batch.audit)?;
        write_reads(&tx, &batch.reads)?;
        tx.commit().map_err(StoreError::from)
    }
}

/// Every kept line, by room and `seq`.
fn load_lines(db: &Connection) -> Result<Vec<ChatLine>, StoreError> {
    let mut lines_stmt = db.prepare(
        "SELECT room, seq, sender, name, text, at, nonce, user, edited, removed, change
             FROM lines ORDER BY room, seq",
    )?;
    let lines = lines_stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                line_of_row(row, 1, RoomName::general())?,
            ))
        })?
        .map(|row| {
            let (room, mut line) = row?;
            line.room = stored_room(&room)?;
            Ok(line)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(lines)
}

/// Applies an edit or a deletion (already inserted as `entry`) to its target row, as the
/// rooms do to their kept lines.
fn apply_change(tx: &Transaction<'_>, entry: &ChatLine, change: &Change) -> Result<(), StoreError> {
    let room = entry.room.as_str();
    let target = int(change.target().0, "a seq")?;
    match change.kind {
        ChangeKind::Edit => {
            let edited = tx.execute(
                "UPDATE lines SET text = ?3, edited = 1
                     WHERE room = ?1 AND seq = ?2 AND removed = 0 AND change IS NULL",
                params![room, target, entry.text],
            )?;
            if edited == 0 {
                // Its target was removed (or is not a line): the edit keeps no text either.
                tx.execute(
                    "UPDATE lines SET text = '' WHERE room = ?1 AND seq = ?2",
                    params![room, int(entry.seq.0, "a seq")?],
                )?;
            }
        }
        ChangeKind::Delete => {
            tx.execute(
                "UPDATE lines SET text = '', removed = 1, edited = 0
                     WHERE room = ?1 AND seq = ?2 AND change IS NULL",
                params![room, target],
            )?;
            tx.execute(
                "UPDATE lines SET text = ''
                     WHERE room = ?1 AND target = ?2 AND change LIKE '{\"kind\":\"edit\"%'",
                params![room, target],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// Every session.
fn load_sessions(db: &Connection) -> Result<Vec<StoredSession>, StoreError> {
    let mut sessions_stmt =
        db.prepare("SELECT token, id, name, last_used, replaced, user FROM sessions")?;
    let sessions = sessions_stmt
        .query_map([], |row| {
            Ok(StoredSession {
                token: ResumeToken(row.get(0)?),
                id: ConnId::new(row.get::<_, String>(1)?),
                name: stored_name(row.get(2)?),
                last_used: row.get::<_, i64>(3)?.unsigned_abs(),
                replaced: row.get::<_, i64>(4)? != 0,
                user: row.get::<_, Option<String>>(5)?.map(UserId::new),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sessions)
}

/// Every remembered nonce, by sender and `seq`.
fn load_nonces(db: &Connection) -> Result<Vec<StoredNonce>, StoreError> {
    let mut nonces_stmt =
        db.prepare("SELECT sender, room, nonce, seq FROM nonces ORDER BY sender, seq")?;
    let nonces = nonces_stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .map(|row| {
            let (sender, room, nonce, seq) = row?;
            Ok(StoredNonce {
                sender: ConnId::new(sender),
                room: stored_room(&room)?,
                nonce,
                seq: Seq(seq.unsigned_abs()),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(nonces)
}

/// Every user's revocation.
fn load_revocations(db: &Connection) -> Result<Vec<Revocation>, StoreError> {
    let mut revocations_stmt = db.prepare("SELECT user, before FROM revocations")?;
    let revocations = revocations_stmt
        .query_map([], |row| {
            Ok(Revocation {
                user: UserId::new(row.get::<_, String>(0)?),
                before: row.get::<_, i64>(1)?.unsigned_abs(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(revocations)
}

/// Appends the batch's lines and remembers their nonces; applies each edit or deletion to
/// its target (a deletion wipes the target's text and its edits' texts from the file).
fn insert_lines(tx: &Transaction<'_>, lines: &[ChatLine]) -> Result<(), StoreError> {
    let mut insert_line = tx.prepare_cached(
        "INSERT INTO lines (room, seq, sender, name, text, at, nonce, user, change, target)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for line in lines {
        let change = line
            .change
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let target = line
            .change
            .as_ref()
            .map(|c| int(c.target().0, "a seq"))
            .transpose()?;
        insert_line.execute(params![
            line.room.as_str(),
            int(line.seq.0, "a seq")?,
            line.from.as_str(),
            line.name.as_ref().map(DisplayName::as_str),
            line.text,
            int(line.at, "a time")?,
            line.nonce,
            line.user.as_ref().map(UserId::as_str),
            change,
            target,
        ])?;
        if let Some(change) = &line.change {
            apply_change(tx, line, change)?;
        }
    }
    let mut insert_nonce = tx.prepare_cached(
        "INSERT OR REPLACE INTO nonces (sender, room, nonce, seq) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for line in lines {
        if let Some(nonce) = &line.nonce {
            insert_nonce.execute(params![
                line.from.as_str(),
                line.room.as_str(),
                nonce,
                int(line.seq.0, "a seq")?,
            ])?;
        }
    }
    Ok(())
}

/// Writes the batch's sessions (new ones, or changed).
fn upsert_sessions(tx: &Transaction<'_>, sessions: &[StoredSession]) -> Result<(), StoreError> {
    let mut upsert_session = tx.prepare_cached(
        "INSERT OR REPLACE INTO sessions (token, id, name, last_used, replaced, user)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for session in sessions {
        upsert_session.execute(params![
            session.token.0,
            session.id.as_str(),
            session.name.as_ref().map(DisplayName::as_str),
            int(session.last_used, "a time")?,
            i64::from(session.replaced),
            session.user.as_ref().map(UserId::as_str),
        ])?;
    }
    Ok(())
}

/// Forgets what the batch says to: nonces, sessions (and their sender's nonces, unless another session of theirs lives), and lines below a room's new start.
fn forget(tx: &Transaction<'_>, batch: &Batch) -> Result<(), StoreError> {
    let mut forget_nonce =
        tx.prepare_cached("DELETE FROM nonces WHERE sender = ?1 AND room = ?2 AND nonce = ?3")?;
    for nonce in &batch.forget_nonces {
        forget_nonce.execute(params![
            nonce.sender.as_str(),
            nonce.room.as_str(),
            nonce.nonce
        ])?;
    }
    let mut forget_session = tx.prepare_cached("DELETE FROM sessions WHERE token = ?1")?;
    let mut forget_sender = tx.prepare_cached(
        "DELETE FROM nonces WHERE sender = ?1
             AND NOT EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND token != ?2)",
    )?;
    for (token, id) in &batch.forget_sessions {
        forget_session.execute(params![token.0])?;
        forget_sender.execute(params![id.as_str(), token.0])?;
    }
    let mut forget = tx.prepare_cached("DELETE FROM lines WHERE room = ?1 AND seq < ?2")?;
    for (room, below) in &batch.forget_below {
        forget.execute(params![room.as_str(), int(below.0, "a seq")?])?;
    }
    Ok(())
}

/// Every room's rules.
fn load_rules(db: &Connection) -> Result<Vec<StoredRule>, StoreError> {
    let mut stmt = db.prepare("SELECT room, kind, user, until, secs, by, at FROM rules")?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<i64>>(3)?,
            row.get::<_, Option<i64>>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, i64>(6)?,
        ))
    })?;
    rows.map(|row| {
        let (room, kind, user, until, secs, by, at) = row?;
        let kind = serde_json::from_value(serde_json::Value::String(kind)).map_err(|e| {
            StoreError::Corrupt {
                what: "a rule's kind",
                why: e.to_string(),
            }
        })?;
        Ok(StoredRule {
            room: stored_room(&room)?,
            kind,
            user,
            until: until.map(|u| stored_u64(u, "a rule's end")).transpose()?,
            secs: secs
                .map(|s| {
                    u32::try_from(s).map_err(|_| StoreError::Corrupt {
                        what: "a slow mode",
                        why: format!("{s} seconds"),
                    })
                })
                .transpose()?,
            by,
            at: stored_u64(at, "a rule's time")?,
        })
    })
    .collect()
}

/// Every read position.
fn load_reads(db: &Connection) -> Result<Vec<StoredRead>, StoreError> {
    let mut stmt = db.prepare("SELECT user, room, seq FROM reads")?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (user, room, seq) = row?;
        Ok(StoredRead {
            user: UserId::new(user),
            room: stored_room(&room)?,
            seq: Seq(stored_u64(seq, "a read position")?),
        })
    })
    .collect()
}

/// Moves read positions forward (a lower `seq` than the one kept changes nothing).
fn write_reads(tx: &Transaction<'_>, reads: &[StoredRead]) -> Result<(), StoreError> {
    let mut put = tx.prepare_cached(
        "INSERT INTO reads (user, room, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (user, room) DO UPDATE SET seq = MAX(seq, excluded.seq)",
    )?;
    for read in reads {
        put.execute(params![
            read.user.as_str(),
            read.room.as_str(),
            int(read.seq.0, "a seq")?
        ])?;
    }
    Ok(())
}

/// Sets and lifts rooms' rules.
fn write_rules(tx: &Transaction<'_>, ops: &[RuleOp]) -> Result<(), StoreError> {
    let mut put = tx.prepare_cached(
        "INSERT OR REPLACE INTO rules (room, kind, user, until, secs, by, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut lift =
        tx.prepare_cached("DELETE FROM rules WHERE room = ?1 AND kind = ?2 AND user = ?3")?;
    for op in ops {
        match op {
            RuleOp::Put(r) => {
                put.execute(params![
                    r.room.as_str(),
                    r.kind.as_str(),
                    r.user,
                    r.until.map(|u| int(u, "a time")).transpose()?,
                    r.secs,
                    r.by,
                    int(r.at, "a time")?,
                ])?;
            }
            RuleOp::Lift(room, kind, user) => {
                lift.execute(params![room.as_str(), kind.as_str(), user])?;
            }
        }
    }
    Ok(())
}

/// Appends to the audit log, keeping its newest [`AUDIT_KEEP`] entries.
fn write_audit(tx: &Transaction<'_>, entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit (at, by, action, room, target, until, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in entries {
        insert.execute(params![
            int(e.at, "a time")?,
            e.by,
            e.action,
            e.room.as_str(),
            e.target,
            e.until.map(|u| int(u, "a time")).transpose()?,
            int(e.seq.0, "a seq")?,
        ])?;
    }
    let keep = i64::try_from(AUDIT_KEEP).unwrap_or(i64::MAX);
    tx.execute(
        "DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?1",
        params![keep],
    )?;
    Ok(())
}

/// Records revocations; a user's keeps its latest moment.
fn revoke(tx: &Transaction<'_>, revocations: &[Revocation]) -> Result<(), StoreError> {
    let mut revoke = tx.prepare_cached(
        "INSERT INTO revocations (user, before) VALUES (?1, ?2)
             ON CONFLICT (user) DO UPDATE SET before = MAX(before, excluded.before)",
    )?;
    for r in revocations {
        revoke.execute(params![r.user.as_str(), int(r.before, "a time")?])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(room: &str, seq: u64, nonce: Option<&str>) -> ChatLine {
        ChatLine {
            room: RoomName::parse(room).expect("room"),
            seq: Seq(seq),
            from: ConnId::new("AAAAAAAAAAAAAAAA"),
            name: DisplayName::parse("Ana").ok(),
            user: None,
            text: format!("line {seq}"),
            at: 1_763_769_600_000 + seq,
            nonce: nonce.map(str::to_owned),
            edited: false,
            removed: false,
            change: None,
        }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("charla-sqlite-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn committed_lines_and_sessions_come_back_after_reopening() {
        let dir = temp_dir("reopen");
        let session = StoredSession {
            token: ResumeToken("tok".into()),
            id: ConnId::new("AAAAAAAAAAAAAAAA"),
            name: DisplayName::parse("Ana").ok(),
            last_used: 1_763_769_600_000,
            replaced: false,
            user: Some(shared::UserId::new("ana")),
        };
        {
            let mut store = SqliteStore::open(&dir).expect("open");
            assert!(store.load().expect("load").lines.is_empty());
            let batch = Batch {
                lines: vec![
                    line("general", 1, None),
                    line("general", 2, Some("n-2")),
                    line("dev", 1, None),
                    line("general", 3, None),
                ],
                sessions: vec![session.clone()],
                ..Batch::default()
            };
            store.commit(&batch).expect("commit");
            let forget = Batch {
                lines: vec![line("general", 4, None)],
                forget_below: vec![(RoomName::general(), Seq(2))],
                ..Batch::default()
            };
            store.commit(&forget).expect("commit");
        }
        let mut store = SqliteStore::open(&dir).expect("reopen");
        let loaded = store.load().expect("load");
        assert_eq!(
            loaded.lines,
            vec![
                line("dev", 1, None),
                line("general", 2, Some("n-2")),
                line("general", 3, None),
                line("general", 4, None)
            ]
        );
        assert_eq!(loaded.sessions, vec![session.clone()]);
        // The nonce outlives its line: line 2 is still kept, but even when it goes, a resend
        // of n-2 must be recognised.
        let n2 = StoredNonce {
            sender: ConnId::new("AAAAAAAAAAAAAAAA"),
            room: RoomName::general(),
            nonce: "n-2".into(),
            seq: Seq(2),
        };
        assert_eq!(loaded.nonces, vec![n2.clone()]);
        store
            .commit(&Batch {
                forget_below: vec![(RoomName::general(), Seq(4))],
                ..Batch::default()
            })
            .expect("commit");
        assert_eq!(store.load().expect("load").nonces, vec![n2.clone()]);
        // An expired session takes its nonces with it.
        store
            .commit(&Batch {
                forget_sessions: vec![(session.token.clone(), session.id.clone())],
                ..Batch::default()
            })
            .expect("commit");
        let after = store.load().expect("load");
        assert!(after.sessions.is_empty() && after.nonces.is_empty());
        // A second line with an existing (room, seq) is refused, and nothing of its batch is
        // kept; the same seq in another room is fine.
        let clash = Batch {
            lines: vec![line("general", 5, None), line("general", 4, None)],
            ..Batch::default()
        };
        assert!(store.commit(&clash).is_err());
        assert_eq!(store.load().expect("load").lines.len(), 2);
        let other_room = Batch {
            lines: vec![line("dev", 2, None)],
            ..Batch::default()
        };
        store.commit(&other_room).expect("commit");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = temp_dir("newer");
        drop(SqliteStore::open(&dir).expect("open"));
        let db = Connection::open(dir.join("charla.sqlite3")).expect("open raw");
        db.execute_batch("PRAGMA user_version = 99;").expect("set");
        drop(db);
        let refused = SqliteStore::open(&dir).expect_err("refused");
        assert!(
            matches!(
                refused,
                StoreError::NewerSchema {
                    found: 99,
                    known: SCHEMA_VERSION
                }
            ),
            "{refused}"
        );
        assert!(refused.to_string().contains("newer release"), "{refused}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
