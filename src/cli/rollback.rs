//! `sage checkout` and `sage undo`: plan, preview, confirm, apply.

use super::{human_bytes, Ctx};
use anyhow::Result;
use sage::checkout::{CheckoutPlan, Impact, UndoStep};
use sage::session::{home_paths, SessionIndex, Target};
use sage::Error;
use std::io::{BufRead, IsTerminal, Write};

pub const PHRASE: &str = "I UNDERSTAND DATA LOSS RISK";

fn print_list(o: &mut dyn Write, title: &str, items: &[String]) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(o, "  {title} ({}):", items.len())?;
    for p in items.iter().take(15) {
        writeln!(o, "    {p}")?;
    }
    if items.len() > 15 {
        writeln!(o, "    ... and {} more", items.len() - 15)?;
    }
    Ok(())
}

fn preview(o: &mut dyn Write, plan: &CheckoutPlan) -> std::io::Result<()> {
    let i: &Impact = &plan.impact;
    writeln!(o, "plan: {} in {}", plan.description, plan.home.display())?;
    print_list(o, "files removed (the target lacks them)", &i.removed)?;
    print_list(o, "sessions truncated or rewritten", &i.truncated)?;
    print_list(o, "files replaced", &i.replaced)?;
    print_list(o, "files added", &i.added)?;
    print_list(o, "sessions extended", &i.extended)?;
    if i.removed.is_empty()
        && i.truncated.is_empty()
        && i.replaced.is_empty()
        && i.added.is_empty()
        && i.extended.is_empty()
    {
        writeln!(o, "  the home already matches")?;
    }
    if i.destructive {
        writeln!(
            o,
            "  at risk: {} messages, {} leave the home",
            i.messages_at_risk,
            human_bytes(i.bytes_at_risk)
        )?;
        match plan.safety {
            Some(s) => writeln!(o, "  safety snapshot {} holds them (undo: sage undo, or sage checkout {})", s.short(), s.short())?,
            None => writeln!(o, "  (no safety snapshot is taken for a dry run or a directory other than the store's home)")?,
        }
        writeln!(o, "  this rollback is local: other machines keep these lines, and the next sync brings them back")?;
    }
    Ok(())
}

/// Show the preview; returns whether to go ahead.
fn confirm(ctx: &Ctx, plan: &CheckoutPlan, dry_run: bool, flag: bool) -> Result<bool> {
    // With --json, one document per run: the plan when it stops here (dry run, or a
    // confirmation is needed), else the outcome that `report` prints.
    let stops = dry_run || (plan.impact.destructive && !flag);
    if ctx.json {
        if stops {
            ctx.print_json(&serde_json::json!({"plan": plan.description, "impact": plan.impact, "dry_run": dry_run}))?;
        }
    } else if !ctx.quiet || plan.impact.destructive {
        preview(&mut std::io::stdout().lock(), plan)?;
    }
    if dry_run {
        return Ok(false);
    }
    if !plan.impact.destructive || flag {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "this drops data from the home and no TTY can confirm it: pass --i-understand-data-loss-risk to proceed (or --dry-run to see the plan)".into(),
        )
        .into());
    }
    let mut e = std::io::stderr().lock();
    writeln!(e, "\nDANGER: DESTRUCTIVE OPERATION")?;
    writeln!(
        e,
        "This will PERMANENTLY REMOVE {} messages ({}) from {}",
        plan.impact.messages_at_risk,
        human_bytes(plan.impact.bytes_at_risk),
        plan.home.display()
    )?;
    if let Some(s) = plan.safety {
        writeln!(
            e,
            "Safety snapshot: {} (taken and verified; undo: sage undo / sage checkout {})",
            s.short(),
            s.short()
        )?;
    }
    drop(e);
    ask_phrase()
}

/// Ask for the typed phrase on the terminal; anything else refuses.
pub(crate) fn ask_phrase() -> Result<bool> {
    let mut e = std::io::stderr().lock();
    writeln!(e, "To proceed, type: {PHRASE}")?;
    e.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim_end_matches(['\r', '\n']) == PHRASE {
        Ok(true)
    } else {
        Err(Error::Refused("not confirmed: nothing was changed".into()).into())
    }
}

fn report(ctx: &Ctx, out: &sage::checkout::CheckoutOutcome) -> Result<()> {
    if ctx.json {
        // Ids as hex (their serde form is raw bytes, for the canonical encodings).
        let mut v = serde_json::to_value(out)?;
        v["snapshot"] = out.snapshot.map(|s| s.to_hex()).into();
        v["safety"] = out.safety.map(|s| s.to_hex()).into();
        return ctx.print_json(&v);
    }
    if !ctx.quiet {
        println!("wrote {} files, removed {}", out.written, out.removed);
    }
    if let Some(s) = out.snapshot {
        println!("HEAD is now {}", s.to_hex());
    }
    Ok(())
}

/// Turn `-- ARG...` into home-relative paths: a session (id, unique prefix, or transcript
/// path) stands for all its parts, in the target snapshot and in the home; anything else is a
/// path, as typed.
fn expand_sessions(
    ctx: &Ctx,
    repo: &sage::Repo,
    target: sage::ObjectId,
    name: &str,
    paths: &[String],
) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(vec![]);
    }
    let mut index = SessionIndex::new();
    index.add_flat(&repo.flat_local(&target)?);
    index.add_paths(home_paths(&repo.home).iter().map(String::as_str));
    let mut rels = Vec::new();
    for p in paths {
        let rel = repo.rel_path(p)?;
        let place = format!("snapshot {} or the home", target.short());
        let hint = format!("list them with `sage show {name}:`");
        match index.resolve(&rel, &place, &hint)? {
            Target::Session(s) => {
                if !ctx.quiet && !ctx.json {
                    println!("session {}: {}", s.id, s.roots.join(" "));
                }
                rels.extend(s.roots);
            }
            Target::Path(p) => rels.push(p),
        }
    }
    Ok(rels)
}

pub fn checkout(ctx: &Ctx, name: &str, paths: &[String], dry_run: bool, flag: bool) -> Result<i32> {
    let mut repo = ctx.open()?;
    let target = repo.resolve(name)?;
    let rels = expand_sessions(ctx, &repo, target, name, paths)?;
    let _lock = repo.lock("checkout")?;
    let plan = repo.prepare_checkout(target, &rels, dry_run)?;
    if !confirm(ctx, &plan, dry_run, flag)? {
        return Ok(0);
    }
    let out = repo.apply_checkout(plan)?;
    report(ctx, &out)?;
    Ok(0)
}

pub fn undo(ctx: &Ctx, dry_run: bool, flag: bool) -> Result<i32> {
    let mut repo = ctx.open()?;
    let _lock = repo.lock("undo")?;
    match repo.prepare_undo(dry_run)? {
        UndoStep::MoveHead {
            op,
            to,
            description,
        } => {
            if !ctx.quiet {
                println!(
                    "{description}: HEAD moves back to {} (the home is not touched)",
                    to.map(|t| t.short()).unwrap_or("nothing".into())
                );
            }
            if !dry_run {
                repo.undo_move_head(op, to, &description)?;
            }
        }
        UndoStep::Restore(plan) => {
            if !confirm(ctx, &plan, dry_run, flag)? {
                return Ok(0);
            }
            let out = repo.apply_checkout(*plan)?;
            report(ctx, &out)?;
        }
    }
    Ok(0)
}
