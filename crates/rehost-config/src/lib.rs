//! Configuration compared, old against new (`rehost verify config`, the `verify-config` step
//! kind). Pure: the callers read files, run commands and query servers; this crate turns
//! their text into keyed values and compares those.
//!
//! - [`parse`]: text → [`Entry`]s (key path, value, `FILE:LINE` where known), by [`Format`]:
//!   `nginx -T` dumps (directives in their block context, includes followed), `key value`
//!   lines as `sshd -T` prints them, `key=value`, INI, JSON and TOML (trees; key order
//!   ignored), PostgreSQL's `pg_settings`, else plain lines. Comments, blank lines and
//!   surrounding whitespace are dropped; repeated keys are kept as a multiset.
//! - [`compare`]: two sides' entries → a [`Comparison`]: per key the values only one side has,
//!   with their sources; rewrites applied to the old side first; differences a glob of
//!   `allow` names are listed apart as allowed, never dropped. Values of keys that look like
//!   secrets are compared but never kept: a [`Value`] of a secret holds no text.

mod nginx;
mod parse;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use parse::detect;

/// The most a side may hold (a command's output, a file or a tree's files together, a
/// server's settings): configuration is small, so more is a misbehaving host. Set
/// `REHOST_MAX_CONFIG_BYTES` to raise it.
pub const MAX_SIDE_BYTES: u64 = 16 << 20;

/// The SQL that reads PostgreSQL's settings as [`Format::Postgres`] parses them.
pub const POSTGRES_SETTINGS_SQL: &str = "SELECT json_build_array(name, setting, unit, source, sourcefile, sourceline)::text FROM pg_settings ORDER BY name";

/// PostgreSQL settings that are per session or necessarily differ between two servers: allowed
/// by default, and listed as allowed with both values, so nothing is hidden.
pub const POSTGRES_EXPECTED: &[&str] = &[
    "application_name",
    "transaction_read_only",
    "transaction_isolation",
    "transaction_deferrable",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "unix_socket_directories",
];

/// How a side's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `nginx -T`: directives in block context.
    Nginx,
    /// `key value` lines (`sshd -T`, sshd_config, many daemons); keys lower-cased.
    Spaced,
    /// `key=value` lines.
    Equals,
    /// INI: `[section]` and `key = value`.
    Ini,
    Json,
    Toml,
    /// PostgreSQL's `pg_settings`, as [`POSTGRES_SETTINGS_SQL`] answers.
    Postgres,
    /// Anything else: the non-comment lines, as a multiset.
    Lines,
}

impl Format {
    pub const ALL: &[Format] = &[
        Format::Nginx,
        Format::Spaced,
        Format::Equals,
        Format::Ini,
        Format::Json,
        Format::Toml,
        Format::Lines,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Nginx => "nginx",
            Format::Spaced => "spaced",
            Format::Equals => "equals",
            Format::Ini => "ini",
            Format::Json => "json",
            Format::Toml => "toml",
            Format::Postgres => "postgres",
            Format::Lines => "lines",
        }
    }

    pub fn parse_name(s: &str) -> Option<Format> {
        Format::ALL.iter().copied().find(|f| f.name() == s)
    }
}

/// One value of a key, with where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// `FILE:LINE`, `default`, or the server's word for it; `None` where the format has no
    /// lines (JSON, TOML).
    pub source: Option<String>,
}

impl Entry {
    pub fn new(key: impl Into<String>, value: &str, source: Option<String>) -> Entry {
        Entry {
            key: key.into(),
            value: value.to_owned(),
            source,
        }
    }
}

/// Parses one text in `format` (detected from `name` and the text when `None`); `name` is
/// the file or command it came from, for sources.
pub fn parse(
    format: Option<Format>,
    name: &str,
    text: &str,
) -> Result<(Format, Vec<Entry>), String> {
    let f = format.unwrap_or_else(|| detect(name, text));
    Ok((f, parse::parse(f, name, text)?))
}

/// The files of a tree, each parsed by its own format (or `format`), keys prefixed with the
/// file's relative path (`conf.d/a.conf: key`); a file present is itself an entry, so a file
/// only one side has is a difference.
pub fn parse_tree(
    format: Option<Format>,
    files: &[(String, String)],
) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        out.push(Entry::new(rel.clone(), "(file)", None));
        let f = format.unwrap_or_else(|| detect(rel, text));
        for e in parse::parse(f, rel, text)? {
            let key = if f == Format::Lines {
                e.key
            } else {
                format!("{rel}: {}", e.key)
            };
            out.push(Entry { key, ..e });
        }
    }
    Ok(out)
}

