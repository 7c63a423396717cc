//! Benchmark of `verify tree` against its peers (rsync -rcn, rsync -acn, b3sum), on the two data
//! sets of issue 3: (1) about 4 GiB in 200 large files, (2) 300,000 small files of 1-16 KiB in
//! nested directories. Each set is created as tree A and an identical tree B with a few injected
//! differences, then the tools are timed alternately (A B A B ...), warm (every tree read once
//! just before each timed run) and, as root, cold (caches dropped before each run). Prints
//! medians and ratios. Also times an incremental re-verification after changing 1% of (2).
//!
//! ```text
//! cargo run --release -p rehost-tree --bin rehost-bench-tree -- [--dir /var/tmp/rehost-bench]
//!     [--large-files 200] [--large-mib 20] [--small-files 300000] [--runs 3] [--cold-runs 1]
//!     [--threads 16] [--only large|small] [--keep] [--rehost-only]
//!     [--incremental-only] [--inc-runs 1] [--transfer] [--transfer-only]
//! ```
//!
//! `--transfer` also times the built-in transfer against `rsync -aHAX --numeric-ids --sparse
//! --delete` on tree A: a fresh copy (each followed by `sync`, since the built-in transfer ends
//! with `syncfs`) and a repeat with nothing changed.

use rehost_tree::{VerifyOptions, WalkOptions, verify_trees};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

struct Args {
    dir: PathBuf,
    large_files: usize,
    large_mib: usize,
    small_files: usize,
    runs: usize,
    cold_runs: usize,
    threads: usize,
    only: Option<String>,
    rehost_only: bool,
    keep: bool,
    incremental_only: bool,
    inc_runs: usize,
    transfer: bool,
    transfer_only: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: PathBuf::from("/var/tmp/rehost-bench"),
        large_files: 200,
        large_mib: 20,
        small_files: 300_000,
        runs: 3,
        cold_runs: 1,
        threads: 0,
        only: None,
        keep: false,
        rehost_only: false,
        incremental_only: false,
        inc_runs: 1,
        transfer: false,
        transfer_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .unwrap_or_else(|| die(&format!("{k} needs a value")))
        };
        match k.as_str() {
            "--dir" => a.dir = v().into(),
            "--large-files" => a.large_files = num(&v()),
            "--large-mib" => a.large_mib = num(&v()),
            "--small-files" => a.small_files = num(&v()),
            "--runs" => a.runs = num(&v()),
            "--cold-runs" => a.cold_runs = num(&v()),
            "--threads" => a.threads = num(&v()),
            "--only" => a.only = Some(v()),
            "--keep" => a.keep = true,
            "--rehost-only" => a.rehost_only = true,
            "--incremental-only" => a.incremental_only = true,
            "--inc-runs" => a.inc_runs = num(&v()),
            "--transfer" => a.transfer = true,
            "--transfer-only" => {
                a.transfer = true;
                a.transfer_only = true;
            }
            _ => die(&format!(
                "unknown argument {k}; see the doc comment of rehost-bench-tree.rs"
            )),
        }
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("rehost-bench-tree: {msg}");
    std::process::exit(2)
}

fn num(s: &str) -> usize {
    s.parse()
        .unwrap_or_else(|_| die(&format!("not a number: {s}")))
}

/// Deterministic pseudo-random bytes (xorshift), fast enough not to dominate creation.
fn fill(buf: &mut [u8], mut seed: u64) {
    seed |= 1;
    for chunk in buf.chunks_mut(8) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn set_mtime(p: &Path, sec: i64) {
    let f = std::fs::File::options()
        .write(false)
        .read(true)
        .open(p)
        .or_else(|_| std::fs::File::open(p));
    if let Ok(f) = f {
        let _ = f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(sec as u64));
    }
}

fn write_both(a: &Path, b: &Path, rel: &str, data: &[u8]) {
    for root in [a, b] {
        let p = root.join(rel);
        std::fs::write(&p, data).unwrap_or_else(|e| die(&format!("write {}: {e}", p.display())));
        set_mtime(&p, 1_700_000_000);
    }
}

