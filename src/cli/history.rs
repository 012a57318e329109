//! `sage log`, `sage show`, `sage cat`, `sage diff`.

use super::{human_bytes, Ctx};
use anyhow::Result;
use sage::clock::format_ms;
use sage::db::SnapshotRow;
use sage::diff::{diff_trees, ChangeKind, PathChange};
use sage::messages::view;
use sage::prolly::{Layered, MemObjects, ObjectSource};
use sage::tree::FlatTree;
use sage::{Error, Repo};
use std::io::Write;

fn row_json(r: &SnapshotRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id.to_hex(),
        "time": sage::clock::format_rfc3339(r.snap.time),
        "time_ms": r.snap.time,
        "host": r.snap.host,
        "kind": r.snap.kind,
        "message": r.snap.message,
        "parents": r.snap.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
        "root": r.snap.root.to_hex(),
        "files": r.stats.files,
        "sessions": r.stats.sessions,
        "messages": r.stats.messages,
        "bytes": r.stats.bytes,
    })
}

pub fn log(
    ctx: &Ctx,
    kind: Option<String>,
    host: Option<String>,
    limit: Option<usize>,
) -> Result<i32> {
    let repo = ctx.open()?;
    let rows: Vec<SnapshotRow> = repo
        .history()?
        .into_iter()
        .filter(|r| kind.as_ref().is_none_or(|k| &r.snap.kind == k))
        .filter(|r| host.as_ref().is_none_or(|h| &r.snap.host == h))
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    if ctx.json {
        ctx.print_json(&rows.iter().map(row_json).collect::<Vec<_>>())?;
        return Ok(0);
    }
    let head = repo.head()?;
    let mut o = std::io::stdout().lock();
    for r in &rows {
        let mark = if Some(r.id) == head { " (HEAD)" } else { "" };
        writeln!(
            o,
            "{}  {}  {:<9} {:<12} {:>5} sessions {:>7} messages {:>9}  {}{mark}",
            r.id.short(),
            format_ms(r.snap.time),
            r.snap.kind,
            if r.snap.host.is_empty() {
                "-"
            } else {
                &r.snap.host
            },
            r.stats.sessions,
            r.stats.messages,
            human_bytes(r.stats.bytes),
            r.snap.message
        )?;
    }
    if rows.is_empty() && !ctx.quiet {
        writeln!(o, "no snapshots yet: `sage commit` takes the first")?;
    }
    Ok(0)
}

fn summarize(c: &PathChange) -> String {
    match (c.change, c.is_session) {
        (ChangeKind::Added, true) => format!(
            "new session, {} messages, {}",
            c.new_lines,
            human_bytes(c.new_size)
        ),
        (ChangeKind::Removed, true) => format!("session gone, {} messages", c.old_lines),
        (ChangeKind::Modified, true) => {
            let mut s = format!(
                "+{} messages, {}",
                c.gained_count,
                human_bytes(c.gained.iter().map(|l| l.len).sum())
            );
            if c.lost_count > 0 {
                s.push_str(&format!(", -{} messages", c.lost_count));
            }
            s
        }
        (ChangeKind::Added, false) => format!("new file, {}", human_bytes(c.new_size)),
        (ChangeKind::Removed, false) => "removed".into(),
        (ChangeKind::Modified, false) => format!(
            "modified, {} -> {}",
            human_bytes(c.old_size),
            human_bytes(c.new_size)
        ),
    }
}

