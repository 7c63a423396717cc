use super::progress_message;
use rehost_tree::{Counts, Progress};
use std::time::Duration;

/// Issue 10 item 8: progress said raw byte counts; it now gives sizes, the rate and, while
/// copying, the time left.
#[test]
fn progress_reads_as_sizes_rates_and_time_left() {
    let copying = Progress {
        sides: [
            Counts {
                entries: 10,
                bytes: 100 << 20,
            },
            Counts::default(),
        ],
        elapsed: Duration::from_secs(2),
        copying: true,
        to_copy: 300 << 20,
    };
    assert_eq!(
        progress_message(&copying, 2),
        "copied 10 entries, 100.0 MiB of 300.0 MiB at 50.0 MiB/s, about 4s left"
    );
    let walking = Progress {
        sides: [
            Counts {
                entries: 5,
                bytes: 1 << 30,
            },
            Counts {
                entries: 4,
                bytes: 1 << 30,
            },
        ],
        elapsed: Duration::from_secs(4),
        copying: false,
        to_copy: 0,
    };
    assert_eq!(
        progress_message(&walking, 2),
        "source: 5 entries listed, 1.0 GiB hashed; destination: 4 entries listed, 1.0 GiB hashed (both sides hashing at 512.0 MiB/s together)"
    );
}

/// Issue 18: "910.9 GiB/s together" was printed for a walk of a few milliseconds. No rate under
/// a second or a megabyte; nor a time left without a rate.
#[test]
fn no_rate_under_a_second_or_a_megabyte() {
    let walk = |bytes: u64, elapsed: Duration| Progress {
        sides: [Counts { entries: 3, bytes }, Counts { entries: 3, bytes }],
        elapsed,
        copying: false,
        to_copy: 0,
    };
    let fast = progress_message(&walk(1 << 30, Duration::from_millis(2)), 2);
    assert_eq!(
        fast,
        "source: 3 entries listed, 1.0 GiB hashed; destination: 3 entries listed, 1.0 GiB hashed"
    );
    let small = progress_message(&walk(1000, Duration::from_secs(5)), 1);
    assert_eq!(small, "3 entries listed, 1000 B hashed");
    let copying = Progress {
        copying: true,
        to_copy: 10 << 30,
        ..walk(1 << 30, Duration::from_millis(500))
    };
    assert_eq!(
        progress_message(&copying, 2),
        "copied 3 entries, 1.0 GiB of 10.0 GiB"
    );
    assert_eq!(
        super::rate(1 << 20, Duration::from_secs(1)).as_deref(),
        Some("1.0 MiB/s")
    );
    assert_eq!(super::rate((1 << 20) - 1, Duration::from_secs(10)), None);
    assert_eq!(super::rate(1 << 30, Duration::from_millis(999)), None);
}
