//! `sage doctor` through the real binary, with a pinned clock (SAGE_TIME): every finding that
//! needs attention names the command that fixes it and makes the exit code 1; a home that is
//! taken care of (hooks, a recent backup pushed to a bare store, a schedule, a safe
//! `cleanupPeriodDays`) exits 0.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

const T0: i64 = 1_790_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

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
        let script = |name: &str, text: String| {
            let p = fakes.join(name);
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            "crontab",
            format!(
                "#!/bin/sh\nf={}/crontab.txt\nif [ \"$1\" = -l ]; then [ -f \"$f\" ] && exec cat \"$f\"; echo \"no crontab for tester\" >&2; exit 1; fi\ncat > \"$f\"\n",
                fakes.display()
            ),
        );
        script("systemctl", "#!/bin/sh\nexit 1\n".into());
        script("slow-ssh", "#!/bin/sh\nexec sleep 20\n".into());
        World { env, fakes, config }
    }

    fn cmd_at(&self, t: i64) -> Command {
        let mut c = self.env.cmd();
        c.env("XDG_CONFIG_HOME", &self.config)
            .env("SAGE_CRONTAB", self.fakes.join("crontab"))
            .env("SAGE_SYSTEMCTL", self.fakes.join("systemctl"))
            .env("SAGE_TIME", t.to_string());
        c
    }

    fn ok_at(&self, t: i64, args: &[&str]) -> Out {
        let o = run(self.cmd_at(t).args(args));
        assert_eq!(
            o.code,
            Some(0),
            "sage {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            o.text(),
            o.stderr
        );
        o
    }

    /// `sage --json doctor ARGS` at time `t`: (exit code, findings).
    fn doctor_at(&self, t: i64, args: &[&str]) -> (Option<i32>, Vec<Value>) {
        let o = run(self.cmd_at(t).args(["--json", "doctor"]).args(args));
        let v = o.json();
        let findings = v["findings"].as_array().unwrap().clone();
        // Every finding that needs attention names its fix; the count matches the exit code.
        let attention = findings.iter().filter(|f| f["severity"] != "ok").count();
        assert_eq!(v["attention"], attention as u64);
        for f in &findings {
            if f["severity"] != "ok" {
                assert!(
                    f["fix"].as_str().is_some_and(|s| !s.is_empty()),
                    "no fix: {f}"
                );
            }
        }
        assert_eq!(
            o.code,
            Some(if attention == 0 { 0 } else { 1 }),
            "{}",
            o.stderr
        );
        (o.code, findings)
    }

    fn usb(&self) -> PathBuf {
        self.env.root.path().join("usb")
    }
}

fn find<'a>(fs: &'a [Value], check: &str) -> Vec<&'a Value> {
    fs.iter().filter(|f| f["check"] == check).collect()
}

fn one<'a>(fs: &'a [Value], check: &str) -> &'a Value {
    let v = find(fs, check);
    assert_eq!(v.len(), 1, "{check}: {fs:#?}");
    v[0]
}

fn home_with_session(w: &World) {
    let mut rng = Rng::new(11);
    write(
        &w.env
            .home
            .join("projects/-home-me-app/0c1d2e3f-0d7e-4a8b-9a55-2f1d9e0c3b11.jsonl"),
        session_text(&mut rng, "0c1d2e3f-0d7e-4a8b-9a55-2f1d9e0c3b11", 5),
    );
}

/// A home that is taken care of, set up at T0.
fn cared_for() -> World {
    let w = World::new();
    home_with_session(&w);
    write(
        &w.env.home.join("settings.json"),
        "{\"cleanupPeriodDays\": 3650}\n",
    );
    w.ok_at(T0, &["init"]);
    w.ok_at(
        T0,
        &["remote", "add", "usb", w.usb().to_str().unwrap(), "--bare"],
    );
    w.ok_at(T0, &["hooks", "install"]);
    w.ok_at(
        T0,
        &["schedule", "install", "--daily", "03:00", "--remote", "usb"],
    );
    w.ok_at(T0, &["backup", "usb"]);
    w
}

