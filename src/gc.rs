//! Garbage collection: rewrite the packs so that they hold exactly the objects the store still
//! needs, in few packs. Used by `sage gc`, and by prune (after marking snapshots pruned).
//!
//! What is kept (the *live set*, store-format.md §14.2):
//! - every Snapshot object in any pack (snapshot rows are never deleted, pruned or not);
//! - every object reachable from the tree of a snapshot whose trees are not pruned, and from
//!   snapshot objects that no row names yet (an orphan pack's: `verify --repair` may index them);
//! - every object named by the stat cache, the overlay and the intent log (a commit or a healing
//!   apply relies on them).
//!
//! Write order (each step durable before the next; a kill anywhere leaves a store that
//! `verify --read-data` passes, orphan packs allowed):
//! 1. new packs, children first (post-order from each root), each fsynced and renamed in;
//! 2. one transaction: the new packs' rows in, the replaced packs' rows out;
//! 3. the replaced pack files are deleted, then `packs/` is fsynced.
//!
//! Between 1 and 2 the new packs are orphans holding copies; between 2 and 3 the old ones are
//! orphans. Either way every live object is in a pack on disk. The plan is computed under the
//! store lock, so no writer adds packs meanwhile.

use crate::db::tx;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::id::{Kind, ObjectId};
use crate::object::{Entry, EntryKind, LARGE_OBJECT};
use crate::pack::PackWriter;
use crate::repo::Repo;
use crate::snapshot::Snapshot;
use std::collections::{HashMap, HashSet};

/// Knobs of a pack rewrite.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Uncompressed bytes per output pack before another one starts.
    pub pack_target: u64,
    /// A pack at least this large (file bytes) that holds only live objects is left as it is.
    pub keep_pack_bytes: u64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            pack_target: 256 << 20,
            keep_pack_bytes: 32 << 20,
        }
    }
}

/// What a rewrite will do, computed without writing anything.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcPlan {
    pub packs_before: usize,
    pub bytes_before: u64,
    /// Distinct objects in all packs.
    pub objects_before: u64,
    pub live_objects: u64,
    pub dead_objects: u64,
    /// Packs that will be replaced (deleted once their live objects are copied).
    pub rewrite: Vec<String>,
    /// Packs left untouched (large and fully live).
    pub untouched: Vec<String>,
    /// The live objects to copy, children before the objects naming them.
    #[serde(skip)]
    order: Vec<(Kind, ObjectId)>,
}

impl GcPlan {
    pub fn is_noop(&self) -> bool {
        self.rewrite.is_empty() || (self.rewrite.len() == 1 && self.dead_objects == 0)
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcOutcome {
    pub packs_before: usize,
    pub packs_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub objects_kept: u64,
    pub objects_dropped: u64,
    pub packs_written: Vec<String>,
    pub packs_deleted: Vec<String>,
}

/// The object id and kind an entry names, if any.
pub fn entry_target(e: &Entry) -> Option<(ObjectId, Kind)> {
    let id = e.id?;
    let kind = match e.kind {
        EntryKind::File if e.size >= LARGE_OBJECT => Kind::Chunked,
        EntryKind::File => Kind::Blob,
        EntryKind::Session => Kind::Session,
        EntryKind::Dir => Kind::DirNode,
        EntryKind::Conflict => Kind::Conflict,
        EntryKind::Symlink => return None,
    };
    Some((id, kind))
}

struct Walk<'a> {
    repo: &'a Repo,
    seen: HashSet<ObjectId>,
    order: Vec<(Kind, ObjectId)>,
}

impl Walk<'_> {
    /// Post-order: everything below `id` is pushed before `id`.
    fn visit(&mut self, id: ObjectId, kind: Kind) -> Result<()> {
        if !self.seen.insert(id) {
            return Ok(());
        }
        // Purged data (and a purged large object's own chunks) leaves the packs (§14.5).
        if kind.is_data() && self.repo.objects.is_purged(&id) {
            return Ok(());
        }
        if !matches!(kind, Kind::Line | Kind::Blob) {
            let bytes = self.repo.objects.read(id, kind)?;
            for (child, ck) in crate::sync::objects::references(kind, id, &bytes)? {
                self.visit(child, ck)?;
            }
        } else if !self.repo.objects.contains(&id)? {
            return Err(Error::MissingObject { id });
        }
        self.order.push((kind, id));
        Ok(())
    }

