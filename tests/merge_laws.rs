//! The merge at the library level (`sage::merge` over `sage::prolly::MemObjects`): proptest over
//! random histories of two and three machines (appends with ISO / epoch / no timestamps, tail
//! rewrites, deleted lines and sessions, duplicated uuid-less metadata lines, state and user
//! files) checks the laws: merge(a,b) == merge(b,a) byte for byte (same tree id), merging a
//! result again with either input changes nothing, no line of either side is dropped, and for
//! add-only histories merge(b,b,x) == x and merge(x,b,x) == x. Then one test per row of the
//! merge case table.

use proptest::prelude::*;
use sage::id::{Kind, ObjectId};
use sage::merge::{merge_lines, merge_trees, MergeOptions, MergeReport, Side};
use sage::object::{decode, Conflict, DataRef, Entry, EntryKind, RawObject, Session};
use sage::prolly::{build_lines, read_lines, MemObjects, ObjectSink, ObjectSource};
use sage::tree::{build_tree, FlatTree};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------------------------------------
// Building trees in memory

fn mem() -> MemObjects {
    MemObjects {
        keep_data: true,
        ..Default::default()
    }
}

fn put_line(m: &mut MemObjects, text: &[u8]) -> DataRef {
    let o = RawObject::new(Kind::Line, text.to_vec());
    let r = DataRef {
        id: o.id,
        len: o.bytes.len() as u64,
    };
    m.put(o).unwrap();
    r
}

/// A session entry for `lines` (each ending in "\n") and an optional unterminated tail.
fn session(m: &mut MemObjects, name: &str, lines: &[Vec<u8>], tail: Option<&[u8]>) -> Entry {
    let refs: Vec<DataRef> = lines.iter().map(|l| put_line(m, l)).collect();
    let tail = tail.map(|t| put_line(m, t));
    let root = build_lines(&refs, m).unwrap();
    let size = refs.iter().map(|r| r.len).sum::<u64>() + tail.map(|t| t.len).unwrap_or(0);
    let o = RawObject::encoded(
        Kind::Session,
        &Session {
            count: refs.len() as u64,
            size,
            lines: root,
            tail,
        },
    );
    let id = o.id;
    m.put(o).unwrap();
    Entry {
        name: name.rsplit('/').next().unwrap().to_string(),
        kind: EntryKind::Session,
        size,
        exec: false,
        id: Some(id),
        target: vec![],
    }
}

fn file(m: &mut MemObjects, name: &str, bytes: &[u8]) -> Entry {
    let o = RawObject::new(Kind::Blob, bytes.to_vec());
    let id = o.id;
    m.put(o).unwrap();
    Entry {
        name: name.rsplit('/').next().unwrap().to_string(),
        kind: EntryKind::File,
        size: bytes.len() as u64,
        exec: false,
        id: Some(id),
        target: vec![],
    }
}

/// The lines (and tail) of a session entry, as bytes.
fn lines_of(m: &MemObjects, e: &Entry) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    assert_eq!(e.kind, EntryKind::Session, "{e:?}");
    let s: Session = decode(e.id.unwrap(), &m.get(e.id.unwrap(), Kind::Session).unwrap()).unwrap();
    let lines = read_lines(m, s.lines)
        .unwrap()
        .into_iter()
        .map(|l| m.get(l.id, Kind::Line).unwrap())
        .collect();
    let tail = s.tail.map(|t| m.get(t.id, Kind::Line).unwrap());
    (lines, tail)
}

fn blob_of(m: &MemObjects, e: &Entry) -> Vec<u8> {
    m.get(e.id.unwrap(), Kind::Blob).unwrap()
}

fn tree_id(m: &mut MemObjects, t: &FlatTree) -> ObjectId {
    build_tree(t, m).unwrap()
}

/// "Newer" for state files: the version whose content holds the larger number wins (a
/// symmetric order, as the store's first-seen times are).
fn newer(_: &str, x: &Entry, y: &Entry) -> Ordering {
    x.size.cmp(&y.size).then(x.id.cmp(&y.id))
}

