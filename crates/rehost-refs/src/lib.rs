//! Finds the lines of text that mention an address or a name: the clients and configuration
//! that will not follow a migration by themselves (M 2.319: clients whose local configuration
//! holds the server's address or name). No IO: bytes are handed in, a file at a time in pieces
//! of any size ([`FileScan`]), and the lines that mention a needle come out with their numbers.
//!
//! What counts as a mention:
//! - **IPv4** (`10.0.0.1`): the literal, not inside a longer number or word: neither preceded
//!   by a letter, digit, `_` or `.`, nor followed by a letter, digit or `_`, nor by a `.`
//!   followed by one of those (`10.0.0.12`, `110.0.0.1` and `10.0.0.1.5` are other things;
//!   `10.0.0.1:5432`, `10.0.0.1/24` and `[::ffff:10.0.0.1]` are mentions). Also its
//!   IPv4-mapped IPv6 spellings (`::ffff:a00:1`).
//! - **IPv6** (`2001:db8::1`): every textual form of the same address: compressed or not,
//!   leading zeros or not, any case, with an embedded dotted quad (`::ffff:10.0.0.1`), in
//!   brackets or with a zone (`%eth0`). Found by reading each maximal run of hex digits,
//!   colons and dots as an address and comparing the addresses, so a longer address that
//!   merely contains the text (`2001:db8::10`) is not a mention.
//! - **Names** (`db.example.org`): case-insensitively, not part of a longer name: neither
//!   preceded by a letter, digit, `_`, `-` or `.` (`old-db.example.org`, `x.db.example.org`),
//!   nor followed by a letter, digit, `_` or `-`, nor by a `.` and a label
//!   (`db.example.org.au`); a trailing dot (`db.example.org.`) is a mention.
//!
//! Where `grep -w` agrees (letters, digits and `_` as word characters) the lines found are
//! the lines `grep -rnwF` finds; the stricter boundaries above leave out what grep counts for
//! hyphens and dots, and the IPv6 comparison finds spellings a literal search cannot.
//!
//! A file with a NUL byte is binary: it is reported as such and its lines are not given (as
//! `grep -I`). A line longer than [`MAX_LINE`] is searched in pieces that overlap by more than
//! any needle, so nothing is missed or counted twice; the text shown of a line is at most
//! [`SHOWN`] bytes around its first mention.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Bytes of one line kept whole; a longer line is searched in overlapping pieces.
pub const MAX_LINE: usize = 1 << 20;
/// Bytes of a line shown: the window around its first mention.
pub const SHOWN: usize = 240;
/// The longest name searched for (a DNS name's limit).
const MAX_NAME: usize = 253;

/// What to look for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Needle {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// A host or domain name, lowercase, without a trailing dot.
    Name(String),
}

impl Needle {
    /// An address (IPv4 or IPv6, brackets allowed) or a name (letters, digits, `-`, `_`, `.`).
    /// The error says why, not what: the caller names the value (escaped).
    pub fn parse(s: &str) -> Result<Needle, String> {
        let t = s.trim();
        if let Ok(a) = t.parse::<Ipv4Addr>() {
            return Ok(Needle::V4(a));
        }
        let unbracketed = t
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(t);
        if let Ok(a) = unbracketed.parse::<Ipv6Addr>() {
            return Ok(Needle::V6(a));
        }
        let name = t.strip_suffix('.').unwrap_or(t);
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && !name.starts_with(['.', '-'])
            && !name.contains("..")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(
                "neither an IPv4 or IPv6 address nor a host name (letters, digits, `-`, `_` and \
                 dots)"
                    .into(),
            );
        }
        if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(
                "it looks like an IPv4 address but is not one (four numbers 0-255, no leading \
                 zeros)"
                    .into(),
            );
        }
        Ok(Needle::Name(name.to_ascii_lowercase()))
    }
}

impl std::fmt::Display for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Needle::V4(a) => write!(f, "{a}"),
            Needle::V6(a) => write!(f, "{a}"),
            Needle::Name(n) => f.write_str(n),
        }
    }
}

/// One line that mentions a needle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// 1-based.
    pub line: u64,
    /// The indexes (into the matcher's needles) of what the line mentions, ascending.
    pub needles: Vec<u32>,
    /// At most [`SHOWN`] bytes of the line around its first mention, as UTF-8 (invalid bytes
    /// replaced); not escaped: whoever shows it escapes it.
    pub text: String,
}

/// The needles, compiled.
#[derive(Clone, Debug)]
pub struct Matcher {
    needles: Vec<Needle>,
    /// IPv4 and names, case-insensitively; pattern i is needle `literal[i]`.
    ac: Option<AhoCorasick>,
    literal: Vec<u32>,
    /// Addresses compared with each IPv6-looking run: IPv6 needles and IPv4 ones mapped.
    v6: Vec<(Ipv6Addr, u32)>,
    /// The longest literal pattern.
    longest: usize,
}

