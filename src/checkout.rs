//! Rolling a home back (checkout) and undoing operations. A destructive step is a plan first
//! (`prepare_*`, with its impact), shown and confirmed by the caller, then applied.
//!
//! Applying writes every file to a temp file beside its target, syncs the filesystem once,
//! renames the temps into place and fsyncs the directories: each file holds its old or its
//! new bytes at any moment, and every written file gets a fresh mtime (Claude Code deletes
//! transcripts by mtime). Nothing is ever written through a symlink.

use crate::db::{tx, StatRow};
use crate::diff::{diff_trees, ChangeKind, PathChange};
use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::intent::{Intent, IntentKind};
use crate::object::{decode, Entry, EntryKind, Session};
use crate::prolly::{Layered, MemObjects, ObjectSource};
use crate::repo::{CommitOptions, Repo};
use crate::rules::TEMP_INFIX;
use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};
use crate::tree::{build_tree, flatten, parent_of, FlatTree};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The home as it is: its tree, the safety snapshot holding it, objects of a read-only scan,
/// and the stat rows to detect files that change before the plan is applied.
type CurrentState = (
    FlatTree,
    Option<ObjectId>,
    MemObjects,
    HashMap<String, StatRow>,
);

/// What a plan would do to the home, for the preview and the confirmation rule.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Impact {
    pub removed: Vec<String>,
    pub truncated: Vec<String>,
    pub replaced: Vec<String>,
    pub added: Vec<String>,
    pub extended: Vec<String>,
    pub messages_at_risk: u64,
    pub bytes_at_risk: u64,
    pub destructive: bool,
}

pub struct CheckoutPlan {
    pub home: std::path::PathBuf,
    pub target: Option<ObjectId>,
    pub target_flat: FlatTree,
    pub new_root: ObjectId,
    pub current_flat: FlatTree,
    pub changes: Vec<PathChange>,
    pub impact: Impact,
    /// The snapshot holding the home as it was (own home only).
    pub safety: Option<ObjectId>,
    /// Objects of a read-only scan (restores into another directory).
    /// Stat rows of the safety scan, to detect files changed meanwhile.
    pub(crate) guard: HashMap<String, StatRow>,
    /// Undo: the op undone and the head to restore.
    pub undo: Option<(i64, Option<ObjectId>)>,
    pub description: String,
    /// The kind of the snapshot an applied plan records (`checkout`, `purge`).
    pub kind: &'static str,
    /// Plan paths are canonical (tree) paths; the home holds them under this machine's names.
    pub pathmap: crate::pathmap::PathMap,
    /// This store's id (whose names `pathmap` gives).
    pub me: String,
}

