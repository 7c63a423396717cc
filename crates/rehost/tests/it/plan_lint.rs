//! Issue 18: what the plan names and the lint sees, through the binary. A key that a data set's
//! `exclude` leaves out was reported as carried and verified, and `check` was silent; a
//! credential in the plan was printed back with its plan line.

use crate::support::*;
use rehost_test::TestDir;

const KEY_EXCLUDED: &str = r#"
[[data]]
id = "ssl"
from = "old:/etc/ssl"
to = "new:/etc/ssl"
exclude = ["*.tmp", "private/"]

[[keys]]
id = "tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/www.key"]

[[steps]]
id = "copy"
do = "sync"
data = "ssl"
transfers = ["tls"]

[[steps]]
id = "verify"
do = "verify-tree"
data = "ssl"
verifies = ["tls"]
"#;

#[test]
fn a_key_the_data_set_excludes_is_a_finding_and_never_verified() {
    let d = TestDir::new();
    // The lint: the finding at the plan line of the claim, naming the exclude.
    let ran = test_in(&d)
        .plan(KEY_EXCLUDED)
        .args(["check", "plan.toml"])
        .stdout_has("finding[key-not-carried]: step `copy` says it transfers key `tls`, but data set `ssl` (old:/etc/ssl) excludes /etc/ssl/private/www.key (exclude `private/`)")
        .code(1);
    snap!(ran, "check");

    // A rehearsal runs (findings are tolerated there): the verification passes for what it
    // compared, and says the key was not.
    d.write("test-old/etc/ssl/certs/www.pem", "cert\n");
    d.write("test-old/etc/ssl/private/www.key", "key\n");
    d.write("test-old/etc/ssl/x.tmp", "tmp\n");
    std::fs::create_dir_all(d.join("test-new/etc")).unwrap();
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stdout_has("not compared, excluded by the data set: `*.tmp`, `private/`; NOT VERIFIED, though the plan names it: key `tls` /etc/ssl/private/www.key (`private/`)")
        .success();
    assert!(!d.join("test-new/etc/ssl/private/www.key").exists());
    snap!(ran, "run");

    // The report: the excludes in the verification's table, the key under "not verified",
    // and the verdict fails on a step that says it verifies what it did not compare.
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.all());
    let json: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    let v = json["run"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a.get("verification").filter(|v| !v.is_null()))
        .expect("the verification's attempt");
    assert_eq!(
        v["excludes"],
        serde_json::json!(["*.tmp", "private/"]),
        "{v:#}"
    );
    assert_eq!(
        v["not_verified"],
        serde_json::json!([{"path": "/etc/ssl/private/www.key", "key": "tls", "exclude": "private/"}]),
        "{v:#}"
    );
    let items = json["verdict"]["items"].as_array().unwrap();
    let item = items
        .iter()
        .find(|i| i["kind"] == "not_verified" && i["step"] == "verify")
        .unwrap_or_else(|| panic!("{items:#?}"));
    assert!(
        item["text"]
            .as_str()
            .unwrap()
            .contains("did not verify /etc/ssl/private/www.key of key `tls`"),
        "{item:#}"
    );
    assert_ne!(json["verdict"]["level"], "clean", "{:#}", json["verdict"]);
    let md = d.read("out/report.md");
    assert!(
        md.contains("Not verified: 1 path(s) the plan names")
            && md.contains("Excluded by the data set (not compared)"),
        "{md}"
    );
}

/// `check` shows the plan line of a credential finding with the secret masked, and `--json`
/// never has it either.
#[test]
fn a_credential_in_the_plan_is_found_and_never_shown() {
    let d = TestDir::new();
    let ran = test_in(&d)
        .plan(
            r#"
[[steps]]
id = "dump"
do = "run"
host = "old"
command = "PGPASSWORD=Sw0rdfish-4711 pg_dump -Fc app > /srv/app.dump"
"#,
        )
        .args(["check", "plan.toml"])
        .stdout_has("finding[credential-in-plan]: line ")
        .stdout_has("command = \"PGPASSWORD=***")
        .never_prints("Sw0rdfish")
        .code(1);
    snap!(ran, "check");
    let ran = test_in(&d)
        .args(["check", "plan.toml", "--json"])
        .stdout_has("credential-in-plan")
        .never_prints("Sw0rdfish")
        .code(1);
    snap!(ran, "check_json");
}
