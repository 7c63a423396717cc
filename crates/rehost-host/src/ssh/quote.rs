//! Quoting for the remote shell. `ssh` joins its command arguments with spaces and hands the
//! string to the user's login shell on the host, so each argument is wrapped in single quotes
//! (inside which POSIX sh interprets nothing) and each `'` becomes `'\''`. Bytes pass through
//! unchanged, so non-UTF-8 arguments arrive as they were.

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
