//! The state directory as an archive: what the journal says is kept in it (step and rollback
//! outputs, evidence manifests, plan snapshots), the plan as run, and [`verify`], which checks
//! the journal's hash chain, every kept file's digest and the head's signature
//! (`rehost status --verify`).
//!
//! Everything here reads through the checked state directory ([`PrivateDir`]): no symlink is
//! followed, and a name in the journal that would leave the directory is refused.

use crate::JournalError;
use crate::journal::{JOURNAL, Record, check_lines};
use crate::signing::{Seal, Trust};
use rehost_tree::private::PrivateDir;
use std::fmt;

/// A file the journal says is kept in the state directory, with its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptFile {
    /// The journal line of the record that names it (1-based).
    pub line: usize,
    /// The step it belongs to, if any.
    pub step: Option<String>,
    /// Relative to the state directory.
    pub file: String,
    /// BLAKE3, 64 hex digits.
    pub blake3: String,
    /// A plan snapshot (not a step's nor a load's file).
    pub plan: bool,
}

/// The files a journal's records name: outputs, rollback outputs, evidence manifests and plan
/// snapshots, in journal order. `records` are `(line, record)`.
pub fn kept_files<'a>(records: impl IntoIterator<Item = (usize, &'a Record)>) -> Vec<KeptFile> {
    let mut out = Vec::new();
    for (line, r) in records {
        let mut push = |step: Option<&String>, file: &str, blake3: &str| {
            out.push(KeptFile {
                line,
                step: step.cloned(),
                file: file.to_owned(),
                blake3: blake3.to_owned(),
                plan: false,
            })
        };
        match r {
            Record::RunStarted {
                plan_digest,
                plan_file: Some(f),
                ..
            }
            | Record::PlanAccepted {
                plan_digest,
                plan_file: Some(f),
                ..
            }
            | Record::PlanSnapshot {
                plan_digest,
                plan_file: f,
                ..
            } => {
                push(None, f, plan_digest);
                if let Some(k) = out.last_mut() {
                    k.plan = true;
                }
            }
            Record::StepFinished {
                id,
                output,
                result_data,
                ..
            } => {
                if let Some(o) = output {
                    push(Some(id), &o.file, &o.blake3);
                }
                for e in result_data.iter().flat_map(|d| d.evidence()) {
                    push(Some(id), &e.file, &e.blake3);
                }
            }
            Record::RolledBack {
                id,
                output: Some(o),
                ..
            } => push(Some(id), &o.file, &o.blake3),
            Record::LoadStopped { output, acks, .. } => {
                for o in output.iter().chain(acks) {
                    push(None, &o.file, &o.blake3);
                }
            }
            _ => {}
        }
    }
    out
}

/// Reads a file of the state directory by its name in the journal (`output/0001-a.1.log`),
/// never through a symlink; `Ok(None)` when it is missing.
pub fn read_kept(state: &PrivateDir, file: &str) -> Result<Option<Vec<u8>>, KeptUnreadable> {
    let parts: Vec<&str> = file.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(KeptUnreadable::Outside);
    }
    let (name, dirs) = parts.split_last().expect("split yields one part");
    let mut owned;
    let mut dir = state;
    for d in dirs {
        match dir.subdir(d, false).map_err(KeptUnreadable::Io)? {
            Some(sub) => {
                owned = sub;
                dir = &owned;
            }
            None => return Ok(None),
        }
    }
    dir.read(name).map_err(KeptUnreadable::Io)
}

/// Why a kept file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeptUnreadable {
    #[error("the name leaves the state directory")]
    Outside,
    #[error("{0}")]
    Io(rehost_tree::private::PrivateError),
}

/// The plan text as run: the snapshot named by the last record that names one.
#[derive(Clone, Debug)]
pub struct PlanSnapshot {
    /// BLAKE3 of the text (the journal's `plan_digest`).
    pub digest: String,
    /// Relative to the state directory (`plans/<digest>.toml`).
    pub file: String,
    pub text: String,
}