impl CheckoutPlan {
    /// Where a plan (tree) path lives in the home.
    pub fn local(&self, path: &str) -> String {
        self.pathmap.local_path(path, &self.me)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckoutOutcome {
    pub snapshot: Option<ObjectId>,
    pub written: usize,
    pub removed: usize,
    pub safety: Option<ObjectId>,
}

fn impact_of(changes: &[PathChange]) -> Impact {
    let mut i = Impact::default();
    for c in changes {
        match c.change {
            ChangeKind::Added => i.added.push(c.path.clone()),
            ChangeKind::Removed => {
                i.removed.push(c.path.clone());
                i.messages_at_risk += c.old_lines;
                i.bytes_at_risk += c.old_size;
            }
            ChangeKind::Modified if c.is_session && c.lost_count == 0 => {
                i.extended.push(c.path.clone())
            }
            ChangeKind::Modified if c.is_session => {
                i.truncated.push(c.path.clone());
                i.messages_at_risk += c.lost_count;
                i.bytes_at_risk += c.lost_bytes;
            }
            ChangeKind::Modified => {
                i.replaced.push(c.path.clone());
                i.bytes_at_risk += c.old_size;
            }
        }
    }
    i.destructive = changes.iter().any(|c| c.drops_data());
    i
}

/// Does `path` fall under one of `paths` (each a file or a directory, home-relative)?
pub fn under_any(path: &str, paths: &[String]) -> bool {
    paths
        .iter()
        .any(|p| p.is_empty() || path == p || path.starts_with(&format!("{p}/")))
}

impl Repo {
    /// Turn a user-typed path (absolute inside the home, or home-relative) into a home-relative one.
    pub fn rel_path(&self, p: &str) -> Result<String> {
        let path = Path::new(p);
        let rel = if path.is_absolute() {
            let c = crate::repo::canonical_home(path);
            c.strip_prefix(&self.home)
                .map_err(|_| {
                    Error::Usage(format!(
                        "{p} is not inside the home {}",
                        self.home.display()
                    ))
                })?
                .to_string_lossy()
                .into_owned()
        } else {
            p.to_string()
        };
        Ok(rel.trim_matches('/').trim_start_matches("./").to_string())
    }

    /// The home as it is now: after a safety commit for the own home (returns its id), or a
    /// read-only scan for another directory.
    fn current_state(&mut self, dry_run: bool, why: &str) -> Result<CurrentState> {
        let mut mem = MemObjects::default();
        if self.own_home && !dry_run {
            let out = self.commit_inner(
                &CommitOptions {
                    kind: "auto",
                    message: why,
                    progress: &|_, _| {},
                },
                false,
            )?;
            if let Some(pack) = &out.new_pack {
                self.read_back_pack(pack)?;
            }
            let guard = self.db.stat_rows()?;
            // Raw: the home as it is, purged lines included, so that the plan rewrites them.
            let flat = if out.id == ObjectId::default() {
                FlatTree::new()
            } else {
                self.flat_raw(&out.id)?
            };
            let safety = (out.id != ObjectId::default()).then_some(out.id);
            return Ok((flat, safety, mem, guard));
        }
        let home = self.home.clone();
        let (out, _) = self.scan_readonly(&home, &mut mem)?;
        Ok((out.flat, None, mem, HashMap::new()))
    }

    /// The project map a plan translates with: this home's, joined with `target`'s (whose
    /// tree is canonical under its own map), and this store's id.
    pub(crate) fn plan_names(
        &self,
        target: Option<&ObjectId>,
    ) -> Result<(crate::pathmap::PathMap, String)> {
        let mut pm = self.pathmap()?;
        if let Some(t) = target {
            pm = pm.union(&crate::pathmap::PathMap::from_raw(
                self.snapshot(t)?.snap.pathmap.as_ref(),
            ));
        }
        Ok((pm.with_local_dirs(&self.home), self.store_id()?))
    }

    /// Re-read and re-hash every object of a pack just written (the safety snapshot's).
    pub fn read_back_pack(&self, name: &str) -> Result<()> {
        let pack = self
            .objects
            .packs()
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::Other(format!("pack {name} vanished right after it was written"))
            })?;
        pack.for_each_object(|e, b| {
            if ObjectId::hash(e.kind, b) != e.id {
                return Err(Error::CorruptObject {
                    id: e.id,
                    why: "the safety snapshot did not read back intact: the disk may be failing; nothing was changed".into(),
                });
            }
            Ok(())
        })
    }

    /// Plan a checkout of `target` (whole home, or only `paths`).
    pub fn prepare_checkout(
        &mut self,
        target: ObjectId,
        paths: &[String],
        dry_run: bool,
    ) -> Result<CheckoutPlan> {
        self.require_trees(&target)?;
        let target_row = self.snapshot(&target)?;
        let (current, safety, mem, guard) =
            self.current_state(dry_run, &format!("before checkout {}", target.short()))?;
        let (pm, me) = self.plan_names(Some(&target))?;
        let current = pm.canonicalize(&current);
        let full_target = pm.canonicalize(&crate::purge::effective(
            &self.objects,
            flatten(&self.objects, target_row.snap.root)?,
        )?);
        // Paths the user typed are this home's names.
        let paths: Vec<String> = paths.iter().map(|p| pm.canonical_path(p)).collect();
        let paths = &paths[..];
        let target_flat = if paths.is_empty() {
            full_target
        } else {
            let mut t: FlatTree = current
                .iter()
                .filter(|(p, _)| !under_any(p, paths))
                .map(|(p, e)| (p.clone(), e.clone()))
                .collect();
            let mut any = false;
            for (p, e) in full_target {
                if under_any(&p, paths) {
                    t.insert(p, e);
                    any = true;
                }
            }
            if !any && !current.keys().any(|p| under_any(p, paths)) {
                return Err(Error::Usage(format!(
                    "none of {paths:?} exists in snapshot {} or in the home",
                    target.short()
                )));
            }
            t
        };
        let new_root = build_tree(&target_flat, &mut crate::prolly::NullSink)?;
        let layered = Layered {
            mem: &mem,
            base: &self.objects,
        };
        let changes = diff_trees(&layered, &current, &self.objects, &target_flat, None)?;
        let impact = impact_of(&changes);
        Ok(CheckoutPlan {
            home: self.home.clone(),
            target: Some(target),
            target_flat,
            new_root,
            current_flat: current,
            changes,
            impact,
            safety,
            guard,
            undo: None,
            description: if paths.is_empty() {
                format!("checkout {}", target.short())
            } else {
                format!("checkout {} -- {}", target.short(), paths.join(" "))
            },
            kind: "checkout",
            pathmap: pm,
            me,
        })
    }

