//! Shared helpers for the integration tests: a temp environment per test (home, store, a fake
//! `$HOME` and `$XDG_DATA_HOME`, so nothing touches the real home), a runner for the real
//! `sage` binary, seeded home builders, and a byte-exact picture of a directory tree.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const SECRET_CREDENTIALS: &str = "SECRET-CREDENTIAL-TOKEN-DO-NOT-STORE";
pub const SECRET_CLAUDE_JSON: &str = "SECRET-CLAUDE-JSON";
pub const REAL_TRANSCRIPTS: &str = "/work/shared/real-transcripts/spotter";

pub fn sage_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sage")
}

/// A small deterministic PRNG (splitmix64), so test data depends on the seed only.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (hi exclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(hi > lo);
        lo + self.next_u64() % (hi - lo)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.range(0, 16) as u32, 16).unwrap())
            .collect()
    }
    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
    pub fn words(&mut self, n: usize) -> String {
        const W: &[&str] = &[
            "the",
            "session",
            "file",
            "line",
            "merge",
            "store",
            "claude",
            "résumé",
            "naïve",
            "日本語",
            "🙂",
            "tool",
            "result",
            "\\\"quoted\\\"",
            "tab\\t",
            "rollback",
            "pack",
        ];
        (0..n)
            .map(|_| W[self.range(0, W.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.text(),
                self.stderr
            )
        })
    }
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One test's world: a temp root holding a home, a store, a fake `$HOME` and `$XDG_DATA_HOME`.
pub struct Env {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub store: PathBuf,
    pub xdg: PathBuf,
    pub fake_home: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let root = tempfile::Builder::new()
            .prefix("sage-it-")
            .tempdir()
            .expect("temp dir");
        let home = root.path().join("home");
        let store = root.path().join("store");
        let xdg = root.path().join("xdg");
        let fake_home = root.path().join("user");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&xdg).unwrap();
        fs::create_dir_all(&fake_home).unwrap();
        Env {
            root,
            home,
            store,
            xdg,
            fake_home,
        }
    }

    /// A fresh directory under the root (restore targets, second homes).
    pub fn dir(&self, name: &str) -> PathBuf {
        let p = self.root.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// `sage` with a clean environment and no `--home`/`--store`.
    pub fn bare(&self) -> Command {
        let mut c = Command::new(sage_bin());
        for v in [
            "CLAUDE_CONFIG_DIR",
            "SAGE_STORE",
            "SAGE_FAILPOINT",
            "SAGE_TIME",
            "SAGE_LOCK_WAIT_MS",
        ] {
            c.env_remove(v);
        }
        c.env("HOME", &self.fake_home)
            .env("XDG_DATA_HOME", &self.xdg)
            .env("SAGE_HOST", "testhost")
            .stdin(Stdio::null());
        c
    }

    /// `sage --home HOME --store STORE`.
    pub fn cmd(&self) -> Command {
        self.cmd_for(&self.home)
    }

    /// `sage --home H --store STORE`.
    pub fn cmd_for(&self, home: &Path) -> Command {
        let mut c = self.bare();
        c.arg("--home").arg(home).arg("--store").arg(&self.store);
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        run(self.cmd().args(args))
    }

    pub fn run_for(&self, home: &Path, args: &[&str]) -> Out {
        run(self.cmd_for(home).args(args))
    }

    /// Run and insist on exit 0.
    pub fn ok(&self, args: &[&str]) -> Out {
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

    pub fn ok_for(&self, home: &Path, args: &[&str]) -> Out {
        let o = self.run_for(home, args);
        assert_eq!(
            o.code,
            Some(0),
            "sage --home {} {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            home.display(),
            o.text(),
            o.stderr
        );
        o
    }

    /// `sage commit`, returning the new HEAD's full id.
    pub fn commit(&self, msg: &str) -> String {
        self.ok(&["commit", "-m", msg]);
        self.head()
    }

    pub fn head(&self) -> String {
        let v = self.ok(&["--json", "log", "-n", "1"]).json();
        v[0]["id"].as_str().expect("a HEAD").to_string()
    }

    /// `sage cat SPEC` as raw bytes (exit 0 required).
    pub fn cat(&self, spec: &str) -> Vec<u8> {
        self.ok(&["cat", spec]).stdout
    }

    /// Restore `snap` into a fresh directory and return that directory.
    pub fn restore(&self, snap: &str, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        assert!(!d.exists(), "{} exists already", d.display());
        self.ok_for(&d, &["checkout", snap]);
        d
    }
}

pub fn run(c: &mut Command) -> Out {
    Out::from(c.output().expect("spawning sage"))
}

// ---------------------------------------------------------------------------------------------
// Pictures of trees

#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    File { bytes: Vec<u8>, exec: bool },
    Link(Vec<u8>),
    Dir,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::File { bytes, exec } => write!(
                f,
                "File({} bytes, blake3 {}, exec {exec})",
                bytes.len(),
                &blake3::hash(bytes).to_hex()[..12]
            ),
            Node::Link(t) => write!(f, "Link({:?})", String::from_utf8_lossy(t)),
            Node::Dir => write!(f, "Dir"),
        }
    }
}

