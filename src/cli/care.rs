//! `sage hooks`, `sage hook`, `sage backup`, `sage schedule`, `sage doctor`: history that takes
//! care of itself (the library side is `sage::care`).

use super::Ctx;
use anyhow::Result;
use clap::Subcommand;
use sage::care::hooks::{self, EventChange, HookEvent};
use sage::care::{backup, config, doctor, hook_run, schedule};
use sage::repo::CommitOptions;
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

#[derive(Subcommand)]
pub enum HooksCmd {
    /// Add sage's hooks to the home's settings.json (SessionEnd, PreCompact, Stop); idempotent
    Install {
        /// On this machine, also push to this remote in the background after each hook snapshot
        #[arg(long, value_name = "REMOTE", conflicts_with = "no_push")]
        push: Option<String>,
        /// On this machine, only snapshot (forget a --push given before)
        #[arg(long)]
        no_push: bool,
        /// Only these events (comma-separated: session-end, pre-compact, stop)
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// Which hooks are installed, and what they do on this machine
    Status,
    /// Remove sage's hooks (and nothing else) from settings.json
    Remove,
}

#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// Install a daily backup: a systemd user timer, or a crontab line without systemd
    Install {
        /// Time of day, HH:MM (local time)
        #[arg(long, default_value = "03:00")]
        daily: String,
        /// Push each backup to this remote (typically a bare store on another disk)
        #[arg(long, value_name = "REMOTE")]
        remote: Option<String>,
    },
    /// What is installed for this home
    Status,
    /// Remove this home's timer or crontab line
    Remove,
}

/// The schedulers of this machine; `SAGE_SYSTEMCTL` and `SAGE_CRONTAB` replace the programs.
fn scheduler_env() -> schedule::SchedulerEnv {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config = var("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(var("HOME").unwrap_or_else(|| "/".into())).join(".config")
        });
    schedule::SchedulerEnv {
        systemctl: var("SAGE_SYSTEMCTL").unwrap_or_else(|| "systemctl".into()),
        crontab: var("SAGE_CRONTAB").unwrap_or_else(|| "crontab".into()),
        unit_dir: config.join("systemd").join("user"),
    }
}