/// merge(base, (sa, a), (sb, b)); new objects land in `m`.
fn merge(
    m: &mut MemObjects,
    base: Option<&FlatTree>,
    a: (&str, &FlatTree),
    b: (&str, &FlatTree),
) -> (FlatTree, MergeReport) {
    let mut sink = mem();
    let r = merge_trees(
        m,
        &mut sink,
        &Side {
            tree: a.1,
            store_id: a.0,
        },
        &Side {
            tree: b.1,
            store_id: b.0,
        },
        &MergeOptions {
            base,
            newer: &newer,
        },
    )
    .expect("merge");
    m.map.extend(sink.map);
    r
}

// ---------------------------------------------------------------------------------------------
// Random histories

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A home as the model sees it: sessions as line lists, plain files as bytes.
#[derive(Clone, Default, Debug)]
struct Home {
    sessions: BTreeMap<String, Vec<Vec<u8>>>,
    files: BTreeMap<String, Vec<u8>>,
}

const META: &[&str] = &[
    "{\"type\":\"last-prompt\",\"lastPrompt\":\"hi\"}\n",
    "{\"type\":\"summary\",\"summary\":\"work\",\"leafUuid\":\"u1\"}\n",
    "{\"type\":\"file-history-snapshot\",\"messageId\":\"m\"}\n",
];

struct Gen {
    rng: Rng,
    next_uuid: u64,
    machine: String,
}

impl Gen {
    /// A message line: a fresh uuid and a timestamp that is ISO, epoch ms, offset ISO or absent.
    fn line(&mut self) -> Vec<u8> {
        self.next_uuid += 1;
        let u = format!("{}-{}", self.machine, self.next_uuid);
        let sec = self.rng.below(50);
        let ts = match self.rng.below(5) {
            0 => String::new(),
            1 => format!(",\"timestamp\":{}", 1_767_225_600_000u64 + sec * 1000),
            2 => format!(",\"timestamp\":\"2026-01-01T02:00:{sec:02}.000+02:00\""),
            _ => format!(",\"timestamp\":\"2026-01-01T00:00:{sec:02}.000Z\""),
        };
        format!("{{\"uuid\":\"{u}\",\"type\":\"user\"{ts}}}\n").into_bytes()
    }
    fn meta(&mut self) -> Vec<u8> {
        META[self.rng.below(META.len() as u64) as usize]
            .as_bytes()
            .to_vec()
    }
    fn run(&mut self, n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                if self.rng.below(5) == 0 {
                    self.meta()
                } else {
                    self.line()
                }
            })
            .collect()
    }

    fn base(&mut self) -> Home {
        let mut h = Home::default();
        for i in 0..1 + self.rng.below(4) {
            let n = self.rng.below(8);
            h.sessions
                .insert(format!("projects/p/s{i}.jsonl"), self.run(n));
        }
        h.files
            .insert("settings.json".into(), b"{\"v\":0}\n".to_vec());
        h.files.insert("todos/t.json".into(), b"[0]".to_vec());
        h
    }

    /// Apply `n` random operations (only additions when `add_only`).
    fn evolve(&mut self, h: &Home, n: u64, add_only: bool) -> Home {
        let mut h = h.clone();
        for _ in 0..n {
            let keys: Vec<String> = h.sessions.keys().cloned().collect();
            let pick = |g: &mut Gen| keys[g.rng.below(keys.len() as u64) as usize].clone();
            let op = self.rng.below(if add_only { 3 } else { 9 });
            match op {
                0 if !keys.is_empty() => {
                    let k = pick(self);
                    let n = 1 + self.rng.below(4);
                    let run = self.run(n);
                    h.sessions.get_mut(&k).unwrap().extend(run);
                }
                1 if !keys.is_empty() => {
                    // metadata re-appended with identical bytes
                    let k = pick(self);
                    let m = self.meta();
                    h.sessions.get_mut(&k).unwrap().push(m);
                }
                2 => {
                    let i = self.rng.below(1000);
                    let n = 1 + self.rng.below(5);
                    let run = self.run(n);
                    h.sessions
                        .entry(format!("projects/p/{}-{i}.jsonl", self.machine))
                        .or_default()
                        .extend(run);
                }
                3 if !keys.is_empty() => {
                    // a rewritten tail: drop some last lines, append others
                    let k = pick(self);
                    let cut = self.rng.below(3) as usize;
                    let n = self.rng.below(3);
                    let run = self.run(n);
                    let s = h.sessions.get_mut(&k).unwrap();
                    s.truncate(s.len().saturating_sub(cut));
                    s.extend(run);
                }
                4 if !keys.is_empty() => {
                    // a line removed from the middle
                    let k = pick(self);
                    let s = h.sessions.get_mut(&k).unwrap();
                    if !s.is_empty() {
                        let i = self.rng.below(s.len() as u64) as usize;
                        s.remove(i);
                    }
                }
                5 if !keys.is_empty() => {
                    // Claude's cleanup
                    let k = pick(self);
                    h.sessions.remove(&k);
                }
                6 => {
                    let v = self.rng.below(100);
                    h.files.insert(
                        "todos/t.json".into(),
                        format!("[{}, \"{}\"]", v, self.machine).into_bytes(),
                    );
                }
                7 => {
                    let v = self.rng.below(100);
                    h.files.insert(
                        "settings.json".into(),
                        format!("{{\"v\":{v},\"m\":\"{}\"}}\n", self.machine).into_bytes(),
                    );
                }
                _ => {}
            }
        }
        h
    }
}