impl Matcher {
    pub fn new(needles: Vec<Needle>) -> Result<Matcher, String> {
        if needles.is_empty() {
            return Err("nothing to find: give at least one address or name".into());
        }
        let mut patterns = Vec::new();
        let mut literal = Vec::new();
        let mut v6 = Vec::new();
        for (i, n) in needles.iter().enumerate() {
            let i = i as u32;
            match n {
                Needle::V4(a) => {
                    patterns.push(a.to_string());
                    literal.push(i);
                    v6.push((a.to_ipv6_mapped(), i));
                }
                Needle::V6(a) => v6.push((*a, i)),
                Needle::Name(s) => {
                    patterns.push(s.clone());
                    literal.push(i);
                }
            }
        }
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(&patterns)
                    .map_err(|e| format!("the needles could not be compiled: {e}"))?,
            )
        };
        Ok(Matcher {
            needles,
            ac,
            literal,
            v6,
            longest,
        })
    }

    pub fn needles(&self) -> &[Needle] {
        &self.needles
    }

    /// A scan of one file, fed its bytes in order.
    pub fn file(&self) -> FileScan<'_> {
        FileScan {
            m: self,
            carry: Vec::new(),
            carry_cut: false,
            line: 1,
            hits: Vec::new(),
            binary: false,
        }
    }

    /// The mentions in `block` (no newline inside unless `lines`), as (start, needle), in
    /// order of start. `cut_left`/`cut_right`: the block is a piece of a longer line cut there,
    /// so a mention touching that edge is left to the overlapping neighbour piece.
    fn mentions(&self, block: &[u8], cut_left: bool, cut_right: bool, out: &mut Vec<(usize, u32)>) {
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(block) {
                let (s, e) = (m.start(), m.end());
                if (cut_left && s < 2) || (cut_right && e + 2 > block.len()) {
                    continue;
                }
                let needle = self.literal[m.pattern().as_usize()];
                let is_name = matches!(self.needles[needle as usize], Needle::Name(_));
                if bounded(block, s, e, is_name) {
                    out.push((s, needle));
                }
            }
        }
        if !self.v6.is_empty() {
            let mut next = 0;
            for p in memchr::memchr_iter(b':', block) {
                if p < next {
                    continue;
                }
                let mut s = p;
                while s > 0 && is_v6_byte(block[s - 1]) {
                    s -= 1;
                }
                let mut e = p + 1;
                while e < block.len() && is_v6_byte(block[e]) {
                    e += 1;
                }
                next = e;
                if (cut_left && s == 0) || (cut_right && e == block.len()) {
                    continue;
                }
                if let Some((from, addr)) = v6_in(&block[s..e]) {
                    let (a, z) = (s + from, s + from + addr.1);
                    let word = |i: usize| block.get(i).is_some_and(|b| is_word(*b));
                    if (a > 0 && word(a - 1)) || word(z) {
                        continue;
                    }
                    for (want, needle) in &self.v6 {
                        if *want == addr.0 {
                            out.push((a, *needle));
                        }
                    }
                }
            }
        }
        out.sort_unstable();
    }
}

/// The scan of one file.
pub struct FileScan<'m> {
    m: &'m Matcher,
    /// The line read so far without its end, or the overlap of a long line's last piece.
    carry: Vec<u8>,
    /// `carry` is the tail of a longer line already searched up to its overlap.
    carry_cut: bool,
    /// The number of the line `carry` belongs to.
    line: u64,
    hits: Vec<Hit>,
    binary: bool,
}

/// What a file's scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    pub hits: Vec<Hit>,
    /// It holds a NUL byte: not text; no hits are given.
    pub binary: bool,
    /// Its lines (the last one counted also without a newline).
    pub lines: u64,
}

