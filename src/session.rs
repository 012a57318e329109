//! Sessions as a user names them. A session is its transcript `projects/<dir>/<id>.jsonl`
//! together with what belongs to it: `projects/<dir>/<id>/` (subagents, tool results),
//! `file-history/<id>/` and `todos/<id>-*`. This module finds a session from what a user types
//! (a path, an id, or a unique prefix of one), reads its conversation as Claude Code would
//! (the `uuid`/`parentUuid` tree and the branch it resumes), fingerprints it, and follows it
//! through the snapshot history.
//!
//! It never prints: ambiguity and unknown names are `Error::Usage` values that say what to do.

use crate::diff::session_lines;
use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::messages::{fingerprint_key, parse, Message};
use crate::object::{decode, Chunked, DataRef, Entry, EntryKind, Session};
use crate::prolly::ObjectSource;
use crate::repo::Repo;
use crate::tree::{lookup_path, FlatTree};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// A session and the home-relative paths of all its parts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionParts {
    pub id: String,
    /// Its transcripts `projects/<dir>/<id>.jsonl` (one, unless the same id lives in two
    /// project directories); may be empty when only side files are left.
    pub transcripts: Vec<String>,
    /// Every part as a path a checkout or diff filter takes: the transcripts, the directories
    /// `projects/<dir>/<id>` and `file-history/<id>`, and each `todos/<id>-*` file.
    pub roots: Vec<String>,
}

/// What a user's argument names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Session(SessionParts),
    /// Not a session: a path, left as typed.
    Path(String),
}

/// Is `path` a main transcript `projects/<dir>/<id>.jsonl`? Returns (dir, id).
pub fn transcript_of(path: &str) -> Option<(&str, &str)> {
    let mut it = path.split('/');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some("projects"), Some(dir), Some(file), None) => {
            let id = file.strip_suffix(".jsonl")?;
            (!id.is_empty()).then_some((dir, id))
        }
        _ => None,
    }
}

/// Does `s` look like a session id (a UUID)?
pub fn looks_like_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The session a `todos/` file name belongs to: `<id>-agent-<x>.json` (or `<uuid>...`).
fn todo_owner(name: &str) -> Option<&str> {
    if name.len() > 36 && looks_like_id(&name[..36]) {
        return Some(&name[..36]);
    }
    name.split_once("-agent-").map(|(id, _)| id)
}

/// The sessions found among a set of paths (a snapshot's tree, the home), by id.
#[derive(Default, Debug)]
pub struct SessionIndex {
    paths: BTreeSet<String>,
    sessions: BTreeMap<String, SessionParts>,
}

impl SessionIndex {
    pub fn new() -> SessionIndex {
        SessionIndex::default()
    }