    /// Plan the home's side of a purge (store-format.md §14.5): after a safety commit, the
    /// home as it is (raw, purged lines included) against its purge-filtered view, without
    /// `remove` (canonical paths of purged sessions) at all.
    pub fn prepare_purge(&mut self, remove: &[String], description: &str) -> Result<CheckoutPlan> {
        let (current, safety, _mem, guard) = self.current_state(false, "before purge")?;
        let (pm, me) = self.plan_names(None)?;
        let current = pm.canonicalize(&current);
        let target_flat: FlatTree = crate::purge::effective(&self.objects, current.clone())?
            .into_iter()
            .filter(|(p, _)| !under_any(p, remove))
            .collect();
        let new_root = build_tree(&target_flat, &mut crate::prolly::NullSink)?;
        let changes = diff_trees(&self.objects, &current, &self.objects, &target_flat, None)?;
        let impact = impact_of(&changes);
        Ok(CheckoutPlan {
            home: self.home.clone(),
            target: None,
            target_flat,
            new_root,
            current_flat: current,
            changes,
            impact,
            safety,
            guard,
            undo: None,
            description: description.to_string(),
            kind: "purge",
            pathmap: pm,
            me,
        })
    }

    /// Apply a plan and record it (own home: a checkout snapshot, or the undo's head).
    pub fn apply_checkout(&mut self, plan: CheckoutPlan) -> Result<CheckoutOutcome> {
        let home = plan.home.clone();
        self.persist_mem()?;
        let written = apply_changes(self, &home, &plan)?;
        if !self.own_home {
            return Ok(CheckoutOutcome {
                snapshot: None,
                written: written.len(),
                removed: plan.impact.removed.len(),
                safety: None,
            });
        }
        let head = self.head()?;
        let now = crate::clock::now_ms();
        // Stat rows for what was written, so the next commit sees it unchanged.
        let mut stat_rows = Vec::new();
        for (path, lines) in &written {
            let lp = plan.local(path);
            if let Ok(m) = std::fs::symlink_metadata(home.join(&lp)) {
                if let Some(e) = plan.target_flat.get(path) {
                    stat_rows.push((lp, crate::scan::stat_row(&m, e, *lines, now)));
                }
            }
        }
        let (new_head, snap_obj, kind, undoes) = match plan.undo {
            Some((op, before)) => (before, None, "undo", Some(op)),
            None => {
                let snap = Snapshot {
                    host: crate::clock::host(),
                    kind: plan.kind.into(),
                    merge: None,
                    pathmap: plan.pathmap.to_raw(),
                    message: plan.description.clone(),
                    parents: head.into_iter().collect(),
                    root: plan.new_root,
                    time: now,
                    v: SNAPSHOT_VERSION,
                };
                let obj = snap.to_object();
                // The tree may be new (a partial checkout composes one); store it and the snapshot.
                let mut ins = crate::store::Inserter::new(&self.objects);
                build_tree(&plan.target_flat, &mut ins)?;
                ins.insert(Kind::Snapshot, obj.id, &obj.bytes)?;
                let pack = ins.finish()?;
                if let Some((name, entries)) = &pack {
                    self.record_pack(name, entries.len() as u64)?;
                }
                (Some(obj.id), Some((snap, obj)), plan.kind, None)
            }
        };
        let stats = match &snap_obj {
            Some(_) => crate::tree::stats_of(&self.objects, &plan.target_flat)?,
            None => Default::default(),
        };
        // Overlay rows stay where the checkout left the path alone; a conflict value it wrote
        // gets one (the home holds this machine's side), so the next scan keeps the conflict.
        let same = |a: Option<&Entry>, b: Option<&Entry>| match (a, b) {
            (Some(a), Some(b)) => a.same_content(b),
            (None, None) => true,
            _ => false,
        };
        let mut overlay_after: std::collections::BTreeMap<
            String,
            crate::sync::overlay::OverlayRow,
        > = crate::sync::overlay::load(&self.db)?
            .into_iter()
            .filter(|(p, _)| same(plan.target_flat.get(p), plan.current_flat.get(p)))
            .collect();
        for c in &plan.changes {
            if let Some(e) = plan
                .target_flat
                .get(&c.path)
                .filter(|e| e.kind == EntryKind::Conflict)
            {
                overlay_after.insert(
                    c.path.clone(),
                    crate::sync::overlay::OverlayRow {
                        path: c.path.clone(),
                        entry: crate::resolve::home_side(&self.objects, e, &plan.me)?,
                        reason: "conflict".into(),
                        since: now,
                    },
                );
            }
        }
        let path = self.db_path();
        let wrap = |e| Error::Db {
            path: path.clone(),
            source: e,
        };
        let t = self.db.transaction()?;
        if let Some((snap, obj)) = &snap_obj {
            tx::insert_snapshot(&t, &obj.id, &obj.bytes, snap, &stats).map_err(wrap)?;
        }
        tx::set_ref(&t, "HEAD", new_head.as_ref()).map_err(wrap)?;
        for c in &plan.changes {
            if c.change == ChangeKind::Removed {
                tx::delete_stat(&t, &plan.local(&c.path)).map_err(wrap)?;
            }
        }
        for (p, row) in &stat_rows {
            tx::put_stat(&t, p, row).map_err(wrap)?;
        }
        crate::sync::overlay::replace_all(&t, &overlay_after).map_err(wrap)?;
        tx::record_op(
            &t,
            now,
            kind,
            &plan.description,
            head.as_ref(),
            new_head.as_ref(),
            plan.safety.as_ref(),
            true,
            undoes,
        )
        .map_err(wrap)?;
        t.commit().map_err(wrap)?;
        Ok(CheckoutOutcome {
            snapshot: new_head,
            written: written.len(),
            removed: plan.impact.removed.len(),
            safety: plan.safety,
        })
    }

