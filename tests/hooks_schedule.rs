//! Claude Code hooks, backups, schedules and the restore test, through the real `sage` binary.
//! `settings.json` edits keep every other key and hook, are idempotent, snapshot first and refuse
//! what is not JSON; the hook command is harmless without sage, returns at once when the store
//! is locked and pushes in the background; `sage schedule` writes exactly the unit files or the
//! crontab line it says (tested with stand-in `systemctl` and `crontab`: CI has no systemd).

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An Env plus stand-ins for `crontab` and `systemctl`, and a private `$XDG_CONFIG_HOME`, so
/// that no test ever touches the real crontab or systemd.
struct World {
    env: Env,
    fakes: PathBuf,
    config: PathBuf,
}

impl World {
    fn new() -> World {
        let env = Env::new();
        let fakes = env.dir("fakes");
        let config = env.dir("config");
        write_script(
            &fakes.join("crontab"),
            &format!(
                "#!/bin/sh\nf={}/crontab.txt\nif [ \"$1\" = -l ]; then [ -f \"$f\" ] && exec cat \"$f\"; echo \"no crontab for tester\" >&2; exit 1; fi\ncat > \"$f\"\n",
                fakes.display()
            ),
        );
        write_script(
            &fakes.join("systemctl"),
            &format!(
                "#!/bin/sh\necho \"$*\" >> {0}/systemctl.log\n[ -f {0}/no-systemd ] && exit 1\nexit 0\n",
                fakes.display()
            ),
        );
        // Start without systemd (cron); tests that want systemd remove the flag.
        fs::write(fakes.join("no-systemd"), "").unwrap();
        World { env, fakes, config }
    }

    fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        self.care_env(&mut c);
        c
    }

    fn care_env(&self, c: &mut Command) {
        c.env("XDG_CONFIG_HOME", &self.config)
            .env("SAGE_CRONTAB", self.fakes.join("crontab"))
            .env("SAGE_SYSTEMCTL", self.fakes.join("systemctl"))
            .env_remove("SAGE_HOOK_WAIT");
    }

    fn run(&self, args: &[&str]) -> Out {
        run(self.cmd().args(args))
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.run(args);
        assert_eq!(
            o.code,
            Some(0),
            "sage {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            o.text(),
            o.stderr
        );
        o
    }

    fn settings(&self) -> PathBuf {
        self.env.home.join("settings.json")
    }

    fn snapshots(&self) -> Vec<serde_json::Value> {
        self.ok(&["--json", "log"])
            .json()
            .as_array()
            .unwrap()
            .clone()
    }

    fn crontab(&self) -> String {
        fs::read_to_string(self.fakes.join("crontab.txt")).unwrap_or_default()
    }

    fn systemctl_log(&self) -> String {
        fs::read_to_string(self.fakes.join("systemctl.log")).unwrap_or_default()
    }

    fn hook_log(&self) -> String {
        fs::read_to_string(self.env.store.join("hook.log")).unwrap_or_default()
    }
}

fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A small home with a session, and a store.
fn world_with_home() -> World {
    let w = World::new();
    let mut rng = Rng::new(7);
    write(
        &w.env
            .home
            .join("projects/-home-me-app/5b1c7a52-0d7e-4a8b-9a55-2f1d9e0c3b11.jsonl"),
        session_text(&mut rng, "5b1c7a52-0d7e-4a8b-9a55-2f1d9e0c3b11", 6),
    );
    write(&w.env.home.join("history.jsonl"), "{\"display\":\"hi\"}\n");
    w.ok(&["init"]);
    w
}

