//! Directory trees: building nested DirNode trees from a flat map of home-relative paths, and
//! flattening them back. The flat map holds leaves (files, sessions, symlinks, conflicts) and
//! empty directories; non-empty directories are implied by their contents.

use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Entry, EntryKind, Session};
use crate::prolly::{build_dir, read_dir, ObjectSink, ObjectSource};
use std::collections::{BTreeMap, HashMap};

/// Home-relative path ('/'-separated) -> entry (whose `name` is the last component).
pub type FlatTree = BTreeMap<String, Entry>;

/// Is `name` acceptable as one path component? Rejects what could escape a directory or
/// confuse a filesystem (trees may come from other machines).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// The last component of a `/`-separated path.
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// Build the root directory of a flat tree; returns its id.
pub fn build_tree(flat: &FlatTree, sink: &mut dyn ObjectSink) -> Result<ObjectId> {
    let mut dirs: HashMap<String, Vec<Entry>> = HashMap::new();
    dirs.insert(String::new(), Vec::new());
    for (path, e) in flat {
        // Register every ancestor directory.
        let mut p = parent_of(path);
        loop {
            if dirs.contains_key(p) {
                break;
            }
            dirs.insert(p.to_string(), Vec::new());
            if p.is_empty() {
                break;
            }
            p = parent_of(p);
        }
        if e.kind == EntryKind::Dir {
            dirs.entry(path.clone()).or_default();
        } else {
            dirs.get_mut(parent_of(path))
                .expect("registered above")
                .push(e.clone());
        }
    }
    let mut order: Vec<String> = dirs.keys().cloned().collect();
    // Deepest first, so each directory is built after its subdirectories.
    order.sort_by_key(|p| {
        std::cmp::Reverse(if p.is_empty() {
            0
        } else {
            p.matches('/').count() + 1
        })
    });
    let mut root = None;
    for dir in order {
        let mut entries = dirs.remove(&dir).expect("listed above");
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let id = build_dir(&entries, sink)?;
        if dir.is_empty() {
            root = Some(id);
        } else {
            let name = dir.rsplit('/').next().expect("non-empty path").to_string();
            dirs.get_mut(parent_of(&dir))
                .expect("parent registered")
                .push(Entry {
                    name,
                    kind: EntryKind::Dir,
                    size: entries.len() as u64,
                    exec: false,
                    id: Some(id),
                    target: vec![],
                });
        }
    }
    Ok(root.expect("the root is always built"))
}

/// Flatten a directory tree. Names are validated: a tree naming `..` or containing `/` is
/// rejected as corrupt, so that nothing is ever written outside a home.
pub fn flatten(src: &dyn ObjectSource, root: ObjectId) -> Result<FlatTree> {
    let mut out = FlatTree::new();
    flatten_into(src, root, "", &mut out, 0)?;
    Ok(out)
}

fn flatten_into(
    src: &dyn ObjectSource,
    id: ObjectId,
    prefix: &str,
    out: &mut FlatTree,
    depth: u32,
) -> Result<()> {
    if depth > 256 {
        return Err(Error::CorruptObject {
            id,
            why: "directories nested too deep".into(),
        });
    }
    for e in read_dir(src, id)? {
        if !valid_name(&e.name) {
            return Err(Error::CorruptObject {
                id,
                why: format!("invalid entry name {:?}", e.name),
            });
        }
        let path = if prefix.is_empty() {
            e.name.clone()
        } else {
            format!("{prefix}/{}", e.name)
        };
        if e.kind == EntryKind::Dir {
            let child = e.id.ok_or_else(|| Error::CorruptObject {
                id,
                why: format!("directory {path} has no id"),
            })?;
            if e.size == 0 {
                out.insert(path, e);
            } else {
                flatten_into(src, child, &path, out, depth + 1)?;
            }
        } else {
            out.insert(path, e);
        }
    }
    Ok(())
}

/// Find one path in a tree (O(depth * log n) nodes).
pub fn lookup_path(src: &dyn ObjectSource, root: ObjectId, path: &str) -> Result<Option<Entry>> {
    let mut dir = root;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(e) = crate::prolly::lookup(src, dir, part)? else {
            return Ok(None);
        };
        if i + 1 == parts.len() {
            return Ok(Some(e));
        }
        match (e.kind, e.id) {
            (EntryKind::Dir, Some(id)) => dir = id,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Counts over a flat tree: files, sessions, messages (session lines), bytes.
pub fn stats_of(src: &dyn ObjectSource, flat: &FlatTree) -> Result<crate::db::Stats> {
    let mut s = crate::db::Stats::default();
    for e in flat.values() {
        match e.kind {
            EntryKind::Session => {
                s.sessions += 1;
                s.files += 1;
                s.bytes += e.size;
                if let Some(id) = e.id {
                    let sess: Session = decode(id, &src.get(id, Kind::Session)?)?;
                    s.messages += sess.count;
                }
            }
            EntryKind::File | EntryKind::Symlink | EntryKind::Conflict => {
                s.files += 1;
                s.bytes += e.size;
            }
            EntryKind::Dir => {}
        }
    }
    Ok(s)
}
