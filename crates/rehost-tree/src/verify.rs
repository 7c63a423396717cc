//! `verify tree`: walk both trees at once (one pool, interleaved), compare, and keep the
//! manifests as the cache for the next, incremental, verification of the same pair.
//!
//! The cache is a directory holding `a.rmc` and `b.rmc`, the manifests of the last verification
//! in the binary cache format of [`crate::cache`] (not the text evidence format: parsing and
//! writing text was most of an incremental run's fixed cost). A file's digest is trusted from it only when its device,
//! inode, size, mtime and ctime are all unchanged on that side: ctime cannot be set by users, so
//! content written with size and mtime restored is still read again. `full` ignores the cache.

use crate::TreeError;
use crate::cache;
use crate::compare::{CompareOptions, compare};
use crate::glob::Glob;
use crate::manifest::Manifest;
use crate::report::Report;
use crate::walk::{Progress, WalkOptions, walk_many};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

const CACHE_A: &str = "a.rmc";
const CACHE_B: &str = "b.rmc";

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
    let (prev_a, prev_b, mut warnings) = load_cache(opts);
    let mut ms = walk_many(
        &[(a, prev_a.as_ref()), (b, prev_b.as_ref())],
        &opts.walk,
        progress,
        cancel,
    )?;
    let mb = ms.pop().expect("two manifests");
    let ma = ms.pop().expect("two manifests");
    let mut report = compare(&ma, &mb, &opts.compare);
    if let Some(dir) = &opts.cache
        && let Err(e) = save_cache(dir, &ma, &mb)
    {
        warnings.push(format!("failed to save the verification cache: {e}"));
    }
    report.warnings.append(&mut warnings);
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
    let (_, prev_b, mut warnings) = load_cache(opts);
    let mut ms = walk_many(&[(b, prev_b.as_ref())], &walk, progress, cancel)?;
    let mb = ms.pop().expect("one manifest");
    let mut report = compare(a, &mb, &opts.compare);
    if let Some(dir) = &opts.cache
        && let Err(e) = save_cache(dir, &Manifest::default(), &mb)
    {
        warnings.push(format!("failed to save the verification cache: {e}"));
    }
    report.warnings.append(&mut warnings);
    Ok(Verified {
        report,
        a: a.clone(),
        b: mb,
    })
}

/// `$XDG_CACHE_HOME/rehost/tree/<BLAKE3 of the two absolute paths>`, or under `~/.cache`.
pub fn default_cache_dir(a: &Path, b: &Path) -> PathBuf {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut h = blake3::Hasher::new();
    use std::os::unix::ffi::OsStrExt;
    h.update(abs(a).as_os_str().as_bytes());
    h.update(b"\0");
    h.update(abs(b).as_os_str().as_bytes());
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("rehost/tree").join(&h.finalize().to_hex()[..32])
}

fn load_cache(opts: &VerifyOptions) -> (Option<Manifest>, Option<Manifest>, Vec<String>) {
    let Some(dir) = opts.cache.as_ref().filter(|_| !opts.full) else {
        return (None, None, Vec::new());
    };
    let load = |name: &str| -> (Option<Manifest>, Option<String>) {
        let p = dir.join(name);
        match cache::read_file(&p) {
            Ok(m) => (Some(m), None),
            Err(cache::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                (None, None)
            }
            Err(e) => (
                None,
                Some(format!(
                    "failed to use the verification cache {} (reading all files): {e}",
                    p.display()
                )),
            ),
        }
    };
    // Both sides at once (each also decodes in parallel on the global pool).
    let ((a, wa), (b, wb)) = rayon::join(|| load(CACHE_A), || load(CACHE_B));
    (a, b, wa.into_iter().chain(wb).collect())
}

/// The cache is not evidence: written without fsync (a torn file fails its digest check on the
/// next run, which then reads everything).
fn save_cache(dir: &Path, a: &Manifest, b: &Manifest) -> Result<(), TreeError> {
    let err = |path: PathBuf| move |source| TreeError::WriteManifest { path, source };
    std::fs::create_dir_all(dir).map_err(err(dir.to_path_buf()))?;
    // Text caches of earlier versions are no longer read.
    for old in ["a.rmf", "b.rmf"] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    let write = |m: &Manifest, name: &str| {
        let p = dir.join(name);
        cache::write_file(m, &p).map_err(err(p))
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
