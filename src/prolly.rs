//! Prolly trees: content-defined chunking of ordered lists (a session's lines, a directory's
//! entries) into nodes, so that changing one item rewrites O(log n) small nodes, and so that
//! the node boundaries are a pure function of the list: two machines that reach the same list by
//! different edits build the same tree ids.
//!
//! A boundary falls after an item when the node holds at least `min` items and the item's key
//! meets `mask` (`key & mask == 0`), or when it holds `max` items. Keys: a line's id, a directory
//! entry's blake3(name), a child node's id.

use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Child, DataRef, DirNode, Entry, ListNode, RawObject};

pub struct Params {
    pub min: usize,
    pub mask: u32,
    pub max: usize,
}

/// Session line lists: ~80 lines (~3 KB of ids) per leaf on average.
pub const LINE_PARAMS: Params = Params {
    min: 16,
    mask: 63,
    max: 512,
};
/// Directory entries: ~40 entries per leaf on average.
pub const DIR_PARAMS: Params = Params {
    min: 8,
    mask: 31,
    max: 256,
};
/// Interior levels of both kinds.
pub const INNER_PARAMS: Params = Params {
    min: 4,
    mask: 31,
    max: 256,
};

/// Where built nodes go (a pack writer, or nowhere when only ids are wanted).
pub trait ObjectSink {
    fn put(&mut self, obj: RawObject) -> Result<()>;
    /// Add an object given as a borrowed span (avoids a copy for sinks that write at once).
    fn add(&mut self, kind: Kind, id: ObjectId, bytes: &[u8]) -> Result<()> {
        self.put(RawObject {
            kind,
            id,
            bytes: bytes.to_vec(),
        })
    }
}

/// Objects kept in memory (read-only scans of a home: status, diff, restore previews).
/// With `keep_data: false`, lines and blobs are dropped and only structure is kept.
#[derive(Default)]
pub struct MemObjects {
    pub map: std::collections::HashMap<ObjectId, (Kind, Vec<u8>)>,
    pub keep_data: bool,
}

impl ObjectSink for MemObjects {
    fn put(&mut self, obj: RawObject) -> Result<()> {
        if self.keep_data || !matches!(obj.kind, Kind::Line | Kind::Blob) {
            self.map.insert(obj.id, (obj.kind, obj.bytes));
        }
        Ok(())
    }
    fn add(&mut self, kind: Kind, id: ObjectId, bytes: &[u8]) -> Result<()> {
        if self.keep_data || !matches!(kind, Kind::Line | Kind::Blob) {
            self.map.insert(id, (kind, bytes.to_vec()));
        }
        Ok(())
    }
}

impl ObjectSource for MemObjects {
    fn get(&self, id: ObjectId, kind: Kind) -> Result<Vec<u8>> {
        match self.map.get(&id) {
            Some((k, b)) if *k == kind => Ok(b.clone()),
            _ => Err(Error::MissingObject { id }),
        }
    }
}

/// Memory first, then another source.
pub struct Layered<'a> {
    pub mem: &'a MemObjects,
    pub base: &'a dyn ObjectSource,
}

impl ObjectSource for Layered<'_> {
    fn get(&self, id: ObjectId, kind: Kind) -> Result<Vec<u8>> {
        match self.mem.map.get(&id) {
            Some((k, b)) if *k == kind => Ok(b.clone()),
            _ => self.base.get(id, kind),
        }
    }
}

/// Where nodes are read from.
pub trait ObjectSource {
    fn get(&self, id: ObjectId, kind: Kind) -> Result<Vec<u8>>;
}

/// A sink that discards objects: computing ids without storing anything.
pub struct NullSink;
impl ObjectSink for NullSink {
    fn put(&mut self, _obj: RawObject) -> Result<()> {
        Ok(())
    }
}

/// Split `keys` into runs: returns the exclusive end index of each run.
pub fn boundaries(keys: &[u32], p: &Params) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut start = 0;
    for (i, key) in keys.iter().enumerate() {
        let len = i + 1 - start;
        if len >= p.max || (len >= p.min && key & p.mask == 0) {
            ends.push(i + 1);
            start = i + 1;
        }
    }
    if start < keys.len() {
        ends.push(keys.len());
    }
    ends
}

/// Build the interior levels above `children` until one node remains; returns the root.
fn build_inner<N, F>(
    mut children: Vec<Child>,
    level0: u8,
    kind: Kind,
    make: F,
    sink: &mut dyn ObjectSink,
) -> Result<ObjectId>
where
    F: Fn(u8, Vec<Child>) -> N,
    N: serde::Serialize,
{
    let mut level = level0;
    while children.len() > 1 {
        level += 1;
        let keys: Vec<u32> = children.iter().map(|c| c.id.low32()).collect();
        let mut next = Vec::new();
        let mut start = 0;
        for end in boundaries(&keys, &INNER_PARAMS) {
            let group: Vec<Child> = children[start..end].to_vec();
            let count = group.iter().map(|c| c.count).sum();
            let bytes = group.iter().map(|c| c.bytes).sum();
            let first = group[0].first.clone();
            let obj = RawObject::encoded(kind, &make(level, group));
            next.push(Child {
                id: obj.id,
                count,
                bytes,
                first,
            });
            sink.put(obj)?;
            start = end;
        }
        children = next;
    }
    Ok(children[0].id)
}

