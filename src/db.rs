//! The SQLite database `sage.db`: metadata, the pack list, snapshot rows, refs, the operation
//! log and the stat cache. Everything in it except the op log and stat cache can be rebuilt
//! from the packs (`verify --repair`). Schema versions are `PRAGMA user_version`.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::snapshot::Snapshot;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};

pub const SCHEMA_VERSION: u32 = 6;

pub struct Db {
    pub conn: Connection,
    pub path: PathBuf,
}

/// A snapshot row: the snapshot plus counts computed when it was recorded.
#[derive(Clone, Debug)]
pub struct SnapshotRow {
    pub id: ObjectId,
    pub snap: Snapshot,
    /// The snapshot object's bytes as stored (its id is their hash).
    pub raw: Vec<u8>,
    pub seq: i64,
    pub stats: Stats,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub files: u64,
    pub sessions: u64,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Op {
    pub seq: i64,
    pub time: i64,
    pub kind: String,
    pub description: String,
    pub head_before: Option<ObjectId>,
    pub head_after: Option<ObjectId>,
    pub safety: Option<ObjectId>,
    pub home_changed: bool,
    pub undoes: Option<i64>,
    pub undone_by: Option<i64>,
}

/// One stat-cache row: what a file looked like when it was last hashed, and its entry.
#[derive(Clone, Debug)]
pub struct StatRow {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub entry: Vec<u8>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packs (name TEXT PRIMARY KEY, size INTEGER NOT NULL, objects INTEGER NOT NULL, added INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, raw BLOB NOT NULL,
    root BLOB NOT NULL, host TEXT NOT NULL, time INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
    files INTEGER NOT NULL, sessions INTEGER NOT NULL, messages INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS parents (child BLOB NOT NULL, parent BLOB NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (child, pos));
CREATE INDEX IF NOT EXISTS parents_by_parent ON parents(parent);
CREATE TABLE IF NOT EXISTS refs (name TEXT PRIMARY KEY, id BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS oplog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, kind TEXT NOT NULL, description TEXT NOT NULL,
    head_before BLOB, head_after BLOB, safety BLOB, home_changed INTEGER NOT NULL,
    undoes INTEGER, undone_by INTEGER);
CREATE TABLE IF NOT EXISTS remotes (name TEXT PRIMARY KEY, url TEXT NOT NULL, bare INTEGER NOT NULL,
    remote_sage TEXT, trust_config INTEGER NOT NULL, store_id TEXT, last_head BLOB);
CREATE TABLE IF NOT EXISTS overlay (path TEXT PRIMARY KEY, entry BLOB, reason TEXT NOT NULL, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS statcache (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, entry BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS intents (file BLOB PRIMARY KEY, kind INTEGER NOT NULL, old_size INTEGER NOT NULL,
    target BLOB NOT NULL, target_size INTEGER NOT NULL, temp BLOB, side BLOB, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS remote_maps (remote TEXT NOT NULL, local TEXT NOT NULL, remote_path TEXT NOT NULL,
    time INTEGER NOT NULL, PRIMARY KEY (remote, local));
CREATE TABLE IF NOT EXISTS pruned (id BLOB PRIMARY KEY, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS purged (id BLOB PRIMARY KEY, kind INTEGER NOT NULL, time INTEGER NOT NULL, reason TEXT NOT NULL);
"#;

fn id_of(b: Option<Vec<u8>>) -> Option<ObjectId> {
    b.and_then(|b| ObjectId::from_slice(&b))
}

impl Db {
    pub fn db_err(&self, e: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            source: e,
        }
    }

    pub fn open(path: &Path, create: bool) -> Result<Db> {
        if !create && !path.exists() {
            return Err(Error::Other(format!(
                "the store database {} is missing\n  fix: run `sage verify --repair` to rebuild it from the packs",
                path.display()
            )));
        }
        let wrap = |e| Error::Db {
            path: path.to_path_buf(),
            source: e,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(wrap)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(wrap)?;
        if version > SCHEMA_VERSION {
            return Err(Error::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            conn.execute_batch(SCHEMA).map_err(wrap)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(wrap)?;
        }
        Ok(Db {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key=?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.db_err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta(key,value) VALUES (?1,?2)",
                [key, value],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::Db { path, source: e })
    }

    pub fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        let v: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT id FROM refs WHERE name=?1", [name], |r| r.get(0))
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(id_of(v))
    }

    fn row_to_snapshot(r: &rusqlite::Row) -> rusqlite::Result<(Vec<u8>, Vec<u8>, i64, Stats)> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            Stats {
                files: r.get::<_, i64>(3)? as u64,
                sessions: r.get::<_, i64>(4)? as u64,
                messages: r.get::<_, i64>(5)? as u64,
                bytes: r.get::<_, i64>(6)? as u64,
            },
        ))
    }

    fn decode_row(
        &self,
        (id, raw, seq, stats): (Vec<u8>, Vec<u8>, i64, Stats),
    ) -> Result<SnapshotRow> {
        let id = ObjectId::from_slice(&id).ok_or_else(|| {
            Error::Other(format!(
                "{}: a snapshot id is malformed; run `sage verify --repair`",
                self.path.display()
            ))
        })?;
        Ok(SnapshotRow {
            id,
            snap: Snapshot::decode(id, &raw)?,
            raw,
            seq,
            stats,
        })
    }

    const SNAP_COLS: &'static str = "id, raw, seq, files, sessions, messages, bytes";

    pub fn snapshot(&self, id: &ObjectId) -> Result<Option<SnapshotRow>> {
        let q = format!("SELECT {} FROM snapshots WHERE id=?1", Self::SNAP_COLS);
        let row = self
            .conn
            .query_row(&q, [&id.0[..]], Self::row_to_snapshot)
            .optional()
            .map_err(|e| self.db_err(e))?;
        row.map(|r| self.decode_row(r)).transpose()
    }

    pub fn all_snapshots(&self) -> Result<Vec<SnapshotRow>> {
        let q = format!(
            "SELECT {} FROM snapshots ORDER BY seq DESC",
            Self::SNAP_COLS
        );
        let mut st = self.conn.prepare(&q).map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], Self::row_to_snapshot)
            .map_err(|e| self.db_err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db_err(e))?;
        rows.into_iter().map(|r| self.decode_row(r)).collect()
    }

    /// Ids whose hex form starts with `prefix`.
    pub fn snapshots_with_prefix(&self, prefix: &str) -> Result<Vec<ObjectId>> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM snapshots")
            .map_err(|e| self.db_err(e))?;
        let ids = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.db_err(e))?
            .filter_map(|r| r.ok())
            .filter_map(|b| ObjectId::from_slice(&b))
            .filter(|id| id.to_hex().starts_with(prefix))
            .collect();
        Ok(ids)
    }

