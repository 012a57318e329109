//! Concurrency with the real binary: a session appended to while `commit` reads it, and one
//! writer at a time (a second writer fails naming the holder) while readers keep working.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Appends complete lines (one `write` each, some longer than a page) until told to stop.
fn start_writer(path: &Path, seed: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) && n < 100_000 {
            let words = if rng.chance(10) {
                3000
            } else {
                rng.range(5, 80) as usize
            };
            let line = message_line(&mut rng, "live", "assistant", words);
            f.write_all(line.as_bytes()).unwrap();
            n += 1;
            // pacing only: the checks hold wherever the commit's read lands
            std::thread::sleep(Duration::from_micros(50));
        }
        n
    })
}

/// What HEAD holds for `rel`: its bytes, and the unterminated tail it recorded (if any).
fn committed(env: &Env, rel: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let bytes = env.cat(&format!("HEAD:{rel}"));
    let repo = sage::Repo::open(&env.home, Some(&env.store)).unwrap();
    let head = repo.head().unwrap().unwrap();
    let root = repo.snapshot(&head).unwrap().snap.root;
    let e = sage::tree::lookup_path(&repo.objects, root, rel)
        .unwrap()
        .unwrap();
    let (_, tail) = repo.session_lines(&e).unwrap();
    let tail = tail.map(|t| repo.line_bytes(t).unwrap());
    (bytes, tail)
}