/// Build a session's line list; `None` for no lines.
pub fn build_lines(lines: &[DataRef], sink: &mut dyn ObjectSink) -> Result<Option<ObjectId>> {
    if lines.is_empty() {
        return Ok(None);
    }
    let keys: Vec<u32> = lines.iter().map(|l| l.id.low32()).collect();
    let mut children = Vec::new();
    let mut start = 0;
    for end in boundaries(&keys, &LINE_PARAMS) {
        let group = lines[start..end].to_vec();
        let bytes = group.iter().map(|l| l.len).sum();
        let obj = RawObject::encoded(
            Kind::ListNode,
            &ListNode {
                level: 0,
                lines: group,
                children: vec![],
            },
        );
        children.push(Child {
            id: obj.id,
            count: (end - start) as u64,
            bytes,
            first: String::new(),
        });
        sink.put(obj)?;
        start = end;
    }
    let make = |level, children| ListNode {
        level,
        lines: vec![],
        children,
    };
    build_inner(children, 0, Kind::ListNode, make, sink).map(Some)
}

fn name_key(name: &str) -> u32 {
    ObjectId::hash(Kind::DirNode, name.as_bytes()).low32()
}

/// Build a directory from entries sorted by name bytes (an empty directory is one empty node).
pub fn build_dir(entries: &[Entry], sink: &mut dyn ObjectSink) -> Result<ObjectId> {
    debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
    let keys: Vec<u32> = entries.iter().map(|e| name_key(&e.name)).collect();
    let mut children = Vec::new();
    let mut start = 0;
    let mut ends = boundaries(&keys, &DIR_PARAMS);
    if ends.is_empty() {
        ends.push(0);
    }
    for end in ends {
        let group = entries[start..end].to_vec();
        let first = group.first().map(|e| e.name.clone()).unwrap_or_default();
        let obj = RawObject::encoded(
            Kind::DirNode,
            &DirNode {
                level: 0,
                entries: group,
                children: vec![],
            },
        );
        children.push(Child {
            id: obj.id,
            count: (end - start) as u64,
            bytes: 0,
            first,
        });
        sink.put(obj)?;
        start = end;
    }
    let make = |level, children| DirNode {
        level,
        entries: vec![],
        children,
    };
    build_inner(children, 0, Kind::DirNode, make, sink)
}

fn check_node_shape(id: ObjectId, level: u8, leaves: usize, children: usize) -> Result<()> {
    let ok = if level == 0 {
        children == 0
    } else {
        leaves == 0 && children > 0
    };
    if ok && level < 32 {
        Ok(())
    } else {
        Err(Error::CorruptObject {
            id,
            why: "malformed tree node".into(),
        })
    }
}

/// All lines of a session's line list, in order.
pub fn read_lines(src: &dyn ObjectSource, root: Option<ObjectId>) -> Result<Vec<DataRef>> {
    let mut out = Vec::new();
    if let Some(root) = root {
        read_lines_into(src, root, &mut out, 40)?;
    }
    Ok(out)
}

fn read_lines_into(
    src: &dyn ObjectSource,
    id: ObjectId,
    out: &mut Vec<DataRef>,
    depth: u32,
) -> Result<()> {
    let node: ListNode = decode(id, &src.get(id, Kind::ListNode)?)?;
    check_node_shape(id, node.level, node.lines.len(), node.children.len())?;
    if depth == 0 {
        return Err(Error::CorruptObject {
            id,
            why: "tree too deep".into(),
        });
    }
    out.extend(node.lines);
    for c in node.children {
        read_lines_into(src, c.id, out, depth - 1)?;
    }
    Ok(())
}

/// Every node id of a line list (for walks that must visit each object, e.g. transfer, verify).
pub fn list_nodes(
    src: &dyn ObjectSource,
    root: ObjectId,
    kind: Kind,
    out: &mut Vec<ObjectId>,
) -> Result<()> {
    out.push(root);
    let bytes = src.get(root, kind)?;
    let children = match kind {
        Kind::ListNode => decode::<ListNode>(root, &bytes)?.children,
        _ => decode::<DirNode>(root, &bytes)?.children,
    };
    for c in children {
        list_nodes(src, c.id, kind, out)?;
    }
    Ok(())
}

/// All entries of a directory, sorted by name.
pub fn read_dir(src: &dyn ObjectSource, root: ObjectId) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    read_dir_into(src, root, &mut out, 40)?;
    Ok(out)
}