    /// Plan the undo of the most recent operation not yet undone. `Ok(None)` when the
    /// operation only moved HEAD (nothing in the home changes): that is done at once.
    pub fn prepare_undo(&mut self, dry_run: bool) -> Result<UndoStep> {
        let ops = self.db.ops()?;
        let op = ops
            .iter()
            .find(|o| o.undone_by.is_none() && o.kind != "undo")
            .cloned()
            .ok_or_else(|| {
                Error::Refused(
                    "nothing to undo: the operation log has no operation left to revert".into(),
                )
            })?;
        if op.kind == "purge" {
            return Err(Error::Refused(format!(
                "operation #{} was a purge ({}): what it removed is gone for good, so undo stops there",
                op.seq, op.description
            )));
        }
        let description = format!("undo #{} ({})", op.seq, op.description);
        if !op.home_changed {
            return Ok(UndoStep::MoveHead {
                op: op.seq,
                to: op.head_before,
                description,
            });
        }
        let (current, safety, mem, guard) =
            self.current_state(dry_run, &format!("before undo of #{}", op.seq))?;
        let (pm, me) = self.plan_names(op.head_before.as_ref())?;
        let current = pm.canonicalize(&current);
        let target_flat = match op.head_before {
            Some(b) => pm.canonicalize(&self.flat_of(&b)?),
            None => FlatTree::new(),
        };
        let new_root = build_tree(&target_flat, &mut crate::prolly::NullSink)?;
        let layered = Layered {
            mem: &mem,
            base: &self.objects,
        };
        let changes = diff_trees(&layered, &current, &self.objects, &target_flat, None)?;
        let impact = impact_of(&changes);
        Ok(UndoStep::Restore(Box::new(CheckoutPlan {
            home: self.home.clone(),
            target: op.head_before,
            target_flat,
            new_root,
            current_flat: current,
            changes,
            impact,
            safety,
            guard,
            undo: Some((op.seq, op.head_before)),
            description,
            kind: "undo",
            pathmap: pm,
            me,
        })))
    }

    /// Undo an operation that only moved HEAD.
    pub fn undo_move_head(
        &mut self,
        op: i64,
        to: Option<ObjectId>,
        description: &str,
    ) -> Result<()> {
        let head = self.head()?;
        let now = crate::clock::now_ms();
        let path = self.db_path();
        let wrap = |e| Error::Db {
            path: path.clone(),
            source: e,
        };
        let t = self.db.transaction()?;
        tx::set_ref(&t, "HEAD", to.as_ref()).map_err(wrap)?;
        tx::record_op(
            &t,
            now,
            "undo",
            description,
            head.as_ref(),
            to.as_ref(),
            None,
            false,
            Some(op),
        )
        .map_err(wrap)?;
        t.commit().map_err(wrap)
    }
}

pub enum UndoStep {
    MoveHead {
        op: i64,
        to: Option<ObjectId>,
        description: String,
    },
    Restore(Box<CheckoutPlan>),
}

