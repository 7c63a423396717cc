//! The journal: an append-only, hash-chained record of a run.
//!
//! # Format
//!
//! One record per line: the record as a JSON object, a TAB, the first 16 hex digits of the
//! BLAKE3 hash of the JSON text (the record's checksum), a TAB, the record's chain digest (64 hex
//! digits), and a newline:
//!
//! ```text
//! {"type":"step_started","at":"2026-12-05T21:03:11Z","id":"stop-old","attempt":1}\t3f9a0c1d2e4b5a69\t9c1e…(64)
//! ```
//!
//! The chain digest is BLAKE3 of the previous record's chain digest (as 64 hex digits;
//! [`GENESIS`], all zeros, before the first record) followed by this record's JSON text. Editing,
//! removing or reordering any record breaks the chain at that line; the last record's digest
//! (the head, [`Journal::head`], [`head_of`]) stands for the whole journal: a head printed in a
//! report proves later that nothing up to it changed. docs/journal.md documents every record.
//!
//! Journals written before the chain have no third field. They load with a warning
//! ([`Loaded::unchained`]); records appended to them are chained from [`GENESIS`]; `rehost
//! status --verify` reports their unchained records as unverifiable.
//!
//! Every append is followed by `fsync`, so a record is on disk before the engine acts on it:
//! `step_started` is durable before a step runs, `step_finished` before the next begins.
//!
//! # Recovery
//!
//! A process killed mid-append leaves a torn last line (no newline). That line is dropped with a
//! warning: it recorded nothing that had been acted on yet. Any other bad line (a checksum or
//! chain that does not match, even on the last line when its newline was written) is not a torn
//! write but corruption or tampering; the journal then refuses to load and nothing runs.

use crate::JournalError;
pub use crate::step_data::StepData;
use rehost_tree::private::PrivateDir;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How a step attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Done,
    Failed,
    Skipped,
    Interrupted,
    /// A manual step the operator did not confirm; it is still to do.
    NotConfirmed,
}

/// The journal's name in the state directory.
pub const JOURNAL: &str = "journal";

