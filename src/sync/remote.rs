//! Remotes: names for other homes and stores, how to reach them, and what sage knows of them
//! (their store id, so that a replaced or unmounted remote is noticed).

use crate::db::Db;
use crate::error::{Error, Result};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Location {
    Local(PathBuf),
    Ssh {
        host: String,
        port: Option<u16>,
        path: String,
    },
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Remote {
    pub name: String,
    pub url: String,
    pub bare: bool,
    pub remote_sage: Option<String>,
    pub trust_config: bool,
    pub store_id: Option<String>,
}

/// Parse a remote: an argument with no `/` before its first `@` or `:` is an ssh host
/// (`[user@]host[:path]`), `ssh://[user@]host[:port][/path]` carries a port, anything else is a
/// local path. The default remote path is `~/.claude`.
pub fn parse_location(url: &str) -> Result<Location> {
    if let Some(rest) = url.strip_prefix("ssh://") {
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "~/.claude".to_string()),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| Error::Usage(format!("{url}: bad port {p:?}")))?,
                ),
            ),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err(Error::Usage(format!("{url}: no host")));
        }
        let path = path
            .strip_prefix("/~")
            .map(|p| format!("~{p}"))
            .unwrap_or(path);
        return Ok(Location::Ssh {
            host: host.to_string(),
            port,
            path,
        });
    }
    let first = url.find(['@', ':']);
    let slash = url.find('/');
    match first {
        Some(i) if slash.is_none_or(|s| s > i) => {
            let (host, path) = match url.rfind(':').filter(|&c| c >= i) {
                Some(c) => (&url[..c], url[c + 1..].to_string()),
                None => (url, String::new()),
            };
            if host.is_empty() || host.ends_with('@') {
                return Err(Error::Usage(format!("{url}: no host")));
            }
            let path = if path.is_empty() {
                "~/.claude".to_string()
            } else {
                path
            };
            Ok(Location::Ssh {
                host: host.to_string(),
                port: None,
                path,
            })
        }
        _ => {
            let p = PathBuf::from(url);
            Ok(Location::Local(crate::repo::canonical_home(&p)))
        }
    }
}

pub fn list(db: &Db) -> Result<Vec<Remote>> {
    let mut st = db
        .conn
        .prepare("SELECT name, url, bare, remote_sage, trust_config, store_id FROM remotes ORDER BY name")
        .map_err(|e| db.db_err(e))?;
    let rows = st
        .query_map([], |r| {
            Ok(Remote {
                name: r.get(0)?,
                url: r.get(1)?,
                bare: r.get::<_, i64>(2)? != 0,
                remote_sage: r.get(3)?,
                trust_config: r.get::<_, i64>(4)? != 0,
                store_id: r.get(5)?,
            })
        })
        .map_err(|e| db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.db_err(e))?;
    Ok(rows)
}

pub fn get(db: &Db, name: &str) -> Result<Remote> {
    list(db)?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| Error::Usage(format!("no remote named {name:?}: see `sage remote list`, or `sage remote add {name} HOST`")))
}

pub fn add(db: &Db, r: &Remote) -> Result<()> {
    if r.name.is_empty() || r.name.contains(['/', ':', '@', ' ']) {
        return Err(Error::Usage(format!(
            "{:?} is not a usable remote name (no '/', ':', '@' or spaces)",
            r.name
        )));
    }
    db.conn
        .execute(
            "INSERT INTO remotes(name, url, bare, remote_sage, trust_config, store_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![r.name, r.url, r.bare as i64, r.remote_sage, r.trust_config as i64, r.store_id],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                Error::Usage(format!("remote {:?} exists already (`sage remote remove {}` first)", r.name, r.name))
            }
            e => db.db_err(e),
        })?;
    Ok(())
}

pub fn remove(db: &Db, name: &str) -> Result<()> {
    db.conn
        .execute("DELETE FROM remote_maps WHERE remote=?1", [name])
        .map_err(|e| db.db_err(e))?;
    let n = db
        .conn
        .execute("DELETE FROM remotes WHERE name=?1", [name])
        .map_err(|e| db.db_err(e))?;
    if n == 0 {
        return Err(Error::Usage(format!("no remote named {name:?}")));
    }
    Ok(())
}

/// A project path map of a remote: `local` here is `remote_path` there (absolute paths, as
/// the user typed them).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PathMapRule {
    pub remote: String,
    pub local: String,
    pub remote_path: String,
    pub time: i64,
}

pub fn maps(db: &Db) -> Result<Vec<PathMapRule>> {
    let mut st = db
        .conn
        .prepare("SELECT remote, local, remote_path, time FROM remote_maps ORDER BY remote, local")
        .map_err(|e| db.db_err(e))?;
    let rows = st
        .query_map([], |r| {
            Ok(PathMapRule {
                remote: r.get(0)?,
                local: r.get(1)?,
                remote_path: r.get(2)?,
                time: r.get(3)?,
            })
        })
        .map_err(|e| db.db_err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db.db_err(e))?;
    Ok(rows)
}

/// Add (or change) a map of remote `name`: `LOCAL=REMOTE`.
pub fn set_map(db: &Db, name: &str, arg: &str) -> Result<()> {
    get(db, name)?;
    crate::pathmap::parse_map_arg(arg).map_err(Error::Usage)?;
    let (l, r) = arg.split_once('=').expect("checked by parse_map_arg");
    let (l, r) = (l.trim_end_matches('/'), r.trim_end_matches('/'));
    db.conn
        .execute(
            "INSERT OR REPLACE INTO remote_maps(remote, local, remote_path, time) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![name, l, r, crate::clock::now_ms()],
        )
        .map_err(|e| db.db_err(e))?;
    Ok(())
}

/// Remove a map of remote `name` by its local path. The map stays in the history's snapshots;
/// the next snapshot records this machine using canonical names again (a map change).
pub fn remove_map(db: &Db, name: &str, local: &str) -> Result<bool> {
    let n = db
        .conn
        .execute(
            "DELETE FROM remote_maps WHERE remote=?1 AND local=?2",
            [name, local.trim_end_matches('/')],
        )
        .map_err(|e| db.db_err(e))?;
    Ok(n > 0)
}

pub fn set_trust(db: &Db, name: &str, trust: bool) -> Result<()> {
    db.conn
        .execute(
            "UPDATE remotes SET trust_config=?1 WHERE name=?2",
            rusqlite::params![trust as i64, name],
        )
        .map_err(|e| db.db_err(e))?;
    Ok(())
}

pub fn set_store_id(db: &Db, name: &str, id: &str) -> Result<()> {
    db.conn
        .execute("UPDATE remotes SET store_id=?1 WHERE name=?2", [id, name])
        .map_err(|e| db.db_err(e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_syntax() {
        assert_eq!(
            parse_location("me@gpu-box").unwrap(),
            Location::Ssh {
                host: "me@gpu-box".into(),
                port: None,
                path: "~/.claude".into()
            }
        );
        assert_eq!(
            parse_location("gpu:/data/.claude").unwrap(),
            Location::Ssh {
                host: "gpu".into(),
                port: None,
                path: "/data/.claude".into()
            }
        );
        assert_eq!(
            parse_location("ssh://me@gpu-box:2222/home/me/.claude").unwrap(),
            Location::Ssh {
                host: "me@gpu-box".into(),
                port: Some(2222),
                path: "/home/me/.claude".into()
            }
        );
        assert!(matches!(
            parse_location("/mnt/other/.claude").unwrap(),
            Location::Local(_)
        ));
        assert!(matches!(
            parse_location("./dir:with@odd").unwrap(),
            Location::Local(_)
        ));
    }
}
