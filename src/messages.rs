//! Reading a transcript line as a person would: who wrote it, when, and what it says, with tool
//! calls folded to one line and images and large results shown by size.
//!
//! Two readings of one line: [`parse`] keeps the structure (blocks, uuid links) for the
//! session viewer; [`view`] is a one-line summary. [`fingerprint_key`] is what a line
//! contributes to a session's fingerprint (see `session::Fingerprint`).

use serde_json::Value;

/// A one-line summary of a line.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MessageView {
    pub role: String,
    pub time: Option<String>,
    pub text: String,
    pub uuid: Option<String>,
}

/// One part of a message's content, as a person reads it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Prose, whitespace kept (a person reads the paragraphs).
    Text { text: String },
    /// Claude's hidden reasoning: only its size is shown.
    Thinking { chars: usize },
    /// A tool call: the tool and its most telling argument, on one line.
    ToolUse { name: String, summary: String },
    /// A tool's answer: its size and first line.
    ToolResult {
        bytes: usize,
        summary: String,
        is_error: bool,
    },
    /// An image: its decoded size.
    Image { bytes: usize },
    /// A block of another type, named.
    Other { kind: String },
}

impl Block {
    /// The block on one line (text blocks keep their newlines).
    pub fn render(&self) -> String {
        match self {
            Block::Text { text } => text.clone(),
            Block::Thinking { .. } => "[thinking]".into(),
            Block::ToolUse { name, summary } if summary.is_empty() => format!("[tool {name}]"),
            Block::ToolUse { name, summary } => format!("[tool {name}: {summary}]"),
            Block::ToolResult {
                bytes,
                summary,
                is_error,
            } => {
                let what = if *is_error {
                    "tool error"
                } else {
                    "tool result"
                };
                if summary.is_empty() {
                    format!("[{what}, {}]", size_label(*bytes))
                } else {
                    format!("[{what}, {}: {summary}]", size_label(*bytes))
                }
            }
            Block::Image { bytes } => format!("[image {}]", size_label(*bytes)),
            Block::Other { kind } => format!("[{kind}]"),
        }
    }
}

/// One transcript line, parsed for the viewer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Message {
    /// The line's `type` (`user`, `assistant`, `system`, `progress`, `summary`, ...).
    pub kind: String,
    /// Who speaks: `message.role`, else the type; a user line that only carries tool results
    /// is `tool`.
    pub role: String,
    pub time: Option<String>,
    pub uuid: Option<String>,
    /// `parentUuid`: the previous line of the chain (`None` at a root, and at a compaction
    /// boundary, where Claude Code stops loading).
    pub parent: Option<String>,
    /// `logicalParentUuid` of a compaction boundary: the line before the compaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_parent: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sidechain: bool,
    /// `message.id`: the lines of one assistant reply share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub blocks: Vec<Block>,
    /// Does the line carry a `message` object?
    #[serde(skip)]
    pub has_message: bool,
}

impl Message {
    /// A user or assistant line with a `message`: what the conversation is made of.
    pub fn is_message(&self) -> bool {
        matches!(self.kind.as_str(), "user" | "assistant") && self.has_message
    }

    /// Worth showing to a person reading the conversation: messages with something visible,
    /// system notes (compaction boundaries, errors) and summaries. Progress and metadata lines
    /// (`file-history-snapshot`, titles, queue operations) are not.
    pub fn is_shown(&self) -> bool {
        match self.kind.as_str() {
            "user" | "assistant" | "system" | "summary" => self.blocks.iter().any(|b| match b {
                Block::Text { text } => !text.trim().is_empty(),
                _ => true,
            }),
            _ => false,
        }
    }

    /// The content on one line: blocks joined, whitespace collapsed, cut at `max` characters.
    pub fn one_line(&self, max: usize) -> String {
        let joined = self
            .blocks
            .iter()
            .map(Block::render)
            .collect::<Vec<_>>()
            .join(" ");
        truncate(&collapse(&joined), max)
    }
}

/// Sizes as the viewer shows them: `312 KB`, `2.1 MB`, `80 B`.
pub fn size_label(n: usize) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / 1048576.0)
    } else if n >= 1024 {
        format!("{} KB", n.div_ceil(1024))
    } else {
        format!("{n} B")
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The argument that says most about a tool call, on one line.
fn tool_summary(input: Option<&Value>) -> String {
    let Some(input) = input else {
        return String::new();
    };
    const KEYS: &[&str] = &[
        "command",
        "file_path",
        "path",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
        "subject",
        "skill",
    ];
    let s = KEYS
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| match input {
            Value::Object(m) if m.is_empty() => String::new(),
            other => other.to_string(),
        });
    truncate(&collapse(&s), 100)
}

