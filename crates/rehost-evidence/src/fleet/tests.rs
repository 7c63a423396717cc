use super::*;
use crate::doc::Link;

fn server_at(index: usize, start: &str, end: &str, verdict: Level) -> FleetServer {
    let mut s = server(
        index,
        Entry::Unreadable {
            state_dir: format!("s{index}"),
            why: "test".into(),
        },
    );
    s.started = Some(start.into());
    s.ended = Some(end.into());
    s.verdict = verdict;
    s
}

#[test]
fn overlapping_runs_are_one_wave_and_a_gap_starts_the_next() {
    let mut servers = vec![
        // Wave 2 (given first: the order given does not matter).
        server_at(
            1,
            "2026-12-07T10:00:00Z",
            "2026-12-07T10:20:00Z",
            Level::Clean,
        ),
        // Wave 1: three overlapping runs, one failed.
        server_at(
            2,
            "2026-12-07T09:00:00Z",
            "2026-12-07T09:10:00Z",
            Level::Clean,
        ),
        server_at(
            3,
            "2026-12-07T09:05:00Z",
            "2026-12-07T09:30:00Z",
            Level::Failed,
        ),
        server_at(
            4,
            "2026-12-07T09:29:00Z",
            "2026-12-07T09:40:00Z",
            Level::Clean,
        ),
        server_at(
            5,
            "2026-12-07T10:19:00Z",
            "2026-12-07T10:21:00Z",
            Level::Clean,
        ),
    ];
    let w = waves(&mut servers);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert_eq!(w[0].servers, [2, 3, 4]);
    assert_eq!(w[0].failed, 1);
    assert_eq!(w[0].start, "2026-12-07T09:00:00Z");
    assert_eq!(w[0].end, "2026-12-07T09:40:00Z");
    assert_eq!(w[1].servers, [1, 5]);
    assert_eq!(w[1].end, "2026-12-07T10:21:00Z");
    assert_eq!(servers[0].wave, Some(2));
    assert_eq!(servers[1].wave, Some(1));
}

#[test]
fn an_unreadable_state_directory_is_a_finding_in_every_point_and_fails_the_fleet() {
    let f = build(vec![Entry::Unreadable {
        state_dir: "fleet/x".into(),
        why: "its journal is a symbolic link".into(),
    }]);
    assert_eq!(f.verdict, Level::Failed);
    assert!(
        f.headline
            .contains("1 state director(ies) could not be read")
    );
    assert!(f.servers[0].points.iter().all(|c| c.state == Mark::Finding));
    assert!(f.totals.iter().all(|t| t.finding == 1 && t.verified == 0));
}

#[test]
fn a_link_is_a_plain_file_name_or_nothing() {
    assert!(Link::sibling("server-0001.html").is_some());
    for bad in [
        "",
        ".hidden",
        "../server-0001.html",
        "/etc/passwd",
        "a/b.html",
        "javascript:alert(1)",
        "x\" onclick=\"y",
        "server 1.html",
    ] {
        assert!(Link::sibling(bad).is_none(), "{bad}");
    }
}
