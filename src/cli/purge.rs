//! `sage purge`: preview what goes, confirm, then tombstone, rewrite the home and drop bytes.

use super::{human_bytes, Ctx};
use anyhow::Result;
use sage::purge::run::{self, Criteria, PurgeOutcome, PurgePlan};
use sage::Error;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub struct Args {
    pub sessions: Vec<String>,
    pub matches: Vec<String>,
    pub match_file: Option<PathBuf>,
    pub finish: bool,
    pub dry_run: bool,
    pub flag: bool,
}

/// At most this many paths in the text preview (`--json` lists all).
const SHOWN: usize = 40;

/// `1 line`, `2 lines`.
fn count(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn preview(o: &mut dyn Write, plan: &PurgePlan) -> std::io::Result<()> {
    let f = &plan.found;
    writeln!(
        o,
        "purge: {} and {} ({}), named by {}",
        count(f.lines, "line"),
        count(f.files, "file"),
        human_bytes(f.bytes),
        count(f.snapshots, "snapshot")
    )?;
    writeln!(
        o,
        "  snapshot ids stay; their trees will read without these lines, and their bytes leave the packs"
    )?;
    for s in &plan.sessions {
        writeln!(o, "session {}: {}", s.id, s.roots.join(", "))?;
    }
    if f.head.is_empty() {
        writeln!(
            o,
            "this home: nothing changes (only older snapshots hold them)"
        )?;
    } else {
        writeln!(o, "this home loses:")?;
        for (p, c) in f.head.iter().take(SHOWN) {
            if c.whole {
                writeln!(o, "  {p}  removed ({})", human_bytes(c.bytes))?;
            } else {
                writeln!(
                    o,
                    "  {p}  -{} ({})",
                    count(c.lines, "line"),
                    human_bytes(c.bytes)
                )?;
            }
        }
        if f.head.len() > SHOWN {
            writeln!(
                o,
                "  ... and {} more (--json lists all)",
                f.head.len() - SHOWN
            )?;
        }
    }
    if f.shared_kept > 0 {
        writeln!(
            o,
            "kept: {} the session shares with other sessions or files (they hold the same bytes); the session's own paths still go",
            if f.shared_kept == 1 {
                "1 line or file".to_string()
            } else {
                format!("{} lines or files", f.shared_kept)
            }
        )?;
    }
    writeln!(
        o,
        "other machines: each sync carries the purge; `sage doctor` names a remote that has not applied it"
    )?;
    if !plan.unstored.is_empty() {
        writeln!(
            o,
            "not stored by sage, so not purged, yet holding the text (edit or delete them yourself):"
        )?;
        for p in plan.unstored.iter().take(SHOWN) {
            writeln!(o, "  {p}")?;
        }
    }
    if !plan.aside.is_empty() {
        writeln!(
            o,
            "kept aside in the store and not rewritten (they may hold it; delete them once you no longer need them):"
        )?;
        for p in &plan.aside {
            writeln!(o, "  {p}")?;
        }
    }
    Ok(())
}

fn report(ctx: &Ctx, out: &PurgeOutcome) -> Result<()> {
    if ctx.json || ctx.quiet {
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "purged: {} recorded; home: {} rewritten, {} removed",
        count(out.tombstones, "tombstone"),
        count(out.rewritten as u64, "file"),
        out.removed
    )?;
    if let Some(s) = out.snapshot {
        writeln!(o, "HEAD is now {} (purge)", s.to_hex())?;
    }
    writeln!(
        o,
        "store: {} packs, {} -> {} packs, {} ({} objects dropped)",
        out.gc.packs_before,
        human_bytes(out.gc.bytes_before),
        out.gc.packs_after,
        human_bytes(out.gc.bytes_after),
        out.gc.objects_dropped
    )?;
    Ok(())
}

fn outcome_json(out: &PurgeOutcome) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(out)?;
    v["snapshot"] = out.snapshot.map(|s| s.to_hex()).into();
    Ok(v)
}

