//! The `scan_keys` capability: key material under paths of a host, found where the files are
//! (in-process for a local host, by the agent on an ssh host) so that only public facts cross
//! the network. Each regular file is reached through directory descriptors without following a
//! symlink (`rehost_tree::beneath`), its first bytes sniffed (`rehost_keys::sniff`), and only
//! a file that can be key material is read whole and parsed; symlinks are not followed and
//! devices and FIFOs not opened below a scanned directory (a block device named as a scanned
//! path itself is read for a LUKS header, nothing else).
//!
//! A file named `crypttab` is read as one; each key file an entry names is looked up on the
//! host — inside its root, from the root down without crossing a symlink — and read only for
//! its keyed digest (`rehost_keys::KeyFile`), so that even a hostile crypttab naming
//! `/etc/shadow` gets nothing of it printed: only a digest under a key drawn for this scan.

use crate::agent::{Request, Response};
use crate::keys_cache::{Cache, Ident};
use crate::refs::{Job, Queue};
use crate::{Bytes, Host, HostError, LocalHost};
use rehost_keys::{DigestKey, Found, Scan};
use rehost_tree::aligned::AlignedBuf;
use rehost_tree::beneath::{Beneath, open_source};
use rustix::fs::{FileType, Mode, OFlags};
use std::io::Read;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;

/// Findings per `KeysFound` response.
const FOUND_PER_BATCH: usize = 256;
/// Errors reported by path; past this, only their number.
const MAX_ERRORS: usize = 1000;
/// The most findings one scan may return (a hostile agent's answers are bounded).
const MAX_FOUND: usize = 1_000_000;
/// The most notes on the cache one scan's answer keeps.
const MAX_NOTES: usize = 8;

