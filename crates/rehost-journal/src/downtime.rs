//! Downtime, folded from the journal: the one place it is computed, for `rehost run`'s summary,
//! `rehost status` and the report alike.
//!
//! An outage begins when a step that stops a service (its `stops` effect: a `stop` step, or any
//! step that declares it) starts, and ends when every service stopped is serving again: a step
//! that starts it finished done, or the stopping step's rollback succeeded (the old service runs
//! again). A successful rollback of a step that started a service takes that service down again,
//! from the moment the rollback began. Every attempt counts, rolled-back ones included: the
//! clients saw them all. An outage that spans a stopped run and its resume (the service stayed
//! down in between) is one outage, as long as the clients saw it.
//!
//! That is the downtime *declared* by the steps. Where services have probes, the journal also
//! holds what the prober saw (`probe_started`, `probe_changed`, `probe_summary`): the
//! *measured* downtime ([`Measured`]) is every interval in which a probed service answered on
//! NEITHER its old nor its new side, as this machine's samples saw it. Both are computed here,
//! side by side, and never one called the other.

use crate::journal::StepResult;
use crate::journal::{ProbeSide, Record};
use rehost_plan::{Effect, Plan};
use serde::Serialize;

/// One outage: from a service going down until every service it took down serves again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// When the first service went down (the journal's time): the start of the step that
    /// stopped it, or of the rollback that stopped it again.
    pub down_at: String,
    /// That step.
    pub down_by: String,
    /// Whether it was that step's rollback (of a step that had started the service).
    pub down_by_rollback: bool,
    /// When every service down was serving again; `None` while one still is not.
    pub up_at: Option<String>,
    /// The step that brought the last one back.
    pub up_by: Option<String>,
    /// Whether it was that step's rollback (of the step that had stopped it).
    pub up_by_rollback: bool,
    /// How long it lasted; `None` while it has not ended.
    pub ms: Option<u64>,
    /// Every service down during it, in the order they went down.
    pub services: Vec<String>,
}

impl Outage {
    /// How it ended, for people: "`start-web` started it" or "the rollback of `stop-web`".
    pub fn how_up(&self) -> Option<String> {
        let by = self.up_by.as_ref()?;
        Some(if self.up_by_rollback {
            format!("the rollback of `{by}`")
        } else {
            format!("step `{by}`")
        })
    }

    /// How it began, for people.
    pub fn how_down(&self) -> String {
        if self.down_by_rollback {
            format!("the rollback of `{}`", self.down_by)
        } else {
            format!("step `{}`", self.down_by)
        }
    }
}

/// Every outage a run's journal records, and their sum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Downtime {
    /// In journal order; the last may not have ended.
    pub outages: Vec<Outage>,
    /// The sum of every outage, when each has ended; `None` when there was none or one has
    /// not ended (the service is still down: see [`Downtime::still_down`]).
    pub total_ms: Option<u64>,
    /// What the prober measured; `None` when no service was probed.
    pub measured: Option<Measured>,
}

/// The downtime clients saw, from the prober's records: when a probed service answered on
/// neither side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Measured {
    /// Per service, in journal order.
    pub outages: Vec<MeasuredOutage>,
    /// The time in which at least one probed service answered on neither side (outages of
    /// several services that overlap count once).
    pub total_ms: u64,
    /// Samples taken, over every run (each side's sample counts once).
    pub samples: u64,
    /// The shortest interval between samples of one side: the resolution of every figure.
    pub interval_ms: u64,
    /// The services probed.
    pub services: Vec<String>,
    /// How long the prober ran, summed over the runs: time between runs was not probed.
    pub probed_ms: u64,
    /// How many times the prober ran (a run and each resume).
    pub runs: u32,
    /// A prober that left no summary (the run was killed, or is still under way): its
    /// samples after its last recorded change are not counted.
    pub unfinished: bool,
}

/// A probed service that answered on neither side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeasuredOutage {
    pub service: String,
    /// When the sample that found the second side unreachable began.
    pub down_at: String,
    /// When the sample that found a side reachable again began; `None` when probing stopped
    /// first (see `ended`).
    pub up_at: Option<String>,
    /// Until `up_at`, or until probing stopped.
    pub ms: u64,
    /// `false`: the service was still unreachable on both sides when probing stopped.
    pub ended: bool,
}

