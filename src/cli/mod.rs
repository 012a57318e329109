//! Command-line interface: argument parsing (clap) and rendering. Every command calls the
//! library and prints its result as text or, with `--json`, as JSON.

mod care;
mod conflicts;
mod demo;
mod history;
mod maint;
mod purge;
mod retention;
mod rollback;
mod snapshot_cmds;
mod sync_cmds;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sage::sync::client::{Direction, SyncOptions};
use sage::Repo;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "sage", version, about = "Keeps Claude Code conversation history safe: content-addressed snapshots of ~/.claude", long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 the operation found a problem or failed, 2 usage error."
)]
pub struct Cli {
    /// The Claude Code home (default: $CLAUDE_CONFIG_DIR, else ~/.claude)
    #[arg(long, global = true, env = "CLAUDE_CONFIG_DIR")]
    home: Option<PathBuf>,
    /// The store (default: $XDG_DATA_HOME/sage/homes/<hash of the home>)
    #[arg(long, global = true, env = "SAGE_STORE")]
    store: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Print less
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Selective sync: only some sessions and projects (the rest syncs later as usual).
#[derive(clap::Args, Debug, Clone, Default)]
struct Selection {
    /// Only this session (id, unique prefix or transcript path) and its parts; repeatable
    #[arg(long = "session", value_name = "ID")]
    sessions: Vec<String>,
    /// Only the project directories matching this glob (or the path Claude ran in); repeatable
    #[arg(long = "project", value_name = "GLOB", allow_hyphen_values = true)]
    projects: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the store for this home (idempotent)
    Init {
        /// Accept a directory that does not look like a Claude Code home
        #[arg(long)]
        any_dir: bool,
    },
    /// Snapshot the whole home
    Commit {
        #[arg(short, long, default_value = "")]
        message: String,
        /// Snapshot kind: manual, auto, scheduled
        #[arg(long, default_value = "manual")]
        kind: String,
    },
    /// Sessions added, grown, rewritten or vanished since HEAD
    Status,
    /// Snapshots, newest first; with --session, those in which that session changed
    Log {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        host: Option<String>,
        #[arg(short = 'n', long)]
        limit: Option<usize>,
        /// Only snapshots that changed this session (id, unique prefix, or transcript path),
        /// with its message counts and fingerprint
        #[arg(long, value_name = "SESSION")]
        session: Option<String>,
    },
    /// One snapshot (parents, kind, host, what it changed), or SNAPSHOT:SESSION to read a
    /// conversation (SNAPSHOT: lists the sessions)
    Show {
        #[arg(value_name = "SNAPSHOT[:SESSION]")]
        snapshot: String,
    },
    /// The raw bytes of one file as it was: SNAPSHOT:PATH
    Cat { spec: String },
    /// Messages gained (and lost) per session between two snapshots, or HEAD and the home
    Diff {
        a: Option<String>,
        b: Option<String>,
        /// Only these sessions (id, unique prefix: all their parts) or paths
        #[arg(last = true, value_name = "SESSION|PATH")]
        paths: Vec<String>,
    },
    /// Roll the home (or only some sessions or paths) back to a snapshot
    Checkout {
        snapshot: String,
        /// Only these sessions (id, unique prefix: all their parts) or paths
        #[arg(last = true, value_name = "SESSION|PATH")]
        paths: Vec<String>,
        /// Show the plan only
        #[arg(long)]
        dry_run: bool,
        /// Confirm a destructive checkout without a TTY
        #[arg(long)]
        i_understand_data_loss_risk: bool,
    },
    /// List conflict values from syncs and configuration held back from untrusted remotes
    Conflicts {
        /// The history of resolutions instead
        #[arg(long)]
        log: bool,
    },
    /// Settle conflicts: keep this machine's version, the other's, or both
    Resolve {
        /// Paths to resolve (as `sage conflicts` lists them)
        paths: Vec<String>,
        /// Every conflict and held-back path
        #[arg(long)]
        all: bool,
        /// Keep this machine's version
        #[arg(long, group = "choice")]
        ours: bool,
        /// Take the other machine's version
        #[arg(long, group = "choice")]
        theirs: bool,
        /// Keep ours, and the other's beside it as NAME.from-<store>.EXT
        #[arg(long, group = "choice")]
        both: bool,
    },
    /// Revert the last operation (again to go further back)
    Undo {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        i_understand_data_loss_risk: bool,
    },
    /// Check the store's integrity
    Verify {
        /// Re-hash every object
        #[arg(long)]
        read_data: bool,
        /// Also restore a snapshot (default HEAD) into a temp dir and compare every byte
        #[arg(long, value_name = "SNAPSHOT", num_args = 0..=1, default_missing_value = "HEAD")]
        restore_test: Option<String>,
        /// Rebuild what can be rebuilt (database, index, damaged packs)
        #[arg(long)]
        repair: bool,
    },
    /// Drop the trees of snapshots a retention policy does not keep (restic's rules), then gc.
    /// Never HEAD, the snapshots of the last 10 operations, or the newest one a remote holds
    Prune {
        #[command(flatten)]
        policy: retention::PolicyArgs,
        /// Only store the given rules as this store's defaults (`meta` row `retention.policy`)
        #[arg(long)]
        save_defaults: bool,
        /// Show which snapshots are kept and why; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Confirm without a TTY
        #[arg(long)]
        i_understand_data_loss_risk: bool,
    },
    /// Remove lines (or whole sessions) from the home, its history and its packs: when a
    /// secret was pasted into a conversation. Snapshot ids stay; every sync carries the purge
    Purge {
        /// Remove this session whole (id, unique prefix or transcript path); repeatable
        #[arg(long = "session", value_name = "ID")]
        sessions: Vec<String>,
        /// Remove every line (and file) holding this text; repeatable. Prefer --match-file:
        /// a command line is visible to other users and kept in shell history
        #[arg(long = "match", value_name = "TEXT", allow_hyphen_values = true)]
        matches: Vec<String>,
        /// Read the texts to match from a file, one per line
        #[arg(long, value_name = "FILE")]
        match_file: Option<PathBuf>,
        /// Only finish an earlier purge (or one a sync brought): rewrite what still holds
        /// purged data, then drop its bytes from the packs
        #[arg(long)]
        finish: bool,
        /// Show what would go; change nothing (the home's changes since the last snapshot
        /// are not searched)
        #[arg(long)]
        dry_run: bool,
        /// Confirm without a TTY
        #[arg(long)]
        i_understand_data_loss_risk: bool,
    },
    /// Rewrite the packs: drop objects nothing kept reaches, merge small packs into few
    Gc {
        #[arg(long)]
        dry_run: bool,
    },
    /// The home, the store, its id, format version and sizes
    Info,
    /// Manage remotes (other homes, or bare backup stores)
    Remote {
        #[command(subcommand)]
        cmd: sync_cmds::RemoteCmd,
    },
    /// Send what the remote lacks, merge there, update its home
    Push {
        remote: String,
        #[arg(long)]
        dry_run: bool,
        /// Make the remote's home equal to this one (destructive)
        #[arg(long)]
        force: bool,
        #[arg(long)]
        i_understand_data_loss_risk: bool,
        /// Accept a remote whose store changed
        #[arg(long)]
        init: bool,
        #[command(flatten)]
        select: Selection,
    },
    /// Fetch what this store lacks, merge here, update this home
    Pull {
        remote: String,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        init: bool,
        #[command(flatten)]
        select: Selection,
    },
    /// Pull then push: both homes converge
    Sync {
        remote: String,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        init: bool,
        #[command(flatten)]
        select: Selection,
    },
    /// Play the laptop / GPU-box story on two temp homes, with the real commands
    Demo {
        /// Where to put the demo's homes and stores (default: a new temp dir, kept)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The remote end of a sync (run by push/pull through ssh)
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        stdio: bool,
    },
    /// Claude Code hooks that snapshot this home on Claude's own events
    Hooks {
        #[command(subcommand)]
        cmd: care::HooksCmd,
    },
    /// Run by Claude Code's hooks: snapshot (and push in the background); always exits 0
    Hook {
        /// session-end, pre-compact or stop
        event: String,
    },
    /// Snapshot (kind scheduled), read its new objects back, push to a backup remote if named
    Backup {
        remote: Option<String>,
        /// Snapshot kind (the hooks' background push uses `hook`)
        #[arg(long, default_value = "scheduled", hide = true)]
        kind: String,
    },
    /// A daily backup by a systemd user timer (or cron)
    Schedule {
        #[command(subcommand)]
        cmd: care::ScheduleCmd,
    },
    /// Is this history taken care of? Findings, each with its fix; exit 1 if any needs attention
    Doctor {
        /// Do not contact remotes
        #[arg(long)]
        offline: bool,
        /// Seconds a remote may take to answer
        #[arg(long, default_value_t = 15)]
        timeout: u64,
    },
    /// The operation log
    Ops {
        #[arg(short = 'n', long)]
        limit: Option<usize>,
    },
    /// Developer tools (test homes for benchmarks)
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        cmd: maint::DevCmd,
    },
}

