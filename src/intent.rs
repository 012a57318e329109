//! The apply intent log: before sage appends to or replaces a session file in a home, it records
//! what it is about to do (table `intents`); when sage next takes the store lock, any intent
//! still recorded belongs to an apply that was killed, and is completed or rolled back here.
//!
//! Why: a session may be written by a live Claude Code at the same time. A killed append can
//! leave half a line at the end of the file; a killed replace can leave the old file's newest
//! lines only in the hard-linked side file. Both are healed from the intent alone, without
//! guessing from file names.

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::repo::Repo;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntentKind {
    /// Whole lines appended at the end of the file (it held `old_size` bytes before).
    Append = 0,
    /// A temp file renamed over the file, with a hard-linked side name for the old one.
    Replace = 1,
}

#[derive(Clone, Debug)]
pub struct Intent {
    pub file: PathBuf,
    pub kind: IntentKind,
    /// The file's size when sage read it (the bytes it knows about).
    pub old_size: u64,
    /// The session the file should hold afterwards, and its size.
    pub target: ObjectId,
    pub target_size: u64,
    /// Replace only: the temp file renamed over `file`, and the side link to the old file.
    pub temp: Option<PathBuf>,
    pub side: Option<PathBuf>,
}

/// What recovery did to one file, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healed {
    Nothing,
    CompletedAppend(u64),
    RolledBackReplace,
    CopiedAcross(u64),
    /// The file changed in a way sage cannot complete safely; it was left as it is.
    LeftAlone(String),
}

impl std::fmt::Display for Healed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Healed::Nothing => write!(f, "nothing to finish"),
            Healed::CompletedAppend(n) => {
                write!(f, "finished an interrupted append ({n} bytes written)")
            }
            Healed::RolledBackReplace => {
                write!(
                    f,
                    "an interrupted replace was rolled back (the file keeps its old bytes)"
                )
            }
            Healed::CopiedAcross(n) => write!(
                f,
                "finished an interrupted replace ({n} bytes a live writer added were copied across)"
            ),
            Healed::LeftAlone(why) => write!(f, "{why}"),
        }
    }
}

fn p2b(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}
fn b2p(b: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsStr as OsStrExt>::from_bytes(&b))
}

/// Record `intents` in one transaction (before any byte of the home is written).
pub fn record(repo: &Repo, intents: &[Intent]) -> Result<()> {
    if intents.is_empty() {
        return Ok(());
    }
    let db = &repo.db;
    let tx = db.conn.unchecked_transaction().map_err(|e| db.db_err(e))?;
    {
        let mut st = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO intents (file, kind, old_size, target, target_size, temp, side, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(|e| db.db_err(e))?;
        for i in intents {
            st.execute(rusqlite::params![
                p2b(&i.file),
                i.kind as i64,
                i.old_size as i64,
                i.target.0.as_slice(),
                i.target_size as i64,
                i.temp.as_deref().map(p2b),
                i.side.as_deref().map(p2b),
                crate::clock::now_ms(),
            ])
            .map_err(|e| db.db_err(e))?;
        }
    }
    tx.commit().map_err(|e| db.db_err(e))
}

/// Forget intents whose writes are complete.
pub fn clear(repo: &Repo, files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let db = &repo.db;
    let tx = db.conn.unchecked_transaction().map_err(|e| db.db_err(e))?;
    {
        let mut st = tx
            .prepare_cached("DELETE FROM intents WHERE file = ?1")
            .map_err(|e| db.db_err(e))?;
        for f in files {
            st.execute([p2b(f)]).map_err(|e| db.db_err(e))?;
        }
    }
    tx.commit().map_err(|e| db.db_err(e))
}

pub fn pending(repo: &Repo) -> Result<Vec<Intent>> {
    let db = &repo.db;
    let mut st = db
        .conn
        .prepare("SELECT file, kind, old_size, target, target_size, temp, side FROM intents ORDER BY file")
        .map_err(|e| db.db_err(e))?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
                r.get::<_, Option<Vec<u8>>>(6)?,
            ))
        })
        .map_err(|e| db.db_err(e))?;
    let mut out = Vec::new();
    for row in rows {
        let (file, kind, old, target, tsize, temp, side) = row.map_err(|e| db.db_err(e))?;
        let Some(target) = ObjectId::from_slice(&target) else {
            continue;
        };
        out.push(Intent {
            file: b2p(file),
            kind: if kind == 1 {
                IntentKind::Replace
            } else {
                IntentKind::Append
            },
            old_size: old.max(0) as u64,
            target,
            target_size: tsize.max(0) as u64,
            temp: temp.map(b2p),
            side: side.map(b2p),
        });
    }
    Ok(out)
}

