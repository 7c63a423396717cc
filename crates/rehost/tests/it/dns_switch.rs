//! `rehost dns switch` against a real Knot server that takes TSIG-signed updates
//! (`rehost_test::knot::Knot::start_updatable`): the switch is made, signed both ways, and
//! shown by `dig`; running it again changes nothing; a name someone else changed is not
//! touched; a wrong key is refused by the server and nothing changes; a key file every user
//! may read is refused before anything is sent. The secret appears nowhere.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::knot::Knot;
use std::os::unix::fs::PermissionsExt;

const ZONE: &str = "example.test";
/// base64 of 32 bytes: the key the server knows.
const SECRET: &str = "cmVob3N0LXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmc=";
/// Another 32 bytes, under the same key name.
const WRONG: &str = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=";

fn key_file(d: &TestDir, name: &str, text: &str, mode: u32) -> String {
    let p = d.path().join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.display().to_string()
}

/// A Knot serving www as 192.0.2.1 that takes updates signed with the test's key, and the key
/// file `text` (0600) that signs them.
fn updatable(d: &TestDir, text: &str) -> (Knot, String) {
    let knot = Knot::start_updatable(ZONE, 45, "www 300 IN A 192.0.2.1\n", ("rehost-key", SECRET));
    (knot, key_file(d, "tsig.key", text, 0o600))
}

fn switch(d: &TestDir, knot: &Knot, from: &str, to: &str, key: &str) -> rehost_test::Output {
    rehost(
        d,
        &[
            "dns",
            "switch",
            "www.example.test",
            "--from",
            from,
            "--to",
            to,
            "--server",
            &knot.addr(),
            "--key-file",
            key,
            "--ttl",
            "60",
            "--json",
        ],
    )
}

#[test]
fn switch_replaces_exactly_the_old_value_signed_and_proves_it_by_asking() {
    let d = TestDir::new();
    // BIND's form, as `tsig-keygen` writes it.
    let (knot, key) = updatable(
        &d,
        &format!("key \"rehost-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    );

    let o = switch(&d, &knot, "192.0.2.1", "192.0.2.2", &key);
    assert_eq!(o.code, 0, "{}", o.all());
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["result"]["outcome"], "switched", "{v}");
    // Knot signs its answer with the key; rehost checked that MAC.
    assert_eq!(v["result"]["answer_signed"], true, "{v}");
    assert_eq!(v["zone"], "example.test.");
    assert_eq!(v["key"], "rehost-key.");
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(60, "192.0.2.2".to_string())]
    );
    assert!(!o.all().contains(SECRET));

    // Again: it serves the new value already, nothing is sent.
    let o = switch(&d, &knot, "192.0.2.1", "192.0.2.2", &key);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("already_new"), "{}", o.all());

    // The plan's old value is not what the server serves (someone changed it): not touched.
    let o = switch(&d, &knot, "192.0.2.9", "192.0.2.3", &key);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("neither the plan's old value"),
        "{}",
        o.all()
    );
    assert!(o.stderr.contains("192.0.2.2"), "{}", o.all());
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(60, "192.0.2.2".to_string())]
    );

    // A key the server does not know (same name, other secret; Knot's one-line form): the
    // server refuses it and nothing changes.
    let wrong = key_file(
        &d,
        "wrong.key",
        &format!("hmac-sha256:rehost-key:{WRONG}\n"),
        0o600,
    );
    let o = switch(&d, &knot, "192.0.2.2", "192.0.2.3", &wrong);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("NOTAUTH"), "{}", o.all());
    assert!(o.stderr.contains("not signed"), "{}", o.all());
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(60, "192.0.2.2".to_string())]
    );
    assert!(!o.all().contains(WRONG));

    // A key file every user may read is refused before anything is sent.
    let open = key_file(
        &d,
        "open.key",
        &format!("hmac-sha256:rehost-key:{SECRET}\n"),
        0o644,
    );
    let o = switch(&d, &knot, "192.0.2.2", "192.0.2.3", &open);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("chmod o-r"), "{}", o.all());
    assert!(!o.all().contains(SECRET));
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(60, "192.0.2.2".to_string())]
    );

    // Back, in Knot's `keymgr -t` form, the zone given.
    let knot_form = key_file(
        &d,
        "knot.key",
        &format!(
            "# hmac-sha256:rehost-key:{SECRET}\nkey:\n  - id: rehost-key\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"
        ),
        0o600,
    );
    let o = rehost(
        &d,
        &[
            "dns",
            "switch",
            "www.example.test",
            "--from",
            "192.0.2.2",
            "--to",
            "192.0.2.1",
            "--server",
            &knot.addr(),
            "--zone",
            ZONE,
            "--key-file",
            &knot_form,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("switched from 192.0.2.2 to 192.0.2.1"),
        "{}",
        o.all()
    );
    assert!(o.stdout.contains("with a valid signature"), "{}", o.all());
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(300, "192.0.2.1".to_string())]
    );
}

