//! Small filesystem helpers for crash-safe writes.

use crate::error::{IoContext, Result};
use std::fs::File;
use std::io::Write;
use std::path::Path;

pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx(|| format!("opening directory {}", dir.display()))?;
    f.sync_all()
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Flush every dirty page of the filesystem holding `path` (one call instead of an fsync per file).
pub fn syncfs(path: &Path) -> Result<()> {
    let f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open fd for the duration of the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("syncing the filesystem of {}", path.display()));
    }
    Ok(())
}

/// Write a small file atomically: temp file, write, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // The temp name carries sage's temp infix, so a crash never leaves a file a scan would store.
    let tmp = dir.join(format!(
        ".{}{}{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        crate::rules::TEMP_INFIX,
        std::process::id()
    ));
    {
        let mut f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .ctx(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("syncing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    fsync_dir(dir)
}
