//! Crash safety with the real binary: a commit or checkout killed at each failpoint of the
//! write order, and by SIGKILL at seeded random moments. Afterwards `verify --read-data` is
//! clean (orphan packs allowed), every home file holds its old or its new bytes, and the
//! command reruns to success with the expected result.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FLAG: &str = "--i-understand-data-loss-risk";

/// Files and symlinks only (directories may be created before the files that fill them).
fn leaves(t: &Tree) -> Tree {
    t.iter()
        .filter(|(_, n)| !matches!(n, Node::Dir))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

/// Every stored path of `now` holds its bytes in `old` or in `new` (absent counts as a state).
/// `appendable`: sessions that may be mid-append (old plus whole lines of new).
fn assert_old_or_new(
    now: &Tree,
    old: &Tree,
    new: &Tree,
    appendable: &BTreeSet<PathBuf>,
    when: &str,
) {
    let (now, old, new) = (leaves(&stored_view(now)), leaves(old), leaves(new));
    let paths: BTreeSet<&PathBuf> = now.keys().chain(old.keys()).chain(new.keys()).collect();
    for p in paths {
        let (n, o, w) = (now.get(p), old.get(p), new.get(p));
        if n == o || n == w {
            continue;
        }
        if appendable.contains(p) {
            if let (
                Some(Node::File { bytes: nb, .. }),
                Some(Node::File { bytes: ob, .. }),
                Some(Node::File { bytes: wb, .. }),
            ) = (n, o, w)
            {
                if nb.starts_with(ob) && wb.starts_with(nb) && nb.ends_with(b"\n") {
                    continue;
                }
            }
        }
        panic!(
            "{when}: {} holds neither its old nor its new state\n  now {n:?}\n  old {o:?}\n  new {w:?}",
            p.display()
        );
    }
}

fn run_failpoint(env: &Env, fp: &str, args: &[&str]) {
    let o = run(env.cmd().env("SAGE_FAILPOINT", fp).args(args));
    assert_eq!(
        o.code,
        Some(137),
        "sage {args:?} with {fp} did not die: {o:?}"
    );
    let name = fp.split(':').next().unwrap();
    assert!(
        o.stderr.contains(&format!("failpoint {name}")),
        "{}",
        o.stderr
    );
}

/// HEAD holds exactly the stored part of the home.
fn assert_head_is_home(env: &Env, name: &str) {
    let dst = env.restore("HEAD", name);
    assert_same_tree(
        &stored_view(&read_tree(&env.home)),
        &stored_view(&read_tree(&dst)),
        &format!("{name}: HEAD vs home"),
    );
}

fn crash_home(env: &Env, seed: u64) -> AwkwardHome {
    let h = awkward_home(&env.home, seed);
    pad_home(&env.home, seed, 2);
    h
}

fn mutate_for_commit(env: &Env, h: &AwkwardHome, seed: u64) {
    let mut rng = Rng::new(seed);
    append(&h.sessions[0], session_text(&mut rng, "s0", 20));
    write(&h.sessions[1], session_text(&mut rng, "s1", 30));
    std::fs::remove_file(&h.sessions[2]).unwrap();
    write(
        &env.home
            .join(format!("projects/-home-x-my-app/{}.jsonl", rng.uuid())),
        session_text(&mut rng, "new", 200),
    );
    write(
        &env.home.join("settings.json"),
        format!("{{\"seed\":{seed}}}"),
    );
}

const COMMIT_POINTS: &[&str] = &[
    "pack-before-fsync",
    "after-pack-rename",
    "commit-before-db",
    "commit-after-db",
];

#[test]
fn commit_killed_at_each_failpoint() {
    for (i, fp) in COMMIT_POINTS.iter().enumerate() {
        let env = Env::new();
        let h = crash_home(&env, 100 + i as u64);
        // the very first commit, killed
        let before = home_without_marker(&env.home);
        run_failpoint(&env, fp, &["commit", "-m", "first"]);
        assert_same_tree(&before, &home_without_marker(&env.home), fp);
        assert_store_clean(&env, &format!("{fp} on the first commit"));
        let a = env.commit("first, again");
        assert_head_is_home(&env, &format!("first-{fp}"));

        // a later commit, killed
        mutate_for_commit(&env, &h, i as u64);
        let before = read_tree(&env.home);
        run_failpoint(&env, fp, &["commit", "-m", "second"]);
        assert_same_tree(&before, &read_tree(&env.home), fp);
        assert_store_clean(&env, &format!("{fp} on a later commit"));
        let head = env.head();
        if *fp == "commit-after-db" {
            assert_ne!(head, a, "{fp}: the snapshot row is committed");
        } else {
            assert_eq!(head, a, "{fp}: HEAD moved before the database commit");
        }
        env.ok(&["commit", "-m", "second, again"]);
        assert_ne!(env.head(), a);
        assert_head_is_home(&env, &format!("second-{fp}"));
        assert_store_clean(&env, &format!("{fp} after the rerun"));
        // nothing of a killed commit is left to confuse the next one
        assert!(env.ok(&["commit"]).text().starts_with("nothing changed"));
        let o = env.ok(&["--json", "verify", "--repair"]);
        assert_eq!(o.code, Some(0));
        assert_store_clean(&env, &format!("{fp} after repair"));
    }
}

/// A home at A (committed), B (committed, current): a checkout of A killed at `fp`.
#[test]
fn checkout_killed_at_each_failpoint() {
    let cases: &[(&str, bool)] = &[
        // (failpoint, home has uncommitted changes so the safety snapshot writes a pack)
        ("checkout-before-rename", false),
        ("checkout-mid-rename", false),
        ("pack-before-fsync", false),
        ("after-pack-rename", false),
        ("commit-before-db", false),
        ("checkout-before-rename", true),
        ("pack-before-fsync:1", true),
        ("pack-before-fsync:2", true),
        ("after-pack-rename:1", true),
        ("commit-before-db", true),
        ("commit-after-db", true),
    ];
    for (i, (fp, dirty)) in cases.iter().enumerate() {
        let env = Env::new();
        let h = crash_home(&env, 200 + i as u64);
        let a = env.commit("A");
        let state_a = stored_view(&read_tree(&env.home));
        mutate_for_commit(&env, &h, 50 + i as u64);
        env.commit("B");
        if *dirty {
            append(&h.sessions[3], "{\"uncommitted\":true}\n");
            write(&env.home.join("todos/dirty.json"), "[1]");
        }
        let old = stored_view(&read_tree(&env.home));
        let when = format!("checkout killed at {fp} (dirty {dirty})");
        run_failpoint(&env, fp, &["checkout", &a, FLAG]);
        assert_store_clean(&env, &when);
        assert_old_or_new(
            &read_tree(&env.home),
            &old,
            &state_a,
            &BTreeSet::new(),
            &when,
        );
        // the rerun finishes the job
        env.ok(&["checkout", &a, FLAG]);
        assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), &when);
        assert_store_clean(&env, &format!("{when}, after the rerun"));
        // the killed run's temp files are gone too
        let temps: Vec<PathBuf> = read_tree(&env.home)
            .into_keys()
            .filter(|p| p.to_string_lossy().contains(".sage-tmp-"))
            .collect();
        assert!(
            temps.is_empty(),
            "{when}: temp files left behind: {temps:?}"
        );
        assert!(
            env.ok(&["commit"]).text().starts_with("nothing changed"),
            "{when}"
        );
        // whatever the dirty home held is in a snapshot
        if *dirty {
            let Node::File { bytes, .. } = &old[Path::new("todos/dirty.json")] else {
                panic!()
            };
            let log = env.ok(&["--json", "log", "--kind", "auto"]).json();
            let found = log.as_array().unwrap().iter().any(|r| {
                env.run(&[
                    "cat",
                    &format!("{}:todos/dirty.json", r["id"].as_str().unwrap()),
                ])
                .stdout
                    == *bytes
            });
            assert!(
                found,
                "{when}: the uncommitted change is in no safety snapshot"
            );
        }
    }
}