const SETTINGS: &str = r#"{
  "zeta": true,
  "model": "opus",
  "hooks": {
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "notify-send done"
          }
        ]
      }
    ],
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "audit.sh"
          }
        ]
      }
    ]
  },
  "alpha": {
    "y": 1,
    "x": 2
  }
}
"#;

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn hooks_install_keeps_every_other_key_snapshots_first_and_is_idempotent() {
    let w = world_with_home();
    write(&w.settings(), SETTINGS);
    let before = w.snapshots().len();
    let o = w.ok(&["hooks", "install"]);
    assert!(o.text().contains("SessionEnd added"), "{}", o.text());
    let v: serde_json::Value = serde_json::from_slice(&fs::read(w.settings()).unwrap()).unwrap();
    assert_eq!(keys(&v), ["zeta", "model", "hooks", "alpha"]);
    assert_eq!(keys(&v["alpha"]), ["y", "x"]);
    assert_eq!(
        keys(&v["hooks"]),
        ["Stop", "PreToolUse", "SessionEnd", "PreCompact"]
    );
    assert_eq!(
        v["hooks"]["Stop"][0]["hooks"][0]["command"],
        "notify-send done"
    );
    assert_eq!(v["hooks"]["PreToolUse"][0]["matcher"], "Bash");
    for (event, arg) in [
        ("SessionEnd", "session-end"),
        ("PreCompact", "pre-compact"),
        ("Stop", "stop"),
    ] {
        let groups = v["hooks"][event].as_array().unwrap();
        let cmd = groups.last().unwrap()["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(
            cmd,
            format!("command -v sage >/dev/null 2>&1 && sage hook {arg} || true")
        );
    }
    // A snapshot taken first holds the settings as they were.
    let snaps = w.snapshots();
    assert_eq!(snaps.len(), before + 1);
    let first = snaps[0]["id"].as_str().unwrap();
    assert_eq!(
        w.env.cat(&format!("{first}:settings.json")),
        SETTINGS.as_bytes()
    );

    // Again: not a byte changes, no snapshot.
    let bytes = fs::read(w.settings()).unwrap();
    let o = w.ok(&["hooks", "install"]);
    assert!(o.text().contains("unchanged"), "{}", o.text());
    assert_eq!(fs::read(w.settings()).unwrap(), bytes);
    assert_eq!(w.snapshots().len(), before + 1);

    let st = w.ok(&["--json", "hooks", "status"]).json();
    assert_eq!(st["installed"], true);

    // Remove: only sage's entries go; the rest is as it was.
    let o = w.ok(&["hooks", "remove"]);
    assert!(o.text().contains("removed"), "{}", o.text());
    let after: serde_json::Value =
        serde_json::from_slice(&fs::read(w.settings()).unwrap()).unwrap();
    let orig: serde_json::Value = serde_json::from_str(SETTINGS).unwrap();
    assert_eq!(after, orig);
    assert_eq!(keys(&after["hooks"]), ["Stop", "PreToolUse"]);
    let o = w.ok(&["hooks", "remove"]);
    assert!(o.text().contains("nothing changed"), "{}", o.text());
    assert_eq!(
        w.ok(&["--json", "hooks", "status"]).json()["installed"],
        false
    );
}

#[test]
fn hooks_install_creates_settings_and_only_the_events_asked_for() {
    let w = world_with_home();
    assert!(!w.settings().exists());
    w.ok(&["hooks", "install", "--events", "session-end,pre-compact"]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(w.settings()).unwrap()).unwrap();
    assert_eq!(keys(&v["hooks"]), ["SessionEnd", "PreCompact"]);
    let o = w.run(&["hooks", "install", "--events", "bogus"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("session-end, pre-compact or stop"),
        "{}",
        o.stderr
    );
}

#[test]
fn invalid_settings_json_is_refused_and_nothing_changes() {
    let w = world_with_home();
    let bad = "{\"model\": \"opus\",\n";
    write(&w.settings(), bad);
    let before = w.snapshots().len();
    let o = w.run(&["hooks", "install"]);
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("is not valid JSON"), "{}", o.stderr);
    assert!(o.stderr.contains("fix:"), "{}", o.stderr);
    assert_eq!(fs::read_to_string(w.settings()).unwrap(), bad);
    assert_eq!(w.snapshots().len(), before);
    // A hooks value of the wrong shape too.
    write(&w.settings(), "{\"hooks\": [1]}");
    let o = w.run(&["hooks", "install"]);
    assert_eq!(o.code, Some(1));
    assert_eq!(
        fs::read_to_string(w.settings()).unwrap(),
        "{\"hooks\": [1]}"
    );
    // An unknown push remote is a usage error.
    write(&w.settings(), "{}");
    let o = w.run(&["hooks", "install", "--push", "nowhere"]);
    assert_eq!(o.code, Some(2));
    assert!(
        o.stderr.contains("no remote named \"nowhere\""),
        "{}",
        o.stderr
    );
    assert_eq!(fs::read_to_string(w.settings()).unwrap(), "{}");
}