pub fn purge(ctx: &Ctx, a: Args) -> Result<i32> {
    let mut crit = Criteria {
        sessions: a.sessions,
        matches: a.matches,
    };
    if let Some(f) = &a.match_file {
        let text = std::fs::read(f)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", f.display())))?;
        for line in text.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                crit.matches
                    .push(String::from_utf8_lossy(line).into_owned());
            }
        }
        if crit.matches.is_empty() {
            return Err(Error::Usage(format!("{} holds no text to match", f.display())).into());
        }
    }
    if crit.is_empty() && !a.finish {
        return Err(Error::Usage(
            "say what to purge: --session ID, --match TEXT or --match-file FILE (or --finish to complete an earlier purge)".into(),
        )
        .into());
    }
    let mut repo = ctx.open()?;
    let _lock = repo.lock("purge")?;
    if crit.is_empty() {
        if !run::unfinished(&repo)? {
            if ctx.json {
                ctx.print_json(&serde_json::json!({"finished": true, "changed": false}))?;
            } else if !ctx.quiet {
                writeln!(
                    std::io::stdout(),
                    "nothing to finish: no purged data is left in this home or its packs"
                )?;
            }
            return Ok(0);
        }
        if a.dry_run {
            if !ctx.quiet && !ctx.json {
                writeln!(
                    std::io::stdout(),
                    "an earlier purge is unfinished: `sage purge --finish` completes it"
                )?;
            }
            return Ok(0);
        }
        let out = run::finish(&mut repo, &[], "purge --finish")?;
        if ctx.json {
            ctx.print_json(&outcome_json(&out)?)?;
        }
        report(ctx, &out)?;
        return Ok(0);
    }
    let plan = run::plan(&mut repo, &crit, a.dry_run)?;
    let plan_json = || -> Result<serde_json::Value> {
        let mut v = serde_json::to_value(&plan)?;
        v["dry_run"] = a.dry_run.into();
        Ok(v)
    };
    if plan.is_empty() && plan.unfinished && !a.dry_run {
        // What was tombstoned before (a purge killed midway, or one a sync brought) is
        // finished without asking again: the data loss was confirmed then.
        if !ctx.quiet && !ctx.json {
            writeln!(
                std::io::stdout(),
                "nothing new matches; finishing the earlier purge"
            )?;
        }
        let out = run::finish(&mut repo, &[], "purge --finish")?;
        if ctx.json {
            ctx.print_json(&outcome_json(&out)?)?;
        }
        report(ctx, &out)?;
        return Ok(0);
    }
    if plan.is_empty() {
        if ctx.json {
            ctx.print_json(&plan_json()?)?;
        } else if !ctx.quiet {
            writeln!(
                std::io::stdout(),
                "nothing to purge: no line or file of the {} kept snapshots matches ({} searched)",
                repo.db.all_snapshots()?.len(),
                human_bytes(plan.found.searched_bytes)
            )?;
            if plan.unfinished {
                writeln!(
                    std::io::stdout(),
                    "an earlier purge is unfinished: `sage purge --finish` completes it"
                )?;
            }
        }
        return Ok(0);
    }
    if ctx.json {
        if a.dry_run || !a.flag {
            ctx.print_json(&plan_json()?)?;
        }
    } else {
        preview(&mut std::io::stdout().lock(), &plan)?;
    }
    if a.dry_run {
        return Ok(0);
    }
    if !a.flag {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Refused(
                "purge deletes history for good and no TTY can confirm it: pass --i-understand-data-loss-risk to proceed (or --dry-run to see what goes)".into(),
            )
            .into());
        }
        let mut e = std::io::stderr().lock();
        writeln!(e, "\nDANGER: DESTRUCTIVE OPERATION")?;
        writeln!(
            e,
            "This will PERMANENTLY DELETE {} and {} from this home, from every snapshot of this store, and (at their next sync) from every machine this store syncs with",
            count(plan.found.lines, "line"),
            count(plan.found.files, "file")
        )?;
        drop(e);
        super::rollback::ask_phrase()?;
    }
    let out = run::execute(&mut repo, &plan)?;
    if ctx.json {
        let mut v = plan_json()?;
        v["done"] = outcome_json(&out)?;
        ctx.print_json(&v)?;
    }
    report(ctx, &out)?;
    Ok(0)
}
