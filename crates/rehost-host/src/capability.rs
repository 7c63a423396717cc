//! The one function that does work on a host: [`execute`]. A local host calls it in-process;
//! the agent calls it on the remote host for each request it receives. Adding a capability is a
//! [`Request`] variant, its [`Response`] variants and one arm here.

use crate::agent::{FilePiece, ManifestOptions, Probe, Request, Response};
use crate::bytes::Blob;
use crate::listing::{TreeEntry, list_tree};
use crate::{Host, HostError, LocalHost};
use rehost_tree::beneath::{Beneath, open_source};
use rehost_tree::{Counts, Glob, Manifest, WalkOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Tree entries per `Entries` response: large enough to amortise framing, small enough to
/// stream.
const ENTRIES_PER_BATCH: usize = 1024;
/// How much of a manifest's binary encoding goes in one `ManifestData` response (raw content
/// after the frame's header: well under its limit).
const MANIFEST_PIECE: usize = 8 << 20;
/// The largest file piece one `ReadFiles` may ask for (the transfer asks for at most 8 MiB).
const MAX_PIECE: u64 = 16 << 20;

/// Executes `req` on `host`, passing each result item to `emit` as it is produced.
pub fn execute(
    host: &LocalHost,
    req: &Request,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Response),
) -> Result<(), HostError> {
    match req {
        Request::Run { command } => {
            let outcome = host.run(command, cancel, &mut |stream, line| {
                emit(Response::Output {
                    stream,
                    line: line.into(),
                })
            })?;
            emit(Response::Exit { outcome });
            Ok(())
        }
        Request::Lock { holder } => {
            host.lock_for_run(holder)?;
            emit(Response::Locked);
            Ok(())
        }
        Request::ListTree { path } => {
            let dir = host.resolve_bytes(path.as_bytes());
            let mut batch: Vec<TreeEntry> = Vec::new();
            list_tree(&dir, cancel, &mut |e| {
                batch.push(e);
                if batch.len() >= ENTRIES_PER_BATCH {
                    emit(Response::Entries {
                        entries: std::mem::take(&mut batch),
                    });
                }
            })
            .map_err(|source| HostError::Read {
                host: host.name().to_owned(),
                path: dir.clone(),
                source,
            })?;
            if !batch.is_empty() {
                emit(Response::Entries { entries: batch });
            }
            Ok(())
        }
        Request::Manifest { path, options } => {
            let manifest = take_manifest(host, path.as_bytes(), options, cancel, &mut |c| {
                emit(Response::Progress {
                    entries: c.entries,
                    bytes: c.bytes,
                })
            })?;
            let data = manifest.to_binary();
            for piece in data.chunks(MANIFEST_PIECE) {
                emit(Response::ManifestData {
                    data: Blob::from(piece),
                });
            }
            emit(Response::ManifestCounts {
                rehashed: manifest.rehashed,
                trusted: manifest.trusted,
                warnings: manifest.warnings,
            });
            Ok(())
        }
        Request::ReadFiles { root, pieces } => {
            let root = host.resolve_bytes(root.as_bytes());
            let mut at = Beneath::open(&root).map_err(|source| HostError::Read {
                host: host.name().to_owned(),
                path: root.clone(),
                source,
            })?;
            for piece in pieces {
                if cancel.load(Relaxed) {
                    return Err(cancelled(host, &root));
                }
                emit(match read_piece(&mut at, piece) {
                    Ok(data) => Response::FileData { data: Blob(data) },
                    Err(e) => Response::FileError {
                        message: e.to_string(),
                    },
                });
            }
            Ok(())
        }
        Request::Stage {
            root,
            path,
            tmp,
            offset,
            data,
        } => {
            let root = host.resolve_bytes(root.as_bytes());
            rehost_tree::transfer::stage(&root, path.as_bytes(), tmp.as_bytes(), *offset, &data.0)
                .map_err(|source| HostError::Write {
                    host: host.name().to_owned(),
                    path: root.join(path.as_path()),
                    source,
                })?;
            emit(Response::Staged);
            Ok(())
        }
        Request::Apply {
            root,
            ops,
            data,
            sync,
        } => {
            let root = host.resolve_bytes(root.as_bytes());
            std::fs::create_dir_all(&root).map_err(|source| HostError::Write {
                host: host.name().to_owned(),
                path: root.clone(),
                source,
            })?;
            let mut content = rehost_tree::transfer::InlineContent { data: &data.0 };
            let mut report = rehost_tree::transfer::apply(
                &root,
                ops,
                &mut content,
                &mut |c| {
                    emit(Response::Progress {
                        entries: c.entries,
                        bytes: c.bytes,
                    })
                },
                cancel,
            )
            .map_err(|source| HostError::Tree {
                host: host.name().to_owned(),
                path: root.clone(),
                source,
            })?;
            if *sync && let Err(e) = rehost_tree::transfer::sync_fs(&root) {
                report.errors.push((
                    Box::default(),
                    format!("syncing the file system failed: {e}"),
                ));
            }
            emit(Response::Applied { report });
            Ok(())
        }
        Request::Connect { port, timeout_ms } => {
            let timeout = std::time::Duration::from_millis((*timeout_ms).clamp(1, 60_000));
            let mut error = None;
            for ip in [
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ] {
                match std::net::TcpStream::connect_timeout(&(ip, *port).into(), timeout) {
                    Ok(_) => {
                        error = None;
                        break;
                    }
                    Err(e) => {
                        error.get_or_insert(e.to_string());
                    }
                }
            }
            emit(Response::Connected { error });
            Ok(())
        }
        Request::ScanKeys {
            paths,
            digest_key,
            passwords,
            no_cache,
        } => crate::keys::execute(
            host,
            paths,
            digest_key.as_ref(),
            passwords,
            *no_cache,
            cancel,
            emit,
        ),
        Request::ScanRefs { paths, needles } => {
            crate::refs::execute(host, paths, needles, cancel, emit)
        }
        Request::Connections {
            ports,
            limit,
            no_process,
        } => {
            let limit = (*limit).min(crate::conns::MAX_CONNECTIONS as u64) as usize;
            let listing =
                crate::conns::established_with(ports, limit, !no_process).map_err(|source| {
                    HostError::Read {
                        host: host.name().to_owned(),
                        path: PathBuf::from("/proc/net/tcp"),
                        source,
                    }
                })?;
            emit(Response::Connections { listing });
            Ok(())
        }
        Request::UnixConnections { paths, limit } => {
            let limit = (*limit).min(crate::conns::MAX_CONNECTIONS as u64) as usize;
            crate::conns::unix::check_paths(paths).map_err(|message| HostError::Protocol {
                host: host.name().to_owned(),
                message,
            })?;
            let listing =
                crate::conns::unix::connected(paths, limit).map_err(|source| HostError::Read {
                    host: host.name().to_owned(),
                    path: PathBuf::from("/proc/net/unix"),
                    source,
                })?;
            emit(Response::UnixConnections { listing });
            Ok(())
        }
        Request::EndConnections { ports, targets } => {
            let attempts =
                crate::conns::end::end_here(ports, targets).map_err(|source| HostError::Read {
                    host: host.name().to_owned(),
                    path: PathBuf::from("/proc/net/tcp"),
                    source,
                })?;
            emit(Response::ConnectionsEnded { attempts });
            Ok(())
        }
        Request::EndUnixConnections { paths, targets } => {
            crate::conns::unix::check_paths(paths).map_err(|message| HostError::Protocol {
                host: host.name().to_owned(),
                message,
            })?;
            let attempts = crate::conns::unix_end::end_here(paths, targets).map_err(|source| {
                HostError::Read {
                    host: host.name().to_owned(),
                    path: PathBuf::from("/proc/net/unix"),
                    source,
                }
            })?;
            emit(Response::UnixConnectionsEnded { attempts });
            Ok(())
        }
        Request::Survey { options } => crate::survey::execute(host, options, cancel, emit),
        Request::Listening { ports } => {
            emit(crate::retire::listening_here(ports));
            Ok(())
        }
        Request::ReadOnly { .. } | Request::RestoreModes { .. } => {
            crate::retire::execute(host, req, cancel, emit)
        }
        Request::Probe { paths, measure } => {
            for path in paths {
                if cancel.load(Relaxed) {
                    return Err(cancelled(host, Path::new("/")));
                }
                emit(Response::Probed {
                    probe: probe(host, path.as_bytes(), *measure, cancel),
                });
            }
            Ok(())
        }
    }
}

