//! `sage purge` through the real binary: a secret pasted into a conversation leaves the home,
//! every snapshot's view and every pack, while snapshot ids and every other byte stay; a whole
//! session goes with all its parts; the destructive-operation protocol; a commit of a home that
//! still holds the line stores nothing of it; `verify --repair` keeps the tombstones; and kills
//! at every failpoint and by SIGKILL leave a clean store that a re-run finishes.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FLAG: &str = "--i-understand-data-loss-risk";
const SECRET: &str = "sk-ant-TESTSECRET-7f3a9c";

/// Every object of every pack, decompressed: does any hold `needle`? Also every other file of
/// the store, raw (the database, the tombstone log).
fn store_holds(store: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let finder = needle.as_bytes();
    let holds = |b: &[u8]| b.windows(finder.len()).any(|w| w == finder);
    for e in walk(store) {
        let name = e.to_string_lossy().into_owned();
        if name.ends_with(".pack") && !name.contains("tmp-") {
            let pack = sage::pack::Pack::open(&e).expect("a pack opens");
            pack.for_each_object(|ie, bytes| {
                if holds(bytes) {
                    hits.push(format!("{name}: object {}", ie.id));
                }
                Ok(())
            })
            .unwrap();
        } else if holds(&std::fs::read(&e).unwrap_or_default()) {
            hits.push(name);
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn home_holds(home: &Path, needle: &str) -> Vec<PathBuf> {
    walk(home)
        .into_iter()
        .filter(|p| {
            let b = std::fs::read(p).unwrap_or_default();
            b.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// The tree with every line holding `needle` removed and every other file holding it gone.
fn without(t: &Tree, needle: &str) -> Tree {
    let mut out = Tree::new();
    for (p, n) in t {
        match n {
            Node::File { bytes, exec } => {
                let holds = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                if p.extension().is_some_and(|e| e == "jsonl") {
                    let kept: Vec<u8> = bytes
                        .split_inclusive(|b| *b == b'\n')
                        .filter(|l| !l.windows(needle.len()).any(|w| w == needle.as_bytes()))
                        .flatten()
                        .copied()
                        .collect();
                    if !kept.is_empty() {
                        out.insert(
                            p.clone(),
                            Node::File {
                                bytes: kept,
                                exec: *exec,
                            },
                        );
                    }
                } else if !holds {
                    out.insert(p.clone(), n.clone());
                }
            }
            _ => {
                out.insert(p.clone(), n.clone());
            }
        }
    }
    out
}

/// Files only (directories left empty by a purge may go).
fn files_of(t: &Tree) -> Tree {
    t.iter()
        .filter(|(_, n)| !matches!(n, Node::Dir))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

struct History {
    /// (snapshot id, the stored view of the home when it was taken)
    snaps: Vec<(String, Tree)>,
    secret_session: PathBuf,
}

/// Three sessions over four snapshots; the secret lands in the middle of one session (more
/// lines follow), in a file-history backup and in the prompt history.
fn history(env: &Env, seed: u64) -> History {
    let mut rng = Rng::new(seed);
    let proj = env.home.join("projects/-home-u-app");
    let mut snaps = Vec::new();
    let ids: Vec<String> = (0..3).map(|_| rng.uuid()).collect();
    for id in &ids {
        write(
            &proj.join(format!("{id}.jsonl")),
            session_text(&mut rng, id, 20),
        );
    }
    write(&env.home.join("CLAUDE.md"), "be brief\n");
    snaps.push((env.commit("one"), stored_view(&read_tree(&env.home))));
    let s = proj.join(format!("{}.jsonl", ids[0]));
    append(&s, session_text(&mut rng, &ids[0], 3));
    append(
        &s,
        format!(
            "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"my key is {SECRET}\"}},\"uuid\":\"{}\",\"sessionId\":\"{}\"}}\n",
            rng.uuid(),
            ids[0]
        ),
    );
    append(&s, session_text(&mut rng, &ids[0], 3));
    write(
        &env.home.join(format!("file-history/{}/env.bak@v1", ids[0])),
        format!("API_KEY={SECRET}\n"),
    );
    write(
        &env.home.join("history.jsonl"),
        format!("{{\"display\":\"use {SECRET}\",\"project\":\"/home/u/app\"}}\n"),
    );
    snaps.push((env.commit("two"), stored_view(&read_tree(&env.home))));
    append(&s, session_text(&mut rng, &ids[0], 2));
    append(
        &proj.join(format!("{}.jsonl", ids[1])),
        session_text(&mut rng, &ids[1], 4),
    );
    snaps.push((env.commit("three"), stored_view(&read_tree(&env.home))));
    append(
        &proj.join(format!("{}.jsonl", ids[2])),
        session_text(&mut rng, &ids[2], 2),
    );
    snaps.push((env.commit("four"), stored_view(&read_tree(&env.home))));
    History {
        snaps,
        secret_session: s,
    }
}

fn assert_restores(env: &Env, id: &str, want: &Tree, name: &str) {
    let d = env.restore(id, name);
    assert_same_tree(
        &files_of(want),
        &files_of(&stored_view(&read_tree(&d))),
        &format!("snapshot {id} restored"),
    );
}

#[test]
fn purge_by_text_removes_the_secret_everywhere_and_keeps_everything_else() {
    let env = Env::new();
    let h = history(&env, 11);
    let before_home = stored_view(&read_tree(&env.home));

    // Without a TTY and without the flag: refused, nothing changed.
    let o = env.run(&["purge", "--match", SECRET]);
    assert_ne!(o.code, Some(0), "{o:?}");
    assert!(
        o.stderr.contains("--i-understand-data-loss-risk"),
        "{}",
        o.stderr
    );
    assert_same_tree(
        &before_home,
        &stored_view(&read_tree(&env.home)),
        "a refused purge",
    );
    // A dry run says what goes, changes nothing, and never prints the secret.
    let o = env.ok(&["--json", "purge", "--match", SECRET, "--dry-run"]);
    assert!(!o.text().contains(SECRET));
    let v = o.json();
    assert_eq!(v["lines"], 2, "{v:#}"); // the session line and the history line
    assert_eq!(v["files"], 1, "{v:#}"); // the file-history backup
    assert_eq!(v["snapshots"], 3, "{v:#}");
    let head: Vec<&String> = v["head"].as_object().unwrap().keys().collect();
    assert_eq!(head.len(), 3, "{head:?}");
    let o = env.ok(&["purge", "--match", SECRET, "--dry-run"]);
    assert!(o.text().contains("-1 line"), "{}", o.text());
    assert!(!o.text().contains(SECRET));
    assert_same_tree(
        &before_home,
        &stored_view(&read_tree(&env.home)),
        "a dry run",
    );
    assert!(!store_holds(&env.store, SECRET).is_empty());

    let ids_before: Vec<String> = h.snaps.iter().map(|s| s.0.clone()).collect();
    let o = env.ok(&["purge", "--match", SECRET, FLAG]);
    assert!(!o.text().contains(SECRET));

    // The home: exactly the secret's lines and file gone, every other byte as it was.
    assert_same_tree(
        &files_of(&without(&before_home, SECRET)),
        &files_of(&stored_view(&read_tree(&env.home))),
        "the home after the purge",
    );
    assert!(home_holds(&env.home, SECRET).is_empty());
    assert!(h.secret_session.exists());
    // The store: no pack object, database or log byte holds it.
    assert_eq!(store_holds(&env.store, SECRET), Vec::<String>::new());
    assert_store_clean(&env, "after the purge");
    // Snapshot ids stay; each restores as it was, less the secret.
    let log = env.ok(&["--json", "log"]).json();
    let listed: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in &ids_before {
        assert!(listed.contains(&id.as_str()), "{id} gone from the log");
    }
    assert_eq!(log[0]["kind"], "purge");
    for (i, (id, tree)) in h.snaps.iter().enumerate() {
        assert_restores(&env, id, &without(tree, SECRET), &format!("r{i}"));
        env.ok(&["verify", "--restore-test", id]);
    }
    // `cat` of a purged file says so; of a purged-from session, prints the rest.
    let sid = h
        .secret_session
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = env.run(&[
        "cat",
        &format!("{}:file-history/{sid}/env.bak@v1", h.snaps[1].0),
    ]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.stderr.contains("was purged"), "{}", o.stderr);
    let o = env.ok(&[
        "cat",
        &format!("{}:projects/-home-u-app/{sid}.jsonl", h.snaps[1].0),
    ]);
    assert!(!o.text().contains(SECRET) && !o.stdout.is_empty());
    // A purge cannot be undone (the bytes are gone): undo says so and changes nothing.
    let o = env.run(&["undo", FLAG]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("was a purge"), "{}", o.stderr);
    // Rolling back to a snapshot that held it does not bring it back.
    env.ok(&["checkout", &h.snaps[1].0, FLAG]);
    assert!(home_holds(&env.home, SECRET).is_empty());
    env.ok(&["checkout", &h.snaps[3].0, FLAG]);

    // Pasted again, in a new line: a new purge finds it (the stale-copy case, where the
    // purged line itself comes back, is the next test).
    append(
        &h.secret_session,
        format!(
            "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"my key is {SECRET}\"}},\"uuid\":\"again\"}}\n"
        ),
    );
    env.commit("pasted again");
    let o = env.ok(&["purge", "--match", SECRET, FLAG]);
    assert!(o.text().contains("-1 line"), "{}", o.text());
    assert!(home_holds(&env.home, SECRET).is_empty());
    assert_eq!(store_holds(&env.store, SECRET), Vec::<String>::new());
    assert_store_clean(&env, "after the second purge");

    // The database lost: repair rebuilds the tombstones from their log.
    std::fs::write(env.store.join("sage.db"), b"garbage").unwrap();
    let _ = std::fs::remove_file(env.store.join("sage.db-wal"));
    let _ = std::fs::remove_file(env.store.join("sage.db-shm"));
    env.ok(&["verify", "--repair"]);
    assert_store_clean(&env, "after repair");
    for (i, (id, tree)) in h.snaps.iter().enumerate() {
        assert_restores(
            &env,
            id,
            &without(tree, SECRET),
            &format!("after-repair{i}"),
        );
    }
}

#[test]
fn purge_of_a_line_that_comes_back_unchanged_removes_it_again() {
    let env = Env::new();
    let h = history(&env, 12);
    let session_before = std::fs::read(&h.secret_session).unwrap();
    env.ok(&["purge", "--match", SECRET, FLAG]);
    // A stale copy of the old file written back (an editor, a backup restore by hand).
    write(&h.secret_session, &session_before);
    env.commit("stale copy back");
    assert_eq!(store_holds(&env.store, SECRET), Vec::<String>::new());
    assert_store_clean(&env, "a commit of a purged line");
    // (doctor exits 1 here: it has something to say)
    let d = env.run(&["--json", "doctor", "--offline"]).json();
    assert!(
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "purge" && f["fix"] == "sage purge --finish"),
        "{d:#}"
    );
    env.ok(&["purge", "--finish"]);
    assert!(home_holds(&env.home, SECRET).is_empty());
    let o = env.ok(&["purge", "--finish"]);
    assert!(o.text().contains("nothing to finish"), "{}", o.text());
}

#[test]
fn purge_of_a_session_removes_all_its_parts_and_nothing_else() {
    let env = Env::new();
    let mut rng = Rng::new(21);
    let proj = env.home.join("projects/-home-u-app");
    let gone = "0b5e1d2c-1111-4222-8333-944455566677";
    let kept = "7a7a7a7a-2222-4333-8444-955566677788";
    write(
        &proj.join(format!("{gone}.jsonl")),
        session_text(&mut rng, gone, 12),
    );
    write(
        &proj.join(format!("{gone}/subagents/agent-1.jsonl")),
        session_text(&mut rng, gone, 3),
    );
    write(
        &env.home.join(format!("file-history/{gone}/a.rs@v1")),
        "fn main() {}\n",
    );
    write(
        &env.home.join(format!("todos/{gone}-agent-{gone}.json")),
        "[]",
    );
    // A line both sessions hold (a resumed session copies lines) and an empty todo list both
    // have: bytes of the kept session too, so not tombstoned.
    let shared_line = "{\"type\":\"summary\",\"summary\":\"Refactor the parser\"}\n";
    write(
        &proj.join(format!("{kept}.jsonl")),
        format!("{shared_line}{}", session_text(&mut rng, kept, 12)),
    );
    append(&proj.join(format!("{gone}.jsonl")), shared_line);
    write(
        &env.home.join(format!("todos/{kept}-agent-{kept}.json")),
        "[]",
    );
    // The same backup bytes in the kept session's history: not tombstoned (they belong to
    // the kept session too), though the purged session's path goes.
    write(
        &env.home.join(format!("file-history/{kept}/a.rs@v1")),
        "fn main() {}\n",
    );
    let first = env.commit("one");
    append(
        &proj.join(format!("{gone}.jsonl")),
        session_text(&mut rng, gone, 2),
    );
    env.commit("two");
    let before = stored_view(&read_tree(&env.home));
    let o = env.ok(&["purge", "--session", &gone[..8], "--dry-run"]);
    assert!(o.text().contains("removed"), "{}", o.text());
    env.ok(&["purge", "--session", &gone[..8], FLAG]);
    let after = stored_view(&read_tree(&env.home));
    for p in after.keys() {
        assert!(
            !p.to_string_lossy().contains(gone),
            "{} is left",
            p.display()
        );
    }
    let want: Tree = files_of(&before)
        .into_iter()
        .filter(|(p, _)| !p.to_string_lossy().contains(gone))
        .collect();
    assert_same_tree(&want, &files_of(&after), "the other sessions");
    assert_store_clean(&env, "after a session purge");
    // Older snapshots read without it too; the kept session's backup stays.
    // (what it shares with the kept session is not tombstoned: old snapshots still name it
    // under both sessions; everything else of it is gone)
    let d = env.restore(&first, "first");
    let shared = [
        d.join(format!("file-history/{gone}/a.rs@v1")),
        d.join(format!("todos/{gone}-agent-{gone}.json")),
        d.join(format!("projects/-home-u-app/{gone}.jsonl")),
    ];
    for p in walk(&d) {
        assert!(
            !p.to_string_lossy().contains(gone) || shared.contains(&p),
            "{} restored",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join(format!("projects/-home-u-app/{gone}.jsonl"))).unwrap(),
        shared_line,
        "only the shared line is left of the purged transcript"
    );
    assert!(d.join(format!("file-history/{kept}/a.rs@v1")).exists());
    // A new session's empty todo list is stored and reads back (its bytes are not purged).
    let third = "3c3c3c3c-3333-4444-8555-966677788899";
    write(
        &env.home.join(format!("todos/{third}-agent-{third}.json")),
        "[]",
    );
    let snap = env.commit("three");
    assert_eq!(
        env.cat(&format!("{snap}:todos/{third}-agent-{third}.json")),
        b"[]"
    );
    assert_store_clean(&env, "after a new empty todo");
}

/// A history with a secret, for the kill tests: (snapshots, the final home's stored view).
fn crash_fixture(env: &Env, seed: u64) -> (Vec<(String, Tree)>, Tree) {
    let h = history(env, seed);
    let home = stored_view(&read_tree(&env.home));
    (h.snaps, home)
}

/// After a kill and after the re-run: the store is clean, every snapshot restores either as
/// it was or less the secret (before/after the tombstones), and after the re-run less the
/// secret, with no byte of it left in the home or the packs.
fn check_killed_then_rerun(env: &Env, snaps: &[(String, Tree)], home: &Tree, when: &str) {
    assert_store_clean(env, when);
    let purged =
        !sage::purge::load(&sage::db::Db::open(&env.store.join("sage.db"), false).unwrap())
            .unwrap()
            .is_empty()
            || !sage::purge::read_log(&env.store).unwrap().is_empty();
    for (i, (id, tree)) in snaps.iter().enumerate() {
        let want = if purged {
            without(tree, SECRET)
        } else {
            tree.clone()
        };
        assert_restores(env, id, &want, &format!("k{i}"));
    }
    // The home lost nothing but (perhaps) the secret: each file is as it was or purged.
    let now = files_of(&stored_view(&read_tree(&env.home)));
    let (full, less) = (files_of(home), files_of(&without(home, SECRET)));
    for (p, n) in &full {
        let got = now.get(p);
        assert!(
            got == Some(n) || got == less.get(p),
            "{when}: {} is neither as it was nor purged",
            p.display()
        );
    }
    for p in now.keys() {
        assert!(full.contains_key(p), "{when}: {} appeared", p.display());
    }
    let o = run(env.cmd().args(["purge", "--match", SECRET, FLAG]));
    assert_eq!(o.code, Some(0), "{when}: re-run {o:?}");
    assert_store_clean(env, &format!("{when}, re-run"));
    assert!(home_holds(&env.home, SECRET).is_empty(), "{when}");
    assert_eq!(
        store_holds(&env.store, SECRET),
        Vec::<String>::new(),
        "{when}"
    );
    assert_same_tree(
        &less,
        &files_of(&stored_view(&read_tree(&env.home))),
        &format!("{when}: the home after the re-run"),
    );
    for (i, (id, tree)) in snaps.iter().enumerate() {
        assert_restores(env, id, &without(tree, SECRET), &format!("again{i}"));
    }
}

#[test]
fn purge_killed_at_each_failpoint_is_finished_by_a_rerun() {
    let points = [
        "purge-after-tombstones",
        "pack-before-fsync",
        "after-pack-rename",
        "checkout-before-rename",
        "checkout-mid-rename",
        "replace-before-copy-across",
        "after-pack-rename:2",
        "commit-before-db",
        "purge-after-home",
        "gc-after-new-pack",
        "gc-before-db",
        "gc-after-db",
        "gc-after-delete:1",
    ];
    let mut died = 0;
    for (i, fp) in points.iter().enumerate() {
        let env = Env::new();
        let (snaps, home) = crash_fixture(&env, 400 + i as u64);
        let o = run(env
            .cmd()
            .env("SAGE_FAILPOINT", fp)
            .args(["purge", "--match", SECRET, FLAG]));
        if o.code == Some(137) {
            died += 1;
        } else {
            // A failpoint this purge does not pass (e.g. no pack to write at that step).
            assert_eq!(o.code, Some(0), "{fp}: {o:?}");
        }
        check_killed_then_rerun(&env, &snaps, &home, &format!("purge killed at {fp}"));
    }
    assert!(
        died >= 10,
        "only {died} of {} failpoints were reached",
        points.len()
    );
}

#[test]
fn purge_killed_by_sigkill_at_random_moments() {
    let mut rng = Rng::new(0x5ec7e7);
    let mut killed = 0;
    for i in 0..6 {
        let env = Env::new();
        let (snaps, home) = crash_fixture(&env, 600 + i);
        // Calibrate on a copy: how long a purge takes here.
        let copy_home = env.dir("calib-home");
        let copy_store = env.dir("calib-store");
        copy_dir(&env.home, &copy_home);
        copy_dir(&env.store, &copy_store);
        let t0 = Instant::now();
        let o = run(env
            .bare()
            .arg("--home")
            .arg(&copy_home)
            .arg("--store")
            .arg(&copy_store)
            .args(["purge", "--match", SECRET, FLAG]));
        assert_eq!(o.code, Some(0), "{o:?}");
        let window = t0.elapsed().as_millis() as u64 + 5;
        let delay = Duration::from_millis(rng.range(0, window));
        let mut c = env.cmd();
        c.args(["purge", "--match", SECRET, FLAG]);
        killed += kill_after(c, delay) as u32;
        check_killed_then_rerun(
            &env,
            &snaps,
            &home,
            &format!("purge killed after {delay:?}"),
        );
    }
    eprintln!("{killed} of 6 purges were killed mid-run");
}

#[test]
fn purge_needs_something_to_match() {
    let env = Env::new();
    history(&env, 5);
    let o = env.run(&["purge"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    let o = env.run(&["purge", "--match", "", FLAG]);
    assert_eq!(o.code, Some(2), "{o:?}");
    let o = env.ok(&["purge", "--match", "no such text anywhere", FLAG]);
    assert!(o.text().contains("nothing to purge"), "{}", o.text());
    // --match-file keeps the text off the command line.
    let f = env.root.path().join("texts");
    std::fs::write(&f, format!("{SECRET}\n")).unwrap();
    let o = env.ok(&["purge", "--match-file", f.to_str().unwrap(), FLAG]);
    assert!(o.text().contains("purged"), "{}", o.text());
    assert!(home_holds(&env.home, SECRET).is_empty());
}

/// Claude Code appending to the very session being purged: the purge still goes through (the
/// session only grew), and every line written meanwhile is in the file afterwards.
#[test]
fn purge_of_a_session_being_written_keeps_every_new_line() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let env = Env::new();
    let h = history(&env, 31);
    pad_home(&env.home, 31, 4); // enough work for the purge to take a while
    env.commit("padded");
    let stop = Arc::new(AtomicBool::new(false));
    let path = h.secret_session.clone();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(format!("{{\"type\":\"user\",\"uuid\":\"live-{n}\"}}\n").as_bytes())
                    .unwrap();
                n += 1;
                std::thread::yield_now();
            }
            n
        })
    };
    let o = env.run(&["purge", "--match", SECRET, FLAG]);
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    eprintln!("{written} lines were appended while the purge ran");
    assert_eq!(o.code, Some(0), "{o:?}");
    let text = std::fs::read_to_string(&h.secret_session).unwrap();
    assert!(!text.contains(SECRET));
    for n in 0..written {
        assert!(
            text.contains(&format!("\"uuid\":\"live-{n}\"}}\n")),
            "live line {n} of {written} lost"
        );
    }
    env.commit("after");
    assert_store_clean(&env, "after a purge of a live session");
    assert_eq!(store_holds(&env.store, SECRET), Vec::<String>::new());
}

mod laws {
    //! Property: a purge of arbitrary lines (CRLF, invalid UTF-8, a partial last line) leaves
    //! exactly the other bytes, in the home and in every snapshot; the purged home's session is
    //! the session a fresh scan of it builds (so the next commit finds nothing to record).
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use sage::purge::run::{execute, plan, Criteria};
    use sage::repo::CommitOptions;

    const MARK: &str = "PURGE-ME-42";

    fn line() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..40),
            any::<bool>(),
            0u8..4,
        )
            .prop_map(|(mut b, crlf, mark)| {
                if mark == 0 {
                    let at = b.len() / 2;
                    b.splice(at..at, MARK.bytes());
                }
                if crlf {
                    b.push(b'\r');
                }
                b.push(b'\n');
                b
            })
    }

    fn commit(repo: &mut sage::Repo) {
        repo.commit(&CommitOptions {
            kind: "manual",
            message: "",
            progress: &|_, _| {},
        })
        .unwrap();
    }

    proptest! {
        #![proptest_config(Config {
            cases: 24,
            rng_seed: RngSeed::Fixed(0x9e7),
            failure_persistence: None,
            ..Config::default()
        })]
        #[test]
        fn purge_keeps_exactly_the_other_bytes(
            first in proptest::collection::vec(line(), 0..30),
            more in proptest::collection::vec(line(), 0..10),
            tail in proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..12),
            tail_marked in any::<bool>(),
        ) {
            let d = tempfile::tempdir().unwrap();
            let home = d.path().join("home");
            let s = home.join("projects/-p/s.jsonl");
            std::fs::create_dir_all(s.parent().unwrap()).unwrap();
            let mut tail = tail;
            if tail_marked {
                tail.extend(MARK.bytes());
            }
            let a: Vec<u8> = first.concat();
            std::fs::write(&s, &a).unwrap();
            let (mut repo, _) = sage::Repo::init(&home, Some(&d.path().join("store")), true).unwrap();
            commit(&mut repo);
            let snap_a = repo.head().unwrap().unwrap();
            let mut b = a.clone();
            b.extend(more.concat());
            b.extend(&tail);
            std::fs::write(&s, &b).unwrap();
            commit(&mut repo);
            let snap_b = repo.head().unwrap().unwrap();
            let keep = |bytes: &[u8]| -> Vec<u8> {
                bytes
                    .split_inclusive(|c| *c == b'\n')
                    .filter(|l| !l.windows(MARK.len()).any(|w| w == MARK.as_bytes()))
                    .flatten()
                    .copied()
                    .collect()
            };
            let crit = Criteria { sessions: vec![], matches: vec![MARK.into()] };
            let p = plan(&mut repo, &crit, false).unwrap();
            if !p.is_empty() {
                execute(&mut repo, &p).unwrap();
            }
            let want = keep(&b);
            if want.is_empty() {
                prop_assert!(!s.exists());
            } else {
                prop_assert_eq!(std::fs::read(&s).unwrap(), want);
            }
            for (snap, bytes) in [(snap_a, &a), (snap_b, &b)] {
                let flat = repo.flat_of(&snap).unwrap();
                match flat.get("projects/-p/s.jsonl") {
                    Some(e) => {
                        let mut out = Vec::new();
                        repo.write_entry(e, &mut out).unwrap();
                        prop_assert_eq!(e.size, out.len() as u64);
                        prop_assert_eq!(out, keep(bytes));
                    }
                    None => prop_assert!(keep(bytes).is_empty()),
                }
            }
            // The purged home is what HEAD records: the next commit adds nothing.
            let head = repo.head().unwrap();
            commit(&mut repo);
            prop_assert_eq!(repo.head().unwrap(), head);
            let r = repo.verify(true).unwrap();
            prop_assert!(r.findings.iter().all(|f| !f.is_damage()), "{:?}", r.findings);
        }
    }
}

