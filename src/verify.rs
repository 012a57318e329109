//! Integrity checks as a report of typed findings, each naming what it touches and the
//! command that fixes it; and `repair`, which rebuilds what can be rebuilt from the packs.

use crate::db::{tx, Db};
use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Chunked, DirNode, EntryKind, ListNode, Session};
use crate::pack::Pack;
use crate::repo::Repo;
use crate::snapshot::Snapshot;
use crate::store::ObjectStore;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// A pack that cannot be opened (truncated, bad magic, inconsistent index).
    BrokenPack {
        pack: String,
        why: String,
        fix: String,
    },
    /// A pack whose bytes do not match its checksum.
    PackChecksum { pack: String, fix: String },
    /// An object whose bytes do not hash to its id, or that does not decode.
    CorruptObject {
        id: String,
        pack: String,
        why: String,
        snapshots: usize,
        example_path: Option<String>,
        fix: String,
    },
    /// An object a snapshot needs that no pack holds.
    MissingObject {
        id: String,
        snapshots: usize,
        example_path: Option<String>,
        fix: String,
    },
    /// A pack on disk that the database does not list (an interrupted commit).
    OrphanPack {
        pack: String,
        snapshots: usize,
        fix: String,
    },
    /// A pack the database lists that is gone from disk.
    MissingPack { pack: String, fix: String },
    /// HEAD names a snapshot the store does not have.
    BadHead { id: String, fix: String },
}

impl Finding {
    /// Orphan packs are a normal left-over of an interrupted command, not damage.
    pub fn is_damage(&self) -> bool {
        !matches!(self, Finding::OrphanPack { .. })
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub packs: usize,
    pub objects: u64,
    pub snapshots: usize,
    pub objects_checked: u64,
    pub bytes_read: u64,
    pub findings: Vec<Finding>,
}

const FIX_REPAIR: &str = "sage verify --repair";
const FIX_MISSING: &str = "the bytes are gone from this store: `sage verify --repair` keeps every intact object; a sync from a machine that has the object brings it back";

/// Re-hash every object of every pack; returns (corrupt ids with their pack and reason, objects, bytes).
/// (id, pack, why) of a damaged object.
type Damaged = Vec<(ObjectId, String, String)>;

fn read_all(objects: &ObjectStore) -> (Damaged, Vec<String>, u64, u64) {
    let mut bad = Vec::new();
    let mut bad_checksum = Vec::new();
    let mut count = 0;
    let mut bytes = 0;
    for pack in objects.packs() {
        let (stored, actual) = pack.checksums();
        if stored != actual {
            bad_checksum.push(pack.name.clone());
        }
        let mut by_block: HashMap<u32, Vec<crate::pack::IndexEntry>> = HashMap::new();
        for i in 0..pack.object_count() {
            match pack.entry(i) {
                Ok(e) => by_block.entry(e.block).or_default().push(e),
                Err(e) => bad.push((ObjectId::default(), pack.name.clone(), e.to_string())),
            }
        }
        let results: Vec<(Damaged, u64, u64)> = by_block
            .into_par_iter()
            .map(|(block, entries)| {
                let mut local = Vec::new();
                match pack.read_block(block) {
                    Err(e) => {
                        for en in &entries {
                            local.push((en.id, pack.name.clone(), e.to_string()));
                        }
                        (local, 0, 0)
                    }
                    Ok(data) => {
                        let mut b = 0;
                        for en in &entries {
                            let s = &data[en.offset as usize..(en.offset + en.len) as usize];
                            b += s.len() as u64;
                            if ObjectId::hash(en.kind, s) != en.id {
                                local.push((
                                    en.id,
                                    pack.name.clone(),
                                    "bytes do not match the id".into(),
                                ));
                            }
                        }
                        (local, entries.len() as u64, b)
                    }
                }
            })
            .collect();
        for (l, c, b) in results {
            bad.extend(l);
            count += c;
            bytes += b;
        }
    }
    (bad, bad_checksum, count, bytes)
}

/// Walks trees, remembering which subtrees hold a problem.
struct Walker<'a> {
    objects: &'a ObjectStore,
    bad: &'a HashMap<ObjectId, (String, String)>,
    memo: HashMap<ObjectId, bool>,
    first_path: HashMap<ObjectId, String>,
    missing: HashSet<ObjectId>,
    corrupt: HashSet<ObjectId>,
    checked: u64,
    /// Subtrees an earlier walk found clean (`false`), skipped by this one.
    clean: Option<&'a HashMap<ObjectId, bool>>,
}

