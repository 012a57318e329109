//! Purge: when a secret was pasted into a conversation (store-format.md §14.5).
//!
//! A purge *tombstones* data ids (lines of sessions, whole files): their ids go into the
//! `purged` table, trees and snapshot ids stay as they are, and from then on:
//! - no pack receives their bytes again (`Inserter` refuses them; gc leaves them out);
//! - every reader skips them: a snapshot's tree is read through [`effective`], which replaces
//!   each session holding a purged line by the session without it (built once, in memory,
//!   written with the next pack) and drops purged files;
//! - merge and apply work on those effective trees, so no merge result names a purged id, and
//!   an apply replaces a home's session that still holds one;
//! - every sync exchanges the table (`purge-tombstones` capability).
//!
//! The home itself is the one raw view: a scan records what is on disk (a purged line in a
//! home is named by the snapshot, its bytes are not stored), so that the next checkout or merge
//! sees the difference and rewrites the file.

pub mod run;
pub mod search;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{encode, DataRef, Entry, EntryKind, RawObject, Session};
use crate::prolly::{build_lines, read_lines, ObjectSink};
use crate::store::ObjectStore;
use crate::tree::FlatTree;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One tombstoned data id: a Line (or a session's tail), a Blob file, or a Chunked object and
/// its chunks. `reason` never holds the matched text (that is the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub id: ObjectId,
    #[serde(with = "kind_u8")]
    pub kind: Kind,
    pub time: i64,
    pub reason: String,
}

mod kind_u8 {
    use crate::id::Kind;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*k as u8)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let b = u8::deserialize(d)?;
        Kind::from_u8(b).ok_or_else(|| serde::de::Error::custom(format!("unknown kind {b}")))
    }
}

/// All tombstones, oldest first.
pub fn list(db: &Db) -> Result<Vec<Tombstone>> {
    let mut st = db
        .conn
        .prepare("SELECT id, kind, time, reason FROM purged ORDER BY time, id")
        .map_err(|e| db.db_err(e))?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(|e| db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.db_err(e))?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, kind, time, reason) in rows {
        let (Some(id), Some(kind)) = (ObjectId::from_slice(&id), Kind::from_u8(kind)) else {
            return Err(Error::Other(format!(
                "the store database {} has a malformed purged row\n  fix: run `sage verify`",
                db.path.display()
            )));
        };
        out.push(Tombstone {
            id,
            kind,
            time,
            reason,
        });
    }
    Ok(out)
}

/// Every tombstone: the table's, and the log's rows the table lacks (a kill between the log's
/// append and the transaction). What a sync sends.
pub fn list_all(db: &Db, store_dir: &std::path::Path) -> Result<Vec<Tombstone>> {
    let mut out = list(db)?;
    let known: HashSet<ObjectId> = out.iter().map(|t| t.id).collect();
    out.extend(
        read_log(store_dir)?
            .into_iter()
            .filter(|t| !known.contains(&t.id)),
    );
    Ok(out)
}

/// The tombstoned ids, as readers use them: the table's, and the log's (a kill between the
/// log's append and the transaction leaves rows only there).
pub fn load_all(db: &Db, store_dir: &std::path::Path) -> Result<HashSet<ObjectId>> {
    let mut ids = load(db)?;
    ids.extend(read_log(store_dir)?.into_iter().map(|t| t.id));
    Ok(ids)
}

/// The tombstoned ids of the table.
pub fn load(db: &Db) -> Result<HashSet<ObjectId>> {
    let mut st = db
        .conn
        .prepare("SELECT id FROM purged")
        .map_err(|e| db.db_err(e))?;
    let ids = st
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(|e| db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.db_err(e))?;
    Ok(ids
        .into_iter()
        .filter_map(|b| ObjectId::from_slice(&b))
        .collect())
}

/// Insert tombstones not yet present; returns how many were new. Only data kinds are accepted
/// (a peer cannot tombstone a tree or a snapshot).
pub fn insert(tx: &Transaction, stones: &[Tombstone]) -> rusqlite::Result<u64> {
    let mut n = 0;
    for t in stones {
        if !t.kind.is_data() {
            continue;
        }
        n += tx.execute(
            "INSERT OR IGNORE INTO purged(id, kind, time, reason) VALUES (?1,?2,?3,?4)",
            params![&t.id.0[..], t.kind as u8, t.time, t.reason],
        )? as u64;
    }
    Ok(n)
}

/// The tombstone log beside the database (`<store>/purged.log`): the same rows, appended and
/// fsynced before the transaction that inserts them, so that `verify --repair` can rebuild the
/// table if the database is lost (the packs no longer hold what the trees name).
pub const LOG: &str = "purged.log";

