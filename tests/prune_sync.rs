//! Sync after a prune: pruned snapshots keep their rows and travel as rows marked
//! `trees: pruned` (capability `pruned-marks`); they are never a "have" or a merge base, so
//! homes whose shared history was pruned on one side still converge without losing a line, and
//! a fresh machine receives the whole graph with the pruned rows marked.

mod sync_common;

use std::collections::BTreeSet;
use sync_common::*;

const FLAG: &str = "--i-understand-data-loss-risk";
const APP: &str = "projects/-home-u-app";

fn pruned_ids(m: &Machine) -> BTreeSet<String> {
    m.ok(&["--json", "log"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pruned"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn all_ids(m: &Machine) -> BTreeSet<String> {
    m.ok(&["--json", "log"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn work(m: &Machine, rng: &mut Rng, file: &str, day: u32, n: usize) {
    let p = m.home.join(APP).join(file);
    let text = session_lines(rng, file, day, n, &m.name);
    if p.exists() {
        append(&p, text);
    } else {
        write(&p, text);
    }
    write(
        &m.home.join("todos/scratch.json"),
        format!("{{\"{}\":\"{}\"}}", m.name, rng.hex(2000)),
    );
    m.commit();
}

#[test]
fn pruned_history_syncs_and_converges() {
    let w = World::new();
    let a = w.machine("laptop");
    let b = w.machine_beside("gpu", &a);
    let mut rng = Rng::new(66);
    write(&a.home.join("settings.json"), "{}");
    for day in 0..15 {
        work(&a, &mut rng, "shared.jsonl", day, 3);
    }
    a.ok(&["remote", "add", "gpu", &b.home.display().to_string()]);
    a.ok(&["push", "gpu"]);
    assert_eq!(a.head(), b.head());

    // the gpu box goes on alone, then prunes everything its policy and op log allow
    for day in 15..27 {
        work(&b, &mut rng, "gpu.jsonl", day, 2);
    }
    b.ok(&["prune", "--keep-last", "1", FLAG]);
    let b_pruned = pruned_ids(&b);
    assert!(b_pruned.len() >= 15, "{b_pruned:?}");
    b.verify();

    // the laptop diverges, then syncs: the base it shares with the gpu box has no trees there
    work(&a, &mut rng, "shared.jsonl", 30, 4);
    work(&a, &mut rng, "laptop.jsonl", 30, 4);
    let want = union_lines(&jsonl_lines(&a.home), &jsonl_lines(&b.home));
    a.ok(&["sync", "gpu"]);
    assert_eq!(a.head(), b.head(), "converged");
    assert_lines_superset(&jsonl_lines(&a.home), &want, "laptop after sync");
    assert_lines_superset(&jsonl_lines(&b.home), &want, "gpu after sync");
    a.verify();
    b.verify();
    // the rows the gpu box pruned and the laptop lacked arrived marked
    let a_pruned = pruned_ids(&a);
    assert!(
        !a_pruned.is_empty() && a_pruned.is_subset(&b_pruned),
        "{a_pruned:?}"
    );
    // a second sync moves nothing
    let o = a.ok(&["--json", "sync", "gpu"]);
    assert_eq!(o.json()["snapshots_sent"], 0);
    assert_eq!(o.json()["snapshots_received"], 0);

    // the laptop prunes too; the sync still works, both ways
    a.ok(&["prune", "--keep-last", "1", FLAG]);
    work(&b, &mut rng, "gpu.jsonl", 40, 3);
    work(&a, &mut rng, "laptop.jsonl", 40, 3);
    let want = union_lines(&jsonl_lines(&a.home), &jsonl_lines(&b.home));
    a.ok(&["sync", "gpu"]);
    assert_eq!(a.head(), b.head());
    assert_lines_superset(&jsonl_lines(&a.home), &want, "laptop, second round");
    assert_lines_superset(&jsonl_lines(&b.home), &want, "gpu, second round");
    a.verify();
    b.verify();

    // a fresh machine pulls the whole graph: every row, the pruned ones marked
    let c = w.machine_beside("new", &a);
    c.ok(&["init"]);
    c.ok(&[
        "remote",
        "add",
        "laptop",
        &a.home.display().to_string(),
        "--trust-config",
    ]);
    c.ok(&["pull", "laptop"]);
    // (a pull into a new home records its own snapshot of the result on top)
    assert!(all_ids(&a).is_subset(&all_ids(&c)));
    assert_eq!(pruned_ids(&c), pruned_ids(&a));
    assert_lines_superset(&jsonl_lines(&c.home), &want, "fresh machine");
    c.verify();
    // and a pruned row cannot be checked out, anywhere
    let gone = pruned_ids(&c).into_iter().next().unwrap();
    let o = c.fails(&["checkout", &gone, "--dry-run"]);
    assert!(o.stderr.contains("pruned"), "{}", o.stderr);
}
