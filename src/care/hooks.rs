//! Claude Code hooks: the entries `sage hooks install` writes into the home's `settings.json`,
//! and what `sage hook <event>` does when Claude Code runs one.
//!
//! Invariants of the settings edit:
//! - the entries are machine-neutral (`sage hook session-end`, no path, no remote name), because
//!   `settings.json` is synced between machines; where sage is not installed they do nothing;
//! - sage's own entries are recognised by their command text ([`MARK`]); install and remove
//!   touch only those, every other key and hook stays as it was, in its order;
//! - install is idempotent: a second run changes no byte;
//! - a `settings.json` that is not a JSON object is refused, and nothing is changed;
//! - the write is crash-safe (temp file, fsync, rename), after a snapshot of the home.

use crate::error::{Error, IoContext, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The text that marks a hook command as sage's own.
pub const MARK: &str = "sage hook ";

/// The Claude Code events sage hooks into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum HookEvent {
    SessionEnd,
    PreCompact,
    Stop,
}

impl HookEvent {
    pub const ALL: [HookEvent; 3] = [
        HookEvent::SessionEnd,
        HookEvent::PreCompact,
        HookEvent::Stop,
    ];

    /// The event's name in `settings.json`.
    pub fn claude_name(self) -> &'static str {
        match self {
            HookEvent::SessionEnd => "SessionEnd",
            HookEvent::PreCompact => "PreCompact",
            HookEvent::Stop => "Stop",
        }
    }

    /// The argument of `sage hook`.
    pub fn arg(self) -> &'static str {
        match self {
            HookEvent::SessionEnd => "session-end",
            HookEvent::PreCompact => "pre-compact",
            HookEvent::Stop => "stop",
        }
    }

    pub fn parse(s: &str) -> Result<HookEvent> {
        HookEvent::ALL
            .into_iter()
            .find(|e| e.arg() == s || e.claude_name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown hook event {s:?}: use session-end, pre-compact or stop"
                ))
            })
    }

    /// The command Claude Code runs: harmless (exit 0, no output) where sage is not installed.
    pub fn command(self) -> String {
        format!(
            "command -v sage >/dev/null 2>&1 && {MARK}{} || true",
            self.arg()
        )
    }
}

pub fn is_sage_command(cmd: &str) -> bool {
    cmd.contains(MARK)
}

/// What an install did to one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventChange {
    Added,
    /// An older sage entry was replaced by the current text.
    Updated,
    Unchanged,
}

fn not_object(what: &str) -> Error {
    Error::Refused(format!(
        "{what} in settings.json is not what Claude Code expects (a JSON object or array): nothing was changed\n  fix: correct settings.json by hand, then run the command again"
    ))
}

/// Remove sage's entries from one event's array of matcher groups; returns how many. A group
/// is dropped only when it held nothing but sage entries.
fn strip_event(groups: &mut Vec<Value>) -> usize {
    let mut removed = 0;
    groups.retain_mut(|g| {
        let Some(inner) = g.get_mut("hooks").and_then(Value::as_array_mut) else {
            return true;
        };
        let before = inner.len();
        inner.retain(|h| {
            !h.get("command")
                .and_then(Value::as_str)
                .is_some_and(is_sage_command)
        });
        let n = before - inner.len();
        removed += n;
        !(n > 0 && inner.is_empty())
    });
    removed
}

/// The sage commands found in one event's groups.
fn sage_commands(groups: &[Value]) -> Vec<String> {
    groups
        .iter()
        .filter_map(|g| g.get("hooks").and_then(Value::as_array))
        .flatten()
        .filter_map(|h| h.get("command").and_then(Value::as_str))
        .filter(|c| is_sage_command(c))
        .map(str::to_string)
        .collect()
}

fn new_group(ev: HookEvent) -> Value {
    serde_json::json!({
        "matcher": "",
        "hooks": [{"type": "command", "command": ev.command()}]
    })
}

/// Add (or bring up to date) sage's entry for each event. Pure: edits the parsed settings.
pub fn install_into(
    settings: &mut Value,
    events: &[HookEvent],
) -> Result<Vec<(HookEvent, EventChange)>> {
    let root = settings
        .as_object_mut()
        .ok_or_else(|| not_object("the top level"))?;
    if !root.contains_key("hooks") {
        root.insert("hooks".into(), Value::Object(Map::new()));
    }
    let hooks = root
        .get_mut("hooks")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| not_object("\"hooks\""))?;
    // Check every event before changing any, so that a refusal changes nothing.
    for ev in events {
        if hooks
            .get(ev.claude_name())
            .is_some_and(|v| !v.is_array() || v.as_array().is_some_and(|a| !groups_ok(a)))
        {
            return Err(not_object(&format!("\"hooks\".\"{}\"", ev.claude_name())));
        }
    }
    let mut out = Vec::new();
    for &ev in events {
        let groups = hooks
            .entry(ev.claude_name())
            .or_insert_with(|| Value::Array(vec![]))
            .as_array_mut()
            .expect("checked above");
        let found = sage_commands(groups);
        let change = if found == [ev.command()] {
            EventChange::Unchanged
        } else {
            let had = strip_event(groups) > 0;
            groups.push(new_group(ev));
            if had {
                EventChange::Updated
            } else {
                EventChange::Added
            }
        };
        out.push((ev, change));
    }
    Ok(out)
}

