//! The restore test: roll a snapshot out into an empty temporary directory with the same code
//! a real restore uses (`prepare_checkout` / `apply_checkout`), then compare what landed on
//! disk with the snapshot's tree, byte for byte: every file's content, its exec bit, every
//! symlink's target, every directory, and nothing extra. A snapshot that passes can be rolled
//! back; the temporary directory is always removed.

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::{decode, Conflict, EntryKind};
use crate::repo::Repo;
use crate::store::ObjectStore;
use crate::tree::FlatTree;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreTestReport {
    pub snapshot: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Paths that did not come back as stored, each with what differs.
    pub mismatches: Vec<Mismatch>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Mismatch {
    pub path: String,
    pub why: String,
}

impl RestoreTestReport {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Compares the bytes written to it with a file, as they come.
struct CompareWriter<R: Read> {
    file: R,
    offset: u64,
    first_diff: Option<u64>,
    buf: Vec<u8>,
}

impl<R: Read> Write for CompareWriter<R> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.first_diff.is_none() {
            self.buf.resize(data.len(), 0);
            let mut got = 0;
            while got < data.len() {
                match self.file.read(&mut self.buf[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            if let Some(i) = (0..data.len()).find(|&i| i >= got || self.buf[i] != data[i]) {
                self.first_diff = Some(self.offset + i as u64);
            }
        }
        self.offset += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Restore `snapshot` into a fresh temporary directory under `tmp_parent` and compare it.
pub fn restore_test(
    repo: &Repo,
    snapshot: ObjectId,
    tmp_parent: &Path,
) -> Result<RestoreTestReport> {
    std::fs::create_dir_all(tmp_parent).ctx(|| format!("creating {}", tmp_parent.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("sage-restore-test-")
        .tempdir_in(tmp_parent)
        .ctx(|| format!("creating a temporary directory in {}", tmp_parent.display()))?;
    let target = dir.path().join("home");
    {
        // A second handle on the same store, for the temp dir: not its own home, so the
        // checkout is a plain restore (no safety snapshot, no ref moved).
        let mut other = Repo::open(&target, Some(&repo.store_dir))?;
        let plan = other.prepare_checkout(snapshot, &[], false)?;
        other.apply_checkout(plan)?;
    }
    // The restore wrote this machine's project names (store-format.md §13.1).
    let (pm, me) = repo.plan_names(Some(&snapshot))?;
    let pm = crate::pathmap::PathMap::from_raw(pm.to_raw().as_ref());
    let flat = pm.localize(&pm.canonicalize(&repo.flat_of(&snapshot)?), &me);
    let mut report = compare_tree(&repo.objects, &flat, &target)?;
    report.snapshot = snapshot.to_hex();
    Ok(report)
}

/// Compare the directory `root` with `flat`.
/// What checking one path found.
enum Checked {
    Dir,
    Symlink,
    File(u64),
    Mismatch(String),
}

fn check_one(
    objects: &ObjectStore,
    root: &Path,
    path: &str,
    e: &crate::object::Entry,
) -> Result<Checked> {
    let p = root.join(path);
    let Ok(m) = std::fs::symlink_metadata(&p) else {
        return Ok(Checked::Mismatch("missing after the restore".into()));
    };
    Ok(match e.kind {
        EntryKind::Dir => {
            if m.is_dir() {
                Checked::Dir
            } else {
                Checked::Mismatch("should be a directory".into())
            }
        }
        EntryKind::Symlink => {
            let t = std::fs::read_link(&p).ok();
            use std::os::unix::ffi::OsStrExt;
            if t.as_ref().map(|t| t.as_os_str().as_bytes()) == Some(&e.target[..]) {
                Checked::Symlink
            } else {
                Checked::Mismatch("symlink target differs (or not a symlink)".into())
            }
        }
        EntryKind::File | EntryKind::Session | EntryKind::Conflict => {
            if !m.file_type().is_file() {
                return Ok(Checked::Mismatch("should be a regular file".into()));
            }
            // A conflict value restores one of its sides.
            let candidates = if e.kind == EntryKind::Conflict {
                let id =
                    e.id.ok_or_else(|| Error::Other(format!("{path}: conflict without id")))?;
                let c: Conflict = decode(id, &objects.read(id, crate::Kind::Conflict)?)?;
                c.sides.into_iter().map(|(_, e)| e).collect()
            } else {
                vec![e.clone()]
            };
            let mut why = String::from("no side of the conflict matches");
            let mut ok = false;
            for c in &candidates {
                match compare_file(objects, c, &p, m.len())? {
                    None => {
                        ok = true;
                        break;
                    }
                    Some(w) => why = w,
                }
            }
            let exec = m.permissions().mode() & 0o100 != 0;
            if !ok {
                Checked::Mismatch(why)
            } else if e.kind != EntryKind::Conflict && exec != e.exec {
                Checked::Mismatch(format!("exec bit is {exec}, stored {}", e.exec))
            } else {
                Checked::File(m.len())
            }
        }
    })
}

pub fn compare_tree(
    objects: &ObjectStore,
    flat: &FlatTree,
    root: &Path,
) -> Result<RestoreTestReport> {
    use rayon::prelude::*;
    let mut r = RestoreTestReport::default();
    // Files are compared in parallel (each is read back and rebuilt from the store).
    let entries: Vec<(&String, &crate::object::Entry)> = flat.iter().collect();
    let checked: Vec<Result<Checked>> = entries
        .par_iter()
        .map(|(path, e)| check_one(objects, root, path, e))
        .collect();
    for ((path, _), c) in entries.iter().zip(checked) {
        match c? {
            Checked::Dir => r.dirs += 1,
            Checked::Symlink => r.symlinks += 1,
            Checked::File(n) => {
                r.files += 1;
                r.bytes += n;
            }
            Checked::Mismatch(why) => r.mismatches.push(Mismatch {
                path: (*path).clone(),
                why,
            }),
        }
    }
    // Nothing that the snapshot lacks. The tree lists files and empty directories; the
    // directories above them are implied.
    let mut implied = std::collections::HashSet::new();
    for path in flat.keys() {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !implied.insert(parent.to_string()) {
                break;
            }
            p = parent;
        }
    }
    let mut extra = Vec::new();
    walk(root, root, &mut |rel, is_dir| {
        if !(flat.contains_key(rel) || is_dir && implied.contains(rel)) {
            extra.push(rel.to_string());
        }
    })?;
    for p in extra {
        r.mismatches.push(Mismatch {
            path: p,
            why: "restored but not in the snapshot".into(),
        });
    }
    Ok(r)
}

/// `None` if the file at `p` holds exactly the entry's bytes, else what differs.
fn compare_file(
    objects: &ObjectStore,
    e: &crate::object::Entry,
    p: &Path,
    len: u64,
) -> Result<Option<String>> {
    if len != e.size {
        return Ok(Some(format!("size is {len}, stored {}", e.size)));
    }
    let f = std::fs::File::open(p).ctx(|| format!("opening {}", p.display()))?;
    let mut w = CompareWriter {
        file: std::io::BufReader::with_capacity(1 << 20, f),
        offset: 0,
        first_diff: None,
        buf: Vec::new(),
    };
    objects.write_entry(e, &mut w)?;
    if let Some(at) = w.first_diff {
        return Ok(Some(format!("content differs at byte {at}")));
    }
    let mut rest = [0u8; 1];
    if w.file
        .read(&mut rest)
        .ctx(|| format!("reading {}", p.display()))?
        != 0
    {
        return Ok(Some("longer than stored".into()));
    }
    Ok(None)
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str, bool)) -> Result<()> {
    let rd = std::fs::read_dir(dir).ctx(|| format!("reading {}", dir.display()))?;
    for ent in rd {
        let ent = ent.ctx(|| format!("reading {}", dir.display()))?;
        let p = ent.path();
        let rel = p
            .strip_prefix(root)
            .expect("walk stays under root")
            .to_string_lossy()
            .into_owned();
        let is_dir = ent.file_type().is_ok_and(|t| t.is_dir());
        f(&rel, is_dir);
        if is_dir {
            walk(root, &p, f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_writer_finds_the_first_differing_byte() {
        let check = |file: &[u8], chunks: &[&[u8]]| {
            let mut w = CompareWriter {
                file,
                offset: 0,
                first_diff: None,
                buf: Vec::new(),
            };
            for c in chunks {
                w.write_all(c).unwrap();
            }
            w.first_diff
        };
        assert_eq!(check(b"hello world", &[b"hello", b" world"]), None);
        assert_eq!(check(b"hello world", &[b"hello", b" wOrld"]), Some(7));
        assert_eq!(check(b"hell", &[b"hello"]), Some(4));
    }
}
