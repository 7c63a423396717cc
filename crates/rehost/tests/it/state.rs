//! Issue 8, item 5: the state directory and the run lock. Only a directory of the user
//! running rehost that no one else can write holds the journal; files in it are 0600 and never
//! opened through a symlink; one run per server, whatever the state directory.

use crate::support::*;
use rehost_test::TestDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MANUAL: &str = "[[steps]]\nid = \"m\"\ndo = \"manual\"\ntext = \"do it\"\n";
const ECHO: &str = "[[steps]]\nid = \"e\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"echo out\"\n";

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Another user (or anyone, in a shared directory) made `.rehost` a symlink: root followed it
/// and wrote step output wherever it pointed.
#[test]
fn a_symlinked_state_directory_is_refused() {
    let d = TestDir::new();
    write_plan(&d, ECHO);
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join(".rehost")).unwrap();
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stderr_has("refusing the state directory")
        .stderr_has(".rehost is a symlink")
        .code(2);
    snap!(ran);
    assert_eq!(std::fs::read_dir(d.join("elsewhere")).unwrap().count(), 0);
    // A symlink as the last component, given with --state, too.
    std::fs::create_dir(d.join("real")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("st")).unwrap();
    test_in(&d)
        .args(["run", "plan.toml", "--env", "test", "--state", "st"])
        .stderr_has("st is a symlink")
        .code(2);
}

/// A state directory another user created (uid 65534; tests run as root) is refused, naming
/// path, owner and what to do; `status` refuses it too.
#[test]
fn a_state_directory_of_another_user_is_refused() {
    let d = TestDir::new();
    write_plan(&d, ECHO);
    std::fs::create_dir_all(d.join(".rehost/plan/test")).unwrap();
    std::os::unix::fs::chown(d.join(".rehost"), Some(65534), Some(65534)).unwrap();
    for command in ["run", "status"] {
        let ran = test_in(&d)
            .args([command, "plan.toml", "--env", "test"])
            .stderr_has(".rehost is owned by uid 65534, not by uid 0")
            .stderr_has("chmod 700")
            .code(2);
        snap!(ran, command);
    }
    assert!(!d.join(".rehost/plan/test/journal").exists());
}

#[test]
fn a_group_writable_state_directory_is_refused() {
    let d = TestDir::new();
    write_plan(&d, ECHO);
    std::fs::create_dir(d.join("shared")).unwrap();
    std::fs::set_permissions(d.join("shared"), std::fs::Permissions::from_mode(0o770)).unwrap();
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test", "--state", "shared"])
        .stderr_has("shared has mode 0770: group or others may write to it")
        .code(2);
    snap!(ran);
}