/// Every group is an object whose `hooks`, if present, is an array.
fn groups_ok(groups: &[Value]) -> bool {
    groups
        .iter()
        .all(|g| g.is_object() && g.get("hooks").is_none_or(Value::is_array))
}

/// Remove every sage entry; returns the events that had one. An event array (and the `hooks`
/// object) left empty by the removal goes too; one that was empty before stays.
pub fn remove_from(settings: &mut Value) -> Result<Vec<String>> {
    let root = settings
        .as_object_mut()
        .ok_or_else(|| not_object("the top level"))?;
    let Some(hooks_v) = root.get_mut("hooks") else {
        return Ok(vec![]);
    };
    let hooks = hooks_v
        .as_object_mut()
        .ok_or_else(|| not_object("\"hooks\""))?;
    let mut events = Vec::new();
    let names: Vec<String> = hooks.keys().cloned().collect();
    for name in names {
        let Some(groups) = hooks.get_mut(&name).and_then(Value::as_array_mut) else {
            continue;
        };
        if strip_event(groups) > 0 {
            if groups.is_empty() {
                hooks.shift_remove(&name);
            }
            events.push(name);
        }
    }
    if !events.is_empty() && hooks.is_empty() {
        root.shift_remove("hooks");
    }
    Ok(events)
}

/// The state of one event's hook in `settings.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EventStatus {
    pub event: &'static str,
    /// sage's command there, if any.
    pub command: Option<String>,
    /// It is exactly what this sage would install.
    pub current: bool,
}

pub fn status_of(settings: &Value) -> Vec<EventStatus> {
    HookEvent::ALL
        .iter()
        .map(|&ev| {
            let found = settings
                .get("hooks")
                .and_then(|h| h.get(ev.claude_name()))
                .and_then(Value::as_array)
                .map(|g| sage_commands(g))
                .unwrap_or_default();
            EventStatus {
                event: ev.claude_name(),
                current: found == [ev.command()],
                command: found.into_iter().next(),
            }
        })
        .collect()
}

/// The user settings file of a home.
pub fn settings_path(home: &Path) -> PathBuf {
    home.join("settings.json")
}

/// Read and parse `settings.json`: `Ok(None)` if it does not exist, an error if it is not a
/// JSON object (sage never rewrites what it cannot read).
pub fn read_settings(path: &Path) -> Result<Option<Value>> {
    Ok(read_settings_bytes(path)?.map(|(v, _)| v))
}

/// [`read_settings`], with the bytes read (for [`write_settings`]' check).
pub fn read_settings_bytes(path: &Path) -> Result<Option<(Value, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some((Value::Object(Map::new()), bytes)));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Refused(format!(
            "{} is not valid JSON ({e}): nothing was changed\n  fix: correct the file by hand (Claude Code cannot read it either), then run the command again",
            path.display()
        ))
    })?;
    if !v.is_object() {
        return Err(not_object("the top level"));
    }
    Ok(Some((v, bytes)))
}

/// Serialize as Claude Code does (two-space indent, trailing newline) and write crash-safely,
/// keeping the file's permissions. `expected` is the file's bytes as read (`None`: it did not
/// exist): if they changed meanwhile (Claude Code saving its settings), nothing is written.
/// A symlinked `settings.json` (a dotfiles repository) is written through to its target, so
/// the link stays a link.
pub fn write_settings(path: &Path, v: &Value, expected: Option<&[u8]>) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v).expect("a JSON value serializes");
    text.push('\n');
    let target = if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        std::fs::canonicalize(path).ctx(|| format!("following the symlink {}", path.display()))?
    } else {
        path.to_path_buf()
    };
    let now = match std::fs::read(&target) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("reading {}", target.display()), e)),
    };
    if now.as_deref() != expected {
        return Err(Error::Refused(format!(
            "{} changed while sage was editing it (Claude Code saving its settings?): nothing was written\n  fix: run the command again",
            path.display()
        )));
    }
    let mode = std::fs::metadata(&target).ok().map(|m| m.permissions());
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    }
    crate::fsutil::write_atomic(&target, text.as_bytes())?;
    if let Some(p) = mode {
        std::fs::set_permissions(&target, p)
            .ctx(|| format!("setting mode of {}", target.display()))?;
    }
    Ok(())
}

/// What Claude Code passes a hook on stdin (only the fields sage uses; all optional).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct HookInput {
    pub session_id: Option<String>,
    pub hook_event_name: Option<String>,
    pub trigger: Option<String>,
    pub reason: Option<String>,
}