/// Run the hook command exactly as Claude Code would: `sh -c <command>` with stdin JSON.
fn run_hook_text(w: &World, path_dirs: &[&Path], cmd: &str, stdin: &str) -> Out {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd);
    c.env_clear()
        .env(
            "PATH",
            std::env::join_paths(
                path_dirs
                    .iter()
                    .chain([&Path::new("/usr/bin"), &Path::new("/bin")]),
            )
            .unwrap(),
        )
        .env("HOME", &w.env.fake_home)
        .env("XDG_DATA_HOME", &w.env.xdg)
        .env("CLAUDE_CONFIG_DIR", &w.env.home)
        .env("SAGE_STORE", &w.env.store)
        .env("SAGE_HOST", "testhost");
    w.care_env(&mut c);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    // Without sage the shell exits without reading: a broken pipe is expected then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code(),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn the_hook_command_is_harmless_without_sage_and_snapshots_with_it() {
    let w = world_with_home();
    w.ok(&["hooks", "install"]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(w.settings()).unwrap()).unwrap();
    let cmd = v["hooks"]["SessionEnd"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_string();
    let empty = w.env.dir("empty-bin");
    let o = run_hook_text(&w, &[&empty], &cmd, "{}");
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "{} {}",
        o.text(),
        o.stderr
    );

    // With sage on PATH: a snapshot of kind hook, nothing printed (Claude Code shows stdout).
    let bin = w.env.dir("bin");
    std::os::unix::fs::symlink(sage_bin(), bin.join("sage")).unwrap();
    append(
        &w.env.home.join("history.jsonl"),
        "{\"display\":\"more\"}\n",
    );
    let before = w.snapshots().len();
    let o = run_hook_text(
        &w,
        &[&bin],
        &cmd,
        r#"{"session_id":"5b1c7a52-0d7e","hook_event_name":"SessionEnd","reason":"exit"}"#,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.is_empty(), "{}", o.text());
    let snaps = w.snapshots();
    assert_eq!(snaps.len(), before + 1);
    assert_eq!(snaps[0]["kind"], "hook");
    assert_eq!(
        snaps[0]["message"],
        "Claude Code SessionEnd, session 5b1c7a52 (exit)"
    );
    assert!(
        w.hook_log()
            .contains("Claude Code SessionEnd, session 5b1c7a52 (exit): snapshot"),
        "{}",
        w.hook_log()
    );
}

#[test]
fn a_hook_always_exits_zero() {
    let w = world_with_home();
    // Garbage on stdin, unknown events, a home without a store: exit 0 every time.
    let mut c = w.cmd();
    c.args(["hook", "stop"]).stdin(std::process::Stdio::piped());
    let o = run(&mut c);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = w.run(&["hook", "no-such-event"]);
    assert_eq!(o.code, Some(0));
    let other = w.env.dir("other-home");
    let mut c = w.env.bare();
    w.care_env(&mut c);
    let o = run(c.arg("--home").arg(&other).args(["hook", "session-end"]));
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
    assert!(
        !w.env.xdg.join("sage").exists(),
        "a hook must not create a store"
    );
}

#[test]
fn a_hook_returns_at_once_when_another_sage_holds_the_lock() {
    let w = world_with_home();
    append(&w.env.home.join("history.jsonl"), "{\"display\":\"x\"}\n");
    let before = w.snapshots().len();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(w.env.store.join("lock"))
        .unwrap();
    lock.try_lock().expect("the test takes the store lock");
    let t = Instant::now();
    let mut c = w.cmd();
    c.env("SAGE_LOCK_WAIT_MS", "20000");
    let o = run(c.args(["hook", "pre-compact"]));
    let took = t.elapsed();
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(took < Duration::from_secs(5), "the hook waited {took:?}");
    assert!(
        w.hook_log()
            .contains("skipped, another sage holds the store lock"),
        "{}",
        w.hook_log()
    );
    drop(lock);
    assert_eq!(w.snapshots().len(), before);
    w.ok(&["hook", "pre-compact"]);
    assert_eq!(w.snapshots().len(), before + 1);
}

