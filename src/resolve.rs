//! Conflicts and their resolution. A sync records a conflict value (both versions, keyed by
//! store id) where user content changed on both machines, and holds back code-running
//! configuration from untrusted remotes; in both cases the home keeps its own version (an
//! overlay row). `sage conflicts` lists them; `sage resolve` settles them: a snapshot on top of
//! HEAD (so the next sync carries the resolution to the other machine) and an op-log entry (so
//! `sage undo` reverts it; the op log is the conflict history).

use crate::checkout::CheckoutPlan;
use crate::db::tx;
use crate::diff::diff_trees;
use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Conflict, Entry, EntryKind};
use crate::repo::{CommitOptions, Repo};
use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};
use crate::sync::overlay::{self, OverlayRow};
use crate::tree::{build_tree, parent_of, FlatTree};
use std::collections::BTreeMap;

/// One version of a conflicted path.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SideInfo {
    /// The store that holds this version; `this machine` for ours.
    pub store: String,
    pub ours: bool,
    /// `None`: this side deleted the path.
    pub size: Option<u64>,
    #[serde(skip)]
    pub entry: Option<Entry>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ConflictInfo {
    /// The path as this home names it.
    pub path: String,
    #[serde(skip)]
    pub canonical: String,
    /// `conflict` (changed on both machines) or `held-back` (configuration from an untrusted
    /// remote).
    pub kind: &'static str,
    pub sides: Vec<SideInfo>,
    /// When this home started to differ (ms).
    pub since: Option<i64>,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Ours,
    Theirs,
    Both,
}

/// The version of a conflict value a home holds: this store's side, else the first.
pub fn home_side(
    objects: &crate::store::ObjectStore,
    e: &Entry,
    me: &str,
) -> Result<Option<Entry>> {
    let id =
        e.id.ok_or_else(|| Error::Other(format!("conflict {} without an id", e.name)))?;
    let c: Conflict = decode(id, &objects.read(id, Kind::Conflict)?)?;
    let side = c
        .sides
        .iter()
        .find(|(s, _)| s == me)
        .or_else(|| c.sides.first())
        .map(|(_, e)| {
            let mut e = e.clone();
            e.name = crate::tree::base_name(&e.name).to_string();
            e
        });
    Ok(side)
}

