//! The purge operation: find, tombstone, rewrite the home, drop the bytes.
//!
//! Write order (under the store lock; every step durable before the next):
//! 1. a safety commit of the home (so that its newest lines are searched too);
//! 2. one transaction: the tombstones (`purged` rows) and an op-log row;
//! 3. the home: each session holding a purged line is replaced by its filtered version, each
//!    purged file removed (the checkout path: intents, temp files, renames), then a `purge`
//!    snapshot of the result;
//! 4. gc: every pack holding purged bytes is rewritten without them.
//!
//! A kill after 2 leaves tombstones whose lines may still be in the home and in packs; readers
//! already skip them, and re-running `sage purge` (any criteria, or `--finish`) completes 3
//! and 4. A kill inside 3 is healed by the intent log; inside 4, by gc's own order.

use super::search::{search, Found};
use super::Tombstone;
use crate::db::tx;
use crate::error::{Error, Result};
use crate::gc::{GcOptions, GcOutcome};
use crate::id::ObjectId;
use crate::repo::{CommitOptions, Repo};
use crate::session::SessionParts;

/// What to purge.
#[derive(Clone, Debug, Default)]
pub struct Criteria {
    /// Sessions (ids, unique prefixes or transcript paths), each removed whole.
    pub sessions: Vec<String>,
    /// Texts: every line or file holding one is removed.
    pub matches: Vec<String>,
}

impl Criteria {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.matches.is_empty()
    }

    /// What the tombstones say about why (never the matched text: that is the secret).
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        for s in &self.sessions {
            parts.push(format!("--session {s}"));
        }
        if !self.matches.is_empty() {
            parts.push(format!("--match ({} texts)", self.matches.len()));
        }
        format!("purge {}", parts.join(" "))
    }
}

/// A purge, found but not yet done.
#[derive(Debug, serde::Serialize)]
pub struct PurgePlan {
    #[serde(flatten)]
    pub found: Found,
    /// The sessions named, resolved.
    pub sessions: Vec<SessionParts>,
    pub reason: String,
    /// Tombstones recorded earlier whose removal from this home or its packs is not finished.
    pub unfinished: bool,
    /// Home files sage does not store (its rules exclude them) that hold a text: a purge cannot
    /// touch them; the user edits or deletes them.
    pub unstored: Vec<String>,
    /// Files the store keeps aside (quarantined packs, damaged databases) that a purge does not
    /// rewrite: they may still hold purged bytes.
    pub aside: Vec<String>,
}

