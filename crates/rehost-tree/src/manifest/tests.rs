use super::*;
use proptest::prelude::*;

fn entry() -> impl Strategy<Value = Entry> {
    (
        proptest::collection::vec(any::<u8>(), 1..40),
        0..7usize,
        any::<(u32, u32, u32, u64)>(),
        any::<(i64, u32, u64, u64)>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::collection::vec(any::<u8>(), 1..20),
        proptest::option::of(proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 1..10),
                proptest::collection::vec(any::<u8>(), 0..10),
            ),
            1..3,
        )),
        0..4usize,
    )
        .prop_map(
            |(
                path,
                k,
                (mode, uid, gid, size),
                (sec, nsec, dev, ino),
                digest,
                target,
                xattrs,
                st,
            )| {
                let kinds = [
                    Kind::File,
                    Kind::Dir,
                    Kind::Symlink,
                    Kind::Fifo,
                    Kind::Socket,
                    Kind::Block,
                    Kind::Char,
                ];
                let kind = kinds[k];
                // A name a walk can produce: no `/` or NUL, not `.` or `..`.
                let mut name: Vec<u8> = path
                    .into_iter()
                    .map(|b| if b == b'/' || b == 0 { b'_' } else { b })
                    .collect();
                if name == b"." || name == b".." {
                    name.insert(0, b'_');
                }
                let mut e = Entry::new(name.into(), kind);
                e.mode = mode & 0o7777;
                e.uid = uid;
                e.gid = gid;
                e.size = size;
                e.mtime = Time {
                    sec,
                    nsec: nsec % 1_000_000_000,
                };
                e.ctime = Time {
                    sec: sec / 2,
                    nsec: nsec % 999_999_999,
                };
                e.dev = dev;
                e.ino = ino;
                e.state = [
                    State::Ok,
                    State::Unstable,
                    State::Vanished,
                    State::Unreadable(13),
                ][st];
                match kind {
                    Kind::File => e.digest = digest,
                    Kind::Symlink => e.target = Some(target.into()),
                    Kind::Block | Kind::Char => e.rdev = libc::makedev(8, 17),
                    _ => {}
                }
                e.xattrs = xattrs.map(|mut v| {
                    v.sort();
                    v.dedup_by(|a, b| a.0 == b.0);
                    v.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
                });
                e
            },
        )
}

proptest! {
    #[test]
    fn file_format_round_trips(entries in proptest::collection::vec(entry(), 0..20)) {
        let mut m = Manifest { root: b"/srv/da ta\n".to_vec().into(), excludes: vec!["*.tmp".into()], entries, ..Default::default() };
        m.entries.sort_by(|a, b| a.path.cmp(&b.path));
        m.entries.dedup_by(|a, b| a.path == b.path);
        m.finish();
        let mut buf = Vec::new();
        m.write_to(&mut buf).unwrap();
        let back = Manifest::read_from(&mut &buf[..], Path::new("t")).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn corrupted_manifests_never_parse_silently(entries in proptest::collection::vec(entry(), 1..8), at in any::<usize>(), bit in 0..8u8) {
        let mut m = Manifest { entries, ..Default::default() };
        m.entries.sort_by(|a, b| a.path.cmp(&b.path));
        m.entries.dedup_by(|a, b| a.path == b.path);
        m.finish();
        let mut buf = Vec::new();
        m.write_to(&mut buf).unwrap();
        let i = at % buf.len();
        buf[i] ^= 1 << bit;
        // Either refused, or (a flip inside the final digest line itself) refused too.
        prop_assert!(Manifest::read_from(&mut &buf[..], Path::new("t")).is_err());
    }
}

#[test]
fn hard_link_groups_need_two_members_in_the_tree() {
    let mut m = Manifest::default();
    for (p, ino, nlink) in [("a", 1, 2), ("b", 1, 2), ("c", 2, 3), ("d", 3, 1)] {
        let mut e = Entry::new(p.as_bytes().into(), Kind::File);
        e.ino = ino;
        e.nlink = nlink;
        m.entries.push(e);
    }
    m.finish();
    let links: Vec<u32> = m.entries.iter().map(|e| e.link).collect();
    assert_eq!(links, vec![0, 0, LINK_NONE, LINK_NONE]);
}
