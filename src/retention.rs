//! Retention: which snapshots keep their trees (restic's `forget` policy), and `prune`, which
//! marks the others `trees: pruned` (their rows stay) and then rewrites the packs (`gc`).
//!
//! Policy semantics (store-format.md §14.1), as restic's `ApplyPolicy`: snapshots are sorted
//! newest first (time, then id). A snapshot is kept if any rule keeps it:
//! - `keep_last N`: the N newest;
//! - `keep_hourly/daily/weekly/monthly/yearly N`: walking newest to oldest, a snapshot whose
//!   bucket (local calendar hour / day / ISO week / month / year of its time) differs from the
//!   last bucket this rule kept is kept, while the rule has counts left; the oldest snapshot is
//!   also kept by a rule that still has counts left (restic >= 0.15);
//! - `keep_within D`: snapshots strictly newer than (newest snapshot's time − D), D counted in
//!   the local calendar (`1y2m3d4h`).
//!
//! Besides the policy, prune never takes the trees of: HEAD and every other ref, the snapshots
//! named by the last `PROTECT_OPS` op-log rows (so `sage undo` keeps working), and the newest
//! snapshot each remote is known to hold (`care.pushed.<remote>`, `remotes.last_head`).

use crate::db::tx;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::gc::{GcOptions, GcOutcome, GcPlan};
use crate::id::ObjectId;
use crate::repo::Repo;
use std::collections::{BTreeMap, HashSet};

/// Op-log rows whose snapshots (before, after, safety) prune never takes.
pub const PROTECT_OPS: usize = 10;

/// A calendar span for `keep_within`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub hours: i32,
}

impl Span {
    /// Parse `1y2m3d4h` (any subset, in this order or not; at least one unit).
    pub fn parse(s: &str) -> Result<Span> {
        let bad = || {
            Error::Usage(format!(
                "cannot parse duration {s:?}: use e.g. 7d, 12h, 1y6m"
            ))
        };
        let mut span = Span::default();
        let mut num = String::new();
        let mut any = false;
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: i32 = num.parse().map_err(|_| bad())?;
            num.clear();
            match c {
                'y' => span.years += n,
                'm' => span.months += n,
                'd' => span.days += n,
                'h' => span.hours += n,
                _ => return Err(bad()),
            }
            any = true;
        }
        if !num.is_empty() || !any {
            return Err(bad());
        }
        Ok(span)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}

/// restic's `forget` rules. `None` = the rule is off; `Some(-1)` = unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    pub keep_last: Option<i64>,
    pub keep_hourly: Option<i64>,
    pub keep_daily: Option<i64>,
    pub keep_weekly: Option<i64>,
    pub keep_monthly: Option<i64>,
    pub keep_yearly: Option<i64>,
    pub keep_within: Option<Span>,
}

impl Policy {
    /// No rule keeps anything: every count unset or 0, no span (restic refuses such a policy
    /// rather than forget everything).
    pub fn is_empty(&self) -> bool {
        let off = |c: Option<i64>| matches!(c, None | Some(0));
        off(self.keep_last)
            && off(self.keep_hourly)
            && off(self.keep_daily)
            && off(self.keep_weekly)
            && off(self.keep_monthly)
            && off(self.keep_yearly)
            && self.keep_within.is_none_or(|s| s == Span::default())
    }

    /// Rules given on the command line override the stored defaults one by one.
    pub fn overlay(&self, over: &Policy) -> Policy {
        Policy {
            keep_last: over.keep_last.or(self.keep_last),
            keep_hourly: over.keep_hourly.or(self.keep_hourly),
            keep_daily: over.keep_daily.or(self.keep_daily),
            keep_weekly: over.keep_weekly.or(self.keep_weekly),
            keep_monthly: over.keep_monthly.or(self.keep_monthly),
            keep_yearly: over.keep_yearly.or(self.keep_yearly),
            keep_within: over.keep_within.or(self.keep_within),
        }
    }
}

/// Broken-down local time (as `localtime_r` gives it under `TZ`).
#[derive(Clone, Copy, Debug)]
struct Local {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
}

