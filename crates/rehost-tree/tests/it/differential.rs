//! Differential property test: random trees, random mutations of every class, and the check
//! that rehost reports exactly the mutations made, and agrees with
//! `rsync -rcn --itemize-changes -aHAX --delete --modify-window=-1` wherever rsync can see the
//! difference (rsync does not report hard-link structure as such, so hard-link findings are
//! left out of the rsync direction).

use crate::*;
use proptest::prelude::*;
use rehost_test::tree::require_tool;
use std::collections::{BTreeMap, BTreeSet};

const DIRS: [&[u8]; 4] = [b"", b"d", b"d/e e", b"x\ny"];
const NAMES: [&[u8]; 8] = [
    b"a",
    b"b c",
    b"new\nline",
    b"\xff\xfe",
    "\u{fc}ml".as_bytes(),
    b"-x",
    b"#h",
    b"back\\s",
];
const MODES: [u32; 4] = [0o644, 0o640, 0o755, 0o600];

#[derive(Clone, Debug)]
enum Spec {
    File {
        len: usize,
        seed: u8,
        mode: usize,
        uid: u32,
        gid: u32,
        xattr: bool,
    },
    Symlink {
        target: u8,
    },
    Fifo {
        mode: usize,
    },
    EmptyDir,
    /// Hard link to the n-th file created so far.
    Link {
        to: usize,
    },
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        4 => (0usize..3000, any::<u8>(), 0..4usize, prop_oneof![Just(0u32), Just(1000)], prop_oneof![Just(0u32), Just(1000)], any::<bool>())
            .prop_map(|(len, seed, mode, uid, gid, xattr)| Spec::File { len, seed, mode, uid, gid, xattr }),
        1 => any::<u8>().prop_map(|target| Spec::Symlink { target }),
        1 => (0..4usize).prop_map(|mode| Spec::Fifo { mode }),
        1 => Just(Spec::EmptyDir),
        1 => (0usize..8).prop_map(|to| Spec::Link { to }),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutation {
    Content,
    Size,
    Mode,
    Owner,
    Group,
    Mtime,
    Xattr,
    Acl,
    Remove,
    Type,
    Target,
    BreakLink,
}

const MUTATIONS: [Mutation; 12] = [
    Mutation::Content,
    Mutation::Size,
    Mutation::Mode,
    Mutation::Owner,
    Mutation::Group,
    Mutation::Mtime,
    Mutation::Xattr,
    Mutation::Acl,
    Mutation::Remove,
    Mutation::Type,
    Mutation::Target,
    Mutation::BreakLink,
];

#[derive(Clone, Debug)]
struct Made {
    path: Vec<u8>,
    kind: char, // f, l, p, d
    mode: u32,
    group: Option<usize>,
}

fn join(d: &[u8], n: &[u8]) -> Vec<u8> {
    if d.is_empty() {
        n.to_vec()
    } else {
        [d, b"/", n].concat()
    }
}

fn parent(p: &[u8]) -> Vec<u8> {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => p[..i].to_vec(),
        None => Vec::new(),
    }
}

