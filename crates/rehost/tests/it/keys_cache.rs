//! The key scan's cache (docs/keys.md, "The scan's cache"): a second scan does not open the
//! files the first found nothing in while they are unchanged, says how many it left unopened,
//! reads a file again once its ctime moved (content replaced with size and mtime kept), reads
//! everything with `--no-cache`; a corrupt, loosened, foreign-owned or symlinked cache, or a
//! cache directory others may write to, is ignored and named, and never hides a key; the cache
//! holds nothing of a key.

use crate::keys::sh;
use crate::support::*;
use rehost_test::keys::Secrets;
use rehost_test::{Output, TestDir};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Plain files in `tree/`: the ones a cache may skip.
const PLAIN: usize = 40;

/// `rehost ARGS` with rehost's cache directory in the test's own directory.
fn run(d: &TestDir, args: &[&str]) -> Output {
    let cache = d.join("cache");
    rehost_test::run_env(
        bin(),
        args,
        d.path(),
        None,
        &[("XDG_CACHE_HOME", cache.as_os_str())],
    )
}

fn scan(d: &TestDir, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["keys", "scan", "tree", "--json"];
    args.extend_from_slice(extra);
    let o = run(d, &args);
    assert_eq!(o.code, 0, "{}", o.all());
    let v = crate::keys::json(&o);
    (o, v)
}

/// The number `key` of the one scan.
fn n(v: &serde_json::Value, key: &str) -> u64 {
    v["scans"][0][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key}: {v}"))
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v["scans"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| format!("{} {}", k["path"].as_str().unwrap(), k["kind"]))
        .collect();
    k.sort();
    k
}

fn notes(v: &serde_json::Value) -> String {
    v["scans"][0]["notes"].to_string()
}

/// `tree/`: `PLAIN` text files, an Ed25519 key made by ssh-keygen (and its `.pub`), and
/// `victim.txt`, text of the key file's length (mode 0600). Returns the key's secrets (its body lines).
fn make_tree(d: &TestDir) -> Secrets {
    sh(
        d,
        "mkdir -p tree/sub && ssh-keygen -q -t ed25519 -N '' -C cache@example.org -f tree/sub/id_ed25519",
    );
    for i in 0..PLAIN {
        std::fs::write(
            d.join(&format!("tree/f{i}.txt")),
            format!("line {i}\n").repeat(30),
        )
        .unwrap();
    }
    let key = std::fs::read(d.join("tree/sub/id_ed25519")).unwrap();
    std::fs::write(d.join("tree/victim.txt"), vec![b'y'; key.len()]).unwrap();
    // Owner-only, as a private key must be: the key written into them later is no problem.
    sh(d, "chmod 600 tree/victim.txt tree/sub/id_ed25519.pub");
    let body: Vec<Vec<u8>> = String::from_utf8(key)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(|l| l.as_bytes().to_vec())
        .collect();
    assert!(!body.is_empty());
    Secrets(body)
}