fn flat(m: &mut MemObjects, h: &Home) -> FlatTree {
    let mut t = FlatTree::new();
    for (p, lines) in &h.sessions {
        let e = session(m, p, lines, None);
        t.insert(p.clone(), e);
    }
    for (p, b) in &h.files {
        let e = file(m, p, b);
        t.insert(p.clone(), e);
    }
    t
}

fn multiset(lines: &[Vec<u8>]) -> HashMap<Vec<u8>, usize> {
    let mut out = HashMap::new();
    for l in lines {
        *out.entry(l.clone()).or_default() += 1;
    }
    out
}

/// No line of `side` is missing from `merged` (with counts), and no path either.
fn holds_every_line(m: &MemObjects, merged: &FlatTree, side: &FlatTree, what: &str) {
    for (p, e) in side {
        let got = merged
            .get(p)
            .unwrap_or_else(|| panic!("{what}: {p} dropped"));
        if e.kind != EntryKind::Session {
            continue;
        }
        if got.kind != EntryKind::Session {
            panic!("{what}: {p} is no longer a session");
        }
        let want = multiset(&lines_of(m, e).0);
        let have = multiset(&lines_of(m, got).0);
        for (l, n) in want {
            let h = have.get(&l).copied().unwrap_or(0);
            assert!(
                h >= n,
                "{what}: {p}: {h} of {n} copies of {}",
                String::from_utf8_lossy(&l)
            );
        }
    }
}

fn check_two(seed: u64, nx: u64, ny: u64, with_base: bool) {
    let mut m = mem();
    let mut g = Gen {
        rng: Rng(seed),
        next_uuid: 0,
        machine: "b".into(),
    };
    let b = g.base();
    g.machine = "x".into();
    let x = g.evolve(&b, nx, false);
    g.machine = "y".into();
    let y = g.evolve(&b, ny, false);
    let (fb, fx, fy) = (flat(&mut m, &b), flat(&mut m, &x), flat(&mut m, &y));
    let base = with_base.then_some(&fb);
    let (m1, _) = merge(&mut m, base, ("sx", &fx), ("sy", &fy));
    let (m2, _) = merge(&mut m, base, ("sy", &fy), ("sx", &fx));
    assert_eq!(
        tree_id(&mut m, &m1),
        tree_id(&mut m, &m2),
        "merge(x,y) != merge(y,x)"
    );
    holds_every_line(&m, &m1, &fx, "x in merge");
    holds_every_line(&m, &m1, &fy, "y in merge");
    let id1 = tree_id(&mut m, &m1);
    // Merging the result again with either input (whose common ancestor is that input)
    // changes nothing.
    for (name, side) in [("sx", &fx), ("sy", &fy)] {
        let (again, _) = merge(&mut m, Some(side), ("sm", &m1), (name, side));
        assert_eq!(tree_id(&mut m, &again), id1, "re-merging with {name}");
        let (again, _) = merge(&mut m, Some(side), (name, side), ("sm", &m1));
        assert_eq!(
            tree_id(&mut m, &again),
            id1,
            "re-merging with {name} (swapped)"
        );
    }
}

