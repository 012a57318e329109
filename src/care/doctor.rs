//! `sage doctor`: is this history taken care of? A report of typed findings, each with a
//! severity and, when something needs attention, the command that fixes it. Checks: store
//! integrity (quick), the age of the last snapshot and last backup, each remote (reachable, its
//! sage version, snapshots it lacks), free disk space, the schedule, the hooks, and Claude
//! Code's `cleanupPeriodDays`.

use super::{config, hooks, schedule};
use crate::error::{Error, Result};
use crate::id::{Kind, ObjectId};
use crate::protocol::{Msg, PROTO_MAX, PROTO_MIN};
use crate::repo::Repo;
use crate::sync::remote::Remote;
use crate::transport::Transport;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Fail,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// What was checked: `store`, `snapshot`, `backup`, `remote:<name>`, `disk`, `schedule`,
    /// `hooks`, `cleanup`.
    pub check: String,
    pub severity: Severity,
    pub message: String,
    /// The command (or step) that fixes it; absent when nothing needs doing.
    pub fix: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DoctorReport {
    pub home: PathBuf,
    pub store: Option<PathBuf>,
    pub findings: Vec<Finding>,
    /// Findings that are not `ok`.
    pub attention: usize,
}

#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Do not contact remotes.
    pub offline: bool,
    /// How long a remote may take to answer.
    pub timeout: Duration,
    pub snapshot_max_age_ms: i64,
    pub backup_max_age_ms: i64,
    /// Warn below this much free space.
    pub min_free_bytes: u64,
    /// Warn when `cleanupPeriodDays` is below this.
    pub cleanup_min_days: i64,
}

const DAY_MS: i64 = 86_400_000;

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            offline: false,
            timeout: Duration::from_secs(15),
            snapshot_max_age_ms: 2 * DAY_MS,
            backup_max_age_ms: 8 * DAY_MS,
            min_free_bytes: 1 << 30,
            cleanup_min_days: 30,
        }
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, check: &str, severity: Severity, message: String, fix: Option<String>) {
        self.0.push(Finding {
            check: check.to_string(),
            severity,
            message,
            fix,
        });
    }
}

