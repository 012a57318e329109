//! Moving objects between stores: which objects a receiver lacks (walking the wanted
//! snapshots' trees against a snapshot both sides have), writing them as packs, and receiving
//! packs: every object re-hashed, every reference checked, before the pack is renamed in.

use crate::db::tx;
use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{
    decode, Chunked, Conflict, DirNode, Entry, EntryKind, ListNode, Session, LARGE_OBJECT,
};
use crate::pack::{Pack, PackWriter};
use crate::protocol::{Conn, Msg, SnapshotInfo, CHUNK};
use crate::repo::Repo;
use crate::snapshot::Snapshot;
use crate::tree::{flatten, valid_name, FlatTree};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

/// Objects one entry needs, children first; lines the receiver is known to hold are skipped.
fn entry_objects(
    repo: &Repo,
    e: &Entry,
    base: Option<&Entry>,
    out: &mut Vec<(Kind, ObjectId)>,
    sent: &mut HashSet<ObjectId>,
) -> Result<()> {
    let Some(id) = e.id else { return Ok(()) };
    if sent.contains(&id) {
        return Ok(());
    }
    match e.kind {
        EntryKind::File => data_objects(repo, id, e.size, Kind::Blob, out, sent)?,
        EntryKind::Session => {
            let s: Session = decode(id, &repo.objects.read(id, Kind::Session)?)?;
            let mut known: HashSet<ObjectId> = HashSet::new();
            let mut known_nodes: HashSet<ObjectId> = HashSet::new();
            if let Some(b) = base
                .filter(|b| b.kind == EntryKind::Session)
                .and_then(|b| b.id)
            {
                if let Ok(bs) = decode::<Session>(b, &repo.objects.read(b, Kind::Session)?) {
                    known.extend(
                        crate::prolly::read_lines(&repo.objects, bs.lines)?
                            .iter()
                            .map(|l| l.id),
                    );
                    if let Some(r) = bs.lines {
                        let mut nodes = Vec::new();
                        crate::prolly::list_nodes(&repo.objects, r, Kind::ListNode, &mut nodes)?;
                        known_nodes.extend(nodes);
                    }
                }
            }
            for l in crate::prolly::read_lines(&repo.objects, s.lines)?
                .into_iter()
                .chain(s.tail)
            {
                if !known.contains(&l.id) {
                    data_objects(repo, l.id, l.len, Kind::Line, out, sent)?;
                }
            }
            if let Some(r) = s.lines {
                let mut nodes = Vec::new();
                crate::prolly::list_nodes(&repo.objects, r, Kind::ListNode, &mut nodes)?;
                for n in nodes.into_iter().rev() {
                    if !known_nodes.contains(&n) && sent.insert(n) {
                        out.push((Kind::ListNode, n));
                    }
                }
            }
            if sent.insert(id) {
                out.push((Kind::Session, id));
            }
        }
        EntryKind::Conflict => {
            let c: Conflict = decode(id, &repo.objects.read(id, Kind::Conflict)?)?;
            for side in c.base.iter().chain(c.sides.iter().map(|(_, e)| e)) {
                entry_objects(repo, side, None, out, sent)?;
            }
            if sent.insert(id) {
                out.push((Kind::Conflict, id));
            }
        }
        EntryKind::Dir | EntryKind::Symlink => {}
    }
    Ok(())
}

fn data_objects(
    repo: &Repo,
    id: ObjectId,
    len: u64,
    small: Kind,
    out: &mut Vec<(Kind, ObjectId)>,
    sent: &mut HashSet<ObjectId>,
) -> Result<()> {
    // Purged data is never sent: the peer learned the tombstone first (§14.5).
    if repo.objects.is_purged(&id) {
        return Ok(());
    }
    if len >= LARGE_OBJECT {
        let c: Chunked = decode(id, &repo.objects.read(id, Kind::Chunked)?)?;
        for ch in c.chunks {
            if sent.insert(ch.id) {
                out.push((Kind::Blob, ch.id));
            }
        }
        if sent.insert(id) {
            out.push((Kind::Chunked, id));
        }
    } else if sent.insert(id) {
        out.push((small, id));
    }
    Ok(())
}