fn session_refs(m: &MemObjects, e: &Entry) -> Vec<DataRef> {
    let s: Session = decode(e.id.unwrap(), &m.get(e.id.unwrap(), Kind::Session).unwrap()).unwrap();
    read_lines(m, s.lines).unwrap()
}

fn check_three(seed: u64, n: [u64; 3]) {
    let mut m = mem();
    let mut g = Gen {
        rng: Rng(seed),
        next_uuid: 0,
        machine: "b".into(),
    };
    let b = g.base();
    let mut sides = Vec::new();
    for (i, k) in n.iter().enumerate() {
        g.machine = format!("m{i}");
        sides.push(g.evolve(&b, *k, false));
    }
    let fb = flat(&mut m, &b);
    let f: Vec<FlatTree> = sides.iter().map(|h| flat(&mut m, h)).collect();
    // laptop and gpu sync, then the result syncs with a third machine (base: the common
    // ancestor), in both argument orders
    let (m01, _) = merge(&mut m, Some(&fb), ("s0", &f[0]), ("s1", &f[1]));
    let (a, _) = merge(&mut m, Some(&fb), ("s01", &m01), ("s2", &f[2]));
    let (b2, _) = merge(&mut m, Some(&fb), ("s2", &f[2]), ("s01", &m01));
    assert_eq!(tree_id(&mut m, &a), tree_id(&mut m, &b2));
    for (i, s) in f.iter().enumerate() {
        holds_every_line(&m, &a, s, &format!("machine {i} in the 3-way result"));
    }
    // and the third machine, having merged, re-merges with the first pair: nothing changes
    let id = tree_id(&mut m, &a);
    let (again, _) = merge(&mut m, Some(&m01), ("s", &a), ("s01", &m01));
    assert_eq!(tree_id(&mut m, &again), id);
    let (again, _) = merge(&mut m, Some(&f[2]), ("s2", &f[2]), ("s", &a));
    assert_eq!(tree_id(&mut m, &again), id);
}

fn check_add_only(seed: u64, n: u64) {
    let mut m = mem();
    let mut g = Gen {
        rng: Rng(seed),
        next_uuid: 0,
        machine: "b".into(),
    };
    let b = g.base();
    g.machine = "x".into();
    let x = g.evolve(&b, n, true);
    let (fb, fx) = (flat(&mut m, &b), flat(&mut m, &x));
    let idx = tree_id(&mut m, &fx);
    let (r, _) = merge(&mut m, Some(&fb), ("sb", &fb), ("sx", &fx));
    assert_eq!(tree_id(&mut m, &r), idx, "merge(b,b,x) != x");
    let (r, _) = merge(&mut m, Some(&fx), ("sb", &fb), ("sx", &fx));
    assert_eq!(tree_id(&mut m, &r), idx, "merge(x,b,x) != x");
    let (r, _) = merge(&mut m, None, ("sb", &fb), ("sx", &fx));
    assert_eq!(tree_id(&mut m, &r), idx, "merge(-,b,x) != x");
    for (p, e) in &fx {
        if e.kind != EntryKind::Session {
            continue;
        }
        let xs = session_refs(&m, e);
        let bs = fb.get(p).map(|e| session_refs(&m, e)).unwrap_or_default();
        assert_eq!(merge_lines(&m, &bs, &bs, &xs).unwrap(), xs);
        assert_eq!(merge_lines(&m, &bs, &xs, &bs).unwrap(), xs);
        assert_eq!(merge_lines(&m, &bs, &xs, &xs).unwrap(), xs);
    }
}