    /// Snapshots whose rows are kept but whose trees were pruned (`trees: pruned`, schema 5).
    pub fn pruned(&self) -> Result<std::collections::HashSet<ObjectId>> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM pruned")
            .map_err(|e| self.db_err(e))?;
        let ids = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.db_err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db_err(e))?;
        Ok(ids
            .into_iter()
            .filter_map(|b| ObjectId::from_slice(&b))
            .collect())
    }

    pub fn is_pruned(&self, id: &ObjectId) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM pruned WHERE id=?1", [&id.0[..]], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.db_err(e))
    }

    /// Pack names listed in the `packs` table.
    pub fn pack_names(&self) -> Result<std::collections::HashSet<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM packs")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.db_err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    pub fn children_count(&self, id: &ObjectId) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM parents WHERE parent=?1",
                [&id.0[..]],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.db_err(e))
    }

    pub fn ops(&self) -> Result<Vec<Op>> {
        let mut st = self
            .conn
            .prepare("SELECT seq,time,kind,description,head_before,head_after,safety,home_changed,undoes,undone_by FROM oplog ORDER BY seq DESC")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Op {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    kind: r.get(2)?,
                    description: r.get(3)?,
                    head_before: id_of(r.get(4)?),
                    head_after: id_of(r.get(5)?),
                    safety: id_of(r.get(6)?),
                    home_changed: r.get::<_, i64>(7)? != 0,
                    undoes: r.get(8)?,
                    undone_by: r.get(9)?,
                })
            })
            .map_err(|e| self.db_err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    pub fn stat_rows(&self) -> Result<std::collections::HashMap<String, StatRow>> {
        let mut st = self
            .conn
            .prepare("SELECT path,size,mtime_ns,ctime_ns,ino,entry FROM statcache")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    StatRow {
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        ctime_ns: r.get(3)?,
                        ino: r.get::<_, i64>(4)? as u64,
                        entry: r.get(5)?,
                    },
                ))
            })
            .map_err(|e| self.db_err(e))?
            .collect::<rusqlite::Result<std::collections::HashMap<_, _>>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }
}

