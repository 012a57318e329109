//! `sage verify`, `sage info`, `sage ops`, and the hidden `sage dev` helpers.

use super::{human_bytes, Ctx};
use anyhow::Result;
use clap::Subcommand;
use sage::verify::Finding;
use std::io::Write;

#[derive(Subcommand)]
pub enum DevCmd {
    /// Generate a realistic Claude home (seeded) for tests and benchmarks
    GenHome {
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 50)]
        size_mb: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Append lines to N sessions of a generated home
    Append {
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 20)]
        sessions: usize,
        #[arg(long, default_value_t = 10)]
        lines: usize,
        #[arg(long, default_value_t = 2)]
        seed: u64,
    },
}

pub fn verify(ctx: &Ctx, read_data: bool, repair: bool, restore_test: Option<&str>) -> Result<i32> {
    if repair {
        let rep = sage::verify::repair(
            &ctx.home,
            &ctx.store
                .clone()
                .unwrap_or_else(|| sage::repo::default_store_for(&ctx.home)),
        )?;
        if ctx.json {
            ctx.print_json(&rep)?;
        } else {
            println!(
                "repair: database {}, {} packs indexed, {} snapshots added, {} packs quarantined, {} objects salvaged, {} objects lost",
                if rep.db_rebuilt { "rebuilt" } else { "kept" },
                rep.packs_indexed,
                rep.snapshots_added,
                rep.packs_quarantined.len(),
                rep.objects_salvaged,
                rep.objects_lost
            );
            for n in &rep.notes {
                println!("  note: {n}");
            }
        }
    }
    let repo = ctx.open()?;
    let report = repo.verify(read_data)?;
    let damage = report.findings.iter().filter(|f| f.is_damage()).count();
    let rt = match restore_test {
        Some(name) => {
            let id = repo.resolve(name)?;
            Some(sage::care::restore_test::restore_test(
                &repo,
                id,
                &std::env::temp_dir(),
            )?)
        }
        None => None,
    };
    let rt_failed = rt.as_ref().is_some_and(|r| !r.passed());
    if ctx.json {
        match &rt {
            Some(r) => ctx.print_json(&serde_json::json!({"verify": report, "restore_test": r}))?,
            None => ctx.print_json(&report)?,
        }
    } else {
        let mut o = std::io::stdout().lock();
        writeln!(
            o,
            "{} packs, {} objects, {} snapshots checked{}",
            report.packs,
            report.objects,
            report.snapshots,
            if read_data {
                format!(
                    ", {} objects re-hashed ({})",
                    report.objects_checked,
                    human_bytes(report.bytes_read)
                )
            } else {
                String::new()
            }
        )?;
        for f in &report.findings {
            let line = match f {
                Finding::BrokenPack { pack, why, fix } => format!("broken pack {pack}: {why}\n    fix: {fix}"),
                Finding::PackChecksum { pack, fix } => format!("pack {pack} does not match its checksum\n    fix: {fix}"),
                Finding::CorruptObject {
                    id,
                    pack,
                    why,
                    snapshots,
                    example_path,
                    fix,
                } => format!(
                    "damaged object {} in pack {pack}: {why}; touches {snapshots} snapshot(s){}\n    fix: {fix}",
                    &id[..12],
                    example_path.as_ref().map(|p| format!(", e.g. {p}")).unwrap_or_default()
                ),
                Finding::MissingObject {
                    id,
                    snapshots,
                    example_path,
                    fix,
                } => format!(
                    "missing object {}; touches {snapshots} snapshot(s){}\n    fix: {fix}",
                    &id[..12],
                    example_path.as_ref().map(|p| format!(", e.g. {p}")).unwrap_or_default()
                ),
                Finding::OrphanPack { pack, snapshots, fix } => format!("orphan pack {pack} ({snapshots} unindexed snapshots)\n    fix: {fix}"),
                Finding::MissingPack { pack, fix } => format!("pack {pack} is listed but gone from disk\n    fix: {fix}"),
                Finding::BadHead { id, fix } => format!("HEAD names unknown snapshot {}\n    fix: {fix}", &id[..12]),
            };
            writeln!(o, "  {line}")?;
        }
        if damage == 0 {
            writeln!(o, "no damage found")?;
        } else {
            writeln!(o, "{damage} problem(s) found")?;
        }
        if let Some(r) = &rt {
            writeln!(
                o,
                "restore test of {}: {} files ({}), {} directories, {} symlinks restored into a temp dir and compared byte for byte",
                &r.snapshot[..12],
                r.files,
                human_bytes(r.bytes),
                r.dirs,
                r.symlinks
            )?;
            for m in &r.mismatches {
                writeln!(o, "  differs: {}: {}", m.path, m.why)?;
            }
            if r.passed() {
                writeln!(o, "restore test passed: the snapshot restores exactly")?;
            } else {
                writeln!(
                    o,
                    "restore test FAILED: {} path(s) did not come back as stored\n    fix: sage verify --read-data, then sage verify --repair",
                    r.mismatches.len()
                )?;
            }
        }
    }
    Ok(if damage == 0 && !rt_failed { 0 } else { 1 })
}

