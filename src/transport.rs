//! Reaching a remote: a child `sage serve --stdio`, either through the system `ssh` (so
//! `~/.ssh/config`, keys, agents and ProxyJump work as with git and rsync) or, for a local
//! path, directly. Both speak the same protocol, so tests exercise the real code path.

use crate::error::{Error, IoContext, Result};
use crate::protocol::Conn;
use crate::sync::remote::{Location, Remote};
use std::io::{BufReader, BufWriter, Read};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct Transport {
    pub conn: Conn<BufReader<ChildStdout>, BufWriter<ChildStdin>>,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    pub ssh: bool,
}

fn ssh_command() -> Vec<String> {
    std::env::var("SAGE_SSH_COMMAND")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_else(|| vec!["ssh".to_string()])
}

impl Transport {
    pub fn connect(remote: &Remote) -> Result<(Transport, String)> {
        let loc = crate::sync::remote::parse_location(&remote.url)?;
        let (mut cmd, path, ssh) = match &loc {
            Location::Local(p) => {
                let exe = std::env::current_exe().ctx(|| "finding the sage executable".into())?;
                let mut c = Command::new(exe);
                c.args(["serve", "--stdio"]);
                (c, p.to_string_lossy().into_owned(), false)
            }
            Location::Ssh { host, port, path } => {
                let argv = ssh_command();
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                if let Some(p) = port {
                    c.args(["-p", &p.to_string()]);
                }
                let sage = remote
                    .remote_sage
                    .clone()
                    .unwrap_or_else(|| "sage".to_string());
                // The path travels inside the protocol, never through the remote shell.
                c.arg("--")
                    .arg(host)
                    .arg(format!("{} serve --stdio", shell_quote(&sage)));
                (c, path.clone(), true)
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            if ssh && e.kind() == std::io::ErrorKind::NotFound {
                Error::Other("the `ssh` program was not found: install OpenSSH's client (or set SAGE_SSH_COMMAND)".into())
            } else {
                Error::io("starting the remote sage", e)
            }
        })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        if s.len() < 64 * 1024 {
                            s.extend_from_slice(&buf[..n]);
                        }
                    }
                }
            });
        }
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut t = Transport {
            conn: Conn::new(
                BufReader::with_capacity(1 << 20, stdout),
                BufWriter::with_capacity(1 << 20, stdin),
            ),
            child,
            stderr,
            ssh,
        };
        if let Err(e) = t.conn.expect_magic() {
            return Err(t.explain(e));
        }
        Ok((t, path))
    }

    /// Turn a failure into an error that says what went wrong with ssh or the remote sage.
    pub fn explain(&mut self, e: Error) -> Error {
        // Hang up first: a server waiting for our next request (or blocked writing to us)
        // would otherwise never exit, and waiting for it would hang this process.
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 atomically replaces the pipe ends we own with /dev/null; the
            // connection keeps owning (and later closes) valid descriptors.
            unsafe {
                libc::dup2(null.as_raw_fd(), self.conn.w.get_ref().as_raw_fd());
                libc::dup2(null.as_raw_fd(), self.conn.r.get_ref().as_raw_fd());
            }
        }
        let status = self.child.wait().ok();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let err =
            String::from_utf8_lossy(&self.stderr.lock().map(|s| s.clone()).unwrap_or_default())
                .trim()
                .to_string();
        let code = status.and_then(|s| s.code());
        let hint = if err.contains("Could not resolve hostname")
            || err.contains("Name or service not known")
        {
            "unknown host: check the host name (and ~/.ssh/config)"
        } else if err.contains("Permission denied") {
            "ssh refused the login: check your key (ssh-add -l) and the user name"
        } else if err.contains("Host key verification failed") {
            "the remote's host key is unknown or changed: connect once with `ssh HOST` to check and accept it"
        } else if err.contains("Connection refused") || err.contains("timed out") {
            "cannot reach the remote's ssh server: is it running, is the port right?"
        } else if code == Some(127)
            || err.contains("command not found")
            || err.contains("No such file")
        {
            "sage is not installed on the remote, or not on the PATH of a non-interactive ssh: install it there, or `sage remote add NAME HOST --remote-sage /path/to/sage`"
        } else {
            ""
        };
        if err.is_empty() && hint.is_empty() {
            return e;
        }
        let mut msg = e.to_string();
        if !err.is_empty() {
            msg.push_str(&format!("\n  remote said: {err}"));
        }
        if !hint.is_empty() {
            msg.push_str(&format!("\n  fix: {hint}"));
        }
        Error::Other(msg)
    }

    pub fn finish(mut self) -> Result<()> {
        let _ = self.conn.send(&crate::protocol::Msg::Bye);
        drop(self.conn);
        let _ = self.child.wait();
        Ok(())
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