/// Append tombstones to the log (one line each: hex id, kind, time, reason as JSON).
pub fn append_log(store_dir: &std::path::Path, stones: &[Tombstone]) -> Result<()> {
    use std::io::Write;
    if stones.is_empty() {
        return Ok(());
    }
    let path = store_dir.join(LOG);
    let mut text = String::new();
    for t in stones {
        text.push_str(&format!(
            "{} {} {} {}\n",
            t.id.to_hex(),
            t.kind as u8,
            t.time,
            serde_json::to_string(&t.reason).unwrap_or_else(|_| "\"\"".into())
        ));
    }
    let existed = path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    if !existed {
        crate::fsutil::fsync_dir(store_dir)?;
    }
    Ok(())
}

/// The tombstones of the log (a torn last line, from a kill mid-append, is ignored).
pub fn read_log(store_dir: &std::path::Path) -> Result<Vec<Tombstone>> {
    let path = store_dir.join(LOG);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&text).lines() {
        let mut it = line.splitn(4, ' ');
        let (Some(id), Some(kind), Some(time), Some(reason)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let (Some(id), Some(kind), Ok(time), Ok(reason)) = (
            ObjectId::from_hex(id),
            kind.parse().ok().and_then(Kind::from_u8),
            time.parse::<i64>(),
            serde_json::from_str::<String>(reason),
        ) else {
            continue;
        };
        if kind.is_data() {
            out.push(Tombstone {
                id,
                kind,
                time,
                reason,
            });
        }
    }
    Ok(out)
}

/// Record tombstones durably: the log first, then one transaction. Returns how many were new.
pub fn record(db: &mut Db, store_dir: &std::path::Path, stones: &[Tombstone]) -> Result<u64> {
    let known = load(db)?;
    let new: Vec<Tombstone> = stones
        .iter()
        .filter(|t| {
            !known.contains(&t.id) && matches!(t.kind, Kind::Line | Kind::Blob | Kind::Chunked)
        })
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(0);
    }
    append_log(store_dir, &new)?;
    let path = db.path.clone();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    let t = db.transaction()?;
    let n = insert(&t, &new).map_err(wrap)?;
    t.commit().map_err(wrap)?;
    Ok(n)
}

/// When this store last learned that `remote` holds every tombstone it has (ms), if ever.
pub fn synced_at(db: &Db, remote: &str) -> Result<Option<i64>> {
    Ok(db
        .meta(&format!("purge.synced.{remote}"))?
        .and_then(|v| v.parse().ok()))
}

pub fn set_synced(db: &Db, remote: &str, time: i64) -> Result<()> {
    db.set_meta(&format!("purge.synced.{remote}"), &time.to_string())
}

/// The newest tombstone's time (ms), if any.
pub fn newest(db: &Db) -> Result<Option<i64>> {
    db.conn
        .query_row("SELECT MAX(time) FROM purged", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()
        .map(|v| v.flatten())
        .map_err(|e| db.db_err(e))
}

/// "1 purged line or file", "3 purged lines or files" (for messages).
pub fn describe_count(n: u64) -> String {
    if n == 1 {
        "1 purged line or file".into()
    } else {
        format!("{n} purged lines or files")
    }
}

/// Writes built nodes into the store's memory (persisted with the next pack).
struct MemSink<'a>(&'a ObjectStore);
impl ObjectSink for MemSink<'_> {
    fn put(&mut self, obj: RawObject) -> Result<()> {
        self.0.put_mem(obj);
        Ok(())
    }
}

/// `e` as readers see it once purged ids are dropped; `None` when nothing of it remains.
pub fn effective_entry(objects: &ObjectStore, e: &Entry) -> Result<Option<Entry>> {
    if objects.purged.is_empty() {
        return Ok(Some(e.clone()));
    }
    let Some(id) = e.id else {
        return Ok(Some(e.clone()));
    };
    match e.kind {
        EntryKind::File if objects.is_purged(&id) => Ok(None),
        EntryKind::Session => {
            let memo = objects
                .filtered
                .lock()
                .expect("filter lock")
                .get(&id)
                .copied();
            let f = match memo {
                Some(f) => f,
                None => {
                    let f = filter_session(objects, id)?;
                    objects.filtered.lock().expect("filter lock").insert(id, f);
                    f
                }
            };
            Ok(f.map(|(nid, size)| Entry {
                id: Some(nid),
                size,
                ..e.clone()
            }))
        }
        EntryKind::Conflict => filter_conflict(objects, e, id),
        _ => Ok(Some(e.clone())),
    }
}