/// Complete or roll back every recorded intent (the caller holds the store lock). Returns what
/// was done per file; intents that could be handled are removed.
pub fn recover(repo: &Repo) -> Result<Vec<(PathBuf, Healed)>> {
    let intents = pending(repo)?;
    let mut done = Vec::new();
    let mut report = Vec::new();
    for i in intents {
        let healed = match i.kind {
            IntentKind::Append => heal_append(repo, &i)?,
            IntentKind::Replace => heal_replace(&i)?,
        };
        done.push(i.file.clone());
        if healed != Healed::Nothing {
            report.push((i.file, healed));
        }
    }
    clear(repo, &done)?;
    Ok(report)
}

fn read_all(p: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", p.display()), e)),
    }
}

fn append_bytes(file: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .ctx(|| format!("opening {}", file.display()))?;
    f.write_all(bytes)
        .ctx(|| format!("appending to {}", file.display()))?;
    f.sync_data().ctx(|| format!("syncing {}", file.display()))
}

fn target_bytes(repo: &Repo, i: &Intent) -> Result<Vec<u8>> {
    let e = crate::object::Entry {
        name: String::new(),
        kind: crate::object::EntryKind::Session,
        size: i.target_size,
        exec: false,
        id: Some(i.target),
        target: Vec::new(),
    };
    let mut out = Vec::with_capacity(i.target_size as usize);
    repo.objects.write_entry(&e, &mut out)?;
    Ok(out)
}

/// A killed append left the file somewhere between its old bytes and the target's: write the
/// rest (which completes a half-written line). Bytes past the target (a live writer's lines)
/// mean the append finished.
fn heal_append(repo: &Repo, i: &Intent) -> Result<Healed> {
    let Some(cur) = read_all(&i.file)? else {
        return Ok(Healed::Nothing);
    };
    if cur.len() as u64 <= i.old_size {
        return Ok(Healed::Nothing); // none of the append landed
    }
    let target = target_bytes(repo, i)?;
    if target.starts_with(&cur) {
        let rest = &target[cur.len()..];
        if rest.is_empty() {
            return Ok(Healed::Nothing);
        }
        append_bytes(&i.file, rest)?;
        return Ok(Healed::CompletedAppend(rest.len() as u64));
    }
    if cur.starts_with(&target) {
        return Ok(Healed::Nothing);
    }
    Ok(Healed::LeftAlone(
        "a killed append was followed by other writes; the file is kept as it is and the next snapshot stores it"
            .into(),
    ))
}

/// A killed replace: before the rename, drop the temp (the old file is intact); after it, copy
/// across what landed in the old file (the side link) past what sage had read.
fn heal_replace(i: &Intent) -> Result<Healed> {
    let temp_exists = i
        .temp
        .as_ref()
        .is_some_and(|t| std::fs::symlink_metadata(t).is_ok());
    let side = i.side.as_ref();
    if temp_exists {
        let _ = std::fs::remove_file(i.temp.as_ref().unwrap());
        if let Some(s) = side {
            if std::fs::symlink_metadata(s).is_ok() {
                if std::fs::symlink_metadata(&i.file).is_err() {
                    // Never lose the old file: put it back under its name.
                    std::fs::rename(s, &i.file)
                        .ctx(|| format!("restoring {}", i.file.display()))?;
                } else {
                    let _ = std::fs::remove_file(s);
                }
            }
        }
        return Ok(Healed::RolledBackReplace);
    }
    let Some(s) = side else {
        return Ok(Healed::Nothing);
    };
    let Some(old) = read_all(s)? else {
        return Ok(Healed::Nothing); // never linked, or the copy-across finished
    };
    let extra = if (old.len() as u64) > i.old_size {
        old[i.old_size as usize..].to_vec()
    } else {
        Vec::new()
    };
    let mut copied = 0;
    if !extra.is_empty() {
        let cur = read_all(&i.file)?.unwrap_or_default();
        let after = if (cur.len() as u64) >= i.target_size {
            &cur[i.target_size as usize..]
        } else {
            &cur[..0]
        };
        let missing: &[u8] = if extra.starts_with(after) {
            &extra[after.len()..] // none or part of the copy landed
        } else if memchr::memmem::find(&cur, &extra).is_some() {
            &[] // copied, then a live writer appended more
        } else {
            &extra // a live writer appended before the copy: keep both
        };
        if !missing.is_empty() {
            if std::fs::symlink_metadata(&i.file).is_err() {
                std::fs::rename(s, &i.file).ctx(|| format!("restoring {}", i.file.display()))?;
                return Ok(Healed::RolledBackReplace);
            }
            append_bytes(&i.file, missing)?;
            copied = missing.len() as u64;
        }
    }
    let _ = std::fs::remove_file(s);
    Ok(if copied > 0 {
        Healed::CopiedAcross(copied)
    } else {
        Healed::Nothing
    })
}