/// Scans `paths` (plan paths, resolved on `host`) for key material, streaming findings.
pub(crate) fn execute(
    host: &LocalHost,
    paths: &[Bytes],
    digest_key: Option<&DigestKey>,
    passwords: &[rehost_keys::Password],
    no_cache: bool,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Response),
) -> Result<(), HostError> {
    let digest_key = match digest_key {
        Some(k) => k.clone(),
        None => fresh_digest_key().map_err(|e| HostError::Read {
            host: host.name().to_owned(),
            path: "/dev/urandom".into(),
            source: e,
        })?,
    };
    let mut batch = Vec::new();
    let mut errors = Errors::default();
    let (mut files, mut read) = (0u64, 0u64);
    let mut dirs: Vec<Job> = Vec::new();
    let mut roots: Vec<std::path::PathBuf> = Vec::new();
    let mut buf = AlignedBuf::with_capacity(rehost_keys::HEAD);
    // The paths named: a file or a device examined here, a directory queued for the walk.
    for path in paths {
        let shown = String::from_utf8_lossy(path.as_bytes()).into_owned();
        let abs = host.resolve_bytes(path.as_bytes());
        let meta = match std::fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("{shown}: {e}"));
                continue;
            }
        };
        if meta.is_dir() {
            match rustix::fs::open(
                &abs,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => {
                    roots.push(abs.clone());
                    dirs.push(Job {
                        dir,
                        shown: shown.trim_end_matches('/').to_owned(),
                    })
                }
                Err(e) => errors.push(format!("{shown}: {e}")),
            }
            continue;
        }
        let examined = if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
            // A block device named as such: its LUKS header, if it has one.
            files += 1;
            luks_of_device(&abs)
        } else if meta.is_file() {
            let Some(name) = abs.file_name() else {
                continue;
            };
            use std::os::unix::ffi::OsStrExt;
            files += 1;
            Beneath::open(abs.parent().unwrap_or(Path::new("/"))).and_then(|mut at| {
                let f = open_source(&mut at, name.as_bytes(), None)?;
                examine(f, &shown, &digest_key, passwords, &mut buf).map(Result::ok)
            })
        } else {
            errors.push(format!(
                "{shown}: not a directory or a regular file (a symlink is not followed)"
            ));
            continue;
        };
        match examined {
            Ok(None) => {}
            Ok(Some(e)) => {
                read += 1;
                found(host, &shown, e, &digest_key, &mut errors, &mut batch, emit);
            }
            Err(e) => errors.push(format!("{shown}: {e}")),
        }
    }
    drop(buf);
    // The files a scan of these directories found nothing in, unchanged since: not opened.
    let mut cache = if no_cache || dirs.is_empty() {
        Cache::none()
    } else {
        Cache::open(&roots)
    };
    let mut cached = 0u64;
    let mut settled: Vec<u128> = Vec::new();
    let mut kept: Vec<(u128, Box<[u8]>)> = Vec::new();
    // The directories: read by descriptor by `THREADS` threads sharing a queue (as the
    // reference scan's), each file opened relative to its directory.
    let queue = Queue::new();
    for d in dirs {
        queue.push(d);
    }
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<Vec<Event>>(64);
    std::thread::scope(|s| {
        let mut threads = Vec::new();
        for _ in 0..THREADS {
            let (tx, queue, stop, digest_key) = (tx.clone(), &queue, &stop, &digest_key);
            let cache = &cache;
            threads.push(s.spawn(move || {
                let mut buf = AlignedBuf::with_capacity(rehost_keys::HEAD);
                let mut out = Vec::new();
                let mut tally = Tally::default();
                let mut at = Walk {
                    queue,
                    digest_key,
                    passwords,
                    cache,
                    buf: &mut buf,
                    out: &mut out,
                    tally: &mut tally,
                    subdirs: Vec::new(),
                };
                while let Some(job) = queue.next() {
                    if !stop.load(Relaxed) && !cancel.load(Relaxed) {
                        read_dir(&job, &mut at);
                    }
                    queue.done();
                    if !at.out.is_empty() && tx.send(std::mem::take(at.out)).is_err() {
                        stop.store(true, Relaxed);
                    }
                }
                tally
            }));
        }
        drop(tx);
        for events in rx {
            for e in events {
                match e {
                    Event::Examined(shown, e, opened) => {
                        read += u64::from(opened);
                        found(host, &shown, *e, &digest_key, &mut errors, &mut batch, emit);
                    }
                    Event::Error(e) => errors.push(e),
                }
            }
        }
        for t in threads {
            // A thread that panicked counted nothing: its files are not claimed examined.
            if let Ok(t) = t.join() {
                files += t.files;
                cached += t.cached;
                settled.extend(t.settled);
                kept.extend(t.found);
            }
        }
    });
    if cancel.load(Relaxed) {
        return Err(HostError::Tree {
            host: host.name().to_owned(),
            path: "/".into(),
            source: rehost_tree::TreeError::Cancelled,
        });
    }
    if !batch.is_empty() {
        emit(Response::KeysFound { found: batch });
    }
    // Only a scan that ran to its end rewrites the cache (it holds what this scan settled).
    if !stop.load(Relaxed) {
        cache.save(settled, kept, cached);
    }
    let Errors {
        list: mut errors,
        more,
    } = errors;
    errors.sort_by(|a, b| by_components(a, b));
    let more = errors.len().saturating_sub(MAX_ERRORS) as u64 + more;
    if more > 0 {
        errors.truncate(MAX_ERRORS);
        errors.push(format!("and {more} more paths that could not be read"));
    }
    emit(Response::KeysScanned {
        files,
        read,
        errors,
        cached,
        notes: cache.notes,
    });
    Ok(())
}

/// Reader threads walking the scanned directories (a queue of directory descriptors).
const THREADS: usize = 4;

/// What a walking thread tells the emitting one.
enum Event {
    /// A file that could hold keys, read and parsed (`true`), or whose findings the cache
    /// kept (`false`: not opened).
    Examined(String, Box<Examined>, bool),
    Error(String),
}

/// What could not be read, by path; kept up to twice [`MAX_ERRORS`] before sorting (the
/// threads' order is not the walk's), then counted.
#[derive(Default)]
struct Errors {
    list: Vec<String>,
    more: u64,
}

