//! The `verify-files` step kind: single files carried by hand compared on both hosts, local
//! and over ssh, the plan's checks of its paths, and what the report says it did not compare.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::os::unix::fs::PermissionsExt;

const STEP: &str = r#"
[[steps]]
id = "files"
do = "verify-files"
from = "old"
to = "new"
paths = ["/etc/krb5.keytab", "/etc/cron.d/billing"]
"#;

/// The two files on both test hosts, equal but for their modification times.
fn carried(d: &TestDir) {
    for (root, stamp) in [
        ("test-old", "2020-01-01 00:00"),
        ("test-new", "2026-12-01 12:00"),
    ] {
        d.write(&format!("{root}/etc/krb5.keytab"), "\x05\x02keytab bytes");
        d.write(
            &format!("{root}/etc/cron.d/billing"),
            "0 3 * * * billing run\n",
        );
        std::fs::set_permissions(
            d.join(&format!("{root}/etc/krb5.keytab")),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        for f in ["etc/krb5.keytab", "etc/cron.d/billing"] {
            let st = std::process::Command::new("touch")
                .args(["-d", stamp, &format!("{root}/{f}")])
                .current_dir(d.path())
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
}

#[test]
fn equal_files_pass_and_the_report_names_what_was_not_compared() {
    let d = TestDir::new();
    carried(&d);
    // A file of the same name elsewhere in /etc differs: only the listed ones are compared.
    d.write("test-old/etc/motd", "old\n");
    d.write("test-new/etc/motd", "new\n");
    write_plan(&d, STEP);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("2 files on `new` equal to `old`'s")
            && o.stdout.contains("not compared: modification times"),
        "{}",
        o.stdout
    );

    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains(
            "`files` attempt 1: `2 files` — complete and correct; not compared: modification times"
        ),
        "{md}"
    );
    assert!(
        md.contains("`/etc/krb5.keytab`, `/etc/cron.d/billing`"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let v = &json["run"]["attempts"][0]["verification"];
    assert_eq!(v["kind"], "files", "{v}");
    assert_eq!(v["exit_code"], 0, "{v}");
    assert!(
        v["not_compared"][0]
            .as_str()
            .unwrap()
            .starts_with("modification times"),
        "{v}"
    );
    // Both manifests are kept, and list the files with the directories on the way only.
    let kept = std::fs::read_dir(d.join(".rehost/plan/test/evidence"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        kept.contains(&"files.1-source.manifest".to_owned()),
        "{kept:?}"
    );
    let manifest = d.read(".rehost/plan/test/evidence/files.1-destination.manifest");
    assert!(manifest.contains("krb5.keytab"), "{manifest}");
    assert!(
        !manifest.contains("motd"),
        "only the listed files: {manifest}"
    );
}

#[test]
fn a_changed_byte_or_mode_fails_the_step_naming_each() {
    let d = TestDir::new();
    carried(&d);
    d.write("test-new/etc/cron.d/billing", "0 4 * * * billing run\n");
    std::fs::set_permissions(
        d.join("test-new/etc/krb5.keytab"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write_plan(&d, STEP);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("the files on `new` differ from `old`'s: 1 content, 1 mode"),
        "{}",
        o.stderr
    );
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("DIFFERENCES FOUND"), "{}\n{md}", o.all());
    assert!(
        md.contains("| mode | `/etc/krb5.keytab` | 0600 | 0644 |"),
        "{md}"
    );
}

/// A directory on the way that is a symlink on the new host is not followed: the file behind
/// it is not taken for the carried one, even when its bytes are equal.
#[test]
fn a_symlink_on_the_way_is_never_followed() {
    let d = TestDir::new();
    carried(&d);
    std::fs::rename(d.join("test-new/etc/cron.d"), d.join("test-new/elsewhere")).unwrap();
    std::os::unix::fs::symlink("../elsewhere", d.join("test-new/etc/cron.d")).unwrap();
    write_plan(&d, STEP);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("1 missing"), "{}", o.stderr);
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("/etc/cron.d on the way is a symlink, not followed"),
        "{}\n{md}",
        o.all()
    );
}

#[test]
fn a_file_the_old_host_lacks_is_refused_before_the_run() {
    let d = TestDir::new();
    carried(&d);
    std::fs::remove_file(d.join("test-old/etc/krb5.keytab")).unwrap();
    write_plan(&d, STEP);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all()
            .contains("compares /etc/krb5.keytab, which does not exist there"),
        "{}",
        o.all()
    );
}

#[test]
fn paths_that_are_not_absolute_files_are_plan_errors_with_their_line() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"files\"\ndo = \"verify-files\"\nfrom = \"old\"\nto = \"neu\"\npaths = [\"etc/a\", \"/etc/../shadow\", \"/etc/b/\", \"/etc/c\", \"/etc/c\"]\n",
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let all = o.all();
    for bad in ["etc/a", "/etc/../shadow", "/etc/b/"] {
        assert!(
            all.contains(&format!("path `{bad}` is not an absolute path to a file")),
            "{bad}: {all}"
        );
    }
    assert!(all.contains("path `/etc/c` is listed twice"), "{all}");
}