fn build(specs: &[(Spec, usize, usize)]) -> (Tree, Vec<Made>) {
    let t = Tree::new();
    for d in DIRS {
        t.dir(d);
    }
    let mut made: Vec<Made> = Vec::new();
    let mut files: Vec<usize> = Vec::new();
    for (i, (s, dir, name)) in specs.iter().enumerate() {
        let path = join(
            DIRS[*dir % DIRS.len()],
            &[NAMES[*name % NAMES.len()], format!("_{i}").as_bytes()].concat(),
        );
        let mtime = 1_600_000_000 + i as i64;
        match s {
            Spec::File {
                len,
                seed,
                mode,
                uid,
                gid,
                xattr,
            } => {
                let data: Vec<u8> = (0..*len)
                    .map(|k| (k as u8).wrapping_mul(31).wrapping_add(*seed))
                    .collect();
                t.file(&path, data)
                    .mode(&path, MODES[*mode])
                    .owner(&path, *uid, *gid);
                if *xattr {
                    t.xattr(&path, "user.k", [*seed]);
                }
                t.mtime(&path, mtime, 5);
                files.push(made.len());
                made.push(Made {
                    path,
                    kind: 'f',
                    mode: MODES[*mode],
                    group: None,
                });
            }
            Spec::Symlink { target } => {
                t.symlink(&path, format!("../t{target}"))
                    .mtime(&path, mtime, 0);
                made.push(Made {
                    path,
                    kind: 'l',
                    mode: 0o777,
                    group: None,
                });
            }
            Spec::Fifo { mode } => {
                t.fifo(&path)
                    .mode(&path, MODES[*mode])
                    .mtime(&path, mtime, 0);
                made.push(Made {
                    path,
                    kind: 'p',
                    mode: MODES[*mode],
                    group: None,
                });
            }
            Spec::EmptyDir => {
                t.dir(&path).mtime(&path, mtime, 0);
                made.push(Made {
                    path,
                    kind: 'd',
                    mode: 0o755,
                    group: None,
                });
            }
            Spec::Link { to } => {
                if files.is_empty() {
                    continue;
                }
                let target = files[to % files.len()];
                let tp = made[target].path.clone();
                t.hardlink(&path, &tp);
                let g = made[target].group.unwrap_or(target);
                made[target].group = Some(g);
                let mode = made[target].mode;
                made.push(Made {
                    path,
                    kind: 'f',
                    mode,
                    group: Some(g),
                });
            }
        }
    }
    for d in DIRS.iter().rev() {
        t.mtime(d, 1_500_000_000, 0);
    }
    (t, made)
}

/// Applies a mutation to B; returns false if it does not apply to this entry.
fn apply(b: &Tree, e: &Made, m: Mutation, k: usize) -> bool {
    let p = &e.path;
    let keep_mtime = |b: &Tree, f: &dyn Fn(&Tree)| {
        let (s, n) = b.get_mtime(p);
        f(b);
        b.mtime(p, s, n);
    };
    let linked = e.group.is_some();
    match (m, e.kind) {
        (Mutation::Content, 'f') if !linked => {
            let old = std::fs::read(b.join(p)).unwrap();
            if old.is_empty() {
                return false;
            }
            let mut new = old.clone();
            new[k % old.len()] ^= 0x55;
            keep_mtime(b, &|b| {
                b.file(p, &new);
            });
        }
        (Mutation::Size, 'f') if !linked => {
            let mut d = std::fs::read(b.join(p)).unwrap();
            d.push(1);
            keep_mtime(b, &|b| {
                b.file(p, &d);
            });
        }
        (Mutation::Mode, 'f' | 'p' | 'd') if !linked => {
            b.mode(p, e.mode ^ 0o004);
        }
        (Mutation::Owner, _) if !linked => {
            b.owner(p, 4242, u32::MAX);
        }
        (Mutation::Group, _) if !linked => {
            b.owner(p, u32::MAX, 4343);
        }
        (Mutation::Mtime, _) if !linked => {
            b.mtime(p, 1_400_000_000 + k as i64, 0);
        }
        (Mutation::Xattr, 'f' | 'd') if !linked => {
            b.xattr(p, "user.mut", [k as u8]);
        }
        // A named user entry with read only leaves the mask (the group bits) as it is when the
        // group class already has read.
        (Mutation::Acl, 'f' | 'd') if !linked && e.mode & 0o040 != 0 => {
            setfacl(&b.join(p), "u:4444:r")
        }
        (Mutation::Remove, 'f' | 'l' | 'p' | 'd') => keeping_parent(b, p, |b| {
            b.remove(p);
        }),
        (Mutation::Type, 'f' | 'l' | 'd') if !linked => keeping_parent(b, p, |b| {
            b.remove(p).fifo(p);
        }),
        (Mutation::Target, 'l') => keeping_parent(b, p, |b| {
            keep_mtime(b, &|b| {
                b.remove(p).symlink(p, "elsewhere");
            })
        }),
        (Mutation::BreakLink, 'f') if linked => keeping_parent(b, p, |b| {
            keep_mtime(b, &|b| {
                // Linked files are made with uid/gid 0 and no xattrs (see `check`), so a copy
                // made as root with the same mode repeats all their metadata.
                let d = std::fs::read(b.join(p)).unwrap();
                b.remove(p).file(p, &d).mode(p, e.mode);
            })
        }),
        _ => return false,
    }
    true
}

