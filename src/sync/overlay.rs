//! The per-machine overlay: paths where this home deliberately differs from HEAD's tree (a
//! conflict value, configuration held back from an untrusted remote, a deferred live session),
//! with the entry the home holds (`None`: the home lacks the path). A scan that finds the home
//! still equal to its overlay entry records HEAD's entry instead, so these differences never
//! come back as edits at the next sync.

use crate::db::Db;
use crate::error::{Error, Result};
use crate::object::{encode, Entry};
use crate::tree::FlatTree;
use std::collections::BTreeMap;

#[derive(Clone, Debug, serde::Serialize)]
pub struct OverlayRow {
    pub path: String,
    pub entry: Option<Entry>,
    pub reason: String,
    pub since: i64,
}

pub fn load(db: &Db) -> Result<BTreeMap<String, OverlayRow>> {
    let mut st = db
        .conn
        .prepare("SELECT path, entry, reason, since FROM overlay")
        .map_err(|e| db.db_err(e))?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<Vec<u8>>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(|e| db.db_err(e))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (path, entry, reason, since) = row.map_err(|e| db.db_err(e))?;
        let entry = match entry {
            Some(b) => Some(rmp_serde::from_slice::<Entry>(&b).map_err(|e| {
                Error::Other(format!(
                    "overlay row {path}: {e}; run `sage verify --repair`"
                ))
            })?),
            None => None,
        };
        out.insert(
            path.clone(),
            OverlayRow {
                path,
                entry,
                reason,
                since,
            },
        );
    }
    Ok(out)
}

pub fn replace_all(
    t: &rusqlite::Transaction,
    rows: &BTreeMap<String, OverlayRow>,
) -> rusqlite::Result<()> {
    t.execute("DELETE FROM overlay", [])?;
    for r in rows.values() {
        t.execute(
            "INSERT INTO overlay(path, entry, reason, since) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![r.path, r.entry.as_ref().map(encode), r.reason, r.since],
        )?;
    }
    Ok(())
}

/// The home as it really is: HEAD's tree with the overlay applied.
pub fn home_view(head: &FlatTree, overlay: &BTreeMap<String, OverlayRow>) -> FlatTree {
    let mut out = head.clone();
    for (p, r) in overlay {
        match &r.entry {
            Some(e) => {
                out.insert(p.clone(), e.clone());
            }
            None => {
                out.remove(p);
            }
        }
    }
    out
}

/// Substitute HEAD's entries where a scanned home still matches its overlay; drop overlay rows
/// the home no longer matches (the user changed the file: that is a real edit). Returns the
/// rows that still hold.
pub fn fold_scan(
    scanned: &mut FlatTree,
    head: &FlatTree,
    overlay: &BTreeMap<String, OverlayRow>,
) -> BTreeMap<String, OverlayRow> {
    let mut keep = BTreeMap::new();
    for (p, r) in overlay {
        let now = scanned.get(p);
        let matches = match (&r.entry, now) {
            (Some(e), Some(n)) => e.same_content(n),
            (None, None) => true,
            _ => false,
        };
        if !matches {
            continue;
        }
        match head.get(p) {
            Some(h) => {
                scanned.insert(p.clone(), h.clone());
            }
            None => {
                scanned.remove(p);
            }
        }
        keep.insert(p.clone(), r.clone());
    }
    keep
}
