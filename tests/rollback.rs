//! Rollback with the real binary: whole-home and per-path checkout, the confirmation rule,
//! dry runs, fresh mtimes, undo, HEAD~N, and restores into another directory.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

const FLAG: &str = "--i-understand-data-loss-risk";

/// Many kinds of change at once: grown, truncated and rewritten sessions, removed and added
/// files, a flipped exec bit, a re-pointed symlink, an empty directory gone and one new.
fn mutate(env: &Env, h: &AwkwardHome, seed: u64) {
    let mut rng = Rng::new(seed);
    append(&h.sessions[0], session_text(&mut rng, "s0", 4));
    let t = fs::read(&h.sessions[1]).unwrap();
    write(&h.sessions[1], &t[..t.len() / 2]); // truncated mid-line
    write(&h.sessions[2], session_text(&mut rng, "s2-rewritten", 9));
    fs::remove_file(&h.sessions[3]).unwrap();
    fs::remove_file(&h.crlf).unwrap();
    write(
        &env.home
            .join(format!("projects/-home-x-my-app/{}.jsonl", rng.uuid())),
        session_text(&mut rng, "new", 6),
    );
    write(&env.home.join("settings.json"), "{\"model\":\"opus\"}\n");
    write(
        &env.home.join("todos/new-todo.json"),
        "[{\"content\":\"x\"}]",
    );
    set_exec(&h.exec_file, false);
    set_exec(&env.home.join("CLAUDE.md"), true);
    fs::remove_file(&h.link).unwrap();
    std::os::unix::fs::symlink("/elsewhere/commands", &h.link).unwrap();
    fs::remove_dir(&h.empty_dir).unwrap();
    fs::create_dir_all(env.home.join("plans/new-empty")).unwrap();
    append(&h.unterminated, "ten\"}\n");
}

/// The files sage never stores, with their bytes, to check a checkout leaves them alone.
fn unstored(home: &Path) -> Tree {
    read_tree(home)
        .into_iter()
        .filter(|(p, _)| never_stored(p) && !p.starts_with(".sage-home"))
        .collect()
}

#[test]
fn checkout_of_the_whole_home_is_byte_identical() {
    let env = Env::new();
    let h = awkward_home(&env.home, 21);
    let a = env.commit("A");
    let state_a = stored_view(&read_tree(&env.home));
    let secrets = unstored(&env.home);
    assert!(secrets.len() > 8);
    mutate(&env, &h, 1);
    let b = env.commit("B");
    let state_b = stored_view(&read_tree(&env.home));
    assert_ne!(state_a, state_b);

    let out = env.ok(&["checkout", &a, FLAG]);
    assert!(out.text().contains("HEAD is now"), "{}", out.text());
    assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), "checkout A");
    assert_same_tree(
        &secrets,
        &unstored(&env.home),
        "never-stored files after checkout",
    );
    // recorded as a checkout snapshot of A's tree, on top of B; history stays linear
    let log = env.ok(&["--json", "log"]).json();
    let head = &log[0];
    assert_eq!(head["kind"], "checkout");
    assert_eq!(head["parents"][0].as_str().unwrap(), b);
    assert_eq!(head["root"], log[2]["root"]);
    assert_eq!(log[2]["id"].as_str().unwrap(), a);
    // the home now matches HEAD: nothing to commit
    assert!(env.ok(&["commit"]).text().starts_with("nothing changed"));

    env.ok(&["checkout", &b, FLAG]);
    assert_same_tree(&state_b, &stored_view(&read_tree(&env.home)), "checkout B");
    assert_same_tree(
        &secrets,
        &unstored(&env.home),
        "never-stored files after checkout",
    );
    env.ok(&["verify", "--read-data"]);
}