fn keeping_parent(b: &Tree, p: &[u8], f: impl FnOnce(&Tree)) {
    let par = parent(p);
    let (s, n) = b.get_mtime(&par);
    f(b);
    b.mtime(&par, s, n);
}

fn rsync_paths(a: &Path, b: &Path) -> BTreeSet<Vec<u8>> {
    let out = std::process::Command::new("rsync")
        .args([
            "-rcn",
            "--itemize-changes",
            "-aHAX",
            "--delete",
            "--modify-window=-1",
            "-8",
            "--numeric-ids",
        ])
        .arg(format!("{}/", a.display()))
        .arg(format!("{}/", b.display()))
        .output()
        .expect("run rsync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut set = BTreeSet::new();
    for line in out.stdout.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        // `YXcstpoguax path`, or `*deleting   path`; rsync escapes odd bytes as \#ooo.
        let mut path = &line[12..];
        // Symlinks: `path -> target`; hard links (re)created: `path => first link`.
        let arrow: &[u8] = if line[0] == b'h' { b" => " } else { b" -> " };
        if (line[1] == b'L' || line[0] == b'h')
            && let Some(i) = path.windows(4).position(|w| w == arrow)
        {
            path = &path[..i];
        }
        let mut p = unescape_rsync(path);
        if p.ends_with(b"/") {
            p.pop();
        }
        if p == b"." {
            p.clear();
        }
        set.insert(p);
    }
    set
}

