//! Differences between two trees, at the level users care about: files added, removed or
//! changed, and for sessions the messages (lines) each side gained or lost, counted as a
//! multiset so that repeated metadata lines keep their counts.

use crate::error::Result;
use crate::id::Kind;
use crate::object::{decode, DataRef, Entry, EntryKind, Session};
use crate::prolly::{read_lines, ObjectSource};
use crate::tree::FlatTree;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PathChange {
    pub path: String,
    pub change: ChangeKind,
    pub is_session: bool,
    pub old_size: u64,
    pub new_size: u64,
    /// Lines (messages) in the new version that the old lacks, in the new file's order.
    #[serde(skip)]
    pub gained: Vec<DataRef>,
    /// Lines in the old version that the new lacks.
    #[serde(skip)]
    pub lost: Vec<DataRef>,
    pub gained_count: u64,
    pub lost_count: u64,
    pub lost_bytes: u64,
    pub old_lines: u64,
    pub new_lines: u64,
}

impl PathChange {
    /// Does going from old to new drop bytes the old version had?
    pub fn drops_data(&self) -> bool {
        match self.change {
            ChangeKind::Added => false,
            ChangeKind::Removed => true,
            ChangeKind::Modified => !self.is_session || self.lost_count > 0,
        }
    }
}

/// All lines of a session entry, the unterminated tail included (last).
pub fn session_lines(src: &dyn ObjectSource, e: &Entry) -> Result<Vec<DataRef>> {
    let Some(id) = e.id else { return Ok(vec![]) };
    let s: Session = decode(id, &src.get(id, Kind::Session)?)?;
    let mut lines = read_lines(src, s.lines)?;
    lines.extend(s.tail);
    Ok(lines)
}

/// Lines of `b` not matched by a line of `a` (multiset difference), in `b`'s order.
pub fn multiset_minus(b: &[DataRef], a: &[DataRef]) -> Vec<DataRef> {
    let mut counts: HashMap<_, i64> = HashMap::new();
    for l in a {
        *counts.entry(l.id).or_default() += 1;
    }
    let mut out = Vec::new();
    for l in b {
        let c = counts.entry(l.id).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            out.push(*l);
        }
    }
    out
}

fn entry_lines(src: &dyn ObjectSource, e: Option<&Entry>) -> Result<Vec<DataRef>> {
    match e {
        Some(e) if e.kind == EntryKind::Session => session_lines(src, e),
        _ => Ok(vec![]),
    }
}

/// Compare two trees; sources may differ (e.g. the store and a scan of the home kept in memory).
pub fn diff_trees(
    src_a: &dyn ObjectSource,
    a: &FlatTree,
    src_b: &dyn ObjectSource,
    b: &FlatTree,
    paths: Option<&dyn Fn(&str) -> bool>,
) -> Result<Vec<PathChange>> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for path in keys {
        if let Some(f) = paths {
            if !f(path) {
                continue;
            }
        }
        let (ea, eb) = (a.get(path), b.get(path));
        let change = match (ea, eb) {
            (Some(x), Some(y)) if x.same_content(y) => continue,
            (Some(x), Some(y)) if x.kind == EntryKind::Dir && y.kind == EntryKind::Dir => continue,
            (None, Some(y)) if y.kind == EntryKind::Dir => continue,
            (Some(x), None) if x.kind == EntryKind::Dir => continue,
            (Some(_), Some(_)) => ChangeKind::Modified,
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (None, None) => continue,
        };
        let is_session = ea
            .or(eb)
            .map(|e| e.kind == EntryKind::Session)
            .unwrap_or(false)
            && ea.map(|e| e.kind == EntryKind::Session).unwrap_or(true)
            && eb.map(|e| e.kind == EntryKind::Session).unwrap_or(true);
        let la = entry_lines(src_a, ea)?;
        let lb = entry_lines(src_b, eb)?;
        let gained = multiset_minus(&lb, &la);
        let lost = multiset_minus(&la, &lb);
        out.push(PathChange {
            path: path.clone(),
            change,
            is_session,
            old_size: ea.map(|e| e.size).unwrap_or(0),
            new_size: eb.map(|e| e.size).unwrap_or(0),
            gained_count: gained.len() as u64,
            lost_count: lost.len() as u64,
            lost_bytes: lost.iter().map(|l| l.len).sum(),
            old_lines: la.len() as u64,
            new_lines: lb.len() as u64,
            gained,
            lost,
        });
    }
    Ok(out)
}
