//! `sage backup [remote]`: a snapshot (kind `scheduled`), the objects it added read back from
//! disk and re-hashed, then a push to a (typically bare) backup remote if one is named. The
//! caller holds the store lock.

use super::config::{self, BackupRecord};
use crate::error::Result;
use crate::repo::{CommitOptions, Repo};
use crate::sync::client::{self, Direction, SyncOptions, SyncReport};

#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub snapshot: String,
    /// A new snapshot was taken (false: the home had not changed since HEAD).
    pub created: bool,
    pub new_objects: u64,
    pub new_bytes: u64,
    /// The new pack was re-read and every object re-hashed.
    pub read_back: bool,
    pub remote: Option<String>,
    pub push: Option<SyncReport>,
}

pub fn backup(repo: &mut Repo, remote: Option<&str>, kind: &str) -> Result<BackupReport> {
    // An unknown remote is a usage error before anything is written.
    if let Some(name) = remote {
        crate::sync::remote::get(&repo.db, name)?;
    }
    let out = repo.commit(&CommitOptions {
        kind,
        message: &match remote {
            Some(r) => format!("backup to {r}"),
            None => "backup".to_string(),
        },
        progress: &|_, _| {},
    })?;
    let mut read_back = false;
    if let Some(pack) = &out.new_pack {
        repo.read_back_pack(pack)?;
        read_back = true;
    }
    let push = match remote {
        Some(name) => {
            let r = client::run(
                repo,
                name,
                Direction::Push,
                &SyncOptions::default(),
                &|_, _, _| {},
            )?;
            config::set_pushed(&repo.db, name, repo.head()?)?;
            Some(r)
        }
        None => None,
    };
    let head = repo.head()?.unwrap_or_default();
    config::set_last_backup(
        &repo.db,
        &BackupRecord {
            time: crate::clock::now_ms(),
            snapshot: head.to_hex(),
            remote: remote.map(str::to_string),
        },
    )?;
    Ok(BackupReport {
        snapshot: head.to_hex(),
        created: out.created,
        new_objects: out.new_objects,
        new_bytes: out.new_bytes,
        read_back,
        remote: remote.map(str::to_string),
        push,
    })
}