fn local(ms: i64) -> Local {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: tm is plain data filled by localtime_r; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return Local {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
        };
    }
    Local {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
    }
}

/// `ms` moved back by `span` in the local calendar (out-of-range fields normalised by
/// `mktime`, as Go's `AddDate` does).
fn back(ms: i64, span: Span) -> i64 {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: as in `local`; mktime reads and normalises tm.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return ms;
        }
        tm.tm_year -= span.years;
        tm.tm_mon -= span.months;
        tm.tm_mday -= span.days;
        tm.tm_isdst = -1;
        let t = libc::mktime(&mut tm);
        (t as i64 - span.hours as i64 * 3600) * 1000 + ms.rem_euclid(1000)
    }
}

fn bucket(kind: usize, ms: i64) -> i64 {
    let l = local(ms);
    let (y, m, d, h) = (l.year as i64, l.month as i64, l.day as i64, l.hour as i64);
    match kind {
        0 => y * 1_000_000 + m * 10_000 + d * 100 + h,
        1 => y * 10_000 + m * 100 + d,
        2 => {
            let date = time::Date::from_calendar_date(
                l.year,
                time::Month::try_from(l.month).unwrap_or(time::Month::January),
                l.day,
            )
            .unwrap_or(time::Date::MIN);
            let (iy, w, _) = date.to_iso_week_date();
            iy as i64 * 100 + w as i64
        }
        3 => y * 100 + m,
        _ => y,
    }
}

const RULES: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];

/// One snapshot's verdict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decision {
    pub id: ObjectId,
    pub time: i64,
    pub keep: bool,
    /// Why it is kept: `last snapshot`, `daily snapshot`, `within 7d`, `HEAD`, …
    pub reasons: Vec<String>,
}

/// Apply `policy` to `(id, time)` pairs; returns decisions newest first.
pub fn apply_policy(snaps: &[(ObjectId, i64)], policy: &Policy) -> Vec<Decision> {
    let mut list: Vec<(ObjectId, i64)> = snaps.to_vec();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let counts = [
        policy.keep_hourly,
        policy.keep_daily,
        policy.keep_weekly,
        policy.keep_monthly,
        policy.keep_yearly,
    ];
    let mut left: Vec<Option<i64>> = counts.to_vec();
    let mut last: [Option<i64>; 5] = [None; 5];
    let latest = list.first().map(|s| s.1);
    let mut out = Vec::with_capacity(list.len());
    let n = list.len();
    for (nr, (id, t)) in list.into_iter().enumerate() {
        let mut reasons = Vec::new();
        if let Some(k) = policy.keep_last {
            if k < 0 || (nr as i64) < k {
                reasons.push("last snapshot".to_string());
            }
        }
        for (i, c) in left.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            if *c == 0 {
                continue;
            }
            let v = bucket(i, t);
            if last[i] != Some(v) || nr == n - 1 {
                last[i] = Some(v);
                if *c > 0 {
                    *c -= 1;
                }
                reasons.push(format!("{} snapshot", RULES[i]));
            }
        }
        if let (Some(span), Some(latest)) = (policy.keep_within, latest) {
            if t > back(latest, span) {
                reasons.push(format!("within {span}"));
            }
        }
        out.push(Decision {
            id,
            time: t,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    out
}

/// Retention defaults: `meta` row `retention.policy` (JSON of [`Policy`]).
pub const POLICY_KEY: &str = "retention.policy";

pub fn stored_policy(repo: &Repo) -> Result<Policy> {
    Ok(repo
        .db
        .meta(POLICY_KEY)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

pub fn set_stored_policy(repo: &Repo, p: &Policy) -> Result<()> {
    repo.db.set_meta(
        POLICY_KEY,
        &serde_json::to_string(p).expect("a plain struct serializes"),
    )
}

/// Snapshots prune must not take, with why.
pub fn protected(repo: &Repo) -> Result<BTreeMap<ObjectId, String>> {
    let mut out = BTreeMap::new();
    let mut st = repo
        .db
        .conn
        .prepare("SELECT name, id FROM refs")
        .map_err(|e| repo.db.db_err(e))?;
    let refs = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|e| repo.db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| repo.db.db_err(e))?;
    for (name, id) in refs {
        if let Some(id) = ObjectId::from_slice(&id) {
            out.entry(id).or_insert(format!("ref {name}"));
        }
    }
    for op in repo.db.ops()?.into_iter().take(PROTECT_OPS) {
        for id in [op.head_before, op.head_after, op.safety]
            .into_iter()
            .flatten()
        {
            out.entry(id)
                .or_insert(format!("undo of op #{} ({})", op.seq, op.kind));
        }
    }
    let mut st = repo
        .db
        .conn
        .prepare("SELECT key, value FROM meta WHERE key LIKE 'care.pushed.%'")
        .map_err(|e| repo.db.db_err(e))?;
    let pushed = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| repo.db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| repo.db.db_err(e))?;
    for (k, v) in pushed {
        let remote = k.trim_start_matches("care.pushed.");
        let head = serde_json::from_str::<serde_json::Value>(&v)
            .ok()
            .and_then(|j| j["head"].as_str().and_then(ObjectId::from_hex));
        if let Some(h) = head {
            out.entry(h)
                .or_insert(format!("shared with remote {remote}"));
        }
    }
    let mut st = repo
        .db
        .conn
        .prepare("SELECT name, last_head FROM remotes WHERE last_head IS NOT NULL")
        .map_err(|e| repo.db.db_err(e))?;
    let heads = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|e| repo.db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| repo.db.db_err(e))?;
    for (name, id) in heads {
        if let Some(id) = ObjectId::from_slice(&id) {
            out.entry(id)
                .or_insert(format!("shared with remote {name}"));
        }
    }
    Ok(out)
}

/// What prune will do.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrunePlan {
    pub policy: Policy,
    /// Every snapshot whose trees are present, newest first, with its verdict.
    pub decisions: Vec<Decision>,
    /// Snapshots already pruned earlier.
    pub already_pruned: usize,
    /// Snapshots whose trees this prune removes.
    pub prune: Vec<ObjectId>,
    pub gc: GcPlan,
}

