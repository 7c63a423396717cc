//! Exclude patterns, with rsync's meaning: the same strings go to rsync (`--exclude=`) and to
//! rehost's own walk, so what rsync leaves out is exactly what verification leaves out.
//!
//! Matched against an entry's path relative to the tree root (raw bytes), as rsync's exclude
//! rules (rsync(1), "PATTERN MATCHING RULES"; `exclude.c` and `wildmatch.c`):
//! - a pattern starting with `/` is anchored at the root (`/tmp` is only the top-level `tmp`);
//! - a pattern ending with `/` matches directories only (`cache/`);
//! - a pattern without `/` (the trailing one aside) and without `**` matches the last path
//!   component, at any depth (`*.tmp`, `cache`);
//! - any other unanchored pattern matches the end of the path at a `/` boundary
//!   (`var/cache` matches `var/cache` and `x/var/cache`, not `xvar/cache`);
//! - `*` matches within a component, `**` anything including `/` (`a/**/b` needs at least one
//!   directory in between, as in rsync, but a leading `**/` may match none), `?` one byte that
//!   is not `/`, `[abc]`, `[a-z]`, `[!a]`, `[^a]` and `[[:alpha:]]` a byte class, `\x` the byte
//!   `x` itself (in patterns with a wildcard);
//! - `dir/***` matches `dir` itself and everything in it.
//!
//! The matcher is a port of rsync's `rule_matches` and `dowild`, kept close to the original so
//! that the differential test against rsync (`tests/it/excludes.rs`) stays meaningful.
//!
//! An excluded directory is excluded with all it holds (rsync does not descend into it):
//! [`excluded_by`] asks that of a path the plan names (a key under a data set's root).
//!
//! A crate of its own, with no IO and no dependency on the tree crate, so that both the walk
//! (`rehost-tree`) and the plan's lint (`rehost-plan`, which does no IO) use this one matcher.

#[cfg(test)]
mod tests;