impl Downtime {
    /// The outage that has not ended, if the service is still down.
    pub fn still_down(&self) -> Option<&Outage> {
        self.outages.last().filter(|o| o.up_at.is_none())
    }

    /// The sum of the outages that ended.
    pub fn ended_ms(&self) -> u64 {
        self.outages.iter().filter_map(|o| o.ms).sum()
    }

    /// The total as a duration.
    pub fn total(&self) -> Option<std::time::Duration> {
        self.total_ms.map(std::time::Duration::from_millis)
    }
}

/// Milliseconds from journal time `a` to `b` (0 when `b` is earlier); `None` when either
/// is not a timestamp.
pub fn ms_between(a: &str, b: &str) -> Option<u64> {
    let a: jiff::Timestamp = a.parse().ok()?;
    let b: jiff::Timestamp = b.parse().ok()?;
    Some(u64::try_from(b.as_millisecond() - a.as_millisecond()).unwrap_or(0))
}

/// The services a step stops and starts, by its effects in `plan`.
fn services<'p>(plan: &'p Plan, id: &str) -> (Vec<&'p str>, Vec<&'p str>) {
    let Some(step) = plan.step(id) else {
        return (Vec::new(), Vec::new());
    };
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for e in &step.effects {
        match e {
            Effect::Stops(s) => stops.push(s.as_str()),
            Effect::Starts(s) => starts.push(s.as_str()),
            _ => {}
        }
    }
    (stops, starts)
}

/// Folds the journal into its outages (see the module's documentation). Pure.
pub fn downtime(records: &[Record], plan: &Plan) -> Downtime {
    let mut down: Vec<String> = Vec::new();
    let mut outages: Vec<Outage> = Vec::new();
    let mut prev_at: Option<&str> = None;
    // Takes `services` down at `at`; opens an outage when none is open.
    let go_down = |down: &mut Vec<String>,
                   outages: &mut Vec<Outage>,
                   services: &[&str],
                   at: &str,
                   by: &str,
                   rollback: bool| {
        for s in services {
            if down.iter().any(|d| d == s) {
                continue;
            }
            if down.is_empty() {
                outages.push(Outage {
                    down_at: at.to_owned(),
                    down_by: by.to_owned(),
                    down_by_rollback: rollback,
                    up_at: None,
                    up_by: None,
                    up_by_rollback: false,
                    ms: None,
                    services: Vec::new(),
                });
            }
            down.push((*s).to_owned());
            if let Some(o) = outages.last_mut()
                && !o.services.iter().any(|x| x == s)
            {
                o.services.push((*s).to_owned());
            }
        }
    };
    // Brings `services` back at `at`; ends the open outage when none is left down.
    let come_up = |down: &mut Vec<String>,
                   outages: &mut Vec<Outage>,
                   services: &[&str],
                   at: &str,
                   by: &str,
                   rollback: bool| {
        if down.is_empty() {
            return;
        }
        down.retain(|d| !services.contains(&d.as_str()));
        if down.is_empty()
            && let Some(o) = outages.last_mut()
        {
            o.up_at = Some(at.to_owned());
            o.up_by = Some(by.to_owned());
            o.up_by_rollback = rollback;
            o.ms = ms_between(&o.down_at, at);
        }
    };
    for r in records {
        match r {
            Record::StepStarted { at, id, .. } => {
                let (stops, _) = services(plan, id);
                go_down(&mut down, &mut outages, &stops, at, id, false);
            }
            Record::StepFinished {
                at,
                id,
                result: StepResult::Done,
                ..
            } => {
                let (_, starts) = services(plan, id);
                come_up(&mut down, &mut outages, &starts, at, id, false);
            }
            Record::RolledBack {
                at, id, ok: true, ..
            } => {
                let (stops, starts) = services(plan, id);
                // The rollback of a start stopped the service while it ran: from its start,
                // which is the previous record (the rollback's start or the one before it).
                let began = prev_at.unwrap_or(at);
                go_down(&mut down, &mut outages, &starts, began, id, true);
                come_up(&mut down, &mut outages, &stops, at, id, true);
            }
            _ => {}
        }
        prev_at = Some(r.at());
    }
    let total_ms = (!outages.is_empty() && outages.iter().all(|o| o.ms.is_some()))
        .then(|| outages.iter().filter_map(|o| o.ms).sum());
    Downtime {
        outages,
        total_ms,
        measured: measured(records),
    }
}