#[test]
fn checkout_killed_while_appending_to_a_session() {
    let env = Env::new();
    let h = crash_home(&env, 300);
    let a = env.commit("A");
    let state_a = stored_view(&read_tree(&env.home));
    let mut rng = Rng::new(3);
    append(&h.sessions[0], session_text(&mut rng, "more", 10));
    append(&h.sessions[4], session_text(&mut rng, "more", 10));
    let b = env.commit("B");
    let state_b = stored_view(&read_tree(&env.home));
    env.ok(&["checkout", &a, FLAG]);
    // B only adds lines to A's sessions: those are appended in place, one line at a time
    let appendable: BTreeSet<PathBuf> = [&h.sessions[0], &h.sessions[4]]
        .iter()
        .map(|p| p.strip_prefix(&env.home).unwrap().to_path_buf())
        .collect();
    for n in [1, 5, 12] {
        let fp = format!("append-mid-session:{n}");
        run_failpoint(&env, &fp, &["checkout", &b, FLAG]);
        assert_store_clean(&env, &fp);
        assert_old_or_new(&read_tree(&env.home), &state_a, &state_b, &appendable, &fp);
        env.ok(&["checkout", &b, FLAG]);
        assert_same_tree(&state_b, &stored_view(&read_tree(&env.home)), &fp);
        env.ok(&["checkout", &a, FLAG]);
        assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), &fp);
    }
}