/// Every conflict value in HEAD and every path held back from an untrusted remote.
pub fn list(repo: &Repo) -> Result<Vec<ConflictInfo>> {
    let Some(head) = repo.head()? else {
        return Ok(vec![]);
    };
    let me = repo.store_id()?;
    let pm = repo.pathmap()?;
    let flat = repo.flat_of(&head)?;
    let flat = pm.canonicalize(&flat);
    let ov = overlay::load(&repo.db)?;
    let mut out = Vec::new();
    for (p, e) in &flat {
        if e.kind != EntryKind::Conflict {
            continue;
        }
        let id =
            e.id.ok_or_else(|| Error::Other(format!("conflict {p} without an id")))?;
        let c: Conflict = decode(id, &repo.objects.read(id, Kind::Conflict)?)?;
        let mut sides: Vec<SideInfo> = c
            .sides
            .iter()
            .map(|(s, e)| SideInfo {
                store: s.clone(),
                ours: *s == me,
                size: Some(e.size),
                entry: Some(e.clone()),
            })
            .collect();
        sides.sort_by_key(|s| !s.ours);
        let row = ov.get(p);
        out.push(ConflictInfo {
            path: pm.local_path(p, &me),
            canonical: p.clone(),
            kind: "conflict",
            sides,
            since: row.map(|r| r.since),
            reason: "changed on both machines".into(),
        });
    }
    for (p, r) in &ov {
        if !r.reason.starts_with("held back") {
            continue;
        }
        let theirs = flat.get(p).cloned();
        let from = r.reason.rsplit(' ').next().unwrap_or_default().to_string();
        out.push(ConflictInfo {
            path: pm.local_path(p, &me),
            canonical: p.clone(),
            kind: "held-back",
            sides: vec![
                SideInfo {
                    store: me.clone(),
                    ours: true,
                    size: r.entry.as_ref().map(|e| e.size),
                    entry: r.entry.clone(),
                },
                SideInfo {
                    store: from,
                    ours: false,
                    size: theirs.as_ref().map(|e| e.size),
                    entry: theirs,
                },
            ],
            since: Some(r.since),
            reason: r.reason.clone(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The name `--both` keeps the other side's version under: `settings.json` ->
/// `settings.from-1a2b3c4d.json` (the other store's id, so each machine names it the same).
pub fn both_name(path: &str, store: &str) -> String {
    let dir = parent_of(path);
    let name = crate::tree::base_name(path);
    let tag = format!("from-{}", &store[..store.len().min(8)]);
    let new = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{tag}.{ext}"),
        _ => format!("{name}.{tag}"),
    };
    if dir.is_empty() {
        new
    } else {
        format!("{dir}/{new}")
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ResolveOutcome {
    pub resolved: Vec<(String, Choice)>,
    pub written: usize,
    pub snapshot: Option<String>,
}

/// Resolve `which` (conflicts as listed) with `choice`. The caller holds the lock.
pub fn resolve(repo: &mut Repo, which: &[ConflictInfo], choice: Choice) -> Result<ResolveOutcome> {
    if which.is_empty() {
        return Ok(ResolveOutcome::default());
    }
    // A safety snapshot of the home first (the resolution may write to it).
    repo.commit_inner(
        &CommitOptions {
            kind: "auto",
            message: "before resolve",
            progress: &|_, _| {},
        },
        false,
    )?;
    let head = repo
        .head()?
        .ok_or_else(|| Error::Other("nothing to resolve: no snapshot".into()))?;
    let me = repo.store_id()?;
    let pm = repo.pathmap()?;
    let mut tree = pm.canonicalize(&repo.flat_of(&head)?);
    let mut ov = overlay::load(&repo.db)?;
    // The home as it is and as it will be, for the paths this touches only.
    let mut home_now = FlatTree::new();
    let mut home_after = FlatTree::new();
    let mut out = ResolveOutcome::default();
    for c in which {
        let ours = c
            .sides
            .iter()
            .find(|s| s.ours)
            .and_then(|s| s.entry.clone());
        let others: Vec<&SideInfo> = c.sides.iter().filter(|s| !s.ours).collect();
        let theirs = match others.as_slice() {
            [one] => one,
            [] => {
                return Err(Error::Usage(format!(
                    "{}: no other version to choose (resolve with --ours)",
                    c.path
                )))
            }
            _ if choice == Choice::Ours => others[0],
            _ => {
                return Err(Error::Usage(format!(
                    "{} has versions from {} machines: resolve with --ours, after editing the file as you want it",
                    c.path,
                    others.len()
                )))
            }
        };
        let p = &c.canonical;
        // What the home holds now: the overlay's entry (this machine's version).
        let held = ov.get(p).and_then(|r| r.entry.clone()).or(ours.clone());
        if let Some(h) = &held {
            home_now.insert(p.clone(), h.clone());
        }
        let set = |t: &mut FlatTree, path: &str, e: &Option<Entry>| match e {
            Some(e) => {
                let mut e = e.clone();
                e.name = crate::tree::base_name(path).to_string();
                t.insert(path.to_string(), e);
            }
            None => {
                t.remove(path);
            }
        };
        match choice {
            Choice::Ours => {
                set(&mut tree, p, &held);
                set(&mut home_after, p, &held);
            }
            Choice::Theirs => {
                set(&mut tree, p, &theirs.entry);
                set(&mut home_after, p, &theirs.entry);
            }
            Choice::Both => {
                let side = both_name(p, &theirs.store);
                if tree.contains_key(&side) {
                    return Err(Error::Usage(format!(
                        "{} exists already: resolve {} with --ours or --theirs",
                        pm.local_path(&side, &me),
                        c.path
                    )));
                }
                set(&mut tree, p, &held);
                set(&mut home_after, p, &held);
                set(&mut tree, &side, &theirs.entry);
                set(&mut home_after, &side, &theirs.entry);
            }
        }
        ov.remove(p);
        out.resolved.push((c.path.clone(), choice));
    }
    // Write what the home must change.
    let changes = diff_trees(&repo.objects, &home_now, &repo.objects, &home_after, None)?;
    let guard = repo.db.stat_rows()?;
    let plan = CheckoutPlan {
        home: repo.home.clone(),
        target: None,
        target_flat: home_after.clone(),
        new_root: ObjectId::default(),
        current_flat: home_now.clone(),
        impact: Default::default(),
        changes,
        safety: Some(head),
        guard,
        undo: None,
        description: "resolve".into(),
        kind: "resolve",
        pathmap: pm.clone().with_local_dirs(&repo.home),
        me: me.clone(),
    };
    let written = crate::checkout::apply_changes(repo, &repo.home.clone(), &plan)?;
    out.written = written.len();
    // Record the resolution: a snapshot on top of HEAD.
    let now = crate::clock::now_ms();
    let mut ins = crate::store::Inserter::new(&repo.objects);
    let root = build_tree(&tree, &mut ins)?;
    let snap = Snapshot {
        host: crate::clock::host(),
        kind: "resolve".into(),
        merge: None,
        message: format!(
            "resolve {} ({})",
            out.resolved
                .iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            match choice {
                Choice::Ours => "ours",
                Choice::Theirs => "theirs",
                Choice::Both => "both",
            }
        ),
        parents: vec![head],
        pathmap: pm.to_raw(),
        root,
        time: now,
        v: SNAPSHOT_VERSION,
    };
    let obj = snap.to_object();
    ins.insert(Kind::Snapshot, obj.id, &obj.bytes)?;
    let pack = ins.finish()?;
    if let Some((name, _)) = &pack {
        repo.objects.add_pack(name)?;
    }
    let stats = crate::tree::stats_of(&repo.objects, &tree)?;
    let mut stat_rows = Vec::new();
    for (path, lines) in &written {
        let lp = plan.local(path);
        if let (Ok(m), Some(e)) = (
            std::fs::symlink_metadata(repo.home.join(&lp)),
            home_after.get(path),
        ) {
            stat_rows.push((lp, crate::scan::stat_row(&m, e, *lines, now)));
        }
    }
    let size = repo.objects.packs().last().map(|p| p.size()).unwrap_or(0);
    let path = repo.db_path();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    let t = repo.db.transaction()?;
    if let Some((name, entries)) = &pack {
        tx::insert_pack(&t, name, size, entries.len() as u64, now).map_err(wrap)?;
    }
    tx::insert_snapshot(&t, &obj.id, &obj.bytes, &snap, &stats).map_err(wrap)?;
    tx::set_ref(&t, "HEAD", Some(&obj.id)).map_err(wrap)?;
    for (p, row) in &stat_rows {
        tx::put_stat(&t, p, row).map_err(wrap)?;
    }
    let kept: BTreeMap<String, OverlayRow> = ov;
    overlay::replace_all(&t, &kept).map_err(wrap)?;
    tx::record_op(
        &t,
        now,
        "resolve",
        &snap.message,
        Some(&head),
        Some(&obj.id),
        Some(&head),
        out.written > 0,
        None,
    )
    .map_err(wrap)?;
    t.commit().map_err(wrap)?;
    out.snapshot = Some(obj.id.to_hex());
    Ok(out)
}
