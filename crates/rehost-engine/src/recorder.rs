//! Recording: a journal record and its event written together, the record first (fsynced
//! before anything acts on it), and the files a step's output is kept in with their digests.
//! Every time recorded comes from the run's clock.

use crate::EngineError;
use crate::clock::Clock;
use crate::events::{Event, Sink};
use crate::probe::{Change, Prober};
use rehost_journal::journal::{Journal, OutputRef, Record};
use rehost_tree::private::PrivateDir;
use std::io::Write;

pub(crate) struct Recorder<'a> {
    journal: Journal,
    pub sink: &'a mut dyn Sink,
    pub clock: &'a dyn Clock,
    /// The prober under way.
    probes: Option<Prober>,
    /// Its changes shown while a step ran that could not be journaled then (the journal
    /// refused), to journal with the next record.
    shown: Vec<Change>,
    /// The journal's time at an instant of the prober's clock: its changes' times.
    probe_base: Option<(jiff::Timestamp, std::time::Instant)>,
}

impl<'a> Recorder<'a> {
    pub fn new(journal: Journal, sink: &'a mut dyn Sink, clock: &'a dyn Clock) -> Recorder<'a> {
        Recorder {
            journal,
            sink,
            clock,
            probes: None,
            shown: Vec::new(),
            probe_base: None,
        }
    }

    /// Starts the prober when a service has a probe, and records what it samples.
    pub fn start_probes(
        &mut self,
        plan: &rehost_plan::Plan,
        env: Option<&str>,
        ssh_config: Option<&std::path::Path>,
    ) -> Result<(), EngineError> {
        let Some(prober) = Prober::start(plan, env, ssh_config) else {
            return Ok(());
        };
        let base = (self.clock.now(), std::time::Instant::now());
        let targets = prober.targets.clone();
        self.probes = Some(prober);
        self.probe_base = Some(base);
        self.journal.append(Record::ProbeStarted {
            at: base.0.to_string(),
            targets: targets.clone(),
        })?;
        self.sink.emit(&Event::ProbeStarted {
            targets: targets.clone(),
        });
        // Both sides at one address: the probe cannot tell them apart.
        for t in targets.iter().filter(|t| t.old == t.new) {
            self.warning(format!(
                "service `{}`: its old and its new side are both probed at {}: the measured downtime cannot tell them apart; give one host its `address`",
                t.service, t.old
            ))?;
        }
        Ok(())
    }

    /// Journals the changes the prober reported since the last call, each at its own time,
    /// and shows them.
    fn flush_probes(&mut self) -> Result<(), EngineError> {
        let Some(prober) = &self.probes else {
            return Ok(());
        };
        let changes = prober.changes();
        let shown = std::mem::take(&mut self.shown);
        self.journal_changes(shown, false)?;
        self.journal_changes(changes, true)
    }

    /// Journals `changes`, each at its own time; `show`: and emits their events.
    fn journal_changes(&mut self, changes: Vec<Change>, show: bool) -> Result<(), EngineError> {
        let Some((ts, instant)) = self.probe_base else {
            return Ok(());
        };
        for c in changes {
            let since = c.at.saturating_duration_since(instant);
            let at = ts.checked_add(since).unwrap_or(ts).to_string();
            self.journal.append(Record::ProbeChanged {
                at,
                service: c.service.clone(),
                side: c.side,
                up: c.up,
                detail: c.detail.clone(),
            })?;
            if show {
                self.sink.emit(&change_event(c));
            }
        }
        Ok(())
    }

    /// Stops the prober, journals its last changes and how many samples it took.
    pub fn stop_probes(&mut self) -> Result<(), EngineError> {
        let Some(prober) = self.probes.take() else {
            return Ok(());
        };
        let (changes, samples) = prober.stop();
        let shown = std::mem::take(&mut self.shown);
        self.journal_changes(shown, false)?;
        self.journal_changes(changes, true)?;
        let at = self.now();
        self.journal.append(Record::ProbeSummary { at, samples })?;
        Ok(())
    }

    /// Now, as the journal writes it.
    pub fn now(&self) -> String {
        self.clock.now().to_string()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn records(&self) -> &[Record] {
        self.journal.records()
    }

    /// The records so far (a copy, taken now) and the sink, for a step that reads the one and
    /// emits to the other. The sink shows the prober's changes as the step emits and journals
    /// them then, each at its own time, so that a run killed in the middle of a long step keeps
    /// what clients saw until its last event.
    pub fn records_and_sink(&mut self) -> (Vec<Record>, Relay<'_, 'a>) {
        (
            self.journal.records().to_vec(),
            Relay {
                inner: &mut *self.sink,
                prober: self.probes.as_ref(),
                shown: &mut self.shown,
                journal: &mut self.journal,
                base: self.probe_base,
            },
        )
    }

    /// A record with no event of its own.
    pub fn append(&mut self, record: Record) -> Result<(), EngineError> {
        self.flush_probes()?;
        Ok(self.journal.append(record)?)
    }

    /// An event with no record (progress, or what the journal already holds).
    pub fn emit(&mut self, event: &Event) {
        self.sink.emit(event);
    }

    /// A record, then its event.
    pub fn record(&mut self, record: Record, event: Event) -> Result<(), EngineError> {
        self.flush_probes()?;
        self.journal.append(record)?;
        self.sink.emit(&event);
        Ok(())
    }

    /// A decision an operator took (a flag, a confirmation), with who took it.
    pub fn decision(&mut self, by: &str, what: &str, detail: &str) -> Result<(), EngineError> {
        let at = self.now();
        self.record(
            Record::Decision {
                at,
                what: what.into(),
                detail: detail.into(),
                by: by.into(),
            },
            Event::Decision {
                what: what.into(),
                detail: detail.into(),
            },
        )
    }

    /// A warning, shown and kept.
    pub fn warning(&mut self, message: String) -> Result<(), EngineError> {
        self.sink.emit(&Event::Warning {
            message: message.clone(),
        });
        self.flush_probes()?;
        let at = self.now();
        Ok(self.journal.append(Record::Warning { at, message })?)
    }
}