    /// A root nothing promises complete (a stat-cache, overlay or intent row, an unindexed
    /// snapshot): whatever of it is present and complete is kept, a missing object is no error.
    /// Such roots are visited after every promised one, so an object left `seen` by an
    /// abandoned walk can only be one no promised tree reaches.
    fn visit_optional(&mut self, id: ObjectId, kind: Kind) -> Result<()> {
        match self.visit(id, kind) {
            Err(Error::MissingObject { .. }) => Ok(()),
            other => other,
        }
    }
}

fn db_blobs(repo: &Repo, sql: &str) -> Result<Vec<Vec<u8>>> {
    let mut st = repo.db.conn.prepare(sql).map_err(|e| repo.db.db_err(e))?;
    let rows = st
        .query_map([], |r| r.get::<_, Option<Vec<u8>>>(0))
        .map_err(|e| repo.db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| repo.db.db_err(e))?;
    Ok(rows.into_iter().flatten().collect())
}

/// Compute the live set and which packs to rewrite. The caller holds the store lock.
pub fn plan(repo: &Repo, opts: &GcOptions) -> Result<GcPlan> {
    plan_with(repo, opts, &HashSet::new())
}

/// As [`plan`], as if the snapshots `also_pruned` were marked pruned too (prune's preview).
pub fn plan_with(repo: &Repo, opts: &GcOptions, also_pruned: &HashSet<ObjectId>) -> Result<GcPlan> {
    if let Some((p, why)) = repo.objects.broken.first() {
        return Err(Error::Other(format!(
            "pack {} is damaged ({why}); gc rewrites packs only in a healthy store\n  fix: run `sage verify --repair` first",
            p.display()
        )));
    }
    let mut pruned = repo.db.pruned()?;
    pruned.extend(also_pruned.iter().copied());
    let rows = repo.db.all_snapshots()?;
    let known: HashSet<ObjectId> = rows.iter().map(|r| r.id).collect();
    let mut w = Walk {
        repo,
        seen: HashSet::new(),
        order: Vec::new(),
    };
    // Snapshot objects in packs, with their bytes (rows first, then unindexed ones).
    let mut snaps: Vec<(ObjectId, Snapshot)> = Vec::new();
    let mut in_packs: HashMap<ObjectId, Kind> = HashMap::new();
    for p in repo.objects.packs() {
        for i in 0..p.object_count() {
            let e = p.entry(i)?;
            in_packs.insert(e.id, e.kind);
        }
    }
    for r in rows.iter().rev() {
        snaps.push((r.id, r.snap.clone()));
    }
    // Promised trees first: every snapshot row not pruned.
    for (id, s) in &snaps {
        if !pruned.contains(id) {
            w.visit(s.root, Kind::DirNode)?;
        }
    }
    let mut unindexed: Vec<ObjectId> = in_packs
        .iter()
        .filter(|(id, k)| **k == Kind::Snapshot && !known.contains(id))
        .map(|(id, _)| *id)
        .collect();
    unindexed.sort();
    for id in unindexed {
        let raw = repo.objects.read(id, Kind::Snapshot)?;
        snaps.push((id, Snapshot::decode(id, &raw)?));
    }
    for b in db_blobs(repo, "SELECT entry FROM statcache")? {
        if let Some((id, k)) = crate::scan::cached_entry(&b)
            .as_ref()
            .and_then(entry_target)
        {
            w.visit_optional(id, k)?;
        }
    }
    for b in db_blobs(repo, "SELECT entry FROM overlay")? {
        if let Some((id, k)) = rmp_serde::from_slice::<Entry>(&b)
            .ok()
            .as_ref()
            .and_then(entry_target)
        {
            w.visit_optional(id, k)?;
        }
    }
    for b in db_blobs(repo, "SELECT target FROM intents")? {
        if let Some(id) = ObjectId::from_slice(&b) {
            w.visit_optional(id, Kind::Session)?;
        }
    }
    for (id, s) in &snaps[rows.len()..] {
        if !pruned.contains(id) {
            w.visit_optional(s.root, Kind::DirNode)?;
        }
    }
    for (id, _) in &snaps {
        if w.seen.insert(*id) {
            w.order.push((Kind::Snapshot, *id));
        }
    }
    let live: HashSet<ObjectId> = w.order.iter().map(|(_, id)| *id).collect();
    let mut plan = GcPlan {
        packs_before: repo.objects.packs().len(),
        bytes_before: repo.objects.total_size(),
        objects_before: in_packs.len() as u64,
        live_objects: live.len() as u64,
        dead_objects: in_packs.keys().filter(|id| !live.contains(id)).count() as u64,
        ..Default::default()
    };
    let mut untouched_objects: HashSet<ObjectId> = HashSet::new();
    for p in repo.objects.packs() {
        let mut all_live = true;
        for i in 0..p.object_count() {
            if !live.contains(&p.entry(i)?.id) {
                all_live = false;
                break;
            }
        }
        if all_live && p.size() >= opts.keep_pack_bytes {
            plan.untouched.push(p.name.clone());
            for i in 0..p.object_count() {
                untouched_objects.insert(p.entry(i)?.id);
            }
        } else {
            plan.rewrite.push(p.name.clone());
        }
    }
    plan.order = w
        .order
        .into_iter()
        .filter(|(_, id)| !untouched_objects.contains(id))
        .collect();
    Ok(plan)
}

