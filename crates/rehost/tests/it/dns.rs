//! `rehost dns check` against real Knot servers on loopback (`rehost_test::knot`): answers and
//! TTLs equal `dig`'s, a server serving another address differs (exit 1), a server nobody
//! listens for is "not asked" (exit 2), never agreement, and a large answer comes over TCP.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::knot::{Knot, Listen, free_port_53_addrs, silent_port};

const ZONE: &str = "example.test";

fn json(o: &rehost_test::Output) -> serde_json::Value {
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.all()))
}

#[test]
fn check_reports_agreement_difference_and_silence_with_digs_ttls() {
    let d = TestDir::new();
    let one = Knot::start(ZONE, 45, "www 300 IN A 192.0.2.1\n");
    let two = Knot::start(ZONE, 45, "www 120 IN A 192.0.2.2\n");

    // Both asked, both serve what dig sees, with dig's TTLs.
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--expect",
            "192.0.2.1",
            "--authoritative",
            &one.addr(),
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let v = json(&o);
    let dug = one.dig("www.example.test", "A");
    assert_eq!(dug, vec![(300, "192.0.2.1".to_string())]);
    let a = &v["servers"][0]["answer"];
    assert_eq!(a["status"], "answered");
    assert_eq!(a["values"], serde_json::json!(["192.0.2.1"]));
    assert_eq!(a["ttl"], 300);
    assert_eq!(a["negative_ttl"], 45);
    assert_eq!(a["authoritative"], true);
    assert_eq!(a["tcp"], false);

    // The second server serves another address: exit 1, named with its own answer and TTL.
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--expect",
            "192.0.2.1",
            "--authoritative",
            &one.addr(),
            "--authoritative",
            &two.addr(),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let line = o
        .stdout
        .lines()
        .find(|l| l.contains(&two.addr()))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(line.contains("DIFFERS") && line.contains("192.0.2.2") && line.contains("ttl 120"));
    assert!(
        o.stdout.contains("1 of 2 servers do not serve"),
        "{}",
        o.stdout
    );

    // Without --expect, differing answers are exit 1; equal ones 0.
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--authoritative",
            &one.addr(),
            "--authoritative",
            &two.addr(),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());

    // A server nobody answers for is not asked, never agreement; it takes the exit code.
    let silent = format!("127.0.0.1:{}", silent_port());
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--expect",
            "192.0.2.1",
            "--authoritative",
            &one.addr(),
            "--resolver",
            &silent,
            "--timeout",
            "1",
            "--json",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    let v = json(&o);
    assert_eq!(v["result"], "not_asked");
    assert_eq!(v["servers"][1]["role"], "resolver");
    assert_eq!(v["servers"][1]["answer"]["status"], "not_answered");
    assert!(
        v["servers"][1]["answer"]["reason"]
            .as_str()
            .unwrap()
            .contains("nothing answers on UDP port"),
        "{v}"
    );

    // A name that does not exist: NXDOMAIN with the zone's negative TTL, not the expected.
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "new.example.test",
            "--expect",
            "192.0.2.9",
            "--authoritative",
            &one.addr(),
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let a = &json(&o)["servers"][0]["answer"];
    assert_eq!(a["rcode"], "NXDOMAIN");
    assert_eq!(a["values"], serde_json::json!([]));
    assert_eq!(a["negative_ttl"], 45);

    // No authoritative server given, and the resolver to find them through is silent: exit
    // 2, naming what to give.
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--resolver",
            &silent,
            "--timeout",
            "0.5",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stdout
            .contains("the zone's authoritative servers could not be found")
            && o.stdout.contains("--authoritative"),
        "{}",
        o.all()
    );
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--authoritative",
            "ns1.example.test",
        ],
    );
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("not a server address"), "{}", o.stderr);
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let d = TestDir::new();
    // 200 A records: far more than 1232 bytes, so the UDP answer is truncated.
    let records: String = (1..=200)
        .map(|i| format!("big 60 IN A 198.51.{}.{}\n", i / 100, i % 100 + 1))
        .collect();
    let knot = Knot::start(ZONE, 30, &records);
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "big.example.test",
            "--authoritative",
            &knot.addr(),
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let a = &json(&o)["servers"][0]["answer"];
    assert_eq!(a["tcp"], true, "{a}");
    let mut dug: Vec<String> = knot
        .dig("big.example.test", "A")
        .into_iter()
        .map(|(ttl, v)| {
            assert_eq!(ttl, 60);
            v
        })
        .collect();
    dug.sort();
    let got: Vec<String> = a["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.len(), 200);
    assert_eq!(got, dug);
}