fn create_large(a: &Path, b: &Path, files: usize, mib: usize) {
    let mut buf = vec![0u8; mib << 20];
    for i in 0..files {
        fill(&mut buf, i as u64 + 1);
        write_both(a, b, &format!("big{i:04}.bin"), &buf);
    }
}

fn create_small(a: &Path, b: &Path, files: usize) {
    let mut buf = vec![0u8; 16 << 10];
    let per_dir = 100;
    let mut dirs = Vec::new();
    for i in 0..files {
        let d = format!("d{:02}/e{:03}", (i / per_dir) / 100, (i / per_dir) % 100);
        if i % per_dir == 0 {
            for root in [a, b] {
                std::fs::create_dir_all(root.join(&d)).unwrap();
            }
            dirs.push(d.clone());
        }
        let size = 1024 + (i * 7919) % (15 * 1024 + 1);
        fill(&mut buf[..size], i as u64 + 7);
        write_both(a, b, &format!("{d}/f{i:06}"), &buf[..size]);
    }
    for d in dirs.iter().rev() {
        for root in [a, b] {
            set_mtime(&root.join(d), 1_700_000_000);
        }
    }
}

/// Flip a byte keeping size and mtime, delete one, add one, chmod one: what every peer should
/// see (rsync -rcn misses the chmod).
fn inject(b: &Path, files: &[PathBuf]) {
    let n = files.len();
    let flip = &files[n / 3];
    let mut data = std::fs::read(flip).unwrap();
    data[0] ^= 0xff;
    let m = std::fs::metadata(flip).unwrap();
    std::fs::write(flip, &data).unwrap();
    set_mtime(flip, m.mtime());
    std::fs::remove_file(&files[n / 2]).unwrap();
    std::fs::write(b.join("extra-file"), b"extra").unwrap();
    std::fs::set_permissions(
        &files[2 * n / 3],
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
}

fn list_files(root: &Path) -> Vec<PathBuf> {
    let out = Command::new("find")
        .arg(root)
        .arg("-type")
        .arg("f")
        .output()
        .unwrap();
    let mut v: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    v.sort();
    v
}

fn drop_caches() -> bool {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn warm(a: &Path, b: &Path) {
    // Read every file of both trees once (the page cache does not stay warm on this host).
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find {} {} -type f -print0 | xargs -0 -P4 -n 1000 cat > /dev/null",
            a.display(),
            b.display()
        ))
        .status();
}

