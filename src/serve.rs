//! `sage serve --stdio`: the remote end of a sync, speaking the protocol on stdin/stdout.
//! It opens (or, for a first push, creates) the store of the home it is asked for, holds that
//! store's lock for the whole connection, and answers one request at a time.

use crate::error::{Error, Result};
use crate::protocol::{expect, Conn, Msg, SnapshotInfo, PROTO_MAX, PROTO_MIN};
use crate::repo::{CommitOptions, Repo};
use crate::rules::HOME_MARKER;
use crate::sync::apply::MergeInto;
use crate::sync::objects::{
    objects_to_send, receive_pack, send_packs, snapshot_infos, store_snapshots,
};
use std::io::{Read, Write};
use std::path::PathBuf;

fn expand(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~") {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        return home.join(rest.trim_start_matches('/'));
    }
    PathBuf::from(path)
}

/// Run the server until the client says Bye or goes away.
pub fn serve<R: Read, W: Write>(r: R, w: W) -> Result<()> {
    let mut conn = Conn::new(r, w);
    conn.send_magic()?;
    match serve_inner(&mut conn) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.send(&Msg::Error {
                message: e.to_string(),
            });
            Err(e)
        }
    }
}

fn serve_inner<R: Read, W: Write>(conn: &mut Conn<R, W>) -> Result<()> {
    let (path, bare, create, proto, peer_caps, peer_version) =
        expect(conn.recv()?, "Hello", |m| match m {
            Msg::Hello {
                proto_min,
                proto_max,
                path,
                bare,
                create,
                caps,
                version,
            } => Some((path, bare, create, (proto_min, proto_max), caps, version)),
            _ => None,
        })?;
    if proto.1 < PROTO_MIN || proto.0 > PROTO_MAX {
        return Err(Error::Other(format!(
            "protocol versions {}..{} are not supported here ({PROTO_MIN}..{PROTO_MAX}): upgrade the older sage",
            proto.0, proto.1
        )));
    }
    let target = expand(&path);
    let (home, store) = if bare {
        (target.join(crate::repo::BARE_HOME), Some(target.clone()))
    } else {
        (target.clone(), None)
    };
    let home_exists = !bare && home.exists();
    let home_marker = if bare {
        None
    } else {
        std::fs::read_to_string(home.join(HOME_MARKER))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| {
                v.get("store_id")
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
            })
    };
    let (mut repo, created) = match Repo::open(&home, store.as_deref()) {
        Ok(r) => (r, false),
        Err(Error::NoStore { .. }) if create => {
            let (r, c) = Repo::init(&home, store.as_deref(), true)?;
            if bare {
                r.db.set_meta("bare", "1")?;
            }
            (r, c)
        }
        Err(Error::NoStore { .. }) => {
            return Err(Error::Other(format!(
                "{} has no sage store yet: push to it first",
                target.display()
            )));
        }
        Err(e) => return Err(e),
    };
    let _lock = repo.lock("serve")?;
    crate::purge::run::require_peer_caps(&repo, &peer_caps, &peer_version, "the other side")?;
    conn.send(&Msg::Welcome {
        proto: PROTO_MAX.min(proto.1),
        version: env!("CARGO_PKG_VERSION").to_string(),
        store_id: repo.store_id()?,
        created,
        bare,
        home_marker,
        home_exists,
        caps: crate::protocol::our_caps(),
    })?;
    // Tombstones arriving in batches (`Tombstones { last: false }`).
    let mut incoming = Vec::new();
    loop {
        let msg = match conn.recv() {
            Ok(m) => m,
            Err(Error::Other(m)) if m.contains("closed the connection") => return Ok(()),
            Err(e) => return Err(e),
        };
        match msg {
            Msg::Commit { message } => {
                let empty_new_home = repo.head()?.is_none() && home_is_empty(&repo.home);
                let head = if bare || empty_new_home {
                    // Nothing to keep: a first push into an empty home then fast-forwards.
                    repo.head()?
                } else {
                    let out = repo.commit(&CommitOptions {
                        kind: "auto",
                        message: &message,
                        progress: &|_, _| {},
                    })?;
                    Some(out.id)
                };
                conn.send(&Msg::Committed { head })?;
            }
            Msg::Graph => {
                let rows = repo.db.all_snapshots()?;
                // Pruned marks go only to a client that can decode them (`pruned-marks`).
                let marks = peer_caps.iter().any(|c| c == crate::protocol::PRUNED_MARKS);
                let pruned = repo.db.pruned()?;
                let snapshots = rows
                    .into_iter()
                    .map(|r| SnapshotInfo {
                        id: r.id,
                        trees_pruned: marks && pruned.contains(&r.id),
                        raw: r.raw,
                    })
                    .collect();
                let mut refs = Vec::new();
                let mut st = repo
                    .db
                    .conn
                    .prepare("SELECT name, id FROM refs")
                    .map_err(|e| repo.db.db_err(e))?;
                let rows = st
                    .query_map([], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })
                    .map_err(|e| repo.db.db_err(e))?;
                for row in rows {
                    let (n, id) = row.map_err(|e| repo.db.db_err(e))?;
                    if let Some(id) = crate::id::ObjectId::from_slice(&id) {
                        refs.push((n, id));
                    }
                }
                drop(st);
                conn.send(&Msg::GraphReply {
                    head: repo.head()?,
                    refs,
                    snapshots,
                })?;
            }
            Msg::Have { ids } => {
                let have = ids
                    .iter()
                    .map(|id| repo.objects.contains(id))
                    .collect::<Result<Vec<bool>>>()?;
                conn.send(&Msg::HaveReply { have })?;
            }
            Msg::PackStart { bytes, .. } => {
                let name = receive_pack(&mut repo, conn, bytes)?;
                conn.send(&Msg::PackStored { name })?;
            }
            Msg::Snapshots { snaps } => {
                let added = store_snapshots(&mut repo, &snaps)?;
                conn.send(&Msg::SnapshotsStored { added })?;
            }
            Msg::Merge {
                head,
                store_id,
                dry_run,
                force,
                select,
            } => {
                if bare {
                    return Err(Error::Other("a bare store never merges".into()));
                }
                let out = repo.merge_into_home(&MergeInto {
                    theirs: head,
                    their_store: &store_id,
                    trust_config: true,
                    dry_run,
                    force,
                    select: (!select.is_empty()).then_some(&select[..]),
                })?;
                conn.send(&Msg::Merged {
                    head: out.head,
                    summary: out.summary(),
                })?;
            }
            Msg::SetRef { name, id } => {
                if !bare || !name.starts_with("stores/") {
                    // A home's refs move only by its own merges.
                    return Err(Error::Other(format!("refusing to set ref {name}")));
                }
                repo.snapshot(&id)?;
                let path = repo.db_path();
                let t = repo.db.transaction()?;
                crate::db::tx::set_ref(&t, &name, Some(&id)).map_err(|e| Error::Db {
                    path: path.clone(),
                    source: e,
                })?;
                t.commit().map_err(|e| Error::Db { path, source: e })?;
                conn.send(&Msg::RefSet)?;
            }
            Msg::Fetch { wants, haves } => {
                for w in &wants {
                    repo.snapshot(w)?;
                }
                crate::sync::objects::check_peer_takes_pruned(&repo, &wants, &peer_caps)?;
                let objs = objects_to_send(&repo, &wants, &haves)?;
                send_packs(&repo, conn, &objs, &|_, _| {})?;
                let snaps = snapshot_infos(&repo, &wants)?;
                conn.send(&Msg::FetchDone { snaps })?;
            }
            Msg::Tombstones {
                stones,
                dry_run,
                last,
            } => {
                if incoming.len() + stones.len() > crate::protocol::MAX_IDS {
                    return Err(Error::Other(
                        "protocol error: the peer sent too many tombstones".into(),
                    ));
                }
                incoming.extend(stones);
                if !last {
                    continue;
                }
                let stones = std::mem::take(&mut incoming);
                let added = if dry_run {
                    0
                } else {
                    crate::purge::run::accept_tombstones(&mut repo, &stones, "a sync", true)?
                };
                let ours = crate::purge::list_all(&repo.db, &repo.store_dir)?;
                crate::purge::run::send_batches(&ours, |stones, last| {
                    conn.send(&Msg::TombstonesReply {
                        stones,
                        added,
                        last,
                    })
                })?;
            }
            Msg::Bye => return Ok(()),
            other => {
                return Err(Error::Other(
                    format!("protocol error: unexpected {other:?}")
                        .chars()
                        .take(200)
                        .collect(),
                ))
            }
        }
    }
}

/// A home with nothing in it but sage's marker.
fn home_is_empty(home: &std::path::Path) -> bool {
    match std::fs::read_dir(home) {
        Err(_) => true,
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .all(|e| e.file_name() == HOME_MARKER),
    }
}