#[test]
fn a_fresh_store_needs_attention_and_says_how() {
    let w = World::new();
    home_with_session(&w);
    w.ok_at(T0, &["init"]);
    let (code, f) = w.doctor_at(T0, &["--offline"]);
    assert_eq!(code, Some(1));
    assert_eq!(one(&f, "store")["severity"], "ok");
    assert_eq!(one(&f, "snapshot")["fix"], "sage commit");
    let b = one(&f, "backup");
    assert_eq!(b["severity"], "warn");
    assert!(
        b["fix"]
            .as_str()
            .unwrap()
            .contains("--bare && sage backup usb"),
        "{b}"
    );
    assert_eq!(
        one(&f, "schedule")["fix"],
        "sage schedule install --daily 03:00"
    );
    assert_eq!(one(&f, "hooks")["fix"], "sage hooks install");
    assert_eq!(one(&f, "cleanup")["severity"], "ok");
    assert!(!find(&f, "disk").is_empty());
    // The text form shows each fix under its finding.
    let o = run(w.cmd_at(T0).args(["doctor", "--offline"]));
    assert_eq!(o.code, Some(1));
    let t = o.text();
    assert!(t.contains("WARN  hooks"), "{t}");
    assert!(t.contains("fix: sage hooks install"), "{t}");
    assert!(t.contains("need attention"), "{t}");
}

#[test]
fn a_home_taken_care_of_exits_zero() {
    let w = cared_for();
    let (code, f) = w.doctor_at(T0 + HOUR, &[]);
    assert_eq!(code, Some(0), "{f:#?}");
    let remote: Vec<String> = find(&f, "remote:usb")
        .iter()
        .map(|x| x["message"].as_str().unwrap().to_string())
        .collect();
    assert!(remote[0].contains("answers: sage "), "{remote:?}");
    assert_eq!(remote[1], "has every snapshot of this home");
    assert!(one(&f, "backup")["message"]
        .as_str()
        .unwrap()
        .starts_with("last backup 1 h ago, to usb"));
    assert!(one(&f, "schedule")["message"]
        .as_str()
        .unwrap()
        .contains("crontab: 0 3 * * *"));
    let o = w.ok_at(T0 + HOUR, &["doctor"]);
    assert!(
        o.text().contains("everything is taken care of"),
        "{}",
        o.text()
    );
    // -q prints only what needs attention: nothing.
    assert!(w.ok_at(T0 + HOUR, &["-q", "doctor"]).stdout.is_empty());
}

#[test]
fn old_snapshots_and_backups_are_flagged_as_time_passes() {
    let w = cared_for();
    // Unchanged home: an old snapshot is still current.
    let (_, f) = w.doctor_at(T0 + 10 * DAY, &["--offline"]);
    let s = one(&f, "snapshot");
    assert_eq!(s["severity"], "ok");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .ends_with("the home has not changed since"),
        "{s}"
    );
    write(&w.env.home.join("history.jsonl"), "{\"display\":\"new\"}\n");
    let (code, f) = w.doctor_at(T0 + 10 * DAY, &["--offline"]);
    assert_eq!(code, Some(1));
    let s = one(&f, "snapshot");
    assert_eq!(s["severity"], "warn");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("last snapshot 10 days ago"),
        "{s}"
    );
    let b = one(&f, "backup");
    assert_eq!(b["severity"], "warn");
    assert_eq!(b["fix"], "sage backup usb");
    // A backup now puts it right.
    w.ok_at(T0 + 10 * DAY, &["backup", "usb"]);
    let (code, f) = w.doctor_at(T0 + 10 * DAY + HOUR, &["--offline"]);
    assert_eq!(code, Some(0), "{f:#?}");
}

#[test]
fn snapshots_not_yet_pushed_are_counted_per_remote_online_and_offline() {
    let w = cared_for();
    write(&w.env.home.join("history.jsonl"), "{\"display\":\"a\"}\n");
    w.ok_at(T0 + HOUR, &["commit", "-m", "a"]);
    append(&w.env.home.join("history.jsonl"), "{\"display\":\"b\"}\n");
    w.ok_at(T0 + 2 * HOUR, &["commit", "-m", "b"]);
    for args in [&[][..], &["--offline"][..]] {
        let (code, f) = w.doctor_at(T0 + 3 * HOUR, args);
        assert_eq!(code, Some(1), "{args:?}");
        let lag = find(&f, "remote:usb")
            .into_iter()
            .find(|x| x["severity"] == "warn")
            .unwrap_or_else(|| panic!("{args:?}: {f:#?}"));
        assert!(
            lag["message"]
                .as_str()
                .unwrap()
                .starts_with("2 snapshot(s) not yet pushed"),
            "{lag}"
        );
        assert_eq!(lag["fix"], "sage push usb");
    }
    w.ok_at(T0 + 3 * HOUR, &["push", "usb"]);
    let (code, f) = w.doctor_at(T0 + 3 * HOUR, &[]);
    assert_eq!(code, Some(0), "{f:#?}");
}

