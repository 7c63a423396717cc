//! What a major-version upgrade (or a dump and restore) changes by design, and so is not a
//! difference: the spelling of an encoding (`UTF8`, `utf-8`) or of a locale's code set
//! (`C.UTF-8`, `C.utf8`), the layout of a definition the server prints back (whitespace, a
//! final semicolon). Everything else that differs is a real difference: another collation
//! (`C` and `en_US.utf8` sort differently), another column type, another index definition.

/// An encoding name with case, `-` and `_` ignored: `UTF8` = `utf-8`.
pub fn encoding(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_uppercase)
        .collect()
}

/// A locale name with its code set spelled one way: `en_US.UTF-8` = `en_US.utf8`,
/// `POSIX` = `C`. The language and territory are kept as written: they decide sort order.
pub fn locale(s: &str) -> String {
    let s = s.trim();
    if s.eq_ignore_ascii_case("posix") || s == "C" {
        return "C".into();
    }
    let (base, modifier) = match s.split_once('@') {
        Some((b, m)) => (b, Some(m)),
        None => (s, None),
    };
    let mut out = match base.split_once('.') {
        Some((lang, codeset)) => format!("{lang}.{}", encoding(codeset).to_lowercase()),
        None => base.to_owned(),
    };
    if let Some(m) = modifier {
        out.push('@');
        out.push_str(m);
    }
    out
}

/// A definition as the server prints it, with runs of whitespace made one space, outside
/// quoted strings and identifiers, and a final `;` dropped.
pub fn definition(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    let mut space = false;
    for c in s.trim().chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => space = true,
            None => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    out
}