/// Two add-only histories: re-merging the result with either side over the original base (a
/// criss-cross) adds nothing.
fn check_add_only_pair(seed: u64, nx: u64, ny: u64) {
    let mut m = mem();
    let mut g = Gen {
        rng: Rng(seed),
        next_uuid: 0,
        machine: "b".into(),
    };
    let b = g.base();
    g.machine = "x".into();
    let x = g.evolve(&b, nx, true);
    g.machine = "y".into();
    let y = g.evolve(&b, ny, true);
    let (fb, fx, fy) = (flat(&mut m, &b), flat(&mut m, &x), flat(&mut m, &y));
    let (r, _) = merge(&mut m, Some(&fb), ("sx", &fx), ("sy", &fy));
    let id = tree_id(&mut m, &r);
    for (name, side) in [("sx", &fx), ("sy", &fy)] {
        let (again, _) = merge(&mut m, Some(&fb), ("sm", &r), (name, side));
        assert_eq!(
            tree_id(&mut m, &again),
            id,
            "criss-cross re-merge with {name}"
        );
    }
}

proptest! {
    // Seeded (the same histories on every run) and writing no regression files.
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5a6e_2026),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn two_machines(seed in any::<u64>(), nx in 0u64..8, ny in 0u64..8) {
        check_two(seed, nx, ny, true);
    }

    #[test]
    fn two_machines_never_synced(seed in any::<u64>(), nx in 0u64..8, ny in 0u64..8) {
        check_two(seed, nx, ny, false);
    }

    #[test]
    fn three_machines(seed in any::<u64>(), a in 0u64..6, b in 0u64..6, c in 0u64..6) {
        check_three(seed, [a, b, c]);
    }

    #[test]
    fn add_only_histories(seed in any::<u64>(), n in 0u64..10) {
        check_add_only(seed, n);
    }

    #[test]
    fn add_only_pairs_re_merge_over_the_old_base(seed in any::<u64>(), nx in 0u64..8, ny in 0u64..8) {
        check_add_only_pair(seed, nx, ny);
    }
}

// ---------------------------------------------------------------------------------------------
// The merge case table, one test per row

fn l(uuid: &str, ts: &str) -> Vec<u8> {
    format!("{{\"uuid\":\"{uuid}\",\"timestamp\":\"{ts}\"}}\n").into_bytes()
}

fn ls(prefix: &str, n: usize, minute: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            l(
                &format!("{prefix}{i}"),
                &format!("2026-01-01T00:{minute:02}:{i:02}Z"),
            )
        })
        .collect()
}

fn tree(entries: Vec<(&str, Entry)>) -> FlatTree {
    entries
        .into_iter()
        .map(|(p, e)| (p.to_string(), e))
        .collect()
}

/// Both argument orders give the same tree; returns it.
fn both_ways(
    m: &mut MemObjects,
    base: Option<&FlatTree>,
    a: &FlatTree,
    b: &FlatTree,
) -> (FlatTree, MergeReport) {
    let (r1, rep) = merge(m, base, ("store-a", a), ("store-b", b));
    let (r2, _) = merge(m, base, ("store-b", b), ("store-a", a));
    assert_eq!(tree_id(m, &r1), tree_id(m, &r2), "not symmetric");
    (r1, rep)
}

const S: &str = "projects/p/s.jsonl";

#[test]
fn row_one_side_changed_takes_that_side() {
    let mut m = mem();
    let base_lines = ls("b", 3, 0);
    let mut more = base_lines.clone();
    more.extend(ls("x", 2, 5));
    let sb = session(&mut m, S, &base_lines, None);
    let sx = session(&mut m, S, &more, None);
    let cb = file(&mut m, "CLAUDE.md", b"v1\n");
    let cx = file(&mut m, "CLAUDE.md", b"v2\n");
    let base = tree(vec![(S, sb.clone()), ("CLAUDE.md", cb.clone())]);
    let x = tree(vec![(S, sx.clone()), ("CLAUDE.md", cx.clone())]);
    let (r, rep) = both_ways(&mut m, Some(&base), &x, &base);
    assert_eq!(r[S], sx);
    assert_eq!(r["CLAUDE.md"], cx);
    assert!(rep.conflicts.is_empty() && rep.sessions_merged.is_empty());
}

