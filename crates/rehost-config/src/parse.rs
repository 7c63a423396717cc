//! Text → keyed values, one parser per format. Each keeps where a value came from
//! (`FILE:LINE`) where the format has lines.

use crate::{Entry, Format};

/// A line that says nothing: blank, or a comment (`#`, `;`).
fn is_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t.starts_with(';')
}

/// One layer of matching quotes taken off: `'iso, mdy'` and `"iso, mdy"` are one value.
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@'))
}

/// The format of `text` read from `name` (a file name or a command): by extension, then by
/// shape.
pub fn detect(name: &str, text: &str) -> Format {
    let lower = name.to_ascii_lowercase();
    if text.lines().any(|l| l.starts_with("# configuration file ")) {
        return Format::Nginx;
    }
    if lower.ends_with(".json") {
        return Format::Json;
    }
    if lower.ends_with(".toml") {
        return Format::Toml;
    }
    if lower.ends_with(".ini") {
        return Format::Ini;
    }
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(text).is_ok()
    {
        return Format::Json;
    }
    let lines: Vec<&str> = text.lines().filter(|l| !is_comment(l)).collect();
    if lines.is_empty() {
        return Format::Lines;
    }
    let section = |l: &str| {
        let t = l.trim();
        t.starts_with('[') && t.ends_with(']')
    };
    let equals = |l: &str| {
        l.split_once('=')
            .is_some_and(|(k, _)| is_name(k.trim()) && !k.trim().contains(' '))
    };
    if lines.iter().any(|l| section(l)) && lines.iter().all(|l| section(l) || equals(l)) {
        return Format::Ini;
    }
    if lines.iter().all(|l| equals(l)) {
        return Format::Equals;
    }
    let spaced = |l: &str| {
        let t = l.trim();
        match t.split_once(|c: char| c.is_whitespace()) {
            Some((k, v)) => is_name(k) && !v.trim().is_empty(),
            None => false,
        }
    };
    if lines.iter().all(|l| spaced(l)) {
        return Format::Spaced;
    }
    Format::Lines
}

/// Parses `text` in `format`; `file` names where it came from (in sources and, for plain
/// lines, as the key).
pub fn parse(format: Format, file: &str, text: &str) -> Result<Vec<Entry>, String> {
    let at = |n: usize| Some(format!("{file}:{}", n + 1));
    let mut out = Vec::new();
    match format {
        Format::Nginx => return crate::nginx::parse(file, text),
        Format::Json => {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("{file} is not JSON: {e}"))?;
            flatten_json(&v, String::new(), &mut out);
        }
        Format::Toml => {
            let v: toml::Table =
                toml::from_str(text).map_err(|e| format!("{file} is not TOML: {e}"))?;
            flatten_toml(&toml::Value::Table(v), String::new(), &mut out);
        }
        Format::Ini => {
            let mut section = String::new();
            for (n, line) in text.lines().enumerate() {
                if is_comment(line) {
                    continue;
                }
                let t = line.trim();
                if t.starts_with('[') && t.ends_with(']') {
                    section = t[1..t.len() - 1].trim().to_owned();
                    continue;
                }
                let (k, v) = t
                    .split_once('=')
                    .or_else(|| t.split_once(':'))
                    .unwrap_or((t, ""));
                let key = if section.is_empty() {
                    k.trim().to_owned()
                } else {
                    format!("{section}.{}", k.trim())
                };
                out.push(Entry::new(key, unquote(v.trim()), at(n)));
            }
        }
        Format::Equals => {
            for (n, line) in text.lines().enumerate() {
                if is_comment(line) {
                    continue;
                }
                let t = line.trim();
                let (k, v) = t.split_once('=').unwrap_or((t, ""));
                out.push(Entry::new(k.trim(), unquote(v.trim()), at(n)));
            }
        }
        Format::Spaced => {
            for (n, line) in text.lines().enumerate() {
                if is_comment(line) {
                    continue;
                }
                let t = line.trim();
                let (k, v) = t.split_once(|c: char| c.is_whitespace()).unwrap_or((t, ""));
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                out.push(Entry::new(k.to_ascii_lowercase(), &v, at(n)));
            }
        }
        Format::Lines => {
            for (n, line) in text.lines().enumerate() {
                if is_comment(line) {
                    continue;
                }
                out.push(Entry::new(file, line.trim(), at(n)));
            }
        }
        Format::Postgres => return postgres(text),
    }
    Ok(out)
}

fn json_key(prefix: &str, k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (prefix.is_empty(), plain) {
        (true, true) => k.to_owned(),
        (false, true) => format!("{prefix}.{k}"),
        (_, false) => format!("{prefix}[{}]", serde_json::Value::from(k)),
    }
}

fn flatten_json(v: &serde_json::Value, path: String, out: &mut Vec<Entry>) {
    use serde_json::Value;
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten_json(v, json_key(&path, k), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten_json(v, format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => out.push(Entry::new(root(path), s, None)),
        other => out.push(Entry::new(root(path), &other.to_string(), None)),
    }
}

fn root(path: String) -> String {
    if path.is_empty() { "$".into() } else { path }
}

fn flatten_toml(v: &toml::Value, path: String, out: &mut Vec<Entry>) {
    use toml::Value;
    match v {
        Value::Table(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten_toml(v, json_key(&path, k), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten_toml(v, format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => out.push(Entry::new(root(path), s, None)),
        Value::Table(_) => out.push(Entry::new(root(path), "{}", None)),
        Value::Array(_) => out.push(Entry::new(root(path), "[]", None)),
        other => out.push(Entry::new(root(path), &other.to_string(), None)),
    }
}

/// PostgreSQL's settings as [`crate::POSTGRES_SETTINGS_SQL`] answers them: one JSON array per
/// line, `[name, setting, unit, source, sourcefile, sourceline]`.
pub fn postgres(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Vec<serde_json::Value> = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {} of the server's settings is not what rehost asked for: {e}",
                n + 1
            )
        })?;
        let s = |i: usize| v.get(i).and_then(|x| x.as_str()).map(str::to_owned);
        let name = s(0).ok_or_else(|| format!("line {} has no setting name", n + 1))?;
        let mut value = s(1).unwrap_or_default();
        if let Some(unit) = s(2) {
            value = format!("{value} (unit {unit})");
        }
        let line_no = v.get(5).and_then(|x| x.as_i64());
        let source = match (s(3).as_deref(), s(4), line_no) {
            (_, Some(file), Some(l)) => format!("{file}:{l}"),
            (_, Some(file), None) => file,
            (Some(src), None, _) => src.to_owned(),
            (None, None, _) => "unknown".to_owned(),
        };
        out.push(Entry::new(name, &value, Some(source)));
    }
    Ok(out)
}