#[test]
fn a_hook_pushes_to_the_configured_remote_in_the_background() {
    let w = world_with_home();
    let usb = w.env.root.path().join("usb");
    w.ok(&["remote", "add", "usb", usb.to_str().unwrap(), "--bare"]);
    w.ok(&["hooks", "install", "--push", "usb"]);
    let st = w.ok(&["--json", "hooks", "status"]).json();
    assert_eq!(st["push"], "usb");
    // settings.json names no remote: it is synced to machines that have no "usb".
    assert!(!fs::read_to_string(w.settings()).unwrap().contains("usb"));
    append(&w.env.home.join("history.jsonl"), "{\"display\":\"y\"}\n");
    let mut c = w.cmd();
    c.env("SAGE_HOOK_WAIT", "1");
    let o = run(c.args(["hook", "session-end"]));
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let log = w.hook_log();
    assert!(log.contains("pushing to usb in the background"), "{log}");
    assert!(log.contains("pushed to usb"), "{log}");
    // The bare store holds every snapshot of this home (asked of the store itself).
    let d = run(w.cmd().args(["--json", "doctor"])).json();
    let lacks: Vec<_> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "remote:usb")
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        lacks.iter().any(|m| m == "has every snapshot of this home"),
        "{lacks:?}"
    );
    // Stop comes after every reply: it snapshots each time but pushes at most every 10 minutes.
    let t0: i64 = 1_900_000_000_000; // after the snapshots taken on the real clock above
    let hook_at = |t: i64, event: &str| {
        let mut c = w.cmd();
        c.env("SAGE_HOOK_WAIT", "1").env("SAGE_TIME", t.to_string());
        let o = run(c.args(["hook", event]));
        assert_eq!(o.code, Some(0), "{}", o.stderr);
    };
    hook_at(t0, "session-end");
    append(&w.env.home.join("history.jsonl"), "{\"display\":\"s1\"}\n");
    hook_at(t0 + 60_000, "stop");
    assert!(
        w.hook_log()
            .ends_with("push to usb left for later (the last was 60 s ago)\n"),
        "{}",
        w.hook_log()
    );
    assert_eq!(w.snapshots()[0]["message"], "Claude Code Stop");
    hook_at(t0 + 11 * 60_000, "stop");
    let log = w.hook_log();
    let last_lines: Vec<&str> = log.lines().rev().take(3).collect();
    assert!(
        last_lines
            .iter()
            .any(|l| l.contains("pushing to usb in the background")),
        "{log}"
    );
    assert!(last_lines[0].contains("pushed to usb"), "{log}");
    // --no-push forgets it.
    w.ok(&["hooks", "install", "--no-push"]);
    assert_eq!(
        w.ok(&["--json", "hooks", "status"]).json()["push"],
        serde_json::Value::Null
    );
}

#[test]
fn backup_snapshots_reads_back_and_pushes_to_a_bare_store() {
    let w = world_with_home();
    let o = w.ok(&["--json", "backup"]);
    let v = o.json();
    assert_eq!(v["created"], true);
    assert_eq!(v["read_back"], true);
    assert_eq!(v["remote"], serde_json::Value::Null);
    assert_eq!(w.snapshots()[0]["kind"], "scheduled");

    let o = w.run(&["backup", "usb"]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("no remote named \"usb\""), "{}", o.stderr);

    let usb = w.env.root.path().join("usb");
    w.ok(&["remote", "add", "usb", usb.to_str().unwrap(), "--bare"]);
    append(&w.env.home.join("history.jsonl"), "{\"display\":\"z\"}\n");
    let o = w.ok(&["backup", "usb"]);
    let t = o.text();
    assert!(t.contains("new snapshot"), "{t}");
    assert!(t.contains("read back and re-hashed: intact"), "{t}");
    assert!(t.contains("pushed to usb: 2 snapshots"), "{t}");
    // Nothing new: no snapshot, nothing to send.
    let v = w.ok(&["--json", "backup", "usb"]).json();
    assert_eq!(v["created"], false);
    assert_eq!(v["push"]["snapshots_sent"], 0);
}