impl Errors {
    fn push(&mut self, e: String) {
        if self.list.len() < 2 * MAX_ERRORS {
            self.list.push(e);
        } else {
            self.more += 1;
        }
    }
}

/// A use (`PATH:LINE`) as the walk meets it: by path as [`by_components`], then by line.
fn by_use(u: &str) -> (Vec<&str>, u64) {
    match u.rsplit_once(':') {
        Some((p, l)) if l.bytes().all(|b| b.is_ascii_digit()) => {
            (p.split('/').collect(), l.parse().unwrap_or(0))
        }
        _ => (u.split('/').collect(), 0),
    }
}

/// Paths compared component by component: the order of a walk that sorts each directory.
fn by_components(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// One file's findings, in batches: its keys, and the key files its crypttab entries name.
fn found(
    host: &LocalHost,
    shown: &str,
    examined: Examined,
    digest_key: &DigestKey,
    errors: &mut Errors,
    batch: &mut Vec<Found>,
    emit: &mut dyn FnMut(Response),
) {
    let Examined {
        uid,
        gid,
        mode,
        mut keys,
        why,
        ..
    } = examined;
    for w in why {
        errors.push(format!("{shown}: {w}"));
    }
    let files_named = key_files(host, shown, &mut keys, digest_key);
    let named = keys.into_iter().map(|key| Found {
        path: shown.to_owned(),
        uid,
        gid,
        mode,
        key,
        used_by: Vec::new(),
    });
    for f in named.chain(files_named) {
        batch.push(f);
        if batch.len() >= FOUND_PER_BATCH {
            emit(Response::KeysFound {
                found: std::mem::take(batch),
            });
        }
    }
}

/// What a walking thread counts: regular files examined, those skipped as unchanged since a
/// scan found nothing in them, and the cache entries of the files it may skip next time.
#[derive(Default)]
struct Tally {
    files: u64,
    cached: u64,
    settled: Vec<u128>,
    /// The files whose findings the cache keeps: their entries and keys (JSON).
    found: Vec<(u128, Box<[u8]>)>,
}

/// A walking thread's share: the queue, the scan's parameters, its buffer and counts.
struct Walk<'a> {
    queue: &'a Queue,
    digest_key: &'a DigestKey,
    passwords: &'a [rehost_keys::Password],
    cache: &'a Cache,
    buf: &'a mut AlignedBuf,
    out: &'a mut Vec<Event>,
    tally: &'a mut Tally,
    /// The directory's subdirectories, queued together once it is read.
    subdirs: Vec<Job>,
}

