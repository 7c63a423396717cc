//! Tidy tests keep the map true (as rust-analyzer's do): every step kind in the registry is
//! documented, and no library crate prints (the engine and the capabilities emit events; only
//! the binary talks to the terminal).

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn every_step_kind_in_the_registry_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/plan.md")).expect("docs/plan.md");
    for k in rehost_plan::KINDS {
        assert!(
            doc.contains(&format!("| `{}` |", k.name)),
            "docs/plan.md has no row for step kind `{}`",
            k.name
        );
    }
    // And the table documents no kind the registry lacks.
    let start = doc.find("| `manual` |").expect("the step kinds table");
    for line in doc[start..].lines().take_while(|l| l.starts_with('|')) {
        let name = line.split('`').nth(1).unwrap_or_default();
        assert!(
            rehost_plan::KINDS.iter().any(|k| k.name == name),
            "docs/plan.md documents step kind `{name}`, which the registry does not have"
        );
    }
}

/// A step kind is one module in rehost-plan's `kinds/` and one in rehost-engine's `steps/`: the
/// two registries name the same kinds, each once.
#[test]
fn every_step_kind_in_the_plan_has_an_executor_and_no_executor_lacks_a_kind() {
    let mut plan: Vec<&str> = rehost_plan::KINDS.iter().map(|k| k.name).collect();
    let mut engine = rehost_engine::steps::kinds();
    plan.sort_unstable();
    engine.sort_unstable();
    assert_eq!(
        plan, engine,
        "rehost-plan/src/kinds/mod.rs (left) and rehost-engine/src/steps/mod.rs (right) must register the same step kinds"
    );
}

type Graph = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// Each workspace crate and the workspace crates it depends on directly (normal dependencies:
/// not dev- or build-), from `cargo metadata`.
fn workspace_graph() -> Graph {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut graph = Graph::new();
    for p in packages {
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.contains(d))
            .map(str::to_owned)
            .collect();
        graph.insert(p["name"].as_str().expect("name").to_owned(), deps);
    }
    graph
}

/// Everything each crate reaches, directly or through others.
fn closure(graph: &Graph) -> Graph {
    let mut out = Graph::new();
    for start in graph.keys() {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(c) = stack.pop() {
            if seen.insert(c.clone()) {
                stack.extend(graph.get(c).into_iter().flatten());
            }
        }
        out.insert(start.clone(), seen);
    }
    out
}

