//! The journal: an append-only, checksummed record of a run.
//!
//! # Format
//!
//! One record per line: the record as a JSON object, a TAB, the first 16 hex digits of the
//! BLAKE3 hash of the JSON text, and a newline:
//!
//! ```text
//! {"type":"step_started","at":"2026-12-05T21:03:11Z","id":"stop-old","attempt":1}\t3f9a0c1d2e4b5a69
//! ```
//!
//! Every append is followed by `fsync`, so a record is on disk before the engine acts on it:
//! `step_started` is durable before a step runs, `step_finished` before the next begins.
//!
//! # Recovery
//!
//! A process killed mid-append leaves a torn last line (no newline, or a checksum that does not
//! match). That line is dropped with a warning: it recorded nothing that had been acted on yet.
//! A bad line with good lines after it is not a torn write but corruption; the journal then
//! refuses to load and nothing runs.

use crate::EngineError;
use crate::events::StepResult;
use rehost_tree::private::PrivateDir;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
    },
    /// The operator accepted a changed plan; these digests hold from now on.
    PlanAccepted {
        at: String,
        plan_digest: String,
        steps: Vec<(String, String)>,
        by: String,
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
        /// A verification's typed result (totals, findings, manifest digest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result_data: Option<serde_json::Value>,
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
}

pub struct Journal {
    path: PathBuf,
    file: File,
    records: Vec<Record>,
}

/// The checksum of one record's JSON text.
fn checksum(json: &str) -> String {
    blake3::hash(json.as_bytes()).to_hex()[..16].to_string()
}

/// Encodes a record as one journal line (with its newline).
pub fn encode(record: &Record) -> String {
    let json = serde_json::to_string(record).expect("records serialize");
    format!("{json}\t{}\n", checksum(&json))
}

/// What loading a journal found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// Set when a torn last record was dropped.
    pub torn: Option<String>,
    /// The length of the good prefix, in bytes.
    pub good_len: usize,
}

fn decode_line(line: &str) -> Result<Record, String> {
    let (json, sum) = line.rsplit_once('\t').ok_or("no checksum")?;
    if checksum(json) != sum {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("unreadable record: {e}"))
}

/// Parses journal bytes, recovering a torn last record. Pure, for tests and property tests.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded, EngineError> {
    let mut records = Vec::new();
    let mut pos = 0;
    let mut line_no = 0;
    while pos < bytes.len() {
        line_no += 1;
        let (line, next, complete) = match bytes[pos..].iter().position(|&b| b == b'\n') {
            Some(n) => (&bytes[pos..pos + n], pos + n + 1, true),
            None => (&bytes[pos..], bytes.len(), false),
        };
        let decoded = std::str::from_utf8(line)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(decode_line);
        match decoded {
            Ok(r) if complete => records.push(r),
            // A torn write leaves a prefix of one record. A last line that holds a whole
            // record's checksum before more bytes is two records run together: corruption.
            Ok(_) | Err(_) if next >= bytes.len() && !holds_inner_checksum(line) => {
                let reason = match decoded {
                    Err(e) => e,
                    Ok(_) => "no newline at the end".into(),
                };
                return Ok(Loaded {
                    records,
                    torn: Some(format!(
                        "dropped a torn last record at line {line_no} of {} ({reason}); it was written when the run was killed",
                        path.display()
                    )),
                    good_len: pos,
                });
            }
            Ok(_) => {
                return Err(EngineError::JournalCorrupt {
                    path: path.to_owned(),
                    line: line_no,
                    reason: "records run together at the end".into(),
                });
            }
            Err(reason) => {
                return Err(EngineError::JournalCorrupt {
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
    })
}

/// Whether `line` contains `\t` and 16 hex digits followed by more bytes.
fn holds_inner_checksum(line: &[u8]) -> bool {
    line.iter().enumerate().any(|(i, &b)| {
        b == b'\t'
            && line.len() > i + 17
            && line[i + 1..i + 17].iter().all(|c| c.is_ascii_hexdigit())
    })
}

impl Journal {
    /// Opens (creating it 0600 if needed, never through a symlink) the journal in the state
    /// directory, recovering a torn last record. Returns the journal and a warning if something
    /// was recovered.
    pub fn open(state: &PrivateDir) -> Result<(Journal, Option<String>), EngineError> {
        let path = state.path().join(JOURNAL);
        let werr = |source| EngineError::JournalWrite {
            path: path.clone(),
            source,
        };
        let mut file = match state
            .open_file(JOURNAL, true, false)
            .map_err(EngineError::from_private)?
        {
            Some(f) => f,
            None => {
                let f = state
                    .open_file(JOURNAL, true, true)
                    .map_err(EngineError::from_private)?
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
            },
            loaded.torn,
        ))
    }

    /// Reads a state directory's journal without changing it (for status and reports); no
    /// records when there is none.
    pub fn read(state: &PrivateDir) -> Result<Loaded, EngineError> {
        let path = state.path().join(JOURNAL);
        match state.read(JOURNAL).map_err(EngineError::from_private)? {
            Some(bytes) => parse(&bytes, &path),
            None => Ok(Loaded {
                records: Vec::new(),
                torn: None,
                good_len: 0,
            }),
        }
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Appends a record and makes it durable before returning.
    pub fn append(&mut self, record: Record) -> Result<(), EngineError> {
        let line = encode(&record);
        let werr = |source| EngineError::JournalWrite {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(werr)?;
        self.file.sync_data().map_err(werr)?;
        self.records.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
