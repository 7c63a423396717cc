//! The measured downtime over synthetic prober records.

use super::*;
use crate::journal::ProbeTarget;

/// `t(1500)`: 1.5 s after a fixed instant, as the journal writes times.
fn t(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(1_800_000_000_000 + ms)
        .unwrap()
        .to_string()
}

fn started(ms: i64, services: &[&str]) -> Record {
    Record::ProbeStarted {
        at: t(ms),
        targets: services
            .iter()
            .map(|s| ProbeTarget {
                service: (*s).into(),
                check: "TCP connect to port 1".into(),
                old: "127.0.0.1".into(),
                new: "127.0.0.2".into(),
                interval_ms: 200,
                timeout_ms: 1000,
            })
            .collect(),
    }
}

fn changed(ms: i64, service: &str, side: ProbeSide, up: bool) -> Record {
    Record::ProbeChanged {
        at: t(ms),
        service: service.into(),
        side,
        up,
        detail: None,
    }
}

fn summary(ms: i64, samples: u64) -> Record {
    Record::ProbeSummary { at: t(ms), samples }
}

use ProbeSide::{New, Old};

#[test]
fn no_probe_records_is_no_measurement() {
    assert_eq!(measured(&[]), None);
}

/// Old goes down at 1 s, new comes up at 2.5 s: 1.5 s in which clients reached neither.
#[test]
fn both_sides_down_is_the_interval_between() {
    let m = measured(&[
        started(0, &["web"]),
        changed(0, "web", Old, true),
        changed(0, "web", New, false),
        changed(1000, "web", Old, false),
        changed(2500, "web", New, true),
        summary(4000, 40),
    ])
    .unwrap();
    assert_eq!(m.total_ms, 1500);
    assert_eq!(m.outages.len(), 1);
    assert_eq!(m.outages[0].down_at, t(1000));
    assert_eq!(m.outages[0].up_at, Some(t(2500)));
    assert!(m.outages[0].ended);
    assert_eq!((m.samples, m.interval_ms, m.runs), (40, 200, 1));
    assert_eq!(m.probed_ms, 4000);
    assert!(!m.unfinished);
}

/// The new side came up before the old went down: clients always had one.
#[test]
fn one_side_up_throughout_is_zero_measured_downtime() {
    let m = measured(&[
        started(0, &["web"]),
        changed(0, "web", Old, true),
        changed(0, "web", New, false),
        changed(900, "web", New, true),
        changed(1000, "web", Old, false),
        summary(2000, 20),
    ])
    .unwrap();
    assert_eq!(m.total_ms, 0);
    assert!(m.outages.is_empty());
}

/// Two services down at overlapping times count once in the total, each in its outages.
#[test]
fn overlapping_outages_of_two_services_count_once() {
    let m = measured(&[
        started(0, &["web", "db"]),
        changed(0, "web", Old, true),
        changed(0, "web", New, false),
        changed(0, "db", Old, true),
        changed(0, "db", New, false),
        changed(1000, "web", Old, false),
        changed(1500, "db", Old, false),
        changed(2000, "web", New, true),
        changed(3000, "db", New, true),
        summary(4000, 80),
    ])
    .unwrap();
    assert_eq!(m.outages.len(), 2);
    assert_eq!(m.outages[0].ms, 1000);
    assert_eq!(m.outages[1].ms, 1500);
    assert_eq!(m.total_ms, 2000, "1 s to 3 s, not 2.5 s");
}

/// A run stopped while the service was down on both sides, resumed later: each run's
/// outage is measured until its prober stopped; the time between runs was not probed and is
/// not counted (`probed_ms` says how long was).
#[test]
fn a_stopped_and_resumed_run_measures_only_probed_time() {
    let m = measured(&[
        started(0, &["web"]),
        changed(0, "web", Old, true),
        changed(0, "web", New, false),
        changed(1000, "web", Old, false),
        summary(2000, 20),
        started(60_000, &["web"]),
        changed(60_000, "web", Old, false),
        changed(60_000, "web", New, false),
        changed(60_700, "web", New, true),
        summary(61_000, 10),
    ])
    .unwrap();
    assert_eq!(m.outages.len(), 2);
    assert!(
        !m.outages[0].ended,
        "still down when the first prober stopped"
    );
    assert_eq!(m.outages[0].up_at, None);
    assert_eq!(m.outages[0].ms, 1000);
    assert!(m.outages[1].ended);
    assert_eq!(m.outages[1].ms, 700);
    assert_eq!(m.total_ms, 1700);
    assert_eq!((m.runs, m.samples, m.probed_ms), (2, 30, 3000));
}

/// A run killed before its summary: its open outage ends at its last record, and the
/// measurement says it is unfinished.
#[test]
fn a_killed_run_is_unfinished_and_ends_at_its_last_record() {
    let m = measured(&[
        started(0, &["web"]),
        changed(0, "web", Old, true),
        changed(0, "web", New, false),
        changed(1000, "web", Old, false),
        Record::Warning {
            at: t(1800),
            message: "x".into(),
        },
    ])
    .unwrap();
    assert!(m.unfinished);
    assert_eq!(m.outages.len(), 1);
    assert_eq!(m.outages[0].ms, 800);
    assert!(!m.outages[0].ended);
}

/// A side never sampled yet is not counted as down: only two failed samples are.
#[test]
fn an_unsampled_side_is_not_down() {
    let m = measured(&[
        started(0, &["web"]),
        changed(0, "web", Old, false),
        summary(1000, 5),
    ])
    .unwrap();
    assert_eq!(m.total_ms, 0);
}
