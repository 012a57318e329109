//! Errors of the library: each says what failed, on which object or path, and what to do.

use crate::id::ObjectId;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store database {path}: {source}\n  fix: run `sage verify --repair` to rebuild it from the packs")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("pack {path} is damaged: {why}\n  fix: run `sage verify` to see what it touches, then `sage verify --repair`")]
    CorruptPack { path: PathBuf, why: String },
    #[error("object {id} is damaged: {why}\n  fix: run `sage verify --read-data` to see what it touches")]
    CorruptObject { id: ObjectId, why: String },
    #[error("object {id} is missing from the store\n  fix: run `sage verify` to see which snapshots it touches; a sync from another machine can bring it back")]
    MissingObject { id: ObjectId },
    #[error(
        "no store for home {home}\n  fix: run `sage init` (or `sage commit`, which creates it)"
    )]
    NoStore { home: PathBuf },
    #[error("{0}")]
    UnknownSnapshot(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Refused(String),
    #[error("another sage holds the store lock ({holder})\n  fix: wait for it to finish and run the command again")]
    Locked { holder: String },
    #[error("store {path} has format version {found}, this sage reads up to {supported}\n  fix: install a newer sage")]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    /// Exit code for the CLI: 2 for usage errors (bad arguments, unknown names), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::UnknownSnapshot(_) => 2,
            _ => 1,
        }
    }
}

/// Attach a context (usually a path) to an `io::Error`.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let ctx = context();
            if e.raw_os_error() == Some(libc::ENOSPC) {
                Error::io(
                    format!("{ctx} (the disk is full: free space and run the command again; nothing was lost)"),
                    e,
                )
            } else {
                Error::io(ctx, e)
            }
        })
    }
}
