//! `verify tree` over loopback ssh against the same verification in-process, with the ratio
//! printed. Locally, both trees are walked in one pool (`rehost_tree::verify_trees`); over ssh,
//! each tree is walked and hashed by the agent on its own host (two sshd instances), both at
//! the same time, and the manifests are compared here — what `verify tree A:/x B:/y` does.
//! Also times the agent's tree listing. Needs root (sshd) and the shipped agent (a release
//! build for glibc 2.17, as real hosts get it):
//!
//! ```sh
//! scripts/build-agent && cargo bench -p rehost-host --bench over_ssh
//! ```
//!
//! Data: two identical trees of each of the benchmark's data sets, smaller by default so the
//! bench runs in a minute: `REHOST_BENCH_LARGE_FILES` × `REHOST_BENCH_LARGE_MIB` (default
//! 20 × 20 MiB; the full set is 200 × 20), `REHOST_BENCH_SMALL_FILES` of 1–16 KiB (default
//! 30 000; the full set is 300 000). `REHOST_BENCH_DIR` is where they are made (default a
//! temporary directory), `REHOST_BENCH_THREADS` the reader threads per side (default rehost's).
//! Warm caches; each side timed best of three. `REHOST_BENCH_TRANSFER_ONLY=1` times only the
//! transfers (rsync over ssh, the built-in transfer from this machine, and the relay from
//! another ssh host), `REHOST_BENCH_TRANSFER_RUNS` times (default 1, in rotating order, the
//! median ratio printed), `REHOST_BENCH_ONLY=large|small` one data set,
//! `REHOST_BENCH_TRANSFER_TOOLS` which of `rsync,local,relay` run (default all; one alone is
//! for profiling it, e.g. under `perf record -a`), `REHOST_BENCH_RSYNC_SSH_ARGS` options added
//! to rsync's ssh (e.g. `-c aes128-gcm@openssh.com`, the cipher rehost prefers).

