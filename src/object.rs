//! Object encodings. Every structured object is canonical MessagePack: `decode` re-encodes what
//! it read and rejects bytes that differ, so an id always names exactly one value.

use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Files and lines at least this large are split into content-defined chunks (`Kind::Chunked`),
/// so that no single object needs more memory than a chunk.
pub const LARGE_OBJECT: u64 = 8 << 20;

/// A reference to the bytes of a line or a file: its id and length. When `len >= LARGE_OBJECT`
/// the id names a `Chunked` object, else a `Line` (in a session) or `Blob` (a file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataRef {
    pub id: ObjectId,
    pub len: u64,
}

impl DataRef {
    pub fn is_chunked(&self) -> bool {
        self.len >= LARGE_OBJECT
    }
}

/// A chunk list of a large file or line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunked {
    pub chunks: Vec<DataRef>,
}

/// The kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntryKind {
    File = 0,
    Session = 1,
    Dir = 2,
    Symlink = 3,
    Conflict = 4,
}

impl EntryKind {
    pub fn from_u8(b: u8) -> Option<EntryKind> {
        Some(match b {
            0 => EntryKind::File,
            1 => EntryKind::Session,
            2 => EntryKind::Dir,
            3 => EntryKind::Symlink,
            4 => EntryKind::Conflict,
            _ => return None,
        })
    }
}

impl Serialize for EntryKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}
impl<'de> Deserialize<'de> for EntryKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let b = u8::deserialize(d)?;
        EntryKind::from_u8(b)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown entry kind {b}")))
    }
}

/// One entry of a directory. `id` names: a Blob or Chunked (file), a Session, a DirNode (dir),
/// a Conflict; it is absent for symlinks, whose `target` holds the link's raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    /// Bytes of the file or session; entry count for a directory; target length for a symlink.
    pub size: u64,
    pub exec: bool,
    pub id: Option<ObjectId>,
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
}

impl Entry {
    pub fn data_ref(&self) -> Option<DataRef> {
        self.id.map(|id| DataRef { id, len: self.size })
    }
    /// Same content, ignoring the name.
    pub fn same_content(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.id == other.id
            && self.exec == other.exec
            && self.target == other.target
            && self.size == other.size
    }
}

/// A child pointer of an interior prolly-tree node: the child node, how many leaf items lie
/// below it, their total bytes (lines) or 0 (directories), and the first key below it
/// (directories; empty for line lists) so that lookups by name take O(log n) nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub id: ObjectId,
    pub count: u64,
    pub bytes: u64,
    pub first: String,
}

/// A node of a session's line list: level 0 holds lines, higher levels hold children.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListNode {
    pub level: u8,
    pub lines: Vec<DataRef>,
    pub children: Vec<Child>,
}

/// A node of a directory's entry list, sorted by name bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirNode {
    pub level: u8,
    pub entries: Vec<Entry>,
    pub children: Vec<Child>,
}

/// A session (`.jsonl` file): its complete lines (through `lines`, a ListNode root, absent when
/// there are none) and its unterminated tail, if any. File bytes = lines in order, then tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub count: u64,
    pub size: u64,
    pub lines: Option<ObjectId>,
    pub tail: Option<DataRef>,
}

/// A conflict value: the versions of one path that a merge kept side by side, keyed by the id
/// of the store that contributed each (issue: sync). `base` is the common ancestor's entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub base: Option<Entry>,
    pub sides: Vec<(String, Entry)>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("serializing an in-memory object to a Vec cannot fail")
}

/// Decode canonical MessagePack: the bytes must re-encode identically.
pub fn decode<T: Serialize + DeserializeOwned>(id: ObjectId, bytes: &[u8]) -> Result<T> {
    let value: T = rmp_serde::from_slice(bytes).map_err(|e| Error::CorruptObject {
        id,
        why: format!("cannot decode: {e}"),
    })?;
    if encode(&value) != bytes {
        return Err(Error::CorruptObject {
            id,
            why: "not in canonical encoding".into(),
        });
    }
    Ok(value)
}

/// An object ready to store: kind, id and bytes.
#[derive(Clone, Debug)]
pub struct RawObject {
    pub kind: Kind,
    pub id: ObjectId,
    pub bytes: Vec<u8>,
}

impl RawObject {
    pub fn new(kind: Kind, bytes: Vec<u8>) -> RawObject {
        RawObject {
            kind,
            id: ObjectId::hash(kind, &bytes),
            bytes,
        }
    }
    pub fn encoded<T: Serialize>(kind: Kind, value: &T) -> RawObject {
        RawObject::new(kind, encode(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        let node = DirNode {
            level: 0,
            entries: vec![Entry {
                name: "a.jsonl".into(),
                kind: EntryKind::Session,
                size: 12,
                exec: false,
                id: Some(ObjectId::hash(Kind::Session, b"x")),
                target: vec![],
            }],
            children: vec![],
        };
        let bytes = encode(&node);
        let id = ObjectId::hash(Kind::DirNode, &bytes);
        let back: DirNode = decode(id, &bytes).unwrap();
        assert_eq!(back, node);
        assert_eq!(encode(&back), bytes);
    }

    #[test]
    fn non_canonical_is_rejected() {
        // u8 12 encoded as a 16-bit integer instead of a positive fixint.
        let s = Session {
            count: 12,
            size: 0,
            lines: None,
            tail: None,
        };
        let mut bytes = encode(&s);
        assert_eq!(bytes[1], 12);
        bytes.splice(1..2, [0xcd, 0x00, 0x0c]);
        let parsed: std::result::Result<Session, _> = rmp_serde::from_slice(&bytes);
        assert_eq!(parsed.unwrap(), s);
        assert!(decode::<Session>(ObjectId::default(), &bytes).is_err());
    }
}
