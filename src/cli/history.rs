//! `sage log`, `sage show`, `sage cat`, `sage diff`, and the session viewer they share:
//! a conversation rendered as a person reads it (role, time, text, tool calls on one line),
//! plain on a pipe, in colour on a terminal unless `NO_COLOR` is set.

use super::{human_bytes, Ctx};
use anyhow::Result;
use sage::clock::format_ms;
use sage::db::SnapshotRow;
use sage::diff::{diff_trees, ChangeKind, PathChange};
use sage::messages::{parse, view, Block, Message};
use sage::object::{DataRef, EntryKind};
use sage::prolly::{Layered, MemObjects, ObjectSource};
use sage::session::{
    line_bytes, read_conversation, transcript_of, Conversation, SessionIndex, SessionParts, Target,
};
use sage::tree::FlatTree;
use sage::{Error, ObjectId, Repo};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

/// ANSI colour, on a terminal only, and never with `NO_COLOR` set (https://no-color.org).
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn detect(ctx: &Ctx) -> Paint {
        Paint(
            !ctx.json
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
    }
    fn on(&self, code: &str, s: &str) -> String {
        if self.0 && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn role(&self, role: &str, padded: &str) -> String {
        let code = match role {
            "user" => "1;32",
            "assistant" => "1;36",
            "tool" => "2",
            "system" | "summary" => "33",
            _ => "2",
        };
        self.on(code, padded)
    }
}

/// Width of ` role time ` after the mark, before a message's text.
const TEXT_COLUMN: usize = 1 + 10 + 25;

/// The lines a message shows: text blocks as written, every other block on one line.
fn message_lines(m: &Message) -> Vec<String> {
    let mut out = Vec::new();
    for b in &m.blocks {
        match b {
            Block::Text { text } => {
                let t = text.trim_matches('\n').trim_end();
                out.extend(t.lines().map(printable));
            }
            other => out.push(other.render()),
        }
    }
    while out.first().is_some_and(|l| l.trim().is_empty()) {
        out.remove(0);
    }
    out
}

/// A line of transcript text made safe for a terminal: control characters (escape
/// sequences written by tools) shown as `^[` and friends, tabs kept.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '\t' => vec![c],
            c if (c as u32) < 0x20 => vec!['^', char::from(b'@' + c as u8)],
            '\u{7f}' => vec!['^', '?'],
            c => vec![c],
        })
        .collect()
}

/// One message as the viewer shows it: `mark role time  text`, further lines aligned under
/// the text. `same_reply` leaves role and time blank for the later lines of one reply.
fn write_message(
    o: &mut dyn Write,
    p: Paint,
    mark: &str,
    m: &Message,
    same_reply: bool,
) -> std::io::Result<()> {
    let lines = message_lines(m);
    let (role, time) = if same_reply {
        (String::new(), String::new())
    } else {
        (m.role.clone(), m.time.clone().unwrap_or_default())
    };
    let head = format!(
        "{} {} {} ",
        mark,
        p.role(&m.role, &format!("{role:<9}")),
        p.on("2", &format!("{time:<24}"))
    );
    let column = visible_len(mark) + TEXT_COLUMN;
    let mut it = lines.iter();
    let first = it.next().map(String::as_str).unwrap_or("");
    writeln!(o, "{head}{}", tint_block(p, m, first))?;
    for l in it {
        writeln!(o, "{:column$}{}", "", tint_block(p, m, l))?;
    }
    Ok(())
}

/// Characters a terminal shows (ANSI colour sequences left out).
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (false, _) => n += 1,
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    n
}

