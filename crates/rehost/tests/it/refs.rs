//! `rehost refs scan`: on a tree of configuration files, the lines that mention the old
//! address or name are exactly the lines `grep -rnwF` (addresses) and `grep -rnwiF` (names)
//! find, plus the IPv6 spellings a literal search misses, and nothing for near misses; binary
//! files are skipped as `grep -I` skips them, symlinks are not followed; through an ssh host
//! (the agent searches there) the lines are the same.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::collections::BTreeSet;
use std::path::Path;

const V4: &str = "10.0.0.1";
const NAME: &str = "db.example.org";
const V6: &str = "2001:db8::1";

/// A tree as a server's configuration holds it; returns its root.
fn tree(d: &TestDir) -> std::path::PathBuf {
    let root = d.path().join("etc");
    let w = |rel: &str, text: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "hosts",
        b"127.0.0.1 localhost\n10.0.0.1 db.example.org db\n10.0.0.12 other\n",
    );
    w(
        "app/.env",
        b"DATABASE_URL=postgres://app@DB.Example.ORG:5432/app\nCACHE=10.0.0.10\n",
    );
    w(
        "app/config.yml",
        b"db:\n  host: 10.0.0.1\n  port: 5432\nreplica: 110.0.0.1\nmirror: db.example.orgs\n",
    );
    w(
        "app/jdbc.properties",
        b"url=jdbc:postgresql://10.0.0.1:5432/app\r\nuser=app\r\n",
    );
    w(
        "cron.d/backup",
        b"0 3 * * * root pg_dump -h db.example.org app > /backup/app.sql\n",
    );
    w(
        "systemd/system/app.service",
        b"[Service]\nEnvironment=DB=10.0.0.1\nExecStart=/usr/bin/app\n",
    );
    // IPv6: the plain spelling grep finds, and two it cannot.
    w(
        "nginx/upstream.conf",
        b"server [2001:db8::1]:8080;\nserver [2001:0DB8:0:0:0:0:0:1]:8081;\nallow 2001:db8:0000::0001;\nallow 2001:db8::10;\n",
    );
    // Many files, in deep directories, most mentioning nothing.
    for i in 0..300 {
        let text = if i % 37 == 0 {
            format!("line one\nnode{i} = 10.0.0.1\n")
        } else {
            format!("line one\nnode{i} = 10.0.{i}.1\n")
        };
        w(
            &format!("many/d{}/e{}/f{i}.conf", i % 7, i % 3),
            text.as_bytes(),
        );
    }
    // A line of 2 MiB with the address in its middle.
    let mut long = b"first\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1 << 20));
    long.extend_from_slice(b" 10.0.0.1 ");
    long.extend(std::iter::repeat_n(b'y', 1 << 20));
    long.extend_from_slice(b"\nlast 10.0.0.1\n");
    w("long.txt", &long);
    // Binary: skipped by both.
    w("bin/blob", b"\x00\x01ELF 10.0.0.1 db.example.org\n");
    // A symlink to a file outside the tree that mentions the address: not followed.
    std::fs::write(d.path().join("outside"), "10.0.0.1\n").unwrap();
    std::os::unix::fs::symlink(d.path().join("outside"), root.join("link")).unwrap();
    root
}

/// Where rehost's boundaries are stricter than grep -w's (a hyphen or dot joins a name).
fn strict(root: &Path) {
    std::fs::write(
        root.join("strict.txt"),
        "old-db.example.org\nx.db.example.org\ndb.example.org.au\ndb.example.org-2\n",
    )
    .unwrap();
}

/// (path relative to `root`, line) of grep's matches.
fn grep(root: &Path, flags: &str, needle: &str) -> BTreeSet<(String, u64)> {
    let o = std::process::Command::new(rehost_test::require_tool("grep"))
        .args([flags, "-I", "--", needle])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        o.status.code() == Some(0),
        "grep found nothing for {needle}"
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let rest = l.strip_prefix(&format!("{}/", root.display())).unwrap();
            let mut parts = rest.splitn(3, ':');
            let path = parts.next().unwrap().to_string();
            let line = parts.next().unwrap().parse().unwrap();
            (path, line)
        })
        .collect()
}