    /// Add paths (files, and directories that stand for their contents).
    pub fn add_paths<'a>(&mut self, paths: impl IntoIterator<Item = &'a str>) {
        let mut fresh = Vec::new();
        for p in paths {
            if self.paths.insert(p.to_string()) {
                fresh.push(p.to_string());
            }
        }
        for p in &fresh {
            if let Some((_, id)) = transcript_of(p) {
                let s = self.entry(id);
                push_unique(&mut s.transcripts, p);
                push_unique(&mut s.roots, p);
            }
        }
        // Parts after transcripts: a directory `projects/<dir>/<x>` counts only once `x` is known to be a session.
        let late: Vec<(String, String)> =
            self.paths.iter().filter_map(|p| self.part_of(p)).collect();
        for (id, root) in late {
            push_unique(&mut self.entry(&id).roots, &root);
        }
        for s in self.sessions.values_mut() {
            s.roots.sort();
        }
    }

    pub fn add_flat(&mut self, flat: &FlatTree) {
        self.add_paths(flat.keys().map(String::as_str));
    }

    fn entry(&mut self, id: &str) -> &mut SessionParts {
        self.sessions
            .entry(id.to_string())
            .or_insert_with(|| SessionParts {
                id: id.to_string(),
                transcripts: vec![],
                roots: vec![],
            })
    }

    /// Which session's part is `path`, and the root that stands for it.
    fn part_of(&self, path: &str) -> Option<(String, String)> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["projects", dir, x, ..] if !x.ends_with(".jsonl") || parts.len() > 3 => {
                let known = self.sessions.get(*x).is_some_and(|s| {
                    s.transcripts
                        .iter()
                        .any(|t| t.starts_with(&format!("projects/{dir}/")))
                });
                (known || looks_like_id(x)).then(|| (x.to_string(), format!("projects/{dir}/{x}")))
            }
            ["file-history", x, ..] if !x.is_empty() => {
                Some((x.to_string(), format!("file-history/{x}")))
            }
            ["todos", name] => todo_owner(name).map(|id| (id.to_string(), path.to_string())),
            _ => None,
        }
    }

    /// The session that owns `path`, if any.
    pub fn owner_of(&self, path: &str) -> Option<&SessionParts> {
        if let Some((_, id)) = transcript_of(path) {
            return self.sessions.get(id);
        }
        self.part_of(path)
            .and_then(|(id, _)| self.sessions.get(&id))
    }

    /// All sessions, by id.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionParts> {
        self.sessions.values()
    }

    /// The sessions whose id starts with `prefix` (case-insensitive).
    pub fn with_prefix(&self, prefix: &str) -> Vec<&SessionParts> {
        let lower = prefix.to_ascii_lowercase();
        self.sessions
            .range(lower.clone()..)
            .take_while(|(id, _)| id.starts_with(&lower))
            .map(|(_, s)| s)
            .collect()
    }

    fn has_path(&self, p: &str) -> bool {
        self.paths.contains(p)
            || self
                .paths
                .range(format!("{p}/")..)
                .next()
                .is_some_and(|q| q.starts_with(&format!("{p}/")))
    }

    /// What `arg` names: a session (by transcript path, id or unique id prefix) or a plain
    /// path. `place` says where sessions were looked for, `list_hint` how to list them; both
    /// go into the error for an unknown or ambiguous name.
    pub fn resolve(&self, arg: &str, place: &str, list_hint: &str) -> Result<Target> {
        let a = arg.trim().trim_start_matches("./").trim_matches('/');
        if let Some((dir, id)) = transcript_of(a) {
            if let Some(s) = self.sessions.get(id) {
                // The path names one project directory: keep that one's parts.
                let mut s = s.clone();
                let other_dir = |p: &String| {
                    p.starts_with("projects/") && !p.starts_with(&format!("projects/{dir}/"))
                };
                s.transcripts.retain(|p| !other_dir(p));
                s.roots
                    .retain(|p| !other_dir(p) || p.starts_with("file-history/"));
                return Ok(Target::Session(s));
            }
        }
        if a.contains('/') || a.is_empty() {
            return Ok(Target::Path(a.to_string()));
        }
        let want = a.strip_suffix(".jsonl").unwrap_or(a);
        if let Some(s) = self.sessions.get(want) {
            return Ok(Target::Session(s.clone()));
        }
        if self.has_path(a) {
            return Ok(Target::Path(a.to_string()));
        }
        let hits = self.with_prefix(want);
        match hits.as_slice() {
            [one] => Ok(Target::Session((*one).clone())),
            [] => Err(Error::Usage(format!(
                "no session (nor path) {arg:?} in {place}\n  fix: give a session id, a unique prefix of one, or its transcript path; {list_hint}"
            ))),
            many => {
                let mut msg = format!(
                    "{arg:?} matches {} sessions in {place}: give more of the id",
                    many.len()
                );
                for s in many.iter().take(10) {
                    let path = s.transcripts.first().or(s.roots.first());
                    msg.push_str(&format!("\n  {}  {}", s.id, path.map_or("", |p| p)));
                }
                if many.len() > 10 {
                    msg.push_str(&format!("\n  ... and {} more", many.len() - 10));
                }
                Err(Error::Usage(msg))
            }
        }
    }
}

fn push_unique(v: &mut Vec<String>, p: &str) {
    if !v.iter().any(|q| q == p) {
        v.push(p.to_string());
    }
}

/// The paths of a live home that can belong to sessions, from a shallow listing (no file is
/// read): `projects/<dir>/*`, `file-history/*`, `todos/*`. Unreadable directories are skipped.
pub fn home_paths(home: &Path) -> Vec<String> {
    fn names(dir: &Path) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return vec![];
        };
        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    }
    let mut out = Vec::new();
    for d in names(&home.join("projects")) {
        for n in names(&home.join("projects").join(&d)) {
            out.push(format!("projects/{d}/{n}"));
        }
    }
    for top in ["file-history", "todos"] {
        for n in names(&home.join(top)) {
            out.push(format!("{top}/{n}"));
        }
    }
    out
}

