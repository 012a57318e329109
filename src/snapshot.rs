//! Snapshots (commits): a versioned MessagePack map with sorted string keys. Optional keys
//! enter the encoding (and so the id) only when present, so later versions can add fields
//! without changing the ids of snapshots that do not use them.

use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::object::RawObject;
use serde::{Deserialize, Serialize};

pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub host: String,
    pub kind: String,
    /// Merge algorithm version, for merge snapshots (sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<u32>,
    pub message: String,
    pub parents: Vec<ObjectId>,
    /// Project directory map: canonical prefix -> store id -> (local prefix, time). Absent
    /// while every host uses the canonical names (see store-format.md, "Path maps").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pathmap: Option<crate::pathmap::RawPathMap>,
    pub root: ObjectId,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub v: u32,
}

/// Snapshot kinds.
pub const KINDS: &[&str] = &[
    "manual",
    "auto",
    "checkout",
    "merge",
    "scheduled",
    "resolve",
    "sync",
    "hook",
];

impl Snapshot {
    pub fn to_object(&self) -> RawObject {
        let bytes = rmp_serde::to_vec_named(self).expect("encoding a snapshot cannot fail");
        RawObject::new(Kind::Snapshot, bytes)
    }

    pub fn decode(id: ObjectId, bytes: &[u8]) -> Result<Snapshot> {
        let s: Snapshot = rmp_serde::from_slice(bytes).map_err(|e| Error::CorruptObject {
            id,
            why: format!("not a snapshot: {e}"),
        })?;
        if s.v > SNAPSHOT_VERSION {
            return Err(Error::Other(format!(
                "snapshot {id} has version {}, this sage reads up to {SNAPSHOT_VERSION}: install a newer sage",
                s.v
            )));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_keys_stay_out_of_the_id() {
        let s = Snapshot {
            host: "laptop".into(),
            kind: "manual".into(),
            merge: None,
            message: "m".into(),
            parents: vec![],
            pathmap: None,
            root: ObjectId::default(),
            time: 1,
            v: 1,
        };
        let o = s.to_object();
        assert!(!o.bytes.windows(5).any(|w| w == b"merge"));
        assert_eq!(Snapshot::decode(o.id, &o.bytes).unwrap(), s);
        let mut m = s.clone();
        m.merge = Some(1);
        assert_ne!(m.to_object().id, o.id);
    }
}