#[test]
fn a_session_appended_to_during_commit_is_committed_as_a_consistent_prefix() {
    let env = Env::new();
    copy_real_transcripts(&env.home);
    let mut rng = Rng::new(1);
    let rel = "projects/-live/live.jsonl";
    let live = env.home.join(rel);
    write(&live, session_text(&mut rng, "live", 3000));
    let mut sizes = vec![fs::metadata(&live).unwrap().len()];
    // round 0: the first commit (a full read); rounds 1-2: incremental (only the tail is read)
    for round in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = start_writer(&live, 10 + round, stop.clone());
        // let the writer get going, then commit while it writes
        while fs::metadata(&live).unwrap().len() == *sizes.last().unwrap() {
            std::thread::yield_now();
        }
        let mut child = env
            .cmd()
            .args(["commit", "-q", "-m", &format!("round {round}")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let status = child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        let lines = writer.join().unwrap();
        assert!(status.success(), "round {round}: commit failed");
        assert!(lines > 0);
        let fin = fs::read(&live).unwrap();
        let (got, tail) = committed(&env, rel);
        assert!(
            fin.starts_with(&got),
            "round {round}: the committed {} bytes are not a prefix of the file ({} bytes)",
            got.len(),
            fin.len()
        );
        assert!(
            got.len() as u64 >= *sizes.last().unwrap(),
            "round {round}: lost bytes"
        );
        // a line boundary, or a torn last line recorded as the tail
        match &tail {
            None => assert!(got.is_empty() || got.ends_with(b"\n"), "round {round}"),
            Some(t) => {
                assert!(!t.contains(&b'\n'));
                assert!(got.ends_with(t), "round {round}: tail is not the end");
                let before_tail = &got[..got.len() - t.len()];
                assert!(before_tail.is_empty() || before_tail.ends_with(b"\n"));
            }
        }
        eprintln!(
            "round {round}: file {} -> {} bytes, committed {} (tail {:?})",
            sizes.last().unwrap(),
            fin.len(),
            got.len(),
            tail.as_ref().map(|t| t.len())
        );
        sizes.push(fin.len() as u64);
        env.ok(&["verify"]);
    }
    // a commit after the writer stopped picks up the rest
    env.ok(&["commit", "-m", "quiet"]);
    let (got, tail) = committed(&env, rel);
    assert!(got == fs::read(&live).unwrap());
    assert!(tail.is_none());
    env.ok(&["verify", "--read-data"]);
}

#[test]
fn an_unterminated_last_line_is_recorded_then_picked_up_complete() {
    let env = Env::new();
    let rel = "projects/-x/s.jsonl";
    let p = env.home.join(rel);
    write(&p, "{\"a\":1}\n{\"b\":");
    env.commit("half");
    let (got, tail) = committed(&env, rel);
    assert_eq!(got, b"{\"a\":1}\n{\"b\":");
    assert_eq!(tail.as_deref(), Some(&b"{\"b\":"[..]));
    append(&p, "2}\n{\"c\":3}\n");
    env.commit("whole");
    let (got, tail) = committed(&env, rel);
    assert_eq!(got, b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    assert!(tail.is_none());
    let v = env.ok(&["--json", "log", "-n", "1"]).json();
    assert_eq!(v[0]["messages"], 3);
}

/// Take `<store>/lock` in this process, as another sage would, naming this process as holder.
fn hold_lock(store: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(store.join("lock"))
        .unwrap();
    f.try_lock().expect("the lock is free");
    fs::write(
        store.join("lock.info"),
        format!(
            "pid {} on testhost, running `sage test-holder`",
            std::process::id()
        ),
    )
    .unwrap();
    f
}

#[test]
fn a_second_writer_fails_naming_the_holder_while_readers_work() {
    let env = Env::new();
    let h = awkward_home(&env.home, 31);
    let a = env.commit("A");
    append(&h.sessions[0], "{\"b\":1}\n");
    let b = env.commit("B");
    append(&h.sessions[0], "{\"c\":1}\n");
    let lock = hold_lock(&env.store);
    let me = format!("pid {}", std::process::id());
    for args in [
        vec!["commit"],
        vec!["checkout", &a, "--i-understand-data-loss-risk"],
        vec!["undo", "--i-understand-data-loss-risk"],
        vec!["verify", "--repair"],
    ] {
        let t = Instant::now();
        let o = run(env.cmd().env("SAGE_LOCK_WAIT_MS", "100").args(&args));
        assert_eq!(o.code, Some(1), "sage {args:?} while locked: {o:?}");
        assert!(o.stderr.contains(&me), "sage {args:?}: {}", o.stderr);
        assert!(o.stderr.contains("lock"), "{}", o.stderr);
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(env.head(), b);
    // readers keep working
    let rel0 = h.sessions[0]
        .strip_prefix(&env.home)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for args in [
        vec!["log"],
        vec!["--json", "log"],
        vec!["cat", &format!("HEAD:{rel0}")],
        vec!["status"],
        vec!["show", "HEAD"],
        vec!["diff"],
        vec!["info"],
        vec!["ops"],
        vec!["verify", "--read-data"],
    ] {
        let o = run(env.cmd().env("SAGE_LOCK_WAIT_MS", "100").args(&args));
        assert_eq!(o.code, Some(0), "reader sage {args:?} while locked: {o:?}");
    }
    let status = env.ok(&["--json", "status"]).json();
    assert_eq!(status["changes"][0]["state"], "grown");
    // a writer waits briefly: released within its wait, it goes ahead
    let child = env
        .cmd()
        .env("SAGE_LOCK_WAIT_MS", "20000")
        .args(["commit", "-m", "waited"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(lock);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(env.head(), b);
    assert_eq!(
        env.cat(&format!("HEAD:{rel0}")),
        fs::read(&h.sessions[0]).unwrap()
    );
}

#[test]
fn readers_work_while_a_commit_runs() {
    let env = Env::new();
    let h = awkward_home(&env.home, 32);
    env.commit("small");
    copy_real_transcripts(&env.home);
    pad_home(&env.home, 33, 4);
    let mut child = env
        .cmd()
        .args(["commit", "-q", "-m", "big"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rel0 = h.sessions[0]
        .strip_prefix(&env.home)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut reads = 0;
    loop {
        let done = child.try_wait().unwrap().is_some();
        for args in [
            vec!["--json", "log"],
            vec!["cat", &format!("HEAD:{rel0}")],
            vec!["info"],
        ] {
            let o = env.run(&args);
            assert_eq!(
                o.code,
                Some(0),
                "reader sage {args:?} during a commit: {o:?}"
            );
            reads += 1;
        }
        if done {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(reads >= 3);
    let log = env.ok(&["--json", "log"]).json();
    assert_eq!(log.as_array().unwrap().len(), 2);
}