/// Home-relative path -> node, for every file, symlink and directory (never following links).
pub type Tree = BTreeMap<PathBuf, Node>;

pub fn read_tree(root: &Path) -> Tree {
    let mut t = Tree::new();
    if root.exists() {
        walk(root, Path::new(""), &mut t);
    }
    t
}

fn walk(root: &Path, rel: &Path, t: &mut Tree) {
    let abs = root.join(rel);
    for ent in fs::read_dir(&abs).unwrap_or_else(|e| panic!("listing {}: {e}", abs.display())) {
        let ent = ent.unwrap();
        let r = rel.join(ent.file_name());
        let m = fs::symlink_metadata(ent.path()).unwrap();
        let ft = m.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(ent.path()).unwrap();
            t.insert(r, Node::Link(target.as_os_str().as_bytes().to_vec()));
        } else if ft.is_dir() {
            t.insert(r.clone(), Node::Dir);
            walk(root, &r, t);
        } else if ft.is_file() {
            t.insert(
                r,
                Node::File {
                    bytes: fs::read(ent.path()).unwrap(),
                    exec: m.permissions().mode() & 0o111 != 0,
                },
            );
        }
    }
}

/// Does the spec say this home-relative path is never stored? Written from the issue and
/// claude-home.md, independently of `src/rules.rs`.
pub fn never_stored(rel: &Path) -> bool {
    let Some(s) = rel.to_str() else {
        return true; // non-UTF-8 names are reported and skipped
    };
    let parts: Vec<&str> = s.split('/').collect();
    let top = parts[0];
    let name = *parts.last().unwrap();
    const TOP: &[&str] = &[
        ".credentials.json",
        ".claude.json",
        ".sage-home",
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
    if TOP.contains(&top) || top.starts_with(".claude.json.backup") {
        return true;
    }
    if parts
        .iter()
        .any(|p| p.ends_with(".lock") || p.contains(".sage-tmp-"))
    {
        return true;
    }
    if parts.len() == 3 && parts[0] == "projects" && name == "sessions-index.json" {
        return true;
    }
    s == "projects/claude-code-log-cache.db"
}

/// The part of a home that a snapshot holds. Directories left empty by dropping what is
/// never stored stay (sage records them as empty directories).
pub fn stored_view(t: &Tree) -> Tree {
    t.iter()
        .filter(|(p, _)| !never_stored(p))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

/// Assert two trees are identical, naming the first differences.
pub fn assert_same_tree(want: &Tree, got: &Tree, what: &str) {
    if want == got {
        return;
    }
    let mut diffs = Vec::new();
    for (p, n) in want {
        match got.get(p) {
            None => diffs.push(format!("missing {}: {n:?}", p.display())),
            Some(g) if g != n => {
                diffs.push(format!("differs {}: want {n:?}, got {g:?}", p.display()))
            }
            _ => {}
        }
    }
    for (p, n) in got {
        if !want.contains_key(p) {
            diffs.push(format!("unexpected {}: {n:?}", p.display()));
        }
    }
    diffs.truncate(20);
    panic!("{what}: trees differ:\n  {}", diffs.join("\n  "));
}

/// Modification times (ns) of every regular file.
pub fn mtimes(root: &Path) -> BTreeMap<PathBuf, i128> {
    use std::os::unix::fs::MetadataExt;
    read_tree(root)
        .into_iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| {
            let m = fs::symlink_metadata(root.join(&p)).unwrap();
            (
                p,
                m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Home builders

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

pub fn append(path: &Path, bytes: impl AsRef<[u8]>) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes.as_ref()).unwrap();
}

pub fn set_exec(path: &Path, exec: bool) {
    let mut p = fs::metadata(path).unwrap().permissions();
    p.set_mode(if exec { 0o755 } else { 0o644 });
    fs::set_permissions(path, p).unwrap();
}

/// One realistic transcript line (compact JSON + "\n").
pub fn message_line(rng: &mut Rng, session: &str, role: &str, words: usize) -> String {
    let uuid = rng.uuid();
    let ts = format!(
        "2026-02-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        rng.range(1, 28),
        rng.range(0, 24),
        rng.range(0, 60),
        rng.range(0, 60),
        rng.range(0, 1000)
    );
    format!(
        "{{\"parentUuid\":null,\"isSidechain\":false,\"type\":\"{role}\",\"message\":{{\"role\":\"{role}\",\"content\":\"{}\"}},\"uuid\":\"{uuid}\",\"timestamp\":\"{ts}\",\"sessionId\":\"{session}\",\"cwd\":\"/home/x\",\"version\":\"2.1.39\"}}\n",
        rng.words(words)
    )
}

/// A session of `n` message lines.
pub fn session_text(rng: &mut Rng, session: &str, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        let w = rng.range(3, 60) as usize;
        s.push_str(&message_line(rng, session, role, w));
    }
    s
}

/// Copy the real transcripts into `home/projects/-home-x/` (writable).
pub fn copy_real_transcripts(home: &Path) -> PathBuf {
    let dst = home.join("projects/-home-x");
    copy_dir(Path::new(REAL_TRANSCRIPTS), &dst);
    dst
}

pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for ent in fs::read_dir(src).unwrap() {
        let ent = ent.unwrap();
        let to = dst.join(ent.file_name());
        let ft = ent.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&ent.path(), &to);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(ent.path()).unwrap(), &to).unwrap();
        } else {
            fs::copy(ent.path(), &to).unwrap();
            let mut p = fs::metadata(&to).unwrap().permissions();
            p.set_mode(p.mode() | 0o200);
            fs::set_permissions(&to, p).unwrap();
        }
    }
}

