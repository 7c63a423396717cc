//! What follows from a survey (issue 25), through the binary: the draft plan (`-o`) that
//! `rehost check` fails on exactly its TODOs and passes once they are decided, the comparison
//! of two surveys (`--compare OLD NEW`, the plan's `[survey]` declaring the expected), and the
//! dependency map (`--map`) rendered by headless Chromium without an error and without two
//! boxes or labels overlapping, for fifty services. Here over saved inventories
//! (`--inventory`, JSON files); the survey of real hosts is `survey.rs`.

use crate::support::*;
use rehost_survey::example;
use rehost_test::TestDir;
use std::path::{Path, PathBuf};

fn save(dir: &TestDir, rel: &str, inv: &rehost_survey::Inventory) -> PathBuf {
    dir.write(rel, serde_json::to_string_pretty(inv).unwrap())
}

/// The shape of the Done-when test over saved inventories: draft, check (only TODOs, each
/// on its line), decide, check (clean), compare with a second host set up the same (nothing
/// missing), remove the cron job there (exactly that is missing).
#[test]
fn a_draft_fails_check_on_its_todos_only_and_a_compare_finds_exactly_the_missing_cron_job() {
    let dir = TestDir::new();
    save(&dir, "old.json", &example::inventory("ssh://root@web01"));
    test_in(&dir)
        .args([
            "survey",
            "--inventory",
            "old.json",
            "-o",
            "draft.toml",
            "--map",
            "map.svg",
        ])
        .stderr_has("rehost: wrote the draft plan draft.toml: 12 TODO(s) to decide; `rehost check draft.toml` lists each with its line\n")
        .stderr_has("rehost: wrote the dependency map map.svg (3 services)\n")
        .success();
    let text = dir.read("draft.toml");

    let ran = test_in(&dir)
        .args(["check", "draft.toml", "--json"])
        .code(2);
    let v: serde_json::Value = serde_json::from_str(ran.stdout()).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 12, "{v:#}");
    for e in errors {
        assert_eq!(e["code"], "todo", "{e}");
        let line = text
            .lines()
            .nth(e["line"].as_u64().unwrap() as usize - 1)
            .unwrap();
        assert!(line.contains("\"TODO"), "{e} points at {line}");
        assert_eq!(
            e["help"],
            "decide it and edit this line: replace the TODO string with the value"
        );
    }
    assert_eq!(v["findings"], serde_json::json!([]));
    // The human form names the file and line of each.
    test_in(&dir)
        .args(["check", "draft.toml"])
        .stdout_has(
            "draft.toml:12:16: error[todo]: `migration.max_downtime` is still to be decided",
        )
        .stdout_has("draft.toml: 12 error(s); fix them and check again\n")
        .code(2);

    dir.write("draft.toml", example::decide_todos(&text));
    test_in(&dir)
        .args(["check", "draft.toml"])
        .stdout_has("draft.toml: plan is valid, 22 steps, no M 2.319 findings\n")
        .success();

    // A second host set up the same lacks nothing.
    let new = example::inventory("ssh://root@web02");
    save(&dir, "new.json", &new);
    test_in(&dir)
        .args(["survey", "--compare", "old.json", "new.json"])
        .stdout_has("old.json → new.json: 0 missing, 0 allowed; compared ")
        .success();
    // Without its cron job, exactly that is missing.
    let mut lacking = new.clone();
    lacking.cron.clear();
    save(&dir, "new.json", &lacking);
    let ran = test_in(&dir)
        .args(["survey", "--compare", "old.json", "new.json", "--json"])
        .code(1);
    let v: serde_json::Value = serde_json::from_str(ran.stdout()).unwrap();
    assert_eq!(
        v["comparison"]["missing"],
        serde_json::json!([{
            "key": "cron root 15 2 * * * /usr/local/bin/backup",
            "shortfall": "missing",
            "old": "/etc/cron.d/backup:3",
        }]),
        "{v:#}"
    );
    assert_eq!(v["complete"], false);
    test_in(&dir)
        .args(["survey", "--compare", "old.json", "new.json"])
        .stdout_has("old.json has what new.json lacks:\n  missing     cron root 15 2 * * * /usr/local/bin/backup  (old: /etc/cron.d/backup:3)\n")
        .code(1);

    // Declared expected in the plan's [survey], it is listed as allowed and the exit is 0.
    let decided = dir.read("draft.toml");
    dir.write(
        "draft.toml",
        // The draft's [survey] names the inventory it was written from.
        decided.replacen(
            "[survey]\n# found: the inventory this draft was written from (rehost survey)\ninventory = \"old.json\"\n",
            "[survey]\ninventory = \"old.json\"\nallow = [\"cron * /usr/local/bin/backup\"]\n",
            1,
        ),
    );
    test_in(&dir)
        .args([
            "survey",
            "--compare",
            "old.json",
            "new.json",
            "--plan",
            "draft.toml",
        ])
        .stdout_has("allowed by cron * /usr/local/bin/backup\n")
        .stdout_has(": 0 missing, 1 allowed;")
        .success();
}

