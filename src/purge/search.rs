//! Finding what a purge removes: every line or file, in every snapshot whose trees are kept,
//! that contains a text (`--match`) or belongs to a session (`--session`).
//!
//! The walk visits each tree node once (prolly trees share nodes between snapshots), collects
//! the distinct data ids, then reads each once, in parallel, to look for the text.

use crate::error::Result;
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Conflict, DataRef, DirNode, Entry, EntryKind, ListNode};
use crate::object::{Session, LARGE_OBJECT};
use crate::repo::Repo;
use crate::session::SessionParts;
use crate::store::ObjectStore;
use crate::tree::FlatTree;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a purge takes away.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Found {
    /// Data ids to tombstone: (id, kind, length).
    #[serde(skip)]
    pub ids: Vec<(ObjectId, Kind, u64)>,
    pub lines: u64,
    pub files: u64,
    pub bytes: u64,
    /// HEAD's paths (this home's names) that lose lines or go, with the lines they lose
    /// (0 for a file).
    pub head: BTreeMap<String, HeadChange>,
    /// Canonical paths a `--session` purge removes from the home whatever they hold.
    #[serde(skip)]
    pub remove_paths: Vec<String>,
    /// Snapshots whose trees name any of the ids (their ids stay; readers skip the data).
    pub snapshots: u64,
    /// Lines and files of the session that another session or file also holds (in any kept
    /// snapshot): not tombstoned, though the session's own paths leave the home.
    pub shared_kept: u64,
    /// Bytes read while looking for the text.
    pub searched_bytes: u64,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HeadChange {
    pub lines: u64,
    pub bytes: u64,
    /// Nothing of it remains: the file leaves the home.
    pub whole: bool,
}

/// Distinct data refs below some roots, each tree node visited once.
#[derive(Default)]
struct Collector {
    dirs: HashSet<ObjectId>,
    sessions: HashSet<ObjectId>,
    lists: HashSet<ObjectId>,
    conflicts: HashSet<ObjectId>,
    data: HashMap<ObjectId, (Kind, u64)>,
}

fn data_kind(len: u64, small: Kind) -> Kind {
    if len >= LARGE_OBJECT {
        Kind::Chunked
    } else {
        small
    }
}

impl Collector {
    fn dir(&mut self, o: &ObjectStore, id: ObjectId) -> Result<()> {
        if !self.dirs.insert(id) {
            return Ok(());
        }
        let n: DirNode = decode(id, &o.read(id, Kind::DirNode)?)?;
        for e in &n.entries {
            self.entry(o, e)?;
        }
        for c in &n.children {
            self.dir(o, c.id)?;
        }
        Ok(())
    }

    fn entry(&mut self, o: &ObjectStore, e: &Entry) -> Result<()> {
        let Some(id) = e.id else { return Ok(()) };
        match e.kind {
            EntryKind::File => {
                self.data
                    .insert(id, (data_kind(e.size, Kind::Blob), e.size));
            }
            EntryKind::Dir => self.dir(o, id)?,
            EntryKind::Session => {
                if self.sessions.insert(id) {
                    let s: Session = decode(id, &o.read(id, Kind::Session)?)?;
                    if let Some(t) = s.tail {
                        self.data
                            .insert(t.id, (data_kind(t.len, Kind::Line), t.len));
                    }
                    if let Some(l) = s.lines {
                        self.list(o, l)?;
                    }
                }
            }
            EntryKind::Conflict => {
                if self.conflicts.insert(id) {
                    let c: Conflict = decode(id, &o.read(id, Kind::Conflict)?)?;
                    for side in c.base.iter().chain(c.sides.iter().map(|(_, e)| e)) {
                        self.entry(o, side)?;
                    }
                }
            }
            EntryKind::Symlink => {}
        }
        Ok(())
    }

    fn list(&mut self, o: &ObjectStore, id: ObjectId) -> Result<()> {
        if !self.lists.insert(id) {
            return Ok(());
        }
        let n: ListNode = decode(id, &o.read(id, Kind::ListNode)?)?;
        for l in &n.lines {
            self.data
                .insert(l.id, (data_kind(l.len, Kind::Line), l.len));
        }
        for c in &n.children {
            self.list(o, c.id)?;
        }
        Ok(())
    }
}

/// Is `path` (canonical, tree-relative) a part of session `id`: its transcript in any project
/// directory, its own directory there, its file-history, or one of its todo files?
fn part_of(path: &str, id: &str) -> bool {
    let c: Vec<&str> = path.split('/').collect();
    match c.as_slice() {
        ["projects", _, name, ..] => *name == id || name.strip_suffix(".jsonl") == Some(id),
        ["file-history", name, ..] => *name == id,
        ["todos", name] => name.starts_with(&format!("{id}-")),
        _ => false,
    }
}

/// Directories that may hold parts of a session (walked by path; the rest by node id).
fn may_hold_parts(path: &str) -> bool {
    let c: Vec<&str> = path.split('/').collect();
    matches!(
        c.as_slice(),
        [""] | ["projects"] | ["projects", _] | ["file-history"] | ["todos"]
    )
}

/// Collect a tree's data into `own` (parts of session `id`) and `other` (everything else).
fn split_walk(
    o: &ObjectStore,
    dir: ObjectId,
    path: &str,
    id: &str,
    own: &mut Collector,
    other: &mut Collector,
) -> Result<()> {
    for e in crate::prolly::read_dir(o, dir)? {
        let p = if path.is_empty() {
            e.name.clone()
        } else {
            format!("{path}/{}", e.name)
        };
        if part_of(&p, id) {
            own.entry(o, &e)?;
        } else if e.kind == EntryKind::Dir && may_hold_parts(&p) {
            if let Some(child) = e.id {
                split_walk(o, child, &p, id, own, other)?;
            }
        } else {
            other.entry(o, &e)?;
        }
    }
    Ok(())
}

/// Snapshots whose trees are kept (pruned ones have nothing left to purge).
fn kept_snapshots(repo: &Repo) -> Result<Vec<(ObjectId, ObjectId)>> {
    let pruned = repo.db.pruned()?;
    Ok(repo
        .db
        .all_snapshots()?
        .into_iter()
        .filter(|r| !pruned.contains(&r.id))
        .map(|r| (r.id, r.snap.root))
        .collect())
}

/// The objects of `wanted` whose bytes satisfy `hit`: each pack's blocks read in parallel.
fn scan_packs(
    o: &ObjectStore,
    wanted: &HashMap<ObjectId, (Kind, u64)>,
    hit: &(dyn Fn(&[u8]) -> bool + Sync),
) -> Result<Vec<(ObjectId, Kind, u64)>> {
    let mut out: HashMap<ObjectId, (Kind, u64)> = HashMap::new();
    for pack in o.packs() {
        let mut by_block: BTreeMap<u32, Vec<crate::pack::IndexEntry>> = BTreeMap::new();
        for i in 0..pack.object_count() {
            let e = pack.entry(i)?;
            if wanted.contains_key(&e.id) && !out.contains_key(&e.id) {
                by_block.entry(e.block).or_default().push(e);
            }
        }
        let blocks: Vec<(u32, Vec<crate::pack::IndexEntry>)> = by_block.into_iter().collect();
        let found: Vec<ObjectId> = blocks
            .par_iter()
            .map(|(block, entries)| -> Result<Vec<ObjectId>> {
                let data = pack.read_block(*block)?;
                Ok(entries
                    .iter()
                    .filter(|e| hit(&data[e.offset as usize..(e.offset + e.len) as usize]))
                    .map(|e| e.id)
                    .collect())
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for id in found {
            out.insert(id, wanted[&id]);
        }
    }
    Ok(out.into_iter().map(|(id, (k, l))| (id, k, l)).collect())
}

/// The bytes of a data ref (a large one assembled from its chunks).
fn bytes_of(o: &ObjectStore, id: ObjectId, kind: Kind, len: u64) -> Result<Vec<u8>> {
    let small = if kind == Kind::Chunked {
        Kind::Blob
    } else {
        kind
    };
    o.data_bytes(DataRef { id, len }, small)
}

/// What a purge of `sessions` (everything of each) and of every line or file containing one of
/// `needles` takes, in every kept snapshot.
///
/// A session's side file that another path of HEAD also holds is not tombstoned (the same bytes
/// belong to something else too), but every path of the session leaves the home.
pub fn search(repo: &Repo, sessions: &[SessionParts], needles: &[Vec<u8>]) -> Result<Found> {
    let o = &repo.objects;
    let kept = kept_snapshots(repo)?;
    let mut hits: HashMap<ObjectId, (Kind, u64)> = HashMap::new();
    let mut searched = 0;
    if !needles.is_empty() {
        let mut all = Collector::default();
        for (_, root) in &kept {
            all.dir(o, *root)?;
        }
        let finders: Vec<memchr::memmem::Finder> = needles
            .iter()
            .map(|n| memchr::memmem::Finder::new(n.as_slice()))
            .collect();
        let candidates: Vec<(ObjectId, Kind, u64)> = all
            .data
            .iter()
            .filter(|(id, _)| !o.is_purged(id))
            .map(|(id, (k, len))| (*id, *k, *len))
            .collect();
        searched = candidates.iter().map(|c| c.2).sum();
        let matches = |b: &[u8]| finders.iter().any(|f| f.find(b).is_some());
        // Small lines and files: every pack read once, block by block, in parallel (reading
        // them one by one would decompress a block per object).
        let small: HashMap<ObjectId, (Kind, u64)> = candidates
            .iter()
            .filter(|c| c.1 != Kind::Chunked)
            .map(|c| (c.0, (c.1, c.2)))
            .collect();
        let mut found: Vec<(ObjectId, Kind, u64)> = scan_packs(o, &small, &matches)?;
        // Large ones, assembled (a text may straddle two chunks).
        let large: Vec<(ObjectId, Kind, u64)> = candidates
            .into_iter()
            .filter(|c| c.1 == Kind::Chunked)
            .collect();
        for (id, k, len) in large {
            if matches(&bytes_of(o, id, k, len)?) {
                found.push((id, k, len));
            }
        }
        hits.extend(found.into_iter().map(|(id, k, l)| (id, (k, l))));
    }
    let pm = repo.pathmap()?;
    let head_raw = match repo.head()? {
        Some(h) => repo.flat_raw(&h)?,
        None => FlatTree::new(),
    };
    let mut remove_paths = Vec::new();
    let mut keep = HashSet::new();
    let mut shared = 0;
    for parts in sessions {
        // Its parts found by name in every kept snapshot (whatever project map each was
        // recorded under), and everything else, each tree node read once.
        let (mut own, mut other) = (Collector::default(), Collector::default());
        for (_, root) in &kept {
            split_walk(o, *root, "", &parts.id, &mut own, &mut other)?;
        }
        for (id, (k, len)) in own.data {
            if o.is_purged(&id) {
                continue;
            }
            // Bytes another session or file also holds (a resumed session's copied lines, an
            // empty todo list, the same backup) belong to it too: not tombstoned.
            if other.data.contains_key(&id) {
                shared += 1;
                keep.insert(id);
                continue;
            }
            hits.insert(id, (k, len));
        }
        remove_paths.extend(parts.roots.iter().map(|p| pm.canonical_path(p)));
        remove_paths.extend(head_raw.keys().filter(|p| part_of(p, &parts.id)).cloned());
    }
    let hits: Vec<(ObjectId, Kind, u64)> =
        hits.into_iter().map(|(id, (k, l))| (id, k, l)).collect();
    let mut found = finish(repo, hits, remove_paths, &head_raw, &kept)?;
    found.searched_bytes = searched;
    found.shared_kept = shared;
    Ok(found)
}

/// The counts, and what HEAD loses. (A purged large object's chunks are not tombstoned: the
/// same chunk may belong to other content, and gc drops the ones nothing else reaches.)
fn finish(
    repo: &Repo,
    mut hits: Vec<(ObjectId, Kind, u64)>,
    remove_paths: Vec<String>,
    head_raw: &FlatTree,
    kept: &[(ObjectId, ObjectId)],
) -> Result<Found> {
    let o = &repo.objects;
    hits.sort();
    let hit_set: HashSet<ObjectId> = hits.iter().map(|h| h.0).collect();
    let mut found = Found {
        lines: hits.iter().filter(|h| h.1 == Kind::Line).count() as u64,
        files: hits.iter().filter(|h| h.1 != Kind::Line).count() as u64,
        bytes: hits.iter().map(|h| h.2).sum(),
        remove_paths,
        ids: hits,
        ..Default::default()
    };
    // What HEAD (this home, as last committed) loses.
    {
        let raw = head_raw;
        let pm = repo.pathmap()?;
        let me = repo.store_id()?;
        for (p, e) in raw {
            let removed_whole = crate::checkout::under_any(p, &found.remove_paths);
            let ch = match (e.kind, e.id) {
                (EntryKind::File, Some(id)) if hit_set.contains(&id) || removed_whole => {
                    Some(HeadChange {
                        lines: 0,
                        bytes: e.size,
                        whole: true,
                    })
                }
                (EntryKind::Session, Some(id)) => {
                    let s: Session = decode(id, &o.read(id, Kind::Session)?)?;
                    let lines = crate::prolly::read_lines(o, s.lines)?;
                    let all = lines.len() as u64 + u64::from(s.tail.is_some());
                    let gone: Vec<&DataRef> = lines
                        .iter()
                        .chain(s.tail.iter())
                        .filter(|l| hit_set.contains(&l.id) || o.is_purged(&l.id))
                        .collect();
                    let n = gone.len() as u64;
                    if n == 0 && !removed_whole {
                        None
                    } else {
                        Some(HeadChange {
                            lines: if removed_whole { all } else { n },
                            bytes: if removed_whole {
                                e.size
                            } else {
                                gone.iter().map(|l| l.len).sum()
                            },
                            whole: removed_whole || n == all,
                        })
                    }
                }
                (_, _) if removed_whole => Some(HeadChange {
                    lines: 0,
                    bytes: e.size,
                    whole: true,
                }),
                _ => None,
            };
            if let Some(ch) = ch {
                found.head.insert(pm.local_path(p, &me), ch);
            }
        }
    }
    // Snapshots whose trees name a hit (their rows and ids stay).
    let mut memo = Memo::default();
    for (_, root) in kept {
        if memo.dir(o, *root, &hit_set)? {
            found.snapshots += 1;
        }
    }
    Ok(found)
}

/// Does a tree node reach a hit? Memoised per node.
#[derive(Default)]
struct Memo(HashMap<ObjectId, bool>);

impl Memo {
    fn dir(&mut self, o: &ObjectStore, id: ObjectId, hits: &HashSet<ObjectId>) -> Result<bool> {
        if let Some(&b) = self.0.get(&id) {
            return Ok(b);
        }
        let n: DirNode = decode(id, &o.read(id, Kind::DirNode)?)?;
        let mut any = false;
        for e in &n.entries {
            any |= self.entry(o, e, hits)?;
        }
        for c in &n.children {
            any |= self.dir(o, c.id, hits)?;
        }
        self.0.insert(id, any);
        Ok(any)
    }

    fn entry(&mut self, o: &ObjectStore, e: &Entry, hits: &HashSet<ObjectId>) -> Result<bool> {
        let Some(id) = e.id else { return Ok(false) };
        if hits.contains(&id) {
            return Ok(true);
        }
        if let Some(&b) = self.0.get(&id) {
            return Ok(b);
        }
        let any = match e.kind {
            EntryKind::Dir => return self.dir(o, id, hits),
            EntryKind::Session => {
                let s: Session = decode(id, &o.read(id, Kind::Session)?)?;
                s.tail.is_some_and(|t| hits.contains(&t.id))
                    || match s.lines {
                        Some(l) => self.list(o, l, hits)?,
                        None => false,
                    }
            }
            EntryKind::Conflict => {
                let c: Conflict = decode(id, &o.read(id, Kind::Conflict)?)?;
                let mut any = false;
                for side in c.base.iter().chain(c.sides.iter().map(|(_, e)| e)) {
                    any |= self.entry(o, side, hits)?;
                }
                any
            }
            _ => false,
        };
        self.0.insert(id, any);
        Ok(any)
    }

    fn list(&mut self, o: &ObjectStore, id: ObjectId, hits: &HashSet<ObjectId>) -> Result<bool> {
        if let Some(&b) = self.0.get(&id) {
            return Ok(b);
        }
        let n: ListNode = decode(id, &o.read(id, Kind::ListNode)?)?;
        let mut any = n.lines.iter().any(|l| hits.contains(&l.id));
        for c in &n.children {
            any |= self.list(o, c.id, hits)?;
        }
        self.0.insert(id, any);
        Ok(any)
    }
}