impl HookInput {
    /// Parse stdin's bytes; anything unreadable is ignored (a hook never fails on its input).
    pub fn parse(bytes: &[u8]) -> HookInput {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    pub fn describe(&self, ev: HookEvent) -> String {
        let mut s = format!("Claude Code {}", ev.claude_name());
        if let Some(id) = &self.session_id {
            s.push_str(&format!(
                ", session {}",
                id.chars().take(8).collect::<String>()
            ));
        }
        if let Some(t) = self.trigger.as_ref().or(self.reason.as_ref()) {
            s.push_str(&format!(" ({t})"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn install_keeps_other_keys_in_order_and_is_idempotent() {
        let mut v = parse(
            r#"{"zeta": 1, "hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "say done"}]}]}, "alpha": {"b": 2, "a": 1}}"#,
        );
        let ch = install_into(&mut v, &HookEvent::ALL).unwrap();
        assert!(ch.iter().all(|(_, c)| *c == EventChange::Added));
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["zeta", "hooks", "alpha"]);
        let alpha: Vec<_> = v["alpha"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(alpha, ["b", "a"]);
        let stop = v["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2);
        assert_eq!(stop[0]["hooks"][0]["command"], "say done");
        let once = v.clone();
        let ch = install_into(&mut v, &HookEvent::ALL).unwrap();
        assert!(ch.iter().all(|(_, c)| *c == EventChange::Unchanged));
        assert_eq!(v, once);
        assert!(status_of(&v).iter().all(|s| s.current));
    }

    #[test]
    fn install_updates_an_old_sage_entry_and_leaves_its_neighbours() {
        let mut v = parse(
            r#"{"hooks": {"SessionEnd": [{"matcher": "", "hooks": [{"type": "command", "command": "echo bye"}, {"type": "command", "command": "sage hook session-end"}]}]}}"#,
        );
        let ch = install_into(&mut v, &[HookEvent::SessionEnd]).unwrap();
        assert_eq!(ch, [(HookEvent::SessionEnd, EventChange::Updated)]);
        let g = v["hooks"]["SessionEnd"].as_array().unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0]["hooks"].as_array().unwrap().len(), 1);
        assert_eq!(g[0]["hooks"][0]["command"], "echo bye");
        assert_eq!(g[1]["hooks"][0]["command"], HookEvent::SessionEnd.command());
    }

    #[test]
    fn remove_takes_only_sage_entries_and_what_it_emptied() {
        let orig = parse(
            r#"{"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}], "Notification": []}}"#,
        );
        let mut v = orig.clone();
        install_into(&mut v, &HookEvent::ALL).unwrap();
        let removed = remove_from(&mut v).unwrap();
        assert_eq!(removed.len(), 3);
        assert_eq!(v, orig);
        assert!(remove_from(&mut v).unwrap().is_empty());
        let mut fresh = parse(r#"{"model": "opus"}"#);
        install_into(&mut fresh, &[HookEvent::Stop]).unwrap();
        remove_from(&mut fresh).unwrap();
        assert_eq!(fresh, parse(r#"{"model": "opus"}"#));
    }

    #[test]
    fn odd_shapes_are_refused_without_a_change() {
        for s in [
            r#"[1, 2]"#,
            r#"{"hooks": []}"#,
            r#"{"hooks": {"Stop": {"command": "x"}}}"#,
            r#"{"hooks": {"Stop": ["text"]}}"#,
        ] {
            let mut v = parse(s);
            let before = v.clone();
            assert!(install_into(&mut v, &HookEvent::ALL).is_err(), "{s}");
            assert_eq!(v, before, "{s}");
        }
    }

    #[test]
    fn a_settings_file_changed_meanwhile_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.json");
        std::fs::write(&p, b"{}").unwrap();
        let (mut v, bytes) = read_settings_bytes(&p).unwrap().unwrap();
        install_into(&mut v, &HookEvent::ALL).unwrap();
        std::fs::write(&p, b"{\"model\": \"opus\"}").unwrap();
        assert!(write_settings(&p, &v, Some(&bytes)).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"model\": \"opus\"}");
        let (_, now) = read_settings_bytes(&p).unwrap().unwrap();
        write_settings(&p, &v, Some(&now)).unwrap();
        assert_eq!(read_settings(&p).unwrap().unwrap(), v);
    }

    #[test]
    fn hook_command_is_machine_neutral() {
        for ev in HookEvent::ALL {
            let c = ev.command();
            assert!(is_sage_command(&c));
            assert!(!c.contains('/') || c.contains("/dev/null"));
            assert_eq!(HookEvent::parse(ev.arg()).unwrap(), ev);
        }
        assert!(HookEvent::parse("bogus").is_err());
        let i = HookInput::parse(br#"{"session_id": "abcdef123456", "trigger": "auto"}"#);
        assert_eq!(
            i.describe(HookEvent::PreCompact),
            "Claude Code PreCompact, session abcdef12 (auto)"
        );
        assert!(HookInput::parse(b"not json").session_id.is_none());
    }
}
