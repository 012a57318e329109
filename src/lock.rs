//! One writer at a time: an exclusive advisory lock on `<store>/lock`. The kernel drops it when
//! the holder dies, so a killed sage never leaves a stale lock. The holder writes who it is
//! into `<store>/lock.info` so that a waiting sage can say who holds it.

use crate::error::{Error, IoContext, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct StoreLock {
    _file: File,
}

fn wait_limit() -> Duration {
    let ms = std::env::var("SAGE_LOCK_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    Duration::from_millis(ms)
}

impl StoreLock {
    pub fn acquire(store: &Path, what: &str) -> Result<StoreLock> {
        Self::acquire_within(store, what, wait_limit())
    }

    /// Take the lock only if it is free now (hooks: never make Claude Code wait).
    pub fn try_acquire(store: &Path, what: &str) -> Result<StoreLock> {
        Self::acquire_within(store, what, Duration::ZERO)
    }

    fn acquire_within(store: &Path, what: &str, limit: Duration) -> Result<StoreLock> {
        let path = store.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= limit {
                        let holder = std::fs::read_to_string(store.join("lock.info"))
                            .unwrap_or_else(|_| "unknown process".into());
                        return Err(Error::Locked {
                            holder: holder.trim().to_string(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io(format!("locking {}", path.display()), e))
                }
            }
        }
        let info = format!(
            "pid {} on {}, running `sage {what}`",
            std::process::id(),
            crate::clock::host()
        );
        let _ = std::fs::write(store.join("lock.info"), info);
        Ok(StoreLock { _file: file })
    }
}
