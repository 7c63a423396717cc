//! The report's typed model: what `report.json` holds (docs/report.md documents it; bump
//! [`SCHEMA_VERSION`] on any change that is not an added field).

use crate::doc::Level;
use serde::Serialize;

pub const SCHEMA: &str = "rehost-report";
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub rehost_version: String,
    pub migration: Migration,
    /// `production` or the rehearsal environment's name.
    pub env: String,
    pub rehearsal: bool,
    pub verdict: Verdict,
    pub downtime: Downtime,
    pub run: Run,
    /// The plan's steps in checklist order, with what the plan says about them.
    pub checklist: Vec<ChecklistStep>,
    pub plan: PlanSection,
    /// Other runs of the same plan (production and rehearsals), side by side with this one.
    pub comparison: Vec<Comparison>,
    /// Each `[[keys]]` entry of the plan: whether a step carries it and what the last
    /// `verify-keys` step found of it on both sides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyStatus>,
    /// Each point of M 2.319: verified, finding, not applicable or not run, and why
    /// (`points.rs`; the fleet's matrix and the OSCAL export are these).
    pub points: Vec<super::points::Cell>,
}

/// A declared key in the report's Keys section.
#[derive(Clone, Debug, Serialize)]
pub struct KeyStatus {
    /// The `[[keys]]` id, its kind, host and paths as the plan declares them.
    pub key: String,
    pub kind: String,
    pub host: String,
    pub paths: Vec<String>,
    /// Why no step carries it to the new host (`key-not-carried`); `None`: a step does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_carried: Option<String>,
    /// The `verify-keys` step (and attempt) whose evidence the rows are; `None`: none ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
    /// Each key found at its paths, as that step recorded it.
    pub found: Vec<KeyRow>,
    /// `carried and present`, `not carried`, `missing`, … in one word or a few.
    pub verdict: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Migration {
    pub title: String,
    pub purpose: Option<String>,
    pub initiated_by: Vec<String>,
    pub implemented_by: Vec<String>,
    pub plan_file: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub level: Level,
    pub headline: String,
    /// Everything that made the verdict what it is, worst first.
    pub items: Vec<VerdictItem>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerdictItem {
    pub level: Level,
    /// `tampered`, `not_finished`, `step_failed`, `verification_failed`, `not_verified`,
    /// `still_down`,
    /// `over_budget`,
    /// `outside_window`, `decision`, `skipped`, `retried`, `rolled_back`, `journal_torn`,
    /// `plan_changed`, `preflight`, `warning`.
    pub kind: String,
    pub step: Option<String>,
    pub text: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Downtime {
    /// The downtime DECLARED by the steps (their `stops`/`starts` effects; not what clients
    /// saw): the sum of every outage, rolled-back attempts included (`rehost status` gives the
    /// same); `None` when none was recorded or one has not ended.
    pub declared_ms: Option<u64>,
    /// Each declared outage: from a service going down to every service serving again (a step
    /// that started it, or the rollback of the step that stopped it).
    pub outages: Vec<rehost_journal::Outage>,
    /// The downtime MEASURED by the prober (services with a `probe`): when a probed service
    /// answered on neither its old nor its new side; `None` when no service was probed.
    pub measured: Option<rehost_journal::Measured>,
    /// What the measurement does not cover, in words.
    pub not_measured: Vec<String>,
    pub budget_ms: Option<u64>,
    /// The figure compared with the budget: `measured` where services were probed, else
    /// `declared`.
    pub budget_basis: Option<String>,
    pub within_budget: Option<bool>,
    /// When the service first went down and when it last came back (`None` while down).
    pub down_at: Option<String>,
    pub up_at: Option<String>,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub within_window: Option<bool>,
}

/// A side of a probed service that became reachable or unreachable.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeChange {
    pub at: String,
    pub service: String,
    pub side: String,
    pub up: bool,
    pub detail: Option<String>,
}

/// When the prober ran (a run or a resume), what it sampled and how often.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeRun {
    pub started: String,
    /// `None`: it left no summary (killed, or still under way).
    pub stopped: Option<String>,
    pub samples: Option<u64>,
    pub targets: Vec<rehost_journal::journal::ProbeTarget>,
}

/// A load of the rehearsal's environment, from its start to its stop and, for the write load,
/// the check of its acknowledged writes on the new side.
#[derive(Clone, Debug, Serialize)]
pub struct LoadRun {
    pub id: String,
    /// `command` or `writes`.
    pub kind: String,
    pub started: String,
    /// The step it started before.
    pub before: String,
    /// `None`: no `load_stopped` (the run was killed while it ran).
    pub stopped: Option<String>,
    /// The step it was stopped after (`None`: stopped when the run ended, failed or stopped).
    pub after: Option<String>,
    pub reason: Option<String>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Kept files, relative to the state directory: a command's output, the acknowledged ids.
    pub output: Option<String>,
    pub acks: Option<String>,
    pub acknowledged: Option<u64>,
    pub errors: Option<u64>,
    pub first_error: Option<String>,
    pub check: Option<LoadCheck>,
}

/// A write load's acknowledged ids looked for on the database's new side.
#[derive(Clone, Debug, Serialize)]
pub struct LoadCheck {
    pub at: String,
    pub database: String,
    /// The service the HTTP write load wrote to (then `database` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub new_side: String,
    pub acknowledged: u64,
    pub found: u64,
    pub missing_total: u64,
    /// The first missing ids.
    pub missing: Vec<u64>,
    /// Why the new side could not be asked (then nothing was compared).
    pub error: Option<String>,
    pub not_compared: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Run {
    pub env: String,
    /// The first and the last record's time: the report says nothing about any other time.
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    /// The run's start records (one: a resume is recorded by its pre-flight).
    pub invocations: Vec<Invocation>,
    pub plan_digest: Option<String>,
    pub finished: Option<Finished>,
    pub steps: Vec<StepOutcome>,
    /// Every attempt of every step in journal order, superseded ones included.
    pub attempts: Vec<Attempt>,
    pub decisions: Vec<Decision>,
    pub preflights: Vec<Preflight>,
    pub rollbacks: Vec<Rollback>,
    pub supersessions: Vec<Supersession>,
    pub warnings: Vec<Note>,
    /// The sum of every declared outage (`rehost_journal::downtime`), as `downtime.declared_ms`.
    pub downtime_ms: Option<u64>,
    /// What the prober recorded: each side's changes, and when it ran.
    pub probe_changes: Vec<ProbeChange>,
    pub probe_runs: Vec<ProbeRun>,
    /// The environment's loads as they ran (`load_started`/`load_stopped`/`load_checked`).
    pub loads: Vec<LoadRun>,
    /// Every outage, as the report's `downtime.outages`.
    #[serde(skip)]
    pub downtime: rehost_journal::Downtime,
    /// BLAKE3 of the journal's bytes the report was made from, and how many records.
    pub journal_blake3: String,
    pub journal_records: usize,
    /// The hash chain's head: the digest of the last record, which `rehost status --verify
    /// --head` checks the journal still holds.
    pub journal_head: Option<String>,
    pub torn: Option<String>,
    /// The check of the hash chain and every kept file (as `rehost status --verify`).
    pub integrity: Option<Integrity>,
    #[serde(skip)]
    pub records: Vec<rehost_journal::Record>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Integrity {
    pub records: usize,
    /// Kept files (outputs, manifests, plan snapshots) checked against their digests.
    pub files: usize,
    /// Empty when everything verified; each names the journal line or the file.
    pub problems: Vec<String>,
    /// The signed head kept beside the journal (`journal.head`), as found without a key: what
    /// it signs and with what. `None` when the head is not signed: then the hash chain proves
    /// consistency, not authenticity.
    pub signature: Option<Signature>,
}

/// A signature of the journal's head, described (checking it needs the signer's key:
/// `rehost status --verify --allowed-signers FILE` or `--hmac-key FILE`).
#[derive(Clone, Debug, Serialize)]
pub struct Signature {
    /// The head digest it signs and the records that head stands for.
    pub head: String,
    pub records: usize,
    /// `ssh` (an SSH signature in `journal.head.sig`), `hmac` (in `journal.head.mac`).
    pub kinds: Vec<String>,
    /// Whether a record of the journal has that head (false: the journal was rewritten after
    /// it was signed).
    pub in_journal: bool,
    /// Whether it signs the journal's last record (false: records were appended after it, or
    /// the journal was rewritten after it was signed).
    pub covers_all: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Invocation {
    pub at: String,
    pub user: String,
    /// Where the operator sat (the ssh client's address when they came in over ssh), and the
    /// terminal, as the run recorded them.
    pub operator_host: Option<String>,
    pub terminal: Option<String>,
    pub version: String,
    pub plan_digest: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finished {
    pub at: String,
    pub ok: bool,
    pub summary: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepOutcome {
    pub id: String,
    /// `pending`, `interrupted`, `done`, `waiting_for_confirmation`, `failed`, `skipped`,
    /// `rolled_back`, `superseded`.
    pub status: String,
    pub attempts: u32,
    pub confirmed_by: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Attempt {
    pub id: String,
    pub attempt: u32,
    pub started: String,
    pub finished: Option<String>,
    /// `done`, `failed`, `skipped`, `interrupted`, `not_confirmed`; none while it ran.
    pub result: Option<String>,
    pub elapsed_ms: Option<u64>,
    pub detail: Option<String>,
    pub confirmed_by: Option<String>,
    pub exit_code: Option<i32>,
    /// Where the step's full output is kept (relative to the state directory).
    pub output: Option<Kept>,
    /// A rollback after it undid what it relied on; a later attempt ran again.
    pub superseded: bool,
    /// Its rollback ran: whether it succeeded.
    pub rolled_back: Option<bool>,
    pub verification: Option<Verification>,
    /// A `drain` step's clients: who was connected, who left when, who remained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<rehost_journal::step_data::DrainData>,
    /// A `scan-refs` step's lines that mention the old address or name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refs: Option<rehost_journal::step_data::ScanRefsData>,
    /// A `switch` step's record: the relay's pause, who drained, who was ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<rehost_journal::step_data::SwitchData>,
    /// A `dns-switch` step's update at the zone's primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_switch: Option<rehost_journal::step_data::DnsSwitchData>,
}

/// A file kept in the state directory, named relative to it, with its digest.
#[derive(Clone, Debug, Serialize)]
pub struct Kept {
    pub file: String,
    /// The file's size on disk when the report was made: `None` when it could not be read (the
    /// integrity check names why). Never a figure the journal gave: the file is the evidence.
    pub bytes: Option<u64>,
    /// The digest the journal recorded (the integrity check compares it with the file's).
    pub blake3: String,
}

impl Run {
    /// Every kept file the report names: outputs, verification manifests, rollback outputs.
    pub fn for_each_kept(&mut self, mut f: impl FnMut(&mut Kept)) {
        for a in &mut self.attempts {
            a.output.iter_mut().for_each(&mut f);
            if let Some(v) = &mut a.verification {
                v.manifests.iter_mut().for_each(&mut f);
            }
        }
        for rb in &mut self.rollbacks {
            for s in &mut rb.steps {
                s.output.iter_mut().for_each(&mut f);
            }
        }
    }
}

/// What a verification compared: which step kind's result it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationKind {
    /// A `verify-tree` step: a data set's two trees.
    Tree,
    /// A `verify-db` step: a database's two servers.
    Database,
    /// A `verify-files` step: single files on two hosts.
    Files,
    /// A `verify-keys` step: `[[keys]]` entries matched on the new host by fingerprint.
    Keys,
    /// A `dns-propagated` step: a name's new value on each of its DNS servers.
    Dns,
    /// A `dns-ttl` step: a name's lowered TTL on its authoritative servers, the old one expired.
    DnsTtl,
    /// A `verify-config` step: the configuration of two sides, key by key.
    Config,
    /// A `compat` step: the old and the new service's answers to the same requests.
    Compat,
    /// An `address-moved` step: the SSH host keys offered at an address against the new host's.
    Address,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// `tree` (a `verify-tree` step), `database` (a `verify-db` step), `files` (a
    /// `verify-files` step), `dns` (a `dns-propagated` step) or `dns_ttl` (a `dns-ttl` step).
    pub kind: VerificationKind,
    /// The data set's or the database's id.
    pub data_set: String,
    pub source: String,
    pub destination: String,
    /// 0 equal, 1 different, 2 not fully verified.
    pub exit_code: i64,
    pub tree: Option<TreeTotals>,
    pub database: Option<DbTotals>,
    /// Findings per class (missing, extra, content, mode, …); trees only.
    pub by_class: Vec<(String, u64)>,
    pub findings_total: u64,
    /// The first findings; the full list is in the step's output file.
    pub findings: Vec<Finding>,
    /// The source's and the destination's manifest (`bytes` 0: the journal keeps the digest).
    pub manifests: Vec<Kept>,
    pub warnings: Vec<String>,
    /// Trees: the copy's first entries that carry privilege on the new host (setuid, setgid,
    /// file capabilities, devices), and how many it has in all. Not findings.
    pub privileged: Vec<Privileged>,
    pub privileged_total: u64,
    /// Databases: what the verification did not compare (`None`: the run's rehost did not
    /// record it, before it listed its scope). The verdict holds for the rest only.
    pub not_compared: Option<Vec<String>>,
    /// Databases: the exercise of the copy (`exercise = true`), as the journal keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exercise: Option<rehost_journal::step_data::ExerciseData>,
    /// Trees: the data set's exclude patterns (what was not compared).
    pub excludes: Vec<String>,
    /// Trees: the paths the plan names (keys) that the excludes leave out: not verified.
    pub not_verified: Vec<NotVerified>,
    /// Files: the paths compared, as the plan lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Files: listed paths the original host does not have (nothing to compare them with).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// Keys: each key found at a `[[keys]]` entry's paths, by its public facts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyRow>,
    /// DNS: each server's last answer and when it first served the new value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<rehost_journal::step_data::DnsPropagatedData>,
    /// DNS TTL: each server's TTL, when the TTL was lowered and when the old one expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_ttl: Option<rehost_journal::step_data::DnsTtlData>,
    /// Configuration: what was compared, the differences and the allowed ones with both values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<rehost_journal::step_data::VerifyConfigData>,
    /// Compat: the answers compared per endpoint and field, the noise, what was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat: Option<rehost_journal::step_data::CompatData>,
}

/// A key of a `verify-keys` step: public facts only.
#[derive(Clone, Debug, Serialize)]
pub struct KeyRow {
    /// The `[[keys]]` id.
    pub key: String,
    /// `present`, `moved`, `missing`, `unidentified`.
    pub verdict: String,
    pub kind: String,
    pub algorithm: String,
    /// `SHA256:…` (OpenSSH) or `spki-sha256:…`.
    pub fingerprint: String,
    /// Its paths on the key's host and on the new host.
    pub old: Vec<String>,
    pub new: Vec<String>,
    /// A certificate's end of validity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Expired or expiring within 30 days of the step, on the new host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_warning: Option<String>,
    /// Where it is used: the configurations naming it (`PATH:LINE`) on each host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by_old: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by_new: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotVerified {
    /// As the plan writes it (absolute, on the source host).
    pub path: String,
    /// The `[[keys]]` entry that names it.
    pub key: String,
    /// The exclude pattern that leaves it out.
    pub exclude: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Privileged {
    pub path: String,
    /// `setuid file, mode 4755, uid 0, gid 0`, `block device 8:0, mode 660, uid 0, gid 6`.
    pub what: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TreeTotals {
    pub entries_a: u64,
    pub entries_b: u64,
    pub bytes_a: u64,
    pub bytes_b: u64,
    pub equal: u64,
    pub files_read: u64,
    pub trusted: u64,
    /// Of the files read, B's that were read side by side with A's file of the same path and
    /// compared piece by piece (B's BLAKE3 is A's where every piece was equal, else hashed from
    /// the first piece that differed).
    pub compared: u64,
    /// What the trusted digests rest on: the verification, or the built-in transfer's walk,
    /// that read them (`None` when none was trusted, or the journal predates it).
    pub trusted_from: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DbTotals {
    pub old_version: String,
    pub new_version: String,
    pub tables: u64,
    pub rows: u64,
    pub sequences: u64,
    pub objects: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub class: String,
    pub path: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    pub at: String,
    /// `accept-findings`, `accept-plan-change`, `skip-interrupted`, `retry-interrupted`,
    /// `ignore-window`, `yes`.
    pub what: String,
    pub detail: String,
    pub by: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Preflight {
    pub at: String,
    pub hosts: Vec<String>,
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rollback {
    pub at: String,
    /// The failed step that started it.
    pub failed: String,
    pub steps: Vec<RolledBackStep>,
    /// Every step the next run had to do again, in plan order: from the earliest step whose
    /// rollback ran through the failed one (rolled back, superseded or failed alike).
    pub again: Vec<String>,
    /// Those of them that a later attempt did run again.
    pub ran_again: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RolledBackStep {
    pub at: String,
    pub id: String,
    pub ok: bool,
    pub detail: Option<String>,
    pub output: Option<Kept>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Supersession {
    pub at: String,
    pub from: String,
    pub steps: Vec<String>,
    pub failed: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Note {
    pub at: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChecklistStep {
    pub index: usize,
    pub id: String,
    pub title: String,
    /// What the step does, commands redacted.
    pub does: String,
    pub host: Option<String>,
    pub manual: bool,
    pub needs_window: bool,
    pub point_of_no_return: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanSection {
    /// The digest the run recorded, and the digest of the text shown.
    pub run_digest: Option<String>,
    pub text_digest: String,
    /// Where the text comes from (the plan file, or the state directory's snapshot).
    pub origin: String,
    /// The plan text with credentials redacted.
    pub text: String,
}

/// Another run of the same plan, for the side-by-side table.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub env: String,
    pub finished: Option<Finished>,
    pub downtime_ms: Option<u64>,
    /// Per step of the checklist: the last attempt's result and time.
    pub steps: Vec<ComparedStep>,
    /// Steps with a failed attempt in that run.
    pub failed: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ComparedStep {
    pub id: String,
    pub result: Option<String>,
    pub elapsed_ms: Option<u64>,
    pub attempts: u32,
}
