use super::*;
use proptest::prelude::*;

#[test]
fn display_neutralises_terminal_controls() {
    assert_eq!(display(b"a\nb\x1b[31m"), "a\\nb\\x1b[31m");
    assert_eq!(display(b"x\xffy"), "x\\xffy");
    assert_eq!(display("r\u{202e}gnp.exe".as_bytes()), "r\\u{202e}gnp.exe");
    assert_eq!(display(b"back\\slash"), "back\\\\slash");
    assert_eq!(display("größe".as_bytes()), "größe");
}

/// One character class for strings and bytes: every bidirectional control (U+061C, U+200E/F,
/// U+202A–U+202E, U+2066–U+2069), C0 but tab, DEL and C1 escaped by `text`, and by `display`.
#[test]
fn text_and_display_escape_the_same_controls() {
    let bidi = ['\u{061c}', '\u{200e}', '\u{200f}']
        .into_iter()
        .chain('\u{202a}'..='\u{202e}')
        .chain('\u{2066}'..='\u{2069}');
    let controls = ('\0'..='\u{1f}')
        .filter(|&c| c != '\t')
        .chain(['\u{7f}'])
        .chain('\u{80}'..='\u{9f}');
    for c in bidi.chain(controls) {
        let s = format!("a{c}b");
        let t = text(&s);
        assert!(
            !t.contains(c) && t.starts_with('a') && t.ends_with('b'),
            "{c:?}: {t}"
        );
        let d = display(s.as_bytes());
        assert!(!d.contains(c), "{c:?}: {d}");
    }
    assert_eq!(
        text("x\u{202e}y\u{1b}[2J\tz\n"),
        "x\\u{202e}y\\u{1b}[2J\tz\\n"
    );
    assert_eq!(
        text("plain ümlaut \\ and tab\t"),
        "plain ümlaut \\ and tab\t"
    );
}

#[test]
fn b3sum_lines_match_b3sum_escaping() {
    let h = "0".repeat(64);
    assert_eq!(b3sum_line(&h, b"a b").unwrap(), format!("{h}  a b"));
    assert_eq!(b3sum_line(&h, b"c\\d").unwrap(), format!("\\{h}  c\\\\d"));
    assert_eq!(b3sum_line(&h, b"\xff"), None);
    let (_, p) = parse_b3sum_line(&b3sum_line(&h, b"x\ny\\z").unwrap()).unwrap();
    assert_eq!(p, b"x\ny\\z");
}

proptest! {
    #[test]
    fn token_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let t = encode_token(&bytes);
        prop_assert!(!t.contains(' ') && !t.contains(',') && !t.contains('=') && !t.contains('\n'));
        prop_assert_eq!(decode_token(&t).unwrap(), bytes);
    }

    #[test]
    fn display_is_single_line(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let d = display(&bytes);
        prop_assert!(!d.chars().any(|c| c.is_control()));
    }
}
