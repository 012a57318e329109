//! `sage remote`, `sage push`, `sage pull`, `sage sync`, `sage serve`.

use super::{human_bytes, Ctx};
use anyhow::Result;
use clap::Subcommand;
use sage::sync::apply::PlanItem;
use sage::sync::client::{self, Direction, SyncOptions, SyncReport};
use sage::sync::remote::{self, Remote};
use std::io::Write;

#[derive(Subcommand)]
pub enum RemoteCmd {
    /// Add a remote: `[user@]host[:path]`, `ssh://[user@]host[:port]/path`, or a local path
    Add {
        name: String,
        url: String,
        /// A store without a home (a backup target): it never merges
        #[arg(long)]
        bare: bool,
        /// Where sage lives on the remote, when a non-interactive ssh does not find it on PATH
        #[arg(long)]
        remote_sage: Option<String>,
        /// Apply configuration (settings, hooks, commands, agents...) pulled from this remote
        #[arg(long)]
        trust_config: bool,
        /// Do not check that the remote answers
        #[arg(long)]
        no_check: bool,
        /// A project path here and where the same projects live there, LOCAL=REMOTE
        /// (e.g. /Users/me/code=/workspace); repeatable
        #[arg(long = "map", value_name = "LOCAL=REMOTE")]
        maps: Vec<String>,
    },
    /// Change a remote: its project maps, whether its configuration is trusted
    Set {
        name: String,
        /// Add or change a project map LOCAL=REMOTE; repeatable
        #[arg(long = "map", value_name = "LOCAL=REMOTE")]
        maps: Vec<String>,
        /// Remove the project map of this local path; repeatable
        #[arg(long = "unmap", value_name = "LOCAL")]
        unmaps: Vec<String>,
        /// Apply configuration pulled from this remote from now on
        #[arg(long, conflicts_with = "no_trust_config")]
        trust_config: bool,
        /// Hold configuration pulled from this remote back again
        #[arg(long)]
        no_trust_config: bool,
    },
    /// List remotes
    List,
    /// Forget a remote (nothing on it is touched)
    Remove { name: String },
}