#[test]
fn checkout_of_paths_only_touches_those_paths() {
    let env = Env::new();
    let h = awkward_home(&env.home, 22);
    let a = env.commit("A");
    let s0_a = fs::read(&h.sessions[0]).unwrap();
    let sub_dir = h.sessions[1].with_extension(""); // <session>/subagents/...
    let sub_a = read_tree(&sub_dir);
    assert!(!sub_a.is_empty());
    let mut rng = Rng::new(5);
    append(&h.sessions[0], session_text(&mut rng, "x", 3));
    append(&h.sessions[1], session_text(&mut rng, "x", 3));
    write(
        &sub_dir.join("subagents/agent-a1b2c3d.jsonl"),
        session_text(&mut rng, "y", 2),
    );
    write(&sub_dir.join("subagents/agent-new.jsonl"), "{}\n");
    write(&env.home.join("settings.json"), "{\"b\":1}");
    env.commit("B");
    // and an uncommitted change elsewhere, which the safety snapshot keeps
    append(&h.sessions[2], "{\"uncommitted\":true}\n");
    let before = read_tree(&env.home);
    let before_m = mtimes(&env.home);

    let rel0 = h.sessions[0].strip_prefix(&env.home).unwrap().to_path_buf();
    let rel_sub = sub_dir.strip_prefix(&env.home).unwrap().to_path_buf();
    env.ok(&[
        "checkout",
        &a,
        FLAG,
        "--",
        rel_str(&rel0),
        // an absolute path inside the home works too
        sub_dir.to_str().unwrap(),
    ]);
    let after = read_tree(&env.home);
    for (p, n) in &before {
        if p == &rel0 || p.starts_with(&rel_sub) || p == Path::new(".sage-home") {
            continue;
        }
        assert_eq!(after.get(p), Some(n), "{} was touched", p.display());
    }
    let after_m = mtimes(&env.home);
    for (p, m) in &before_m {
        if !(p == &rel0 || p.starts_with(&rel_sub) || p == Path::new(".sage-home")) {
            assert_eq!(after_m.get(p), Some(m), "{} was rewritten", p.display());
        }
    }
    for p in after.keys() {
        if !p.starts_with(&rel_sub) {
            assert!(before.contains_key(p), "{} appeared", p.display());
        }
    }
    assert_eq!(fs::read(&h.sessions[0]).unwrap(), s0_a);
    assert_same_tree(&sub_a, &read_tree(&sub_dir), "subagent directory");
    // HEAD: the home's tree with only those paths from A
    assert_eq!(env.cat(&format!("HEAD:{}", rel_str(&rel0))), s0_a);
    let rel2 = h.sessions[2].strip_prefix(&env.home).unwrap();
    assert_eq!(
        env.cat(&format!("HEAD:{}", rel_str(rel2))),
        fs::read(&h.sessions[2]).unwrap()
    );
    assert_eq!(env.cat("HEAD:settings.json"), b"{\"b\":1}");
    assert!(env.ok(&["commit"]).text().starts_with("nothing changed"));
    // a path in neither the snapshot nor the home is a usage error
    let o = env.run(&["checkout", &a, FLAG, "--", "projects/nope"]);
    assert_eq!(o.code, Some(2), "{o:?}");
}

#[test]
fn a_destructive_checkout_without_a_tty_or_the_flag_is_refused() {
    let env = Env::new();
    let h = awkward_home(&env.home, 23);
    let a = env.commit("A");
    append(&h.sessions[0], "{\"more\":1}\n");
    let b = env.commit("B");
    let before = read_tree(&env.home);
    let before_m = mtimes(&env.home);
    let ops_before = env.ok(&["--json", "ops"]).json();
    let o = env.run(&["checkout", &a]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains(FLAG), "{}", o.stderr);
    // the preview said what is at risk
    assert!(
        o.text().contains("sessions truncated or rewritten"),
        "{}",
        o.text()
    );
    assert!(o.text().contains("at risk: 1 messages"), "{}", o.text());
    assert_eq!(before, read_tree(&env.home));
    assert_eq!(before_m, mtimes(&env.home));
    assert_eq!(env.head(), b);
    assert_eq!(ops_before, env.ok(&["--json", "ops"]).json());
    // undo of nothing destructive... and a non-destructive checkout needs no flag
    fs::remove_file(&h.sessions[4]).unwrap();
    let c = env.commit("C (lost a session)");
    let o = env.ok(&["checkout", &b]);
    assert!(o.text().contains("files added"), "{}", o.text());
    assert!(h.sessions[4].exists());
    assert_ne!(env.head(), c);
}

