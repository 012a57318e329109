//! Deterministic generator of realistic Claude Code homes (`~/.claude`), for tests, benchmarks and
//! the hidden `gen` CLI command.
//!
//! Everything is derived from a seed ([`rand::rngs::StdRng`]) and a fixed base date, never from the
//! real clock, so the same [`GenOptions`] always produce byte-identical trees (file contents,
//! modes and symlink targets; modification times are not controlled).
//!
//! The generated home mixes the shapes of Claude Code 1.0, 2.0 and 2.1 transcripts: compact JSON
//! lines with a `uuid`/`parentUuid` chain, assistant replies split over several lines sharing
//! `message.id`/`requestId`, uuid-less metadata lines re-appended with identical bytes, compaction
//! boundaries, rewinds (two children of one parent), subagent transcripts in both layouts, resumed
//! sessions that start with a byte-identical copy of an earlier session, out-of-line tool results,
//! file-history backups and all the side files of a real home, including the ones sage must never
//! store (credentials, `.claude.json`, caches) and, with [`GenOptions::awkward`], damaged files.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

/// What to generate. See [`GenOptions::small`] and [`GenOptions::bench`] for presets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of project directories under `projects/`.
    pub projects: usize,
    /// Total number of main sessions, spread (skewed) over the projects.
    pub sessions: usize,
    /// Approximate total size of the generated home in bytes.
    pub target_bytes: u64,
    /// Include 1-3 MB tool-result lines and base64 image lines.
    pub big_lines: bool,
    /// Include damaged and unusual files (CRLF, invalid UTF-8, symlinks, ...).
    pub awkward: bool,
}

impl GenOptions {
    /// A small home: 60 sessions in 6 projects, about 4 MB, awkward files and big lines on.
    pub fn small(seed: u64) -> Self {
        GenOptions {
            seed,
            projects: 6,
            sessions: 60,
            target_bytes: 4 << 20,
            big_lines: true,
            awkward: true,
        }
    }

    /// A home of about `target_mb` MiB with realistic proportions: one session per ~250 KB and
    /// `sessions / 40 + 3` projects.
    pub fn bench(target_mb: u64, seed: u64) -> Self {
        let sessions = ((target_mb.max(1) * 1024) / 250).max(4) as usize;
        GenOptions {
            seed,
            projects: sessions / 40 + 3,
            sessions,
            target_bytes: target_mb.max(1) << 20,
            big_lines: true,
            awkward: true,
        }
    }
}

/// What [`generate_home`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenReport {
    /// Regular files written (symlinks and directories not counted).
    pub files: usize,
    /// Main sessions written (equals `session_paths.len()`).
    pub sessions: usize,
    /// Lines written to transcripts (main sessions, subagents and awkward transcripts).
    pub lines: usize,
    /// Total bytes of all regular files written.
    pub bytes: u64,
    /// Home-relative, '/'-separated paths of the well-formed main `.jsonl` transcripts, in
    /// generation order. The deliberately damaged transcripts are not listed.
    pub session_paths: Vec<String>,
}

/// Generate a Claude Code home under `root` (created if missing; should be empty).
pub fn generate_home(root: &Path, opts: &GenOptions) -> io::Result<GenReport> {
    generate_home_inner(root, opts).map(|(report, _)| report)
}

/// Append `lines_per_session` realistic message lines (complete, '\n'-terminated, continuing each
/// session's uuid/parentUuid chain and timestamps) to `count` sessions chosen deterministically by
/// `seed` among `report.session_paths`. Returns bytes appended.
pub fn append_to_sessions(
    root: &Path,
    report: &GenReport,
    count: usize,
    lines_per_session: usize,
    seed: u64,
) -> io::Result<u64> {
    let mut g = Gen::new(root, seed ^ 0xa99e_11d5_5e55_1015);
    let n = report.session_paths.len();
    let chosen = rand::seq::index::sample(&mut g.rng, n, count.min(n)).into_vec();
    let mut appended = 0u64;
    for idx in chosen {
        let rel = &report.session_paths[idx];
        let path = root.join(rel);
        let existing = fs::read(&path)?;
        let tail = TailState::from_transcript(&existing);
        let mut s = match tail {
            Some(t) => {
                let ctx = Ctx {
                    session_id: t.session_id,
                    cwd: t.cwd,
                    version: t.version,
                    branch: t.branch,
                    slug: None,
                    agent_id: None,
                    sidechain: false,
                    model: "claude-opus-4-6",
                    era: Era::V21,
                };
                let mut s = Sess::new(ctx, t.ts + 1000);
                s.last = Some(t.uuid);
                s
            }
            None => {
                let id = file_stem(rel);
                let ctx = Ctx {
                    session_id: id,
                    cwd: "/home/dev/projects/app".to_string(),
                    version: "2.1.39".to_string(),
                    branch: "main".to_string(),
                    slug: None,
                    agent_id: None,
                    sidechain: false,
                    model: "claude-opus-4-6",
                    era: Era::V21,
                };
                Sess::new(ctx, BASE_MS + 300 * DAY_MS)
            }
        };
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            s.buf.push('\n');
        }
        let files = project_files(&mut g.rng, &g.corpus, Lang::Rust);
        for i in 0..lines_per_session {
            s.append_message_line(&mut g, i, &files);
        }
        let mut f = fs::OpenOptions::new().append(true).open(&path)?;
        io::Write::write_all(&mut f, s.buf.as_bytes())?;
        appended += s.buf.len() as u64;
    }
    Ok(appended)
}

/// One realistic transcript line (JSON object + "\n") for session `session_id`, with given
/// uuid/parent and timestamp (ISO-8601 with ms, 'Z'), role "user" or "assistant"; text given.
pub fn message_line(
    session_id: &str,
    uuid: &str,
    parent: Option<&str>,
    timestamp: &str,
    role: &str,
    text: &str,
) -> String {
    let mut b = String::with_capacity(700 + text.len());
    b.push_str("{\"parentUuid\":");
    match parent {
        Some(p) => push_js(&mut b, p),
        None => b.push_str("null"),
    }
    b.push_str(",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/home/dev/projects/app\",\"sessionId\":");
    push_js(&mut b, session_id);
    b.push_str(",\"version\":\"2.1.39\",\"gitBranch\":\"main\",");
    if role == "assistant" {
        let h = blake3::hash(uuid.as_bytes());
        let hb = h.as_bytes();
        let id62 = |off: usize, n: usize| -> String {
            (0..n)
                .map(|i| B62[(hb[(off + i) % 32] as usize) % 62] as char)
                .collect()
        };
        let _ = write!(
            b,
            "\"message\":{{\"model\":\"claude-opus-4-6\",\"id\":\"msg_01{}\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{{\"type\":\"text\",\"text\":{}}}],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":3,\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"cache_creation\":{{\"ephemeral_5m_input_tokens\":{},\"ephemeral_1h_input_tokens\":0}},\"output_tokens\":{},\"service_tier\":\"standard\",\"inference_geo\":\"global\"}}}},\"requestId\":\"req_011C{}\",\"type\":\"assistant\",",
            id62(0, 22),
            js(text),
            u32::from(hb[1]) * 37 + 120,
            u32::from(hb[2]) * 211 + 9000,
            u32::from(hb[1]) * 37 + 120,
            text.len() / 4 + 1,
            id62(10, 20),
        );
    } else {
        b.push_str("\"type\":");
        push_js(&mut b, role);
        b.push_str(",\"message\":{\"role\":");
        push_js(&mut b, role);
        b.push_str(",\"content\":");
        push_js(&mut b, text);
        b.push_str("},");
    }
    b.push_str("\"uuid\":");
    push_js(&mut b, uuid);
    b.push_str(",\"timestamp\":");
    push_js(&mut b, timestamp);
    b.push_str("}\n");
    b
}

// ---------------------------------------------------------------------------------------------
// Constants and small helpers
// ---------------------------------------------------------------------------------------------

/// 2025-06-15T00:00:00.000Z
const BASE_MS: u64 = 1_749_945_600_000;
const DAY_MS: u64 = 86_400_000;
/// Sessions are spread over this many days after [`BASE_MS`].
const SPAN_DAYS: u64 = 240;
const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8] = b"0123456789abcdef";

/// Marker inside `.credentials.json`; sage must never store it.
const CREDENTIAL_MARKER: &str = "SECRET-CREDENTIAL-TOKEN-DO-NOT-STORE";
/// Marker inside `.claude.json`; sage must never store it.
const CLAUDE_JSON_MARKER: &str = "SECRET-CLAUDE-JSON";

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "function",
    "test",
    "error",
    "file",
    "module",
    "config",
    "we",
    "should",
    "update",
    "handler",
    "request",
    "response",
    "cache",
    "value",
    "return",
    "type",
    "struct",
    "field",
    "parse",
    "index",
    "query",
    "build",
    "check",
    "this",
    "that",
    "with",
    "for",
    "in",
    "of",
    "is",
    "it",
    "not",
    "when",
    "then",
    "now",
    "also",
    "before",
    "after",
    "because",
    "instead",
    "missing",
    "failing",
    "passes",
    "snapshot",
    "session",
    "transcript",
    "line",
    "merge",
    "conflict",
    "branch",
    "commit",
    "deploy",
    "server",
    "client",
    "token",
    "user",
    "path",
    "directory",
    "schema",
    "migration",
    "database",
    "table",
    "column",
    "row",
    "async",
    "await",
    "future",
    "thread",
    "lock",
    "channel",
    "buffer",
    "stream",
    "reader",
    "writer",
    "bytes",
    "string",
    "vector",
    "map",
    "key",
    "hash",
    "chunk",
    "store",
    "load",
    "save",
    "restore",
    "sync",
    "remote",
    "local",
    "version",
    "release",
    "debug",
    "log",
    "trace",
    "warning",
    "panic",
    "option",
    "result",
    "closure",
    "trait",
    "generic",
    "lifetime",
    "borrow",
    "clone",
    "iterator",
    "component",
    "render",
    "state",
    "props",
    "hook",
    "effect",
    "route",
    "endpoint",
    "payload",
    "json",
    "docker",
    "container",
    "image",
    "volume",
    "pipeline",
    "job",
    "step",
    "runner",
    "timeout",
    "retry",
    "backoff",
    "limit",
    "offset",
    "page",
    "cursor",
    "filter",
    "sort",
    "group",
    "count",
    "metric",
    "latency",
    "memory",
    "allocation",
    "frame",
    "call",
    "args",
    "flag",
    "default",
    "env",
    "variable",
    "permission",
    "owner",
    "mode",
    "symlink",
    "rename",
    "atomic",
    "temp",
    "glob",
    "pattern",
    "match",
    "replace",
    "diff",
    "patch",
    "hunk",
    "context",
    "need",
    "let",
    "me",
    "look",
    "at",
    "see",
    "how",
    "works",
    "currently",
    "fix",
    "add",
    "remove",
    "run",
    "tests",
    "first",
    "which",
    "are",
    "be",
    "so",
    "can",
    "will",
    "all",
    "only",
    "one",
    "two",
    "new",
    "old",
    "existing",
    "instead",
    "same",
    "different",
    "here",
    "there",
    "done",
    "good",
];
const TYPES: &[&str] = &[
    "Session",
    "Snapshot",
    "Store",
    "Config",
    "Error",
    "Request",
    "Response",
    "Handler",
    "Chunk",
    "Manifest",
    "Entry",
    "Index",
    "Cursor",
    "Line",
    "Transcript",
    "Project",
    "Reader",
    "Writer",
    "Options",
    "Report",
    "Message",
    "Event",
    "State",
    "Router",
    "Client",
    "Token",
    "Path",
];
const UNICODE_BITS: &[&str] = &[
    "→",
    "—",
    "ü",
    "é",
    "✓",
    "✅",
    "“quoted”",
    "…",
    "•",
    "λ",
    "日本語",
    "🚀",
    "±",
    "°C",
    "ß",
];
const TOOLS_WEIGHTED: &[(Tool, u32)] = &[
    (Tool::Bash, 30),
    (Tool::Read, 26),
    (Tool::Edit, 15),
    (Tool::Grep, 8),
    (Tool::Glob, 5),
    (Tool::Write, 5),
    (Tool::TodoWrite, 6),
    (Tool::Task, 3),
    (Tool::WebFetch, 2),
];
const HOOK_COMMANDS: &[&str] = &[
    "/home/USER/.claude/hooks/notify.sh",
    "${CLAUDE_PLUGIN_ROOT}/hooks/format-on-save.sh",
    "bd prime",
    "${CLAUDE_PLUGIN_ROOT}/scripts/notify-session.sh",
    "npx prettier --write \"$CLAUDE_FILE_PATHS\"",
];
const PROJECT_NAMES: &[&str] = &[
    "webapp",
    "api-server",
    "infra",
    "dotfiles",
    "ml-pipeline",
    "sage",
    "blog",
    "mobile-app",
    "data.tools",
    "rust-playground",
    "spotter",
    "billing_service",
    "docs-site",
    "cli",
    "game-engine",
    "auth",
];

fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_js(&mut out, s);
    out
}

/// Push `s` as a JSON string literal (quotes included), escaped like `JSON.stringify`.
fn push_js(out: &mut String, s: &str) {
    out.push('"');
    push_esc(out, s);
    out.push('"');
}

/// Push the JSON-escaped contents of `s` (no quotes).
fn push_esc(out: &mut String, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact test: does any byte of `v` need escaping (< 0x20, '"' or '\\')?
    fn special(v: u64) -> bool {
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let below = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
        (below | zero(v ^ (ONES * u64::from(b'"'))) | zero(v ^ (ONES * u64::from(b'\\')))) != 0
    }
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 16);
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i..i + 8]);
            if !special(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            let rep: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => {
                    out.push_str(&s[start..i]);
                    let _ = write!(out, "\\u{:04x}", b);
                    i += 1;
                    start = i;
                    continue;
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.push_str(&s[start..i]);
            out.push_str(rep);
            i += 1;
            start = i;
        }
    }
    out.push_str(&s[start..]);
}

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

fn uuid(rng: &mut StdRng) -> String {
    let mut b: [u8; 16] = rng.gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 15) as usize] as char);
    }
    s
}

fn hexs(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| HEX[rng.gen_range(0..16)] as char).collect()
}

fn b62(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| B62[rng.gen_range(0..62)] as char).collect()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn pick_str<'a, T: AsRef<str>>(rng: &mut StdRng, items: &'a [T]) -> &'a str {
    items[rng.gen_range(0..items.len())].as_ref()
}