/// Writes inside one transaction.
pub mod tx {
    use super::*;

    pub fn insert_pack(
        tx: &Transaction,
        name: &str,
        size: u64,
        objects: u64,
        now: i64,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT OR IGNORE INTO packs(name,size,objects,added) VALUES (?1,?2,?3,?4)",
            params![name, size as i64, objects as i64, now],
        )?;
        Ok(())
    }

    pub fn insert_snapshot(
        tx: &Transaction,
        id: &ObjectId,
        raw: &[u8],
        snap: &Snapshot,
        stats: &Stats,
    ) -> rusqlite::Result<bool> {
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM snapshots WHERE id=?1", [&id.0[..]], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Ok(false);
        }
        let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq),0)+1 FROM snapshots", [], |r| {
            r.get(0)
        })?;
        tx.execute(
            "INSERT INTO snapshots(id,seq,raw,root,host,time,kind,message,files,sessions,messages,bytes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            params![
                &id.0[..],
                seq,
                raw,
                &snap.root.0[..],
                snap.host,
                snap.time,
                snap.kind,
                snap.message,
                stats.files as i64,
                stats.sessions as i64,
                stats.messages as i64,
                stats.bytes as i64
            ],
        )?;
        for (pos, p) in snap.parents.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO parents(child,parent,pos) VALUES (?1,?2,?3)",
                params![&id.0[..], &p.0[..], pos as i64],
            )?;
        }
        Ok(true)
    }

    /// Mark a snapshot's trees as pruned (its row stays).
    pub fn mark_pruned(tx: &Transaction, id: &ObjectId, now: i64) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT OR IGNORE INTO pruned(id,time) VALUES (?1,?2)",
            params![&id.0[..], now],
        )?;
        Ok(())
    }

    pub fn set_ref(tx: &Transaction, name: &str, id: Option<&ObjectId>) -> rusqlite::Result<()> {
        match id {
            Some(id) => tx.execute(
                "INSERT OR REPLACE INTO refs(name,id) VALUES (?1,?2)",
                params![name, &id.0[..]],
            )?,
            None => tx.execute("DELETE FROM refs WHERE name=?1", [name])?,
        };
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record_op(
        tx: &Transaction,
        time: i64,
        kind: &str,
        description: &str,
        before: Option<&ObjectId>,
        after: Option<&ObjectId>,
        safety: Option<&ObjectId>,
        home_changed: bool,
        undoes: Option<i64>,
    ) -> rusqlite::Result<i64> {
        tx.execute(
            "INSERT INTO oplog(time,kind,description,head_before,head_after,safety,home_changed,undoes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            params![
                time,
                kind,
                description,
                before.map(|i| i.0.to_vec()),
                after.map(|i| i.0.to_vec()),
                safety.map(|i| i.0.to_vec()),
                home_changed as i64,
                undoes
            ],
        )?;
        let seq = tx.last_insert_rowid();
        if let Some(u) = undoes {
            tx.execute(
                "UPDATE oplog SET undone_by=?1 WHERE seq=?2",
                params![seq, u],
            )?;
        }
        Ok(seq)
    }

    pub fn put_stat(tx: &Transaction, path: &str, row: &StatRow) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT OR REPLACE INTO statcache(path,size,mtime_ns,ctime_ns,ino,entry) VALUES (?1,?2,?3,?4,?5,?6)",
            params![path, row.size as i64, row.mtime_ns, row.ctime_ns, row.ino as i64, row.entry],
        )?;
        Ok(())
    }

    pub fn delete_stat(tx: &Transaction, path: &str) -> rusqlite::Result<()> {
        tx.execute("DELETE FROM statcache WHERE path=?1", [path])?;
        Ok(())
    }
}