/// A conflict value whose sides (or base) hold purged data: the same value with each side
/// read as above (a side with nothing left dropped); None when no side remains.
fn filter_conflict(objects: &ObjectStore, e: &Entry, id: ObjectId) -> Result<Option<Entry>> {
    let c: crate::object::Conflict = crate::object::decode(id, &objects.read(id, Kind::Conflict)?)?;
    let mut sides = Vec::with_capacity(c.sides.len());
    for (store, side) in &c.sides {
        if let Some(x) = effective_entry(objects, side)? {
            sides.push((store.clone(), x));
        }
    }
    let base = match &c.base {
        Some(b) => effective_entry(objects, b)?,
        None => None,
    };
    let filtered = crate::object::Conflict { base, sides };
    if filtered == c {
        return Ok(Some(e.clone()));
    }
    if filtered.sides.is_empty() {
        return Ok(None);
    }
    let obj = RawObject::new(Kind::Conflict, encode(&filtered));
    let nid = obj.id;
    objects.put_mem(obj);
    Ok(Some(Entry {
        id: Some(nid),
        ..e.clone()
    }))
}

/// The session without its purged lines: its (id, size), or None when nothing remains.
fn filter_session(objects: &ObjectStore, id: ObjectId) -> Result<Option<(ObjectId, u64)>> {
    let s: Session = crate::object::decode(id, &objects.read(id, Kind::Session)?)?;
    let lines = read_lines(objects, s.lines)?;
    let tail_purged = s.tail.is_some_and(|t| objects.is_purged(&t.id));
    if !tail_purged && !lines.iter().any(|l| objects.is_purged(&l.id)) {
        return Ok(Some((id, s.size)));
    }
    let kept: Vec<DataRef> = lines
        .into_iter()
        .filter(|l| !objects.is_purged(&l.id))
        .collect();
    let tail = s.tail.filter(|t| !objects.is_purged(&t.id));
    if kept.is_empty() && tail.is_none() {
        return Ok(None);
    }
    let root = build_lines(&kept, &mut MemSink(objects))?;
    let size = kept.iter().map(|l| l.len).sum::<u64>() + tail.map_or(0, |t| t.len);
    let sess = Session {
        count: kept.len() as u64,
        size,
        lines: root,
        tail,
    };
    let obj = RawObject::new(Kind::Session, encode(&sess));
    let nid = obj.id;
    objects.put_mem(obj);
    Ok(Some((nid, size)))
}

/// A tree as readers see it: sessions without their purged lines, purged files gone (and
/// directories left empty by that gone too). The identity when nothing is purged.
pub fn effective(objects: &ObjectStore, flat: FlatTree) -> Result<FlatTree> {
    if objects.purged.is_empty() {
        return Ok(flat);
    }
    let mut out = FlatTree::new();
    for (p, e) in flat {
        if let Some(e) = effective_entry(objects, &e)? {
            out.insert(p, e);
        }
    }
    Ok(out)
}