/// The plan text in force at the end of the journal, read from its snapshot and checked against
/// the digest the journal recorded. `Ok(None)` when no record names a snapshot (a journal from
/// before snapshots, or none at all).
pub fn plan_snapshot(
    state: &PrivateDir,
    records: &[Record],
) -> Result<Option<PlanSnapshot>, JournalError> {
    let numbered = records.iter().enumerate().map(|(i, r)| (i + 1, r));
    let Some(last) = kept_files(numbered).into_iter().rfind(|k| k.plan) else {
        return Ok(None);
    };
    let broken = |reason: String| JournalError::Snapshot {
        file: state.path().join(&last.file),
        reason,
    };
    let bytes = read_kept(state, &last.file)
        .map_err(|e| broken(e.to_string()))?
        .ok_or_else(|| broken("it is missing".into()))?;
    if blake3::hash(&bytes).to_hex().as_str() != last.blake3 {
        return Err(broken(
            "its digest differs from the one the journal recorded".into(),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| broken("it is not UTF-8".into()))?;
    Ok(Some(PlanSnapshot {
        digest: last.blake3,
        file: last.file,
        text,
    }))
}

/// Something `verify` found wrong, naming the record or the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The journal line concerned (1-based): the record that is wrong or names the file.
    pub line: Option<usize>,
    /// The step the record is about.
    pub step: Option<String>,
    /// The file concerned, relative to the state directory.
    pub file: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut about = Vec::new();
        if let (Some(line), Some(_)) = (self.line, &self.file) {
            about.push(format!("journal line {line}"));
        }
        if let Some(s) = &self.step {
            about.push(format!("step `{s}`"));
        }
        match (&self.file, self.line) {
            (Some(file), _) => write!(f, "{file}")?,
            (None, Some(line)) => write!(f, "journal line {line}")?,
            (None, None) => write!(f, "journal")?,
        }
        if !about.is_empty() {
            write!(f, " ({})", about.join(", "))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Verification {
    /// The chain digest of the last record.
    pub head: Option<String>,
    /// Records read.
    pub records: usize,
    /// Kept files checked.
    pub files: usize,
    /// Empty when everything verified.
    pub problems: Vec<Problem>,
    /// What does not make the state directory wrong but should be known (a torn last line).
    pub warnings: Vec<String>,
    /// The size on disk of each kept file that could be read, by its name: what a report
    /// prints, taken from the file it describes.
    pub sizes: std::collections::BTreeMap<String, u64>,
    /// The signed head kept beside the journal (`journal.head`), if any.
    pub seal: Option<Seal>,
    /// What the signature proved, checked against the keys given (empty when none was given,
    /// or it did not hold: then `problems` says why).
    pub authenticated: Vec<String>,
    /// Each journal line's chain digest, in order.
    #[serde(skip)]
    pub chains: Vec<Option<String>>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The journal line (1-based) whose chain digest is `head`.
    pub fn chain_line(&self, head: &str) -> Option<usize> {
        self.chains
            .iter()
            .position(|c| c.as_deref() == Some(head))
            .map(|i| i + 1)
    }
}

/// The step a record is about, for naming it.
fn step_of(r: &Record) -> Option<&String> {
    match r {
        Record::StepStarted { id, .. }
        | Record::StepFinished { id, .. }
        | Record::RolledBack { id, .. } => Some(id),
        Record::RollbackStarted { failed, .. } => Some(failed),
        _ => None,
    }
}

/// Checks a state directory: every journal record against its checksum and the record before
/// it (the hash chain), every file the records name against the digest they recorded, and, with
/// `expected_head` (a head digest printed earlier, in a report), that the journal still holds
/// that record, so nothing up to it changed. Removing records at the end is only detected that
/// way: without the head printed earlier, a shorter journal is still a valid chain.
pub fn verify(
    state: &PrivateDir,
    expected_head: Option<&str>,
) -> Result<Verification, JournalError> {
    verify_with(state, expected_head, &Trust::default())
}

/// [`verify`], and the head's signature (`journal.head` and what signs it) against `trust`:
/// with a key, a signature that is missing, does not verify, or does not cover every record is a
/// problem; without one, a signed head that no record has still is (the journal was rewritten
/// after it was signed), and the signature is otherwise only described.
pub fn verify_with(
    state: &PrivateDir,
    expected_head: Option<&str>,
    trust: &Trust,
) -> Result<Verification, JournalError> {
    let bytes = state
        .read(JOURNAL)
        .map_err(JournalError::from_private)?
        .unwrap_or_default();
    let (lines, torn) = check_lines(&bytes);
    let mut v = Verification {
        records: lines.len(),
        head: lines.last().and_then(|l| l.chain.clone()),
        ..Default::default()
    };
    if let Some(line) = torn {
        v.warnings.push(format!(
            "journal line {line} is a torn last record (the run was killed while writing it; the next `rehost run` drops it)"
        ));
    }
    // Records from before the chain can only come first (loading refuses them after chained
    // ones); they are reported once, as a range.
    let unchained: Vec<usize> = lines
        .iter()
        .take_while(|l| l.chain.is_none() && l.record.is_some())
        .map(|l| l.line)
        .collect();
    if let (Some(first), Some(last)) = (unchained.first(), unchained.last()) {
        v.problems.push(Problem {
            line: Some(*first),
            step: None,
            file: None,
            message: format!(
                "journal lines {first} to {last} were written by an older rehost, before the hash chain: they cannot be verified"
            ),
        });
    }
    for l in &lines {
        if let Some(p) = &l.problem
            && !unchained.contains(&l.line)
        {
            v.problems.push(Problem {
                line: Some(l.line),
                step: l.record.as_ref().and_then(step_of).cloned(),
                file: None,
                message: p.clone(),
            });
        }
    }
    if let Some(h) = expected_head
        && !lines.iter().any(|l| l.chain.as_deref() == Some(h))
    {
        v.problems.push(Problem {
            line: None,
            step: None,
            file: None,
            message: format!(
                "no record has the head digest {h}: the journal was changed since that head was recorded (records up to it were changed or removed)"
            ),
        });
    }
    let kept = kept_files(
        lines
            .iter()
            .filter_map(|l| l.record.as_ref().map(|r| (l.line, r))),
    );
    v.files = kept.len();
    for k in kept {
        let message = match read_kept(state, &k.file) {
            Err(e) => Some(format!("cannot be read: {e}")),
            Ok(None) => Some("missing".to_owned()),
            Ok(Some(b)) => {
                v.sizes.insert(k.file.clone(), b.len() as u64);
                (blake3::hash(&b).to_hex().as_str() != k.blake3).then(|| {
                    format!(
                        "its digest {} differs from the {} the journal recorded: the file was changed",
                        blake3::hash(&b).to_hex(),
                        k.blake3
                    )
                })
            }
        };
        if let Some(message) = message {
            v.problems.push(Problem {
                line: Some(k.line),
                step: k.step,
                file: Some(k.file),
                message,
            });
        }
    }
    v.chains = lines.iter().map(|l| l.chain.clone()).collect();
    let sealed = crate::signing::check(state, &v.chains, trust);
    v.seal = sealed.seal;
    v.authenticated = sealed.authenticated;
    v.warnings.extend(sealed.notes);
    for (file, message) in sealed.problems {
        v.problems.push(Problem {
            line: None,
            step: None,
            file: Some(file),
            message,
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal from an archive may be hostile: the names it gives for kept files are read
    /// beneath the state directory only, never through `..`, an absolute path or a symlink.
    #[test]
    fn kept_files_named_by_a_hostile_journal_are_read_beneath_the_state_directory_only() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let root = tempfile::tempdir().unwrap();
        let state_path = root.path().join("state");
        let state = PrivateDir::open(&state_path, true).unwrap().unwrap();
        std::fs::create_dir(state_path.join("plans")).unwrap();
        std::fs::write(state_path.join("plans/ok.toml"), "inside").unwrap();
        let secret = outside.path().join("secret");
        std::os::unix::fs::symlink(&secret, state_path.join("plans/link.toml")).unwrap();
        std::os::unix::fs::symlink(outside.path(), state_path.join("evidence")).unwrap();

        assert_eq!(
            read_kept(&state, "plans/ok.toml").unwrap().unwrap(),
            b"inside"
        );
        let up = format!("../../{}", secret.display());
        for name in [
            up.as_str(),
            "plans/../../secret",
            "/etc/passwd",
            "plans//ok.toml",
            "./plans/ok.toml",
        ] {
            let err = read_kept(&state, name).unwrap_err();
            assert!(matches!(err, KeptUnreadable::Outside), "{name}: {err}");
        }
        // Through a symlinked file or directory: refused, never the outside content.
        for name in ["plans/link.toml", "evidence/secret"] {
            let got = read_kept(&state, name);
            assert!(got.is_err(), "{name} was not refused: {got:?}");
        }
    }

    #[test]
    fn a_problem_names_the_file_the_line_and_the_step() {
        let p = |line, step: Option<&str>, file: Option<&str>| {
            Problem {
                line,
                step: step.map(Into::into),
                file: file.map(Into::into),
                message: "missing".into(),
            }
            .to_string()
        };
        assert_eq!(
            p(Some(5), Some("a"), Some("output/0001-a.1.log")),
            "output/0001-a.1.log (journal line 5, step `a`): missing"
        );
        assert_eq!(
            p(Some(1), None, Some("plans/x.toml")),
            "plans/x.toml (journal line 1): missing"
        );
        assert_eq!(
            p(Some(3), Some("a"), None),
            "journal line 3 (step `a`): missing"
        );
        assert_eq!(p(None, None, None), "journal: missing");
    }
}
