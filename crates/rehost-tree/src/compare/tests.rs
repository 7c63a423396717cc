use super::*;
use crate::manifest::Time;

fn file(p: &str, content: u8) -> Entry {
    let mut e = Entry::new(p.as_bytes().into(), Kind::File);
    e.digest = Some([content; 32]);
    e.size = 10;
    e.mode = 0o644;
    e
}

fn dir(p: &str) -> Entry {
    let mut e = Entry::new(p.as_bytes().into(), Kind::Dir);
    e.mode = 0o755;
    e
}

fn m(entries: Vec<Entry>) -> Manifest {
    let mut m = Manifest {
        entries,
        ..Default::default()
    };
    m.finish();
    m
}

fn classes(r: &Report) -> Vec<(Class, String)> {
    r.findings
        .iter()
        .map(|f| (f.class, String::from_utf8_lossy(&f.path).into_owned()))
        .collect()
}

#[test]
fn equal_manifests_have_no_findings() {
    let a = m(vec![dir(""), file("x", 1), dir("d"), file("d/y", 2)]);
    let r = compare(&a, &a.clone(), &CompareOptions::default());
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.totals.equal, 4);
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn each_field_maps_to_its_class() {
    let a = m(vec![
        dir(""),
        file("c", 1),
        file("m", 1),
        file("t", 1),
        file("gone", 1),
    ]);
    let mut b = a.clone();
    let at = |b: &Manifest, p: &str| b.find(p.as_bytes()).unwrap();
    let i = at(&b, "c");
    b.entries[i].digest = Some([9; 32]);
    let i = at(&b, "m");
    b.entries[i].mode = 0o600;
    let i = at(&b, "t");
    b.entries[i].mtime = Time { sec: 0, nsec: 1 };
    let i = at(&b, "gone");
    b.entries.remove(i);
    b.entries.push(file("new", 1));
    b.finish();
    let r = compare(&a, &b, &CompareOptions::default());
    assert_eq!(
        classes(&r),
        vec![
            (Class::Content, "c".into()),
            (Class::Missing, "gone".into()),
            (Class::Mode, "m".into()),
            (Class::Extra, "new".into()),
            (Class::Mtime, "t".into())
        ]
    );
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn unread_entries_are_never_equal() {
    let a = m(vec![dir(""), file("x", 1), file("y", 1)]);
    let mut b = a.clone();
    b.entries[1].state = State::Unreadable(libc::EIO);
    b.entries[1].digest = None;
    b.entries[2].state = State::Unstable;
    let r = compare(&a, &b, &CompareOptions::default());
    assert_eq!(
        classes(&r),
        vec![
            (Class::Unverified, "x".into()),
            (Class::Unstable, "y".into())
        ]
    );
    assert_eq!(r.totals.equal, 1);
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn acls_are_told_apart_from_other_xattrs() {
    let mut x = file("x", 1);
    x.xattrs = Some(
        vec![(
            b"system.posix_acl_access".to_vec().into(),
            b"\x02".to_vec().into(),
        )]
        .into(),
    );
    let a = m(vec![x.clone()]);
    let mut y = x;
    y.xattrs = Some(vec![(b"user.a".to_vec().into(), b"1".to_vec().into())].into());
    let b = m(vec![y]);
    let r = compare(&a, &b, &CompareOptions::default());
    assert_eq!(
        classes(&r),
        vec![(Class::Xattr, "x".into()), (Class::Acl, "x".into())]
    );
}

#[test]
fn under_unlisted_dir_is_not_missing() {
    let mut d = dir("d");
    d.state = State::Unreadable(libc::EACCES);
    let a = m(vec![dir(""), d]);
    let b = m(vec![dir(""), dir("d"), file("d/x", 1), file("d-x", 1)]);
    let r = compare(&a, &b, &CompareOptions::default());
    assert_eq!(
        classes(&r),
        vec![
            (Class::Unverified, "d".into()),
            (Class::Extra, "d-x".into())
        ]
    );
}
