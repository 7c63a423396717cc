//! `verify tree`: walk both trees at once (one pool, interleaved), compare, and keep the
//! manifests as the cache for the next, incremental, verification of the same pair.
//!
//! The cache is a directory holding `a.rmc` and `b.rmc`, the manifests of the last verification
//! in the binary cache format of [`crate::cache`] (not the text evidence format: parsing and
//! writing text was most of an incremental run's fixed cost). A file's digest is trusted from it only when its device,
//! inode, size, mtime and ctime are all unchanged on that side: ctime cannot be set by users, so
//! content written with size and mtime restored is still read again. `full` ignores the cache.
//!
//! Racy entries: file systems stamp ctime from a coarse clock (a jiffy; a whole second on some),
//! so a file changed, hashed, and changed again within one tick keeps its ctime. The cache
//! therefore records when its walk started, and a file whose ctime is less than
//! [`RACY`] before that (or later) is read again on the next run instead of trusted (the
//! "racy git" rule).

use crate::TreeError;
use crate::cache;
use crate::compare::{CompareOptions, compare};
use crate::glob::Glob;
use crate::manifest::{Manifest, Time};
use crate::report::Report;
use crate::walk::{Progress, WalkOptions, walk_many, walk_pair};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

const CACHE_A: &str = "a.rmc";
const CACHE_B: &str = "b.rmc";
/// Files whose ctime is this close to (or after) the start of the walk that cached them are
/// not trusted: covers ctime granularity up to one second and the coarse clock's lag.
const RACY: i64 = 1;

#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    pub walk: WalkOptions,
    pub compare: CompareOptions,
    /// Read every file even if the cache says it is unchanged (`--full`).
    pub full: bool,
    /// Directory of the incremental cache for this pair of trees; see [`default_cache_dir`].
    pub cache: Option<PathBuf>,
}

/// A finished verification: the report and both manifests (A's may be saved as evidence).
#[derive(Debug)]
pub struct Verified {
    pub report: Report,
    pub a: Manifest,
    pub b: Manifest,
}

