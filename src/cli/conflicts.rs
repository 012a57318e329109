//! `sage conflicts` and `sage resolve`: see what a sync could not settle, and settle it.

use super::Ctx;
use anyhow::Result;
use sage::resolve::{self, Choice, ConflictInfo};
use sage::Error;
use std::io::{BufRead, IsTerminal, Write};

fn when(ms: Option<i64>) -> String {
    ms.map(sage::clock::format_ms).unwrap_or_else(|| "-".into())
}

fn side_label(s: &resolve::SideInfo) -> String {
    let who = if s.ours {
        "this machine".to_string()
    } else {
        format!("store {}", &s.store[..s.store.len().min(12)])
    };
    match s.size {
        Some(n) => format!("{who} ({})", super::human_bytes(n)),
        None => format!("{who} (deleted)"),
    }
}

pub fn conflicts(ctx: &Ctx, log: bool) -> Result<i32> {
    let repo = ctx.open()?;
    if log {
        // The conflict history: every resolution in the op log (undone ones marked).
        let ops: Vec<_> = repo
            .db
            .ops()?
            .into_iter()
            .filter(|o| o.kind == "resolve")
            .collect();
        if ctx.json {
            let v: Vec<serde_json::Value> = ops
                .iter()
                .map(|o| {
                    serde_json::json!({"op": o.seq, "time": sage::clock::format_rfc3339(o.time),
                        "description": o.description, "undone": o.undone_by.is_some()})
                })
                .collect();
            ctx.print_json(&v)?;
        } else {
            let mut o = std::io::stdout().lock();
            for op in ops {
                writeln!(
                    o,
                    "#{:<4} {}  {}{}",
                    op.seq,
                    sage::clock::format_ms(op.time),
                    op.description,
                    if op.undone_by.is_some() {
                        "  (undone)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        return Ok(0);
    }
    let list = resolve::list(&repo)?;
    if ctx.json {
        ctx.print_json(&list)?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(o, "no conflicts, nothing held back")?;
        return Ok(0);
    }
    for c in &list {
        writeln!(o, "{}  {}  since {}", c.kind, c.path, when(c.since))?;
        for s in &c.sides {
            writeln!(o, "    {}", side_label(s))?;
        }
    }
    writeln!(
        o,
        "\nresolve: sage resolve PATH --ours | --theirs | --both   (or --all; on a terminal, `sage resolve` asks)"
    )?;
    Ok(0)
}

/// The bytes of one side, for showing a diff (small files only).
fn side_text(repo: &sage::repo::Repo, s: &resolve::SideInfo) -> Option<String> {
    let e = s.entry.as_ref()?;
    if e.size > 256 * 1024 {
        return None;
    }
    let mut buf = Vec::new();
    repo.objects.write_entry(e, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// Show the two versions' differences and ask; `None` to skip.
fn ask(repo: &sage::repo::Repo, c: &ConflictInfo) -> Result<Option<Choice>> {
    let mut e = std::io::stderr().lock();
    writeln!(e, "\n{}  {} ({})", c.kind, c.path, c.reason)?;
    let ours = c.sides.iter().find(|s| s.ours);
    let theirs = c.sides.iter().find(|s| !s.ours);
    match (
        ours.and_then(|s| side_text(repo, s)),
        theirs.and_then(|s| side_text(repo, s)),
    ) {
        (Some(a), Some(b)) => {
            writeln!(e, "--- ours   {}", ours.map(side_label).unwrap_or_default())?;
            writeln!(
                e,
                "+++ theirs {}",
                theirs.map(side_label).unwrap_or_default()
            )?;
            let d = similar::TextDiff::from_lines(&a, &b);
            for hunk in d.unified_diff().context_radius(3).iter_hunks() {
                write!(e, "{hunk}")?;
            }
        }
        _ => {
            for s in &c.sides {
                writeln!(e, "    {}", side_label(s))?;
            }
        }
    }
    loop {
        write!(e, "keep [o]urs, [t]heirs, [b]oth, [s]kip, [q]uit? ")?;
        e.flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Ok(None);
        }
        match line.trim() {
            "o" | "ours" => return Ok(Some(Choice::Ours)),
            "t" | "theirs" => return Ok(Some(Choice::Theirs)),
            "b" | "both" => return Ok(Some(Choice::Both)),
            "s" | "skip" | "" => return Ok(None),
            "q" | "quit" => {
                return Err(Error::Refused("stopped; nothing more resolved".into()).into())
            }
            _ => {}
        }
    }
}

pub fn resolve_cmd(ctx: &Ctx, paths: &[String], all: bool, choice: Option<Choice>) -> Result<i32> {
    let mut repo = ctx.open()?;
    let _lock = repo.lock("resolve")?;
    let list = resolve::list(&repo)?;
    if paths.is_empty() && !all && choice.is_some() {
        return Err(Error::Usage(
            "name the paths to resolve, or --all (see `sage conflicts`)".into(),
        )
        .into());
    }
    let wanted: Vec<String> = paths
        .iter()
        .map(|p| repo.rel_path(p))
        .collect::<sage::Result<_>>()?;
    for w in &wanted {
        if !list.iter().any(|c| &c.path == w) {
            return Err(Error::Usage(format!(
                "{w} is not in conflict nor held back (see `sage conflicts`)"
            ))
            .into());
        }
    }
    let selected: Vec<ConflictInfo> = list
        .into_iter()
        .filter(|c| all || wanted.is_empty() || wanted.contains(&c.path))
        .collect();
    if selected.is_empty() {
        if !ctx.quiet {
            println!("nothing to resolve");
        }
        return Ok(0);
    }
    // One resolution (snapshot and op) per choice.
    let mut groups: Vec<(Choice, Vec<ConflictInfo>)> = Vec::new();
    match choice {
        Some(c) => groups.push((c, selected)),
        None => {
            if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
                return Err(Error::Usage(
                    "no terminal to ask on: give --ours, --theirs or --both".into(),
                )
                .into());
            }
            for c in selected {
                if let Some(ch) = ask(&repo, &c)? {
                    match groups.iter_mut().find(|g| g.0 == ch) {
                        Some(g) => g.1.push(c),
                        None => groups.push((ch, vec![c])),
                    }
                }
            }
        }
    }
    let mut outcomes = Vec::new();
    for (ch, cs) in groups {
        outcomes.push(resolve::resolve(&mut repo, &cs, ch)?);
    }
    if ctx.json {
        ctx.print_json(&outcomes)?;
    } else if !ctx.quiet {
        let mut o = std::io::stdout().lock();
        for out in &outcomes {
            for (p, ch) in &out.resolved {
                writeln!(o, "resolved {p}: {}", format!("{ch:?}").to_lowercase())?;
            }
            if let Some(s) = &out.snapshot {
                writeln!(
                    o,
                    "snapshot {} ({} files written); the next sync carries it to the other machine; `sage undo` reverts it",
                    &s[..12],
                    out.written
                )?;
            }
        }
    }
    Ok(0)
}