fn stat_changed(row: &StatRow, m: &std::fs::Metadata) -> bool {
    row.size != m.len()
        || row.ino != m.ino()
        || (row.mtime_ns != 0 && row.mtime_ns != m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

/// Create the parent directories of `rel` under `home`, refusing to pass through a symlink.
fn ensure_parent(home: &Path, rel: &str) -> Result<()> {
    let parent = parent_of(rel);
    let mut cur = home.to_path_buf();
    if !home.exists() {
        std::fs::create_dir_all(home).ctx(|| format!("creating {}", home.display()))?;
    }
    if parent.is_empty() {
        return Ok(());
    }
    for part in parent.split('/') {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Refused(format!(
                    "{} is a symlink: sage does not write through symlinks (move it away and run again)",
                    cur.display()
                )))
            }
            Ok(_) => return Err(Error::Refused(format!("{} is a file where a directory is needed", cur.display()))),
            Err(_) => std::fs::create_dir(&cur).ctx(|| format!("creating {}", cur.display()))?,
        }
    }
    Ok(())
}

fn temp_path(home: &Path, rel: &str) -> std::path::PathBuf {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let parent = parent_of(rel);
    let dir = if parent.is_empty() {
        home.to_path_buf()
    } else {
        home.join(parent)
    };
    dir.join(format!(".{name}{TEMP_INFIX}{}", std::process::id()))
}

/// Write one entry's bytes to a new temp file; returns the session's line count.
fn write_temp(src: &crate::store::ObjectStore, tmp: &Path, e: &Entry) -> Result<u64> {
    if e.kind == EntryKind::Symlink {
        let target = std::ffi::OsStr::from_encoded_bytes_unchecked_safe(&e.target);
        let mut r = std::os::unix::fs::symlink(target, tmp);
        if r.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
        {
            let _ = std::fs::remove_file(tmp); // left by a killed run
            r = std::os::unix::fs::symlink(target, tmp);
        }
        r.ctx(|| format!("creating symlink {}", tmp.display()))?;
        return Ok(0);
    }
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(if e.exec { 0o777 } else { 0o666 })
            .open(tmp)
    };
    let mut f = open();
    if f.as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
    {
        let _ = std::fs::remove_file(tmp); // left by a killed run
        f = open();
    }
    let f = f.ctx(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut lines = 0;
    if e.kind == EntryKind::Session {
        let id =
            e.id.ok_or_else(|| Error::Other("session entry without id".into()))?;
        let s: Session = decode(id, &src.get(id, Kind::Session)?)?;
        lines = s.count;
    }
    src.write_entry(e, &mut w)?;
    w.flush().ctx(|| format!("writing {}", tmp.display()))?;
    Ok(lines)
}

/// Remove temp files an interrupted sage left in `dir` (this one's are all renamed by the time
/// this runs, and the store lock keeps other writers out). Left alone, they would keep a
/// directory the target lacks alive and litter the home.
fn remove_stale_temps(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let is_temp = ent
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.contains(TEMP_INFIX));
        if is_temp && ent.file_type().is_ok_and(|t| !t.is_dir()) {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

/// Helper trait: OsStr from raw bytes on Unix.
trait FromBytes {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytes for std::ffi::OsStr {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b)
    }
}