/// Verifies tree B against tree A.
pub fn verify_trees(
    a: &Path,
    b: &Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Verified, TreeError> {
    let dir = opts.cache.as_deref();
    let ((prev_a, warn_a), (prev_b, warn_b)) = rayon::join(
        || load_cache(dir.map(|d| d.join(CACHE_A)), opts.full),
        || load_cache(dir.map(|d| d.join(CACHE_B)), opts.full),
    );
    let taken = now();
    let (mut ma, mut mb) = walk_pair(
        (a, prev_a.as_ref()),
        (b, prev_b.as_ref()),
        &opts.walk,
        progress,
        cancel,
    )?;
    ma.warnings.extend(warn_a);
    mb.warnings.extend(warn_b);
    let mut report = compare(&ma, &mb, &opts.compare);
    if let Some(dir) = dir
        && let Err(e) = save_cache(dir, taken, &ma, &mb)
    {
        report
            .warnings
            .push(format!("failed to save the verification cache: {e}"));
    }
    Ok(Verified {
        report,
        a: ma,
        b: mb,
    })
}

/// Verifies tree B against a manifest saved earlier (`rehost verify tree MANIFEST B`). The
/// manifest's exclude patterns are applied to B as well. The cache, if any, serves B's side.
pub fn verify_manifest_tree(
    a: &Manifest,
    b: &Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Verified, TreeError> {
    let mut walk = opts.walk.clone();
    for x in &a.excludes {
        if !walk.excludes.iter().any(|g| g.as_str() == x) {
            walk.excludes.push(Glob::new(x)?);
        }
    }
    let dir = opts.cache.as_deref();
    let (prev_b, warn_b) = load_cache(dir.map(|d| d.join(CACHE_B)), opts.full);
    let taken = now();
    let mut ms = walk_many(&[(b, prev_b.as_ref())], &walk, progress, cancel)?;
    let mut mb = ms.pop().expect("one manifest");
    mb.warnings.extend(warn_b);
    let mut report = compare(a, &mb, &opts.compare);
    if let Some(dir) = dir
        && let Err(e) = save_cache(dir, taken, &Manifest::default(), &mb)
    {
        report
            .warnings
            .push(format!("failed to save the verification cache: {e}"));
    }
    Ok(Verified {
        report,
        a: a.clone(),
        b: mb,
    })
}

/// Walks and hashes one tree like [`crate::manifest()`], trusting the digests of unchanged
/// files from the cache file `cache` (unless `full`), and saves the new manifest there for
/// next time. The agent's per-host cache. Trouble with the cache never fails the walk: it is
/// a warning in [`Manifest::warnings`] (and the files are read).
pub fn manifest_cached(
    root: &Path,
    opts: &WalkOptions,
    cache: &Path,
    full: bool,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Manifest, TreeError> {
    let (previous, warning) = load_cache(Some(cache.to_path_buf()), full);
    let taken = now();
    let mut ms = walk_many(&[(root, previous.as_ref())], opts, progress, cancel)?;
    let mut m = ms.pop().expect("one manifest");
    m.warnings.extend(warning);
    let saved = cache
        .parent()
        .map_or(Ok(()), |d| {
            crate::private::ensure_dir(d)
                .map(drop)
                .map_err(std::io::Error::other)
        })
        .and_then(|()| cache::write_file(&m, taken, cache));
    if let Err(e) = saved {
        m.warnings.push(format!(
            "failed to save the verification cache {}: {e}",
            cache.display()
        ));
    }
    Ok(m)
}

/// `$XDG_CACHE_HOME/rehost/tree/<BLAKE3 of the two absolute paths>`, or under `~/.cache`.
pub fn default_cache_dir(a: &Path, b: &Path) -> PathBuf {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut h = blake3::Hasher::new();
    use std::os::unix::ffi::OsStrExt;
    h.update(abs(a).as_os_str().as_bytes());
    h.update(b"\0");
    h.update(abs(b).as_os_str().as_bytes());
    user_cache_dir()
        .join("tree")
        .join(&h.finalize().to_hex()[..32])
}

/// rehost's cache directory for this user: `$XDG_CACHE_HOME/rehost`, else `~/.cache/rehost`
/// (`/var/cache/rehost` without a home). Also where the agent keeps a host's caches.
pub fn user_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"))
        .join("rehost")
}

/// One side's cached manifest with its racy entries forgotten, or a warning if there is a
/// cache file that cannot be used (that side is then read in full).
fn load_cache(path: Option<PathBuf>, full: bool) -> (Option<Manifest>, Option<String>) {
    let Some(path) = path.filter(|_| !full) else {
        return (None, None);
    };
    match cache::read_file(&path) {
        Ok((mut m, taken)) => {
            forget_racy(&mut m, taken);
            (Some(m), None)
        }
        Err(cache::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => (
            None,
            Some(format!(
                "failed to use the verification cache {} (reading all files): {e}",
                path.display()
            )),
        ),
    }
}

/// The cache is not evidence: written without fsync (a torn file fails its digest check on the
/// next run, which then reads everything).
fn save_cache(dir: &Path, taken: Time, a: &Manifest, b: &Manifest) -> Result<(), TreeError> {
    let err = |path: PathBuf| move |source| TreeError::WriteManifest { path, source };
    // 0700: the cache lists every path and digest of both trees.
    crate::private::ensure_dir(dir)
        .map_err(std::io::Error::other)
        .map_err(err(dir.to_path_buf()))?;
    // Text caches of earlier versions are no longer read.
    for old in ["a.rmf", "b.rmf"] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    let write = |m: &Manifest, name: &str| {
        let p = dir.join(name);
        cache::write_file(m, taken, &p).map_err(err(p))
    };
    let (ra, rb) = rayon::join(
        || {
            if a.entries.is_empty() {
                Ok(())
            } else {
                write(a, CACHE_A)
            }
        },
        || write(b, CACHE_B),
    );
    ra.and(rb)
}

/// Wall-clock time, the clock file systems stamp ctime with.
fn now() -> Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Time {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

/// Drops the digests of entries changed less than [`RACY`] before the cached walk started (or
/// after it): a change within the same clock tick as the read would not have moved ctime.
fn forget_racy(m: &mut Manifest, taken: Time) {
    let limit = Time {
        sec: taken.sec - RACY,
        nsec: taken.nsec,
    };
    for e in &mut m.entries {
        if e.digest.is_some() && e.ctime >= limit {
            e.digest = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn run(a: &Path, b: &Path, cache: &Path) -> (u64, u64) {
        let opts = VerifyOptions {
            cache: Some(cache.to_path_buf()),
            ..VerifyOptions::default()
        };
        let r = verify_trees(a, b, &opts, &mut |_| {}, &AtomicBool::new(false))
            .unwrap()
            .report;
        assert_eq!(r.exit_code(), crate::EXIT_EQUAL, "{:?}", r.findings);
        (r.totals.rehashed, r.totals.trusted)
    }

    /// Rewrites both cache files as if their walk had started at `ctime + offset`, where ctime
    /// is the newest file's (`newest`) or the oldest file's. The files are written a few
    /// milliseconds apart on a loaded machine, so "every file racy" must be measured from the
    /// oldest and "every file trusted" from the newest.
    fn restamp(cache: &Path, newest: bool, offset_ms: i64) {
        for name in [CACHE_A, CACHE_B] {
            restamp_file(&cache.join(name), newest, offset_ms);
        }
    }

    fn restamp_file(p: &Path, newest: bool, offset_ms: i64) {
        {
            let (m, _) = cache::read_file(p).unwrap();
            let ctimes = m.entries.iter().map(|e| e.ctime);
            let base = if newest { ctimes.max() } else { ctimes.min() }.unwrap();
            let ns = i64::from(base.nsec) + offset_ms * 1_000_000;
            let taken = Time {
                sec: base.sec + ns.div_euclid(1_000_000_000),
                nsec: ns.rem_euclid(1_000_000_000) as u32,
            };
            cache::write_file(&m, taken, p).unwrap();
        }
    }

    #[test]
    fn files_changed_just_before_the_cached_walk_are_read_again() {
        let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..5 {
            std::fs::write(tree.path().join(format!("f{i}")), format!("{i}")).unwrap();
        }
        // The tree against itself: both sides, both cache files.
        let (a, b, cache) = (tree.path(), tree.path(), cache.path());
        run(a, b, cache);
        // The walk started 0.2 s, 0.999 s, and exactly 1 s after a change: racy.
        for ms in [200, 999, 1000] {
            restamp(cache, false, ms);
            assert_eq!(run(a, b, cache), (10, 0), "{ms} ms");
        }
        // Changes after the walk started (clock skew): racy too.
        restamp(cache, false, -300);
        assert_eq!(run(a, b, cache), (10, 0));
        // More than a second before: trusted.
        restamp(cache, true, 1001);
        assert_eq!(run(a, b, cache), (0, 10));
    }

    /// The single-tree cache (the agent's) follows the same rules: trusted when unchanged,
    /// racy entries read again, an unusable cache file a warning and a full read.
    #[test]
    fn a_single_tree_cache_trusts_forgets_racy_entries_and_survives_corruption() {
        let (tree, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..5 {
            std::fs::write(tree.path().join(format!("f{i}")), format!("{i}")).unwrap();
        }
        let cache = dir.path().join("sub/tree.rmc");
        let walk = |full| {
            let m = manifest_cached(
                tree.path(),
                &WalkOptions::default(),
                &cache,
                full,
                &mut |_| {},
                &AtomicBool::new(false),
            )
            .unwrap();
            (m.rehashed, m.trusted, m.warnings)
        };
        assert_eq!(walk(false), (5, 0, vec![]));
        restamp_file(&cache, false, 500);
        assert_eq!(walk(false), (5, 0, vec![]), "racy entries are read again");
        restamp_file(&cache, true, 1001);
        assert_eq!(walk(false), (0, 5, vec![]));
        restamp_file(&cache, true, 1001);
        assert_eq!(walk(true), (5, 0, vec![]), "full reads everything");
        let mut bytes = std::fs::read(&cache).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&cache, &bytes).unwrap();
        let (rehashed, trusted, warnings) = walk(false);
        assert_eq!((rehashed, trusted), (5, 0));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("tree.rmc"), "{warnings:?}");
        assert!(warnings[0].contains("reading all files"), "{warnings:?}");
    }
}