/// DirNode ids of a tree, each after all its descendants.
fn dir_nodes(
    repo: &Repo,
    root: ObjectId,
    skip: &HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
) -> Result<()> {
    if skip.contains(&root) {
        return Ok(());
    }
    let node: DirNode = decode(root, &repo.objects.read(root, Kind::DirNode)?)?;
    for c in &node.children {
        dir_nodes(repo, c.id, skip, out)?;
    }
    for e in &node.entries {
        if let (EntryKind::Dir, Some(id)) = (e.kind, e.id) {
            dir_nodes(repo, id, skip, out)?;
        }
    }
    out.push(root);
    Ok(())
}

fn all_dir_nodes(repo: &Repo, root: ObjectId) -> Result<HashSet<ObjectId>> {
    let mut v = Vec::new();
    dir_nodes(repo, root, &HashSet::new(), &mut v)?;
    Ok(v.into_iter().collect())
}

/// The objects a receiver needs to hold `wanted` (parents first) completely, given that it
/// holds the snapshots `haves`. Children come before the nodes that name them.
pub fn objects_to_send(
    repo: &Repo,
    wanted: &[ObjectId],
    haves: &[ObjectId],
) -> Result<Vec<(Kind, ObjectId)>> {
    let mut out = Vec::new();
    let mut sent = HashSet::new();
    let mut flats: HashMap<ObjectId, FlatTree> = HashMap::new();
    let mut nodes_of: HashMap<ObjectId, HashSet<ObjectId>> = HashMap::new();
    // A snapshot whose trees were pruned here is no base (they cannot be read), and a wanted
    // one travels as its Snapshot object alone (the receiver records it pruned, §14.4).
    let pruned = repo.db.pruned()?;
    let haves: Vec<ObjectId> = haves
        .iter()
        .filter(|h| !pruned.contains(h))
        .copied()
        .collect();
    let haves = &haves[..];
    let newest_have = haves
        .iter()
        .filter_map(|h| repo.db.snapshot(h).ok().flatten())
        .max_by_key(|r| (r.snap.time, r.id))
        .map(|r| r.id);
    let mut available: HashSet<ObjectId> = haves.iter().copied().collect();
    for w in wanted {
        if pruned.contains(w) {
            if sent.insert(*w) {
                out.push((Kind::Snapshot, *w));
            }
            continue;
        }
        let row = repo.snapshot(w)?;
        let base = row
            .snap
            .parents
            .iter()
            .copied()
            .find(|p| available.contains(p))
            .or(newest_have);
        let flat = flatten(&repo.objects, row.snap.root)?;
        let (base_flat, base_nodes) = match base {
            Some(b) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = flats.entry(b) {
                    let br = repo.snapshot(&b)?;
                    slot.insert(flatten(&repo.objects, br.snap.root)?);
                    nodes_of.insert(b, all_dir_nodes(repo, br.snap.root)?);
                }
                (flats.get(&b), nodes_of.get(&b))
            }
            None => (None, None),
        };
        for (path, e) in &flat {
            let be = base_flat.and_then(|f| f.get(path));
            if be.is_some_and(|b| b.same_content(e)) {
                continue;
            }
            entry_objects(repo, e, be, &mut out, &mut sent)?;
        }
        let empty = HashSet::new();
        let mut dn = Vec::new();
        dir_nodes(repo, row.snap.root, base_nodes.unwrap_or(&empty), &mut dn)?;
        for n in dn {
            if sent.insert(n) {
                out.push((Kind::DirNode, n));
            }
        }
        if sent.insert(*w) {
            out.push((Kind::Snapshot, *w));
        }
        available.insert(*w);
        // Keep memory bounded: only the latest flats are reused as bases.
        if flats.len() > 4 {
            flats.clear();
            nodes_of.clear();
        }
        flats.insert(*w, flat);
        nodes_of.insert(*w, all_dir_nodes(repo, row.snap.root)?);
    }
    Ok(out)
}