/// The text of a tool result (a string, or text blocks), for its first line.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn block_of(b: &Value) -> Option<Block> {
    let typ = b.get("type").and_then(Value::as_str)?;
    Some(match typ {
        "text" => Block::Text {
            text: b.get("text").and_then(Value::as_str).unwrap_or("").into(),
        },
        "thinking" | "redacted_thinking" => Block::Thinking {
            chars: b
                .get("thinking")
                .and_then(Value::as_str)
                .map(|s| s.chars().count())
                .unwrap_or(0),
        },
        "tool_use" | "server_tool_use" => Block::ToolUse {
            name: b.get("name").and_then(Value::as_str).unwrap_or("?").into(),
            summary: tool_summary(b.get("input")),
        },
        "tool_result" => {
            let content = b.get("content");
            let first = result_text(content)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
            Block::ToolResult {
                bytes: content.map(|c| c.to_string().len()).unwrap_or(0),
                summary: truncate(&first, 80),
                is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            }
        }
        "image" => Block::Image {
            bytes: b
                .pointer("/source/data")
                .and_then(Value::as_str)
                .map(|s| s.len() * 3 / 4)
                .unwrap_or(0),
        },
        other => Block::Other { kind: other.into() },
    })
}

fn time_of(v: &Value) -> Option<String> {
    match v.get("timestamp") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Parse one raw line; `None` when it is not a JSON object.
pub fn parse(line: &[u8]) -> Option<Message> {
    let v = serde_json::from_slice::<Value>(line).ok()?;
    if !v.is_object() {
        return None;
    }
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("line")
        .to_string();
    let mut role = v
        .pointer("/message/role")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.clone());
    let mut blocks = Vec::new();
    match v.pointer("/message/content") {
        Some(Value::String(s)) => blocks.push(Block::Text { text: s.clone() }),
        Some(Value::Array(items)) => blocks.extend(items.iter().filter_map(block_of)),
        _ => {
            for key in ["summary", "content", "display", "subtype"] {
                if let Some(s) = v.get(key).and_then(Value::as_str) {
                    blocks.push(Block::Text { text: s.into() });
                    break;
                }
            }
        }
    }
    if role == "user"
        && !blocks.is_empty()
        && blocks.iter().all(|b| matches!(b, Block::ToolResult { .. }))
    {
        role = "tool".into();
    }
    Some(Message {
        role,
        time: time_of(&v),
        uuid: str_field(&v, "uuid"),
        parent: str_field(&v, "parentUuid"),
        logical_parent: str_field(&v, "logicalParentUuid"),
        sidechain: v.get("isSidechain").and_then(Value::as_bool) == Some(true),
        message_id: v
            .pointer("/message/id")
            .and_then(Value::as_str)
            .map(str::to_string),
        has_message: v.get("message").is_some_and(Value::is_object),
        kind,
        blocks,
    })
}

/// Summarize one raw line; non-JSON lines are shown as such.
pub fn view(line: &[u8], max_chars: usize) -> MessageView {
    match parse(line) {
        Some(m) => MessageView {
            text: m.one_line(max_chars),
            role: m.role,
            time: m.time,
            uuid: m.uuid,
        },
        None => MessageView {
            role: "raw".into(),
            time: None,
            text: truncate(String::from_utf8_lossy(line).trim_end(), max_chars),
            uuid: None,
        },
    }
}

