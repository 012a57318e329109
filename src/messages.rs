//! Reading a transcript line as a person would: who wrote it, when, and a one-line summary of
//! what it says (tool calls folded, images and large results shown by size).

use serde_json::Value;

#[derive(Clone, Debug, serde::Serialize)]
pub struct MessageView {
    pub role: String,
    pub time: Option<String>,
    pub text: String,
    pub uuid: Option<String>,
}

fn kb(n: usize) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / 1048576.0)
    } else {
        format!("{} KB", n.div_ceil(1024))
    }
}

fn block_summary(b: &Value, out: &mut Vec<String>) {
    match b.get("type").and_then(Value::as_str) {
        Some("text") => out.push(
            b.get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        Some("thinking") => out.push("[thinking]".into()),
        Some("tool_use") => {
            let name = b.get("name").and_then(Value::as_str).unwrap_or("?");
            let input = b.get("input").map(|i| i.to_string()).unwrap_or_default();
            let short: String = input.chars().take(80).collect();
            out.push(format!("[tool {name}: {short}]"));
        }
        Some("tool_result") => {
            let size = b.get("content").map(|c| c.to_string().len()).unwrap_or(0);
            out.push(format!("[tool result, {}]", kb(size)));
        }
        Some("image") => {
            let size = b
                .pointer("/source/data")
                .and_then(Value::as_str)
                .map(|s| s.len() * 3 / 4)
                .unwrap_or(0);
            out.push(format!("[image {}]", kb(size)));
        }
        Some(other) => out.push(format!("[{other}]")),
        None => {}
    }
}

/// Summarize one raw line; non-JSON lines are shown as such.
pub fn view(line: &[u8], max_chars: usize) -> MessageView {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        let text = String::from_utf8_lossy(line);
        return MessageView {
            role: "raw".into(),
            time: None,
            text: truncate(text.trim_end(), max_chars),
            uuid: None,
        };
    };
    let typ = v.get("type").and_then(Value::as_str).unwrap_or("line");
    let role = v
        .pointer("/message/role")
        .and_then(Value::as_str)
        .unwrap_or(typ)
        .to_string();
    let time = match v.get("timestamp") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut parts = Vec::new();
    match v.pointer("/message/content") {
        Some(Value::String(s)) => parts.push(s.clone()),
        Some(Value::Array(blocks)) => blocks.iter().for_each(|b| block_summary(b, &mut parts)),
        _ => {
            for key in ["summary", "content", "display", "subtype"] {
                if let Some(s) = v.get(key).and_then(Value::as_str) {
                    parts.push(s.to_string());
                    break;
                }
            }
        }
    }
    let text = parts
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    MessageView {
        role,
        time,
        text: truncate(&text, max_chars),
        uuid: v.get("uuid").and_then(Value::as_str).map(str::to_string),
    }
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
        let l = br#"{"type":"assistant","timestamp":"2026-01-01T00:00:00.000Z","uuid":"u1","message":{"role":"assistant","content":[{"type":"text","text":"hello  there"},{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}"#;
        let v = view(l, 200);
        assert_eq!(v.role, "assistant");
        assert_eq!(v.text, r#"hello there [tool Bash: {"command":"ls"}]"#);
        let img = format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"image","source":{{"data":"{}"}}}}]}}}}"#,
            "A".repeat(4096)
        );
        assert_eq!(view(img.as_bytes(), 200).text, "[image 3 KB]");
        assert_eq!(view(b"not json\n", 200).role, "raw");
    }
}
