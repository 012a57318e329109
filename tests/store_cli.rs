//! The real `sage` binary against temp homes: init, commit, status, log, show, cat, diff, info,
//! exit codes, broken pipes, what is never stored, and awkward files (names, links, modes).

mod common;

use common::*;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

#[test]
fn init_is_idempotent_and_refuses_a_non_claude_dir() {
    let env = Env::new();
    awkward_home(&env.home, 1);
    let a = env.ok(&["--json", "init"]).json();
    assert_eq!(a["created"], true);
    let b = env.ok(&["--json", "init"]).json();
    assert_eq!(b["created"], false);
    assert_eq!(a["store_id"], b["store_id"]);
    assert_eq!(a["store"], b["store"]);
    let text = env.ok(&["init"]).text();
    assert!(text.contains("already exists"), "{text}");
    // the home marker names the store and is never stored
    let marker = fs::read_to_string(env.home.join(".sage-home")).unwrap();
    assert!(marker.contains(a["store_id"].as_str().unwrap()), "{marker}");

    // an arbitrary non-empty directory is not taken for a home
    let other = env.dir("not-a-home");
    write(&other.join("thesis.tex"), "\\documentclass{article}");
    let o = run(env
        .bare()
        .arg("--home")
        .arg(&other)
        .arg("--store")
        .arg(env.root.path().join("store2"))
        .arg("init"));
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.stderr.contains("--any-dir"), "{}", o.stderr);
    let o = run(env
        .bare()
        .arg("--home")
        .arg(&other)
        .arg("--store")
        .arg(env.root.path().join("store2"))
        .args(["init", "--any-dir"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    // an empty or missing directory is an empty home
    let missing = env.root.path().join("missing-home");
    let o = run(env
        .bare()
        .arg("--home")
        .arg(&missing)
        .arg("--store")
        .arg(env.root.path().join("store3"))
        .arg("init"));
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn commit_prints_id_and_counts_and_nothing_changed_is_ok() {
    let env = Env::new();
    let h = awkward_home(&env.home, 2);
    let out = env.ok(&["commit", "-m", "first"]);
    let text = out.text();
    let first = text.lines().next().unwrap();
    let id = first.strip_prefix("snapshot ").expect(&text);
    assert!(is_hex_id(id), "{text}");

    // counts: every stored file, every stored .jsonl as a session, every complete line a message
    let stored = stored_view(&read_tree(&env.home));
    let files = stored.values().filter(|n| !matches!(n, Node::Dir)).count();
    let sessions = jsonl_files(&stored);
    let messages: usize = sessions
        .iter()
        .map(|p| match &stored[p] {
            Node::File { bytes, .. } => bytes.iter().filter(|&&b| b == b'\n').count(),
            _ => 0,
        })
        .sum();
    let counts = format!(
        "{files} files, {} sessions, {messages} messages",
        sessions.len()
    );
    assert!(text.contains(&counts), "want {counts:?} in\n{text}");
    assert!(h.sessions.len() < sessions.len());

    let again = env.ok(&["commit", "-m", "second"]);
    assert!(
        again.text().starts_with("nothing changed since"),
        "{}",
        again.text()
    );
    let j = env.ok(&["--json", "commit"]).json();
    assert_eq!(j["created"], false);
    assert_eq!(j["id"].as_str().unwrap(), id);
    assert_eq!(
        env.ok(&["--json", "log"]).json().as_array().unwrap().len(),
        1
    );
    // -q prints only the id
    append(&h.sessions[0], "{\"type\":\"user\"}\n");
    let q = env.ok(&["-q", "commit"]).text();
    assert_eq!(q.lines().count(), 1, "{q}");
    assert!(
        is_hex_id(q.trim().strip_prefix("snapshot ").unwrap()),
        "{q}"
    );
}

#[test]
fn status_lists_added_grown_rewritten_vanished_sessions() {
    let env = Env::new();
    let h = awkward_home(&env.home, 3);
    env.commit("base");
    let clean = env.ok(&["status"]).text();
    assert!(clean.contains("nothing changed"), "{clean}");

    let mut rng = Rng::new(33);
    let added = env.home.join("projects/-home-x-my-app/added.jsonl");
    write(&added, session_text(&mut rng, "added", 7));
    append(&h.sessions[0], session_text(&mut rng, "s0", 3));
    // rewritten: the last two lines replaced by one other line
    let text = fs::read_to_string(&h.sessions[1]).unwrap();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines.truncate(lines.len() - 2);
    let mut rewritten = lines.concat();
    rewritten.push_str(&message_line(&mut rng, "s1", "assistant", 5));
    write(&h.sessions[1], &rewritten);
    let gone_lines = fs::read_to_string(&h.sessions[2]).unwrap().lines().count();
    fs::remove_file(&h.sessions[2]).unwrap();
    write(&env.home.join("settings.json"), "{\"changed\":true}\n");

    let rel = |p: &Path| {
        p.strip_prefix(&env.home)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let v = env.ok(&["--json", "status"]).json();
    let changes = v["changes"].as_array().unwrap();
    let find = |p: &str| {
        changes
            .iter()
            .find(|c| c["path"] == p)
            .unwrap_or_else(|| panic!("{p} not in {v:#}"))
            .clone()
    };
    let a = find(&rel(&added));
    assert_eq!(a["state"], "added");
    assert_eq!(a["messages_gained"], 7);
    let g = find(&rel(&h.sessions[0]));
    assert_eq!(g["state"], "grown");
    assert_eq!(g["messages_gained"], 3);
    assert_eq!(g["messages_lost"], 0);
    let r = find(&rel(&h.sessions[1]));
    assert_eq!(r["state"], "rewritten");
    assert_eq!(r["messages_gained"], 1);
    assert_eq!(r["messages_lost"], 2);
    let gone = find(&rel(&h.sessions[2]));
    assert_eq!(gone["state"], "vanished");
    assert_eq!(find("settings.json")["state"], "modified");
    assert_eq!(changes.len(), 5, "{v:#}");
    // what was skipped is said
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    for p in [".credentials.json", ".claude.json", "statsig", "debug"] {
        assert!(
            skipped.contains(&p),
            "{p} not reported skipped: {skipped:?}"
        );
    }

    let t = env.ok(&["status"]).text();
    assert!(
        t.contains(&format!("added      {}  (7 messages)", rel(&added))),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "grown      {}  (+3 messages)",
            rel(&h.sessions[0])
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "rewritten  {}  (+1 -2 messages)",
            rel(&h.sessions[1])
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "vanished   {}  ({gone_lines} messages)",
            rel(&h.sessions[2])
        )),
        "{t}"
    );
    assert!(t.contains("not stored"), "{t}");
    // status writes nothing
    assert_eq!(
        env.ok(&["--json", "log"]).json().as_array().unwrap().len(),
        1
    );
}

#[test]
fn log_filters_and_orders_newest_first() {
    let env = Env::new();
    write(&env.home.join("settings.json"), "{}");
    let mut ids = Vec::new();
    let specs = [
        ("manual", "alpha"),
        ("auto", "alpha"),
        ("scheduled", "beta"),
        ("auto", "beta"),
        ("manual", "alpha"),
    ];
    for (i, (kind, host)) in specs.iter().enumerate() {
        append_or_create(&env.home.join("history.jsonl"), format!("{{\"n\":{i}}}\n"));
        let o = run(env.cmd().env("SAGE_HOST", host).args([
            "commit",
            "--kind",
            kind,
            "-m",
            &format!("msg {i}"),
        ]));
        assert_eq!(o.code, Some(0), "{o:?}");
        ids.push(env.head());
    }
    let all = env.ok(&["--json", "log"]).json();
    let got: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = ids.iter().rev().map(|s| s.as_str()).collect();
    assert_eq!(got, want);
    let first = &all[0];
    assert_eq!(first["kind"], "manual");
    assert_eq!(first["host"], "alpha");
    assert_eq!(first["message"], "msg 4");
    assert_eq!(first["parents"][0].as_str().unwrap(), ids[3]);
    assert_eq!(first["messages"], 5);

    let n2 = env.ok(&["--json", "log", "-n", "2"]).json();
    assert_eq!(n2.as_array().unwrap().len(), 2);
    let auto = env.ok(&["--json", "log", "--kind", "auto"]).json();
    let auto_ids: Vec<&str> = auto
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(auto_ids, vec![ids[3].as_str(), ids[1].as_str()]);
    let beta = env.ok(&["--json", "log", "--host", "beta"]).json();
    let beta_ids: Vec<&str> = beta
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(beta_ids, vec![ids[3].as_str(), ids[2].as_str()]);
    let none = env.ok(&["--json", "log", "--host", "nobody"]).json();
    assert!(none.as_array().unwrap().is_empty());

    let text = env.ok(&["log"]).text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with(&ids[4][..12]) && lines[0].ends_with("(HEAD)"),
        "{text}"
    );
    assert!(
        lines[0].contains("alpha") && lines[0].contains("msg 4"),
        "{text}"
    );
    assert!(lines[4].starts_with(&ids[0][..12]), "{text}");
    // names: a unique prefix, HEAD~N
    let show = env.ok(&["--json", "show", &ids[2][..10]]).json();
    assert_eq!(show["id"].as_str().unwrap(), ids[2]);
    let show = env.ok(&["--json", "show", "HEAD~3"]).json();
    assert_eq!(show["id"].as_str().unwrap(), ids[1]);
}

fn append_or_create(p: &Path, s: String) {
    if p.exists() {
        append(p, s);
    } else {
        write(p, s);
    }
}

#[test]
fn show_names_parents_kind_host_and_changes() {
    let env = Env::new();
    let h = awkward_home(&env.home, 4);
    let first = env.commit("one");
    append(
        &h.sessions[0],
        "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"x\"}}\n",
    );
    fs::remove_file(&h.sessions[3]).unwrap();
    let second = env.commit("two");
    let t = env.ok(&["show", "HEAD"]).text();
    assert!(t.contains(&format!("snapshot {second}")), "{t}");
    assert!(t.contains(&format!("parent   {first}")), "{t}");
    assert!(t.contains("kind     manual"), "{t}");
    assert!(t.contains("host     testhost"), "{t}");
    assert!(t.contains("message  two"), "{t}");
    let rel0 = h.sessions[0]
        .strip_prefix(&env.home)
        .unwrap()
        .to_str()
        .unwrap();
    let rel3 = h.sessions[3]
        .strip_prefix(&env.home)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(t.contains(&format!("{rel0}  +1 messages")), "{t}");
    assert!(t.contains(&format!("{rel3}  session gone")), "{t}");
    let j = env.ok(&["--json", "show", &second]).json();
    assert_eq!(j["changes"].as_array().unwrap().len(), 2, "{j:#}");
    assert_eq!(j["compared_with"].as_str().unwrap(), first);
    let t = env.ok(&["show", &first]).text();
    assert!(t.contains("changes (first snapshot)"), "{t}");
}

/// `sage cat` of every stored file of a home gives the file's bytes (symlinks: the target).
fn cat_every_file(env: &Env) {
    let stored = stored_view(&read_tree(&env.home));
    assert!(stored.len() > 10);
    for (p, n) in &stored {
        let spec = format!("HEAD:{}", rel_str(p));
        match n {
            Node::File { bytes, .. } => {
                let got = env.cat(&spec);
                assert!(
                    got == *bytes,
                    "cat {spec}: {} bytes, want {}",
                    got.len(),
                    bytes.len()
                );
            }
            Node::Link(t) => assert_eq!(&env.cat(&spec), t, "cat {spec}"),
            Node::Dir => {}
        }
    }
}

#[test]
fn cat_of_every_file_of_an_awkward_home_equals_its_bytes() {
    let env = Env::new();
    let h = awkward_home(&env.home, 5);
    env.commit("awkward");
    cat_every_file(&env);
    // absolute paths inside the home work too
    let abs = format!("HEAD:{}", h.crlf.display());
    assert_eq!(env.cat(&abs), fs::read(&h.crlf).unwrap());
    // a path that is not in the snapshot is a usage error
    let o = env.run(&["cat", "HEAD:projects/nope.jsonl"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    // older snapshots keep their bytes
    let before = fs::read(&h.unterminated).unwrap();
    append(&h.unterminated, "ten\"}\n{\"more\":1}\n");
    env.commit("grown");
    assert_eq!(
        env.cat(&format!(
            "HEAD~1:{}",
            rel_str(h.unterminated.strip_prefix(&env.home).unwrap())
        )),
        before
    );
    assert_eq!(
        env.cat(&format!(
            "HEAD:{}",
            rel_str(h.unterminated.strip_prefix(&env.home).unwrap())
        )),
        fs::read(&h.unterminated).unwrap()
    );
}

#[test]
fn real_transcripts_round_trip_through_the_binary() {
    let env = Env::new();
    copy_real_transcripts(&env.home);
    write(&env.home.join("settings.json"), "{}");
    let id = env.commit("real");
    cat_every_file(&env);
    let dst = env.restore(&id, "restored");
    assert_same_tree(
        &stored_view(&read_tree(&env.home)),
        &stored_view(&read_tree(&dst)),
        "real transcripts restored",
    );
    // the store is compact on real transcripts
    let info = env.ok(&["--json", "info"]).json();
    let raw = info["home_bytes"].as_u64().unwrap();
    let disk = info["pack_bytes"].as_u64().unwrap();
    assert!(raw > 15 << 20, "{info:#}");
    assert!(disk * 4 < raw, "store {disk} B for {raw} B of transcripts");
}

#[test]
fn a_line_larger_than_the_chunk_threshold_round_trips() {
    let env = Env::new();
    let mut rng = Rng::new(9);
    let p = env.home.join("projects/-x/huge.jsonl");
    let mut text = session_text(&mut rng, "huge", 3).into_bytes();
    let mut big = b"{\"type\":\"user\",\"image\":\"".to_vec();
    while big.len() < (9 << 20) {
        big.extend_from_slice(rng.hex(64).as_bytes());
    }
    big.extend_from_slice(b"\"}\n");
    text.extend_from_slice(&big);
    text.extend_from_slice(session_text(&mut rng, "huge", 2).as_bytes());
    text.extend_from_slice(&big[..5 << 20]); // a large unterminated tail
    write(&p, &text);
    env.commit("huge");
    assert!(env.cat("HEAD:projects/-x/huge.jsonl") == text);
    let dst = env.restore("HEAD", "restored");
    assert!(fs::read(dst.join("projects/-x/huge.jsonl")).unwrap() == text);
    env.ok(&["verify", "--read-data"]);
}

#[test]
fn diff_shows_messages_gained_and_lost() {
    let env = Env::new();
    let h = awkward_home(&env.home, 6);
    env.commit("base");
    let rel0 = h.sessions[0]
        .strip_prefix(&env.home)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    append(
        &h.sessions[0],
        "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hello from the diff test\"},\"timestamp\":\"2026-03-01T10:00:00.000Z\"}\n",
    );
    let t = env.ok(&["diff"]).text();
    assert!(t.contains(&format!("{rel0}  (+1 messages")), "{t}");
    assert!(
        t.lines().any(|l| l.trim_start().starts_with("+ user")
            && l.contains("2026-03-01T10:00:00.000Z")
            && l.contains("hello from the diff test")),
        "{t}"
    );
    env.commit("grown");
    let t2 = env.ok(&["diff", "HEAD~1", "HEAD"]).text();
    assert!(t2.contains("hello from the diff test"), "{t2}");
    // the other way round the message is lost
    let t3 = env.ok(&["diff", "HEAD", "HEAD~1"]).text();
    assert!(
        t3.lines().any(|l| l.trim_start().starts_with("- user") && l.contains("hello from the diff test")),
        "{t3}"
    );
    let j = env.ok(&["--json", "diff", "HEAD~1", "HEAD"]).json();
    let ch = &j["changes"][0];
    assert_eq!(ch["path"].as_str().unwrap(), rel0);
    assert_eq!(ch["gained"][0]["role"], "user");
    assert_eq!(ch["gained"][0]["text"], "hello from the diff test");
    // a path filter
    let t4 = env
        .ok(&["diff", "HEAD~1", "HEAD", "--", "history.jsonl"])
        .text();
    assert!(t4.contains("no differences"), "{t4}");
    let t5 = env.ok(&["diff", "HEAD"]).text();
    assert!(t5.contains("no differences"), "{t5}");
}

#[test]
fn info_json_names_home_store_id_and_sizes() {
    let env = Env::new();
    awkward_home(&env.home, 7);
    let init = env.ok(&["--json", "init"]).json();
    env.commit("x");
    let v = env.ok(&["--json", "info"]).json();
    assert_eq!(v["store_id"], init["store_id"]);
    assert_eq!(v["own_home"], true);
    assert_eq!(
        Path::new(v["home"].as_str().unwrap()),
        env.home.canonicalize().unwrap()
    );
    assert_eq!(
        Path::new(v["store"].as_str().unwrap()),
        env.store.canonicalize().unwrap()
    );
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["snapshots"], 1);
    assert!(v["packs"].as_u64().unwrap() >= 1);
    assert!(v["pack_bytes"].as_u64().unwrap() > 0);
    assert!(v["objects"].as_u64().unwrap() > 0);
    assert_eq!(v["head"].as_str().unwrap(), env.head());
    let t = env.ok(&["info"]).text();
    assert!(t.contains(init["store_id"].as_str().unwrap()), "{t}");
}

#[test]
fn unknown_names_and_bad_arguments_exit_2() {
    let env = Env::new();
    awkward_home(&env.home, 8);
    env.commit("x");
    for args in [
        vec!["show", "deadbeefdeadbeef"],
        vec!["show", "zz"],
        vec!["show", "HEAD~5"],
        vec!["show", "HEAD^"],
        vec!["cat", "nosuch:settings.json"],
        vec!["cat", "settings.json"],
        vec!["checkout", "0123456789abcdef"],
        vec!["diff", "HEAD", "feedface"],
        vec!["frobnicate"],
        vec!["log", "-n", "many"],
        vec!["commit", "--kind", "bogus"],
        vec!["checkout"],
        vec!["--no-such-flag", "log"],
    ] {
        let o = env.run(&args);
        assert_eq!(o.code, Some(2), "sage {args:?}: {o:?}");
        assert!(!o.stderr.is_empty(), "sage {args:?} says nothing");
    }
    let o = env.run(&["show", "deadbeefdeadbeef"]);
    assert!(o.stderr.contains("sage log"), "{}", o.stderr);
    // help is not an error
    assert_eq!(env.run(&["--help"]).code, Some(0));
    // a missing store is an error that says what to do
    let o = run(env
        .bare()
        .arg("--home")
        .arg(&env.home)
        .arg("--store")
        .arg(env.root.path().join("nostore"))
        .arg("log"));
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("sage init"), "{}", o.stderr);
}

/// Run a sage command whose stdout is a pipe already closed for reading: its first write
/// fails with EPIPE, whatever the output's size.
fn run_into_closed_pipe(env: &Env, args: &[&str]) -> Out {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both fds were just created and are owned here.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(r);
    let o = env
        .cmd()
        .args(args)
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Out {
        code: o.status.code(),
        stdout: vec![],
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn a_broken_pipe_is_not_an_error() {
    let env = Env::new();
    let h = awkward_home(&env.home, 9);
    for i in 0..12 {
        append(&h.sessions[0], format!("{{\"n\":{i}}}\n"));
        env.ok(&["-q", "commit", "-m", &format!("c{i}")]);
    }
    for args in [
        vec!["log"],
        vec!["show", "HEAD"],
        vec!["diff", "HEAD~5", "HEAD"],
        vec!["status"],
        vec!["info"],
        vec!["ops"],
        vec!["cat", "HEAD:history.jsonl"],
    ] {
        let o = run_into_closed_pipe(&env, &args);
        assert_eq!(o.code, Some(0), "sage {args:?} into a closed pipe: {o:?}");
        assert_eq!(o.stderr, "", "sage {args:?} into a closed pipe");
    }
    // the literal shell pipelines; the 900 KB file cannot fit a pipe's buffer
    let rel = h
        .big_tool_result
        .strip_prefix(&env.home)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for pipeline in [
        "\"$SAGE\" --home \"$H\" --store \"$S\" log | head -1 >/dev/null".to_string(),
        format!("\"$SAGE\" --home \"$H\" --store \"$S\" cat 'HEAD:{rel}' | head -c 10 >/dev/null"),
    ] {
        let o = run(std::process::Command::new("bash")
            .env("SAGE", sage_bin())
            .env("H", &env.home)
            .env("S", &env.store)
            .env("HOME", &env.fake_home)
            .env("XDG_DATA_HOME", &env.xdg)
            .arg("-c")
            .arg(format!("{pipeline}; exit ${{PIPESTATUS[0]}}")));
        assert_eq!(o.code, Some(0), "{pipeline}: {o:?}");
        assert_eq!(o.stderr, "", "{pipeline}");
    }
}

#[test]
fn a_broken_pipe_is_not_an_error_for_json_listings() {
    let env = Env::new();
    let h = awkward_home(&env.home, 10);
    for i in 0..3 {
        append(&h.sessions[0], format!("{{\"n\":{i}}}\n"));
        env.ok(&["-q", "commit"]);
    }
    for args in [
        vec!["--json", "log"],
        vec!["--json", "show", "HEAD"],
        vec!["--json", "status"],
        vec!["--json", "info"],
        vec!["--json", "diff", "HEAD~2", "HEAD"],
        vec!["--json", "verify"],
    ] {
        let o = run_into_closed_pipe(&env, &args);
        assert_eq!(o.code, Some(0), "sage {args:?} into a closed pipe: {o:?}");
        assert_eq!(o.stderr, "", "sage {args:?} into a closed pipe");
    }
}

/// Every byte of every block of every pack, decompressed.
fn all_pack_bytes(store: &Path) -> Vec<Vec<u8>> {
    let objects = sage::store::ObjectStore::open(store).unwrap();
    assert!(objects.broken.is_empty());
    let mut out = Vec::new();
    for p in objects.packs() {
        for b in 0..p.block_count() {
            out.push(p.read_block(b as u32).unwrap());
        }
    }
    assert!(!out.is_empty());
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn credentials_and_claude_json_never_enter_the_store() {
    let env = Env::new();
    let h = awkward_home(&env.home, 11);
    // even a .sageignore that tries to re-include them does not store them
    write(
        &env.home.join(".sageignore"),
        "!.credentials.json\n!.claude.json\n",
    );
    env.commit("one");
    append(&h.sessions[0], "{\"n\":1}\n");
    write(
        &env.home.join(".credentials.json"),
        format!("{{\"rotated\":\"{SECRET_CREDENTIALS}-2\"}}"),
    );
    env.commit("two");
    for block in all_pack_bytes(&env.store) {
        assert!(
            !contains(&block, SECRET_CREDENTIALS),
            "credentials in a pack"
        );
        assert!(
            !contains(&block, SECRET_CLAUDE_JSON),
            ".claude.json in a pack"
        );
    }
    for raw in [".credentials.json", ".claude.json"] {
        assert_eq!(env.run(&["cat", &format!("HEAD:{raw}")]).code, Some(2));
        assert_eq!(env.run(&["cat", &format!("HEAD~1:{raw}")]).code, Some(2));
    }
    // the sqlite database does not hold them either
    for f in fs::read_dir(&env.store).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            let b = fs::read(f.path()).unwrap();
            assert!(!contains(&b, SECRET_CREDENTIALS), "{}", f.path().display());
            assert!(!contains(&b, SECRET_CLAUDE_JSON), "{}", f.path().display());
        }
    }
    for snap in ["HEAD", "HEAD~1"] {
        let dst = env.restore(snap, &format!("restored-{}", snap.replace('~', "-")));
        assert!(!dst.join(".credentials.json").exists());
        assert!(!dst.join(".claude.json").exists());
        for (p, n) in read_tree(&dst) {
            if let Node::File { bytes, .. } = n {
                assert!(!contains(&bytes, SECRET_CREDENTIALS), "{}", p.display());
                assert!(!contains(&bytes, SECRET_CLAUDE_JSON), "{}", p.display());
            }
        }
        // machine-local caches were not stored either
        for cache in [
            "statsig",
            "shell-snapshots",
            "session-env",
            "debug",
            "cache",
            "ide",
            "sessions",
            "stats-cache.json",
            ".last-cleanup",
            "todos/state.lock",
            "projects/-home-x-my-app/sessions-index.json",
            "projects/claude-code-log-cache.db",
        ] {
            assert!(!dst.join(cache).exists(), "{cache} was stored");
        }
    }
}

#[test]
fn sageignore_adds_exclusions_and_status_names_them() {
    let env = Env::new();
    awkward_home(&env.home, 12);
    write(&env.home.join(".sageignore"), "plans/\n*.tmp\n");
    write(&env.home.join("projects/-x/scratch.tmp"), "tmp");
    env.commit("x");
    assert_eq!(env.run(&["cat", "HEAD:plans/a-plan.md"]).code, Some(2));
    assert_eq!(
        env.run(&["cat", "HEAD:projects/-x/scratch.tmp"]).code,
        Some(2)
    );
    assert_eq!(env.cat("HEAD:.sageignore"), b"plans/\n*.tmp\n");
    let v = env.ok(&["--json", "status"]).json();
    let skipped = v["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["path"] == "plans" && s["reason"] == ".sageignore"),
        "{v:#}"
    );
}

#[test]
fn a_non_utf8_file_name_is_reported_and_skipped() {
    let env = Env::new();
    awkward_home(&env.home, 13);
    let dir = env.home.join("projects/-home-x-my-app");
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9-latin1.jsonl"));
    fs::write(&bad, "{\"n\":1}\n").unwrap();
    let out = env.ok(&["commit"]);
    let t = out.text();
    assert!(
        t.lines()
            .any(|l| l.contains("skipped") && l.contains("caf") && l.contains("UTF-8")),
        "{t}"
    );
    let st = env.ok(&["status"]).text();
    assert!(
        st.lines().any(|l| l.contains("caf") && l.contains("UTF-8")),
        "{st}"
    );
    let v = env.ok(&["--json", "status"]).json();
    assert!(v["skipped"].as_array().unwrap().iter().any(|s| s["path"]
        .as_str()
        .unwrap()
        .contains("caf")
        && s["reason"].as_str().unwrap().contains("UTF-8")));
    let dst = env.restore("HEAD", "restored");
    assert!(fs::read_dir(dst.join("projects/-home-x-my-app"))
        .unwrap()
        .all(|e| e.unwrap().file_name().to_str().is_some()));
    // a non-UTF-8 directory name too
    let bad_dir = env
        .home
        .join(std::ffi::OsStr::from_bytes(b"plans/\xff\xfe"));
    fs::create_dir_all(&bad_dir).unwrap();
    fs::write(bad_dir.join("x.md"), "x").unwrap();
    let t = env.ok(&["commit"]).text();
    assert!(
        t.lines()
            .any(|l| l.contains("skipped") && l.contains("plans/")),
        "{t}"
    );
}

#[test]
fn symlinks_are_stored_as_links_and_modes_and_empty_dirs_restored() {
    let env = Env::new();
    let h = awkward_home(&env.home, 14);
    // the link to a directory points at real content that must not be followed
    let target_dir = env.root.path().join("dotfiles/claude-commands");
    write(&target_dir.join("review.md"), "NOT-IN-THE-HOME");
    // and a link to a file outside the home holding a secret
    let outside = env.root.path().join("outside-secret.txt");
    write(&outside, "OUTSIDE-SECRET");
    std::os::unix::fs::symlink(&outside, env.home.join("settings.local.json")).unwrap();
    env.commit("links");
    assert_eq!(env.cat("HEAD:commands"), h.link_target.as_bytes());
    assert_eq!(env.run(&["cat", "HEAD:commands/review.md"]).code, Some(2));
    assert_eq!(
        env.cat("HEAD:settings.local.json"),
        outside.as_os_str().as_bytes()
    );
    for block in all_pack_bytes(&env.store) {
        assert!(!contains(&block, "NOT-IN-THE-HOME"));
        assert!(!contains(&block, "OUTSIDE-SECRET"));
    }
    let dst = env.restore("HEAD", "restored");
    let got = read_tree(&dst);
    assert_eq!(
        got[Path::new("commands")],
        Node::Link(h.link_target.as_bytes().to_vec())
    );
    let dangling_rel = h.dangling.strip_prefix(&env.home).unwrap();
    assert_eq!(
        got[dangling_rel],
        Node::Link(b"/nonexistent/sage-test/gone.md".to_vec())
    );
    let exec_rel = h.exec_file.strip_prefix(&env.home).unwrap();
    assert!(matches!(got[exec_rel], Node::File { exec: true, .. }));
    assert!(matches!(
        got[Path::new("settings.json")],
        Node::File { exec: false, .. }
    ));
    assert_eq!(got[h.empty_dir.strip_prefix(&env.home).unwrap()], Node::Dir);
    assert_eq!(
        fs::read_dir(dst.join(h.empty_dir.strip_prefix(&env.home).unwrap()))
            .unwrap()
            .count(),
        0
    );
    assert!(got.contains_key(h.unicode.strip_prefix(&env.home).unwrap()));
    assert_same_tree(
        &stored_view(&read_tree(&env.home)),
        &stored_view(&got),
        "restored awkward home",
    );
    // the link target outside the home was never touched
    assert_eq!(
        fs::read(target_dir.join("review.md")).unwrap(),
        b"NOT-IN-THE-HOME"
    );
}

#[test]
fn the_default_store_is_outside_the_home() {
    let env = Env::new();
    // 1. --home given, XDG_DATA_HOME set
    awkward_home(&env.home, 15);
    let v = run(env
        .bare()
        .arg("--home")
        .arg(&env.home)
        .args(["--json", "init"]))
    .json();
    let store = PathBuf::from(v["store"].as_str().unwrap());
    assert!(
        store.starts_with(env.xdg.canonicalize().unwrap()),
        "{}",
        store.display()
    );
    assert!(!store.starts_with(env.home.canonicalize().unwrap()));
    let o = run(env.bare().arg("--home").arg(&env.home).args(["commit"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(store.join("sage.db").exists());
    // 2. the default home ($HOME/.claude), no XDG_DATA_HOME: ~/.local/share/sage
    let claude = env.fake_home.join(".claude");
    awkward_home(&claude, 16);
    let v = run(env
        .bare()
        .env_remove("XDG_DATA_HOME")
        .args(["--json", "init"]))
    .json();
    let store2 = PathBuf::from(v["store"].as_str().unwrap());
    let fake = env.fake_home.canonicalize().unwrap();
    assert_eq!(
        PathBuf::from(v["home"].as_str().unwrap()),
        fake.join(".claude")
    );
    assert!(
        store2.starts_with(fake.join(".local/share/sage")),
        "{}",
        store2.display()
    );
    assert!(!store2.starts_with(fake.join(".claude")));
    // 3. CLAUDE_CONFIG_DIR names the home
    let other = env.dir("config-dir");
    awkward_home(&other, 17);
    let v = run(env
        .bare()
        .env("CLAUDE_CONFIG_DIR", &other)
        .args(["--json", "init"]))
    .json();
    assert_eq!(
        PathBuf::from(v["home"].as_str().unwrap()),
        other.canonicalize().unwrap()
    );
    let store3 = PathBuf::from(v["store"].as_str().unwrap());
    assert!(!store3.starts_with(other.canonicalize().unwrap()));
    assert_ne!(store3, store);
    // the same home reached by another spelling finds the same store
    let link = env.root.path().join("home-link");
    std::os::unix::fs::symlink(&env.home, &link).unwrap();
    let v = run(env.bare().arg("--home").arg(&link).args(["--json", "init"])).json();
    assert_eq!(v["created"], false);
    assert_eq!(PathBuf::from(v["store"].as_str().unwrap()), store);
}

#[test]
fn a_store_inside_a_home_is_never_snapshotted() {
    let env = Env::new();
    awkward_home(&env.home, 18);
    let inner = env.home.join("system/sage-store");
    let o = run(env
        .bare()
        .arg("--home")
        .arg(&env.home)
        .arg("--store")
        .arg(&inner)
        .args(["commit"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stderr.contains("inside the home"), "{}", o.stderr);
    // commit again after the store grew: nothing of the store is in the snapshot
    write(&env.home.join("settings.json"), "{\"x\":2}");
    let o = run(env
        .bare()
        .arg("--home")
        .arg(&env.home)
        .arg("--store")
        .arg(&inner)
        .args(["--json", "status"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    let v = o.json();
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["path"].as_str().unwrap().starts_with("system")),
        "{v:#}"
    );
    assert!(
        v["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["path"] == "system/sage-store"),
        "{v:#}"
    );
}

#[test]
fn a_generated_home_round_trips_file_by_file() {
    use sage::testgen::{append_to_sessions, generate_home, GenOptions};
    let env = Env::new();
    let report = generate_home(&env.home, &GenOptions::small(7)).unwrap();
    assert!(report.sessions >= 10);
    age_files(&env.home); // else every file is "racily clean" and read again next time
    env.commit("generated");
    cat_every_file(&env);
    let dst = env.restore("HEAD", "restored");
    assert_same_tree(
        &stored_view(&read_tree(&env.home)),
        &stored_view(&read_tree(&dst)),
        "generated home restored",
    );
    for block in all_pack_bytes(&env.store) {
        assert!(
            !contains(&block, SECRET_CREDENTIALS),
            "credentials in a pack"
        );
        assert!(
            !contains(&block, SECRET_CLAUDE_JSON),
            ".claude.json in a pack"
        );
    }
    for (p, n) in read_tree(&dst) {
        if let Node::File { bytes, .. } = n {
            assert!(!contains(&bytes, SECRET_CREDENTIALS), "{}", p.display());
            assert!(!contains(&bytes, SECRET_CLAUDE_JSON), "{}", p.display());
        }
    }
    // sessions grown by complete lines: status and diff say which and by how much
    append_to_sessions(&env.home, &report, 5, 3, 77).unwrap();
    let v = env.ok(&["--json", "status"]).json();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 5, "{v:#}");
    for c in changes {
        assert_eq!(c["state"], "grown", "{c:#}");
        assert_eq!(c["messages_gained"], 3, "{c:#}");
        assert!(report.session_paths.iter().any(|p| c["path"] == p.as_str()));
    }
    let out = env.ok(&["--json", "commit", "-m", "grown"]).json();
    assert_eq!(out["created"], true);
    // only the grown sessions are read (and symlinks, whose mtimes age_files left recent)
    let links = read_tree(&env.home)
        .values()
        .filter(|n| matches!(n, Node::Link(_)))
        .count() as u64;
    let hashed = out["hashed_files"].as_u64().unwrap();
    assert!((5..=5 + links).contains(&hashed), "{out:#}");
    assert!(
        out["hashed_bytes"].as_u64().unwrap() < report.bytes / 10,
        "{out:#}"
    );
    let d = env.ok(&["--json", "diff", "HEAD~1", "HEAD"]).json();
    let ch = d["changes"].as_array().unwrap();
    assert_eq!(ch.len(), 5, "{d:#}");
    for c in ch {
        assert_eq!(c["gained"].as_array().unwrap().len(), 3, "{c:#}");
        assert!(c["lost"].as_array().unwrap().is_empty());
    }
    cat_every_file(&env);
}

#[test]
fn an_incremental_commit_notices_a_rewritten_tail_and_racy_edits() {
    let env = Env::new();
    let mut rng = Rng::new(61);
    let rel = "projects/-x/s.jsonl";
    let p = env.home.join(rel);
    write(&p, session_text(&mut rng, "s", 400));
    age_files(&env.home);
    env.commit("one");
    // Claude Code truncates a failed streaming attempt and grows the file past its old size
    let text = fs::read(&p).unwrap();
    let cut = text[..text.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let mut rewritten = text[..cut].to_vec();
    rewritten.extend_from_slice(session_text(&mut rng, "retry", 3).as_bytes());
    assert!(rewritten.len() > text.len());
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    append(&p, &rewritten);
    env.commit("rewritten tail");
    assert!(env.cat(&format!("HEAD:{rel}")) == rewritten);
    let v = env.ok(&["--json", "show", "HEAD"]).json();
    assert_eq!(v["changes"][0]["lost_count"], 1, "{v:#}");
    // same-size edits right after a commit (within the file system's timestamp tick)
    for i in 0..5u8 {
        let mut b = fs::read(&p).unwrap();
        let n = b.len();
        b[n - 3] = b'0' + i;
        fs::write(&p, &b).unwrap();
        env.ok(&["commit"]);
        assert!(env.cat(&format!("HEAD:{rel}")) == b, "edit {i} missed");
        let s = env.ok(&["--json", "status"]).json();
        assert!(s["changes"].as_array().unwrap().is_empty(), "{s:#}");
    }
}