/// The arrows of the drawing at the top of ARCHITECTURE.md. A node is the first word of a
/// line that starts with a name, or the name after a `►` with the names that follow it as
/// `NAME (note), NAME (note)`. An arrow belongs to the nearest node above (or before it on its
/// line) that starts left of the arrow. Lines with `◄` (what tests use) are not arrows.
/// Only names in `crates` count (`clap` is not a workspace crate).
fn drawn_graph(drawing: &str, crates: &[&str]) -> Graph {
    let mut graph = Graph::new();
    let mut nodes: Vec<(usize, String)> = Vec::new();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let take_name = |chars: &[char], mut i: usize| {
        let start = i;
        while i < chars.len() && is_name(chars[i]) {
            i += 1;
        }
        (chars[start..i].iter().collect::<String>(), i)
    };
    for line in drawing.lines() {
        if line.contains('◄') {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        if chars.first().is_some_and(|c| is_name(*c)) {
            let (name, _) = take_name(&chars, 0);
            nodes.push((0, name));
        }
        for (arrow, _) in chars.iter().enumerate().filter(|(_, c)| **c == '►') {
            let start = arrow.saturating_sub(2);
            let parent = nodes
                .iter()
                .rev()
                .find(|(col, _)| *col < start)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| panic!("an arrow without a node left of it: {line}"));
            let mut i = arrow + 1;
            loop {
                while chars.get(i) == Some(&' ') {
                    i += 1;
                }
                let (name, end) = take_name(&chars, i);
                if name.is_empty() {
                    break;
                }
                if crates.contains(&name.as_str()) {
                    graph
                        .entry(parent.clone())
                        .or_default()
                        .insert(name.clone());
                }
                nodes.push((i, name));
                i = end;
                // `NAME (note), NEXT`: skip the note; a `,` after it names one more target.
                while chars.get(i) == Some(&' ') {
                    i += 1;
                }
                if chars.get(i) == Some(&'(') {
                    let mut depth = 0;
                    while let Some(c) = chars.get(i) {
                        depth += match c {
                            '(' => 1,
                            ')' => -1,
                            _ => 0,
                        };
                        i += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                if chars.get(i) != Some(&',') {
                    break;
                }
                i += 1;
            }
        }
    }
    graph
}

/// The drawing's reading, checked on a small drawing laid out as ARCHITECTURE.md's: children
/// by column, several targets on one line, notes skipped, a name in a note or a description
/// not an arrow, tests' lines left out.
#[test]
fn the_drawing_is_read_as_drawn() {
    let drawing = "\
a (bin)      ──► b    about b (no c here)
      │      ├─► c  about c, with d in words
      │      │         └─► d (note), b (another note)
      │      │               └─► e
      │      └─► e
      └─ tests ◄── t
";
    let g = drawn_graph(drawing, &["a", "b", "c", "d", "e", "t"]);
    let edges: Vec<(String, String)> = g
        .iter()
        .flat_map(|(k, v)| v.iter().map(move |d| (k.clone(), d.clone())))
        .collect();
    let want = [
        ("a", "b"),
        ("a", "c"),
        ("a", "e"),
        ("c", "b"),
        ("c", "d"),
        ("d", "e"),
    ];
    assert_eq!(
        edges,
        want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
}

/// Arrows point one way (issue 19): ARCHITECTURE.md's drawing is the crate graph. Every arrow
/// drawn is a dependency in a Cargo.toml, and what each crate reaches (directly or through
/// others: what `cargo tree` shows) is what the drawing lets it reach, so a dependency that
/// is not drawn fails here, the wrong way's above all.
#[test]
fn the_crate_graph_is_the_one_architecture_md_draws() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let drawing = text
        .split("```")
        .nth(1)
        .expect("ARCHITECTURE.md opens with its drawing in a code block");
    let actual = workspace_graph();
    let crates: Vec<&str> = actual.keys().map(String::as_str).collect();
    let drawn = drawn_graph(drawing, &crates);
    let mut wrong = Vec::new();
    for (from, tos) in &drawn {
        for to in tos {
            if !actual.get(from).is_some_and(|d| d.contains(to)) {
                wrong.push(format!(
                    "the drawing has {from} ─► {to}, which {from}'s Cargo.toml does not"
                ));
            }
        }
    }
    let (reach, drawn_reach) = (closure(&actual), closure(&drawn));
    for (from, tos) in &reach {
        let none = Default::default();
        let drawn_tos = drawn_reach.get(from).unwrap_or(&none);
        for to in tos.difference(drawn_tos) {
            wrong.push(format!(
                "{from} reaches {to} (cargo tree -p {from}), which the drawing does not show: draw the arrow, or take the dependency out"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The arrows this map promises in words (issue 19), checked on what each crate reaches: the
/// journal crate and the evidence read the state directory and reach neither the engine nor
/// the hosts (nor rehost-db, which runs clients on hosts); the plan is pure; rehost-host
/// knows nothing of databases. The evidence depending on the engine again would bring two
/// folds of the journal back.
#[test]
fn the_journal_and_the_evidence_depend_on_neither_the_engine_nor_the_hosts() {
    let graph = workspace_graph();
    let reach = closure(&graph);
    for (krate, banned) in [
        (
            "rehost-journal",
            &["rehost-engine", "rehost-host", "rehost-db"][..],
        ),
        (
            "rehost-evidence",
            &["rehost-engine", "rehost-host", "rehost-db"],
        ),
        (
            "rehost-plan",
            &["rehost-engine", "rehost-host", "rehost-db"],
        ),
        ("rehost-host", &["rehost-db", "rehost-engine"]),
    ] {
        let reached = reach
            .get(krate)
            .unwrap_or_else(|| panic!("{krate} is a workspace member"));
        for b in banned {
            assert!(
                !reached.contains(*b),
                "{krate} reaches {b} ({reached:?}); see ARCHITECTURE.md for why it must not"
            );
        }
    }
    // And the engine writes through the journal crate; the database clients are rehost-db's,
    // reaching hosts through rehost-host.
    assert!(
        graph["rehost-engine"].contains("rehost-journal"),
        "rehost-engine must write the journal through rehost-journal"
    );
    assert!(
        graph["rehost-db"].contains("rehost-host"),
        "rehost-db runs its clients through rehost-host's Host trait"
    );
}

#[test]
fn library_crates_never_print() {
    let mut offenders = Vec::new();
    for krate in [
        "rehost-plan",
        "rehost-engine",
        "rehost-journal",
        "rehost-host",
        "rehost-tree",
        "rehost-db",
        "rehost-evidence",
        "rehost-keys",
        "rehost-hold",
    ] {
        let src = root().join("crates").join(krate).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if p.is_dir() {
                    // Benchmark binaries print their figures; tests may print.
                    if name != "bin" {
                        stack.push(p);
                    }
                    continue;
                }
                if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if ["print!(", "println!(", "eprint!(", "eprintln!(", "dbg!("]
                        .iter()
                        .any(|m| code.contains(m))
                    {
                        offenders.push(format!("{}:{}", p.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "library code prints: {offenders:?}");
}

/// One escaper for terminals and text lines (issue 18): `rehost_tree::escape` (`text` for
/// strings — `rehost_plan::escape_control`, the binary's `term::escape` — and `display` for
/// bytes). The database crate had its own, which let the bidirectional controls through. Any
/// other source that classifies control characters or names a bidi control, or defines an
/// `escape` function, is a second escaper; use the one instead.
#[test]
fn there_is_one_escaper_for_terminal_text() {
    // What an escaper is made of.
    let markers = [
        "is_control()",
        "is_ascii_control()",
        "escape_default()",
        "escape_debug()",
        "fn escape",
        "\\u{202",
        "\\u{206",
        "\\u{200e}",
        "\\u{200f}",
        "\\u{61c}",
        "\\u{061c}",
        "0x202a",
        "0x2066",
    ];
    // Not escapers: rsync's `[[:cntrl:]]` class in the glob matcher.
    let allowed = [(
        "rehost-glob/src/lib.rs",
        "b\"cntrl\" => c.is_ascii_control()",
    )];
    let crates = root().join("crates");
    let mut offenders = Vec::new();
    let mut stack = vec![crates.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                // Tests may build hostile strings; `target` is not source.
                if !matches!(name.as_str(), "tests" | "target" | "proptest-regressions") {
                    stack.push(p);
                }
                continue;
            }
            let rel = p
                .strip_prefix(&crates)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !name.ends_with(".rs")
                || name == "tests.rs"
                || name.ends_with("_tests.rs")
                || rel == "rehost-tree/src/escape.rs"
            {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let code = line.trim_start();
                // An inline test module ends the source proper.
                if code == "#[cfg(test)]"
                    && lines
                        .get(i + 1)
                        .is_some_and(|l| l.trim_start().starts_with("mod ") && l.ends_with('{'))
                {
                    break;
                }
                if code.starts_with("//") {
                    continue;
                }
                if markers.iter().any(|m| code.to_lowercase().contains(m))
                    && !allowed.iter().any(|(f, l)| rel == *f && code.contains(l))
                {
                    offenders.push(format!("crates/{rel}:{}: {}", i + 1, code));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a second escaper: use rehost_tree::escape::text (or display for bytes):\n{}",
        offenders.join("\n")
    );
}

/// Every `.rs` file under `crates/` (not `target`), with its path relative to `crates/`.
fn rust_sources() -> Vec<(String, std::path::PathBuf)> {
    let crates = root().join("crates");
    let mut out = Vec::new();
    let mut stack = vec![crates.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(&crates)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    out
}

/// One path to a host (issue 19): the engine asks a host what it needs (`Host::remote_end`,
/// `rsync_version`, `make_dir`, `machine_id`, `rehost_host::verify_pair`,
/// `transfer_between`) and never whether it is rehost's local one, so that the fake hosts of its
/// tests take every path a real host takes. The fast paths for two trees of this machine are
/// rehost-host's, behind those calls. Hosts are opened from their specs by `rehost_host::open`
/// (`exec.rs`'s `Hosts`), which is where local and ssh part.
#[test]
fn the_engine_never_asks_whether_a_host_is_local() {
    let mut offenders = Vec::new();
    for (rel, path) in rust_sources() {
        if !rel.starts_with("rehost-engine/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if ["LocalHost", "is_local", "as_local"]
                .iter()
                .any(|w| code.contains(w))
            {
                offenders.push(format!("crates/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "rehost-engine branches on a local host: ask the host (a `Host` method) instead:\n{}",
        offenders.join("\n")
    );
}

/// One quoter for command lines (issue 19): `rehost-host/src/ssh/quote.rs`, tested against a
/// real `sh` and a real `rsync`. The sync code had its own, untested, which quoted rsync's `-e`
/// as for sh and broke on a `'`. A function named for quoting, or sh's `'\''` idiom, anywhere
/// else is a second quoter; use the one instead.
#[test]
fn there_is_one_quoter_for_command_lines() {
    let home = [
        "rehost-host/src/ssh/quote.rs",
        "rehost-host/src/ssh/quote/tests.rs",
    ];
    // This file names the markers it looks for.
    let me = "rehost/tests/it/tidy.rs";
    let mut offenders = Vec::new();
    for (rel, path) in rust_sources() {
        if home.contains(&rel.as_str()) || rel == me {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut after_test_attribute = false;
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            // A test's name may say what it checks (`findings_quote_the_clause`).
            let is_test = std::mem::replace(&mut after_test_attribute, code.trim() == "#[test]");
            let quoting_fn = !is_test
                && code.split("fn ").skip(1).any(|rest| {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    (name.contains("quote") && !name.starts_with("unquote"))
                        || name.contains("shell_escape")
                        || name.contains("sh_escape")
                });
            // sh's idiom for a `'` inside single quotes, in a string literal (`'\''` alone
            // is Rust's char literal for an apostrophe).
            let idiom = line.contains(r#"'\\''""#) || line.contains(r#"r"'\''"#);
            if quoting_fn || idiom {
                offenders.push(format!("crates/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a second quoter: use rehost_host::ssh::{{quote, sh_quoted, sh_word, rsync_e_word}}:\n{}",
        offenders.join("\n")
    );
}

/// Longer source files than this need a reason, listed below.
const MAX_LINES: usize = 1300;

/// The files over [`MAX_LINES`], each with why. An entry whose file has come under the limit
/// fails the test too: take it out.
const LONG_FILES: &[(&str, &str)] = &[(
    "rehost-db/src/mysql.rs",
    "all of the MariaDB dialect in one place: inventory, accounts and grants, content sums \
         and the --exercise; the --exercise could move to a module of its own",
)];

#[test]
fn no_source_file_is_over_the_size_limit_without_a_reason() {
    let mut over = Vec::new();
    for (rel, path) in rust_sources() {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        let listed = LONG_FILES.iter().any(|(f, _)| *f == rel);
        if lines > MAX_LINES && !listed {
            over.push(format!("crates/{rel}: {lines} lines"));
        }
        if lines <= MAX_LINES && listed {
            over.push(format!(
                "crates/{rel}: {lines} lines, under the limit now: take it out of LONG_FILES"
            ));
        }
    }
    for (f, _) in LONG_FILES {
        assert!(
            root().join("crates").join(f).is_file(),
            "LONG_FILES names crates/{f}, which is gone"
        );
    }
    assert!(
        over.is_empty(),
        "source files over {MAX_LINES} lines: split them, or say why in LONG_FILES (tidy.rs):\n{}",
        over.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The links of a Markdown text and the anchors of its headings.
fn links_and_anchors(text: &str) -> (Vec<String>, Vec<String>) {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let (mut links, mut anchors) = (Vec::new(), Vec::new());
    let mut heading: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                links.push(dest_url.into_string());
            }
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = &mut heading {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let a = anchor(&heading.take().unwrap_or_default());
                // Repeated headings get -1, -2, … on GitHub.
                let n = anchors.iter().filter(|x: &&String| **x == a).count();
                anchors.push(a.clone());
                if n > 0 {
                    anchors.push(format!("{a}-{n}"));
                }
            }
            _ => {}
        }
    }
    (links, anchors)
}

/// Every relative link in README.md, ARCHITECTURE.md and docs/*.md names a file that exists,
/// and its `#anchor`, if any, a heading of that file.
#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut docs = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            docs.push(e.path());
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let (links, own_anchors) = links_and_anchors(&text);
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for link in links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match link.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{name}: `{link}`: no such file"));
                continue;
            }
            let Some(fragment) = fragment.filter(|f| !f.is_empty()) else {
                continue;
            };
            if target.extension().is_none_or(|x| x != "md") {
                continue;
            }
            let anchors = if path.is_empty() {
                own_anchors.clone()
            } else {
                links_and_anchors(&std::fs::read_to_string(&target).unwrap()).1
            };
            if !anchors.iter().any(|a| a == fragment) {
                broken.push(format!("{name}: `{link}`: no heading with that anchor"));
            }
        }
    }
    assert!(
        checked > 0,
        "no relative link found: is the parser reading the docs?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
