//! `sage gc` and `sage prune` through the real binary: restic's retention rules over 90
//! simulated days (a clock the test sets), repacking, the destructive-operation protocol, and
//! crash safety (failpoints and SIGKILL): afterwards `verify --read-data` finds nothing but
//! orphan packs and every kept snapshot restores byte for byte.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const FLAG: &str = "--i-understand-data-loss-risk";
const DAY: i64 = 86_400_000;
/// 2026-01-05 09:30 UTC (a Monday).
const BASE: i64 = 1_767_605_400_000;

fn at(env: &Env, t: i64, args: &[&str]) -> Out {
    let o = run(env
        .cmd()
        .env("SAGE_TIME", t.to_string())
        .env("TZ", "UTC")
        .args(args));
    assert_eq!(o.code, Some(0), "sage {args:?}: {o:?}");
    o
}

fn prune_cmd(env: &Env, args: &[&str]) -> std::process::Command {
    let mut c = env.cmd();
    c.env("TZ", "UTC").arg("prune").args(args);
    c
}

fn store_bytes(env: &Env) -> u64 {
    std::fs::read_dir(env.store.join("packs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn pack_count(env: &Env) -> usize {
    std::fs::read_dir(env.store.join("packs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".pack") && !n.starts_with("tmp-")
        })
        .count()
}

/// One day of work in the home: a session grows, a scratch session and a todo file are
/// rewritten (so that each day holds bytes no other day has).
fn day_of_work(env: &Env, rng: &mut Rng, day: usize) {
    let proj = env.home.join("projects/-home-u-app");
    append(
        &proj.join("main.jsonl"),
        session_text(rng, "main", 3 + day % 4),
    );
    write(
        &proj.join("scratch.jsonl"),
        session_text(rng, &format!("scratch{day}"), 30),
    );
    write(
        &env.home.join("todos/day.json"),
        format!("{{\"day\":{day},\"pad\":\"{}\"}}", rng.hex(4000)),
    );
}

/// Commits `days` daily snapshots; returns (id, time, stored tree) oldest first.
fn daily_history(env: &Env, days: usize, seed: u64) -> Vec<(String, i64, Tree)> {
    let mut rng = Rng::new(seed);
    write(&env.home.join("settings.json"), "{}");
    write(
        &env.home.join("projects/-home-u-app/main.jsonl"),
        session_text(&mut rng, "main", 5),
    );
    at(env, BASE - DAY, &["init"]);
    let mut out = Vec::new();
    for day in 0..days {
        day_of_work(env, &mut rng, day);
        // a varying hour, so that buckets are decided by the calendar, not by 24 h steps
        let t = BASE + day as i64 * DAY + (day as i64 * 37 % 11) * 3_600_000;
        at(env, t, &["commit", "-m", &format!("day {day}")]);
        out.push((env.head(), t, stored_view(&read_tree(&env.home))));
    }
    out
}

/// restic's rules computed independently (UTC): days since the epoch, ISO weeks as the Monday
/// that starts them.
fn restic_keep(
    snaps: &[(String, i64)],
    last: usize,
    daily: usize,
    weekly: usize,
    within_days: i64,
) -> BTreeSet<String> {
    let mut list: Vec<&(String, i64)> = snaps.iter().collect();
    list.sort_by_key(|s| std::cmp::Reverse(s.1));
    let newest = list[0].1;
    let mut keep = BTreeSet::new();
    let (mut dl, mut wl) = (daily, weekly);
    let (mut last_day, mut last_week) = (None, None);
    let n = list.len();
    for (i, (id, t)) in list.iter().enumerate() {
        let day = t.div_euclid(DAY);
        let monday = day - (day + 3).rem_euclid(7);
        if i < last {
            keep.insert(id.clone());
        }
        if dl > 0 && (last_day != Some(day) || i == n - 1) {
            dl -= 1;
            last_day = Some(day);
            keep.insert(id.clone());
        }
        if wl > 0 && (last_week != Some(monday) || i == n - 1) {
            wl -= 1;
            last_week = Some(monday);
            keep.insert(id.clone());
        }
        if *t > newest - within_days * DAY {
            keep.insert(id.clone());
        }
    }
    keep
}

fn assert_restores(env: &Env, id: &str, want: &Tree, name: &str) {
    let d = env.restore(id, name);
    assert_same_tree(want, &stored_view(&read_tree(&d)), name);
}

#[test]
fn ninety_daily_snapshots_pruned_by_restic_rules() {
    let env = Env::new();
    let hist = daily_history(&env, 90, 90);
    let snaps: Vec<(String, i64)> = hist.iter().map(|(i, t, _)| (i.clone(), *t)).collect();
    let want = restic_keep(&snaps, 3, 30, 12, 7);
    let packs_before = pack_count(&env);
    let before = store_bytes(&env);
    let now = BASE + 90 * DAY;
    let args = [
        "--keep-last",
        "3",
        "--keep-daily",
        "30",
        "--keep-weekly",
        "12",
        "--keep-within",
        "7d",
    ];

    // dry run: the verdicts, nothing changes
    let o = run(env
        .cmd()
        .env("TZ", "UTC")
        .env("SAGE_TIME", now.to_string())
        .args(["--json", "prune", "--dry-run"])
        .args(args));
    assert_eq!(o.code, Some(0), "{o:?}");
    let v = o.json();
    let kept: BTreeSet<String> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, want, "the kept set is restic's");
    assert_eq!(store_bytes(&env), before);
    // the text preview says why
    let o = run(env
        .cmd()
        .env("TZ", "UTC")
        .args(["prune", "--dry-run"])
        .args(args));
    let text = o.text();
    assert!(
        text.contains("daily snapshot") && text.contains("weekly snapshot"),
        "{text}"
    );
    assert!(
        text.contains("within 7d") && text.contains("last snapshot"),
        "{text}"
    );
    // no TTY, no flag: refused, nothing changes
    let o = run(prune_cmd(&env, &args).env("SAGE_TIME", now.to_string()));
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains(FLAG), "{}", o.stderr);
    assert_eq!(store_bytes(&env), before);

    let o = run(env
        .cmd()
        .env("TZ", "UTC")
        .env("SAGE_TIME", now.to_string())
        .args(["--json", "prune", FLAG])
        .args(args));
    assert_eq!(o.code, Some(0), "{o:?}");
    let after = store_bytes(&env);
    let v = o.json();
    assert_eq!(v["pruned"].as_u64().unwrap() as usize, 90 - want.len());
    eprintln!(
        "90 daily snapshots, prune --keep-last 3 --keep-daily 30 --keep-weekly 12 --keep-within 7d: \
         kept {} of 90; store {} bytes in {} packs -> {} bytes in {} packs",
        want.len(),
        before,
        packs_before,
        after,
        pack_count(&env)
    );
    assert!(after < before, "{after} < {before}");
    assert_eq!(pack_count(&env), 1, "90 hook-sized packs become one");
    assert_store_clean(&env, "after prune");

    // every snapshot row is still there; the pruned ones are marked
    let log = env.ok(&["--json", "log"]).json();
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 90);
    let pruned: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["pruned"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let all: BTreeSet<String> = snaps.iter().map(|s| s.0.clone()).collect();
    assert_eq!(pruned, all.difference(&want).cloned().collect());

    // every kept snapshot restores byte for byte; a pruned one is refused with a reason
    for (i, (id, _, tree)) in hist.iter().enumerate() {
        if want.contains(id) {
            assert_restores(&env, id, tree, &format!("restore-{i}"));
        }
    }
    let gone = pruned.iter().next().unwrap();
    let o = env.run_for(&env.dir("gone"), &["checkout", gone]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("pruned"), "{}", o.stderr);

    // show and log --session start at the oldest kept snapshot
    let oldest_kept = hist.iter().find(|h| want.contains(&h.0)).unwrap();
    env.ok(&["show", &oldest_kept.0]);
    let o = env.ok(&[
        "--json",
        "log",
        "--session",
        "projects/-home-u-app/main.jsonl",
    ]);
    let changes = o.json()["changes"].as_array().unwrap().len();
    assert!(changes > 0 && changes <= want.len(), "{changes}");

    // a second prune with the same rules has nothing to do
    let o = run(env
        .cmd()
        .env("TZ", "UTC")
        .env("SAGE_TIME", now.to_string())
        .args(["--json", "prune", FLAG])
        .args(args));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.json()["pruned"], 0);
    assert_eq!(store_bytes(&env), after);
    // and the next commit still works and still deduplicates against the kept HEAD
    let mut rng = Rng::new(7);
    day_of_work(&env, &mut rng, 91);
    at(&env, now + DAY, &["commit", "-m", "after prune"]);
    assert_store_clean(&env, "commit after prune");
}