use rehost_host::{Host, LocalHost, ManifestOptions, SshHost, SshSpec};
use rehost_test::sshd::Sshd;
use rehost_tree::{CompareOptions, VerifyOptions, compare, verify_trees};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The shipped agent (`scripts/build-agent`), as rehost uploads it to real hosts.
fn agent_binary() -> PathBuf {
    rehost_test::shipped_agent()
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Deterministic pseudo-random bytes (xorshift).
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

fn make_large(root: &Path, files: usize, mib: usize) {
    let mut buf = vec![0u8; mib << 20];
    for i in 0..files {
        fill(&mut buf, i as u64 + 1);
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(root.join(format!("large-{i:04}.bin")), &buf).unwrap();
    }
}

fn make_small(root: &Path, files: usize) {
    let mut buf = vec![0u8; 16 << 10];
    for i in 0..files {
        let dir = root.join(format!("d{:02}/e{:03}", i % 50, (i / 50) % 200));
        if i < 10_000 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let len = 1024 + (i * 7919) % (15 << 10);
        fill(&mut buf[..len], i as u64 + 7);
        std::fs::write(dir.join(format!("f{i:06}")), &buf[..len]).unwrap();
    }
}

/// A data set: its name and how to make one tree of it.
type DataSet = (&'static str, Box<dyn Fn(&Path)>);

fn best_of_3(mut f: impl FnMut()) -> Duration {
    f(); // warm the caches
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn spec(sshd: &Sshd) -> SshSpec {
    SshSpec {
        destination: sshd.destination().into(),
        ssh_config: Some(sshd.ssh_config()),
        ..Default::default()
    }
}

fn main() {
    let large_files = env_num("REHOST_BENCH_LARGE_FILES", 20);
    let large_mib = env_num("REHOST_BENCH_LARGE_MIB", 20);
    let small_files = env_num("REHOST_BENCH_SMALL_FILES", 30_000);
    let tmp = match std::env::var_os("REHOST_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    // This machine's manifest cache in the bench's directory, emptied between transfer runs.
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var("XDG_CACHE_HOME", tmp.path().join("cache")) };
    let cancel = AtomicBool::new(false);
    let (sa, sb) = (Sshd::start(), Sshd::start());
    let t = Instant::now();
    let old = SshHost::open("old", &spec(&sa), &agent_binary()).unwrap();
    let new = SshHost::open("new", &spec(&sb), &agent_binary()).unwrap();
    println!(
        "open two ssh hosts (connect, upload the agent): {:.2?}",
        t.elapsed()
    );
    let local = LocalHost::new("local", None);

    let sets: [DataSet; 2] = [
        (
            "large files",
            Box::new(move |p: &Path| make_large(p, large_files, large_mib)),
        ),
        (
            "small files",
            Box::new(move |p: &Path| make_small(p, small_files)),
        ),
    ];
    let transfer_only = std::env::var_os("REHOST_BENCH_TRANSFER_ONLY").is_some();
    let only = std::env::var("REHOST_BENCH_ONLY").ok();
    for (name, make) in sets {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let a = tmp.path().join(format!("{name}/a"));
        let b = tmp.path().join(format!("{name}/b"));
        make(&a);
        // B is a faithful copy, as after the final transfer.
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&a)
            .arg(&b)
            .status()
            .unwrap();
        assert!(copied.success());
        let (pa, pb) = (a.as_os_str().as_bytes(), b.as_os_str().as_bytes());
        // Reader threads per side (0: rehost's default); the same for both runs.
        let threads = env_num("REHOST_BENCH_THREADS", 0);
        let options = ManifestOptions {
            threads,
            ..ManifestOptions::default()
        };
        let mut verify_options = VerifyOptions::default();
        verify_options.walk.threads = threads;

        if !transfer_only {
            let mut entries = 0;
            let local_time = best_of_3(|| {
                let v = verify_trees(&a, &b, &verify_options, &mut |_| {}, &cancel).unwrap();
                assert!(v.report.findings.is_empty(), "{:?}", v.report.findings);
                entries = v.a.entries.len();
            });
            let ssh_time = best_of_3(|| {
                let (ma, mb) = std::thread::scope(|s| {
                    let ja = s.spawn(|| old.manifest(pa, &options, &cancel, &mut |_| {}).unwrap());
                    let jb = s.spawn(|| new.manifest(pb, &options, &cancel, &mut |_| {}).unwrap());
                    (ja.join().unwrap(), jb.join().unwrap())
                });
                let report = compare(&ma, &mb, &CompareOptions::default());
                assert!(report.findings.is_empty(), "{:?}", report.findings);
            });
            println!(
                "verify tree, {name} ({entries} entries per side): local {local_time:.2?}, over ssh {ssh_time:.2?}, ratio {:.2}",
                ssh_time.as_secs_f64() / local_time.as_secs_f64()
            );
            // Incremental: a second verification of the same pair trusts unchanged files, here
            // from the cache in-process and from each host's own cache over ssh.
            let cache = tmp.path().join(format!("{name}/cache"));
            let mut inc_options = verify_options.clone();
            inc_options.cache = Some(cache);
            let inc = ManifestOptions {
                incremental: true,
                ..options.clone()
            };
            let mut trusted = (0, 0);
            let local_inc = || {
                let v = verify_trees(&a, &b, &inc_options, &mut |_| {}, &cancel).unwrap();
                trusted.0 = v.report.totals.trusted;
            };
            let local_inc_time = best_of_3(local_inc);
            let ssh_inc = || {
                let (ma, mb) = std::thread::scope(|s| {
                    let ja = s.spawn(|| old.manifest(pa, &inc, &cancel, &mut |_| {}).unwrap());
                    let jb = s.spawn(|| new.manifest(pb, &inc, &cancel, &mut |_| {}).unwrap());
                    (ja.join().unwrap(), jb.join().unwrap())
                });
                assert!(
                    compare(&ma, &mb, &CompareOptions::default())
                        .findings
                        .is_empty()
                );
                ma.trusted + mb.trusted
            };
            let ssh_inc_time = best_of_3(|| trusted.1 = ssh_inc());
            println!(
                "verify tree again (incremental), {name}: local {local_inc_time:.2?} ({} trusted), over ssh {ssh_inc_time:.2?} ({} trusted), ratio {:.2}",
                trusted.0,
                trusted.1,
                ssh_inc_time.as_secs_f64() / local_inc_time.as_secs_f64()
            );
        }
        // The built-in transfer between hosts against rsync over ssh, into fresh directories
        // (nothing deleted before: see docs/tree.md on this VM's inode allocator).
        let fresh = |tag: &str| tmp.path().join(format!("{name}/copy-{tag}"));
        let timed = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        let builtin = |from: &dyn Host, to: &Path| {
            let r = rehost_host::transfer::transfer_between(
                (from, pa),
                (&new, to.as_os_str().as_bytes()),
                &rehost_host::transfer::TransferOptions::default(),
                &cancel,
                &mut |_| {},
            )
            .unwrap();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
        };
        // Every run is a first transfer: the hosts' manifest caches are emptied, so both
        // trees are walked and hashed again. The order rotates, and everything written before
        // is flushed untimed, so that no tool always pays for another's writeback.
        let runs = env_num("REHOST_BENCH_TRANSFER_RUNS", 1);
        let tools = std::env::var("REHOST_BENCH_TRANSFER_TOOLS")
            .unwrap_or_else(|_| "rsync,local,relay".into());
        let tools: Vec<&str> = tools.split(',').collect();
        let rsync_ssh_args = std::env::var("REHOST_BENCH_RSYNC_SSH_ARGS").unwrap_or_default();
        let mut ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for run in 0..runs {
            for cache in [
                rehost_tree::user_cache_dir().join("manifests"),
                sa.cache_dir().join("rehost/manifests"),
                sb.cache_dir().join("rehost/manifests"),
            ] {
                let _ = std::fs::remove_dir_all(cache);
            }
            let mut times = [Duration::ZERO; 3];
            for k in 0..3 {
                let tool = (k + run) % 3;
                if !tools.contains(&["rsync", "local", "relay"][tool]) {
                    continue;
                }
                std::process::Command::new("sync").status().unwrap();
                times[tool] = match tool {
                    0 => timed(&mut || {
                        let ok = std::process::Command::new("rsync")
                            .args(["-aHAX", "--numeric-ids", "--sparse", "--delete", "-e"])
                            .arg(format!(
                                "ssh -F {} {rsync_ssh_args}",
                                sb.ssh_config().display()
                            ))
                            .arg(format!("{}/", a.display()))
                            .arg(format!(
                                "{}:{}/",
                                sb.destination(),
                                fresh(&format!("rsync-{run}")).display()
                            ))
                            .status()
                            .unwrap();
                        assert!(ok.success());
                        // The built-in transfer ends with syncfs: flush rsync's writes too.
                        std::process::Command::new("sync").status().unwrap();
                    }),
                    1 => timed(&mut || builtin(&local, &fresh(&format!("local-{run}")))),
                    _ => timed(&mut || builtin(&old, &fresh(&format!("relay-{run}")))),
                };
            }
            let [rsync_time, local_builtin_time, ssh_builtin_time] = times;
            let r = [
                local_builtin_time.as_secs_f64() / rsync_time.as_secs_f64(),
                ssh_builtin_time.as_secs_f64() / rsync_time.as_secs_f64(),
            ];
            ratios[0].push(r[0]);
            ratios[1].push(r[1]);
            println!(
                "transfer to an ssh host, {name}, fresh copy (run {}): rsync -aHAX over ssh {rsync_time:.2?}, built-in from this machine {local_builtin_time:.2?} ({:.2}), built-in from another ssh host {ssh_builtin_time:.2?} ({:.2})",
                run + 1,
                r[0],
                r[1]
            );
        }
        if runs > 1 {
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "transfer to an ssh host, {name}, median of {runs} runs: built-in from this machine {:.2}x rsync, from another ssh host (the relay) {:.2}x rsync",
                median(&mut ratios[0]),
                median(&mut ratios[1])
            );
        }
        if !transfer_only {
            let list_local = best_of_3(|| {
                local.list_tree(pa, &cancel).unwrap();
            });
            let list_ssh = best_of_3(|| {
                old.list_tree(pa, &cancel).unwrap();
            });
            println!(
                "list tree, {name}: local {list_local:.2?}, over ssh {list_ssh:.2?}, ratio {:.2}",
                list_ssh.as_secs_f64() / list_local.as_secs_f64()
            );
        }
        let _ = std::fs::remove_dir_all(tmp.path().join(name));
    }
}