/// Apply a plan's changes to `home`. Returns the written paths with their line counts.
pub(crate) fn apply_changes(
    repo: &Repo,
    home: &Path,
    plan: &CheckoutPlan,
) -> Result<Vec<(String, u64)>> {
    // Files changed since the safety scan would lose what changed: stop before touching anything.
    for c in &plan.changes {
        if c.change == ChangeKind::Added {
            continue;
        }
        if let (Some(row), Ok(m)) = (
            plan.guard.get(&plan.local(&c.path)),
            std::fs::symlink_metadata(home.join(plan.local(&c.path))),
        ) {
            // A session a live writer only appended to since the scan is fine: an append
            // writes after its end, and a replace copies what landed past the scanned size
            // across (the same inode, grown).
            let both_sessions = plan
                .current_flat
                .get(&c.path)
                .zip(plan.target_flat.get(&c.path))
                .is_some_and(|(a, b)| a.kind == EntryKind::Session && b.kind == EntryKind::Session);
            let only_grew = both_sessions && row.ino == m.ino() && m.len() >= row.size;
            if stat_changed(row, &m) && !only_grew {
                return Err(Error::Refused(format!(
                    "{} changed while sage was preparing the checkout; nothing was changed: run the command again",
                    c.path
                )));
            }
        }
    }
    // Say where a project cut at 200 characters was matched to this home's directory by
    // prefix (Claude Code gives each machine's cut name its own hash).
    let mut told = BTreeSet::new();
    for c in &plan.changes {
        if let Some(dir) = c
            .path
            .strip_prefix("projects/")
            .and_then(|r| r.split('/').next())
        {
            if told.insert(dir.to_string()) {
                if let Some(local) = plan.pathmap.matched_by_prefix(dir, &plan.me) {
                    eprintln!(
                        "sage: projects/{dir} is this home's projects/{local} (a name Claude Code cut at 200 characters, matched by prefix)"
                    );
                }
            }
        }
    }
    // 1. Remove what the target lacks (files, symlinks, empty directories).
    let target_dirs: BTreeSet<&str> = plan
        .target_flat
        .iter()
        .flat_map(|(p, e)| {
            let mut v = Vec::new();
            if e.kind == EntryKind::Dir {
                v.push(p.as_str());
            }
            let mut q = parent_of(p);
            while !q.is_empty() {
                v.push(q);
                q = parent_of(q);
            }
            v
        })
        .collect();
    let mut removed_parents = BTreeSet::new();
    for c in &plan.changes {
        let old_kind = plan.current_flat.get(&c.path).map(|e| e.kind);
        let new_kind = plan.target_flat.get(&c.path).map(|e| e.kind);
        let kind_changes = c.change == ChangeKind::Modified
            && (old_kind == Some(EntryKind::Dir)) != (new_kind == Some(EntryKind::Dir));
        if c.change != ChangeKind::Removed && !kind_changes {
            continue;
        }
        let abs = home.join(plan.local(&c.path));
        let r = if old_kind == Some(EntryKind::Dir) {
            std::fs::remove_dir(&abs)
        } else {
            std::fs::remove_file(&abs)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", abs.display()), e)),
        }
        let mut q = parent_of(&c.path);
        while !q.is_empty() {
            removed_parents.insert(q.to_string());
            q = parent_of(q);
        }
    }
    // Empty directories the target lacks (the diff leaves directories out: they hold no bytes).
    for (p, e) in &plan.current_flat {
        if e.kind == EntryKind::Dir
            && !plan.target_flat.contains_key(p)
            && !target_dirs.contains(p.as_str())
        {
            remove_stale_temps(&home.join(plan.local(p)));
            let _ = std::fs::remove_dir(home.join(plan.local(p))); // not empty: it holds files sage does not store
            let mut q = parent_of(p);
            while !q.is_empty() {
                removed_parents.insert(q.to_string());
                q = parent_of(q);
            }
        }
    }
    // Deepest first: remove directories the target does not have, if they are now empty.
    let mut parents: Vec<String> = removed_parents
        .into_iter()
        .filter(|d| !target_dirs.contains(d.as_str()))
        .collect();
    parents.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in parents {
        remove_stale_temps(&home.join(plan.local(&d)));
        let _ = std::fs::remove_dir(home.join(plan.local(&d))); // not empty: it holds files sage does not store
    }
    // 2. Write temps (in parallel), sync once, rename.
    let writes: Vec<(&String, &Entry)> = plan
        .changes
        .iter()
        .filter(|c| c.change != ChangeKind::Removed)
        .filter_map(|c| plan.target_flat.get_key_value(&c.path))
        .collect();
    for (p, e) in &writes {
        ensure_parent(home, &plan.local(p))?;
        if e.kind == EntryKind::Dir {
            let abs = home.join(plan.local(p));
            match std::fs::symlink_metadata(&abs) {
                Ok(m) if m.is_dir() => {}
                _ => std::fs::create_dir(&abs).ctx(|| format!("creating {}", abs.display()))?,
            }
        }
    }
    // Empty directories the target has and the home lacks.
    let mut new_dirs = Vec::new();
    for (p, e) in &plan.target_flat {
        if e.kind == EntryKind::Dir && std::fs::symlink_metadata(home.join(plan.local(p))).is_err()
        {
            ensure_parent(home, &plan.local(p))?;
            let abs = home.join(plan.local(p));
            std::fs::create_dir(&abs).ctx(|| format!("creating {}", abs.display()))?;
            new_dirs.push(parent_of(p).to_string());
        }
    }
    let objects = &repo.objects;
    // Sessions that only gain lines at their end are appended to in place, whole lines at a
    // time: a live Claude Code appending to the same file loses nothing.
    let mut appends = Vec::new();
    let mut rest = Vec::new();
    for w in &writes {
        if w.1.kind == EntryKind::Dir {
            continue;
        }
        match plan.current_flat.get(w.0.as_str()) {
            Some(cur) if cur.kind == EntryKind::Session && w.1.kind == EntryKind::Session => {
                match check_append(objects, &home.join(plan.local(w.0)), cur, w.1)? {
                    Some(a) => appends.push((w, cur.size, a)),
                    None => rest.push(w),
                }
            }
            _ => rest.push(w),
        }
    }
    // Record every session write first (one transaction): a killed apply is finished from this
    // when sage next takes the lock (see intent.rs).
    let mut intents = Vec::new();
    for ((p, e), old_size, _) in &appends {
        intents.push(Intent {
            file: home.join(plan.local(p)),
            kind: IntentKind::Append,
            old_size: *old_size,
            target: e.id.expect("checked session"),
            target_size: e.size,
            temp: None,
            side: None,
        });
    }
    for (p, e) in &rest {
        if let (Some(cur), Some(id)) = (plan.current_flat.get(p.as_str()), e.id) {
            if cur.kind == EntryKind::Session && e.kind == EntryKind::Session {
                let lp = plan.local(p);
                intents.push(Intent {
                    file: home.join(&lp),
                    kind: IntentKind::Replace,
                    old_size: plan.guard.get(&lp).map(|g| g.size).unwrap_or(cur.size),
                    target: id,
                    target_size: e.size,
                    temp: Some(temp_path(home, &lp)),
                    side: Some(side_path(home, &lp)),
                });
            }
        }
    }
    crate::intent::record(repo, &intents)?;
    let mut appended = Vec::new();
    for ((p, _), old_size, (lines, count)) in &appends {
        if do_append(objects, &home.join(plan.local(p)), *old_size, lines)? {
            appended.push(((*p).clone(), *count));
        }
    }
    let files: Vec<&(&String, &Entry)> = rest;
    let done: Vec<Result<(String, u64)>> = files
        .par_iter()
        .map(|(p, e)| {
            let tmp = temp_path(home, &plan.local(p));
            // A conflict value: the home holds one version (this machine's), as after a sync.
            let materialized;
            let e = if e.kind == EntryKind::Conflict {
                materialized = crate::resolve::home_side(objects, e, &plan.me)?
                    .ok_or_else(|| Error::Other(format!("conflict {p} has no side")))?;
                &materialized
            } else {
                *e
            };
            let lines = write_temp(objects, &tmp, e)?;
            Ok(((*p).clone(), lines))
        })
        .collect();
    let mut written = Vec::with_capacity(done.len());
    let appended_paths = appended;
    for d in done {
        match d {
            Ok(x) => written.push(x),
            Err(e) => {
                for (p, _) in &files {
                    let _ = std::fs::remove_file(temp_path(home, &plan.local(p)));
                }
                return Err(e);
            }
        }
    }
    if !written.is_empty() {
        crate::fsutil::syncfs(home)?;
    }
    crate::failpoint::hit("checkout-before-rename");
    let mut dirs: BTreeSet<String> = new_dirs.into_iter().collect();
    for (i, (p, _)) in written.iter().enumerate() {
        let lp = plan.local(p);
        let abs = home.join(&lp);
        if let Ok(m) = std::fs::symlink_metadata(&abs) {
            if m.is_dir() {
                std::fs::remove_dir(&abs).ctx(|| {
                    format!(
                        "replacing directory {} (it holds files sage does not store)",
                        abs.display()
                    )
                })?;
            }
        }
        // A session being replaced may gain lines from a live writer until the rename: keep a
        // hard link to the old file, and copy across whatever landed past what was read.
        let side = match plan.current_flat.get(p.as_str()) {
            Some(cur) if cur.kind == EntryKind::Session => {
                let side = side_path(home, &lp);
                let _ = std::fs::remove_file(&side);
                std::fs::hard_link(&abs, &side).ok().map(|_| {
                    (
                        side,
                        plan.guard.get(&lp).map(|g| g.size).unwrap_or(cur.size),
                    )
                })
            }
            _ => None,
        };
        std::fs::rename(temp_path(home, &lp), &abs)
            .ctx(|| format!("renaming into {}", abs.display()))?;
        if let Some((side, expected)) = side {
            crate::failpoint::hit("replace-before-copy-across");
            copy_across(&side, expected, &abs)?;
            let _ = std::fs::remove_file(&side);
        }
        dirs.insert(parent_of(&lp).to_string());
        if i == 0 {
            crate::failpoint::hit("checkout-mid-rename");
        }
    }
    for d in &dirs {
        let dir = if d.is_empty() {
            home.to_path_buf()
        } else {
            home.join(d)
        };
        remove_stale_temps(&dir);
    }
    // The renames are durable once their directories are: one more syncfs does that for every
    // directory at once (an fsync per directory costs ~3 ms each on ext4, seconds for a home).
    if !dirs.is_empty() {
        crate::fsutil::syncfs(home)?;
    }
    written.extend(appended_paths);
    let files: Vec<std::path::PathBuf> = intents.into_iter().map(|i| i.file).collect();
    crate::intent::clear(repo, &files)?;
    Ok(written)
}

