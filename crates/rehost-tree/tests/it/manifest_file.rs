//! Manifests written, checked by b3sum, and compared with a tree later.

use crate::*;
use rehost_tree::{Class, Manifest, TreeError, WalkOptions, manifest, verify_manifest_tree};
use std::sync::atomic::AtomicBool;

#[test]
fn manifest_written_then_compared_with_the_tree_later() {
    let a = sample();
    a.file(b"odd\xffname", "x")
        .file("new\nline", "y")
        .file("back\\slash", "z")
        .mtime("", 7, 0);
    let m = manifest(
        a.path(),
        &WalkOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.rmf");
    m.write_file(&file).unwrap();
    let back = Manifest::read_file(&file).unwrap();
    assert_eq!(back.entries, m.entries);

    let b = Tree::copy_of(a.path());
    let cancel = AtomicBool::new(false);
    let r = verify_manifest_tree(
        &back,
        b.path(),
        &VerifyOptions::default(),
        &mut |_| {},
        &cancel,
    )
    .unwrap()
    .report;
    assert_eq!(found(&r), vec![]);
    b.mode("dir/nested", 0o600);
    let r = verify_manifest_tree(
        &back,
        b.path(),
        &VerifyOptions::default(),
        &mut |_| {},
        &cancel,
    )
    .unwrap()
    .report;
    assert_eq!(found(&r), expect(&[(Class::Mode, "dir/nested")]));
}

#[test]
fn digest_lines_check_with_b3sum() {
    rehost_test::tree::require_tool("b3sum");
    let a = sample();
    a.file("back\\slash", "z")
        .file("new\nline", "y")
        .file("sp ace", "s");
    let m = manifest(
        a.path(),
        &WalkOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.rmf");
    m.write_file(&file).unwrap();
    let script = format!("grep -v '^#' {} | b3sum --check", file.display());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(a.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every regular file (h1 and h2 are both listed) was checked.
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": OK")).count(),
        8,
        "{stdout}"
    );
    a.file("sp ace", "S");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(a.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn edited_or_truncated_manifests_are_refused() {
    let a = sample();
    let m = manifest(
        a.path(),
        &WalkOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let mut text = Vec::new();
    m.write_to(&mut text).unwrap();
    let s = String::from_utf8(text.clone()).unwrap();
    let edited = s.replacen(" 644 ", " 600 ", 1);
    assert_ne!(edited, s);
    let name = Path::new("m");
    assert!(matches!(
        Manifest::read_from(&mut edited.as_bytes(), name),
        Err(TreeError::ManifestDigest { .. })
    ));
    let cut = &text[..text.len() - 80];
    assert!(matches!(
        Manifest::read_from(&mut &cut[..], name),
        Err(TreeError::ParseManifest { .. })
    ));
}
