//! The one place words are quoted for something that splits a command line: the tidy test
//! (`crates/rehost/tests/it/tidy.rs`) fails if another quoter appears elsewhere.
//!
//! For the remote shell: `ssh` joins its command arguments with spaces and hands the string to
//! the user's login shell on the host, so each argument is wrapped in single quotes (inside
//! which POSIX sh interprets nothing) and each `'` becomes `'\''`. Bytes pass through
//! unchanged, so non-UTF-8 arguments arrive as they were.
//!
//! For rsync's `-e`: rsync splits that string itself (no shell), on spaces, honouring quotes;
//! inside single quotes a doubled `''` stands for one `'`, and a backslash is no escape. A word
//! quoted for sh is not one for rsync there when it holds a `'`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One argument, quoted for POSIX sh.
pub fn quote(arg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len() + 2);
    out.push(b'\'');
    for &b in arg {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// A word for a POSIX sh command line, as [`quote`], for text.
pub fn sh_quoted(word: &str) -> String {
    String::from_utf8(quote(word.as_bytes())).expect("quoting keeps UTF-8")
}

/// A word for a command line a person reads or types: bare where it holds only letters,
/// digits and `/._-+:@` (nothing sh treats specially), else as [`sh_quoted`].
pub fn sh_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        word.to_owned()
    } else {
        sh_quoted(word)
    }
}

/// A word of rsync's `-e` command, which rsync splits itself (see the module's docs): bare
/// where it holds only letters, digits and `-_./=@:`, else in single quotes with each `'`
/// doubled.
pub fn rsync_e_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=@:".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "''"))
    }
}

/// An argument vector as one remote command line that the remote shell splits back into
/// exactly these arguments.
pub fn command_line<S: AsRef<OsStr>>(argv: &[S]) -> OsString {
    let mut out = Vec::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&quote(a.as_ref().as_bytes()));
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests;