/// A checkout killed with half a line appended: the next sage that takes the lock finishes the
/// append from the intent log, so the file holds exactly its new bytes.
#[test]
fn a_half_written_line_is_completed_when_sage_next_runs() {
    let env = Env::new();
    let h = crash_home(&env, 310);
    let a = env.commit("A");
    let mut rng = Rng::new(31);
    let old0 = std::fs::read(&h.sessions[0]).unwrap();
    append(&h.sessions[0], session_text(&mut rng, "more", 10));
    let b = env.commit("B");
    let state_b = stored_view(&read_tree(&env.home));
    let new0 = std::fs::read(&h.sessions[0]).unwrap();
    env.ok(&["checkout", &a, FLAG]);
    for n in [1, 4] {
        let fp = format!("append-half-line:{n}");
        run_failpoint(&env, &fp, &["checkout", &b, FLAG]);
        let now = std::fs::read(&h.sessions[0]).unwrap();
        assert!(
            now.len() > old0.len() && !now.ends_with(b"\n"),
            "{fp}: half a line is on disk"
        );
        assert!(new0.starts_with(&now), "{fp}");
        // any command that takes the lock finishes the write first
        let o = env.ok(&["commit", "-m", "after the crash"]);
        assert!(
            o.stderr.contains("finished an interrupted append"),
            "{}",
            o.stderr
        );
        assert_eq!(
            std::fs::read(&h.sessions[0]).unwrap(),
            new0,
            "{fp}: completed"
        );
        assert_store_clean(&env, &fp);
        env.ok(&["checkout", &b, FLAG]);
        assert_same_tree(&state_b, &stored_view(&read_tree(&env.home)), &fp);
        env.ok(&["checkout", &a, FLAG]);
    }
}

/// A replace killed between its rename and the copy-across: lines a live writer put in the
/// old file (kept under its side name) are copied across when sage next runs.
#[test]
fn a_replace_killed_before_its_copy_across_is_finished_from_the_intent_log() {
    let env = Env::new();
    let h = crash_home(&env, 320);
    let a = env.commit("A");
    let mut rng = Rng::new(32);
    write(&h.sessions[1], session_text(&mut rng, "rewritten", 12));
    let b = env.commit("B");
    let new1 = std::fs::read(&h.sessions[1]).unwrap();
    env.ok(&["checkout", &a, FLAG]);
    run_failpoint(&env, "replace-before-copy-across", &["checkout", &b, FLAG]);
    // the rename happened; the old file lives on under its side name
    assert_eq!(std::fs::read(&h.sessions[1]).unwrap(), new1);
    let dir = h.sessions[1].parent().unwrap();
    let side = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-side"))
        .expect("the side link of the replaced session");
    // a live Claude Code appended to the old file just before the rename
    let late = message_line(&mut rng, "late", "assistant", 9);
    append(&side, &late);
    let o = env.ok(&["commit", "-m", "after the crash"]);
    assert!(o.stderr.contains("copied across"), "{}", o.stderr);
    let mut want = new1.clone();
    want.extend_from_slice(late.as_bytes());
    assert_eq!(std::fs::read(&h.sessions[1]).unwrap(), want);
    assert!(!side.exists(), "the side name is removed");
    assert_store_clean(&env, "replace-before-copy-across");
    // and the late line is in the new snapshot
    let head = env.head();
    let rel = h.sessions[1]
        .strip_prefix(&env.home)
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert_eq!(env.cat(&format!("{head}:{rel}")), want);
    // a second run has nothing left to do
    let o = env.ok(&["commit"]);
    assert!(!o.stderr.contains("interrupted"), "{}", o.stderr);
}

