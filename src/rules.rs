//! What is stored and what is not: built-in exclusions (secrets, machine-local caches, derived
//! files), the user's `.sageignore` (gitignore syntax) on top, and names that are never
//! stored whatever `.sageignore` says (credentials, machine account state, sage's own files).

use crate::error::{Error, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::Path;

/// Name of the never-stored marker file sage puts at a home's root (it names the store).
pub const HOME_MARKER: &str = ".sage-home";
/// Name of the marker file at a store's root; a directory holding one is never snapshotted.
pub const STORE_MARKER: &str = ".sage-store";
/// Infix of sage's own temp files in a home (from an interrupted checkout); never stored.
pub const TEMP_INFIX: &str = ".sage-tmp-";

/// Never stored, never sent, whatever `.sageignore` says.
const NEVER: &[&str] = &[".credentials.json", ".claude.json", HOME_MARKER];

/// Default exclusions: machine-local state, caches and derived files (see claude-home.md).
/// A `.sageignore` line `!name` can re-include one of these.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "/statsig/",
    "/shell-snapshots/",
    "/session-env/",
    "/debug/",
    "/cache/",
    "/ide/",
    "/sessions/",
    "/stats-cache.json",
    "/.last-cleanup",
    "*.lock",
    "/.claude.json.backup*",
    "/projects/*/sessions-index.json",
    "/projects/claude-code-log-cache.db",
];

pub struct Rules {
    matcher: Gitignore,
}

impl Rules {
    pub fn load(home: &Path) -> Result<Rules> {
        let mut b = GitignoreBuilder::new(home);
        for p in DEFAULT_EXCLUDES {
            b.add_line(None, p)
                .map_err(|e| Error::Other(format!("built-in rule {p}: {e}")))?;
        }
        let user = home.join(".sageignore");
        if let Ok(text) = std::fs::read_to_string(&user) {
            for (n, line) in text.lines().enumerate() {
                b.add_line(Some(user.clone()), line).map_err(|e| {
                    Error::Usage(format!(
                        "{}:{}: {e}\n  fix: correct that line (gitignore syntax)",
                        user.display(),
                        n + 1
                    ))
                })?;
            }
        }
        let matcher = b
            .build()
            .map_err(|e| Error::Usage(format!("{}: {e}", user.display())))?;
        Ok(Rules { matcher })
    }

    /// Is this home-relative path excluded? `rel` uses '/' separators.
    pub fn excluded(&self, rel: &str, is_dir: bool) -> Option<&'static str> {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if !rel.contains('/') && NEVER.contains(&rel) {
            return Some("never stored (secrets or machine-local state)");
        }
        if name.contains(TEMP_INFIX) {
            return Some("sage temp file");
        }
        let m = self.matcher.matched_path_or_any_parents(rel, is_dir);
        if m.is_ignore() {
            if m.inner().and_then(|g| g.from()).is_some() {
                return Some(".sageignore");
            }
            return Some("machine-local or derived (default rule)");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_user_rules() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".sageignore"), "plans/\n!debug/\n").unwrap();
        let r = Rules::load(d.path()).unwrap();
        assert!(r.excluded(".credentials.json", false).is_some());
        assert!(r.excluded(".claude.json", false).is_some());
        assert!(r.excluded("statsig", true).is_some());
        assert!(r.excluded("statsig/x", false).is_some());
        assert!(r
            .excluded("projects/-a/sessions-index.json", false)
            .is_some());
        assert!(r.excluded("projects/-a/x.jsonl", false).is_none());
        assert!(r.excluded("plans", true).is_some());
        assert!(
            r.excluded("debug", true).is_none(),
            "a user rule re-includes a default"
        );
        assert!(r.excluded("projects/.x.jsonl.sage-tmp-1", false).is_some());
        assert!(r.excluded("history.jsonl", false).is_none());
    }
}
