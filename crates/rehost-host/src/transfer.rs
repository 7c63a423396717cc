//! The built-in transfer between any two hosts, for hosts without rsync: no migration depends
//! on it being installed.
//!
//! Both trees are walked and hashed where they are ([`manifest_pair`], with each host's
//! incremental cache), the operations are planned here from the two manifests
//! (`rehost_tree::transfer::plan`, pure), and applied on the destination host in batches
//! (`Apply`), each carrying the content of its files, read from the source host (`ReadFiles`)
//! one batch ahead on a thread of its own, so both hosts work at once. Files larger than a
//! batch go ahead in pieces (`Stage`) into their temporary name. The
//! destination checks every file's BLAKE3 against the digest the walk read before putting it
//! in place, so content that changed or was damaged on the way is refused, and syncs its file
//! system after the last batch. Content passes through this process: for two ssh hosts it
//! crosses both connections. Two trees of this machine are copied in this process instead, file
//! to file (`rehost_tree::transfer::transfer`), at disk speed.

use crate::agent::{FilePiece, ManifestOptions, Request, Response};
use crate::bytes::{Blob, Bytes};
use crate::{Host, HostError, LocalHost, manifest_pair};
use rehost_tree::aligned::AlignedBuf;
use rehost_tree::transfer::{Op, TransferReport, plan};
use rehost_tree::{Counts, Progress};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// What to transfer and how.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Exclude globs, left alone on both sides.
    pub excludes: Vec<String>,
    /// Remove destination entries the source does not have.
    pub delete: bool,
    /// Reader threads of the walks; 0 for the default.
    pub threads: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            excludes: Vec::new(),
            delete: true,
            threads: 0,
        }
    }
}

/// Content bytes per `Apply` batch (and per `Stage` piece of a larger file): large enough to
/// amortise a round trip, well under the protocol's limit on a frame's content.
const BATCH_BYTES: u64 = 8 << 20;
/// Operations per batch, whatever their content.
const BATCH_OPS: usize = 4096;

