//! A compromised old server's agent (security issue #8, items 1 and 7): a fake host that
//! answers like an agent would, with crafted manifests, endless streams and oversized file
//! pieces. rehost refuses each, with an error naming the host, writes nothing and does not
//! panic or grow without bound.

use rehost_host::agent::{Request, Response};
use rehost_host::transfer::{TransferOptions, transfer_between};
use rehost_host::{Blob, Host, HostError, LocalHost};
use rehost_tree::{Entry, Kind, Manifest};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// How the fake agent misbehaves.
#[derive(Clone, Copy)]
enum Evil {
    /// Its manifest has `a`, a symlink out of the tree, and `a/x`, a setuid file under it.
    EntryUnderSymlink,
    /// A hard-link index out of range (panicked `rehost run` mid-sync).
    LinkOutOfRange,
    /// Manifest data without end, until cancelled.
    EndlessManifest,
    /// A valid manifest, then more file pieces than asked for, each longer than asked.
    OversizedPieces,
    /// More answers to a pre-flight probe than paths asked about.
    ExtraProbes,
}

struct FakeAgent {
    evil: Evil,
    outside: PathBuf,
}

impl FakeAgent {
    fn manifest(&self) -> Manifest {
        let mut root = Entry::new(Box::default(), Kind::Dir);
        root.mode = 0o755;
        let file = |p: &str| {
            let mut e = Entry::new(p.as_bytes().into(), Kind::File);
            e.mode = 0o4755;
            e.size = 4;
            e.digest = Some(*blake3::hash(b"evil").as_bytes());
            e
        };
        let entries = match self.evil {
            Evil::EntryUnderSymlink => {
                let mut link = Entry::new(b"a".as_slice().into(), Kind::Symlink);
                link.target = Some(self.outside.as_os_str().as_encoded_bytes().into());
                vec![root, link, file("a/x")]
            }
            Evil::LinkOutOfRange => {
                let mut f = file("f");
                f.link = 4242;
                vec![root, file("e"), f]
            }
            _ => vec![root, file("f")],
        };
        Manifest {
            entries,
            ..Manifest::default()
        }
    }
}

impl Host for FakeAgent {
    fn name(&self) -> &str {
        "old"
    }

    fn resolve(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        match (req, self.evil) {
            (Request::Manifest { .. }, Evil::EndlessManifest) => {
                while !cancel.load(Relaxed) {
                    on_response(Response::ManifestData {
                        data: Blob(vec![0u8; 1 << 20]),
                    });
                }
            }
            (Request::Manifest { .. }, _) => on_response(Response::ManifestData {
                data: Blob(self.manifest().to_binary()),
            }),
            (Request::Probe { .. }, Evil::ExtraProbes) => {
                for _ in 0..3 {
                    on_response(Response::Probed {
                        probe: Default::default(),
                    });
                }
            }
            (Request::ReadFiles { .. }, _) => {
                for _ in 0..3 {
                    on_response(Response::FileData {
                        data: Blob(b"evil and then some".to_vec()),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Transfers from the fake agent into a fresh tree; returns the error, with the canary
/// directory outside checked unchanged.
fn transfer_from(evil: Evil) -> HostError {
    let outer = tempfile::tempdir().unwrap();
    let outside = outer.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    let dst = outer.path().join("new");
    let old = FakeAgent {
        evil,
        outside: outside.clone(),
    };
    let new = LocalHost::new("new", None);
    let r = transfer_between(
        (&old, b"/srv".as_slice()),
        (&new, dst.as_os_str().as_encoded_bytes()),
        &TransferOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    );
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep"], "something was written outside the tree");
    let made: Vec<_> = std::fs::read_dir(&dst).unwrap().collect();
    assert!(made.is_empty(), "the destination was written: {made:?}");
    r.expect_err("a hostile agent's transfer must fail")
}

#[test]
fn an_entry_under_a_symlink_is_refused_whole() {
    let e = transfer_from(Evil::EntryUnderSymlink).to_string();
    assert!(e.contains("old") && e.contains("refused whole"), "{e}");
    assert!(e.contains("not a directory"), "{e}");
}

#[test]
fn a_hard_link_index_out_of_range_is_refused_not_a_panic() {
    let e = transfer_from(Evil::LinkOutOfRange).to_string();
    assert!(
        e.contains("old") && e.contains("hard-link index 4242"),
        "{e}"
    );
}

#[test]
fn an_endless_manifest_is_cut_off_at_the_limit() {
    // SAFETY: the other tests of this binary read this variable only for manifests far below
    // either value.
    unsafe { std::env::set_var("REHOST_MAX_MANIFEST_BYTES", (64u64 << 20).to_string()) };
    let e = transfer_from(Evil::EndlessManifest).to_string();
    assert!(
        e.contains("old") && e.contains("larger than 67108864 bytes"),
        "{e}"
    );
    assert!(e.contains("REHOST_MAX_MANIFEST_BYTES"), "{e}");
}

#[test]
fn more_or_longer_file_pieces_than_asked_are_refused() {
    let e = transfer_from(Evil::OversizedPieces).to_string();
    assert!(
        e.contains("old") && e.contains("longer than the 4 bytes asked for"),
        "{e}"
    );
}

#[test]
fn more_probe_answers_than_paths_are_refused() {
    let old = FakeAgent {
        evil: Evil::ExtraProbes,
        outside: PathBuf::from("/nonexistent"),
    };
    let e = old
        .probe(&[b"/srv".as_slice()], true, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old") && e.contains("more than the 1 probes asked for"),
        "{e}"
    );
}
