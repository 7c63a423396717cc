use super::*;

fn rec(i: u32) -> Record {
    Record::StepStarted {
        at: "2026-01-01T00:00:00Z".into(),
        id: format!("s{i}"),
        attempt: 1,
    }
}

/// The lines of records 0..n, chained.
fn lines(n: u32) -> Vec<String> {
    let mut prev = GENESIS.to_owned();
    (0..n)
        .map(|i| {
            let (line, head) = encode(&rec(i), &prev);
            prev = head;
            line
        })
        .collect()
}

#[test]
fn round_trip() {
    let bytes: String = lines(3).concat();
    let l = parse(bytes.as_bytes(), Path::new("j")).unwrap();
    assert_eq!(l.records, vec![rec(0), rec(1), rec(2)]);
    assert!(l.torn.is_none());
    let last = lines(3)[2]
        .trim_end()
        .rsplit_once('\t')
        .unwrap()
        .1
        .to_owned();
    assert_eq!(l.head.as_deref(), Some(last.as_str()));
    assert_eq!(l.unchained, 0);
}

/// The chain digest is reproducible with b3sum, as docs/journal.md says.
#[test]
fn the_chain_is_blake3_of_the_previous_digest_and_the_json() {
    let l = lines(2);
    let (json0, rest0) = l[0].split_once('\t').unwrap();
    let d0 = rest0.trim_end().rsplit_once('\t').unwrap().1;
    assert_eq!(
        d0,
        blake3::hash(format!("{GENESIS}{json0}").as_bytes())
            .to_hex()
            .as_str()
    );
    let (json1, rest1) = l[1].split_once('\t').unwrap();
    let d1 = rest1.trim_end().rsplit_once('\t').unwrap().1;
    assert_eq!(
        d1,
        blake3::hash(format!("{d0}{json1}").as_bytes())
            .to_hex()
            .as_str()
    );
}

fn problems(bytes: &[u8]) -> Vec<(usize, String)> {
    check_lines(bytes)
        .0
        .into_iter()
        .filter_map(|c| c.problem.map(|p| (c.line, p)))
        .collect()
}

#[test]
fn removing_reordering_or_editing_a_record_breaks_the_chain_there() {
    let l = lines(4);
    assert!(problems(l.concat().as_bytes()).is_empty());
    // Removed: the record after it no longer follows.
    let removed = [l[0].clone(), l[2].clone(), l[3].clone()].concat();
    let p = problems(removed.as_bytes());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, 2);
    assert!(p[0].1.contains("hash chain breaks"), "{p:?}");
    assert!(parse(removed.as_bytes(), Path::new("j")).is_err());
    // Reordered.
    let swapped = [l[0].clone(), l[2].clone(), l[1].clone(), l[3].clone()].concat();
    let p = problems(swapped.as_bytes());
    assert_eq!(p.iter().map(|p| p.0).collect::<Vec<_>>(), [2, 3, 4]);
    // Edited with its checksum recomputed (the chain digest cannot be without rewriting every
    // line after it): the chain breaks there.
    let (forged, _) = encode(&rec(9), "not the previous digest");
    let edited = [l[0].clone(), forged, l[2].clone(), l[3].clone()].concat();
    let p = problems(edited.as_bytes());
    assert_eq!(p[0].0, 2, "{p:?}");
    // Edited without recomputing: the checksum tells it was edited.
    let tampered = [l[0].clone(), l[1].replace("\"s1\"", "\"s7\""), l[2].clone()].concat();
    let p = problems(tampered.as_bytes());
    assert_eq!(p[0], (2, "checksum mismatch: the record was edited".into()));
    // The last record edited (its newline written) is not a torn write.
    let last = [l[0].clone(), l[1].replace("\"s1\"", "\"s7\"")].concat();
    assert!(parse(last.as_bytes(), Path::new("j")).is_err());
}

