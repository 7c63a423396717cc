//! Both sides of a verification at once, whatever the hosts: [`verify_pair`]. Two trees of this
//! machine are walked in one process, in one pool, with the caller's cache of the pair (the
//! fast path, `rehost_tree::verify_trees`); any other pair is walked where each tree lives
//! ([`crate::manifest_pair`], each host's cache) and compared here.

use crate::{Host, HostError, ManifestOptions, manifest_pair};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Where the digests a verification trusted (files unchanged since a walk) were kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedFrom {
    /// The caller's cache of this pair of trees (`pair_cache`), which only a verification of
    /// the pair writes.
    PairCache,
    /// Each host's cache of its last walk of its tree, which any walk of the tree on that host
    /// writes (another verification, `rehost manifest`, the built-in transfer's walk).
    HostCaches,
}

/// A verification of B against A.
#[derive(Debug)]
pub struct PairVerified {
    pub verified: rehost_tree::Verified,
    pub trusted_from: TrustedFrom,
}

/// Why a verification found nothing to compare.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// One side (0 for A, 1 for B) failed: its host, or its root is not a directory.
    #[error("{1}")]
    Side(usize, HostError),
    /// Both sides, walked together in this process, failed.
    #[error("{0}")]
    Both(HostError),
}

/// Verifies the tree B against the tree A, each on its host, walking both at once. With
/// `options.incremental`, digests of files unchanged since the last walk are trusted: from
/// `pair_cache` (a directory of the caller's) when both hosts are this machine, else from each
/// host's own cache; the answer says which. `progress` gets both sides' counts.
pub fn verify_pair(
    a: (&dyn Host, &[u8]),
    b: (&dyn Host, &[u8]),
    options: &ManifestOptions,
    pair_cache: Option<&Path>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(rehost_tree::Progress),
) -> Result<PairVerified, PairError> {
    if let (Some(la), Some(lb)) = (a.0.as_local(), b.0.as_local()) {
        let pa = la.resolve_bytes(a.1);
        let pb = lb.resolve_bytes(b.1);
        for (side, (host, p)) in [(la, &pa), (lb, &pb)].into_iter().enumerate() {
            if !p.is_dir() {
                return Err(PairError::Side(
                    side,
                    HostError::NotADirectory {
                        host: host.name().to_owned(),
                        path: p.clone(),
                    },
                ));
            }
        }
        let opts = rehost_tree::VerifyOptions {
            walk: crate::capability::walk_options(options)
                .map_err(|e| PairError::Both(HostError::InProcess(e)))?,
            cache: pair_cache
                .filter(|_| options.incremental)
                .map(Path::to_owned),
            ..Default::default()
        };
        let verified = rehost_tree::verify_trees(&pa, &pb, &opts, progress, cancel)
            .map_err(|e| PairError::Both(HostError::InProcess(e)))?;
        return Ok(PairVerified {
            verified,
            trusted_from: TrustedFrom::PairCache,
        });
    }
    let start = Instant::now();
    let (ma, mb) = manifest_pair(a, b, options, cancel, &mut |sides| {
        progress(rehost_tree::Progress {
            sides,
            elapsed: start.elapsed(),
            ..Default::default()
        })
    });
    let ma = ma.map_err(|e| PairError::Side(0, e))?;
    let mb = mb.map_err(|e| PairError::Side(1, e))?;
    let report = rehost_tree::compare(&ma, &mb, &rehost_tree::CompareOptions::default());
    Ok(PairVerified {
        verified: rehost_tree::Verified {
            report,
            a: ma,
            b: mb,
        },
        trusted_from: TrustedFrom::HostCaches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{TransferOptions, transfer_between};
    use crate::{LocalHost, Request, Response};
    use std::sync::Mutex;

    /// A local host that is not this machine's to rehost: it answers requests (in process) but
    /// takes the path every other host takes, and counts the manifests asked of it.
    struct Elsewhere(LocalHost, Mutex<u32>);

    impl Host for Elsewhere {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn resolve(&self, path: &str) -> std::path::PathBuf {
            self.0.resolve(path)
        }
        fn remote_end(&self, _path: &str, _here: bool) -> Option<crate::RemoteEnd> {
            None
        }
        fn request(
            &self,
            req: &Request,
            cancel: &AtomicBool,
            on_response: &mut dyn FnMut(Response),
        ) -> Result<(), HostError> {
            if matches!(req, Request::Manifest { .. }) {
                *self.1.lock().unwrap() += 1;
            }
            self.0.request(req, cancel, on_response)
        }
    }

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/file"), "content\n").unwrap();
        std::fs::write(root.join("top"), "top\n").unwrap();
        // The same mtimes on both trees, as a faithful copy has: two trees made a moment apart
        // differ by their creation times whenever the clock ticks between them.
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for p in ["a/b/file", "top", "a/b", "a", ""] {
            std::fs::File::open(root.join(p))
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
    }

    /// Two trees of this machine are verified in process with the caller's cache of the pair:
    /// the second verification trusts what the first read, and says where it came from. The
    /// same trees through a host that is not this machine's are walked by that host.
    #[test]
    fn two_trees_of_this_machine_are_verified_in_process_with_the_pairs_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, cache) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("cache"),
        );
        tree(&a);
        tree(&b);
        // Files changed within a second of a cached walk are not trusted next time (the racy
        // ctime rule): the clock moving on is the condition, nothing else signals it.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (old, new) = (LocalHost::new("old", None), LocalHost::new("new", None));
        let options = ManifestOptions {
            incremental: true,
            ..Default::default()
        };
        let bytes = |p: &Path| p.as_os_str().as_encoded_bytes().to_vec();
        let (pa, pb) = (bytes(&a), bytes(&b));
        let cancel = AtomicBool::new(false);
        let verify = |ha: &dyn Host, hb: &dyn Host| {
            verify_pair(
                (ha, &pa),
                (hb, &pb),
                &options,
                Some(&cache),
                &cancel,
                &mut |_| {},
            )
            .unwrap()
        };
        let first = verify(&old, &new);
        assert_eq!(first.trusted_from, TrustedFrom::PairCache);
        assert_eq!(first.verified.report.exit_code(), rehost_tree::EXIT_EQUAL);
        assert_eq!(first.verified.report.totals.trusted, 0);
        assert!(cache.is_dir(), "the pair's cache is written");
        let second = verify(&old, &new);
        assert_eq!(second.verified.report.totals.trusted, 4);

        let elsewhere = Elsewhere(LocalHost::new("new", None), Mutex::new(0));
        let mixed = verify_pair(
            (&old, &pa),
            (&elsewhere, &pb),
            &ManifestOptions::default(),
            Some(&cache),
            &cancel,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(mixed.trusted_from, TrustedFrom::HostCaches);
        assert_eq!(mixed.verified.report.exit_code(), rehost_tree::EXIT_EQUAL);
        assert_eq!(*elsewhere.1.lock().unwrap(), 1, "walked by its host");
    }

    /// A side that is not a directory is named, on either path.
    #[test]
    fn a_side_that_is_not_a_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        tree(&dir.path().join("a"));
        let file = dir.path().join("a/top");
        let old = LocalHost::new("old", None);
        let a = dir.path().join("a");
        let cancel = AtomicBool::new(false);
        let err = verify_pair(
            (&old, a.as_os_str().as_encoded_bytes()),
            (&old, file.as_os_str().as_encoded_bytes()),
            &ManifestOptions::default(),
            None,
            &cancel,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(&err, PairError::Side(1, HostError::NotADirectory { path, .. }) if *path == file),
            "{err:?}"
        );
    }

    /// The built-in transfer between two trees of this machine copies in process (no request
    /// reaches either host); between this machine and another host it goes through requests.
    #[test]
    fn the_builtin_transfer_between_two_trees_of_this_machine_runs_in_process() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        tree(&src);
        let (old, new) = (LocalHost::new("old", None), LocalHost::new("new", None));
        let cancel = AtomicBool::new(false);
        let copy = |from: &dyn Host, to: &dyn Host, dst: &Path| {
            transfer_between(
                (from, src.as_os_str().as_encoded_bytes()),
                (to, dst.as_os_str().as_encoded_bytes()),
                &TransferOptions::default(),
                &cancel,
                &mut |_| {},
            )
        };
        let here = dir.path().join("here");
        let r = copy(&old, &new, &here).unwrap();
        assert_eq!((r.created, r.errors.len()), (4, 0), "{r:?}");
        assert_eq!(std::fs::read(here.join("a/b/file")).unwrap(), b"content\n");
        // In process: the tree crate's error, not a host's.
        let missing = dir.path().join("missing");
        let err = transfer_between(
            (&old, missing.as_os_str().as_encoded_bytes()),
            (&new, dir.path().join("x").as_os_str().as_encoded_bytes()),
            &TransferOptions::default(),
            &cancel,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, HostError::InProcess(_)), "{err:?}");

        let elsewhere = Elsewhere(LocalHost::new("new", None), Mutex::new(0));
        let there = dir.path().join("there");
        let r = copy(&old, &elsewhere, &there).unwrap();
        assert_eq!((r.created, r.errors.len()), (4, 0), "{r:?}");
        assert_eq!(
            *elsewhere.1.lock().unwrap(),
            1,
            "the destination walked by its host"
        );
    }
}
