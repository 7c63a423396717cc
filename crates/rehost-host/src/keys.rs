//! The `scan_keys` capability: key material under paths of a host, found where the files are
//! (in-process for a local host, by the agent on an ssh host) so that only public facts cross
//! the network. Each regular file is reached through directory descriptors without following a
//! symlink (`rehost_tree::beneath`), its first bytes sniffed (`rehost_keys::sniff`), and only
//! a file that can be key material is read whole and parsed; symlinks are not followed and
//! devices and FIFOs not opened.

use crate::agent::{Request, Response};
use crate::listing::{EntryKind, list_tree};
use crate::{Bytes, Host, HostError, LocalHost};
use rehost_keys::{Found, Scan};
use rehost_tree::beneath::{Beneath, open_source};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Findings per `KeysFound` response.
const FOUND_PER_BATCH: usize = 256;
/// Errors reported by path; past this, only their number.
const MAX_ERRORS: usize = 1000;
/// The most findings one scan may return (a hostile agent's answers are bounded).
const MAX_FOUND: usize = 1_000_000;

/// Scans `paths` (plan paths, resolved on `host`) for key material, streaming findings.
pub(crate) fn execute(
    host: &LocalHost,
    paths: &[Bytes],
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Response),
) -> Result<(), HostError> {
    let mut batch = Vec::new();
    let mut errors = Vec::new();
    let mut more_errors = 0u64;
    let (mut files, mut read) = (0u64, 0u64);
    for path in paths {
        let shown = String::from_utf8_lossy(path.as_bytes()).into_owned();
        let abs = host.resolve_bytes(path.as_bytes());
        let mut err = |what: String| {
            if errors.len() < MAX_ERRORS {
                errors.push(what);
            } else {
                more_errors += 1;
            }
        };
        let meta = match std::fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) => {
                err(format!("{shown}: {e}"));
                continue;
            }
        };
        // (root, relative paths of its files, how each is shown)
        let mut todo: Vec<(Vec<u8>, String)> = Vec::new();
        let root = if meta.is_dir() {
            let r = list_tree(&abs, cancel, &mut |e| {
                let rel = e.path.as_bytes();
                let at = format!(
                    "{}/{}",
                    shown.trim_end_matches('/'),
                    String::from_utf8_lossy(rel)
                );
                if let Some(why) = &e.error {
                    err(format!("{at}: {why}"));
                } else if e.kind == EntryKind::File {
                    todo.push((rel.to_vec(), at));
                }
            });
            if let Err(e) = r {
                err(format!("{shown}: {e}"));
                continue;
            }
            abs.clone()
        } else if meta.is_file() {
            let Some(name) = abs.file_name() else {
                continue;
            };
            use std::os::unix::ffi::OsStrExt;
            todo.push((name.as_bytes().to_vec(), shown.clone()));
            abs.parent().unwrap_or(Path::new("/")).to_path_buf()
        } else {
            err(format!(
                "{shown}: not a directory or a regular file (a symlink is not followed)"
            ));
            continue;
        };
        let mut at = match Beneath::open(&root) {
            Ok(b) => b,
            Err(e) => {
                err(format!("{shown}: {e}"));
                continue;
            }
        };
        for (rel, shown) in todo {
            if cancel.load(Relaxed) {
                return Err(HostError::Tree {
                    host: host.name().to_owned(),
                    path: abs,
                    source: rehost_tree::TreeError::Cancelled,
                });
            }
            files += 1;
            match examine(&mut at, &rel) {
                Ok(None) => {}
                Ok(Some((meta, keys, why))) => {
                    read += 1;
                    for w in why {
                        err(format!("{shown}: {w}"));
                    }
                    for key in keys {
                        batch.push(Found {
                            path: shown.clone(),
                            uid: meta.uid(),
                            gid: meta.gid(),
                            mode: meta.mode() & 0o7777,
                            key,
                        });
                        if batch.len() >= FOUND_PER_BATCH {
                            emit(Response::KeysFound {
                                found: std::mem::take(&mut batch),
                            });
                        }
                    }
                }
                Err(e) => err(format!("{shown}: {e}")),
            }
        }
    }
    if !batch.is_empty() {
        emit(Response::KeysFound { found: batch });
    }
    if more_errors > 0 {
        errors.push(format!(
            "and {more_errors} more paths that could not be read"
        ));
    }
    emit(Response::KeysScanned {
        files,
        read,
        errors,
    });
    Ok(())
}

type Examined = (std::fs::Metadata, Vec<rehost_keys::Key>, Vec<String>);

/// One file: its first bytes sniffed, and read whole and parsed only if it can hold keys.
fn examine(at: &mut Beneath, rel: &[u8]) -> std::io::Result<Option<Examined>> {
    let f = open_source(at, rel, None)?;
    let meta = f.metadata()?;
    let mut head = Vec::with_capacity(rehost_keys::HEAD);
    let mut f = f;
    (&mut f)
        .take(rehost_keys::HEAD as u64)
        .read_to_end(&mut head)?;
    let Some(how) = rehost_keys::sniff(&head, meta.len()) else {
        return Ok(None);
    };
    let limit = match how {
        rehost_keys::Sniff::Pem => rehost_keys::MAX_PEM,
        _ => rehost_keys::MAX_DER,
    };
    f.take(limit.saturating_sub(head.len() as u64))
        .read_to_end(&mut head)?;
    let (keys, why) = rehost_keys::parse_as(how, &head);
    // What was read is dropped here; nothing of it is kept but the keys' public facts.
    Ok(Some((meta, keys, why)))
}

/// Scans `paths` on `host` for key material: every finding, what could not be read, and how
/// many files were examined; an encrypted key takes the public half of a public key or
/// certificate of the same name beside it. Bounded like every answer of a host.
pub fn scan_keys<H: Host + ?Sized>(
    host: &H,
    paths: &[&str],
    cancel: &AtomicBool,
) -> Result<Scan, HostError> {
    let req = Request::ScanKeys {
        paths: paths.iter().map(|p| Bytes::from(*p)).collect(),
    };
    let mut scan = Scan::default();
    let mut ended = false;
    crate::request_bounded(host, &req, cancel, &mut |r| match r {
        Response::KeysFound { found } if !ended => {
            if scan.found.len() + found.len() > MAX_FOUND {
                return Err(format!(
                    "refused: more than {MAX_FOUND} keys found ({})",
                    crate::limits::HINT
                ));
            }
            scan.found.extend(found);
            Ok(())
        }
        Response::KeysScanned {
            files,
            read,
            errors,
        } if !ended => {
            ended = true;
            scan.files = files;
            scan.read = read;
            scan.errors = errors.into_iter().take(MAX_ERRORS + 1).collect();
            Ok(())
        }
        other => Err(format!(
            "refused: an answer `{}` to a key scan",
            crate::agent::kind_name(&other)
        )),
    })?;
    if !ended {
        return Err(HostError::Protocol {
            host: host.name().to_owned(),
            message: "the key scan ended without its summary".into(),
        });
    }
    scan.take_public_halves();
    Ok(scan)
}
