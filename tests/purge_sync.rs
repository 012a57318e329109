//! A purge travels with sync (store-format.md §14.5): the tombstones are exchanged first, so
//! the other machine's home and packs lose the purged lines too, no peer ever sends them back
//! (not even one that synced before the purge and never since), `sage doctor` names a remote
//! that has not applied a purge, and both machines converge on one snapshot.

mod sync_common;

use std::fs;
use std::path::{Path, PathBuf};
use sync_common::*;

const SECRET: &str = "ghp_PURGEDTOKEN0123456789";
const FLAG: &str = "--i-understand-data-loss-risk";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn holds(b: &[u8]) -> bool {
    b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())
}

/// Files of a home holding the secret.
fn in_home(m: &Machine) -> Vec<PathBuf> {
    files(&m.home)
        .into_iter()
        .filter(|p| holds(&fs::read(p).unwrap_or_default()))
        .collect()
}

/// Objects (decompressed) and other files of a store holding the secret.
fn in_store(m: &Machine) -> Vec<String> {
    let mut hits = Vec::new();
    for p in files(&m.store_dir()) {
        let name = p.display().to_string();
        if name.ends_with(".pack") && !name.contains("tmp-") {
            sage::pack::Pack::open(&p)
                .unwrap()
                .for_each_object(|e, b| {
                    if holds(b) {
                        hits.push(format!("{name}: {}", e.id));
                    }
                    Ok(())
                })
                .unwrap();
        } else if holds(&fs::read(&p).unwrap_or_default()) {
            hits.push(name);
        }
    }
    hits
}

fn secret_line(rng: &mut Rng, session: &str) -> String {
    format!(
        "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"token {SECRET}\"}},\"uuid\":\"{}\",\"sessionId\":\"{session}\"}}\n",
        rng.uuid()
    )
}

fn append(p: &Path, s: &str) {
    use std::io::Write;
    fs::OpenOptions::new()
        .append(true)
        .open(p)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

fn doctor_names(m: &Machine, remote: &str) -> bool {
    let v = m.run(&["--json", "doctor", "--offline"]).json();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == format!("purge:{remote}"))
}