fn events_of(names: &[String]) -> Result<Vec<HookEvent>> {
    if names.is_empty() {
        return Ok(HookEvent::ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        let e = HookEvent::parse(n.trim())?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Snapshot the home before sage edits its settings.json.
fn snapshot_before(repo: &mut sage::Repo, why: &str) -> Result<String> {
    let out = repo.commit(&CommitOptions {
        kind: "auto",
        message: why,
        progress: &|_, _| {},
    })?;
    Ok(out.id.short())
}

pub fn hooks_cmd(ctx: &Ctx, cmd: HooksCmd) -> Result<i32> {
    let mut repo = ctx.open()?;
    let path = hooks::settings_path(&repo.home);
    match cmd {
        HooksCmd::Install {
            push,
            no_push,
            events,
        } => {
            let events = events_of(&events)?;
            if let Some(p) = &push {
                sage::sync::remote::get(&repo.db, p)?;
            }
            let before = hooks::read_settings_bytes(&path)?;
            let mut v = before
                .as_ref()
                .map(|b| b.0.clone())
                .unwrap_or_else(|| serde_json::json!({}));
            let changes = hooks::install_into(&mut v, &events)?;
            let changed = before.as_ref().is_none_or(|b| b.0 != v);
            let mut snapshot = None;
            if changed {
                let _lock = repo.lock("hooks install")?;
                snapshot = Some(snapshot_before(&mut repo, "before sage hooks install")?);
                hooks::write_settings(&path, &v, before.as_ref().map(|b| &b.1[..]))?;
            }
            if no_push {
                config::set_hook_push(&repo.db, None)?;
            } else if let Some(p) = &push {
                config::set_hook_push(&repo.db, Some(p))?;
            }
            let push_now = config::hook_push(&repo.db)?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "settings": path,
                    "changed": changed,
                    "snapshot_before": snapshot,
                    "events": changes.iter().map(|(e, c)| serde_json::json!({"event": e.claude_name(), "change": c, "command": e.command()})).collect::<Vec<_>>(),
                    "push": push_now,
                }))?;
            } else if !ctx.quiet {
                let mut o = std::io::stdout().lock();
                for (e, c) in &changes {
                    let what = match c {
                        EventChange::Added => "added",
                        EventChange::Updated => "updated",
                        EventChange::Unchanged => "already installed",
                    };
                    writeln!(o, "{:<10} {what}: {}", e.claude_name(), e.command())?;
                }
                match &snapshot {
                    Some(s) => writeln!(
                        o,
                        "wrote {} (snapshot {s} holds it as it was)",
                        path.display()
                    )?,
                    None => writeln!(o, "{} unchanged", path.display())?,
                }
                match &push_now {
                    Some(p) => writeln!(o, "on this machine each hook snapshots the home, then pushes to {p} in the background (log: {})", hook_run::log_path(&repo.store_dir).display())?,
                    None => writeln!(o, "on this machine each hook snapshots the home (add a background push with --push REMOTE)")?,
                }
            }
            Ok(0)
        }
        HooksCmd::Status => {
            let settings = hooks::read_settings(&path)?.unwrap_or_else(|| serde_json::json!({}));
            let st = hooks::status_of(&settings);
            let push = config::hook_push(&repo.db)?;
            let all = st.iter().all(|s| s.current);
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "settings": path, "events": st, "push": push,
                    "log": hook_run::log_path(&repo.store_dir), "installed": all,
                }))?;
            } else if !ctx.quiet {
                let mut o = std::io::stdout().lock();
                for s in &st {
                    let what = match (&s.command, s.current) {
                        (_, true) => "installed".to_string(),
                        (Some(c), false) => format!("out of date ({c}): run `sage hooks install`"),
                        (None, _) => "not installed".to_string(),
                    };
                    writeln!(o, "{:<10} {what}", s.event)?;
                }
                writeln!(
                    o,
                    "on this machine: snapshot{}; log {}",
                    push.map(|p| format!(", then push to {p} in the background"))
                        .unwrap_or_default(),
                    hook_run::log_path(&repo.store_dir).display()
                )?;
            }
            Ok(0)
        }
        HooksCmd::Remove => {
            let Some((mut v, bytes)) = hooks::read_settings_bytes(&path)? else {
                if !ctx.quiet {
                    println!("no {}: nothing to remove", path.display());
                }
                config::set_hook_push(&repo.db, None)?;
                return Ok(0);
            };
            let removed = hooks::remove_from(&mut v)?;
            let mut snapshot = None;
            if !removed.is_empty() {
                let _lock = repo.lock("hooks remove")?;
                snapshot = Some(snapshot_before(&mut repo, "before sage hooks remove")?);
                hooks::write_settings(&path, &v, Some(&bytes))?;
            }
            config::set_hook_push(&repo.db, None)?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"settings": path, "removed": removed, "snapshot_before": snapshot}))?;
            } else if !ctx.quiet {
                if removed.is_empty() {
                    println!("no sage hooks in {}: nothing changed", path.display());
                } else {
                    println!(
                        "removed sage's hooks for {} from {} (snapshot {} holds it as it was)",
                        removed.join(", "),
                        path.display(),
                        snapshot.unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
    }
}

/// What Claude Code passed on stdin, if anything arrives quickly (a hook never waits on it).
fn read_hook_input() -> hooks::HookInput {
    if std::io::stdin().is_terminal() {
        return Default::default();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::stdin().lock().take(1 << 20).read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx.recv_timeout(Duration::from_millis(300))
        .map(|b| hooks::HookInput::parse(&b))
        .unwrap_or_default()
}

/// `sage hook <event>`, run by Claude Code: always exits 0 (exit 2 would block Claude), at once
/// when another sage holds the lock; everything worth knowing goes to `<store>/hook.log`.
pub fn hook(ctx: &Ctx, event: &str) -> Result<i32> {
    let ev = match HookEvent::parse(event) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sage hook: {e}");
            return Ok(0);
        }
    };
    let input = read_hook_input();
    // No store for this home: sage is installed but not used here; do nothing.
    let Ok(mut repo) = ctx.open() else {
        return Ok(0);
    };
    let Ok(exe) = std::env::current_exe() else {
        return Ok(0);
    };
    hook_run::run(
        &mut repo,
        ev,
        &input,
        &hook_run::HookRunOptions {
            exe,
            // Tests wait for the background push; Claude Code never does.
            wait_for_push: std::env::var_os("SAGE_HOOK_WAIT").is_some(),
        },
    );
    Ok(0)
}

pub fn backup_cmd(ctx: &Ctx, remote: Option<&str>, kind: &str) -> Result<i32> {
    let mut repo = ctx.open()?;
    let _lock = repo.lock("backup")?;
    let r = backup::backup(&mut repo, remote, kind)?;
    if ctx.json {
        ctx.print_json(&r)?;
        return Ok(0);
    }
    if ctx.quiet {
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{} {}: {}",
        sage::clock::format_ms(sage::clock::now_ms()),
        if r.created {
            "new snapshot"
        } else {
            "home unchanged, snapshot"
        },
        &r.snapshot[..12]
    )?;
    if r.read_back {
        writeln!(
            o,
            "  {} new objects ({}) read back and re-hashed: intact",
            r.new_objects,
            super::human_bytes(r.new_bytes)
        )?;
    }
    match (&r.remote, &r.push) {
        (Some(name), Some(p)) => writeln!(
            o,
            "  pushed to {name}: {} snapshots, {} sent{}",
            p.snapshots_sent,
            super::human_bytes(p.bytes_sent),
            p.push
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        )?,
        _ => writeln!(
            o,
            "  kept in this store only (name a remote to copy it elsewhere: sage backup REMOTE)"
        )?,
    }
    Ok(0)
}