fn unescape_rsync(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 4 < s.len() + 1 && s.get(i + 1) == Some(&b'#') {
            let o = std::str::from_utf8(&s[i + 2..i + 5]).unwrap();
            out.push(u8::from_str_radix(o, 8).unwrap());
            i += 5;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn check(specs: Vec<(Spec, usize, usize)>, muts: Vec<(usize, usize, usize)>) {
    require_tool("rsync");
    require_tool("setfacl");
    // Link targets must be plain: force uid/gid 0 and no xattr on files that get linked, so a
    // broken-off copy made as root repeats all metadata.
    let mut specs = specs;
    let n = specs.len();
    let mut file_idx = Vec::new();
    for i in 0..n {
        if matches!(specs[i].0, Spec::File { .. }) {
            file_idx.push(i);
        }
        if let Spec::Link { to } = specs[i].0
            && !file_idx.is_empty()
        {
            let t = file_idx[to % file_idx.len()];
            if let Spec::File {
                uid, gid, xattr, ..
            } = &mut specs[t].0
            {
                *uid = 0;
                *gid = 0;
                *xattr = false;
            }
        }
    }
    let (a, made) = build(&specs);
    let b = Tree::copy_of(a.path());
    let r0 = verify(a.path(), b.path());
    assert_eq!(found(&r0), vec![], "a fresh copy must be equal");

    let mut expected: BTreeSet<(Class, Vec<u8>)> = BTreeSet::new();
    let mut touched: BTreeSet<usize> = BTreeSet::new();
    let mut removed: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut broken: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (which, kind, k) in muts {
        if made.is_empty() {
            break;
        }
        let i = which % made.len();
        if !touched.insert(i) {
            continue;
        }
        // One mutation per hard-link group, so expectations stay independent.
        if let Some(g) = made[i].group
            && made
                .iter()
                .enumerate()
                .any(|(j, e)| j != i && e.group == Some(g) && touched.contains(&j))
        {
            continue;
        }
        let m = MUTATIONS[kind % MUTATIONS.len()];
        let e = &made[i];
        if !apply(&b, e, m, k) {
            continue;
        }
        let class = match m {
            Mutation::Content | Mutation::Size => Class::Content,
            Mutation::Mode => Class::Mode,
            Mutation::Owner => Class::Owner,
            Mutation::Group => Class::Group,
            Mutation::Mtime => Class::Mtime,
            Mutation::Xattr => Class::Xattr,
            Mutation::Acl => Class::Acl,
            Mutation::Remove => Class::Missing,
            Mutation::Type => Class::Type,
            Mutation::Target => Class::Target,
            Mutation::BreakLink => {
                broken.insert(e.path.clone());
                continue;
            }
        };
        if m == Mutation::Remove {
            removed.insert(e.path.clone());
        }
        expected.insert((class, e.path.clone()));
    }
    // One extra entry in B.
    keeping_parent(&b, b"d/extra\xff", |b| {
        b.file(b"d/extra\xff", "x");
    });
    expected.insert((Class::Extra, b"d/extra\xff".to_vec()));
    // Hard-link findings: a path whose partners (among paths present on both sides) changed.
    let mut groups: BTreeMap<usize, Vec<&Made>> = BTreeMap::new();
    for e in &made {
        if let Some(g) = e.group {
            groups.entry(g).or_default().push(e);
        }
    }
    for members in groups.values() {
        let present: Vec<&Made> = members
            .iter()
            .copied()
            .filter(|e| !removed.contains(&e.path))
            .collect();
        if present.len() < 2 {
            continue;
        }
        for e in &present {
            let before: BTreeSet<&[u8]> = present
                .iter()
                .filter(|o| o.path != e.path)
                .map(|o| &o.path[..])
                .collect();
            let after: BTreeSet<&[u8]> = if broken.contains(&e.path) {
                BTreeSet::new()
            } else {
                before
                    .iter()
                    .copied()
                    .filter(|p| !broken.contains(*p))
                    .collect()
            };
            if before != after {
                expected.insert((Class::Hardlink, e.path.clone()));
            }
        }
    }

    let r = verify(a.path(), b.path());
    let got: BTreeSet<(Class, Vec<u8>)> = r
        .findings
        .iter()
        .map(|f| (f.class, f.path.to_vec()))
        .collect();
    let show = |s: &BTreeSet<(Class, Vec<u8>)>| -> Vec<(Class, String)> {
        s.iter()
            .map(|(c, p)| (*c, rehost_tree::escape::display(p)))
            .collect()
    };
    assert_eq!(
        show(&got),
        show(&expected),
        "rehost must report exactly the mutations"
    );

    // rsync agreement, at the level of paths.
    let rs = rsync_paths(a.path(), b.path());
    let ours: BTreeSet<Vec<u8>> = got
        .iter()
        .filter(|(c, _)| *c != Class::Hardlink)
        .map(|(_, p)| p.clone())
        .collect();
    let ours_all: BTreeSet<Vec<u8>> = got.iter().map(|(_, p)| p.clone()).collect();
    let show_p = |s: &BTreeSet<Vec<u8>>| -> Vec<String> {
        s.iter().map(|p| rehost_tree::escape::display(p)).collect()
    };
    // Everything rsync itemizes, rehost reports (hard-link re-creation included).
    assert!(
        rs.is_subset(&ours_all),
        "rsync saw more: rsync {:?}, rehost {:?}",
        show_p(&rs),
        show_p(&ours_all)
    );
    // Everything rehost reports in a class rsync can see, rsync itemizes too.
    assert!(
        ours.is_subset(&rs),
        "rsync missed: rsync {:?}, rehost {:?}",
        show_p(&rs),
        show_p(&ours)
    );
}

proptest! {
    // 24 cases by default (each builds two trees and runs rsync); PROPTEST_CASES=500 for a soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn reports_exactly_the_mutations_and_agrees_with_rsync(
        specs in proptest::collection::vec((spec(), 0..4usize, 0..8usize), 1..14),
        muts in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 0..8),
    ) {
        check(specs, muts);
    }
}