/// Output settings shared by the commands.
pub struct Ctx {
    pub home: PathBuf,
    pub store: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
}

impl Ctx {
    pub fn open(&self) -> Result<Repo> {
        Ok(Repo::open(&self.home, self.store.as_deref())?)
    }

    pub fn print_json<T: serde::Serialize>(&self, v: &T) -> Result<()> {
        let mut out = std::io::stdout().lock();
        // Keep a broken pipe an io::Error, so that `sage --json log | head` is not an error.
        serde_json::to_writer_pretty(&mut out, v).map_err(std::io::Error::from)?;
        writeln!(out)?;
        Ok(())
    }

    /// A progress bar on a TTY (stderr), nothing on a pipe or with -q.
    pub fn progress(&self, what: &str) -> Option<indicatif::ProgressBar> {
        if self.quiet || self.json || !std::io::stderr().is_terminal() {
            return None;
        }
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        Some(pb)
    }
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(".claude")
}

pub fn run() -> Result<i32> {
    // An exported but empty CLAUDE_CONFIG_DIR / SAGE_STORE means "not set" (as for Claude Code),
    // not "a missing value".
    for var in ["CLAUDE_CONFIG_DIR", "SAGE_STORE"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return Ok(code);
        }
    };
    let ctx = Ctx {
        home: cli
            .home
            .clone()
            .filter(|h| !h.as_os_str().is_empty())
            .unwrap_or_else(default_home),
        store: cli.store.clone(),
        json: cli.json,
        quiet: cli.quiet,
    };
    match cli.cmd {
        Cmd::Init { any_dir } => snapshot_cmds::init(&ctx, any_dir),
        Cmd::Commit { message, kind } => snapshot_cmds::commit(&ctx, &message, &kind),
        Cmd::Status => snapshot_cmds::status(&ctx),
        Cmd::Log {
            kind,
            host,
            limit,
            session,
        } => history::log(&ctx, kind, host, limit, session),
        Cmd::Show { snapshot } => history::show(&ctx, &snapshot),
        Cmd::Cat { spec } => history::cat(&ctx, &spec),
        Cmd::Diff { a, b, paths } => history::diff(&ctx, a, b, &paths),
        Cmd::Checkout {
            snapshot,
            paths,
            dry_run,
            i_understand_data_loss_risk,
        } => rollback::checkout(
            &ctx,
            &snapshot,
            &paths,
            dry_run,
            i_understand_data_loss_risk,
        ),
        Cmd::Conflicts { log } => conflicts::conflicts(&ctx, log),
        Cmd::Resolve {
            paths,
            all,
            ours,
            theirs,
            both,
        } => {
            let choice = match (ours, theirs, both) {
                (true, _, _) => Some(sage::resolve::Choice::Ours),
                (_, true, _) => Some(sage::resolve::Choice::Theirs),
                (_, _, true) => Some(sage::resolve::Choice::Both),
                _ => None,
            };
            conflicts::resolve_cmd(&ctx, &paths, all, choice)
        }
        Cmd::Undo {
            dry_run,
            i_understand_data_loss_risk,
        } => rollback::undo(&ctx, dry_run, i_understand_data_loss_risk),
        Cmd::Verify {
            read_data,
            repair,
            restore_test,
        } => maint::verify(&ctx, read_data, repair, restore_test.as_deref()),
        Cmd::Hooks { cmd } => care::hooks_cmd(&ctx, cmd),
        Cmd::Hook { event } => care::hook(&ctx, &event),
        Cmd::Backup { remote, kind } => care::backup_cmd(&ctx, remote.as_deref(), &kind),
        Cmd::Schedule { cmd } => care::schedule_cmd(&ctx, cmd),
        Cmd::Doctor { offline, timeout } => care::doctor_cmd(&ctx, offline, timeout),
        Cmd::Prune {
            policy,
            save_defaults,
            dry_run,
            i_understand_data_loss_risk,
        } => retention::prune(
            &ctx,
            &policy,
            save_defaults,
            dry_run,
            i_understand_data_loss_risk,
        ),
        Cmd::Purge {
            sessions,
            matches,
            match_file,
            finish,
            dry_run,
            i_understand_data_loss_risk,
        } => purge::purge(
            &ctx,
            purge::Args {
                sessions,
                matches,
                match_file,
                finish,
                dry_run,
                flag: i_understand_data_loss_risk,
            },
        ),
        Cmd::Gc { dry_run } => retention::gc(&ctx, dry_run),
        Cmd::Info => maint::info(&ctx),
        Cmd::Ops { limit } => maint::ops(&ctx, limit),
        Cmd::Dev { cmd } => maint::dev(&ctx, cmd),
        Cmd::Remote { cmd } => sync_cmds::remote_cmd(&ctx, cmd),
        Cmd::Push {
            remote,
            dry_run,
            force,
            i_understand_data_loss_risk,
            init,
            select: Selection { sessions, projects },
        } => sync_cmds::sync_cmd(
            &ctx,
            &remote,
            Direction::Push,
            SyncOptions {
                dry_run,
                force,
                init,
                sessions,
                projects,
            },
            i_understand_data_loss_risk,
        ),
        Cmd::Pull {
            remote,
            dry_run,
            init,
            select: Selection { sessions, projects },
        } => sync_cmds::sync_cmd(
            &ctx,
            &remote,
            Direction::Pull,
            SyncOptions {
                dry_run,
                force: false,
                init,
                sessions,
                projects,
            },
            false,
        ),
        Cmd::Sync {
            remote,
            dry_run,
            init,
            select: Selection { sessions, projects },
        } => sync_cmds::sync_cmd(
            &ctx,
            &remote,
            Direction::Both,
            SyncOptions {
                dry_run,
                force: false,
                init,
                sessions,
                projects,
            },
            false,
        ),
        Cmd::Demo { dir } => demo::demo(dir),
        Cmd::Serve { stdio } => sync_cmds::serve(stdio),
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
