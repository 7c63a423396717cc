use super::*;

fn rec(i: u32) -> Record {
    Record::StepStarted {
        at: "2026-01-01T00:00:00Z".into(),
        id: format!("s{i}"),
        attempt: 1,
    }
}

#[test]
fn round_trip() {
    let bytes: String = (0..3).map(|i| encode(&rec(i))).collect();
    let l = parse(bytes.as_bytes(), Path::new("j")).unwrap();
    assert_eq!(l.records, vec![rec(0), rec(1), rec(2)]);
    assert!(l.torn.is_none());
}

#[test]
fn every_truncation_is_recovered_as_torn() {
    let bytes: String = (0..3).map(|i| encode(&rec(i))).collect();
    let full = bytes.len();
    let first_two = encode(&rec(0)).len() + encode(&rec(1)).len();
    for cut in first_two + 1..full {
        let l = parse(&bytes.as_bytes()[..cut], Path::new("j")).unwrap();
        assert_eq!(l.records.len(), 2, "cut at {cut}");
        assert!(l.torn.is_some());
        assert_eq!(l.good_len, first_two);
    }
}

#[test]
fn a_bad_line_before_good_ones_is_corruption() {
    let mut bytes: Vec<u8> = (0..3).flat_map(|i| encode(&rec(i)).into_bytes()).collect();
    bytes[10] ^= 0x01;
    match parse(&bytes, Path::new("j")) {
        Err(EngineError::JournalCorrupt { line, .. }) => assert_eq!(line, 1),
        other => panic!("expected corruption, got {other:?}"),
    }
}
