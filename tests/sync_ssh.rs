//! Sync through a real sshd on 127.0.0.1 (each test starts its own on a free port and stops it
//! by its pid). These tests fail, never skip, when /usr/sbin/sshd is missing. The remote sage
//! is a wrapper script that gives it the remote machine's environment (sshd passes none of
//! ours), so everything stays inside the test's temp dir.

mod sync_common;

use std::fs;
use sync_common::*;

/// A laptop that reaches `gpu` through the sshd with the authorized key.
fn pair(w: &World, sshd: &Sshd) -> (Machine, Machine, std::path::PathBuf) {
    let mut a = w.machine("laptop");
    a.ssh_command = Some(sshd.ssh_command(&sshd.client_key));
    let b = w.machine("gpu");
    let wrap = b.wrapper(&w.path("gpu-sage"), &WrapperOpts::default());
    (a, b, wrap)
}

#[test]
fn push_pull_and_sync_of_diverged_homes_through_sshd() {
    let w = World::new();
    let sshd = Sshd::start(&w.path("sshd"));
    let (a, b, wrap) = pair(&w, &sshd);
    let lay = realistic_home(&a.home, 21, true);
    a.commit();
    let url = sshd.url(&b);
    let o = a.ok(&[
        "remote",
        "add",
        "gpu",
        &url,
        "--remote-sage",
        &wrap.display().to_string(),
    ]);
    assert!(o.text().contains("no store yet"), "{}", o.text());

    // push: creates the remote store (in the remote machine's own data dir) and fast-forwards
    let o = a.ok(&["--json", "push", "gpu"]);
    assert_eq!(o.json()["remote_created"], true);
    assert_eq!(a.head(), b.head());
    assert!(
        b.store_dir().starts_with(&b.xdg),
        "remote store at {}",
        b.store_dir().display()
    );
    assert_same_files(
        &synced_files(&a.home),
        &synced_files(&b.home),
        "after push over ssh",
    );

    // pull: the gpu continued two sessions and started one
    let mut rng = Rng::new(21);
    let s = &lay.sessions;
    append(
        &b.home.join(&s[0]),
        session_lines(&mut rng, "s0", 15, 6, "gpu"),
    );
    append(
        &b.home.join(&lay.big),
        session_lines(&mut rng, "big", 15, 3, "gpu"),
    );
    write(
        &b.home.join(format!("{APP}/gpu.jsonl")),
        session_lines(&mut rng, "g", 15, 5, "gpu"),
    );
    age(&b.home);
    let want = union_lines(&jsonl_lines(&a.home), &jsonl_lines(&b.home));
    a.ok(&["pull", "gpu"]);
    assert_lines_superset(&jsonl_lines(&a.home), &want, "laptop after pull");
    assert_same_files(
        &synced_files(&a.home),
        &synced_files(&b.home),
        "after pull over ssh",
    );

    // sync: both continue the same session, the gpu's cleanup deletes one
    append(
        &a.home.join(&s[1]),
        session_lines(&mut rng, "s1", 16, 4, "laptop"),
    );
    append(
        &b.home.join(&s[1]),
        session_lines(&mut rng, "s1", 17, 4, "gpu"),
    );
    append(
        &a.home.join("history.jsonl"),
        "{\"display\":\"l\",\"timestamp\":1773100000000}\n",
    );
    fs::remove_file(b.home.join(&s[3])).unwrap();
    age(&a.home);
    age(&b.home);
    let want = union_lines(
        &want,
        &union_lines(&jsonl_lines(&a.home), &jsonl_lines(&b.home)),
    );
    let o = a.ok(&["--json", "sync", "gpu"]);
    assert!(o.json()["snapshots_sent"].as_u64().unwrap() > 0);
    for m in [&a, &b] {
        assert_lines_superset(&jsonl_lines(&m.home), &want, &m.name);
    }
    assert_same_files(
        &synced_files(&a.home),
        &synced_files(&b.home),
        "after sync over ssh",
    );
    assert_eq!(a.head(), b.head());
    let o = a.ok(&["--json", "sync", "gpu"]);
    let v = o.json();
    assert_eq!(
        (
            v["snapshots_sent"].as_u64(),
            v["snapshots_received"].as_u64()
        ),
        (Some(0), Some(0)),
        "{v}"
    );
    a.verify();
    b.verify();
}