#[test]
fn a_side_that_is_not_an_inventory_is_trouble_naming_it() {
    let dir = TestDir::new();
    save(&dir, "old.json", &example::inventory("old"));
    dir.write("bad.json", "{\"format\": 1, \"host\": 3}");
    test_in(&dir)
        .args(["survey", "--compare", "old.json", "bad.json"])
        .stderr_has(
            "failed to read the inventory bad.json: not an inventory `rehost survey --json` wrote",
        )
        .code(2);
    test_in(&dir)
        .args([
            "survey",
            "--compare",
            "old.json",
            "old.json",
            "--rewrite",
            "nonsense",
        ])
        .stderr_has("`nonsense` is not a rewrite")
        .code(2);
    test_in(&dir)
        .args(["survey", "web01", "--compare", "old.json", "old.json"])
        .stderr_has("--compare takes its two sides as OLD and NEW, not `web01` before them")
        .code(2);
}

fn chromium() -> PathBuf {
    rehost_test::require_tool("chromium")
}

/// Loads `page` in headless Chromium and returns its DOM after scripts ran, asserting that
/// Chromium logged no console message (an XML error, a blocked request, a script error).
fn dump_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The map of fifty services, one with a hostile name, renders in Chromium as SVG (no parse
/// error, no script of its own), and measured by the browser itself (`getBBox` of every box
/// and label) no two boxes overlap and every label fits inside its box.
#[test]
fn the_map_of_fifty_services_renders_in_chromium_without_overlap() {
    let dir = TestDir::new();
    let mut inv = example::services(50);
    inv.services[7].id = "</text><script>document.title='pwned'</script>&amp;\"'".into();
    inv.clients[7].service = Some(inv.services[7].id.clone());
    save(&dir, "big.json", &inv);
    test_in(&dir)
        .args(["survey", "--inventory", "big.json", "--map", "map.svg"])
        .success();
    let svg = dir.read("map.svg");
    assert!(!svg.contains("<script"), "the map holds a script");

    // As it is: an SVG document Chromium parses without an error.
    let dom = dump_dom(&dir.path().join("map.svg"));
    assert!(dom.contains("<svg"), "{dom}");
    assert!(
        !dom.contains("parsererror") && !dom.contains("error on line"),
        "{dom}"
    );
    assert!(
        !dom.contains("<script"),
        "the hostile name became a script: {dom}"
    );

    // Measured: the test (not the map) adds a script that asks the browser for every box's
    // and label's bounding box and writes what overlaps into the document.
    let probe = r#"<script><![CDATA[
const boxes = [...document.querySelectorAll('g.node')].map(g => ({
  r: g.querySelector('rect').getBBox(), t: g.querySelector('text').getBBox(),
  name: g.querySelector('title').textContent }));
const out = [];
const over = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
boxes.forEach((a, i) => {
  if (a.t.x < a.r.x || a.t.x + a.t.width > a.r.x + a.r.width + 0.5) out.push('label outside its box: ' + a.name);
  boxes.slice(i + 1).forEach(b => { if (over(a.r, b.r)) out.push(a.name + ' overlaps ' + b.name); });
});
const texts = [...document.querySelectorAll('text')].map(t => t.getBBox());
texts.forEach((a, i) => texts.slice(i + 1).forEach(b => { if (over(a, b)) out.push('labels overlap at ' + a.x + ',' + a.y); }));
const r = document.createElementNS('http://www.w3.org/2000/svg', 'desc');
r.setAttribute('id', 'measured');
r.textContent = 'boxes=' + boxes.length + ' problems=' + out.length + ' ' + out.slice(0, 5).join('; ');
document.documentElement.appendChild(r);
]]></script>
</svg>"#;
    dir.write("measured.svg", svg.replace("</svg>\n", probe));
    let dom = dump_dom(&dir.path().join("measured.svg"));
    let measured = dom
        .split("<desc id=\"measured\">")
        .nth(1)
        .and_then(|s| s.split("</desc>").next())
        .unwrap_or_else(|| panic!("the probe did not run: {dom}"));
    // 50 services, 50 data sets, 17 keys, 25 names, 50 clients.
    assert_eq!(measured.trim(), "boxes=192 problems=0", "{measured}");
}