/// Whether a name (the last part of a key path) names a secret: a password, passphrase,
/// token, key material, credentials. A name of the file or path that holds one does not.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let holder = ["FILE", "PATH", "DIR"].iter().any(|s| upper.ends_with(s));
    // nginx's upstream directives end in `_pass` and name an address, not a password.
    let upstream = [
        "PROXY_PASS",
        "FASTCGI_PASS",
        "UWSGI_PASS",
        "SCGI_PASS",
        "GRPC_PASS",
        "MEMCACHED_PASS",
    ]
    .contains(&upper.as_str());
    !holder
        && !upstream
        && (rehost_plan::is_secret_name(name) || upper.ends_with("PASS") || upper.contains("PASS_"))
}

/// The last part of a key path: `http.server[listen 80].auth_basic` → `auth_basic`.
fn last_part(key: &str) -> &str {
    let tail = key.rsplit(['.', ':', ' ', ']']).next().unwrap_or(key);
    tail.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
}

/// Whether a value is a secret whatever its key says: a line or argument that names one
/// (`Authorization Basic …`, `password=…`), or a URL with a password.
fn is_secret_value(value: &str) -> bool {
    let first = value
        .trim_start_matches(['"', '\''])
        .split(|c: char| c.is_whitespace() || c == '=' || c == ':')
        .next()
        .unwrap_or("");
    if !first.is_empty() && is_secret_name(first) {
        return true;
    }
    value.split_whitespace().any(|w| {
        w.split_once("://").is_some_and(|(_, rest)| {
            let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
            auth.rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
        })
    })
}

fn is_secret(e: &Entry) -> bool {
    is_secret_name(last_part(&e.key)) || is_secret_value(&e.value)
}

/// `*` (any text; within one `/`-separated part when `slash` is false) and `?` (one
/// character).
pub fn wildcard(pattern: &str, text: &str, slash: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // The classic two-pointer match with one backtrack point per star.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) && (p[i] != '?' || slash || t[j] != '/') {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            if !slash && t[sj] == '/' {
                return false;
            }
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

/// A text replacement applied to the old side's keys and values before comparing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    pub from: String,
    pub to: String,
}

impl Rewrite {
    /// `FROM=TO`.
    pub fn parse(s: &str) -> Result<Rewrite, String> {
        match s.split_once('=') {
            Some((from, to)) if !from.is_empty() => Ok(Rewrite {
                from: from.into(),
                to: to.into(),
            }),
            _ => Err(format!(
                "`{s}` is not a rewrite: write FROM=TO (the old side's text FROM becomes TO)"
            )),
        }
    }
}

/// What a comparison is told.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Globs on key paths whose differences are expected.
    pub allow: Vec<String>,
    /// Globs allowed by rehost itself (the server's per-session settings), named as such.
    pub expected: Vec<String>,
    pub rewrite: Vec<Rewrite>,
}

/// One side's value in a difference. A secret's value is never held: `value` is `None` and
/// `secret` true.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A key whose values differ: `old` only on the old side (after rewrites), `new` only on the
/// new one; both when a value changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    /// The key holds a secret: compared, not shown.
    #[serde(default)]
    pub secret: bool,
    /// For an allowed difference: the glob that allowed it, and whether the user or rehost
    /// declared it (`--allow server_name`, or `default: per-session setting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

/// The comparison of two sides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Distinct keys on either side.
    pub keys: usize,
    /// Keys whose values are equal on both sides.
    pub equal: usize,
    pub differences: Vec<Difference>,
    pub allowed: Vec<Difference>,
    /// How many keys hold secrets (compared, never shown).
    pub secrets: usize,
}