/// Reads one directory: its subdirectories queued, its regular files opened relative to it
/// (never following a symlink) and examined; symlinks, devices, FIFOs and sockets are left.
/// A file the cache knows to hold nothing, unchanged (its `stat` says so), is not opened.
fn read_dir(job: &Job, w: &mut Walk<'_>) {
    crate::refs::entries(job, &mut |entry| {
        let (name, kind) = match entry {
            Ok(e) => e,
            Err(e) => {
                w.out.push(Event::Error(e));
                return ControlFlow::Continue(());
            }
        };
        match kind {
            FileType::Directory => match rustix::fs::openat(
                &job.dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => w.subdirs.push(Job {
                    dir,
                    shown: job.path_of(name),
                }),
                Err(e) => w.out.push(Event::Error(format!(
                    "{}: failed to read directory: {e}",
                    job.path_of(name)
                ))),
            },
            FileType::RegularFile => {
                w.tally.files += 1;
                if w.cache.has_entries()
                    && let Ok(st) =
                        rustix::fs::statat(&job.dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                {
                    let entry = Ident::of_stat(&st).entry(&job.shown, name.to_bytes());
                    if w.cache.contains(entry) {
                        w.tally.cached += 1;
                        w.tally.settled.push(entry);
                        return ControlFlow::Continue(());
                    }
                    // Certificates and public keys found in it before, unchanged since: their
                    // public facts as the cache kept them, with the owner and mode of now.
                    if let Some(kept) = w.cache.findings(entry)
                        && let Ok(keys) = serde_json::from_slice::<Vec<rehost_keys::Key>>(kept)
                    {
                        w.tally.cached += 1;
                        w.tally.found.push((entry, Box::from(kept)));
                        let e = Examined {
                            uid: st.st_uid,
                            gid: st.st_gid,
                            mode: st.st_mode & 0o7777,
                            keys,
                            why: Vec::new(),
                            cacheable: None,
                        };
                        w.out
                            .push(Event::Examined(job.path_of(name), Box::new(e), false));
                        return ControlFlow::Continue(());
                    }
                }
                let opened = rustix::fs::openat(
                    &job.dir,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                );
                let shown = job.path_of(name);
                let examined = opened
                    .map_err(std::io::Error::from)
                    .and_then(|fd| examine(fd.into(), &shown, w.digest_key, w.passwords, w.buf));
                match examined {
                    Ok(Ok(e)) => {
                        if let Some(ident) = e.cacheable
                            && w.cache.settled(&ident)
                            && let Ok(json) = serde_json::to_vec(&e.keys)
                        {
                            let entry = ident.entry(&job.shown, name.to_bytes());
                            w.tally.found.push((entry, json.into()));
                        }
                        w.out.push(Event::Examined(shown, Box::new(e), true))
                    }
                    Ok(Err(ident)) => {
                        // Nothing in it: recorded if it settled before the scan began.
                        if w.cache.settled(&ident) {
                            w.tally
                                .settled
                                .push(ident.entry(&job.shown, name.to_bytes()));
                        }
                    }
                    Err(e) => w.out.push(Event::Error(format!("{shown}: {e}"))),
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    w.queue.push_all(&mut w.subdirs);
}

/// One file examined: its owner and permission bits, its keys, what could not be read of it,
/// and, where its findings may be kept in the cache (it holds only certificates and public
/// keys, all read), its identity when it was read.
struct Examined {
    uid: u32,
    gid: u32,
    mode: u32,
    keys: Vec<rehost_keys::Key>,
    why: Vec<String>,
    cacheable: Option<Ident>,
}

impl Examined {
    fn new(meta: &std::fs::Metadata, keys: Vec<rehost_keys::Key>, why: Vec<String>) -> Examined {
        Examined {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            keys,
            why,
            cacheable: None,
        }
    }
}

/// A key for key file digests, from the kernel's random source.
pub fn fresh_digest_key() -> std::io::Result<DigestKey> {
    let mut k = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    Ok(DigestKey(k))
}

/// One open file: its first bytes sniffed (one read into a page-aligned buffer, none for an
/// empty file), and read whole and parsed only if it can hold keys or is a service's
/// configuration (known by its path `shown`, the path on the host). Only a regular file is
/// read: one replaced by something else since its directory was read is refused. A file that
/// holds nothing a scan reads is answered by its [`Ident`] (for the cache).
fn examine(
    f: std::fs::File,
    shown: &str,
    digest_key: &DigestKey,
    passwords: &[rehost_keys::Password],
    buf: &mut AlignedBuf,
) -> std::io::Result<Result<Examined, Ident>> {
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other(
            "refused: no longer a regular file (replaced since the walk)",
        ));
    }
    let mut f = f;
    buf.truncate(0);
    let want = meta.len().min(rehost_keys::HEAD as u64) as usize;
    if want > 0 {
        buf.read_from(&mut f, want)?;
    }
    let head = &buf[..];
    let name = shown.rsplit('/').next().unwrap_or(shown).as_bytes();
    let sniffed = if name == b"crypttab" && meta.len() > 0 {
        Some(rehost_keys::Sniff::Crypttab)
    } else {
        rehost_keys::sniff(head, meta.len())
    };
    if rehost_keys::is_wireguard(shown) && meta.len() > 0 {
        let head = more(&mut f, head, rehost_keys::MAX_CRYPTTAB)?;
        let (keys, why) = rehost_keys::parse_wireguard(&head, &digest_key.0);
        return Ok(Ok(Examined::new(&meta, keys, why)));
    }
    // A GnuPG agent's key file, known by its path; a keytab, whose keys are digested under
    // the scan's key.
    if rehost_keys::is_gpg_agent_key(shown) && meta.len() > 0 {
        let head = more(&mut f, head, rehost_keys::MAX_DER)?;
        let (keys, why) = rehost_keys::parse_gpg_agent_key(shown, &head);
        return Ok(Ok(Examined::new(&meta, keys, why)));
    }
    if sniffed == Some(rehost_keys::Sniff::Keytab) {
        let head = more(&mut f, head, rehost_keys::MAX_CRYPTTAB)?;
        let (keys, why) = rehost_keys::parse_keytab(&head, &digest_key.0);
        // Not a keytab after all (its first entry does not read): nothing was read of worth.
        if keys.is_empty() && why.is_empty() {
            return Ok(Err(Ident::of_meta(&meta)));
        }
        return Ok(Ok(Examined::new(&meta, keys, why)));
    }
    let service = rehost_keys::config_service(shown)
        .filter(|_| sniffed != Some(rehost_keys::Sniff::Luks) && meta.len() > 0);
    if let Some(service) = service {
        let limit = rehost_keys::MAX_CRYPTTAB.max(match sniffed {
            Some(rehost_keys::Sniff::Pem) => rehost_keys::MAX_PEM,
            _ => 0,
        });
        let head = more(&mut f, head, limit)?;
        let (mut keys, mut why) = rehost_keys::parse_config(service, shown, &head, &digest_key.0);
        // OpenVPN's inline blocks were read with it; elsewhere a PEM block is a key as anywhere.
        if let Some(how) = sniffed
            && service != rehost_keys::Service::Openvpn
        {
            let (k, w) = rehost_keys::parse_as(how, &head);
            keys.extend(k);
            why.extend(w);
        }
        if meta.len() > limit {
            why.push(format!(
                "larger than {limit} bytes: only its beginning read as a configuration"
            ));
        }
        return Ok(Ok(Examined::new(&meta, keys, why)));
    }
    let Some(how) = sniffed else {
        return Ok(Err(Ident::of_meta(&meta)));
    };
    let limit = match how {
        rehost_keys::Sniff::Pem => rehost_keys::MAX_PEM,
        rehost_keys::Sniff::Luks => rehost_keys::luks_len(head),
        rehost_keys::Sniff::Crypttab => rehost_keys::MAX_CRYPTTAB,
        _ => rehost_keys::MAX_DER,
    };
    let head = more(&mut f, head, limit)?;
    let (keys, why) = rehost_keys::parse_as_opened(how, &head, passwords);
    // What was read is dropped here; nothing of it is kept but the keys' public facts.
    let mut why = why;
    if how == rehost_keys::Sniff::Crypttab && meta.len() > rehost_keys::MAX_CRYPTTAB {
        why.push(format!(
            "larger than {} bytes: only its beginning read",
            rehost_keys::MAX_CRYPTTAB
        ));
    }
    // Certificates and public keys only, every one read: public facts the cache may keep, so
    // that the next scan need not parse the file again while it is unchanged.
    let cacheable = why.is_empty()
        && !keys.is_empty()
        && matches!(
            how,
            rehost_keys::Sniff::Pem | rehost_keys::Sniff::Der | rehost_keys::Sniff::SshPublic
        )
        && keys.iter().all(|k| {
            use rehost_keys::Kind;
            let public = matches!(
                k.kind,
                Kind::Certificate | Kind::PublicKey | Kind::Pkcs1Public | Kind::SshPublic
            );
            public && k.unknown.is_none()
        });
    Ok(Ok(Examined {
        cacheable: cacheable.then(|| Ident::of_meta(&meta)),
        ..Examined::new(&meta, keys, why)
    }))
}

/// The bytes sniffed and what follows them, up to `limit` bytes in all: a file that can hold
/// keys, read whole (under its format's cap).
fn more(f: &mut std::fs::File, head: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    let mut all = head.to_vec();
    f.take(limit.saturating_sub(head.len() as u64))
        .read_to_end(&mut all)?;
    Ok(all)
}

/// A block device's LUKS header, if it starts with one. Opened without following a symlink and
/// without blocking; only the header's bytes are read.
fn luks_of_device(path: &Path) -> std::io::Result<Option<Examined>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)?;
    let meta = f.metadata()?;
    let mut head = Vec::with_capacity(rehost_keys::HEAD);
    let mut f = f;
    (&mut f)
        .take(rehost_keys::HEAD as u64)
        .read_to_end(&mut head)?;
    if !head.starts_with(rehost_keys::LUKS_MAGIC) {
        return Ok(None);
    }
    f.take(rehost_keys::luks_len(&head).saturating_sub(head.len() as u64))
        .read_to_end(&mut head)?;
    let (keys, why) = rehost_keys::parse_as(rehost_keys::Sniff::Luks, &head);
    Ok(Some(Examined::new(&meta, keys, why)))
}

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY)
        .bits() as i32
}

