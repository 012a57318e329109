//! Scanning a home: walk it (never following symlinks), skip what the rules exclude, reuse the
//! stat cache for unchanged files, and turn changed files into objects: each `.jsonl` line a
//! Line object in a Session tree, every other file a Blob (chunked when large). A grown
//! `.jsonl` is hashed from shortly before its old end only, after confirming that the last
//! 64 KB of its old content are unchanged.

use crate::db::{StatRow, Stats};
use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{encode, Chunked, DataRef, Entry, EntryKind, RawObject, Session, LARGE_OBJECT};
use crate::prolly::{build_lines, read_lines, ObjectSink};
use crate::rules::{Rules, STORE_MARKER};
use crate::store::ObjectStore;
use crate::tree::FlatTree;
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How much of a grown transcript's old content is re-hashed to confirm it is unchanged.
pub const RECHECK_BYTES: u64 = 64 * 1024;
/// A file modified this close to the scan's start may change again within the same mtime tick:
/// its cache row is stored with mtime 0 so the next scan looks at it again (git's racy-clean rule).
const RACY_WINDOW_NS: i64 = 2_000_000_000;
/// Files are hashed in batches of about this many bytes, bounding memory.
const BATCH_BYTES: u64 = 32 << 20;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// What the stat cache remembers of a file: its entry and, for sessions, its line count.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedEntry {
    entry: Entry,
    lines: u64,
}

/// The entry of a stat-cache row (`statcache.entry`), if it decodes.
pub fn cached_entry(bytes: &[u8]) -> Option<Entry> {
    rmp_serde::from_slice::<CachedEntry>(bytes)
        .ok()
        .map(|c| c.entry)
}

pub struct ScanOutput {
    pub flat: FlatTree,
    pub skipped: Vec<Skipped>,
    pub stat_updates: Vec<(String, StatRow)>,
    pub stat_removed: Vec<String>,
    pub hashed_files: usize,
    pub hashed_bytes: u64,
    pub stats: Stats,
}

struct Found {
    rel: String,
    meta: std::fs::Metadata,
}

fn walk(
    home: &Path,
    rules: &Rules,
    found: &mut Vec<Found>,
    empty_dirs: &mut Vec<String>,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let abs = if dir.is_empty() {
            home.to_path_buf()
        } else {
            home.join(&dir)
        };
        let rd = match std::fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.is_empty() => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("listing {}", abs.display()), e)),
        };
        if !dir.is_empty() && abs.join(STORE_MARKER).exists() {
            skipped.push(Skipped {
                path: dir,
                reason: "a sage store inside the home (never snapshotted)".into(),
            });
            continue;
        }
        let mut any = false;
        for ent in rd {
            let ent = ent.ctx(|| format!("listing {}", abs.display()))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else {
                skipped.push(Skipped {
                    path: format!(
                        "{}{}",
                        if dir.is_empty() {
                            String::new()
                        } else {
                            format!("{dir}/")
                        },
                        name.to_string_lossy()
                    ),
                    reason: "file name is not UTF-8 (rename it to store it)".into(),
                });
                continue;
            };
            let rel = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            let meta = match std::fs::symlink_metadata(ent.path()) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted meanwhile
                Err(e) => return Err(Error::io(format!("reading {}", ent.path().display()), e)),
            };
            let ft = meta.file_type();
            if let Some(why) = rules.excluded(&rel, ft.is_dir()) {
                skipped.push(Skipped {
                    path: rel,
                    reason: why.into(),
                });
                continue;
            }
            if ft.is_dir() {
                stack.push(rel);
                any = true;
            } else if ft.is_file() || ft.is_symlink() {
                found.push(Found { rel, meta });
                any = true;
            } else {
                skipped.push(Skipped {
                    path: rel,
                    reason: "not a regular file, directory or symlink".into(),
                });
            }
        }
        if !any && !dir.is_empty() {
            empty_dirs.push(dir);
        }
    }
    Ok(())
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}
fn ctime_ns(m: &std::fs::Metadata) -> i64 {
    m.ctime() * 1_000_000_000 + m.ctime_nsec()
}

fn unchanged(row: &StatRow, m: &std::fs::Metadata) -> bool {
    row.mtime_ns != 0
        && row.size == m.len()
        && row.mtime_ns == mtime_ns(m)
        && row.ctime_ns == ctime_ns(m)
        && row.ino == m.ino()
}

/// A hashed file: its entry, stat row and the objects it needs (as spans of `buf` plus extras).
struct Hashed {
    rel: String,
    entry: Entry,
    lines: u64,
    stat: StatRow,
    buf: Vec<u8>,
    spans: Vec<(Kind, ObjectId, usize, usize)>,
    extra: Vec<RawObject>,
}