/// Where a step's full output was kept, with its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    /// Relative to the state directory.
    pub file: String,
    pub bytes: u64,
    pub blake3: String,
    /// The last lines, for status and reports.
    pub tail: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    RunStarted {
        at: String,
        plan_digest: String,
        env: String,
        /// Each step's id and the digest of its definition, to detect a changed plan.
        steps: Vec<(String, String)>,
        user: String,
        pid: u32,
        version: String,
        /// The plan text as run, in the state directory (`plans/<plan_digest>.toml`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_file: Option<String>,
        /// The machine rehost ran on, and the operator's terminal (with the ssh client's
        /// address when they came in over ssh).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator_host: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        terminal: Option<String>,
    },
    /// The operator accepted a changed plan; these digests hold from now on.
    PlanAccepted {
        at: String,
        plan_digest: String,
        steps: Vec<(String, String)>,
        by: String,
        /// The accepted plan text, in the state directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_file: Option<String>,
    },
    /// The plan text changed where no step did (a title, a comment, the concept's text): the
    /// run goes on with this text, kept like the first.
    PlanSnapshot {
        at: String,
        plan_digest: String,
        plan_file: String,
    },
    Decision {
        at: String,
        what: String,
        detail: String,
        by: String,
    },
    Warning {
        at: String,
        message: String,
    },
    /// The pre-flight before the first step of this invocation: the hosts it opened and what
    /// it found wrong (the run started only if nothing).
    Preflight {
        at: String,
        hosts: Vec<String>,
        problems: Vec<String>,
    },
    StepStarted {
        at: String,
        id: String,
        attempt: u32,
    },
    StepFinished {
        at: String,
        id: String,
        attempt: u32,
        result: StepResult,
        elapsed_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmed_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputRef>,
        /// What the step kind records as its result (a verification's totals, findings and
        /// manifests; a transfer's counts; a command's exit status), typed and versioned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result_data: Option<StepData>,
    },
    RollbackStarted {
        at: String,
        failed: String,
    },
    RolledBack {
        at: String,
        id: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// The rollback command's output, kept like a step's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputRef>,
    },
    /// After a rollback: these steps' finished attempts no longer hold (the old side ran again
    /// and took writes, or the step was undone), so they run again from `from`, the earliest
    /// rolled-back step. Their earlier attempts stay in the journal as evidence.
    Superseded {
        at: String,
        /// The earliest rolled-back step: the run resumes here.
        from: String,
        /// The steps from `from` on whose attempts were done or skipped and run again.
        steps: Vec<String>,
        /// The failed step whose rollback superseded them.
        failed: String,
    },
    RunFinished {
        at: String,
        ok: bool,
        summary: String,
    },
    /// The prober began sampling the plan's probed services (at the start of a run or a
    /// resume): what it samples, where. Each side's first sample follows as a `probe_changed`.
    ProbeStarted {
        at: String,
        targets: Vec<ProbeTarget>,
    },
    /// A side of a probed service became reachable or unreachable (or was sampled for the
    /// first time since `probe_started`); `at` is when the sample that saw it began. Only
    /// changes are journaled, never every sample.
    ProbeChanged {
        at: String,
        service: String,
        side: ProbeSide,
        up: bool,
        /// Why a sample failed, for people (escaped where shown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The prober stopped: how many samples it took since `probe_started`.
    ProbeSummary {
        at: String,
        samples: u64,
    },
    /// The old side a `watch-old` step kept (its manifest) walked again at the end of the run
    /// and compared with the kept manifest: what changed there after its final state was taken
    /// (lost writes). `unchanged` only when the comparison ran and found nothing.
    OldSideRechecked {
        at: String,
        /// The `watch-old` step and its attempt whose manifest was compared.
        step: String,
        attempt: u32,
        data_set: String,
        /// `host:path` of the old side.
        source: String,
        unchanged: bool,
        /// How many differences, and the first of them (path, class, kept and now).
        changes_total: u64,
        changes: Vec<crate::step_data::FindingData>,
        /// Why the re-check could not compare (the walk or the kept manifest failed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// What the comparison did not cover (the data set's excludes, time after `at`).
        not_compared: String,
    },
    /// The old tree a `retire-old` step made read-only, walked again (`rehost status
    /// --recheck`): whether any entry has a write bit again, during its retention.
    ReadOnlyRechecked {
        at: String,
        /// The `retire-old` step and its attempt.
        step: String,
        attempt: u32,
        data_set: String,
        /// `host:path` of the old tree.
        source: String,
        /// True only when the walk ran and found no entry with a write bit.
        read_only: bool,
        entries: u64,
        /// How many entries have a write bit again, and the first of them.
        writable_total: u64,
        writable: Vec<String>,
        /// When the retention ends (the step's record).
        until: String,
        /// Why the walk could not be made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A load of the rehearsal's environment (`[[environments.NAME.load]]`) started, before
    /// step `before` ran.
    LoadStarted {
        at: String,
        id: String,
        /// `command` or `writes`.
        kind: String,
        before: String,
    },
    /// A load ended: stopped after its `stop_after` step (`after`), or when the run ended,
    /// failed or was interrupted (`reason`), or on its own. SIGTERM to its process group,
    /// SIGKILL after a grace.
    LoadStopped {
        at: String,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Why it was stopped, or that it ended by itself.
        reason: String,
        elapsed_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        /// A command load's output, kept like a step's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputRef>,
        /// The write load: writes whose commit was acknowledged, each id appended (and
        /// fsynced) to `acks` only after that; errors (connection refused, the server down
        /// during the switch) counted, the first kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acknowledged: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errors: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acks: Option<OutputRef>,
    },
    /// A write load's acknowledged writes looked for on the database's new side, after the
    /// load stopped: `missing` empty and no `error` is the one case in which none was lost.
    LoadChecked {
        at: String,
        id: String,
        /// The database written to (empty for the HTTP write load).
        database: String,
        /// The service written to (the HTTP write load).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        /// `host:database` of the new side asked.
        new_side: String,
        acknowledged: u64,
        found: u64,
        missing_total: u64,
        /// The first missing ids (at most [`MAX_MISSING_NAMED`]).
        missing: Vec<u64>,
        /// Why the new side could not be asked: then nothing was compared.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        not_compared: String,
    },
}

/// How many missing write ids a `load_checked` record names.
pub const MAX_MISSING_NAMED: usize = 20;

/// A probed service's side: its old host or its new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeSide {
    Old,
    New,
}

impl ProbeSide {
    pub fn name(self) -> &'static str {
        match self {
            ProbeSide::Old => "old",
            ProbeSide::New => "new",
        }
    }
}