#[test]
fn unreachable_and_vanished_remotes_are_reported_with_a_fix() {
    let w = cared_for();
    // The backup disk is "unmounted": its store is gone.
    fs::rename(w.usb(), w.env.root.path().join("usb-away")).unwrap();
    let (code, f) = w.doctor_at(T0 + HOUR, &[]);
    assert_eq!(code, Some(1));
    let r = find(&f, "remote:usb")[0];
    assert_eq!(r["severity"], "warn");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("has no sage store any more"),
        "{r}"
    );
    assert!(
        r["fix"].as_str().unwrap().starts_with("mount or check"),
        "{r}"
    );
    // --offline does not contact it, and falls back to what the last push recorded.
    let (_, f) = w.doctor_at(T0 + HOUR, &["--offline"]);
    let msgs: Vec<_> = find(&f, "remote:usb")
        .iter()
        .map(|x| x["severity"].clone())
        .collect();
    assert_eq!(msgs, ["ok", "ok"]);
    // A host that never answers: the doctor gives up after --timeout.
    w.ok_at(
        T0,
        &[
            "remote",
            "add",
            "gpu",
            "gpu-box:/data/.claude",
            "--no-check",
        ],
    );
    let t = std::time::Instant::now();
    let o = run(w
        .cmd_at(T0 + HOUR)
        .env("SAGE_SSH_COMMAND", w.fakes.join("slow-ssh"))
        .args(["--json", "doctor", "--timeout", "1"]));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(o.code, Some(1));
    let f = o.json()["findings"].as_array().unwrap().clone();
    let g = find(&f, "remote:gpu")[0];
    assert!(
        g["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s"),
        "{g}"
    );
    assert!(
        g["fix"].as_str().unwrap().contains("sage doctor --offline"),
        "{g}"
    );
}

#[test]
fn cleanup_period_days_low_or_zero_is_flagged() {
    let w = cared_for();
    let settings = w.env.home.join("settings.json");
    let cleanup = |json: &str| {
        // Keep the hooks: rewrite only cleanupPeriodDays.
        let mut v: Value = serde_json::from_slice(&fs::read(&settings).unwrap()).unwrap();
        v["cleanupPeriodDays"] = serde_json::from_str(json).unwrap();
        fs::write(&settings, serde_json::to_vec(&v).unwrap()).unwrap();
        let (code, f) = w.doctor_at(T0 + HOUR, &["--offline"]);
        (code, one(&f, "cleanup").clone())
    };
    let (code, c) = cleanup("0");
    assert_eq!(code, Some(1));
    assert_eq!(c["severity"], "fail");
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("deletes its history at once"));
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains(".cleanupPeriodDays = 3650"),
        "{c}"
    );
    let (code, c) = cleanup("5");
    assert_eq!(code, Some(1));
    assert_eq!(c["severity"], "warn");
    let (code, c) = cleanup("400");
    assert_eq!(code, Some(0));
    assert_eq!(c["message"], "cleanupPeriodDays is 400");
}

#[test]
fn no_store_damaged_store_and_unreadable_settings_fail() {
    let w = World::new();
    home_with_session(&w);
    let (code, f) = w.doctor_at(T0, &[]);
    assert_eq!(code, Some(1));
    let s = one(&f, "store");
    assert_eq!(s["severity"], "fail");
    assert_eq!(s["fix"], "sage init");
    assert!(!w.env.store.exists(), "doctor never creates a store");

    w.ok_at(T0, &["commit", "-m", "one"]);
    write(&w.env.home.join("settings.json"), "{oops");
    let (_, f) = w.doctor_at(T0, &["--offline"]);
    let h = one(&f, "hooks");
    assert_eq!(h["severity"], "fail");
    assert!(
        h["message"].as_str().unwrap().contains("is not valid JSON"),
        "{h}"
    );

    // A pack gone from disk: the quick integrity check sees it.
    for p in fs::read_dir(w.env.store.join("packs")).unwrap().flatten() {
        fs::remove_file(p.path()).unwrap();
    }
    let (_, f) = w.doctor_at(T0, &["--offline"]);
    let s = &find(&f, "store")[0];
    assert_eq!(s["severity"], "fail", "{f:#?}");
    assert!(
        s["fix"].as_str().unwrap().contains("sage verify --repair"),
        "{s}"
    );
}

#[test]
fn a_hook_push_to_a_removed_remote_is_flagged() {
    let w = cared_for();
    w.ok_at(T0, &["hooks", "install", "--push", "usb"]);
    w.ok_at(T0, &["remote", "remove", "usb"]);
    let (code, f) = w.doctor_at(T0 + HOUR, &["--offline"]);
    assert_eq!(code, Some(1));
    let h: Vec<_> = find(&f, "hooks")
        .into_iter()
        .filter(|x| x["severity"] == "warn")
        .collect();
    assert_eq!(h.len(), 1, "{f:#?}");
    assert!(h[0]["message"]
        .as_str()
        .unwrap()
        .contains("\"usb\", which does not exist"));
}