fn home_without_marker(home: &Path) -> Tree {
    let mut t = read_tree(home);
    t.remove(Path::new(".sage-home"));
    t
}

fn timed(env: &Env, args: &[&str]) -> Duration {
    let t = Instant::now();
    env.ok(args);
    t.elapsed()
}

/// Two states of a ~20 MB home that differ by ~8 MB of sessions both ways.
fn big_states(env: &Env) -> (AwkwardHome, Tree, Tree) {
    let h = awkward_home(&env.home, 400);
    pad_home(&env.home.join("projects/-pad-a-keep"), 401, 6);
    pad_home(&env.home.join("projects/-pad-a-only"), 402, 6);
    let a = stored_view(&read_tree(&env.home));
    std::fs::remove_dir_all(env.home.join("projects/-pad-a-only")).unwrap();
    pad_home(&env.home.join("projects/-pad-b-only"), 403, 7);
    let mut rng = Rng::new(404);
    for s in &h.sessions {
        append(s, session_text(&mut rng, "b", 30));
    }
    let b = stored_view(&read_tree(&env.home));
    (h, a, b)
}

/// Make the home equal to `t` (files and links; never-stored files are left alone).
fn set_home(home: &Path, t: &Tree) {
    for (p, n) in stored_view(&read_tree(home)) {
        if !matches!(n, Node::Dir) && !t.contains_key(&p) {
            std::fs::remove_file(home.join(&p)).unwrap();
        }
    }
    for (p, n) in stored_view(&read_tree(home)) {
        if matches!(n, Node::Dir) && !t.contains_key(&p) {
            let _ = std::fs::remove_dir_all(home.join(&p));
        }
    }
    for (p, n) in t {
        let abs = home.join(p);
        match n {
            Node::Dir => std::fs::create_dir_all(&abs).unwrap(),
            Node::File { bytes, exec } => {
                if std::fs::symlink_metadata(&abs)
                    .map(|m| m.is_symlink())
                    .unwrap_or(false)
                {
                    std::fs::remove_file(&abs).unwrap();
                }
                write(&abs, bytes);
                set_exec(&abs, *exec);
            }
            Node::Link(target) => {
                let _ = std::fs::remove_file(&abs);
                std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &abs).unwrap();
            }
        }
    }
}

use std::os::unix::ffi::OsStrExt;