impl Walker<'_> {
    fn problem(&mut self, id: ObjectId, kind: Kind, path: &str) -> Option<Vec<u8>> {
        self.checked += 1;
        if self.bad.contains_key(&id) {
            self.corrupt.insert(id);
            self.first_path
                .entry(id)
                .or_insert_with(|| path.to_string());
            return None;
        }
        match self.objects.read(id, kind) {
            Ok(b) => Some(b),
            Err(Error::MissingObject { .. }) => {
                self.missing.insert(id);
                self.first_path
                    .entry(id)
                    .or_insert_with(|| path.to_string());
                None
            }
            Err(_) => {
                self.corrupt.insert(id);
                self.first_path
                    .entry(id)
                    .or_insert_with(|| path.to_string());
                None
            }
        }
    }

    /// Check a leaf object exists (without reading it, unless it is chunked).
    fn leaf(&mut self, id: ObjectId, len: u64, small: Kind, path: &str) -> bool {
        // Purged data is gone on purpose (§14.5): not missing.
        if self.objects.is_purged(&id) {
            return false;
        }
        if len >= crate::object::LARGE_OBJECT {
            let Some(b) = self.problem(id, Kind::Chunked, path) else {
                return true;
            };
            let Ok(c) = decode::<Chunked>(id, &b) else {
                self.corrupt.insert(id);
                return true;
            };
            let mut bad = false;
            for ch in &c.chunks {
                bad |= self.leaf(
                    ch.id,
                    ch.len.min(crate::object::LARGE_OBJECT - 1),
                    Kind::Blob,
                    path,
                );
            }
            return bad;
        }
        self.checked += 1;
        if self.bad.contains_key(&id) {
            self.corrupt.insert(id);
            self.first_path
                .entry(id)
                .or_insert_with(|| path.to_string());
            return true;
        }
        match self.objects.locate(&id) {
            Ok(Some((_, e))) if e.kind == small => false,
            Ok(None) => {
                self.missing.insert(id);
                self.first_path
                    .entry(id)
                    .or_insert_with(|| path.to_string());
                true
            }
            _ => {
                self.corrupt.insert(id);
                self.first_path
                    .entry(id)
                    .or_insert_with(|| path.to_string());
                true
            }
        }
    }

    fn list(&mut self, id: ObjectId, path: &str) -> bool {
        if let Some(&b) = self.memo.get(&id) {
            return b;
        }
        if self.clean.is_some_and(|m| m.get(&id) == Some(&false)) {
            return false;
        }
        let bad = match self.problem(id, Kind::ListNode, path) {
            None => true,
            Some(b) => match decode::<ListNode>(id, &b) {
                Err(_) => {
                    self.corrupt.insert(id);
                    true
                }
                Ok(n) => {
                    let mut bad = false;
                    for l in &n.lines {
                        bad |= self.leaf(l.id, l.len, Kind::Line, path);
                    }
                    for c in &n.children {
                        bad |= self.list(c.id, path);
                    }
                    bad
                }
            },
        };
        self.memo.insert(id, bad);
        bad
    }

    fn dir(&mut self, id: ObjectId, path: &str) -> bool {
        if let Some(&b) = self.memo.get(&id) {
            return b;
        }
        if self.clean.is_some_and(|m| m.get(&id) == Some(&false)) {
            return false;
        }
        let bad = match self.problem(id, Kind::DirNode, path) {
            None => true,
            Some(b) => match decode::<DirNode>(id, &b) {
                Err(_) => {
                    self.corrupt.insert(id);
                    true
                }
                Ok(n) => {
                    let mut bad = false;
                    for c in &n.children {
                        bad |= self.dir(c.id, path);
                    }
                    for e in &n.entries {
                        let p = if path.is_empty() {
                            e.name.clone()
                        } else {
                            format!("{path}/{}", e.name)
                        };
                        let Some(eid) = e.id else { continue };
                        bad |= match e.kind {
                            EntryKind::Dir => self.dir(eid, &p),
                            EntryKind::File => self.leaf(eid, e.size, Kind::Blob, &p),
                            EntryKind::Session => self.session(eid, &p),
                            EntryKind::Conflict => self.problem(eid, Kind::Conflict, &p).is_none(),
                            EntryKind::Symlink => false,
                        };
                    }
                    bad
                }
            },
        };
        self.memo.insert(id, bad);
        bad
    }

    fn session(&mut self, id: ObjectId, path: &str) -> bool {
        if let Some(&b) = self.memo.get(&id) {
            return b;
        }
        if self.clean.is_some_and(|m| m.get(&id) == Some(&false)) {
            return false;
        }
        let bad = match self.problem(id, Kind::Session, path) {
            None => true,
            Some(b) => match decode::<Session>(id, &b) {
                Err(_) => {
                    self.corrupt.insert(id);
                    true
                }
                Ok(s) => {
                    let mut bad = s.lines.map(|l| self.list(l, path)).unwrap_or(false);
                    if let Some(t) = s.tail {
                        bad |= self.leaf(t.id, t.len, Kind::Line, path);
                    }
                    bad
                }
            },
        };
        self.memo.insert(id, bad);
        bad
    }
}