pub fn info(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open()?;
    let db_size: u64 = ["sage.db", "sage.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(repo.store_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let packs = repo.objects.packs();
    let pack_bytes = repo.objects.total_size();
    let objects: u64 = packs.iter().map(|p| p.object_count() as u64).sum();
    let snaps = repo.db.all_snapshots()?.len();
    let head = repo.head()?;
    let head_stats = head
        .map(|h| repo.snapshot(&h))
        .transpose()?
        .map(|r| r.stats);
    let v = serde_json::json!({
        "home": repo.home,
        "own_home": repo.own_home,
        "store": repo.store_dir,
        "store_id": repo.store_id()?,
        "format_version": sage::repo::FORMAT_VERSION,
        "schema_version": sage::db::SCHEMA_VERSION,
        "sage_version": env!("CARGO_PKG_VERSION"),
        "packs": packs.len(),
        "objects": objects,
        "pack_bytes": pack_bytes,
        "db_bytes": db_size,
        "snapshots": snaps,
        "head": head.map(|h| h.to_hex()),
        "home_bytes": head_stats.map(|s| s.bytes),
        "home_sessions": head_stats.map(|s| s.sessions),
        "home_messages": head_stats.map(|s| s.messages),
    });
    if ctx.json {
        ctx.print_json(&v)?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "home        {}{}",
        repo.home.display(),
        if repo.own_home {
            ""
        } else {
            " (not this store's home)"
        }
    )?;
    writeln!(o, "store       {}", repo.store_dir.display())?;
    writeln!(o, "store id    {}", repo.store_id()?)?;
    writeln!(
        o,
        "format      {} (schema {}), sage {}",
        sage::repo::FORMAT_VERSION,
        sage::db::SCHEMA_VERSION,
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(
        o,
        "snapshots   {snaps}, HEAD {}",
        head.map(|h| h.short()).unwrap_or("-".into())
    )?;
    writeln!(
        o,
        "packs       {} ({} objects, {})",
        packs.len(),
        objects,
        human_bytes(pack_bytes)
    )?;
    writeln!(o, "database    {}", human_bytes(db_size))?;
    if let Some(s) = head_stats {
        writeln!(
            o,
            "HEAD holds  {} sessions, {} messages, {} ({:.1}x smaller in the store)",
            s.sessions,
            s.messages,
            human_bytes(s.bytes),
            s.bytes as f64 / (pack_bytes + db_size).max(1) as f64
        )?;
    }
    Ok(0)
}

pub fn ops(ctx: &Ctx, limit: Option<usize>) -> Result<i32> {
    let repo = ctx.open()?;
    let ops: Vec<_> = repo
        .db
        .ops()?
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    if ctx.json {
        // Ids as hex (their serde form is raw bytes, for the canonical encodings).
        let hex = |id: Option<sage::ObjectId>| serde_json::Value::from(id.map(|i| i.to_hex()));
        let mut v = serde_json::to_value(&ops)?;
        for (j, op) in ops.iter().enumerate() {
            v[j]["head_before"] = hex(op.head_before);
            v[j]["head_after"] = hex(op.head_after);
            v[j]["safety"] = hex(op.safety);
        }
        return ctx.print_json(&v).map(|_| 0);
    }
    let mut o = std::io::stdout().lock();
    for op in ops {
        let undone = op
            .undone_by
            .map(|u| format!(" (undone by #{u})"))
            .unwrap_or_default();
        writeln!(
            o,
            "#{:<4} {}  {:<8} {} -> {}  {}{undone}",
            op.seq,
            sage::clock::format_ms(op.time),
            op.kind,
            op.head_before.map(|h| h.short()).unwrap_or("-".into()),
            op.head_after.map(|h| h.short()).unwrap_or("-".into()),
            op.description
        )?;
    }
    Ok(0)
}

pub fn dev(ctx: &Ctx, cmd: DevCmd) -> Result<i32> {
    match cmd {
        DevCmd::GenHome { dir, size_mb, seed } => {
            let t = std::time::Instant::now();
            let r = sage::testgen::generate_home(
                &dir,
                &sage::testgen::GenOptions::bench(size_mb, seed),
            )?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"files": r.files, "sessions": r.sessions, "lines": r.lines, "bytes": r.bytes}))?;
            } else {
                println!(
                    "generated {}: {} files, {} sessions, {} lines, {} in {:.1} s",
                    dir.display(),
                    r.files,
                    r.sessions,
                    r.lines,
                    human_bytes(r.bytes),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        DevCmd::Append {
            dir,
            sessions,
            lines,
            seed,
        } => {
            let report = sage::testgen::GenReport {
                session_paths: appendable_sessions(&dir)?,
                ..Default::default()
            };
            let n = sage::testgen::append_to_sessions(&dir, &report, sessions, lines, seed)?;
            println!("appended {} to {sessions} sessions", human_bytes(n));
        }
    }
    Ok(0)
}

/// Main transcripts (`projects/*/*.jsonl`) that end with a newline, sorted.
pub fn appendable_sessions(home: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let projects = home.join("projects");
    for p in std::fs::read_dir(&projects)?.flatten() {
        if !p.file_type()?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(p.path())?.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".jsonl") || !f.file_type()?.is_file() {
                continue;
            }
            let bytes = std::fs::read(f.path())?;
            if bytes.last() == Some(&b'\n')
                && bytes.starts_with(b"{")
                && std::str::from_utf8(&bytes).is_ok()
                && !bytes.contains(&b'\r')
            {
                out.push(format!(
                    "projects/{}/{name}",
                    p.file_name().to_string_lossy()
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}
