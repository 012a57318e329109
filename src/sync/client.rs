//! The client side of push, pull and sync. Both sides commit their homes first; the graphs
//! are exchanged; the sender computes what the receiver lacks; the receiver verifies and
//! stores it, merges and applies.

use super::apply::{MergeInto, MergeOutcome};
use super::graph::{topo, Graph};
use super::objects::{objects_to_send, receive_pack, send_packs, snapshot_infos, store_snapshots};
use super::remote::{self, Remote};
use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::protocol::{expect, Msg, SnapshotInfo, PROTO_MAX, PROTO_MIN};
use crate::repo::{CommitOptions, Repo};
use crate::snapshot::Snapshot;
use crate::transport::Transport;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Default)]
pub struct SyncOptions {
    pub dry_run: bool,
    pub force: bool,
    /// Accept a remote whose store id changed or whose home lost its marker.
    pub init: bool,
    /// Selective sync: only these sessions (ids, prefixes or transcript paths) ...
    pub sessions: Vec<String>,
    /// ... and the project directories matching these globs (`*`, `?`), by this home's names.
    pub projects: Vec<String>,
}

impl SyncOptions {
    pub fn selective(&self) -> bool {
        !self.sessions.is_empty() || !self.projects.is_empty()
    }
}

/// `*` and `?` wildcards over a whole name.
fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The canonical tree paths a selective sync covers (each selects itself and what is under
/// it), from the sessions and project globs named, looked up in this home's and (if known)
/// the remote head's trees. `None` for a full sync.
fn selectors(
    repo: &Repo,
    opts: &SyncOptions,
    theirs: Option<ObjectId>,
) -> Result<Option<Vec<String>>> {
    if !opts.selective() {
        return Ok(None);
    }
    let pm = repo.pathmap()?;
    let mut flats = Vec::new();
    if let Some(h) = repo.head()? {
        flats.push(repo.flat_local(&h)?);
    }
    if let Some(t) = theirs.filter(|t| repo.db.snapshot(t).ok().flatten().is_some()) {
        flats.push(repo.flat_local(&t)?);
    }
    let mut index = crate::session::SessionIndex::new();
    for f in &flats {
        index.add_flat(f);
    }
    let mut out = Vec::new();
    for s in &opts.sessions {
        match index.resolve(s, "this home's or the remote's snapshots", "list sessions with `sage show HEAD:`")? {
            crate::session::Target::Session(parts) => out.extend(parts.roots),
            crate::session::Target::Path(p) => {
                return Err(Error::Usage(format!(
                    "--session {p}: not a session (give its id, a unique prefix, or its transcript path)"
                )))
            }
        }
    }
    for g in &opts.projects {
        // A project may be named by its directory or by the path Claude Code ran in.
        let pat = if g.starts_with('/') {
            crate::live::encode_project_dir(g)
        } else {
            g.trim_start_matches("projects/")
                .trim_end_matches('/')
                .to_string()
        };
        let mut any = false;
        for f in &flats {
            for p in f.keys() {
                if let Some(dir) = p
                    .strip_prefix("projects/")
                    .and_then(|r| r.split('/').next())
                {
                    if glob_match(&pat, dir) {
                        out.push(format!("projects/{dir}"));
                        any = true;
                    }
                }
            }
        }
        if !any {
            return Err(Error::Usage(format!(
                "--project {g}: no project directory matches (see `ls ~/.claude/projects`)"
            )));
        }
    }
    let mut out: Vec<String> = out.iter().map(|p| pm.canonical_path(p)).collect();
    out.sort();
    out.dedup();
    Ok(Some(out))
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    pub remote: String,
    pub remote_store: String,
    pub remote_created: bool,
    pub pull: Option<MergeOutcome>,
    pub push: Option<String>,
    pub remote_head: Option<String>,
    pub snapshots_sent: usize,
    pub snapshots_received: usize,
    pub objects_sent: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub dry_run: bool,
    /// `--dry-run`: uncompressed bytes of the objects a push would send.
    pub bytes_to_send: u64,
    /// `--dry-run` push: the paths the remote lacks or holds older versions of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push_plan: Vec<super::apply::PlanItem>,
    /// `--dry-run` against a remote with no store yet (a push would create it).
    pub remote_has_no_store: bool,
    /// Purge tombstones new to the remote, and new here (store-format.md §14.5).
    pub tombstones_sent: u64,
    pub tombstones_received: u64,
}

/// The uncompressed size of `objects` (from the pack indexes).
fn raw_size(repo: &Repo, objects: &[(Kind, ObjectId)]) -> Result<u64> {
    let mut n = 0;
    for (_, id) in objects {
        if let Some((_, e)) = repo.objects.locate(id)? {
            n += e.len as u64;
        }
    }
    Ok(n)
}

struct Session {
    t: Transport,
    store_id: String,
    bare: bool,
    /// The remote's capabilities (from Welcome).
    caps: Vec<String>,
}

/// Reach the remote and exchange Hello / Welcome (runs while the local home is scanned).
fn connect(r: &Remote, create: bool, opts: &SyncOptions) -> Result<(Transport, Msg)> {
    let (mut t, path) = Transport::connect(r)?;
    let hello = Msg::Hello {
        proto_min: PROTO_MIN,
        proto_max: PROTO_MAX,
        version: env!("CARGO_PKG_VERSION").into(),
        path,
        bare: r.bare,
        // A remote whose store sage knew is never given a new one without --init.
        create: create && !opts.dry_run && (r.store_id.is_none() || opts.init),
        caps: crate::protocol::our_caps(),
    };
    if let Err(e) = t.conn.send(&hello) {
        return Err(t.explain(e));
    }
    let welcome = match t.conn.recv() {
        Ok(m) => m,
        Err(Error::Other(m)) if m.contains("has no sage store yet") && r.store_id.is_some() => {
            return Err(Error::Refused(format!(
                "remote {} has no sage store any more, but sage knew it as store {}: the store was deleted, or this is another machine or an unmounted disk\n  fix: check the remote; if it is right, run again with --init to start a new store there",
                r.name,
                r.store_id.as_deref().unwrap_or_default()
            )))
        }
        Err(e) => return Err(t.explain(e)),
    };
    Ok((t, welcome))
}

/// Check the remote's identity against what this store knows of it.
fn accept(
    repo: &Repo,
    r: &Remote,
    t: Transport,
    welcome: Msg,
    opts: &SyncOptions,
    report: &mut SyncReport,
) -> Result<Session> {
    let (store_id, created, bare, marker, home_exists, proto, version, caps) =
        expect(welcome, "Welcome", |m| match m {
            Msg::Welcome {
                store_id,
                created,
                bare,
                home_marker,
                home_exists,
                proto,
                version,
                caps,
            } => Some((
                store_id,
                created,
                bare,
                home_marker,
                home_exists,
                proto,
                version,
                caps,
            )),
            _ => None,
        })?;
    if !(PROTO_MIN..=PROTO_MAX).contains(&proto) {
        let _ = t.finish();
        return Err(Error::Other(format!(
            "the remote (sage {version}) chose protocol {proto}, this sage speaks {PROTO_MIN}..{PROTO_MAX}: upgrade the older sage"
        )));
    }
    // What this run will ask of the remote: say which capability its sage lacks, not fail
    // mid-way with a protocol error.
    let mut needed = vec!["have"];
    if bare {
        needed.push("bare-refs");
    }
    if opts.force {
        needed.push("force");
    }
    if opts.selective() {
        if bare {
            let _ = t.finish();
            return Err(Error::Usage(
                "a bare store keeps whole snapshots: push to it without --session/--project".into(),
            ));
        }
        needed.push("selective");
    }
    if let Some(missing) = needed.iter().find(|c| !caps.iter().any(|x| x == *c)) {
        let _ = t.finish();
        return Err(Error::Other(format!(
            "the remote runs sage {version}, which lacks the `{missing}` capability this sync needs\n  fix: upgrade sage on the remote"
        )));
    }
    if let Err(e) = crate::purge::run::require_peer_caps(repo, &caps, &version, "the remote") {
        let _ = t.finish();
        return Err(e);
    }
    if let Some(known) = &r.store_id {
        if *known != store_id && !opts.init {
            return Err(Error::Refused(format!(
                "remote {} now has store {store_id}, but sage knew it as store {known}: the remote's store was replaced or this is another machine\n  fix: check the remote; if it is right, run again with --init to accept the new store",
                r.name
            )));
        }
        if let Some(m) = marker
            .as_ref()
            .filter(|m| **m != store_id && !bare && !opts.init)
        {
            return Err(Error::Refused(format!(
                "the home on {} is marked as belonging to store {m}, but the remote's store is {store_id}: two stores claim that home\n  fix: check the remote; if it is right, run again with --init",
                r.name
            )));
        }
        if !bare && home_exists && marker.is_none() && !opts.init {
            return Err(Error::Refused(format!(
                "the home on {} has no sage marker although sage synced with it before (an unmounted disk? a recycled host?)\n  fix: check the remote; if it is right, run again with --init",
                r.name
            )));
        }
    }
    if r.store_id.as_deref() != Some(&store_id) && !opts.dry_run {
        remote::set_store_id(&repo.db, &r.name, &store_id)?;
    }
    report.remote = r.name.clone();
    report.remote_store = store_id.clone();
    report.remote_created = created;
    let _ = repo;
    Ok(Session {
        t,
        store_id,
        bare,
        caps,
    })
}

struct RemoteGraph {
    head: Option<ObjectId>,
    refs: Vec<(String, ObjectId)>,
    snaps: HashMap<ObjectId, Snapshot>,
    /// Snapshots whose trees the remote pruned (`pruned-marks`): never a "have".
    pruned: HashSet<ObjectId>,
}

fn graph(s: &mut Session) -> Result<RemoteGraph> {
    s.t.conn.send(&Msg::Graph)?;
    let (head, refs, snapshots) = expect(s.t.conn.recv()?, "GraphReply", |m| match m {
        Msg::GraphReply {
            head,
            refs,
            snapshots,
        } => Some((head, refs, snapshots)),
        _ => None,
    })?;
    let mut snaps = HashMap::new();
    let mut pruned = HashSet::new();
    for SnapshotInfo {
        id,
        raw,
        trees_pruned,
    } in snapshots
    {
        if trees_pruned {
            pruned.insert(id);
        }
        if ObjectId::hash(Kind::Snapshot, &raw) != id {
            return Err(Error::Other(format!(
                "the remote sent snapshot {id} whose bytes do not match its id"
            )));
        }
        snaps.insert(id, Snapshot::decode(id, &raw)?);
    }
    Ok(RemoteGraph {
        head,
        refs,
        snaps,
        pruned,
    })
}

/// Both stores end with the union of their tombstones, each finishing the purges new to it
/// (home rewritten, packs cleaned) before anything else of the sync (store-format.md §14.5).
fn exchange_tombstones(
    repo: &mut Repo,
    s: &mut Session,
    name: &str,
    report: &mut SyncReport,
) -> Result<()> {
    if !s
        .caps
        .iter()
        .any(|c| c == crate::protocol::PURGE_TOMBSTONES)
    {
        return Ok(()); // neither side has any (checked when connecting)
    }
    let ours = crate::purge::list_all(&repo.db, &repo.store_dir)?;
    let dry_run = report.dry_run;
    crate::purge::run::send_batches(&ours, |stones, last| {
        s.t.conn.send(&Msg::Tombstones {
            stones,
            dry_run,
            last,
        })
    })?;
    let mut theirs = Vec::new();
    let added = loop {
        let (batch, n, last) = expect(s.t.conn.recv()?, "TombstonesReply", |m| match m {
            Msg::TombstonesReply {
                stones,
                added,
                last,
            } => Some((stones, added, last)),
            _ => None,
        })?;
        if theirs.len() + batch.len() > crate::protocol::MAX_IDS {
            return Err(Error::Other(
                "protocol error: the remote sent too many tombstones".into(),
            ));
        }
        theirs.extend(batch);
        if last {
            break n;
        }
    };
    report.tombstones_sent = added;
    let remote_ids: HashSet<ObjectId> = theirs.iter().map(|t| t.id).collect();
    // A dry run records what the remote purged (as it stores what it fetches: a fetched tree
    // may lack those lines) but changes no home.
    report.tombstones_received =
        crate::purge::run::accept_tombstones(repo, &theirs, &format!("remote {name}"), !dry_run)?;
    if dry_run {
        return Ok(());
    }
    if ours.iter().all(|t| remote_ids.contains(&t.id)) {
        crate::purge::set_synced(&repo.db, name, crate::clock::now_ms())?;
    }
    Ok(())
}

fn commit_local(repo: &mut Repo, why: &str) -> Result<()> {
    if repo.own_home {
        repo.commit(&CommitOptions {
            kind: "auto",
            message: why,
            progress: &|_, _| {},
        })?;
    }
    Ok(())
}

fn remote_commit(s: &mut Session, why: &str) -> Result<()> {
    if s.bare {
        return Ok(());
    }
    s.t.conn.send(&Msg::Commit {
        message: why.into(),
    })?;
    expect(s.t.conn.recv()?, "Committed", |m| match m {
        Msg::Committed { head } => Some(head),
        _ => None,
    })?;
    Ok(())
}

fn do_pull(
    repo: &mut Repo,
    r: &Remote,
    s: &mut Session,
    opts: &SyncOptions,
    report: &mut SyncReport,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<RemoteGraph> {
    let rg = graph(s)?;
    let local = Graph::load(&repo.db)?;
    let heads: Vec<(ObjectId, String)> = if s.bare {
        rg.refs
            .iter()
            .filter_map(|(n, id)| n.strip_prefix("stores/").map(|st| (*id, st.to_string())))
            .collect()
    } else {
        rg.head
            .map(|h| (h, s.store_id.clone()))
            .into_iter()
            .collect()
    };
    // Snapshots reachable from the remote heads that this store lacks, parents first.
    let mut need = HashSet::new();
    let mut stack: Vec<ObjectId> = heads.iter().map(|h| h.0).collect();
    while let Some(x) = stack.pop() {
        if local.contains(&x) || !need.insert(x) {
            continue;
        }
        let snap = rg.snaps.get(&x).ok_or_else(|| {
            Error::Other(format!("the remote names snapshot {x} but did not send it"))
        })?;
        stack.extend(snap.parents.iter().copied());
    }
    let parents: HashMap<ObjectId, Vec<ObjectId>> = rg
        .snaps
        .iter()
        .map(|(i, s)| (*i, s.parents.clone()))
        .collect();
    let times: HashMap<ObjectId, i64> = rg.snaps.iter().map(|(i, s)| (*i, s.time)).collect();
    let wants = topo(&need, &parents, &times);
    // Only snapshots with their trees on both sides are "have" (store-format.md §14.4).
    let haves: Vec<ObjectId> = rg
        .snaps
        .keys()
        .filter(|id| local.contains(id) && !local.pruned.contains(id) && !rg.pruned.contains(id))
        .copied()
        .collect();
    report.snapshots_received = wants.len();
    // A dry run fetches too (as `git fetch` does: objects and snapshot rows no ref names), so
    // that it can show the merge it would apply; it changes no home and moves no ref.
    if !wants.is_empty() {
        s.t.conn.send(&Msg::Fetch {
            wants: wants.clone(),
            haves,
        })?;
        loop {
            match s.t.conn.recv()? {
                Msg::PackStart { bytes, .. } => {
                    let name = receive_pack(repo, &mut s.t.conn, bytes)?;
                    s.t.conn.send(&Msg::PackStored { name })?;
                    progress("receiving", s.t.conn.bytes_in, 0);
                }
                Msg::FetchDone { snaps } => {
                    let want_set: HashSet<ObjectId> = wants.iter().copied().collect();
                    if snaps.iter().any(|x| !want_set.contains(&x.id)) {
                        return Err(Error::Other(
                            "the remote sent snapshots that were not asked for".into(),
                        ));
                    }
                    store_snapshots(repo, &snaps)?;
                    break;
                }
                other => {
                    return Err(Error::Other(format!(
                        "protocol error: unexpected {:?} during fetch",
                        std::mem::discriminant(&other)
                    )))
                }
            }
        }
    }
    let mut last = None;
    for (head, store) in heads {
        if store == repo.store_id()? && s.bare {
            continue;
        }
        let select = selectors(repo, opts, Some(head))?;
        let out = repo.merge_into_home(&MergeInto {
            theirs: head,
            their_store: &store,
            trust_config: r.trust_config,
            dry_run: opts.dry_run,
            force: false,
            select: select.as_deref(),
        })?;
        last = Some(out);
    }
    report.pull = last;
    Ok(rg)
}

fn do_push(
    repo: &mut Repo,
    s: &mut Session,
    opts: &SyncOptions,
    report: &mut SyncReport,
    progress: &dyn Fn(&str, u64, u64),
    known: Option<RemoteGraph>,
) -> Result<()> {
    let Some(head) = repo.head()? else {
        return Err(Error::Refused(
            "nothing to push: this store has no snapshot yet (`sage commit` first)".into(),
        ));
    };
    // After a pull on the same connection the remote's graph is unchanged: reuse it.
    let rg = match known {
        Some(rg) => rg,
        None => graph(s)?,
    };
    let local = Graph::load(&repo.db)?;
    let wants = local.missing_from(&[head], &|x| rg.snaps.contains_key(x));
    crate::sync::objects::check_peer_takes_pruned(repo, &wants, &s.caps)?;
    // Only snapshots with their trees on both sides are "have" (store-format.md §14.4).
    let haves: Vec<ObjectId> = rg
        .snaps
        .keys()
        .filter(|id| local.contains(id) && !local.pruned.contains(id) && !rg.pruned.contains(id))
        .copied()
        .collect();
    let mut objects = objects_to_send(repo, &wants, &haves)?;
    if haves.is_empty() && !objects.is_empty() && !rg.snaps.is_empty()
        || (haves.is_empty() && !opts.dry_run && !objects.is_empty())
    {
        // No snapshot in common: the remote may still hold many objects (an interrupted
        // first push, a home copied by hand): ask, in batches.
        let mut keep = Vec::with_capacity(objects.len());
        for chunk in objects.chunks(200_000) {
            s.t.conn.send(&Msg::Have {
                ids: chunk.iter().map(|o| o.1).collect(),
            })?;
            let have = expect(s.t.conn.recv()?, "HaveReply", |m| match m {
                Msg::HaveReply { have } => Some(have),
                _ => None,
            })?;
            if have.len() != chunk.len() {
                return Err(Error::Other(
                    "protocol error: HaveReply of the wrong length".into(),
                ));
            }
            keep.extend(chunk.iter().zip(have).filter(|(_, h)| !h).map(|(o, _)| *o));
        }
        objects = keep;
    }
    report.snapshots_sent = wants.len();
    report.objects_sent = objects.len();
    if opts.dry_run {
        report.bytes_to_send = raw_size(repo, &objects)?;
        // What the remote would gain, against its head as this store knows it (after an
        // earlier sync it usually does); the remote's own merge decides conflicts.
        let known = rg
            .head
            .filter(|h| local.contains(h) && !local.pruned.contains(h))
            .or_else(|| {
                haves
                    .iter()
                    .max_by_key(|h| (local.time.get(*h).copied().unwrap_or(0), **h))
                    .copied()
            });
        if let Some(rh) = known {
            let theirs = crate::tree::flatten(&repo.objects, repo.snapshot(&rh)?.snap.root)?;
            let ours = crate::tree::flatten(&repo.objects, repo.snapshot(&head)?.snap.root)?;
            // Shown as the remote names its paths.
            let pm = repo.pathmap()?;
            let (theirs, ours) = (pm.canonicalize(&theirs), pm.canonicalize(&ours));
            report.push_plan = super::apply::plan_of(&theirs, &ours)
                .into_iter()
                .filter(|i| i.change != "replaced" || !i.session)
                .map(|mut i| {
                    i.path = pm.local_path(&i.path, &s.store_id);
                    i
                })
                .collect();
        }
        return Ok(());
    }
    report.bytes_sent += send_packs(repo, &mut s.t.conn, &objects, &|done, total| {
        progress("sending", done, total)
    })?;
    if !wants.is_empty() {
        s.t.conn.send(&Msg::Snapshots {
            snaps: snapshot_infos(repo, &wants)?,
        })?;
        expect(s.t.conn.recv()?, "SnapshotsStored", |m| {
            matches!(m, Msg::SnapshotsStored { .. }).then_some(())
        })?;
    }
    if s.bare {
        s.t.conn.send(&Msg::SetRef {
            name: format!("stores/{}", repo.store_id()?),
            id: head,
        })?;
        expect(s.t.conn.recv()?, "RefSet", |m| {
            matches!(m, Msg::RefSet).then_some(())
        })?;
        report.push = Some(format!("stored as stores/{}", repo.store_id()?));
        report.remote_head = Some(head.to_hex());
    } else {
        s.t.conn.send(&Msg::Merge {
            head,
            store_id: repo.store_id()?,
            dry_run: false,
            force: opts.force,
            select: selectors(repo, opts, rg.head)?.unwrap_or_default(),
        })?;
        let (rhead, summary) = expect(s.t.conn.recv()?, "Merged", |m| match m {
            Msg::Merged { head, summary } => Some((head, summary)),
            _ => None,
        })?;
        report.push = Some(summary);
        report.remote_head = rhead.map(|h| h.to_hex());
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Push,
    Pull,
    Both,
}

/// Run a push, a pull, or both (pull then push) over one connection.
/// `progress(what, done, total)` is called as objects travel (`total` 0 when unknown).
pub fn run(
    repo: &mut Repo,
    name: &str,
    dir: Direction,
    opts: &SyncOptions,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<SyncReport> {
    let r = remote::get(&repo.db, name)?;
    if r.bare && opts.force {
        return Err(Error::Usage(
            "--force makes no sense for a bare store (it never merges)".into(),
        ));
    }
    let mut report = SyncReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    // Connect (ssh, the remote sage starting) while this home is being scanned.
    let (r2, opts2, create) = (r.clone(), opts.clone(), dir != Direction::Pull);
    let connecting = std::thread::spawn(move || connect(&r2, create, &opts2));
    let local = if opts.dry_run {
        Ok(())
    } else {
        commit_local(repo, &format!("before sync with {name}"))
    };
    let connected = connecting
        .join()
        .map_err(|_| Error::Other("internal error: the connecting thread panicked".into()))?;
    let (t, welcome) = match connected {
        Err(Error::Other(m)) if opts.dry_run && m.contains("has no sage store yet") => {
            return dry_run_without_store(repo, &r, dir, report);
        }
        c => c?,
    };
    if let Err(e) = local {
        let _ = t.finish();
        return Err(e);
    }
    let mut s = accept(repo, &r, t, welcome, opts, &mut report)?;
    let result = (|| -> Result<()> {
        // A path map whose remote store just became known is a map change: record it before
        // merging, so that both peers see it in a snapshot.
        if !opts.dry_run && repo.own_home && repo.pathmap_pending()? {
            commit_local(repo, &format!("project map for {name}"))?;
        }
        exchange_tombstones(repo, &mut s, name, &mut report)?;
        if !opts.dry_run {
            remote_commit(
                &mut s,
                &format!("before sync from {}", crate::clock::host()),
            )?;
        }
        let mut known = None;
        if dir != Direction::Push && !opts.force {
            known = Some(do_pull(repo, &r, &mut s, opts, &mut report, progress)?);
        }
        if dir != Direction::Pull {
            do_push(repo, &mut s, opts, &mut report, progress, known)?;
        }
        Ok(())
    })();
    report.bytes_sent = s.t.conn.bytes_out;
    report.bytes_received = s.t.conn.bytes_in;
    match result {
        Ok(()) => {
            s.t.finish()?;
            Ok(report)
        }
        Err(e) => Err(s.t.explain(e)),
    }
}

/// `--dry-run` against a remote that has no store yet: a push would create it and send all
/// history; a pull has nothing to get.
fn dry_run_without_store(
    repo: &Repo,
    r: &Remote,
    dir: Direction,
    mut report: SyncReport,
) -> Result<SyncReport> {
    report.remote = r.name.clone();
    report.remote_has_no_store = true;
    if dir != Direction::Pull {
        if let Some(head) = repo.head()? {
            let local = Graph::load(&repo.db)?;
            let wants = local.missing_from(&[head], &|_| false);
            let objects = objects_to_send(repo, &wants, &[])?;
            report.snapshots_sent = wants.len();
            report.objects_sent = objects.len();
            report.bytes_to_send = raw_size(repo, &objects)?;
        }
    }
    Ok(report)
}

/// Check that a remote answers; returns its sage version and store id (if it has a store).
pub fn probe(r: &Remote) -> Result<(String, String, bool)> {
    let (mut t, path) = Transport::connect(r)?;
    t.conn.send(&Msg::Hello {
        proto_min: PROTO_MIN,
        proto_max: PROTO_MAX,
        version: env!("CARGO_PKG_VERSION").into(),
        path,
        bare: r.bare,
        create: false,
        caps: crate::protocol::our_caps(),
    })?;
    match t.conn.recv() {
        Ok(Msg::Welcome {
            version, store_id, ..
        }) => {
            t.finish()?;
            Ok((version, store_id, true))
        }
        Ok(_) => Err(Error::Other("protocol error: expected Welcome".into())),
        Err(Error::Other(m)) if m.contains("has no sage store yet") => {
            Ok((String::from("?"), String::new(), false))
        }
        Err(e) => Err(t.explain(e)),
    }
}