/// One service the prober samples, on both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub service: String,
    /// What a sample does, for people ("TCP connect to port 5432").
    pub check: String,
    /// The addresses sampled.
    pub old: String,
    pub new: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
}

impl Record {
    /// When the record was written (RFC 3339, the run's clock).
    pub fn at(&self) -> &str {
        match self {
            Record::RunStarted { at, .. }
            | Record::PlanAccepted { at, .. }
            | Record::PlanSnapshot { at, .. }
            | Record::Decision { at, .. }
            | Record::Warning { at, .. }
            | Record::Preflight { at, .. }
            | Record::StepStarted { at, .. }
            | Record::StepFinished { at, .. }
            | Record::RollbackStarted { at, .. }
            | Record::RolledBack { at, .. }
            | Record::Superseded { at, .. }
            | Record::RunFinished { at, .. }
            | Record::ProbeStarted { at, .. }
            | Record::ProbeChanged { at, .. }
            | Record::ProbeSummary { at, .. }
            | Record::OldSideRechecked { at, .. }
            | Record::ReadOnlyRechecked { at, .. }
            | Record::LoadStarted { at, .. }
            | Record::LoadStopped { at, .. }
            | Record::LoadChecked { at, .. } => at,
        }
    }
}

pub struct Journal {
    path: PathBuf,
    file: File,
    records: Vec<Record>,
    /// The chain digest of the last record (or [`GENESIS`] before the first).
    head: String,
    unchained: usize,
}

/// The chain digest before the first record (and before the first chained record of a journal
/// written before the chain).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The checksum of one record's JSON text: it tells an edited record from a moved one.
fn checksum(json: &str) -> String {
    blake3::hash(json.as_bytes()).to_hex()[..16].to_string()
}

/// The chain digest of a record: BLAKE3 of the previous record's chain digest (64 hex digits)
/// followed by this record's JSON text.
pub fn chain(prev: &str, json: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(prev.as_bytes());
    h.update(json.as_bytes());
    h.finalize().to_hex().to_string()
}

/// Encodes a record as one journal line (with its newline) after the record whose chain digest
/// is `prev`. Returns the line and this record's chain digest.
pub fn encode(record: &Record, prev: &str) -> (String, String) {
    let json = serde_json::to_string(record).expect("records serialize");
    let digest = chain(prev, &json);
    (format!("{json}\t{}\t{digest}\n", checksum(&json)), digest)
}

/// What loading a journal found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// Set when a torn last record was dropped.
    pub torn: Option<String>,
    /// The length of the good prefix, in bytes.
    pub good_len: usize,
    /// The chain digest of the last record: what a report shows and `status --verify` prints.
    /// `None` when there are no records or the last has no chain (an older rehost wrote it).
    pub head: Option<String>,
    /// How many records at the start were written before the hash chain (by an older rehost):
    /// they load, with a warning, but cannot be verified.
    pub unchained: usize,
}

impl Loaded {
    /// A warning about records written before the hash chain, if there are any.
    pub fn unchained_warning(&self) -> Option<String> {
        (self.unchained > 0).then(|| {
            format!(
                "the first {} record(s) of the journal were written by an older rehost, before the hash chain: they cannot be verified",
                self.unchained
            )
        })
    }
}

/// One line of a journal, decoded.
struct Line {
    json: String,
    sum_ok: bool,
    /// The chain digest written on the line; `None` on a line from before the chain.
    chain: Option<String>,
}

fn split_line(line: &str) -> Result<Line, BadLine> {
    let (rest, last) = line.rsplit_once('\t').ok_or(BadLine::NoChecksum)?;
    let (json, sum, chain) = if last.len() == 64 {
        let (json, sum) = rest.rsplit_once('\t').ok_or(BadLine::NoChecksum)?;
        (json, sum, Some(last.to_owned()))
    } else {
        (rest, last, None)
    };
    Ok(Line {
        json: json.to_owned(),
        sum_ok: checksum(json) == sum,
        chain,
    })
}

/// One record as `status --verify` sees it: where it is, what it says, what is wrong with it.
#[derive(Debug)]
pub struct CheckedLine {
    /// 1-based.
    pub line: usize,
    pub record: Option<Record>,
    /// The chain digest written on the line.
    pub chain: Option<String>,
    /// What is wrong: edited, out of place, unreadable, or written before the chain.
    pub problem: Option<String>,
}