/// One probed service during one prober run: what its sides were last seen as, and the
/// outage open since both were seen down.
struct Probed {
    service: String,
    old: Option<bool>,
    new: Option<bool>,
    down_since: Option<String>,
}

fn millis(at: &str) -> Option<i64> {
    at.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Folds the prober's records into the measured downtime; `None` when there are none. Pure.
pub fn measured(records: &[Record]) -> Option<Measured> {
    let mut m = Measured::default();
    let mut probed: Vec<Probed> = Vec::new();
    let mut started_at: Option<String> = None;
    let mut last_at: Option<String> = None;
    // Ends every open outage at `at` (`ended`: a side answered again; else probing stopped).
    fn close(m: &mut Measured, p: &mut Probed, at: &str, ended: bool) {
        if let Some(since) = p.down_since.take() {
            let ms = ms_between(&since, at).unwrap_or(0);
            m.outages.push(MeasuredOutage {
                service: p.service.clone(),
                down_at: since,
                up_at: ended.then(|| at.to_owned()),
                ms,
                ended,
            });
        }
    }
    let end_run = |m: &mut Measured, probed: &mut Vec<Probed>, started: &str, at: &str| {
        for p in probed.iter_mut() {
            close(m, p, at, false);
        }
        probed.clear();
        m.probed_ms += ms_between(started, at).unwrap_or(0);
    };
    for r in records {
        match r {
            Record::ProbeStarted { at, targets } => {
                // A run that left no summary ends where its last record does.
                if let Some(s) = started_at.take() {
                    m.unfinished = true;
                    let end = last_at.clone().unwrap_or_else(|| s.clone());
                    end_run(&mut m, &mut probed, &s, &end);
                }
                m.runs += 1;
                started_at = Some(at.clone());
                for t in targets {
                    if !m.services.contains(&t.service) {
                        m.services.push(t.service.clone());
                    }
                    if m.interval_ms == 0 || t.interval_ms < m.interval_ms {
                        m.interval_ms = t.interval_ms;
                    }
                    probed.push(Probed {
                        service: t.service.clone(),
                        old: None,
                        new: None,
                        down_since: None,
                    });
                }
            }
            Record::ProbeChanged {
                at,
                service,
                side,
                up,
                ..
            } => {
                let Some(p) = probed.iter_mut().find(|p| &p.service == service) else {
                    continue;
                };
                match side {
                    ProbeSide::Old => p.old = Some(*up),
                    ProbeSide::New => p.new = Some(*up),
                }
                let neither = p.old == Some(false) && p.new == Some(false);
                if neither && p.down_since.is_none() {
                    p.down_since = Some(at.clone());
                } else if !neither {
                    close(&mut m, p, at, true);
                }
                last_at = Some(at.clone());
            }
            Record::ProbeSummary { at, samples } => {
                m.samples += samples;
                if let Some(s) = started_at.take() {
                    end_run(&mut m, &mut probed, &s, at);
                }
            }
            _ => {
                if started_at.is_some() {
                    last_at = Some(r.at().to_owned());
                }
            }
        }
    }
    if let Some(s) = started_at.take() {
        m.unfinished = true;
        let end = last_at.clone().unwrap_or_else(|| s.clone());
        end_run(&mut m, &mut probed, &s, &end);
    }
    if m.runs == 0 {
        return None;
    }
    // The union of every outage, so that two services down at once count once.
    let mut spans: Vec<(i64, i64)> = m
        .outages
        .iter()
        .filter_map(|o| {
            let a = millis(&o.down_at)?;
            Some((a, a + o.ms as i64))
        })
        .collect();
    spans.sort();
    let mut total = 0i64;
    let mut cur: Option<(i64, i64)> = None;
    for (a, b) in spans {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    m.total_ms = u64::try_from(total).unwrap_or(0);
    Some(m)
}

#[cfg(test)]
mod tests;