/// The bytes of one line (or a chunked large one) from any object source.
pub fn line_bytes(src: &dyn ObjectSource, r: DataRef) -> Result<Vec<u8>> {
    if !r.is_chunked() {
        return src.get(r.id, Kind::Line);
    }
    let list: Chunked = decode(r.id, &src.get(r.id, Kind::Chunked)?)?;
    let mut out = Vec::with_capacity(r.len.min(64 << 20) as usize);
    for c in list.chunks {
        out.extend_from_slice(&src.get(c.id, Kind::Blob)?);
    }
    Ok(out)
}

/// A session's fingerprint: blake3 over the sorted, distinct `timestamp:role:content` keys
/// of its `user`/`assistant` message lines (`messages::fingerprint_key`), each fed as its
/// length (u64, little-endian) then its bytes. Metadata lines, line order, ids, `sessionId`
/// and `cwd` do not count, so a resumed or forked copy of a conversation has the same one.
#[derive(Default, Debug, Clone)]
pub struct Fingerprint {
    keys: BTreeSet<String>,
    /// Message lines seen (repeats counted).
    pub messages: u64,
}

impl Fingerprint {
    pub fn add_key(&mut self, key: Option<&String>) {
        if let Some(k) = key {
            self.messages += 1;
            if !self.keys.contains(k) {
                self.keys.insert(k.clone());
            }
        }
    }

    pub fn add_line(&mut self, line: &[u8]) {
        self.add_key(fingerprint_key(line).as_ref());
    }

    /// 16 hex digits; `None` when there is no message at all.
    pub fn short(&self) -> Option<String> {
        if self.keys.is_empty() {
            return None;
        }
        let mut h = blake3::Hasher::new();
        for k in &self.keys {
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
        }
        Some(h.finalize().to_hex()[..16].to_string())
    }
}

/// Fingerprint keys by line id, so that following a session through many snapshots reads
/// each distinct line once.
#[derive(Default)]
pub struct KeyCache(HashMap<ObjectId, Option<String>>);

impl KeyCache {
    /// The fingerprint of a session entry's lines.
    pub fn fingerprint(&mut self, src: &dyn ObjectSource, e: &Entry) -> Result<Fingerprint> {
        let mut f = Fingerprint::default();
        for l in session_lines(src, e)? {
            let key = match self.0.entry(l.id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(fingerprint_key(&line_bytes(src, l)?))
                }
            };
            f.add_key(key.as_ref());
        }
        Ok(f)
    }
}

/// Where a line stands in the conversation tree.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    /// 1-based, in file order, among the continuations of one parent.
    pub index: usize,
    pub of: usize,
    /// Is this the continuation Claude Code would resume?
    pub resumed: bool,
}

/// One line of a transcript, read for the viewer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// 0-based line number in the file.
    pub line: usize,
    pub bytes: u64,
    /// `None` for a line that is not a JSON object.
    pub message: Option<Message>,
    /// On the branch Claude Code would resume (the newest leaf and its ancestors back to the
    /// last compaction, with the tool results and progress lines hanging off them).
    pub on_resume_path: bool,
    /// Set on the first line of each continuation where the conversation forks.
    pub branch: Option<Branch>,
}

/// A transcript read as a conversation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Conversation {
    pub rows: Vec<Row>,
    pub lines: u64,
    pub messages: u64,
    pub fingerprint: Option<String>,
    /// The uuid of the leaf Claude Code would resume.
    pub resume_leaf: Option<String>,
    /// Lines where the conversation forks into several continuations.
    pub forks: usize,
    /// Compaction boundaries (where a resume starts loading).
    pub compactions: usize,
}

/// Read a transcript (a session entry) as a conversation.
pub fn read_conversation(src: &dyn ObjectSource, e: &Entry) -> Result<Conversation> {
    let mut rows = Vec::new();
    let mut fp = Fingerprint::default();
    for (i, r) in session_lines(src, e)?.into_iter().enumerate() {
        let bytes = line_bytes(src, r)?;
        fp.add_line(&bytes);
        rows.push(Row {
            line: i,
            bytes: r.len,
            message: parse(&bytes),
            on_resume_path: false,
            branch: None,
        });
    }
    let (resume_leaf, forks) = mark_resume_path(&mut rows);
    let compactions = rows
        .iter()
        .filter_map(|r| r.message.as_ref())
        .filter(|m| m.kind == "system" && m.parent.is_none() && m.logical_parent.is_some())
        .count();
    Ok(Conversation {
        compactions,
        lines: rows.len() as u64,
        messages: fp.messages,
        fingerprint: fp.short(),
        resume_leaf,
        forks,
        rows,
    })
}

