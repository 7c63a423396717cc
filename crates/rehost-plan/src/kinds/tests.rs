//! The registry agrees with the model: every `StepKind` has one entry, under its own name.

use super::*;

/// A plan with one step of every kind, each `do` as the registry spells it.
const ONE_OF_EACH: &str = r#"
[migration]
title = "t"
[hosts.old]
local = true
[hosts.new]
local = true
[[data]]
id = "files"
from = "old:/srv/a"
to = "new:/srv/a"
[[databases]]
id = "shop"
engine = "postgresql"
from = "old"
to = "new"
database = "shop"
user = "verify"
[[keys]]
id = "tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/site.key"]
[[services]]
id = "web"
host = "new"
stop = "true"
start = "true"
health = "true"
ports = [8080]
[[names]]
id = "www"
name = "www.example.org"
old = "203.0.113.10"
new = "203.0.113.20"
authoritative = ["198.51.100.53"]
ttl = "1h"
lowered_ttl = "5m"
[[steps]]
id = "manual"
do = "manual"
text = "look"
[[steps]]
id = "run"
do = "run"
host = "new"
command = "true"
[[steps]]
id = "wait"
do = "wait"
duration = "1s"
[[steps]]
id = "sync"
do = "sync"
data = "files"
[[steps]]
id = "verify-tree"
do = "verify-tree"
data = "files"
[[steps]]
id = "watch-old"
do = "watch-old"
data = "files"
[[steps]]
id = "retire-old"
do = "retire-old"
service = "web"
disabled_check = "! systemctl is-enabled --quiet web"
data = "files"
retention = "90d"
[[steps]]
id = "stop"
do = "stop"
service = "web"
[[steps]]
id = "start"
do = "start"
service = "web"
[[steps]]
id = "health"
do = "health"
service = "web"
[[steps]]
id = "verify-db"
do = "verify-db"
database = "shop"
[[steps]]
id = "verify-files"
do = "verify-files"
from = "old"
to = "new"
paths = ["/etc/krb5.keytab"]
[[steps]]
id = "verify-keys"
do = "verify-keys"
keys = ["tls"]
to = "new"
[[steps]]
id = "drain"
do = "drain"
service = "web"
[[steps]]
id = "address-moved"
do = "address-moved"
address = "192.0.2.10"
to = "new"
from = "old"
[[steps]]
id = "scan-refs"
do = "scan-refs"
paths = ["old:/etc"]
find = ["192.0.2.10"]
names = ["www"]
[[steps]]
id = "switch"
do = "switch"
hold = "127.0.0.1:8080"
to = "new.example:8080"
[[steps]]
id = "dns-propagated"
do = "dns-propagated"
name = "www"
[[steps]]
id = "dns-ttl"
do = "dns-ttl"
name = "www"
[[steps]]
id = "dns-switch"
do = "dns-switch"
name = "www"
server = "192.0.2.53"
tsig_key = "/etc/rehost/tsig.key"
[[steps]]
id = "verify-config"
do = "verify-config"
old = "old:/etc/app"
new = "new:/etc/app"
allow = ["*.server_name"]
rewrite = [{ from = "old.example", to = "new.example" }]
[[steps]]
id = "compat"
do = "compat"
probe = "clients.toml"
old = "http://192.0.2.10:8080"
new = "http://192.0.2.20:8080"
[[steps]]
id = "compat-sql"
do = "compat-sql"
database = "shop"
log = "old-postgresql.log"
"#;