/// Waits until every file under `tree/` changed more than the cache's margin (2 s) ago: only
/// then does a scan record them. A wait for a condition on the clock, not an assertion.
fn settle(d: &TestDir) {
    let newest = walk(&d.join("tree"))
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            m.ctime() as f64 + m.ctime_nsec() as f64 / 1e9
        })
        .fold(0f64, f64::max);
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        if now > newest + 2.5 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The cache files rehost wrote (one per host and set of scanned paths).
fn cache_files(d: &TestDir) -> Vec<PathBuf> {
    let dir = d.join("cache/rehost/keys");
    match std::fs::read_dir(&dir) {
        Ok(r) => r.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_second_scan_opens_only_what_changed_and_no_cache_opens_everything() {
    let d = TestDir::new();
    let secrets = make_tree(&d);
    let files = PLAIN as u64 + 3;
    settle(&d);

    // The first scan opens every file, and records the ones it found nothing in.
    let (o, first) = scan(&d, &[]);
    assert_eq!(
        (n(&first, "files"), n(&first, "cached"), n(&first, "read")),
        (files, 0, 2),
        "{first}"
    );
    assert_eq!(notes(&first), "[]");
    let cached = cache_files(&d);
    assert_eq!(cached.len(), 1, "{cached:?}");
    let meta = std::fs::symlink_metadata(&cached[0]).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let mut outputs = vec![o];

    // The second opens only the private key: the public key's findings were kept (public
    // facts only), the same in every field.
    let (o, second) = scan(&d, &[]);
    assert_eq!(
        (
            n(&second, "files"),
            n(&second, "cached"),
            n(&second, "read")
        ),
        (files, PLAIN as u64 + 2, 1),
        "{second}"
    );
    assert_eq!(keys(&second), keys(&first));
    assert_eq!(second["scans"][0]["keys"], first["scans"][0]["keys"]);
    outputs.push(o);
    let text = run(&d, &["keys", "scan", "tree"]);
    assert!(
        text.stdout.contains(&format!(
            "2 keys in 1 file read of {files} examined; {} of them not opened, unchanged since a scan found nothing in them or only certificates and public keys, which it kept (--no-cache opens every file)",
            PLAIN + 2
        )),
        "{}",
        text.stdout
    );
    outputs.push(text);

    // victim.txt now holds the key, same size, its mtime put back: its ctime moved, so it is
    // read again and the key found there. The public key file whose findings were kept now
    // holds the private key, its mtime put back too: read again, the kept findings not used.
    sh(
        &d,
        "touch -r tree/victim.txt ref && cat tree/sub/id_ed25519 > tree/victim.txt && touch -r ref tree/victim.txt \
         && touch -r tree/sub/id_ed25519.pub ref && cat tree/sub/id_ed25519 > tree/sub/id_ed25519.pub \
         && touch -r ref tree/sub/id_ed25519.pub",
    );
    let (o, third) = scan(&d, &[]);
    assert_eq!(
        (n(&third, "cached"), n(&third, "read")),
        (PLAIN as u64, 3),
        "{third}"
    );
    assert!(
        keys(&third)
            .iter()
            .any(|k| k.ends_with("/tree/victim.txt \"ssh-private\"")),
        "{third}"
    );
    assert!(
        keys(&third)
            .iter()
            .any(|k| k.ends_with("/tree/sub/id_ed25519.pub \"ssh-private\"")),
        "{third}"
    );
    assert!(
        !keys(&third).iter().any(|k| k.ends_with("\"ssh-public\"")),
        "{third}"
    );
    outputs.push(o);

    // --no-cache opens every file and leaves the cache as it was.
    let before = std::fs::read(&cached[0]).unwrap();
    let (o, all) = scan(&d, &["--no-cache"]);
    assert_eq!(
        (n(&all, "files"), n(&all, "cached"), n(&all, "read")),
        (files, 0, 3),
        "{all}"
    );
    assert_eq!(keys(&all), keys(&third));
    assert_eq!(std::fs::read(&cached[0]).unwrap(), before);
    outputs.push(o);

    // keys compare takes --no-cache too.
    let o = run(&d, &["keys", "compare", "tree", "tree", "--no-cache"]);
    assert_eq!(o.code, 0, "{}", o.all());
    outputs.push(o);

    // Nothing of the key in any output or in the cache.
    for o in &outputs {
        secrets.assert_absent("stdout", o.stdout.as_bytes());
        secrets.assert_absent("stderr", o.stderr.as_bytes());
    }
    secrets.assert_absent("the key scan cache", &before);

    // Cache files of other paths not written for 30 days are removed when a scan opens the
    // directory (a symlink as one, not what it points to); recent ones stay.
    let dir = d.join("cache/rehost/keys");
    sh(
        &d,
        &format!(
            "cd '{}' && echo x > old.rkc && echo y > recent.rkc && echo z > ../outside \
             && ln -s ../outside link.rkc && touch -d '40 days ago' old.rkc && touch -h -d '40 days ago' link.rkc",
            dir.display()
        ),
    );
    scan(&d, &[]);
    assert!(!dir.join("old.rkc").exists() && dir.join("recent.rkc").exists());
    assert!(std::fs::symlink_metadata(dir.join("link.rkc")).is_err());
    assert_eq!(
        std::fs::read_to_string(d.join("cache/rehost/outside")).unwrap(),
        "z\n"
    );
    assert!(cached[0].exists(), "its own cache stays");
}

#[test]
fn a_cache_that_cannot_be_trusted_is_ignored_named_and_never_hides_a_key() {
    let d = TestDir::new();
    let secrets = make_tree(&d);
    settle(&d);
    scan(&d, &[]);
    let cache = cache_files(&d).pop().expect("a cache written");
    let shown = cache.display().to_string();
    let want = keys(&scan(&d, &[]).1);
    let check = |what: &str, expect: &[&str]| {
        let (o, v) = scan(&d, &[]);
        secrets.assert_absent("stdout", o.stdout.as_bytes());
        assert_eq!(n(&v, "cached"), 0, "{what}: {v}");
        assert_eq!(keys(&v), want, "{what}: {v}");
        for e in expect {
            assert!(notes(&v).contains(e), "{what}: {e}: {v}");
        }
        // Named in the human output too.
        let t = run(&d, &["keys", "scan", "tree", "--no-cache"]);
        assert!(
            !t.stdout.contains("note:"),
            "--no-cache reads no cache: {}",
            t.stdout
        );
        // Made again: the next scan skips again.
        let (_, v) = scan(&d, &[]);
        assert_eq!(n(&v, "cached"), PLAIN as u64 + 2, "{what}, made again: {v}");
        assert_eq!(notes(&v), "[]", "{what}");
    };

    // A byte changed: its checksum.
    let mut b = std::fs::read(&cache).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&cache, &b).unwrap();
    check(
        "corrupt",
        &[&shown, "corrupt (its checksum does not match)"],
    );

    // Cut short.
    let b = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &b[..b.len() - 7]).unwrap();
    check("cut", &[&shown, "corrupt"]);

    // Readable by others: someone may have planted it (and it tells what was scanned).
    sh(&d, &format!("chmod 0644 '{shown}'"));
    check("mode", &[&shown, "mode 0644"]);

    // Owned by another user.
    sh(&d, &format!("chown 65534 '{shown}'"));
    check("owner", &[&shown, "owned by uid 65534"]);

    // A symlink in its place (to a valid cache of ours): not followed.
    sh(
        &d,
        &format!("cp -p '{shown}' '{shown}.real' && ln -sf '{shown}.real' '{shown}'"),
    );
    check("symlink", &[&shown, "it is a symlink"]);
    std::fs::remove_file(format!("{shown}.real")).unwrap();

    // The cache directory writable by others: not used at all, and said.
    let dir = d.join("cache/rehost/keys");
    sh(&d, &format!("chmod 0777 '{}'", dir.display()));
    let (_, v) = scan(&d, &[]);
    assert_eq!(n(&v, "cached"), 0, "{v}");
    assert_eq!(keys(&v), want, "{v}");
    assert!(
        notes(&v).contains("the key scan cache was not used")
            && notes(&v).contains("group or others may write to it"),
        "{v}"
    );
    let t = run(&d, &["keys", "scan", "tree"]);
    assert!(
        t.stdout.contains("note: the key scan cache was not used"),
        "{}",
        t.stdout
    );
}