pub fn remote_cmd(ctx: &Ctx, cmd: RemoteCmd) -> Result<i32> {
    let repo = ctx.open()?;
    match cmd {
        RemoteCmd::Add {
            name,
            url,
            bare,
            remote_sage,
            trust_config,
            no_check,
            maps,
        } => {
            for m in &maps {
                sage::pathmap::parse_map_arg(m).map_err(sage::Error::Usage)?;
            }
            let loc = remote::parse_location(&url)?;
            let url = match &loc {
                remote::Location::Local(p) => p.to_string_lossy().into_owned(),
                _ => url,
            };
            let mut r = Remote {
                name: name.clone(),
                url,
                bare,
                remote_sage,
                trust_config,
                store_id: None,
            };
            let mut said = String::from("not checked");
            if !no_check {
                let (version, store_id, has_store) = client::probe(&r)?;
                if has_store {
                    r.store_id = Some(store_id.clone());
                    said = format!("answers: sage {version}, store {store_id}");
                } else {
                    said = "answers; it has no store yet (the first push creates it)".into();
                }
            }
            remote::add(&repo.db, &r)?;
            for m in &maps {
                remote::set_map(&repo.db, &name, m)?;
            }
            if ctx.json {
                ctx.print_json(&serde_json::json!({"remote": r, "check": said}))?;
            } else if !ctx.quiet {
                println!("added remote {name} ({}): {said}", r.url);
            }
        }
        RemoteCmd::Set {
            name,
            maps,
            unmaps,
            trust_config,
            no_trust_config,
        } => {
            remote::get(&repo.db, &name)?;
            if maps.is_empty() && unmaps.is_empty() && !trust_config && !no_trust_config {
                return Err(sage::Error::Usage(
                    "nothing to change: give --map, --unmap, --trust-config or --no-trust-config"
                        .into(),
                )
                .into());
            }
            for m in &maps {
                sage::pathmap::parse_map_arg(m).map_err(sage::Error::Usage)?;
            }
            let mut said = Vec::new();
            for m in &maps {
                remote::set_map(&repo.db, &name, m)?;
                said.push(format!("map {m}"));
            }
            for u in &unmaps {
                if !remote::remove_map(&repo.db, &name, u)? {
                    return Err(sage::Error::Usage(format!(
                        "remote {name} has no map for {u} (see `sage remote list`)"
                    ))
                    .into());
                }
                said.push(format!("unmapped {u}"));
            }
            if trust_config || no_trust_config {
                remote::set_trust(&repo.db, &name, trust_config)?;
                said.push(if trust_config {
                    "configuration trusted".into()
                } else {
                    "configuration held back".into()
                });
            }
            if !ctx.quiet {
                println!("remote {name}: {}", said.join(", "));
                if !maps.is_empty() {
                    println!("  the next sync with {name} records the map (project directories are renamed in the history, not on disk)");
                }
            }
        }
        RemoteCmd::List => {
            let rs = remote::list(&repo.db)?;
            let maps = remote::maps(&repo.db)?;
            if ctx.json {
                let v: Vec<serde_json::Value> = rs
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        v["maps"] = serde_json::to_value(
                            maps.iter()
                                .filter(|m| m.remote == r.name)
                                .collect::<Vec<_>>(),
                        )
                        .unwrap_or_default();
                        v
                    })
                    .collect();
                ctx.print_json(&v)?;
            } else {
                let mut o = std::io::stdout().lock();
                for r in rs {
                    let mut flags = Vec::new();
                    if r.bare {
                        flags.push("bare");
                    }
                    if r.trust_config {
                        flags.push("trust-config");
                    }
                    writeln!(
                        o,
                        "{:<12} {}  {}{}",
                        r.name,
                        r.url,
                        r.store_id
                            .as_deref()
                            .map(|s| format!("store {}", &s[..s.len().min(12)]))
                            .unwrap_or_else(|| "store unknown".into()),
                        if flags.is_empty() {
                            String::new()
                        } else {
                            format!("  [{}]", flags.join(", "))
                        }
                    )?;
                    for m in maps.iter().filter(|m| m.remote == r.name) {
                        writeln!(o, "{:<12}   map {} = {}", "", m.local, m.remote_path)?;
                    }
                }
            }
        }
        RemoteCmd::Remove { name } => {
            remote::remove(&repo.db, &name)?;
            if !ctx.quiet {
                println!("removed remote {name} (nothing on it was touched)");
            }
        }
    }
    Ok(0)
}

pub fn sync_cmd(
    ctx: &Ctx,
    name: &str,
    dir: Direction,
    opts: SyncOptions,
    confirmed: bool,
) -> Result<i32> {
    let mut repo = ctx.open()?;
    if opts.force && !opts.dry_run && !confirmed {
        let mut e = std::io::stderr().lock();
        writeln!(e, "DANGER: DESTRUCTIVE OPERATION")?;
        writeln!(e, "This will PERMANENTLY OVERWRITE the home on {name} with this one: files and lines only {name} has leave its home")?;
        writeln!(
            e,
            "Safety snapshots: taken on both machines first (undo on {name}: sage undo there)"
        )?;
        writeln!(e, "Safer alternative: sage sync {name}")?;
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(sage::Error::Refused(
                "no TTY to confirm: pass --i-understand-data-loss-risk to proceed".into(),
            )
            .into());
        }
        writeln!(e, "To proceed, type: {}", super::rollback::PHRASE)?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim_end() != super::rollback::PHRASE {
            return Err(sage::Error::Refused("not confirmed: nothing was changed".into()).into());
        }
    }
    let _lock = repo.lock("sync")?;
    let pb = ctx.progress(name);
    let progress = |what: &str, done: u64, total: u64| {
        if let Some(pb) = &pb {
            if total > 0 {
                // objects
                pb.set_style(
                    indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} objects")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                pb.set_length(total);
            } else {
                pb.set_style(
                    indicatif::ProgressStyle::with_template("{msg} {bytes} {bytes_per_sec}")
                        .expect("valid template"),
                );
            }
            pb.set_message(format!("{what} ({name})"));
            pb.set_position(done);
        }
    };
    let report = client::run(&mut repo, name, dir, &opts, &progress);
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let report = report?;
    if ctx.json {
        ctx.print_json(&report)?;
        return Ok(0);
    }
    if ctx.quiet {
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    if report.remote_created {
        writeln!(o, "created a store on {name} ({})", report.remote_store)?;
    }
    if opts.dry_run {
        print_dry_run(&mut o, name, &report)?;
        return Ok(0);
    }
    if report.tombstones_received > 0 {
        writeln!(
            o,
            "purge from {name}: {} removed from this home and store",
            sage::purge::describe_count(report.tombstones_received)
        )?;
    }
    if report.tombstones_sent > 0 {
        writeln!(
            o,
            "purge to {name}: {} removed there",
            sage::purge::describe_count(report.tombstones_sent)
        )?;
    }
    if let Some(p) = &report.pull {
        writeln!(o, "pull from {name}: {}", p.summary())?;
        for h in &p.held_back {
            writeln!(o, "  held back (untrusted config): {h}  -> `sage remote set {name} --trust-config`, then `sage pull {name}`, applies it")?;
        }
        for c in &p.report.conflicts {
            writeln!(
                o,
                "  conflict: {c} (this home keeps its version; both are in the store)"
            )?;
        }
    }
    if let Some(p) = &report.push {
        writeln!(o, "push to {name}: {p}")?;
    }
    writeln!(
        o,
        "{} snapshots sent, {} received; {} sent, {} received",
        report.snapshots_sent,
        report.snapshots_received,
        human_bytes(report.bytes_sent),
        human_bytes(report.bytes_received)
    )?;
    Ok(0)
}