#[test]
fn a_destructive_checkout_on_a_tty_needs_the_phrase() {
    let env = Env::new();
    let h = awkward_home(&env.home, 24);
    let a = env.commit("A");
    append(&h.sessions[0], "{\"more\":1}\n");
    let b = env.commit("B");
    let grown = fs::read(&h.sessions[0]).unwrap();

    let o = run_on_tty(&env, &["checkout", &a], "i understand\n");
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(
        o.stderr.contains("I UNDERSTAND DATA LOSS RISK"),
        "{}",
        o.stderr
    );
    assert_eq!(fs::read(&h.sessions[0]).unwrap(), grown);
    assert_eq!(env.head(), b);

    let o = run_on_tty(&env, &["checkout", &a], "I UNDERSTAND DATA LOSS RISK\n");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(fs::read(&h.sessions[0]).unwrap().len() < grown.len());
}

/// Run sage with its stdin on a pseudo-terminal fed with `input`.
fn run_on_tty(env: &Env, args: &[&str], input: &str) -> Out {
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: valid out-pointers; null name/termios/winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both fds were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut m = fs::File::from(master);
    // The line waits in the terminal's buffer until sage reads it.
    m.write_all(input.as_bytes()).unwrap();
    let o = env
        .cmd()
        .args(args)
        .stdin(Stdio::from(slave))
        .output()
        .unwrap();
    Out {
        code: o.status.code(),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn dry_run_changes_nothing() {
    let env = Env::new();
    let h = awkward_home(&env.home, 25);
    let a = env.commit("A");
    mutate(&env, &h, 2);
    env.commit("B");
    // an uncommitted change too: a dry run takes no safety snapshot
    append(&h.sessions[0], "{\"uncommitted\":1}\n");
    let before = read_tree(&env.home);
    let before_m = mtimes(&env.home);
    let log = env.ok(&["--json", "log"]).json();
    let ops = env.ok(&["--json", "ops"]).json();
    let o = env.ok(&["checkout", &a, "--dry-run"]);
    assert!(o.text().contains("plan: checkout"), "{}", o.text());
    assert!(o.text().contains("files removed"), "{}", o.text());
    let j = env.ok(&["--json", "checkout", &a, "--dry-run"]).json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["impact"]["destructive"], true);
    assert!(!j["impact"]["removed"].as_array().unwrap().is_empty());
    env.ok(&["undo", "--dry-run"]);
    assert_eq!(before, read_tree(&env.home));
    assert_eq!(before_m, mtimes(&env.home));
    assert_eq!(log, env.ok(&["--json", "log"]).json());
    assert_eq!(ops, env.ok(&["--json", "ops"]).json());
}

#[test]
fn restored_files_get_a_fresh_mtime() {
    let env = Env::new();
    let h = awkward_home(&env.home, 26);
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000); // 2001
    for (p, n) in read_tree(&env.home) {
        if matches!(n, Node::File { .. }) {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(env.home.join(&p))
                .unwrap();
            f.set_modified(old).unwrap();
        }
    }
    let a = env.commit("A");
    let t0 = SystemTime::now() - Duration::from_secs(2);
    append(&h.sessions[0], "{\"more\":1}\n");
    fs::remove_file(&h.sessions[1]).unwrap();
    env.commit("B");
    env.ok(&["checkout", &a, FLAG]);
    for p in [&h.sessions[0], &h.sessions[1]] {
        let m = fs::metadata(p).unwrap().modified().unwrap();
        assert!(m >= t0, "{} kept an old mtime {m:?}", p.display());
    }
    // untouched files keep theirs
    let m = fs::metadata(&h.sessions[2]).unwrap().modified().unwrap();
    assert_eq!(m, old);
    // a restore into another directory: every file fresh
    let dst = env.restore(&a, "restored");
    let n = read_tree(&dst)
        .into_iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| {
            let m = fs::metadata(dst.join(&p)).unwrap().modified().unwrap();
            assert!(m >= t0, "{} restored with mtime {m:?}", p.display());
        })
        .count();
    assert!(n > 10);
}