/// Checks every line of a journal on its own and against the line before it (for
/// `status --verify`: every problem, not only the first). A torn last line (no newline) is
/// returned apart, as loading drops it.
pub fn check_lines(bytes: &[u8]) -> (Vec<CheckedLine>, Option<usize>) {
    let mut out = Vec::new();
    let mut prev = GENESIS.to_owned();
    let mut chained = false;
    let mut pos = 0;
    let mut torn = None;
    while pos < bytes.len() {
        let line_no = out.len() + 1;
        let Some(n) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            torn = Some(line_no);
            break;
        };
        let text = &bytes[pos..pos + n];
        pos += n + 1;
        let mut c = CheckedLine {
            line: line_no,
            record: None,
            chain: None,
            problem: None,
        };
        match std::str::from_utf8(text)
            .map_err(|_| BadLine::NotUtf8)
            .and_then(split_line)
        {
            Err(e) => c.problem = Some(e.to_string()),
            Ok(l) => {
                c.record = serde_json::from_str(&l.json).ok();
                c.problem = if !l.sum_ok {
                    Some("checksum mismatch: the record was edited".into())
                } else if c.record.is_none() {
                    Some("unreadable record".into())
                } else {
                    match &l.chain {
                        None if chained => Some(
                            "a record without the hash chain after chained ones: records were edited or inserted"
                                .into(),
                        ),
                        None => Some(
                            "written before the hash chain (by an older rehost): it cannot be verified"
                                .into(),
                        ),
                        Some(d) if *d != chain(&prev, &l.json) => Some(
                            "the hash chain breaks here: a record before it was removed or moved, or this one was edited"
                                .into(),
                        ),
                        Some(_) => None,
                    }
                };
                if let Some(d) = &l.chain {
                    chained = true;
                    prev = d.clone();
                }
                c.chain = l.chain;
            }
        }
        out.push(c);
    }
    (out, torn)
}

/// Why a journal line does not read as the next record.
#[derive(Debug, thiserror::Error)]
pub enum BadLine {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("no checksum")]
    NoChecksum,
    #[error("checksum mismatch")]
    Checksum,
    #[error(
        "the hash chain breaks here (a record before it was removed or moved, or this one was edited)"
    )]
    ChainBreaks,
    #[error("a record without the hash chain after chained ones")]
    Unchained,
    #[error("unreadable record: {0}")]
    Unreadable(serde_json::Error),
    #[error("no newline at the end")]
    NoNewline,
    #[error("records run together at the end")]
    RunTogether,
}

fn decode_line(line: &str, prev: &str, chained: bool) -> Result<(Record, Option<String>), BadLine> {
    let l = split_line(line)?;
    if !l.sum_ok {
        return Err(BadLine::Checksum);
    }
    match &l.chain {
        Some(d) if *d != chain(prev, &l.json) => return Err(BadLine::ChainBreaks),
        None if chained => return Err(BadLine::Unchained),
        _ => {}
    }
    let record = serde_json::from_str(&l.json).map_err(BadLine::Unreadable)?;
    Ok((record, l.chain))
}

/// Parses journal bytes, recovering a torn last record. Pure, for tests and property tests.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded, JournalError> {
    let mut records = Vec::new();
    let mut pos = 0;
    let mut line_no = 0;
    let mut prev = GENESIS.to_owned();
    let mut head = None;
    let mut unchained = 0;
    while pos < bytes.len() {
        line_no += 1;
        let (line, next, complete) = match bytes[pos..].iter().position(|&b| b == b'\n') {
            Some(n) => (&bytes[pos..pos + n], pos + n + 1, true),
            None => (&bytes[pos..], bytes.len(), false),
        };
        let decoded = std::str::from_utf8(line)
            .map_err(|_| BadLine::NotUtf8)
            .and_then(|l| decode_line(l, &prev, head.is_some()));
        match decoded {
            Ok((r, chain)) if complete => {
                records.push(r);
                match chain {
                    Some(d) => {
                        prev = d.clone();
                        head = Some(d);
                    }
                    None => unchained += 1,
                }
            }
            // A torn write leaves a prefix of one record, without its newline. A last line
            // that holds a whole record before more bytes is two records run together:
            // corruption.
            Ok(_) | Err(_) if !complete && !holds_inner_record(line) => {
                let reason = match decoded {
                    Err(e) => e,
                    Ok(_) => BadLine::NoNewline,
                };
                return Ok(Loaded {
                    records,
                    torn: Some(format!(
                        "dropped a torn last record at line {line_no} of {} ({reason}); it was written when the run was killed",
                        path.display()
                    )),
                    good_len: pos,
                    head,
                    unchained,
                });
            }
            Ok(_) => {
                return Err(JournalError::JournalCorrupt {
                    path: path.to_owned(),
                    line: line_no,
                    reason: BadLine::RunTogether,
                });
            }
            Err(reason) => {
                return Err(JournalError::JournalCorrupt {
                    path: path.to_owned(),
                    line: line_no,
                    reason,
                });
            }
        }
        pos = next;
    }
    Ok(Loaded {
        records,
        torn: None,
        good_len: bytes.len(),
        head,
        unchained,
    })
}