/// A purged large line (chunked) does not take other large content with it: a line of the same
/// size that shares most chunks but not the secret is stored and reads back.
#[test]
fn a_purged_large_line_leaves_other_large_content_alone() {
    let env = Env::new();
    let mut rng = Rng::new(41);
    let proj = env.home.join("projects/-home-u-app");
    let body: String = (0..9 * 1024 * 1024 / 64)
        .map(|_| format!("{:064}", rng.next_u64()))
        .collect();
    let big = |middle: &str| {
        let half = body.len() / 2;
        format!(
            "{{\"type\":\"user\",\"message\":{{\"content\":\"{}{middle}{}\"}}}}\n",
            &body[..half],
            &body[half..]
        )
    };
    write(
        &proj.join("a.jsonl"),
        format!("{}{}", session_text(&mut rng, "a", 3), big(SECRET)),
    );
    env.commit("big");
    env.ok(&["purge", "--match", SECRET, FLAG]);
    assert_eq!(store_holds(&env.store, SECRET), Vec::<String>::new());
    let clean = big(&"x".repeat(SECRET.len()));
    write(&proj.join("b.jsonl"), &clean);
    let snap = env.commit("the same body, without the secret");
    assert_eq!(
        env.cat(&format!("{snap}:projects/-home-u-app/b.jsonl")),
        clean.as_bytes()
    );
    assert_store_clean(&env, "after a large line like the purged one");
    let d = env.restore(&snap, "r");
    assert_eq!(
        std::fs::read(d.join("projects/-home-u-app/b.jsonl")).unwrap(),
        clean.as_bytes()
    );
}

/// A peer cannot tombstone a tree node, whatever kind it claims.
#[test]
fn a_peer_cannot_tombstone_a_tree() {
    let env = Env::new();
    history(&env, 51);
    let mut repo = sage::Repo::open(&env.home, Some(&env.store)).unwrap();
    let head = repo.head().unwrap().unwrap();
    let root = repo.snapshot(&head).unwrap().snap.root;
    let fake = sage::purge::Tombstone {
        id: root,
        kind: sage::Kind::Line,
        time: 1,
        reason: "evil".into(),
    };
    let added = sage::purge::run::accept_tombstones(&mut repo, &[fake], "a peer", true).unwrap();
    assert_eq!(added, 0);
    drop(repo);
    env.ok(&["gc"]);
    assert_store_clean(&env, "after a peer's tombstone of a tree");
}
