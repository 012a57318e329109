//! The wire protocol between `sage` and `sage serve --stdio` (store-format.md, "Protocol").
//!
//! The server first writes the 8-byte magic `SAGEPROT`, so that a remote shell that prints a
//! banner is recognized instead of being parsed. Then each message is a frame: a u32
//! little-endian length followed by that many bytes of MessagePack (an externally tagged
//! enum). Frames are bounded (`MAX_FRAME`); pack bytes travel in `PackChunk` frames.

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

pub const MAGIC: &[u8; 8] = b"SAGEPROT";
pub const PROTO_MIN: u32 = 1;
pub const PROTO_MAX: u32 = 1;

/// Capabilities this sage offers and understands, exchanged in Hello / Welcome. A peer checks
/// for a capability before it uses the feature, so features can be added without a new
/// protocol version; changes to existing messages still need one.
/// - `have`: the `Have` object query; `fetch`: `Fetch` (pull); `bare-refs`: `SetRef` on bare
///   stores; `force`: `Merge { force }`; `dry-run-merge`: `Merge { dry_run }`; `selective`:
///   `Merge { select }`; `pruned-marks`: `SnapshotInfo::trees_pruned` (store-format.md §14.4);
///   `purge-tombstones`: `Tombstones` / `TombstonesReply` (§14.5).
pub const CAPS: &[&str] = &[
    "have",
    "fetch",
    "bare-refs",
    "force",
    "dry-run-merge",
    "selective",
    "pruned-marks",
    "purge-tombstones",
];

/// The capability that exchanges purge tombstones (`Tombstones`, store-format.md §14.5).
pub const PURGE_TOMBSTONES: &str = "purge-tombstones";

/// The capability that lets a peer send and receive snapshots whose trees were pruned.
pub const PRUNED_MARKS: &str = "pruned-marks";

fn is_false(b: &bool) -> bool {
    !*b
}

pub fn our_caps() -> Vec<String> {
    CAPS.iter().map(|c| c.to_string()).collect()
}
/// No frame may be larger (a bound against broken or hostile peers).
pub const MAX_FRAME: usize = 24 << 20;
/// Pack bytes per `PackChunk`.
pub const CHUNK: usize = 4 << 20;
/// No message may carry more ids than this.
pub const MAX_IDS: usize = 4_000_000;
/// Tombstones per `Tombstones` / `TombstonesReply` batch (each well under `MAX_FRAME`: a
/// tombstone is about 60 bytes plus its reason, at most 200 characters).
pub const TOMBSTONE_BATCH: usize = 50_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub id: ObjectId,
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
    /// The sender keeps this snapshot's row but not its trees (`pruned-marks`). Written only
    /// when true, so that a peer without the capability decodes what it always did.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trees_pruned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    // client -> server
    Hello {
        proto_min: u32,
        proto_max: u32,
        version: String,
        /// The remote home (or bare store) path; a leading `~` is the server user's home.
        path: String,
        bare: bool,
        /// Create the store (and home marker) if absent.
        create: bool,
        /// Optional features this client understands (see `CAPS`); unknown ones are ignored.
        #[serde(default)]
        caps: Vec<String>,
    },
    /// Snapshot the server's home if it changed (kind auto).
    Commit {
        message: String,
    },
    /// Ask for the server's snapshot graph and refs.
    Graph,
    /// Which of these objects does the server hold?
    Have {
        ids: Vec<ObjectId>,
    },
    PackStart {
        objects: u64,
        bytes: u64,
    },
    PackChunk(#[serde(with = "serde_bytes")] Vec<u8>),
    PackEnd,
    /// Store these snapshots (their objects are all sent).
    Snapshots {
        snaps: Vec<SnapshotInfo>,
    },
    /// Merge `head` (from store `store_id`) into the server's home.
    Merge {
        head: ObjectId,
        store_id: String,
        dry_run: bool,
        force: bool,
        /// Selective merge: only these canonical paths (and what is under them); empty = all.
        /// Sent only to a server with the `selective` capability.
        #[serde(default)]
        select: Vec<String>,
    },
    /// Bare stores: set the ref kept for a sending store.
    SetRef {
        name: String,
        id: ObjectId,
    },
    /// Send the objects and snapshots needed for `wants`, given that the client has `haves`.
    Fetch {
        wants: Vec<ObjectId>,
        haves: Vec<ObjectId>,
    },
    Bye,

    // server -> client
    Welcome {
        proto: u32,
        version: String,
        store_id: String,
        created: bool,
        bare: bool,
        /// The store id named by the home's marker file, if the home has one.
        home_marker: Option<String>,
        home_exists: bool,
        /// Optional features this server offers (see `CAPS`); unknown ones are ignored.
        #[serde(default)]
        caps: Vec<String>,
    },
    Committed {
        head: Option<ObjectId>,
    },
    GraphReply {
        head: Option<ObjectId>,
        refs: Vec<(String, ObjectId)>,
        snapshots: Vec<SnapshotInfo>,
    },
    HaveReply {
        have: Vec<bool>,
    },
    PackStored {
        name: Option<String>,
    },
    SnapshotsStored {
        added: u64,
    },
    Merged {
        head: Option<ObjectId>,
        summary: String,
    },
    RefSet,
    FetchDone {
        snaps: Vec<SnapshotInfo>,
    },
    Error {
        message: String,
    },

    // Added with `purge-tombstones` (sent only to a peer that listed it).
    /// client -> server: every tombstone the client holds, in batches (`last` on the final
    /// one). With `dry_run` the server records nothing.
    Tombstones {
        stones: Vec<crate::purge::Tombstone>,
        dry_run: bool,
        last: bool,
    },
    /// server -> client: every tombstone the server holds after adding the client's (and
    /// finishing them), in batches; `added`: how many of the client's were new to it.
    TombstonesReply {
        stones: Vec<crate::purge::Tombstone>,
        added: u64,
        last: bool,
    },
}