#[test]
fn sigkill_at_random_moments_of_commit_and_checkout() {
    let env = Env::new();
    let (_h, state_a, state_b) = big_states(&env);
    // calibrate the kill window on this machine: the commands' own durations
    set_home(&env.home, &state_a);
    let commit_time = timed(&env, &["commit", "-m", "A"]);
    let a = env.head();
    set_home(&env.home, &state_b);
    env.ok(&["commit", "-m", "B"]);
    let b = env.head();
    let checkout_time = timed(&env, &["checkout", &a, FLAG]);
    let mut current = state_a.clone();
    let mut rng = Rng::new(0x5a6e);
    let mut killed = 0;
    for i in 0..15 {
        let when = format!("iteration {i}");
        if i % 3 == 0 {
            // the first commit into a fresh store (everything is new); the store is created
            // first (a kill inside `init` is the deterministic test below)
            let store = env.root.path().join(format!("store-{i}"));
            let o = run(env
                .bare()
                .arg("--home")
                .arg(&env.home)
                .arg("--store")
                .arg(&store)
                .arg("init"));
            assert_eq!(o.code, Some(0), "{o:?}");
            let window = commit_time.as_millis() as u64 + 20;
            let delay = Duration::from_millis(rng.range(0, window));
            let mut cmd = env.bare();
            cmd.arg("--home")
                .arg(&env.home)
                .arg("--store")
                .arg(&store)
                .args(["commit", "-m", "fresh"]);
            let before = home_without_marker(&env.home);
            killed += kill_after(cmd, delay) as u32;
            assert_eq!(
                before,
                home_without_marker(&env.home),
                "{when}: a killed commit changed the home"
            );
            let in_store = |args: &[&str]| {
                run(env
                    .bare()
                    .arg("--home")
                    .arg(&env.home)
                    .arg("--store")
                    .arg(&store)
                    .args(args))
            };
            let o = in_store(&["--json", "verify", "--read-data"]);
            assert_eq!(o.code, Some(0), "{when}: {o:?}");
            let o = in_store(&["commit", "-m", "fresh, again"]);
            assert_eq!(o.code, Some(0), "{when}: rerun {o:?}");
            let o = in_store(&["verify", "--read-data"]);
            assert_eq!(o.code, Some(0), "{when}: {o:?}");
            // the home marker names the last store that committed: ours again
            env.ok(&["init"]);
        } else if i % 3 == 1 {
            // an incremental commit with a few MB of changes
            let mut t = current.clone();
            let mut r = Rng::new(i);
            for (p, n) in t.iter_mut() {
                if let Node::File { bytes, .. } = n {
                    if p.extension().is_some_and(|e| e == "jsonl") && r.chance(30) {
                        bytes.extend_from_slice(session_text(&mut r, "grow", 50).as_bytes());
                    }
                }
            }
            t.insert(
                PathBuf::from(format!("projects/-new/{i}.jsonl")),
                Node::File {
                    bytes: session_text(&mut r, "new", 3000).into_bytes(),
                    exec: false,
                },
            );
            set_home(&env.home, &t);
            let window = commit_time.as_millis() as u64 / 2 + 20;
            let delay = Duration::from_millis(rng.range(0, window));
            let before = home_without_marker(&env.home);
            killed += kill_after(
                {
                    let mut c = env.cmd();
                    c.args(["commit", "-m", "incremental"]);
                    c
                },
                delay,
            ) as u32;
            assert_eq!(
                before,
                home_without_marker(&env.home),
                "{when}: a killed commit changed the home"
            );
            assert_store_clean(&env, &when);
            env.ok(&["commit", "-m", "incremental, again"]);
            assert_head_is_home(&env, &format!("restore-{i}"));
            current = t;
        } else {
            // a checkout to the other big state
            let (target, target_tree) =
                if current == state_a || !current.contains_key(Path::new("projects/-pad-b-only")) {
                    (&b, &state_b)
                } else {
                    (&a, &state_a)
                };
            let old = stored_view(&read_tree(&env.home));
            let window = checkout_time.as_millis() as u64 + 50;
            let delay = Duration::from_millis(rng.range(0, window));
            killed += kill_after(
                {
                    let mut c = env.cmd();
                    c.args(["checkout", target, FLAG]);
                    c
                },
                delay,
            ) as u32;
            assert_store_clean(&env, &when);
            assert_old_or_new(
                &read_tree(&env.home),
                &old,
                target_tree,
                &BTreeSet::new(),
                &when,
            );
            env.ok(&["checkout", target, FLAG]);
            assert_same_tree(target_tree, &stored_view(&read_tree(&env.home)), &when);
            current = target_tree.clone();
        }
    }
    assert_store_clean(&env, "the end");
    // the kills did land mid-command (else this test tests nothing)
    eprintln!("{killed} of 15 kills landed while a command ran");
    assert!(
        killed >= 4,
        "only {killed} kills landed while a command ran"
    );
}

/// A commit that creates its store and is killed inside `init` (after `sage.db` exists, between
/// the writes of its metadata) must leave a store that the rerun can use.
#[test]
fn a_commit_killed_inside_init_leaves_a_usable_store() {
    for keys in 0..3 {
        let env = Env::new();
        awkward_home(&env.home, 500 + keys as u64);
        // the state a kill leaves: the schema, and the first `keys` metadata rows
        std::fs::create_dir_all(env.store.join("packs")).unwrap();
        let db = sage::db::Db::open(&env.store.join("sage.db"), true).unwrap();
        let values = [
            "0123456789abcdef0123456789abcdef".to_string(),
            "1".to_string(),
        ];
        for (k, v) in ["store_id", "format"].iter().zip(&values).take(keys) {
            db.set_meta(k, v).unwrap();
        }
        drop(db);
        let o = env.run(&["commit", "-m", "rerun"]);
        assert_eq!(o.code, Some(0), "{keys} metadata rows: {o:?}");
        assert_head_is_home(&env, "restored");
    }
}