fn read_dir_into(
    src: &dyn ObjectSource,
    id: ObjectId,
    out: &mut Vec<Entry>,
    depth: u32,
) -> Result<()> {
    let node: DirNode = decode(id, &src.get(id, Kind::DirNode)?)?;
    check_node_shape(id, node.level, node.entries.len(), node.children.len())?;
    if depth == 0 {
        return Err(Error::CorruptObject {
            id,
            why: "tree too deep".into(),
        });
    }
    out.extend(node.entries);
    for c in node.children {
        read_dir_into(src, c.id, out, depth - 1)?;
    }
    Ok(())
}

/// Find one entry by name in O(log n) nodes.
pub fn lookup(src: &dyn ObjectSource, root: ObjectId, name: &str) -> Result<Option<Entry>> {
    let mut id = root;
    for _ in 0..40 {
        let node: DirNode = decode(id, &src.get(id, Kind::DirNode)?)?;
        if node.level == 0 {
            return Ok(node.entries.into_iter().find(|e| e.name == name));
        }
        let pos = node.children.partition_point(|c| c.first.as_str() <= name);
        if pos == 0 {
            return Ok(None);
        }
        id = node.children[pos - 1].id;
    }
    Err(Error::CorruptObject {
        id,
        why: "tree too deep".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::EntryKind;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem(HashMap<ObjectId, Vec<u8>>);
    impl ObjectSink for Mem {
        fn put(&mut self, obj: RawObject) -> Result<()> {
            self.0.insert(obj.id, obj.bytes);
            Ok(())
        }
    }
    impl ObjectSource for Mem {
        fn get(&self, id: ObjectId, _kind: Kind) -> Result<Vec<u8>> {
            self.0.get(&id).cloned().ok_or(Error::MissingObject { id })
        }
    }

    fn line(i: u64) -> DataRef {
        DataRef {
            id: ObjectId::hash(Kind::Line, &i.to_le_bytes()),
            len: 100 + i % 7,
        }
    }

    #[test]
    fn lines_round_trip_and_local_change_costs_few_nodes() {
        let lines: Vec<DataRef> = (0..100_000).map(line).collect();
        let mut a = Mem::default();
        let root = build_lines(&lines, &mut a).unwrap();
        assert_eq!(read_lines(&a, root).unwrap(), lines);

        let mut changed = lines.clone();
        changed[50_000] = line(1_000_000);
        let mut b = Mem::default();
        let root2 = build_lines(&changed, &mut b).unwrap();
        assert_ne!(root, root2);
        let new_nodes = b.0.keys().filter(|k| !a.0.contains_key(k)).count();
        assert!(new_nodes <= 6, "{new_nodes} new nodes for one changed line");

        let mut appended = lines.clone();
        appended.push(line(2_000_000));
        let mut c = Mem::default();
        build_lines(&appended, &mut c).unwrap();
        let new_nodes = c.0.keys().filter(|k| !a.0.contains_key(k)).count();
        assert!(
            new_nodes <= 6,
            "{new_nodes} new nodes for one appended line"
        );
    }

    #[test]
    fn same_list_by_different_edits_gives_same_root() {
        let base: Vec<DataRef> = (0..5000).map(line).collect();
        let mut x = base.clone();
        x.insert(10, line(9_999_999));
        x.remove(4001);
        let mut y = base.clone();
        y.remove(4000);
        y.insert(10, line(9_999_999));
        let rx = build_lines(&x, &mut NullSink).unwrap();
        let ry = build_lines(&y, &mut NullSink).unwrap();
        assert_eq!(x, y);
        assert_eq!(rx, ry);
        // Built incrementally from a different history, the tree is still the same.
        let mut z: Vec<DataRef> = (0..4000).map(line).collect();
        z.insert(10, line(9_999_999));
        z.extend((4001..5000).map(line));
        assert_eq!(build_lines(&z, &mut NullSink).unwrap(), rx);
    }

    fn entry(name: String) -> Entry {
        Entry {
            id: Some(ObjectId::hash(Kind::Blob, name.as_bytes())),
            name,
            kind: EntryKind::File,
            size: 1,
            exec: false,
            target: vec![],
        }
    }

    #[test]
    fn dirs_round_trip_and_lookup() {
        let mut names: Vec<String> = (0..3000).map(|i| format!("s{i:05}.jsonl")).collect();
        names.sort();
        let entries: Vec<Entry> = names.into_iter().map(entry).collect();
        let mut m = Mem::default();
        let root = build_dir(&entries, &mut m).unwrap();
        assert_eq!(read_dir(&m, root).unwrap(), entries);
        for e in entries.iter().step_by(97) {
            assert_eq!(lookup(&m, root, &e.name).unwrap().as_ref(), Some(e));
        }
        assert_eq!(lookup(&m, root, "zzz").unwrap(), None);
        assert_eq!(lookup(&m, root, "a").unwrap(), None);
        let empty = build_dir(&[], &mut m).unwrap();
        assert!(read_dir(&m, empty).unwrap().is_empty());
    }
}