impl FileScan<'_> {
    /// The next bytes of the file. False once the file is known to be binary: read no more.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        if self.binary || memchr::memchr(0, data).is_some() {
            self.binary = true;
            self.hits.clear();
            return false;
        }
        let Some(first_nl) = memchr::memchr(b'\n', data) else {
            self.carry.extend_from_slice(data);
            if self.carry.len() > MAX_LINE {
                self.long_piece();
            }
            return true;
        };
        // The line begun in an earlier piece, completed.
        if self.carry.is_empty() {
            self.block(&data[..first_nl], false, false, self.line);
        } else {
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&data[..first_nl]);
            self.block(&line, self.carry_cut, false, self.line);
            line.clear();
            self.carry = line;
            self.carry_cut = false;
        }
        self.line += 1;
        let rest = &data[first_nl + 1..];
        match memchr::memrchr(b'\n', rest) {
            Some(last) => {
                let whole = &rest[..last];
                self.lines_block(whole, self.line);
                self.line += memchr::memchr_iter(b'\n', whole).count() as u64 + 1;
                self.carry.extend_from_slice(&rest[last + 1..]);
            }
            None => self.carry.extend_from_slice(rest),
        }
        if self.carry.len() > MAX_LINE {
            self.long_piece();
        }
        true
    }

    /// The end of the file.
    pub fn finish(mut self) -> Scanned {
        if self.binary {
            return Scanned {
                hits: Vec::new(),
                binary: true,
                lines: 0,
            };
        }
        let mut lines = self.line - 1;
        if !self.carry.is_empty() || self.carry_cut {
            let carry = std::mem::take(&mut self.carry);
            self.block(&carry, self.carry_cut, false, self.line);
            lines += 1;
        }
        Scanned {
            hits: self.hits,
            binary: false,
            lines,
        }
    }

    /// `carry` is longer than a line is kept: search it as a piece and keep the overlap.
    fn long_piece(&mut self) {
        let carry = std::mem::take(&mut self.carry);
        self.block(&carry, self.carry_cut, true, self.line);
        // Mentions ending within the last `longest + 2` bytes were left to the next piece;
        // those start at most `longest` before that, and need one byte before them.
        let keep = (2 * self.m.longest.max(64) + 8).min(carry.len());
        self.carry = carry[carry.len() - keep..].to_vec();
        self.carry_cut = true;
        // The next piece is cut on the right until a newline ends the line.
    }

    /// One line, or a piece of one cut on the left or the right.
    fn block(&mut self, line: &[u8], cut_left: bool, cut_right: bool, number: u64) {
        let mut found = Vec::new();
        self.m.mentions(line, cut_left, cut_right, &mut found);
        if let Some(&(at, _)) = found.first() {
            let needles = found.iter().map(|(_, n)| *n).collect();
            self.push(number, needles, line, at);
        }
    }

    /// Whole lines (no line end at either edge; newlines inside), the first numbered `first`.
    fn lines_block(&mut self, block: &[u8], first: u64) {
        let mut found = Vec::new();
        self.m.mentions(block, false, false, &mut found);
        let (mut counted_to, mut number) = (0usize, first);
        let mut i = 0;
        while i < found.len() {
            let at = found[i].0;
            number += memchr::memchr_iter(b'\n', &block[counted_to..at]).count() as u64;
            let start = memchr::memrchr(b'\n', &block[..at]).map_or(0, |p| p + 1);
            let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |p| at + p);
            let mut needles = Vec::new();
            while i < found.len() && found[i].0 < end {
                needles.push(found[i].1);
                i += 1;
            }
            self.push(number, needles, &block[start..end], at - start);
            counted_to = at;
        }
    }

    fn push(&mut self, number: u64, mut needles: Vec<u32>, line: &[u8], at: usize) {
        needles.sort_unstable();
        needles.dedup();
        if let Some(last) = self.hits.last_mut()
            && last.line == number
        {
            // A long line's pieces: one hit.
            last.needles.extend(needles);
            last.needles.sort_unstable();
            last.needles.dedup();
            return;
        }
        self.hits.push(Hit {
            line: number,
            needles,
            text: window(line, at),
        });
    }
}

/// At most [`SHOWN`] bytes of `line` around byte `at`, on character boundaries where the line
/// is UTF-8, with `…` where it was cut.
fn window(line: &[u8], at: usize) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() <= SHOWN {
        return String::from_utf8_lossy(line).into_owned();
    }
    let mut start = at.saturating_sub(SHOWN / 3).min(line.len() - SHOWN);
    let mut end = start + SHOWN;
    while start > 0 && (line[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    while end < line.len() && (line[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    let mut s = String::new();
    if start > 0 {
        s.push('…');
    }
    s.push_str(&String::from_utf8_lossy(&line[start..end]));
    if end < line.len() {
        s.push('…');
    }
    s
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_v6_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Whether `block[s..e]` stands alone: see the module's rules.
fn bounded(block: &[u8], s: usize, e: usize, name: bool) -> bool {
    if let Some(&b) = s.checked_sub(1).and_then(|i| block.get(i))
        && (is_word(b) || b == b'.' || (name && b == b'-'))
    {
        return false;
    }
    match block.get(e) {
        None => true,
        Some(&b) if is_word(b) || (name && b == b'-') => false,
        Some(b'.') => !block
            .get(e + 1)
            .is_some_and(|&b| is_word(b) || (name && b == b'-')),
        Some(_) => true,
    }
}

/// The IPv6 address a run of hex digits, colons and dots spells, as (offset in the run,
/// (address, length)): the run itself, or without one leading colon (`ip:fe80::1`) or without
/// trailing dots and one trailing colon (the end of a sentence, a list).
fn v6_in(run: &[u8]) -> Option<(usize, (Ipv6Addr, usize))> {
    if run.len() > 64 || run.iter().filter(|&&b| b == b':').count() < 2 {
        return None;
    }
    let parse = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<Ipv6Addr>().ok();
    let mut from = 0;
    let mut to = run.len();
    if let Some(a) = parse(run) {
        return Some((0, (a, run.len())));
    }
    if run.starts_with(b":") && !run.starts_with(b"::") {
        from = 1;
    }
    while to > from && run[to - 1] == b'.' {
        to -= 1;
    }
    if run[from..to].ends_with(b":") && !run[from..to].ends_with(b"::") {
        to -= 1;
    }
    parse(&run[from..to]).map(|a| (from, (a, to - from)))
}

#[cfg(test)]
mod tests;
