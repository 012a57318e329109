//! Property: arbitrary bytes (CRLF, missing final newlines, invalid UTF-8, empty files, long
//! lines) in arbitrary small trees of UTF-8 names -> commit -> checkout into an empty
//! directory -> identical, byte for byte, with file types, link targets and exec bits.
//! Seeded (fixed proptest seed), through the library for speed; one case drives the binary.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use sage::repo::CommitOptions;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

#[derive(Clone, Debug)]
enum T {
    File(Vec<u8>, bool),
    Link(String),
    Dir(BTreeMap<String, T>),
}

/// Names the rules skip (never stored, sage's own files, default caches): excluded here so
/// that the round trip must be exact.
fn storable(name: &str, top: bool) -> bool {
    const ANY: &[&str] = &[
        ".",
        "..",
        ".credentials.json",
        ".claude.json",
        ".sage-home",
        ".sage-store",
        ".sageignore",
        "sessions-index.json",
        "claude-code-log-cache.db",
    ];
    const TOP: &[&str] = &[
        "statsig",
        "shell-snapshots",
        "session-env",
        "debug",
        "cache",
        "ide",
        "sessions",
        "stats-cache.json",
        ".last-cleanup",
    ];
    let skipped = name.is_empty()
        || name.len() > 200
        || name.contains('/')
        || name.contains('\0')
        || ANY.contains(&name)
        || (top && TOP.contains(&name))
        || name.ends_with(".lock")
        || name.contains(".sage-tmp-")
        || name.starts_with(".claude.json.backup");
    !skipped
}

fn name() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            "[a-z0-9_.-]{1,10}",
            "[a-zA-Z0-9 éß日本語🙂\\[\\]#!*?{}'\"\\\\-]{1,8}",
        ],
        prop::sample::select(vec!["", ".jsonl", ".jsonl", ".json", ".md", ".txt"]),
    )
        .prop_map(|(n, ext)| format!("{n}{ext}"))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..60),
        prop::sample::select(vec![&b"\n"[..], b"\r\n", b"\n", b"\n"]),
    )
        .prop_map(|(mut l, end)| {
            l.extend_from_slice(end);
            l
        });
    prop_oneof![
        // lines of arbitrary bytes with LF or CRLF, maybe an unterminated last line
        (
            prop::collection::vec(line, 0..10),
            prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..30),
        )
            .prop_map(|(lines, tail)| {
                let mut v: Vec<u8> = lines.concat();
                v.extend_from_slice(&tail);
                v
            }),
        // anything at all
        prop::collection::vec(any::<u8>(), 0..300),
        // empty
        Just(vec![]),
        // identical repeated lines
        (0usize..5).prop_map(|n| b"{\"type\":\"summary\"}\n".repeat(n)),
        // a long line (up to ~300 KB), terminated or not
        (any::<u8>(), 1_000usize..300_000, any::<bool>()).prop_map(|(b, n, nl)| {
            let mut v = vec![if b == b'\n' { b'x' } else { b }; n];
            if nl {
                v.push(b'\n');
            }
            v
        }),
    ]
}

fn tree(depth: u32, width: std::ops::Range<usize>) -> BoxedStrategy<BTreeMap<String, T>> {
    let leaf = prop_oneof![
        6 => (bytes(), prop::bool::weighted(0.2)).prop_map(|(b, x)| T::File(b, x)),
        1 => "[a-z./🙂 -]{1,20}".prop_map(T::Link),
    ];
    let node = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            4 => leaf,
            2 => tree(depth - 1, 0..5).prop_map(T::Dir),
        ]
        .boxed()
    };
    prop::collection::btree_map(name(), node, width).boxed()
}

fn home_tree() -> impl Strategy<Value = BTreeMap<String, T>> {
    tree(3, 2..8).prop_map(|t| clean(t, true))
}

/// Drop what the rules would skip.
fn clean(t: BTreeMap<String, T>, top: bool) -> BTreeMap<String, T> {
    t.into_iter()
        .filter(|(n, _)| storable(n, top))
        .map(|(n, v)| match v {
            T::Dir(d) => (n, T::Dir(clean(d, false))),
            other => (n, other),
        })
        .collect()
}

