//! Which sessions a running Claude Code may be writing right now, so that a sync does not
//! replace them under it (it defers them to the next sync instead).
//!
//! Claude Code writes `sessions/<pid>.json` (`{"pid", "sessionId", "cwd", "startedAt"}`) while it
//! runs. The `sessionId` there goes stale after `/clear` or `--continue`, so a session counts as
//! live when its id is named by the file of a running process, or when it lies in that
//! process's project directory and was modified since the process started. A very recent mtime
//! (read through the clock tests can set) also counts: pid files are not written by every
//! version, and a file just written is likely to be written again.

use std::collections::HashSet;
use std::path::Path;

/// Default window for "modified very recently", in milliseconds (`SAGE_LIVE_WINDOW_MS`).
pub const DEFAULT_WINDOW_MS: i64 = 2_000;

#[derive(Debug, Default)]
pub struct LiveSessions {
    ids: HashSet<String>,
    /// (encoded project directory name, process start in ms since the epoch)
    projects: Vec<(String, i64)>,
    window_ms: i64,
    now_ms: i64,
}

/// The directory name Claude Code files a cwd's sessions under: every character outside
/// `[A-Za-z0-9]` becomes `-`.
pub fn encode_project_dir(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn pid_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i32::MAX as i64 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl LiveSessions {
    /// Read `home/sessions/*.json`; unreadable or malformed files are ignored (they are
    /// Claude Code's, not sage's).
    pub fn read(home: &Path, now_ms: i64) -> LiveSessions {
        let window_ms = std::env::var("SAGE_LIVE_WINDOW_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_WINDOW_MS);
        let mut live = LiveSessions {
            window_ms,
            now_ms,
            ..Default::default()
        };
        let Ok(rd) = std::fs::read_dir(home.join("sessions")) else {
            return live;
        };
        for ent in rd.flatten() {
            let path = ent.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let pid = v.get("pid").and_then(|p| p.as_i64()).or_else(|| {
                path.file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse().ok())
            });
            if !pid.is_some_and(pid_alive) {
                continue;
            }
            if let Some(id) = v.get("sessionId").and_then(|s| s.as_str()) {
                live.ids.insert(id.to_string());
            }
            if let Some(cwd) = v.get("cwd").and_then(|s| s.as_str()) {
                let started = v
                    .get("startedAt")
                    .and_then(|s| s.as_i64())
                    .or_else(|| {
                        ent.metadata()
                            .ok()
                            .and_then(|m| m.modified().ok())
                            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_millis() as i64)
                    })
                    .unwrap_or(0);
                live.projects.push((encode_project_dir(cwd), started));
            }
        }
        live
    }

    /// Is the session at home-relative `rel` (modified at `mtime_ms`) possibly being written?
    pub fn is_live(&self, rel: &str, mtime_ms: Option<i64>) -> bool {
        if mtime_ms.is_some_and(|m| self.now_ms - m < self.window_ms) {
            return true;
        }
        // projects/<dir>/<id>.jsonl, or a part of it: projects/<dir>/<id>/subagents/...
        let mut parts = rel.splitn(4, '/');
        let (Some("projects"), Some(dir), Some(first)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let id = first.strip_suffix(".jsonl").unwrap_or(first);
        if self.ids.contains(id) {
            return true;
        }
        self.projects.iter().any(|(enc, started)| {
            // Names over 200 characters are cut and given a hash suffix by Claude Code.
            let same_dir = dir == enc || (enc.len() > 200 && dir.starts_with(&enc[..200]));
            same_dir && mtime_ms.is_some_and(|m| m >= *started)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_claude_code() {
        assert_eq!(encode_project_dir("/home/me/my.app"), "-home-me-my-app");
    }

    #[test]
    fn pid_files_of_running_processes_mark_sessions_live() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("sessions")).unwrap();
        let me = std::process::id();
        std::fs::write(
            home.path().join(format!("sessions/{me}.json")),
            format!(r#"{{"pid":{me},"sessionId":"aaa","cwd":"/w/app","startedAt":1000}}"#),
        )
        .unwrap();
        // a dead process (pid far beyond pid_max) is ignored
        std::fs::write(
            home.path().join("sessions/999999999.json"),
            r#"{"pid":999999999,"sessionId":"dead","cwd":"/w/other","startedAt":0}"#,
        )
        .unwrap();
        std::fs::write(home.path().join("sessions/junk.json"), "not json").unwrap();
        let live = LiveSessions::read(home.path(), 1_000_000);
        assert!(live.is_live("projects/-x/aaa.jsonl", Some(0)));
        assert!(live.is_live("projects/-x/aaa/subagents/agent-1.jsonl", Some(0)));
        assert!(!live.is_live("projects/-x/dead.jsonl", Some(0)));
        // same project, written since the process started (after /clear): live
        assert!(live.is_live("projects/-w-app/bbb.jsonl", Some(2000)));
        // same project, last written before it started: not live
        assert!(!live.is_live("projects/-w-app/ccc.jsonl", Some(500)));
        // any file written within the window
        assert!(live.is_live("history.jsonl", Some(999_500)));
        assert!(!live.is_live("history.jsonl", Some(10)));
    }
}