/// Log-uniform integer in `lo..=hi` (long tail towards `lo`).
fn skewed(rng: &mut StdRng, lo: usize, hi: usize) -> usize {
    let (lo_f, hi_f) = ((lo.max(1)) as f64, (hi.max(lo + 1)) as f64);
    let x = lo_f * (hi_f / lo_f).powf(rng.gen::<f64>());
    (x as usize).clamp(lo, hi)
}

fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.gen_bool(p.clamp(0.0, 1.0))
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch milliseconds to `2025-06-15T12:34:56.789Z`.
fn iso(ms: u64) -> String {
    let days = (ms / DAY_MS) as i64;
    let rem = ms % DAY_MS;
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Parse `YYYY-MM-DDTHH:MM:SS(.mmm)Z` to epoch milliseconds.
fn parse_iso(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if b.get(19) == Some(&b'.') {
        num(20..23).unwrap_or(0)
    } else {
        0
    };
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    let days = u64::try_from(days).ok()?;
    Some(days * DAY_MS + h * 3_600_000 + mi * 60_000 + se * 1000 + ms)
}

/// Claude Code's project directory name for a cwd.
fn encode_cwd(cwd: &str) -> String {
    let enc: String = cwd
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if enc.len() > 200 {
        let h = blake3::hash(cwd.as_bytes());
        format!("{}-{}", &enc[..200], &hex::encode(h.as_bytes())[..8])
    } else {
        enc
    }
}

fn file_stem(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.strip_suffix(".jsonl").unwrap_or(name).to_string()
}

// ---------------------------------------------------------------------------------------------
// Text corpus
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Rust,
    Ts,
    Python,
    Elixir,
}

/// Pre-generated building blocks of text, so bulk text is assembled by copying.
struct Corpus {
    sentences: Vec<String>,
    code: Vec<String>,
    output: Vec<String>,
    idents: Vec<String>,
}

impl Corpus {
    fn new(rng: &mut StdRng) -> Self {
        let idents: Vec<String> = (0..600)
            .map(|_| {
                let a = pick(rng, WORDS);
                let b = pick(rng, WORDS);
                match rng.gen_range(0..4) {
                    0 => (*a).to_string(),
                    1 => format!("{a}_{b}"),
                    2 => {
                        let mut c = b.chars();
                        let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or('X');
                        format!("{a}{first}{}", c.as_str())
                    }
                    _ => format!("{a}_{b}_{}", rng.gen_range(0..10)),
                }
            })
            .collect();
        let mut c = Corpus {
            sentences: Vec::new(),
            code: Vec::new(),
            output: Vec::new(),
            idents,
        };
        c.sentences = (0..1500).map(|_| c.make_sentence(rng)).collect();
        c.code = (0..3000).map(|_| c.make_code_line(rng)).collect();
        c.output = (0..2000).map(|_| c.make_output_line(rng)).collect();
        c
    }

    fn ident<'a>(&'a self, rng: &mut StdRng) -> &'a str {
        pick_str(rng, &self.idents)
    }

    fn make_sentence(&self, rng: &mut StdRng) -> String {
        let n = rng.gen_range(5..20);
        let mut s = String::with_capacity(n * 7);
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            let r = rng.gen_range(0..100);
            if r < 6 {
                s.push('`');
                s.push_str(self.ident(rng));
                s.push('`');
            } else if r < 8 {
                s.push_str(pick_str(rng, UNICODE_BITS));
            } else {
                let w = pick(rng, WORDS);
                if i == 0 {
                    let mut ch = w.chars();
                    if let Some(f) = ch.next() {
                        s.push(f.to_ascii_uppercase());
                        s.push_str(ch.as_str());
                    }
                } else {
                    s.push_str(w);
                }
            }
        }
        s.push_str(pick_str(rng, &[".", ".", ".", ":", "?", "!"]));
        s
    }

    fn make_code_line(&self, rng: &mut StdRng) -> String {
        let a = self.ident(rng);
        let b = self.ident(rng);
        let c = self.ident(rng);
        let t = pick(rng, TYPES);
        let n = rng.gen_range(0..4096);
        match rng.gen_range(0..22) {
            0 => format!("    let {a} = {b}(&{c})?;"),
            1 => format!("    pub fn {a}(&self, {b}: &{t}) -> Result<{t}, Error> {{"),
            2 => format!("        if {a}.is_empty() {{"),
            3 | 4 => "    }".to_string(),
            5 | 6 => String::new(),
            7 => format!("        // {}", pick(rng, &self.sentences)),
            8 => format!("import {{ {t} }} from \"./{a}\";"),
            9 => format!("  const {a} = await {b}.{c}({n});"),
            10 => format!("    def {a}(self, {b}, {c}=None):"),
            11 => format!("        return self.{a}.get(\"{b}\", {c})"),
            12 => format!("  defp {a}(%{{{b}: {b}}} = {c}) do"),
            13 => format!("    |> Enum.map(&{a}/1)"),
            14 => "#[derive(Debug, Clone, PartialEq, Eq)]".to_string(),
            15 => format!("        assert_eq!({a}.len(), {n});"),
            16 => format!("  \"{a}\": \"{b}\","),
            17 => format!("\t{a}: {t},"),
            18 => format!("        .map_err(|e| Error::{t}(format!(\"{a} failed: {{e}}\")))?;"),
            19 => format!("    {a}.insert({b}.clone(), {c});"),
            20 => "  end".to_string(),
            _ => format!("        {a}: {t}::new({c}, {n}),"),
        }
    }

    fn make_output_line(&self, rng: &mut StdRng) -> String {
        let a = self.ident(rng);
        let b = self.ident(rng);
        let n = rng.gen_range(1..900);
        let m = rng.gen_range(1..80);
        match rng.gen_range(0..18) {
            0..=2 => format!("test {a}::{b} ... ok"),
            3 => format!("   Compiling {a} v0.{m}.{} (/home/USER/src/{a})", n % 10),
            4 => format!("warning: unused variable: `{a}`"),
            5 => format!("  --> src/{a}.rs:{n}:{m}"),
            6 => format!(
                "-rw-r--r--  1 user user {:>7} Feb {:>2} 12:{:02} {a}.rs",
                n * 37,
                m % 28 + 1,
                m % 60
            ),
            7 => format!(" M src/{a}/{b}.rs"),
            8 => format!(
                "2026-02-{:02} 14:{:02}:{:02}.{:03} [info] {}",
                m % 28 + 1,
                m % 60,
                n % 60,
                n,
                pick(rng, &self.sentences)
            ),
            9 => "     │".to_string(),
            10 => format!("  ✓ {} ({n} ms)", pick(rng, &self.sentences)),
            11 => format!("  ✗ {a} › {b} (expected {n}, got {m})"),
            12 => format!("error[E0{:03}]: mismatched types", n % 800),
            13 => format!(
                "\u{1b}[32m    Finished\u{1b}[0m `dev` profile [unoptimized + debuginfo] target(s) in {m}.{:02}s",
                n % 100
            ),
            14 => format!("lib/{a}/{b}.ex:{n}: warning: variable \"{a}\" is unused"),
            15 => format!("    at {} ({a}.ts:{n}:{m})", pick(rng, TYPES)),
            16 => format!("{n} passed, {} failed, {m} skipped", n % 3),
            _ => format!("{}  {a}/{b}", n * 13),
        }
    }

    fn prose(&self, rng: &mut StdRng, sentences: usize) -> String {
        let mut s = String::new();
        for i in 0..sentences {
            if i > 0 {
                s.push_str(if rng.gen_range(0..5) == 0 {
                    "\n\n"
                } else {
                    " "
                });
            }
            s.push_str(pick_str(rng, &self.sentences));
        }
        s
    }

    fn lines_of(&self, rng: &mut StdRng, pool: &[String], n: usize) -> String {
        let mut s = String::with_capacity(n * 40);
        for i in 0..n {
            if i > 0 {
                s.push('\n');
            }
            s.push_str(pick_str(rng, pool));
        }
        s
    }

    fn code(&self, rng: &mut StdRng, n: usize) -> String {
        self.lines_of(rng, &self.code, n)
    }

    fn output(&self, rng: &mut StdRng, n: usize) -> String {
        self.lines_of(rng, &self.output, n)
    }

    /// Text of roughly `bytes` bytes made of output lines.
    fn output_bytes(&self, rng: &mut StdRng, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes + 200);
        while s.len() < bytes {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(pick_str(rng, &self.output));
        }
        s
    }

    /// Assistant-style markdown answer.
    fn answer(&self, rng: &mut StdRng) -> String {
        let mut s = {
            let n = skewed(rng, 1, 6);
            self.prose(rng, n)
        };
        if chance(rng, 0.3) {
            s.push_str("\n\n");
            for _ in 0..rng.gen_range(2..6) {
                s.push_str("- ");
                s.push_str(pick_str(rng, &self.sentences));
                s.push('\n');
            }
        }
        if chance(rng, 0.2) {
            s.push_str("\n```\n");
            s.push_str(&{
                let n = skewed(rng, 3, 40);
                self.code(rng, n)
            });
            s.push_str("\n```\n");
            s.push_str(pick_str(rng, &self.sentences));
        }
        s
    }
}

