//! The `address-moved` step against real sshd servers on loopback: the address answers with the
//! new host's SSH host key (passes), with the old host's (fails naming it), with nothing (fails),
//! and hosts that share a host key cannot be told apart (fails saying so, never passes).

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;

/// A plan whose `old` and `new` are this machine with their roots in the two servers'
/// directories (so `/host_ed25519.pub` is each one's SSH host key), and one step checking that
/// `address` answers as `new`.
fn plan(d: &TestDir, old: &Sshd, new: &Sshd, address: &str) {
    d.write(
        "plan.toml",
        format!(
            r#"
[migration]
title = "address"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"

[hosts.old]
local = true
root = "prod-old"

[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = {{ local = true, root = "{old}" }}
new = {{ local = true, root = "{new}" }}
endpoints = {{ "{address}" = "{address}" }}

[[steps]]
id = "address-on-new"
do = "address-moved"
address = "{address}"
to = "new"
from = "old"
host_keys = ["/host_ed25519.pub"]
timeout = "3s"
"#,
            old = old.dir().display(),
            new = new.dir().display(),
        ),
    );
}

fn fingerprint(sshd: &Sshd) -> String {
    let o = std::process::Command::new(rehost_test::require_tool("ssh-keygen"))
        .args(["-l", "-E", "sha256", "-f"])
        .arg(sshd.dir().join("host_ed25519.pub"))
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

fn run(d: &TestDir) -> rehost_test::Output {
    rehost(d, &["run", "plan.toml", "--env", "test"])
}

#[test]
fn the_address_answers_with_the_new_hosts_key_and_the_report_shows_it_verified() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    plan(&d, &old, &new, &format!("127.0.0.1:{}", new.port()));
    let o = run(&d);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(&format!(
            "127.0.0.1:{} answers as host `new`: the SSH server there offered 1 host key(s), each one of `new`'s, none of the old host's",
            new.port()
        )),
        "{}",
        o.all()
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let v = &json["run"]["attempts"][0]["verification"];
    assert_eq!(v["kind"], "address", "{v}");
    assert_eq!(v["exit_code"], 0, "{v}");
    assert!(
        v["destination"]
            .as_str()
            .unwrap()
            .contains(&fingerprint(&new)),
        "{v}"
    );
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("answers as the new host (its SSH host key)"),
        "{md}"
    );
    assert!(
        md.contains("services other than SSH at the address"),
        "{md}"
    );
}

#[test]
fn the_old_host_still_answering_or_nothing_answering_fails_naming_it() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    // The address still reaches the old server.
    plan(&d, &old, &new, &format!("127.0.0.1:{}", old.port()));
    let o = run(&d);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "still answers as the old host `old` (host key {})",
            fingerprint(&old)
        )),
        "{}",
        o.all()
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("DOES NOT ANSWER AS THE NEW HOST"), "{md}");
    assert!(md.contains("old-host-answers"), "{md}");

    // Nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let d = TestDir::new();
    plan(&d, &old, &new, &format!("127.0.0.1:{port}"));
    let o = run(&d);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.all().contains("offered an SSH host key"), "{}", o.all());
}

#[test]
fn hosts_sharing_a_host_key_cannot_be_told_apart_and_never_pass() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    // The old host's key was carried over to the new one (what clients' known_hosts want).
    std::fs::copy(
        new.dir().join("host_ed25519.pub"),
        old.dir().join("host_ed25519.pub"),
    )
    .unwrap();
    plan(&d, &old, &new, &format!("127.0.0.1:{}", new.port()));
    let o = run(&d);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.all().contains("hold the same SSH host key")
            && o.all().contains("cannot tell them apart"),
        "{}",
        o.all()
    );
}
