//! Excludes mean the same to rsync and to rehost (issue 9, item 4): random trees and random
//! exclude patterns, copied by `rsync -a --exclude=…` and walked by rehost with the same
//! patterns; both must keep exactly the same entries. Before, rsync floated `var/cache` to any
//! depth and read `cache/` as directories only, where rehost anchored the one and ignored the
//! trailing `/` of the other.

use rehost_test::tree::Tree;
use rehost_tree::{Glob, WalkOptions};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use proptest::prelude::*;

const NAMES: [&str; 5] = ["a", "b", "cache", "x.tmp", "var"];

fn rel_path() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(&NAMES[..]), 1..4)
}

fn pattern() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a", "b", "cache", "var", "*", "?", "x.*", "*.tmp", "[ab]", "**", "[!a]*",
    ]);
    (
        any::<bool>(),
        prop::collection::vec(piece, 1..3),
        prop::sample::select(vec!["", "", "/", "/***"]),
    )
        .prop_map(|(lead, parts, tail)| {
            format!("{}{}{tail}", if lead { "/" } else { "" }, parts.join("/"))
        })
}

fn paths(root: &Path, excludes: &[String]) -> BTreeSet<String> {
    let walk = WalkOptions {
        excludes: excludes.iter().map(|x| Glob::new(x).unwrap()).collect(),
        ..WalkOptions::default()
    };
    rehost_tree::manifest(root, &walk, &mut |_| {}, &AtomicBool::new(false))
        .unwrap()
        .entries
        .iter()
        .filter(|e| !e.path.is_empty())
        .map(|e| String::from_utf8(e.path.to_vec()).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn rsync_and_rehost_exclude_the_same_entries(
        entries in prop::collection::vec((rel_path(), any::<bool>()), 1..16),
        excludes in prop::collection::vec(pattern(), 1..4),
    ) {
        rehost_test::tree::require_tool("rsync");
        let src = Tree::new();
        let mut files: Vec<String> = Vec::new();
        let mut made: Vec<String> = Vec::new();
        for (parts, dir) in entries {
            let p = parts.join("/");
            // Skip what would need a file as a directory, or a directory where a file is.
            let blocked = files.iter().any(|f| p == *f || p.starts_with(&format!("{f}/")))
                || (!dir && made.iter().any(|m| m.starts_with(&format!("{p}/")) || *m == p));
            if blocked {
                continue;
            }
            if dir {
                src.dir(&p);
            } else {
                src.file(&p, "x");
                files.push(p.clone());
            }
            made.push(p);
        }
        let dst = Tree::new();
        let mut cmd = std::process::Command::new("rsync");
        cmd.arg("-a");
        for x in &excludes {
            cmd.arg(format!("--exclude={x}"));
        }
        let st = cmd
            .arg(format!("{}/", src.path().display()))
            .arg(format!("{}/", dst.path().display()))
            .status()
            .unwrap();
        prop_assert!(st.success());
        prop_assert_eq!(paths(src.path(), &excludes), paths(dst.path(), &[]), "excludes {:?}", excludes);
    }
}