/// What a line contributes to its session's fingerprint: `timestamp:role:content` for a
/// `user` or `assistant` line carrying a `message` (the content as written when it is a
/// string, else as compact JSON with sorted keys); `None` for every other line (metadata,
/// progress, non-JSON). Ids, `sessionId`, `cwd` and the line's key order do not count, so a
/// forked or resumed copy of a conversation gives the same keys.
/// JSON text with every object's keys in sorted order (whatever order the line had, and
/// whatever map serde_json was built with), so equal content gives equal text.
fn sorted_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), sorted_json(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(sorted_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

pub fn fingerprint_key(line: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<Value>(line).ok()?;
    let typ = v.get("type").and_then(Value::as_str)?;
    if !matches!(typ, "user" | "assistant") {
        return None;
    }
    let msg = v.get("message")?;
    let role = msg.get("role").and_then(Value::as_str).unwrap_or(typ);
    let content = match msg.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => sorted_json(other),
        None => String::new(),
    };
    Some(format!(
        "{}:{role}:{content}",
        time_of(&v).unwrap_or_default()
    ))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_roles_tools_and_images() {
        let l = br#"{"type":"assistant","timestamp":"2026-01-01T00:00:00.000Z","uuid":"u1","message":{"role":"assistant","content":[{"type":"text","text":"hello  there"},{"type":"tool_use","name":"Bash","input":{"command":"ls -la"}}]}}"#;
        let v = view(l, 200);
        assert_eq!(v.role, "assistant");
        assert_eq!(v.text, "hello there [tool Bash: ls -la]");
        let img = format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"image","source":{{"data":"{}"}}}}]}}}}"#,
            "A".repeat(4096)
        );
        assert_eq!(view(img.as_bytes(), 200).text, "[image 3 KB]");
        let big = format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"image","source":{{"data":"{}"}}}}]}}}}"#,
            "A".repeat(425_984)
        );
        assert_eq!(view(big.as_bytes(), 200).text, "[image 312 KB]");
        assert_eq!(view(b"not json\n", 200).role, "raw");
        // a tool call without a telling argument shows its input, cut
        let l = br#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","name":"X","input":{"a":1}}]}}"#;
        assert_eq!(view(l, 200).text, r#"[tool X: {"a":1}]"#);
    }

    #[test]
    fn tool_results_make_a_tool_line_with_size_and_first_line() {
        let l = br#"{"type":"user","uuid":"u2","parentUuid":"u1","timestamp":"t","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"\n  first line\nsecond"}]}}"#;
        let m = parse(l).unwrap();
        assert_eq!(m.role, "tool");
        assert_eq!(m.parent.as_deref(), Some("u1"));
        assert_eq!(m.one_line(200), "[tool result, 24 B: first line]");
        assert!(m.is_message() && m.is_shown());
        let e = br#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","is_error":true,"content":[{"type":"text","text":"boom"}]}]}}"#;
        assert!(parse(e).unwrap().one_line(200).starts_with("[tool error, "));
    }

    #[test]
    fn metadata_and_progress_are_not_shown_and_compaction_starts_a_chain() {
        let p = br#"{"type":"progress","uuid":"p","parentUuid":"u","data":{}}"#;
        assert!(!parse(p).unwrap().is_shown());
        assert!(
            !parse(br#"{"type":"file-history-snapshot","messageId":"m"}"#)
                .unwrap()
                .is_shown()
        );
        let b = br#"{"type":"system","subtype":"compact_boundary","content":"Conversation compacted","parentUuid":null,"logicalParentUuid":"u9","uuid":"c"}"#;
        let m = parse(b).unwrap();
        assert!(m.is_shown() && !m.is_message());
        assert_eq!((m.parent, m.logical_parent.as_deref()), (None, Some("u9")));
        // an assistant line with only blank text shows nothing
        let blank = br#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"\n\n"}]}}"#;
        assert!(!parse(blank).unwrap().is_shown());
        assert!(parse(b"[1,2]").is_none());
    }

    #[test]
    fn fingerprint_keys_ignore_metadata_and_key_order() {
        let a = br#"{"type":"user","sessionId":"A","cwd":"/a","uuid":"1","timestamp":"T","message":{"role":"user","content":[{"type":"text","text":"hi"}]}}"#;
        let b = br#"{"message":{"content":[{"text":"hi","type":"text"}],"role":"user"},"timestamp":"T","uuid":"9","cwd":"/b","sessionId":"B","type":"user"}"#;
        assert_eq!(fingerprint_key(a), fingerprint_key(b));
        assert_eq!(
            fingerprint_key(
                br#"{"type":"user","timestamp":"T","message":{"role":"user","content":"yo"}}"#
            )
            .unwrap(),
            "T:user:yo"
        );
        assert_eq!(
            fingerprint_key(br#"{"type":"progress","timestamp":"T"}"#),
            None
        );
        assert_eq!(fingerprint_key(br#"{"type":"user"}"#), None);
        assert_eq!(fingerprint_key(b"garbage"), None);
    }
}