/// The name a replaced session's old file is hard-linked to until its late lines are copied
/// across: named like a temp file, so scans skip it.
fn side_path(home: &Path, rel: &str) -> std::path::PathBuf {
    let mut side = temp_path(home, rel).into_os_string();
    side.push("-side");
    std::path::PathBuf::from(side)
}

/// When `target` is `current` plus lines at the end and the file on disk is exactly `current`
/// ending in a newline, the lines to append and the target's line count; `None` when the
/// change is not a pure append (then the file is replaced).
type AppendPlan = (Vec<crate::object::DataRef>, u64);
fn check_append(
    objects: &crate::store::ObjectStore,
    abs: &Path,
    current: &Entry,
    target: &Entry,
) -> Result<Option<AppendPlan>> {
    let (Some(cid), Some(tid)) = (current.id, target.id) else {
        return Ok(None);
    };
    let cs: Session = decode(cid, &objects.read(cid, Kind::Session)?)?;
    let ts: Session = decode(tid, &objects.read(tid, Kind::Session)?)?;
    if cs.tail.is_some() || cs.count == 0 {
        return Ok(None);
    }
    let cl = crate::prolly::read_lines(objects, cs.lines)?;
    let tl = crate::prolly::read_lines(objects, ts.lines)?;
    if tl.len() < cl.len() || tl[..cl.len()] != cl[..] {
        return Ok(None);
    }
    if !ends_with_newline_at(abs, cs.size)? {
        return Ok(None);
    }
    let lines = tl[cl.len()..]
        .iter()
        .chain(ts.tail.iter())
        .copied()
        .collect();
    Ok(Some((lines, ts.count)))
}

