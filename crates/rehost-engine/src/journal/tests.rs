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

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a crash or a disk leaves behind, loading never panics, and a journal cut
        /// anywhere keeps exactly the complete records before the cut.
        #[test]
        fn any_prefix_loads_the_complete_records(n in 1usize..8, cut_frac in 0.0f64..1.0) {
            let lines: Vec<String> = (0..n as u32).map(|i| encode(&rec(i))).collect();
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
            let lines: Vec<String> = (0..n as u32).map(|i| encode(&rec(i))).collect();
            let head_len: usize = lines[..n - 1].iter().map(String::len).sum();
            let mut bytes = lines.concat().into_bytes();
            let p = pos.index(head_len);
            bytes[p] ^= 1 << bit;
            match parse(&bytes, Path::new("j")) {
                Err(EngineError::JournalCorrupt { .. }) => {}
                Ok(l) => prop_assert!(false, "loaded {} records from a corrupted journal", l.records.len()),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}

/// Issue 10 item 8: an interrupted attempt showed the previous attempt's failure.
#[test]
fn a_new_attempt_forgets_the_previous_attempts_outcome() {
    use crate::events::StepResult;
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