/// The key files the crypttab entries among `keys` name, each looked up on `host` and marked
/// found or not in its entry; those found, as findings by their keyed digest, used by the
/// entries that name them (`CRYPTTAB:LINE`).
fn key_files(
    host: &LocalHost,
    crypttab: &str,
    keys: &mut [rehost_keys::Key],
    digest_key: &DigestKey,
) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    for k in keys.iter_mut() {
        if let Some(r) = k.reference.as_mut() {
            referenced(host, crypttab, r, digest_key, &mut out);
            continue;
        }
        let Some(c) = k.crypttab.as_mut() else {
            continue;
        };
        let used = format!("{crypttab}:{}", c.line);
        if let Some(uuid) = c.uuid().map(str::to_owned) {
            match luks_by_uuid(host, &uuid) {
                ByUuid::NotLooked => {}
                ByUuid::Absent => c.luks_found = Some(false),
                ByUuid::Found(shown, found) => {
                    let Examined {
                        uid,
                        gid,
                        mode,
                        keys,
                        ..
                    } = *found;
                    c.luks_found = Some(true);
                    c.luks_header = Some(shown.clone());
                    for key in keys {
                        out.push(Found {
                            path: shown.clone(),
                            uid,
                            gid,
                            mode,
                            key,
                            used_by: vec![used.clone()],
                        });
                    }
                }
            }
        }
        let Some(path) = c.key_file_to_read().map(str::to_owned) else {
            continue;
        };
        if let Some(f) = out.iter_mut().find(|f| f.path == path) {
            c.key_file_found = Some(true);
            f.used_by.push(used);
            continue;
        }
        match read_key_file(host, &path) {
            Ok((meta, bytes)) => {
                c.key_file_found = Some(true);
                out.push(Found {
                    path,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mode: meta.mode() & 0o7777,
                    key: rehost_keys::key_file(&bytes, &digest_key.0),
                    used_by: vec![used],
                });
                // `bytes` is dropped here: only its keyed digest is kept.
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                c.key_file_found = Some(false);
            }
            Err(e) => {
                c.key_file_note = Some(format!("not read: {e}"));
            }
        }
    }
    out
}

