//! Copying a tree: the built-in transfer for hosts without rsync, and the rsync command line for
//! the `sync` step kind.
//!
//! The built-in transfer walks both trees (hashing both, in one pool), then makes the
//! destination match the source: deletes what the source lacks (deepest first), creates or
//! replaces entries whose type or content differ, re-creates hard links, and sets owner, xattrs
//! (so ACLs), mode and mtime where they differ, directories last and deepest first. A file whose
//! BLAKE3 already matches is not copied, and metadata already equal is not touched (so its
//! ctime does not move and the next incremental verification trusts it). New content is written
//! to a temporary name in the same directory and renamed into place. Paths are handled as
//! absolute paths, so entries deeper than PATH_MAX (4096 bytes) fail with ENAMETOOLONG and are
//! recorded in the report's errors.

#[cfg(test)]
mod tests;

use crate::TreeError;
use crate::manifest::{Entry, Kind, LINK_NONE, Manifest, State};
use crate::walk::{Counts, Progress, WalkOptions, walk_many};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Excludes (left alone on both sides) and reader threads.
    pub walk: WalkOptions,
    /// Remove destination entries the source does not have (rsync's `--delete`). Default true.
    pub delete: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            walk: WalkOptions::default(),
            delete: true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransferReport {
    /// Entries created on the destination (including replaced ones).
    pub created: u64,
    /// Entries whose metadata was updated in place.
    pub updated: u64,
    pub deleted: u64,
    /// Entries already equal: nothing done.
    pub unchanged: u64,
    pub bytes_copied: u64,
    /// Entries that could not be transferred (source unreadable or changing, or a failed
    /// operation), with the reason. Non-empty means the transfer is incomplete.
    pub errors: Vec<(Box<[u8]>, String)>,
}