/// The Done-when test of the draft and the comparison over surveyed roots: a root reached
/// through a real sshd (the agent surveys it), running nginx with TLS and a real PostgreSQL, a
/// cron job and a timer, is surveyed; its draft fails `check` on exactly its TODOs and passes
/// once they are decided; a second root set up the same (this machine's, surveyed in process)
/// lacks nothing; without its cron job, exactly that is missing.
///
/// Both roots are on this machine, so their processes and listening sockets are the machine's
/// (a survey under a root reads files there, the kernel's tables whole): other tests' servers
/// may come and go between the two surveys, so the plan declares `port *` expected and the test
/// checks that none of this root's own ports is among the allowed differences.
#[test]
fn a_surveyed_root_drafts_a_plan_that_checks_and_a_second_root_lacks_exactly_its_cron_job() {
    use crate::survey::{Nginx, free_port, host_root};
    let sshd = rehost_test::sshd::Sshd::start();
    let d = TestDir::new();
    let d2 = TestDir::new();
    let pg = rehost_test::postgres::Postgres::start();
    pg.sql("postgres", "CREATE DATABASE shop;");
    let port = free_port();
    let old = host_root(&d, port, &pg);
    let new = host_root(&d2, port, &pg);
    let _nginx = Nginx::start(&old.nginx_conf, port);
    d.write(
        "plan.toml",
        format!(
            r#"
[migration]
title = "Survey"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"

[hosts.old]
ssh = "{dest}"
ssh_config = "{config}"
root = "{old}"

[hosts.new]
local = true
root = "{new}"

[environments.test]
old = {{ local = true, root = "test-old" }}
new = {{ local = true, root = "test-new" }}

[survey]
# Both roots share this machine's sockets, which other tests open and close.
allow = ["port *"]
"#,
            dest = sshd.destination(),
            config = sshd.ssh_config().display(),
            old = old.dir.display(),
            new = new.dir.display(),
        ),
    );

    let out = rehost(
        &d,
        &[
            "survey",
            "old",
            "--plan",
            "plan.toml",
            "--for",
            "0",
            "-o",
            "draft.toml",
            "--map",
            "map.svg",
        ],
    );
    assert!(out.code == 0 || out.code == 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("rehost: wrote the draft plan draft.toml: "),
        "{}",
        out.all()
    );
    let text = d.read("draft.toml");
    // The draft reaches the old host as the plan does, and holds what the root serves.
    assert!(
        text.contains(&format!(
            "[hosts.old]\n# found: the surveyed host old (rehost survey)\nssh = \"{}\"\nssh_config = \"{}\"\nroot = \"{}\"\n",
            sshd.destination(),
            sshd.ssh_config().display(),
            old.dir.display()
        )),
        "{text}"
    );
    for part in [
        "[[services]]\nid = \"nginx\"\nhost = \"old\"\n",
        "from = \"old:/srv/www\"\n",
        "paths = [\"/etc/ssl/private/app.key\"]\n",
        "name = \"app.example.test\"\n",
        "database = \"shop\"\n",
        "do = \"verify-files\"\nfrom = \"old\"\nto = \"new\"\npaths = [\"/etc/cron.d/rotate\", \"/etc/systemd/system/backup.service\", \"/etc/systemd/system/backup.timer\", \"/etc/systemd/system/nginx.service\", \"/etc/systemd/system/postgresql-test.service\"]\n",
    ] {
        assert!(text.contains(part), "{part} not in\n{text}");
    }
    assert!(
        d.read("map.svg").contains(">nginx.service :"),
        "the map draws nginx"
    );

    let ran = rehost(&d, &["check", "draft.toml", "--json"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    let v: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert!(errors.len() >= 9, "{v:#}");
    for e in errors {
        assert_eq!(e["code"], "todo", "{e}\n{text}");
        let line = text
            .lines()
            .nth(e["line"].as_u64().unwrap() as usize - 1)
            .unwrap();
        assert!(line.contains("\"TODO"), "{e} points at {line}");
    }
    assert_eq!(errors.len(), text.matches("\"TODO").count());
    d.write("draft.toml", example::decide_todos(&text));
    let ran = rehost(&d, &["check", "draft.toml"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.all(), d.read("draft.toml"));
    assert!(ran.stdout.contains("no M 2.319 findings"), "{}", ran.all());

    // The second root, set up the same, lacks nothing.
    let compare = |d: &TestDir| {
        let ran = rehost(
            d,
            &[
                "survey",
                "--compare",
                "old",
                "new",
                "--plan",
                "plan.toml",
                "--json",
            ],
        );
        let v: serde_json::Value =
            serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.all()));
        for a in v["comparison"]["allowed"].as_array().unwrap() {
            let key = a["key"].as_str().unwrap();
            assert!(key.starts_with("port "), "{a}");
            assert!(
                !key.ends_with(&format!(":{port}")) && !key.ends_with(&format!(":{}", pg.port())),
                "this root's own port is missing on the new one: {a}"
            );
        }
        (ran.code, v["comparison"]["missing"].clone(), v)
    };
    let (code, missing, v) = compare(&d);
    assert_eq!(missing, serde_json::json!([]), "{v:#}");
    assert_eq!(code, 0);
    assert!(
        v["comparison"]["compared"]["cron jobs"].as_u64() == Some(1),
        "{v:#}"
    );

    // Without its cron job, exactly that is missing.
    std::fs::remove_file(new.dir.join("etc/cron.d/rotate")).unwrap();
    let (code, missing, v) = compare(&d);
    assert_eq!(
        missing,
        serde_json::json!([{
            "key": "cron root 15 3 * * 1 /usr/local/bin/rotate --keep 4",
            "shortfall": "missing",
            "old": "/etc/cron.d/rotate:3",
        }]),
        "{v:#}"
    );
    assert_eq!(code, 1);
}

/// The draft names the inventory it was written from (`[survey] inventory`), and `rehost
/// concept` embeds that inventory's dependency map inline in the HTML page, named by its path
/// and digest: Chromium renders the page without a console message (its CSP forbids loading
/// anything, so a map that needed a request would log one), a hostile service name stays text,
/// and Markdown says where the map is. An inventory that is not one, holds more than its
/// bounds or is larger than a host may send is refused whole, naming the plan's line.
#[test]
fn the_concept_embeds_the_map_of_the_inventory_the_draft_names() {
    let dir = TestDir::new();
    let mut inv = example::inventory("ssh://root@web01");
    let hostile = "</svg><script>document.title='pwned'</script>&amp;\"'";
    inv.services[1].id = format!("{hostile}.service");
    save(&dir, "old.json", &inv);
    let digest = rehost_plan::digest(&dir.read("old.json"));
    test_in(&dir)
        .args(["survey", "--inventory", "old.json", "-o", "draft.toml"])
        .success();
    let text = dir.read("draft.toml");
    assert!(
        text.contains("[survey]\n# found: the inventory this draft was written from (rehost survey)\ninventory = \"old.json\"\n"),
        "{text}"
    );
    dir.write("draft.toml", example::decide_todos(&text));

    test_in(&dir)
        .args(["concept", "draft.toml", "--format", "html", "-o", "c.html"])
        .success();
    let html = dir.read("c.html");
    assert_eq!(
        html.matches("<svg xmlns=\"http://www.w3.org/2000/svg\"")
            .count(),
        1
    );
    assert!(
        html.contains(&format!(
            "drawn from the inventory <code>old.json</code>, BLAKE3 <code>{digest}</code>."
        )),
        "{html}"
    );
    assert!(
        !html.contains("<script"),
        "the hostile name became a script"
    );
    let dom = dump_dom(&dir.path().join("c.html"));
    assert_eq!(
        dom.matches("<g class=\"node\"").count(),
        rehost_survey::map::layout(&inv).nodes.len(),
        "{dom}"
    );
    // No script ran: the page's title is the concept's.
    assert!(!dom.contains("<title>pwned</title>"), "{dom}");

    let md = test_in(&dir).args(["concept", "draft.toml"]).success();
    assert!(
        md.stdout().contains(&format!(
            "drawn from the inventory `old.json`, BLAKE3 `{digest}`. Markdown does not hold the map"
        )),
        "{}",
        md.stdout()
    );

    // Refused whole: not an inventory, a string past its bound, larger than a host may send.
    let line = dir
        .read("draft.toml")
        .lines()
        .position(|l| l.starts_with("inventory = "))
        .unwrap()
        + 1;
    let mut long = inv.clone();
    long.services[0].names[0].name = "a".repeat(rehost_survey::limits::MAX_STRING + 1);
    save(&dir, "old.json", &long);
    let ran = test_in(&dir).args(["concept", "draft.toml"]).code(2);
    assert!(
        ran.stderr().contains("failed to read the inventory"),
        "{}",
        ran.stderr()
    );
    assert!(
        ran.stderr()
            .contains(&format!("(draft.toml:{line}: [survey] inventory)")),
        "{}",
        ran.stderr()
    );
    assert_eq!(ran.stdout(), "");
    dir.write("old.json", "{\"format\": 1, \"host\": 3}");
    test_in(&dir)
        .args(["concept", "draft.toml", "--format", "html"])
        .stderr_has("not an inventory `rehost survey --json` wrote")
        .code(2);
    std::fs::File::create(dir.path().join("old.json"))
        .unwrap()
        .set_len(rehost_survey::limits::MAX_JSON_BYTES + 1)
        .unwrap();
    test_in(&dir)
        .args(["concept", "draft.toml"])
        .stderr_has("failed to read the inventory old.json: larger than 64 MiB")
        .code(2);
}

/// A survey writing its draft keeps its inventory with `--inventory-out`, and the draft names
/// it relative to itself, so that the concept draws the map of exactly that survey.
#[test]
fn a_survey_keeps_the_inventory_its_draft_names() {
    let dir = TestDir::new();
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc/cron.d")).unwrap();
    std::fs::write(root.join("etc/cron.d/job"), "5 4 * * * root /bin/true\n").unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    dir.write(
        "plan.toml",
        "[migration]\ntitle = \"t\"\n[hosts.old]\nlocal = true\nroot = \"root\"\n[hosts.new]\nlocal = true\nroot = \"new\"\n",
    );
    let ran = rehost(
        &dir,
        &[
            "survey",
            "old",
            "--plan",
            "plan.toml",
            "--for",
            "0",
            "-o",
            "out/draft.toml",
            "--inventory-out",
            "out/inv.json",
        ],
    );
    assert!(ran.code == 0 || ran.code == 1, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("rehost: wrote the inventory out/inv.json\n"),
        "{}",
        ran.all()
    );
    let text = dir.read("out/draft.toml");
    assert!(
        text.contains("[survey]\n# found: the inventory this draft was written from (rehost survey)\ninventory = \"inv.json\"\n"),
        "{text}"
    );
    let inv: rehost_survey::Inventory =
        serde_json::from_str(&dir.read("out/inv.json")).expect("an inventory");
    assert_eq!(inv.cron.len(), 1, "{inv:?}");
    dir.write("out/draft.toml", example::decide_todos(&text));
    let digest = rehost_plan::digest(&dir.read("out/inv.json"));
    test_in(&dir)
        .args(["concept", "out/draft.toml"])
        .stdout_has(format!(
            "drawn from the inventory `inv.json`, BLAKE3 `{digest}`."
        ))
        .success();
    // Without -o there is no draft to name it in.
    test_in(&dir)
        .args(["survey", "--for", "0", "--inventory-out", "x.json"])
        .stderr_has("--draft")
        .code(2);
}