/// Decide (nothing is written). The caller holds the store lock.
pub fn plan(repo: &Repo, policy: &Policy) -> Result<PrunePlan> {
    if policy.is_empty() {
        return Err(Error::Usage(
            "no retention rule given and none stored: pass e.g. --keep-last 10 --keep-daily 30, or set defaults with `sage prune --save-defaults …`".into(),
        ));
    }
    let pruned = repo.db.pruned()?;
    let rows = repo.db.all_snapshots()?;
    let snaps: Vec<(ObjectId, i64)> = rows
        .iter()
        .filter(|r| !pruned.contains(&r.id))
        .map(|r| (r.id, r.snap.time))
        .collect();
    let mut decisions = apply_policy(&snaps, policy);
    let protect = protected(repo)?;
    for d in &mut decisions {
        if let Some(why) = protect.get(&d.id) {
            d.reasons.push(why.clone());
            d.keep = true;
        }
    }
    let prune: Vec<ObjectId> = decisions.iter().filter(|d| !d.keep).map(|d| d.id).collect();
    Ok(PrunePlan {
        policy: policy.clone(),
        decisions,
        already_pruned: pruned.len(),
        prune,
        gc: GcPlan::default(),
    })
}

/// The gc plan as it will be once `plan.prune` is marked.
pub fn gc_preview(repo: &Repo, plan: &mut PrunePlan, opts: &GcOptions) -> Result<()> {
    let extra: HashSet<ObjectId> = plan.prune.iter().copied().collect();
    plan.gc = crate::gc::plan_with(repo, opts, &extra)?;
    Ok(())
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PruneOutcome {
    pub pruned: usize,
    pub gc: GcOutcome,
}

/// Mark the plan's snapshots pruned (one transaction), then rewrite the packs. A kill after the
/// mark leaves a store whose pruned trees may still be in packs: the next `sage gc` (or prune)
/// drops them.
pub fn apply(repo: &mut Repo, plan: &PrunePlan, opts: &GcOptions) -> Result<PruneOutcome> {
    let now = crate::clock::now_ms();
    let path = repo.db.path.clone();
    let wrap = |e| Error::Db {
        path: path.clone(),
        source: e,
    };
    let t = repo.db.transaction()?;
    for id in &plan.prune {
        tx::mark_pruned(&t, id, now).map_err(wrap)?;
    }
    t.commit().map_err(wrap)?;
    failpoint::hit("prune-after-mark");
    let gp = crate::gc::plan(repo, opts)?;
    let gc = crate::gc::apply(repo, &gp, opts)?;
    Ok(PruneOutcome {
        pruned: plan.prune.len(),
        gc,
    })
}

/// Ids of snapshots whose trees are present (not pruned).
pub fn with_trees(repo: &Repo) -> Result<HashSet<ObjectId>> {
    let pruned = repo.db.pruned()?;
    Ok(repo
        .db
        .all_snapshots()?
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !pruned.contains(id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Kind;

    const DAY: i64 = 86_400_000;

    fn ids(n: usize, start: i64, step: i64) -> Vec<(ObjectId, i64)> {
        (0..n)
            .map(|i| {
                (
                    ObjectId::hash(Kind::Snapshot, &(i as u64).to_le_bytes()),
                    start + i as i64 * step,
                )
            })
            .collect()
    }

    #[test]
    fn zero_counts_are_no_policy() {
        let p = Policy {
            keep_last: Some(0),
            keep_daily: Some(0),
            ..Default::default()
        };
        assert!(p.is_empty());
        assert!(!Policy {
            keep_yearly: Some(-1),
            ..Default::default()
        }
        .is_empty());
    }

    #[test]
    fn span_parses() {
        assert_eq!(
            Span::parse("1y2m3d4h").unwrap(),
            Span {
                years: 1,
                months: 2,
                days: 3,
                hours: 4
            }
        );
        assert_eq!(Span::parse("7d").unwrap().to_string(), "7d");
        assert!(Span::parse("7").is_err());
        assert!(Span::parse("d").is_err());
        assert!(Span::parse("3w").is_err());
    }

    #[test]
    fn keep_last_keeps_newest() {
        std::env::set_var("TZ", "UTC");
        let s = ids(10, 1_700_000_000_000, DAY);
        let p = Policy {
            keep_last: Some(3),
            ..Default::default()
        };
        let d = apply_policy(&s, &p);
        let kept: Vec<i64> = d.iter().filter(|d| d.keep).map(|d| d.time).collect();
        assert_eq!(kept, vec![s[9].1, s[8].1, s[7].1]);
    }

    #[test]
    fn daily_keeps_one_per_day_newest_and_oldest_when_counts_left() {
        std::env::set_var("TZ", "UTC");
        // 2023-11-14 22:13 UTC, every 6 hours for 3 days: 12 snapshots over 4 days.
        let s = ids(12, 1_700_000_000_000, DAY / 4);
        let p = Policy {
            keep_daily: Some(10),
            ..Default::default()
        };
        let d = apply_policy(&s, &p);
        let kept: Vec<i64> = d.iter().filter(|d| d.keep).map(|d| d.time).collect();
        // newest of each day, plus the oldest snapshot (counts were left).
        let mut want = Vec::new();
        let mut last = None;
        for (_, t) in s.iter().rev() {
            let day = t / DAY;
            if last != Some(day) {
                want.push(*t);
                last = Some(day);
            }
        }
        if *want.last().unwrap() != s[0].1 {
            want.push(s[0].1);
        }
        assert_eq!(kept, want);
    }

    #[test]
    fn within_is_relative_to_newest_snapshot() {
        std::env::set_var("TZ", "UTC");
        let s = ids(10, 1_700_000_000_000, DAY);
        let p = Policy {
            keep_within: Some(Span::parse("3d").unwrap()),
            ..Default::default()
        };
        let d = apply_policy(&s, &p);
        // strictly after newest - 3d: the newest three.
        assert_eq!(d.iter().filter(|d| d.keep).count(), 3);
    }
}