/// A plan whose `dns-propagated` step waits for `www` to serve 192.0.2.2 on both servers.
fn propagation_plan(d: &TestDir, servers: &[&Knot], timeout: &str) {
    let list: Vec<String> = servers
        .iter()
        .map(|k| format!("\"{}\"", k.addr()))
        .collect();
    write_plan(
        d,
        &format!(
            r#"
[[names]]
id = "www"
name = "www.example.test"
type = "A"
old = "192.0.2.1"
new = "192.0.2.2"
ttl = "1m"
authoritative = [{}]

[[steps]]
id = "propagated"
do = "dns-propagated"
name = "www"
interval = "100ms"
timeout = "{timeout}"
"#,
            list.join(", ")
        ),
    );
}

const OLD: &str = "www 60 IN A 192.0.2.1\n";
const NEW: &str = "www 60 IN A 192.0.2.2\n";

#[test]
fn dns_propagated_waits_until_the_last_server_serves_the_new_address() {
    let d = TestDir::new();
    let one = Knot::start(ZONE, 30, OLD);
    let two = Knot::start(ZONE, 30, OLD);
    one.reload(2, 30, NEW);
    propagation_plan(&d, &[&one, &two], "60s");
    let o = std::thread::scope(|s| {
        let run = s.spawn(|| rehost(&d, &["run", "plan.toml", "--env", "test"]));
        // The second server switches while the step waits: it must have asked at least once
        // and seen it lag (the journal's rounds and first-served times show it). The step
        // writes each round to its output file: wait for one that shows the old address.
        let outputs = d.join(".rehost/plan/test/output");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_dir(&outputs).is_ok_and(|dir| {
            dir.flatten()
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("192.0.2.1")))
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "the step wrote no round showing the old address within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        two.reload(2, 30, NEW);
        run.join().unwrap()
    });
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("serve 192.0.2.2"), "{}", o.stdout);
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let dns = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["verification"]["dns"].as_object().cloned())
        .unwrap_or_else(|| panic!("{json}"));
    assert!(dns["rounds"].as_u64().unwrap() > 1, "{dns:?}");
    let servers = dns["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    for s in servers {
        assert_eq!(s["status"], "serves");
        assert_eq!(s["values"], serde_json::json!(["192.0.2.2"]));
        assert_eq!(s["ttl"], 60);
    }
    let first = |i: usize| servers[i]["first_served"].as_str().unwrap().to_string();
    assert!(first(0) < first(1), "{} {}", first(0), first(1));
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("every server serves the new value"), "{md}");
    assert!(
        md.contains(&format!("`{}`", two.addr())) && md.contains(&first(1)),
        "{md}"
    );
}