impl Comparison {
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

fn rewrite(s: &str, rw: &[Rewrite]) -> String {
    rw.iter()
        .fold(s.to_owned(), |acc, r| acc.replace(&r.from, &r.to))
}

type Side = BTreeMap<String, Vec<(String, Option<String>)>>;

fn group(entries: &[Entry], rw: &[Rewrite]) -> (Side, Vec<String>) {
    let mut m: Side = BTreeMap::new();
    let mut secret = Vec::new();
    for e in entries {
        let key = rewrite(&e.key, rw);
        if is_secret(e) {
            secret.push(key.clone());
        }
        m.entry(key)
            .or_default()
            .push((rewrite(&e.value, rw), e.source.clone()));
    }
    (m, secret)
}

/// Compares `new` against `old` (rewrites applied to `old` first).
pub fn compare(old: &[Entry], new: &[Entry], opts: &Options) -> Comparison {
    let (a, sa) = group(old, &opts.rewrite);
    let (b, sb) = group(new, &[]);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut c = Comparison {
        keys: keys.len(),
        ..Default::default()
    };
    let empty = Vec::new();
    for key in keys {
        let secret = sa.contains(key) || sb.contains(key);
        if secret {
            c.secrets += 1;
        }
        let mut ra: Vec<_> = a.get(key).unwrap_or(&empty).clone();
        let mut rb: Vec<_> = Vec::new();
        for v in b.get(key).unwrap_or(&empty) {
            match ra.iter().position(|x| x.0 == v.0) {
                Some(i) => {
                    ra.remove(i);
                }
                None => rb.push(v.clone()),
            }
        }
        if ra.is_empty() && rb.is_empty() {
            c.equal += 1;
            continue;
        }
        let shown = |(v, source): (String, Option<String>)| Value {
            value: (!secret).then_some(v),
            source,
        };
        let allowed_by = opts
            .allow
            .iter()
            .find(|g| wildcard(g, key, true))
            .cloned()
            .or_else(|| {
                opts.expected
                    .iter()
                    .find(|g| wildcard(g, key, true))
                    .map(|g| format!("default: {g} is per session or necessarily differs"))
            });
        let n = ra.len().max(rb.len());
        let (mut ia, mut ib) = (ra.into_iter(), rb.into_iter());
        for _ in 0..n {
            let d = Difference {
                key: key.clone(),
                old: ia.next().map(shown),
                new: ib.next().map(shown),
                secret,
                allowed_by: allowed_by.clone(),
            };
            if d.allowed_by.is_some() {
                c.allowed.push(d);
            } else {
                c.differences.push(d);
            }
        }
    }
    c
}

fn side_text(v: &Option<Value>, secret: bool) -> String {
    match v {
        None => "(not set)".into(),
        Some(_) if secret => "(secret, not shown)".into(),
        Some(v) => rehost_plan::escape_control(v.value.as_deref().unwrap_or("")),
    }
}

fn source_text(v: &Option<Value>) -> String {
    match v.as_ref().and_then(|v| v.source.as_deref()) {
        Some(s) => format!("  ({})", rehost_plan::escape_control(s)),
        None => String::new(),
    }
}

/// The readable diff: per difference `-` the old value and `+` the new, with their sources;
/// then the allowed ones the same way. Every text from a side is escaped.
pub fn render_human(c: &Comparison, old: &str, new: &str, not_compared: &[String]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "--- {}\n+++ {}",
        rehost_plan::escape_control(old),
        rehost_plan::escape_control(new)
    );
    let one = |s: &mut String, d: &Difference| {
        let _ = writeln!(s, "{}", rehost_plan::escape_control(&d.key));
        if d.secret && d.old.is_some() && d.new.is_some() {
            let _ = writeln!(
                s,
                "  differs (secret, not shown){}{}",
                source_text(&d.old),
                source_text(&d.new)
            );
            return;
        }
        if d.old.is_some() {
            let _ = writeln!(
                s,
                "  - {}{}",
                side_text(&d.old, d.secret),
                source_text(&d.old)
            );
        }
        if d.new.is_some() {
            let _ = writeln!(
                s,
                "  + {}{}",
                side_text(&d.new, d.secret),
                source_text(&d.new)
            );
        }
    };
    for d in &c.differences {
        one(&mut s, d);
    }
    if !c.allowed.is_empty() {
        let _ = writeln!(s, "\nallowed differences (declared expected, not counted):");
        for d in &c.allowed {
            one(&mut s, d);
            if let Some(by) = &d.allowed_by {
                let _ = writeln!(s, "  allowed by {}", rehost_plan::escape_control(by));
            }
        }
    }
    let _ = writeln!(
        s,
        "\n{}: {} keys compared, {} equal, {} differ, {} allowed{}",
        if c.is_equal() { "equal" } else { "DIFFERENT" },
        c.keys,
        c.equal,
        c.differences.len(),
        c.allowed.len(),
        if c.secrets > 0 {
            format!(", {} secret (compared, not shown)", c.secrets)
        } else {
            String::new()
        }
    );
    if !not_compared.is_empty() {
        let _ = writeln!(s, "not compared: {}", not_compared.join("; "));
    }
    s
}