/// `remote add` (which checks the remote) and `push` (of a remote added unchecked) both fail
/// with an error containing every one of `needles`.
fn both_fail(a: &Machine, url: &str, extra: &[&str], needles: &[&str]) {
    let mut args = vec!["remote", "add", "gpu", url];
    args.extend_from_slice(extra);
    let o = a.fails(&args);
    let msg = o.all();
    for n in needles {
        assert!(msg.contains(n), "remote add: {n:?} not in:\n{msg}");
    }
    assert!(
        !a.ok(&["remote", "list"]).text().contains("gpu"),
        "a remote that does not answer is not added"
    );
    args.push("--no-check");
    a.ok(&args);
    let o = a.fails(&["push", "gpu"]);
    let msg = o.all();
    for n in needles {
        assert!(msg.contains(n), "push: {n:?} not in:\n{msg}");
    }
    a.ok(&["remote", "remove", "gpu"]);
}

#[test]
fn ssh_errors_say_what_went_wrong() {
    let w = World::new();
    let sshd = Sshd::start(&w.path("sshd"));
    let (mut a, b, wrap) = pair(&w, &sshd);
    realistic_home(&a.home, 22, false);
    a.commit();
    let wrap_s = wrap.display().to_string();

    // unknown host
    let url = format!("ssh://root@nonexistent.invalid{}", b.home.display());
    both_fail(
        &a,
        &url,
        &["--remote-sage", &wrap_s],
        &["unknown host", "nonexistent.invalid"],
    );

    // nothing listening on the port
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("ssh://root@127.0.0.1:{closed}{}", b.home.display());
    both_fail(
        &a,
        &url,
        &["--remote-sage", &wrap_s],
        &["cannot reach", "Connection refused"],
    );

    let url = sshd.url(&b);
    // sage not installed where --remote-sage says
    both_fail(
        &a,
        &url,
        &["--remote-sage", "/nonexistent/sage"],
        &["not installed on the remote", "--remote-sage"],
    );
    // sage not on the PATH of a non-interactive ssh (no --remote-sage)
    both_fail(&a, &url, &[], &["not on the PATH", "--remote-sage"]);

    // a shell that prints a banner before the handshake
    let banner = b.wrapper(
        &w.path("banner-sage"),
        &WrapperOpts {
            banner: Some("Welcome to GPU box".into()),
            ..Default::default()
        },
    );
    both_fail(
        &a,
        &url,
        &["--remote-sage", &banner.display().to_string()],
        &["printed something before", "Welcome to GPU box", "bashrc"],
    );

    // the login is refused (a key the server does not know)
    a.ssh_command = Some(sshd.ssh_command(&sshd.other_key));
    both_fail(
        &a,
        &url,
        &["--remote-sage", &wrap_s],
        &["refused the login", "Permission denied"],
    );

    // none of this created anything on the remote
    assert!(!b.home.exists(), "the remote home was created");
    assert!(
        fs::read_dir(&b.xdg).unwrap().next().is_none(),
        "the remote got a store"
    );
    // and with the right key and path it works
    a.ssh_command = Some(sshd.ssh_command(&sshd.client_key));
    a.ok(&["remote", "add", "gpu", &url, "--remote-sage", &wrap_s]);
    a.ok(&["push", "gpu"]);
    assert_eq!(a.head(), b.head());
}

/// Cross-machine project mapping through the real sshd: the laptop's `/Users/me/code/app`
/// sessions and the GPU box's `/workspace/app` sessions meet in each machine's own directory.
#[test]
fn mapped_projects_sync_through_sshd() {
    let w = World::new();
    let sshd = Sshd::start(&w.path("sshd"));
    let (a, b, wrap) = pair(&w, &sshd);
    let mut rng = Rng::new(61);
    let s1 = session_lines(&mut rng, "s1", 10, 5, "laptop");
    let s2 = session_lines(&mut rng, "s2", 11, 4, "gpu");
    write(&a.home.join("projects/-Users-me-code-app/s1.jsonl"), &s1);
    write(&b.home.join("projects/-workspace-app/s2.jsonl"), &s2);
    a.commit();
    b.commit();
    let url = sshd.url(&b);
    a.ok(&[
        "remote",
        "add",
        "gpu",
        &url,
        "--remote-sage",
        &wrap.display().to_string(),
        "--map",
        "/Users/me/code=/workspace",
    ]);
    a.ok(&["sync", "gpu"]);
    assert_eq!(a.head(), b.head());
    for (m, dir) in [(&a, "-Users-me-code-app"), (&b, "-workspace-app")] {
        let d = m.home.join("projects").join(dir);
        assert_eq!(fs::read(d.join("s1.jsonl")).unwrap(), s1.as_bytes());
        assert_eq!(fs::read(d.join("s2.jsonl")).unwrap(), s2.as_bytes());
        let dirs: Vec<String> = fs::read_dir(m.home.join("projects"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(dirs, vec![dir.to_string()], "{}", m.name);
    }
    // a second sync moves nothing
    let o = a.ok(&["--json", "sync", "gpu"]);
    assert_eq!(o.json()["snapshots_sent"], 0);
    assert_eq!(o.json()["snapshots_received"], 0);
    a.verify();
    b.verify();
}