#[test]
fn row_vanished_on_one_side_comes_back() {
    let mut m = mem();
    let sb = session(&mut m, S, &ls("b", 3, 0), None);
    let other = "projects/p/t.jsonl";
    let tb = session(&mut m, other, &ls("t", 2, 0), None);
    let mut grown = ls("t", 2, 0);
    grown.extend(ls("t2-", 1, 9));
    let tg = session(&mut m, other, &grown, None);
    let base = tree(vec![(S, sb.clone()), (other, tb)]);
    // x's cleanup deleted both; y kept s unchanged and extended t
    let x = tree(vec![]);
    let y = tree(vec![(S, sb.clone()), (other, tg.clone())]);
    let (r, rep) = both_ways(&mut m, Some(&base), &x, &y);
    assert_eq!(r[S], sb, "unchanged file that vanished on one side is kept");
    assert_eq!(
        r[other], tg,
        "changed on one side, vanished on the other: kept"
    );
    assert_eq!(rep.kept_vanished.len(), 2, "{rep:?}");
}

#[test]
fn row_session_changed_on_both_sides_is_a_union_ordered_by_time() {
    let mut m = mem();
    let b = ls("b", 3, 0);
    let mut x = b.clone();
    x.extend(ls("x", 2, 30)); // later
    let mut y = b.clone();
    y.extend(ls("y", 2, 10)); // earlier
    let e = |m: &mut MemObjects, v: &[Vec<u8>]| session(m, S, v, None);
    let (sb, sx, sy) = (e(&mut m, &b), e(&mut m, &x), e(&mut m, &y));
    let (r, rep) = both_ways(
        &mut m,
        Some(&tree(vec![(S, sb)])),
        &tree(vec![(S, sx)]),
        &tree(vec![(S, sy)]),
    );
    let mut want = b.clone();
    want.extend(ls("y", 2, 10));
    want.extend(ls("x", 2, 30));
    assert_eq!(lines_of(&m, &r[S]).0, want, "base, then the earlier run");
    assert_eq!(rep.sessions_merged, vec![S.to_string()]);
    assert!(rep.conflicts.is_empty());
}

