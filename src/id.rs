//! Object ids: 32-byte blake3 digests of an object's kind byte followed by its bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The kind of an object; its byte is the first input of the object's hash, so two objects of
/// different kinds never share an id even when their bytes agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// One line of a `.jsonl` file, terminator included (or a file's unterminated tail).
    Line = 1,
    /// The bytes of a whole file, or one chunk of a large file or line.
    Blob = 2,
    /// A large file or line: the list of its chunks.
    Chunked = 3,
    /// A node of a session's line list (prolly tree).
    ListNode = 4,
    /// A session: its line-list root, counts and tail.
    Session = 5,
    /// A node of a directory's entry list (prolly tree).
    DirNode = 6,
    /// A conflict value: the versions of one path that a merge could not reconcile.
    Conflict = 7,
    /// A snapshot (commit).
    Snapshot = 8,
}

impl Kind {
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Line,
            2 => Kind::Blob,
            3 => Kind::Chunked,
            4 => Kind::ListNode,
            5 => Kind::Session,
            6 => Kind::DirNode,
            7 => Kind::Conflict,
            8 => Kind::Snapshot,
            _ => return None,
        })
    }
    /// Line, Blob or Chunked: the bytes of a line or file (what a purge may tombstone).
    pub fn is_data(self) -> bool {
        matches!(self, Kind::Line | Kind::Blob | Kind::Chunked)
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Line => "line",
            Kind::Blob => "blob",
            Kind::Chunked => "chunked",
            Kind::ListNode => "list-node",
            Kind::Session => "session",
            Kind::DirNode => "dir-node",
            Kind::Conflict => "conflict",
            Kind::Snapshot => "snapshot",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    pub fn hash(kind: Kind, bytes: &[u8]) -> ObjectId {
        let mut h = blake3::Hasher::new();
        h.update(&[kind as u8]);
        h.update(bytes);
        ObjectId(*h.finalize().as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
    pub fn from_hex(s: &str) -> Option<ObjectId> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(ObjectId(out))
    }
    pub fn from_slice(b: &[u8]) -> Option<ObjectId> {
        Some(ObjectId(b.try_into().ok()?))
    }
    /// First four bytes as a number: the source of prolly-tree boundaries.
    pub fn low32(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
        ObjectId::from_slice(&b)
            .ok_or_else(|| serde::de::Error::custom("object id must be 32 bytes"))
    }
}
