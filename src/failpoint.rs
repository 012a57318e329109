//! Env-gated failpoints for crash tests: `SAGE_FAILPOINT=name` makes the process die at once
//! (no destructors, no flushing, as a SIGKILL would) when it reaches the point `name`.
//! `SAGE_FAILPOINT=name:N` dies at the N-th hit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn spec() -> &'static Option<(String, u64)> {
    SPEC.get_or_init(|| {
        let v = std::env::var("SAGE_FAILPOINT").ok()?;
        match v.split_once(':') {
            Some((name, n)) => Some((name.to_string(), n.parse().unwrap_or(1))),
            None => Some((v, 1)),
        }
    })
}

/// Count a hit of `name`: is this the one that should die? (For failpoints that half-do
/// something first, then call `die`.)
pub fn reached(name: &str) -> bool {
    matches!(spec(), Some((want, n)) if want == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n)
}

pub fn die(name: &str) -> ! {
    eprintln!("sage: failpoint {name} reached, dying");
    // SAFETY: _exit ends the process immediately, which is the point.
    unsafe { libc::_exit(137) }
}

pub fn hit(name: &str) {
    if reached(name) {
        die(name);
    }
}