/// What a hand-built awkward home holds, for assertions.
pub struct AwkwardHome {
    pub sessions: Vec<PathBuf>,
    pub crlf: PathBuf,
    pub invalid_utf8: PathBuf,
    pub unterminated: PathBuf,
    pub empty_session: PathBuf,
    pub exec_file: PathBuf,
    pub link: PathBuf,
    pub link_target: &'static str,
    pub dangling: PathBuf,
    pub empty_dir: PathBuf,
    pub unicode: PathBuf,
    pub big_tool_result: PathBuf,
}

/// A small home (~1-2 MB) with every awkward file the issue lists: CRLF, invalid UTF-8,
/// non-JSON lines, an unterminated last line, an empty session, repeated identical lines, an
/// exec bit, symlinks (one dangling, one to a directory), an empty directory, unicode names,
/// secrets and machine-local caches. Deterministic in `seed`.
pub fn awkward_home(home: &Path, seed: u64) -> AwkwardHome {
    let mut rng = Rng::new(seed);
    let proj = home.join("projects/-home-x-my-app");
    let mut sessions = Vec::new();
    for i in 0..6 {
        let id = rng.uuid();
        let n = rng.range(20, 120) as usize;
        let mut text = session_text(&mut rng, &id, n);
        if i == 0 {
            // repeated identical metadata lines keep their count
            for _ in 0..3 {
                text.push_str("{\"type\":\"last-prompt\",\"lastPrompt\":\"hi\"}\n");
            }
        }
        let p = proj.join(format!("{id}.jsonl"));
        write(&p, &text);
        sessions.push(p.clone());
        if i == 1 {
            // subagents and out-of-line tool results
            let sub = proj.join(&id).join("subagents");
            write(
                &sub.join("agent-a1b2c3d.jsonl"),
                session_text(&mut rng, &id, 15),
            );
            write(
                &sub.join("agent-a1b2c3d.meta.json"),
                "{\"agentType\":\"x\"}",
            );
        }
    }
    let big_tool_result = proj.join(format!("{}/tool-results/toolu_01.txt", rng.uuid()));
    let big: Vec<u8> = (0..900_000u32)
        .map(|i| {
            b"abcdefghijklmnopqrstuvwxyz0123456789\n"[(i as usize * 7 + (i as usize >> 9)) % 37]
        })
        .collect();
    write(&big_tool_result, &big);

    let crlf = proj.join("crlf-session.jsonl");
    write(
        &crlf,
        "{\"type\":\"user\",\"n\":1}\r\n{\"type\":\"assistant\",\"n\":2}\r\n\r\n{\"n\":3}\r\n",
    );
    let invalid_utf8 = proj.join("invalid-utf8.jsonl");
    let mut bad = b"{\"type\":\"user\",\"text\":\"ok\"}\n".to_vec();
    bad.extend_from_slice(b"\xff\xfe not utf8 \xc3\x28\n");
    bad.extend_from_slice(b"this line is not json at all\n");
    bad.extend_from_slice(b"\n");
    bad.extend_from_slice(b"{\"truncated\":");
    bad.extend_from_slice(b"\n");
    write(&invalid_utf8, &bad);
    let unterminated = proj.join("unterminated.jsonl");
    let mut u = session_text(&mut rng, "unterm", 10);
    u.push_str("{\"type\":\"assistant\",\"half\":\"writ");
    write(&unterminated, &u);
    let empty_session = proj.join("empty.jsonl");
    write(&empty_session, "");
    write(&proj.join("memory/MEMORY.md"), "# memory\n- a fact\n");
    // machine-local / derived, never stored
    write(&proj.join("sessions-index.json"), "{\"entries\":[]}");

    // an old-layout sidechain
    write(
        &proj.join("agent-0badc0de.jsonl"),
        session_text(&mut rng, "side", 5),
    );

    write(
        &home.join("history.jsonl"),
        (0..40)
            .map(|i| {
                format!(
                    "{{\"display\":\"prompt {i}\",\"timestamp\":{}}}\n",
                    1_700_000_000_000u64 + i
                )
            })
            .collect::<String>(),
    );
    write(
        &home.join("settings.json"),
        "{\n  \"cleanupPeriodDays\": 30\n}\n",
    );
    write(&home.join("CLAUDE.md"), "# Instructions\r\nBe nice.\r\n");
    write(&home.join("keybindings.json"), "[]");
    write(
        &home.join("file-history/sess-1/0123abcd@v1"),
        rng.words(200).as_bytes(),
    );
    write(
        &home.join("file-history/sess-1/0123abcd@v2"),
        b"\x00\x01binary\xff",
    );
    write(&home.join("paste-cache/p1.txt"), "pasted text");
    write(&home.join("todos/t1-agent-t1.json"), "[]");
    write(&home.join("plans/a-plan.md"), "# plan\n");
    write(
        &home.join("agents/reviewer.md"),
        "---\nname: reviewer\n---\n",
    );
    let exec_file = home.join("skills/deploy/run.sh");
    write(&exec_file, "#!/bin/sh\necho hi\n");
    set_exec(&exec_file, true);
    // a symlink into a dotfiles repo (to a directory) and a dangling one
    let link = home.join("commands");
    let link_target = "../dotfiles/claude-commands";
    std::os::unix::fs::symlink(link_target, &link).unwrap();
    let dangling = home.join("agents/gone.md");
    std::os::unix::fs::symlink("/nonexistent/sage-test/gone.md", &dangling).unwrap();
    let empty_dir = home.join("tasks/empty");
    fs::create_dir_all(&empty_dir).unwrap();
    let unicode = home.join("plans/план 日本語 🙂 é.md");
    write(&unicode, "unicode name\n");

    // secrets and machine-local state
    write(
        &home.join(".credentials.json"),
        format!("{{\"claudeAiOauth\":{{\"accessToken\":\"{SECRET_CREDENTIALS}\"}}}}"),
    );
    write(
        &home.join(".claude.json"),
        format!("{{\"userID\":\"{SECRET_CLAUDE_JSON}\"}}"),
    );
    write(&home.join("statsig/statsig.cached.evaluations.x"), "cache");
    write(
        &home.join("shell-snapshots/snapshot-bash-1.sh"),
        "export A=1",
    );
    write(&home.join("session-env/x/env"), "A=1");
    write(&home.join("debug/latest"), "debug log");
    write(&home.join("cache/changelog.md"), "cache");
    write(&home.join("ide/1234.lock"), "lock");
    write(&home.join("sessions/abc.json"), "{}");
    write(&home.join("stats-cache.json"), "{}");
    write(&home.join(".last-cleanup"), "x");
    write(&home.join("todos/state.lock"), "lock");
    write(&home.join("projects/claude-code-log-cache.db"), "sqlite?");

    AwkwardHome {
        sessions,
        crlf,
        invalid_utf8,
        unterminated,
        empty_session,
        exec_file,
        link,
        link_target,
        dangling,
        empty_dir,
        unicode,
        big_tool_result,
    }
}