/// Whether `line` holds a whole record's checksums followed by more bytes: a TAB and 16 hex
/// digits, then either a TAB and 64 hex digits, or (before the chain) anything but a TAB or a
/// hex digit.
fn holds_inner_record(line: &[u8]) -> bool {
    let hex = |s: &[u8]| s.iter().all(|c| c.is_ascii_hexdigit());
    line.iter().enumerate().any(|(i, &b)| {
        if b != b'\t' || line.len() <= i + 17 || !hex(&line[i + 1..i + 17]) {
            return false;
        }
        match line[i + 17] {
            b'\t' => {}
            // The first digits of a torn chain digest.
            c if c.is_ascii_hexdigit() => return false,
            _ => return true,
        }
        line.len() > i + 82 && hex(&line[i + 18..i + 82])
    })
}

/// The chain digest of the last record of a journal's bytes (`None` without chained records).
/// For reports: the digest printed today proves later that the journal up to it is unchanged.
pub fn head_of(bytes: &[u8], path: &Path) -> Result<Option<String>, JournalError> {
    Ok(parse(bytes, path)?.head)
}

impl Journal {
    /// Opens (creating it 0600 if needed, never through a symlink) the journal in the state
    /// directory, recovering a torn last record. Returns the journal and a warning if something
    /// was recovered.
    pub fn open(state: &PrivateDir) -> Result<(Journal, Option<String>), JournalError> {
        let path = state.path().join(JOURNAL);
        let werr = |source| JournalError::JournalWrite {
            path: path.clone(),
            source,
        };
        let mut file = match state
            .open_file(JOURNAL, true, false)
            .map_err(JournalError::from_private)?
        {
            Some(f) => f,
            None => {
                let f = state
                    .open_file(JOURNAL, true, true)
                    .map_err(JournalError::from_private)?
                    .expect("created");
                // Make the new file's directory entry durable too, or a crash could lose the
                // whole journal even though its records were fsynced.
                File::from(state.fd().try_clone().map_err(werr)?)
                    .sync_all()
                    .map_err(werr)?;
                f
            }
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(werr)?;
        let loaded = parse(&bytes, &path)?;
        if loaded.torn.is_some() {
            file.set_len(loaded.good_len as u64).map_err(werr)?;
            file.sync_all().map_err(werr)?;
        }
        Ok((
            Journal {
                path,
                file,
                records: loaded.records,
                head: loaded.head.clone().unwrap_or_else(|| GENESIS.to_owned()),
                unchained: loaded.unchained,
            },
            loaded.torn,
        ))
    }

    /// Reads a state directory's journal without changing it (for status and reports); no
    /// records when there is none.
    pub fn read(state: &PrivateDir) -> Result<Loaded, JournalError> {
        let path = state.path().join(JOURNAL);
        match state.read(JOURNAL).map_err(JournalError::from_private)? {
            Some(bytes) => parse(&bytes, &path),
            None => Ok(Loaded::default()),
        }
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The chain digest of the last record ([`GENESIS`] when there is none).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// How many records at the start were written before the hash chain.
    pub fn unchained(&self) -> usize {
        self.unchained
    }

    /// Appends a record and makes it durable before returning.
    pub fn append(&mut self, record: Record) -> Result<(), JournalError> {
        let (line, head) = encode(&record, &self.head);
        let werr = |source| JournalError::JournalWrite {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(werr)?;
        self.file.sync_data().map_err(werr)?;
        self.records.push(record);
        self.head = head;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