#[test]
fn every_kind_is_registered_once_and_reads_back_under_its_own_name() {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a kind is registered twice: {names:?}");
    for k in KINDS {
        for key in k.keys {
            assert!(
                !COMMON_KEYS.contains(&key.name),
                "kind `{}` lists the common key `{}`",
                k.name,
                key.name
            );
        }
    }
    // Each entry's reader makes a step whose kind names that entry again: a reader that built
    // another kind's step, or a model name that differs from the registry's, fails here (and
    // `spec` would panic on it at run time).
    let c = crate::check(ONE_OF_EACH);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let plan = c.plan.expect("the plan reads");
    let mut read: Vec<&str> = Vec::new();
    for step in &plan.steps {
        assert_eq!(
            step.kind.name(),
            step.id,
            "step `{}` read as another kind",
            step.id
        );
        // `spec`'s match and the registry hold the same entry.
        let entry = KINDS
            .iter()
            .find(|k| k.name == step.id)
            .expect("registered");
        assert!(
            std::ptr::eq(spec(&step.kind), *entry),
            "spec() and KINDS disagree on `{}`",
            step.id
        );
        read.push(step.kind.name());
    }
    read.sort_unstable();
    assert_eq!(
        read, names,
        "ONE_OF_EACH must hold one step of every registered kind"
    );
}

#[test]
fn each_kinds_description_and_references_come_from_its_own_module() {
    let plan = crate::check(
        r#"
[migration]
title = "t"
[hosts.old]
local = true
[hosts.new]
local = true
[[data]]
id = "files"
from = "old:/srv/a"
to = "new:/srv/a"
[[services]]
id = "web"
host = "new"
stop = "true"
start = "true"
health = "true"
[[steps]]
id = "s"
do = "sync"
data = "files"
phase = "bulk"
[[steps]]
id = "h"
do = "health"
service = "web"
[[steps]]
id = "r"
do = "run"
host = "new"
command = "echo hi"
"#,
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let plan = plan.plan.expect("the plan reads");
    assert_eq!(
        describe(&plan.steps[0].kind),
        Description(vec![
            Part::Text("sync ".into()),
            Part::Id("files".into()),
            Part::Text(" (bulk)".into())
        ])
    );
    assert_eq!(
        references(&plan.steps[0].kind),
        vec![Reference::DataSet("files")]
    );
    assert_eq!(
        references(&plan.steps[1].kind),
        vec![Reference::Service {
            id: "web",
            needs: "health"
        }]
    );
    assert_eq!(service_of(&plan.steps[1].kind), Some("web"));
    assert_eq!(describe(&plan.steps[2].kind).command(), Some("echo hi"));
    assert_eq!(
        implied_effects(&plan.steps[0].kind),
        vec![Effect::Transfers("files".into())]
    );
}

/// A plan holding [`EXAMPLE_DECLARATIONS`] and one step of `kind` with the given lines.
fn example_plan(kind: &str, lines: &str) -> String {
    format!(
        "[migration]\ntitle = \"t\"\n[hosts.old]\nlocal = true\n[hosts.new]\nlocal = true\n\n{EXAMPLE_DECLARATIONS}\n[[steps]]\nid = \"s\"\ndo = \"{kind}\"\n{lines}"
    )
}

fn read_step_kind(kind: &str, lines: &str) -> StepKind {
    let src = example_plan(kind, lines);
    let checked = crate::check(&src);
    assert!(checked.errors.is_empty(), "{src}\n{:#?}", checked.errors);
    checked.plan.expect("the plan reads").steps.remove(0).kind
}

/// The reference shows each kind's example and each key's default: every example reads
/// without an error, names only its kind's keys, and a key left out reads as its documented
/// default written out.
#[test]
fn every_kinds_example_reads_and_every_documented_default_is_the_readers() {
    let mut defaults = 0;
    for k in KINDS {
        read_step_kind(k.name, k.example);
        for line in k.example.lines() {
            let key = line.split('=').next().unwrap().trim();
            assert!(
                COMMON_KEYS.contains(&key) || k.keys.iter().any(|x| x.name == key),
                "`{}`'s example has `{key}`, which is not its key",
                k.name
            );
        }
        for key in k.keys {
            let Some(default) = key.default else { continue };
            assert!(!key.required, "`{}`.`{}`", k.name, key.name);
            let without: String = k
                .example
                .lines()
                .filter(|l| l.split('=').next().unwrap().trim() != key.name)
                .map(|l| format!("{l}\n"))
                .collect();
            let written = format!("{without}{} = {default}\n", key.name);
            assert_eq!(
                read_step_kind(k.name, &without),
                read_step_kind(k.name, &written),
                "`{}` without `{}` is not the same as with its documented default {default}",
                k.name,
                key.name
            );
            defaults += 1;
        }
    }
    assert!(defaults >= 4, "{defaults}");
}

const BEGIN: &str = "<!-- Generated from the step kinds' definitions (crates/rehost-plan/src/kinds/) by rehost_plan::kinds_reference(); edit those, then run REHOST_BLESS=1 cargo test -p rehost-plan kinds. -->\n";
const END: &str = "<!-- End of the generated reference. -->\n";

/// docs/plan.md's table of kinds is [`reference`]'s output, so it cannot drift from the
/// definitions. `REHOST_BLESS=1` rewrites it.
#[test]
fn docs_plan_md_kinds_reference_is_generated_from_the_definitions() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/plan.md"));
    let doc = std::fs::read_to_string(path).expect("docs/plan.md");
    let start = doc
        .find(BEGIN)
        .expect("docs/plan.md has the generated section's first line")
        + BEGIN.len();
    let end = start
        + doc[start..]
            .find(END)
            .expect("docs/plan.md has the generated section's last line");
    let want = reference();
    if doc[start..end] == want {
        return;
    }
    if std::env::var_os("REHOST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, format!("{}{want}{}", &doc[..start], &doc[end..]))
            .expect("docs/plan.md");
        return;
    }
    let first = doc[start..end]
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    panic!(
        "docs/plan.md's reference of step kinds differs from the kinds' definitions (first at its line {} of the section: {:?}, generated: {:?}); run REHOST_BLESS=1 cargo test -p rehost-plan kinds",
        first + 1,
        doc[start..end].lines().nth(first),
        want.lines().nth(first)
    );
}

