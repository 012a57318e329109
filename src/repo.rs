//! `Repo`: a home and its store, opened together. The entry point of the library: the CLI
//! only parses arguments, calls these methods and renders what they return.

use crate::db::{tx, Db, SnapshotRow, Stats};
use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::lock::StoreLock;
use crate::object::{decode, DataRef, Entry, Session};
use crate::pathmap::PathMap;
use crate::rules::{Rules, HOME_MARKER, STORE_MARKER};
use crate::scan::{scan, ScanOutput};
use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};
use crate::store::{Inserter, ObjectStore};
use crate::tree::{build_tree, flatten, FlatTree};
use std::path::{Path, PathBuf};

/// The store format version (`meta.format`): see store-format.md, "Versions".
pub const FORMAT_VERSION: u32 = 1;

/// The (never created) home a bare store is opened with: a bare store has no home.
pub const BARE_HOME: &str = ".bare-store-has-no-home";

pub struct Repo {
    pub home: PathBuf,
    pub store_dir: PathBuf,
    pub db: Db,
    pub objects: ObjectStore,
    /// Is `home` the home this store belongs to (as opposed to a restore target)?
    pub own_home: bool,
}

/// Where a home's store lives by default: `$XDG_DATA_HOME/sage/homes/<hash of the home's path>`.
pub fn default_store_for(home: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let h = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"));
            h.join(".local/share")
        });
    let key = ObjectId::hash(
        Kind::Blob,
        canonical_home(home).as_os_str().as_encoded_bytes(),
    );
    base.join("sage").join("homes").join(&key.to_hex()[..16])
}

/// The canonical path of a home, which need not exist yet.
pub fn canonical_home(home: &Path) -> PathBuf {
    if let Ok(c) = home.canonicalize() {
        return c;
    }
    let abs = if home.is_absolute() {
        home.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(home)
    };
    match (abs.parent(), abs.file_name()) {
        (Some(p), Some(n)) => canonical_home(p).join(n),
        _ => abs,
    }
}