struct VecSink<'a>(&'a mut Vec<RawObject>);
impl ObjectSink for VecSink<'_> {
    fn put(&mut self, obj: RawObject) -> Result<()> {
        self.0.push(obj);
        Ok(())
    }
}

/// Content-defined chunks of a large line or file: Blob chunks plus their Chunked list.
fn chunk_large(
    bytes: &[u8],
    base: usize,
    spans: &mut Vec<(Kind, ObjectId, usize, usize)>,
    extra: &mut Vec<RawObject>,
) -> DataRef {
    let mut chunks = Vec::new();
    for c in fastcdc::v2020::FastCDC::new(bytes, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024) {
        let piece = &bytes[c.offset..c.offset + c.length];
        let id = ObjectId::hash(Kind::Blob, piece);
        spans.push((Kind::Blob, id, base + c.offset, base + c.offset + c.length));
        chunks.push(DataRef {
            id,
            len: c.length as u64,
        });
    }
    let obj = RawObject::encoded(Kind::Chunked, &Chunked { chunks });
    let r = DataRef {
        id: obj.id,
        len: bytes.len() as u64,
    };
    extra.push(obj);
    r
}

/// Hash `buf[from..]` as lines; returns the complete lines and the unterminated tail.
fn split_lines(
    buf: &[u8],
    from: usize,
    spans: &mut Vec<(Kind, ObjectId, usize, usize)>,
    extra: &mut Vec<RawObject>,
) -> (Vec<DataRef>, Option<DataRef>) {
    let mut lines = Vec::new();
    let mut start = from;
    let mut tail = None;
    while start < buf.len() {
        let end = match memchr::memchr(b'\n', &buf[start..]) {
            Some(p) => start + p + 1,
            None => buf.len(),
        };
        let piece = &buf[start..end];
        let r = if piece.len() as u64 >= LARGE_OBJECT {
            chunk_large(piece, start, spans, extra)
        } else {
            let id = ObjectId::hash(Kind::Line, piece);
            spans.push((Kind::Line, id, start, end));
            DataRef {
                id,
                len: piece.len() as u64,
            }
        };
        if buf[end - 1] == b'\n' {
            lines.push(r);
        } else {
            tail = Some(r);
        }
        start = end;
    }
    (lines, tail)
}

fn read_range(path: &Path, from: u64, len: u64) -> Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    if from > 0 {
        f.seek(SeekFrom::Start(from))
            .ctx(|| format!("reading {}", path.display()))?;
    }
    let mut buf = Vec::with_capacity(len as usize);
    // Read at most the size seen at stat time: bytes appended meanwhile wait for the next scan,
    // so what is recorded is a consistent prefix.
    f.take(len)
        .read_to_end(&mut buf)
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(buf)
}

fn hash_file(
    home: &Path,
    found: &Found,
    cached: Option<&StatRow>,
    store: &ObjectStore,
    scan_start_ns: i64,
) -> Result<Hashed> {
    let abs = home.join(&found.rel);
    let m = &found.meta;
    let name = found
        .rel
        .rsplit('/')
        .next()
        .unwrap_or(&found.rel)
        .to_string();
    let mut stat = StatRow {
        size: m.len(),
        mtime_ns: mtime_ns(m),
        ctime_ns: ctime_ns(m),
        ino: m.ino(),
        entry: vec![],
    };
    if stat.mtime_ns > scan_start_ns - RACY_WINDOW_NS {
        stat.mtime_ns = 0;
    }
    let mut spans = Vec::new();
    let mut extra = Vec::new();
    if m.file_type().is_symlink() {
        let target = std::fs::read_link(&abs).ctx(|| format!("reading link {}", abs.display()))?;
        let target = target.into_os_string().into_encoded_bytes();
        let entry = Entry {
            name,
            kind: EntryKind::Symlink,
            size: target.len() as u64,
            exec: false,
            id: None,
            target,
        };
        return Ok(Hashed {
            rel: found.rel.clone(),
            entry,
            lines: 0,
            stat,
            buf: vec![],
            spans,
            extra,
        });
    }
    let exec = m.mode() & 0o111 != 0;
    if found.rel.ends_with(".jsonl") {
        // Incremental path: the file grew (or kept its size) and its old content ends as before.
        if let Some(row) = cached.filter(|r| r.ino == m.ino() && r.size <= m.len()) {
            if let Ok(old) = rmp_serde::from_slice::<CachedEntry>(&row.entry) {
                if let (EntryKind::Session, Some(sid)) = (old.entry.kind, old.entry.id) {
                    if let Some(h) =
                        hash_grown(&abs, &found.rel, &name, sid, m.len(), exec, &stat, store)?
                    {
                        return Ok(h);
                    }
                }
            }
        }
        let buf = read_range(&abs, 0, m.len())?;
        stat.size = buf.len() as u64;
        let (lines, tail) = split_lines(&buf, 0, &mut spans, &mut extra);
        let (entry, count) = session_entry(name, &lines, tail, buf.len() as u64, exec, &mut extra)?;
        return Ok(Hashed {
            rel: found.rel.clone(),
            entry,
            lines: count,
            stat,
            buf,
            spans,
            extra,
        });
    }
    let buf = read_range(&abs, 0, m.len())?;
    stat.size = buf.len() as u64;
    let r = if buf.len() as u64 >= LARGE_OBJECT {
        chunk_large(&buf, 0, &mut spans, &mut extra)
    } else {
        let id = ObjectId::hash(Kind::Blob, &buf);
        spans.push((Kind::Blob, id, 0, buf.len()));
        DataRef {
            id,
            len: buf.len() as u64,
        }
    };
    let entry = Entry {
        name,
        kind: EntryKind::File,
        size: r.len,
        exec,
        id: Some(r.id),
        target: vec![],
    };
    Ok(Hashed {
        rel: found.rel.clone(),
        entry,
        lines: 0,
        stat,
        buf,
        spans,
        extra,
    })
}