#[test]
fn a_purge_reaches_every_machine_and_never_comes_back() {
    let w = World::new();
    let laptop = w.machine("laptop");
    let gpu = w.machine("gpu");
    let boxm = w.machine("box");
    let lay = realistic_home(&laptop.home, 31, false);
    laptop.commit();
    let to_gpu = gpu.wrapper(&w.path("gpu-sage"), &WrapperOpts::default());
    laptop.add_pipe_remote("gpu", &gpu, &to_gpu, &[]);
    laptop.ok(&["sync", "gpu"]);
    // box synced with gpu from the start
    let to_gpu_from_box = gpu.wrapper(&w.path("gpu-sage-box"), &WrapperOpts::default());
    fs::create_dir_all(&boxm.home).unwrap();
    boxm.ok(&["init", "--any-dir"]);
    boxm.add_pipe_remote("gpu", &gpu, &to_gpu_from_box, &[]);
    boxm.ok(&["sync", "gpu"]);

    // The secret is pasted on the laptop, reaches gpu and box.
    let mut rng = Rng::new(31);
    let s = laptop.home.join(&lay.sessions[0]);
    append(&s, &secret_line(&mut rng, "s0"));
    append(&s, &session_lines(&mut rng, "s0", 3, 2, "after"));
    laptop.ok(&["sync", "gpu"]);
    boxm.ok(&["sync", "gpu"]);
    assert!(!in_home(&gpu).is_empty() && !in_home(&boxm).is_empty());
    // Both machines go on working.
    append(
        &gpu.home.join(&lay.sessions[1]),
        &session_lines(&mut rng, "s1", 4, 3, "gpu"),
    );
    gpu.commit();
    append(
        &boxm.home.join(&lay.sessions[2]),
        &session_lines(&mut rng, "s2", 5, 3, "box"),
    );
    boxm.commit();

    // The laptop purges: gone there at once; doctor names gpu until the next sync.
    let o = laptop.ok(&["purge", "--match", SECRET, FLAG]);
    assert!(!o.all().contains(SECRET));
    assert_eq!(in_home(&laptop), Vec::<PathBuf>::new());
    assert_eq!(in_store(&laptop), Vec::<String>::new());
    assert!(doctor_names(&laptop, "gpu"));

    // One sync: gpu learns the purge first, then both merge; neither holds a byte of it.
    let o = laptop.ok(&["sync", "gpu"]);
    assert!(o.all().contains("purge to gpu"), "{}", o.all());
    assert_eq!(in_home(&gpu), Vec::<PathBuf>::new());
    assert_eq!(in_store(&gpu), Vec::<String>::new());
    assert_eq!(in_store(&laptop), Vec::<String>::new());
    assert_eq!(laptop.head(), gpu.head(), "one snapshot after the sync");
    assert!(!doctor_names(&laptop, "gpu"));
    laptop.verify();
    gpu.verify();
    // Every other line survived on both: gpu's own work reached the laptop.
    let l1 = fs::read_to_string(laptop.home.join(&lay.sessions[1])).unwrap();
    assert!(l1.contains("gpu"), "gpu's lines reached the laptop");
    let l0 = fs::read_to_string(laptop.home.join(&lay.sessions[0])).unwrap();
    assert_eq!(
        l0,
        fs::read_to_string(gpu.home.join(&lay.sessions[0])).unwrap()
    );
    assert!(l0.contains("after"));

    // box synced before the purge and never since: it still holds the secret. Its next sync
    // learns the tombstones before it sends anything, so gpu never gets the bytes back.
    assert!(!in_home(&boxm).is_empty());
    let o = boxm.ok(&["sync", "gpu"]);
    assert!(o.all().contains("purge from gpu"), "{}", o.all());
    assert_eq!(in_home(&boxm), Vec::<PathBuf>::new());
    assert_eq!(in_store(&boxm), Vec::<String>::new());
    assert_eq!(in_store(&gpu), Vec::<String>::new());
    assert_eq!(in_home(&gpu), Vec::<PathBuf>::new());
    let b2 = fs::read_to_string(boxm.home.join(&lay.sessions[2])).unwrap();
    assert!(b2.contains("box"));
    boxm.verify();
    gpu.verify();
    // And back to the laptop: all three converge, nothing of the secret anywhere.
    laptop.ok(&["sync", "gpu"]);
    boxm.ok(&["sync", "gpu"]);
    assert_eq!(laptop.head(), gpu.head());
    assert_eq!(boxm.head(), gpu.head());
    for m in [&laptop, &gpu, &boxm] {
        assert_eq!(in_home(m), Vec::<PathBuf>::new(), "[{}]", m.name);
        assert_eq!(in_store(m), Vec::<String>::new(), "[{}]", m.name);
    }
    // A second sync moves nothing.
    let o = laptop.ok(&["--json", "sync", "gpu"]).json();
    assert_eq!(o["snapshots_sent"], 0, "{o:#}");
    assert_eq!(o["tombstones_sent"], 0, "{o:#}");
}

#[test]
fn a_backup_store_applies_a_purge_at_the_next_push() {
    let w = World::new();
    let laptop = w.machine("laptop");
    let lay = realistic_home(&laptop.home, 32, false);
    let mut rng = Rng::new(32);
    append(
        &laptop.home.join(&lay.sessions[0]),
        &secret_line(&mut rng, "s0"),
    );
    laptop.commit();
    let usb = w.path("usb");
    laptop.ok(&["remote", "add", "usb", &usb.display().to_string(), "--bare"]);
    laptop.ok(&["push", "usb"]);
    let usb_holds = || {
        files(&usb)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .any(|p| {
                let mut any = false;
                sage::pack::Pack::open(&p)
                    .unwrap()
                    .for_each_object(|_, b| {
                        any |= holds(b);
                        Ok(())
                    })
                    .unwrap();
                any
            })
    };
    assert!(usb_holds());
    laptop.ok(&["purge", "--match", SECRET, FLAG]);
    assert!(doctor_names(&laptop, "usb"));
    laptop.ok(&["push", "usb"]);
    assert!(
        !usb_holds(),
        "the backup store still holds the purged bytes"
    );
    assert!(!doctor_names(&laptop, "usb"));
}