#[test]
fn schedule_installs_a_crontab_line_without_systemd_idempotently() {
    let w = world_with_home();
    let usb = w.env.root.path().join("usb");
    w.ok(&["remote", "add", "usb", usb.to_str().unwrap(), "--bare"]);
    fs::write(
        w.fakes.join("crontab.txt"),
        "0 * * * * /usr/bin/other-job\n",
    )
    .unwrap();
    let o = w.ok(&["schedule", "install", "--daily", "04:30", "--remote", "usb"]);
    assert!(
        o.text().contains("installed a crontab line"),
        "{}",
        o.text()
    );
    let tab = w.crontab();
    let lines: Vec<&str> = tab.lines().collect();
    assert_eq!(lines.len(), 2, "{tab}");
    assert_eq!(lines[0], "0 * * * * /usr/bin/other-job");
    let exe = fs::canonicalize(sage_bin()).unwrap();
    let store = fs::canonicalize(&w.env.store).unwrap();
    let home = fs::canonicalize(&w.env.home).unwrap();
    let store_id = w.ok(&["--json", "info"]).json()["store_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sage = format!(
        "'{}' '--home' '{}' '--store' '{}'",
        exe.display(),
        home.display(),
        store.display()
    );
    assert_eq!(
        lines[1],
        format!(
            "30 4 * * * {{ {sage} 'backup' 'usb' && {sage} 'verify' '--restore-test'; }} >> '{}/schedule.log' 2>&1 # sage-schedule {store_id}",
            store.display()
        )
    );
    assert!(
        o.text().contains(lines[1]),
        "it says what it installed:\n{}",
        o.text()
    );
    // Again: the crontab is not rewritten.
    fs::remove_file(w.fakes.join("crontab.txt")).unwrap();
    fs::write(w.fakes.join("crontab.txt"), &tab).unwrap();
    let o = w.ok(&["schedule", "install", "--daily", "04:30", "--remote", "usb"]);
    assert!(o.text().contains("already installed"), "{}", o.text());
    assert_eq!(w.crontab(), tab);
    // Another time replaces the line.
    w.ok(&["schedule", "install", "--daily", "23:05"]);
    let tab2 = w.crontab();
    assert_eq!(tab2.lines().count(), 2);
    assert!(tab2.contains("\n5 23 * * * {"), "{tab2}");
    assert!(!tab2.contains("'usb'"));
    let st = w.ok(&["--json", "schedule", "status"]).json();
    assert_eq!(st["installed"], true);
    // Remove takes our line only.
    let o = w.ok(&["schedule", "remove"]);
    assert!(
        o.text().contains("removed the crontab line"),
        "{}",
        o.text()
    );
    assert_eq!(w.crontab(), "0 * * * * /usr/bin/other-job\n");
    assert_eq!(
        w.ok(&["--json", "schedule", "status"]).json()["installed"],
        false
    );
    assert!(w
        .ok(&["schedule", "remove"])
        .text()
        .contains("nothing removed"));
}

#[test]
fn schedule_installs_a_systemd_user_timer_where_systemd_runs() {
    let w = world_with_home();
    fs::remove_file(w.fakes.join("no-systemd")).unwrap();
    let o = w.ok(&["schedule", "install", "--daily", "03:00"]);
    let t = o.text();
    assert!(
        t.contains("installed a systemd user timer, daily at 03:00"),
        "{t}"
    );
    let store_id = w.ok(&["--json", "info"]).json()["store_id"]
        .as_str()
        .unwrap()
        .to_string();
    let unit = format!("sage-backup-{}", &store_id[..12]);
    let dir = w.config.join("systemd/user");
    let timer = fs::read_to_string(dir.join(format!("{unit}.timer"))).unwrap();
    let service = fs::read_to_string(dir.join(format!("{unit}.service"))).unwrap();
    assert!(
        timer.contains("\nOnCalendar=*-*-* 03:00:00\nPersistent=true\n"),
        "{timer}"
    );
    assert!(timer.contains("WantedBy=timers.target"));
    let exe = fs::canonicalize(sage_bin()).unwrap();
    let execs: Vec<&str> = service
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(execs.len(), 2, "{service}");
    assert!(execs[0].starts_with(&format!("ExecStart=\"{}\" \"--home\"", exe.display())));
    assert!(execs[0].ends_with("\" \"backup\""), "{}", execs[0]);
    assert!(
        execs[1].ends_with("\"verify\" \"--restore-test\""),
        "{}",
        execs[1]
    );
    assert!(
        t.contains(&timer.lines().nth(5).unwrap().to_string()),
        "it shows the text it wrote"
    );
    let log = w.systemctl_log();
    assert!(log.contains("--user daemon-reload\n"), "{log}");
    assert!(
        log.contains(&format!("--user enable --now {unit}.timer\n")),
        "{log}"
    );
    assert!(w.crontab().is_empty(), "no crontab line where systemd runs");
    // Idempotent.
    let o = w.ok(&["schedule", "install", "--daily", "03:00"]);
    assert!(o.text().contains("unchanged"), "{}", o.text());
    let st = w.ok(&["--json", "schedule", "status"]).json();
    assert_eq!(st["status"]["on_calendar"], "*-*-* 03:00:00");
    let o = w.ok(&["schedule", "remove"]);
    assert!(
        o.text().contains(&format!(
            "removed {}",
            dir.join(format!("{unit}.timer")).display()
        )),
        "{}",
        o.text()
    );
    assert!(!dir.join(format!("{unit}.timer")).exists());
    assert!(!dir.join(format!("{unit}.service")).exists());
    assert!(w
        .systemctl_log()
        .contains(&format!("--user disable --now {unit}.timer\n")));
}