fn run_shell(cmd: &str) -> Duration {
    let t = Instant::now();
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let d = t.elapsed();
    if !out.status.success() && out.status.code() != Some(1) {
        eprintln!(
            "warning: `{cmd}` exited {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    d
}

fn run_rehost(
    a: &Path,
    b: &Path,
    threads: usize,
    cache: Option<&Path>,
) -> (Duration, rehost_tree::Report) {
    let opts = VerifyOptions {
        walk: WalkOptions {
            threads,
            ..WalkOptions::default()
        },
        cache: cache.map(Path::to_path_buf),
        ..VerifyOptions::default()
    };
    let t = Instant::now();
    let v = verify_trees(a, b, &opts, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_or_else(|e| die(&format!("failed to {e}")));
    (t.elapsed(), v.report)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_set(name: &str, a: &Path, b: &Path, args: &Args) {
    let mut tools: Vec<(&str, String)> = vec![
        (
            "rsync -rcn --delete",
            format!(
                "rsync -rcn --delete {}/ {}/ > /dev/null",
                a.display(),
                b.display()
            ),
        ),
        (
            "rsync -acn --delete",
            format!(
                "rsync -acn --delete {}/ {}/ > /dev/null",
                a.display(),
                b.display()
            ),
        ),
        (
            "b3sum (both trees)",
            format!(
                "find {} {} -type f -print0 | xargs -0 -P2 -n 2000 b3sum > /dev/null",
                a.display(),
                b.display()
            ),
        ),
    ];
    if args.rehost_only {
        tools.clear();
    }
    for (mode, runs) in [("warm", args.runs), ("cold", args.cold_runs)] {
        if runs == 0 {
            continue;
        }
        if mode == "cold" && !drop_caches() {
            println!("{name}: cold runs skipped (dropping caches needs root)");
            continue;
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); tools.len() + 1];
        let mut last = None;
        for _ in 0..runs {
            for (k, slot) in times.iter_mut().enumerate() {
                if mode == "warm" {
                    warm(a, b);
                } else {
                    drop_caches();
                }
                if k == 0 {
                    let (d, r) = run_rehost(a, b, args.threads, None);
                    slot.push(d);
                    last = Some(r);
                } else {
                    slot.push(run_shell(&tools[k - 1].1));
                }
            }
        }
        let meds: Vec<Duration> = times.iter_mut().map(|v| median(v)).collect();
        println!("{name}, {mode} cache, median of {runs}:");
        println!(
            "  {:<22} {:>8.2} s",
            "rehost verify tree",
            meds[0].as_secs_f64()
        );
        for (k, (label, _)) in tools.iter().enumerate() {
            println!(
                "  {:<22} {:>8.2} s   rehost/this = {:.2}",
                label,
                meds[k + 1].as_secs_f64(),
                meds[0].as_secs_f64() / meds[k + 1].as_secs_f64()
            );
        }
        if let Some(r) = last {
            let classes: Vec<String> = r
                .totals
                .by_class
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            println!(
                "  rehost found: {} (entries {} / {})",
                classes.join(", "),
                r.totals.entries_a,
                r.totals.entries_b
            );
        }
    }
}

fn main() {
    let args = parse_args();
    let run_large = args.only.as_deref() != Some("small");
    let run_small = args.only.as_deref() != Some("large");
    println!(
        "rehost-bench-tree: {} large files of {} MiB, {} small files, {} warm / {} cold runs, threads {}",
        args.large_files,
        args.large_mib,
        args.small_files,
        args.runs,
        args.cold_runs,
        if args.threads == 0 {
            rehost_tree::DEFAULT_THREADS
        } else {
            args.threads
        }
    );
    for (set, enabled) in [("large", run_large), ("small", run_small)] {
        if !enabled {
            continue;
        }
        let base = args.dir.join(set);
        let (a, b) = (base.join("a"), base.join("b"));
        let stamp = base.join(format!(
            "created-{}",
            if set == "large" {
                format!("{}x{}", args.large_files, args.large_mib)
            } else {
                args.small_files.to_string()
            }
        ));
        if !stamp.exists() {
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(&a).unwrap();
            std::fs::create_dir_all(&b).unwrap();
            let t = Instant::now();
            if set == "large" {
                create_large(&a, &b, args.large_files, args.large_mib);
            } else {
                create_small(&a, &b, args.small_files);
            }
            let files = list_files(&b);
            inject(&b, &files);
            std::fs::write(&stamp, b"").unwrap();
            println!(
                "created {set} data set in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        let title = if set == "large" {
            format!("(1) {} files of {} MiB", args.large_files, args.large_mib)
        } else {
            format!("(2) {} small files", args.small_files)
        };
        if !args.incremental_only && !args.transfer_only {
            bench_set(&title, &a, &b, &args);
        }
        if set == "small" && !args.transfer_only {
            incremental(&a, &b, &args);
        }
        if args.transfer {
            transfer(&title, &a, &args);
        }
        if !args.keep {
            let _ = std::fs::remove_dir_all(&base);
        }
    }
}

/// Full verification with a cache, change 1% of B's files (content rewritten, size and mtime
/// kept, so only ctime tells), then the incremental one; warm, then (as root) cold.
/// The least any incremental verification that checks every entry's inode, size, mtime and
/// ctime can cost: list every directory and `fstatat` every entry of the trees, in a pool of
/// the same size as rehost's, doing nothing else (no manifest, no cache, no comparison).
fn stat_floor(roots: &[&Path], threads: usize) -> (Duration, u64) {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    fn dir<'s>(s: &rayon::Scope<'s>, fd: i32, n: &'s AtomicU64) {
        // SAFETY: plain libc calls on fds this function owns; names come from readdir.
        unsafe {
            let dirp = libc::fdopendir(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0));
            assert!(
                !dirp.is_null(),
                "fdopendir: {}",
                std::io::Error::last_os_error()
            );
            let mut names = Vec::new();
            loop {
                let d = libc::readdir64(dirp);
                if d.is_null() {
                    break;
                }
                let name = CStr::from_ptr((*d).d_name.as_ptr());
                if name.to_bytes() != b"." && name.to_bytes() != b".." {
                    names.push((name.to_owned(), (*d).d_type));
                }
            }
            libc::closedir(dirp);
            for (name, kind) in names {
                let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
                libc::fstatat(
                    fd,
                    name.as_ptr(),
                    st.as_mut_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                );
                n.fetch_add(1, Relaxed);
                if kind == libc::DT_DIR {
                    let sub = libc::openat(
                        fd,
                        name.as_ptr(),
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    );
                    s.spawn(move |s| {
                        dir(s, sub, n);
                        libc::close(sub);
                    });
                }
            }
        }
    }
    let n = AtomicU64::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(if threads == 0 {
            rehost_tree::DEFAULT_THREADS
        } else {
            threads
        })
        .build()
        .unwrap();
    let t = Instant::now();
    pool.scope(|s| {
        for root in roots {
            let c = CString::new(root.as_os_str().as_bytes()).unwrap();
            // SAFETY: valid C string; the fd is closed after its walk.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            assert!(fd >= 0, "open {}", root.display());
            let n = &n;
            s.spawn(move |s| {
                dir(s, fd, n);
                // SAFETY: opened above.
                unsafe { libc::close(fd) };
            });
        }
    });
    (t.elapsed(), n.into_inner())
}

/// The built-in transfer against rsync, warm: a fresh copy of `a` (with the data flushed to
/// disk, as the built-in transfer's `syncfs` does) and a repeat with nothing to do. Every copy
/// goes to a new directory and all are removed only at the end: on this VM's ext4 (no journal)
/// allocating inodes soon after many were deleted scans the recently deleted ones again and
/// again (`find_inode_bit`/`recently_deleted` in perf), which made whichever tool ran after a
/// deletion two to three times slower. The order alternates between runs.
fn transfer(title: &str, a: &Path, args: &Args) {
    use rehost_tree::transfer::{TransferOptions, transfer};
    let runs = args.runs.max(1);
    let rsync = |to: &Path| {
        format!(
            "rsync -aHAX --numeric-ids --sparse --delete {}/ {}/",
            a.display(),
            to.display()
        )
    };
    let builtin = |to: &Path| {
        let opts = TransferOptions {
            walk: WalkOptions {
                threads: args.threads,
                ..WalkOptions::default()
            },
            ..TransferOptions::default()
        };
        let t = Instant::now();
        let r = transfer(a, to, &opts, &mut |_| {}, &AtomicBool::new(false))
            .unwrap_or_else(|e| die(&format!("built-in transfer: {e}")));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        t.elapsed()
    };
    let mut made = Vec::new();
    let (mut fresh, mut again) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for run in 0..runs {
        let x = args.dir.join(format!("copy-rsync-{run}"));
        let y = args.dir.join(format!("copy-builtin-{run}"));
        made.extend([x.clone(), y.clone()]);
        let _ = Command::new("sync").status();
        for first_rsync in [run % 2 == 0, run % 2 == 1] {
            warm(a, a);
            if first_rsync {
                fresh.0.push(run_shell(&format!("{} && sync", rsync(&x))));
            } else {
                fresh.1.push(builtin(&y));
            }
        }
        warm(a, &x);
        again.0.push(run_shell(&rsync(&x)));
        warm(a, &y);
        again.1.push(builtin(&y));
    }
    for (what, (r, b)) in [
        ("fresh copy + sync", &mut fresh),
        ("repeat, nothing changed", &mut again),
    ] {
        let (r, b) = (median(r), median(b));
        println!(
            "{title}, transfer, {what}, median of {runs}: built-in {:.2} s, rsync -aHAX {:.2} s, built-in/rsync = {:.2}",
            b.as_secs_f64(),
            r.as_secs_f64(),
            b.as_secs_f64() / r.as_secs_f64()
        );
    }
    for d in made {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn incremental(a: &Path, b: &Path, args: &Args) {
    let files = list_files(b);
    let step = 100;
    let runs = args.inc_runs.max(1);
    let modes = (0..runs).flat_map(|k| [(k, "warm"), (step / 2 + k, "cold")]);
    for (offset, mode) in modes {
        let cache = args.dir.join("cache");
        let _ = std::fs::remove_dir_all(&cache);
        let prepare = || {
            if mode == "warm" {
                warm(a, b);
                true
            } else {
                drop_caches()
            }
        };
        if !prepare() {
            println!("(2) incremental, cold: skipped (dropping caches needs root)");
            continue;
        }
        let (full, _) = run_rehost(a, b, args.threads, Some(&cache));
        for f in files.iter().skip(offset).step_by(step) {
            let m = std::fs::metadata(f).unwrap();
            let mut d = std::fs::read(f).unwrap();
            let mid = d.len() / 2;
            d[mid] ^= 1;
            std::fs::write(f, &d).unwrap();
            set_mtime(f, m.mtime());
        }
        prepare();
        let (inc, r) = run_rehost(a, b, args.threads, Some(&cache));
        prepare();
        let (floor, stats) = stat_floor(&[a, b], args.threads);
        println!(
            "(2) incremental after changing 1% of B ({} files), {mode}:",
            files.len() / step
        );
        println!(
            "  full (writing the cache) {:.2} s, incremental {:.2} s, ratio {:.3}; rehashed {}, trusted {}, content findings {}",
            full.as_secs_f64(),
            inc.as_secs_f64(),
            inc.as_secs_f64() / full.as_secs_f64(),
            r.totals.rehashed,
            r.totals.trusted,
            r.count(rehost_tree::Class::Content)
        );
        println!(
            "  floor: fstatat of every entry of both trees ({stats} entries, nothing else) {:.2} s = {:.3} of the full run",
            floor.as_secs_f64(),
            floor.as_secs_f64() / full.as_secs_f64(),
        );
        let _ = std::fs::remove_dir_all(&cache);
    }
    // Memory of a manifest: the entry vector plus each entry's heap parts.
    let m = rehost_tree::manifest(
        a,
        &WalkOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let heap: usize = m.entries.capacity() * std::mem::size_of::<rehost_tree::Entry>()
        + m.entries
            .iter()
            .map(|e| {
                // malloc rounds to 16 and keeps 8 bytes of header.
                let alloc = |n: usize| if n == 0 { 0 } else { (n + 8).div_ceil(16) * 16 };
                alloc(e.path.len())
                    + e.target.as_ref().map_or(0, |t| alloc(t.len()))
                    + e.xattrs.as_ref().map_or(0, |x| {
                        alloc(x.len() * 32)
                            + x.iter()
                                .map(|(k, v)| alloc(k.len()) + alloc(v.len()))
                                .sum::<usize>()
                    })
            })
            .sum::<usize>();
    println!(
        "  memory: manifest of A holds {} entries in {:.1} MiB = {} bytes/entry (size_of::<Entry>() = {}, average path {} bytes)",
        m.entries.len(),
        heap as f64 / 1048576.0,
        heap / m.entries.len().max(1),
        std::mem::size_of::<rehost_tree::Entry>(),
        m.entries.iter().map(|e| e.path.len()).sum::<usize>() / m.entries.len().max(1)
    );
}