fn session_entry(
    name: String,
    lines: &[DataRef],
    tail: Option<DataRef>,
    size: u64,
    exec: bool,
    extra: &mut Vec<RawObject>,
) -> Result<(Entry, u64)> {
    let root = build_lines(lines, &mut VecSink(extra))?;
    let sess = RawObject::encoded(
        Kind::Session,
        &Session {
            count: lines.len() as u64,
            size,
            lines: root,
            tail,
        },
    );
    let entry = Entry {
        name,
        kind: EntryKind::Session,
        size,
        exec,
        id: Some(sess.id),
        target: vec![],
    };
    extra.push(sess);
    Ok((entry, lines.len() as u64))
}

/// Hash only what a transcript gained, after re-hashing the lines that cover the last
/// `RECHECK_BYTES` of its old content. `None` when that content changed (full rescan).
#[allow(clippy::too_many_arguments)]
fn hash_grown(
    abs: &Path,
    rel: &str,
    name: &str,
    sid: ObjectId,
    size: u64,
    exec: bool,
    stat: &StatRow,
    store: &ObjectStore,
) -> Result<Option<Hashed>> {
    let Ok(bytes) = store.read(sid, Kind::Session) else {
        return Ok(None);
    };
    let Ok(old) = crate::object::decode::<Session>(sid, &bytes) else {
        return Ok(None);
    };
    let Ok(old_lines) = read_lines(store, old.lines) else {
        return Ok(None);
    };
    let complete_end: u64 = old_lines.iter().map(|l| l.len).sum();
    let floor = complete_end.saturating_sub(RECHECK_BYTES);
    let mut k = old_lines.len();
    let mut off = complete_end;
    while k > 0 && off > floor {
        k -= 1;
        off -= old_lines[k].len;
    }
    if size < complete_end {
        return Ok(None);
    }
    let buf = read_range(abs, off, size - off)?;
    let mut spans = Vec::new();
    let mut extra = Vec::new();
    let (lines, tail) = split_lines(&buf, 0, &mut spans, &mut extra);
    let recheck = &old_lines[k..];
    if lines.len() < recheck.len() || lines[..recheck.len()] != *recheck {
        return Ok(None);
    }
    // The rechecked lines exist already; keep only the objects of what is new.
    let new_from = recheck.iter().map(|l| l.len as usize).sum::<usize>();
    spans.retain(|s| s.2 >= new_from);
    let mut all = old_lines[..k].to_vec();
    all.extend_from_slice(&lines);
    let total = off + buf.len() as u64;
    let (entry, count) = session_entry(name.to_string(), &all, tail, total, exec, &mut extra)?;
    let mut stat = stat.clone();
    stat.size = total;
    Ok(Some(Hashed {
        rel: rel.to_string(),
        entry,
        lines: count,
        stat,
        buf,
        spans,
        extra,
    }))
}