/// The plan of a `--dry-run`: what each side would gain, conflicts, held-back config, and
/// what would travel.
fn print_dry_run(o: &mut dyn Write, name: &str, report: &SyncReport) -> std::io::Result<()> {
    writeln!(o, "dry run: nothing was changed on either machine")?;
    if report.remote_has_no_store {
        writeln!(o, "{name} has no sage store yet: a push would create one")?;
    }
    let show = |o: &mut dyn Write, who: &str, plan: &[PlanItem]| -> std::io::Result<()> {
        let sessions: Vec<&PlanItem> = plan.iter().filter(|i| i.session).collect();
        let files = plan.len() - sessions.len();
        writeln!(
            o,
            "{who} would gain: {} sessions new, {} extended, {} other files",
            sessions.iter().filter(|i| i.change == "new").count(),
            sessions.iter().filter(|i| i.change != "new").count(),
            files
        )?;
        // Sessions first; a long plan is cut (--json has every path).
        const SHOWN: usize = 40;
        let mut ordered: Vec<&PlanItem> = plan.iter().filter(|i| i.session).collect();
        ordered.extend(plan.iter().filter(|i| !i.session));
        for i in ordered.iter().take(SHOWN) {
            let delta = i.bytes_after as i64 - i.bytes_before as i64;
            writeln!(
                o,
                "  {:<8} {}  ({}{})",
                i.change,
                i.path,
                if delta >= 0 { "+" } else { "-" },
                human_bytes(delta.unsigned_abs())
            )?;
        }
        if ordered.len() > SHOWN {
            writeln!(
                o,
                "  ... and {} more (--json lists every path)",
                ordered.len() - SHOWN
            )?;
        }
        Ok(())
    };
    if let Some(p) = &report.pull {
        show(o, "this home", &p.plan)?;
        for c in &p.report.conflicts {
            writeln!(o, "  conflict: {c} (each home would keep its version)")?;
        }
        for h in &p.held_back {
            writeln!(o, "  held back (untrusted config): {h}")?;
        }
        writeln!(
            o,
            "received {} snapshots to compute this ({})",
            report.snapshots_received,
            human_bytes(report.bytes_received)
        )?;
    }
    if report.snapshots_sent > 0 || !report.push_plan.is_empty() {
        if !report.push_plan.is_empty() {
            show(o, name, &report.push_plan)?;
        }
        writeln!(
            o,
            "a push would send {} snapshots, {} objects ({} before compression)",
            report.snapshots_sent,
            report.objects_sent,
            human_bytes(report.bytes_to_send)
        )?;
    }
    Ok(())
}

pub fn serve(stdio: bool) -> Result<i32> {
    if !stdio {
        return Err(sage::Error::Usage(
            "sage serve only speaks on stdin/stdout: use `sage serve --stdio`".into(),
        )
        .into());
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    sage::serve::serve(
        std::io::BufReader::with_capacity(1 << 20, stdin),
        std::io::BufWriter::with_capacity(1 << 20, stdout),
    )?;
    Ok(0)
}
