//! History in an embedded SQLite file (`<data-dir>/charla.sqlite3`), in WAL mode with
//! `synchronous = FULL`: a committed batch survives a crash, kill -9 and power loss.

use std::path::Path;

use rusqlite::{Connection, params};
use shared::{ChatLine, ConnId, Seq};

use super::{Batch, HistoryStore, Loaded, StoreError};

/// The durable store.
#[derive(Debug)]
pub struct SqliteStore {
    db: Connection,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let db = Connection::open(dir.join("charla.sqlite3")).map_err(err)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS lines (
                 seq   INTEGER PRIMARY KEY,
                 sender TEXT NOT NULL,
                 text  TEXT NOT NULL,
                 at    INTEGER NOT NULL,
                 nonce TEXT
             );
             CREATE TABLE IF NOT EXISTS sessions (
                 token TEXT PRIMARY KEY,
                 id    TEXT NOT NULL
             );",
        )
        .map_err(err)?;
        Ok(SqliteStore { db })
    }
}

impl HistoryStore for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut lines_stmt = self
            .db
            .prepare("SELECT seq, sender, text, at, nonce FROM lines ORDER BY seq")
            .map_err(err)?;
        let lines = lines_stmt
            .query_map([], |row| {
                Ok(ChatLine {
                    seq: Seq(row.get::<_, i64>(0)?.unsigned_abs()),
                    from: ConnId::new(row.get::<_, String>(1)?),
                    text: row.get(2)?,
                    at: row.get::<_, i64>(3)?.unsigned_abs(),
                    nonce: row.get(4)?,
                })
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let mut sessions_stmt = self
            .db
            .prepare("SELECT token, id FROM sessions")
            .map_err(err)?;
        let sessions = sessions_stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    ConnId::new(row.get::<_, String>(1)?),
                ))
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(Loaded { lines, sessions })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.db.transaction().map_err(err)?;
        {
            let mut insert_line = tx
                .prepare_cached(
                    "INSERT INTO lines (seq, sender, text, at, nonce) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for line in &batch.lines {
                insert_line
                    .execute(params![
                        i64::try_from(line.seq.0).map_err(err)?,
                        line.from.as_str(),
                        line.text,
                        i64::try_from(line.at).map_err(err)?,
                        line.nonce,
                    ])
                    .map_err(err)?;
            }
            let mut insert_session = tx
                .prepare_cached("INSERT OR REPLACE INTO sessions (token, id) VALUES (?1, ?2)")
                .map_err(err)?;
            for (token, id) in &batch.sessions {
                insert_session
                    .execute(params![token, id.as_str()])
                    .map_err(err)?;
            }
            if let Some(below) = batch.forget_below {
                tx.execute(
                    "DELETE FROM lines WHERE seq < ?1",
                    params![i64::try_from(below.0).map_err(err)?],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, nonce: Option<&str>) -> ChatLine {
        ChatLine {
            seq: Seq(seq),
            from: ConnId::new("AAAAAAAAAAAAAAAA"),
            text: format!("line {seq}"),
            at: 1_763_769_600_000 + seq,
            nonce: nonce.map(str::to_owned),
        }
    }

    #[test]
    fn committed_lines_and_sessions_come_back_after_reopening() {
        let dir = std::env::temp_dir().join(format!("charla-sqlite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut store = SqliteStore::open(&dir).expect("open");
            assert!(store.load().expect("load").lines.is_empty());
            let batch = Batch {
                lines: vec![line(1, None), line(2, Some("n-2")), line(3, None)],
                sessions: vec![("tok".into(), ConnId::new("AAAAAAAAAAAAAAAA"))],
                forget_below: None,
            };
            store.commit(&batch).expect("commit");
            let forget = Batch {
                lines: vec![line(4, None)],
                sessions: vec![],
                forget_below: Some(Seq(2)),
            };
            store.commit(&forget).expect("commit");
        }
        let mut store = SqliteStore::open(&dir).expect("reopen");
        let loaded = store.load().expect("load");
        assert_eq!(
            loaded.lines,
            vec![line(2, Some("n-2")), line(3, None), line(4, None)]
        );
        assert_eq!(
            loaded.sessions,
            vec![("tok".to_owned(), ConnId::new("AAAAAAAAAAAAAAAA"))]
        );
        // A second line with an existing seq is refused, and nothing of its batch is kept.
        let clash = Batch {
            lines: vec![line(5, None), line(4, None)],
            sessions: vec![],
            forget_below: None,
        };
        assert!(store.commit(&clash).is_err());
        assert_eq!(store.load().expect("load").lines.len(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
