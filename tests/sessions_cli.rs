//! The session-aware viewer through the real `sage` binary: `log --session`, `show
//! SNAP:SESSION`, `diff [-- SESSION]` and `checkout SNAP -- SESSION`, on real transcripts,
//! generated homes and hand-built forks; a sync merge seen through `diff HEAD~1 HEAD`.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

const REAL_ID: &str = "4d5611e5-241a-462a-8d15-5122611a9569";

/// One chained transcript line.
fn chained(
    session: &str,
    cwd: &str,
    uuid: &str,
    parent: Option<&str>,
    role: &str,
    ts: &str,
    text: &str,
) -> String {
    let parent = parent.map_or("null".to_string(), |p| format!("\"{p}\""));
    format!(
        "{{\"parentUuid\":{parent},\"isSidechain\":false,\"cwd\":\"{cwd}\",\"sessionId\":\"{session}\",\"type\":\"{role}\",\"message\":{{\"role\":\"{role}\",\"content\":\"{text}\"}},\"uuid\":\"{uuid}\",\"timestamp\":\"{ts}\"}}\n"
    )
}

/// A short conversation u1 -> a1 -> u2 -> a2 (and a metadata line).
fn conversation(session: &str, cwd: &str) -> String {
    let mut s = String::new();
    s.push_str(&chained(
        session,
        cwd,
        "u1",
        None,
        "user",
        "2026-03-01T10:00:00.000Z",
        "fix the build",
    ));
    s.push_str(&chained(
        session,
        cwd,
        "a1",
        Some("u1"),
        "assistant",
        "2026-03-01T10:00:05.000Z",
        "looking at it",
    ));
    s.push_str("{\"type\":\"last-prompt\",\"lastPrompt\":\"fix the build\"}\n");
    s.push_str(&chained(
        session,
        cwd,
        "u2",
        Some("a1"),
        "user",
        "2026-03-01T10:01:00.000Z",
        "and the tests",
    ));
    s.push_str(&chained(
        session,
        cwd,
        "a2",
        Some("u2"),
        "assistant",
        "2026-03-01T10:01:09.000Z",
        "all green",
    ));
    s
}

