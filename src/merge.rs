//! The deterministic, symmetric three-way merge of two homes (store-format.md, "Merge rules").
//!
//! `merge(base, a, b) == merge(base, b, a)` byte for byte, so that two machines that merge the
//! same heads record the same snapshot id. Nothing a side holds is ever dropped: a path that
//! vanished on one side is kept from the other, and a `.jsonl` keeps every line either side
//! has (a union merge made deterministic). Conflicts are values in the tree, never failures.

use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Conflict, DataRef, Entry, EntryKind, RawObject, Session};
use crate::prolly::{build_lines, read_lines, ObjectSink, ObjectSource};
use crate::tree::FlatTree;
use std::cmp::Ordering;

/// The merge algorithm's version, recorded in merge snapshots (part of the format).
pub const MERGE_VERSION: u32 = 1;

/// How a path is merged when both sides changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathClass {
    /// `.jsonl`: union of lines.
    Conversation,
    /// State Claude rewrites on every run (`todos/`, `tasks/`, `plans/`): the newer version wins.
    State,
    /// Everything else: both versions kept as a conflict value.
    UserContent,
}

pub fn classify(path: &str) -> PathClass {
    if path.ends_with(".jsonl") {
        return PathClass::Conversation;
    }
    let top = path.split('/').next().unwrap_or("");
    match top {
        "todos" | "tasks" | "plans" => PathClass::State,
        _ => PathClass::UserContent,
    }
}

/// Is this path conversation data (applied from any remote) rather than configuration that
/// can run code (held back from an untrusted remote)?
pub fn is_conversation_data(path: &str) -> bool {
    let top = path.split('/').next().unwrap_or("");
    matches!(
        top,
        "projects" | "file-history" | "paste-cache" | "image-cache" | "todos" | "tasks" | "plans"
    ) || path == "history.jsonl"
}

/// One side of a merge: its tree and the id of the store it comes from (conflict values key
/// their sides by store id).
pub struct Side<'a> {
    pub tree: &'a FlatTree,
    pub store_id: &'a str,
}

pub struct MergeOptions<'a> {
    /// `None`: the heads have no common ancestor (homes copied by hand): each session uses the
    /// longest common prefix of both versions as its base, other paths have no base.
    pub base: Option<&'a FlatTree>,
    /// For State paths changed on both sides: which version is newer (symmetric: swapping the
    /// arguments must reverse the answer unless Equal).
    pub newer: &'a dyn Fn(&str, &Entry, &Entry) -> Ordering,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct MergeReport {
    pub sessions_merged: Vec<String>,
    pub conflicts: Vec<String>,
    pub kept_vanished: Vec<String>,
    pub state_resolved: Vec<String>,
}

/// Merge two trees. New objects (session trees, conflict values) go to `sink`; `src` must
/// hold every object of the three trees.
pub fn merge_trees(
    src: &dyn ObjectSource,
    sink: &mut dyn ObjectSink,
    a: &Side,
    b: &Side,
    opts: &MergeOptions,
) -> Result<(FlatTree, MergeReport)> {
    let mut out = FlatTree::new();
    let mut report = MergeReport::default();
    let mut paths: Vec<&String> = a.tree.keys().chain(b.tree.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let ea = a.tree.get(path);
        let eb = b.tree.get(path);
        let base = opts.base.and_then(|t| t.get(path));
        let merged = match (ea, eb) {
            (None, None) => None,
            (Some(x), None) | (None, Some(x)) => {
                if base.is_some() {
                    report.kept_vanished.push(path.clone());
                }
                Some(x.clone())
            }
            (Some(x), Some(y)) if x.same_content(y) => Some(x.clone()),
            (Some(x), Some(y)) if base.is_some_and(|b| b.same_content(x)) => {
                Some(one_side(src, sink, path, base, y)?)
            }
            (Some(x), Some(y)) if base.is_some_and(|b| b.same_content(y)) => {
                Some(one_side(src, sink, path, base, x)?)
            }
            (Some(x), Some(y)) => Some(merge_changed(
                src,
                sink,
                path,
                base,
                (x, a.store_id),
                (y, b.store_id),
                opts,
                &mut report,
            )?),
        };
        if let Some(e) = merged {
            out.insert(path.clone(), e);
        }
    }
    // A directory entry (empty dir) that now has children is no longer empty.
    let dirs: Vec<String> = out
        .iter()
        .filter(|(_, e)| e.kind == EntryKind::Dir)
        .map(|(p, _)| p.clone())
        .collect();
    for d in dirs {
        let prefix = format!("{d}/");
        if out
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
        {
            out.remove(&d);
        }
    }
    // A file and a directory of the same name cannot both exist (a side that turned a
    // directory into a file or a symlink, or a hostile tree): refuse rather than build a tree
    // that an apply would write through.
    if let Some(p) = leaf_over_dir(&out) {
        return Err(Error::Other(format!(
            "{p} is a directory on one side and not on the other: sage cannot merge that; make both homes agree on {p} and sync again"
        )));
    }
    Ok((out, report))
}