/// Makes the tree at `dst` a copy of the tree at `src`, each on its host. Per-entry failures
/// are in the report's errors (non-empty means incomplete); a host that fails as a whole (lost
/// connection, unreadable root) is an error. `progress` gets the walk's counts of both sides,
/// then the copy's (operations done and bytes copied) as side 0.
pub fn transfer_between(
    src: (&dyn Host, &[u8]),
    dst: (&dyn Host, &[u8]),
    opts: &TransferOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<TransferReport, HostError> {
    if let (Some(s), Some(d)) = (src.0.as_local(), dst.0.as_local()) {
        return in_process((s, src.1), (d, dst.1), opts, cancel, progress);
    }
    let start = Instant::now();
    let (dh, droot) = dst;
    // Creates the destination's root, so that it can be walked.
    apply(
        dh,
        droot,
        Vec::new(),
        AlignedBuf::default(),
        false,
        cancel,
        &mut |_| {},
    )?;
    let options = ManifestOptions {
        excludes: opts.excludes.clone(),
        threads: opts.threads,
        xattrs: true,
        incremental: true,
        ..ManifestOptions::default()
    };
    let (ms, md) = manifest_pair(src, dst, &options, cancel, &mut |sides| {
        progress(Progress {
            sides,
            elapsed: start.elapsed(),
            copying: false,
            to_copy: 0,
        })
    });
    let (ms, md) = (ms?, md?);
    let p = plan(&ms, &md, opts.delete);
    let to_copy = p.bytes_to_copy();
    let mut report = TransferReport {
        unchanged: p.unchanged,
        errors: p.errors,
        ..TransferReport::default()
    };
    // The source is read one batch ahead of the destination's writing, on a thread of its
    // own: the two hosts work at the same time.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(2);
    std::thread::scope(|s| {
        let reader = s.spawn(move || read_ahead(src, p.ops, &tx, cancel));
        let written = write_behind(dst, &rx, &mut report, cancel, &mut |c| {
            progress(Progress {
                sides: [c, Counts::default()],
                elapsed: start.elapsed(),
                copying: true,
                to_copy,
            })
        });
        // Unblocks the reader if the writer stopped early.
        drop(rx);
        reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        written
    })?;
    Ok(report)
}

/// [`transfer_between`] for two trees of this machine: in this process, at disk speed, the
/// content copied from file to file (`rehost_tree::transfer::transfer`) instead of through
/// requests.
fn in_process(
    (sh, sroot): (&LocalHost, &[u8]),
    (dh, droot): (&LocalHost, &[u8]),
    opts: &TransferOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<TransferReport, HostError> {
    let walk = crate::capability::walk_options(&ManifestOptions {
        excludes: opts.excludes.clone(),
        threads: opts.threads,
        ..ManifestOptions::default()
    })
    .map_err(HostError::InProcess)?;
    let tree_opts = rehost_tree::transfer::TransferOptions {
        walk,
        delete: opts.delete,
    };
    rehost_tree::transfer::transfer(
        &sh.resolve_bytes(sroot),
        &dh.resolve_bytes(droot),
        &tree_opts,
        progress,
        cancel,
    )
    .map_err(HostError::InProcess)
}

/// What the reader hands to the writer, in order.
enum Msg {
    /// Operations to apply, with the content of their unstaged files; `errors` are files left
    /// out because the source could not be read whole.
    Batch {
        ops: Vec<Op>,
        data: AlignedBuf,
        errors: Vec<(Box<[u8]>, String)>,
        last: bool,
    },
    /// A piece of a large file, for its temporary name on the destination.
    Stage {
        path: Box<[u8]>,
        tmp: Box<[u8]>,
        offset: u64,
        data: AlignedBuf,
    },
    /// The source host failed as a whole.
    Failed(HostError),
}

/// Reads the content the operations need from the source, batch by batch. Stops when the
/// writer hangs up.
fn read_ahead(
    (sh, sroot): (&dyn Host, &[u8]),
    ops: Vec<Op>,
    tx: &std::sync::mpsc::SyncSender<Msg>,
    cancel: &AtomicBool,
) {
    let mut ops = ops.into_iter().peekable();
    loop {
        let mut batch = Vec::new();
        let mut errors = Vec::new();
        let mut want = Vec::new();
        let mut bytes = 0;
        while let Some(op) = ops.peek() {
            if batch.len() >= BATCH_OPS {
                break;
            }
            if let Op::File {
                path, size, ino, ..
            } = op
            {
                if *size > BATCH_BYTES {
                    // Its directory may be created by this batch: that goes first.
                    if !batch.is_empty() {
                        break;
                    }
                    let mut op = ops.next().expect("peeked");
                    let tmp = rehost_tree::transfer::temp_name();
                    match stage_ahead(sh, sroot, &op, &tmp, tx, cancel) {
                        Ok(None) => {
                            if let Op::File { staged, .. } = &mut op {
                                *staged = Some(tmp);
                            }
                            batch.push(op);
                        }
                        Ok(Some(why)) => errors.push((op.path().into(), why)),
                        Err(()) => return,
                    }
                    continue;
                }
                if bytes + size > BATCH_BYTES && !batch.is_empty() {
                    break;
                }
                bytes += size;
                want.push(FilePiece {
                    path: Bytes(path.to_vec()),
                    offset: 0,
                    len: *size,
                    ino: *ino,
                });
            }
            batch.push(ops.next().expect("peeked"));
        }
        let last = ops.peek().is_none();
        // A file that cannot be read whole is left out (and reported), so the data matches
        // the remaining operations one for one.
        let mut read = match read_files(sh, sroot, want, cancel) {
            Ok(r) => r.into_iter(),
            Err(e) => {
                let _ = tx.send(Msg::Failed(e));
                return;
            }
        };
        let mut data = AlignedBuf::with_capacity(bytes as usize);
        batch.retain(|op| {
            let Op::File {
                path,
                size,
                staged: None,
                ..
            } = op
            else {
                return true;
            };
            match read.next().expect("one result per file") {
                Ok(d) if d.len() as u64 == *size => {
                    data.extend_from_slice(&d);
                    true
                }
                Ok(d) => {
                    errors.push((
                        path.clone(),
                        format!(
                            "the source changed size while it was copied ({} bytes instead of {size}); sync again",
                            d.len()
                        ),
                    ));
                    false
                }
                Err(why) => {
                    errors.push((path.clone(), format!("failed to read the source: {why}")));
                    false
                }
            }
        });
        let msg = Msg::Batch {
            ops: batch,
            data,
            errors,
            last,
        };
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

/// Pieces of a large file in flight at once on each host: the source reads the next piece while
/// the last one crosses, and the destination writes one while the next arrives.
const PIECES_IN_FLIGHT: usize = 2;

/// Reads a large file piece by piece and sends the pieces ahead, with up to
/// [`PIECES_IN_FLIGHT`] reads outstanding (each a request of its own on the connection),
/// handed on in order. `Ok(Some(why))`: the file cannot be read whole; `Err`: stop (the source
/// failed, or the writer hung up).
fn stage_ahead(
    sh: &dyn Host,
    sroot: &[u8],
    op: &Op,
    tmp: &[u8],
    tx: &std::sync::mpsc::SyncSender<Msg>,
    cancel: &AtomicBool,
) -> Result<Option<String>, ()> {
    let Op::File {
        path, size, ino, ..
    } = op
    else {
        unreachable!("only files are staged")
    };
    let size = *size;
    let ino = *ino;
    std::thread::scope(|s| {
        let mut pending = std::collections::VecDeque::new();
        let mut next = 0;
        loop {
            while pending.len() < PIECES_IN_FLIGHT && next < size {
                let offset = next;
                let len = BATCH_BYTES.min(size - offset);
                let piece = FilePiece {
                    path: Bytes(path.to_vec()),
                    offset,
                    len,
                    ino,
                };
                let read = s.spawn(move || read_files(sh, sroot, vec![piece], cancel));
                pending.push_back((offset, len, read));
                next += len;
            }
            let Some((offset, len, read)) = pending.pop_front() else {
                return Ok(None);
            };
            let read = read.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            // Reads still outstanding when this returns early are waited for by the scope.
            let data = match read {
                Err(e) => {
                    let _ = tx.send(Msg::Failed(e));
                    return Err(());
                }
                Ok(mut r) => match r.pop().expect("one result") {
                    Ok(d) if d.len() as u64 == len => d,
                    Ok(d) => {
                        return Ok(Some(format!(
                            "the source changed size while it was copied ({} bytes at offset {offset} instead of {len}); sync again",
                            d.len()
                        )));
                    }
                    Err(why) => return Ok(Some(format!("failed to read the source: {why}"))),
                },
            };
            let msg = Msg::Stage {
                path: path.clone(),
                tmp: tmp.into(),
                offset,
                data,
            };
            tx.send(msg).map_err(|_| ())?;
        }
    })
}

/// `Stage` requests outstanding, oldest first, with their file's path.
type InFlight<'s> = std::collections::VecDeque<(
    Box<[u8]>,
    std::thread::ScopedJoinHandle<'s, Result<(), HostError>>,
)>;

/// Applies what the reader sends, in order, on the destination host. Pieces of a large file
/// after its first are written with up to [`PIECES_IN_FLIGHT`] `Stage` requests outstanding;
/// the first piece (which creates the temporary file) is written alone, and all are
/// acknowledged before the next batch (which puts the file in place) is sent.
fn write_behind(
    (dh, droot): (&dyn Host, &[u8]),
    rx: &std::sync::mpsc::Receiver<Msg>,
    report: &mut TransferReport,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Counts),
) -> Result<(), HostError> {
    let mut done = Counts::default();
    // Large files whose pieces could not be written: their operation is dropped.
    let mut unstaged: std::collections::HashSet<Box<[u8]>> = Default::default();
    let stage = |path: &[u8], tmp: Box<[u8]>, offset: u64, data: AlignedBuf| {
        let req = Request::Stage {
            root: Bytes(droot.to_vec()),
            path: Bytes(path.to_vec()),
            tmp: Bytes(tmp.into_vec()),
            offset,
            data: Blob(data),
        };
        dh.request(&req, cancel, &mut |_| {})
    };
    // A piece's outcome: the agent could not write this file (the host itself is fine), or the
    // host failed.
    let staged = |path: Box<[u8]>,
                  r: Result<(), HostError>,
                  unstaged: &mut std::collections::HashSet<Box<[u8]>>,
                  report: &mut TransferReport| match r {
        Ok(()) => Ok(()),
        Err(HostError::Remote { message, .. }) => {
            if !unstaged.contains(&path) {
                report.errors.push((path.clone(), message));
                unstaged.insert(path);
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    std::thread::scope(|s| {
        let mut pending = std::collections::VecDeque::new();
        let drain = |pending: &mut InFlight<'_>,
                     keep: usize,
                     unstaged: &mut std::collections::HashSet<Box<[u8]>>,
                     report: &mut TransferReport|
         -> Result<(), HostError> {
            while pending.len() > keep {
                let (path, h) = pending.pop_front().expect("non-empty");
                let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                staged(path, r, unstaged, report)?;
            }
            Ok(())
        };
        for msg in rx {
            match msg {
                Msg::Failed(e) => return Err(e),
                Msg::Stage {
                    path,
                    tmp,
                    offset,
                    data,
                } => {
                    if offset == 0 {
                        drain(&mut pending, 0, &mut unstaged, report)?;
                        let r = stage(&path, tmp, offset, data);
                        staged(path, r, &mut unstaged, report)?;
                        continue;
                    }
                    drain(&mut pending, PIECES_IN_FLIGHT - 1, &mut unstaged, report)?;
                    if unstaged.contains(&path) {
                        continue;
                    }
                    let p = path.clone();
                    let h = s.spawn(move || stage(&p, tmp, offset, data));
                    pending.push_back((path, h));
                }
                Msg::Batch {
                    mut ops,
                    data,
                    errors,
                    last,
                } => {
                    drain(&mut pending, 0, &mut unstaged, report)?;
                    report.errors.extend(errors);
                    ops.retain(|op| {
                        !matches!(op, Op::File { staged: Some(_), path, .. } if unstaged.contains(path))
                    });
                    let base = done;
                    let applied = apply(dh, droot, ops, data, last, cancel, &mut |c| {
                        progress(Counts {
                            entries: base.entries + c.entries,
                            bytes: base.bytes + c.bytes,
                        })
                    })?;
                    done.entries +=
                        applied.created + applied.updated + applied.deleted + applied.unchanged;
                    done.bytes += applied.bytes_copied;
                    report.absorb(applied);
                    if last {
                        break;
                    }
                }
            }
        }
        drain(&mut pending, 0, &mut unstaged, report)
    })
}

/// Reads whole pieces from the source host: one result per piece, in order.
fn read_files(
    host: &dyn Host,
    root: &[u8],
    pieces: Vec<FilePiece>,
    cancel: &AtomicBool,
) -> Result<Vec<Result<AlignedBuf, String>>, HostError> {
    if pieces.is_empty() {
        return Ok(Vec::new());
    }
    let n = pieces.len();
    let req = Request::ReadFiles {
        root: Bytes(root.to_vec()),
        pieces,
    };
    let lens: Vec<u64> = match &req {
        Request::ReadFiles { pieces, .. } => pieces.iter().map(|p| p.len).collect(),
        _ => unreachable!(),
    };
    let mut out = Vec::with_capacity(n);
    crate::request_bounded(host, &req, cancel, &mut |r| {
        let got = match r {
            Response::FileData { data } => Ok(data.0),
            Response::FileError { message } => Err(message),
            _ => return Ok(()),
        };
        match lens.get(out.len()) {
            None => return Err(format!("sent more than the {n} file pieces asked for")),
            Some(&len) if got.as_ref().is_ok_and(|d| d.len() as u64 > len) => {
                return Err(format!(
                    "sent a file piece longer than the {len} bytes asked for"
                ));
            }
            _ => {}
        }
        out.push(got);
        Ok(())
    })?;
    if out.len() != n {
        return Err(HostError::Protocol {
            host: host.name().to_owned(),
            message: format!("asked for {n} file pieces, received {}", out.len()),
        });
    }
    Ok(out)
}

/// Applies one batch on the destination host.
fn apply(
    host: &dyn Host,
    root: &[u8],
    ops: Vec<Op>,
    data: AlignedBuf,
    sync: bool,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Counts),
) -> Result<TransferReport, HostError> {
    let req = Request::Apply {
        root: Bytes(root.to_vec()),
        ops,
        data: Blob(data),
        sync,
    };
    let mut report = None;
    host.request(&req, cancel, &mut |r| match r {
        Response::Progress { entries, bytes } => progress(Counts { entries, bytes }),
        Response::Applied { report: r } => report = Some(r),
        _ => {}
    })?;
    report.ok_or_else(|| HostError::Protocol {
        host: host.name().to_owned(),
        message: "the transfer batch was not acknowledged".into(),
    })
}