/// The other side killed right after it recorded the tombstones (before its home and packs
/// were cleaned): the next sync finishes there, and only then does doctor stop naming it.
/// A store that never held the lines can pull from a purged one, dry or not. And thousands of
/// tombstones travel in batches.
#[test]
fn an_interrupted_remote_purge_is_finished_by_the_next_sync() {
    let w = World::new();
    let laptop = w.machine("laptop");
    let gpu = w.machine("gpu");
    let lay = realistic_home(&laptop.home, 33, false);
    let mut rng = Rng::new(33);
    append(
        &laptop.home.join(&lay.sessions[0]),
        &secret_line(&mut rng, "s0"),
    );
    laptop.commit();
    let to_gpu = gpu.wrapper(&w.path("gpu-sage"), &WrapperOpts::default());
    laptop.add_pipe_remote("gpu", &gpu, &to_gpu, &[]);
    laptop.ok(&["sync", "gpu"]);
    assert!(!in_store(&gpu).is_empty());
    laptop.ok(&["purge", "--match", SECRET, FLAG]);
    // gpu dies right after recording the tombstones.
    let dying = gpu.wrapper(
        &w.path("gpu-sage-dying"),
        &WrapperOpts {
            env: vec![("SAGE_FAILPOINT".into(), "purge-after-accept".into())],
            ..Default::default()
        },
    );
    laptop.add_pipe_remote("gpu-dying", &gpu, &dying, &[]);
    let o = laptop.run(&["sync", "gpu-dying"]);
    assert_ne!(o.code, Some(0), "{}", o.all());
    assert!(doctor_names(&laptop, "gpu"));
    // The next sync: nothing new to tell gpu, but gpu finishes what it had left.
    laptop.ok(&["sync", "gpu"]);
    assert_eq!(in_home(&gpu), Vec::<PathBuf>::new());
    assert_eq!(in_store(&gpu), Vec::<String>::new());
    assert!(!doctor_names(&laptop, "gpu"));
    gpu.verify();

    // A store that never held the line pulls from the purged laptop: dry, then for real.
    let fresh = w.machine("fresh");
    fs::create_dir_all(&fresh.home).unwrap();
    fresh.ok(&["init", "--any-dir"]);
    let to_laptop = laptop.wrapper(&w.path("laptop-sage"), &WrapperOpts::default());
    fresh.add_pipe_remote("laptop", &laptop, &to_laptop, &[]);
    fresh.ok(&["pull", "laptop", "--dry-run"]);
    fresh.ok(&["pull", "laptop"]);
    fresh.verify();
    assert_eq!(in_store(&fresh), Vec::<String>::new());

    // Many tombstones (more than one batch) travel whole.
    {
        let mut repo = sage::Repo::open(&laptop.home, Some(&laptop.store_dir())).unwrap();
        let stones: Vec<sage::purge::Tombstone> = (0..120_000u64)
            .map(|i| sage::purge::Tombstone {
                id: sage::ObjectId::hash(sage::Kind::Line, format!("never seen {i}\n").as_bytes()),
                kind: sage::Kind::Line,
                time: 1,
                reason: "synthetic".into(),
            })
            .collect();
        let store = repo.store_dir.clone();
        sage::purge::record(&mut repo.db, &store, &stones).unwrap();
    }
    let o = laptop.ok(&["--json", "sync", "gpu"]).json();
    assert_eq!(o["tombstones_sent"], 120_000, "{o:#}");
    let gpu_repo = sage::Repo::open(&gpu.home, Some(&gpu.store_dir())).unwrap();
    assert!(sage::purge::list(&gpu_repo.db).unwrap().len() > 120_000);
}