#[test]
fn dns_propagated_times_out_naming_the_lagging_server_and_its_ttl() {
    let d = TestDir::new();
    let one = Knot::start(ZONE, 30, OLD);
    let two = Knot::start(ZONE, 30, OLD);
    one.reload(2, 30, NEW);
    propagation_plan(&d, &[&one, &two], "1s");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    let lag = format!(
        "{} (authoritative) serves 192.0.2.1, which caches may keep for up to 60 s",
        two.addr()
    );
    assert!(o.all().contains(&lag), "{}", o.all());
    assert!(
        !o.all()
            .contains(&format!("{} (authoritative) serves", one.addr())),
        "{}",
        o.all()
    );
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("SERVERS STILL SERVE ANOTHER VALUE"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| lagging"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains(&two.addr()) && row.contains("192.0.2.1") && row.contains("TTL 60 s"),
        "{row}"
    );

    // A server that does not answer lags too, never agrees.
    let d = TestDir::new();
    let silent = format!("127.0.0.1:{}", silent_port());
    write_plan(
        &d,
        &format!(
            r#"
[[names]]
id = "www"
name = "www.example.test"
new = "192.0.2.2"
authoritative = ["{}", "{silent}"]

[[steps]]
id = "propagated"
do = "dns-propagated"
name = "www"
interval = "100ms"
timeout = "500ms"
"#,
            one.addr()
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all()
            .contains(&format!("{silent} (authoritative) did not answer")),
        "{}",
        o.all()
    );
}

#[test]
fn a_dns_step_needs_a_declared_name_with_a_new_value_and_server_addresses() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[names]]
id = "www"
name = "www.example.test"
resolvers = ["dns1.example.test"]

[[steps]]
id = "propagated"
do = "dns-propagated"
name = "www"

[[steps]]
id = "other"
do = "dns-propagated"
name = "ftp"
"#,
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.all().contains("the entry has no `new`"), "{}", o.all());
    assert!(
        o.all()
            .contains("server `dns1.example.test` is not an address"),
        "{}",
        o.all()
    );
    assert!(
        o.all()
            .contains("name `ftp`, which the plan does not declare"),
        "{}",
        o.all()
    );
}

/// A plan that lowers `www`'s TTL in a manual step and then checks it with `dns-ttl`.
fn ttl_plan(d: &TestDir, knot: &Knot, ttl: &str, lowers: bool) {
    write_plan(
        d,
        &format!(
            r#"
[[names]]
id = "www"
name = "www.example.test"
ttl = "{ttl}"
lowered_ttl = "1m"
authoritative = ["{}"]

[[steps]]
id = "lower"
do = "manual"
text = "lower the TTL of www to 1m"
{}

[[steps]]
id = "ttl"
do = "dns-ttl"
name = "www"
timeout = "30s"
"#,
            knot.addr(),
            if lowers { "lowers_ttl = [\"www\"]" } else { "" }
        ),
    );
}

#[test]
fn dns_ttl_waits_until_the_old_ttl_has_expired_since_it_was_lowered() {
    let d = TestDir::new();
    let knot = Knot::start(ZONE, 30, "www 60 IN A 192.0.2.1\n");
    ttl_plan(&d, &knot, "2s", true);
    let t0 = std::time::Instant::now();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    let took = t0.elapsed();
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(took >= std::time::Duration::from_millis(1900), "{took:?}");
    assert!(o.stdout.contains("old TTL (2s) expired at"), "{}", o.stdout);
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    // The one point to review is the manual step confirmed by --yes.
    let kinds: Vec<&str> = json["verdict"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["decision"], "{}", o.all());
    let t = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["verification"]["dns_ttl"].as_object().cloned())
        .unwrap_or_else(|| panic!("{json}"));
    // Exactly the old TTL after the lowering step finished: the expiry is the journal's time of
    // `lower` plus 2 s, and the step waited for it (most of it: `lower` finished just before).
    let at = |k: &str| t[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(
        at("expired_at").duration_since(at("lowered_at")),
        jiff::SignedDuration::from_secs(2)
    );
    let waited = t["waited_ms"].as_u64().unwrap();
    assert!((1000..=2600).contains(&waited), "{waited}");
    assert_eq!(t["lowered_by"], "lower");
    assert_eq!(t["servers"][0]["ttl"], 60);
    assert!(
        d.read(".rehost/plan/test/report.md")
            .contains("lowered, and the old TTL expired")
    );

    // A TTL that was not lowered fails at once, naming the server and its TTL.
    knot.reload(2, 30, "www 3600 IN A 192.0.2.1\n");
    let d = TestDir::new();
    ttl_plan(&d, &knot, "2s", true);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "{} serves TTL 3600 s, more than the lowered 60 s",
            knot.addr()
        )),
        "{}",
        o.all()
    );

    // Without a step that declares it lowers the TTL, nobody knows when caches let go.
    knot.reload(3, 30, "www 60 IN A 192.0.2.1\n");
    let d = TestDir::new();
    ttl_plan(&d, &knot, "2s", false);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all()
            .contains("no step that lowers the TTL of name `www`"),
        "{}",
        o.all()
    );

    // An old TTL that expires beyond the step's timeout fails at once, saying when.
    let d = TestDir::new();
    ttl_plan(&d, &knot, "1h", true);
    let t0 = std::time::Instant::now();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        o.all().contains("beyond this step's timeout (30s)"),
        "{}",
        o.all()
    );
}