/// Does this directory look like a Claude Code home (or an empty or missing one)?
pub fn looks_like_home(home: &Path) -> bool {
    const SIGNS: &[&str] = &[
        "projects",
        "history.jsonl",
        "settings.json",
        "settings.local.json",
        ".credentials.json",
        "todos",
        "statsig",
        "CLAUDE.md",
        "file-history",
        "plugins",
        "commands",
        "agents",
        "shell-snapshots",
        HOME_MARKER,
    ];
    match std::fs::read_dir(home) {
        Err(_) => true,
        Ok(mut rd) => {
            rd.next().is_none()
                || SIGNS
                    .iter()
                    .any(|s| home.join(s).symlink_metadata().is_ok())
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CommitOutcome {
    pub id: ObjectId,
    pub created: bool,
    pub stats: Stats,
    pub hashed_files: usize,
    pub hashed_bytes: u64,
    pub new_objects: u64,
    pub new_bytes: u64,
    pub pack_bytes: u64,
    pub skipped: Vec<crate::scan::Skipped>,
    pub new_pack: Option<String>,
}

pub struct CommitOptions<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    pub progress: &'a dyn Fn(u64, u64),
}

impl Repo {
    /// Create (or find) the store of `home`; idempotent.
    pub fn init(home: &Path, store: Option<&Path>, allow_any_dir: bool) -> Result<(Repo, bool)> {
        let home_c = canonical_home(home);
        if !allow_any_dir && !looks_like_home(&home_c) {
            return Err(Error::Usage(format!(
                "{} does not look like a Claude Code home (no projects/, history.jsonl, settings.json, ...)\n  fix: pass --home with the right directory, or `sage init --any-dir` to snapshot it anyway",
                home_c.display()
            )));
        }
        let store_dir = store
            .map(canonical_home)
            .unwrap_or_else(|| default_store_for(&home_c));
        if store_dir.starts_with(&home_c) {
            eprintln!(
                "sage: warning: the store {} is inside the home; it will not be snapshotted, and losing the home loses it",
                store_dir.display()
            );
        }
        let created = !store_dir.join("sage.db").exists();
        std::fs::create_dir_all(store_dir.join("packs"))
            .ctx(|| format!("creating store {}", store_dir.display()))?;
        let mut db = Db::open(&store_dir.join("sage.db"), true)?;
        // All metadata in one transaction, each missing key filled: an init killed midway
        // leaves either nothing or a complete store.
        let path = db.path.clone();
        let wrap = |e| Error::Db {
            path: path.clone(),
            source: e,
        };
        let t = db.transaction()?;
        let defaults = [
            ("store_id", hex::encode(rand::random::<[u8; 16]>())),
            ("format", FORMAT_VERSION.to_string()),
            ("home", home_c.to_string_lossy().into_owned()),
            ("created", crate::clock::now_ms().to_string()),
        ];
        for (k, v) in defaults {
            t.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
                [k, v.as_str()],
            )
            .map_err(wrap)?;
        }
        t.commit().map_err(wrap)?;
        Repo::init_finish(home_c, store_dir, db, created)
    }

    fn init_finish(
        home_c: PathBuf,
        store_dir: PathBuf,
        db: Db,
        created: bool,
    ) -> Result<(Repo, bool)> {
        let store_id = db.meta("store_id")?.expect("set above");
        let marker = store_dir.join(STORE_MARKER);
        if !marker.exists() {
            crate::fsutil::write_atomic(&marker, format!("{store_id}\n").as_bytes())?;
        }
        let bare = home_c.file_name().is_some_and(|n| n == BARE_HOME);
        let repo = Repo::open_parts(home_c, store_dir, db)?;
        if repo.own_home && !bare {
            repo.write_home_marker()?;
        }
        Ok((repo, created))
    }

    /// Open the store of `home` (or `store`), which must exist.
    pub fn open(home: &Path, store: Option<&Path>) -> Result<Repo> {
        let home_c = canonical_home(home);
        let store_dir = store
            .map(canonical_home)
            .unwrap_or_else(|| default_store_for(&home_c));
        if !store_dir.join(STORE_MARKER).exists() && !store_dir.join("sage.db").exists() {
            return Err(Error::NoStore { home: home_c });
        }
        let db = Db::open(&store_dir.join("sage.db"), false)?;
        if db.meta("home")?.is_none() {
            // An init that was interrupted: `init` (or commit, which runs it) completes it.
            return Err(Error::NoStore { home: home_c });
        }
        Repo::open_parts(home_c, store_dir, db)
    }

    fn open_parts(home: PathBuf, store_dir: PathBuf, db: Db) -> Result<Repo> {
        if let Some(f) = db.meta("format")? {
            let v: u32 = f.parse().unwrap_or(u32::MAX);
            if v > FORMAT_VERSION {
                return Err(Error::TooNew {
                    path: store_dir,
                    found: v,
                    supported: FORMAT_VERSION,
                });
            }
        }
        let own_home = db
            .meta("home")?
            .map(|h| Path::new(&h) == home)
            .unwrap_or(false);
        let mut objects = ObjectStore::open(&store_dir)?;
        objects.purged = crate::purge::load_all(&db, &store_dir)?;
        Ok(Repo {
            home,
            store_dir,
            db,
            objects,
            own_home,
        })
    }

    pub fn store_id(&self) -> Result<String> {
        Ok(self.db.meta("store_id")?.unwrap_or_default())
    }

    fn write_home_marker(&self) -> Result<()> {
        let marker = self.home.join(HOME_MARKER);
        let want = format!(
            "{{\"store_id\":\"{}\",\"store\":{}}}\n",
            self.store_id()?,
            serde_json::to_string(&self.store_dir.to_string_lossy()).unwrap_or_default()
        );
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.home).ctx(|| format!("creating {}", self.home.display()))?;
        crate::fsutil::write_atomic(&marker, want.as_bytes())
    }

    /// Take the store lock for a command that writes. An apply that was killed left intents
    /// behind: they are completed (or rolled back) first, so every command starts from whole
    /// files.
    pub fn lock(&self, what: &str) -> Result<StoreLock> {
        let lock = StoreLock::acquire(&self.store_dir, what)?;
        for (file, healed) in crate::intent::recover(self)? {
            // Rare, and the user should know a file was touched before the command proper.
            eprintln!("sage: {}: {healed}", file.display());
        }
        Ok(lock)
    }

    pub fn head(&self) -> Result<Option<ObjectId>> {
        self.db.get_ref("HEAD")
    }

    pub fn snapshot(&self, id: &ObjectId) -> Result<SnapshotRow> {
        self.db
            .snapshot(id)?
            .ok_or_else(|| Error::UnknownSnapshot(format!("snapshot {id} is not in this store")))
    }

    /// Resolve a snapshot name: a full id, a unique prefix, `HEAD` or `HEAD~N`.
    pub fn resolve(&self, name: &str) -> Result<ObjectId> {
        let name = name.trim();
        if let Some(rest) = name.strip_prefix("HEAD") {
            let n: usize = if rest.is_empty() {
                0
            } else if let Some(num) = rest.strip_prefix('~') {
                if num.is_empty() {
                    1
                } else {
                    num.parse().map_err(|_| {
                        Error::UnknownSnapshot(format!("cannot parse {name:?}: use HEAD~N"))
                    })?
                }
            } else {
                return Err(Error::UnknownSnapshot(format!(
                    "cannot parse {name:?}: use HEAD or HEAD~N"
                )));
            };
            let mut cur = self.head()?.ok_or_else(|| {
                Error::UnknownSnapshot("no snapshot yet: run `sage commit` first".into())
            })?;
            for i in 0..n {
                cur = self.previous_head(&cur)?.ok_or_else(|| {
                    Error::UnknownSnapshot(format!(
                        "HEAD~{n} goes past the first snapshot (HEAD~{i} has no parent)"
                    ))
                })?;
            }
            return Ok(cur);
        }
        if name.len() < 4 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::UnknownSnapshot(format!(
                "unknown snapshot {name:?}: give an id (at least 4 hex digits), HEAD or HEAD~N (see `sage log`)"
            )));
        }
        let lower = name.to_ascii_lowercase();
        let hits = self.db.snapshots_with_prefix(&lower)?;
        match hits.len() {
            1 => Ok(hits[0]),
            0 => Err(Error::UnknownSnapshot(format!(
                "no snapshot matches {name:?} (see `sage log`)"
            ))),
            n => Err(Error::UnknownSnapshot(format!(
                "{name:?} matches {n} snapshots: give more digits"
            ))),
        }
    }

    /// The head this store had before `id`: its only parent, or for a merge the parent that
    /// was this store's HEAD when the merge was recorded (from the op log).
    pub fn previous_head(&self, id: &ObjectId) -> Result<Option<ObjectId>> {
        let row = self.snapshot(id)?;
        let parents = &row.snap.parents;
        if parents.len() <= 1 {
            return Ok(parents.first().copied());
        }
        for op in self.db.ops()? {
            if op.head_after.as_ref() == Some(id) {
                if let Some(b) = op.head_before.filter(|b| parents.contains(b)) {
                    return Ok(Some(b));
                }
            }
        }
        Ok(parents.first().copied())
    }

    /// Snapshot the home. "Nothing changed" returns the current HEAD with `created: false`.
    pub fn commit(&mut self, opts: &CommitOptions) -> Result<CommitOutcome> {
        self.commit_inner(opts, true)
    }

    /// `record_op: false` for safety snapshots, which belong to the operation that takes them.
    pub(crate) fn commit_inner(
        &mut self,
        opts: &CommitOptions,
        record_op: bool,
    ) -> Result<CommitOutcome> {
        if !self.own_home {
            return Err(Error::Usage(format!(
                "{} is not the home of store {} (that is {})\n  fix: use the store of this home (omit --store), or `sage init` a new one",
                self.home.display(),
                self.store_dir.display(),
                self.db.meta("home")?.unwrap_or_default()
            )));
        }
        self.write_home_marker()?;
        let rules = Rules::load(&self.home)?;
        let cache = self.db.stat_rows()?;
        let head = self.head()?;
        let head_root = head
            .map(|h| self.snapshot(&h))
            .transpose()?
            .map(|r| r.snap.root);
        let mut ins = Inserter::new(&self.objects);
        let out: ScanOutput = scan(
            &self.home,
            &rules,
            &self.objects,
            &cache,
            Some(&mut ins),
            opts.progress,
        )?;
        let mut out = out;
        // Trees hold canonical project names (store-format.md, "Path maps").
        let mut pm = self.pathmap()?;
        let head_pm = match head {
            Some(h) => PathMap::from_raw(self.snapshot(&h)?.snap.pathmap.as_ref()),
            None => PathMap::default(),
        };
        if !pm.is_empty() {
            let head_raw = match head_root {
                Some(r) => flatten(&self.objects, r)?,
                None => FlatTree::new(),
            };
            pm = pm.with_folds_for(&[&head_raw, &out.flat]);
            out.flat = pm.canonicalize(&out.flat);
        }
        let overlay = crate::sync::overlay::load(&self.db)?;
        let mut overlay_after = None;
        if !overlay.is_empty() {
            let head_flat = match head_root {
                Some(r) => flatten(&self.objects, r)?,
                None => FlatTree::new(),
            };
            let kept = crate::sync::overlay::fold_scan(&mut out.flat, &head_flat, &overlay);
            if kept.len() != overlay.len() {
                overlay_after = Some(kept);
            }
        }
        let root = build_tree(&out.flat, &mut ins)?;
        // A map change alone is a change (recorded as a rename of the mapped directories).
        let changed = head_root != Some(root)
            || (head.is_some() && pm != head_pm)
            || (head.is_none() && !pm.is_empty());
        let mut snap_obj = None;
        if changed {
            let snap = Snapshot {
                host: crate::clock::host(),
                kind: opts.kind.to_string(),
                merge: None,
                pathmap: pm.to_raw(),
                message: opts.message.to_string(),
                parents: head.into_iter().collect(),
                root,
                time: crate::clock::now_ms(),
                v: SNAPSHOT_VERSION,
            };
            let obj = snap.to_object();
            ins.insert(Kind::Snapshot, obj.id, &obj.bytes)?;
            snap_obj = Some((snap, obj));
        }
        let new_objects = ins.new_objects;
        let new_bytes = ins.new_bytes;
        let pack = ins.finish()?;
        let mut pack_bytes = 0;
        if let Some((name, _)) = &pack {
            self.objects.add_pack(name)?;
            pack_bytes = self.objects.packs().last().map(|p| p.size()).unwrap_or(0);
        }
        crate::failpoint::hit("commit-before-db");
        let now = crate::clock::now_ms();
        let path = self.db_path();
        let tx = self.db.transaction()?;
        let wrap = |e| Error::Db {
            path: path.clone(),
            source: e,
        };
        if let Some((name, entries)) = &pack {
            tx::insert_pack(&tx, name, pack_bytes, entries.len() as u64, now).map_err(wrap)?;
        }
        for (p, row) in &out.stat_updates {
            tx::put_stat(&tx, p, row).map_err(wrap)?;
        }
        for p in &out.stat_removed {
            tx::delete_stat(&tx, p).map_err(wrap)?;
        }
        if let Some(kept) = &overlay_after {
            crate::sync::overlay::replace_all(&tx, kept).map_err(wrap)?;
        }
        let id = if let Some((snap, obj)) = &snap_obj {
            tx::insert_snapshot(&tx, &obj.id, &obj.bytes, snap, &out.stats).map_err(wrap)?;
            tx::set_ref(&tx, "HEAD", Some(&obj.id)).map_err(wrap)?;
            if record_op {
                tx::record_op(
                    &tx,
                    now,
                    "commit",
                    &format!("commit ({}): {}", opts.kind, opts.message),
                    head.as_ref(),
                    Some(&obj.id),
                    None,
                    false,
                    None,
                )
                .map_err(wrap)?;
            }
            obj.id
        } else {
            head.unwrap_or_default()
        };
        tx.commit().map_err(wrap)?;
        crate::failpoint::hit("commit-after-db");
        Ok(CommitOutcome {
            id,
            created: changed,
            stats: out.stats,
            hashed_files: out.hashed_files,
            hashed_bytes: out.hashed_bytes,
            new_objects,
            new_bytes,
            pack_bytes,
            skipped: out.skipped,
            new_pack: pack.map(|p| p.0),
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.db.path.clone()
    }

    /// Scan the home without writing anything (status, diff against the home).
    pub fn scan_readonly(
        &self,
        home: &Path,
        mem: &mut crate::prolly::MemObjects,
    ) -> Result<(ScanOutput, ObjectId)> {
        let rules = Rules::load(home)?;
        let cache = if home == self.home {
            self.db.stat_rows()?
        } else {
            Default::default()
        };
        let mut out = scan(home, &rules, &self.objects, &cache, Some(mem), &|_, _| {})?;
        let pm = self.pathmap()?;
        if !pm.is_empty() {
            let head_raw = match self.head()? {
                Some(h) => self.flat_raw(&h)?,
                None => FlatTree::new(),
            };
            let pm = pm.with_folds_for(&[&head_raw, &out.flat]);
            out.flat = pm.canonicalize(&out.flat);
        }
        // Where this home deliberately differs from HEAD (overlay), it counts as unchanged.
        if home == self.home {
            let overlay = crate::sync::overlay::load(&self.db)?;
            if !overlay.is_empty() {
                if let Some(h) = self.head()? {
                    let head_flat = self.flat_raw(&h)?;
                    crate::sync::overlay::fold_scan(&mut out.flat, &head_flat, &overlay);
                }
            }
        }
        let root = build_tree(&out.flat, mem)?;
        Ok((out, root))
    }

    /// The project map in force: HEAD's, plus the rules of remotes whose store is known (a
    /// rule this machine added since HEAD is a map change the next snapshot records).
    pub fn pathmap(&self) -> Result<PathMap> {
        let mut pm = match self.head()? {
            Some(h) => PathMap::from_raw(self.snapshot(&h)?.snap.pathmap.as_ref()),
            None => PathMap::default(),
        };
        let me = self.store_id()?;
        let remotes = crate::sync::remote::list(&self.db)?;
        for rule in crate::sync::remote::maps(&self.db)? {
            let Some(their) = remotes
                .iter()
                .find(|r| r.name == rule.remote)
                .and_then(|r| r.store_id.clone())
            else {
                continue;
            };
            let arg = format!("{}={}", rule.local, rule.remote_path);
            if let Ok((l, r)) = crate::pathmap::parse_map_arg(&arg) {
                // Recorded already: the union changes nothing (same entries, same time).
                pm.add_rule(&me, &l, &their, &r, rule.time);
            }
        }
        Ok(pm)
    }

    /// Does the map in force differ from HEAD's (a rule added or changed since)?
    pub fn pathmap_pending(&self) -> Result<bool> {
        let head = match self.head()? {
            Some(h) => PathMap::from_raw(self.snapshot(&h)?.snap.pathmap.as_ref()),
            None => PathMap::default(),
        };
        Ok(self.pathmap()? != head)
    }

    /// This home's name for a tree path (project directories translated by `pm`).
    pub fn local_path(&self, pm: &PathMap, path: &str) -> Result<String> {
        Ok(pm.local_path(path, &self.store_id()?))
    }

    /// A snapshot's tree under this home's names (what users see and type): its canonical
    /// project directories translated by the joined map (store-format.md, "Path maps").
    pub fn flat_local(&self, id: &ObjectId) -> Result<FlatTree> {
        self.require_trees(id)?;
        let row = self.snapshot(id)?;
        let flat = crate::purge::effective(&self.objects, flatten(&self.objects, row.snap.root)?)?;
        let pm = self
            .pathmap()?
            .union(&PathMap::from_raw(row.snap.pathmap.as_ref()))
            .with_local_dirs(&self.home);
        if pm.is_empty() {
            return Ok(flat);
        }
        Ok(pm.localize(&pm.canonicalize(&flat), &self.store_id()?))
    }

    /// A canonical tree (a scan's) under this home's names.
    pub fn localize(&self, flat: FlatTree) -> Result<FlatTree> {
        let pm = self.pathmap()?.with_local_dirs(&self.home);
        if pm.is_empty() {
            return Ok(flat);
        }
        Ok(pm.localize(&flat, &self.store_id()?))
    }

    /// Refuse a snapshot whose trees were pruned (its row stays for history and sync).
    pub fn require_trees(&self, id: &ObjectId) -> Result<()> {
        if self.db.is_pruned(id)? {
            return Err(Error::Refused(format!(
                "snapshot {} was pruned: its row is kept, its contents are not (pick a kept snapshot from `sage log`)",
                id.short()
            )));
        }
        Ok(())
    }

    /// A snapshot's tree as readers see it: purged lines and files left out (§14.5).
    pub fn flat_of(&self, id: &ObjectId) -> Result<FlatTree> {
        crate::purge::effective(&self.objects, self.flat_raw(id)?)
    }

    /// A snapshot's tree exactly as recorded (what a home held when it was scanned).
    pub fn flat_raw(&self, id: &ObjectId) -> Result<FlatTree> {
        self.require_trees(id)?;
        let row = self.snapshot(id)?;
        flatten(&self.objects, row.snap.root)
    }

    /// Open a pack just written into `packs/` and insert its row (one transaction).
    pub fn record_pack(&mut self, name: &str, objects: u64) -> Result<()> {
        self.objects.add_pack(name)?;
        let size = self.objects.packs().last().map(|p| p.size()).unwrap_or(0);
        let path = self.db_path();
        let wrap = |e| Error::Db {
            path: path.clone(),
            source: e,
        };
        let t = self.db.transaction()?;
        crate::db::tx::insert_pack(&t, name, size, objects, crate::clock::now_ms())
            .map_err(wrap)?;
        t.commit().map_err(wrap)
    }

    /// Write the objects built in memory (purge-filtered sessions) to a pack of their own, so
    /// that an apply's intents, and the trees recorded afterwards, name only stored objects.
    pub fn persist_mem(&mut self) -> Result<()> {
        let objs = self.objects.unpersisted();
        if objs.is_empty() {
            return Ok(());
        }
        let mut ins = crate::store::Inserter::new(&self.objects);
        for o in &objs {
            ins.insert(o.kind, o.id, &o.bytes)?;
        }
        if let Some((name, entries)) = ins.finish()? {
            self.record_pack(&name, entries.len() as u64)?;
        }
        Ok(())
    }

    /// Re-read the tombstones (after a purge or a sync added some).
    pub fn reload_purged(&mut self) -> Result<()> {
        self.objects.purged = crate::purge::load_all(&self.db, &self.store_dir)?;
        self.objects.filtered.lock().expect("filter lock").clear();
        Ok(())
    }

    /// Snapshots reachable from HEAD, newest first (by time, then insertion order).
    pub fn history(&self) -> Result<Vec<SnapshotRow>> {
        let Some(head) = self.head()? else {
            return Ok(vec![]);
        };
        let all = self.db.all_snapshots()?;
        let by_id: std::collections::HashMap<ObjectId, &SnapshotRow> =
            all.iter().map(|r| (r.id, r)).collect();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![head];
        let mut out = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(r) = by_id.get(&id) {
                out.push((*r).clone());
                stack.extend(r.snap.parents.iter().copied());
            }
        }
        out.sort_by(|a, b| b.snap.time.cmp(&a.snap.time).then(b.seq.cmp(&a.seq)));
        Ok(out)
    }

    /// The raw bytes of one entry (file, session, symlink target) to `out`.
    pub fn write_entry(&self, e: &Entry, out: &mut dyn std::io::Write) -> Result<()> {
        self.objects.write_entry(e, out)
    }

    /// A session's lines (with the tail, if any, last).
    pub fn session_lines(&self, e: &Entry) -> Result<(Vec<DataRef>, Option<DataRef>)> {
        let id =
            e.id.ok_or_else(|| Error::Other("session entry without id".into()))?;
        let s: Session = decode(id, &self.objects.read(id, Kind::Session)?)?;
        Ok((crate::prolly::read_lines(&self.objects, s.lines)?, s.tail))
    }

    pub fn line_bytes(&self, r: DataRef) -> Result<Vec<u8>> {
        self.objects.data_bytes(r, Kind::Line)
    }
}