/// What `/dev/disk/by-uuid` says of a UUID.
enum ByUuid {
    /// The host has no `/dev/disk/by-uuid` (a container, a tree without `/dev`).
    NotLooked,
    /// No device with that UUID, or not a LUKS header there.
    Absent,
    /// The header, shown by its by-uuid path.
    Found(String, Box<Examined>),
}

/// The LUKS header of the device `/dev/disk/by-uuid/UUID` names on `host` (inside its root):
/// udev's link is followed, but only to a device under the root's `/dev`; only the header's
/// bytes are read.
fn luks_by_uuid(host: &LocalHost, uuid: &str) -> ByUuid {
    let root = host.root().unwrap_or(Path::new("/"));
    let dir = root.join("dev/disk/by-uuid");
    if !dir.is_dir() {
        return ByUuid::NotLooked;
    }
    let shown = format!("/dev/disk/by-uuid/{uuid}");
    let Ok(dev) = std::fs::canonicalize(dir.join(uuid)) else {
        return ByUuid::Absent;
    };
    let Ok(devs) = std::fs::canonicalize(root.join("dev")) else {
        return ByUuid::NotLooked;
    };
    if !dev.starts_with(&devs) {
        return ByUuid::NotLooked;
    }
    match luks_of_device(&dev) {
        Ok(Some(e)) => ByUuid::Found(shown, Box::new(e)),
        Ok(None) => ByUuid::Absent,
        Err(_) => ByUuid::NotLooked,
    }
}

