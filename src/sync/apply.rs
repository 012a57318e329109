//! Merging another head into this store and applying the result to the home: the receiving
//! side of every sync (this machine on pull, the remote on push).

use super::graph::Graph;
use super::overlay::{self, OverlayRow};
use crate::checkout::{apply_changes, CheckoutPlan};
use crate::db::tx;
use crate::diff::{diff_trees, ChangeKind};
use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::merge::{
    is_conversation_data, merge_trees, MergeOptions, MergeReport, Side, MERGE_VERSION,
};
use crate::object::{Entry, EntryKind};
use crate::pathmap::PathMap;
use crate::repo::Repo;
use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};
use crate::store::Inserter;
use crate::tree::{build_tree, flatten, lookup_path, FlatTree};
use std::cmp::Ordering;
use std::collections::BTreeMap;

#[derive(Debug, Default, serde::Serialize)]
pub struct MergeOutcome {
    #[serde(serialize_with = "hex_id")]
    pub before: Option<ObjectId>,
    #[serde(serialize_with = "hex_id")]
    pub head: Option<ObjectId>,
    /// A merge snapshot was recorded (else: nothing to do, or a fast-forward).
    pub merge_snapshot: bool,
    pub fast_forward: bool,
    pub report: MergeReport,
    pub held_back: Vec<String>,
    pub deferred: Vec<String>,
    pub written: usize,
    pub sessions_extended: usize,
    /// Project directories matched by prefix (names Claude Code cut at 200 characters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched_by_prefix: Vec<String>,
    /// `--dry-run`: what the home would gain, path by path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanItem>,
}

/// One path a merge would write into a home.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanItem {
    pub path: String,
    /// "new" or "extended" (a session that gains lines) or "replaced" (any other file).
    pub change: &'static str,
    pub session: bool,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// What writing `target` over `home` would do, entry by entry (no object is read).
pub fn plan_of(home: &FlatTree, target: &FlatTree) -> Vec<PlanItem> {
    let mut out = Vec::new();
    for (p, t) in target {
        if t.kind == EntryKind::Dir {
            continue;
        }
        let h = home.get(p);
        if h.is_some_and(|h| h.same_content(t)) {
            continue;
        }
        let session = t.kind == EntryKind::Session;
        out.push(PlanItem {
            path: p.clone(),
            change: match h {
                None => "new",
                Some(h) if session && h.kind == EntryKind::Session && t.size >= h.size => {
                    "extended"
                }
                Some(_) => "replaced",
            },
            session,
            bytes_before: h.map(|h| h.size).unwrap_or(0),
            bytes_after: t.size,
        });
    }
    out
}

/// Snapshot ids in `--json` reports as hex (as everywhere else), not as byte arrays.
fn hex_id<S: serde::Serializer>(
    id: &Option<ObjectId>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_some(&id.to_hex()),
        None => s.serialize_none(),
    }
}

impl MergeOutcome {
    /// Paths as this home names them (the merge works on canonical names).
    fn localize(&mut self, pm: &PathMap, me: &str) {
        let r = &mut self.report;
        for v in [
            &mut r.sessions_merged,
            &mut r.conflicts,
            &mut r.kept_vanished,
            &mut r.state_resolved,
            &mut self.held_back,
            &mut self.deferred,
        ] {
            for p in v.iter_mut() {
                *p = pm.local_path(p, me);
            }
        }
    }

    pub fn summary(&self) -> String {
        let mut s = match (self.merge_snapshot, self.fast_forward) {
            (true, _) => format!(
                "merged into {}",
                self.head.map(|h| h.short()).unwrap_or_default()
            ),
            (_, true) => format!(
                "fast-forwarded to {}",
                self.head.map(|h| h.short()).unwrap_or_default()
            ),
            _ => "already up to date".to_string(),
        };
        s.push_str(&format!(
            "; {} sessions merged, {} files written, {} conflicts",
            self.report.sessions_merged.len(),
            self.written,
            self.report.conflicts.len()
        ));
        if !self.held_back.is_empty() {
            s.push_str(&format!(
                ", {} config paths held back",
                self.held_back.len()
            ));
        }
        if !self.deferred.is_empty() {
            s.push_str(&format!(
                ", {} live sessions deferred to the next sync",
                self.deferred.len()
            ));
        }
        for m in &self.matched_by_prefix {
            s.push_str(&format!("; {m}"));
        }
        s
    }
}