/// Is `abs` a regular file of exactly `size` bytes whose last byte is a newline?
fn ends_with_newline_at(abs: &Path, size: u64) -> Result<bool> {
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(abs)
    else {
        return Ok(false);
    };
    let m = f.metadata().ctx(|| format!("reading {}", abs.display()))?;
    if !m.is_file() || m.len() != size {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    use std::os::unix::fs::FileExt;
    Ok(size == 0
        || f.read_at(&mut last, size - 1)
            .ctx(|| format!("reading {}", abs.display()))?
            == 1
            && last[0] == b'\n')
}

/// Append `lines` to `abs`, each in one `write()` with O_APPEND, so lines a live writer appends
/// meanwhile stay whole. A file that no longer ends in a newline (a writer is mid-line) is left
/// alone: `false`, and the next sync brings the lines (a sync never removes them).
fn do_append(
    objects: &crate::store::ObjectStore,
    abs: &Path,
    old_size: u64,
    lines: &[crate::object::DataRef],
) -> Result<bool> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(abs)
    {
        Ok(f) => f,
        Err(_) => return Ok(false),
    };
    let m = f.metadata().ctx(|| format!("reading {}", abs.display()))?;
    let mut last = [0u8; 1];
    use std::os::unix::fs::FileExt;
    if m.len() < old_size
        || m.len() > 0
            && (f
                .read_at(&mut last, m.len() - 1)
                .ctx(|| format!("reading {}", abs.display()))?
                != 1
                || last[0] != b'\n')
    {
        return Ok(false);
    }
    let mut w = &f;
    for l in lines {
        let bytes = objects.data_bytes(*l, Kind::Line)?;
        if crate::failpoint::reached("append-half-line") {
            // Crash tests: die with half a line written, as a SIGKILL mid-write would.
            let _ = w.write_all(&bytes[..bytes.len() / 2]);
            crate::failpoint::die("append-half-line");
        }
        w.write_all(&bytes)
            .ctx(|| format!("appending to {}", abs.display()))?;
        crate::failpoint::hit("append-mid-session");
    }
    f.sync_data().ctx(|| format!("syncing {}", abs.display()))?;
    Ok(true)
}

/// Append to `dest` the bytes `side` (the replaced file) gained past `expected`: lines a live
/// writer appended between sage's read and its rename.
fn copy_across(side: &Path, expected: u64, dest: &Path) -> Result<()> {
    let Ok(m) = std::fs::metadata(side) else {
        return Ok(());
    };
    if m.len() <= expected {
        return Ok(());
    }
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(side).ctx(|| format!("reading {}", side.display()))?;
    f.seek(SeekFrom::Start(expected))
        .ctx(|| format!("reading {}", side.display()))?;
    let mut extra = Vec::new();
    f.read_to_end(&mut extra)
        .ctx(|| format!("reading {}", side.display()))?;
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest)
        .ctx(|| format!("opening {}", dest.display()))?;
    out.write_all(&extra)
        .ctx(|| format!("appending to {}", dest.display()))?;
    out.sync_data()
        .ctx(|| format!("syncing {}", dest.display()))
}
