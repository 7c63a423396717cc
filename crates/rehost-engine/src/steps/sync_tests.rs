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
        "source: 5 entries listed, 1.0 GiB hashed; destination: 4 entries listed, 1.0 GiB hashed (512.0 MiB/s together)"
    );
}
