//! Work on a tree over loopback ssh (through the agent) against the same work in-process, with
//! the ratio printed. Needs root (sshd) and a release build of the agent:
//!
//! ```sh
//! cargo build --release -p rehost && cargo bench -p rehost-host --bench over_ssh
//! ```
//!
//! `REHOST_BENCH_FILES` sets the number of files (default 50 000), `REHOST_BENCH_TREE` uses an
//! existing tree instead of a generated one. Each side is timed best of three.

use rehost_host::{Host, LocalHost, SshHost, SshSpec};
use rehost_test::sshd::Sshd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("REHOST_TEST_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("bench executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("rehost");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p rehost` first",
        bin.display()
    );
    bin
}

fn generate(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:03}/e{:02}", i % 200, (i / 200) % 10));
        if i < 2000 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(
            dir.join(format!("f{i:06}.dat")),
            format!("content {i}\n").repeat(i % 64),
        )
        .unwrap();
    }
}

fn best_of_3(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..3 {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed());
    }
    (best, n)
}

fn main() {
    let files: usize = std::env::var("REHOST_BENCH_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let tmp = tempfile::tempdir().unwrap();
    let root = match std::env::var_os("REHOST_BENCH_TREE") {
        Some(p) => PathBuf::from(p),
        None => {
            generate(tmp.path(), files);
            tmp.path().to_owned()
        }
    };
    let path = root.as_os_str().as_bytes();
    let cancel = AtomicBool::new(false);
    let sshd = Sshd::start();
    let spec = SshSpec {
        destination: sshd.destination().into(),
        ssh_config: Some(sshd.ssh_config()),
        ..Default::default()
    };
    let t = Instant::now();
    let ssh = SshHost::open("bench", &spec, &agent_binary()).unwrap();
    let open_time = t.elapsed();
    let local = LocalHost::new("local", None);

    let (l, n) = best_of_3(|| local.list_tree(path, &cancel).unwrap().len());
    let (r, m) = best_of_3(|| ssh.list_tree(path, &cancel).unwrap().len());
    assert_eq!(n, m);
    println!("open ssh host (connect, install or verify agent): {open_time:?}");
    println!(
        "list tree, {n} entries: local {l:?}, over ssh {r:?}, ratio {:.2}",
        r.as_secs_f64() / l.as_secs_f64()
    );
}