/// Raw pack bytes at most this large (uncompressed objects) before a new pack starts, so that
/// an interrupted transfer keeps the packs that arrived.
const SEND_PACK_RAW: u64 = 128 << 20;

/// Write `objects` into packs in a temp dir and stream them; the peer stores each one.
pub fn send_packs<R: Read, W: Write>(
    repo: &Repo,
    conn: &mut Conn<R, W>,
    objects: &[(Kind, ObjectId)],
    progress: &dyn Fn(u64, u64),
) -> Result<u64> {
    if objects.is_empty() {
        return Ok(0);
    }
    let tmp = tempfile::Builder::new()
        .prefix("send-")
        .tempdir_in(&repo.store_dir)
        .ctx(|| format!("creating a temp dir in {}", repo.store_dir.display()))?;
    let mut sent_bytes = 0u64;
    let mut i = 0;
    let total = objects.len() as u64;
    while i < objects.len() {
        let mut w = PackWriter::new(tmp.path(), repo.objects.level)?;
        while i < objects.len() && w.raw_bytes() < SEND_PACK_RAW {
            let (kind, id) = objects[i];
            let bytes = repo.objects.read(id, kind)?;
            w.add(kind, id, &bytes)?;
            i += 1;
        }
        let count = w.object_count() as u64;
        let Some((name, _)) = w.finish()? else {
            continue;
        };
        let path = tmp.path().join(format!("{name}.pack"));
        let size = std::fs::metadata(&path)
            .ctx(|| format!("reading {}", path.display()))?
            .len();
        conn.send(&Msg::PackStart {
            objects: count,
            bytes: size,
        })?;
        let mut f = std::fs::File::open(&path).ctx(|| format!("opening {}", path.display()))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f
                .read(&mut buf)
                .ctx(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            conn.send(&Msg::PackChunk(buf[..n].to_vec()))?;
        }
        conn.send(&Msg::PackEnd)?;
        crate::protocol::expect(conn.recv()?, "PackStored", |m| match m {
            Msg::PackStored { name } => Some(name),
            _ => None,
        })?;
        sent_bytes += size;
        progress(i as u64, total);
        let _ = std::fs::remove_file(&path);
    }
    Ok(sent_bytes)
}

/// The objects an object names, with the kind each must have.
pub fn references(kind: Kind, id: ObjectId, bytes: &[u8]) -> Result<Vec<(ObjectId, Kind)>> {
    let data_kind = |len: u64, small: Kind| {
        if len >= LARGE_OBJECT {
            Kind::Chunked
        } else {
            small
        }
    };
    let mut out = Vec::new();
    let entry_refs = |e: &Entry, out: &mut Vec<(ObjectId, Kind)>| -> Result<()> {
        if !valid_name(&e.name) {
            return Err(Error::CorruptObject {
                id,
                why: format!("entry name {:?} is not allowed", e.name),
            });
        }
        match (e.kind, e.id) {
            (EntryKind::File, Some(i)) => out.push((i, data_kind(e.size, Kind::Blob))),
            (EntryKind::Session, Some(i)) => out.push((i, Kind::Session)),
            (EntryKind::Dir, Some(i)) => out.push((i, Kind::DirNode)),
            (EntryKind::Conflict, Some(i)) => out.push((i, Kind::Conflict)),
            (EntryKind::Symlink, None) => {}
            _ => {
                return Err(Error::CorruptObject {
                    id,
                    why: format!("entry {:?} has a malformed id", e.name),
                })
            }
        }
        Ok(())
    };
    match kind {
        Kind::Line | Kind::Blob => {}
        Kind::Chunked => out.extend(
            decode::<Chunked>(id, bytes)?
                .chunks
                .iter()
                .map(|c| (c.id, Kind::Blob)),
        ),
        Kind::ListNode => {
            let n: ListNode = decode(id, bytes)?;
            out.extend(n.lines.iter().map(|l| (l.id, data_kind(l.len, Kind::Line))));
            out.extend(n.children.iter().map(|c| (c.id, Kind::ListNode)));
        }
        Kind::Session => {
            let s: Session = decode(id, bytes)?;
            out.extend(s.lines.map(|l| (l, Kind::ListNode)));
            out.extend(s.tail.map(|t| (t.id, data_kind(t.len, Kind::Line))));
        }
        Kind::DirNode => {
            let n: DirNode = decode(id, bytes)?;
            for e in &n.entries {
                entry_refs(e, &mut out)?;
            }
            out.extend(n.children.iter().map(|c| (c.id, Kind::DirNode)));
        }
        Kind::Conflict => {
            let c: Conflict = decode(id, bytes)?;
            for e in c.base.iter().chain(c.sides.iter().map(|(_, e)| e)) {
                entry_refs(e, &mut out)?;
            }
        }
        Kind::Snapshot => {
            let s = Snapshot::decode(id, bytes)?;
            out.push((s.root, Kind::DirNode));
        }
    }
    Ok(out)
}

