//! Redacting credentials from command lines that must be shown (the concept, `check`, a host
//! error that names the program). Commands are otherwise never repeated: a failed step is named
//! by its id.
//!
//! Two shapes are redacted: `NAME=value` words whose NAME looks like a credential
//! (`PGPASSWORD=…`, `MYSQL_PWD=…`, `--password=…`, `api_token=…`), and the password of a URL's
//! userinfo (`postgres://user:pw@host`). The value becomes `***`.

/// Substrings of a variable or option name (compared case-insensitively) that mark its value
/// as a credential.
const SECRET_NAMES: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "_PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
];

/// Whether a `NAME` of `NAME=value` names a credential.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAMES.iter().any(|s| upper.contains(s))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The command line with credential values replaced by `***`: `PGPASSWORD=hunter2 pg_dump`
/// becomes `PGPASSWORD=*** pg_dump`, `postgres://u:pw@h/db` becomes `postgres://u:***@h/db`.
pub fn redact(command: &str) -> String {
    let chars: Vec<char> = command.chars().collect();
    let mut out = String::with_capacity(command.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // The start of a word-like name: not preceded by a name character.
        if is_name_char(c) && (i == 0 || !is_name_char(chars[i - 1])) {
            let start = i;
            let mut j = i;
            while j < chars.len() && is_name_char(chars[j]) {
                j += 1;
            }
            let name: String = chars[start..j].iter().collect();
            if j < chars.len() && chars[j] == '=' && is_secret_name(name.trim_start_matches('-')) {
                out.push_str(&name);
                out.push_str("=***");
                i = skip_value(&chars, j + 1);
                continue;
            }
            // A URL: scheme://user:password@host
            if j + 2 < chars.len() && chars[j] == ':' && chars[j + 1] == '/' && chars[j + 2] == '/'
            {
                out.push_str(&name);
                out.push_str("://");
                i = redact_authority(&chars, j + 3, &mut out);
                continue;
            }
            out.push_str(&name);
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The end of a value starting at `i`: up to unquoted whitespace, quotes kept together.
fn skip_value(chars: &[char], mut i: usize) -> usize {
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) if c == '\\' => i += 1,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '\\' => i += 1,
            None if c.is_whitespace() || c == ';' || c == '&' || c == '|' => break,
            None => {}
        }
        i += 1;
    }
    i.min(chars.len())
}

/// Copies a URL's authority starting at `i` into `out` with the userinfo password redacted;
/// returns where the authority ends.
fn redact_authority(chars: &[char], i: usize, out: &mut String) -> usize {
    let end = (i..chars.len())
        .find(|&k| {
            let c = chars[k];
            c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"'
        })
        .unwrap_or(chars.len());
    let authority = &chars[i..end];
    match authority.iter().rposition(|&c| c == '@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.iter().position(|&c| c == ':') {
                Some(colon) => {
                    out.extend(&userinfo[..=colon]);
                    out.push_str("***");
                }
                None => out.extend(userinfo),
            }
            out.extend(&authority[at..]);
        }
        None => out.extend(authority),
    }
    end
}