/// A plan's `dns-switch` step, then `dns-propagated` on the same server: the switch is made,
/// the journal keeps the key's name and both values but never the secret, the report shows
/// the switch, and a second run (the step again) finds it switched already.
#[test]
fn dns_switch_step_switches_then_propagation_is_verified_and_the_secret_stays_out() {
    let d = TestDir::new();
    let (knot, key) = updatable(&d, &format!("hmac-sha256:rehost-key:{SECRET}\n"));
    write_plan(
        &d,
        &format!(
            r#"{}
lowered_ttl = "30s"
authoritative = ["{addr}"]

{}

[[steps]]
id = "propagated"
do = "dns-propagated"
name = "www"
interval = "100ms"
timeout = "20s"
{}"#,
            name_entry("5m"),
            switch_step(&key),
            endpoints(&knot),
            addr = knot.addr()
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    // The name's lowered TTL is what the new record gets.
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(30, "192.0.2.2".to_string())]
    );
    let journal = d.read(".rehost/plan/test/journal");
    assert!(journal.contains(r#""kind":"dns-switch""#), "{journal}");
    assert!(journal.contains(r#""outcome":"switched""#), "{journal}");
    assert!(journal.contains(r#""answer_signed":true"#), "{journal}");
    assert!(journal.contains(r#""key":"rehost-key.""#), "{journal}");
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("switched from 192.0.2.1 to 192.0.2.2"), "{md}");
    assert!(md.contains("every server serves the new value"), "{md}");
    // The secret (and its bytes in any form) is nowhere in the state directory.
    let decoded = "rehost-test-secret-32-bytes-long";
    for e in walk(&d.join(".rehost")) {
        let bytes = std::fs::read(&e).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(SECRET) && !text.contains(decoded),
            "{}",
            e.display()
        );
    }
    // The plan's `old` no longer holds: a new rehearsal of the switch finds it done already.
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--state", "again"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        d.read("again/test/journal")
            .contains(r#""outcome":"already_new""#)
    );
}

/// The `[[names]]` entry the plans switch: www from 192.0.2.1 to 192.0.2.2.
fn name_entry(ttl: &str) -> String {
    format!(
        "[[names]]\nid = \"www\"\nname = \"www.example.test\"\ntype = \"A\"\n\
         old = \"192.0.2.1\"\nnew = \"192.0.2.2\"\nttl = \"{ttl}\""
    )
}

/// Production's primary, as the plans here name it: a rehearsal maps it to its Knot.
const PRODUCTION_PRIMARY: &str = "192.0.2.53:53";

/// The `dns-switch` step of `www` at production's primary with the key file `key`.
fn switch_step(key: &str) -> String {
    format!(
        "[[steps]]\nid = \"switch\"\ndo = \"dns-switch\"\nname = \"www\"\n\
         server = \"{PRODUCTION_PRIMARY}\"\ntsig_key = \"{key}\""
    )
}

/// The rehearsal's mapping of production's primary to `knot`.
fn endpoints(knot: &Knot) -> String {
    format!(
        "\n[environments.test.endpoints]\n\"{PRODUCTION_PRIMARY}\" = \"{}\"\n",
        knot.addr()
    )
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A step after the switch fails and the plan rolls back: the switch is undone by its kind's
/// own rollback (the reverse update, signed, then asked), and the journal says so. The concept
/// names the built-in rollback.
#[test]
fn a_failed_step_after_the_switch_rolls_the_name_back() {
    let d = TestDir::new();
    let (knot, key) = updatable(&d, &format!("hmac-sha256:rehost-key:{SECRET}\n"));
    std::fs::create_dir_all(d.join("test-old")).unwrap();
    std::fs::create_dir_all(d.join("test-new")).unwrap();
    let body = format!(
        r#"{}

{}

[[steps]]
id = "start-new"
do = "run"
host = "new"
argv = ["false"]
{}"#,
        name_entry("60s"),
        switch_step(&key),
        endpoints(&knot),
    );
    d.write(
        "plan.toml",
        plan(&body).replace(
            "max_downtime = \"15m\"",
            "max_downtime = \"15m\"\non_failure = \"rollback\"",
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    // Back where it was, with the TTL the switch used.
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(60, "192.0.2.1".to_string())]
    );
    let journal = d.read(".rehost/plan/test/journal");
    let rolled: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains(r#""rolled_back""#) && l.contains(r#""switch""#))
        .collect();
    assert_eq!(rolled.len(), 1, "{journal}");
    assert!(rolled[0].contains(r#""ok":true"#), "{}", rolled[0]);
    assert!(
        rolled[0].contains("switched back from 192.0.2.2 to 192.0.2.1"),
        "{}",
        rolled[0]
    );
    assert!(!journal.contains(SECRET));
    let o = rehost(&d, &["concept", "plan.toml", "--format", "md"]);
    assert!(
        o.stdout.contains("built in: the reverse update"),
        "{}",
        o.all()
    );
}

/// A rehearsal acts only on its own endpoints: a switch at production's primary that the
/// environment does not map stops the rehearsal in its pre-flight, before any step runs and
/// anything is sent, naming the mapping to add (the step itself refuses it too).
#[test]
fn a_rehearsal_does_not_switch_a_primary_its_environment_does_not_map() {
    let d = TestDir::new();
    let (knot, key) = updatable(&d, &format!("hmac-sha256:rehost-key:{SECRET}\n"));
    // The plan names the Knot itself as production's primary, and the environment maps nothing.
    write_plan(
        &d,
        &format!(
            "{}\n\n[[steps]]\nid = \"switch\"\ndo = \"dns-switch\"\nname = \"www\"\n\
             server = \"{}\"\ntsig_key = \"{key}\"\n",
            name_entry("60s"),
            knot.addr()
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "step `switch` (plan line 29) acts on `server` {addr}, production's as the plan writes it, and the environment `test` does not say what the rehearsal uses instead: add endpoints = {{ \"{addr}\" = \"TEST-ADDRESS\" }} to [environments.test]",
            addr = knot.addr()
        )) && o.all().contains("so nothing was run"),
        "{}",
        o.all()
    );
    assert_eq!(
        knot.dig("www.example.test", "A"),
        vec![(300, "192.0.2.1".to_string())]
    );
}

/// The report's "Names" section gathers one name's whole story from its steps: the TTL lowered
/// (a manual step) and the old one expired (`dns-ttl`, with the servers' TTLs), the switch (a
/// signed update, with the expected convergence from the lowered TTL), when the server served
/// the new value (`dns-propagated`), and the client files still holding the old address
/// (`scan-refs`). Without those steps each part says what was not observed. The name's server
/// is production's as the plan writes it: the rehearsal's `dns-ttl` and `dns-propagated` ask
/// the server the environment maps it to.
#[test]
fn the_report_names_section_tells_one_names_ttl_switch_convergence_and_clients() {
    let d = TestDir::new();
    let knot = Knot::start_updatable(ZONE, 45, "www 1 IN A 192.0.2.1\n", ("rehost-key", SECRET));
    let key = key_file(
        &d,
        "rehost.key",
        &format!("hmac-sha256:rehost-key:{SECRET}\n"),
        0o600,
    );
    d.write("test-old/etc/app.conf", "backend = 192.0.2.1\n");
    write_plan(
        &d,
        &format!(
            r#"{}
lowered_ttl = "1s"
authoritative = ["{PRODUCTION_PRIMARY}"]

[[steps]]
id = "lower"
do = "manual"
text = "lower the TTL of www to 1s"
lowers_ttl = ["www"]

[[steps]]
id = "ttl"
do = "dns-ttl"
name = "www"
timeout = "30s"

{}

[[steps]]
id = "propagated"
do = "dns-propagated"
name = "www"
interval = "100ms"
timeout = "20s"

[[steps]]
id = "clients"
do = "scan-refs"
paths = ["old:/etc"]
names = ["www"]
{}"#,
            name_entry("2s"),
            switch_step(&key),
            endpoints(&knot),
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(o.code, 0, "{}", o.all());
    rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let md = d.read(".rehost/plan/test/report.md");
    let names = md
        .split("\n## ")
        .find(|s| s.starts_with("Names"))
        .unwrap_or_else(|| panic!("no Names section: {md}"));
    let row = |what: &str| {
        names
            .lines()
            .find(|l| l.starts_with(&format!("| {what}")))
            .unwrap_or_else(|| panic!("no row `{what}`: {names}"))
            .to_string()
    };
    assert!(
        names.contains("### `www.example.test` A: `192.0.2.1` → `192.0.2.2`"),
        "{names}"
    );
    assert!(
        row("TTL lowered").contains("step `lower` (done), from 2s to 1s"),
        "{names}"
    );
    assert!(
        row("Old TTL expired").contains("checked by step `ttl`: 1 authoritative server(s)"),
        "{names}"
    );
    let switched = row("Switched");
    assert!(
        switched.contains("a dynamic update signed with key `rehost-key.`")
            && switched.contains("(signed answer)")
            && switched.contains("served exactly 192.0.2.2 with TTL 1 s"),
        "{switched}"
    );
    // Expected by: the switch's finish plus the lowered TTL (1 s), as the journal times it.
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let finished = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "switch")
        .and_then(|a| a["finished"].as_str())
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let by = (finished + jiff::SignedDuration::from_secs(1))
        .strftime("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string();
    let expected = row("Clients that ask DNS follow by (expected)");
    assert!(
        expected.contains(&by) && expected.contains("plus the lowered TTL (1s)"),
        "{expected} / {by}"
    );
    assert!(names.contains("every one served `192.0.2.2`"), "{names}");
    let server = names
        .lines()
        .find(|l| l.starts_with(&format!("| `{}`", knot.addr())))
        .unwrap_or_else(|| panic!("{names}"));
    assert!(server.contains("serves the new value"), "{server}");
    assert!(
        names.contains("step `clients` found 1 line(s) in 1 file(s): `old:/etc/app.conf`"),
        "{names}"
    );
    assert!(names.contains("Not compared for any name"), "{names}");

    // A plan that only declares the name: each part says it was not observed.
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}\n\n[[steps]]\nid = \"noop\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\n",
            name_entry("5m")
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("no step of the plan switches it"), "{md}");
    assert!(
        md.contains("not observed (no `dns-propagated` step"),
        "{md}"
    );
    assert!(md.contains("not searched (no `scan-refs` step"), "{md}");
}

/// Without --server, the update goes to the primary the zone's SOA names (MNAME), found
/// through --resolver: here the zone names ns2 (a second loopback address on port 53, where
/// the updatable Knot listens) as its primary, and the switch reaches it there.
#[test]
fn switch_without_a_server_finds_the_primary_from_the_soa() {
    use rehost_test::knot::{Listen, free_port_53_addrs};
    let d = TestDir::new();
    let ips = free_port_53_addrs(2);
    // The zone's first NS (its SOA's MNAME) is `primary` at the second address, where this
    // Knot listens; the first address only answers questions.
    let ns = || vec![("primary".to_string(), ips[1]), ("ns2".to_string(), ips[0])];
    let primary = Knot::start_at(
        Listen {
            ip: ips[1],
            port: 53,
            ns: ns(),
        },
        ZONE,
        45,
        "www 300 IN A 192.0.2.1\n",
        Some(("rehost-key", SECRET)),
    );
    let resolver = Knot::start_at(
        Listen {
            ip: ips[0],
            port: 53,
            ns: ns(),
        },
        ZONE,
        45,
        "www 300 IN A 192.0.2.1\n",
        None,
    );
    let key = key_file(
        &d,
        "tsig.key",
        &format!("hmac-sha256:rehost-key:{SECRET}\n"),
        0o600,
    );
    let o = rehost(
        &d,
        &[
            "dns",
            "switch",
            "www.example.test",
            "--from",
            "192.0.2.1",
            "--to",
            "192.0.2.2",
            "--resolver",
            &resolver.addr(),
            "--key-file",
            &key,
            "--ttl",
            "60",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains(&format!(
            "zone example.test.: its SOA names primary.example.test. as the primary; the update goes to {}:53",
            ips[1]
        )),
        "{}",
        o.all()
    );
    assert_eq!(
        primary.dig("www.example.test", "A"),
        vec![(60, "192.0.2.2".to_string())]
    );
    // The other server was not written to.
    assert_eq!(
        resolver.dig("www.example.test", "A"),
        vec![(300, "192.0.2.1".to_string())]
    );

    // A resolver that does not answer: nothing sent, the error says to give --server.
    let silent = format!("127.0.0.1:{}", rehost_test::knot::silent_port());
    let o = rehost(
        &d,
        &[
            "dns",
            "switch",
            "www.example.test",
            "--from",
            "192.0.2.2",
            "--to",
            "192.0.2.3",
            "--resolver",
            &silent,
            "--key-file",
            &key,
            "--timeout",
            "0.5",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("give it with --server"), "{}", o.all());
}