/// Carry out a plan (store lock held): new packs, one transaction, then deletions.
/// Delete `packs/tmp-*` files: under the writer lock every one is left by a killed writer or
/// receiver (it may hold bytes a purge removed since).
fn remove_stale_temps(dir: &std::path::Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

pub fn apply(repo: &mut Repo, plan: &GcPlan, opts: &GcOptions) -> Result<GcOutcome> {
    remove_stale_temps(&repo.objects.packs_dir());
    let mut out = GcOutcome {
        packs_before: plan.packs_before,
        bytes_before: plan.bytes_before,
        objects_kept: plan.live_objects,
        objects_dropped: plan.dead_objects,
        ..Default::default()
    };
    if plan.is_noop() {
        out.packs_after = plan.packs_before;
        out.bytes_after = plan.bytes_before;
        return Ok(out);
    }
    let dir = repo.objects.packs_dir();
    let mut written: Vec<(String, u64, u64)> = Vec::new();
    let mut w: Option<PackWriter> = None;
    let finish = |w: PackWriter, written: &mut Vec<(String, u64, u64)>| -> Result<()> {
        let count = w.object_count() as u64;
        if let Some((name, _)) = w.finish()? {
            let path = dir.join(format!("{name}.pack"));
            let size = std::fs::metadata(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                .len();
            written.push((name, size, count));
            failpoint::hit("gc-after-new-pack");
        }
        Ok(())
    };
    for (kind, id) in &plan.order {
        let bytes = repo.objects.read_verified(*id, *kind)?;
        let cur = match w.as_mut() {
            Some(cur) => cur,
            None => w.insert(PackWriter::new(&dir, repo.objects.level)?),
        };
        cur.add(*kind, *id, &bytes)?;
        if cur.raw_bytes() >= opts.pack_target {
            finish(w.take().expect("set above"), &mut written)?;
        }
    }
    if let Some(cur) = w.take() {
        finish(cur, &mut written)?;
    }
    failpoint::hit("gc-before-db");
    let new_names: HashSet<&str> = written.iter().map(|(n, _, _)| n.as_str()).collect();
    let doomed: Vec<String> = plan
        .rewrite
        .iter()
        .filter(|n| !new_names.contains(n.as_str()))
        .cloned()
        .collect();
    let now = crate::clock::now_ms();
    let path = repo.db.path.clone();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    let t = repo.db.transaction()?;
    for (name, size, count) in &written {
        tx::insert_pack(&t, name, *size, *count, now).map_err(wrap)?;
    }
    for name in &doomed {
        t.execute("DELETE FROM packs WHERE name=?1", [name])
            .map_err(wrap)?;
    }
    t.commit().map_err(wrap)?;
    failpoint::hit("gc-after-db");
    for name in &doomed {
        let p = dir.join(format!("{name}.pack"));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("deleting {}", p.display()), e)),
        }
        failpoint::hit("gc-after-delete");
    }
    crate::fsutil::fsync_dir(&dir)?;
    repo.objects.reload()?;
    out.packs_after = repo.objects.packs().len();
    out.bytes_after = repo.objects.total_size();
    out.packs_written = written.into_iter().map(|(n, _, _)| n).collect();
    out.packs_deleted = doomed;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noop_when_one_fully_live_pack() {
        let p = GcPlan {
            rewrite: vec!["a".into()],
            ..Default::default()
        };
        assert!(p.is_noop());
        let p = GcPlan {
            rewrite: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert!(!p.is_noop());
        let p = GcPlan {
            rewrite: vec!["a".into()],
            dead_objects: 1,
            ..Default::default()
        };
        assert!(!p.is_noop());
    }
}