/// Receive one pack (after `PackStart`): write it to a temp file, then check it whole: its
/// structure, every object's hash, and that every object it names is in the pack or the
/// store. Only then is it renamed into place and indexed.
pub fn receive_pack<R: Read, W: Write>(
    repo: &mut Repo,
    conn: &mut Conn<R, W>,
    expect_bytes: u64,
) -> Result<Option<String>> {
    const MAX_PACK: u64 = 8 << 30;
    if expect_bytes > MAX_PACK {
        return Err(Error::Other(format!(
            "protocol error: announced pack of {expect_bytes} bytes is too large"
        )));
    }
    let dir = repo.objects.packs_dir();
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        "tmp-recv-{}-{}.pack",
        std::process::id(),
        rand::random::<u64>()
    ));
    let guard = TempGuard(tmp.clone());
    {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?,
        );
        let mut got = 0u64;
        loop {
            match conn.recv()? {
                Msg::PackChunk(b) => {
                    got += b.len() as u64;
                    if got > expect_bytes {
                        return Err(Error::Other(
                            "protocol error: the peer sent more pack bytes than announced".into(),
                        ));
                    }
                    f.write_all(&b)
                        .ctx(|| format!("writing {}", tmp.display()))?;
                }
                Msg::PackEnd => break,
                other => {
                    return Err(Error::Other(format!(
                        "protocol error: unexpected {:?} inside a pack",
                        std::mem::discriminant(&other)
                    )))
                }
            }
        }
        if got != expect_bytes {
            return Err(Error::Other(format!(
                "protocol error: pack has {got} bytes, {expect_bytes} announced"
            )));
        }
        f.flush().ctx(|| format!("writing {}", tmp.display()))?;
        f.get_ref()
            .sync_all()
            .ctx(|| format!("syncing {}", tmp.display()))?;
    }
    let pack = Pack::open(&tmp)?;
    let (stored, actual) = pack.checksums();
    if stored != actual {
        return Err(Error::Other(
            "the received pack does not match its checksum: rejected".into(),
        ));
    }
    let name = hex::encode(&actual[..16]);
    let in_pack: HashSet<ObjectId> = (0..pack.object_count())
        .map(|i| pack.entry(i).map(|e| e.id))
        .collect::<Result<_>>()?;
    pack.for_each_object(|e, bytes| {
        if ObjectId::hash(e.kind, bytes) != e.id {
            return Err(Error::Other(format!(
                "the peer sent object {} whose bytes do not match its id: rejected",
                e.id
            )));
        }
        for (r, k) in references(e.kind, e.id, bytes)? {
            // A snapshot whose trees the sender pruned arrives alone: only its row can
            // promise a tree (`store_snapshots` checks that for rows not marked pruned).
            if e.kind == Kind::Snapshot && !in_pack.contains(&r) && !repo.objects.contains(&r)? {
                continue;
            }
            // A tree may name purged data: its absence is the purge, not damage.
            if !in_pack.contains(&r) && k.is_data() && repo.objects.is_purged(&r) {
                continue;
            }
            if in_pack.contains(&r) {
                match pack.find(&r)? {
                    Some(x) if x.kind == k => continue,
                    _ => {
                        return Err(Error::Other(format!(
                            "object {} names {r} as a {} but it is not one: rejected",
                            e.id,
                            k.name()
                        )))
                    }
                }
            }
            match repo.objects.locate(&r)? {
                Some((_, x)) if x.kind == k => {}
                Some(_) => {
                    return Err(Error::Other(format!(
                        "object {} names {r} as a {} but it is not one: rejected",
                        e.id,
                        k.name()
                    )))
                }
                None => {
                    return Err(Error::Other(format!(
                    "object {} names {r}, which neither the pack nor this store holds: rejected",
                    e.id
                )))
                }
            }
        }
        Ok(())
    })?;
    // A peer that has not learned a purge yet (or lacks `purge-tombstones`) may send purged
    // data: it is copied into a pack of its own without it, so that no byte of it lands.
    let holds_purged = (0..pack.object_count()).any(|i| {
        pack.entry(i)
            .is_ok_and(|e| e.kind.is_data() && repo.objects.is_purged(&e.id))
    });
    let name = if holds_purged {
        let mut ins = crate::store::Inserter::new(&repo.objects);
        pack.for_each_object(|e, b| ins.insert(e.kind, e.id, b).map(|_| ()))?;
        drop(pack);
        match ins.finish()? {
            Some((name, _)) => name,
            None => return Ok(None),
        }
    } else {
        drop(pack);
        let dest = dir.join(format!("{name}.pack"));
        if dest.exists() {
            return Ok(None);
        }
        std::fs::rename(&tmp, &dest).ctx(|| format!("renaming {} into place", tmp.display()))?;
        std::mem::forget(guard);
        crate::fsutil::fsync_dir(&dir)?;
        name
    };
    let dest = dir.join(format!("{name}.pack"));
    crate::failpoint::hit("receive-after-pack-rename");
    repo.objects.add_pack(&name)?;
    let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    let count = repo
        .objects
        .packs()
        .last()
        .map(|p| p.object_count())
        .unwrap_or(0);
    let path = repo.db_path();
    let t = repo.db.transaction()?;
    tx::insert_pack(&t, &name, size, count as u64, crate::clock::now_ms()).map_err(|e| {
        Error::Db {
            path: path.clone(),
            source: e,
        }
    })?;
    t.commit().map_err(|e| Error::Db { path, source: e })?;
    Ok(Some(name))
}