/// Lines that hang off the chain without continuing it: progress lines, and tool results
/// (parallel tool calls make a tool result a sibling of the next call).
fn is_attachment(m: &Message) -> bool {
    m.kind == "progress" || m.role == "tool"
}

/// Mark the branch Claude Code resumes: the newest (by timestamp, then file order)
/// non-sidechain leaf, walked back through `parentUuid`. The walk ends at a root, which is
/// also where a compaction boundary starts the chain again: what came before it is not
/// loaded on resume (the summary stands for it). Marks fork points. Returns the leaf's uuid
/// and the number of forks.
fn mark_resume_path(rows: &mut [Row]) -> (Option<String>, usize) {
    let mut by_uuid: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if let Some(u) = r.message.as_ref().and_then(|m| m.uuid.as_deref()) {
            by_uuid.entry(u).or_insert(i);
        }
    }
    let first = |i: usize, rows: &[Row]| {
        rows[i]
            .message
            .as_ref()
            .and_then(|m| m.uuid.as_deref())
            .is_some_and(|u| by_uuid.get(u) == Some(&i))
    };
    // Children that continue the chain, by parent row.
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut has_chain_child = vec![false; rows.len()];
    for i in 0..rows.len() {
        if !first(i, rows) {
            continue;
        }
        let m = rows[i].message.as_ref().expect("has a uuid");
        if m.kind == "progress" || m.sidechain {
            continue;
        }
        if let Some(p) = m.parent.as_deref().and_then(|p| by_uuid.get(p)) {
            has_chain_child[*p] = true;
            if !is_attachment(m) {
                children.entry(*p).or_default().push(i);
            }
        }
    }
    let leaf = (0..rows.len())
        .filter(|&i| first(i, rows) && !has_chain_child[i])
        .filter(|&i| {
            let m = rows[i].message.as_ref().expect("has a uuid");
            m.kind != "progress" && !m.sidechain
        })
        .max_by(|&a, &b| {
            let t = |i: usize| rows[i].message.as_ref().and_then(|m| m.time.clone());
            t(a).cmp(&t(b)).then(a.cmp(&b))
        });
    let mut on_path = vec![false; rows.len()];
    let mut seen = HashSet::new();
    let mut cur = leaf;
    while let Some(i) = cur {
        if !seen.insert(i) {
            break;
        }
        on_path[i] = true;
        cur = rows[i]
            .message
            .as_ref()
            .and_then(|m| m.parent.as_deref())
            .and_then(|p| by_uuid.get(p).copied());
    }
    // Tool results and progress lines of a resumed line are resumed with it.
    for i in 0..rows.len() {
        let Some(m) = rows[i].message.as_ref() else {
            continue;
        };
        if is_attachment(m) {
            if let Some(p) = m.parent.as_deref().and_then(|p| by_uuid.get(p)) {
                if on_path[*p] {
                    on_path[i] = true;
                }
            }
        }
    }
    let mut forks = 0;
    for kids in children.values().filter(|k| k.len() > 1) {
        forks += 1;
        for (n, &c) in kids.iter().enumerate() {
            rows[c].branch = Some(Branch {
                index: n + 1,
                of: kids.len(),
                resumed: on_path[c],
            });
        }
    }
    for (r, on) in rows.iter_mut().zip(on_path) {
        r.on_resume_path = on;
    }
    let leaf_uuid = leaf.and_then(|i| rows[i].message.as_ref()?.uuid.clone());
    (leaf_uuid, forks)
}

/// How a session stood in one snapshot where it changed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionChange {
    #[serde(serialize_with = "hex_id")]
    pub snapshot: ObjectId,
    pub time_ms: i64,
    pub kind: String,
    pub host: String,
    pub message: String,
    /// The snapshot it was compared with (the head before it on this machine).
    #[serde(serialize_with = "hex_opt")]
    pub compared_with: Option<ObjectId>,
    /// `added`, `changed` or `removed`.
    pub change: &'static str,
    /// Transcript lines, message lines and bytes (all transcripts of the session).
    pub lines: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Message lines since `compared_with` (negative: a rollback or rewrite dropped some).
    pub messages_delta: i64,
    /// Part paths present (transcripts, directories, todo files).
    pub parts: usize,
    pub fingerprint: Option<String>,
}

fn hex_id<S: serde::Serializer>(id: &ObjectId, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_hex())
}

fn hex_opt<S: serde::Serializer>(
    id: &Option<ObjectId>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(&id.to_hex()),
        None => s.serialize_none(),
    }
}