/// Journals from before the chain load, with the count of unchained records; appending goes on
/// chained from the genesis digest.
#[test]
fn journals_from_before_the_chain_load_with_a_warning() {
    let old = |r: &Record| {
        let json = serde_json::to_string(r).unwrap();
        format!("{json}\t{}\n", checksum(&json))
    };
    let mut text = old(&rec(0)) + &old(&rec(1));
    let l = parse(text.as_bytes(), Path::new("j")).unwrap();
    assert_eq!(
        (l.records.len(), l.unchained, l.head.as_deref()),
        (2, 2, None)
    );
    assert!(l.unchained_warning().unwrap().contains("older rehost"));
    text.push_str(&encode(&rec(2), GENESIS).0);
    let l = parse(text.as_bytes(), Path::new("j")).unwrap();
    assert_eq!((l.records.len(), l.unchained), (3, 2));
    assert!(l.head.is_some());
    // An unchained record after chained ones is refused.
    text.push_str(&old(&rec(3)));
    assert!(parse(text.as_bytes(), Path::new("j")).is_err());
    let p = problems(text.as_bytes());
    assert_eq!(p.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 4]);
}

#[test]
fn every_truncation_is_recovered_as_torn() {
    let l = lines(3);
    let bytes: String = l.concat();
    let full = bytes.len();
    let first_two = l[0].len() + l[1].len();
    for cut in first_two + 1..full {
        let l = parse(&bytes.as_bytes()[..cut], Path::new("j")).unwrap();
        assert_eq!(l.records.len(), 2, "cut at {cut}");
        assert!(l.torn.is_some());
        assert_eq!(l.good_len, first_two);
    }
}

#[test]
fn a_bad_line_before_good_ones_is_corruption() {
    let mut bytes: Vec<u8> = lines(3).concat().into_bytes();
    bytes[10] ^= 0x01;
    match parse(&bytes, Path::new("j")) {
        Err(JournalError::JournalCorrupt { line, .. }) => assert_eq!(line, 1),
        other => panic!("expected corruption, got {other:?}"),
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a crash or a disk leaves behind, loading never panics, and a journal cut
        /// anywhere keeps exactly the complete records before the cut.
        #[test]
        fn any_prefix_loads_the_complete_records(n in 1usize..8, cut_frac in 0.0f64..1.0) {
            let lines: Vec<String> = lines(n as u32);
            let all: String = lines.concat();
            let cut = ((all.len() as f64) * cut_frac) as usize;
            let l = parse(&all.as_bytes()[..cut], Path::new("j")).unwrap();
            let mut complete = 0;
            let mut len = 0;
            for line in &lines {
                if len + line.len() <= cut { complete += 1; len += line.len(); }
            }
            prop_assert_eq!(l.records.len(), complete);
            prop_assert_eq!(l.torn.is_some(), cut != len);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes, Path::new("j"));
        }

        /// A flipped bit in any record but the last is reported as corruption, never loaded.
        #[test]
        fn a_flipped_bit_before_the_last_record_is_corruption(n in 2usize..6, pos in any::<prop::sample::Index>(), bit in 0u8..7) {
            let lines: Vec<String> = lines(n as u32);
            let head_len: usize = lines[..n - 1].iter().map(String::len).sum();
            let mut bytes = lines.concat().into_bytes();
            let p = pos.index(head_len);
            bytes[p] ^= 1 << bit;
            match parse(&bytes, Path::new("j")) {
                Err(JournalError::JournalCorrupt { .. }) => {}
                Ok(l) => prop_assert!(false, "loaded {} records from a corrupted journal", l.records.len()),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}

/// Issue 10 item 8: an interrupted attempt showed the previous attempt's failure.
#[test]
fn a_new_attempt_forgets_the_previous_attempts_outcome() {
    use crate::journal::StepResult;
    use crate::state::{StepStatus, status};
    let recs = vec![
        Record::StepStarted {
            at: "t1".into(),
            id: "a".into(),
            attempt: 1,
        },
        Record::StepFinished {
            at: "t2".into(),
            id: "a".into(),
            attempt: 1,
            result: StepResult::Failed,
            elapsed_ms: 5,
            detail: Some("exit status 1".into()),
            confirmed_by: None,
            exit_code: Some(1),
            output: None,
            result_data: None,
        },
        Record::StepStarted {
            at: "t3".into(),
            id: "a".into(),
            attempt: 2,
        },
    ];
    let st = status(&recs, &["a".to_owned()]);
    assert_eq!(st.steps[0].status, StepStatus::Interrupted);
    assert_eq!(st.steps[0].detail, None);
    assert_eq!(st.steps[0].exit_code, None);
}
