//! Writing rehost's documents where the operator says (`rehost report -o DIR`, `rehost concept
//! -o FILE`). rehost often runs as root, and another local user may have planted a symlink at
//! the name or made the directory: files are written through
//! `rehost_tree::private::OutputDir` — the directory opened without following a symlink and
//! refused when another user could replace what lands in it, each file through a random
//! temporary name renamed into place, mode 0600 unless `--mode` says otherwise
//! (docs/security.md, "State on disk").

use rehost_tree::private::{OutputDir, PrivateError};
use std::ffi::OsStr;
use std::path::Path;

/// `--mode`: an octal file mode such as `0644` or `640`, permission bits only.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(format!(
            "`{s}` is not an octal file mode such as 0600 or 0644"
        ));
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|e| e.to_string())?;
    if mode > 0o777 {
        return Err(format!(
            "{mode:04o} sets the setuid, setgid or sticky bit: a document needs permission bits only (such as 0600 or 0644)"
        ));
    }
    Ok(mode)
}

/// Writes each `(name, bytes)` into the directory `dir` (created 0700 if missing and
/// `create`), each file atomically with `mode`. The error is a whole message for
/// `term::error`: what failed, why, and what to do.
pub fn write_files(
    dir: &Path,
    create: bool,
    files: &[(&OsStr, &[u8])],
    mode: u32,
) -> Result<(), String> {
    let out = OutputDir::open(dir, create).map_err(|e| refused(dir, &e))?;
    for (name, bytes) in files {
        write_one(&out, dir, name, mode, &mut |w| w.write_all(bytes))?;
    }
    Ok(())
}

/// [`write_files`] for many files (`fleet report`: a report per server): written by
/// `threads` threads at once. Each file is fsynced as it is written, and a disk commits the
/// fsyncs that wait together at once, so the time is the fsyncs' latency divided among the
/// threads, not added up. The first error is returned.
pub fn write_many(
    dir: &Path,
    files: &[(&OsStr, &[u8])],
    mode: u32,
    threads: usize,
) -> Result<(), String> {
    use rayon::prelude::*;
    let out = OutputDir::open(dir, true).map_err(|e| refused(dir, &e))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| {
            format!(
                "failed to start {threads} threads to write into {}: {e}",
                dir.display()
            )
        })?;
    pool.install(|| {
        files.par_iter().try_for_each(|(name, bytes)| {
            write_one(&out, dir, name, mode, &mut |w| w.write_all(bytes))
        })
    })
}

/// One file into an opened output directory, streamed by `write`.
fn write_one(
    out: &OutputDir,
    dir: &Path,
    name: &OsStr,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), String> {
    out.write_with(name, mode, write).map_err(|e| match e {
            PrivateError::Io { ref source, .. }
                if source.raw_os_error() == Some(libc::EPERM)
                    || source.raw_os_error() == Some(libc::EACCES) =>
            {
                format!(
                    "failed to write {}: {e}; if another user's file or link is in the way (in a sticky directory), remove it or choose another directory",
                    dir.join(name).display()
                )
            }
            e => format!("failed to write {}: {e}", dir.join(name).display()),
        })
}

/// Writes `bytes` to the file `path` as [`write_files`] does.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    write_file_with(path, mode, &mut |w| w.write_all(bytes))
}

/// [`write_file`] with the content streamed by `write` (`rehost manifest -o`: a manifest of
/// millions of entries is not held twice).
pub fn write_file_with(
    path: &Path,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), String> {
    let name = path
        .file_name()
        .filter(|_| !path.as_os_str().as_encoded_bytes().ends_with(b"/"))
        .ok_or_else(|| {
            format!(
                "failed to write {}: not a file name; give the file to write, such as concept.md",
                path.display()
            )
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let out = OutputDir::open(dir, false).map_err(|e| refused(dir, &e))?;
    write_one(&out, dir, name, mode, write)
}

/// Why a directory was refused, and what to do about it.
fn refused(dir: &Path, e: &PrivateError) -> String {
    let d = dir.display();
    let what = match e {
        PrivateError::Symlink { .. } => format!(
            "rehost does not write through a symlink (one planted there would redirect root's write to any file): give the directory's real path (`realpath {d}`)"
        ),
        PrivateError::Owner { .. } => format!(
            "another user could replace the files written there: choose a directory of your own (or root's), or `chown` {d} to the user running rehost"
        ),
        PrivateError::Writable { .. } => format!(
            "another user could replace the files written there: choose a directory only you can write, or make this one so (`chmod go-w {d}`, or `chmod +t {d}` for a shared directory of yours)"
        ),
        PrivateError::NotDir { .. } => "give a directory".to_owned(),
        PrivateError::NotFile { .. } | PrivateError::Io { .. } => String::new(),
    };
    if what.is_empty() {
        format!("failed to write into {d}: {e}")
    } else {
        format!("refusing to write into {d}: {e}; {what}")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_mode;

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o640"), Ok(0o640));
        assert!(parse_mode("0888").is_err());
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("rw-r--r--").is_err());
        assert!(parse_mode("").is_err());
    }
}
