//! `sage conflicts` and `sage resolve` through the real binary, on two homes synced through a
//! local remote: a resolution is a snapshot the next sync carries to the other machine, `sage
//! undo` reverts it, and held-back configuration is applied only when asked.

mod sync_common;

use std::fs;
use sync_common::*;

fn pair(w: &World, seed: u64) -> (Machine, Machine) {
    let a = w.machine("laptop");
    let b = w.machine("gpu");
    realistic_home(&a.home, seed, false);
    write(&a.home.join("CLAUDE.md"), "# rules\nbe brief\n");
    write(&a.home.join("agents/reviewer.md"), "review carefully\n");
    a.commit();
    let wrap = b.wrapper(&w.path("gpu-sage"), &WrapperOpts::default());
    a.add_pipe_remote("gpu", &b, &wrap, &[]);
    a.ok(&["sync", "gpu"]);
    (a, b)
}

fn listed(m: &Machine) -> Vec<(String, String)> {
    let v = m.ok(&["--json", "conflicts"]).json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn resolving_a_conflict_travels_with_the_next_sync_and_undo_reverts_it() {
    let w = World::new();
    let (a, b) = pair(&w, 70);
    write(&a.home.join("CLAUDE.md"), "# rules\nbe brief (laptop)\n");
    write(&b.home.join("CLAUDE.md"), "# rules\nbe thorough (gpu)\n");
    write(&a.home.join("agents/reviewer.md"), "laptop reviewer\n");
    write(&b.home.join("agents/reviewer.md"), "gpu reviewer\n");
    a.ok(&["sync", "gpu"]);
    assert_eq!(a.head(), b.head());
    let want = vec![
        ("conflict".to_string(), "CLAUDE.md".to_string()),
        ("conflict".to_string(), "agents/reviewer.md".to_string()),
    ];
    assert_eq!(listed(&a), want);
    assert_eq!(listed(&b), want);
    let text = a.ok(&["conflicts"]).text();
    assert!(
        text.contains("this machine") && text.contains("store "),
        "{text}"
    );
    // each home kept its own version
    assert_eq!(
        fs::read_to_string(a.home.join("CLAUDE.md")).unwrap(),
        "# rules\nbe brief (laptop)\n"
    );

    // no terminal and no choice: say what to give
    let o = a.run(&["resolve", "CLAUDE.md"]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.all().contains("--ours, --theirs or --both"),
        "{}",
        o.all()
    );
    let o = a.run(&["resolve", "settings.json", "--ours"]);
    assert_eq!(o.code, Some(2), "{}", o.all());

    // take the GPU's rules on the laptop
    let o = a.ok(&["resolve", "CLAUDE.md", "--theirs"]);
    assert!(
        o.text().contains("resolved CLAUDE.md: theirs"),
        "{}",
        o.text()
    );
    assert_eq!(
        fs::read_to_string(a.home.join("CLAUDE.md")).unwrap(),
        "# rules\nbe thorough (gpu)\n"
    );
    assert_eq!(listed(&a), vec![want[1].clone()]);
    assert!(a.ok(&["commit"]).text().starts_with("nothing changed"));

    // undo brings the conflict back, with the laptop's version in the home
    a.ok(&["undo", "--i-understand-data-loss-risk"]);
    assert_eq!(listed(&a), want);
    assert_eq!(
        fs::read_to_string(a.home.join("CLAUDE.md")).unwrap(),
        "# rules\nbe brief (laptop)\n"
    );
    assert!(a.ok(&["commit"]).text().starts_with("nothing changed"));

    // resolve everything in one batch: ours for the rules...
    a.ok(&["resolve", "CLAUDE.md", "--ours"]);
    // ...and both reviewers, the GPU's beside the laptop's
    a.ok(&["resolve", "--all", "--both"]);
    assert!(listed(&a).is_empty());
    let beside: Vec<String> = fs::read_dir(a.home.join("agents"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let other = beside
        .iter()
        .find(|n| n.starts_with("reviewer.from-"))
        .unwrap_or_else(|| panic!("{beside:?}"));
    assert_eq!(
        fs::read_to_string(a.home.join("agents").join(other)).unwrap(),
        "gpu reviewer\n"
    );

    // the next sync settles it on the GPU box too: same versions, same snapshot
    a.ok(&["sync", "gpu"]);
    assert_eq!(a.head(), b.head());
    assert!(listed(&b).is_empty(), "{:?}", listed(&b));
    for m in [&a, &b] {
        assert_eq!(
            fs::read_to_string(m.home.join("CLAUDE.md")).unwrap(),
            "# rules\nbe brief (laptop)\n",
            "{}",
            m.name
        );
        assert_eq!(
            fs::read_to_string(m.home.join("agents").join(other)).unwrap(),
            "gpu reviewer\n"
        );
    }
    // the history of resolutions
    let log = a.ok(&["conflicts", "--log"]).text();
    assert!(
        log.contains("(undone)") && log.contains("resolve agents/reviewer.md (both)"),
        "{log}"
    );
    a.verify();
    b.verify();
}

#[test]
fn held_back_configuration_is_listed_and_applied_only_when_asked() {
    let w = World::new();
    let (a, b) = pair(&w, 71);
    write(&b.home.join("commands/deploy.md"), "run ./deploy.sh\n");
    write(&b.home.join("settings.json"), "{\"hooks\":{\"Stop\":[]}}\n");
    let before = fs::read(a.home.join("settings.json")).unwrap();
    a.ok(&["pull", "gpu"]);
    assert!(!a.home.join("commands/deploy.md").exists());
    let l = listed(&a);
    assert!(
        l.contains(&("held-back".into(), "commands/deploy.md".into()))
            && l.contains(&("held-back".into(), "settings.json".into())),
        "{l:?}"
    );
    // apply one, keep this machine's version of the other
    a.ok(&["resolve", "commands/deploy.md", "--theirs"]);
    assert_eq!(
        fs::read_to_string(a.home.join("commands/deploy.md")).unwrap(),
        "run ./deploy.sh\n"
    );
    a.ok(&["resolve", "settings.json", "--ours"]);
    assert_eq!(fs::read(a.home.join("settings.json")).unwrap(), before);
    assert!(listed(&a).is_empty());
    assert!(a.ok(&["commit"]).text().starts_with("nothing changed"));
    // the laptop's choice travels: the GPU box gets the laptop's settings back
    a.ok(&["sync", "gpu"]);
    assert_eq!(a.head(), b.head());
    assert_eq!(fs::read(b.home.join("settings.json")).unwrap(), before);
    a.verify();
}

/// On a terminal, `sage resolve` shows each conflict's diff and asks.
#[test]
fn resolve_on_a_terminal_shows_the_diff_and_asks() {
    use std::io::Write;
    let w = World::new();
    let (a, b) = pair(&w, 72);
    write(&a.home.join("CLAUDE.md"), "# rules\nbe brief (laptop)\n");
    write(&b.home.join("CLAUDE.md"), "# rules\nbe thorough (gpu)\n");
    a.ok(&["sync", "gpu"]);
    let cmdline = format!("'{}' --home '{}' resolve", sage_bin(), a.home.display());
    let mut c = std::process::Command::new("script");
    c.env("HOME", &a.user)
        .env("XDG_DATA_HOME", &a.xdg)
        .env("SAGE_HOST", &a.host)
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("script(1)");
    child.stdin.take().unwrap().write_all(b"t\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("-be brief (laptop)") && text.contains("+be thorough (gpu)"),
        "{text}"
    );
    assert!(text.contains("keep [o]urs, [t]heirs, [b]oth"), "{text}");
    assert!(text.contains("resolved CLAUDE.md: theirs"), "{text}");
    assert_eq!(
        fs::read_to_string(a.home.join("CLAUDE.md")).unwrap(),
        "# rules\nbe thorough (gpu)\n"
    );
}