/// Options of one merge into a home.
pub struct MergeInto<'a> {
    pub theirs: ObjectId,
    pub their_store: &'a str,
    /// Apply configuration (not just conversation data) from the other side.
    pub trust_config: bool,
    pub dry_run: bool,
    /// Make the home equal to `theirs` (push --force): destructive, confirmed by the caller.
    pub force: bool,
    /// Selective sync: only these canonical paths (each with what is under it) take the
    /// merge's result; the snapshot recorded has HEAD as its only parent.
    pub select: Option<&'a [String]>,
}

/// A snapshot's tree with canonical project names under `pm` (the merge's joined map).
/// Read as mergers see it: purged lines and files left out (store-format.md §14.5).
fn flat(repo: &Repo, pm: &PathMap, id: ObjectId) -> Result<FlatTree> {
    crate::purge::effective(&repo.objects, flat_raw(repo, pm, id)?)
}

/// Exactly as recorded (the home's own state, for what an apply must rewrite).
fn flat_raw(repo: &Repo, pm: &PathMap, id: ObjectId) -> Result<FlatTree> {
    Ok(pm.canonicalize(&flatten(&repo.objects, repo.snapshot(&id)?.snap.root)?))
}

fn pathmap_of(repo: &Repo, id: Option<ObjectId>) -> Result<PathMap> {
    Ok(match id {
        Some(id) => PathMap::from_raw(repo.snapshot(&id)?.snap.pathmap.as_ref()),
        None => PathMap::default(),
    })
}

/// The time of the earliest snapshot among `head`'s ancestors whose tree holds `e` at `path`.
fn first_seen(repo: &Repo, g: &Graph, head: ObjectId, path: &str, e: &Entry) -> i64 {
    let mut anc: Vec<ObjectId> = g.ancestors(head).into_iter().collect();
    anc.sort_by_key(|a| (g.time.get(a).copied().unwrap_or(0), *a));
    for a in anc {
        let Ok(row) = repo.snapshot(&a) else { continue };
        if let Ok(Some(x)) = lookup_path(&repo.objects, row.snap.root, path) {
            if x.same_content(e) {
                return row.snap.time;
            }
        }
    }
    i64::MAX
}

/// The merge base tree: one base, none (homes that never synced), or several (criss-cross:
/// merged first, recursively, as git's recursive strategy does).
fn base_tree(
    repo: &Repo,
    pm: &PathMap,
    g: &Graph,
    ins: &mut Inserter,
    bases: &[ObjectId],
    depth: u32,
) -> Result<Option<FlatTree>> {
    match bases {
        [] => Ok(None),
        [b] => Ok(Some(flat(repo, pm, *b)?)),
        [first, rest @ ..] => {
            let mut acc = flat(repo, pm, *first)?;
            let mut acc_id = *first;
            for b in rest {
                let inner = if depth < 4 {
                    g.merge_bases(acc_id, *b)
                } else {
                    vec![]
                };
                let inner_base = base_tree(repo, pm, g, ins, &inner, depth + 1)?;
                let bt = flat(repo, pm, *b)?;
                let newer = |_: &str, x: &Entry, y: &Entry| x.id.cmp(&y.id);
                let (m, _) = merge_trees(
                    &repo.objects,
                    ins,
                    &Side {
                        tree: &acc,
                        store_id: "base-a",
                    },
                    &Side {
                        tree: &bt,
                        store_id: "base-b",
                    },
                    &MergeOptions {
                        base: inner_base.as_ref(),
                        newer: &newer,
                    },
                )?;
                acc = m;
                acc_id = (*b).min(acc_id);
            }
            Ok(Some(acc))
        }
    }
}