fn materialize(dir: &Path, t: &BTreeMap<String, T>) {
    fs::create_dir_all(dir).unwrap();
    for (n, v) in t {
        let p = dir.join(n);
        match v {
            T::File(b, x) => {
                fs::write(&p, b).unwrap();
                set_exec(&p, *x);
            }
            T::Link(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
            T::Dir(d) => materialize(&p, d),
        }
    }
}

fn picture(dir: &Path) -> Tree {
    let mut t = read_tree(dir);
    t.remove(Path::new(".sage-home"));
    t
}

/// Commit `home` into `store`, restore into `dst` (all through the library).
fn round_trip_lib(home: &Path, store: &Path, dst: &Path) {
    let (mut repo, _) = sage::Repo::init(home, Some(store), true).unwrap();
    let out = repo
        .commit(&CommitOptions {
            kind: "manual",
            message: "prop",
            progress: &|_, _| {},
        })
        .unwrap();
    let mut other = sage::Repo::open(dst, Some(store)).unwrap();
    assert!(!other.own_home);
    let plan = other.prepare_checkout(out.id, &[], false).unwrap();
    assert!(!plan.impact.destructive);
    other.apply_checkout(plan).unwrap();
}

fn config() -> Config {
    Config {
        cases: 24,
        rng_seed: RngSeed::Fixed(0x5a6e_2026),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn commit_then_restore_is_identical(t in home_tree()) {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        materialize(&home, &t);
        let dst = root.path().join("restored");
        round_trip_lib(&home, &root.path().join("store"), &dst);
        let (want, got) = (picture(&home), picture(&dst));
        if want != got {
            assert_same_tree(&want, &got, "round trip");
        }
    }
}

#[test]
fn one_awkward_tree_through_the_binary() {
    let env = Env::new();
    let mut t = BTreeMap::new();
    let mut proj = BTreeMap::new();
    proj.insert(
        "crlf.jsonl".to_string(),
        T::File(b"{\"a\":1}\r\n{\"b\":2}\r\n".to_vec(), false),
    );
    proj.insert(
        "no-final-newline.jsonl".to_string(),
        T::File(b"{\"a\":1}\n{\"b\":".to_vec(), false),
    );
    proj.insert(
        "invalid \u{e9}.jsonl".to_string(),
        T::File(b"\xff\xfe\n\xc3\x28 not json\n".to_vec(), false),
    );
    proj.insert("empty.jsonl".to_string(), T::File(vec![], false));
    proj.insert(
        "long.jsonl".to_string(),
        T::File([vec![b'x'; 200_000], b"\n".to_vec()].concat(), false),
    );
    proj.insert("empty-dir".to_string(), T::Dir(BTreeMap::new()));
    proj.insert("link".to_string(), T::Link("../nowhere 🙂".to_string()));
    proj.insert(
        "run [1] #x!.sh".to_string(),
        T::File(b"#!/bin/sh\n".to_vec(), true),
    );
    t.insert("projects".to_string(), T::Dir(proj));
    t.insert(
        "history.jsonl".to_string(),
        T::File(b"{\"display\":\"x\"}\n".repeat(3), false),
    );
    materialize(&env.home, &t);
    let id = env.commit("binary");
    let dst = env.restore(&id, "restored");
    assert_same_tree(&picture(&env.home), &picture(&dst), "through the binary");
    // and the library agrees with the binary on the snapshot id of the same tree
    let lib_home = env.dir("lib-home");
    materialize(&lib_home, &t);
    let lib_store = env.root.path().join("lib-store");
    let (mut repo, _) = sage::Repo::init(&lib_home, Some(&lib_store), true).unwrap();
    repo.commit(&CommitOptions {
        kind: "manual",
        message: "lib",
        progress: &|_, _| {},
    })
    .unwrap();
    let lib_root = repo
        .snapshot(&repo.head().unwrap().unwrap())
        .unwrap()
        .snap
        .root;
    let bin_root = env.ok(&["--json", "log", "-n", "1"]).json()[0]["root"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lib_root.to_hex(), bin_root, "same tree, same root id");
}
