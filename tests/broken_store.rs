//! Deliberately broken stores as fixtures for `verify` and `verify --repair`: a missing pack
//! (its objects gone), a flipped byte in a pack's block area, an orphan pack, a truncated
//! pack, a deleted or damaged `sage.db`. Each gives a clear error and a non-zero exit, and after
//! `verify --repair` every intact snapshot restores byte-identical.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A store with two snapshots: A (pack 1) and B, whose pack holds a ~3 MB new session (many
/// blocks) written before the small files and trees.
struct Fixture {
    env: Env,
    a: String,
    b: String,
    state_a: Tree,
    state_b: Tree,
    big: String,
    pack_a: PathBuf,
    pack_b: PathBuf,
}

fn packs(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(store.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    v.sort();
    v
}

fn fixture(seed: u64) -> Fixture {
    let env = Env::new();
    let h = awkward_home(&env.home, seed);
    let a = env.commit("A");
    let pack_a = packs(&env.store)[0].clone();
    let state_a = stored_view(&read_tree(&env.home));
    let mut rng = Rng::new(seed);
    // a session whose lines do not compress much, so that it spans several pack blocks
    let big = "projects/-big/0000-big.jsonl".to_string();
    let mut text = String::new();
    while text.len() < 3 << 20 {
        text.push_str(&format!(
            "{{\"type\":\"user\",\"uuid\":\"{}\",\"data\":\"{}\"}}\n",
            rng.uuid(),
            rng.hex(600)
        ));
    }
    write(&env.home.join(&big), text);
    append(&h.sessions[0], "{\"b\":1}\n");
    let b = env.commit("B");
    let pack_b = packs(&env.store)
        .into_iter()
        .find(|p| *p != pack_a)
        .unwrap();
    let state_b = stored_view(&read_tree(&env.home));
    Fixture {
        env,
        a,
        b,
        state_a,
        state_b,
        big,
        pack_a,
        pack_b,
    }
}

fn verify_json(env: &Env, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut a = vec!["--json", "verify"];
    a.extend_from_slice(args);
    let o = env.run(&a);
    (o.code, o.json())
}

fn findings<'a>(v: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// Restore `snap` into a fresh directory and compare it with `want`.
fn assert_restores(env: &Env, snap: &str, want: &Tree, name: &str) {
    let dst = env.restore(snap, name);
    assert_same_tree(want, &stored_view(&read_tree(&dst)), name);
}

#[test]
fn a_missing_pack_is_reported_with_what_it_touches() {
    let f = fixture(41);
    let env = &f.env;
    fs::remove_file(&f.pack_b).unwrap();
    let (code, v) = verify_json(env, &[]);
    assert_eq!(code, Some(1), "{v:#}");
    let name = f.pack_b.file_stem().unwrap().to_str().unwrap();
    assert!(
        findings(&v, "missing-pack")
            .iter()
            .any(|m| m["pack"] == name),
        "{v:#}"
    );
    // the whole pack is gone, B's root directory with it: that is what B misses
    let missing = findings(&v, "missing-object");
    assert_eq!(missing.len(), 1, "{v:#}");
    assert_eq!(missing[0]["snapshots"], 1, "{v:#}");
    let root_b = env.ok(&["--json", "log", "-n", "1"]).json()[0]["root"].clone();
    assert_eq!(missing[0]["id"], root_b, "{v:#}");
    // the text report says what to do
    let o = env.run(&["verify"]);
    assert_eq!(o.code, Some(1));
    assert!(o.text().contains("missing object"), "{}", o.text());
    assert!(o.text().contains("fix:"), "{}", o.text());
    // reading B fails cleanly; A is intact
    let o = env.run(&["cat", &format!("{}:{}", f.b, f.big)]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("missing"), "{}", o.stderr);
    assert!(o.stderr.contains("sage verify"), "{}", o.stderr);
    assert_restores(env, &f.a, &f.state_a, "a-before-repair");
    // a restore of B fails with an error, and leaves no half-written target behind it
    let o = env.run_for(&env.root.path().join("restore-b"), &["checkout", &f.b]);
    assert_eq!(o.code, Some(1), "{o:?}");
    // repair keeps what is intact; B stays damaged (its bytes are gone)
    let o = env.run(&["verify", "--repair"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    let (code, v) = verify_json(env, &["--read-data"]);
    assert_eq!(code, Some(1));
    assert!(findings(&v, "missing-pack").is_empty(), "{v:#}");
    assert!(!findings(&v, "missing-object").is_empty(), "{v:#}");
    assert_restores(env, &f.a, &f.state_a, "a-after-repair");
    // the home still has B's bytes: a commit after the repair stores them again
    env.ok(&["commit", "-m", "C"]);
    let head = env.head();
    assert_restores(env, &head, &f.state_b, "c-after-repair");
}

#[test]
fn a_new_commit_never_names_objects_the_store_lost() {
    let f = fixture(42);
    let env = &f.env;
    // files the stat cache trusts: a commit reuses their entries without reading them
    age_files(&env.home);
    env.ok(&["commit", "-m", "cache"]);
    fs::remove_file(&f.pack_b).unwrap();
    // the home still has every byte; a commit must not build on the lost objects
    write(&env.home.join("settings.json"), "{\"after\":\"loss\"}");
    let o = env.run(&["commit", "-m", "after the loss"]);
    let (code, v) = verify_json(env, &[]);
    if o.code == Some(0) {
        let head = env.head();
        let dst = env.restore(&head, "restored-head");
        assert_same_tree(
            &stored_view(&read_tree(&env.home)),
            &stored_view(&read_tree(&dst)),
            "the snapshot taken after the loss",
        );
        // only B itself is damaged now
        for m in findings(&v, "missing-object") {
            assert_eq!(m["snapshots"], 1, "{v:#}");
        }
    } else {
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("verify"), "{}", o.stderr);
        assert_eq!(code, Some(1));
    }
}

#[test]
fn a_flipped_byte_in_a_block_is_found_by_read_data_with_its_path() {
    let f = fixture(43);
    let env = &f.env;
    let mut bytes = fs::read(&f.pack_b).unwrap();
    // the first block holds the big session's first lines
    bytes[16 + 1000] ^= 0x20;
    fs::write(&f.pack_b, &bytes).unwrap();
    let (code, v) = verify_json(env, &["--read-data"]);
    assert_eq!(code, Some(1), "{v:#}");
    let corrupt = findings(&v, "corrupt-object");
    assert!(!corrupt.is_empty(), "{v:#}");
    let name = f.pack_b.file_stem().unwrap().to_str().unwrap();
    for c in &corrupt {
        assert_eq!(c["pack"], name, "{c:#}");
        assert!(c["fix"].as_str().unwrap().contains("sage verify --repair"));
    }
    assert!(
        corrupt
            .iter()
            .any(|c| c["example_path"] == f.big.as_str() && c["snapshots"] == 1),
        "{v:#}"
    );
    let o = env.run(&["verify", "--read-data"]);
    assert!(o.text().contains(&f.big), "{}", o.text());
    assert!(o.text().contains("damaged object"), "{}", o.text());
    // reading the damaged file is an error (never wrong bytes)
    let o = env.run(&["cat", &format!("{}:{}", f.b, f.big)]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("verify"), "{}", o.stderr);
    assert_restores(env, &f.a, &f.state_a, "a-before-repair");
    // repair: the damaged pack goes to quarantine, its intact objects are kept
    let o = env.run(&["--json", "verify", "--repair"]);
    let rep: serde_json::Value = serde_json::Deserializer::from_slice(&o.stdout)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        rep["packs_quarantined"].as_array().unwrap().len(),
        1,
        "{rep:#}"
    );
    assert!(rep["objects_salvaged"].as_u64().unwrap() > 0, "{rep:#}");
    assert!(env
        .store
        .join("quarantine")
        .join(f.pack_b.file_name().unwrap())
        .exists());
    let (_, v) = verify_json(env, &["--read-data"]);
    assert!(findings(&v, "corrupt-object").is_empty(), "{v:#}");
    assert!(findings(&v, "pack-checksum").is_empty(), "{v:#}");
    // what is lost is the big session's first lines, nothing else
    for m in findings(&v, "missing-object") {
        assert_eq!(m["example_path"], f.big.as_str(), "{v:#}");
    }
    assert_restores(env, &f.a, &f.state_a, "a-after-repair");
    // B's files outside the damaged block are still readable
    let rel0 = f
        .state_b
        .keys()
        .find(|p| p.to_str().unwrap().ends_with("history.jsonl"))
        .unwrap()
        .clone();
    assert_eq!(
        env.cat(&format!("{}:{}", f.b, rel_str(&rel0))),
        fs::read(env.home.join(&rel0)).unwrap()
    );
}

#[test]
fn a_damaged_object_shared_by_two_snapshots_touches_both() {
    let f = fixture(44);
    let env = &f.env;
    // A's pack holds objects B shares: damage one block of it
    let mut bytes = fs::read(&f.pack_a).unwrap();
    bytes[16 + 300] ^= 0x01;
    fs::write(&f.pack_a, &bytes).unwrap();
    let (code, v) = verify_json(env, &["--read-data"]);
    assert_eq!(code, Some(1));
    let corrupt = findings(&v, "corrupt-object");
    // the awkward home's history.jsonl is in both snapshots
    assert!(
        corrupt
            .iter()
            .any(|c| c["snapshots"] == 2
                && c["example_path"].as_str().is_some_and(|p| !p.is_empty())),
        "no damaged object is said to touch both snapshots: {v:#}"
    );
}

#[test]
fn an_orphan_pack_is_harmless_and_repair_indexes_it() {
    let f = fixture(45);
    let env = &f.env;
    // another store's packs: its first (complete) and its second (a snapshot missing objects)
    let other = Env::new();
    let oh = awkward_home(&other.home, 99);
    other.commit("other 1");
    let first = packs(&other.store)[0].clone();
    append(&oh.sessions[0], "{\"other\":2}\n");
    other.commit("other 2");
    let second = packs(&other.store)
        .into_iter()
        .find(|p| *p != first)
        .unwrap();
    for p in [&first, &second] {
        fs::copy(p, env.store.join("packs").join(p.file_name().unwrap())).unwrap();
    }
    let log_before = env.ok(&["--json", "log"]).json();
    let (code, v) = verify_json(env, &["--read-data"]);
    assert_eq!(code, Some(0), "orphans are not damage: {v:#}");
    assert_eq!(findings(&v, "orphan-pack").len(), 2, "{v:#}");
    let o = env.run(&["verify"]);
    assert!(o.text().contains("orphan pack"), "{}", o.text());
    assert!(o.text().contains("sage verify --repair"), "{}", o.text());
    env.ok(&["verify", "--repair"]);
    let (code, v) = verify_json(env, &["--read-data"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(log_before, env.ok(&["--json", "log"]).json());
    assert_restores(env, &f.a, &f.state_a, "a");
    assert_restores(env, &f.b, &f.state_b, "b");
    // the store still works
    append(&env.home.join("history.jsonl"), "{\"n\":1}\n");
    env.ok(&["commit"]);
}

#[test]
fn a_truncated_pack_is_an_error_not_a_crash() {
    for keep in [10u64, 80, 0] {
        let f = fixture(46 + keep);
        let env = &f.env;
        let len = fs::metadata(&f.pack_b).unwrap().len();
        let keep = if keep == 0 { len / 2 } else { keep };
        let file = fs::OpenOptions::new().write(true).open(&f.pack_b).unwrap();
        file.set_len(keep).unwrap();
        drop(file);
        // readers that do not need the pack keep working
        env.ok(&["log"]);
        env.ok(&["info"]);
        let o = env.run(&["cat", &format!("{}:{}", f.b, f.big)]);
        assert_eq!(o.code, Some(1), "cut at {keep}: {o:?}");
        assert!(!o.stderr.is_empty());
        let o = env.run_for(&env.root.path().join("restore-b"), &["checkout", &f.b]);
        assert_eq!(o.code, Some(1), "cut at {keep}: {o:?}");
        let (code, v) = verify_json(env, &[]);
        assert_eq!(code, Some(1), "{v:#}");
        let name = f.pack_b.file_name().unwrap().to_str().unwrap();
        assert!(
            findings(&v, "broken-pack").iter().any(|b| b["pack"] == name
                && b["fix"].as_str().unwrap().contains("sage verify --repair")),
            "cut at {keep}: {v:#}"
        );
        let (code, _) = verify_json(env, &["--read-data"]);
        assert_eq!(code, Some(1));
        assert_restores(env, &f.a, &f.state_a, "a-before-repair");
        env.run(&["verify", "--repair"]);
        assert!(
            !f.pack_b.exists(),
            "the broken pack was moved to quarantine"
        );
        let (_, v) = verify_json(env, &["--read-data"]);
        assert!(findings(&v, "broken-pack").is_empty(), "{v:#}");
        assert_restores(env, &f.a, &f.state_a, "a-after-repair");
    }
}

#[test]
fn a_deleted_database_is_rebuilt_from_the_packs() {
    let f = fixture(47);
    let env = &f.env;
    let log_before = env.ok(&["--json", "log"]).json();
    for side in ["sage.db", "sage.db-wal", "sage.db-shm"] {
        let _ = fs::remove_file(env.store.join(side));
    }
    for args in [
        vec!["log"],
        vec!["cat", "HEAD:settings.json"],
        vec!["status"],
        vec!["commit"],
        vec!["checkout", "HEAD", "--dry-run"],
        vec!["info"],
    ] {
        let o = env.run(&args);
        assert_eq!(o.code, Some(1), "sage {args:?} without a database: {o:?}");
        assert!(
            o.stderr.contains("sage verify --repair"),
            "sage {args:?}: {}",
            o.stderr
        );
    }
    assert!(
        !env.store.join("sage.db").exists(),
        "a failed command created a database"
    );
    let o = env.ok(&["verify", "--repair"]);
    assert!(o.text().contains("database rebuilt"), "{}", o.text());
    let log_after = env.ok(&["--json", "log"]).json();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&log_before), ids(&log_after));
    assert_eq!(log_after[0]["message"], "B");
    assert_eq!(log_after[0]["messages"], log_before[0]["messages"]);
    assert_eq!(env.head(), f.b);
    assert_eq!(
        env.cat(&format!("{}:{}", f.b, f.big)),
        fs::read(env.home.join(&f.big)).unwrap()
    );
    assert_restores(env, &f.a, &f.state_a, "a");
    assert_restores(env, &f.b, &f.state_b, "b");
    env.ok(&["verify", "--read-data"]);
    // the home is this store's own again: commit and checkout work
    append(&env.home.join("history.jsonl"), "{\"n\":1}\n");
    env.ok(&["commit", "-m", "after rebuild"]);
    env.ok(&["checkout", &f.a, "--i-understand-data-loss-risk"]);
    assert_same_tree(
        &f.state_a,
        &stored_view(&read_tree(&env.home)),
        "checkout A",
    );
}

#[test]
fn a_garbage_database_is_moved_aside_and_rebuilt() {
    let f = fixture(48);
    let env = &f.env;
    for side in ["sage.db-wal", "sage.db-shm"] {
        let _ = fs::remove_file(env.store.join(side));
    }
    let mut junk = b"SQLite format 3\0".to_vec();
    junk.extend((0..8192u32).map(|i| (i * 7919 % 251) as u8));
    fs::write(env.store.join("sage.db"), &junk).unwrap();
    let o = env.run(&["log"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("sage verify --repair"), "{}", o.stderr);
    let o = env.ok(&["verify", "--repair"]);
    assert!(o.text().contains("database rebuilt"), "{}", o.text());
    let aside: Vec<_> = fs::read_dir(&env.store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sage.db.damaged"))
        .collect();
    assert!(!aside.is_empty(), "the damaged database is kept aside");
    assert_eq!(env.head(), f.b);
    assert_restores(env, &f.a, &f.state_a, "a");
    assert_restores(env, &f.b, &f.state_b, "b");
}