/// Whether a tree names a purged id anywhere a reader would see it (its effective view differs).
pub fn holds_purged(objects: &ObjectStore, flat: &FlatTree) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if objects.purged.is_empty() {
        return Ok(out);
    }
    for (p, e) in flat {
        match effective_entry(objects, e)? {
            Some(x) if x.id == e.id => {}
            _ => out.push(p.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Inserter;

    fn line(s: &str) -> (RawObject, DataRef) {
        let o = RawObject::new(Kind::Line, s.as_bytes().to_vec());
        let r = DataRef {
            id: o.id,
            len: s.len() as u64,
        };
        (o, r)
    }

    /// A store holding one session of `lines` (plus an unterminated tail); returns its entry.
    fn store_with_session(
        dir: &std::path::Path,
        lines: &[&str],
        tail: &str,
    ) -> (ObjectStore, Entry) {
        let mut objects = ObjectStore::open(dir).unwrap();
        let mut ins = Inserter::new(&objects);
        let mut refs = Vec::new();
        for l in lines {
            let (o, r) = line(l);
            ins.insert(o.kind, o.id, &o.bytes).unwrap();
            refs.push(r);
        }
        let (t, tr) = line(tail);
        ins.insert(t.kind, t.id, &t.bytes).unwrap();
        let root = build_lines(&refs, &mut ins).unwrap();
        let size = lines.iter().map(|l| l.len() as u64).sum::<u64>() + tail.len() as u64;
        let s = RawObject::new(
            Kind::Session,
            encode(&Session {
                count: refs.len() as u64,
                size,
                lines: root,
                tail: Some(tr),
            }),
        );
        ins.insert(s.kind, s.id, &s.bytes).unwrap();
        let (name, _) = ins.finish().unwrap().unwrap();
        objects.add_pack(&name).unwrap();
        let e = Entry {
            name: "s.jsonl".into(),
            kind: EntryKind::Session,
            size,
            exec: false,
            id: Some(s.id),
            target: vec![],
        };
        (objects, e)
    }

    fn bytes(o: &ObjectStore, e: &Entry) -> Vec<u8> {
        let mut v = Vec::new();
        o.write_entry(e, &mut v).unwrap();
        v
    }

    #[test]
    fn a_session_reads_without_its_purged_lines() {
        let d = tempfile::tempdir().unwrap();
        let (mut o, e) = store_with_session(d.path(), &["a\n", "SECRET\n", "c\n"], "tail");
        assert_eq!(bytes(&o, &e), b"a\nSECRET\nc\ntail");
        o.purged.insert(ObjectId::hash(Kind::Line, b"SECRET\n"));
        let f = effective_entry(&o, &e).unwrap().unwrap();
        assert_ne!(f.id, e.id);
        assert_eq!(f.size, 8);
        assert_eq!(bytes(&o, &f), b"a\nc\ntail");
        // the raw entry is written without it too (a conflict side no filter replaced)
        assert_eq!(bytes(&o, &e), b"a\nc\ntail");
        // the filtered session is the one a scan of the filtered file builds
        let d2 = tempfile::tempdir().unwrap();
        let (_, clean) = store_with_session(d2.path(), &["a\n", "c\n"], "tail");
        assert_eq!(f.id, clean.id);
        // nothing left: the entry goes
        for l in ["a\n", "c\n", "tail"] {
            o.purged.insert(ObjectId::hash(Kind::Line, l.as_bytes()));
        }
        o.filtered.lock().unwrap().clear();
        assert_eq!(effective_entry(&o, &e).unwrap(), None);
    }

    #[test]
    fn a_conflict_loses_a_purged_side() {
        let d = tempfile::tempdir().unwrap();
        let mut objects = ObjectStore::open(d.path()).unwrap();
        let mut ins = Inserter::new(&objects);
        let file = |s: &str, ins: &mut Inserter| {
            let o = RawObject::new(Kind::Blob, s.as_bytes().to_vec());
            ins.insert(o.kind, o.id, &o.bytes).unwrap();
            Entry {
                name: "settings.json".into(),
                kind: EntryKind::File,
                size: s.len() as u64,
                exec: false,
                id: Some(o.id),
                target: vec![],
            }
        };
        let (a, b) = (
            file("{\"k\":1}", &mut ins),
            file("{\"token\":\"S\"}", &mut ins),
        );
        let c = crate::object::Conflict {
            base: None,
            sides: vec![("aa".into(), a.clone()), ("bb".into(), b.clone())],
        };
        let co = RawObject::new(Kind::Conflict, encode(&c));
        ins.insert(co.kind, co.id, &co.bytes).unwrap();
        let (name, _) = ins.finish().unwrap().unwrap();
        objects.add_pack(&name).unwrap();
        let e = Entry {
            kind: EntryKind::Conflict,
            id: Some(co.id),
            ..a.clone()
        };
        objects.purged.insert(b.id.unwrap());
        let f = effective_entry(&objects, &e).unwrap().unwrap();
        let fc: crate::object::Conflict = crate::object::decode(
            f.id.unwrap(),
            &objects.read(f.id.unwrap(), Kind::Conflict).unwrap(),
        )
        .unwrap();
        assert_eq!(fc.sides, vec![("aa".to_string(), a.clone())]);
        objects.purged.insert(a.id.unwrap());
        assert_eq!(effective_entry(&objects, &e).unwrap(), None);
    }

    #[test]
    fn the_log_round_trips_and_ignores_a_torn_line() {
        let d = tempfile::tempdir().unwrap();
        let stones = vec![
            Tombstone {
                id: ObjectId::hash(Kind::Line, b"x"),
                kind: Kind::Line,
                time: 5,
                reason: "purge --match (1 texts) \"quoted\"".into(),
            },
            Tombstone {
                id: ObjectId::hash(Kind::Blob, b"y"),
                kind: Kind::Blob,
                time: 6,
                reason: String::new(),
            },
        ];
        append_log(d.path(), &stones).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join(LOG))
            .unwrap();
        std::io::Write::write_all(&mut f, b"0123abc 1 7").unwrap();
        assert_eq!(read_log(d.path()).unwrap(), stones);
    }

    #[test]
    fn a_peer_cannot_tombstone_structure() {
        let d = tempfile::tempdir().unwrap();
        let mut db = Db::open(&d.path().join("sage.db"), true).unwrap();
        let stones = vec![
            Tombstone {
                id: ObjectId::hash(Kind::DirNode, b"x"),
                kind: Kind::DirNode,
                time: 1,
                reason: String::new(),
            },
            Tombstone {
                id: ObjectId::hash(Kind::Line, b"x"),
                kind: Kind::Line,
                time: 1,
                reason: String::new(),
            },
        ];
        assert_eq!(record(&mut db, d.path(), &stones).unwrap(), 1);
        assert_eq!(record(&mut db, d.path(), &stones).unwrap(), 0);
        assert_eq!(list(&db).unwrap().len(), 1);
    }
}
