//! `sage remote`, `sage push`, `sage pull`, `sage sync`, `sage serve`.

use super::{human_bytes, Ctx};
use anyhow::Result;
use clap::Subcommand;
use sage::sync::client::{self, Direction, SyncOptions};
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
        } => {
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
            if ctx.json {
                ctx.print_json(&serde_json::json!({"remote": r, "check": said}))?;
            } else if !ctx.quiet {
                println!("added remote {name} ({}): {said}", r.url);
            }
        }
        RemoteCmd::List => {
            let rs = remote::list(&repo.db)?;
            if ctx.json {
                ctx.print_json(&rs)?;
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
    let report = client::run(&mut repo, name, dir, &opts)?;
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
        writeln!(
            o,
            "dry run: would receive {} snapshots, send {} snapshots ({} objects); nothing was changed",
            report.snapshots_received, report.snapshots_sent, report.objects_sent
        )?;
        return Ok(0);
    }
    if let Some(p) = &report.pull {
        writeln!(o, "pull from {name}: {}", p.summary())?;
        for h in &p.held_back {
            writeln!(o, "  held back (untrusted config): {h}  -> `sage remote` with --trust-config applies it")?;
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