/// The file a configuration's directive names, looked up on `host`: its keys and certificates
/// (or, for a static key or passphrase file, its keyed digest), each used by the directive
/// (`CONFIG:LINE`); the reference marked found or not.
fn referenced(
    host: &LocalHost,
    config: &str,
    r: &mut rehost_keys::Reference,
    digest_key: &DigestKey,
    out: &mut Vec<Found>,
) {
    let Some(path) = r.resolved.clone() else {
        return;
    };
    let used = format!("{config}:{}", r.line);
    match read_key_file(host, &path) {
        Ok((meta, bytes)) => {
            r.found = Some(true);
            let mut keys = rehost_keys::parse(&bytes).0;
            if keys.is_empty() && r.symmetric() {
                keys.push(rehost_keys::key_file(&bytes, &digest_key.0));
            }
            if keys.is_empty() {
                r.note = Some("holds no key or certificate rehost reads".into());
            }
            for key in keys {
                out.push(Found {
                    path: path.clone(),
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mode: meta.mode() & 0o7777,
                    key,
                    used_by: vec![used.clone()],
                });
            }
            // `bytes` is dropped here: only public facts or a keyed digest are kept.
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.found = Some(false),
        Err(e) => r.note = Some(format!("not read: {e}")),
    }
}

/// A key file by its path on `host`: from the host's root down, no symlink crossed, no `..`,
/// a regular file of at most `MAX_KEY_FILE` bytes.
pub(crate) fn read_key_file(
    host: &LocalHost,
    path: &str,
) -> std::io::Result<(std::fs::Metadata, Vec<u8>)> {
    let rel = path.trim_start_matches('/').as_bytes();
    if !rehost_tree::manifest::is_tree_path(rel) {
        return Err(std::io::Error::other(
            "refused: `.`, `..` or an empty component in its path",
        ));
    }
    let root = host.root().unwrap_or(Path::new("/"));
    let mut at = Beneath::open(root)?;
    let f = open_source(&mut at, rel, None).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            std::io::Error::other("refused: a symlink on its path (not followed)")
        } else {
            e
        }
    })?;
    let meta = f.metadata()?;
    if meta.len() > rehost_keys::MAX_KEY_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} bytes: not a key file",
            rehost_keys::MAX_KEY_FILE
        )));
    }
    let mut bytes = Vec::new();
    f.take(rehost_keys::MAX_KEY_FILE).read_to_end(&mut bytes)?;
    Ok((meta, bytes))
}

/// Scans `paths` on `host` for key material: every finding, what could not be read, and how
/// many files were examined; an encrypted key takes the public half of a public key or
/// certificate of the same name beside it. Bounded like every answer of a host.
pub fn scan_keys<H: Host + ?Sized>(
    host: &H,
    paths: &[&str],
    cancel: &AtomicBool,
) -> Result<Scan, HostError> {
    scan_keys_with(host, paths, None, cancel)
}

/// [`scan_keys`], with key files digested under `digest_key`: two scans to compare share one
/// ([`fresh_digest_key`]), so that a key file's digest matches between them and nowhere else.
pub fn scan_keys_with<H: Host + ?Sized>(
    host: &H,
    paths: &[&str],
    digest_key: Option<&DigestKey>,
    cancel: &AtomicBool,
) -> Result<Scan, HostError> {
    scan_keys_opened(host, paths, digest_key, &[], cancel)
}

