//! Per-machine configuration and records of the care commands, in the store's `meta` table.
//! The store belongs to one machine, so these never travel with the home:
//!
//! | key | value |
//! |---|---|
//! | `care.hook_push` | the remote a hook pushes to in the background (absent: commit only) |
//! | `care.last_backup` | JSON [`BackupRecord`] of the last `sage backup` |
//! | `care.pushed.<remote>` | JSON [`PushRecord`]: the HEAD last pushed there by backup or a hook |
//! | `care.push_started.<remote>` | ms when a hook last started a background push there |

use crate::db::Db;
use crate::error::Result;
use crate::id::ObjectId;

const HOOK_PUSH: &str = "care.hook_push";
const LAST_BACKUP: &str = "care.last_backup";

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupRecord {
    /// ms since the epoch
    pub time: i64,
    /// The snapshot the backup holds (hex).
    pub snapshot: String,
    /// The remote it was pushed to, if one was named.
    pub remote: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushRecord {
    pub time: i64,
    /// This store's HEAD when the push finished (hex).
    pub head: String,
}

fn delete(db: &Db, key: &str) -> Result<()> {
    db.conn
        .execute("DELETE FROM meta WHERE key=?1", [key])
        .map(|_| ())
        .map_err(|e| db.db_err(e))
}

pub fn hook_push(db: &Db) -> Result<Option<String>> {
    Ok(db.meta(HOOK_PUSH)?.filter(|s| !s.is_empty()))
}

pub fn set_hook_push(db: &Db, remote: Option<&str>) -> Result<()> {
    match remote {
        Some(r) => db.set_meta(HOOK_PUSH, r),
        None => delete(db, HOOK_PUSH),
    }
}

pub fn last_backup(db: &Db) -> Result<Option<BackupRecord>> {
    Ok(db
        .meta(LAST_BACKUP)?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

pub fn set_last_backup(db: &Db, r: &BackupRecord) -> Result<()> {
    db.set_meta(
        LAST_BACKUP,
        &serde_json::to_string(r).expect("a plain struct serializes"),
    )
}

fn pushed_key(remote: &str) -> String {
    format!("care.pushed.{remote}")
}

pub fn pushed(db: &Db, remote: &str) -> Result<Option<PushRecord>> {
    Ok(db
        .meta(&pushed_key(remote))?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

pub fn set_pushed(db: &Db, remote: &str, head: Option<ObjectId>) -> Result<()> {
    let Some(head) = head else {
        return Ok(());
    };
    let r = PushRecord {
        time: crate::clock::now_ms(),
        head: head.to_hex(),
    };
    db.set_meta(
        &pushed_key(remote),
        &serde_json::to_string(&r).expect("a plain struct serializes"),
    )
}

fn started_key(remote: &str) -> String {
    format!("care.push_started.{remote}")
}

/// When a hook last started a background push to `remote` (ms).
pub fn push_started(db: &Db, remote: &str) -> Result<Option<i64>> {
    Ok(db.meta(&started_key(remote))?.and_then(|s| s.parse().ok()))
}

pub fn set_push_started(db: &Db, remote: &str, time: i64) -> Result<()> {
    db.set_meta(&started_key(remote), &time.to_string())
}