#[test]
fn undo_restores_the_state_before_a_checkout_and_walks_further_back() {
    let env = Env::new();
    let h = awkward_home(&env.home, 27);
    let a = env.commit("A");
    let state_a = stored_view(&read_tree(&env.home));
    mutate(&env, &h, 3);
    let b = env.commit("B");
    let state_b = stored_view(&read_tree(&env.home));
    // uncommitted work: the first checkout's safety snapshot holds it
    let mut rng = Rng::new(4);
    write(
        &env.home.join("projects/-home-x-my-app/uncommitted.jsonl"),
        session_text(&mut rng, "u", 5),
    );
    append(&h.sessions[0], "{\"uncommitted\":true}\n");
    let state_c = stored_view(&read_tree(&env.home));

    let out = env.ok(&["--json", "checkout", &a, FLAG]).json();
    let safety = out["safety"]
        .as_str()
        .expect("a safety snapshot")
        .to_string();
    assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), "checkout A");
    let Node::File { bytes, .. } = &state_c[Path::new("projects/-home-x-my-app/uncommitted.jsonl")]
    else {
        panic!("a file")
    };
    assert_eq!(
        &env.cat(&format!(
            "{safety}:projects/-home-x-my-app/uncommitted.jsonl"
        )),
        bytes
    );
    env.ok(&["checkout", &b, FLAG]);
    assert_same_tree(&state_b, &stored_view(&read_tree(&env.home)), "checkout B");

    // undo is destructive here, so it needs the flag too
    let o = env.run(&["undo"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert_same_tree(
        &state_b,
        &stored_view(&read_tree(&env.home)),
        "refused undo",
    );

    env.ok(&["undo", FLAG]);
    assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), "first undo");
    env.ok(&["undo", FLAG]);
    assert_same_tree(&state_c, &stored_view(&read_tree(&env.home)), "second undo");
    assert_eq!(env.head(), safety);
    // further back: the commits only moved HEAD; the home is not touched
    let o = env.ok(&["undo", FLAG]);
    assert!(o.text().contains("the home is not touched"), "{}", o.text());
    assert_eq!(env.head(), a);
    assert_same_tree(&state_c, &stored_view(&read_tree(&env.home)), "third undo");
    env.ok(&["undo", FLAG]);
    let o = env.run(&["log"]);
    assert!(o.text().contains("no snapshots yet"), "{o:?}");
    let o = env.run(&["undo", FLAG]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("nothing to undo"), "{}", o.stderr);
    // every undo is in the op log
    let ops = env.ok(&["--json", "ops"]).json();
    let undos = ops
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "undo")
        .count();
    assert_eq!(undos, 4);
    // the snapshots are all still there
    assert_eq!(
        env.cat(&format!("{b}:settings.json")),
        b"{\"model\":\"opus\"}\n"
    );
}

