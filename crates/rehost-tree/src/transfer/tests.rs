use super::*;

#[test]
fn rsync_command_carries_everything_verify_compares() {
    let v = rsync_command(
        "db01:/srv/data",
        "/srv/data",
        &RsyncOptions {
            excludes: vec!["*.tmp".into()],
            ..Default::default()
        },
    );
    for flag in [
        "-aHAX",
        "--numeric-ids",
        "--sparse",
        "--delete",
        "--modify-window=-1",
        "--exclude=*.tmp",
    ] {
        assert!(v.iter().any(|a| a == flag), "{flag} missing from {v:?}");
    }
    assert_eq!(&v[v.len() - 2..], ["db01:/srv/data/", "/srv/data"]);
}

#[test]
fn progress_lines_parse() {
    assert_eq!(
        parse_rsync_progress("  1,234,567  45%   12.34MB/s    0:00:10 (xfr#5, to-chk=10/100)"),
        Some(RsyncProgress {
            bytes: 1_234_567,
            percent: 45
        })
    );
    assert_eq!(parse_rsync_progress("sending incremental file list"), None);
}