/// A session followed through the history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionLog {
    /// The session; its `roots` name every place a part was looked for (some may be absent
    /// from every snapshot).
    pub session: SessionParts,
    /// Newest first.
    pub changes: Vec<SessionChange>,
    /// Other transcripts holding the same conversation (same fingerprint) in the newest
    /// snapshot that has this session.
    pub same_conversation: Vec<String>,
}

/// The entries of a session's parts in one snapshot (absent parts left out).
pub type PartState = BTreeMap<String, Entry>;

pub fn part_state(repo: &Repo, root: ObjectId, s: &SessionParts) -> Result<PartState> {
    let mut out = PartState::new();
    let mut paths: Vec<String> = s
        .roots
        .iter()
        .filter(|p| !p.starts_with("todos/"))
        .cloned()
        .collect();
    // Todo files come and go: list the directory in each snapshot.
    if let Some(todos) = lookup_path(&repo.objects, root, "todos")? {
        if let (EntryKind::Dir, Some(id)) = (todos.kind, todos.id) {
            for e in crate::prolly::read_dir(&repo.objects, id)? {
                if todo_owner(&e.name) == Some(s.id.as_str()) {
                    paths.push(format!("todos/{}", e.name));
                }
            }
        }
    }
    // Trees hold canonical project names; the parts are named as this home names them.
    let pm = repo.pathmap()?;
    for p in paths {
        if let Some(e) = lookup_path(&repo.objects, root, &pm.canonical_path(&p))? {
            // As every reader sees it: without purged lines or files (§14.5).
            if let Some(e) = crate::purge::effective_entry(&repo.objects, &e)? {
                out.insert(p, e);
            }
        }
    }
    Ok(out)
}

/// Resolve a session against HEAD and the home (then, for a session gone from both, older
/// snapshots) and list every snapshot in which any of its parts changed.
pub fn session_log(repo: &Repo, arg: &str) -> Result<SessionLog> {
    // Snapshots whose trees were pruned have nothing to show: the log starts at the oldest
    // kept one (store-format.md §9.11).
    let pruned = repo.db.pruned()?;
    let history: Vec<_> = repo
        .history()?
        .into_iter()
        .filter(|r| !pruned.contains(&r.id))
        .collect();
    let hint = "list the sessions of a snapshot with `sage show HEAD:`";
    let place = "the home or its snapshots";
    let mut index = SessionIndex::new();
    index.add_paths(home_paths(&repo.home).iter().map(String::as_str));
    if let Some(head) = history.first() {
        index.add_flat(&repo.flat_local(&head.id)?);
    }
    // A session gone from HEAD and the home (Claude's cleanup) is looked for in older
    // snapshots: their `projects/` trees, each distinct one read once.
    let mut seen = HashSet::new();
    let mut older = history.iter().skip(1);
    let mut want = arg.to_string();
    let session = loop {
        let unknown = || {
            Error::Usage(format!(
                "no session {arg:?} in {place}\n  fix: give a session id, a unique prefix of one, or its transcript path; {hint}"
            ))
        };
        let bare = want.trim_end_matches(".jsonl");
        let partial = match index.resolve(&want, place, hint) {
            Ok(Target::Session(s)) if !s.transcripts.is_empty() => break s,
            // Only side files left: its transcript may be in an older snapshot.
            Ok(Target::Session(s)) => Some(s),
            Ok(Target::Path(p)) if transcript_of(&p).is_none() => {
                return Err(Error::Usage(format!(
                    "{p} is not a session transcript (projects/<dir>/<id>.jsonl)\n  fix: give a session id, a unique prefix of one, or its transcript path; {hint}"
                )))
            }
            // Ambiguous: older snapshots cannot make it less so.
            Err(e) if !index.with_prefix(bare).is_empty() => return Err(e),
            Ok(Target::Path(_)) | Err(_) => None,
        };
        if let Some(s) = &partial {
            want = s.id.clone();
        }
        let Some(row) = older.next() else {
            break partial.ok_or_else(unknown)?;
        };
        let Some(projects) = lookup_path(&repo.objects, row.snap.root, "projects")? else {
            continue;
        };
        if let (EntryKind::Dir, Some(id)) = (projects.kind, projects.id) {
            if seen.insert(id) {
                let flat = crate::tree::flatten(&repo.objects, id)?;
                let pm = repo.pathmap()?;
                let me = repo.store_id()?;
                let paths: Vec<String> = flat
                    .keys()
                    .map(|p| pm.local_path(&format!("projects/{p}"), &me))
                    .collect();
                index.add_paths(paths.iter().map(String::as_str));
            }
        }
    };
    // Parts that HEAD and the home lack may exist in older snapshots: look for all of them.
    let mut session = session;
    let mut candidates = vec![format!("file-history/{}", session.id)];
    for t in &session.transcripts {
        if let Some((dir, id)) = transcript_of(t) {
            candidates.push(format!("projects/{dir}/{id}"));
        }
    }
    for c in candidates {
        push_unique(&mut session.roots, &c);
    }
    session.roots.sort();
    let mut states: HashMap<ObjectId, PartState> = HashMap::new();
    let mut state_of = |id: ObjectId, repo: &Repo| -> Result<PartState> {
        if let Some(s) = states.get(&id) {
            return Ok(s.clone());
        }
        let row = repo.snapshot(&id)?;
        let s = part_state(repo, row.snap.root, &session)?;
        states.insert(id, s.clone());
        Ok(s)
    };
    let mut cache = KeyCache::default();
    let mut changes = Vec::new();
    let mut newest_with: Option<(ObjectId, PartState, Fingerprint)> = None;
    for row in &history {
        let now = state_of(row.id, repo)?;
        let prev_id = repo.previous_head(&row.id)?.filter(|p| !pruned.contains(p));
        let before = match prev_id {
            Some(p) => state_of(p, repo)?,
            None => PartState::new(),
        };
        if now == before {
            continue;
        }
        let (lines, bytes, fp) = transcript_stats(repo, &now, &mut cache)?;
        let (_, _, fp_before) = transcript_stats(repo, &before, &mut cache)?;
        if newest_with.is_none() && !now.is_empty() {
            newest_with = Some((row.id, now.clone(), fp.clone()));
        }
        changes.push(SessionChange {
            snapshot: row.id,
            time_ms: row.snap.time,
            kind: row.snap.kind.clone(),
            host: row.snap.host.clone(),
            message: row.snap.message.clone(),
            compared_with: prev_id,
            change: match (before.is_empty(), now.is_empty()) {
                (true, _) => "added",
                (_, true) => "removed",
                _ => "changed",
            },
            lines,
            messages: fp.messages,
            bytes,
            messages_delta: fp.messages as i64 - fp_before.messages as i64,
            parts: now.len(),
            fingerprint: fp.short(),
        });
    }
    let mut same_conversation = Vec::new();
    if let Some((snap, state, fp)) = newest_with {
        if let Some(want) = fp.short() {
            same_conversation = copies_of(repo, snap, &session, &state, &want, &mut cache)?;
        }
    }
    Ok(SessionLog {
        session,
        changes,
        same_conversation,
    })
}