impl Repo {
    pub fn verify(&self, read_data: bool) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            packs: self.objects.packs().len(),
            objects: self
                .objects
                .packs()
                .iter()
                .map(|p| p.object_count() as u64)
                .sum(),
            ..Default::default()
        };
        for (p, why) in &self.objects.broken {
            report.findings.push(Finding::BrokenPack {
                pack: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                why: why.clone(),
                fix: format!(
                    "{FIX_REPAIR} (salvages its intact objects and moves it to quarantine/)"
                ),
            });
        }
        let mut bad = HashMap::new();
        if read_data {
            let (corrupt, checksum, n, b) = read_all(&self.objects);
            report.objects_checked = n;
            report.bytes_read = b;
            for p in checksum {
                report.findings.push(Finding::PackChecksum {
                    pack: p,
                    fix: FIX_REPAIR.into(),
                });
            }
            for (id, pack, why) in corrupt {
                bad.insert(id, (pack, why));
            }
        }
        // Packs on disk vs packs in the database.
        let listed: HashSet<String> = {
            let mut st = self
                .db
                .conn
                .prepare("SELECT name FROM packs")
                .map_err(|e| self.db.db_err(e))?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| self.db.db_err(e))?;
            rows.filter_map(|r| r.ok()).collect()
        };
        let on_disk: HashSet<String> = self
            .objects
            .packs()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let broken_names: HashSet<String> = self
            .objects
            .broken
            .iter()
            .filter_map(|(p, _)| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        for name in listed.difference(&on_disk) {
            if !broken_names.contains(name) {
                report.findings.push(Finding::MissingPack {
                    pack: name.clone(),
                    fix: FIX_MISSING.into(),
                });
            }
        }
        let known: HashSet<ObjectId> = self.db.all_snapshots()?.iter().map(|r| r.id).collect();
        for p in self.objects.packs() {
            if !listed.contains(&p.name) {
                let snaps = snapshots_in(p)?
                    .into_iter()
                    .filter(|(id, _)| !known.contains(id))
                    .count();
                report.findings.push(Finding::OrphanPack {
                    pack: p.name.clone(),
                    snapshots: snaps,
                    fix: format!(
                        "{FIX_REPAIR} indexes it (harmless: left by an interrupted command)"
                    ),
                });
            }
        }
        // Every snapshot's tree must be complete.
        let rows = self.db.all_snapshots()?;
        report.snapshots = rows.len();
        let mut w = Walker {
            objects: &self.objects,
            bad: &bad,
            memo: HashMap::new(),
            first_path: HashMap::new(),
            missing: HashSet::new(),
            corrupt: HashSet::new(),
            checked: 0,
            clean: None,
        };
        let mut damaged_roots = Vec::new();
        // A pruned snapshot keeps its row, not its trees (store-format.md §14).
        let pruned = self.db.pruned()?;
        for r in rows.iter().filter(|r| !pruned.contains(&r.id)) {
            if w.dir(r.snap.root, "") {
                damaged_roots.push(r.snap.root);
            }
        }
        // Which problems each damaged snapshot reaches: a walk of its own that skips the
        // subtrees the first walk found clean, so it costs what the damage touches.
        let mut damaged_snaps: HashMap<ObjectId, usize> = HashMap::new();
        for root in damaged_roots {
            let mut one = Walker {
                objects: &self.objects,
                bad: &bad,
                memo: HashMap::new(),
                first_path: HashMap::new(),
                missing: HashSet::new(),
                corrupt: HashSet::new(),
                checked: 0,
                clean: Some(&w.memo),
            };
            one.dir(root, "");
            for id in one.missing.union(&one.corrupt) {
                *damaged_snaps.entry(*id).or_default() += 1;
            }
        }
        report.objects_checked = report.objects_checked.max(w.checked);
        for id in &w.missing {
            report.findings.push(Finding::MissingObject {
                id: id.to_hex(),
                snapshots: damaged_snaps.get(id).copied().unwrap_or(1),
                example_path: w.first_path.get(id).cloned(),
                fix: FIX_MISSING.into(),
            });
        }
        let mut corrupt_reported = HashSet::new();
        for id in &w.corrupt {
            corrupt_reported.insert(*id);
            let (pack, why) = bad
                .get(id)
                .cloned()
                .unwrap_or_else(|| (String::new(), "unreadable".into()));
            report.findings.push(Finding::CorruptObject {
                id: id.to_hex(),
                pack,
                why,
                snapshots: damaged_snaps.get(id).copied().unwrap_or(1),
                example_path: w.first_path.get(id).cloned(),
                fix: format!("{FIX_REPAIR} drops the damaged copy; then a sync from another machine brings the object back"),
            });
        }
        // Damaged objects no snapshot reaches are still damage in a pack.
        for (id, (pack, why)) in &bad {
            if !corrupt_reported.contains(id) {
                report.findings.push(Finding::CorruptObject {
                    id: id.to_hex(),
                    pack: pack.clone(),
                    why: why.clone(),
                    snapshots: 0,
                    example_path: None,
                    fix: FIX_REPAIR.into(),
                });
            }
        }
        if let Some(h) = self.head()? {
            if !known.contains(&h) {
                report.findings.push(Finding::BadHead {
                    id: h.to_hex(),
                    fix: FIX_REPAIR.into(),
                });
            }
        }
        Ok(report)
    }
}