/// Bounds on what a peer may send, checked on every decoded message.
fn check_bounds(m: &Msg) -> Result<()> {
    let n = match m {
        Msg::Have { ids } => ids.len(),
        Msg::Fetch { wants, haves } => wants.len() + haves.len(),
        Msg::HaveReply { have } => have.len(),
        Msg::Tombstones { stones, .. } | Msg::TombstonesReply { stones, .. } => stones.len(),
        _ => 0,
    };
    if n > MAX_IDS {
        return Err(Error::Other(format!(
            "protocol error: the peer sent {n} ids in one message (limit {MAX_IDS})"
        )));
    }
    Ok(())
}

pub struct Conn<R: Read, W: Write> {
    pub r: R,
    pub w: W,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl<R: Read, W: Write> Conn<R, W> {
    pub fn new(r: R, w: W) -> Self {
        Conn {
            r,
            w,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    pub fn send(&mut self, m: &Msg) -> Result<()> {
        let body =
            rmp_serde::to_vec(m).map_err(|e| Error::Other(format!("encoding a message: {e}")))?;
        if body.len() > MAX_FRAME {
            return Err(Error::Other("internal error: message too large".into()));
        }
        self.w
            .write_all(&(body.len() as u32).to_le_bytes())
            .ctx(|| "sending to the peer (connection lost?)".into())?;
        self.w
            .write_all(&body)
            .ctx(|| "sending to the peer (connection lost?)".into())?;
        self.w
            .flush()
            .ctx(|| "sending to the peer (connection lost?)".into())?;
        self.bytes_out += 4 + body.len() as u64;
        Ok(())
    }

    pub fn recv(&mut self) -> Result<Msg> {
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Other("the peer closed the connection".into())
            } else {
                Error::io("reading from the peer", e)
            }
        })?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(Error::Other(format!(
                "protocol error: frame of {len} bytes exceeds the limit of {MAX_FRAME}"
            )));
        }
        let mut body = vec![0u8; len];
        self.r
            .read_exact(&mut body)
            .ctx(|| "reading from the peer (connection lost?)".into())?;
        self.bytes_in += 4 + len as u64;
        let m: Msg = rmp_serde::from_slice(&body)
            .map_err(|e| Error::Other(format!("protocol error: undecodable message: {e}")))?;
        check_bounds(&m)?;
        if let Msg::Error { message } = &m {
            return Err(Error::Other(format!("the remote says: {message}")));
        }
        Ok(m)
    }

    /// Server side: announce the protocol.
    pub fn send_magic(&mut self) -> Result<()> {
        self.w
            .write_all(MAGIC)
            .ctx(|| "writing the handshake".into())?;
        self.w.flush().ctx(|| "writing the handshake".into())
    }

    /// Client side: expect the magic; anything else is a shell banner or a missing sage.
    pub fn expect_magic(&mut self) -> Result<()> {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while got.len() < MAGIC.len() {
            match self.r.read(&mut b) {
                Ok(0) => break,
                Ok(_) => got.push(b[0]),
                Err(e) => return Err(Error::io("reading the handshake", e)),
            }
            if !MAGIC.starts_with(&got) {
                // Read a little more so the error can show what the remote printed.
                let mut more = vec![0u8; 200];
                let n = self.r.read(&mut more).unwrap_or(0);
                got.extend_from_slice(&more[..n]);
                return Err(Error::Other(format!(
                    "the remote printed something before sage's handshake: {:?}\n  fix: make the remote shell print nothing for non-interactive logins (e.g. guard output in ~/.bashrc with `[[ $- == *i* ]]`)",
                    String::from_utf8_lossy(&got)
                )));
            }
        }
        if got.len() < MAGIC.len() {
            return Err(Error::Other(
                "the remote closed the connection before the handshake: is sage installed there? (see the ssh error above; `sage remote add --remote-sage PATH` names where it lives)".into(),
            ));
        }
        Ok(())
    }
}

pub fn expect<T>(m: Msg, what: &str, f: impl FnOnce(Msg) -> Option<T>) -> Result<T> {
    let name = format!("{m:?}");
    f(m).ok_or_else(|| {
        Error::Other(format!(
            "protocol error: expected {what}, got {}",
            name.chars().take(80).collect::<String>()
        ))
    })
}
