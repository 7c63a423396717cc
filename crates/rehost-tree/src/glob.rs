//! Exclude patterns, matched against an entry's path relative to the tree root (raw bytes).
//!
//! `*` matches within one path component, `**` across components, `?` one byte that is not `/`,
//! `[abc]`, `[a-z]` and `[!a]` a byte class. A pattern without `/` matches the last component at
//! any depth (`*.tmp`, `cache`); a pattern with `/` is anchored at the root (`var/cache/**`, or
//! `/tmp`, the leading `/` being optional). An excluded directory is excluded with all it holds.

#[cfg(test)]
mod tests;

use crate::TreeError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    text: String,
    pat: Vec<u8>,
    anchored: bool,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, TreeError> {
        let err = |msg: &str| TreeError::Glob {
            pattern: pattern.to_string(),
            msg: msg.into(),
        };
        let trimmed = pattern.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(err("pattern is empty"));
        }
        let anchored = trimmed.contains('/');
        let pat = trimmed.trim_start_matches('/').as_bytes().to_vec();
        // Validate brackets once so matching never has to.
        let mut i = 0;
        while i < pat.len() {
            if pat[i] == b'[' {
                match pat[i + 1..].iter().skip(1).position(|&c| c == b']') {
                    Some(p) => i += p + 2,
                    None => return Err(err("unclosed '['")),
                }
            }
            i += 1;
        }
        Ok(Glob {
            text: pattern.to_string(),
            pat,
            anchored,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does the pattern match this relative path?
    pub fn is_match(&self, path: &[u8]) -> bool {
        if self.anchored {
            matches(&self.pat, path)
        } else {
            let name = match path.iter().rposition(|&c| c == b'/') {
                Some(p) => &path[p + 1..],
                None => path,
            };
            matches(&self.pat, name)
        }
    }
}

/// Any of the patterns matches.
pub fn any_match(globs: &[Glob], path: &[u8]) -> bool {
    globs.iter().any(|g| g.is_match(path))
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        b'*' if p.get(1) == Some(&b'*') => {
            // `**/` may match zero components.
            let rest = &p[2..];
            let rest_after_slash = rest.strip_prefix(b"/");
            if let Some(r) = rest_after_slash
                && matches(r, s)
            {
                return true;
            }
            (0..=s.len()).any(|i| matches(rest, &s[i..]))
        }
        b'*' => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if matches(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == b'/' {
                    break;
                }
            }
            false
        }
        b'?' => !s.is_empty() && s[0] != b'/' && matches(&p[1..], &s[1..]),
        b'[' => {
            if s.is_empty() || s[0] == b'/' {
                return false;
            }
            let mut i = 1;
            let negate = matches!(p.get(1), Some(b'!') | Some(b'^'));
            if negate {
                i += 1;
            }
            let start = i;
            let mut hit = false;
            while i < p.len() && (p[i] != b']' || i == start) {
                if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    hit |= p[i] <= s[0] && s[0] <= p[i + 2];
                    i += 3;
                } else {
                    hit |= p[i] == s[0];
                    i += 1;
                }
            }
            hit != negate && matches(&p[(i + 1).min(p.len())..], &s[1..])
        }
        c => !s.is_empty() && s[0] == c && matches(&p[1..], &s[1..]),
    }
}