pub fn schedule_cmd(ctx: &Ctx, cmd: ScheduleCmd) -> Result<i32> {
    let repo = ctx.open()?;
    let env = scheduler_env();
    let store_id = repo.store_id()?;
    match cmd {
        ScheduleCmd::Install { daily, remote } => {
            let daily = schedule::parse_hhmm(&daily)?;
            if let Some(r) = &remote {
                sage::sync::remote::get(&repo.db, r)?;
            }
            let exe = std::env::current_exe()?;
            let exe = exe.canonicalize().unwrap_or(exe);
            let spec = schedule::ScheduleSpec {
                exe,
                home: repo.home.clone(),
                store: repo.store_dir.clone(),
                store_id,
                daily,
                remote,
            };
            let rep = schedule::install(&env, &spec)?;
            if ctx.json {
                ctx.print_json(&rep)?;
                return Ok(0);
            }
            if ctx.quiet {
                return Ok(0);
            }
            let mut o = std::io::stdout().lock();
            let when = format!("daily at {:02}:{:02}", daily.0, daily.1);
            match rep.backend {
                schedule::Backend::Systemd => {
                    writeln!(
                        o,
                        "{} a systemd user timer, {when}:",
                        if rep.changed {
                            "installed"
                        } else {
                            "already installed:"
                        }
                    )?;
                    for f in &rep.files {
                        writeln!(
                            o,
                            "  {} {}",
                            if f.changed { "wrote" } else { "unchanged" },
                            f.path.display()
                        )?;
                        for l in f.text.lines() {
                            writeln!(o, "    | {l}")?;
                        }
                    }
                }
                schedule::Backend::Cron => {
                    writeln!(
                        o,
                        "{} a crontab line (no systemd here), {when}:",
                        if rep.changed {
                            "installed"
                        } else {
                            "already installed:"
                        }
                    )?;
                    writeln!(o, "  {}", rep.cron_line.as_deref().unwrap_or_default())?;
                }
            }
            for c in &rep.commands {
                writeln!(o, "  ran: {c}")?;
            }
            writeln!(o, "  output goes to {}", rep.log.display())?;
            Ok(0)
        }
        ScheduleCmd::Status => {
            let st = schedule::status(&env, &store_id);
            if ctx.json {
                ctx.print_json(&serde_json::json!({"installed": st.installed(), "status": st}))?;
                return Ok(0);
            }
            if ctx.quiet {
                return Ok(0);
            }
            let mut o = std::io::stdout().lock();
            if let Some(t) = &st.timer {
                writeln!(
                    o,
                    "systemd timer {} ({})",
                    t.display(),
                    st.on_calendar.as_deref().unwrap_or("no OnCalendar")
                )?;
                for c in &st.commands {
                    writeln!(o, "  runs {c}")?;
                }
            }
            if let Some(l) = &st.cron_line {
                writeln!(o, "crontab: {l}")?;
            }
            if !st.installed() {
                writeln!(o, "no schedule for this home: `sage schedule install --daily 03:00 [--remote NAME]`")?;
            }
            Ok(0)
        }
        ScheduleCmd::Remove => {
            let r = schedule::remove(&env, &store_id)?;
            if ctx.json {
                ctx.print_json(&r)?;
            } else if !ctx.quiet {
                if r.removed_files.is_empty() && r.removed_cron_line.is_none() {
                    println!("no schedule for this home: nothing removed");
                }
                for f in &r.removed_files {
                    println!("removed {}", f.display());
                }
                if let Some(l) = &r.removed_cron_line {
                    println!("removed the crontab line: {l}");
                }
                for c in &r.commands {
                    println!("  ran: {c}");
                }
            }
            Ok(0)
        }
    }
}

pub fn doctor_cmd(ctx: &Ctx, offline: bool, timeout: u64) -> Result<i32> {
    let opts = doctor::DoctorOptions {
        offline,
        timeout: Duration::from_secs(timeout),
        ..Default::default()
    };
    let env = scheduler_env();
    let rep = doctor::doctor(&ctx.home, ctx.store.as_deref(), &env, &opts);
    if ctx.json {
        ctx.print_json(&rep)?;
    } else {
        let mut o = std::io::stdout().lock();
        for f in &rep.findings {
            if ctx.quiet && f.severity == doctor::Severity::Ok {
                continue;
            }
            let sev = match f.severity {
                doctor::Severity::Ok => "ok  ",
                doctor::Severity::Warn => "WARN",
                doctor::Severity::Fail => "FAIL",
            };
            writeln!(o, "{sev}  {:<12} {}", f.check, f.message)?;
            if let Some(fix) = &f.fix {
                writeln!(o, "      {:<12} fix: {fix}", "")?;
            }
        }
        if !ctx.quiet {
            if rep.attention == 0 {
                writeln!(o, "everything is taken care of")?;
            } else {
                writeln!(o, "{} finding(s) need attention", rep.attention)?;
            }
        }
    }
    Ok(if rep.attention == 0 { 0 } else { 1 })
}