fn transcript_stats(
    repo: &Repo,
    state: &PartState,
    cache: &mut KeyCache,
) -> Result<(u64, u64, Fingerprint)> {
    let (mut lines, mut bytes) = (0, 0);
    let mut all = Fingerprint::default();
    for (p, e) in state {
        if transcript_of(p).is_none() || e.kind != EntryKind::Session {
            continue;
        }
        let id =
            e.id.ok_or_else(|| Error::Other(format!("{p}: session without id")))?;
        let s: Session = decode(id, &repo.objects.read(id, Kind::Session)?)?;
        lines += s.count + u64::from(s.tail.is_some());
        bytes += e.size;
        let f = cache.fingerprint(&repo.objects, e)?;
        all.messages += f.messages;
        all.keys.extend(f.keys);
    }
    Ok((lines, bytes, all))
}

/// Other transcripts of snapshot `snap` with the same fingerprint. Only transcripts of
/// comparable size (half to twice) are read: a copy carries the same messages.
fn copies_of(
    repo: &Repo,
    snap: ObjectId,
    session: &SessionParts,
    state: &PartState,
    want: &str,
    cache: &mut KeyCache,
) -> Result<Vec<String>> {
    let size: u64 = state
        .iter()
        .filter(|(p, _)| transcript_of(p).is_some())
        .map(|(_, e)| e.size)
        .sum();
    let flat = repo.flat_local(&snap)?;
    let mut out = Vec::new();
    for (p, e) in &flat {
        let Some((_, id)) = transcript_of(p) else {
            continue;
        };
        if id == session.id || e.kind != EntryKind::Session {
            continue;
        }
        if e.size * 2 < size || e.size > size * 2 {
            continue;
        }
        if cache.fingerprint(&repo.objects, e)?.short().as_deref() == Some(want) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "4d5611e5-241a-462a-8d15-5122611a9569";
    const B: &str = "4d56aaaa-241a-462a-8d15-5122611a9569";

    fn index() -> SessionIndex {
        let mut ix = SessionIndex::new();
        ix.add_paths([
            "history.jsonl",
            "projects/-home-x/memory/MEMORY.md",
            "projects/-home-x/notes.jsonl",
            "projects/-home-x/notes/tool-results/t.txt",
            &format!("projects/-home-x/{A}/subagents/agent-a1.jsonl"),
            &format!("projects/-home-x/{A}.jsonl"),
            &format!("projects/-home-y/{B}.jsonl"),
            &format!("file-history/{A}/abc@v1"),
            &format!("todos/{A}-agent-{A}.json"),
            "todos/t1-agent-t1.json",
        ]);
        ix
    }

    fn parts(t: Target) -> SessionParts {
        match t {
            Target::Session(s) => s,
            Target::Path(p) => panic!("a path: {p}"),
        }
    }

    #[test]
    fn a_session_is_found_by_path_id_and_prefix_with_all_its_parts() {
        let ix = index();
        let want = vec![
            format!("file-history/{A}"),
            format!("projects/-home-x/{A}"),
            format!("projects/-home-x/{A}.jsonl"),
            format!("todos/{A}-agent-{A}.json"),
        ];
        for arg in [
            A.to_string(),
            format!("{A}.jsonl"),
            "4d5611".into(),
            format!("projects/-home-x/{A}.jsonl"),
            format!("./projects/-home-x/{A}.jsonl/"),
        ] {
            let s = parts(ix.resolve(&arg, "here", "hint").unwrap());
            assert_eq!(s.id, A, "{arg}");
            assert_eq!(s.roots, want, "{arg}");
            assert_eq!(s.transcripts, vec![format!("projects/-home-x/{A}.jsonl")]);
        }
        // a non-uuid session owns its directory once its transcript is known
        let s = parts(ix.resolve("notes", "here", "hint").unwrap());
        assert_eq!(
            s.roots,
            vec!["projects/-home-x/notes", "projects/-home-x/notes.jsonl"]
        );
        // memory/ is not a session
        assert!(ix.resolve("memory", "here", "hint").is_err());
        assert_eq!(
            ix.owner_of(&format!("projects/-home-x/{A}/subagents/agent-a1.jsonl"))
                .map(|s| s.id.as_str()),
            Some(A)
        );
        assert!(ix.owner_of("projects/-home-x/memory/MEMORY.md").is_none());
        assert_eq!(
            ix.owner_of("todos/t1-agent-t1.json").map(|s| s.id.as_str()),
            Some("t1")
        );
    }

    #[test]
    fn paths_stay_paths_and_bad_names_say_what_to_do() {
        let ix = index();
        assert_eq!(
            ix.resolve("history.jsonl", "here", "hint").unwrap(),
            Target::Path("history.jsonl".into())
        );
        assert_eq!(
            ix.resolve("todos", "here", "hint").unwrap(),
            Target::Path("todos".into())
        );
        assert_eq!(
            ix.resolve("projects/-home-x", "here", "hint").unwrap(),
            Target::Path("projects/-home-x".into())
        );
        let e = ix.resolve("4d56", "snapshot 1234", "use X").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("matches 2 sessions in snapshot 1234"), "{msg}");
        assert!(msg.contains(A) && msg.contains(B), "{msg}");
        assert_eq!(e.exit_code(), 2);
        let e = ix.resolve("ffff", "snapshot 1234", "use X").unwrap_err();
        assert!(
            e.to_string().contains("no session (nor path) \"ffff\""),
            "{e}"
        );
        assert!(e.to_string().contains("use X"), "{e}");
    }

    fn line(uuid: &str, parent: Option<&str>, typ: &str, ts: &str, text: &str) -> Vec<u8> {
        let p = parent.map_or("null".to_string(), |p| format!("\"{p}\""));
        format!(
            r#"{{"parentUuid":{p},"type":"{typ}","uuid":"{uuid}","timestamp":"{ts}","message":{{"role":"{typ}","content":"{text}"}}}}"#
        )
        .into_bytes()
    }

    fn rows_of(lines: &[Vec<u8>]) -> Vec<Row> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| Row {
                line: i,
                bytes: l.len() as u64,
                message: parse(l),
                on_resume_path: false,
                branch: None,
            })
            .collect()
    }

    #[test]
    fn the_newest_leaf_is_resumed_and_forks_are_marked() {
        // u1 <- a1 <- u2 (machine A, older)  and  u1 <- a1 <- u3 <- a3 (machine B, newer)
        let lines = vec![
            line("u1", None, "user", "2026-01-01T00:00:00.000Z", "hi"),
            line("a1", Some("u1"), "assistant", "2026-01-01T00:00:01.000Z", "hello"),
            line("u2", Some("a1"), "user", "2026-01-01T00:00:05.000Z", "on A"),
            line("u3", Some("a1"), "user", "2026-01-01T00:00:03.000Z", "on B"),
            line("a3", Some("u3"), "assistant", "2026-01-01T00:00:09.000Z", "B reply"),
            br#"{"type":"progress","uuid":"p1","parentUuid":"a3","timestamp":"2026-01-01T00:00:10.000Z"}"#.to_vec(),
            br#"{"type":"summary","summary":"x","leafUuid":"a3"}"#.to_vec(),
        ];
        let mut rows = rows_of(&lines);
        let (leaf, forks) = mark_resume_path(&mut rows);
        assert_eq!(leaf.as_deref(), Some("a3"));
        assert_eq!(forks, 1);
        let on: Vec<bool> = rows.iter().map(|r| r.on_resume_path).collect();
        assert_eq!(on, vec![true, true, false, true, true, true, false]);
        assert_eq!(
            rows[2].branch,
            Some(Branch {
                index: 1,
                of: 2,
                resumed: false
            })
        );
        assert_eq!(
            rows[3].branch,
            Some(Branch {
                index: 2,
                of: 2,
                resumed: true
            })
        );
    }

    #[test]
    fn parallel_tool_results_and_compaction_do_not_fork() {
        let lines = vec![
            line("u1", None, "user", "2026-01-01T00:00:00.000Z", "go"),
            br#"{"type":"assistant","uuid":"a1","parentUuid":"u1","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"assistant","content":[{"type":"tool_use","name":"Glob","input":{"pattern":"*"}}]}}"#.to_vec(),
            br#"{"type":"assistant","uuid":"a2","parentUuid":"a1","timestamp":"2026-01-01T00:00:02.000Z","message":{"role":"assistant","content":[{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}"#.to_vec(),
            br#"{"type":"user","uuid":"r1","parentUuid":"a1","timestamp":"2026-01-01T00:00:03.000Z","message":{"role":"user","content":[{"type":"tool_result","content":"x"}]}}"#.to_vec(),
            br#"{"type":"user","uuid":"r2","parentUuid":"a2","timestamp":"2026-01-01T00:00:04.000Z","message":{"role":"user","content":[{"type":"tool_result","content":"y"}]}}"#.to_vec(),
            br#"{"type":"system","subtype":"compact_boundary","uuid":"c","parentUuid":null,"logicalParentUuid":"r2","timestamp":"2026-01-01T00:00:05.000Z","content":"Conversation compacted"}"#.to_vec(),
            line("u9", Some("c"), "user", "2026-01-01T00:00:06.000Z", "after"),
        ];
        let mut rows = rows_of(&lines);
        let (leaf, forks) = mark_resume_path(&mut rows);
        assert_eq!(leaf.as_deref(), Some("u9"));
        assert_eq!(forks, 0);
        assert!(rows.iter().all(|r| r.branch.is_none()));
        // what precedes the compaction is not loaded on resume
        let on: Vec<bool> = rows.iter().map(|r| r.on_resume_path).collect();
        assert_eq!(on, vec![false, false, false, false, false, true, true]);
        // without the boundary, the second tool result hangs off the resumed chain
        let mut rows = rows_of(&lines[..5]);
        mark_resume_path(&mut rows);
        assert!(rows.iter().all(|r| r.on_resume_path), "{rows:?}");
    }

    #[test]
    fn fingerprints_ignore_metadata_order_and_repeats() {
        let a = line("u1", None, "user", "T1", "hi");
        let b = line("a1", Some("u1"), "assistant", "T2", "yo");
        let meta = br#"{"type":"last-prompt","lastPrompt":"hi"}"#.to_vec();
        let mut f1 = Fingerprint::default();
        for l in [&a, &meta, &b] {
            f1.add_line(l);
        }
        let mut f2 = Fingerprint::default();
        for l in [&b, &a, &a, &b"not json".to_vec()] {
            f2.add_line(l);
        }
        assert_eq!(f1.short(), f2.short());
        assert_eq!(f1.short().unwrap().len(), 16);
        assert_eq!((f1.messages, f2.messages), (2, 3));
        let mut f3 = Fingerprint::default();
        f3.add_line(&a);
        assert_ne!(f1.short(), f3.short());
        assert_eq!(Fingerprint::default().short(), None);
    }
}