pub fn show(ctx: &Ctx, name: &str) -> Result<i32> {
    let repo = ctx.open()?;
    let id = repo.resolve(name)?;
    let row = repo.snapshot(&id)?;
    let prev = repo.previous_head(&id)?;
    let new_flat = repo.flat_of(&id)?;
    let old_flat = match prev {
        Some(p) => repo.flat_of(&p)?,
        None => FlatTree::new(),
    };
    let changes = diff_trees(&repo.objects, &old_flat, &repo.objects, &new_flat, None)?;
    if ctx.json {
        let mut v = row_json(&row);
        v["changes"] = serde_json::to_value(&changes)?;
        v["compared_with"] = serde_json::json!(prev.map(|p| p.to_hex()));
        ctx.print_json(&v)?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    writeln!(o, "snapshot {}", id.to_hex())?;
    for p in &row.snap.parents {
        writeln!(o, "parent   {}", p.to_hex())?;
    }
    writeln!(o, "kind     {}", row.snap.kind)?;
    writeln!(o, "host     {}", row.snap.host)?;
    writeln!(o, "time     {}", format_ms(row.snap.time))?;
    writeln!(o, "message  {}", row.snap.message)?;
    writeln!(
        o,
        "contents {} files, {} sessions, {} messages, {}",
        row.stats.files,
        row.stats.sessions,
        row.stats.messages,
        human_bytes(row.stats.bytes)
    )?;
    match prev {
        Some(p) => writeln!(o, "changes since {}:", p.short())?,
        None => writeln!(o, "changes (first snapshot):")?,
    }
    if changes.is_empty() {
        writeln!(o, "  none")?;
    }
    for c in changes.iter().take(200) {
        writeln!(o, "  {}  {}", c.path, summarize(c))?;
    }
    if changes.len() > 200 {
        writeln!(
            o,
            "  ... and {} more (--json lists all)",
            changes.len() - 200
        )?;
    }
    Ok(0)
}

pub fn cat(ctx: &Ctx, spec: &str) -> Result<i32> {
    let repo = ctx.open()?;
    let (snap, path) = spec.split_once(':').ok_or_else(|| {
        Error::Usage(format!(
            "{spec:?}: use SNAPSHOT:PATH, e.g. HEAD:history.jsonl"
        ))
    })?;
    let id = repo.resolve(snap)?;
    let rel = repo.rel_path(path)?;
    let row = repo.snapshot(&id)?;
    let e = sage::tree::lookup_path(&repo.objects, row.snap.root, &rel)?
        .ok_or_else(|| Error::Usage(format!("{rel} is not in snapshot {}", id.short())))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    repo.write_entry(&e, &mut out)?;
    out.flush()?;
    Ok(0)
}

/// The two sides of a diff: (source, tree, label) for each.
pub fn diff(ctx: &Ctx, a: Option<String>, b: Option<String>, paths: &[String]) -> Result<i32> {
    let repo = ctx.open()?;
    let mut mem = MemObjects {
        keep_data: true,
        ..Default::default()
    };
    let side = |repo: &Repo, name: &str| -> Result<(FlatTree, String)> {
        let id = repo.resolve(name)?;
        Ok((repo.flat_of(&id)?, id.short()))
    };
    let (fa, la) = side(&repo, a.as_deref().unwrap_or("HEAD"))?;
    let home_side = b.is_none();
    let (fb, lb) = match &b {
        Some(b) => side(&repo, b)?,
        None => {
            let home = repo.home.clone();
            let (scan, _) = repo.scan_readonly(&home, &mut mem)?;
            (scan.flat, "home".to_string())
        }
    };
    let rels: Vec<String> = paths
        .iter()
        .map(|p| repo.rel_path(p))
        .collect::<sage::Result<_>>()?;
    let filter = |p: &str| rels.is_empty() || sage::checkout::under_any(p, &rels);
    let layered = Layered {
        mem: &mem,
        base: &repo.objects,
    };
    let src_b: &dyn ObjectSource = if home_side { &layered } else { &repo.objects };
    let changes = diff_trees(&repo.objects, &fa, src_b, &fb, Some(&filter))?;
    let text = |src: &dyn ObjectSource, l: sage::object::DataRef| -> sage::messages::MessageView {
        let bytes = if l.is_chunked() {
            b"[large line]".to_vec()
        } else {
            src.get(l.id, sage::Kind::Line)
                .unwrap_or_else(|_| b"[unreadable]".to_vec())
        };
        view(&bytes, 160)
    };
    if ctx.json {
        let out: Vec<_> = changes
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["gained"] = serde_json::to_value(
                    c.gained.iter().map(|l| text(src_b, *l)).collect::<Vec<_>>(),
                )
                .unwrap_or_default();
                v["lost"] = serde_json::to_value(
                    c.lost
                        .iter()
                        .map(|l| text(&repo.objects, *l))
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_default();
                v
            })
            .collect();
        ctx.print_json(&serde_json::json!({"from": la, "to": lb, "changes": out}))?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    writeln!(o, "{la} -> {lb}")?;
    if changes.is_empty() {
        writeln!(o, "  no differences")?;
    }
    for c in &changes {
        writeln!(o, "{}  ({})", c.path, summarize(c))?;
        if !c.is_session || ctx.quiet {
            continue;
        }
        for (sign, src, lines) in [
            ("+", src_b, &c.gained),
            ("-", &repo.objects as &dyn ObjectSource, &c.lost),
        ] {
            for l in lines.iter().take(50) {
                let v = text(src, *l);
                writeln!(
                    o,
                    "  {sign} {:<9} {:<24} {}",
                    v.role,
                    v.time.unwrap_or_default(),
                    v.text
                )?;
            }
            if lines.len() > 50 {
                writeln!(o, "  {sign} ... {} more", lines.len() - 50)?;
            }
        }
    }
    Ok(0)
}