/// Pad a home with seeded sessions until it holds about `mb` megabytes more.
pub fn pad_home(home: &Path, seed: u64, mb: u64) {
    let mut rng = Rng::new(seed);
    let want = mb << 20;
    let mut total = 0u64;
    let mut i = 0;
    while total < want {
        let id = rng.uuid();
        let n = rng.range(200, 2000) as usize;
        let mut text = session_text(&mut rng, &id, n);
        if i % 3 == 0 {
            // a base64-ish image line
            let blob: String = (0..rng.range(100_000, 400_000))
                .map(|_| {
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [rng.range(0, 64) as usize] as char
                })
                .collect();
            text.push_str(&format!(
                "{{\"type\":\"user\",\"message\":{{\"content\":[{{\"type\":\"image\",\"source\":{{\"data\":\"{blob}\"}}}}]}}}}\n"
            ));
        }
        let p = home.join(format!("projects/-home-pad-{}/{id}.jsonl", i % 4));
        write(&p, &text);
        total += text.len() as u64;
        i += 1;
    }
}

/// Paths (relative) of every `.jsonl` file in a tree.
pub fn jsonl_files(t: &Tree) -> Vec<PathBuf> {
    t.iter()
        .filter(|(p, n)| {
            matches!(n, Node::File { .. }) && p.extension() == Some(OsStr::new("jsonl"))
        })
        .map(|(p, _)| p.clone())
        .collect()
}

pub fn rel_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Set every regular file's mtime an hour back, so that the stat cache trusts them (files
/// modified within the last seconds are "racily clean" and always re-read).
pub fn age_files(root: &Path) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (p, n) in read_tree(root) {
        if matches!(n, Node::File { .. }) {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(root.join(&p))
                .unwrap();
            f.set_modified(old).unwrap();
        }
    }
}

/// `verify --read-data` exits 0 and finds nothing but orphan packs (an interrupted command's).
pub fn assert_store_clean(env: &Env, when: &str) {
    let o = env.run(&["--json", "verify", "--read-data"]);
    assert_eq!(
        o.code,
        Some(0),
        "{when}: verify failed\n{}\n{}",
        o.text(),
        o.stderr
    );
    for f in o.json()["findings"].as_array().unwrap() {
        assert_eq!(f["kind"], "orphan-pack", "{when}: {f:#}");
    }
}

/// Spawn a command, SIGKILL it after `delay`, and reap it. Returns whether it was still
/// running (the kill may land after it finished: the checks hold either way).
pub fn kill_after(mut cmd: Command, delay: std::time::Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    running && status.code().is_none()
}