/// Snapshot objects stored in a pack.
fn snapshots_in(p: &Pack) -> Result<Vec<(ObjectId, Vec<u8>)>> {
    let mut out = Vec::new();
    for i in 0..p.object_count() {
        let e = p.entry(i)?;
        if e.kind == Kind::Snapshot {
            let block = p.read_block(e.block)?;
            out.push((
                e.id,
                block[e.offset as usize..(e.offset + e.len) as usize].to_vec(),
            ));
        }
    }
    Ok(out)
}

#[derive(Debug, Default, serde::Serialize)]
pub struct RepairReport {
    pub db_rebuilt: bool,
    pub packs_indexed: usize,
    pub snapshots_added: usize,
    pub packs_quarantined: Vec<String>,
    pub objects_salvaged: u64,
    pub objects_lost: u64,
    pub head: Option<String>,
    pub notes: Vec<String>,
}

/// Repair a store: salvage damaged packs into a new pack (the damaged ones go to
/// `quarantine/`), rebuild a missing or unreadable database from the packs, and index orphan
/// packs. Nothing is ever deleted: damaged files are moved aside.
pub fn repair(home: &Path, store_dir: &Path) -> Result<RepairReport> {
    let mut rep = RepairReport::default();
    if !store_dir.join(crate::rules::STORE_MARKER).exists() && !store_dir.join("packs").exists() {
        return Err(Error::NoStore {
            home: home.to_path_buf(),
        });
    }
    let _lock = crate::lock::StoreLock::acquire(store_dir, "verify --repair")?;
    let db_path = store_dir.join("sage.db");
    // A store written by a newer sage is not damaged: refuse to touch it.
    if let Err(e @ Error::TooNew { .. }) = Db::open(&db_path, false) {
        return Err(e);
    }
    let quarantine = store_dir.join("quarantine");
    // 1. Salvage damaged packs (a pack of a newer version is left alone).
    let mut objects = ObjectStore::open(store_dir)?;
    let mut damaged: Vec<PathBuf> = Vec::new();
    for (p, why) in &objects.broken {
        if why.contains("is not supported") {
            rep.notes.push(format!(
                "{} was written by a newer sage: left alone",
                p.display()
            ));
        } else {
            damaged.push(p.clone());
        }
    }
    let (corrupt, checksum, _, _) = read_all(&objects);
    let bad_ids: HashSet<ObjectId> = corrupt.iter().map(|c| c.0).collect();
    for p in objects.packs() {
        if checksum.contains(&p.name) || corrupt.iter().any(|c| c.1 == p.name) {
            damaged.push(p.path.clone());
        }
    }
    damaged.sort();
    damaged.dedup();
    if !damaged.is_empty() {
        let mut salvaged = Vec::new();
        for p in &damaged {
            let objs = crate::pack::salvage(p)?;
            let mut good = 0u64;
            for (kind, id, bytes) in objs {
                // Salvage re-derives ids from the bytes; blocks carry zstd checksums, so a damaged
                // block fails to decompress instead of yielding junk.
                let _ = &bad_ids;
                salvaged.push((kind, id, bytes));
                good += 1;
            }
            let expected = Pack::open(p)
                .map(|pk| pk.object_count() as u64)
                .unwrap_or(good);
            rep.objects_lost += expected.saturating_sub(good);
        }
        // Write what was saved to a new pack before moving anything aside.
        {
            // A PackWriter, not an Inserter: the store still holds the damaged packs, so an
            // Inserter would take every salvaged object as already present and write nothing.
            let mut w: Option<crate::pack::PackWriter> = None;
            let mut seen = HashSet::new();
            for (kind, id, bytes) in &salvaged {
                // An object also held by a healthy pack need not be copied.
                if !seen.insert(*id) || !damaged_only(&objects, &damaged, id)? {
                    continue;
                }
                if w.is_none() {
                    w = Some(crate::pack::PackWriter::new(
                        &objects.packs_dir(),
                        objects.level,
                    )?);
                }
                w.as_mut().expect("created above").add(*kind, *id, bytes)?;
                rep.objects_salvaged += 1;
            }
            if let Some(w) = w {
                w.finish()?;
            }
        }
        std::fs::create_dir_all(&quarantine)
            .ctx(|| format!("creating {}", quarantine.display()))?;
        for p in &damaged {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            std::fs::rename(p, quarantine.join(&name))
                .ctx(|| format!("moving {} to quarantine", p.display()))?;
            rep.packs_quarantined.push(name);
        }
        crate::fsutil::fsync_dir(&store_dir.join("packs"))?;
        objects.reload()?;
    }
    // 2. The database: reopen, or rebuild from the packs.
    let db_ok = db_path.exists()
        && Db::open(&db_path, false)
            .and_then(|d| d.all_snapshots().map(|_| d))
            .is_ok();
    if !db_ok {
        if db_path.exists() {
            let aside = store_dir.join(format!("sage.db.damaged-{}", crate::clock::now_ms()));
            std::fs::rename(&db_path, &aside)
                .ctx(|| format!("moving {} aside", db_path.display()))?;
            for ext in ["-wal", "-shm"] {
                let side = store_dir.join(format!("sage.db{ext}"));
                if side.exists() {
                    let _ =
                        std::fs::rename(&side, store_dir.join(format!("{}{ext}", aside.display())));
                }
            }
            rep.notes.push(format!(
                "the damaged database was moved to {}",
                aside.display()
            ));
        }
        rep.db_rebuilt = true;
        rep.notes.push("the operation log and stat cache could not be recovered: `sage undo` starts afresh and the next commit re-reads every file".into());
    }
    let mut db = Db::open(&db_path, true)?;
    if db.meta("store_id")?.is_none() {
        let id = std::fs::read_to_string(store_dir.join(crate::rules::STORE_MARKER))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| hex::encode(rand::random::<[u8; 16]>()));
        db.set_meta("store_id", &id)?;
        db.set_meta("format", &crate::repo::FORMAT_VERSION.to_string())?;
        db.set_meta("home", &crate::repo::canonical_home(home).to_string_lossy())?;
        db.set_meta("created", &crate::clock::now_ms().to_string())?;
    }
    let listed: HashSet<String> = {
        let mut st = db
            .conn
            .prepare("SELECT name FROM packs")
            .map_err(|e| db.db_err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| db.db_err(e))?;
        rows.filter_map(|r| r.ok()).collect()
    };
    let mut found_snaps = Vec::new();
    let now = crate::clock::now_ms();
    let path = db.path.clone();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    // Tombstones: the table's, plus the log's (which survives a lost database, §14.5).
    let from_log = crate::purge::read_log(store_dir)?;
    objects.purged = crate::purge::load(&db)?;
    objects.purged.extend(from_log.iter().map(|t| t.id));
    let t = db.transaction()?;
    crate::purge::insert(&t, &from_log).map_err(wrap)?;
    // The pack list is rebuilt from what is on disk now (quarantined packs drop out).
    t.execute("DELETE FROM packs", []).map_err(wrap)?;
    for p in objects.packs() {
        if !listed.contains(&p.name) {
            rep.packs_indexed += 1;
        }
        tx::insert_pack(&t, &p.name, p.size(), p.object_count() as u64, now).map_err(wrap)?;
        found_snaps.extend(snapshots_in(p)?);
    }
    let mut decoded = Vec::new();
    for (id, raw) in found_snaps {
        if let Ok(s) = Snapshot::decode(id, &raw) {
            decoded.push((id, raw, s));
        }
    }
    decoded.sort_by_key(|(_, _, s)| s.time);
    let no_bad = HashMap::new();
    let mut walker = Walker {
        objects: &objects,
        bad: &no_bad,
        memo: HashMap::new(),
        first_path: HashMap::new(),
        missing: HashSet::new(),
        corrupt: HashSet::new(),
        checked: 0,
        clean: None,
    };
    let mut incomplete = HashSet::new();
    let already_pruned: HashSet<ObjectId> = t
        .prepare("SELECT id FROM pruned")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(wrap)?
        .into_iter()
        .filter_map(|b| ObjectId::from_slice(&b))
        .collect();
    decoded.retain(|(id, _, _)| !already_pruned.contains(id));
    for (id, _, s) in &decoded {
        // A snapshot row promises that every object under it is present.
        if walker.dir(s.root, "") {
            incomplete.insert(*id);
        }
    }
    if !incomplete.is_empty() {
        rep.notes.push(format!(
            "{} snapshots lack objects and were not indexed (a sync from a machine that has them brings them back)",
            incomplete.len()
        ));
    }
    // A snapshot whose root node is gone entirely lost its trees to a prune (§14.3): its row
    // comes back marked pruned, so that sync still sees the history.
    let pruned_rows: Vec<(ObjectId, Vec<u8>, Snapshot)> = decoded
        .iter()
        .filter(|(id, _, s)| incomplete.contains(id) && !objects.contains(&s.root).unwrap_or(true))
        .cloned()
        .collect();
    for (id, raw, s) in &pruned_rows {
        if tx::insert_snapshot(&t, id, raw, s, &Default::default()).map_err(wrap)? {
            rep.snapshots_added += 1;
        }
        tx::mark_pruned(&t, id, now).map_err(wrap)?;
    }
    if !pruned_rows.is_empty() {
        rep.notes.push(format!(
            "{} snapshots whose trees were pruned were indexed as pruned",
            pruned_rows.len()
        ));
    }
    decoded.retain(|(id, _, _)| !incomplete.contains(id));
    // Stat-cache rows may name objects that are gone: the next commit re-reads every file.
    t.execute("DELETE FROM statcache", []).map_err(wrap)?;
    for (id, raw, s) in &decoded {
        let stats = crate::tree::flatten(&objects, s.root)
            .and_then(|f| crate::tree::stats_of(&objects, &f))
            .unwrap_or_default();
        if tx::insert_snapshot(&t, id, raw, s, &stats).map_err(wrap)? {
            rep.snapshots_added += 1;
        }
    }
    let head: Option<Vec<u8>> = t
        .query_row("SELECT id FROM refs WHERE name='HEAD'", [], |r| r.get(0))
        .ok();
    let head_ok = head
        .as_ref()
        .map(|h| decoded.iter().any(|(id, _, _)| id.0[..] == h[..]) || db_has(&t, h))
        .unwrap_or(false);
    if !head_ok {
        // HEAD: the newest snapshot that no other snapshot names as a parent.
        let parents: HashSet<ObjectId> = decoded
            .iter()
            .flat_map(|(_, _, s)| s.parents.iter().copied())
            .collect();
        if let Some((id, _, _)) = decoded
            .iter()
            .rev()
            .find(|(id, _, _)| !parents.contains(id))
        {
            tx::set_ref(&t, "HEAD", Some(id)).map_err(wrap)?;
            rep.head = Some(id.to_hex());
            rep.notes.push(format!(
                "HEAD set to the newest snapshot without children: {}",
                id.short()
            ));
        }
    }
    t.commit().map_err(wrap)?;
    Ok(rep)
}

fn db_has(t: &rusqlite::Transaction, id: &[u8]) -> bool {
    t.query_row("SELECT 1 FROM snapshots WHERE id=?1", [id], |_| Ok(()))
        .is_ok()
}

/// Is `id` held only by damaged packs (so a salvaged copy must be kept)?
fn damaged_only(objects: &ObjectStore, damaged: &[PathBuf], id: &ObjectId) -> Result<bool> {
    for p in objects.packs() {
        if damaged.contains(&p.path) {
            continue;
        }
        if p.find(id)?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}
