use super::*;
use proptest::prelude::*;

fn matcher(needles: &[&str]) -> Matcher {
    Matcher::new(needles.iter().map(|n| Needle::parse(n).unwrap()).collect()).unwrap()
}

fn lines(m: &Matcher, text: &str) -> Vec<u64> {
    let mut f = m.file();
    f.feed(text.as_bytes());
    f.finish().hits.iter().map(|h| h.line).collect()
}

#[test]
fn ipv4_is_found_with_boundaries_and_near_misses_are_not() {
    let m = matcher(&["10.0.0.1"]);
    let text = "\
host=10.0.0.1
url=jdbc:postgresql://10.0.0.1:5432/app
net 10.0.0.1/24
listen [::ffff:10.0.0.1]:80
end of sentence 10.0.0.1.
10.0.0.12
110.0.0.1
10.0.0.1.5
a10.0.0.1
10.0.0.1a
v=10.0.0.10
";
    assert_eq!(lines(&m, text), vec![1, 2, 3, 4, 5]);
}

#[test]
fn ipv6_is_found_in_every_spelling_and_longer_addresses_are_not() {
    let m = matcher(&["2001:db8::1"]);
    let text = "\
a 2001:db8::1
b 2001:0db8:0000:0000:0000:0000:0000:0001
c 2001:DB8:0:0:0:0:0:1
d [2001:db8::1]:443
e 2001:db8::1%eth0
f ip:2001:db8::1
g ends 2001:db8::1.
h 2001:db8::10
i 2001:db8::1:5
j x2001:db8::1
k 2001:db8::
";
    assert_eq!(lines(&m, text), vec![1, 2, 3, 4, 5, 6, 7]);
    // An IPv4 needle finds its mapped hexadecimal spelling too.
    let m = matcher(&["10.0.0.1"]);
    assert_eq!(lines(&m, "x ::ffff:a00:1\ny ::ffff:a00:2\n"), vec![1]);
}

#[test]
fn names_are_found_case_insensitively_and_longer_names_are_not() {
    let m = matcher(&["db.example.org."]);
    let text = "\
host = db.example.org
HOST=DB.Example.ORG:5432
fqdn db.example.org.
url postgres://u@db.example.org/app
old-db.example.org
x.db.example.org
db.example.org.au
db.example.org-old
db.example.orgs
";
    assert_eq!(lines(&m, text), vec![1, 2, 3, 4]);
}

#[test]
fn a_line_names_every_needle_it_mentions_once() {
    let m = matcher(&["10.0.0.1", "db.example.org", "2001:db8::1"]);
    let mut f = m.file();
    f.feed(b"a 10.0.0.1 db.example.org 10.0.0.1 [2001:db8::1]\nnone\n");
    let s = f.finish();
    assert_eq!(s.hits.len(), 1);
    assert_eq!(s.hits[0].needles, vec![0, 1, 2]);
    assert_eq!(s.lines, 2);
}

#[test]
fn a_file_with_a_nul_is_binary_and_gives_no_lines() {
    let m = matcher(&["10.0.0.1"]);
    let mut f = m.file();
    assert!(f.feed(b"10.0.0.1\n"));
    assert!(!f.feed(b"\0 10.0.0.1\n"));
    let s = f.finish();
    assert!(s.binary);
    assert!(s.hits.is_empty());
}

#[test]
fn the_shown_text_is_a_bounded_window_around_the_mention() {
    let m = matcher(&["10.0.0.1"]);
    let line = format!("{} 10.0.0.1 {}\n", "x".repeat(5000), "y".repeat(5000));
    let mut f = m.file();
    f.feed(line.as_bytes());
    let s = f.finish();
    assert_eq!(s.hits.len(), 1);
    let t = &s.hits[0].text;
    assert!(t.contains("10.0.0.1"), "{t}");
    assert!(t.len() <= SHOWN + 6, "{}", t.len());
    assert!(t.starts_with('…') && t.ends_with('…'), "{t}");
}

#[test]
fn a_line_longer_than_kept_whole_is_searched_in_overlapping_pieces() {
    let m = matcher(&["10.0.0.1", "2001:db8::1"]);
    // Mentions near where the pieces are cut, and near misses there.
    let mut line = Vec::new();
    for i in 0..(3 * MAX_LINE / 16) {
        line.extend_from_slice(if i % 50_000 == 7 {
            b"a 10.0.0.1 b ... "
        } else {
            b"....10.0.0.12..."
        });
    }
    line.extend_from_slice(b" [2001:db8::1]\nnext 10.0.0.1\n");
    for piece in [1usize, 4096, 65536, MAX_LINE + 3] {
        let mut f = m.file();
        for c in line.chunks(piece) {
            f.feed(c);
        }
        let s = f.finish();
        assert_eq!(
            s.hits.iter().map(|h| h.line).collect::<Vec<_>>(),
            vec![1, 2],
            "pieces of {piece}"
        );
        assert_eq!(s.hits[0].needles, vec![0, 1]);
    }
    // Only near misses on a long line: nothing.
    let mut f = m.file();
    for _ in 0..(2 * MAX_LINE / 16 + 5) {
        f.feed(b"....10.0.0.12...");
    }
    assert!(f.finish().hits.is_empty());
}

#[test]
fn needles_that_are_neither_addresses_nor_names_are_refused() {
    for bad in [
        "",
        "a b",
        "10.0.0.256",
        "01.2.3.4",
        "-x",
        "a..b",
        "host/path",
    ] {
        assert!(Needle::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Needle::parse("[2001:DB8::1]").unwrap(),
        Needle::V6("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        Needle::parse("DB.example.org.").unwrap(),
        Needle::Name("db.example.org".into())
    );
}

fn whole(m: &Matcher, text: &[u8]) -> Scanned {
    let mut f = m.file();
    f.feed(text);
    f.finish()
}

proptest! {
    /// However a file is cut into reads, the same lines are found.
    #[test]
    fn pieces_of_any_size_find_what_the_whole_finds(
        words in proptest::collection::vec(
            prop_oneof![
                Just("10.0.0.1"), Just("10.0.0.12"), Just("db.example.org"), Just("x.db.example.org"),
                Just("2001:db8::1"), Just("2001:db8::10"), Just(" "), Just("\n"), Just("."), Just(":"),
                Just("a"), Just("-"), Just("é"), Just("\r\n"),
            ],
            0..200,
        ),
        cuts in proptest::collection::vec(1usize..40, 1..20),
    ) {
        let m = matcher(&["10.0.0.1", "db.example.org", "2001:db8::1"]);
        let text = words.concat().into_bytes();
        let want = whole(&m, &text);
        let mut f = m.file();
        let (mut at, mut i) = (0, 0);
        while at < text.len() {
            let n = cuts[i % cuts.len()].min(text.len() - at);
            f.feed(&text[at..at + n]);
            at += n;
            i += 1;
        }
        prop_assert_eq!(f.finish(), want);
    }
}