#[test]
fn row_lines_removed_on_either_side_are_kept() {
    let mut m = mem();
    let b = ls("b", 5, 0);
    // x rewrote its tail (dropped b3, b4, added r0); y only appended
    let mut x = b[..3].to_vec();
    x.extend(ls("r", 1, 20));
    let mut y = b.clone();
    y.extend(ls("y", 1, 10));
    let e = |m: &mut MemObjects, v: &[Vec<u8>]| session(m, S, v, None);
    let (sb, sx, sy) = (e(&mut m, &b), e(&mut m, &x), e(&mut m, &y));
    let base = tree(vec![(S, sb.clone())]);
    let (r, _) = both_ways(
        &mut m,
        Some(&base),
        &tree(vec![(S, sx.clone())]),
        &tree(vec![(S, sy)]),
    );
    let got = lines_of(&m, &r[S]).0;
    for line in b.iter().chain(&x).chain(&y) {
        assert!(got.contains(line), "{}", String::from_utf8_lossy(line));
    }
    assert_eq!(got.len(), 5 + 1 + 1);
    // and when only x changed (rewrote its tail), the base's lines still stay
    let (r, _) = both_ways(&mut m, Some(&base), &tree(vec![(S, sx)]), &base);
    let got = lines_of(&m, &r[S]).0;
    for line in b.iter().chain(&x) {
        assert!(
            got.contains(line),
            "one-sided rewrite dropped {}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn row_state_file_newer_wins_without_conflict() {
    let mut m = mem();
    let p = "todos/t.json";
    let b = file(&mut m, p, b"[]");
    let old = file(&mut m, p, b"[1]");
    let new = file(&mut m, p, b"[1, 2]"); // longer: newer under this test's order
    let (r, rep) = both_ways(
        &mut m,
        Some(&tree(vec![(p, b)])),
        &tree(vec![(p, old)]),
        &tree(vec![(p, new.clone())]),
    );
    assert_eq!(r[p], new);
    assert_eq!(rep.state_resolved, vec![p.to_string()]);
    assert!(rep.conflicts.is_empty());
    // the newer-wins rule uses the store's order, whichever side it comes from
    for dir in ["tasks/a.json", "plans/p.md"] {
        let b = file(&mut m, dir, b"0");
        let x = file(&mut m, dir, b"11");
        let y = file(&mut m, dir, b"222");
        let (r, _) = both_ways(
            &mut m,
            Some(&tree(vec![(dir, b)])),
            &tree(vec![(dir, x)]),
            &tree(vec![(dir, y.clone())]),
        );
        assert_eq!(r[dir], y);
    }
}

#[test]
fn row_user_content_changed_on_both_sides_is_a_conflict_value() {
    let mut m = mem();
    for p in [
        "settings.json",
        "CLAUDE.md",
        "agents/a.md",
        "some/unknown/path",
    ] {
        let b = file(&mut m, p, b"base\n");
        let x = file(&mut m, p, b"laptop\n");
        let y = file(&mut m, p, b"gpu\n");
        let (r, rep) = both_ways(
            &mut m,
            Some(&tree(vec![(p, b.clone())])),
            &tree(vec![(p, x.clone())]),
            &tree(vec![(p, y.clone())]),
        );
        assert_eq!(r[p].kind, EntryKind::Conflict, "{p}");
        assert_eq!(rep.conflicts, vec![p.to_string()]);
        let c: Conflict = decode(
            r[p].id.unwrap(),
            &m.get(r[p].id.unwrap(), Kind::Conflict).unwrap(),
        )
        .unwrap();
        assert_eq!(
            c.base.as_ref().map(|e| blob_of(&m, e)),
            Some(b"base\n".to_vec())
        );
        let sides: Vec<(String, Vec<u8>)> = c
            .sides
            .iter()
            .map(|(s, e)| (s.clone(), blob_of(&m, e)))
            .collect();
        assert_eq!(
            sides,
            vec![
                ("store-a".to_string(), b"laptop\n".to_vec()),
                ("store-b".to_string(), b"gpu\n".to_vec())
            ],
            "{p}: both versions, keyed by store id"
        );
        // merging the conflict with one of its own sides again keeps it
        let rt = tree(vec![(p, r[p].clone())]);
        let (again, _) = both_ways(
            &mut m,
            Some(&tree(vec![(p, x.clone())])),
            &rt,
            &tree(vec![(p, x)]),
        );
        assert_eq!(again[p], r[p]);
    }
}

#[test]
fn row_no_common_ancestor_uses_the_common_prefix_as_base() {
    let mut m = mem();
    let common = ls("c", 6, 0);
    let mut x = common.clone();
    x.extend(ls("x", 2, 20));
    let mut y = common.clone();
    y.extend(ls("y", 3, 10));
    let meta = META[0].as_bytes().to_vec();
    x.push(meta.clone());
    let sx = session(&mut m, S, &x, None);
    let sy = session(&mut m, S, &y, None);
    let same = file(&mut m, "CLAUDE.md", b"same\n");
    let (r, _) = both_ways(
        &mut m,
        None,
        &tree(vec![(S, sx), ("CLAUDE.md", same.clone())]),
        &tree(vec![(S, sy), ("CLAUDE.md", same.clone())]),
    );
    let got = lines_of(&m, &r[S]).0;
    let mut want = common.clone();
    want.extend(ls("y", 3, 10));
    want.extend(ls("x", 2, 20));
    want.push(meta);
    assert_eq!(got, want, "the common prefix once, then both runs by time");
    assert_eq!(r["CLAUDE.md"], same);
    // identical sessions copied by hand merge to themselves
    let s1 = session(&mut m, S, &common, None);
    let (r, _) = both_ways(
        &mut m,
        None,
        &tree(vec![(S, s1.clone())]),
        &tree(vec![(S, s1.clone())]),
    );
    assert_eq!(r[S], s1);
}

#[test]
fn row_runs_without_timestamps_sort_last_and_metadata_keeps_its_count() {
    let mut m = mem();
    let b = ls("b", 2, 0);
    let meta = META[1].as_bytes().to_vec();
    let mut x = b.clone();
    x.push(b"{\"uuid\":\"nots\",\"type\":\"system\"}\n".to_vec());
    let mut y = b.clone();
    y.extend(ls("y", 1, 59));
    y.push(meta.clone());
    y.push(meta.clone());
    let e = |m: &mut MemObjects, v: &[Vec<u8>]| session(m, S, v, None);
    let (sb, sx, sy) = (e(&mut m, &b), e(&mut m, &x), e(&mut m, &y));
    let (r, _) = both_ways(
        &mut m,
        Some(&tree(vec![(S, sb)])),
        &tree(vec![(S, sx)]),
        &tree(vec![(S, sy)]),
    );
    let got = lines_of(&m, &r[S]).0;
    assert_eq!(got.len(), 2 + 1 + 3);
    assert_eq!(got[2..5], y[2..5], "the timestamped run first");
    assert_eq!(got[5], x[2], "the run without a timestamp last");
    assert_eq!(got.iter().filter(|l| **l == meta).count(), 2);
}

#[test]
fn row_unterminated_tails() {
    let mut m = mem();
    let b = ls("b", 2, 0);
    let full = l("t", "2026-01-01T00:30:00Z");
    let partial = full[..full.len() - 8].to_vec();
    // the laptop's copy stopped mid-line; the gpu's holds the completed line
    let sx = session(&mut m, S, &b, Some(&partial));
    let mut y = b.clone();
    y.push(full.clone());
    let sy = session(&mut m, S, &y, None);
    let base = tree(vec![(S, session(&mut m, S, &b, None))]);
    let (r, _) = both_ways(
        &mut m,
        Some(&base),
        &tree(vec![(S, sx)]),
        &tree(vec![(S, sy.clone())]),
    );
    let (lines, tail) = lines_of(&m, &r[S]);
    assert_eq!(lines, y, "the completed line is there");
    assert_eq!(
        tail, None,
        "the partial tail is dropped: a line starts with it"
    );
    // a tail nothing completes survives, at the end
    let other = b"{\"uuid\":\"w\",\"half\":\"wr".to_vec();
    let sx = session(&mut m, S, &b, Some(&other));
    let (r, _) = both_ways(
        &mut m,
        Some(&base),
        &tree(vec![(S, sx)]),
        &tree(vec![(S, sy)]),
    );
    let (lines, tail) = lines_of(&m, &r[S]);
    assert_eq!(lines, y);
    assert_eq!(tail, Some(other));
}

#[test]
fn row_same_change_on_both_sides_is_taken_once() {
    let mut m = mem();
    let b = ls("b", 2, 0);
    let mut x = b.clone();
    x.extend(ls("x", 2, 5));
    let sb = session(&mut m, S, &b, None);
    let sx = session(&mut m, S, &x, None);
    let f = file(&mut m, "settings.json", b"{\"same\":1}\n");
    let fb = file(&mut m, "settings.json", b"{}\n");
    let (r, rep) = both_ways(
        &mut m,
        Some(&tree(vec![(S, sb), ("settings.json", fb)])),
        &tree(vec![(S, sx.clone()), ("settings.json", f.clone())]),
        &tree(vec![(S, sx.clone()), ("settings.json", f.clone())]),
    );
    assert_eq!(r[S], sx);
    assert_eq!(r["settings.json"], f);
    assert!(rep.conflicts.is_empty() && rep.sessions_merged.is_empty());
}

#[test]
fn row_a_directory_and_a_file_of_the_same_name_are_refused() {
    let mut m = mem();
    let s = session(&mut m, "projects/p/s.jsonl", &ls("b", 1, 0), None);
    let link = Entry {
        name: "projects".into(),
        kind: EntryKind::Symlink,
        size: 4,
        exec: false,
        id: None,
        target: b"/tmp".to_vec(),
    };
    let base = tree(vec![("projects/p/s.jsonl", s.clone())]);
    let mut sink = mem();
    let err = merge_trees(
        &m,
        &mut sink,
        &Side {
            tree: &base,
            store_id: "a",
        },
        &Side {
            tree: &tree(vec![("projects", link)]),
            store_id: "b",
        },
        &MergeOptions {
            base: Some(&base),
            newer: &newer,
        },
    )
    .expect_err("a symlink over a directory must not merge");
    assert!(err.to_string().contains("projects"), "{err}");
}