/// A path that holds a non-directory entry and also has paths below it, if any.
pub fn leaf_over_dir(flat: &FlatTree) -> Option<&str> {
    flat.iter().find_map(|(p, e)| {
        if e.kind == EntryKind::Dir {
            return None;
        }
        let prefix = format!("{p}/");
        flat.range(prefix.clone()..)
            .next()
            .filter(|(q, _)| q.starts_with(&prefix))
            .map(|_| p.as_str())
    })
}

/// A path changed on one side only: that side, except that a session never loses a line (a
/// rewritten tail, a home that lagged behind its HEAD): then the base's lines are merged back in.
fn one_side(
    src: &dyn ObjectSource,
    sink: &mut dyn ObjectSink,
    path: &str,
    base: Option<&Entry>,
    changed: &Entry,
) -> Result<Entry> {
    match base {
        Some(b)
            if classify(path) == PathClass::Conversation
                && b.kind == EntryKind::Session
                && changed.kind == EntryKind::Session =>
        {
            let (lb, _) = load_session(src, b)?;
            let (lc, _) = load_session(src, changed)?;
            // Lines the changed side lacks (with their counts), whatever its order.
            let mut missing: std::collections::HashMap<ObjectId, i64> =
                std::collections::HashMap::new();
            for l in &lb {
                *missing.entry(l.id).or_default() += 1;
            }
            for l in &lc {
                if let Some(n) = missing.get_mut(&l.id) {
                    *n -= 1;
                }
            }
            if missing.values().all(|n| *n <= 0) {
                Ok(changed.clone())
            } else {
                merge_session(src, sink, Some(b), changed, b, false)
            }
        }
        _ => Ok(changed.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn merge_changed(
    src: &dyn ObjectSource,
    sink: &mut dyn ObjectSink,
    path: &str,
    base: Option<&Entry>,
    (x, sx): (&Entry, &str),
    (y, sy): (&Entry, &str),
    opts: &MergeOptions,
    report: &mut MergeReport,
) -> Result<Entry> {
    let class = classify(path);
    if class == PathClass::Conversation
        && x.kind == EntryKind::Session
        && y.kind == EntryKind::Session
    {
        report.sessions_merged.push(path.to_string());
        let base = base.filter(|b| b.kind == EntryKind::Session);
        return merge_session(src, sink, base, x, y, opts.base.is_none());
    }
    if class == PathClass::State && x.kind != EntryKind::Conflict && y.kind != EntryKind::Conflict {
        report.state_resolved.push(path.to_string());
        let pick = match (opts.newer)(path, x, y) {
            Ordering::Greater => x,
            Ordering::Less => y,
            Ordering::Equal => {
                if x.id.cmp(&y.id).then(x.target.cmp(&y.target)) == Ordering::Greater {
                    x
                } else {
                    y
                }
            }
        };
        return Ok(pick.clone());
    }
    report.conflicts.push(path.to_string());
    conflict_value(src, sink, base, &[(sx, x), (sy, y)])
}

/// A conflict value holding every side (sides that are conflicts themselves are expanded).
fn conflict_value(
    src: &dyn ObjectSource,
    sink: &mut dyn ObjectSink,
    base: Option<&Entry>,
    sides: &[(&str, &Entry)],
) -> Result<Entry> {
    let mut all: Vec<(String, Entry)> = Vec::new();
    let mut base = base.cloned();
    for (store, e) in sides {
        if e.kind == EntryKind::Conflict {
            let id = e.id.ok_or_else(|| Error::CorruptObject {
                id: ObjectId::default(),
                why: "conflict entry without id".into(),
            })?;
            let c: Conflict = decode(id, &src.get(id, Kind::Conflict)?)?;
            if base.is_none() {
                base = c.base;
            }
            all.extend(c.sides);
        } else {
            all.push((store.to_string(), (*e).clone()));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    all.dedup_by(|a, b| a.0 == b.0 && a.1.same_content(&b.1));
    // One version per store: where a store contributed two, keep the one with the larger id
    // (deterministic); both remain in that store's own snapshots.
    let mut one: Vec<(String, Entry)> = Vec::new();
    for (s, e) in all {
        match one.last_mut() {
            Some(last) if last.0 == s => {
                if e.id > last.1.id {
                    last.1 = e;
                }
            }
            _ => one.push((s, e)),
        }
    }
    let name = one.first().map(|(_, e)| e.name.clone()).unwrap_or_default();
    let size = one.iter().map(|(_, e)| e.size).max().unwrap_or(0);
    let obj = RawObject::encoded(Kind::Conflict, &Conflict { base, sides: one });
    let id = obj.id;
    sink.put(obj)?;
    Ok(Entry {
        name,
        kind: EntryKind::Conflict,
        size,
        exec: false,
        id: Some(id),
        target: vec![],
    })
}

fn load_session(src: &dyn ObjectSource, e: &Entry) -> Result<(Vec<DataRef>, Option<DataRef>)> {
    let id = e.id.ok_or_else(|| Error::CorruptObject {
        id: ObjectId::default(),
        why: "session entry without id".into(),
    })?;
    let s: Session = decode(id, &src.get(id, Kind::Session)?)?;
    Ok((read_lines(src, s.lines)?, s.tail))
}

/// Merge two versions of a session.
pub fn merge_session(
    src: &dyn ObjectSource,
    sink: &mut dyn ObjectSink,
    base: Option<&Entry>,
    x: &Entry,
    y: &Entry,
    prefix_base: bool,
) -> Result<Entry> {
    let (lx, tx) = load_session(src, x)?;
    let (ly, ty) = load_session(src, y)?;
    let (lb, tb) = match base {
        Some(b) if !prefix_base => load_session(src, b)?,
        _ => {
            let n = lx.iter().zip(&ly).take_while(|(a, b)| a.id == b.id).count();
            (lx[..n].to_vec(), None)
        }
    };
    let _ = tb;
    let lines = merge_lines(src, &lb, &lx, &ly)?;
    // The unterminated tail: dropped when some line of the result starts with it.
    let mut tails: Vec<DataRef> = [tx, ty].into_iter().flatten().collect();
    tails.sort_by(|a, b| b.len.cmp(&a.len).then(a.id.cmp(&b.id)));
    tails.dedup_by(|a, b| a.id == b.id);
    let mut tail = None;
    if !tails.is_empty() {
        let base_set: std::collections::HashSet<ObjectId> = lb.iter().map(|l| l.id).collect();
        let candidates: Vec<&DataRef> = lines
            .iter()
            .filter(|l| !base_set.contains(&l.id) && !l.is_chunked())
            .collect();
        for t in tails {
            if t.is_chunked() {
                tail = Some(t);
                break;
            }
            let tb = src.get(t.id, Kind::Line)?;
            let completed = candidates.iter().any(|l| {
                l.len > t.len
                    && src
                        .get(l.id, Kind::Line)
                        .map(|b| b.starts_with(&tb))
                        .unwrap_or(false)
            });
            if !completed {
                // The longest surviving tail (ties: smaller id); a second, different tail stays
                // in its own side's snapshot.
                tail = Some(t);
                break;
            }
        }
    }
    let root = build_lines(&lines, sink)?;
    let size = lines.iter().map(|l| l.len).sum::<u64>() + tail.map(|t| t.len).unwrap_or(0);
    let obj = RawObject::encoded(
        Kind::Session,
        &Session {
            count: lines.len() as u64,
            size,
            lines: root,
            tail,
        },
    );
    let id = obj.id;
    sink.put(obj)?;
    Ok(Entry {
        name: x.name.clone(),
        kind: EntryKind::Session,
        size,
        exec: x.exec || y.exec,
        id: Some(id),
        target: vec![],
    })
}

/// Lines inserted by one side, by the base gap they follow (gap i = before base line i).
fn insertions(base: &[DataRef], side: &[DataRef]) -> Vec<Vec<DataRef>> {
    let mut gaps = vec![Vec::new(); base.len() + 1];
    // Fast path: the side only appended (the common case).
    if side.len() >= base.len() && side[..base.len()] == *base {
        gaps[base.len()].extend_from_slice(&side[base.len()..]);
        return gaps;
    }
    let b: Vec<ObjectId> = base.iter().map(|l| l.id).collect();
    let s: Vec<ObjectId> = side.iter().map(|l| l.id).collect();
    for op in similar::capture_diff_slices(similar::Algorithm::Patience, &b, &s) {
        match op {
            similar::DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => gaps[old_index].extend_from_slice(&side[new_index..new_index + new_len]),
            // Base lines first: what replaced a hunk comes after the hunk's base lines.
            similar::DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => gaps[old_index + old_len].extend_from_slice(&side[new_index..new_index + new_len]),
            similar::DiffOp::Equal { .. } | similar::DiffOp::Delete { .. } => {}
        }
    }
    gaps
}

/// Union merge of line sequences: every base line stays (in order), and each gap gets both
/// sides' insertions: a common prefix once, then the two remainders ordered by their key.
pub fn merge_lines(
    src: &dyn ObjectSource,
    base: &[DataRef],
    x: &[DataRef],
    y: &[DataRef],
) -> Result<Vec<DataRef>> {
    let gx = insertions(base, x);
    let gy = insertions(base, y);
    let mut out = Vec::with_capacity(x.len().max(y.len()));
    for i in 0..=base.len() {
        merge_runs(src, &gx[i], &gy[i], &mut out)?;
        if i < base.len() {
            out.push(base[i]);
        }
    }
    Ok(out)
}

fn merge_runs(
    src: &dyn ObjectSource,
    a: &[DataRef],
    b: &[DataRef],
    out: &mut Vec<DataRef>,
) -> Result<()> {
    let p = a.iter().zip(b).take_while(|(x, y)| x.id == y.id).count();
    out.extend_from_slice(&a[..p]);
    let (ra, rb) = (&a[p..], &b[p..]);
    if ra.is_empty() || rb.is_empty() {
        out.extend_from_slice(ra);
        out.extend_from_slice(rb);
        return Ok(());
    }
    // A run the other already holds in order (one side merged the other's lines before: a
    // criss-cross) adds nothing, so merging a result again never doubles lines.
    if is_subsequence(rb, ra) {
        out.extend_from_slice(ra);
        return Ok(());
    }
    if is_subsequence(ra, rb) {
        out.extend_from_slice(rb);
        return Ok(());
    }
    let ka = run_key(src, ra)?;
    let kb = run_key(src, rb)?;
    if ka <= kb {
        out.extend_from_slice(ra);
        out.extend_from_slice(rb);
    } else {
        out.extend_from_slice(rb);
        out.extend_from_slice(ra);
    }
    Ok(())
}

/// Does `long` hold every line of `short`, in order (not necessarily adjacent)?
fn is_subsequence(short: &[DataRef], long: &[DataRef]) -> bool {
    let mut it = long.iter();
    short.iter().all(|s| it.any(|l| l.id == s.id))
}

/// A run's order key: (no timestamp, the instant of its first timestamped line, its first line id).
fn run_key(src: &dyn ObjectSource, run: &[DataRef]) -> Result<(bool, i128, ObjectId)> {
    for l in run {
        if l.is_chunked() {
            continue;
        }
        let bytes = src.get(l.id, Kind::Line)?;
        if let Some(t) = line_instant(&bytes) {
            return Ok((false, t, run[0].id));
        }
    }
    Ok((true, 0, run[0].id))
}

/// The `timestamp` of a JSON line as nanoseconds since the epoch: an ISO-8601 string or
/// epoch milliseconds.
pub fn line_instant(line: &[u8]) -> Option<i128> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    match v.get("timestamp")? {
        serde_json::Value::String(s) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp_nanos())
        }
        serde_json::Value::Number(n) => n.as_i64().map(|ms| ms as i128 * 1_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prolly::MemObjects;

    fn mem() -> MemObjects {
        MemObjects {
            keep_data: true,
            ..Default::default()
        }
    }

    fn line(m: &mut MemObjects, text: &str) -> DataRef {
        let o = RawObject::new(Kind::Line, text.as_bytes().to_vec());
        let r = DataRef {
            id: o.id,
            len: o.bytes.len() as u64,
        };
        m.put(o).unwrap();
        r
    }

    fn msg(m: &mut MemObjects, uuid: &str, ts: &str) -> DataRef {
        line(
            m,
            &format!("{{\"uuid\":\"{uuid}\",\"timestamp\":\"{ts}\"}}\n"),
        )
    }

    #[test]
    fn appends_on_both_sides_are_ordered_by_time_and_symmetric() {
        let mut m = mem();
        let b: Vec<_> = (0..3)
            .map(|i| msg(&mut m, &format!("b{i}"), "2026-01-01T00:00:00.000Z"))
            .collect();
        let mut x = b.clone();
        x.push(msg(&mut m, "x1", "2026-01-02T00:00:00.000Z"));
        let mut y = b.clone();
        y.push(msg(&mut m, "y1", "2026-01-01T12:00:00.000Z"));
        let r1 = merge_lines(&m, &b, &x, &y).unwrap();
        let r2 = merge_lines(&m, &b, &y, &x).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(r1.len(), 5);
        assert_eq!(r1[3], y[3], "the earlier run first");
        assert_eq!(r1[4], x[3]);
    }

    #[test]
    fn removed_lines_are_kept_and_common_prefix_once() {
        let mut m = mem();
        let b: Vec<_> = (0..4)
            .map(|i| msg(&mut m, &format!("b{i}"), "2026-01-01T00:00:00Z"))
            .collect();
        // x drops b3 (a rewritten tail) and appends c, d; y appends c, e.
        let c = msg(&mut m, "c", "2026-01-03T00:00:00Z");
        let d = msg(&mut m, "d", "2026-01-04T00:00:00Z");
        let e = msg(&mut m, "e", "2026-01-02T00:00:00Z");
        let x = vec![b[0], b[1], b[2], c, d];
        let mut y = b.clone();
        y.extend([c, e]);
        let r = merge_lines(&m, &b, &x, &y).unwrap();
        assert_eq!(r, merge_lines(&m, &b, &y, &x).unwrap());
        assert_eq!(r, vec![b[0], b[1], b[2], b[3], c, e, d]);
    }

    #[test]
    fn metadata_lines_keep_their_count() {
        let mut m = mem();
        let meta = line(&mut m, "{\"type\":\"last-prompt\"}\n");
        let b = vec![meta];
        let x = vec![meta, meta];
        let y = vec![meta, meta, meta];
        let r = merge_lines(&m, &b, &x, &y).unwrap();
        assert_eq!(r.len(), 3, "common prefix of the runs kept once");
    }

    #[test]
    fn idempotent_and_one_sided() {
        let mut m = mem();
        let b: Vec<_> = (0..5)
            .map(|i| msg(&mut m, &format!("b{i}"), "2026-01-01T00:00:00Z"))
            .collect();
        let mut x = b.clone();
        x.push(msg(&mut m, "x", "2026-01-05T00:00:00Z"));
        assert_eq!(merge_lines(&m, &b, &b, &x).unwrap(), x);
        assert_eq!(merge_lines(&m, &b, &x, &x).unwrap(), x);
        let r = merge_lines(&m, &b, &x, &b).unwrap();
        assert_eq!(merge_lines(&m, &x, &r, &x).unwrap(), r);
    }

    #[test]
    fn instants_from_iso_and_epoch_ms() {
        assert_eq!(line_instant(br#"{"timestamp":1000}"#), Some(1_000_000_000));
        assert_eq!(
            line_instant(br#"{"timestamp":"1970-01-01T00:00:01.000Z"}"#),
            Some(1_000_000_000)
        );
        assert_eq!(line_instant(b"nope"), None);
    }
}