/// `cat -n`-style numbering as the Read tool shows it.
fn numbered(text: &str, start: usize) -> String {
    let mut s = String::with_capacity(text.len() + text.len() / 4);
    let mut digits = [0u8; 20];
    for (i, l) in text.split('\n').enumerate() {
        let mut n = start + i;
        let mut k = digits.len();
        loop {
            k -= 1;
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for _ in (digits.len() - k)..6 {
            s.push(' ');
        }
        s.push_str(std::str::from_utf8(&digits[k..]).expect("ASCII digits"));
        s.push('→');
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn project_files(rng: &mut StdRng, c: &Corpus, lang: Lang) -> Vec<String> {
    let n = rng.gen_range(20..70);
    (0..n)
        .map(|_| {
            let a = c.ident(rng);
            let b = c.ident(rng);
            match lang {
                Lang::Rust => match rng.gen_range(0..4) {
                    0 => format!("src/{a}.rs"),
                    1 => format!("tests/{a}.rs"),
                    _ => format!("src/{a}/{b}.rs"),
                },
                Lang::Ts => match rng.gen_range(0..3) {
                    0 => format!("src/components/{a}.tsx"),
                    1 => format!("src/{a}/{b}.ts"),
                    _ => format!("test/{a}.test.ts"),
                },
                Lang::Python => format!("{a}/{b}.py"),
                Lang::Elixir => match rng.gen_range(0..3) {
                    0 => format!("lib/{a}/{b}.ex"),
                    1 => format!("test/{a}/{b}_test.exs"),
                    _ => format!("lib/{a}_web/live/{b}_live.ex"),
                },
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Generator state
// ---------------------------------------------------------------------------------------------

struct Gen<'r> {
    root: &'r Path,
    rng: StdRng,
    corpus: Corpus,
    files: usize,
    bytes: u64,
    lines: usize,
    user: String,
    /// (timestamp, line) of history.jsonl, written at the end.
    history: Vec<(u64, String)>,
    /// Bytes of `history`, not yet written.
    history_bytes: u64,
    /// Slugs handed out so far (they name `plans/<slug>.md`, so they must be unique).
    slugs: std::collections::BTreeSet<String>,
}

impl<'r> Gen<'r> {
    fn new(root: &'r Path, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let corpus = Corpus::new(&mut rng);
        let user = (*pick(&mut rng, &["alex", "dev", "maria", "sam", "jo"])).to_string();
        Gen {
            root,
            rng,
            corpus,
            files: 0,
            bytes: 0,
            lines: 0,
            user,
            history: Vec::new(),
            history_bytes: 0,
            slugs: std::collections::BTreeSet::new(),
        }
    }

    fn write(&mut self, rel: &str, data: &[u8]) -> io::Result<()> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&p, data)?;
        self.files += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn mkdir(&self, rel: &str) -> io::Result<()> {
        fs::create_dir_all(self.root.join(rel))
    }

    fn home(&self) -> String {
        format!("/home/{}", self.user)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Era {
    V10,
    V20,
    V21,
}

impl Era {
    fn versions(self) -> &'static [&'static str] {
        match self {
            Era::V10 => &["1.0.51", "1.0.72", "1.0.98", "1.0.128"],
            Era::V20 => &["2.0.14", "2.0.37", "2.0.55", "2.0.76"],
            Era::V21 => &["2.1.12", "2.1.31", "2.1.38", "2.1.39"],
        }
    }

    fn models(self) -> &'static [&'static str] {
        match self {
            Era::V10 => &["claude-sonnet-4-20250514", "claude-opus-4-20250514"],
            Era::V20 => &["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"],
            Era::V21 => &[
                "claude-opus-4-6",
                "claude-opus-4-6",
                "claude-sonnet-4-5-20250929",
            ],
        }
    }
}

struct Project {
    cwd: String,
    enc: String,
    files: Vec<String>,
    branches: Vec<String>,
}

/// Fields common to every chained line of one transcript.
struct Ctx {
    session_id: String,
    cwd: String,
    version: String,
    branch: String,
    slug: Option<String>,
    agent_id: Option<String>,
    sidechain: bool,
    model: &'static str,
    era: Era,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Bash,
    Read,
    Edit,
    Grep,
    Glob,
    Write,
    TodoWrite,
    Task,
    WebFetch,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Bash => "Bash",
            Tool::Read => "Read",
            Tool::Edit => "Edit",
            Tool::Grep => "Grep",
            Tool::Glob => "Glob",
            Tool::Write => "Write",
            Tool::TodoWrite => "TodoWrite",
            Tool::Task => "Task",
            Tool::WebFetch => "WebFetch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Big {
    ToolResult(usize),
    Image(usize),
}

/// A prepared tool call: input and result, as JSON fragments.
struct Call {
    id: String,
    tool: Tool,
    input: String,
    /// JSON value of the tool_result `content`.
    content: String,
    is_error: bool,
    /// JSON value of `toolUseResult`.
    tur: String,
    /// `data` objects of progress lines emitted while the tool runs.
    progress: Vec<String>,
    /// Edited file to back up: (path, original content).
    backup: Option<(String, String)>,
}

/// What a Task tool call asks of its subagent.
#[derive(Clone, Copy)]
struct TaskSpec<'a> {
    prompt: &'a str,
    tool_use_id: &'a str,
    agent_type: &'a str,
    desc: &'a str,
}

/// Where the sessions' side files go.
struct SessPaths {
    /// `projects/<enc>`
    proj_dir: String,
}

/// One transcript being built in memory.
struct Sess {
    ctx: Ctx,
    buf: String,
    lines: usize,
    last: Option<String>,
    ts: u64,
    /// Bytes written to side files (subagents, tool results, backups) on behalf of this session.
    side_bytes: usize,
    /// Uuids seen, for rewinds.
    recent: Vec<String>,
    /// (path, backup file name, version, backup time)
    tracked: Vec<(String, String, u32, u64)>,
    todos: String,
    last_prompt: String,
    subagents: usize,
    /// Size this transcript aims at; bulky tool outputs are only produced when there is room.
    budget: usize,
    /// Tools the next steps must use (showcase sessions).
    forced: Vec<Tool>,
    /// The next Bash call produces an out-of-line (tool-results/) output.
    force_huge: bool,
    /// Uuid to use for the next chained line (announced earlier, e.g. by a snapshot line).
    next_uuid: Option<String>,
    /// Tool call awaiting its result in [`Sess::append_message_line`]: (tool id, source uuid).
    pending_tool: Option<(String, String)>,
}

impl Sess {
    fn new(ctx: Ctx, ts: u64) -> Self {
        Sess {
            ctx,
            buf: String::with_capacity(1 << 16),
            lines: 0,
            last: None,
            ts,
            side_bytes: 0,
            recent: Vec::new(),
            tracked: Vec::new(),
            todos: "[]".to_string(),
            last_prompt: String::new(),
            subagents: 0,
            budget: usize::MAX,
            forced: Vec::new(),
            force_huge: false,
            next_uuid: None,
            pending_tool: None,
        }
    }

    fn size(&self) -> usize {
        self.buf.len() + self.side_bytes
    }

    /// Bytes left before the budget is reached.
    fn room(&self) -> usize {
        self.budget.saturating_sub(self.size())
    }

    fn tick(&mut self, rng: &mut StdRng, lo_ms: u64, hi_ms: u64) -> u64 {
        // Equal timestamps happen in real transcripts.
        if !chance(rng, 0.03) {
            self.ts += rng.gen_range(lo_ms..=hi_ms.max(lo_ms));
        }
        self.ts
    }

    /// Push one chained line. `body` holds the type-specific fields (no surrounding commas),
    /// `trailer` fields after uuid/timestamp. Returns the new uuid.
    fn line(
        &mut self,
        rng: &mut StdRng,
        parent: Parent<'_>,
        body: &str,
        trailer: &str,
        system_order: bool,
    ) -> String {
        let id = match self.next_uuid.take() {
            Some(u) => u,
            None => uuid(rng),
        };
        let parent: Option<String> = match parent {
            Parent::Last => self.last.clone(),
            Parent::Null => None,
            Parent::Given(p) => Some(p.to_string()),
        };
        let b = &mut self.buf;
        b.push_str("{\"parentUuid\":");
        match &parent {
            Some(p) => {
                b.push('"');
                b.push_str(p);
                b.push('"');
            }
            None => b.push_str("null"),
        }
        b.push_str(if self.ctx.sidechain {
            ",\"isSidechain\":true"
        } else {
            ",\"isSidechain\":false"
        });
        b.push_str(",\"userType\":\"external\",\"cwd\":");
        push_js(b, &self.ctx.cwd);
        b.push_str(",\"sessionId\":\"");
        b.push_str(&self.ctx.session_id);
        b.push_str("\",\"version\":\"");
        b.push_str(&self.ctx.version);
        b.push_str("\",\"gitBranch\":");
        push_js(b, &self.ctx.branch);
        if let Some(a) = &self.ctx.agent_id {
            b.push_str(",\"agentId\":\"");
            b.push_str(a);
            b.push('"');
        }
        if let Some(s) = &self.ctx.slug {
            b.push_str(",\"slug\":\"");
            b.push_str(s);
            b.push('"');
        }
        b.push(',');
        b.push_str(body);
        let ts = iso(self.ts);
        if system_order {
            let _ = write!(b, ",\"timestamp\":\"{ts}\",\"uuid\":\"{id}\"");
        } else {
            let _ = write!(b, ",\"uuid\":\"{id}\",\"timestamp\":\"{ts}\"");
        }
        if !trailer.is_empty() {
            b.push(',');
            b.push_str(trailer);
        }
        b.push_str("}\n");
        self.lines += 1;
        self.last = Some(id.clone());
        if self.recent.len() >= 64 {
            self.recent.remove(0);
        }
        self.recent.push(id.clone());
        id
    }

    /// Push a uuid-less line verbatim.
    fn raw(&mut self, line: &str) {
        self.buf.push_str(line);
        self.buf.push('\n');
        self.lines += 1;
    }

    fn user_text(&mut self, rng: &mut StdRng, parent: Parent<'_>, content_json: &str) -> String {
        let body = format!(
            "\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":{content_json}}}"
        );
        let trailer = match self.ctx.era {
            Era::V10 => "",
            _ if self.ctx.sidechain => "",
            _ => "\"thinkingMetadata\":{\"maxThinkingTokens\":31999},\"todos\":[],\"permissionMode\":\"default\"",
        };
        self.line(rng, parent, &body, trailer, false)
    }

    fn assistant(
        &mut self,
        rng: &mut StdRng,
        msg_id: &str,
        req_id: &str,
        usage: &str,
        block: &str,
    ) -> String {
        let body = format!(
            "\"message\":{{\"model\":\"{}\",\"id\":\"{msg_id}\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{block}],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{usage}}},\"requestId\":\"{req_id}\",\"type\":\"assistant\"",
            self.ctx.model
        );
        self.line(rng, Parent::Last, &body, "", false)
    }

    fn progress(&mut self, rng: &mut StdRng, data: &str, tool_use_id: &str, parent_tool: &str) {
        let body = format!(
            "\"type\":\"progress\",\"data\":{data},\"parentToolUseID\":\"{parent_tool}\",\"toolUseID\":\"{tool_use_id}\""
        );
        self.line(rng, Parent::Last, &body, "", false);
    }

    fn hook_progress(&mut self, rng: &mut StdRng, event: &str, tool: &str, tool_use_id: &str) {
        let cmd = pick(rng, HOOK_COMMANDS);
        let data = format!(
            "{{\"type\":\"hook_progress\",\"hookEvent\":\"{event}\",\"hookName\":\"{event}:{tool}\",\"command\":{}}}",
            js(cmd)
        );
        self.progress(rng, &data, tool_use_id, tool_use_id);
    }

    fn system(&mut self, rng: &mut StdRng, parent: Parent<'_>, body: &str, trailer: &str) {
        self.line(rng, parent, body, trailer, true);
    }

    fn usage(&self, rng: &mut StdRng) -> String {
        let cc = rng.gen_range(0..20_000);
        let geo = if self.ctx.era == Era::V21 {
            ",\"inference_geo\":\"global\""
        } else {
            ""
        };
        format!(
            "{{\"input_tokens\":{},\"cache_creation_input_tokens\":{cc},\"cache_read_input_tokens\":{},\"cache_creation\":{{\"ephemeral_5m_input_tokens\":{cc},\"ephemeral_1h_input_tokens\":0}},\"output_tokens\":{},\"service_tier\":\"standard\"{geo}}}",
            rng.gen_range(1..12),
            rng.gen_range(10_000..180_000),
            rng.gen_range(1..2_000)
        )
    }

    fn snapshot_line(&self, message_id: &str, update: bool) -> String {
        let mut tracked = String::from("{");
        for (i, (path, name, v, t)) in self.tracked.iter().enumerate() {
            if i > 0 {
                tracked.push(',');
            }
            let _ = write!(
                tracked,
                "{}:{{\"backupFileName\":\"{name}\",\"version\":{v},\"backupTime\":\"{}\"}}",
                js(path),
                iso(*t)
            );
        }
        tracked.push('}');
        format!(
            "{{\"type\":\"file-history-snapshot\",\"messageId\":\"{message_id}\",\"snapshot\":{{\"messageId\":\"{message_id}\",\"trackedFileBackups\":{tracked},\"timestamp\":\"{}\"}},\"isSnapshotUpdate\":{update}}}",
            iso(self.ts)
        )
    }

    /// Exactly one chained message line, for [`append_to_sessions`]: a cycle of user prompt,
    /// assistant tool_use, user tool_result and assistant text.
    fn append_message_line(&mut self, g: &mut Gen<'_>, i: usize, files: &[String]) {
        let rng = &mut g.rng;
        let c = &g.corpus;
        let (m, r) = (
            format!("msg_01{}", b62(rng, 22)),
            format!("req_011C{}", b62(rng, 20)),
        );
        match (i % 4, self.pending_tool.take()) {
            (2, Some((tid, source))) => {
                self.tick(rng, 100, 5_000);
                let path = format!("{}/{}", self.ctx.cwd, pick(rng, files));
                let n = skewed(rng, 5, 200);
                let code = c.code(rng, n);
                let body = format!(
                    "\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"tool_use_id\":\"{tid}\",\"type\":\"tool_result\",\"content\":{}}}]}}",
                    js(&numbered(&code, 1))
                );
                let trailer = format!(
                    "\"toolUseResult\":{{\"type\":\"text\",\"file\":{{\"filePath\":{},\"content\":{},\"numLines\":{n},\"startLine\":1,\"totalLines\":{n}}}}},\"sourceToolAssistantUUID\":\"{source}\"",
                    js(&path),
                    js(&code)
                );
                self.line(rng, Parent::Last, &body, &trailer, false);
            }
            (0, _) => {
                self.tick(rng, 5_000, 300_000);
                let text = format!(
                    "{} {}",
                    pick(rng, &c.sentences),
                    pick(rng, &["Please fix it.", "Can you check?", "Go ahead."])
                );
                self.user_text(rng, Parent::Last, &js(&text));
            }
            (1, _) => {
                self.tick(rng, 500, 8_000);
                let tid = format!("toolu_01{}", b62(rng, 22));
                let path = format!("{}/{}", self.ctx.cwd, pick(rng, files));
                let block = format!(
                    "{{\"type\":\"tool_use\",\"id\":\"{tid}\",\"name\":\"Read\",\"input\":{{\"file_path\":{}}},\"caller\":{{\"type\":\"direct\"}}}}",
                    js(&path)
                );
                let u = self.usage(rng);
                let source = self.assistant(rng, &m, &r, &u, &block);
                self.pending_tool = Some((tid, source));
            }
            _ => {
                self.tick(rng, 500, 20_000);
                let block = format!("{{\"type\":\"text\",\"text\":{}}}", js(&c.answer(rng)));
                let u = self.usage(rng);
                self.assistant(rng, &m, &r, &u, &block);
            }
        }
    }
}

enum Parent<'a> {
    Last,
    Null,
    Given(&'a str),
}

/// The chain state at the end of an existing transcript.
struct TailState {
    uuid: String,
    ts: u64,
    session_id: String,
    cwd: String,
    version: String,
    branch: String,
}

impl TailState {
    fn from_transcript(data: &[u8]) -> Option<TailState> {
        for line in data.split(|&b| b == b'\n').rev() {
            if line.is_empty() || !line.contains(&b'{') {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let (Some(uuid), Some(ts), Some(session_id)) =
                (get("uuid"), get("timestamp"), get("sessionId"))
            else {
                continue;
            };
            if v.get("isSidechain").and_then(|x| x.as_bool()) == Some(true) {
                continue;
            }
            return Some(TailState {
                uuid,
                ts: parse_iso(&ts).unwrap_or(BASE_MS),
                session_id,
                cwd: get("cwd").unwrap_or_else(|| "/home/dev/projects/app".to_string()),
                version: get("version").unwrap_or_else(|| "2.1.39".to_string()),
                branch: get("gitBranch").unwrap_or_else(|| "main".to_string()),
            });
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Session generation
// ---------------------------------------------------------------------------------------------

/// Summary of a finished session, for resumes.
struct Done {
    rel: String,
    project: usize,
    era: Era,
    last_uuid: Option<String>,
    last_ts: u64,
    size: usize,
}

struct Plan {
    project: usize,
    era: Era,
    start: u64,
    weight: f64,
    big: Option<Big>,
    /// Force the rare features (subagent, compaction, out-of-line tool result) into this session,
    /// so that even small homes contain every shape.
    showcase: bool,
    /// Start as a byte-identical copy of the previous session of the project (1.x/2.0 resume).
    force_resume: bool,
}

impl<'r> Gen<'r> {
    fn new_ctx(&mut self, proj: &Project, era: Era, session_id: String) -> Ctx {
        let rng = &mut self.rng;
        Ctx {
            session_id,
            cwd: proj.cwd.clone(),
            version: (*pick(rng, era.versions())).to_string(),
            branch: pick(rng, &proj.branches).clone(),
            slug: None,
            agent_id: None,
            sidechain: false,
            model: pick_str(rng, era.models()),
            era,
        }
    }

    fn slug(&mut self) -> String {
        let adj = [
            "radiant", "modular", "quiet", "brisk", "gentle", "lucid", "nimble", "amber",
        ];
        let mid = [
            "floating",
            "petting",
            "humming",
            "wandering",
            "sparkling",
            "drifting",
        ];
        let noun = [
            "music", "thompson", "lovelace", "otter", "harbor", "comet", "meadow",
        ];
        let rng = &mut self.rng;
        let mut slug = format!(
            "{}-{}-{}",
            pick(rng, &adj),
            pick(rng, &mid),
            pick(rng, &noun)
        );
        if self.slugs.contains(&slug) {
            let base = slug.clone();
            let mut k = 2;
            while self.slugs.contains(&slug) {
                slug = format!("{base}-{k}");
                k += 1;
            }
        }
        self.slugs.insert(slug.clone());
        slug
    }

    fn prompt_text(&mut self, proj: &Project) -> String {
        let rng = &mut self.rng;
        let c = &self.corpus;
        let f = pick(rng, &proj.files);
        match rng.gen_range(0..14) {
            0 => format!("Fix the failing test in `{f}`"),
            1 => format!("Implement {}", pick(rng, &c.sentences).to_lowercase()),
            2 => format!(
                "Why does `{}` return an error when {}",
                c.ident(rng),
                pick(rng, &c.sentences).to_lowercase()
            ),
            3 => format!("Can you refactor {f} so that {}", pick(rng, &c.sentences)),
            4 => "run the tests".to_string(),
            5 => "commit this".to_string(),
            6 => "yes".to_string(),
            7 => format!("I get this error:\n\n{}", {
                let n = skewed(rng, 3, 60);
                c.output(rng, n)
            }),
            8 => "<command-message>review</command-message>\n<command-name>/review</command-name>"
                .to_string(),
            9 => format!("{}\n\n{}", c.prose(rng, 2), {
                let n = skewed(rng, 1, 8);
                c.prose(rng, n)
            }),
            10 => format!("look at {f} and {}", pick(rng, &c.sentences).to_lowercase()),
            _ => {
                let n = skewed(rng, 1, 4);
                c.prose(rng, n)
            }
        }
    }

    fn record_history(&mut self, s: &mut Sess, display: &str, project: &str) -> io::Result<()> {
        let mut pasted = "{}".to_string();
        if display.starts_with("I get this error") && chance(&mut self.rng, 0.5) {
            let hash = hexs(&mut self.rng, 16);
            pasted = format!("{{\"1\":{{\"id\":1,\"type\":\"text\",\"contentHash\":\"{hash}\"}}}}");
            let rel = format!("paste-cache/{hash}.txt");
            self.write(&rel, display.as_bytes())?;
            s.side_bytes += display.len();
        }
        let mut shown: String = display.chars().take(2000).collect();
        if pasted != "{}" {
            shown = format!(
                "I get this error:\n\n[Pasted text #1 +{} lines]",
                display.lines().count()
            );
        }
        let line = format!(
            "{{\"display\":{},\"pastedContents\":{pasted},\"timestamp\":{},\"project\":{}}}\n",
            js(&shown),
            s.ts,
            js(project)
        );
        s.side_bytes += line.len();
        self.history_bytes += line.len() as u64;
        self.history.push((s.ts, line));
        Ok(())
    }

    fn pick_tool(&mut self, allow_task: bool) -> Tool {
        let total: u32 = TOOLS_WEIGHTED.iter().map(|t| t.1).sum();
        loop {
            let mut r = self.rng.gen_range(0..total);
            for &(t, w) in TOOLS_WEIGHTED {
                if r < w {
                    if t == Tool::Task && !allow_task {
                        break;
                    }
                    return t;
                }
                r -= w;
            }
        }
    }

    /// Prepare a tool call (and write its side files). `big` forces a huge result.
    fn make_call(
        &mut self,
        s: &mut Sess,
        proj: &Project,
        paths: &SessPaths,
        tool: Tool,
        big: Option<Big>,
    ) -> io::Result<Call> {
        let id = format!("toolu_01{}", b62(&mut self.rng, 22));
        let rel = pick(&mut self.rng, &proj.files).clone();
        let abs = format!("{}/{}", proj.cwd, rel);
        let mut call = Call {
            id,
            tool,
            input: String::new(),
            content: String::new(),
            is_error: false,
            tur: String::new(),
            progress: Vec::new(),
            backup: None,
        };
        let rng = &mut self.rng;
        let c = &self.corpus;
        match (tool, big) {
            (_, Some(Big::Image(size))) => {
                let mut raw = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
                raw.extend_from_slice(&[0, 0, 0, 0x0d, b'I', b'H', b'D', b'R']);
                raw.extend(random_bytes(rng, size * 3 / 4));
                let data = base64(&raw);
                call.tool = Tool::Read;
                call.input = format!(
                    "{{\"file_path\":{}}}",
                    js(&format!("{}/docs/screenshot.png", proj.cwd))
                );
                call.content = format!(
                    "[{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"data\":\"{data}\",\"media_type\":\"image/png\"}}}}]"
                );
                call.tur = format!(
                    "{{\"type\":\"image\",\"file\":{{\"type\":\"image/png\",\"originalSize\":{},\"dimensions\":{{\"originalWidth\":2880,\"originalHeight\":1800,\"displayWidth\":1440,\"displayHeight\":900}}}}}}",
                    raw.len()
                );
            }
            (_, Some(Big::ToolResult(size))) => {
                let text = c.output_bytes(rng, size / 2);
                call.tool = Tool::Bash;
                call.input = "{\"command\":\"cat logs/app.log\",\"description\":\"Show the full application log\"}".to_string();
                call.content = js(&text);
                call.tur = format!(
                    "{{\"stdout\":{},\"stderr\":\"\",\"interrupted\":false,\"isImage\":false}}",
                    call.content
                );
            }
            (Tool::Bash, None) => {
                let cmds = [
                    "cargo test",
                    "cargo build 2>&1 | tail -40",
                    "git status",
                    "git diff --stat",
                    "npm test",
                    "mix test",
                    "ls -la",
                    "pytest -x -q",
                    "rg -n TODO",
                ];
                let cmd = *pick(rng, &cmds);
                call.input = format!(
                    "{{\"command\":{},\"description\":{}}}",
                    js(cmd),
                    js(&format!("Run {cmd}"))
                );
                let room = s.room();
                let huge =
                    s.force_huge || (s.ctx.era == Era::V21 && room > 60_000 && chance(rng, 0.03));
                s.force_huge = false;
                let n = if huge {
                    skewed(rng, 800, 3000).min(room / 40).max(300)
                } else if room > 30_000 && chance(rng, 0.04) {
                    skewed(rng, 100, 600)
                } else {
                    skewed(rng, 1, 60)
                };
                let out = c.output(rng, n);
                if n > 20 && chance(rng, 0.5) {
                    for k in 1..=rng.gen_range(1..4usize) {
                        let upto = out.len() * k / 4;
                        let mut cut = upto.min(4000);
                        while !out.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        let mut tail_start = cut.saturating_sub(300);
                        while !out.is_char_boundary(tail_start) {
                            tail_start -= 1;
                        }
                        call.progress.push(format!(
                            "{{\"type\":\"bash_progress\",\"output\":{},\"fullOutput\":{},\"elapsedTimeSeconds\":{},\"totalLines\":{}}}",
                            js(&out[tail_start..cut]),
                            js(&out[..cut]),
                            k * 3,
                            out[..cut].lines().count()
                        ));
                    }
                }
                if huge {
                    let rel = format!(
                        "{}/{}/tool-results/{}.txt",
                        paths.proj_dir, s.ctx.session_id, call.id
                    );
                    let mut cut = 2000.min(out.len());
                    while !out.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    let preview = format!(
                        "Output too large ({:.1}KB). Full output saved to: {}/.claude/{rel}\n\nPreview (first 2KB):\n{}\n...",
                        out.len() as f64 / 1024.0,
                        format_args!("/home/{}", self.user),
                        &out[..cut]
                    );
                    call.content = js(&preview);
                    call.tur = format!(
                        "{{\"stdout\":{},\"stderr\":\"\",\"interrupted\":false,\"isImage\":false}}",
                        call.content
                    );
                    s.side_bytes += out.len();
                    self.write(&rel, out.as_bytes())?;
                } else {
                    call.is_error = chance(rng, 0.05);
                    call.content = js(&out);
                    call.tur = format!(
                        "{{\"stdout\":{},\"stderr\":\"\",\"interrupted\":false,\"isImage\":false,\"noOutputExpected\":false}}",
                        call.content
                    );
                }
            }
            (Tool::Read, None) => {
                let n = if s.room() > 150_000 && chance(rng, 0.05) {
                    skewed(rng, 300, 1500)
                } else {
                    skewed(rng, 8, 300)
                };
                let text = c.code(rng, n);
                call.input = format!("{{\"file_path\":{}}}", js(&abs));
                call.content = js(&numbered(&text, 1));
                call.tur = format!(
                    "{{\"type\":\"text\",\"file\":{{\"filePath\":{},\"content\":{},\"numLines\":{n},\"startLine\":1,\"totalLines\":{n}}}}}",
                    js(&abs),
                    js(&text)
                );
            }
            (Tool::Edit, None) => {
                let old = {
                    let n = skewed(rng, 1, 12);
                    c.code(rng, n)
                };
                let new = {
                    let n = skewed(rng, 1, 16);
                    c.code(rng, n)
                };
                let original = {
                    let n = skewed(rng, 20, 400);
                    c.code(rng, n)
                };
                let start = rng.gen_range(1..400);
                call.input = format!(
                    "{{\"replace_all\":false,\"file_path\":{},\"old_string\":{},\"new_string\":{}}}",
                    js(&abs),
                    js(&old),
                    js(&new)
                );
                call.content = js(&format!(
                    "The file {abs} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n{}",
                    numbered(&new, start)
                ));
                let mut patch_lines = String::new();
                for (i, l) in old
                    .split('\n')
                    .map(|l| format!("-{l}"))
                    .chain(new.split('\n').map(|l| format!("+{l}")))
                    .enumerate()
                {
                    if i > 0 {
                        patch_lines.push(',');
                    }
                    push_js(&mut patch_lines, &l);
                }
                call.tur = format!(
                    "{{\"filePath\":{},\"oldString\":{},\"newString\":{},\"originalFile\":{},\"structuredPatch\":[{{\"oldStart\":{start},\"oldLines\":{},\"newStart\":{start},\"newLines\":{},\"lines\":[{patch_lines}]}}],\"userModified\":false,\"replaceAll\":false}}",
                    js(&abs),
                    js(&old),
                    js(&new),
                    js(&original),
                    old.split('\n').count(),
                    new.split('\n').count()
                );
                call.backup = Some((rel, original));
            }
            (Tool::Write, None) => {
                let content = {
                    let n = skewed(rng, 5, 200);
                    c.code(rng, n)
                };
                call.input = format!(
                    "{{\"file_path\":{},\"content\":{}}}",
                    js(&abs),
                    js(&content)
                );
                call.content = js(&format!("File created successfully at: {abs}"));
                call.tur = format!(
                    "{{\"type\":\"create\",\"filePath\":{},\"content\":{},\"structuredPatch\":[]}}",
                    js(&abs),
                    js(&content)
                );
                call.backup = Some((rel, String::new()));
            }
            (Tool::Grep, None) => {
                let pat = c.ident(rng).to_string();
                let n = skewed(rng, 1, 80);
                let mut out = String::new();
                for i in 0..n {
                    if i > 0 {
                        out.push('\n');
                    }
                    let _ = write!(
                        out,
                        "{}:{}:{}",
                        pick(rng, &proj.files),
                        rng.gen_range(1..900),
                        pick(rng, &c.code)
                    );
                }
                call.input = format!(
                    "{{\"pattern\":{},\"path\":{},\"output_mode\":\"content\",\"-n\":true}}",
                    js(&pat),
                    js(&proj.cwd)
                );
                call.content = js(&out);
                call.tur = format!(
                    "{{\"mode\":\"content\",\"numFiles\":0,\"filenames\":[],\"content\":{},\"numLines\":{n}}}",
                    call.content
                );
            }
            (Tool::Glob, None) => {
                let n = skewed(rng, 1, 60).min(proj.files.len());
                let names: Vec<String> = (0..n)
                    .map(|_| format!("{}/{}", proj.cwd, pick(rng, &proj.files)))
                    .collect();
                call.input = "{\"pattern\":\"**/*\"}".to_string();
                call.content = js(&names.join("\n"));
                let list: Vec<String> = names.iter().map(|n| js(n)).collect();
                call.tur = format!(
                    "{{\"filenames\":[{}],\"durationMs\":{},\"numFiles\":{n},\"truncated\":false}}",
                    list.join(","),
                    rng.gen_range(3..400)
                );
            }
            (Tool::TodoWrite, None) => {
                let n = rng.gen_range(2..8);
                let mut todos = String::from("[");
                for i in 0..n {
                    if i > 0 {
                        todos.push(',');
                    }
                    let content = pick(rng, &c.sentences);
                    let status = *pick(rng, &["pending", "in_progress", "completed"]);
                    let _ = write!(
                        todos,
                        "{{\"content\":{},\"status\":\"{status}\",\"activeForm\":{}}}",
                        js(content),
                        js(&format!("Working on: {content}"))
                    );
                }
                todos.push(']');
                call.input = format!("{{\"todos\":{todos}}}");
                call.content = js("Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress. Please proceed with the current tasks if applicable");
                call.tur = format!("{{\"oldTodos\":{},\"newTodos\":{todos}}}", s.todos);
                s.todos = todos;
            }
            (Tool::WebFetch, None) => {
                let url = format!("https://docs.rs/{}/latest/", c.ident(rng));
                let text = {
                    let n = skewed(rng, 3, 40);
                    c.prose(rng, n)
                };
                call.input = format!("{{\"url\":{},\"prompt\":\"Summarize the API\"}}", js(&url));
                call.content = js(&text);
                call.tur = format!(
                    "{{\"bytes\":{},\"code\":200,\"codeText\":\"OK\",\"result\":{},\"durationMs\":{},\"url\":{}}}",
                    text.len() * 9,
                    call.content,
                    rng.gen_range(300..9000),
                    js(&url)
                );
            }
            (Tool::Task, None) => {
                let desc = pick(rng, &c.sentences).clone();
                let prompt = {
                    let n = skewed(rng, 2, 12);
                    c.prose(rng, n)
                };
                let agent_type = *pick(rng, &["Explore", "general-purpose", "Plan"]);
                call.input = format!(
                    "{{\"description\":{},\"prompt\":{},\"subagent_type\":\"{agent_type}\"}}",
                    js(&desc),
                    js(&prompt)
                );
                let result = c.answer(rng);
                let task = TaskSpec {
                    prompt: &prompt,
                    tool_use_id: &call.id,
                    agent_type,
                    desc: &desc,
                };
                let (agent_id, sub_bytes) = self.subagent(s, proj, paths, &task)?;
                s.side_bytes += sub_bytes;
                let rng = &mut self.rng;
                for _ in 0..rng.gen_range(1..4) {
                    call.progress.push(format!(
                        "{{\"message\":{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"type\":\"text\",\"text\":{}}}]}},\"uuid\":\"{}\",\"timestamp\":\"{}\"}},\"normalizedMessages\":[],\"type\":\"agent_progress\",\"prompt\":{},\"agentId\":\"{agent_id}\"}}",
                        js(&prompt),
                        uuid(rng),
                        iso(s.ts),
                        js(&prompt)
                    ));
                }
                call.content = format!("[{{\"type\":\"text\",\"text\":{}}}]", js(&result));
                call.tur = format!(
                    "{{\"status\":\"completed\",\"prompt\":{},\"agentId\":\"{agent_id}\",\"content\":{},\"totalDurationMs\":{},\"totalTokens\":{},\"totalToolUseCount\":{}}}",
                    js(&prompt),
                    call.content,
                    rng.gen_range(5_000..300_000),
                    rng.gen_range(5_000..90_000),
                    rng.gen_range(1..40)
                );
            }
        }
        Ok(call)
    }

    /// Write a subagent transcript for a Task call; returns (agent id, bytes written).
    fn subagent(
        &mut self,
        parent: &mut Sess,
        proj: &Project,
        paths: &SessPaths,
        task: &TaskSpec<'_>,
    ) -> io::Result<(String, usize)> {
        let TaskSpec {
            prompt,
            tool_use_id,
            agent_type,
            desc,
        } = *task;
        let era = parent.ctx.era;
        let agent_id = if era == Era::V21 {
            format!("a{}", hexs(&mut self.rng, 6))
        } else {
            hexs(&mut self.rng, 8)
        };
        let ctx = Ctx {
            session_id: parent.ctx.session_id.clone(),
            cwd: parent.ctx.cwd.clone(),
            version: parent.ctx.version.clone(),
            branch: parent.ctx.branch.clone(),
            slug: parent.ctx.slug.clone(),
            agent_id: Some(agent_id.clone()),
            sidechain: true,
            model: if chance(&mut self.rng, 0.5) {
                "claude-haiku-4-5-20251001"
            } else {
                parent.ctx.model
            },
            era,
        };
        let mut sub = Sess::new(ctx, parent.ts + 200);
        sub.tick(&mut self.rng, 10, 500);
        sub.user_text(&mut self.rng, Parent::Null, &js(prompt));
        let budget = skewed(&mut self.rng, 4_000, 120_000).min(parent.room() / 2);
        sub.budget = budget;
        let mut steps = 0;
        while sub.size() < budget && steps < 30 {
            self.step(&mut sub, proj, paths, false, None)?;
            steps += 1;
        }
        self.final_answer(&mut sub);
        parent.ts = parent.ts.max(sub.ts);
        let mut bytes = sub.buf.len();
        let rel = if era == Era::V21 {
            let base = format!(
                "{}/{}/subagents/agent-{agent_id}",
                paths.proj_dir, parent.ctx.session_id
            );
            let meta = format!(
                "{{\"agentId\":\"{agent_id}\",\"agentType\":\"{agent_type}\",\"description\":{},\"toolUseId\":\"{tool_use_id}\",\"createdAt\":\"{}\"}}\n",
                js(desc),
                iso(sub.ts)
            );
            bytes += meta.len();
            self.write(&format!("{base}.meta.json"), meta.as_bytes())?;
            format!("{base}.jsonl")
        } else {
            format!("{}/agent-{agent_id}.jsonl", paths.proj_dir)
        };
        self.lines += sub.lines;
        self.write(&rel, sub.buf.as_bytes())?;
        Ok((agent_id, bytes))
    }

    /// One assistant message (several lines sharing message.id) with its tool calls and results.
    fn step(
        &mut self,
        s: &mut Sess,
        proj: &Project,
        paths: &SessPaths,
        allow_task: bool,
        big: Option<Big>,
    ) -> io::Result<()> {
        let msg_id = format!("msg_01{}", b62(&mut self.rng, 22));
        let req_id = format!("req_011C{}", b62(&mut self.rng, 20));
        let usage = s.usage(&mut self.rng);
        let v21 = s.ctx.era == Era::V21;
        if v21 && chance(&mut self.rng, 0.3) {
            s.tick(&mut self.rng, 500, 4_000);
            s.assistant(
                &mut self.rng,
                &msg_id,
                &req_id,
                &usage,
                "{\"type\":\"text\",\"text\":\"\\n\\n\"}",
            );
        }
        if s.ctx.era >= Era::V20 && chance(&mut self.rng, 0.45) {
            let n = skewed(&mut self.rng, 1, 12);
            let thinking = self.corpus.prose(&mut self.rng, n);
            let sig_len = skewed(&mut self.rng, 200, 1500);
            let sig = base64(&random_bytes(&mut self.rng, sig_len));
            let block = format!(
                "{{\"type\":\"thinking\",\"thinking\":{},\"signature\":\"{sig}\"}}",
                js(&thinking)
            );
            s.tick(&mut self.rng, 500, 8_000);
            s.assistant(&mut self.rng, &msg_id, &req_id, &usage, &block);
        }
        if chance(&mut self.rng, 0.55) {
            let n = skewed(&mut self.rng, 1, 4);
            let text = self.corpus.prose(&mut self.rng, n);
            let block = format!("{{\"type\":\"text\",\"text\":{}}}", js(&text));
            s.tick(&mut self.rng, 300, 4_000);
            s.assistant(&mut self.rng, &msg_id, &req_id, &usage, &block);
        }
        let ncalls = if chance(&mut self.rng, 0.8) {
            1
        } else {
            self.rng.gen_range(2..5)
        };
        let mut calls = Vec::with_capacity(ncalls);
        for i in 0..ncalls {
            let mut tool = self.pick_tool(allow_task && s.subagents < 4 && s.room() > 40_000);
            if i == 0 && big.is_none() && !s.forced.is_empty() && !s.ctx.sidechain {
                tool = s.forced.remove(0);
            }
            if tool == Tool::Task {
                s.subagents += 1;
            }
            let call = self.make_call(s, proj, paths, tool, if i == 0 { big } else { None })?;
            let caller = if v21 {
                ",\"caller\":{\"type\":\"direct\"}"
            } else {
                ""
            };
            let block = format!(
                "{{\"type\":\"tool_use\",\"id\":\"{}\",\"name\":\"{}\",\"input\":{}{caller}}}",
                call.id,
                call.tool.name(),
                call.input
            );
            s.tick(&mut self.rng, 200, 3_000);
            let u = s.assistant(&mut self.rng, &msg_id, &req_id, &usage, &block);
            calls.push((call, u));
        }
        for (call, source) in calls {
            let name = call.tool.name();
            let hooks = match s.ctx.era {
                Era::V21 => self.rng.gen_range(1..5),
                Era::V20 => self.rng.gen_range(0..3),
                Era::V10 => 0,
            };
            for _ in 0..hooks {
                s.tick(&mut self.rng, 5, 80);
                s.hook_progress(&mut self.rng, "PreToolUse", name, &call.id);
            }
            for p in &call.progress {
                s.tick(&mut self.rng, 500, 5_000);
                let pid = format!("bash-progress-{}", self.rng.gen_range(0..100));
                s.progress(&mut self.rng, p, &pid, &call.id);
            }
            s.tick(&mut self.rng, 100, 20_000);
            let err = if call.is_error {
                ",\"is_error\":true"
            } else {
                ",\"is_error\":false"
            };
            let body = format!(
                "\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"tool_use_id\":\"{}\",\"type\":\"tool_result\",\"content\":{}{err}}}]}}",
                call.id, call.content
            );
            let trailer = if s.ctx.era == Era::V10 {
                format!("\"toolUseResult\":{}", call.tur)
            } else {
                format!(
                    "\"toolUseResult\":{},\"sourceToolAssistantUUID\":\"{source}\"",
                    call.tur
                )
            };
            s.line(&mut self.rng, Parent::Last, &body, &trailer, false);
            let hooks = match s.ctx.era {
                Era::V21 => self.rng.gen_range(2..7),
                Era::V20 => self.rng.gen_range(0..3),
                Era::V10 => 0,
            };
            for _ in 0..hooks {
                s.tick(&mut self.rng, 5, 300);
                s.hook_progress(&mut self.rng, "PostToolUse", name, &call.id);
            }
            if let Some((path, content)) = call.backup {
                if s.ctx.era >= Era::V20 && !s.ctx.sidechain {
                    self.backup(s, &path, &content)?;
                }
            }
        }
        Ok(())
    }

    /// Write a file-history backup and append a snapshot update line.
    fn backup(&mut self, s: &mut Sess, path: &str, content: &str) -> io::Result<()> {
        let h = blake3::hash(path.as_bytes());
        let hash = &hex::encode(h.as_bytes())[..16];
        let ts = s.ts;
        let version = match s.tracked.iter_mut().find(|t| t.0 == path) {
            Some(t) => {
                t.2 += 1;
                t.1 = format!("{hash}@v{}", t.2);
                t.3 = ts;
                t.2
            }
            None => {
                s.tracked
                    .push((path.to_string(), format!("{hash}@v1"), 1, ts));
                1
            }
        };
        if !content.is_empty() {
            let rel = format!("file-history/{}/{hash}@v{version}", s.ctx.session_id);
            s.side_bytes += content.len();
            self.write(&rel, content.as_bytes())?;
        }
        let prompt_id = s.last_prompt.clone();
        let line = s.snapshot_line(&prompt_id, true);
        s.raw(&line);
        Ok(())
    }

    fn final_answer(&mut self, s: &mut Sess) {
        let msg_id = format!("msg_01{}", b62(&mut self.rng, 22));
        let req_id = format!("req_011C{}", b62(&mut self.rng, 20));
        let usage = s.usage(&mut self.rng);
        let text = self.corpus.answer(&mut self.rng);
        s.tick(&mut self.rng, 1_000, 15_000);
        let block = format!("{{\"type\":\"text\",\"text\":{}}}", js(&text));
        s.assistant(&mut self.rng, &msg_id, &req_id, &usage, &block);
    }

    /// A user prompt, the assistant's work on it and the closing lines.
    fn turn(
        &mut self,
        s: &mut Sess,
        proj: &Project,
        paths: &SessPaths,
        budget: usize,
        big: &mut Option<Big>,
        rewind: bool,
    ) -> io::Result<()> {
        let v21 = s.ctx.era == Era::V21;
        s.tick(&mut self.rng, 5_000, 900_000);
        if chance(&mut self.rng, 0.05) && s.ctx.era >= Era::V20 {
            let content = self.corpus.prose(&mut self.rng, 1);
            let enq = format!(
                "{{\"type\":\"queue-operation\",\"operation\":\"enqueue\",\"timestamp\":\"{}\",\"sessionId\":\"{}\",\"content\":{}}}",
                iso(s.ts),
                s.ctx.session_id,
                js(&content)
            );
            s.raw(&enq);
            let deq = format!(
                "{{\"type\":\"queue-operation\",\"operation\":\"dequeue\",\"timestamp\":\"{}\",\"sessionId\":\"{}\"}}",
                iso(s.ts + 2),
                s.ctx.session_id
            );
            s.raw(&deq);
        }
        let text = self.prompt_text(proj);
        s.last_prompt = uuid(&mut self.rng);
        if s.ctx.era >= Era::V20 {
            let line = s.snapshot_line(&s.last_prompt.clone(), false);
            s.raw(&line);
        }
        let parent_uuid = if rewind && s.recent.len() > 8 {
            let i = self.rng.gen_range(0..s.recent.len() - 4);
            Some(s.recent[i].clone())
        } else {
            None
        };
        let parent = match &parent_uuid {
            Some(p) => Parent::Given(p),
            None => Parent::Last,
        };
        let content = match big {
            Some(Big::Image(size)) if chance(&mut self.rng, 0.5) => {
                let mut raw = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
                raw.extend(random_bytes(&mut self.rng, *size * 3 / 4));
                *big = None;
                format!(
                    "[{{\"type\":\"text\",\"text\":{}}},{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"{}\"}}}}]",
                    js(&text),
                    base64(&raw)
                )
            }
            _ => js(&text),
        };
        // The prompt line uses the uuid announced by the snapshot line.
        s.next_uuid = Some(s.last_prompt.clone());
        s.user_text(&mut self.rng, parent, &content);
        let project = proj.cwd.clone();
        self.record_history(s, &text, &project)?;

        let steps = if chance(&mut self.rng, 0.15) {
            0
        } else {
            skewed(&mut self.rng, 1, 14)
        };
        for _ in 0..steps {
            let b = big.take();
            self.step(s, proj, paths, !s.ctx.sidechain, b)?;
            if s.size() >= budget {
                break;
            }
        }
        if let Some(b) = big.take() {
            // The budget ran out before the big line was placed: place it now.
            self.step(s, proj, paths, false, Some(b))?;
        }
        self.final_answer(s);
        if v21 {
            if chance(&mut self.rng, 0.5) {
                s.tick(&mut self.rng, 10, 400);
                let mut infos = String::new();
                for i in 0..self.rng.gen_range(1..4) {
                    if i > 0 {
                        infos.push(',');
                    }
                    let _ = write!(
                        infos,
                        "{{\"command\":{}}}",
                        js(pick_str(&mut self.rng, HOOK_COMMANDS))
                    );
                }
                let body = format!(
                    "\"type\":\"system\",\"subtype\":\"stop_hook_summary\",\"hookCount\":{},\"hookInfos\":[{infos}],\"hookErrors\":[],\"preventedContinuation\":false,\"stopReason\":\"\",\"hasOutput\":true,\"level\":\"suggestion\"",
                    infos.matches("command").count()
                );
                let tid = uuid(&mut self.rng);
                s.system(
                    &mut self.rng,
                    Parent::Last,
                    &body,
                    &format!("\"toolUseID\":\"{tid}\""),
                );
            }
            if chance(&mut self.rng, 0.6) {
                s.tick(&mut self.rng, 1, 50);
                let body = format!(
                    "\"type\":\"system\",\"subtype\":\"turn_duration\",\"durationMs\":{}",
                    self.rng.gen_range(2_000..900_000)
                );
                s.system(&mut self.rng, Parent::Last, &body, "\"isMeta\":false");
            }
            if chance(&mut self.rng, 0.15) {
                let body = "\"type\":\"attachment\",\"attachment\":{\"type\":\"todo_reminder\",\"content\":[],\"itemCount\":0}";
                s.tick(&mut self.rng, 1, 50);
                s.line(&mut self.rng, Parent::Last, body, "", false);
            }
        }
        if !v21 && s.ctx.era == Era::V10 && chance(&mut self.rng, 0.05) {
            s.tick(&mut self.rng, 1, 50);
            let data = "{\"type\":\"hook_progress\",\"hookEvent\":\"Stop\",\"hookName\":\"Stop\",\"command\":\"~/.claude/hooks/notify.sh\"}";
            let tid = uuid(&mut self.rng);
            s.progress(&mut self.rng, data, &tid, &tid);
        }
        if chance(&mut self.rng, 0.04) {
            s.tick(&mut self.rng, 1_000, 60_000);
            let cmd = *pick(&mut self.rng, &["/model", "/cost", "/context", "/status"]);
            let body = format!(
                "\"type\":\"system\",\"subtype\":\"local_command\",\"content\":{},\"level\":\"info\"",
                js(&format!(
                    "<command-name>{cmd}</command-name>\n            <command-message>{}</command-message>\n            <command-args></command-args>",
                    &cmd[1..]
                ))
            );
            s.system(&mut self.rng, Parent::Last, &body, "\"isMeta\":false");
            let body2 = "\"type\":\"system\",\"subtype\":\"local_command\",\"content\":\"<local-command-stdout>Kept model as \\u001b[1mDefault (recommended)\\u001b[22m</local-command-stdout>\",\"level\":\"info\"";
            s.system(&mut self.rng, Parent::Last, body2, "\"isMeta\":false");
        }
        Ok(())
    }

    /// Compaction: boundary line, summary line and (2.1) an acompact subagent file.
    fn compact(&mut self, s: &mut Sess, paths: &SessPaths) -> io::Result<()> {
        s.tick(&mut self.rng, 10_000, 120_000);
        let logical = s.last.clone().unwrap_or_default();
        let body = format!(
            "\"logicalParentUuid\":\"{logical}\",\"type\":\"system\",\"subtype\":\"compact_boundary\",\"content\":\"Conversation compacted\",\"isMeta\":false"
        );
        let trailer = format!(
            "\"level\":\"info\",\"compactMetadata\":{{\"trigger\":\"auto\",\"preTokens\":{}}}",
            self.rng.gen_range(150_000..200_000)
        );
        s.line(&mut self.rng, Parent::Null, &body, &trailer, true);
        let n = skewed(&mut self.rng, 10, 60);
        let summary = format!(
            "This session is being continued from a previous conversation that ran out of context. The conversation is summarized below:\n\nAnalysis:\n{}\n\nSummary:\n{}",
            self.corpus.prose(&mut self.rng, n),
            self.corpus.prose(&mut self.rng, n / 2 + 1)
        );
        s.tick(&mut self.rng, 1, 30);
        let body = format!(
            "\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":{}}},\"isVisibleInTranscriptOnly\":true,\"isCompactSummary\":true",
            js(&summary)
        );
        s.line(&mut self.rng, Parent::Last, &body, "", false);
        if s.ctx.era == Era::V21 {
            let agent = format!("acompact-{}", hexs(&mut self.rng, 6));
            let ctx = Ctx {
                session_id: s.ctx.session_id.clone(),
                cwd: s.ctx.cwd.clone(),
                version: s.ctx.version.clone(),
                branch: s.ctx.branch.clone(),
                slug: s.ctx.slug.clone(),
                agent_id: Some(agent.clone()),
                sidechain: true,
                model: s.ctx.model,
                era: s.ctx.era,
            };
            let mut sub = Sess::new(ctx, s.ts - 5_000);
            sub.user_text(
                &mut self.rng,
                Parent::Null,
                &js("Your task is to create a detailed summary of the conversation so far."),
            );
            let (m, r) = (
                format!("msg_01{}", b62(&mut self.rng, 22)),
                format!("req_011C{}", b62(&mut self.rng, 20)),
            );
            let u = sub.usage(&mut self.rng);
            sub.tick(&mut self.rng, 5_000, 60_000);
            let block = format!("{{\"type\":\"text\",\"text\":{}}}", js(&summary));
            sub.assistant(&mut self.rng, &m, &r, &u, &block);
            let rel = format!(
                "{}/{}/subagents/agent-{agent}.jsonl",
                paths.proj_dir, s.ctx.session_id
            );
            s.side_bytes += sub.buf.len();
            self.lines += sub.lines;
            self.write(&rel, sub.buf.as_bytes())?;
        }
        Ok(())
    }

    /// Generate one main session into `s` (already positioned, maybe holding a resumed copy).
    fn session_body(
        &mut self,
        s: &mut Sess,
        proj: &Project,
        paths: &SessPaths,
        budget: usize,
        mut big: Option<Big>,
    ) -> io::Result<()> {
        let v21 = s.ctx.era == Era::V21;
        let title = if chance(&mut self.rng, 0.25) {
            Some(format!(
                "{{\"type\":\"custom-title\",\"customTitle\":{},\"sessionId\":\"{}\"}}",
                js(&self.corpus.prose(&mut self.rng, 1)),
                s.ctx.session_id
            ))
        } else {
            None
        };
        let summary = if s.ctx.era < Era::V21 || chance(&mut self.rng, 0.3) {
            let leaf = uuid(&mut self.rng);
            let text: String = self
                .corpus
                .prose(&mut self.rng, 1)
                .chars()
                .take(60)
                .collect();
            Some(format!(
                "{{\"type\":\"summary\",\"summary\":{},\"leafUuid\":\"{leaf}\"}}",
                js(&text)
            ))
        } else {
            None
        };
        if s.ctx.era < Era::V21 {
            if let Some(sm) = &summary {
                s.raw(sm);
            }
        }
        if v21 && s.buf.is_empty() {
            let tid = uuid(&mut self.rng);
            for _ in 0..self.rng.gen_range(1..4) {
                s.tick(&mut self.rng, 1, 60);
                let cmd = pick(&mut self.rng, HOOK_COMMANDS);
                let data = format!(
                    "{{\"type\":\"hook_progress\",\"hookEvent\":\"SessionStart\",\"hookName\":\"SessionStart:startup\",\"command\":{}}}",
                    js(cmd)
                );
                s.progress(&mut self.rng, &data, &tid, &tid);
            }
        }
        let showcase = !s.forced.is_empty();
        let mut turns = 0;
        let mut compacted_at = 0usize;
        loop {
            let rewind = turns > 2 && chance(&mut self.rng, 0.04);
            self.turn(s, proj, paths, budget, &mut big, rewind)?;
            turns += 1;
            if v21 && s.ctx.slug.is_none() {
                s.ctx.slug = Some(self.slug());
            }
            if showcase && turns == 1 {
                self.compact(s, paths)?;
                compacted_at = s.buf.len();
            }
            if (s.size() >= budget && s.forced.is_empty()) || turns > 400 {
                break;
            }
            if budget > 150_000 && s.buf.len() > compacted_at + budget / 2 && s.buf.len() > 100_000
            {
                self.compact(s, paths)?;
                compacted_at = s.buf.len();
            }
            if chance(&mut self.rng, 0.08) {
                // The session was closed and resumed later: metadata lines re-appended as is.
                s.ts += self.rng.gen_range(600_000..(3 * DAY_MS));
                if let Some(t) = &title {
                    s.raw(t);
                }
                if let Some(sm) = &summary {
                    if v21 {
                        s.raw(sm);
                    }
                }
                if v21 && !s.last_prompt.is_empty() {
                    let lp = self.last_prompt_line(s);
                    s.raw(&lp);
                }
            }
        }
        // Exit: metadata re-appended.
        if let Some(t) = &title {
            for _ in 0..self.rng.gen_range(1..3) {
                s.raw(t);
            }
        }
        if v21 {
            if let Some(sm) = &summary {
                s.raw(sm);
            }
            let lp = self.last_prompt_line(s);
            s.raw(&lp);
            s.raw(&lp);
        }
        Ok(())
    }

    fn last_prompt_line(&mut self, s: &Sess) -> String {
        let text: String = self
            .corpus
            .prose(&mut self.rng, 1)
            .chars()
            .take(120)
            .collect();
        format!(
            "{{\"type\":\"last-prompt\",\"lastPrompt\":{},\"sessionId\":\"{}\"}}",
            js(&text),
            s.ctx.session_id
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Whole home
// ---------------------------------------------------------------------------------------------

fn make_projects(g: &mut Gen<'_>, n: usize) -> Vec<Project> {
    let home = g.home();
    let mut out: Vec<Project> = Vec::with_capacity(n);
    for i in 0..n {
        let rng = &mut g.rng;
        let name = PROJECT_NAMES[i % PROJECT_NAMES.len()];
        let cwd = if i == 4 {
            // A very long path: the directory name is cut and a hash appended.
            let mut p = format!("{home}/work/clients/acme-corporation/engagements/2025");
            while p.len() < 230 {
                p.push_str("/very-deeply-nested-directory");
            }
            format!("{p}/{name}")
        } else if i < PROJECT_NAMES.len() {
            match rng.gen_range(0..4) {
                0 => format!("{home}/src/{name}"),
                1 => format!("{home}/projects/{name}-worktrees/{name}-{}", hexs(rng, 3)),
                _ => format!("{home}/projects/{name}"),
            }
        } else {
            format!("{home}/projects/{name}-{}", i / PROJECT_NAMES.len())
        };
        let lang = *pick(rng, &[Lang::Rust, Lang::Ts, Lang::Python, Lang::Elixir]);
        let files = project_files(rng, &g.corpus, lang);
        let mut branches = vec!["main".to_string()];
        for _ in 0..rng.gen_range(0..4) {
            branches.push(format!("feature/{}", g.corpus.ident(rng).replace('_', "-")));
        }
        let enc = encode_cwd(&cwd);
        out.push(Project {
            cwd,
            enc,
            files,
            branches,
        });
    }
    out
}

/// Generate the home; also returns the home-relative paths of the deliberately damaged
/// transcripts.
fn generate_home_inner(root: &Path, opts: &GenOptions) -> io::Result<(GenReport, Vec<String>)> {
    fs::create_dir_all(root)?;
    let mut g = Gen::new(root, opts.seed);
    let nproj = opts.projects.max(1);
    let projects = make_projects(&mut g, nproj);
    for p in &projects {
        g.mkdir(&format!("projects/{}", p.enc))?;
    }
    static_files(&mut g, &projects)?;
    let mut awkward_paths = Vec::new();
    if opts.awkward {
        awkward_paths = awkward_files(&mut g, &projects[0])?;
    }

    // Session plan: project (skewed), era by time, weight (log-normal-ish), big lines.
    let n = opts.sessions;
    let zipf: Vec<f64> = (0..nproj)
        .map(|j| 1.0 / (j as f64 + 1.0).powf(1.1))
        .collect();
    let zsum: f64 = zipf.iter().sum();
    let mut plans: Vec<Plan> = Vec::with_capacity(n);
    for i in 0..n {
        let rng = &mut g.rng;
        let project = if i < nproj && i * 3 < n * 2 {
            i
        } else {
            let mut r = rng.gen::<f64>() * zsum;
            let mut j = 0;
            while j + 1 < nproj && r >= zipf[j] {
                r -= zipf[j];
                j += 1;
            }
            j
        };
        let frac = i as f64 / n.max(1) as f64;
        let era = if frac < 0.2 {
            Era::V10
        } else if frac < 0.5 {
            Era::V20
        } else {
            Era::V21
        };
        let slot = SPAN_DAYS * DAY_MS / n.max(1) as u64;
        let start = BASE_MS + i as u64 * slot + rng.gen_range(0..slot.max(2) / 2);
        let normal: f64 = (0..4).map(|_| rng.gen::<f64>()).sum::<f64>() - 2.0;
        let weight = (normal * 1.6).exp();
        plans.push(Plan {
            project,
            era,
            start,
            weight,
            big: None,
            showcase: false,
            force_resume: false,
        });
    }
    // Showcase sessions: the first 2.0 session and the first 2.1 session. The two sessions
    // after the 2.0 showcase share a project and the second one resumes the first.
    for idx in [n / 5, n / 2] {
        if idx < n {
            plans[idx].showcase = true;
            plans[idx].weight = plans[idx].weight.clamp(1.0, 2.0) * 2.0;
        }
    }
    let (a, b) = (n / 5 + 1, n / 5 + 2);
    if b < n / 2 {
        plans[b].project = plans[a].project;
        plans[b].era = plans[a].era;
        plans[a].weight = plans[a].weight.min(1.0);
        plans[b].weight = plans[b].weight.max(1.0) * 2.0;
        plans[b].force_resume = true;
    }
    if opts.big_lines && n > 0 {
        // About one big line per 64 MB, at least two, but never more than ~60% of a small home.
        let mut count = 2 + (opts.target_bytes / (64 << 20)) as usize;
        while count > 0 && count as u64 * 1_150_000 > opts.target_bytes * 3 / 5 {
            count -= 1;
        }
        let small = opts.target_bytes < (64 << 20);
        let eligible = (n * 2 / 5).max(1);
        // Not in showcase or resume sessions (a resume would copy the big line).
        let candidates: Vec<usize> = (0..eligible)
            .filter(|&i| !(plans[i].showcase || plans[i].force_resume || (a == i && b < n / 2)))
            .collect();
        let chosen =
            rand::seq::index::sample(&mut g.rng, candidates.len(), count.min(candidates.len()));
        for (k, idx) in chosen.into_iter().map(|c| candidates[c]).enumerate() {
            let rng = &mut g.rng;
            let size = if small {
                rng.gen_range(1_000_000..1_300_000)
            } else {
                rng.gen_range(1_000_000..3_000_000)
            };
            plans[idx].big = Some(if k % 2 == 0 {
                Big::ToolResult(size)
            } else {
                Big::Image(size)
            });
        }
    }

    // Reserve room for the files written after the sessions (sessions-index.json, todos...).
    let tail_reserve = 400 * n as u64 + 2_000 * nproj as u64;
    let mut remaining_w: f64 = plans.iter().map(|p| p.weight).sum();
    let mut done: Vec<Done> = Vec::with_capacity(n);
    let mut report = GenReport::default();
    let mut index_entries: Vec<Vec<String>> = vec![Vec::new(); nproj];
    // Sessions overshoot their budget (a turn is not cut short): learn by how much on average
    // and aim lower, so the total lands near the target.
    // Every session gets a minimum (a short session is still a few KB) plus a weighted share of
    // what is left once the minimums of the later sessions and the big lines are set aside.
    const MIN_SESSION: u64 = 8_000;
    let big_size = |p: &Plan| match p.big {
        Some(Big::ToolResult(n)) | Some(Big::Image(n)) => n as u64,
        None => 0,
    };
    let mut pending_big: u64 = plans.iter().map(big_size).sum();
    let (mut assigned_sum, mut actual_sum) = (0f64, 0f64);
    for (i, plan) in plans.iter().enumerate() {
        let written = g.bytes + g.history_bytes;
        let left = (n - i) as u64;
        let reserved = written + tail_reserve + pending_big + left * MIN_SESSION;
        let free = opts.target_bytes.saturating_sub(reserved) as f64;
        let share = MIN_SESSION as f64 + free * plan.weight / remaining_w.max(1e-9);
        remaining_w -= plan.weight;
        let ratio = if assigned_sum > 0.0 {
            (actual_sum / assigned_sum).clamp(1.0, 4.0)
        } else {
            1.3
        };
        let own_big = big_size(plan);
        pending_big -= own_big;
        let budget = ((share / ratio) as usize).max(2_000) + own_big as usize;
        let proj = &projects[plan.project];
        let session_id = uuid(&mut g.rng);
        let mut ctx = g.new_ctx(proj, plan.era, session_id.clone());
        let paths = SessPaths {
            proj_dir: format!("projects/{}", proj.enc),
        };
        // Claude 1.x/2.0 resume: the new file starts with a byte-identical copy of an earlier one.
        let source = if plan.force_resume {
            done.last()
                .filter(|d| d.project == plan.project && d.era < Era::V21)
        } else if plan.era < Era::V21 && chance(&mut g.rng, 0.3) {
            done.iter()
                .rev()
                .find(|d| d.project == plan.project && d.era < Era::V21 && d.size * 10 < budget * 8)
        } else {
            None
        };
        let mut s;
        if let Some(src) = source {
            let bytes = fs::read(root.join(&src.rel))?;
            ctx.branch = proj.branches[0].clone();
            s = Sess::new(ctx, plan.start.max(src.last_ts + 60_000));
            s.buf = String::from_utf8(bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            s.lines = s.buf.matches('\n').count();
            s.last = src.last_uuid.clone();
        } else {
            s = Sess::new(ctx, plan.start);
        }
        s.budget = budget;
        if plan.showcase {
            s.forced = vec![Tool::Task, Tool::Bash, Tool::Edit];
            s.force_huge = plan.era == Era::V21;
        }
        g.session_body(&mut s, proj, &paths, budget, plan.big)?;
        let rel = format!("{}/{session_id}.jsonl", paths.proj_dir);
        g.lines += s.lines;
        g.write(&rel, s.buf.as_bytes())?;
        if plan.era >= Era::V20 {
            let todo_rel = format!("todos/{session_id}-agent-{session_id}.json");
            let todos = if s.todos == "[]" || chance(&mut g.rng, 0.3) {
                "[]".to_string()
            } else {
                s.todos.clone()
            };
            g.write(&todo_rel, todos.as_bytes())?;
        }
        if let Some(slug) = &s.ctx.slug {
            if chance(&mut g.rng, 0.15) {
                let plan_md = format!(
                    "# Plan: {}\n\n## Context\n\n{}\n\n## Steps\n\n1. {}\n2. {}\n3. {}\n\n## Verification\n\n{}\n",
                    g.corpus.prose(&mut g.rng, 1),
                    g.corpus.prose(&mut g.rng, 4),
                    g.corpus.prose(&mut g.rng, 1),
                    g.corpus.prose(&mut g.rng, 1),
                    g.corpus.prose(&mut g.rng, 1),
                    g.corpus.prose(&mut g.rng, 2)
                );
                g.write(&format!("plans/{slug}.md"), plan_md.as_bytes())?;
            }
        }
        index_entries[plan.project].push(format!(
            "{{\"sessionId\":\"{session_id}\",\"fullPath\":{},\"fileMtime\":{},\"firstPrompt\":\"No prompt\",\"messageCount\":{},\"created\":\"{}\",\"modified\":\"{}\",\"gitBranch\":{},\"projectPath\":{},\"isSidechain\":false}}",
            js(&format!("{}/.claude/{rel}", g.home())),
            s.ts,
            s.lines,
            iso(plan.start),
            iso(s.ts),
            js(&s.ctx.branch),
            js(&proj.cwd)
        ));
        done.push(Done {
            rel: rel.clone(),
            project: plan.project,
            era: plan.era,
            last_uuid: s.last.clone(),
            last_ts: s.ts,
            size: s.buf.len(),
        });
        report.session_paths.push(rel);
        if plan.big.is_none() && !plan.force_resume {
            assigned_sum += budget as f64;
            actual_sum += (g.bytes + g.history_bytes - written) as f64;
        }
    }

    // Derived per-project index (must not be stored) and memory files.
    for (pi, p) in projects.iter().enumerate() {
        let entries = &index_entries[pi];
        if !entries.is_empty() {
            let idx = format!(
                "{{\"version\":1,\"entries\":[{}],\"originalPath\":{}}}",
                entries.join(","),
                js(&p.cwd)
            );
            g.write(
                &format!("projects/{}/sessions-index.json", p.enc),
                idx.as_bytes(),
            )?;
        }
        if pi % 3 == 0 {
            let mem = format!(
                "# Memory\n\n- {}\n- {}\n- Tests: run with the project's usual command.\n",
                g.corpus.prose(&mut g.rng, 1),
                g.corpus.prose(&mut g.rng, 1)
            );
            g.write(
                &format!("projects/{}/memory/MEMORY.md", p.enc),
                mem.as_bytes(),
            )?;
            if pi % 2 == 0 {
                let topic = format!("# Debugging notes\n\n{}\n", g.corpus.prose(&mut g.rng, 6));
                g.write(
                    &format!("projects/{}/memory/debugging.md", p.enc),
                    topic.as_bytes(),
                )?;
            }
        }
    }

    // history.jsonl: all prompts, in time order.
    let mut history = std::mem::take(&mut g.history);
    history.sort_by_key(|h| h.0);
    let mut hist = String::with_capacity(history.iter().map(|h| h.1.len()).sum());
    for (_, line) in &history {
        hist.push_str(line);
    }
    // Bytes of history lines were already counted against the sessions' budgets.
    g.write("history.jsonl", hist.as_bytes())?;

    report.files = g.files;
    report.sessions = report.session_paths.len();
    report.lines = g.lines;
    report.bytes = g.bytes;
    Ok((report, awkward_paths))
}

/// Config, user content and the machine-local state sage must skip.
fn static_files(g: &mut Gen<'_>, projects: &[Project]) -> io::Result<()> {
    let home = g.home();
    let settings = format!(
        "{{\n  \"$schema\": \"https://json.schemastore.org/claude-code-settings.json\",\n  \"permissions\": {{\n    \"allow\": [\n      \"Bash(cargo test:*)\",\n      \"Bash(git status:*)\",\n      \"Read({home}/**)\"\n    ],\n    \"deny\": []\n  }},\n  \"hooks\": {{\n    \"Notification\": [\n      {{\n        \"matcher\": \"\",\n        \"hooks\": [\n          {{\n            \"type\": \"command\",\n            \"command\": \"~/.claude/hooks/notify.sh\"\n          }}\n        ]\n      }}\n    ]\n  }},\n  \"model\": \"opus\",\n  \"cleanupPeriodDays\": 99999,\n  \"alwaysThinkingEnabled\": true\n}}\n"
    );
    g.write("settings.json", settings.as_bytes())?;
    let claude_md = format!(
        "# Global instructions\n\n{}\n\n## Style\n\n- {}\n- {}\n- Prefer small, focused commits.\n\n## Tools\n\n{}\n",
        g.corpus.prose(&mut g.rng, 3),
        g.corpus.prose(&mut g.rng, 1),
        g.corpus.prose(&mut g.rng, 1),
        g.corpus.prose(&mut g.rng, 4)
    );
    g.write("CLAUDE.md", claude_md.as_bytes())?;
    for name in ["review", "commit", "fix-tests", "explain"] {
        let body = format!(
            "---\ndescription: {}\nallowed-tools: Bash(git diff:*), Read\n---\n\n{}\n\n$ARGUMENTS\n",
            g.corpus.prose(&mut g.rng, 1),
            g.corpus.prose(&mut g.rng, 3)
        );
        g.write(&format!("commands/{name}.md"), body.as_bytes())?;
    }
    for name in ["code-reviewer", "test-runner"] {
        let body = format!(
            "---\nname: {name}\ndescription: {}\ntools: Read, Grep, Glob, Bash\nmodel: sonnet\n---\n\n{}\n",
            g.corpus.prose(&mut g.rng, 1),
            g.corpus.prose(&mut g.rng, 6)
        );
        g.write(&format!("agents/{name}.md"), body.as_bytes())?;
    }

    // Never to be stored.
    let creds = format!(
        "{{\"claudeAiOauth\":{{\"accessToken\":\"sk-ant-oat01-{CREDENTIAL_MARKER}-{}\",\"refreshToken\":\"sk-ant-ort01-{CREDENTIAL_MARKER}-{}\",\"expiresAt\":{},\"scopes\":[\"user:inference\",\"user:profile\"],\"subscriptionType\":\"max\"}}}}",
        b62(&mut g.rng, 40),
        b62(&mut g.rng, 40),
        BASE_MS + 400 * DAY_MS
    );
    g.write(".credentials.json", creds.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            g.root.join(".credentials.json"),
            fs::Permissions::from_mode(0o600),
        )?;
    }
    let mut trusted = String::new();
    for (i, p) in projects.iter().take(20).enumerate() {
        if i > 0 {
            trusted.push(',');
        }
        let _ = write!(
            trusted,
            "{}:{{\"allowedTools\":[],\"history\":[],\"mcpServers\":{{}},\"hasTrustDialogAccepted\":true,\"lastSessionId\":\"{}\"}}",
            js(&p.cwd),
            uuid(&mut g.rng)
        );
    }
    let claude_json = format!(
        "{{\n  \"numStartups\": {},\n  \"userID\": \"{}\",\n  \"oauthAccount\": {{\n    \"accountUuid\": \"{}\",\n    \"emailAddress\": \"{}@example.com\",\n    \"note\": \"{CLAUDE_JSON_MARKER}\"\n  }},\n  \"projects\": {{{trusted}}}\n}}\n",
        g.rng.gen_range(10..900),
        hexs(&mut g.rng, 64),
        uuid(&mut g.rng),
        g.user
    );
    g.write(".claude.json", claude_json.as_bytes())?;
    let sid = hexs(&mut g.rng, 10);
    let evaluations = format!(
        "{{\"source\":\"Network\",\"data\":\"{}\"}}",
        b62(&mut g.rng, 3000)
    );
    g.write(
        &format!("statsig/statsig.cached.evaluations.{sid}"),
        evaluations.as_bytes(),
    )?;
    let stable = format!("\"{}\"", uuid(&mut g.rng));
    g.write(
        &format!("statsig/statsig.stable_id.{sid}"),
        stable.as_bytes(),
    )?;
    for i in 0..3 {
        let body = format!(
            "# Snapshot file\n# Unset all aliases to avoid conflicts with functions\nunalias -a 2>/dev/null || true\nexport PATH={home}/.cargo/bin:/usr/local/bin:/usr/bin:/bin\nalias ll='ls -la'\n{}\n",
            g.corpus.code(&mut g.rng, 40)
        );
        let name = format!(
            "shell-snapshots/snapshot-bash-{}-{}.sh",
            BASE_MS + i * 7_777_777,
            b62(&mut g.rng, 6).to_lowercase()
        );
        g.write(&name, body.as_bytes())?;
    }
    for _ in 0..3 {
        let id = uuid(&mut g.rng);
        let body = g.corpus.output(&mut g.rng, 120);
        g.write(&format!("debug/{id}.txt"), body.as_bytes())?;
        g.mkdir(&format!("session-env/{id}"))?;
    }
    let env_id = uuid(&mut g.rng);
    g.write(
        &format!("session-env/{env_id}/hook-0.sh"),
        b"export FOO=bar\n",
    )?;
    let ide = format!(
        "{{\"pid\":{},\"workspaceFolders\":[{}],\"ideName\":\"Visual Studio Code\",\"transport\":\"ws\",\"authToken\":\"{}\"}}",
        g.rng.gen_range(1000..60000),
        js(&projects[0].cwd),
        uuid(&mut g.rng)
    );
    let port: u32 = g.rng.gen_range(10000..65000);
    g.write(&format!("ide/{port}.lock"), ide.as_bytes())?;
    let changelog = format!(
        "# Changelog\n\n## 2.1.39\n\n- {}\n",
        g.corpus.prose(&mut g.rng, 30)
    );
    g.write("cache/changelog.md", changelog.as_bytes())?;
    let live_id = uuid(&mut g.rng);
    let live = format!(
        "{{\"pid\":{},\"cwd\":{}}}",
        g.rng.gen_range(1000..60000),
        js(&projects[0].cwd)
    );
    g.write(&format!("sessions/{live_id}.json"), live.as_bytes())?;
    let mut daily = String::new();
    for d in 0..30u64 {
        if d > 0 {
            daily.push(',');
        }
        let _ = write!(
            daily,
            "{{\"date\":\"{}\",\"messageCount\":{},\"sessionCount\":{},\"toolCallCount\":{}}}",
            &iso(BASE_MS + d * DAY_MS)[..10],
            g.rng.gen_range(0..900),
            g.rng.gen_range(0..12),
            g.rng.gen_range(0..400)
        );
    }
    g.write(
        "stats-cache.json",
        format!(
            "{{\"version\":2,\"lastComputedDate\":\"2026-02-10\",\"dailyActivity\":[{daily}]}}"
        )
        .as_bytes(),
    )?;
    Ok(())
}

/// Damaged and unusual files. Returns the damaged transcripts' paths.
fn awkward_files(g: &mut Gen<'_>, proj: &Project) -> io::Result<Vec<String>> {
    let dir = format!("projects/{}", proj.enc);
    let mut damaged = Vec::new();

    // A short valid transcript to damage in various ways.
    let short = |g: &mut Gen<'_>| -> io::Result<Vec<String>> {
        let id = uuid(&mut g.rng);
        let ctx = g.new_ctx(proj, Era::V21, id);
        let mut s = Sess::new(ctx, BASE_MS + 100 * DAY_MS);
        s.budget = 8_000;
        let paths = SessPaths {
            proj_dir: dir.clone(),
        };
        let mut none = None;
        g.turn(&mut s, proj, &paths, 8_000, &mut none, false)?;
        if let Some((_, l)) = g.history.pop() {
            g.history_bytes -= l.len() as u64;
        }
        Ok(s.buf.lines().map(str::to_string).collect())
    };

    let empty = format!("{dir}/{}.jsonl", uuid(&mut g.rng));
    g.write(&empty, b"")?;
    damaged.push(empty);

    let lines = short(g)?;
    let crlf = format!("{dir}/{}.jsonl", uuid(&mut g.rng));
    let mut data = String::new();
    for l in &lines {
        data.push_str(l);
        data.push_str("\r\n");
    }
    g.lines += lines.len();
    g.write(&crlf, data.as_bytes())?;
    damaged.push(crlf);

    let lines = short(g)?;
    let bad_utf8 = format!("{dir}/{}.jsonl", uuid(&mut g.rng));
    let mut data: Vec<u8> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == lines.len() / 2 {
            // Invalid UTF-8 inside a string value.
            let cut = l.find("\"cwd\":\"").map(|p| p + 7).unwrap_or(1);
            data.extend_from_slice(&l.as_bytes()[..cut]);
            data.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0x80]);
            data.extend_from_slice(&l.as_bytes()[cut..]);
        } else {
            data.extend_from_slice(l.as_bytes());
        }
        data.push(b'\n');
    }
    g.lines += lines.len();
    g.write(&bad_utf8, &data)?;
    damaged.push(bad_utf8);

    let lines = short(g)?;
    let non_json = format!("{dir}/{}.jsonl", uuid(&mut g.rng));
    let mut data = String::new();
    for (i, l) in lines.iter().enumerate() {
        data.push_str(l);
        data.push('\n');
        if i == 1 {
            data.push_str("this is not json at all\n");
            data.push('\n');
        }
        if i == 3 {
            data.push_str(
                "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"trunc\n",
            );
            data.push_str("\u{1b}[31mERROR\u{1b}[0m something went wrong\n");
        }
    }
    g.lines += lines.len() + 4;
    g.write(&non_json, data.as_bytes())?;
    damaged.push(non_json);

    let lines = short(g)?;
    let half = format!("{dir}/{}.jsonl", uuid(&mut g.rng));
    let mut data = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i + 1 == lines.len() {
            let mut cut = l.len() / 2;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            data.push_str(&l[..cut]);
        } else {
            data.push_str(l);
            data.push('\n');
        }
    }
    g.lines += lines.len();
    g.write(&half, data.as_bytes())?;
    damaged.push(half);

    // Executable hook script.
    g.write(
        "hooks/notify.sh",
        b"#!/bin/sh\n# Notify when Claude needs attention.\nnotify-send \"Claude Code\" \"${1:-waiting}\" 2>/dev/null || printf '\\a'\n",
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            g.root.join("hooks/notify.sh"),
            fs::Permissions::from_mode(0o755),
        )?;
        std::os::unix::fs::symlink("commands", g.root.join("commands-link"))?;
        std::os::unix::fs::symlink("does-not-exist/anywhere", g.root.join("dangling-link"))?;
    }
    g.mkdir("skills/empty-skill")?;
    let notes = format!("# Notes\n\n{}\n", g.corpus.prose(&mut g.rng, 3));
    g.write(&format!("{dir}/notes ünïcode.md"), notes.as_bytes())?;
    g.write("plans/zero-byte.md", b"")?;
    Ok(damaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Hash every file, symlink and directory under `root`.
    fn tree(root: &Path) -> BTreeMap<String, String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let ft = e.file_type().unwrap();
                if ft.is_symlink() {
                    let t = fs::read_link(&p).unwrap();
                    out.insert(rel, format!("link:{}", t.display()));
                } else if ft.is_dir() {
                    out.insert(rel.clone(), "dir".into());
                    walk(root, &p, out);
                } else {
                    let data = fs::read(&p).unwrap();
                    out.insert(rel, blake3::hash(&data).to_hex().to_string());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(root, root, &mut out);
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn all_files(root: &Path) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let ft = e.file_type().unwrap();
                let p = e.path();
                if ft.is_dir() {
                    walk(root, &p, out);
                } else if ft.is_file() {
                    let rel = p
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.push((rel, e.metadata().unwrap().len()));
                }
            }
        }
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn same_seed_same_tree_different_seed_differs() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let ra = generate_home(a.path(), &GenOptions::small(7)).unwrap();
        let rb = generate_home(b.path(), &GenOptions::small(7)).unwrap();
        generate_home(c.path(), &GenOptions::small(8)).unwrap();
        assert_eq!(ra, rb);
        let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
        assert!(ta.len() > 100, "only {} entries", ta.len());
        assert_eq!(ta, tb);
        assert_ne!(ta, tc);
        assert_eq!(ra.sessions, 60);
        assert_eq!(ra.session_paths.len(), 60);
    }

    #[test]
    fn small_home_has_expected_shape() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let t = std::time::Instant::now();
        let r = generate_home(root, &GenOptions::small(1)).unwrap();
        eprintln!(
            "small: {:?} {} bytes {} files",
            t.elapsed(),
            r.bytes,
            r.files
        );
        let files = all_files(root);
        let total: u64 = files.iter().map(|f| f.1).sum();
        assert_eq!(total, r.bytes);
        assert_eq!(files.len(), r.files);
        let target = GenOptions::small(1).target_bytes as f64;
        assert!(
            (total as f64 - target).abs() < target * 0.15,
            "{total} vs {target}"
        );
        let has = |pred: &dyn Fn(&str) -> bool| files.iter().any(|(p, _)| pred(p));
        assert!(has(&|p| p == "history.jsonl"));
        assert!(has(
            &|p| p.contains("/subagents/agent-a") && p.ends_with(".jsonl")
        ));
        assert!(has(
            &|p| p.contains("/subagents/") && p.ends_with(".meta.json")
        ));
        assert!(has(&|p| p.contains("/tool-results/") && p.ends_with(".txt")));
        assert!(has(&|p| p.contains("/subagents/agent-acompact-")));
        assert!(has(&|p| {
            let name = p.rsplit('/').next().unwrap();
            p.matches('/').count() == 2 && name.starts_with("agent-") && name.len() == 20
        }));
        assert!(has(&|p| p.starts_with("file-history/") && p.contains("@v")));
        assert!(has(&|p| p.starts_with("todos/") && p.contains("-agent-")));
        assert!(has(&|p| p.ends_with("sessions-index.json")));
        assert!(has(&|p| p.contains("/memory/")));
        assert!(has(&|p| p.ends_with("notes ünïcode.md")));
        let creds = fs::read_to_string(root.join(".credentials.json")).unwrap();
        assert!(creds.contains(CREDENTIAL_MARKER));
        let cj = fs::read_to_string(root.join(".claude.json")).unwrap();
        assert!(cj.contains(CLAUDE_JSON_MARKER));
        for d in [
            "statsig",
            "shell-snapshots",
            "debug",
            "session-env",
            "ide",
            "cache",
            "sessions",
            "skills/empty-skill",
        ] {
            assert!(root.join(d).is_dir(), "{d}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = fs::metadata(root.join("hooks/notify.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o755);
            assert!(fs::symlink_metadata(root.join("commands-link"))
                .unwrap()
                .file_type()
                .is_symlink());
            assert!(root.join("commands-link/review.md").is_file());
            assert!(!root.join("dangling-link").exists());
        }
        // Big lines are present.
        let mut max_line = 0;
        let mut has_image = false;
        for p in &r.session_paths {
            let data = fs::read(root.join(p)).unwrap();
            for l in data.split(|&b| b == b'\n') {
                max_line = max_line.max(l.len());
                if l.len() > 500_000 && contains(l, b"\"media_type\":\"image/png\"") {
                    has_image = true;
                }
            }
        }
        assert!(max_line > 1_000_000, "max line {max_line}");
        assert!(has_image);
        // Resumed sessions: some transcript starts with the whole of another one.
        let contents: Vec<Vec<u8>> = r
            .session_paths
            .iter()
            .map(|p| fs::read(root.join(p)).unwrap())
            .collect();
        let resumed = contents.iter().enumerate().any(|(i, a)| {
            contents
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && !a.is_empty() && b.len() > a.len() && b.starts_with(a))
        });
        assert!(resumed, "no resumed session");
    }

    #[test]
    fn lines_are_valid_json_except_awkward() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let (r, awkward) = generate_home_inner(root, &GenOptions::small(3)).unwrap();
        assert_eq!(awkward.len(), 5);
        let mut sizes = Vec::new();
        let mut types = BTreeMap::new();
        let mut lines = 0;
        for (p, _) in all_files(root) {
            if !p.ends_with(".jsonl") || awkward.contains(&p) {
                continue;
            }
            let data = fs::read(root.join(&p)).unwrap();
            assert!(data.is_empty() || data.ends_with(b"\n"), "{p}");
            for l in data.split_inclusive(|&b| b == b'\n') {
                assert!(l.ends_with(b"\n"));
                assert!(!l.ends_with(b"\r\n"));
                let v: serde_json::Value = serde_json::from_slice(&l[..l.len() - 1])
                    .unwrap_or_else(|e| {
                        panic!(
                            "{p}: {e}: {}",
                            String::from_utf8_lossy(&l[..l.len().min(300)])
                        )
                    });
                if p != "history.jsonl" {
                    lines += 1;
                    sizes.push(l.len());
                    let t = v["type"].as_str().unwrap().to_string();
                    *types.entry(t).or_insert(0) += 1;
                    if v.get("uuid").is_some() {
                        assert!(v["sessionId"].is_string() && v["timestamp"].is_string());
                        assert!(parse_iso(v["timestamp"].as_str().unwrap()).is_some());
                    }
                }
            }
        }
        // Awkward lines counted in the report too.
        assert!(lines <= r.lines);
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        eprintln!("median line {median}, types {types:?}");
        assert!((300..=1500).contains(&median), "median {median}");
        for t in [
            "user",
            "assistant",
            "system",
            "progress",
            "file-history-snapshot",
            "summary",
        ] {
            assert!(types.contains_key(t), "{t} missing");
        }
        // The awkward ones really are awkward.
        let crlf = awkward.iter().filter(|p| {
            fs::read(root.join(p))
                .unwrap()
                .windows(2)
                .any(|w| w == b"\r\n")
        });
        assert_eq!(crlf.count(), 1);
        let bad = awkward
            .iter()
            .filter(|p| std::str::from_utf8(&fs::read(root.join(p)).unwrap()).is_err());
        assert_eq!(bad.count(), 1);
        let unterminated = awkward.iter().filter(|p| {
            let d = fs::read(root.join(p)).unwrap();
            !d.is_empty() && !d.ends_with(b"\n")
        });
        assert_eq!(unterminated.count(), 1);
    }

    #[test]
    fn target_size_respected() {
        let cases = [
            GenOptions {
                seed: 11,
                projects: 5,
                sessions: 25,
                target_bytes: 5 << 20,
                big_lines: false,
                awkward: false,
            },
            GenOptions {
                seed: 12,
                projects: 5,
                sessions: 25,
                target_bytes: 5 << 20,
                big_lines: true,
                awkward: false,
            },
            GenOptions::bench(3, 13),
            GenOptions::bench(6, 14),
        ];
        for opts in cases {
            let d = tempfile::tempdir().unwrap();
            let r = generate_home(d.path(), &opts).unwrap();
            let total: u64 = all_files(d.path()).iter().map(|f| f.1).sum();
            assert_eq!(total, r.bytes);
            let target = opts.target_bytes as f64;
            assert!(
                (total as f64 - target).abs() < target * 0.15,
                "{total} vs {target}"
            );
        }
    }

    #[test]
    fn append_adds_complete_chained_lines() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let r = generate_home(root, &GenOptions::small(5)).unwrap();
        let before: BTreeMap<String, Vec<u8>> = r
            .session_paths
            .iter()
            .map(|p| (p.clone(), fs::read(root.join(p)).unwrap()))
            .collect();
        let n = append_to_sessions(root, &r, 7, 9, 42).unwrap();
        let mut grown = 0;
        let mut total = 0u64;
        for (p, old) in &before {
            let new = fs::read(root.join(p)).unwrap();
            assert!(new.starts_with(old));
            if new.len() == old.len() {
                continue;
            }
            grown += 1;
            total += (new.len() - old.len()) as u64;
            let added = &new[old.len()..];
            assert!(added.ends_with(b"\n"));
            let tail = TailState::from_transcript(old).unwrap();
            let mut parent = Some(tail.uuid.clone());
            let mut last_ts = tail.ts;
            let mut count = 0;
            for l in added.split_inclusive(|&b| b == b'\n') {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                assert_eq!(v["parentUuid"].as_str().map(str::to_string), parent);
                assert_eq!(v["sessionId"].as_str().unwrap(), tail.session_id);
                let ts = parse_iso(v["timestamp"].as_str().unwrap()).unwrap();
                assert!(ts >= last_ts);
                last_ts = ts;
                parent = Some(v["uuid"].as_str().unwrap().to_string());
                count += 1;
            }
            assert_eq!(count, 9);
        }
        assert_eq!(grown, 7);
        assert_eq!(total, n);
        // Deterministic: same seed on a fresh copy appends the same bytes.
        let d2 = tempfile::tempdir().unwrap();
        let r2 = generate_home(d2.path(), &GenOptions::small(5)).unwrap();
        assert_eq!(append_to_sessions(d2.path(), &r2, 7, 9, 42).unwrap(), n);
        assert_eq!(tree(root), tree(d2.path()));
    }

    #[test]
    fn message_line_is_valid() {
        for role in ["user", "assistant"] {
            let l = message_line(
                "4d5611e5-241a-462a-8d15-5122611a9569",
                "24f8a0dd-8c56-4549-9a04-06d6a7328ef8",
                Some("daa5a4bb-530c-4055-b20c-bde38255c99e"),
                "2026-02-12T16:02:48.183Z",
                role,
                "quote \" backslash \\ newline \n tab \t esc \u{1b} ünï",
            );
            assert!(l.ends_with("}\n"));
            assert_eq!(l.matches('\n').count(), 1);
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["type"], role);
            assert_eq!(v["message"]["role"], role);
            assert_eq!(v["parentUuid"], "daa5a4bb-530c-4055-b20c-bde38255c99e");
        }
        let l = message_line("s", "u", None, "2026-02-12T16:02:48.183Z", "user", "hi");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert!(v["parentUuid"].is_null());
    }

    #[test]
    fn escaping_matches_serde_json() {
        let mut rng = StdRng::seed_from_u64(9);
        let alphabet = [
            "a", "b", " ", "\"", "\\", "\n", "\r", "\t", "\u{1}", "\u{1f}", "\u{7f}", "ü", "→",
            "🚀", "/", "~",
        ];
        for _ in 0..2000 {
            let n = rng.gen_range(0..40);
            let s: String = (0..n).map(|_| *pick(&mut rng, &alphabet)).collect();
            assert_eq!(js(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn time_helpers_round_trip() {
        assert_eq!(iso(BASE_MS), "2025-06-15T00:00:00.000Z");
        for ms in [0u64, BASE_MS, BASE_MS + 123_456_789, 1_770_927_708_311] {
            assert_eq!(parse_iso(&iso(ms)), Some(ms));
        }
        assert_eq!(iso(1_770_927_708_311), "2026-02-12T20:21:48.311Z");
        assert_eq!(encode_cwd("/home/me/my.app"), "-home-me-my-app");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }
}
