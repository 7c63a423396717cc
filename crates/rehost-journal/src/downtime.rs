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

use crate::journal::Record;
use crate::journal::StepResult;
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

fn ms_between(a: &str, b: &str) -> Option<u64> {
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
    Downtime { outages, total_ms }
}
