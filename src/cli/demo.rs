//! `sage demo`: the laptop / GPU-box story on two temp homes, narrated, with the real
//! commands (each step runs this very binary, exactly as a user would).

use anyhow::{Context, Result};
use sage::testgen::{append_to_sessions, generate_home, message_line, GenOptions, GenReport};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Demo {
    exe: PathBuf,
    base: PathBuf,
}

impl Demo {
    fn say(&self, text: &str) {
        println!("\n# {text}");
    }

    fn run(&self, host: &str, home: &Path, args: &[&str]) -> Result<()> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("{a:?}")
                } else {
                    a.to_string()
                }
            })
            .collect();
        println!(
            "$ sage --home {} {}",
            home.strip_prefix(&self.base).unwrap_or(home).display(),
            shown.join(" ")
        );
        std::io::stdout().flush()?;
        let status = Command::new(&self.exe)
            .arg("--home")
            .arg(home)
            .args(args)
            .env("XDG_DATA_HOME", self.base.join("data"))
            .env("SAGE_HOST", host)
            // The demo edits files a moment before syncing them; a real sync waits this long
            // before rewriting a session that is being written (it is deferred, not lost).
            .env("SAGE_LIVE_WINDOW_MS", "0")
            .env_remove("SAGE_STORE")
            .env_remove("CLAUDE_CONFIG_DIR")
            .status()
            .with_context(|| format!("running sage {}", args.join(" ")))?;
        if !status.success() {
            anyhow::bail!("`sage {}` failed ({status})", args.join(" "));
        }
        Ok(())
    }
}

fn append_line(home: &Path, rel: &str, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.join(rel))?;
    f.write_all(line.as_bytes())?;
    Ok(())
}

pub fn demo(dir: Option<PathBuf>) -> Result<i32> {
    let base = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            sage::repo::canonical_home(&d)
        }
        None => tempfile::Builder::new()
            .prefix("sage-demo-")
            .tempdir()?
            .keep(),
    };
    let d = Demo {
        exe: std::env::current_exe()?,
        base: base.clone(),
    };
    let laptop = base.join("laptop/.claude");
    let gpu = base.join("gpu-box/.claude");
    println!(
        "sage demo: a laptop and a GPU box, each with a Claude Code home, in {}",
        base.display()
    );
    println!(
        "(stores live outside the homes, in {})",
        base.join("data/sage").display()
    );

    d.say(
        "The laptop has a realistic Claude Code home: sessions, subagents, tool results, settings.",
    );
    let report: GenReport = generate_home(&laptop, &GenOptions::small(7))?;
    println!(
        "  {} sessions, {} files, {} KB",
        report.sessions,
        report.files,
        report.bytes / 1024
    );

    d.say("Snapshot it. Every message becomes a deduplicated, compressed object; nothing leaves the machine.");
    d.run("laptop", &laptop, &["commit", "-m", "first snapshot"])?;

    d.say(
        "Name the GPU box as a remote (over ssh this would be `sage remote add gpu me@gpu-box`).",
    );
    d.run(
        "laptop",
        &laptop,
        &["remote", "add", "gpu", &gpu.to_string_lossy()],
    )?;

    d.say("Push: the GPU box gets a store and a home, byte for byte.");
    d.run("laptop", &laptop, &["push", "gpu"])?;

    d.say("Both machines keep working: the same session is continued on both, and Claude's cleanup deletes an old session on the GPU box.");
    let session = report
        .session_paths
        .first()
        .context("the sample home has sessions")?
        .clone();
    let sid = Path::new(&session)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("demo")
        .to_string();
    append_line(
        &laptop,
        &session,
        &message_line(
            &sid,
            "demo-laptop-1",
            None,
            "2026-11-20T10:00:00.000Z",
            "user",
            "On the laptop: let's profile the data loader.",
        ),
    )?;
    append_line(
        &gpu,
        &session,
        &message_line(
            &sid,
            "demo-gpu-1",
            None,
            "2026-11-20T09:00:00.000Z",
            "user",
            "On the GPU box: the training run finished, loss 0.31.",
        ),
    )?;
    append_to_sessions(&laptop, &report, 3, 4, 11)?;
    let victim = report
        .session_paths
        .last()
        .context("the sample home has sessions")?;
    std::fs::remove_file(gpu.join(victim))?;
    println!("  appended to {session} on both machines; deleted {victim} on the GPU box");
    d.run("gpu-box", &gpu, &["commit", "-m", "work on the GPU box"])?;

    d.say("Sync: pull then push. Every message from either side survives; the deleted session comes back.");
    d.run("laptop", &laptop, &["sync", "gpu"])?;
    let a = std::fs::read(laptop.join(&session))?;
    let b = std::fs::read(gpu.join(&session))?;
    println!(
        "  {session}: identical on both machines: {}; holds both new messages: {}",
        a == b,
        String::from_utf8_lossy(&a).contains("On the laptop")
            && String::from_utf8_lossy(&a).contains("On the GPU box")
    );
    println!(
        "  {victim} is back on the GPU box: {}",
        gpu.join(victim).exists()
    );

    d.say("History on both machines: the same merge snapshot id at the top.");
    d.run("laptop", &laptop, &["log", "-n", "4"])?;
    d.run("gpu-box", &gpu, &["log", "-n", "1"])?;

    d.say("What the sync brought to the laptop, message by message:");
    d.run(
        "laptop",
        &laptop,
        &["diff", "HEAD~1", "HEAD", "--", &session],
    )?;

    d.say("Roll the laptop back to its first snapshot. This drops messages from the home, so sage shows the impact and wants confirmation (here given by the flag; on a terminal you type it).");
    d.run(
        "laptop",
        &laptop,
        &["checkout", "HEAD~2", "--i-understand-data-loss-risk"],
    )?;

    d.say("Changed your mind? Undo the rollback.");
    d.run(
        "laptop",
        &laptop,
        &["undo", "--i-understand-data-loss-risk"],
    )?;

    d.say("Check that every object of every snapshot is intact.");
    d.run("laptop", &laptop, &["verify", "--read-data"])?;

    println!(
        "\nDone. The homes are in {} and {}.",
        laptop.display(),
        gpu.display()
    );
    println!(
        "Try next (set XDG_DATA_HOME={} so sage finds the demo's stores):",
        base.join("data").display()
    );
    println!("  sage --home {} status", laptop.display());
    println!("  sage --home {} log --json -n 2", gpu.display());
    println!("  sage --home {} show HEAD", laptop.display());
    println!("Remove it all with: rm -rf {}", base.display());
    Ok(0)
}