/// Folded blocks (`[tool ...]`, `[image ...]`) dimmed, prose as is.
fn tint_block(p: Paint, m: &Message, line: &str) -> String {
    if line.starts_with('[') && m.blocks.iter().any(|b| !matches!(b, Block::Text { .. })) {
        p.on("2", line)
    } else {
        line.to_string()
    }
}

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
    session: Option<String>,
) -> Result<i32> {
    let repo = ctx.open()?;
    if let Some(arg) = session {
        return session_log(ctx, &repo, &arg, kind, host, limit);
    }
    let rows: Vec<SnapshotRow> = repo
        .history()?
        .into_iter()
        .filter(|r| kind.as_ref().is_none_or(|k| &r.snap.kind == k))
        .filter(|r| host.as_ref().is_none_or(|h| &r.snap.host == h))
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let pruned = repo.db.pruned()?;
    if ctx.json {
        let mut v: Vec<_> = rows.iter().map(row_json).collect();
        for (j, r) in v.iter_mut().zip(&rows) {
            j["pruned"] = pruned.contains(&r.id).into();
        }
        ctx.print_json(&v)?;
        return Ok(0);
    }
    let head = repo.head()?;
    let mut o = std::io::stdout().lock();
    for r in &rows {
        let mark = if Some(r.id) == head {
            " (HEAD)"
        } else if pruned.contains(&r.id) {
            " [trees pruned]"
        } else {
            ""
        };
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

/// `sage log --session`: the snapshots in which one session changed.
fn session_log(
    ctx: &Ctx,
    repo: &Repo,
    arg: &str,
    kind: Option<String>,
    host: Option<String>,
    limit: Option<usize>,
) -> Result<i32> {
    let rel = repo.rel_path(arg)?;
    let mut log = sage::session::session_log(repo, &rel)?;
    log.changes.retain(|c| {
        kind.as_ref().is_none_or(|k| &c.kind == k) && host.as_ref().is_none_or(|h| &c.host == h)
    });
    log.changes.truncate(limit.unwrap_or(usize::MAX));
    if ctx.json {
        ctx.print_json(&log)?;
        return Ok(0);
    }
    let p = Paint::detect(ctx);
    let mut o = std::io::stdout().lock();
    let s = &log.session;
    writeln!(
        o,
        "session {}  {}",
        p.on("1", &s.id),
        s.transcripts.join(" ")
    )?;
    for c in &log.changes {
        let delta = match (c.change, c.messages_delta) {
            ("removed", _) => "gone".to_string(),
            (_, d) if d >= 0 => format!("+{d}"),
            (_, d) => d.to_string(),
        };
        writeln!(
            o,
            "{}  {}  {:<9} {:<10} {:>6} {:>5} messages {:>9}  {}  {}",
            p.on("33", &c.snapshot.short()),
            format_ms(c.time_ms),
            c.kind,
            if c.host.is_empty() { "-" } else { &c.host },
            delta,
            c.messages,
            human_bytes(c.bytes),
            c.fingerprint.as_deref().unwrap_or("-               "),
            c.message
        )?;
    }
    if log.changes.is_empty() && !ctx.quiet {
        writeln!(o, "  in no snapshot (yet): `sage commit` takes one")?;
    }
    if !log.same_conversation.is_empty() {
        writeln!(
            o,
            "same conversation (same fingerprint) also in: {}",
            log.same_conversation.join(", ")
        )?;
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
    if let Some((snap, what)) = name.split_once(':') {
        return show_session(ctx, &repo, snap, what);
    }
    let id = repo.resolve(name)?;
    let row = repo.snapshot(&id)?;
    // A pruned predecessor has no tree to compare with: the snapshot is shown whole.
    let prev = repo
        .previous_head(&id)?
        .filter(|p| !repo.db.is_pruned(p).unwrap_or(false));
    let new_flat = repo.flat_local(&id)?;
    let old_flat = match prev {
        Some(p) => repo.flat_local(&p)?,
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

/// `sage show SNAP:SESSION` (a conversation), `SNAP:` or `SNAP:DIR` (its sessions).
fn show_session(ctx: &Ctx, repo: &Repo, snap: &str, what: &str) -> Result<i32> {
    let id = repo.resolve(snap)?;
    let flat = repo.flat_local(&id)?;
    let mut index = SessionIndex::new();
    index.add_flat(&flat);
    let rel = repo.rel_path(what)?;
    let hint = format!("list them with `sage show {snap}:`");
    let target = index.resolve(&rel, &format!("snapshot {}", id.short()), &hint)?;
    let path = match target {
        Target::Session(s) => return render_session(ctx, repo, id, &flat, &s),
        Target::Path(p) => p,
    };
    match flat.get(&path) {
        Some(e) if e.kind == EntryKind::Session => {
            // A transcript that is not a main session (a subagent's, history.jsonl).
            let parts = SessionParts {
                id: path.rsplit('/').next().unwrap_or(&path).trim_end_matches(".jsonl").into(),
                transcripts: vec![path.clone()],
                roots: vec![path.clone()],
            };
            render_session(ctx, repo, id, &flat, &parts)
        }
        Some(_) => Err(Error::Usage(format!(
            "{path} is a file, not a session\n  fix: `sage cat {snap}:{path}` prints its bytes; {hint}"
        ))
        .into()),
        None if path.is_empty() || flat.keys().any(|p| p.starts_with(&format!("{path}/"))) => {
            list_sessions(ctx, repo, id, &flat, &index, &path)
        }
        None => Err(Error::Usage(format!(
            "{path} is not in snapshot {}\n  fix: {hint}",
            id.short()
        ))
        .into()),
    }
}

/// The sessions of a snapshot under `dir` (all when empty).
fn list_sessions(
    ctx: &Ctx,
    repo: &Repo,
    id: ObjectId,
    flat: &FlatTree,
    index: &SessionIndex,
    dir: &str,
) -> Result<i32> {
    let mut rows = Vec::new();
    for s in index.sessions() {
        for t in &s.transcripts {
            if !dir.is_empty() && !t.starts_with(&format!("{dir}/")) {
                continue;
            }
            let Some(e) = flat.get(t) else { continue };
            let lines = match e.id {
                Some(sid) if e.kind == EntryKind::Session => {
                    let sess: sage::object::Session =
                        sage::object::decode(sid, &repo.objects.read(sid, sage::Kind::Session)?)?;
                    sess.count + u64::from(sess.tail.is_some())
                }
                _ => 0,
            };
            rows.push(serde_json::json!({
                "id": s.id, "path": t, "lines": lines, "bytes": e.size, "parts": s.roots.len(),
            }));
        }
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({"snapshot": id.to_hex(), "sessions": rows}))?;
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    writeln!(o, "{} sessions in snapshot {}", rows.len(), id.short())?;
    for r in &rows {
        writeln!(
            o,
            "{}  {:>6} lines {:>9}  {}",
            r["id"].as_str().unwrap_or(""),
            r["lines"],
            human_bytes(r["bytes"].as_u64().unwrap_or(0)),
            r["path"].as_str().unwrap_or("")
        )?;
    }
    Ok(0)
}

/// Count the files of a snapshot under each root of a session.
fn part_counts(flat: &FlatTree, s: &SessionParts) -> Vec<(String, usize)> {
    s.roots
        .iter()
        .filter(|r| !s.transcripts.contains(r))
        .map(|r| {
            let n = flat
                .iter()
                .filter(|(p, e)| {
                    e.kind != EntryKind::Dir && (*p == r || p.starts_with(&format!("{r}/")))
                })
                .count();
            (r.clone(), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn render_session(
    ctx: &Ctx,
    repo: &Repo,
    snap: ObjectId,
    flat: &FlatTree,
    s: &SessionParts,
) -> Result<i32> {
    let mut convs: Vec<(String, Conversation)> = Vec::new();
    for t in &s.transcripts {
        if let Some(e) = flat.get(t).filter(|e| e.kind == EntryKind::Session) {
            convs.push((t.clone(), read_conversation(&repo.objects, e)?));
        }
    }
    let parts = part_counts(flat, s);
    // Its other transcripts (subagents): named, to be read with `show SNAP:PATH`.
    let mut subagents = Vec::new();
    for (path, e) in flat {
        let inside = s
            .roots
            .iter()
            .any(|r| !s.transcripts.contains(r) && path.starts_with(&format!("{r}/")));
        if inside && e.kind == EntryKind::Session {
            if let Some(sid) = e.id {
                let sess: sage::object::Session =
                    sage::object::decode(sid, &repo.objects.read(sid, sage::Kind::Session)?)?;
                let lines = sess.count + u64::from(sess.tail.is_some());
                subagents.push(serde_json::json!({"path": path, "lines": lines, "bytes": e.size}));
            }
        }
    }
    if ctx.json {
        let transcripts: Vec<_> = convs
            .iter()
            .map(|(path, c)| {
                let rows: Vec<_> = c
                    .rows
                    .iter()
                    .filter_map(|r| {
                        let m = r.message.as_ref().filter(|m| m.is_shown())?;
                        Some(serde_json::json!({
                            "line": r.line,
                            "role": m.role,
                            "kind": m.kind,
                            "time": m.time,
                            "uuid": m.uuid,
                            "parent": m.parent,
                            "on_resume_path": r.on_resume_path,
                            "branch": r.branch,
                            "text": m.one_line(usize::MAX),
                            "blocks": m.blocks,
                        }))
                    })
                    .collect();
                serde_json::json!({
                    "path": path, "lines": c.lines, "messages": c.messages,
                    "fingerprint": c.fingerprint, "resume_leaf": c.resume_leaf,
                    "forks": c.forks, "compactions": c.compactions, "rows": rows,
                })
            })
            .collect();
        ctx.print_json(&serde_json::json!({
            "snapshot": snap.to_hex(),
            "session": s.id,
            "roots": s.roots,
            "parts": parts.iter().map(|(p, n)| serde_json::json!({"path": p, "files": n})).collect::<Vec<_>>(),
            "transcripts": transcripts,
            "subagents": subagents,
        }))?;
        return Ok(0);
    }
    let p = Paint::detect(ctx);
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "session  {}  (snapshot {})",
        p.on("1", &s.id),
        snap.short()
    )?;
    for (path, n) in &parts {
        let files = if *n == 1 { "file" } else { "files" };
        writeln!(o, "part     {path}  ({n} {files})")?;
    }
    for a in &subagents {
        writeln!(
            o,
            "subagent {}  ({} lines)",
            a["path"].as_str().unwrap_or(""),
            a["lines"]
        )?;
    }
    if convs.is_empty() {
        writeln!(o, "  no transcript in this snapshot")?;
    }
    for (path, c) in &convs {
        writeln!(
            o,
            "transcript {path}  ({} lines, {} messages, fingerprint {})",
            c.lines,
            c.messages,
            c.fingerprint.as_deref().unwrap_or("-")
        )?;
        if c.resume_leaf.is_some() {
            let forks = match c.forks {
                0 => String::new(),
                1 => ", which forks once".into(),
                n => format!(", which forks {n} times"),
            };
            writeln!(
                o,
                "{} marks what Claude Code would resume: the newest branch{forks}{}",
                p.on("33", "*"),
                if c.compactions > 0 {
                    ", back to the last compaction"
                } else {
                    ""
                }
            )?;
        }
        writeln!(o)?;
        let mut last_reply: Option<&str> = None;
        for r in &c.rows {
            if let Some(b) = &r.branch {
                let note = format!(
                    "-- branch {}/{}{} --",
                    b.index,
                    b.of,
                    if b.resumed { " (resumed)" } else { "" }
                );
                writeln!(o, "{}", p.on("35", &note))?;
                last_reply = None;
            }
            let Some(m) = r.message.as_ref().filter(|m| m.is_shown()) else {
                continue;
            };
            let mark = if r.on_resume_path {
                p.on("33", "*")
            } else {
                " ".into()
            };
            let same = m.message_id.is_some() && m.message_id.as_deref() == last_reply;
            write_message(&mut o, p, &mark, m, same)?;
            last_reply = m.message_id.as_deref();
        }
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
    let canonical = repo.pathmap()?.canonical_path(&rel);
    let e = sage::tree::lookup_path(&repo.objects, row.snap.root, &canonical)?
        .ok_or_else(|| Error::Usage(format!("{rel} is not in snapshot {}", id.short())))?;
    let e = sage::purge::effective_entry(&repo.objects, &e)?.ok_or_else(|| {
        Error::Usage(format!(
            "{rel} was purged (`sage purge`): snapshot {} no longer holds it",
            id.short()
        ))
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    repo.write_entry(&e, &mut out)?;
    out.flush()?;
    Ok(0)
}

/// At most this many messages per side of one transcript are rendered by `diff`.
const DIFF_SHOWN: usize = 200;

/// One side (gained or lost) of a transcript's change, read.
#[derive(Default)]
struct Side {
    messages: u64,
    other: u64,
    bytes: u64,
    shown: Vec<Message>,
    not_shown: usize,
    views: Vec<sage::messages::MessageView>,
}

/// Read one side. `every`: show every JSON line, not only the conversation's (for line logs
/// such as `history.jsonl`, which are not conversations).
fn read_side(src: &dyn ObjectSource, lines: &[DataRef], json: bool, every: bool) -> Side {
    let mut side = Side::default();
    for l in lines {
        side.bytes += l.len;
        let bytes = line_bytes(src, *l).unwrap_or_else(|_| b"[unreadable]".to_vec());
        let m = parse(&bytes);
        if m.as_ref().is_some_and(Message::is_message) {
            side.messages += 1;
        } else {
            side.other += 1;
        }
        if json {
            side.views.push(view(&bytes, 160));
        }
        if let Some(m) = m.filter(|m| every || m.is_shown()) {
            if side.shown.len() < DIFF_SHOWN {
                side.shown.push(m);
            } else {
                side.not_shown += 1;
            }
        }
    }
    side
}

fn session_summary(c: &PathChange, g: &Side, l: &Side) -> String {
    let mut s = match c.change {
        ChangeKind::Added => format!(
            "new session, {} messages, {}",
            g.messages,
            human_bytes(c.new_size)
        ),
        ChangeKind::Removed => format!("session gone, {} messages", l.messages),
        ChangeKind::Modified => {
            let gained = format!("+{} messages, {}", g.messages, human_bytes(g.bytes));
            let lost = format!("-{} messages, -{}", l.messages, human_bytes(l.bytes));
            match (c.gained_count > 0, c.lost_count > 0) {
                (true, true) => format!("{gained}, {lost}"),
                (false, true) => lost,
                _ => gained,
            }
        }
    };
    if c.change == ChangeKind::Modified && g.other + l.other > 0 {
        s.push_str(&format!(", +{}/-{} other lines", g.other, l.other));
    }
    s
}

/// `sage diff [A [B]] [-- SESSION|PATH...]`: per session, the messages B has that A lacks
/// (and the other way, for a rollback). B defaults to the home, A to HEAD.
pub fn diff(ctx: &Ctx, a: Option<String>, b: Option<String>, paths: &[String]) -> Result<i32> {
    let repo = ctx.open()?;
    let mut mem = MemObjects {
        keep_data: true,
        ..Default::default()
    };
    let side = |repo: &Repo, name: &str| -> Result<(FlatTree, String)> {
        let id = repo.resolve(name)?;
        Ok((repo.flat_local(&id)?, id.short()))
    };
    let (fa, la) = side(&repo, a.as_deref().unwrap_or("HEAD"))?;
    let home_side = b.is_none();
    let (fb, lb) = match &b {
        Some(b) => side(&repo, b)?,
        None => {
            let home = repo.home.clone();
            let (scan, _) = repo.scan_readonly(&home, &mut mem)?;
            (repo.localize(scan.flat)?, "home".to_string())
        }
    };
    let mut index = SessionIndex::new();
    index.add_flat(&fa);
    index.add_flat(&fb);
    let mut rels: Vec<String> = Vec::new();
    for p in paths {
        let rel = repo.rel_path(p)?;
        let hint = format!(
            "list them with `sage show {}:`",
            a.as_deref().unwrap_or("HEAD")
        );
        match index.resolve(&rel, &format!("{la} or {lb}"), &hint)? {
            Target::Session(s) => rels.extend(s.roots),
            Target::Path(p) => rels.push(p),
        }
    }
    let filter = |p: &str| rels.is_empty() || sage::checkout::under_any(p, &rels);
    let layered = Layered {
        mem: &mem,
        base: &repo.objects,
    };
    let src_b: &dyn ObjectSource = if home_side { &layered } else { &repo.objects };
    let changes = diff_trees(&repo.objects, &fa, src_b, &fb, Some(&filter))?;
    // Group by session: each session's changes together, its transcript first.
    let owner: Vec<Option<&SessionParts>> =
        changes.iter().map(|c| index.owner_of(&c.path)).collect();
    let read: Vec<(Side, Side)> = changes
        .iter()
        .zip(&owner)
        .map(|(c, o)| {
            let every = o.is_none();
            (
                read_side(src_b, &c.gained, ctx.json, every),
                read_side(&repo.objects, &c.lost, ctx.json, every),
            )
        })
        .collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut order: Vec<Option<&str>> = Vec::new();
    for (i, o) in owner.iter().enumerate() {
        match o {
            Some(s) => {
                let g = groups.entry(&s.id).or_default();
                if g.is_empty() {
                    order.push(Some(&s.id));
                }
                g.push(i);
            }
            None => order.push(None),
        }
    }
    if ctx.json {
        let out: Vec<_> = changes
            .iter()
            .zip(&read)
            .zip(&owner)
            .map(|((c, (g, l)), o)| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["gained"] = serde_json::to_value(&g.views).unwrap_or_default();
                v["lost"] = serde_json::to_value(&l.views).unwrap_or_default();
                v["gained_messages"] = g.messages.into();
                v["lost_messages"] = l.messages.into();
                v["gained_bytes"] = g.bytes.into();
                v["session"] = o.map(|s| s.id.clone()).into();
                v
            })
            .collect();
        let sessions: Vec<_> = groups
            .iter()
            .map(|(id, idx)| {
                let sum = |f: &dyn Fn(&(Side, Side)) -> u64| {
                    idx.iter().map(|&i| f(&read[i])).sum::<u64>()
                };
                let transcript = idx
                    .iter()
                    .map(|&i| &changes[i])
                    .find(|c| transcript_of(&c.path).is_some());
                serde_json::json!({
                    "id": id,
                    "transcript": transcript.map(|c| c.path.clone()),
                    "summary": transcript.map(|c| {
                        let i = changes.iter().position(|x| x.path == c.path).unwrap_or(0);
                        session_summary(c, &read[i].0, &read[i].1)
                    }),
                    "gained_messages": sum(&|r| r.0.messages),
                    "lost_messages": sum(&|r| r.1.messages),
                    "gained_bytes": sum(&|r| r.0.bytes),
                    "lost_bytes": sum(&|r| r.1.bytes),
                    "paths": idx.iter().map(|&i| changes[i].path.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        ctx.print_json(
            &serde_json::json!({"from": la, "to": lb, "changes": out, "sessions": sessions}),
        )?;
        return Ok(0);
    }
    let p = Paint::detect(ctx);
    let mut o = std::io::stdout().lock();
    writeln!(o, "{la} -> {lb}")?;
    if changes.is_empty() {
        writeln!(o, "  no differences")?;
    }
    let mut next_plain = 0..changes.len();
    for g in order {
        let idx: Vec<usize> = match g {
            Some(id) => {
                let mut v = groups[id].clone();
                v.sort_by_key(|&i| transcript_of(&changes[i].path).is_none());
                v
            }
            None => {
                // The next change that no session owns.
                let i = next_plain
                    .find(|&i| owner[i].is_none())
                    .expect("one per None in order");
                vec![i]
            }
        };
        if let Some(id) = g {
            if !idx
                .iter()
                .any(|&i| transcript_of(&changes[i].path).is_some())
            {
                writeln!(o, "session {}  (transcript unchanged)", p.on("1", id))?;
            }
        }
        for (n, &i) in idx.iter().enumerate() {
            let c = &changes[i];
            let (gs, ls) = &read[i];
            let indent = if g.is_some() && (n > 0 || transcript_of(&c.path).is_none()) {
                "  "
            } else {
                ""
            };
            let summary = if c.is_session && g.is_some() {
                session_summary(c, gs, ls)
            } else {
                // Files, and line logs that are not conversations (history.jsonl).
                summarize(c)
            };
            writeln!(o, "{indent}{}  ({summary})", p.on("1", &c.path))?;
            if !c.is_session || ctx.quiet {
                continue;
            }
            for (sign, side, code) in [("+", gs, "32"), ("-", ls, "31")] {
                let mark = format!("{indent}  {}", p.on(code, sign));
                let mut last: Option<&str> = None;
                for m in &side.shown {
                    let same = m.message_id.is_some() && m.message_id.as_deref() == last;
                    write_message(&mut o, p, &mark, m, same)?;
                    last = m.message_id.as_deref();
                }
                if side.not_shown > 0 {
                    let whole = match (g, sign) {
                        (Some(id), "+") if !home_side => format!(": sage show {lb}:{id}"),
                        (Some(id), "-") => format!(": sage show {la}:{id}"),
                        _ => String::new(),
                    };
                    writeln!(o, "{indent}  {sign} ... {} more{whole}", side.not_shown)?;
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_is_made_printable_and_measured_without_colour() {
        assert_eq!(printable("a\x1b[1mb\tc\x7f"), "a^[[1mb\tc^?");
        assert_eq!(visible_len("\x1b[33m*\x1b[0m"), 1);
        assert_eq!(visible_len("  +"), 3);
        let m = parse(br#"{"type":"assistant","timestamp":"T","message":{"role":"assistant","content":[{"type":"text","text":"\n\none\ntwo"},{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}"#).unwrap();
        assert_eq!(message_lines(&m), vec!["one", "two", "[tool Bash: ls]"]);
        let mut out = Vec::new();
        write_message(&mut out, Paint(false), "  +", &m, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("  + assistant {:<24} one", "T"));
        // later lines start where the text starts
        assert_eq!(lines[1].find("two"), lines[0].find("one"));
    }
}
