//! `sage init`, `sage commit`, `sage status`.

use super::{human_bytes, Ctx};
use anyhow::Result;
use sage::diff::{diff_trees, ChangeKind};
use sage::prolly::{Layered, MemObjects};
use sage::repo::{CommitOptions, Repo};
use std::io::Write;

pub fn init(ctx: &Ctx, any_dir: bool) -> Result<i32> {
    let (repo, created) = Repo::init(&ctx.home, ctx.store.as_deref(), any_dir)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "created": created,
            "home": repo.home,
            "store": repo.store_dir,
            "store_id": repo.store_id()?,
        }))?;
    } else if !ctx.quiet {
        let verb = if created {
            "created"
        } else {
            "already exists:"
        };
        println!("store {verb} {}", repo.store_dir.display());
        println!("home            {}", repo.home.display());
        println!("store id        {}", repo.store_id()?);
    }
    Ok(0)
}

pub fn commit(ctx: &Ctx, message: &str, kind: &str) -> Result<i32> {
    if !["manual", "auto", "scheduled"].contains(&kind) {
        return Err(sage::Error::Usage(format!(
            "unknown kind {kind:?}: use manual, auto or scheduled"
        ))
        .into());
    }
    let mut repo = match Repo::open(&ctx.home, ctx.store.as_deref()) {
        Ok(r) => r,
        Err(sage::Error::NoStore { .. }) => Repo::init(&ctx.home, ctx.store.as_deref(), false)?.0,
        Err(e) => return Err(e.into()),
    };
    let _lock = repo.lock("commit")?;
    let pb = ctx.progress("snapshot");
    let progress = |done: u64, total: u64| {
        if let Some(pb) = &pb {
            pb.set_length(total);
            pb.set_position(done);
        }
    };
    let out = repo.commit(&CommitOptions {
        kind,
        message,
        progress: &progress,
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if ctx.json {
        // Ids as hex (their serde form is raw bytes, for the canonical encodings).
        let mut v = serde_json::to_value(&out)?;
        v["id"] = out.id.to_hex().into();
        ctx.print_json(&v)?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    let unusual: Vec<_> = out
        .skipped
        .iter()
        .filter(|s| s.reason.contains("UTF-8") || s.reason.contains("not a regular"))
        .collect();
    if !out.created {
        if !ctx.quiet {
            writeln!(o, "nothing changed since {}", out.id.short())?;
        }
        // A skipped file is never skipped silently, even when the snapshot is unchanged.
        for s in &unusual {
            writeln!(o, "  skipped {}: {}", s.path, s.reason)?;
        }
        return Ok(0);
    }
    writeln!(o, "snapshot {}", out.id.to_hex())?;
    if !ctx.quiet {
        writeln!(
            o,
            "  {} files, {} sessions, {} messages, {}",
            out.stats.files,
            out.stats.sessions,
            out.stats.messages,
            human_bytes(out.stats.bytes)
        )?;
        writeln!(
            o,
            "  read {} changed files ({}), stored {} new objects ({} -> {} on disk)",
            out.hashed_files,
            human_bytes(out.hashed_bytes),
            out.new_objects,
            human_bytes(out.new_bytes),
            human_bytes(out.pack_bytes)
        )?;
        for s in unusual {
            writeln!(o, "  skipped {}: {}", s.path, s.reason)?;
        }
    }
    Ok(0)
}

pub fn status(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open()?;
    let mut mem = MemObjects::default();
    let home = repo.home.clone();
    let (scan, _) = repo.scan_readonly(&home, &mut mem)?;
    let head = repo.head()?;
    let head_flat = match head {
        Some(h) => repo.flat_of(&h)?,
        None => Default::default(),
    };
    let layered = Layered {
        mem: &mem,
        base: &repo.objects,
    };
    let changes = diff_trees(&repo.objects, &head_flat, &layered, &scan.flat, None)?;
    let mut rows = Vec::new();
    for c in &changes {
        let state = match (c.change, c.is_session) {
            (ChangeKind::Added, true) => "added",
            (ChangeKind::Removed, true) => "vanished",
            (ChangeKind::Modified, true) if c.lost_count == 0 => "grown",
            (ChangeKind::Modified, true) => "rewritten",
            (ChangeKind::Added, false) => "new file",
            (ChangeKind::Removed, false) => "deleted",
            (ChangeKind::Modified, false) => "modified",
        };
        rows.push(serde_json::json!({
            "path": c.path, "state": state, "session": c.is_session,
            "messages_gained": c.gained_count, "messages_lost": c.lost_count,
            "old_size": c.old_size, "new_size": c.new_size,
        }));
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "head": head.map(|h| h.to_hex()),
            "changes": rows,
            "skipped": scan.skipped,
        }))?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    match head {
        Some(h) => writeln!(o, "since {} (HEAD):", h.short())?,
        None => writeln!(o, "no snapshot yet: `sage commit` takes the first")?,
    }
    if changes.is_empty() {
        writeln!(o, "  nothing changed")?;
    }
    for (c, r) in changes.iter().zip(&rows) {
        let state = r["state"].as_str().unwrap_or("");
        let detail = if c.is_session {
            match state {
                "added" => format!("{} messages", c.new_lines),
                "vanished" => format!("{} messages", c.old_lines),
                "grown" => format!("+{} messages", c.gained_count),
                _ => format!("+{} -{} messages", c.gained_count, c.lost_count),
            }
        } else {
            human_bytes(c.new_size.max(c.old_size))
        };
        writeln!(o, "  {state:<10} {}  ({detail})", c.path)?;
    }
    if !ctx.quiet && !scan.skipped.is_empty() {
        writeln!(o, "not stored ({}):", scan.skipped.len())?;
        for s in scan.skipped.iter().take(20) {
            writeln!(o, "  {}  [{}]", s.path, s.reason)?;
        }
        if scan.skipped.len() > 20 {
            writeln!(
                o,
                "  ... and {} more (--json lists all)",
                scan.skipped.len() - 20
            )?;
        }
    }
    Ok(0)
}
