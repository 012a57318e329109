//! `sage prune` (retention policy, then gc) and `sage gc` (pack rewrite): plan, preview,
//! confirm, apply.

use super::{human_bytes, Ctx};
use anyhow::Result;
use sage::gc::{GcOptions, GcOutcome, GcPlan};
use sage::retention::{self, Policy, PrunePlan, Span};
use sage::Error;
use std::io::{IsTerminal, Write};

/// The retention flags of `sage prune` (restic's `forget` rules).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PolicyArgs {
    /// Keep the N newest snapshots (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_last: Option<i64>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_hourly: Option<i64>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_daily: Option<i64>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_weekly: Option<i64>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_monthly: Option<i64>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_yearly: Option<i64>,
    /// Keep every snapshot newer than the newest one minus this span (e.g. 7d, 1y6m, 12h)
    #[arg(long, value_name = "SPAN")]
    keep_within: Option<String>,
}

impl PolicyArgs {
    fn policy(&self) -> Result<Policy> {
        Ok(Policy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within.as_deref().map(Span::parse).transpose()?,
        })
    }
}

fn describe(p: &Policy) -> String {
    let mut parts = Vec::new();
    for (name, v) in [
        ("last", p.keep_last),
        ("hourly", p.keep_hourly),
        ("daily", p.keep_daily),
        ("weekly", p.keep_weekly),
        ("monthly", p.keep_monthly),
        ("yearly", p.keep_yearly),
    ] {
        if let Some(v) = v {
            parts.push(format!("--keep-{name} {v}"));
        }
    }
    if let Some(w) = p.keep_within {
        parts.push(format!("--keep-within {w}"));
    }
    parts.join(" ")
}

fn gc_preview(o: &mut dyn Write, g: &GcPlan) -> std::io::Result<()> {
    if g.is_noop() {
        writeln!(
            o,
            "packs: nothing to rewrite ({} packs, {})",
            g.packs_before,
            human_bytes(g.bytes_before)
        )
    } else {
        writeln!(
            o,
            "packs: rewrite {} of {} packs ({}); keep {} objects, drop {} that nothing kept reaches",
            g.rewrite.len(),
            g.packs_before,
            human_bytes(g.bytes_before),
            g.live_objects,
            g.dead_objects
        )
    }
}

fn gc_report(ctx: &Ctx, out: &GcOutcome) -> Result<()> {
    if ctx.json {
        return Ok(());
    }
    if !ctx.quiet {
        println!(
            "store: {} packs, {} -> {} packs, {} ({} objects kept, {} dropped)",
            out.packs_before,
            human_bytes(out.bytes_before),
            out.packs_after,
            human_bytes(out.bytes_after),
            out.objects_kept,
            out.objects_dropped
        );
    }
    Ok(())
}

fn gc_json(out: &GcOutcome) -> serde_json::Value {
    serde_json::to_value(out).unwrap_or_default()
}

pub fn gc(ctx: &Ctx, dry_run: bool) -> Result<i32> {
    let mut repo = ctx.open()?;
    let _lock = repo.lock("gc")?;
    let opts = GcOptions::default();
    let plan = sage::gc::plan(&repo, &opts)?;
    if dry_run {
        if ctx.json {
            ctx.print_json(&serde_json::json!({"dry_run": true, "gc": plan}))?;
        } else {
            gc_preview(&mut std::io::stdout().lock(), &plan)?;
        }
        return Ok(0);
    }
    let out = sage::gc::apply(&mut repo, &plan, &opts)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({"gc": gc_json(&out)}))?;
    }
    gc_report(ctx, &out)?;
    Ok(0)
}

fn preview(o: &mut dyn Write, plan: &PrunePlan) -> std::io::Result<()> {
    writeln!(o, "policy: {}", describe(&plan.policy))?;
    writeln!(
        o,
        "keep {} snapshots, prune the trees of {} ({} pruned earlier):",
        plan.decisions.iter().filter(|d| d.keep).count(),
        plan.prune.len(),
        plan.already_pruned
    )?;
    for d in &plan.decisions {
        writeln!(
            o,
            "  {} {}  {:5}  {}",
            d.id.short(),
            sage::clock::format_ms(d.time),
            if d.keep { "keep" } else { "prune" },
            d.reasons.join(", ")
        )?;
    }
    gc_preview(o, &plan.gc)
}

fn decisions_json(plan: &PrunePlan) -> serde_json::Value {
    let ds: Vec<_> = plan
        .decisions
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id.to_hex(), "time": d.time, "keep": d.keep, "reasons": d.reasons,
            })
        })
        .collect();
    serde_json::json!({
        "policy": plan.policy,
        "decisions": ds,
        "prune": plan.prune.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
        "already_pruned": plan.already_pruned,
        "gc": plan.gc,
    })
}

/// The destructive-operation protocol: the preview, then --dry-run stops, the flag or the
/// typed phrase on a TTY goes ahead.
fn confirm(ctx: &Ctx, plan: &PrunePlan, dry_run: bool, flag: bool) -> Result<bool> {
    let destructive = !plan.prune.is_empty();
    let stops = dry_run || (destructive && !flag);
    if ctx.json {
        if stops {
            let mut v = decisions_json(plan);
            v["dry_run"] = dry_run.into();
            ctx.print_json(&v)?;
        }
    } else if !ctx.quiet || destructive {
        preview(&mut std::io::stdout().lock(), plan)?;
    }
    if dry_run {
        return Ok(false);
    }
    if !destructive || flag {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "prune deletes the trees of old snapshots and no TTY can confirm it: pass --i-understand-data-loss-risk to proceed (or --dry-run to see the plan)".into(),
        )
        .into());
    }
    let mut e = std::io::stderr().lock();
    writeln!(e, "\nDANGER: DESTRUCTIVE OPERATION")?;
    writeln!(
        e,
        "This will PERMANENTLY DELETE the contents of {} snapshots from this store (their rows stay, marked pruned); other machines keep their own copies",
        plan.prune.len()
    )?;
    drop(e);
    super::rollback::ask_phrase()
}

pub fn prune(
    ctx: &Ctx,
    args: &PolicyArgs,
    save_defaults: bool,
    dry_run: bool,
    flag: bool,
) -> Result<i32> {
    let mut repo = ctx.open()?;
    let given = args.policy()?;
    if save_defaults {
        let _lock = repo.lock("prune --save-defaults")?;
        retention::set_stored_policy(&repo, &given)?;
        if !ctx.quiet && !ctx.json {
            println!("retention defaults: {}", describe(&given));
        }
        return Ok(0);
    }
    let _lock = repo.lock("prune")?;
    let policy = retention::stored_policy(&repo)?.overlay(&given);
    let opts = GcOptions::default();
    let mut plan = retention::plan(&repo, &policy)?;
    retention::gc_preview(&repo, &mut plan, &opts)?;
    if !confirm(ctx, &plan, dry_run, flag)? {
        return Ok(0);
    }
    let out = retention::apply(&mut repo, &plan, &opts)?;
    if ctx.json {
        let mut v = decisions_json(&plan);
        v["pruned"] = out.pruned.into();
        v["gc"] = gc_json(&out.gc);
        ctx.print_json(&v)?;
    } else if !ctx.quiet {
        println!("pruned the trees of {} snapshots", out.pruned);
    }
    gc_report(ctx, &out.gc)?;
    Ok(0)
}