#[test]
fn schedule_refuses_bad_input_with_a_clear_message() {
    let w = world_with_home();
    for bad in ["25:00", "3pm", "12:5"] {
        let o = w.run(&["schedule", "install", "--daily", bad]);
        assert_eq!(o.code, Some(2), "{bad}");
        assert!(o.stderr.contains("use HH:MM"), "{}", o.stderr);
    }
    let o = w.run(&["schedule", "install", "--remote", "usb"]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("sage remote add usb"), "{}", o.stderr);
    assert!(w.crontab().is_empty());
    // No store: say how to make one.
    let mut c = w.env.bare();
    w.care_env(&mut c);
    let o = run(c
        .arg("--home")
        .arg(w.env.dir("nohome"))
        .args(["schedule", "install"]));
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("sage init"), "{}", o.stderr);
}

#[test]
fn restore_test_passes_on_an_awkward_home_and_fails_on_a_damaged_store() {
    let w = World::new();
    awkward_home(&w.env.home, 3);
    w.ok(&["init"]);
    w.ok(&["commit", "-m", "one"]);
    let o = w.ok(&["verify", "--restore-test"]);
    assert!(o.text().contains("restore test passed"), "{}", o.text());
    let v = w.ok(&["--json", "verify", "--restore-test", "HEAD"]).json();
    assert!(v["restore_test"]["files"].as_u64().unwrap() > 5);
    assert_eq!(v["restore_test"]["mismatches"].as_array().unwrap().len(), 0);
    let o = w.run(&["verify", "--restore-test", "ffff"]);
    assert_eq!(o.code, Some(2));

    // Flip a byte in the middle of the pack: the restore test cannot pass.
    let packs: Vec<_> = fs::read_dir(w.env.store.join("packs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let pack = packs
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap_or(&packs[0]);
    let mut b = fs::read(pack).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    fs::write(pack, b).unwrap();
    let o = w.run(&["verify", "--restore-test"]);
    assert_eq!(o.code, Some(1), "{}\n{}", o.text(), o.stderr);
}

#[test]
fn a_symlinked_settings_json_stays_a_link() {
    let w = world_with_home();
    let dotfiles = w.env.dir("dotfiles");
    write(&dotfiles.join("settings.json"), "{\"model\": \"opus\"}\n");
    std::os::unix::fs::symlink(dotfiles.join("settings.json"), w.settings()).unwrap();
    w.ok(&["hooks", "install"]);
    assert!(fs::symlink_metadata(w.settings())
        .unwrap()
        .file_type()
        .is_symlink());
    let v: Value =
        serde_json::from_slice(&fs::read(dotfiles.join("settings.json")).unwrap()).unwrap();
    assert_eq!(v["model"], "opus");
    assert!(v["hooks"]["SessionEnd"].is_array());
    w.ok(&["hooks", "remove"]);
    assert!(fs::symlink_metadata(w.settings())
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        serde_json::from_slice::<Value>(&fs::read(dotfiles.join("settings.json")).unwrap())
            .unwrap(),
        serde_json::json!({"model": "opus"})
    );
}
