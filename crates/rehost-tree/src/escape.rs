//! The one place rehost escapes untrusted text for a terminal or a text line, and the other
//! encodings of untrusted names: `text` (strings: messages, plan text, remote output, database
//! names and values) and `display` (bytes: paths, lossless), both built on one character class
//! (`is_invisible` and the controls); for the manifest's space-separated tokens
//! (`encode_token` / `decode_token`, lossless for any bytes), for b3sum's check lines, and hex.
//!
//! It is here, in the lowest crate (rehost-tree depends on no other rehost crate), so that
//! every crate that writes text can use it with dependencies pointing one way: rehost-plan
//! re-exports `text` as `escape_control` (the binary's `term::escape`), rehost-db uses it for its
//! reports. The binary's `tidy.rs` fails if another crate grows an escaper of its own.

#[cfg(test)]
mod tests;

/// Escapes text for a terminal or a line of text: control characters (C0 but tab, DEL, C1),
/// the bidirectional-text controls (U+061C, U+200E/U+200F, U+202A–U+202E, U+2066–U+2069) and the
/// other invisible characters of `is_invisible` become `\n`, `\u{1b}`, `\u{202e}`, so untrusted
/// text — plan lines, remote output, ids, error messages, database values — cannot move the
/// cursor, recolour or clear the terminal, or make a line read in another order than its bytes.
pub fn text(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t') || is_invisible(c)
}

/// Escapes raw bytes for a terminal: printable UTF-8 is kept, control characters, invalid bytes,
/// bidirectional overrides and other invisible characters become `\n`, `\t`, `\xHH` or `\u{..}`,
/// and the backslash is doubled. The result never moves the cursor or changes colours.
pub fn display(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if is_invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Characters that change how a line looks without showing themselves: C1 controls, the
/// bidirectional-text controls, zero-width and separator characters, the BOM.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f            // C1 controls
        | 0xad                 // soft hyphen
        | 0x061c               // Arabic letter mark (bidi)
        | 0x200b..=0x200f      // zero width, LRM/RLM
        | 0x2028..=0x202e      // separators, bidi embeddings/overrides
        | 0x2060..=0x2069      // word joiner, bidi isolates
        | 0xfeff               // BOM
        | 0xfff9..=0xfffb)
}

/// Encodes bytes as one manifest token: no spaces, no control bytes, no `,` or `=` (which
/// separate xattrs), valid UTF-8 kept readable, everything else as `\xHH`. The empty string is
/// `\0`-free and written as `\e`. Lossless: `decode_token(&encode_token(b)) == b`.
pub fn encode_token(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "\\e".to_string();
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                let b = c as u8;
                if b <= b' ' || b == 0x7f || b == b'\\' || b == b',' || b == b'=' || b == b'#' {
                    out.push_str(&format!("\\x{b:02x}"));
                } else {
                    out.push(c);
                }
            } else if is_invisible(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Inverse of [`encode_token`]. Returns `None` on a malformed escape.
pub fn decode_token(s: &str) -> Option<Vec<u8>> {
    if s == "\\e" {
        return Some(Vec::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) != Some(&b'x') || i + 4 > b.len() {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 2..i + 4]).ok()?, 16).ok()?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The b3sum `--check` line for a digest and a path, or `None` when b3sum cannot express the
/// path (it must be UTF-8; b3sum escapes only `\` and newline, and then prefixes the line with
/// `\`). Carriage returns are refused too, since b3sum strips them when reading lines.
pub fn b3sum_line(hex: &str, path: &[u8]) -> Option<String> {
    let p = std::str::from_utf8(path).ok()?;
    if p.contains('\r') || p.is_empty() {
        return None;
    }
    if p.contains('\\') || p.contains('\n') {
        Some(format!(
            "\\{hex}  {}",
            p.replace('\\', "\\\\").replace('\n', "\\n")
        ))
    } else {
        Some(format!("{hex}  {p}"))
    }
}

/// Parses a b3sum check line into (hex digest, path bytes).
pub fn parse_b3sum_line(line: &str) -> Option<(&str, Vec<u8>)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (hex, path) = line.split_once("  ")?;
    if hex.len() != 64 {
        return None;
    }
    if !escaped {
        return Some((hex, path.as_bytes().to_vec()));
    }
    let mut out = Vec::with_capacity(path.len());
    let mut it = path.bytes();
    while let Some(c) = it.next() {
        if c == b'\\' {
            match it.next()? {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some((hex, out))
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