/// Over ssh the agent keeps the cache on the host it scans (in its user's cache directory
/// there, not this machine's), skips there as here, and finds what a local scan finds.
#[test]
fn the_agent_keeps_the_cache_on_the_host_it_scans() {
    let sshd = rehost_test::sshd::Sshd::start();
    let d = TestDir::new();
    let secrets = make_tree(&d);
    settle(&d);
    let at = d.join("tree").display().to_string();
    let remote_at = format!("{}:{at}", sshd.destination());
    let cfg = sshd.ssh_config().display().to_string();
    let over_ssh = |extra: &[&str]| {
        let mut args = vec!["keys", "scan", &remote_at, "--json", "--ssh-config", &cfg];
        args.extend_from_slice(extra);
        let o = run(&d, &args);
        assert_eq!(o.code, 0, "{}", o.all());
        secrets.assert_absent("stdout", o.stdout.as_bytes());
        crate::keys::json(&o)
    };
    let first = over_ssh(&[]);
    assert_eq!(n(&first, "cached"), 0, "{first}");
    let second = over_ssh(&[]);
    assert_eq!(n(&second, "cached"), PLAIN as u64 + 2, "{second}");
    assert_eq!(n(&second, "read"), 1, "{second}");
    let (_, local) = scan(&d, &["--no-cache"]);
    assert_eq!(keys(&second), keys(&local));
    // The public key's kept findings, as the agent read them the first time.
    assert_eq!(second["scans"][0]["keys"], first["scans"][0]["keys"]);
    // The cache is the ssh host's (the fixture's XDG_CACHE_HOME), none here.
    let there: Vec<PathBuf> = std::fs::read_dir(sshd.cache_dir().join("rehost/keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(there.len(), 1, "{there:?}");
    secrets.assert_absent("the agent's cache", &std::fs::read(&there[0]).unwrap());
    assert!(cache_files(&d).is_empty(), "{:?}", cache_files(&d));
    // --no-cache reaches the agent.
    let all = over_ssh(&["--no-cache"]);
    assert_eq!(n(&all, "cached"), 0, "{all}");
}