/// The keys every step takes are documented by hand in docs/plan.md's table of `[[steps]]`
/// keys (above the generated reference): each has its row there.
#[test]
fn docs_plan_md_documents_every_common_step_key() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/plan.md"));
    let doc = std::fs::read_to_string(path).expect("docs/plan.md");
    let start = doc
        .find("## `[[steps]]`: the checklist")
        .expect("docs/plan.md has the steps section");
    let end = start + doc[start..].find(BEGIN).expect("the generated reference");
    let rows: Vec<&str> = doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect();
    for key in COMMON_KEYS {
        assert!(
            rows.iter().any(|r| r
                .split('|')
                .nth(1)
                .is_some_and(|c| c.contains(&format!("`{key}`")))),
            "docs/plan.md's table of step keys has no row for `{key}`"
        );
    }
}

#[test]
fn a_drain_reads_terminate_and_without_it_serialises_as_before() {
    let plan = |extra: &str| {
        ONE_OF_EACH.replace(
            "do = \"drain\"\nservice = \"web\"\n",
            &format!("do = \"drain\"\nservice = \"web\"\n{extra}"),
        )
    };
    let drain = |text: &str| {
        let c = crate::check(text);
        (
            c.errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>(),
            c.plan
                .and_then(|p| p.steps.into_iter().find(|s| s.id == "drain"))
                .map(|s| s.kind),
        )
    };
    let (errors, kind) = drain(&plan("terminate = true\n"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        kind,
        Some(StepKind::Drain {
            service: "web".into(),
            terminate: true
        })
    );
    // The step digests of plans written before `terminate` stay as they were.
    let (_, kind) = drain(ONE_OF_EACH);
    assert_eq!(
        serde_json::to_string(&kind.unwrap()).unwrap(),
        r#"{"do":"drain","service":"web"}"#
    );
    let (errors, _) = drain(&plan("terminate = \"yes\"\n"));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("terminate") && e.contains("true or false")),
        "{errors:?}"
    );
}