impl PurgePlan {
    pub fn is_empty(&self) -> bool {
        self.found.ids.is_empty() && self.found.remove_paths.is_empty()
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct PurgeOutcome {
    pub tombstones: u64,
    /// Home files rewritten without purged lines, and files removed.
    pub rewritten: usize,
    pub removed: usize,
    pub snapshot: Option<ObjectId>,
    pub gc: GcOutcome,
}

/// Find what `crit` purges. Not a dry run: the home is committed first (a safety snapshot that
/// also brings its newest lines into the search).
pub fn plan(repo: &mut Repo, crit: &Criteria, dry_run: bool) -> Result<PurgePlan> {
    if crit.matches.iter().any(|m| m.is_empty()) {
        return Err(Error::Usage(
            "--match needs a non-empty text (an empty one would match everything)".into(),
        ));
    }
    if !dry_run && repo.own_home {
        let out = repo.commit(&CommitOptions {
            kind: "auto",
            message: "before purge",
            progress: &|_, _| {},
        })?;
        if let Some(pack) = &out.new_pack {
            repo.read_back_pack(pack)?;
        }
    }
    let mut sessions = Vec::new();
    for s in &crit.sessions {
        sessions.push(crate::session::session_log(repo, s)?.session);
    }
    let needles: Vec<Vec<u8>> = crit.matches.iter().map(|m| m.as_bytes().to_vec()).collect();
    let found = search(repo, &sessions, &needles)?;
    Ok(PurgePlan {
        found,
        sessions,
        reason: crit.reason(),
        unfinished: unfinished(repo)?,
        unstored: unstored_holding(repo, &needles)?,
        aside: aside_files(repo),
    })
}

/// Files of the home that sage's rules exclude and that contain one of `needles`.
fn unstored_holding(repo: &Repo, needles: &[Vec<u8>]) -> Result<Vec<String>> {
    if needles.is_empty() || !repo.home.is_dir() {
        return Ok(Vec::new());
    }
    let rules = crate::rules::Rules::load(&repo.home)?;
    let finders: Vec<memchr::memmem::Finder> =
        needles.iter().map(memchr::memmem::Finder::new).collect();
    let mut out = Vec::new();
    // (relative path, under an excluded directory)
    let mut stack = vec![(String::new(), false)];
    while let Some((rel, excluded)) = stack.pop() {
        let dir = repo.home.join(&rel);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            let ex = excluded || rules.excluded(&p, m.is_dir()).is_some();
            if m.is_dir() {
                stack.push((p, ex));
            } else if ex && m.is_file() && m.len() <= 256 << 20 {
                if let Ok(b) = std::fs::read(e.path()) {
                    if finders.iter().any(|f| f.find(&b).is_some()) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Quarantined packs and damaged databases kept aside in the store.
fn aside_files(repo: &Repo) -> Vec<String> {
    let mut out = Vec::new();
    for (dir, keep) in [
        (repo.store_dir.join("quarantine"), None),
        (repo.store_dir.clone(), Some("sage.db.damaged-")),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if keep.is_none_or(|k| n.starts_with(k)) {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether tombstones exist whose lines this home's HEAD still names or whose bytes a pack
/// still holds.
pub fn unfinished(repo: &Repo) -> Result<bool> {
    if repo.objects.purged.is_empty() {
        return Ok(false);
    }
    for id in &repo.objects.purged {
        if repo.objects.contains(id)? {
            return Ok(true);
        }
    }
    if let Some(h) = repo.head()? {
        let raw = repo.flat_raw(&h)?;
        if !super::holds_purged(&repo.objects, &raw)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Record the tombstones, then finish: home and packs.
pub fn execute(repo: &mut Repo, plan: &PurgePlan) -> Result<PurgeOutcome> {
    let now = crate::clock::now_ms();
    let stones: Vec<Tombstone> = plan
        .found
        .ids
        .iter()
        .map(|(id, kind, _)| Tombstone {
            id: *id,
            kind: *kind,
            time: now,
            reason: plan.reason.clone(),
        })
        .collect();
    let head = repo.head()?;
    let added = super::record(&mut repo.db, &repo.store_dir, &stones)?;
    let path = repo.db_path();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    let t = repo.db.transaction()?;
    tx::record_op(
        &t,
        now,
        "purge",
        &plan.reason,
        head.as_ref(),
        head.as_ref(),
        head.as_ref(),
        false,
        None,
    )
    .map_err(wrap)?;
    t.commit().map_err(wrap)?;
    crate::failpoint::hit("purge-after-tombstones");
    repo.reload_purged()?;
    let mut out = finish(repo, &plan.found.remove_paths, &plan.reason)?;
    out.tombstones = added;
    Ok(out)
}

/// Make this home and its packs agree with the tombstones: rewrite what still holds purged
/// data (and remove `remove`, canonical paths), then gc. Idempotent: what is done is skipped.
pub fn finish(repo: &mut Repo, remove: &[String], reason: &str) -> Result<PurgeOutcome> {
    let mut out = PurgeOutcome::default();
    if repo.own_home {
        let plan = repo.prepare_purge(remove, reason)?;
        if !plan.changes.is_empty() {
            out.rewritten = plan
                .changes
                .iter()
                .filter(|c| c.change != crate::diff::ChangeKind::Removed)
                .count();
            out.removed = plan.changes.len() - out.rewritten;
            let done = repo.apply_checkout(plan)?;
            out.snapshot = done.snapshot;
            crate::failpoint::hit("purge-after-home");
        }
    }
    if repo.objects.purged.is_empty() {
        return Ok(out);
    }
    let opts = GcOptions::default();
    let plan = crate::gc::plan(repo, &opts)?;
    out.gc = crate::gc::apply(repo, &plan, &opts)?;
    Ok(out)
}

/// Longest reason kept from a peer (a bound, not a format rule).
const MAX_REASON: usize = 200;

/// Add a peer's tombstones; when any is new here, finish the purge in this home and store
/// (its home rewritten, its packs cleaned). Returns how many were new.
pub fn accept_tombstones(
    repo: &mut Repo,
    stones: &[Tombstone],
    from: &str,
    and_finish: bool,
) -> Result<u64> {
    // A peer names data only: an id this store holds as a tree, session or snapshot object is
    // refused whatever kind the peer claims. The time is when this store learned it (what
    // `sage doctor` compares with each remote's last exchange).
    let now = crate::clock::now_ms();
    let mut taken = Vec::with_capacity(stones.len());
    for t in stones {
        if let Some((_, e)) = repo.objects.locate(&t.id)? {
            if !e.kind.is_data() {
                continue;
            }
        }
        taken.push(Tombstone {
            reason: t.reason.chars().take(MAX_REASON).collect(),
            time: now,
            ..t.clone()
        });
    }
    let added = super::record(&mut repo.db, &repo.store_dir, &taken)?;
    if added > 0 {
        crate::failpoint::hit("purge-after-accept");
        repo.reload_purged()?;
    }
    // Finish what is new, and what a killed earlier run left unfinished.
    if and_finish && (added > 0 || unfinished(repo)?) {
        finish(repo, &[], &format!("purge from {from}"))?;
    }
    Ok(added)
}

/// Refuse a peer that cannot carry tombstones when this store has some: a sync with it would
/// bring purged lines back (or fail on the objects it lacks).
pub fn require_peer_caps(repo: &Repo, caps: &[String], version: &str, who: &str) -> Result<()> {
    if !repo.objects.purged.is_empty()
        && !caps.iter().any(|c| c == crate::protocol::PURGE_TOMBSTONES)
    {
        return Err(Error::Refused(format!(
            "{who} runs sage {version}, which lacks the `{}` capability, and this store has purged data: a sync could bring it back\n  fix: upgrade sage on {who}",
            crate::protocol::PURGE_TOMBSTONES
        )));
    }
    Ok(())
}

/// Send `stones` in batches of `TOMBSTONE_BATCH` (at least one, the last flagged).
pub fn send_batches(
    stones: &[Tombstone],
    mut send: impl FnMut(Vec<Tombstone>, bool) -> Result<()>,
) -> Result<()> {
    let n = stones
        .len()
        .div_ceil(crate::protocol::TOMBSTONE_BATCH)
        .max(1);
    for i in 0..n {
        let from = i * crate::protocol::TOMBSTONE_BATCH;
        let to = (from + crate::protocol::TOMBSTONE_BATCH).min(stones.len());
        send(stones[from..to].to_vec(), i + 1 == n)?;
    }
    Ok(())
}