/// A pattern that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parse exclude pattern {pattern:?}: {msg}")]
pub struct GlobError {
    pub pattern: String,
    pub msg: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    text: String,
    /// The pattern without its leading `/` and one trailing `/`.
    pat: Vec<u8>,
    anchored: bool,
    dir_only: bool,
    /// Has any of `*?[`: matched with wildmatch, else compared literally.
    wild: bool,
    /// No `/` and no `**`: matched against the last component only.
    name_only: bool,
    /// Starts with `**`: may match from before the first component.
    wild2_prefix: bool,
    /// Has `**` and ends with `***`: a directory matches as `dir/`.
    wild3_suffix: bool,
    /// rsync's `slash_handling`: match the last N components (N > 0), at the start (0), or at
    /// the start or after any `/` (-1).
    anchor: i32,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let err = |msg: &str| GlobError {
            pattern: pattern.to_string(),
            msg: msg.into(),
        };
        let mut p = pattern.as_bytes();
        let mut dir_only = false;
        if p.len() > 1 && p.ends_with(b"/") {
            p = &p[..p.len() - 1];
            dir_only = true;
        }
        let slashes = p.iter().filter(|&&b| b == b'/').count();
        let wild = p.iter().any(|b| b"*?[".contains(b));
        let wild2 = wild && p.windows(2).any(|w| w == b"**");
        let wild2_prefix = wild2 && p.starts_with(b"**");
        let wild3_suffix = wild2 && p.ends_with(b"***");
        let anchored = p.starts_with(b"/");
        let pat = if anchored { &p[1..] } else { p };
        if pat.is_empty() {
            return Err(err("pattern is empty"));
        }
        let anchor = if !anchored && slashes > 0 && !wild2 {
            slashes as i32 + 1
        } else if !anchored && !wild2_prefix && wild2 {
            -1
        } else {
            0
        };
        if wild {
            // Validate brackets once, as the matcher reads them.
            let mut i = 0;
            while i < pat.len() {
                match pat[i] {
                    b'\\' => i += 1,
                    b'[' => match class(pat, i, 0) {
                        Some((_, end)) => i = end,
                        None => return Err(err("unclosed '['")),
                    },
                    _ => {}
                }
                i += 1;
            }
        }
        Ok(Glob {
            text: pattern.to_string(),
            pat: pat.to_vec(),
            anchored,
            dir_only,
            wild,
            name_only: slashes == 0 && !wild2,
            wild2_prefix,
            wild3_suffix,
            anchor,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches directories only (a trailing `/`), so that a walk that
    /// does not know an entry's type must find out before asking.
    pub fn dir_only(&self) -> bool {
        self.dir_only
    }

    /// Does the pattern match this relative path (`is_dir`: the entry is a directory)? As
    /// rsync's `rule_matches`.
    pub fn is_match(&self, path: &[u8], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        let mut text = Vec::with_capacity(path.len() + 2);
        if self.name_only {
            let name = match path.iter().rposition(|&c| c == b'/') {
                Some(p) => &path[p + 1..],
                None => path,
            };
            text.extend_from_slice(name);
        } else {
            if self.wild2_prefix {
                // Lets `**/x` match `x` at the top.
                text.push(b'/');
            }
            text.extend_from_slice(path);
        }
        if is_dir && self.wild3_suffix {
            // Lets `dir/***` match `dir` itself.
            text.push(b'/');
        }
        if self.wild {
            return wildmatch(&self.pat, &text, self.anchor);
        }
        if self.anchored || self.anchor == 0 && self.name_only {
            return text == self.pat;
        }
        // A literal floats: it matches the end of the path at a `/` boundary.
        text.ends_with(&self.pat)
            && (text.len() == self.pat.len() || text[text.len() - self.pat.len() - 1] == b'/')
    }
}

/// Any of the patterns matches.
pub fn any_match(globs: &[Glob], path: &[u8], is_dir: bool) -> bool {
    globs.iter().any(|g| g.is_match(path, is_dir))
}

/// The pattern that leaves `rel` (a path relative to the tree root, `/`-separated) out of a
/// walk, if any: a pattern matching one of its parent directories (a walk does not descend
/// into it), or the path itself. `is_dir`: what the path is, `None` when not known (a path
/// named in a plan): then a pattern that matches it as either counts, for a pattern that
/// might leave it out must be named.
pub fn excluded_by<'g>(globs: &'g [Glob], rel: &[u8], is_dir: Option<bool>) -> Option<&'g Glob> {
    let rel = rel.strip_suffix(b"/").unwrap_or(rel);
    let rel = rel.strip_prefix(b"/").unwrap_or(rel);
    if rel.is_empty() {
        return None;
    }
    for (i, _) in rel.iter().enumerate().filter(|(_, b)| **b == b'/') {
        if let Some(g) = globs.iter().find(|g| g.is_match(&rel[..i], true)) {
            return Some(g);
        }
    }
    let kinds: &[bool] = match is_dir {
        Some(d) => &[d][..],
        None => &[false, true],
    };
    globs
        .iter()
        .find(|g| kinds.iter().any(|&d| g.is_match(rel, d)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum M {
    True,
    False,
    AbortAll,
    AbortToStarstar,
}

/// rsync's `wildmatch_array` over one text: `anchor` as [`Glob::anchor`].
fn wildmatch(p: &[u8], text: &[u8], anchor: i32) -> bool {
    let start = if anchor > 0 {
        match trailing_elements(text, anchor as usize) {
            Some(s) => s,
            None => return false,
        }
    } else {
        0
    };
    let mut matched = dowild(p, &text[start..]);
    if matched != M::True && anchor < 0 && matched != M::AbortAll {
        let mut i = start;
        loop {
            if i >= text.len() {
                return false;
            }
            let c = text[i];
            i += 1;
            if c == b'/' {
                matched = dowild(p, &text[i..]);
                if matched != M::False && matched != M::AbortToStarstar {
                    break;
                }
            }
        }
    }
    matched == M::True
}

/// Where the last `n` `/`-separated elements of `text` start, if it has that many.
fn trailing_elements(text: &[u8], mut n: usize) -> Option<usize> {
    for i in (0..text.len()).rev() {
        if text[i] == b'/' {
            n -= 1;
            if n == 0 {
                return Some(i + 1);
            }
        }
    }
    (n == 1).then_some(0)
}

/// A class opened by `p[open] == '['`, as rsync's wildmatch reads it, tested against `t`:
/// whether `t` is in it (before the negation is applied: the caller gets the final answer)
/// and the index of its closing `]`. `None`: unterminated or malformed (rsync: no match).
fn class(p: &[u8], open: usize, t: u8) -> Option<(bool, usize)> {
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let mut i = open + 1;
    let mut pc = at(i);
    if pc == b'^' {
        pc = b'!';
    }
    let negate = pc == b'!';
    if negate {
        i += 1;
        pc = at(i);
    }
    let mut prev = 0u8;
    let mut hit = false;
    loop {
        if pc == 0 {
            return None;
        }
        if pc == b'\\' {
            i += 1;
            pc = at(i);
            if pc == 0 {
                return None;
            }
            hit |= t == pc;
        } else if pc == b'-' && prev != 0 && at(i + 1) != 0 && at(i + 1) != b']' {
            i += 1;
            pc = at(i);
            if pc == b'\\' {
                i += 1;
                pc = at(i);
                if pc == 0 {
                    return None;
                }
            }
            hit |= prev <= t && t <= pc;
            pc = 0;
        } else if pc == b'[' && at(i + 1) == b':' {
            let s = i + 2;
            let mut j = s;
            while at(j) != 0 && at(j) != b']' {
                j += 1;
            }
            if at(j) == 0 {
                return None;
            }
            if j < s + 1 || p[j - 1] != b':' {
                // No ":]": a plain `[` member.
                hit |= t == b'[';
            } else {
                hit |= named_class(&p[s..j - 1], t)?;
                i = j;
                pc = 0;
            }
        } else {
            hit |= t == pc;
        }
        prev = pc;
        i += 1;
        pc = at(i);
        if pc == b']' {
            return Some((hit != negate, i));
        }
    }
}

fn named_class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// rsync's `dowild`: `*` stops at `/`, `**` does not (no special case for `**/`), `?` is any
/// byte but `/`, `\x` is `x`.
fn dowild(p: &[u8], text: &[u8]) -> M {
    let (mut pi, mut ti) = (0, 0);
    while pi < p.len() {
        let pc = p[pi];
        if ti >= text.len() && pc != b'*' {
            return M::AbortAll;
        }
        let tc = text.get(ti).copied().unwrap_or(0);
        match pc {
            b'\\' => {
                pi += 1;
                if p.get(pi).copied().unwrap_or(0) != tc {
                    return M::False;
                }
            }
            b'?' => {
                if tc == b'/' {
                    return M::False;
                }
            }
            b'*' => {
                pi += 1;
                let special = p.get(pi) == Some(&b'*');
                while p.get(pi) == Some(&b'*') {
                    pi += 1;
                }
                if pi == p.len() {
                    // A trailing `**` matches everything, a trailing `*` no further `/`.
                    if !special && text[ti..].contains(&b'/') {
                        return M::False;
                    }
                    return M::True;
                }
                while ti < text.len() {
                    let m = dowild(&p[pi..], &text[ti..]);
                    if m != M::False {
                        if !special || m != M::AbortToStarstar {
                            return m;
                        }
                    } else if !special && text[ti] == b'/' {
                        return M::AbortToStarstar;
                    }
                    ti += 1;
                }
                return M::AbortAll;
            }
            b'[' => match class(p, pi, tc) {
                None => return M::AbortAll,
                Some((hit, end)) => {
                    if !hit || tc == b'/' {
                        return M::False;
                    }
                    pi = end;
                }
            },
            _ => {
                if tc != pc {
                    return M::False;
                }
            }
        }
        pi += 1;
        ti += 1;
    }
    if ti < text.len() { M::False } else { M::True }
}