fn scan(
    d: &TestDir,
    locations: &[&str],
    extra: &[&str],
) -> (rehost_test::Output, serde_json::Value) {
    let mut args = vec![
        "refs", "scan", "--find", V4, "--find", NAME, "--find", V6, "--json",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(locations);
    let o = rehost(d, &args);
    let v = serde_json::from_str(o.stdout.trim()).unwrap_or(serde_json::Value::Null);
    (o, v)
}

/// (path relative to `base`, line) of what rehost found for `needle`.
fn found(v: &serde_json::Value, base: &str, needle: &str) -> BTreeSet<(String, u64)> {
    v["scans"][0]["found"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["find"].as_array().unwrap().iter().any(|n| n == needle))
        .map(|f| {
            let p = f["path"].as_str().unwrap();
            (
                p.strip_prefix(&format!("{base}/")).unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn refs_scan_finds_what_grep_finds_plus_the_ipv6_spellings_and_no_near_misses() {
    let d = TestDir::new();
    let root = tree(&d);
    let base = root.to_str().unwrap();
    let (o, v) = scan(&d, &[base], &[]);
    assert_eq!(o.code, 1, "lines found exit 1: {}", o.all());

    let v4 = found(&v, base, V4);
    assert_eq!(v4, grep(&root, "-rnwF", V4), "{}", o.all());
    assert!(v4.contains(&("many/d0/e0/f0.conf".into(), 2)), "{v4:?}");
    assert!(v4.contains(&("long.txt".into(), 2)) && v4.contains(&("long.txt".into(), 3)));
    assert!(!v4.iter().any(|(p, _)| p.starts_with("bin/") || p == "link"));
    assert_eq!(
        found(&v, base, NAME),
        grep(&root, "-rnwiF", NAME),
        "{}",
        o.all()
    );

    // IPv6: grep finds the plain spelling; rehost every spelling of the same address, and
    // not the longer address.
    let grep6 = grep(&root, "-rnwF", V6);
    let v6 = found(&v, base, V6);
    assert!(v6.is_superset(&grep6), "{v6:?} {grep6:?}");
    let upstream: BTreeSet<u64> = v6
        .iter()
        .filter(|(p, _)| p == "nginx/upstream.conf")
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(upstream, BTreeSet::from([1, 2, 3]), "{}", o.all());

    let s = &v["scans"][0];
    assert_eq!(s["binary"], 1, "{s}");
    assert_eq!(s["symlinks"], 1, "{s}");
    assert_eq!(s["files"], 308, "{s}");
    // The long line's text is a bounded window around the address.
    let long = s["found"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("long.txt") && f["line"] == 2)
        .unwrap();
    let text = long["text"].as_str().unwrap();
    assert!(text.contains("10.0.0.1") && text.len() < 300, "{text}");
}

#[test]
fn names_joined_by_a_hyphen_or_a_dot_are_other_names_though_grep_w_finds_them() {
    let d = TestDir::new();
    let root = tree(&d);
    strict(&root);
    let base = root.to_str().unwrap();
    let (o, v) = scan(&d, &[base], &[]);
    assert_eq!(o.code, 1, "{}", o.all());
    let in_strict: Vec<_> = found(&v, base, NAME)
        .into_iter()
        .filter(|(p, _)| p == "strict.txt")
        .collect();
    assert!(in_strict.is_empty(), "{in_strict:?}");
    assert_eq!(
        grep(&root, "-rnwiF", NAME)
            .into_iter()
            .filter(|(p, _)| p == "strict.txt")
            .count(),
        4,
        "grep -w counts them: this is where rehost is stricter"
    );
}

#[test]
fn refs_scan_prints_lines_as_grep_does_escaped_and_exits_0_when_nothing_mentions() {
    let d = TestDir::new();
    let root = d.path().join("t");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.conf"), "host = 10.0.0.1 \x1b[31mred\n").unwrap();
    std::fs::write(root.join("b.conf"), "host = 10.0.0.2\n").unwrap();
    let o = rehost(&d, &["refs", "scan", "--find", V4, root.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert_eq!(
        o.stdout,
        format!(
            "{}/a.conf:1: host = 10.0.0.1 \\u{{1b}}[31mred\n",
            root.display()
        )
    );
    assert!(
        o.stderr
            .contains("1 line(s) in 1 file(s) mention 10.0.0.1; searched 2 file(s)"),
        "{}",
        o.all()
    );

    let o = rehost(
        &d,
        &["refs", "scan", "--find", "10.0.0.3", root.to_str().unwrap()],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.is_empty(), "{}", o.all());

    // Bad needles and missing locations are named.
    let o = rehost(
        &d,
        &[
            "refs",
            "scan",
            "--find",
            "10.0.0.300",
            root.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("`10.0.0.300`"), "{}", o.all());
    let missing = d.path().join("nope");
    let o = rehost(
        &d,
        &["refs", "scan", "--find", V4, missing.to_str().unwrap()],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("not searched") && o.stderr.contains("nope"),
        "{}",
        o.all()
    );
}

/// Through an ssh host, and with locations side by side: the same host twice on its first
/// contact with the agent (both sessions start it at once) and this machine, in one command;
/// each location's lines are a local scan's, in the order the locations were given.
#[test]
fn refs_scan_through_an_ssh_host_finds_the_same_lines() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let root = tree(&d);
    let base = root.to_str().unwrap();
    let config = sshd.ssh_config();
    let at = format!("{}:{base}", sshd.destination());
    let (o, both) = scan(
        &d,
        &[&at, base, &at],
        &["--ssh-config", config.to_str().unwrap()],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let (local_o, local) = scan(&d, &[base], &[]);
    assert_eq!(local_o.code, 1, "{}", local_o.all());
    let scans = both["scans"].as_array().unwrap();
    assert_eq!(scans.len(), 3);
    for (i, (location, host)) in [
        (at.as_str(), serde_json::json!(sshd.destination())),
        (base, serde_json::Value::Null),
        (at.as_str(), serde_json::json!(sshd.destination())),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(scans[i]["location"], location, "scan {i}");
        assert_eq!(scans[i]["host"], host, "scan {i}");
        assert_eq!(scans[i]["found"], local["scans"][0]["found"], "scan {i}");
        assert_eq!(scans[i]["files"], local["scans"][0]["files"], "scan {i}");
    }
}

#[test]
fn a_scan_refs_step_lists_the_clients_to_reconfigure_and_require_none_fails_while_they_remain() {
    let d = TestDir::new();
    d.write(
        "test-old/etc/app/app.conf",
        "db_host = 10.0.0.1\ncache = 10.0.0.12\n",
    );
    d.write(
        "test-old/etc/hosts",
        "127.0.0.1 localhost\n10.0.0.1 DB.example.org\n",
    );
    d.write("test-old/etc/motd", "welcome\n");
    write_plan(
        &d,
        r#"
[[names]]
id = "db"
name = "db.example.org"
type = "A"
old = "10.0.0.1"
new = "10.0.0.2"

[[clients]]
id = "app-servers"
hosts = ["app1"]
files = ["/etc/app/app.conf"]

[[steps]]
id = "find-clients"
do = "scan-refs"
paths = ["old:/etc"]
names = ["db"]

[[steps]]
id = "none-left"
do = "scan-refs"
paths = ["old:/etc"]
names = ["db"]
clients = ["app-servers"]
require_none = true
"#,
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "the second step fails: {}", o.all());
    assert!(
        o.stdout.contains(
            "2 line(s) in 2 file(s) mention db.example.org, 10.0.0.1: the clients to reconfigure"
        ),
        "{}",
        o.all()
    );
    assert!(
        o.all().contains(
            "2 line(s) in 2 file(s) still mention db.example.org, 10.0.0.1: reconfigure them"
        ),
        "{}",
        o.all()
    );

    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(r.code, 1, "a failed step: not a clean verdict: {}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let refs = &json["run"]["attempts"][0]["refs"];
    assert_eq!(
        refs["find"],
        serde_json::json!(["db.example.org", "10.0.0.1"])
    );
    let scan = &refs["scans"][0];
    assert_eq!(scan["host"], "old");
    assert_eq!(scan["files"], 3, "{scan}");
    let lines: Vec<(String, u64)> = scan["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("/etc/app/app.conf".to_string(), 1),
            ("/etc/hosts".to_string(), 2)
        ]
    );
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("## Clients holding the old address"), "{md}");
    assert!(md.contains("`old:/etc/hosts`"), "{md}");
    assert!(md.contains("none may remain: the step failed"), "{md}");

    // Reconfigured: the clean scan passes.
    d.write(
        "test-old/etc/app/app.conf",
        "db_host = db-new.example.org\n",
    );
    d.write("test-old/etc/hosts", "127.0.0.1 localhost\n");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("no line of the 3 file(s) searched mentions db.example.org, 10.0.0.1"),
        "{}",
        o.all()
    );
}

/// The kernel's pseudo file systems are not searched: named as a location, refused; met below
/// one (`/dev/pts` in `/dev`), not entered and named. (`/proc/kmsg` would block a reader.)
#[test]
fn pseudo_file_systems_are_not_entered() {
    let d = TestDir::new();
    let o = rehost(&d, &["refs", "scan", "--find", V4, "/proc"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("/proc: on the kernel's proc file system: not searched"),
        "{}",
        o.all()
    );
    let pts = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", "/dev/pts"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pts.stdout).trim(), "devpts");
    let o = rehost(&d, &["refs", "scan", "--find", V4, "/dev", "--json"]);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    let pseudo = v["scans"][0]["pseudo"].as_array().unwrap();
    assert!(
        pseudo.iter().any(|p| p == "/dev/pts (devpts)"),
        "{}",
        o.all()
    );
}

/// A name resolved from hosts files (`via = "hosts-file"`): `check` asks for the manual step
/// per client with the file to change; with it, the run changes nothing by DNS, the
/// `scan-refs` step shows no file left with the old address, the concept says it switches by
/// hand in the clients' files, and the report's Names section names the step that changed them.
#[test]
fn a_hosts_file_name_switches_by_a_manual_step_per_client_checked_by_scan_refs() {
    let d = TestDir::new();
    d.write(
        "test-old/etc/hosts",
        "127.0.0.1 localhost\n10.0.0.2 db.example.org\n",
    );
    let name = r#"
[[names]]
id = "db"
name = "db.example.org"
old = "10.0.0.1"
new = "10.0.0.2"
via = "hosts-file"
clients = ["apps"]

[[clients]]
id = "apps"
hosts = ["app1"]
files = ["/etc/hosts"]
"#;
    let check_step = r#"
[[steps]]
id = "none-left"
do = "scan-refs"
paths = ["old:/etc"]
names = ["db"]
require_none = true
"#;
    write_plan(&d, &format!("{name}{check_step}"));
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(
        o.all().contains("hosts-file-not-changed")
            && o.all().contains(
                "on app1: in /etc/hosts, change db.example.org from 10.0.0.1 to 10.0.0.2"
            ),
        "{}",
        o.all()
    );
    let change = r#"
[[steps]]
id = "edit-hosts"
do = "manual"
text = "on app1: in /etc/hosts, change db.example.org from 10.0.0.1 to 10.0.0.2"
reconfigures = ["apps"]
"#;
    write_plan(&d, &format!("{name}{change}{check_step}"));
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(!o.all().contains("hosts-file-not-changed"), "{}", o.all());
    let o = rehost(&d, &["concept", "plan.toml"]);
    assert!(
        o.stdout
            .contains("by hand in the clients' hosts files: \\#1 `edit-hosts`"),
        "{}",
        o.stdout
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(o.code, 0, "{}", o.all());
    rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let md = d.read(".rehost/plan/test/report.md");
    let names = md
        .split("\n## ")
        .find(|s| s.starts_with("Names"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        names.contains("Resolved from the clients' hosts files"),
        "{names}"
    );
    let row = names
        .lines()
        .find(|l| l.starts_with("| Files of clients `apps` changed"))
        .unwrap_or_else(|| panic!("{names}"));
    assert!(row.contains("step `edit-hosts`, confirmed by"), "{row}");
    assert!(
        names.contains("step `none-left` found 0 line(s) in 0 file(s)"),
        "{names}"
    );
    assert!(!names.contains("dns-propagated"), "{names}");
}