/// One path of a `Probe` request.
fn probe(host: &LocalHost, path: &[u8], measure: bool, cancel: &AtomicBool) -> Probe {
    use crate::listing::EntryKind;
    let abs = host.resolve_bytes(path);
    let mut p = Probe {
        path: abs.as_path().into(),
        ..Probe::default()
    };
    match std::fs::symlink_metadata(&abs) {
        Ok(m) => {
            let ft = m.file_type();
            p.kind = Some(if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else if ft.is_symlink() {
                EntryKind::Symlink
            } else {
                EntryKind::Other
            });
            if measure {
                p.bytes = Some(if ft.is_dir() {
                    let mut total = 0u64;
                    match list_tree(&abs, cancel, &mut |e| {
                        if e.kind == EntryKind::File {
                            total += e.size;
                        }
                    }) {
                        Ok(_) => total,
                        Err(e) => {
                            p.error = Some(format!("failed to list: {e}"));
                            0
                        }
                    }
                } else {
                    m.len()
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => p.error = Some(e.to_string()),
    }
    // The file system the path is on, or would be on once created.
    let mut at = abs.as_path();
    while !at.exists() {
        match at.parent() {
            Some(up) => at = up,
            None => break,
        }
    }
    match rustix::fs::statvfs(at) {
        Ok(v) => {
            p.fs_free = Some(v.f_bavail.saturating_mul(v.f_frsize));
            p.fs_size = Some(v.f_blocks.saturating_mul(v.f_frsize));
        }
        Err(e) => {
            p.error
                .get_or_insert_with(|| format!("failed to examine its file system: {e}"));
        }
    }
    p
}

fn cancelled(host: &LocalHost, root: &Path) -> HostError {
    HostError::Tree {
        host: host.name().to_owned(),
        path: root.to_path_buf(),
        source: rehost_tree::TreeError::Cancelled,
    }
}

/// Reads `piece.len` bytes at `piece.offset` of a file beneath `at` (fewer at its end),
/// opened without following a symlink at any component, without blocking on a FIFO, and only
/// if it is still the regular file the walk saw ([`open_source`]): a file swapped since the
/// walk must not send what now stands there.
fn read_piece(
    at: &mut Beneath,
    piece: &FilePiece,
) -> std::io::Result<rehost_tree::aligned::AlignedBuf> {
    use std::io::Seek;
    if piece.len > MAX_PIECE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "refused: a piece of {} bytes is over the limit of {MAX_PIECE}",
                piece.len
            ),
        ));
    }
    let mut f = open_source(at, piece.path.as_bytes(), piece.ino)?;
    f.seek(std::io::SeekFrom::Start(piece.offset))?;
    // Into a page-aligned buffer: a read into one 16 bytes off a page (where malloc puts a
    // large Vec) costs the kernel several times more (issue 27).
    let mut buf = rehost_tree::aligned::AlignedBuf::with_capacity(piece.len as usize);
    buf.read_from(&mut f, piece.len as usize)?;
    Ok(buf)
}

