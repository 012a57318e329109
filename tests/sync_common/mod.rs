//! Shared helpers for the sync tests: "machines" (a home plus its own `$HOME`,
//! `$XDG_DATA_HOME` and `SAGE_HOST`), remotes reached three ways (a local path, a stand-in
//! `ssh` that runs the remote command locally, a real sshd on 127.0.0.1), a watchdog around
//! every spawned command, realistic homes, line multisets, and protocol frames.
//!
//! Self-contained on purpose (tests/common/mod.rs belongs to the store tests).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

pub const REAL_TRANSCRIPTS: &str = "/work/shared/real-transcripts/spotter";
/// No sage command in these tests should take longer; a hang is a failure, not a stuck CI.
pub const TIMEOUT: Duration = Duration::from_secs(90);

pub fn sage_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sage")
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// splitmix64: test data depends on the seed only.
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
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(hi > lo);
        lo + self.next_u64() % (hi - lo)
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
            "merge",
            "store",
            "claude",
            "résumé",
            "日本語",
            "🙂",
            "tool",
            "gpu",
            "laptop",
            "result",
            "rollback",
            "pack",
        ];
        (0..n)
            .map(|_| W[self.range(0, W.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A transcript message line (compact JSON + "\n") stamped at `ts`.
pub fn msg_line(rng: &mut Rng, session: &str, ts: &str, tag: &str) -> String {
    let uuid = rng.uuid();
    let role = if rng.range(0, 2) == 0 {
        "user"
    } else {
        "assistant"
    };
    let n = rng.range(3, 40) as usize;
    format!(
        "{{\"parentUuid\":null,\"isSidechain\":false,\"type\":\"{role}\",\"message\":{{\"role\":\"{role}\",\"content\":\"{tag} {}\"}},\"uuid\":\"{uuid}\",\"timestamp\":\"{ts}\",\"sessionId\":\"{session}\",\"cwd\":\"/home/x/app\",\"version\":\"2.1.39\"}}\n",
        rng.words(n)
    )
}

/// An ISO timestamp on 2026-03-`day` at `minute` past midnight (plus seeded seconds).
pub fn ts(rng: &mut Rng, day: u32, minute: u32) -> String {
    format!(
        "2026-03-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        minute / 60 % 24,
        minute % 60,
        rng.range(0, 60),
        rng.range(0, 1000)
    )
}

/// `n` message lines of one session, timestamps rising from `day`.
pub fn session_lines(rng: &mut Rng, session: &str, day: u32, n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| {
            let t = ts(rng, day, i as u32);
            msg_line(rng, session, &t, tag)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running commands

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
    /// stdout and stderr together (for checking messages wherever they went).
    pub fn all(&self) -> String {
        format!("{}\n{}", self.text(), self.stderr)
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
}

/// Run `c` in its own process group with a watchdog: on timeout the whole group is killed and
/// the test fails (a hang is a bug).
pub fn run_cmd(c: &mut Command) -> Out {
    let child = spawn_group(c);
    wait_out(child, TIMEOUT, &format!("{c:?}"))
}

/// Spawn in a new process group, with piped stdout/stderr and no stdin.
pub fn spawn_group(c: &mut Command) -> std::process::Child {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    c.spawn().expect("spawning a command")
}

/// Wait for a child spawned by `spawn_group`, collecting its output, under a watchdog.
pub fn wait_out(mut child: std::process::Child, timeout: Duration, what: &str) -> Out {
    let pid = child.id() as i32;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(s) => s.expect("waiting for a command"),
        Err(_) => {
            // SAFETY: kill(2) on a process group we created.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = rx.recv();
            let stderr = String::from_utf8_lossy(&t2.join().unwrap()).into_owned();
            panic!("command hung for {timeout:?} and was killed: {what}\nstderr:\n{stderr}");
        }
    };
    Out {
        code: status.code(),
        stdout: t1.join().unwrap(),
        stderr: String::from_utf8_lossy(&t2.join().unwrap()).into_owned(),
    }
}

pub fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

// ---------------------------------------------------------------------------------------------
// Machines

/// A temp root for one test, holding the machines and a stand-in `ssh`.
pub struct World {
    pub root: tempfile::TempDir,
    /// Runs `HOST CMD` locally through `sh -c CMD`, ignoring ssh options: the ssh transport's
    /// code path, with the remote environment set by a `--remote-sage` wrapper.
    pub fakessh: PathBuf,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> World {
        let root = tempfile::Builder::new()
            .prefix("sage-sync-")
            .tempdir()
            .expect("temp dir");
        let fakessh = root.path().join("fakessh");
        write_script(
            &fakessh,
            "#!/bin/sh\n# a stand-in for ssh: drop options and the host, run the command as ssh would\nwhile [ $# -gt 0 ]; do\n  case \"$1\" in\n    --) shift; break;;\n    -p|-i|-o|-l) shift 2;;\n    *) shift;;\n  esac\ndone\nshift\nexec sh -c \"$*\"\n",
        );
        World { root, fakessh }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// A machine with its own home, `$HOME`, `$XDG_DATA_HOME` and host name.
    pub fn machine(&self, name: &str) -> Machine {
        let base = self.path(name);
        let m = Machine {
            name: name.to_string(),
            home: base.join("claude"),
            xdg: base.join("xdg"),
            user: base.join("user"),
            host: format!("host-{name}"),
            fakessh: self.fakessh.clone(),
            ssh_command: None,
        };
        fs::create_dir_all(&m.xdg).unwrap();
        fs::create_dir_all(&m.user).unwrap();
        m
    }

    /// A second home on the same machine as `other` (same `$HOME` and `$XDG_DATA_HOME`, its own
    /// host name): what a local-path remote reaches, since the child `sage serve` inherits the
    /// caller's environment.
    pub fn machine_beside(&self, name: &str, other: &Machine) -> Machine {
        Machine {
            name: name.to_string(),
            home: self.path(name).join("claude"),
            xdg: other.xdg.clone(),
            user: other.user.clone(),
            host: format!("host-{name}"),
            fakessh: self.fakessh.clone(),
            ssh_command: None,
        }
    }
}

#[derive(Clone)]
pub struct Machine {
    pub name: String,
    pub home: PathBuf,
    pub xdg: PathBuf,
    pub user: PathBuf,
    pub host: String,
    pub fakessh: PathBuf,
    /// `SAGE_SSH_COMMAND` (default: the stand-in ssh).
    pub ssh_command: Option<String>,
}

impl Machine {
    /// `sage --home HOME` with this machine's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(sage_bin());
        for v in [
            "CLAUDE_CONFIG_DIR",
            "SAGE_STORE",
            "SAGE_FAILPOINT",
            "SAGE_TIME",
            "SAGE_SSH_COMMAND",
        ] {
            c.env_remove(v);
        }
        c.env("HOME", &self.user)
            .env("XDG_DATA_HOME", &self.xdg)
            .env("SAGE_HOST", &self.host)
            .env("SAGE_LOCK_WAIT_MS", "30000")
            .env(
                "SAGE_SSH_COMMAND",
                self.ssh_command
                    .clone()
                    .unwrap_or_else(|| self.fakessh.display().to_string()),
            )
            .arg("--home")
            .arg(&self.home);
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        run_cmd(self.cmd().args(args))
    }

    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut c = self.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        run_cmd(c.args(args))
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        let o = self.run(args);
        assert_eq!(
            o.code,
            Some(0),
            "[{}] sage {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            self.name,
            o.text(),
            o.stderr
        );
        o
    }

    /// Run and insist on failure (exit 1 or 2, not a crash or a signal).
    pub fn fails(&self, args: &[&str]) -> Out {
        let o = self.run(args);
        assert!(
            matches!(o.code, Some(1) | Some(2)),
            "[{}] sage {args:?} should have failed cleanly, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.name,
            o.code,
            o.text(),
            o.stderr
        );
        o
    }

    pub fn commit(&self) {
        self.ok(&["commit", "-q", "-m", "test"]);
    }

    /// HEAD's full id, from `sage log --json -n 1`.
    pub fn head(&self) -> String {
        let v = self.ok(&["--json", "log", "-n", "1"]).json();
        v[0]["id"].as_str().expect("a HEAD").to_string()
    }

    /// HEAD's id, or None when the store has no snapshot (or no store at all).
    pub fn head_opt(&self) -> Option<String> {
        let o = self.run(&["--json", "log", "-n", "1"]);
        if o.code != Some(0) {
            return None;
        }
        o.json()[0]["id"].as_str().map(str::to_string)
    }

    pub fn store_dir(&self) -> PathBuf {
        let m = fs::read_to_string(self.home.join(".sage-home")).expect("a home marker");
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        PathBuf::from(v["store"].as_str().unwrap())
    }

    pub fn store_id(&self) -> String {
        let m = fs::read_to_string(self.home.join(".sage-home")).expect("a home marker");
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        v["store_id"].as_str().unwrap().to_string()
    }

    /// `verify --read-data` must pass.
    pub fn verify(&self) {
        let o = self.run(&["verify", "--read-data"]);
        assert_eq!(
            o.code,
            Some(0),
            "[{}] verify --read-data failed\nstdout:\n{}\nstderr:\n{}",
            self.name,
            o.text(),
            o.stderr
        );
    }

    /// A `--remote-sage` wrapper that gives the remote sage this machine's environment (what
    /// sshd would not pass), optionally with extra variables, a banner printed before the
    /// handshake, or a file receiving its pid.
    pub fn wrapper(&self, file: &Path, opts: &WrapperOpts) -> PathBuf {
        let mut s = String::from("#!/bin/sh\n");
        s += &format!(
            "export HOME={}\n",
            sh_quote(&self.user.display().to_string())
        );
        s += &format!(
            "export XDG_DATA_HOME={}\n",
            sh_quote(&self.xdg.display().to_string())
        );
        s += &format!("export SAGE_HOST={}\n", sh_quote(&self.host));
        s += "export SAGE_LOCK_WAIT_MS=30000\nunset SAGE_FAILPOINT SAGE_TIME CLAUDE_CONFIG_DIR SAGE_STORE\n";
        for (k, v) in &opts.env {
            s += &format!("export {k}={}\n", sh_quote(v));
        }
        if let Some(b) = &opts.banner {
            s += &format!("echo {}\n", sh_quote(b));
        }
        if let Some(p) = &opts.pid_file {
            s += &format!("echo $$ > {}\n", sh_quote(&p.display().to_string()));
        }
        s += &format!("exec {} \"$@\"\n", sh_quote(sage_bin()));
        write_script(file, &s);
        file.to_path_buf()
    }

    /// `ssh://fake/HOME`: reached through `SAGE_SSH_COMMAND` (the stand-in unless set).
    pub fn ssh_url(&self, host: &str) -> String {
        format!("ssh://{host}{}", self.home.display())
    }

    /// Add `remote` as `name`, reached through the stand-in ssh and a wrapper with the remote's
    /// environment (so the two machines' environments stay apart).
    pub fn add_pipe_remote(&self, name: &str, remote: &Machine, wrapper: &Path, extra: &[&str]) {
        let url = remote.ssh_url("fake");
        let w = wrapper.display().to_string();
        let mut args = vec![
            "remote",
            "add",
            name,
            url.as_str(),
            "--remote-sage",
            w.as_str(),
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }
}

#[derive(Default)]
pub struct WrapperOpts {
    pub env: Vec<(String, String)>,
    pub banner: Option<String>,
    pub pid_file: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Homes

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

pub fn copy_file(src: &Path, dst: &Path) {
    if let Some(p) = dst.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::copy(src, dst).unwrap();
    let mut p = fs::metadata(dst).unwrap().permissions();
    p.set_mode(p.mode() | 0o200);
    fs::set_permissions(dst, p).unwrap();
}

pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    let mut p = fs::metadata(dst).unwrap().permissions();
    p.set_mode(p.mode() | 0o700);
    fs::set_permissions(dst, p).unwrap();
    for ent in fs::read_dir(src).unwrap() {
        let ent = ent.unwrap();
        let to = dst.join(ent.file_name());
        let ft = ent.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&ent.path(), &to);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(ent.path()).unwrap(), &to).unwrap();
        } else {
            copy_file(&ent.path(), &to);
        }
    }
}

pub const PROJ: &str = "projects/-home-x";
pub const APP: &str = "projects/-home-x-app";

/// What a realistic home holds, for the tests to edit.
pub struct HomeLayout {
    /// Synthetic sessions in `APP`, home-relative.
    pub sessions: Vec<String>,
    /// The big real transcript, home-relative.
    pub big: String,
}

/// A realistic home of about 3.5 MB: real transcripts (one large session with its subagents,
/// small ones), seeded synthetic sessions, history, settings, state files. All files are
/// backdated an hour (nobody is writing to them).
pub fn realistic_home(home: &Path, seed: u64, big: bool) -> HomeLayout {
    let mut rng = Rng::new(seed);
    let real = Path::new(REAL_TRANSCRIPTS);
    for f in ["short.jsonl", "tool_heavy.jsonl", "subagent.jsonl"] {
        copy_file(&real.join(f), &home.join(PROJ).join(f));
    }
    copy_dir(
        &real.join("6c2214d7-b87e-4432-8e41-22ba294ea584"),
        &home.join(PROJ).join("6c2214d7-b87e-4432-8e41-22ba294ea584"),
    );
    let big_name = if big {
        let b = "ae4a77f8-aedd-4bc1-888f-c94edc91af04";
        copy_file(
            &real.join(format!("{b}.jsonl")),
            &home.join(PROJ).join(format!("{b}.jsonl")),
        );
        copy_dir(&real.join(b), &home.join(PROJ).join(b));
        format!("{PROJ}/{b}.jsonl")
    } else {
        format!("{PROJ}/tool_heavy.jsonl")
    };
    let mut sessions = Vec::new();
    for i in 0..6 {
        let id = rng.uuid();
        let n = rng.range(20, 60) as usize;
        let mut text = session_lines(&mut rng, &id, 1 + i, n, "base");
        if i == 0 {
            for _ in 0..2 {
                text.push_str("{\"type\":\"last-prompt\",\"lastPrompt\":\"hi\"}\n");
            }
        }
        let rel = format!("{APP}/{id}.jsonl");
        write(&home.join(&rel), text);
        sessions.push(rel);
    }
    write(
        &home.join("history.jsonl"),
        (0..30)
            .map(|i| {
                format!(
                    "{{\"display\":\"prompt {i}\",\"timestamp\":{},\"project\":\"/home/x/app\"}}\n",
                    1_772_000_000_000u64 + i * 60_000
                )
            })
            .collect::<String>(),
    );
    write(
        &home.join("settings.json"),
        "{\n  \"cleanupPeriodDays\": 30\n}\n",
    );
    write(&home.join("CLAUDE.md"), "# Instructions\nBe brief.\n");
    write(&home.join("todos/t1-agent-t1.json"), "[]");
    write(
        &home.join("file-history/s1/0123abcd@v1"),
        rng.words(100).as_bytes(),
    );
    age(home);
    HomeLayout {
        sessions,
        big: big_name,
    }
}

/// Backdate every file in a home by two hours: nobody is writing to it right now (a session
/// written seconds ago counts as live and may be deferred by a sync).
pub fn age(home: &Path) {
    let t = SystemTime::now() - Duration::from_secs(7200);
    for (p, n) in read_tree(home) {
        if matches!(n, Node::File { .. }) {
            let f = fs::OpenOptions::new()
                .append(true)
                .open(home.join(&p))
                .or_else(|_| fs::File::open(home.join(&p)))
                .unwrap();
            let _ = f.set_modified(t);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pictures of trees and lines

#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>),
    Link(PathBuf),
    Dir,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::File(b) => write!(
                f,
                "File({} bytes, {})",
                b.len(),
                &blake3::hash(b).to_hex()[..12]
            ),
            Node::Link(t) => write!(f, "Link({})", t.display()),
            Node::Dir => write!(f, "Dir"),
        }
    }
}

pub type Tree = BTreeMap<String, Node>;

/// Every file, symlink and directory under `root` (relative paths, links not followed).
pub fn read_tree(root: &Path) -> Tree {
    let mut t = Tree::new();
    if root.exists() {
        walk(root, "", &mut t);
    }
    t
}

fn walk(root: &Path, rel: &str, t: &mut Tree) {
    let abs = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    for ent in fs::read_dir(&abs).unwrap() {
        let ent = ent.unwrap();
        let name = ent.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = ent.file_type().unwrap();
        if ft.is_symlink() {
            t.insert(r, Node::Link(fs::read_link(ent.path()).unwrap()));
        } else if ft.is_dir() {
            t.insert(r.clone(), Node::Dir);
            walk(root, &r, t);
        } else {
            t.insert(r, Node::File(fs::read(ent.path()).unwrap()));
        }
    }
}

/// The files of a home that sage syncs (no marker, no directories).
pub fn synced_files(home: &Path) -> BTreeMap<String, Vec<u8>> {
    read_tree(home)
        .into_iter()
        .filter_map(|(p, n)| match n {
            Node::File(b) if p != ".sage-home" => Some((p, b)),
            _ => None,
        })
        .collect()
}

pub type Multiset = HashMap<Vec<u8>, usize>;

/// Split bytes into lines (each with its `\n`; an unterminated tail is the last item).
pub fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn multiset(b: &[u8]) -> Multiset {
    let mut m = Multiset::new();
    for l in split_lines(b) {
        *m.entry(l).or_default() += 1;
    }
    m
}

/// Path -> multiset of lines, for every `.jsonl` of a home.
pub fn jsonl_lines(home: &Path) -> BTreeMap<String, Multiset> {
    synced_files(home)
        .into_iter()
        .filter(|(p, _)| p.ends_with(".jsonl"))
        .map(|(p, b)| (p, multiset(&b)))
        .collect()
}

/// Per path, the multiset union (max of counts).
pub fn union_lines(
    a: &BTreeMap<String, Multiset>,
    b: &BTreeMap<String, Multiset>,
) -> BTreeMap<String, Multiset> {
    let mut out = a.clone();
    for (p, m) in b {
        let o = out.entry(p.clone()).or_default();
        for (l, n) in m {
            let e = o.entry(l.clone()).or_default();
            *e = (*e).max(*n);
        }
    }
    out
}

/// Every line `want` holds (with its count) is in `got`.
pub fn assert_lines_superset(
    got: &BTreeMap<String, Multiset>,
    want: &BTreeMap<String, Multiset>,
    what: &str,
) {
    let mut missing = Vec::new();
    for (p, m) in want {
        let g = got.get(p);
        for (l, n) in m {
            let have = g.and_then(|g| g.get(l)).copied().unwrap_or(0);
            if have < *n {
                missing.push(format!(
                    "{p}: {have} of {n} copies of {:?}",
                    String::from_utf8_lossy(&l[..l.len().min(100)])
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{what}: {} lines lost, e.g.:\n  {}",
        missing.len(),
        missing[..missing.len().min(10)].join("\n  ")
    );
}

/// `got` holds exactly the lines of `want` (no line lost, none doubled).
pub fn assert_lines_exact(
    got: &BTreeMap<String, Multiset>,
    want: &BTreeMap<String, Multiset>,
    what: &str,
) {
    assert_lines_superset(got, want, what);
    let mut extra = Vec::new();
    for (p, m) in got {
        for (l, n) in m {
            let w = want.get(p).and_then(|w| w.get(l)).copied().unwrap_or(0);
            if *n > w {
                extra.push(format!(
                    "{p}: {n} copies of {:?}, expected {w}",
                    String::from_utf8_lossy(&l[..l.len().min(100)])
                ));
            }
        }
    }
    assert!(
        extra.is_empty(),
        "{what}: {} lines doubled or invented, e.g.:\n  {}",
        extra.len(),
        extra[..extra.len().min(10)].join("\n  ")
    );
}

/// Assert two maps of files are equal, naming the first differences.
pub fn assert_same_files(
    want: &BTreeMap<String, Vec<u8>>,
    got: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    if want == got {
        return;
    }
    let mut d = Vec::new();
    for (p, b) in want {
        match got.get(p) {
            None => d.push(format!("missing {p}")),
            Some(g) if g != b => d.push(format!("differs {p}: {} vs {} bytes", b.len(), g.len())),
            _ => {}
        }
    }
    for p in got.keys() {
        if !want.contains_key(p) {
            d.push(format!("unexpected {p}"));
        }
    }
    d.truncate(20);
    panic!("{what}: files differ:\n  {}", d.join("\n  "));
}

/// Modification times of every file.
pub fn mtimes(home: &Path) -> BTreeMap<String, SystemTime> {
    synced_files(home)
        .keys()
        .map(|p| {
            (
                p.clone(),
                fs::metadata(home.join(p)).unwrap().modified().unwrap(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Protocol frames

/// One frame as the protocol sends it: u32 LE length, then the MessagePack body.
pub fn frame(m: &sage::protocol::Msg) -> Vec<u8> {
    let body = rmp_serde::to_vec(m).unwrap();
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Decode a stream of frames (after the magic); stops at the first incomplete one.
pub fn parse_frames(mut b: &[u8]) -> Vec<sage::protocol::Msg> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        if b.len() < 4 + n {
            break;
        }
        out.push(rmp_serde::from_slice(&b[4..4 + n]).expect("a decodable frame"));
        b = &b[4 + n..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A real sshd on 127.0.0.1

pub const SSHD: &str = "/usr/sbin/sshd";

/// One sshd for one test, in the foreground as our child; killed (by its pid) on drop.
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    pub client_key: PathBuf,
    pub other_key: PathBuf,
    child: std::process::Child,
}

impl Sshd {
    /// Start an sshd on a free port (retrying when another process takes the port first).
    /// Fails loudly when sshd is missing: these tests never skip.
    pub fn start(dir: &Path) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (apt-get install -y openssh-server); the ssh tests do not skip"
        );
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
        let _ = fs::create_dir_all("/run/sshd");
        let keygen = |name: &str| {
            let p = dir.join(name);
            let o = run_cmd(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&p),
            );
            assert_eq!(o.code, Some(0), "ssh-keygen: {}", o.stderr);
            p
        };
        let host_key = keygen("host_key");
        let client_key = keygen("client_key");
        let other_key = keygen("other_key");
        let auth = dir.join("authorized_keys");
        fs::copy(dir.join("client_key.pub"), &auth).unwrap();
        fs::set_permissions(&auth, fs::Permissions::from_mode(0o600)).unwrap();
        let mut last = String::new();
        for _attempt in 0..20 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .args(["-p", &port.to_string()])
                .args(["-o", "ListenAddress=127.0.0.1"])
                .arg("-h")
                .arg(&host_key)
                .arg("-o")
                .arg(format!("AuthorizedKeysFile={}", auth.display()))
                .arg("-o")
                .arg(format!("PidFile={}", dir.join("sshd.pid").display()))
                .args([
                    "-o",
                    "PermitRootLogin=prohibit-password",
                    "-o",
                    "PasswordAuthentication=no",
                    "-o",
                    "StrictModes=no",
                    "-o",
                    "UsePAM=no",
                    "-o",
                    "LogLevel=VERBOSE",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting sshd");
            // Ready when it says it listens; gone when the port was taken.
            let mut err = child.stderr.take().unwrap();
            let (tx, rx) = mpsc::channel::<Result<(), String>>();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                let mut told = false;
                loop {
                    match err.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            buf.extend_from_slice(&b[..n]);
                            let s = String::from_utf8_lossy(&buf);
                            if !told && s.contains("Server listening on") {
                                let _ = tx.send(Ok(()));
                                told = true;
                            }
                        }
                    }
                }
                if !told {
                    let _ = tx.send(Err(String::from_utf8_lossy(&buf).into_owned()));
                }
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(Ok(())) => {
                    return Sshd {
                        dir: dir.to_path_buf(),
                        port,
                        client_key,
                        other_key,
                        child,
                    }
                }
                Ok(Err(e)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                    if last.contains("Address already in use") {
                        continue; // lost the port race: try another
                    }
                    panic!("sshd did not start:\n{last}");
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("sshd did not report listening within 20 s");
                }
            }
        }
        panic!("sshd could not get a port after 20 attempts: {last}");
    }

    /// `SAGE_SSH_COMMAND` for logging in with `key`.
    pub fn ssh_command(&self, key: &Path) -> String {
        format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=20",
            key.display()
        )
    }

    /// `ssh://root@127.0.0.1:PORT/HOME` for a machine's home.
    pub fn url(&self, m: &Machine) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.port, m.home.display())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