struct TempGuard(std::path::PathBuf);
impl Drop for TempGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Record snapshot rows for snapshots whose objects are all present. Rejects any whose id,
/// root or parents do not check out. Returns how many were new.
pub fn store_snapshots(repo: &mut Repo, snaps: &[SnapshotInfo]) -> Result<u64> {
    let mut decoded = Vec::new();
    for s in snaps {
        if ObjectId::hash(Kind::Snapshot, &s.raw) != s.id {
            return Err(Error::Other(format!(
                "snapshot {} does not match its id: rejected",
                s.id
            )));
        }
        let snap = Snapshot::decode(s.id, &s.raw)?;
        match repo.objects.locate(&snap.root)? {
            _ if s.trees_pruned => {}
            Some((_, e)) if e.kind == Kind::DirNode => {}
            _ => {
                return Err(Error::Other(format!(
                    "snapshot {} arrived without its tree: rejected",
                    s.id
                )))
            }
        }
        decoded.push((s.id, s.raw.clone(), snap));
    }
    let batch: HashSet<ObjectId> = decoded.iter().map(|d| d.0).collect();
    for (id, _, snap) in &decoded {
        for p in &snap.parents {
            if !batch.contains(p) && repo.db.snapshot(p)?.is_none() {
                return Err(Error::Other(format!(
                    "snapshot {id} names parent {p}, which this store lacks: rejected"
                )));
            }
        }
    }
    let parents: HashMap<ObjectId, Vec<ObjectId>> = decoded
        .iter()
        .map(|(i, _, s)| (*i, s.parents.clone()))
        .collect();
    let times: HashMap<ObjectId, i64> = decoded.iter().map(|(i, _, s)| (*i, s.time)).collect();
    let order = super::graph::topo(&batch, &parents, &times);
    let by_id: HashMap<ObjectId, (Vec<u8>, Snapshot)> =
        decoded.into_iter().map(|(i, r, s)| (i, (r, s))).collect();
    let pruned: HashSet<ObjectId> = snaps
        .iter()
        .filter(|s| s.trees_pruned)
        .map(|s| s.id)
        .collect();
    let mut stats = HashMap::new();
    for id in &order {
        let (_, s) = &by_id[id];
        if !repo.objects.contains(id)? {
            return Err(Error::Other(format!(
                "snapshot {id} arrived without its object in a pack: rejected"
            )));
        }
        if pruned.contains(id) {
            stats.insert(*id, Default::default());
            continue;
        }
        let flat = flatten(&repo.objects, s.root)?;
        if let Some(p) = crate::merge::leaf_over_dir(&flat) {
            return Err(Error::Other(format!(
                "snapshot {id} names {p} both as a directory and as a file or link: rejected"
            )));
        }
        stats.insert(*id, crate::tree::stats_of(&repo.objects, &flat)?);
        // The row is only a copy: the snapshot object itself must be in a pack (so that
        // `verify --repair` can rebuild the row from the packs).
        if !repo.objects.contains(id)? {
            return Err(Error::Other(format!(
                "snapshot {id} arrived without its object in a pack: rejected"
            )));
        }
    }
    let path = repo.db_path();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    let t = repo.db.transaction()?;
    let mut added = 0;
    for id in &order {
        let (raw, s) = &by_id[id];
        if tx::insert_snapshot(&t, id, raw, s, &stats[id]).map_err(wrap)? {
            added += 1;
            if pruned.contains(id) {
                tx::mark_pruned(&t, id, crate::clock::now_ms()).map_err(wrap)?;
            }
        }
    }
    t.commit().map_err(wrap)?;
    Ok(added)
}

/// Snapshot objects for the given ids, from the database rows, with their pruned marks.
pub fn snapshot_infos(repo: &Repo, ids: &[ObjectId]) -> Result<Vec<SnapshotInfo>> {
    let pruned = repo.db.pruned()?;
    ids.iter()
        .map(|id| {
            let row = repo.snapshot(id)?;
            Ok(SnapshotInfo {
                id: *id,
                raw: row.raw,
                trees_pruned: pruned.contains(id),
            })
        })
        .collect()
}

/// Refuse to send snapshots whose trees were pruned to a peer that cannot record them.
pub fn check_peer_takes_pruned(
    repo: &Repo,
    wants: &[ObjectId],
    peer_caps: &[String],
) -> Result<()> {
    if peer_caps.iter().any(|c| c == crate::protocol::PRUNED_MARKS) {
        return Ok(());
    }
    let pruned = repo.db.pruned()?;
    if let Some(p) = wants.iter().find(|w| pruned.contains(w)) {
        return Err(Error::Other(format!(
            "snapshot {} was pruned here and the other sage lacks the `pruned-marks` capability to receive it without its trees\n  fix: upgrade sage on the other side",
            p.short()
        )));
    }
    Ok(())
}