/// [`scan_keys_with`], opening PKCS#12 bundles with the first of `passwords` that does. The
/// passwords go to the host that holds the bundles (inside the ssh connection to an agent) and
/// nowhere else; they are not kept.
pub fn scan_keys_opened<H: Host + ?Sized>(
    host: &H,
    paths: &[&str],
    digest_key: Option<&DigestKey>,
    passwords: &[rehost_keys::Password],
    cancel: &AtomicBool,
) -> Result<Scan, HostError> {
    scan_keys_cached(host, paths, digest_key, passwords, true, cancel)
}

/// [`scan_keys_opened`], with the host's key scan cache used (`cache`: the files a scan of the
/// same paths found nothing in, unchanged since, are not opened; counted in
/// [`Scan::cached`]) or not (every file read; `--no-cache`). See docs/keys.md.
pub fn scan_keys_cached<H: Host + ?Sized>(
    host: &H,
    paths: &[&str],
    digest_key: Option<&DigestKey>,
    passwords: &[rehost_keys::Password],
    cache: bool,
    cancel: &AtomicBool,
) -> Result<Scan, HostError> {
    let req = Request::ScanKeys {
        paths: paths.iter().map(|p| Bytes::from(*p)).collect(),
        digest_key: digest_key.cloned(),
        passwords: passwords.to_vec(),
        no_cache: !cache,
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
            cached,
            notes,
        } if !ended => {
            ended = true;
            scan.files = files;
            scan.read = read;
            scan.cached = cached.min(files);
            scan.errors = errors.into_iter().take(MAX_ERRORS + 1).collect();
            scan.notes = notes.into_iter().take(MAX_NOTES).collect();
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
    // The walk's threads find in no particular order: the order of a sorted walk.
    scan.found.sort_by(|a, b| by_components(&a.path, &b.path));
    scan.merge_duplicates();
    // A file several configurations name is used by them in the walk's order of theirs.
    for f in &mut scan.found {
        f.used_by.sort_by(|a, b| by_use(a).cmp(&by_use(b)));
    }
    scan.take_public_halves();
    scan.link_openpgp();
    scan.link_crypttab();
    Ok(scan)
}

/// The most passwords a `--password-file` may hold.
pub const MAX_PASSWORDS: usize = 64;

/// The passwords of `--password-file`: one a line (a line's end is not part of it), empty
/// lines skipped. Refused: a file readable or writable by group or others, a symlink, not a
/// regular file, more than 64 passwords or a line over 1024 bytes. No error shows a password.
pub fn read_password_file(file: &Path) -> Result<Vec<rehost_keys::Password>, String> {
    use std::io::Read;
    let shown = file.display();
    if std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "refused: the password file {shown} is a symlink (name the file itself)"
        ));
    }
    // O_NOFOLLOW: a symlink put there after the check above is refused too.
    let f = std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().read(true),
        rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    )
    .open(file)
    .map_err(|e| format!("failed to open the password file {shown}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("the password file {shown} is not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "refused: the password file {shown} is readable or writable by others than its owner (mode {:04o}): chmod 600 {shown}",
            meta.mode() & 0o7777
        ));
    }
    let mut bytes = Vec::new();
    f.take((MAX_PASSWORDS * (rehost_keys::MAX_PASSWORD + 2)) as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("failed to read the password file {shown}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.len() > rehost_keys::MAX_PASSWORD {
            return Err(format!(
                "the password file {shown}: line {} is longer than {} bytes",
                i + 1,
                rehost_keys::MAX_PASSWORD
            ));
        }
        out.push(rehost_keys::Password(line.to_vec()));
        if out.len() > MAX_PASSWORDS {
            return Err(format!(
                "the password file {shown} holds more than {MAX_PASSWORDS} passwords"
            ));
        }
    }
    bytes.fill(0);
    if out.is_empty() {
        return Err(format!("the password file {shown} holds no password"));
    }
    Ok(out)
}