fn change_event(c: Change) -> Event {
    Event::ProbeChanged {
        service: c.service,
        side: c.side.name().into(),
        up: c.up,
        detail: c.detail,
    }
}

/// The sink a step emits to: before each of its events, the prober's changes since the last
/// one are journaled and shown, so a side that went down is seen (and kept) while the step
/// runs, not only when it ends. One the journal refuses is kept for the next record, whose
/// append then fails the same way and stops the run.
pub(crate) struct Relay<'r, 'a> {
    inner: &'r mut (dyn Sink + 'a),
    prober: Option<&'r Prober>,
    shown: &'r mut Vec<Change>,
    journal: &'r mut Journal,
    base: Option<(jiff::Timestamp, std::time::Instant)>,
}

impl Sink for Relay<'_, '_> {
    fn emit(&mut self, event: &Event) {
        if let (Some(p), Some((ts, instant))) = (self.prober, self.base) {
            for c in p.changes() {
                let since = c.at.saturating_duration_since(instant);
                let kept = self.shown.is_empty()
                    && self
                        .journal
                        .append(Record::ProbeChanged {
                            at: ts.checked_add(since).unwrap_or(ts).to_string(),
                            service: c.service.clone(),
                            side: c.side,
                            up: c.up,
                            detail: c.detail.clone(),
                        })
                        .is_ok();
                self.inner.emit(&change_event(c.clone()));
                if !kept {
                    self.shown.push(c);
                }
            }
        }
        self.inner.emit(event);
    }
}

/// A file in the state directory's `output/` that keeps the BLAKE3 digest and size of what is
/// written to it.
pub(crate) struct OutputFile {
    file: std::fs::File,
    hasher: blake3::Hasher,
    bytes: u64,
    /// Its name relative to the state directory.
    rel: String,
}

impl OutputFile {
    pub fn create(outputs: &PrivateDir, name: &str) -> Result<OutputFile, EngineError> {
        let file = outputs
            .create_file(name)
            .map_err(EngineError::from_private)?;
        Ok(OutputFile {
            file,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            rel: format!("output/{name}"),
        })
    }

    /// Writes what was written so far to disk (`fdatasync`).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Syncs the file and describes it for the journal (`None` if nothing was written).
    pub fn finish(&self, tail: &[String]) -> Option<OutputRef> {
        let _ = self.file.sync_data();
        (self.bytes > 0).then(|| OutputRef {
            file: self.rel.clone(),
            bytes: self.bytes,
            blake3: self.hasher.finalize().to_hex().to_string(),
            tail: tail.to_vec(),
        })
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A step or data set id made safe as a file name.
pub(crate) fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
