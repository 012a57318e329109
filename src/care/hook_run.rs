//! What `sage hook <event>` does when Claude Code runs it: take the store lock only if it is
//! free (else return at once), snapshot the home (kind `hook`), and, if this machine's
//! configuration names a remote, start `sage backup <remote> --kind hook` detached in the
//! background. Nothing is printed (Claude Code shows a hook's output); every outcome, and the
//! background push's output, is appended to `<store>/hook.log`.

use super::{config, hooks::HookEvent, hooks::HookInput};
use crate::repo::{CommitOptions, Repo};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A `Stop` hook (after every reply) starts a push at most this often.
pub const STOP_PUSH_EVERY_MS: i64 = 10 * 60 * 1000;

pub struct HookRunOptions {
    /// The sage executable that runs the background push.
    pub exe: PathBuf,
    /// Wait for the background push to end (tests).
    pub wait_for_push: bool,
}

pub fn log_path(store: &Path) -> PathBuf {
    store.join("hook.log")
}

/// Open the hook log for appending, moving a log over 1 MB aside first.
fn open_log(store: &Path) -> Option<std::fs::File> {
    let p = log_path(store);
    if std::fs::metadata(&p).is_ok_and(|m| m.len() > 1 << 20) {
        let _ = std::fs::rename(&p, store.join("hook.log.1"));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .ok()
}

fn log_line(log: &mut Option<std::fs::File>, msg: &str) {
    if let Some(f) = log {
        let _ = writeln!(
            f,
            "{} {msg}",
            crate::clock::format_ms(crate::clock::now_ms())
        );
    }
}

/// Run one hook. Never fails: what goes wrong is written to the log.
pub fn run(repo: &mut Repo, ev: HookEvent, input: &HookInput, opts: &HookRunOptions) {
    let mut log = open_log(&repo.store_dir);
    let what = input.describe(ev);
    let lock =
        match crate::lock::StoreLock::try_acquire(&repo.store_dir, &format!("hook {}", ev.arg())) {
            Ok(l) => l,
            Err(e) => {
                let why = e.to_string();
                log_line(
                    &mut log,
                    &format!(
                        "{what}: skipped, {}",
                        why.lines().next().unwrap_or_default()
                    ),
                );
                return;
            }
        };
    // Like every writer: finish an apply that was killed before snapshotting the home.
    match crate::intent::recover(repo) {
        Ok(healed) => {
            for (file, h) in healed {
                log_line(&mut log, &format!("{}: {h}", file.display()));
            }
        }
        Err(e) => log_line(
            &mut log,
            &format!("{what}: finishing an interrupted write failed: {e}"),
        ),
    }
    let out = repo.commit(&CommitOptions {
        kind: "hook",
        message: &what,
        progress: &|_, _| {},
    });
    drop(lock);
    match out {
        Ok(o) => log_line(
            &mut log,
            &format!(
                "{what}: snapshot {} ({})",
                o.id.short(),
                if o.created { "new" } else { "home unchanged" }
            ),
        ),
        Err(e) => {
            log_line(&mut log, &format!("{what}: commit failed: {e}"));
            return;
        }
    }
    let remote = match config::hook_push(&repo.db) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            log_line(
                &mut log,
                &format!("reading the hook configuration failed: {e}"),
            );
            return;
        }
    };
    // Stop comes after every reply: it snapshots each time but starts a push at most every
    // STOP_PUSH_EVERY_MS (SessionEnd and PreCompact always push). Failed pushes count too: an
    // unreachable remote must not keep the store locked turn after turn.
    let now = crate::clock::now_ms();
    if ev == HookEvent::Stop {
        let started = config::push_started(&repo.db, &remote).ok().flatten();
        if let Some(t) = started.filter(|t| now - t < STOP_PUSH_EVERY_MS) {
            log_line(
                &mut log,
                &format!(
                    "push to {remote} left for later (the last was {} ago)",
                    super::doctor::age(now, t)
                ),
            );
            return;
        }
    }
    let _ = config::set_push_started(&repo.db, &remote, now);
    match spawn_push(repo, &remote, &opts.exe) {
        Ok(mut child) => {
            log_line(
                &mut log,
                &format!("pushing to {remote} in the background (pid {})", child.id()),
            );
            if opts.wait_for_push {
                let _ = child.wait();
            }
        }
        Err(e) => log_line(
            &mut log,
            &format!("could not start the push to {remote}: {e}"),
        ),
    }
}

/// `sage backup REMOTE --kind hook`, detached (its own session), output appended to the log.
fn spawn_push(repo: &Repo, remote: &str, exe: &Path) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let out = open_log(&repo.store_dir)
        .ok_or_else(|| std::io::Error::other("cannot open the hook log"))?;
    let err = out.try_clone()?;
    let mut c = std::process::Command::new(exe);
    c.arg("--home")
        .arg(&repo.home)
        .arg("--store")
        .arg(&repo.store_dir)
        .args(["backup", remote, "--kind", "hook"])
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; the child leaves Claude Code's process group, so it
    // survives Claude exiting and never holds its terminal.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.spawn()
}
