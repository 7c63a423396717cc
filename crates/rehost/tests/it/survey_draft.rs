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
        .stderr_has("rehost: wrote the draft plan draft.toml: 10 TODO(s) to decide; `rehost check draft.toml` lists each with its line\n")
        .stderr_has("rehost: wrote the dependency map map.svg (3 services)\n")
        .success();
    let text = dir.read("draft.toml");

    let ran = test_in(&dir)
        .args(["check", "draft.toml", "--json"])
        .code(2);
    let v: serde_json::Value = serde_json::from_str(ran.stdout()).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 10, "{v:#}");
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
        .stdout_has("draft.toml: 10 error(s); fix them and check again\n")
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
        format!("{decided}\n[survey]\nallow = [\"cron * /usr/local/bin/backup\"]\n"),
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