/// Without --authoritative, `dns check` finds the zone's servers as DNS names them: the
/// nearest name with NS records above the name, each NS name's address (glue), the SOA's
/// primary; every one of them is asked, and the one serving another address differs. Two Knot
/// servers on port 53 of their own loopback addresses (NS records carry no port).
#[test]
fn check_finds_the_authoritative_servers_through_the_zones_ns_records() {
    let d = TestDir::new();
    let ips = free_port_53_addrs(2);
    let ns = || vec![("ns1".to_string(), ips[0]), ("ns2".to_string(), ips[1])];
    let one = Knot::start_at(
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
    let _two = Knot::start_at(
        Listen {
            ip: ips[1],
            port: 53,
            ns: ns(),
        },
        ZONE,
        45,
        "www 300 IN A 192.0.2.2\n",
        None,
    );
    // Asked through the first server (standing in for a resolver).
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--expect",
            "192.0.2.1",
            "--resolver",
            &one.addr(),
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o);
    let found = &v["discovered"];
    assert_eq!(found["zone"], "example.test.", "{v}");
    assert_eq!(found["primary"], "ns1.example.test.", "{v}");
    let names: Vec<(String, String, String)> = found["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["addrs"][0].as_str().unwrap().to_string(),
                s["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names.iter().map(|n| (&n.0, &n.1)).collect::<Vec<_>>(),
        vec![
            (&"ns1.example.test.".to_string(), &format!("{}:53", ips[0])),
            (&"ns2.example.test.".to_string(), &format!("{}:53", ips[1])),
        ]
    );
    let asked: Vec<(String, String, String)> = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["server"].as_str().unwrap().to_string(),
                s["role"].as_str().unwrap().to_string(),
                s["answer"]["values"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        vec![
            (
                format!("{}:53", ips[0]),
                "authoritative".into(),
                "192.0.2.1".into()
            ),
            (
                format!("{}:53", ips[1]),
                "authoritative".into(),
                "192.0.2.2".into()
            ),
            (
                format!("{}:53", ips[0]),
                "resolver".into(),
                "192.0.2.1".into()
            ),
        ]
    );
    // The human form says where the servers came from.
    let o = rehost(
        &d,
        &[
            "dns",
            "check",
            "www.example.test",
            "--resolver",
            &one.addr(),
        ],
    );
    assert!(
        o.stdout.contains(&format!(
            "zone example.test.: authoritative servers from its NS records, asked of {}:53: \
             ns1.example.test. ({}:53, glue); ns2.example.test. ({}:53, glue); primary (SOA) \
             ns1.example.test.",
            ips[0], ips[0], ips[1]
        )),
        "{}",
        o.stdout
    );
    assert_eq!(o.code, 1, "the two differ: {}", o.all());
}