/// Walks and hashes the tree at `path` (resolved on `host`) into a manifest, in-process.
/// Shared by the agent's `Manifest` request and [`LocalHost`]'s direct call.
pub(crate) fn take_manifest(
    host: &LocalHost,
    path: &[u8],
    options: &ManifestOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Counts),
) -> Result<Manifest, HostError> {
    let root = host.resolve_bytes(path);
    let tree_err = |source| HostError::Tree {
        host: host.name().to_owned(),
        path: root.clone(),
        source,
    };
    for p in &options.only {
        rehost_tree::only_path(p.as_bytes()).map_err(|message| HostError::Protocol {
            host: host.name().to_owned(),
            message: format!("refused a manifest of single entries: {message}"),
        })?;
    }
    let walk = walk_options(options).map_err(tree_err)?;
    let progress = &mut |p: rehost_tree::Progress| progress(p.sides[0]);
    let manifest = if options.incremental && options.only.is_empty() {
        let cache = manifest_cache(&root);
        // Text caches of earlier versions are no longer read.
        let _ = std::fs::remove_file(cache.with_extension("rmf"));
        rehost_tree::manifest_cached(&root, &walk, &cache, false, progress, cancel)
    } else {
        rehost_tree::manifest(&root, &walk, progress, cancel)
    };
    manifest.map_err(tree_err)
}

/// The walk a manifest request asks for: one conversion, for the walk on a host and the walk of
/// two local trees in one process (`verify_pair`).
pub(crate) fn walk_options(
    options: &ManifestOptions,
) -> Result<WalkOptions, rehost_tree::TreeError> {
    let excludes = options
        .excludes
        .iter()
        .map(|g| Glob::new(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WalkOptions {
        excludes,
        threads: options.threads,
        xattrs: options.xattrs,
        // Checked by the caller that takes a host's request; the walker skips any other.
        only: options.only.iter().map(|p| p.as_bytes().into()).collect(),
        ..WalkOptions::default()
    })
}

/// Where a host keeps its last manifest of the tree at `root`: named by the host's identity
/// as well as the path, so two machines sharing a home directory (and so the cache) keep one
/// each instead of overwriting each other's (issue 18).
fn manifest_cache(root: &Path) -> PathBuf {
    manifest_cache_for(&crate::identity::host_identity(), root)
}

fn manifest_cache_for(identity: &str, root: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let mut h = blake3::Hasher::new();
    h.update(identity.as_bytes());
    h.update(b"\0");
    h.update(abs.as_os_str().as_bytes());
    rehost_tree::user_cache_dir()
        .join("manifests")
        .join(format!("{}.rmc", &h.finalize().to_hex()[..32]))
}

#[cfg(test)]
mod tests {
    /// Two machines sharing a home directory walked the same path into one cache file.
    #[test]
    fn the_manifest_cache_is_keyed_by_the_host_as_well_as_the_path() {
        let root = std::path::Path::new("/srv/www");
        let a = super::manifest_cache_for("machine-a\nweb1", root);
        let b = super::manifest_cache_for("machine-b\nweb1", root);
        assert_ne!(a, b);
        assert_eq!(a, super::manifest_cache_for("machine-a\nweb1", root));
        assert_eq!(a.parent(), b.parent());
    }
}