#[test]
fn defaults_come_from_the_store() {
    let env = Env::new();
    let hist = daily_history(&env, 12, 12);
    env.ok(&["prune", "--save-defaults", "--keep-last", "2"]);
    let o = run(&mut prune_cmd(&env, &["--dry-run", "--json"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    let v = o.json();
    assert_eq!(v["policy"]["keep_last"], 2);
    // the op-log keeps the snapshots of the last 10 operations
    let kept = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .count();
    assert_eq!(
        kept, 11,
        "2 by keep-last, 11 named by the last 10 op-log rows"
    );
    // a flag overrides the stored rule
    let o = run(&mut prune_cmd(
        &env,
        &["--dry-run", "--json", "--keep-last", "5"],
    ));
    assert_eq!(o.json()["policy"]["keep_last"], 5);
    // nothing given, nothing stored: a usage error
    let env2 = Env::new();
    write(&env2.home.join("settings.json"), "{}");
    env2.commit("x");
    let o = run(&mut prune_cmd(&env2, &["--dry-run"]));
    assert_eq!(o.code, Some(2), "{o:?}");
    drop(hist);
}

/// A database lost after a prune is rebuilt from the packs: the pruned snapshots (their
/// objects are kept, their trees are not) come back as rows marked pruned.
#[test]
fn repair_rebuilds_pruned_rows_from_the_packs() {
    let env = Env::new();
    let hist = daily_history(&env, 14, 14);
    run(&mut prune_cmd(&env, &["--keep-last", "2", FLAG]));
    let log = env.ok(&["--json", "log"]).json();
    let pruned_before: BTreeSet<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pruned"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pruned_before.len(), 3, "14 - 11 protected by the op log");
    for f in ["sage.db", "sage.db-wal", "sage.db-shm"] {
        let _ = std::fs::remove_file(env.store.join(f));
    }
    env.ok(&["verify", "--repair"]);
    assert_store_clean(&env, "after repair");
    let log = env.ok(&["--json", "log"]).json();
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 14);
    let pruned_after: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["pruned"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pruned_after, pruned_before);
    let (id, _, tree) = hist.last().unwrap();
    assert_restores(&env, id, tree, "head-after-repair");
}

#[test]
fn gc_merges_small_packs_and_keeps_every_snapshot() {
    let env = Env::new();
    let hist = daily_history(&env, 15, 15);
    assert!(pack_count(&env) >= 15);
    let o = env.ok(&["gc", "--dry-run"]);
    assert!(o.text().contains("rewrite"), "{}", o.text());
    assert!(pack_count(&env) >= 15);
    let before = store_bytes(&env);
    env.ok(&["gc"]);
    assert_eq!(pack_count(&env), 1);
    assert!(store_bytes(&env) <= before);
    assert_store_clean(&env, "after gc");
    for (i, (id, _, tree)) in hist.iter().enumerate() {
        assert_restores(&env, id, tree, &format!("r{i}"));
    }
    // nothing left to do
    let o = env.ok(&["gc"]);
    assert!(o.text().contains("1 packs"), "{}", o.text());
}

fn run_failpoint(fp: &str, mut cmd: std::process::Command) {
    let o = run(cmd.env("SAGE_FAILPOINT", fp));
    assert_eq!(o.code, Some(137), "{fp} did not die: {o:?}");
}

/// Snapshot id -> tree, for the snapshots a `--keep-last 4` prune of `hist` keeps (HEAD and
/// the op-log protection keep the last 11: so `--keep-last 4` prunes the first few).
fn kept_after(hist: &[(String, i64, Tree)], n: usize) -> BTreeMap<String, Tree> {
    hist.iter()
        .rev()
        .take(n)
        .map(|(i, _, t)| (i.clone(), t.clone()))
        .collect()
}

#[test]
fn prune_and_gc_killed_at_each_failpoint() {
    let points: &[(&str, bool)] = &[
        // (failpoint, prune (true) or gc (false))
        ("prune-after-mark", true),
        ("pack-before-fsync", true),
        ("after-pack-rename", true),
        ("gc-after-new-pack", true),
        ("gc-before-db", true),
        ("gc-after-db", true),
        ("gc-after-delete:1", true),
        ("gc-after-delete:5", true),
        ("pack-before-fsync", false),
        ("gc-after-new-pack", false),
        ("gc-before-db", false),
        ("gc-after-db", false),
        ("gc-after-delete:3", false),
    ];
    for (i, (fp, prune)) in points.iter().enumerate() {
        let env = Env::new();
        let hist = daily_history(&env, 14, 300 + i as u64);
        let keep = kept_after(&hist, 11);
        let cmd = if *prune {
            prune_cmd(&env, &["--keep-last", "4", FLAG])
        } else {
            let mut c = env.cmd();
            c.arg("gc");
            c
        };
        let when = format!("{} killed at {fp}", if *prune { "prune" } else { "gc" });
        run_failpoint(fp, cmd);
        assert_store_clean(&env, &when);
        for (j, (id, tree)) in keep.iter().enumerate() {
            assert_restores(&env, id, tree, &format!("k{j}"));
        }
        // the rerun finishes the job
        if *prune {
            run(&mut prune_cmd(&env, &["--keep-last", "4", FLAG]));
        }
        env.ok(&["gc"]);
        assert_eq!(pack_count(&env), 1, "{when}: rerun");
        assert_store_clean(&env, &format!("{when}, rerun"));
        for (j, (id, tree)) in keep.iter().enumerate() {
            assert_restores(&env, id, tree, &format!("again{j}"));
        }
        // repair agrees (it indexes nothing that should not be there)
        env.ok(&["verify", "--repair"]);
        assert_store_clean(&env, &format!("{when}, repair"));
    }
}

#[test]
fn prune_killed_by_sigkill_at_random_moments() {
    let mut rng = Rng::new(0x9e11);
    let mut killed = 0;
    for i in 0..8 {
        let env = Env::new();
        let hist = daily_history(&env, 14, 500 + i);
        let keep = kept_after(&hist, 11);
        // calibrate on a copy of the store: how long a prune takes here
        let copy = env.dir("calib");
        copy_dir(&env.store, &copy);
        let t0 = Instant::now();
        let o = run(env
            .bare()
            .env("TZ", "UTC")
            .arg("--home")
            .arg(&env.home)
            .arg("--store")
            .arg(&copy)
            .args(["prune", "--keep-last", "4", FLAG]));
        assert_eq!(o.code, Some(0), "{o:?}");
        let window = t0.elapsed().as_millis() as u64 + 5;
        let delay = Duration::from_millis(rng.range(0, window));
        killed += kill_after(prune_cmd(&env, &["--keep-last", "4", FLAG]), delay) as u32;
        let when = format!("prune killed after {delay:?}");
        assert_store_clean(&env, &when);
        for (j, (id, tree)) in keep.iter().enumerate() {
            assert_restores(&env, id, tree, &format!("k{j}"));
        }
        let o = run(&mut prune_cmd(&env, &["--keep-last", "4", FLAG]));
        assert_eq!(o.code, Some(0), "{when}: rerun {o:?}");
        assert_store_clean(&env, &format!("{when}, rerun"));
        assert!(Path::new(&env.store).exists());
    }
    eprintln!("{killed} of 8 prunes were killed mid-run");
}

/// What a remote is known to hold (the head of the last backup or hook push to it) keeps its
/// trees whatever the rules say, so that the next sync has a common snapshot with trees.
#[test]
fn prune_keeps_what_a_remote_holds() {
    let env = Env::new();
    let mut rng = Rng::new(77);
    daily_history(&env, 2, 77);
    let usb = env.root.path().join("usb");
    env.ok(&["remote", "add", "usb", usb.to_str().unwrap(), "--bare"]);
    env.ok(&["backup", "usb"]);
    let pushed = env.head();
    for day in 10..24 {
        day_of_work(&env, &mut rng, day);
        at(&env, BASE + day as i64 * DAY, &["commit", "-m", "later"]);
    }
    let o = run(&mut prune_cmd(&env, &["--json", "--keep-last", "1", FLAG]));
    assert_eq!(o.code, Some(0), "{o:?}");
    let v = o.json();
    let d = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == pushed.as_str())
        .expect("the pushed head is decided on");
    assert_eq!(d["keep"], true, "{d}");
    assert!(
        d["reasons"].to_string().contains("shared with remote usb"),
        "{d}"
    );
    assert!(v["pruned"].as_u64().unwrap() > 0);
    assert_store_clean(&env, "after prune");
    // the next backup still finds the common snapshot and sends only what is new
    env.ok(&["backup", "usb"]);
    assert_store_clean(&env, "after the next backup");
}