#[test]
fn an_unknown_host_is_a_plan_error_with_a_suggestion() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"files\"\ndo = \"verify-files\"\nfrom = \"old\"\nto = \"neu\"\npaths = [\"/etc/a\"]\n",
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(o.all().contains("`neu`"), "{}", o.all());
    assert!(o.all().contains("new"), "a suggestion: {}", o.all());
}

/// Declared as a key's verification, the step must list every path of the key on its host.
#[test]
fn a_key_verification_by_verify_files_must_cover_the_keys_paths() {
    let d = TestDir::new();
    let keys = "[[keys]]\nid = \"kerberos\"\nhost = \"old\"\nkind = \"kerberos keytab\"\npaths = [\"/etc/krb5.keytab\", \"/etc/krb5.conf\"]\n";
    write_plan(
        &d,
        &format!("{keys}{STEP}verifies = [\"kerberos\"]\ntransfers = [\"kerberos\"]\n"),
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(
        o.all().contains("key-verification-misses-paths")
            && o.all().contains("not the key's /etc/krb5.conf"),
        "{}",
        o.all()
    );
    let step = STEP.replace(
        "\"/etc/cron.d/billing\"]",
        "\"/etc/cron.d/billing\", \"/etc/krb5.conf\"]",
    );
    write_plan(
        &d,
        &format!("{keys}{step}verifies = [\"kerberos\"]\ntransfers = [\"kerberos\"]\n"),
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(
        !o.all().contains("key-verification-misses-paths"),
        "{}",
        o.all()
    );
}

/// Over ssh each host's agent records only the listed entries; the manifests cross the
/// connection and are compared here.
#[test]
fn verify_files_compares_two_ssh_hosts_through_their_agents() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    for root in ["old-root", "new-root"] {
        d.write(&format!("{root}/etc/krb5.keytab"), "keytab");
        d.write(&format!("{root}/etc/cron.d/billing"), "cron\n");
    }
    let with_root = |name: &str, sshd: &Sshd, root: &str| {
        format!(
            "{}root = \"{}\"\n",
            ssh_host(name, sshd),
            d.join(root).display()
        )
    };
    let plan = ssh_plan(&old, &new, STEP)
        .replace(&ssh_host("old", &old), &with_root("old", &old, "old-root"))
        .replace(&ssh_host("new", &new), &with_root("new", &new, "new-root"));
    d.write("plan.toml", &plan);
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("2 files on `new` equal"), "{}", o.stdout);

    let d2 = TestDir::new();
    for root in ["old-root", "new-root"] {
        d2.write(&format!("{root}/etc/krb5.keytab"), "keytab");
        d2.write(&format!("{root}/etc/cron.d/billing"), "cron\n");
    }
    d2.write("new-root/etc/krb5.keytab", "keytaB");
    d2.write(
        "plan.toml",
        plan.replace(
            &d.join("").display().to_string(),
            &d2.join("").display().to_string(),
        ),
    );
    let o = rehost(&d2, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("1 content"), "{}", o.stderr);
}
