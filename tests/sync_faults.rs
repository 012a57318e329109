//! Faults and bad peers. Either process of a sync is killed at a failpoint (the process
//! `_exit`s as a SIGKILL would) or by a seeded random SIGKILL during a large push; afterwards
//! both stores pass `verify --read-data`, every home file holds its old bytes, its new bytes or
//! its old bytes plus whole new lines, and rerunning the command completes the sync. Then a
//! malicious peer, on either end: oversized frames, wrong hashes, hostile tree entry names, an
//! unknown object kind, a snapshot without its objects, a symlinked `projects`, a banner
//! before the handshake: each is rejected with a clear error, nothing is written outside the
//! home and the store, and no ref moves.

mod sync_common;

use sage::id::{Kind, ObjectId};
use sage::object::{encode, DirNode, Entry, EntryKind};
use sage::protocol::{Msg, SnapshotInfo, MAGIC, MAX_FRAME};
use sage::snapshot::{Snapshot, SNAPSHOT_VERSION};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sync_common::*;

// ---------------------------------------------------------------------------------------------
// Killed processes

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Client,
    Server,
    Both,
}

/// Wait until a process is gone (or a zombie nobody reaps), up to `limit`.
fn wait_gone(pid: i32, limit: Duration) {
    let start = Instant::now();
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"));
        match stat {
            Err(_) => return,
            Ok(s) => {
                let state = s.rsplit(')').next().unwrap_or("").trim_start();
                if state.starts_with('Z') || state.starts_with('X') {
                    return;
                }
            }
        }
        assert!(
            start.elapsed() < limit,
            "process {pid} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_pid(file: &Path) -> Option<i32> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// A laptop and a gpu that synced once, then diverged: appends on both sides (one session on
/// both), new sessions on both, a cleanup on the gpu, config and state changed on the gpu.
struct Pair {
    _w: World,
    a: Machine,
    b: Machine,
    wrap: PathBuf,
    pid_file: PathBuf,
}

impl Pair {
    fn new(seed: u64) -> Pair {
        let w = World::new();
        let a = w.machine("laptop");
        let b = w.machine("gpu");
        let wrap = w.path("gpu-sage");
        let pid_file = w.path("server.pid");
        let lay = realistic_home(&a.home, seed, false);
        a.commit();
        let p = Pair {
            _w: w,
            a,
            b,
            wrap,
            pid_file,
        };
        p.set_server_env(&[]);
        p.a.add_pipe_remote("gpu", &p.b, &p.wrap, &[]);
        p.a.ok(&["push", "gpu"]);
        let (a, b) = (&p.a, &p.b);
        let mut rng = Rng::new(seed);
        let s = &lay.sessions;
        append(
            &a.home.join(&s[0]),
            session_lines(&mut rng, "s0", 10, 6, "laptop"),
        );
        append(
            &b.home.join(&s[0]),
            session_lines(&mut rng, "s0", 11, 5, "gpu"),
        );
        append(
            &a.home.join(&s[1]),
            session_lines(&mut rng, "s1", 12, 40, "laptop"),
        );
        append(
            &b.home.join(&s[2]),
            session_lines(&mut rng, "s2", 12, 40, "gpu"),
        );
        append(
            &a.home.join("history.jsonl"),
            "{\"display\":\"l\",\"timestamp\":1773000000000}\n",
        );
        write(
            &a.home.join(format!("{APP}/laptop-new.jsonl")),
            session_lines(&mut rng, "ln", 13, 30, "laptop-new"),
        );
        write(
            &b.home.join(format!("{APP}/gpu-new.jsonl")),
            session_lines(&mut rng, "gn", 13, 30, "gpu-new"),
        );
        fs::remove_file(b.home.join(&s[3])).unwrap();
        write(&b.home.join("todos/t1-agent-t1.json"), "[{\"todo\":1}]");
        write(&a.home.join("plans/p.md"), "# a plan\n");
        age(&a.home);
        age(&b.home);
        p
    }

    /// (Re)write the gpu's `--remote-sage` wrapper with extra environment (a failpoint).
    fn set_server_env(&self, env: &[(&str, &str)]) {
        self.b.wrapper(
            &self.wrap,
            &WrapperOpts {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                pid_file: Some(self.pid_file.clone()),
                ..Default::default()
            },
        );
    }

    fn wait_server(&self) {
        if let Some(pid) = read_pid(&self.pid_file) {
            wait_gone(pid, Duration::from_secs(60));
        }
    }
}

/// Every home file holds its old bytes, its new bytes, or its old bytes plus whole new lines;
/// no file vanished; a file that is new holds its new bytes whole.
fn check_home_states(
    name: &str,
    old: &BTreeMap<String, Vec<u8>>,
    mid: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
) {
    for (p, o) in old {
        let m = mid
            .get(p)
            .unwrap_or_else(|| panic!("{name}: {p} vanished after the crash"));
        if m == o || new.get(p) == Some(m) {
            continue;
        }
        assert!(
            m.starts_with(o),
            "{name}: {p} holds neither its old nor its new bytes nor old bytes plus lines"
        );
        let added = &m[o.len()..];
        assert!(
            o.is_empty() || o.ends_with(b"\n"),
            "{name}: {p}: lines appended to a file without a final newline"
        );
        assert!(
            added.ends_with(b"\n"),
            "{name}: {p} was left with a partial line"
        );
        let fin = multiset(new.get(p).map(Vec::as_slice).unwrap_or_default());
        for l in split_lines(added) {
            assert!(
                fin.contains_key(&l),
                "{name}: {p} gained a line that the finished sync does not hold"
            );
        }
    }
    for (p, m) in mid {
        if old.contains_key(p) {
            continue;
        }
        assert_eq!(
            new.get(p),
            Some(m),
            "{name}: new file {p} is not whole (or is a leftover)"
        );
    }
}

fn fault_case(seed: u64, cmd: &str, side: Side, failpoint: &str) {
    let p = Pair::new(seed);
    let (a, b) = (&p.a, &p.b);
    let old_a = synced_files(&a.home);
    let old_b = synced_files(&b.home);
    let every_line = union_lines(&jsonl_lines(&a.home), &jsonl_lines(&b.home));

    if side != Side::Client {
        p.set_server_env(&[("SAGE_FAILPOINT", failpoint)]);
    }
    let client_env: Vec<(&str, &str)> = if side != Side::Server {
        vec![("SAGE_FAILPOINT", failpoint)]
    } else {
        vec![]
    };
    let o = a.run_env(&client_env, &[cmd, "gpu"]);
    p.wait_server();
    let fp_name = failpoint.split(':').next().unwrap();
    assert!(
        o.code != Some(0) && o.all().contains(&format!("failpoint {fp_name} reached")),
        "{cmd} with {failpoint} on the {side:?} side did not die there: {:?}\n{}",
        o.code,
        o.all()
    );
    if side == Side::Client {
        assert_eq!(o.code, Some(137), "{}", o.all());
    }

    // Both stores are sound.
    a.verify();
    b.verify();
    let mid_a = synced_files(&a.home);
    let mid_b = synced_files(&b.home);

    // Rerunning the command completes it.
    p.set_server_env(&[]);
    a.ok(&[cmd, "gpu"]);
    let new_a = synced_files(&a.home);
    let new_b = synced_files(&b.home);
    check_home_states("laptop", &old_a, &mid_a, &new_a);
    check_home_states("gpu", &old_b, &mid_b, &new_b);

    // And a sync converges, with every line ever written on either side.
    age(&a.home);
    age(&b.home);
    a.ok(&["sync", "gpu"]);
    let every_line = union_lines(
        &every_line,
        &union_lines(&jsonl_lines(&a.home), &jsonl_lines(&b.home)),
    );
    for m in [a, b] {
        assert_lines_superset(&jsonl_lines(&m.home), &every_line, &m.name);
    }
    assert_same_files(
        &synced_files(&a.home),
        &synced_files(&b.home),
        "homes after the rerun and a sync",
    );
    assert_eq!(a.head(), b.head(), "converged");
    a.verify();
    b.verify();
}

#[test]
fn push_server_killed_after_receiving_a_pack() {
    fault_case(101, "push", Side::Server, "receive-after-pack-rename");
}

#[test]
fn push_server_killed_while_committing_its_home() {
    fault_case(102, "push", Side::Server, "commit-before-db");
}

#[test]
fn push_server_killed_before_a_pack_is_durable() {
    fault_case(103, "push", Side::Server, "pack-before-fsync");
}

#[test]
fn push_server_killed_after_renaming_a_pack() {
    fault_case(104, "push", Side::Server, "after-pack-rename");
}

#[test]
fn push_server_killed_mid_append_to_a_session() {
    fault_case(105, "push", Side::Server, "append-mid-session");
}

#[test]
fn push_server_killed_after_applying_the_merge() {
    fault_case(106, "push", Side::Server, "merge-after-apply");
}

#[test]
fn push_client_killed_before_a_pack_is_durable() {
    fault_case(107, "push", Side::Client, "pack-before-fsync");
}

#[test]
fn pull_client_killed_after_receiving_a_pack() {
    fault_case(108, "pull", Side::Client, "receive-after-pack-rename");
}

#[test]
fn pull_client_killed_mid_append_to_a_session() {
    fault_case(109, "pull", Side::Client, "append-mid-session:3");
}

#[test]
fn pull_client_killed_after_applying_the_merge() {
    fault_case(110, "pull", Side::Client, "merge-after-apply");
}

#[test]
fn pull_server_killed_while_committing_its_home() {
    fault_case(111, "pull", Side::Server, "commit-before-db");
}

#[test]
fn sync_client_killed_while_committing_its_home() {
    fault_case(112, "sync", Side::Client, "commit-before-db");
}

#[test]
fn sync_client_killed_at_its_second_pack() {
    fault_case(113, "sync", Side::Client, "after-pack-rename:2");
}

#[test]
fn sync_both_sides_armed_after_renaming_a_pack() {
    fault_case(114, "sync", Side::Both, "after-pack-rename");
}

#[test]
fn sync_server_killed_after_applying_the_merge() {
    fault_case(115, "sync", Side::Server, "merge-after-apply");
}

/// A large first push, killed at seeded random moments (the client, or the server), resumes
/// and completes; the stores stay sound and the remote home never holds a torn file.
#[test]
fn random_sigkill_during_a_large_first_push() {
    let w = World::new();
    let a = w.machine("laptop");
    let b = w.machine("gpu");
    realistic_home(&a.home, 200, true);
    let real = Path::new(REAL_TRANSCRIPTS);
    for s in [
        "4d5611e5-241a-462a-8d15-5122611a9569",
        "fa812bfe-b295-4cca-9c2f-fdf01028cb46",
    ] {
        copy_file(
            &real.join(format!("{s}.jsonl")),
            &a.home.join(format!("projects/-home-y/{s}.jsonl")),
        );
    }
    age(&a.home);
    a.commit();
    let files_a = synced_files(&a.home);
    let pid_file = w.path("server.pid");
    let wrap = b.wrapper(
        &w.path("gpu-sage"),
        &WrapperOpts {
            pid_file: Some(pid_file.clone()),
            ..Default::default()
        },
    );
    a.add_pipe_remote("gpu", &b, &wrap, &[]);
    // How long an uninterrupted first push of this home takes here (to a scratch machine):
    // the kills land at seeded fractions of it.
    let probe = w.machine("probe");
    let probe_wrap = probe.wrapper(&w.path("probe-sage"), &WrapperOpts::default());
    a.add_pipe_remote("probe", &probe, &probe_wrap, &[]);
    let t0 = Instant::now();
    a.ok(&["push", "probe"]);
    let full = t0.elapsed();

    let mut rng = Rng::new(0x5eed);
    let mut killed = 0;
    for round in 0..6 {
        let _ = fs::remove_file(&pid_file);
        let kill_server = round % 2 == 1;
        // 2%..60% of a full push (the first round early enough to always interrupt)
        let percent = if round == 0 {
            rng.range(2, 30)
        } else {
            rng.range(2, 60)
        };
        let delay = full * percent as u32 / 100;
        let mut c = a.cmd();
        c.args(["push", "gpu"]);
        let child = spawn_group(&mut c);
        let client = child.id() as i32;
        let victim = if kill_server {
            // wait for the server to start, then kill it after the delay
            let start = Instant::now();
            loop {
                if let Some(p) = read_pid(&pid_file) {
                    break p;
                }
                assert!(start.elapsed() < Duration::from_secs(30), "no server");
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            client
        };
        std::thread::sleep(delay);
        // SAFETY: kill(2) of a process this test started.
        unsafe { libc::kill(victim, libc::SIGKILL) };
        let o = wait_out(child, TIMEOUT, "push");
        if let Some(p) = read_pid(&pid_file) {
            wait_gone(p, Duration::from_secs(60));
        }
        if o.code != Some(0) {
            killed += 1;
        }
        // Sound stores; the remote home holds only whole files that the laptop has.
        a.verify();
        if b.xdg.join("sage/homes").exists()
            && fs::read_dir(b.xdg.join("sage/homes"))
                .unwrap()
                .next()
                .is_some()
        {
            let v = b.run(&["verify", "--read-data"]);
            assert_eq!(v.code, Some(0), "round {round}: {}\n{}", v.text(), v.stderr);
        }
        for (p, bytes) in synced_files(&b.home) {
            if p.contains(".sage-tmp-") {
                continue; // a killed apply's temp file: must be gone once a push completes
            }
            assert_eq!(
                files_a.get(&p),
                Some(&bytes),
                "round {round}: {p} on the gpu is not the laptop's file"
            );
        }
        if o.code == Some(0) {
            break;
        }
    }
    assert!(
        killed > 0,
        "no push was interrupted: the kill timing is off"
    );
    a.ok(&["push", "gpu"]);
    assert_same_files(&files_a, &synced_files(&b.home), "after the push completed");
    // The gpu may have snapshotted a partly applied home when a later push began (its safety
    // snapshot): then a sync brings that merge back, and both hold the same snapshot.
    a.ok(&["sync", "gpu"]);
    assert_same_files(&files_a, &synced_files(&a.home), "laptop after the sync");
    assert_same_files(&files_a, &synced_files(&b.home), "gpu after the sync");
    assert_eq!(a.head(), b.head());
    a.verify();
    b.verify();
}

// ---------------------------------------------------------------------------------------------
// Malicious peers

/// Objects for a crafted pack.
type Objs = Vec<(Kind, ObjectId, Vec<u8>)>;

fn obj(kind: Kind, bytes: Vec<u8>) -> (Kind, ObjectId, Vec<u8>) {
    (kind, ObjectId::hash(kind, &bytes), bytes)
}

fn file_entry(name: &str, blob: &(Kind, ObjectId, Vec<u8>)) -> Entry {
    Entry {
        name: name.to_string(),
        kind: EntryKind::File,
        size: blob.2.len() as u64,
        exec: false,
        id: Some(blob.1),
        target: vec![],
    }
}

fn dir_obj(entries: Vec<Entry>) -> (Kind, ObjectId, Vec<u8>) {
    obj(
        Kind::DirNode,
        encode(&DirNode {
            level: 0,
            entries,
            children: vec![],
        }),
    )
}

fn snapshot(root: ObjectId, parents: Vec<ObjectId>) -> SnapshotInfo {
    let o = Snapshot {
        host: "evil".into(),
        kind: "manual".into(),
        merge: None,
        message: "crafted".into(),
        parents,
        pathmap: None,
        root,
        time: 1_800_000_000_000,
        v: SNAPSHOT_VERSION,
    }
    .to_object();
    SnapshotInfo {
        id: o.id,
        raw: o.bytes,
        trees_pruned: false,
    }
}

/// A pack of `objs`, written by sage's own pack writer (which trusts its caller).
fn pack_bytes(tmp: &Path, objs: &Objs) -> Vec<u8> {
    fs::create_dir_all(tmp).unwrap();
    let mut w = sage::pack::PackWriter::new(tmp, 3).unwrap();
    for (k, id, b) in objs {
        w.add(*k, *id, b).unwrap();
    }
    let (name, _) = w.finish().unwrap().expect("a pack");
    let p = tmp.join(format!("{name}.pack"));
    let b = fs::read(&p).unwrap();
    fs::remove_file(p).unwrap();
    b
}

/// Set the kind byte of every index entry to `kind` and fix the trailer's checksum.
fn patch_kinds(mut pack: Vec<u8>, kind: u8) -> Vec<u8> {
    let t = pack.len() - 64;
    let index_offset = u64::from_le_bytes(pack[t + 8..t + 16].try_into().unwrap()) as usize;
    let blocks = u32::from_le_bytes(pack[t + 16..t + 20].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(pack[t + 20..t + 24].try_into().unwrap()) as usize;
    let entries = index_offset + blocks * 16 + 1024;
    for i in 0..count {
        pack[entries + i * 48 + 32] = kind;
    }
    let digest = *blake3::hash(&pack[..t]).as_bytes();
    pack[t + 24..t + 56].copy_from_slice(&digest);
    pack
}

/// A pack of `objs` plus the snapshot object itself (a receiver rejects a snapshot row whose
/// object did not arrive).
fn pack_with_snapshot(tmp: &Path, objs: &Objs, snap: &SnapshotInfo) -> (Vec<u8>, usize) {
    let mut all = objs.clone();
    all.push((Kind::Snapshot, snap.id, snap.raw.clone()));
    (pack_bytes(tmp, &all), all.len())
}

fn pack_frames(pack: &[u8], objects: usize) -> Vec<u8> {
    let mut out = frame(&Msg::PackStart {
        objects: objects as u64,
        bytes: pack.len() as u64,
    });
    out.extend(frame(&Msg::PackChunk(pack.to_vec())));
    out.extend(frame(&Msg::PackEnd));
    out
}

/// One hostile payload: a pack (maybe none) and a snapshot, or raw bytes instead of frames.
struct Attack {
    name: String,
    /// What the victim's error must say.
    expect: &'static [&'static str],
    pack: Option<(Vec<u8>, usize)>,
    snap: Option<SnapshotInfo>,
    raw: Option<Vec<u8>>,
}

/// The hostile payloads, built against a victim whose HEAD is `head`. `outside` is a directory
/// outside the home and the store that nothing may be written to.
fn attacks(tmp: &Path, head: ObjectId, outside: &Path) -> Vec<Attack> {
    let mut v = Vec::new();
    let blob = obj(Kind::Blob, b"pwned\n".to_vec());
    let abs_name = format!("{}/x", outside.display());
    for (name, label) in [
        ("../x", "tree entry ../x"),
        (abs_name.as_str(), "tree entry with an absolute path"),
        ("a\0b", "tree entry with a NUL"),
        ("sub/x", "tree entry with a slash"),
        ("..", "tree entry .."),
    ] {
        let root = dir_obj(vec![file_entry(name, &blob)]);
        let snap = snapshot(root.1, vec![head]);
        let objs: Objs = vec![blob.clone(), root.clone()];
        v.push(Attack {
            name: label.to_string(),
            expect: &["not allowed"],
            pack: Some(pack_with_snapshot(tmp, &objs, &snap)),
            snap: Some(snap),
            raw: None,
        });
    }
    // an object whose bytes do not match its id
    {
        let good = obj(Kind::Blob, b"honest bytes\n".to_vec());
        let lie = (Kind::Blob, good.1, b"other bytes\n".to_vec());
        let root = dir_obj(vec![file_entry("CLAUDE.md", &good)]);
        let objs: Objs = vec![lie, root.clone()];
        v.push(Attack {
            name: "wrong object hash".into(),
            expect: &["do not match its id"],
            pack: Some(pack_with_snapshot(
                tmp,
                &objs,
                &snapshot(root.1, vec![head]),
            )),
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
    }
    // an unknown object kind
    {
        let root = dir_obj(vec![file_entry("CLAUDE.md", &blob)]);
        let objs: Objs = vec![blob.clone(), root.clone()];
        let pack = patch_kinds(pack_bytes(tmp, &objs), 0x63);
        v.push(Attack {
            name: "unknown object kind".into(),
            expect: &["kind"],
            pack: Some((pack, objs.len())),
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
    }
    // an unknown entry kind inside a tree
    {
        let mut e = file_entry("CLAUDE.md", &blob);
        e.kind = EntryKind::File;
        let mut bytes = encode(&DirNode {
            level: 0,
            entries: vec![e],
            children: vec![],
        });
        // the entry kind is a u8 right after the name; File is 0
        let at = bytes
            .windows(9)
            .position(|w| w == b"CLAUDE.md")
            .expect("name in the encoding")
            + 9;
        assert_eq!(bytes[at], 0);
        bytes[at] = 9;
        let root = obj(Kind::DirNode, bytes);
        let objs: Objs = vec![blob.clone(), root.clone()];
        v.push(Attack {
            name: "unknown entry kind".into(),
            expect: &["kind"],
            pack: Some(pack_with_snapshot(
                tmp,
                &objs,
                &snapshot(root.1, vec![head]),
            )),
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
    }
    // a snapshot whose tree was never sent
    {
        let root = dir_obj(vec![file_entry("CLAUDE.md", &blob)]);
        v.push(Attack {
            name: "snapshot without its objects".into(),
            expect: &["without its tree"],
            pack: None,
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
    }
    // a tree naming a blob that was never sent
    {
        let root = dir_obj(vec![file_entry("CLAUDE.md", &blob)]);
        let objs: Objs = vec![root.clone()];
        v.push(Attack {
            name: "tree naming a missing object".into(),
            expect: &["neither the pack nor this store holds"],
            pack: Some(pack_with_snapshot(
                tmp,
                &objs,
                &snapshot(root.1, vec![head]),
            )),
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
    }
    // a snapshot whose parent does not exist
    {
        let root = dir_obj(vec![file_entry("CLAUDE.md", &blob)]);
        let objs: Objs = vec![blob.clone(), root.clone()];
        v.push(Attack {
            name: "snapshot with an unknown parent".into(),
            expect: &["0707070707"],
            pack: Some(pack_with_snapshot(
                tmp,
                &objs,
                &snapshot(root.1, vec![ObjectId([7; 32])]),
            )),
            snap: Some(snapshot(root.1, vec![ObjectId([7; 32])])),
            raw: None,
        });
    }
    // `projects` turned into a symlink pointing outside, with a session "inside" it
    {
        let sess = obj(Kind::Line, b"{\"evil\":1}\n".to_vec());
        let lines = vec![sage::object::DataRef {
            id: sess.1,
            len: sess.2.len() as u64,
        }];
        let mut mem = sage::prolly::MemObjects {
            keep_data: true,
            ..Default::default()
        };
        let list = sage::prolly::build_lines(&lines, &mut mem).unwrap();
        let session = obj(
            Kind::Session,
            encode(&sage::object::Session {
                count: 1,
                size: sess.2.len() as u64,
                lines: list,
                tail: None,
            }),
        );
        let mut objs: Objs = vec![sess.clone()];
        for (id, (k, b)) in &mem.map {
            objs.push((*k, *id, b.clone()));
        }
        objs.push(session.clone());
        let evil_dir = dir_obj(vec![Entry {
            name: "evil.jsonl".into(),
            kind: EntryKind::Session,
            size: sess.2.len() as u64,
            exec: false,
            id: Some(session.1),
            target: vec![],
        }]);
        objs.push(evil_dir.clone());
        let link = Entry {
            name: "projects".into(),
            kind: EntryKind::Symlink,
            size: outside.as_os_str().len() as u64,
            exec: false,
            id: None,
            target: outside.as_os_str().as_encoded_bytes().to_vec(),
        };
        let dir = Entry {
            name: "projects".into(),
            kind: EntryKind::Dir,
            size: 1,
            exec: false,
            id: Some(evil_dir.1),
            target: vec![],
        };
        let root = dir_obj(vec![dir, link.clone()]);
        objs.push(root.clone());
        v.push(Attack {
            name: "projects as a symlink and a directory".into(),
            expect: &["projects"],
            pack: Some(pack_with_snapshot(
                tmp,
                &objs,
                &snapshot(root.1, vec![head]),
            )),
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
        let root = dir_obj(vec![link]);
        let objs: Objs = vec![root.clone()];
        v.push(Attack {
            name: "projects turned into a symlink".into(),
            expect: &["projects"],
            pack: Some(pack_with_snapshot(
                tmp,
                &objs,
                &snapshot(root.1, vec![head]),
            )),
            snap: Some(snapshot(root.1, vec![head])),
            raw: None,
        });
    }
    // a snapshot row whose object never arrived in a pack (its tree did)
    let root = dir_obj(vec![file_entry("ok.md", &blob)]);
    let objs: Objs = vec![blob.clone(), root.clone()];
    v.push(Attack {
        name: "snapshot whose object is in no pack".into(),
        expect: &["without its object in a pack"],
        pack: Some((pack_bytes(tmp, &objs), objs.len())),
        snap: Some(snapshot(root.1, vec![head])),
        raw: None,
    });
    // a frame over the limit
    v.push(Attack {
        name: "oversized frame".into(),
        expect: &["exceeds the limit"],
        pack: None,
        snap: None,
        raw: Some(((MAX_FRAME + 1) as u32).to_le_bytes().to_vec()),
    });
    // bytes that are not MessagePack of any message
    let mut junk = 6u32.to_le_bytes().to_vec();
    junk.extend_from_slice(b"\xc1\xc1\xc1\xc1\xc1\xc1");
    v.push(Attack {
        name: "undecodable frame".into(),
        expect: &["undecodable"],
        pack: None,
        snap: None,
        raw: Some(junk),
    });
    v
}

/// What must hold after an attack: the error says `expect`, the home and HEAD are unchanged,
/// nothing appeared outside, the store is sound.
struct Victim<'a> {
    m: &'a Machine,
    head: String,
    files: BTreeMap<String, Vec<u8>>,
    outside: PathBuf,
}

impl Victim<'_> {
    fn check(&self, attack: &str, err: &str, expect: &[&str]) {
        for e in expect {
            assert!(
                err.contains(e),
                "{attack}: the error does not say {e:?}:\n{err}"
            );
        }
        assert_eq!(self.m.head(), self.head, "{attack}: a ref moved");
        assert_same_files(&self.files, &synced_files(&self.m.home), attack);
        assert!(
            fs::read_dir(&self.outside).unwrap().next().is_none(),
            "{attack}: something was written outside the home"
        );
        let parent = self.m.home.parent().unwrap();
        for stray in ["x", "a", "sub"] {
            assert!(
                !parent.join(stray).exists(),
                "{attack}: {stray} written next to the home"
            );
        }
        self.m.verify();
    }
}

/// A minimal laptop home, committed.
fn small_home(m: &Machine) {
    let mut rng = Rng::new(5);
    write(
        &m.home.join(format!("{APP}/s.jsonl")),
        session_lines(&mut rng, "s", 1, 20, "base"),
    );
    write(&m.home.join("settings.json"), "{}\n");
    m.commit();
}

/// A fake server that replays `frames` (after the magic) whatever the client says.
fn fake_server(w: &World, name: &str, bytes: &[u8]) -> PathBuf {
    let data = w.path(&format!("{name}.frames"));
    fs::write(&data, bytes).unwrap();
    let script = w.path(&format!("{name}.sh"));
    write_script(
        &script,
        &format!(
            "#!/bin/sh\ncat {}\nexec cat >/dev/null\n",
            sh_quote(&data.display().to_string())
        ),
    );
    script
}

/// A fake server's `Welcome`: today's capabilities but `purge-tombstones`.
fn welcome_without_tombstones() -> Msg {
    Msg::Welcome {
        proto: 1,
        version: "0.1.0".into(),
        store_id: "fakestore".into(),
        created: false,
        bare: false,
        home_marker: Some("fakestore".into()),
        home_exists: true,
        caps: sage::protocol::our_caps()
            .into_iter()
            .filter(|c| c != sage::protocol::PURGE_TOMBSTONES)
            .collect(),
    }
}

/// A malicious server: `sage pull` from it must reject each attack.
#[test]
fn pull_from_a_malicious_server_is_rejected() {
    let w = World::new();
    let a = w.machine("laptop");
    small_home(&a);
    let head = ObjectId::from_hex(&a.head()).unwrap();
    let outside = w.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let victim = Victim {
        m: &a,
        head: a.head(),
        files: synced_files(&a.home),
        outside: outside.clone(),
    };
    // Without `purge-tombstones` (the victim has no tombstones): the scripted replies below
    // answer the rest of the sync.
    let welcome = frame(&welcome_without_tombstones());
    let mut cases: Vec<(String, Vec<u8>, Vec<&str>)> = Vec::new();
    // a server without the capabilities this sync needs (an older or stripped-down sage)
    let mut b = MAGIC.to_vec();
    b.extend(frame(&Msg::Welcome {
        proto: 1,
        version: "0.0.9".into(),
        store_id: "fakestore".into(),
        created: false,
        bare: false,
        home_marker: Some("fakestore".into()),
        home_exists: true,
        caps: vec![],
    }));
    cases.push((
        "a server lacking a capability".into(),
        b,
        vec!["lacks the `have` capability", "upgrade sage on the remote"],
    ));
    for at in attacks(&w.path("craft"), head, &outside) {
        let mut b = MAGIC.to_vec();
        b.extend(&welcome);
        if let Some(raw) = &at.raw {
            b.extend(raw);
        } else {
            let snap = at.snap.clone().unwrap();
            b.extend(frame(&Msg::Committed {
                head: Some(snap.id),
            }));
            b.extend(frame(&Msg::GraphReply {
                head: Some(snap.id),
                refs: vec![],
                snapshots: vec![snap.clone()],
            }));
            if let Some((p, n)) = &at.pack {
                b.extend(pack_frames(p, *n));
            }
            b.extend(frame(&Msg::FetchDone { snaps: vec![snap] }));
        }
        cases.push((at.name.clone(), b, at.expect.to_vec()));
    }
    // a shell banner before the handshake, and a peer that is not sage at all
    let mut b = b"Welcome to GPU box\n".to_vec();
    b.extend(MAGIC);
    b.extend(&welcome);
    cases.push((
        "banner before the handshake".into(),
        b,
        vec!["printed something before", "Welcome to GPU box"],
    ));
    cases.push((
        "no handshake at all".into(),
        b"SSH-2.0-OpenSSH\r\n".to_vec(),
        vec!["printed something before"],
    ));

    for (i, (name, bytes, expect)) in cases.iter().enumerate() {
        let script = fake_server(&w, &format!("case{i}"), bytes);
        let rname = format!("evil{i}");
        let url = format!("ssh://fake{}", w.path("nowhere").display());
        a.ok(&[
            "remote",
            "add",
            &rname,
            &url,
            "--remote-sage",
            &script.display().to_string(),
            "--no-check",
            "--trust-config",
        ]);
        let o = a.run(&["pull", &rname]);
        assert!(
            matches!(o.code, Some(1) | Some(2)),
            "{name}: pull should fail cleanly: {:?}\n{}",
            o.code,
            o.all()
        );
        victim.check(name, &o.all(), expect);
    }
}

/// Run `sage serve --stdio` for `m` with `input` (frames after our Hello), return what it sent.
fn serve_with(m: &Machine, input: &[u8]) -> (Option<i32>, Vec<Msg>, String) {
    let mut c = Command::new(sage_bin());
    c.args(["serve", "--stdio"])
        .env("HOME", &m.user)
        .env("XDG_DATA_HOME", &m.xdg)
        .env("SAGE_HOST", &m.host)
        .env_remove("SAGE_FAILPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut all = frame(&Msg::Hello {
        proto_min: 1,
        proto_max: 1,
        version: "0.1.0".into(),
        path: m.home.display().to_string(),
        bare: false,
        create: false,
        caps: vec![],
    });
    all.extend_from_slice(input);
    // the server may hang up early: a failed write is fine
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&all);
    });
    let o = wait_out(child, TIMEOUT, "sage serve --stdio");
    let _ = feeder.join();
    assert!(o.stdout.starts_with(MAGIC), "no magic: {:?}", o.text());
    (o.code, parse_frames(&o.stdout[MAGIC.len()..]), o.stderr)
}

/// A malicious client: `sage serve` must reject each attack before anything is stored as a
/// snapshot or a ref.
#[test]
fn serve_rejects_a_malicious_client() {
    let w = World::new();
    let b = w.machine("gpu");
    small_home(&b);
    let head = ObjectId::from_hex(&b.head()).unwrap();
    let outside = w.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let victim = Victim {
        m: &b,
        head: b.head(),
        files: synced_files(&b.home),
        outside: outside.clone(),
    };
    let packs_dir = b.store_dir().join("packs");
    let packs = || -> Vec<_> {
        let mut v: Vec<_> = fs::read_dir(&packs_dir)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for at in attacks(&w.path("craft"), head, &outside) {
        let packs_before = packs();
        let mut input = Vec::new();
        let mut pack_ok_expected = false;
        if let Some(raw) = &at.raw {
            input.extend(raw);
        } else {
            if let Some((p, n)) = &at.pack {
                input.extend(pack_frames(p, *n));
                pack_ok_expected = at.name.contains("symlink")
                    || at.name.contains("without")
                    || at.name.contains("in no pack")
                    || at.name.contains("parent");
            }
            let snap = at.snap.clone().unwrap();
            input.extend(frame(&Msg::Snapshots {
                snaps: vec![snap.clone()],
            }));
            input.extend(frame(&Msg::Merge {
                head: snap.id,
                store_id: "fakestore".into(),
                dry_run: false,
                force: false,
                select: vec![],
            }));
        }
        input.extend(frame(&Msg::Bye));
        let (code, msgs, stderr) = serve_with(&b, &input);
        assert!(
            matches!(msgs.first(), Some(Msg::Welcome { .. })),
            "{}: {msgs:?}",
            at.name
        );
        let err = match msgs.last() {
            Some(Msg::Error { message }) => message.clone(),
            other => panic!(
                "{}: serve did not answer with an error: {other:?}\n{stderr}",
                at.name
            ),
        };
        assert_ne!(code, Some(0), "{}: serve exited 0", at.name);
        victim.check(&at.name, &err, at.expect);
        if !pack_ok_expected {
            assert_eq!(
                packs(),
                packs_before,
                "{}: a rejected pack was kept",
                at.name
            );
        }
    }
    // Requests a client may not make.
    for (name, msg, expect) in [
        (
            "moving HEAD through SetRef",
            Msg::SetRef {
                name: "HEAD".into(),
                id: head,
            },
            "refusing",
        ),
        (
            "merging a snapshot the store lacks",
            Msg::Merge {
                head: ObjectId([9; 32]),
                store_id: "x".into(),
                dry_run: false,
                force: false,
                select: vec![],
            },
            "not in this store",
        ),
        (
            "fetching a snapshot the store lacks",
            Msg::Fetch {
                wants: vec![ObjectId([9; 32])],
                haves: vec![],
            },
            "0909090909",
        ),
    ] {
        let (_, msgs, _) = serve_with(&b, &frame(&msg));
        let err = match msgs.last() {
            Some(Msg::Error { message }) => message.clone(),
            other => panic!("{name}: no error: {other:?}"),
        };
        victim.check(name, &err, &[expect]);
    }
}

/// A store that purged data refuses to sync with a sage that cannot carry tombstones (it would
/// bring the purged lines back, or fail on the objects it lacks): as a client, and as a server.
#[test]
fn a_store_with_purged_data_refuses_a_peer_without_tombstones() {
    let w = World::new();
    let a = w.machine("laptop");
    small_home(&a);
    let s = a.home.join(format!("{APP}/s.jsonl"));
    let mut f = fs::OpenOptions::new().append(true).open(&s).unwrap();
    f.write_all(b"{\"type\":\"user\",\"message\":{\"content\":\"pw hunter2-XYZZY\"}}\n")
        .unwrap();
    drop(f);
    a.commit();
    a.ok(&[
        "purge",
        "--match",
        "hunter2-XYZZY",
        "--i-understand-data-loss-risk",
    ]);
    // As a client: a server without the capability.
    let mut b = MAGIC.to_vec();
    b.extend(frame(&welcome_without_tombstones()));
    let script = fake_server(&w, "old", &b);
    let url = format!("ssh://fake{}", w.path("nowhere").display());
    a.ok(&[
        "remote",
        "add",
        "old",
        &url,
        "--remote-sage",
        &script.display().to_string(),
        "--no-check",
    ]);
    let head = a.head();
    let o = a.run(&["sync", "old"]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        o.all().contains("lacks the `purge-tombstones` capability")
            && o.all().contains("upgrade sage"),
        "{}",
        o.all()
    );
    assert_eq!(a.head(), head, "nothing was recorded");
    // As a server: a client without it gets an error before anything else.
    let (_, msgs, _) = serve_with(&a, &[]);
    match msgs.first() {
        Some(Msg::Error { message }) => {
            assert!(message.contains("purge-tombstones"), "{message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}
