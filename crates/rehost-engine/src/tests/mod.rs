//! In-process tests of the run loop against fake hosts and a fake clock: resume, rollback, the
//! window, recorded decisions and cancellation, each in milliseconds and without sshd. What is
//! about ssh is tested end to end in the binary's tests.

mod downtime;
mod fake_host;
mod run;
mod trees;

use crate::EngineError;
use crate::clock::FakeClock;
use crate::events::Event;
use crate::exec::{Confirmer, Hosts};
use crate::run::{Engine, RunOptions, RunOutcome};
use fake_host::{Calls, FakeHost, Script};
use rehost_journal::journal::{Journal, Record};
use rehost_plan::{Plan, Step};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// Answers every prompt as one person.
struct Answer(Result<String, String>);

impl Confirmer for Answer {
    fn confirm(&mut self, _step: &Step, _text: &str, _pnr: bool) -> Result<String, String> {
        self.0.clone()
    }
}

/// A plan, a state directory and fake hosts `old` and `new`, run as often as a test likes.
struct Scenario {
    dir: tempfile::TempDir,
    text: String,
    plan: Plan,
    /// Scripted commands, for every host.
    script: Vec<(String, Script)>,
    calls: Calls,
    clock: Arc<FakeClock>,
    /// A signal arrives when the engine emits an event this matches.
    cancel_on: Option<fn(&Event) -> bool>,
    /// Hosts reached over ssh (the others are this machine).
    ssh: Vec<(String, rehost_host::SshSpec)>,
    /// Every host has a disk, under `disk(host)`.
    disks: bool,
}

/// Collects events; sets the cancel flag at the first one a test picked, as a signal would.
struct Events<'c> {
    events: Vec<Event>,
    cancel: &'c AtomicBool,
    cancel_on: Option<fn(&Event) -> bool>,
}

impl crate::events::Sink for Events<'_> {
    fn emit(&mut self, event: &Event) {
        if self.cancel_on.is_some_and(|on| on(event)) {
            self.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.events.push(event.clone());
    }
}

/// What one run did.
struct Ran {
    result: Result<RunOutcome, EngineError>,
    events: Vec<Event>,
    /// The commands the hosts were asked to run during this run (the pre-flight's checks
    /// aside: they are in `preflight_calls`).
    calls: Vec<String>,
    preflight_calls: Vec<String>,
}

/// A time of day, written as in a plan.
fn at(t: &str) -> jiff::Timestamp {
    t.parse().expect("a timestamp")
}

impl Scenario {
    fn new(text: &str) -> Scenario {
        let mut s = Scenario {
            dir: tempfile::tempdir().expect("temporary directory"),
            text: String::new(),
            plan: rehost_plan::check("[migration]\ntitle = \"t\"")
                .plan
                .unwrap(),
            script: Vec::new(),
            calls: Arc::new(Mutex::new(Vec::new())),
            clock: Arc::new(FakeClock::new(at("2026-12-05T12:00:00Z"))),
            cancel_on: None,
            ssh: Vec::new(),
            disks: false,
        };
        s.set_plan(text);
        s
    }

    /// A plan with two local hosts (never opened: the run gets fake ones) and these steps.
    fn set_plan(&mut self, text: &str) {
        let checked = rehost_plan::check(text);
        assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
        self.plan = checked.plan.expect("the plan reads");
        self.text = text.to_owned();
    }

    fn script(mut self, command: &str, what: Script) -> Scenario {
        self.script.push((command.to_owned(), what));
        self
    }

    /// Host `host` is reached over ssh with `spec`.
    fn over_ssh(mut self, host: &str, spec: rehost_host::SshSpec) -> Scenario {
        self.ssh.push((host.to_owned(), spec));
        self
    }

    /// Every host gets a disk: a directory under the test's, made here.
    fn with_disks(mut self) -> Scenario {
        self.disks = true;
        self
    }

    /// Where host `host`'s paths are, with disks.
    fn disk(&self, host: &str) -> std::path::PathBuf {
        self.dir.path().join("disk").join(host)
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            state_dir: self.dir.path().join("state").join("production"),
            user: "ada".into(),
            accept_findings: true,
            ..RunOptions::default()
        }
    }

    fn run(&self, options: RunOptions) -> Ran {
        self.run_as(options, Answer(Ok("grace".into())))
    }

    fn run_as(&self, options: RunOptions, mut confirmer: Answer) -> Ran {
        let before = self.calls.lock().unwrap().len();
        let names: Vec<String> = self
            .plan
            .hosts_for(options.env.as_deref())
            .expect("a known environment")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let hosts = Hosts::with_open(
            names
                .iter()
                .map(|n| {
                    let mut h = FakeHost::new(
                        n,
                        self.script.clone(),
                        self.calls.clone(),
                        Arc::clone(&self.clock),
                    );
                    if let Some((_, spec)) = self.ssh.iter().find(|(h, _)| h == n) {
                        h = h.over_ssh(spec.clone());
                    }
                    if self.disks {
                        std::fs::create_dir_all(self.disk(n)).expect("the host's disk");
                        h = h.with_disk(&self.disk(n));
                    }
                    let h: Box<dyn rehost_host::Host> = Box::new(h);
                    (n.clone(), h)
                })
                .collect(),
        );
        let cancel = AtomicBool::new(false);
        let mut events = Events {
            events: Vec::new(),
            cancel: &cancel,
            cancel_on: self.cancel_on,
        };
        let findings = rehost_plan::check(&self.text).findings;
        let engine = Engine {
            plan: &self.plan,
            plan_text: &self.text,
            findings: &findings,
            options,
            sink: &mut events,
            cancel: &cancel,
            confirmer: &mut confirmer,
            clock: &*self.clock,
            hosts: Some(hosts),
        };
        let result = engine.run();
        let (preflight_calls, calls) = self.calls.lock().unwrap()[before..]
            .iter()
            .cloned()
            .partition(|c: &String| c.contains(crate::preflight::MARK));
        Ran {
            result,
            events: events.events,
            calls,
            preflight_calls,
        }
    }

    /// The journal's records, as `rehost status` reads them.
    fn records(&self, env: &str) -> Vec<Record> {
        let dir = self.dir.path().join("state").join(env);
        let state = crate::open_state_dir(&dir, false)
            .expect("the state directory")
            .expect("it exists");
        let (journal, torn) = Journal::open(&state).expect("the journal");
        assert_eq!(torn, None);
        journal.records().to_vec()
    }

    /// The decisions recorded: (what, by, detail).
    fn decisions(&self, env: &str) -> Vec<(String, String, String)> {
        self.records(env)
            .into_iter()
            .filter_map(|r| match r {
                Record::Decision {
                    what, by, detail, ..
                } => Some((what, by, detail)),
                _ => None,
            })
            .collect()
    }
}

/// The plan's head: two hosts, rollback on failure, and the steps given.
fn plan(steps: &str) -> String {
    format!(
        r#"[migration]
title = "Fake"
on_failure = "rollback"

[hosts.old]
local = true
root = "/nonexistent/old"
[hosts.new]
local = true
root = "/nonexistent/new"

[environments.test]
old = {{ local = true, root = "/nonexistent/test-old" }}
new = {{ local = true, root = "/nonexistent/test-new" }}
{steps}"#
    )
}

/// A `run` step on `new` whose command is its id.
fn run_step(id: &str, extra: &str) -> String {
    format!(
        "\n[[steps]]\nid = \"{id}\"\ndo = \"run\"\nhost = \"new\"\ncommand = \"{id}\"\n{extra}\n"
    )
}