/// Scan a home. With `sink`, new objects are written to it; without, only ids are computed
/// (status, diff against the home). `progress` is told about hashed bytes.
pub fn scan(
    home: &Path,
    rules: &Rules,
    store: &ObjectStore,
    cache: &HashMap<String, StatRow>,
    mut sink: Option<&mut dyn ObjectSink>,
    progress: &dyn Fn(u64, u64),
) -> Result<ScanOutput> {
    let scan_start_ns = crate::clock::now_ms() as i128 * 1_000_000;
    let scan_start_ns = scan_start_ns.min(i64::MAX as i128) as i64;
    let mut found = Vec::new();
    let mut empty_dirs = Vec::new();
    let mut skipped = Vec::new();
    walk(home, rules, &mut found, &mut empty_dirs, &mut skipped)?;
    found.sort_by(|a, b| a.rel.cmp(&b.rel));

    let mut out = ScanOutput {
        flat: FlatTree::new(),
        skipped,
        stat_updates: Vec::new(),
        stat_removed: Vec::new(),
        hashed_files: 0,
        hashed_bytes: 0,
        stats: Stats::default(),
    };
    for d in empty_dirs {
        let name = d.rsplit('/').next().unwrap_or(&d).to_string();
        out.flat.insert(
            d,
            Entry {
                name,
                kind: EntryKind::Dir,
                size: 0,
                exec: false,
                id: Some(crate::prolly::build_dir(&[], &mut crate::prolly::NullSink)?),
                target: vec![],
            },
        );
    }
    let mut todo: Vec<&Found> = Vec::new();
    for f in &found {
        let row = cache.get(&f.rel);
        // A cached entry whose object the store lost (a deleted or broken pack) is not reused:
        // the file is read again, so that a snapshot never names bytes the store lacks.
        let cached = row
            .filter(|r| unchanged(r, &f.meta))
            .and_then(|r| rmp_serde::from_slice::<CachedEntry>(&r.entry).ok())
            .filter(|c| {
                c.entry
                    .id
                    .is_none_or(|id| store.contains(&id).unwrap_or(false))
            });
        match cached {
            Some(c) => {
                count(&mut out.stats, &c.entry, c.lines);
                out.flat.insert(f.rel.clone(), c.entry);
            }
            None => todo.push(f),
        }
    }
    let total: u64 = todo.iter().map(|f| f.meta.len()).sum();
    let mut done = 0u64;
    let mut i = 0;
    while i < todo.len() {
        let mut j = i;
        let mut batch_bytes = 0;
        while j < todo.len() && (j == i || batch_bytes + todo[j].meta.len() <= BATCH_BYTES) {
            batch_bytes += todo[j].meta.len();
            j += 1;
        }
        let hashed: Vec<Result<Option<Hashed>>> = todo[i..j]
            .par_iter()
            .map(
                |f| match hash_file(home, f, cache.get(&f.rel), store, scan_start_ns) {
                    Ok(h) => Ok(Some(h)),
                    // Deleted between the walk and the read: it is simply not in this snapshot.
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                },
            )
            .collect();
        for h in hashed {
            let Some(h) = h? else { continue };
            if let Some(sink) = sink.as_deref_mut() {
                for (kind, id, s, e) in &h.spans {
                    sink.add(*kind, *id, &h.buf[*s..*e])?;
                }
                for o in h.extra {
                    sink.put(o)?;
                }
            }
            out.hashed_files += 1;
            out.hashed_bytes += h.buf.len() as u64;
            count(&mut out.stats, &h.entry, h.lines);
            let mut stat = h.stat;
            stat.entry = encode(&CachedEntry {
                entry: h.entry.clone(),
                lines: h.lines,
            });
            out.stat_updates.push((h.rel.clone(), stat));
            out.flat.insert(h.rel, h.entry);
        }
        done += batch_bytes;
        progress(done, total);
        i = j;
    }
    for path in cache.keys() {
        if !out.flat.contains_key(path) {
            out.stat_removed.push(path.clone());
        }
    }
    Ok(out)
}

fn count(s: &mut Stats, e: &Entry, lines: u64) {
    match e.kind {
        EntryKind::Session => {
            s.sessions += 1;
            s.files += 1;
            s.messages += lines;
            s.bytes += e.size;
        }
        EntryKind::Dir => {}
        _ => {
            s.files += 1;
            s.bytes += e.size;
        }
    }
}

/// A stat-cache row for a file sage just wrote with the content of `entry`.
pub fn stat_row(m: &std::fs::Metadata, entry: &Entry, lines: u64, now_ms: i64) -> StatRow {
    let mut mtime = mtime_ns(m);
    if mtime > now_ms.saturating_mul(1_000_000) - RACY_WINDOW_NS {
        mtime = 0;
    }
    StatRow {
        size: m.len(),
        mtime_ns: mtime,
        ctime_ns: ctime_ns(m),
        ino: m.ino(),
        entry: encode(&CachedEntry {
            entry: entry.clone(),
            lines,
        }),
    }
}