/// Makes `dst` a copy of `src`. Per-entry failures are recorded in the report, not returned.
pub fn transfer(
    src: &Path,
    dst: &Path,
    opts: &TransferOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<TransferReport, TreeError> {
    std::fs::create_dir_all(dst).map_err(|e| TreeError::transfer(dst, e))?;
    let mut ms = walk_many(&[(src, None), (dst, None)], &opts.walk, progress, cancel)?;
    let md = ms.pop().expect("two manifests");
    let msrc = ms.pop().expect("two manifests");
    let mut t = Transfer {
        src,
        dst,
        rep: TransferReport::default(),
        start: Instant::now(),
        done: Counts::default(),
    };

    if opts.delete {
        // Deepest first: reverse path order puts children before their parent.
        for d in md.entries.iter().rev() {
            if d.path.is_empty() || msrc.find(&d.path).is_some() {
                continue;
            }
            if cancel.load(Relaxed) {
                return Err(TreeError::Cancelled);
            }
            match remove(&t.dpath(&d.path), d.kind) {
                Ok(()) => t.rep.deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => t.rep.deleted += 1,
                Err(e) => t.error(&d.path, e),
            }
        }
    }
    let mut dgroups: std::collections::HashMap<u32, Vec<&[u8]>> = Default::default();
    for e in &md.entries {
        if e.link != LINK_NONE {
            dgroups.entry(e.link).or_default().push(&e.path);
        }
    }
    let mut dirs = Vec::new();
    for (i, e) in msrc.entries.iter().enumerate() {
        if cancel.load(Relaxed) {
            return Err(TreeError::Cancelled);
        }
        if e.state != State::Ok {
            t.rep
                .errors
                .push((e.path.clone(), format!("source {}", e.state.describe())));
            continue;
        }
        let d = md.find(&e.path).map(|j| &md.entries[j]);
        let r = t.entry(&msrc, &dgroups, i, e, d);
        if let Err(err) = r {
            t.error(&e.path, err);
            continue;
        }
        if e.kind == Kind::Dir {
            dirs.push((e, d));
        }
        t.done.entries += 1;
        if t.done.entries.is_multiple_of(1024) {
            progress(Progress {
                sides: [t.done, Counts::default()],
                elapsed: t.start.elapsed(),
            });
        }
    }
    // Directory metadata last (creating children moves their mtime), deepest first.
    for (e, d) in dirs.into_iter().rev() {
        let fresh = d.is_none_or(|d| d.kind != Kind::Dir);
        match t.metadata(e, if fresh { None } else { d }) {
            Ok(changed) => {
                if !fresh && changed {
                    t.rep.updated += 1;
                }
            }
            Err(err) => t.error(&e.path, err),
        }
    }
    progress(Progress {
        sides: [t.done, Counts::default()],
        elapsed: t.start.elapsed(),
    });
    Ok(t.rep)
}

struct Transfer<'a> {
    src: &'a Path,
    dst: &'a Path,
    rep: TransferReport,
    start: Instant,
    done: Counts,
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn remove(p: &Path, kind: Kind) -> io::Result<()> {
    if kind == Kind::Dir {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
}

impl Transfer<'_> {
    fn spath(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.src.to_path_buf()
        } else {
            self.src.join(OsStr::from_bytes(rel))
        }
    }
    fn dpath(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.dst.to_path_buf()
        } else {
            self.dst.join(OsStr::from_bytes(rel))
        }
    }

    fn error(&mut self, rel: &[u8], e: io::Error) {
        self.rep.errors.push((rel.into(), e.to_string()));
    }

    /// Creates or fixes one non-directory-metadata aspect of an entry.
    fn entry(
        &mut self,
        m: &Manifest,
        dgroups: &std::collections::HashMap<u32, Vec<&[u8]>>,
        i: usize,
        e: &Entry,
        d: Option<&Entry>,
    ) -> io::Result<()> {
        let dp = self.dpath(&e.path);
        // Different type on the destination: remove it first.
        let d = match d {
            Some(d) if d.kind != e.kind || d.state != State::Ok => {
                remove(&dp, d.kind)?;
                None
            }
            d => d,
        };
        if e.kind == Kind::Dir {
            if d.is_none() {
                std::fs::create_dir(&dp)?;
                self.rep.created += 1;
            }
            return Ok(()); // metadata at the end
        }
        // Second and later members of a hard-link group: link to the first one's copy.
        if e.link != LINK_NONE && e.link as usize != i {
            let first = self.dpath(&m.entries[e.link as usize].path);
            use std::os::unix::fs::MetadataExt;
            let want = std::fs::symlink_metadata(&first)?;
            if let Ok(have) = std::fs::symlink_metadata(&dp) {
                if have.ino() == want.ino() && have.dev() == want.dev() {
                    self.rep.unchanged += 1;
                    return Ok(());
                }
                std::fs::remove_file(&dp)?;
            }
            std::fs::hard_link(&first, &dp)?;
            self.rep.created += 1;
            return Ok(());
        }
        let same = match (e.kind, d) {
            (_, None) => false,
            (Kind::File, Some(d)) => {
                // Content equal, and not hard-linked on the destination to anything the source
                // does not link it to (else copy, which breaks the wrong link).
                let links_ok = d.link == LINK_NONE
                    || (e.link != LINK_NONE
                        && dgroups[&d.link]
                            .iter()
                            .all(|p| m.find(p).is_some_and(|k| m.entries[k].link == e.link)));
                d.size == e.size && d.digest.is_some() && d.digest == e.digest && links_ok
            }
            (Kind::Symlink, Some(d)) => d.target == e.target,
            (Kind::Block | Kind::Char, Some(d)) => d.rdev == e.rdev,
            (_, Some(_)) => true,
        };
        if same {
            let d = d.expect("same implies present");
            if self.metadata(e, Some(d))? {
                self.rep.updated += 1;
            } else {
                self.rep.unchanged += 1;
            }
            return Ok(());
        }
        let tmp = temp_name(&dp);
        let _ = std::fs::remove_file(&tmp);
        match e.kind {
            Kind::File => {
                let n = std::fs::copy(self.spath(&e.path), &tmp)?;
                self.rep.bytes_copied += n;
                self.done.bytes += n;
            }
            Kind::Symlink => {
                let t = e.target.as_deref().unwrap_or_default();
                std::os::unix::fs::symlink(OsStr::from_bytes(t), &tmp)?;
            }
            k => {
                let fmt = match k {
                    Kind::Fifo => libc::S_IFIFO,
                    Kind::Socket => libc::S_IFSOCK,
                    Kind::Block => libc::S_IFBLK,
                    _ => libc::S_IFCHR,
                };
                // SAFETY: valid C string.
                check(unsafe { libc::mknod(cpath(&tmp)?.as_ptr(), fmt | 0o600, e.rdev) })?;
            }
        }
        let r = self
            .metadata(e, None)
            .and_then(|_| std::fs::rename(&tmp, &dp));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        // Metadata was set on the temporary name, which is now `dp`.
        r?;
        self.rep.created += 1;
        Ok(())
    }

    /// Sets owner, xattrs, mode and mtime on the destination where they differ from `have`
    /// (`None`: set everything). For a new non-directory entry the target is its temporary
    /// name. Returns whether anything changed.
    fn metadata(&mut self, e: &Entry, have: Option<&Entry>) -> io::Result<bool> {
        let dp = self.dpath(&e.path);
        let p = if have.is_none() && e.kind != Kind::Dir {
            temp_name(&dp)
        } else {
            dp
        };
        let c = cpath(&p)?;
        let mut changed = false;
        if have.is_none_or(|h| h.uid != e.uid || h.gid != e.gid) {
            // SAFETY: valid C string.
            check(unsafe { libc::lchown(c.as_ptr(), e.uid, e.gid) })?;
            changed = true;
        }
        if have.is_none_or(|h| h.xattrs != e.xattrs) {
            let empty: &[crate::manifest::Xattr] = &[];
            let want = e.xattrs.as_deref().unwrap_or(empty);
            if let Some(old) = have.and_then(|h| h.xattrs.as_deref()) {
                for (k, _) in old
                    .iter()
                    .filter(|(k, _)| !want.iter().any(|(w, _)| w == k))
                {
                    let k = CString::new(&k[..])
                        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                    // SAFETY: valid C strings.
                    check(unsafe { libc::lremovexattr(c.as_ptr(), k.as_ptr()) })?;
                }
            }
            for (k, v) in want {
                let k =
                    CString::new(&k[..]).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                // SAFETY: valid pointers and lengths.
                check(unsafe {
                    libc::lsetxattr(c.as_ptr(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0)
                })?;
            }
            changed = true;
        }
        // After chown (which clears setuid bits) and ACLs (which set the group bits).
        if e.kind != Kind::Symlink && (have.is_none_or(|h| h.mode != e.mode) || changed) {
            // SAFETY: valid C string.
            check(unsafe { libc::chmod(c.as_ptr(), e.mode) })?;
            changed = true;
        }
        // A directory's mtime moved if entries were created or deleted in it: look again.
        let mtime_differs = match have {
            None => true,
            Some(_) if e.kind == Kind::Dir => {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::symlink_metadata(&p)?;
                m.mtime() != e.mtime.sec || m.mtime_nsec() as u32 != e.mtime.nsec
            }
            Some(h) => h.mtime != e.mtime,
        };
        if mtime_differs || changed {
            let ts = [
                libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                },
                libc::timespec {
                    tv_sec: e.mtime.sec,
                    tv_nsec: e.mtime.nsec as i64,
                },
            ];
            // SAFETY: valid pointers.
            check(unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    ts.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
            changed = true;
        }
        Ok(changed)
    }
}