impl Repo {
    /// Merge `opts.theirs` (whose objects and snapshot row are in this store) into HEAD and
    /// apply the result to the home. The caller holds the lock and has committed the home.
    pub fn merge_into_home(&mut self, opts: &MergeInto) -> Result<MergeOutcome> {
        let ours = self.head()?;
        let mut out = MergeOutcome {
            before: ours,
            head: ours,
            ..Default::default()
        };
        // Nothing new, unless this home still holds back what it may now apply (config from a
        // remote trusted since, a session deferred while it was being written).
        if ours == Some(opts.theirs)
            && overlay::load(&self.db)?.values().all(|r| {
                !(r.reason.starts_with("deferred")
                    || (opts.trust_config && r.reason.starts_with("held back")))
            })
        {
            return Ok(out);
        }
        let g = Graph::load(&self.db)?;
        if !g.contains(&opts.theirs) {
            return Err(Error::Other(format!("snapshot {} is not in this store: the transfer did not complete; run the sync again", opts.theirs)));
        }
        let store_id = self.store_id()?;
        // Both sides' project names made canonical under the union of their maps: a pure
        // function of the two snapshots, so both peers compute the same merge.
        let theirs_pm = pathmap_of(self, Some(opts.theirs))?;
        let ours_pm = pathmap_of(self, ours)?;
        let mut pm = ours_pm.union(&theirs_pm);
        if opts.dry_run {
            // A real sync first records the rules this machine added (a map change); a dry run
            // does not commit, so it plans with them directly.
            pm = pm.union(&self.pathmap()?);
        }
        // One project cut at 200 characters differently on two machines folds into one name
        // (a function of both heads' names, so both peers fold alike).
        let raw_of = |id: Option<ObjectId>| -> Result<FlatTree> {
            match id {
                Some(i) => flatten(&self.objects, self.snapshot(&i)?.snap.root),
                None => Ok(FlatTree::new()),
            }
        };
        let pm = pm
            .with_folds_for(&[&raw_of(ours)?, &raw_of(Some(opts.theirs))?])
            .with_local_dirs(&self.home);
        let theirs_flat = flat(self, &pm, opts.theirs)?;
        // HEAD is this home as last scanned: raw, it is what the home holds; effective, it is
        // what the merge takes (a session still holding a purged line gets rewritten).
        let ours_raw = match ours {
            Some(o) => flat_raw(self, &pm, o)?,
            None => FlatTree::new(),
        };
        let ours_flat = crate::purge::effective(&self.objects, ours_raw.clone())?;
        let old_overlay: BTreeMap<String, OverlayRow> = overlay::load(&self.db)?
            .into_values()
            .map(|mut r| {
                r.path = pm.canonical_path(&r.path);
                (r.path.clone(), r)
            })
            .collect();
        let home_now = overlay::home_view(&ours_raw, &old_overlay);
        let mut ins = Inserter::new(&self.objects);
        let (merged, new_head, merge_snap) = if opts.force {
            // The other side's tree, recorded on top of our history (nothing is rewritten).
            (theirs_flat.clone(), None, true)
        } else {
            let bases = match ours {
                Some(o) => g.merge_bases(o, opts.theirs),
                None => vec![],
            };
            let base = base_tree(self, &pm, &g, &mut ins, &bases, 0)?;
            let newer = |path: &str, x: &Entry, y: &Entry| -> Ordering {
                let tx = ours
                    .map(|o| {
                        first_seen(self, &g, o, path, x).min(first_seen(
                            self,
                            &g,
                            opts.theirs,
                            path,
                            x,
                        ))
                    })
                    .unwrap_or(i64::MAX);
                let ty = ours
                    .map(|o| {
                        first_seen(self, &g, o, path, y).min(first_seen(
                            self,
                            &g,
                            opts.theirs,
                            path,
                            y,
                        ))
                    })
                    .unwrap_or(i64::MAX);
                // Earlier first-seen is older; a version never seen counts as oldest.
                let tx = if tx == i64::MAX { i64::MIN } else { tx };
                let ty = if ty == i64::MAX { i64::MIN } else { ty };
                tx.cmp(&ty)
            };
            let (ida, idb) = (ours.unwrap_or_default(), opts.theirs);
            // Sides in id order, so that both peers compute the same thing.
            let (sa, sb) = if ida <= idb {
                (
                    Side {
                        tree: &ours_flat,
                        store_id: &store_id,
                    },
                    Side {
                        tree: &theirs_flat,
                        store_id: opts.their_store,
                    },
                )
            } else {
                (
                    Side {
                        tree: &theirs_flat,
                        store_id: opts.their_store,
                    },
                    Side {
                        tree: &ours_flat,
                        store_id: &store_id,
                    },
                )
            };
            let (m, report) = merge_trees(
                &self.objects,
                &mut ins,
                &sa,
                &sb,
                &MergeOptions {
                    // No common ancestor: sessions take their common prefix as the base.
                    base: base.as_ref(),
                    newer: &newer,
                },
            )?;
            out.report = report;
            let root = build_tree(&m, &mut ins)?;
            let theirs_root = self.snapshot(&opts.theirs)?.snap.root;
            let ours_root = ours
                .map(|o| self.snapshot(&o))
                .transpose()?
                .map(|r| r.snap.root);
            // A ref moves to an existing snapshot only when its tree and its map are the result.
            if (ours.is_none() && pm == theirs_pm)
                || (g.is_ancestor(ours.unwrap_or_default(), opts.theirs)
                    && root == theirs_root
                    && pm == theirs_pm)
            {
                out.fast_forward = true;
                (m, Some(opts.theirs), false)
            } else if ours.is_some_and(|o| g.is_ancestor(opts.theirs, o))
                && Some(root) == ours_root
                && pm == ours_pm
            {
                (m, ours, false)
            } else {
                (m, None, true)
            }
        };
        // Selective: the rest stays as it is, and the snapshot has one parent, so the next
        // full sync still sees the other side's head as unmerged.
        let selective = opts.select.filter(|_| !opts.force);
        let (merged, new_head, merge_snap) = match selective {
            Some(sel) => {
                let under = |p: &str| {
                    sel.iter().any(|s| {
                        p == s
                            || (p.len() > s.len()
                                && p.starts_with(s.as_str())
                                && p.as_bytes()[s.len()] == b'/')
                    })
                };
                let mut r: FlatTree = ours_flat
                    .iter()
                    .filter(|(p, _)| !under(p))
                    .map(|(p, e)| (p.clone(), e.clone()))
                    .collect();
                for (p, e) in &merged {
                    if under(p) {
                        r.insert(p.clone(), e.clone());
                    }
                }
                let same = ours.is_some()
                    && build_tree(&r, &mut crate::prolly::NullSink)?
                        == build_tree(&ours_flat, &mut crate::prolly::NullSink)?;
                out.fast_forward = false;
                if same {
                    (r, ours, false)
                } else {
                    (r, None, true)
                }
            }
            None => (merged, new_head, merge_snap),
        };
        let mut snap_obj = None;
        if merge_snap {
            let root = build_tree(&merged, &mut ins)?;
            let mut parents: Vec<ObjectId> = ours.into_iter().chain([opts.theirs]).collect();
            parents.sort();
            let time = parents
                .iter()
                .filter_map(|p| g.time.get(p))
                .copied()
                .max()
                .unwrap_or(0);
            let snap = if let Some(sel) = selective {
                Snapshot {
                    host: crate::clock::host(),
                    kind: "sync".into(),
                    merge: None,
                    message: format!(
                        "selective merge of {} from store {}: {}",
                        opts.theirs.short(),
                        opts.their_store,
                        sel.join(" ")
                    ),
                    parents: ours.into_iter().collect(),
                    pathmap: pm.to_raw(),
                    root,
                    time: crate::clock::now_ms(),
                    v: SNAPSHOT_VERSION,
                }
            } else if opts.force {
                Snapshot {
                    host: crate::clock::host(),
                    kind: "checkout".into(),
                    merge: None,
                    message: format!("push --force of {}", opts.theirs.short()),
                    parents: ours.into_iter().collect(),
                    pathmap: pm.to_raw(),
                    root,
                    time: crate::clock::now_ms(),
                    v: SNAPSHOT_VERSION,
                }
            } else {
                Snapshot {
                    host: String::new(),
                    kind: "merge".into(),
                    merge: Some(MERGE_VERSION),
                    message: "merge".into(),
                    parents,
                    pathmap: pm.to_raw(),
                    root,
                    time,
                    v: SNAPSHOT_VERSION,
                }
            };
            let obj = snap.to_object();
            ins.insert(Kind::Snapshot, obj.id, &obj.bytes)?;
            out.head = Some(obj.id);
            out.merge_snapshot = true;
            snap_obj = Some((snap, obj));
        } else {
            out.head = new_head;
        }
        let now = crate::clock::now_ms();
        // What the home gets: the merged tree, except where it keeps its own version.
        let mut target = merged.clone();
        let mut new_overlay: BTreeMap<String, OverlayRow> = BTreeMap::new();
        let keep_home = |path: &str,
                         reason: &str,
                         target: &mut FlatTree,
                         ov: &mut BTreeMap<String, OverlayRow>| {
            let mine = home_now.get(path).cloned();
            match &mine {
                Some(e) => {
                    target.insert(path.to_string(), e.clone());
                }
                None => {
                    target.remove(path);
                }
            }
            ov.insert(
                path.to_string(),
                OverlayRow {
                    path: path.to_string(),
                    entry: mine,
                    reason: reason.to_string(),
                    since: now,
                },
            );
        };
        // Paths this home's rules exclude (its .sageignore, secrets, caches) are never written,
        // whatever a peer's tree holds.
        let rules = crate::rules::Rules::load(&self.home)?;
        for (p, e) in &merged {
            let ignored = p.split('/').scan(String::new(), |acc, part| {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(part);
                Some(acc.clone())
            });
            let ignored = ignored.enumerate().any(|(i, prefix)| {
                let is_dir = i + 1 < p.split('/').count() || e.kind == EntryKind::Dir;
                rules.excluded(&prefix, is_dir).is_some()
            });
            if ignored {
                keep_home(p, "ignored on this machine", &mut target, &mut new_overlay);
            } else if e.kind == EntryKind::Conflict {
                keep_home(p, "conflict", &mut target, &mut new_overlay);
            } else if !opts.trust_config
                && !opts.force
                && !is_conversation_data(p)
                && home_now.get(p).is_none_or(|h| !h.same_content(e))
            {
                keep_home(
                    p,
                    &format!(
                        "held back: configuration from untrusted store {}",
                        opts.their_store
                    ),
                    &mut target,
                    &mut new_overlay,
                );
                out.held_back.push(p.clone());
            }
        }
        // Earlier overlay rows still in force (the merged tree still differs there).
        for (p, r) in &old_overlay {
            if new_overlay.contains_key(p) {
                continue;
            }
            if merged.get(p).is_some_and(|e| e.kind == EntryKind::Conflict) {
                new_overlay.insert(p.clone(), r.clone());
            } else if r.reason.starts_with("held back")
                && !opts.force
                && !(opts.trust_config && r.reason.ends_with(opts.their_store))
                && merged
                    .get(p)
                    .is_some_and(|e| home_now.get(p).is_none_or(|h| !h.same_content(e)))
            {
                // Configuration held back from an untrusted remote stays held back whoever syncs
                // next (a trusted pull from another machine must not smuggle it in), until that
                // remote is trusted.
                match &r.entry {
                    Some(e) => {
                        target.insert(p.clone(), e.clone());
                    }
                    None => {
                        target.remove(p);
                    }
                }
                new_overlay.insert(p.clone(), r.clone());
                out.held_back.push(p.clone());
            }
        }
        if opts.dry_run {
            // The plan, from entries alone (the merged objects were never written).
            out.plan = plan_of(&home_now, &target);
            for i in &mut out.plan {
                i.path = pm.local_path(&i.path, &store_id);
            }
            out.localize(&pm, &store_id);
            return Ok(out);
        }
        let pack = ins.finish()?;
        if let Some((name, entries)) = &pack {
            self.record_pack(name, entries.len() as u64)?;
        }
        // A session being written right now that would need a rewrite (not a pure append)
        // is deferred: the merge snapshot holds the merged content, the home catches up on
        // the next sync (a sync never removes lines, so the lag is never taken for a deletion).
        let live = crate::live::LiveSessions::read(&self.home, now);
        let candidates: Vec<String> = target
            .iter()
            .filter(|(p, e)| {
                e.kind == EntryKind::Session
                    && home_now
                        .get(*p)
                        .is_some_and(|h| h.kind == EntryKind::Session && !h.same_content(e))
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in candidates {
            let (Some(h), Some(t)) = (home_now.get(&p), target.get(&p)) else {
                continue;
            };
            if is_pure_append(self, h, t)? {
                continue;
            }
            let mtime = std::fs::symlink_metadata(self.home.join(pm.local_path(&p, &store_id)))
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|m| m.as_millis() as i64);
            let recent = live.is_live(&pm.local_path(&p, &store_id), mtime);
            if recent {
                keep_home(
                    &p,
                    "deferred: the session was being written",
                    &mut target,
                    &mut new_overlay,
                );
                out.deferred.push(p);
            }
        }
        let changes = diff_trees(&self.objects, &home_now, &self.objects, &target, None)?;
        // A sync never drops data from a home unless forced (purged lines aside: dropping them
        // is the point).
        if !opts.force {
            let eff_changes;
            let checked = if self.objects.purged.is_empty() {
                &changes
            } else {
                let home_eff = crate::purge::effective(&self.objects, home_now.clone())?;
                eff_changes = diff_trees(&self.objects, &home_eff, &self.objects, &target, None)?;
                &eff_changes
            };
            if let Some(c) = checked
                .iter()
                .find(|c| c.change == ChangeKind::Removed || (c.is_session && c.lost_count > 0))
            {
                return Err(Error::Other(format!(
                    "internal error: the merge would drop data from {}; nothing was changed",
                    c.path
                )));
            }
        }
        out.sessions_extended = changes
            .iter()
            .filter(|c| c.is_session && c.change == ChangeKind::Modified)
            .count();
        let guard = self.db.stat_rows()?;
        let plan = CheckoutPlan {
            home: self.home.clone(),
            target: out.head,
            target_flat: target.clone(),
            new_root: ObjectId::default(),
            current_flat: home_now.clone(),
            impact: Default::default(),
            changes,
            safety: ours,
            guard,
            undo: None,
            description: format!("sync with {}", opts.their_store),
            kind: "sync",
            pathmap: pm.clone(),
            me: store_id.clone(),
        };
        let mut dirs = std::collections::BTreeSet::new();
        for c in &plan.changes {
            if let Some(d) = c
                .path
                .strip_prefix("projects/")
                .and_then(|r| r.split('/').next())
            {
                if dirs.insert(d.to_string()) {
                    if let Some(local) = plan.pathmap.matched_by_prefix(d, &plan.me) {
                        out.matched_by_prefix.push(format!(
                            "projects/{d} matched by prefix to this home's projects/{local} (Claude Code cut both names at 200 characters)"
                        ));
                    }
                }
            }
        }
        let written = if self.own_home {
            self.persist_mem()?;
            apply_changes(self, &self.home.clone(), &plan)?
        } else {
            vec![]
        };
        out.written = written.len();
        crate::failpoint::hit("merge-after-apply");
        let mut stat_rows = Vec::new();
        for (path, lines) in &written {
            let lp = plan.local(path);
            if let (Ok(m), Some(e)) = (
                std::fs::symlink_metadata(self.home.join(&lp)),
                target.get(path),
            ) {
                stat_rows.push((lp, crate::scan::stat_row(&m, e, *lines, now)));
            }
        }
        let stats = match &snap_obj {
            Some(_) => crate::tree::stats_of(&self.objects, &merged)?,
            None => Default::default(),
        };
        let path = self.db_path();
        let wrap = |e| Error::Db {
            path: path.clone(),
            source: e,
        };
        let t = self.db.transaction()?;
        if let Some((snap, obj)) = &snap_obj {
            tx::insert_snapshot(&t, &obj.id, &obj.bytes, snap, &stats).map_err(wrap)?;
        }
        tx::set_ref(&t, "HEAD", out.head.as_ref()).map_err(wrap)?;
        for (p, row) in &stat_rows {
            tx::put_stat(&t, p, row).map_err(wrap)?;
        }
        overlay::replace_all(&t, &new_overlay).map_err(wrap)?;
        let kind = if opts.force { "force" } else { "sync" };
        tx::record_op(
            &t,
            now,
            kind,
            &format!(
                "{kind}: merge {} from store {}",
                opts.theirs.short(),
                opts.their_store
            ),
            ours.as_ref(),
            out.head.as_ref(),
            ours.as_ref(),
            out.written > 0,
            None,
        )
        .map_err(wrap)?;
        t.commit().map_err(wrap)?;
        out.localize(&pm, &store_id);
        Ok(out)
    }
}

/// Is `t` the session `h` plus lines at its end (and `h` has no unterminated tail)?
fn is_pure_append(repo: &Repo, h: &Entry, t: &Entry) -> Result<bool> {
    let hl = crate::diff::session_lines(&repo.objects, h)?;
    let tl = crate::diff::session_lines(&repo.objects, t)?;
    let (Some(hid), Some(_)) = (h.id, t.id) else {
        return Ok(false);
    };
    let hs: crate::object::Session =
        crate::object::decode(hid, &repo.objects.read(hid, Kind::Session)?)?;
    Ok(hs.tail.is_none() && tl.len() >= hl.len() && tl[..hl.len()] == hl[..])
}