fn rows_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn show_reads_a_real_transcript_as_a_conversation() {
    let env = Env::new();
    let dir = copy_real_transcripts(&env.home);
    env.commit("real");
    let t = env.ok(&["show", &format!("HEAD:{}", &REAL_ID[..6])]).text();
    assert!(t.starts_with(&format!("session  {REAL_ID}")), "{t}");
    assert!(
        t.contains(&format!("projects/-home-x/{REAL_ID}.jsonl  (1512 lines, ")),
        "{t}"
    );
    assert!(t.contains("fingerprint "), "{t}");
    // tool calls on one line, results by size, the resumed branch marked
    assert!(
        t.lines()
            .any(|l| l.contains("[tool Bash: bd show spotter-dov]")),
        "{t}"
    );
    assert!(
        t.lines()
            .any(|l| l.starts_with("  tool ") && l.contains("[tool result, ")),
        "{t}"
    );
    assert!(t.lines().any(|l| l.starts_with("* user ")), "{t}");
    assert!(t.contains("Conversation compacted"), "{t}");
    // progress and file-history-snapshot lines are not shown; no colour on a pipe
    assert!(!t.contains("hook_progress") && !t.contains("trackedFileBackups"));
    assert!(!t.contains('\x1b'), "escape codes on a pipe");
    // the same by full path (absolute too) and by id
    let by_path = env
        .ok(&["show", &format!("HEAD:projects/-home-x/{REAL_ID}.jsonl")])
        .text();
    assert_eq!(by_path, t);
    let abs = dir.join(format!("{REAL_ID}.jsonl"));
    assert_eq!(
        env.ok(&["show", &format!("HEAD:{}", abs.display())]).text(),
        t
    );
    assert_eq!(env.ok(&["show", &format!("HEAD:{REAL_ID}")]).text(), t);
    // its parts are named (subagents live in its directory)
    assert!(
        t.contains(&format!("part     projects/-home-x/{REAL_ID}  (2 files)")),
        "{t}"
    );

    // --json: rows with roles, times, resume marks and folded blocks
    let j = env
        .ok(&["--json", "show", &format!("HEAD:{REAL_ID}")])
        .json();
    assert_eq!(j["session"], REAL_ID);
    let tr = &j["transcripts"][0];
    assert_eq!(tr["lines"], 1512);
    assert_eq!(tr["fingerprint"].as_str().unwrap().len(), 16);
    let rows = tr["rows"].as_array().unwrap();
    assert!(rows.len() > 300, "{}", rows.len());
    assert!(rows.iter().any(|r| r["on_resume_path"] == true));
    assert!(rows.iter().any(|r| r["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["type"] == "tool_use")));
    assert_eq!(rows.iter().filter(|r| r["role"] == "progress").count(), 0);

    // a subagent transcript by path; the session names its subagents
    let sub = fs::read_dir(dir.join(REAL_ID).join("subagents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".jsonl"))
        .unwrap();
    assert!(
        t.contains(&format!(
            "subagent projects/-home-x/{REAL_ID}/subagents/{sub}  ("
        )),
        "{t}"
    );
    assert_eq!(j["subagents"].as_array().unwrap().len(), 2, "{j:#}");
    let s = env
        .ok(&[
            "show",
            &format!("HEAD:projects/-home-x/{REAL_ID}/subagents/{sub}"),
        ])
        .text();
    assert!(s.contains("transcript projects/-home-x/"), "{s}");

    // SNAP: lists the sessions; SNAP:DIR those under it
    let l = env.ok(&["--json", "show", "HEAD:"]).json();
    let all = l["sessions"].as_array().unwrap();
    assert_eq!(all.len(), 8, "{l:#}");
    assert!(all.iter().any(|s| s["id"] == REAL_ID && s["lines"] == 1512));
    let t = env.ok(&["show", "HEAD:projects/-home-x"]).text();
    assert!(t.starts_with("8 sessions in snapshot"), "{t}");
}

/// Run `sage ARGS` under `script`, so that stdout is a terminal.
fn on_a_tty(env: &Env, args: &str, no_color: bool) -> String {
    let cmdline = format!(
        "'{}' --home '{}' --store '{}' {args}",
        sage_bin(),
        env.home.display(),
        env.store.display()
    );
    let mut c = std::process::Command::new("script");
    c.env("HOME", &env.fake_home)
        .env("XDG_DATA_HOME", &env.xdg)
        .env_remove("NO_COLOR")
        .args(["-qec", &cmdline, "/dev/null"]);
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let o = run(&mut c);
    assert_eq!(o.code, Some(0), "{o:?}");
    o.text()
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let env = Env::new();
    write(
        &env.home.join("projects/-p/s1.jsonl"),
        conversation("s1", "/p"),
    );
    env.commit("one");
    let coloured = on_a_tty(&env, "show HEAD:s1", false);
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    assert!(coloured.contains("all green"));
    let plain = on_a_tty(&env, "show HEAD:s1", true);
    assert!(!plain.contains("\x1b["), "{plain:?}");
    assert!(plain.contains("all green"));
}

#[test]
fn a_fork_marks_the_branch_claude_would_resume() {
    let env = Env::new();
    let p = env.home.join("projects/-p/forked.jsonl");
    let mut s = conversation("forked", "/p");
    // a rewind: a second continuation of a1, newer than the first one's leaf
    s.push_str(&chained(
        "forked",
        "/p",
        "u3",
        Some("a1"),
        "user",
        "2026-03-01T11:00:00.000Z",
        "no, do it differently",
    ));
    s.push_str(&chained(
        "forked",
        "/p",
        "a3",
        Some("u3"),
        "assistant",
        "2026-03-01T11:00:04.000Z",
        "done differently",
    ));
    write(&p, &s);
    env.commit("fork");
    let t = env.ok(&["show", "HEAD:forked"]).text();
    assert!(t.contains("which forks once"), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    assert_eq!(lines[at("and the tests") - 1], "-- branch 1/2 --", "{t}");
    assert_eq!(
        lines[at("no, do it differently") - 1],
        "-- branch 2/2 (resumed) --",
        "{t}"
    );
    for resumed in [
        "fix the build",
        "looking at it",
        "no, do it differently",
        "done differently",
    ] {
        assert!(lines[at(resumed)].starts_with("* "), "{resumed}: {t}");
    }
    for old in ["and the tests", "all green"] {
        assert!(lines[at(old)].starts_with("  "), "{old}: {t}");
    }
    let j = env.ok(&["--json", "show", "HEAD:forked"]).json();
    let tr = &j["transcripts"][0];
    assert_eq!(tr["forks"], 1);
    assert_eq!(tr["resume_leaf"], "a3");
    let branch: Vec<_> = tr["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["branch"].is_null())
        .map(|r| (r["uuid"].clone(), r["branch"]["resumed"].clone()))
        .collect();
    assert_eq!(
        branch,
        vec![("u2".into(), false.into()), ("u3".into(), true.into())]
    );
}

#[test]
fn log_session_lists_the_snapshots_that_changed_it_with_fingerprints() {
    let env = Env::new();
    let id = "0a1b2c3d-0000-4000-8000-000000000001";
    let other = "0a1b9999-0000-4000-8000-000000000002";
    let p = env.home.join(format!("projects/-p/{id}.jsonl"));
    write(&p, conversation(id, "/p"));
    write(
        &env.home.join(format!("projects/-q/{other}.jsonl")),
        conversation(other, "/q").replace("fix the build", "something else"),
    );
    let first = env.commit("one");
    // another session changes: not in this session's log
    append(
        &env.home.join(format!("projects/-q/{other}.jsonl")),
        chained(
            other,
            "/q",
            "x",
            Some("a2"),
            "user",
            "2026-03-02T00:00:00.000Z",
            "more",
        ),
    );
    env.commit("other");
    // metadata only: a change, but not of the fingerprint
    append(&p, "{\"type\":\"custom-title\",\"title\":\"build\"}\n");
    let meta = env.commit("title");
    // a message, and a part (file-history) in the next
    append(
        &p,
        chained(
            id,
            "/p",
            "u5",
            Some("a2"),
            "user",
            "2026-03-01T12:00:00.000Z",
            "thanks",
        ),
    );
    let grown = env.commit("grown");
    write(
        &env.home.join(format!("file-history/{id}/abc@v1")),
        "backup",
    );
    let part = env.commit("backup");

    let j = env.ok(&["--json", "log", "--session", &id[..8]]).json();
    assert_eq!(j["session"]["id"], id);
    let ch = j["changes"].as_array().unwrap();
    let snaps: Vec<&str> = ch.iter().map(|c| c["snapshot"].as_str().unwrap()).collect();
    assert_eq!(
        snaps,
        vec![part.as_str(), grown.as_str(), meta.as_str(), first.as_str()]
    );
    let msgs: Vec<u64> = ch.iter().map(|c| c["messages"].as_u64().unwrap()).collect();
    assert_eq!(msgs, vec![5, 5, 4, 4]);
    let fp: Vec<&str> = ch
        .iter()
        .map(|c| c["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fp[0], fp[1]);
    assert_ne!(fp[1], fp[2], "a message changes the fingerprint");
    assert_eq!(fp[2], fp[3], "a metadata line does not");
    assert_eq!(ch[3]["change"], "added");
    assert_eq!(ch[1]["messages_delta"], 1);
    assert_eq!(ch[0]["parts"], 2);

    let t = env.ok(&["log", "--session", id]).text();
    assert!(
        t.starts_with(&format!("session {id}  projects/-p/{id}.jsonl")),
        "{t}"
    );
    assert_eq!(t.lines().count(), 5, "{t}");
    assert!(
        t.contains(fp[0]) && t.contains(" grown") && !t.contains(" other"),
        "{t}"
    );
    // by path, with -n
    let t = env
        .ok(&[
            "log",
            "-n",
            "1",
            "--session",
            &format!("projects/-p/{id}.jsonl"),
        ])
        .text();
    assert_eq!(t.lines().count(), 2, "{t}");
    // an ambiguous prefix names the candidates; an unknown one says how to list sessions
    let o = env.run(&["log", "--session", "0a1b"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(
        o.stderr.contains(id) && o.stderr.contains(other),
        "{}",
        o.stderr
    );
    let o = env.run(&["log", "--session", "feedbeef"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.stderr.contains("sage show HEAD:"), "{}", o.stderr);

    // Claude's cleanup deletes the transcript (its file-history stays): the log still
    // follows it, found in older snapshots, and says when it went
    fs::remove_file(&p).unwrap();
    let gone = env.commit("cleanup");
    let j = env.ok(&["--json", "log", "--session", &id[..8]]).json();
    assert_eq!(
        j["session"]["transcripts"][0],
        format!("projects/-p/{id}.jsonl")
    );
    let ch = j["changes"].as_array().unwrap();
    assert_eq!(ch.len(), 5, "{j:#}");
    assert_eq!(ch[0]["snapshot"], gone.as_str());
    assert_eq!(ch[0]["change"], "changed");
    assert_eq!(ch[0]["messages"], 0);
    fs::remove_dir_all(env.home.join("file-history")).unwrap();
    env.commit("cleanup 2");
    let j = env.ok(&["--json", "log", "--session", id]).json();
    assert_eq!(j["changes"][0]["change"], "removed", "{j:#}");
    assert_eq!(j["changes"].as_array().unwrap().len(), 6, "{j:#}");
    // and show reads it in the snapshot that has it
    let t = env.ok(&["show", &format!("{grown}:{}", &id[..8])]).text();
    assert!(t.contains("thanks"), "{t}");
}

#[test]
fn a_forked_copy_has_the_same_fingerprint() {
    let env = Env::new();
    let a = "aaaaaaaa-0000-4000-8000-000000000001";
    let b = "bbbbbbbb-0000-4000-8000-000000000002";
    write(
        &env.home.join(format!("projects/-home-me-app/{a}.jsonl")),
        conversation(a, "/home/me/app"),
    );
    // --fork-session: the same lines, re-stamped sessionId and cwd, in another directory,
    // with other metadata
    let mut copy =
        String::from("{\"type\":\"summary\",\"summary\":\"Build fix\",\"leafUuid\":\"a2\"}\n");
    copy.push_str(&conversation(b, "/srv/app").replace(
        "{\"type\":\"last-prompt\",\"lastPrompt\":\"fix the build\"}\n",
        "",
    ));
    write(&env.home.join(format!("projects/-srv-app/{b}.jsonl")), copy);
    env.commit("two copies");
    let fa = env.ok(&["--json", "show", &format!("HEAD:{a}")]).json()["transcripts"][0]
        ["fingerprint"]
        .clone();
    let fb = env.ok(&["--json", "show", &format!("HEAD:{b}")]).json()["transcripts"][0]
        ["fingerprint"]
        .clone();
    assert_eq!(fa, fb);
    let j = env.ok(&["--json", "log", "--session", "aaaa"]).json();
    assert_eq!(
        j["same_conversation"],
        serde_json::json!([format!("projects/-srv-app/{b}.jsonl")])
    );
    let t = env.ok(&["log", "--session", "aaaa"]).text();
    assert!(
        t.contains(&format!(
            "same conversation (same fingerprint) also in: projects/-srv-app/{b}.jsonl"
        )),
        "{t}"
    );
}

#[test]
fn generated_homes_show_and_log_every_session() {
    use sage::testgen::{append_to_sessions, generate_home, GenOptions};
    let env = Env::new();
    let report = generate_home(&env.home, &GenOptions::small(17)).unwrap();
    env.commit("gen");
    // every transcript, damaged ones included, renders in text and JSON
    let list = env.ok(&["--json", "show", "HEAD:"]).json();
    let sessions = list["sessions"].as_array().unwrap();
    assert!(sessions.len() >= report.sessions, "{}", sessions.len());
    for s in sessions {
        let spec = format!("HEAD:{}", s["path"].as_str().unwrap());
        env.ok(&["show", &spec]);
        env.ok(&["--json", "show", &spec]);
    }
    append_to_sessions(&env.home, &report, 4, 3, 5).unwrap();
    // the home against HEAD, per session
    let d = env.ok(&["--json", "diff"]).json();
    let grown = d["sessions"].as_array().unwrap();
    assert_eq!(grown.len(), 4, "{d:#}");
    for s in grown {
        assert_eq!(s["gained_messages"], 3, "{s:#}");
        assert!(
            s["summary"].as_str().unwrap().starts_with("+3 messages, "),
            "{s:#}"
        );
    }
    let t = env.ok(&["diff"]).text();
    assert!(
        t.starts_with(&format!("{} -> home", &env.head()[..12])),
        "{t}"
    );
    assert_eq!(rows_with(&t, "(+3 messages, ").len(), 4, "{t}");
    env.commit("grown");
    for s in grown {
        let id = s["id"].as_str().unwrap();
        let j = env.ok(&["--json", "log", "--session", id]).json();
        let ch = j["changes"].as_array().unwrap();
        assert_eq!(ch.len(), 2, "{j:#}");
        assert_eq!(ch[0]["messages_delta"], 3, "{j:#}");
        // diff -- SESSION: only that session
        let d = env
            .ok(&["--json", "diff", "HEAD~1", "HEAD", "--", id])
            .json();
        assert_eq!(d["sessions"].as_array().unwrap().len(), 1, "{d:#}");
        assert_eq!(d["sessions"][0]["id"], id);
    }
}

/// A session with every kind of part.
fn session_with_parts(home: &Path, id: &str) -> Vec<PathBuf> {
    let dir = home.join("projects/-home-me-app");
    let parts = vec![
        dir.join(format!("{id}.jsonl")),
        dir.join(format!("{id}/subagents/agent-a1.jsonl")),
        dir.join(format!("{id}/tool-results/toolu_1.txt")),
        home.join(format!("file-history/{id}/f00d@v1")),
        home.join(format!("todos/{id}-agent-{id}.json")),
    ];
    write(&parts[0], conversation(id, "/home/me/app"));
    write(&parts[1], conversation("agent", "/home/me/app"));
    write(&parts[2], "tool output\n");
    write(&parts[3], "backup v1\n");
    write(&parts[4], "[]");
    parts
}

#[test]
fn checkout_of_a_session_rolls_back_all_its_parts_and_nothing_else() {
    let env = Env::new();
    let id = "5e551000-aaaa-4bbb-8ccc-000000000001";
    let other = "07e40000-aaaa-4bbb-8ccc-000000000002";
    let parts = session_with_parts(&env.home, id);
    let others = session_with_parts(&env.home, other);
    write(&env.home.join("history.jsonl"), "{\"display\":\"x\"}\n");
    let a = env.commit("A");
    let want: Vec<Vec<u8>> = parts.iter().map(|p| fs::read(p).unwrap()).collect();
    // every part changes, a new tool result appears, and so does the other session
    append(
        &parts[0],
        chained(
            id,
            "/home/me/app",
            "u9",
            Some("a2"),
            "user",
            "2026-03-02T00:00:00.000Z",
            "later",
        ),
    );
    append(&parts[1], "{\"type\":\"progress\"}\n");
    write(&parts[2], "changed\n");
    write(&parts[3], "backup v2\n");
    write(&parts[4], "[{\"content\":\"todo\"}]");
    let extra = env.home.join(format!(
        "projects/-home-me-app/{id}/tool-results/toolu_2.txt"
    ));
    write(&extra, "new\n");
    for p in &others {
        append(p, "x\n");
    }
    append(&env.home.join("history.jsonl"), "{\"display\":\"y\"}\n");
    env.commit("B");
    let untouched: Vec<Vec<u8>> = others.iter().map(|p| fs::read(p).unwrap()).collect();

    // the plan names the session's parts
    let plan = env
        .ok(&["--json", "checkout", &a, "--dry-run", "--", &id[..6]])
        .json();
    let impact = &plan["impact"];
    assert_eq!(
        impact["removed"],
        serde_json::json!([format!(
            "projects/-home-me-app/{id}/tool-results/toolu_2.txt"
        )]),
        "{plan:#}"
    );
    let t = env
        .ok(&["checkout", &a, "--dry-run", "--", &id[..6]])
        .text();
    assert!(t.starts_with(&format!("session {id}: ")), "{t}");

    env.ok(&[
        "checkout",
        &a,
        "--i-understand-data-loss-risk",
        "--",
        &id[..6],
    ]);
    for (p, w) in parts.iter().zip(&want) {
        assert_eq!(&fs::read(p).unwrap(), w, "{}", p.display());
    }
    assert!(!extra.exists());
    for (p, w) in others.iter().zip(&untouched) {
        assert_eq!(&fs::read(p).unwrap(), w, "{} was touched", p.display());
    }
    assert!(fs::read_to_string(env.home.join("history.jsonl"))
        .unwrap()
        .contains("\"y\""));
    // undo brings the later state back
    env.ok(&["undo", "--i-understand-data-loss-risk"]);
    assert!(extra.exists());
    // a plain path still works beside a session
    env.ok(&[
        "checkout",
        &a,
        "--i-understand-data-loss-risk",
        "--",
        "history.jsonl",
        other,
    ]);
    assert!(!fs::read_to_string(env.home.join("history.jsonl"))
        .unwrap()
        .contains("\"y\""));
    assert_eq!(
        fs::read(&others[0]).unwrap(),
        conversation(other, "/home/me/app").into_bytes()
    );
}

#[test]
fn bad_session_arguments_are_usage_errors_that_say_what_to_do() {
    let env = Env::new();
    session_with_parts(&env.home, "abcd0001-aaaa-4bbb-8ccc-000000000001");
    session_with_parts(&env.home, "abcd0002-aaaa-4bbb-8ccc-000000000002");
    write(&env.home.join("settings.json"), "{}");
    env.commit("x");
    for (args, says) in [
        (vec!["show", "feedface:abcd0001"], "sage log"),
        (vec!["show", "HEAD:abcd"], "matches 2 sessions"),
        (vec!["show", "HEAD:zzzz"], "sage show HEAD:"),
        (
            vec!["show", "HEAD:projects/-nope/x.jsonl"],
            "is not in snapshot",
        ),
        (
            vec!["show", "HEAD:settings.json"],
            "sage cat HEAD:settings.json",
        ),
        (vec!["diff", "HEAD", "HEAD", "--", "abcd"], "abcd0002-aaaa"),
        (vec!["diff", "--", "nosuch"], "no session"),
        (
            vec!["checkout", "HEAD", "--dry-run", "--", "abcd"],
            "give more of the id",
        ),
        (
            vec!["log", "--session", "settings.json"],
            "not a session transcript",
        ),
        (vec!["log", "--session"], "SESSION"),
    ] {
        let o = env.run(&args);
        assert_eq!(o.code, Some(2), "sage {args:?}: {o:?}");
        assert!(
            o.stderr.contains(says),
            "sage {args:?}: want {says:?} in {}",
            o.stderr
        );
    }
    // a plain snapshot still shows the snapshot
    assert!(env.ok(&["show", "HEAD"]).text().starts_with("snapshot "));
}

#[test]
fn diff_after_a_sync_merge_shows_what_arrived_per_session() {
    let env = Env::new();
    let id = "c0ffee00-aaaa-4bbb-8ccc-000000000001";
    let rel = format!("projects/-home-me-app/{id}.jsonl");
    write(&env.home.join(&rel), conversation(id, "/home/me/app"));
    env.commit("base");
    let gpu = env.dir("gpu-home");
    let gpu_cmd = |args: &[&str]| {
        let o = run(env
            .bare()
            .env("SAGE_HOST", "gpu")
            .arg("--home")
            .arg(&gpu)
            .args(args));
        assert_eq!(o.code, Some(0), "gpu: sage {args:?}: {o:?}");
        o
    };
    env.ok(&["remote", "add", "gpu", gpu.to_str().unwrap()]);
    env.ok(&["push", "gpu"]);
    // both machines continue the conversation from a2; the gpu's reply is newer
    append(
        &gpu.join(&rel),
        chained(
            id,
            "/home/me/app",
            "g1",
            Some("a2"),
            "user",
            "2026-03-01T12:00:00.000Z",
            "from the gpu box",
        ),
    );
    gpu_cmd(&["commit", "-m", "gpu"]);
    append(
        &env.home.join(&rel),
        chained(
            id,
            "/home/me/app",
            "l1",
            Some("a2"),
            "user",
            "2026-03-01T11:00:00.000Z",
            "from the laptop",
        ),
    );
    env.commit("laptop");
    env.ok(&["sync", "gpu"]);
    let log = env.ok(&["--json", "log", "-n", "1"]).json();
    assert_eq!(log[0]["kind"], "merge", "{log:#}");

    let t = env.ok(&["diff", "HEAD~1", "HEAD"]).text();
    assert!(t.contains(&format!("{rel}  (+1 messages, ")), "{t}");
    assert!(
        rows_with(&t, "from the gpu box")[0]
            .trim_start()
            .starts_with("+ user"),
        "{t}"
    );
    assert!(!t.contains("from the laptop"), "{t}");
    let j = env
        .ok(&["--json", "diff", "HEAD~1", "HEAD", "--", &id[..8]])
        .json();
    assert_eq!(j["sessions"][0]["gained_messages"], 1, "{j:#}");
    // both continuations live in the file; the newer one is resumed
    let s = env.ok(&["show", &format!("HEAD:{}", &id[..8])]).text();
    assert!(s.contains("which forks once"), "{s}");
    assert!(
        rows_with(&s, "from the gpu box")[0].starts_with("* "),
        "{s}"
    );
    assert!(rows_with(&s, "from the laptop")[0].starts_with("  "), "{s}");
    assert!(
        s.contains("-- branch 2/2 (resumed) --") || s.contains("-- branch 1/2 (resumed) --"),
        "{s}"
    );
    // the session's log shows the merge
    let l = env.ok(&["--json", "log", "--session", id]).json();
    assert_eq!(l["changes"][0]["kind"], "merge", "{l:#}");
    assert_eq!(l["changes"][0]["messages_delta"], 1, "{l:#}");
}

#[test]
fn a_closed_pipe_is_not_an_error_for_the_viewer() {
    let env = Env::new();
    copy_real_transcripts(&env.home);
    env.commit("real");
    append(
        &env.home.join(format!("projects/-home-x/{REAL_ID}.jsonl")),
        "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"more\"}}\n",
    );
    env.commit("more");
    for args in [
        format!("show HEAD:{REAL_ID}"),
        format!("--json show HEAD:{REAL_ID}"),
        "show HEAD:".to_string(),
        format!("log --session {REAL_ID}"),
        format!("diff HEAD~1 HEAD -- {REAL_ID}"),
        "diff HEAD~1 HEAD".to_string(),
    ] {
        let pipeline = format!(
            "\"$SAGE\" --home \"$H\" --store \"$S\" {args} | head -1 >/dev/null; exit ${{PIPESTATUS[0]}}"
        );
        let o = run(std::process::Command::new("bash")
            .env("SAGE", sage_bin())
            .env("H", &env.home)
            .env("S", &env.store)
            .env("HOME", &env.fake_home)
            .env("XDG_DATA_HOME", &env.xdg)
            .arg("-c")
            .arg(&pipeline));
        assert_eq!(o.code, Some(0), "{args}: {o:?}");
        assert_eq!(o.stderr, "", "{args}");
    }
}