fn temp_name(p: &Path) -> PathBuf {
    let name = p.file_name().map(|n| n.as_bytes()).unwrap_or(b"x");
    // Keep within NAME_MAX: a short hash of the name instead of the name when it is long.
    let tmp = if name.len() > 200 {
        format!(".rehost-tmp-{}", &blake3::hash(name).to_hex()[..16]).into_bytes()
    } else {
        [b".rehost-tmp-", name].concat()
    };
    p.with_file_name(OsStr::from_bytes(&tmp))
}

/// Options for the rsync command of the `sync` step.
#[derive(Clone, Debug, Default)]
pub struct RsyncOptions {
    pub excludes: Vec<String>,
    /// `--dry-run --itemize-changes`: show what would change.
    pub dry_run: bool,
    /// Extra arguments from the plan, appended before the locations.
    pub extra: Vec<String>,
}

/// The argv of the `sync` step: everything verify compares is carried. `-a` (recursive, links,
/// perms, times, group, owner, devices, specials), `-H` hard links, `-A` ACLs, `-X` xattrs,
/// `--numeric-ids`, `--sparse`, `--delete` (with `--delete-excluded` off: excluded entries are
/// left alone), `--modify-window=-1` (compare mtimes to the nanosecond; without it rsync 3.x
/// leaves directories, symlinks and special files it creates with the copy time when that falls
/// in the source mtime's second), `--info=progress2` and `--no-inc-recursive` for an overall
/// progress figure (see [`parse_rsync_progress`]). `src` and `dst` are rsync locations (`PATH`
/// or `HOST:PATH`); a trailing `/` is added to `src` so its content, not the directory itself,
/// is copied.
pub fn rsync_command(src: &str, dst: &str, opts: &RsyncOptions) -> Vec<String> {
    let mut v: Vec<String> = [
        "rsync",
        "-aHAX",
        "--numeric-ids",
        "--sparse",
        "--delete",
        "--modify-window=-1",
        "--info=progress2",
        "--no-inc-recursive",
        "--protect-args",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if opts.dry_run {
        v.push("--dry-run".into());
        v.push("--itemize-changes".into());
    }
    for x in &opts.excludes {
        v.push(format!("--exclude={x}"));
    }
    v.extend(opts.extra.iter().cloned());
    v.push(if src.ends_with('/') {
        src.to_string()
    } else {
        format!("{src}/")
    });
    v.push(dst.to_string());
    v
}

/// rsync's version (`3.5.0`) if an `rsync` on PATH runs, else `None` (then use [`transfer`]).
pub fn rsync_available() -> Option<String> {
    let out = Command::new("rsync").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    let v = first
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    Some(v.to_string())
}

/// One `--info=progress2` update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsyncProgress {
    pub bytes: u64,
    pub percent: u8,
}

/// Parses a progress2 line such as `  1,234,567  45%   12.34MB/s    0:00:10 (xfr#5, to-chk=10/100)`
/// (rsync separates updates with `\r`; split on it first).
pub fn parse_rsync_progress(line: &str) -> Option<RsyncProgress> {
    let mut w = line.split_whitespace();
    let bytes = w.next()?.replace([',', '.'], "").parse().ok()?;
    let percent = w.next()?.strip_suffix('%')?.parse().ok()?;
    Some(RsyncProgress { bytes, percent })
}