/// State and evidence are private: directories 0700, journal, lock, outputs and evidence
/// manifests 0600 (they were 0644: a failed `pg_dump`'s output, every path of a tree).
#[test]
fn state_files_are_private() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "[[data]]\nid = \"files\"\nfrom = \"old:/srv\"\nto = \"new:/srv\"\n{ECHO}\
             [[steps]]\nid = \"v\"\ndo = \"verify-tree\"\ndata = \"files\"\n"
        ),
    );
    d.write("test-old/srv/a", "a");
    d.write("test-new/srv/a", "a");
    // The same mtimes on both sides: written one after the other, they differed under load.
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for p in [
        "test-old/srv/a",
        "test-new/srv/a",
        "test-old/srv",
        "test-new/srv",
    ] {
        std::fs::File::open(d.join(p))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let s = d.join(".rehost/plan/test");
    for dir in [
        d.join(".rehost"),
        d.join(".rehost/plan"),
        s.clone(),
        s.join("output"),
        s.join("evidence"),
        s.join("plans"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        "journal",
        "lock",
        "output/0001-e.1.log",
        "evidence/v.1-source.manifest",
        "evidence/v.1-destination.manifest",
    ] {
        assert_eq!(mode(&s.join(file)), 0o600, "{file}");
    }
}

/// Two runs with different state directories against the same hosts overlapped: the lock lived
/// in the state directory only. Now each host holds a lock for the run; the second run is
/// refused with exit 2, naming the host and the other run.
#[test]
fn two_runs_with_different_state_directories_cannot_share_a_host() {
    let d = TestDir::new();
    write_plan(&d, MANUAL);
    let mut first = Command::new(bin())
        .args(["run", "plan.toml", "--env", "test", "--state", "one"])
        .current_dir(d.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first run waits for its confirmation (its hosts are locked by then).
    let journal = d.join("one/test/journal");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("step_started")) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first run did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--state", "two"]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("failed to take host `old` for this run"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&format!(
            "is in use by another rehost run (pid {} on ",
            first.id()
        )),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("one/test"), "{}", o.stderr);
    assert!(
        !std::fs::read_to_string(d.join("two/test/journal"))
            .unwrap_or_default()
            .contains("step_started")
    );
    // The first run ended: the hosts are free again.
    let o = rehost(
        &d,
        &[
            "run",
            "plan.toml",
            "--env",
            "test",
            "--state",
            "two",
            "--yes",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
}

/// `rehost manifest -o` wrote through a fixed temporary name (`FILE.rehost-tmp`): planted as a
/// symlink, root overwrote its target. Now the name is random and created O_EXCL, 0600.
#[test]
fn manifest_output_ignores_a_planted_temporary_name() {
    let d = TestDir::new();
    d.write("tree/a", "a");
    d.write("victim", "root's file");
    std::os::unix::fs::symlink(d.join("victim"), d.join("m.rehost-tmp")).unwrap();
    let o = rehost(&d, &["manifest", "tree", "-o", "m.txt"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("victim"), "root's file");
    assert!(d.read("m.txt").starts_with("#rehost-manifest 1"));
    assert_eq!(mode(&d.join("m.txt")), 0o600);
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("rehost-tmp-")),
        "{names:?}"
    );
}

/// `rehost manifest -o` writes like `report -o`: not into a directory another user owns or
/// can write (she could replace the evidence afterwards), not through a symlinked directory
/// (issue 18, found after the report's and the concept's were fixed).
#[test]
fn manifest_output_is_refused_where_another_user_could_replace_it() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDir::new();
    d.write("tree/a", "a");
    std::fs::create_dir(d.join("theirs")).unwrap();
    std::os::unix::fs::chown(d.join("theirs"), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(d.join("theirs"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = rehost(&d, &["manifest", "tree", "-o", "theirs/m.txt"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("refusing to write into theirs: theirs is owned by uid 65534"),
        "{}",
        o.stderr
    );
    assert!(!d.join("theirs/m.txt").exists());
    std::fs::create_dir(d.join("real")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
    let o = rehost(&d, &["manifest", "tree", "-o", "link/m.txt"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("refusing to write into link: link is a symlink"),
        "{}",
        o.stderr
    );
    assert!(!d.join("real/m.txt").exists());
}

/// The verification cache lists every path and digest of both trees: 0600 in 0700.
#[test]
fn the_verification_cache_is_private() {
    let d = TestDir::new();
    d.write("a/f", "x");
    d.write("b/f", "x");
    // One mtime for both trees: written a clock tick apart (under load), the directories'
    // mtimes differed and the verification found a difference (a flaky exit 1).
    let touched = std::process::Command::new("touch")
        .args(["-h", "-d", "@1700000000"])
        .args(["a/f", "b/f", "a", "b"].map(|p| d.join(p)))
        .status()
        .expect("run touch");
    assert!(touched.success());
    let cache = d.join("cache");
    let o = rehost_test::run_env(
        bin(),
        &["verify", "tree", "a", "b"],
        d.path(),
        None,
        &[("XDG_CACHE_HOME", cache.as_os_str())],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let tree = cache.join("rehost/tree");
    let dirs: Vec<_> = std::fs::read_dir(&tree)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1);
    assert_eq!(mode(&dirs[0]), 0o700);
    let files: Vec<_> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!files.is_empty());
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}