#[test]
fn head_tilde_n_follows_previous_heads() {
    let env = Env::new();
    write(&env.home.join("settings.json"), "{}");
    let mut ids = Vec::new();
    for i in 0..4 {
        write(&env.home.join("history.jsonl"), format!("{{\"n\":{i}}}\n"));
        ids.push(env.commit(&format!("c{i}")));
    }
    let resolve = |name: &str| -> String {
        env.ok(&["--json", "show", name]).json()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(resolve("HEAD"), ids[3]);
    assert_eq!(resolve("HEAD~0"), ids[3]);
    assert_eq!(resolve("HEAD~"), ids[2]);
    assert_eq!(resolve("HEAD~1"), ids[2]);
    assert_eq!(resolve("HEAD~3"), ids[0]);
    let o = env.run(&["show", "HEAD~4"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(env.cat("HEAD~2:history.jsonl"), b"{\"n\":1}\n");
    env.ok(&["checkout", "HEAD~2", FLAG]);
    assert_eq!(
        fs::read(env.home.join("history.jsonl")).unwrap(),
        b"{\"n\":1}\n"
    );
    assert_eq!(resolve("HEAD~1"), ids[3]);
    assert_eq!(resolve("HEAD~3"), ids[1]);
}

#[test]
fn a_restore_into_another_directory_takes_no_safety_snapshot_and_moves_no_ref() {
    let env = Env::new();
    let h = awkward_home(&env.home, 28);
    let a = env.commit("A");
    let state_a = stored_view(&read_tree(&env.home));
    mutate(&env, &h, 5);
    let b = env.commit("B");
    let state_b = stored_view(&read_tree(&env.home));
    // the home has uncommitted changes, which a restore elsewhere must not snapshot
    append(&h.sessions[0], "{\"uncommitted\":1}\n");
    let home_before = read_tree(&env.home);
    let log = env.ok(&["--json", "log"]).json();
    let ops = env.ok(&["--json", "ops"]).json();
    let packs = || -> Vec<PathBuf> { read_tree(&env.store.join("packs")).into_keys().collect() };
    let packs_before = packs();

    let dst_a = env.restore(&a, "restored-a");
    assert_same_tree(&state_a, &stored_view(&read_tree(&dst_a)), "restore A");
    let dst_b = env.restore(&b, "restored-b");
    assert_same_tree(&state_b, &stored_view(&read_tree(&dst_b)), "restore B");
    assert_eq!(log, env.ok(&["--json", "log"]).json());
    assert_eq!(ops, env.ok(&["--json", "ops"]).json());
    assert_eq!(packs_before, packs());
    assert_eq!(home_before, read_tree(&env.home));

    // restoring A over B in that directory drops data: the flag is needed, then it matches A
    let o = env.run_for(&dst_b, &["checkout", &a]);
    assert_eq!(o.code, Some(1), "destructive without the flag: {o:?}");
    assert_same_tree(
        &state_b,
        &stored_view(&read_tree(&dst_b)),
        "refused restore",
    );
    env.ok_for(&dst_b, &["checkout", &a, FLAG]);
    assert_same_tree(
        &state_a,
        &stored_view(&read_tree(&dst_b)),
        "restore A over B",
    );
    assert_eq!(log, env.ok(&["--json", "log"]).json());
    assert_eq!(ops, env.ok(&["--json", "ops"]).json());
    assert_eq!(packs_before, packs());
    // that directory is not the store's home: info says so, and commit there is refused
    let v = run(env.cmd_for(&dst_a).args(["--json", "info"])).json();
    assert_eq!(v["own_home"], false);
    let o = env.run_for(&dst_a, &["commit"]);
    assert_eq!(o.code, Some(2), "{o:?}");
}

#[test]
fn checkout_of_a_generated_home_is_byte_identical() {
    use sage::testgen::{append_to_sessions, generate_home, GenOptions};
    let env = Env::new();
    let report = generate_home(&env.home, &GenOptions::small(8)).unwrap();
    let a = env.commit("A");
    let state_a = stored_view(&read_tree(&env.home));
    let secrets = unstored(&env.home);
    append_to_sessions(&env.home, &report, 6, 4, 1).unwrap();
    for p in report.session_paths.iter().take(3) {
        fs::remove_file(env.home.join(p)).unwrap();
    }
    let p = env.home.join(&report.session_paths[5]);
    let t = fs::read(&p).unwrap();
    write(&p, &t[..t.len() / 3]);
    let b = env.commit("B");
    let state_b = stored_view(&read_tree(&env.home));
    env.ok(&["checkout", &a, FLAG]);
    assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), "checkout A");
    assert_same_tree(&secrets, &unstored(&env.home), "never-stored files");
    env.ok(&["checkout", &b, FLAG]);
    assert_same_tree(&state_b, &stored_view(&read_tree(&env.home)), "checkout B");
    env.ok(&["undo", FLAG]);
    assert_same_tree(&state_a, &stored_view(&read_tree(&env.home)), "undo");
}