/// "3 h", "2 days": how long ago `t` was.
pub fn age(now: i64, t: i64) -> String {
    let s = (now - t).max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Run every check. Never fails: what cannot be checked is a finding.
pub fn doctor(
    home: &Path,
    store: Option<&Path>,
    env: &schedule::SchedulerEnv,
    opts: &DoctorOptions,
) -> DoctorReport {
    let mut f = Findings(Vec::new());
    let now = crate::clock::now_ms();
    let repo = match Repo::open(home, store) {
        Ok(r) => Some(r),
        Err(e) => {
            let fix = match e {
                Error::NoStore { .. } => "sage init".to_string(),
                _ => "sage verify --repair".to_string(),
            };
            f.add(
                "store",
                Severity::Fail,
                first_line(&e.to_string()),
                Some(fix),
            );
            None
        }
    };
    let home_c = crate::repo::canonical_home(home);
    if let Some(repo) = &repo {
        if let Err(e) = store_checks(repo, env, opts, now, &mut f) {
            f.add(
                "store",
                Severity::Fail,
                format!(
                    "could not finish the store checks: {}",
                    first_line(&e.to_string())
                ),
                Some("sage verify".into()),
            );
        }
    }
    if let Some(repo) = &repo {
        if matches!(crate::purge::run::unfinished(repo), Ok(true)) {
            f.add(
                "purge",
                Severity::Warn,
                "an interrupted purge left purged data in this home's last snapshot or in the packs".into(),
                Some("sage purge --finish".into()),
            );
        }
    }
    settings_checks(&home_c, repo.as_ref(), opts, &mut f);
    let attention = f.0.iter().filter(|x| x.severity != Severity::Ok).count();
    DoctorReport {
        home: home_c,
        store: repo.as_ref().map(|r| r.store_dir.clone()),
        findings: f.0,
        attention,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn store_checks(
    repo: &Repo,
    env: &schedule::SchedulerEnv,
    opts: &DoctorOptions,
    now: i64,
    f: &mut Findings,
) -> Result<()> {
    // Integrity (quick: structure, not every byte).
    let v = repo.verify(false)?;
    let damage = v.findings.iter().filter(|x| x.is_damage()).count();
    if damage == 0 {
        f.add(
            "store",
            Severity::Ok,
            format!(
                "store intact: {} packs, {} objects, {} snapshots",
                v.packs, v.objects, v.snapshots
            ),
            None,
        );
    } else {
        f.add(
            "store",
            Severity::Fail,
            format!("{damage} integrity problem(s) in the store"),
            Some("sage verify (to see them), then sage verify --repair".into()),
        );
    }

    // The last snapshot.
    let history = repo.history()?;
    match history.first() {
        None => f.add(
            "snapshot",
            Severity::Warn,
            "no snapshot yet".into(),
            Some("sage commit".into()),
        ),
        Some(h) => {
            // An old snapshot is fine while the home has not changed since (a read-only scan,
            // quick with the stat cache).
            let mut unchanged = false;
            let mut sev = Severity::Ok;
            if now - h.snap.time > opts.snapshot_max_age_ms {
                let mut mem = crate::prolly::MemObjects::default();
                let home = repo.home.clone();
                unchanged = repo.own_home
                    && repo
                        .scan_readonly(&home, &mut mem)
                        .is_ok_and(|(_, root)| root == h.snap.root);
                if !unchanged {
                    sev = Severity::Warn;
                }
            }
            f.add(
                "snapshot",
                sev,
                format!(
                    "last snapshot {} ago ({}, {}){}",
                    age(now, h.snap.time),
                    h.id.short(),
                    h.snap.kind,
                    if unchanged {
                        "; the home has not changed since"
                    } else {
                        ""
                    }
                ),
                (sev != Severity::Ok).then(|| "sage commit (and `sage hooks install`, so that Claude Code's own events take snapshots)".into()),
            );
        }
    }

    // The last backup.
    let remotes = crate::sync::remote::list(&repo.db)?;
    let backup_remote = remotes
        .iter()
        .find(|r| r.bare)
        .or(remotes.first())
        .map(|r| r.name.clone());
    let backup_fix = match &backup_remote {
        Some(r) => format!("sage backup {r}"),
        None => "sage remote add usb /media/usb/sage-backup --bare && sage backup usb".into(),
    };
    match config::last_backup(&repo.db)? {
        None => f.add(
            "backup",
            Severity::Warn,
            "never backed up with `sage backup`".into(),
            Some(backup_fix.clone()),
        ),
        Some(b) => {
            let old = now - b.time > opts.backup_max_age_ms;
            let sev = if old || b.remote.is_none() {
                Severity::Warn
            } else {
                Severity::Ok
            };
            let whereto = b
                .remote
                .as_deref()
                .map(|r| format!("to {r}"))
                .unwrap_or_else(|| "in this store only (no remote named)".into());
            let fix = match &b.remote {
                Some(r) => format!("sage backup {r}"),
                None => backup_fix.clone(),
            };
            f.add(
                "backup",
                sev,
                format!("last backup {} ago, {whereto}", age(now, b.time)),
                (sev != Severity::Ok).then_some(fix),
            );
        }
    }

    // Remotes: reachable, version, what they lack.
    let local: Vec<ObjectId> = history.iter().map(|r| r.id).collect();
    let parents: HashMap<ObjectId, Vec<ObjectId>> = repo
        .db
        .all_snapshots()?
        .into_iter()
        .map(|r| (r.id, r.snap.parents))
        .collect();
    for r in &remotes {
        remote_check(repo, r, &local, &parents, opts, now, f)?;
    }

    // Disk space where the store and the home live.
    let mut seen = HashSet::new();
    for p in [repo.store_dir.clone(), repo.home.clone()] {
        let Some((free, total, dev)) = disk_free(&p) else {
            continue;
        };
        if !seen.insert(dev) {
            continue;
        }
        let pct = free as f64 * 100.0 / total.max(1) as f64;
        let sev = if free < opts.min_free_bytes / 10 {
            Severity::Fail
        } else if free < opts.min_free_bytes || pct < 5.0 {
            Severity::Warn
        } else {
            Severity::Ok
        };
        f.add(
            "disk",
            sev,
            format!(
                "{} free ({pct:.0}%) on the disk of {}",
                human(free),
                p.display()
            ),
            (sev != Severity::Ok).then(|| format!("free space on the disk of {}", p.display())),
        );
    }

    // The schedule.
    let st = schedule::status(env, &repo.store_id()?);
    if st.installed() {
        let what = match (&st.on_calendar, &st.cron_line) {
            (Some(c), _) => format!("systemd timer, {c}"),
            (None, Some(l)) => format!("crontab: {}", l.split(" {").next().unwrap_or(l)),
            _ => "systemd service without a timer".into(),
        };
        f.add(
            "schedule",
            Severity::Ok,
            format!("scheduled backup installed ({what})"),
            None,
        );
    } else {
        f.add(
            "schedule",
            Severity::Warn,
            "no scheduled backup".into(),
            Some(match &backup_remote {
                Some(r) => format!("sage schedule install --daily 03:00 --remote {r}"),
                None => "sage schedule install --daily 03:00".into(),
            }),
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn remote_check(
    repo: &Repo,
    r: &Remote,
    local: &[ObjectId],
    parents: &HashMap<ObjectId, Vec<ObjectId>>,
    opts: &DoctorOptions,
    now: i64,
    f: &mut Findings,
) -> Result<()> {
    let check = format!("remote:{}", r.name);
    let push_fix = if r.bare {
        format!("sage push {}", r.name)
    } else {
        format!("sage sync {}", r.name)
    };
    // A purge this remote has not applied yet (store-format.md §14.5): its copies of the
    // purged lines stay there until the next sync carries the tombstones.
    let stones = crate::purge::list(&repo.db)?;
    if !stones.is_empty() {
        let synced = crate::purge::synced_at(&repo.db, &r.name)?.unwrap_or(i64::MIN);
        let pending: Vec<_> = stones.iter().filter(|t| t.time > synced).collect();
        if let Some(newest) = pending.iter().map(|t| t.time).max() {
            f.add(
                &format!("purge:{}", r.name),
                Severity::Warn,
                format!(
                    "remote {} has not applied a purge ({}, newest {} ago): it still holds them",
                    r.name,
                    crate::purge::describe_count(pending.len() as u64),
                    age(now, newest)
                ),
                Some(push_fix.clone()),
            );
        }
    }
    let mut remote_has: Option<HashSet<ObjectId>> = None;
    if opts.offline {
        f.add(
            &check,
            Severity::Ok,
            format!("{} (not contacted: --offline)", r.url),
            None,
        );
    } else {
        match probe_graph(r, opts.timeout) {
            Ok(p) => {
                let ours = env!("CARGO_PKG_VERSION");
                let ver = if p.version == ours {
                    format!("sage {}", p.version)
                } else {
                    format!("sage {} (this one: {ours})", p.version)
                };
                match p.snapshots {
                    Some(s) => {
                        f.add(&check, Severity::Ok, format!("{} answers: {ver}", r.url), None);
                        remote_has = Some(s);
                    }
                    // sage knew a store there: an unmounted disk, or a store deleted.
                    None if r.store_id.is_some() => f.add(
                        &check,
                        Severity::Warn,
                        format!(
                            "{} has no sage store any more (sage knew store {}): an unmounted disk, or a deleted store",
                            r.url,
                            r.store_id.as_deref().unwrap_or_default()
                        ),
                        Some(format!(
                            "mount or check {}; if the store is really gone, `{push_fix} --init` starts a new one",
                            r.url
                        )),
                    ),
                    None => f.add(
                        &check,
                        Severity::Warn,
                        format!("{} answers but has no store yet", r.url),
                        Some(push_fix.clone()),
                    ),
                }
            }
            Err(e) => f.add(
                &check,
                Severity::Warn,
                format!("{} cannot be reached: {}", r.url, first_line(&e.to_string())),
                Some("check that it is mounted or online (`sage remote list`); skip this check with `sage doctor --offline`".to_string()),
            ),
        }
    }
    // What the remote lacks: from the remote's own graph, else from the last push sage recorded.
    let (missing, source) = match remote_has {
        Some(has) => (
            Some(local.iter().filter(|id| !has.contains(id)).count()),
            String::new(),
        ),
        None => match config::pushed(&repo.db, &r.name)? {
            Some(p) => {
                let head = ObjectId::from_hex(&p.head).unwrap_or_default();
                let mut reach = HashSet::new();
                let mut stack = vec![head];
                while let Some(x) = stack.pop() {
                    if reach.insert(x) {
                        stack.extend(parents.get(&x).into_iter().flatten().copied());
                    }
                }
                (
                    Some(local.iter().filter(|id| !reach.contains(id)).count()),
                    format!(" (since the push recorded {} ago)", age(now, p.time)),
                )
            }
            None => (None, String::new()),
        },
    };
    match missing {
        Some(0) => f.add(
            &check,
            Severity::Ok,
            format!("has every snapshot of this home{source}"),
            None,
        ),
        Some(n) => f.add(
            &check,
            Severity::Warn,
            format!("{n} snapshot(s) not yet pushed{source}"),
            Some(push_fix),
        ),
        None => {}
    }
    Ok(())
}

pub struct Probe {
    pub version: String,
    /// Every snapshot id the remote holds; `None` when it has no store.
    pub snapshots: Option<HashSet<ObjectId>>,
}

/// Ask a remote for its version and snapshot graph, giving up after `timeout`.
pub fn probe_graph(r: &Remote, timeout: Duration) -> Result<Probe> {
    let (tx, rx) = std::sync::mpsc::channel();
    let r2 = r.clone();
    std::thread::spawn(move || {
        let _ = tx.send(probe_graph_now(&r2));
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(Error::Other(format!(
            "no answer within {} s",
            timeout.as_secs()
        )))
    })
}

fn probe_graph_now(r: &Remote) -> Result<Probe> {
    let (mut t, path) = Transport::connect(r)?;
    let hello = Msg::Hello {
        proto_min: PROTO_MIN,
        proto_max: PROTO_MAX,
        version: env!("CARGO_PKG_VERSION").into(),
        path,
        bare: r.bare,
        create: false,
        caps: crate::protocol::our_caps(),
    };
    if let Err(e) = t.conn.send(&hello) {
        return Err(t.explain(e));
    }
    let version = match t.conn.recv() {
        Ok(Msg::Welcome { version, .. }) => version,
        Ok(_) => return Err(Error::Other("protocol error: expected Welcome".into())),
        Err(Error::Other(m)) if m.contains("has no sage store yet") => {
            return Ok(Probe {
                version: "?".into(),
                snapshots: None,
            })
        }
        Err(e) => return Err(t.explain(e)),
    };
    t.conn.send(&Msg::Graph)?;
    let snaps = match t.conn.recv()? {
        Msg::GraphReply { snapshots, .. } => snapshots
            .into_iter()
            .filter(|s| ObjectId::hash(Kind::Snapshot, &s.raw) == s.id)
            .map(|s| s.id)
            .collect(),
        _ => return Err(Error::Other("protocol error: expected GraphReply".into())),
    };
    t.finish()?;
    Ok(Probe {
        version,
        snapshots: Some(snaps),
    })
}

/// Free and total bytes of the filesystem holding `p` (or its nearest existing parent), and
/// its device id.
fn disk_free(p: &Path) -> Option<(u64, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = p.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(&p).ok()?);
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: c is a valid NUL-terminated path; st is written by statvfs on success.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    let total = st.f_blocks as u64 * st.f_frsize as u64;
    Some((free, total, dev))
}

fn human(n: u64) -> String {
    let gb = n as f64 / (1u64 << 30) as f64;
    if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else {
        format!("{:.0} MB", n as f64 / (1u64 << 20) as f64)
    }
}

/// Hooks and `cleanupPeriodDays`, from the home's `settings.json`.
fn settings_checks(home: &Path, repo: Option<&Repo>, opts: &DoctorOptions, f: &mut Findings) {
    let path = hooks::settings_path(home);
    let settings = match hooks::read_settings(&path) {
        Ok(s) => s.unwrap_or_else(|| serde_json::json!({})),
        Err(e) => {
            f.add(
                "hooks",
                Severity::Fail,
                first_line(&e.to_string()),
                Some(format!(
                    "correct {} by hand (Claude Code cannot read it either)",
                    path.display()
                )),
            );
            return;
        }
    };
    let st = hooks::status_of(&settings);
    let missing: Vec<&str> = st.iter().filter(|s| !s.current).map(|s| s.event).collect();
    if missing.is_empty() {
        let push = repo
            .and_then(|r| config::hook_push(&r.db).ok().flatten())
            .map(|p| format!(", they push to {p}"))
            .unwrap_or_default();
        f.add(
            "hooks",
            Severity::Ok,
            format!(
                "Claude Code hooks installed ({}){push}",
                st.iter().map(|s| s.event).collect::<Vec<_>>().join(", ")
            ),
            None,
        );
    } else {
        f.add(
            "hooks",
            Severity::Warn,
            format!(
                "Claude Code hooks missing or out of date: {}",
                missing.join(", ")
            ),
            Some("sage hooks install".into()),
        );
    }
    if let Some(repo) = repo {
        if let Ok(Some(p)) = config::hook_push(&repo.db) {
            if crate::sync::remote::get(&repo.db, &p).is_err() {
                f.add(
                    "hooks",
                    Severity::Warn,
                    format!("the hooks push to remote {p:?}, which does not exist"),
                    Some("sage hooks install --push <remote> (or --no-push)".into()),
                );
            }
        }
    }
    let set_fix = format!(
        "jq '.cleanupPeriodDays = 3650' {p} > {p}.new && mv {p}.new {p}",
        p = path.display()
    );
    match settings.get("cleanupPeriodDays") {
        None => f.add(
            "cleanup",
            Severity::Ok,
            "cleanupPeriodDays not set: Claude Code deletes transcripts untouched for 30 days (the default); snapshots keep them".into(),
            None,
        ),
        Some(v) => match v.as_i64() {
            Some(0) => f.add(
                "cleanup",
                Severity::Fail,
                "cleanupPeriodDays is 0: Claude Code deletes its history at once".into(),
                Some(set_fix),
            ),
            Some(d) if d < opts.cleanup_min_days => f.add(
                "cleanup",
                Severity::Warn,
                format!("cleanupPeriodDays is {d}: Claude Code deletes transcripts untouched for {d} days"),
                Some(set_fix),
            ),
            Some(d) => f.add(
                "cleanup",
                Severity::Ok,
                format!("cleanupPeriodDays is {d}"),
                None,
            ),
            None => f.add(
                "cleanup",
                Severity::Warn,
                format!("cleanupPeriodDays is {v}, not a number of days"),
                Some(set_fix),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(10_000, 0), "10 s");
        assert_eq!(age(600_000, 0), "10 min");
        assert_eq!(age(3 * 3_600_000, 0), "3 h");
        assert_eq!(age(5 * DAY_MS, 0), "5 days");
        assert_eq!(age(0, 5), "0 s");
    }

    #[test]
    fn cleanup_period_findings() {
        let dir = tempfile::tempdir().unwrap();
        let check = |json: &str| {
            std::fs::write(dir.path().join("settings.json"), json).unwrap();
            let mut f = Findings(Vec::new());
            settings_checks(dir.path(), None, &DoctorOptions::default(), &mut f);
            f.0.into_iter()
                .find(|x| x.check == "cleanup")
                .map(|x| x.severity)
        };
        assert_eq!(check(r#"{"cleanupPeriodDays": 0}"#), Some(Severity::Fail));
        assert_eq!(check(r#"{"cleanupPeriodDays": 7}"#), Some(Severity::Warn));
        assert_eq!(check(r#"{"cleanupPeriodDays": 99999}"#), Some(Severity::Ok));
        assert_eq!(check(r#"{}"#), Some(Severity::Ok));
        assert_eq!(check(r#"{"cleanupPeriodDays": "x"}"#), Some(Severity::Warn));
        assert_eq!(check("{not json"), None);
    }
}
