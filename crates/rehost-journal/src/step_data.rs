//! Typed step results: what each step kind records in its `step_finished` record
//! (`result_data`), one versioned enum.
//!
//! Each variant carries `v`, the version of its fields ([`STEP_DATA_VERSION`] when written).
//! Adding an optional field keeps the version; changing or removing one raises it, and readers
//! keep reading every earlier version. Records written before the results were typed (no
//! `kind`) load as [`StepData::Legacy`], which the report reads by their old shape; a kind
//! this rehost does not know (a newer rehost's) as [`StepData::Newer`], which nothing reads as
//! evidence: a verification recorded that way counts as not verified. Every reader matches the
//! variants exhaustively, so a new kind's result without its reader is a compile error.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version of the step result fields this rehost writes.
pub const STEP_DATA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq)]
pub enum StepData {
    /// `verify-tree`: the comparison of both ends of a data set (boxed: it is the largest).
    VerifyTree(Box<VerifyTreeData>),
    /// `sync`: the transfer of a data set.
    Sync(SyncData),
    /// `run`: the command's exit status.
    Run(CommandData),
    /// `stop`, `start`, `health`: what was done to which service.
    Service(ServiceData),
    /// `verify-db`: the comparison of a database on both ends.
    VerifyDb(Box<VerifyDbData>),
    /// `verify-files`: single files compared on both hosts.
    VerifyFiles(Box<VerifyFilesData>),
    /// `verify-keys`: `[[keys]]` entries matched on the new host by fingerprint.
    VerifyKeys(Box<VerifyKeysData>),
    /// `drain`: who was connected to a service, who left when, who remained.
    Drain(DrainData),
    /// `switch`: a `rehost hold` relay moved to another upstream: the pause, who was drained,
    /// who was ended.
    Switch(Box<SwitchData>),
    /// `dns-propagated`: what each server of a name served, and since when the new value.
    DnsPropagated(Box<DnsPropagatedData>),
    DnsSwitch(Box<DnsSwitchData>),
    /// `dns-ttl`: the TTL each authoritative server serves, and when the old TTL expired.
    DnsTtl(Box<DnsTtlData>),
    /// `verify-config`: the configuration of both sides compared, key by key.
    VerifyConfig(Box<VerifyConfigData>),
    /// `compat`: old and new service compared on the same requests, per endpoint and field.
    Compat(Box<CompatData>),
    /// `watch-old`: the old side's manifest taken and kept, to re-check at the end of the run.
    WatchOld(WatchOldData),
    /// `retire-old`: the old service checked stopped and disabled, its data kept read-only.
    RetireOld(Box<RetireOldData>),
    /// `address-moved`: the host keys offered at an address against those of the hosts.
    AddressMoved(Box<AddressMovedData>),
    /// `scan-refs`: the lines found that mention the old address or name.
    ScanRefs(Box<ScanRefsData>),
    /// A result without a `kind`: written before results were typed. Kept as it was read.
    Legacy(serde_json::Value),
    /// A result of a kind this rehost does not know: written by a newer rehost. Kept as it
    /// was read, never taken for evidence.
    Newer {
        kind: String,
        value: serde_json::Value,
    },
}

/// Where a piece of evidence is kept in the state directory, with its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// `source` or `destination` for a verification's manifests.
    pub side: String,
    /// Relative to the state directory, e.g. `evidence/verify.2-source.manifest`.
    pub file: String,
    /// BLAKE3 of the file's bytes, 64 hex digits.
    pub blake3: String,
}

/// `watch-old`: the old side of a data set, walked and kept as evidence for the end-of-run
/// re-check (`old_side_rechecked` records).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchOldData {
    pub v: u32,
    pub data_set: String,
    /// The old host's name and the tree's path there.
    pub host: String,
    pub path: String,
    /// How many entries the walk found.
    pub entries: u64,
    /// The kept manifest (`side` is `source`).
    pub manifest: EvidenceRef,
    /// The data set's exclude patterns: not watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
}

/// `retire-old`: how the old service was found stopped and disabled, and what keeping its
/// data read-only changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetireOldData {
    pub v: u32,
    pub service: String,
    /// The host the service was checked on.
    pub host: String,
    /// Each check that found it stopped: `health command exited 1`, `port 8080: refused`.
    pub stopped: Vec<String>,
    /// The `disable` command's exit code (absent: the plan gives none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_exit: Option<i32>,
    /// The `disabled_check` command's exit code (0: it will not start at the next boot).
    pub disabled_check_exit: Option<i32>,
    /// The old tree kept read-only, when the step names a data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnlyData>,
}

/// What making a tree read-only did (`rehost_host::retire`), and how long it is to stay so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnlyData {
    pub data_set: String,
    pub host: String,
    pub path: String,
    /// Entries walked (symlinks not), entries changed, entries already without a write bit.
    pub entries: u64,
    pub changed: u64,
    pub already: u64,
    /// Symlinks (not followed, not changed) and hard-linked files (their other names share
    /// the mode).
    pub symlinks: u64,
    pub linked: u64,
    /// Mount points below the root: not entered, not changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_fs: Vec<String>,
    /// What the second walk found still writable, and entries that could not be changed.
    pub still_writable: u64,
    pub errors: u64,
    /// The changes, one JSON line each (`rehost_host::retire::ModeChange`): what the rollback
    /// sets back.
    pub modes: EvidenceRef,
    /// The retention, in seconds, and the time it ends (RFC 3339, UTC).
    pub retention_secs: u64,
    pub until: String,
}

/// One finding of a verification, as kept in the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingData {
    /// The class name (`missing`, `content`, `mtime`, …; see docs/tree.md).
    pub class: String,
    /// The path relative to the data set's roots (lossy UTF-8).
    pub path: String,
    /// The path's bytes in hex when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// What the source has (or why it was not verified).
    pub a: String,
    /// What the destination has.
    pub b: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyTreeData {
    #[serde(default)]
    pub v: u32,
    pub data_set: String,
    /// `HOST:PATH` of the source and the destination.
    pub source: String,
    pub destination: String,
    /// 0 equal, 1 different, 2 not fully verified (as `rehost verify tree`).
    pub exit_code: i32,
    pub totals: rehost_tree::Totals,
    #[serde(default)]
    pub ignored: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The first findings (at most 100); the full list is in the step's output.
    pub findings: Vec<FindingData>,
    pub findings_total: u64,
    /// Both manifests, kept as evidence.
    pub manifests: Vec<EvidenceRef>,
    /// The first of the destination's privileged entries (setuid, setgid, file capabilities,
    /// devices: `rehost_tree::Privileged`), at most 100; not findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileged: Vec<PrivilegedData>,
    #[serde(default)]
    pub privileged_total: u64,
    /// What the digests it trusted rest on (`totals.trusted` > 0): the verification or the
    /// built-in transfer whose walk read them, e.g. "the walk of the built-in transfer in sync
    /// `final` (attempt 2), whose digests are not a verification's".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_from: Option<String>,
    /// The paths the plan names (keys) under the data set's root that its excludes leave out:
    /// not compared, never counted as verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_verified: Vec<ExcludedData>,
}

/// A path the plan names that a data set's exclude leaves out of its verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedData {
    /// As the plan writes it (absolute, on the source host).
    pub path: String,
    /// The `[[keys]]` entry that names it.
    pub key: String,
    /// The exclude pattern that leaves it (or a parent directory) out.
    pub exclude: String,
}

/// An entry of the copy that carries privilege on the new host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegedData {
    /// The path relative to the data set's root (lossy UTF-8).
    pub path: String,
    /// The path's bytes in hex when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// What gives it privilege: `setuid file, mode 4755, uid 0, gid 0`.
    pub what: String,
}

/// A `verify-files` step's comparison of single files on two hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyFilesData {
    #[serde(default)]
    pub v: u32,
    /// The plan's host names: the originals' and the copies'.
    pub from: String,
    pub to: String,
    /// The paths compared, as the plan lists them (absolute).
    pub paths: Vec<String>,
    /// 0 equal, 1 different, 2 not fully verified (as `rehost verify tree`).
    pub exit_code: i32,
    /// Of the listed entries only (not the directories on the way).
    pub totals: rehost_tree::Totals,
    /// The first findings (at most 100).
    pub findings: Vec<FindingData>,
    pub findings_total: u64,
    /// Listed paths the `from` host does not have: nothing to compare them with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// What was not compared (the modification time, …), in words.
    pub not_compared: Vec<String>,
    /// Both manifests (the listed entries and the directories leading to them), kept as
    /// evidence.
    pub manifests: Vec<EvidenceRef>,
}

/// A `verify-keys` step's result: public facts only (kinds, algorithms, fingerprints, paths,
/// modes), never a byte of a private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyKeysData {
    #[serde(default)]
    pub v: u32,
    /// The plan's host that must hold the keys, and where it was searched.
    pub to: String,
    pub search: Vec<String>,
    pub keys: Vec<KeyEntryData>,
    /// Paths either side could not read, prefixed with the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// 0 every key present, 1 one missing or a problem on `to`, 2 not fully verified.
    pub exit_code: i32,
    /// What was not checked, in words.
    pub not_compared: Vec<String>,
}

/// A `verify-config` step's result: what was compared, each difference and each allowed
/// difference with its sources (`FILE:LINE`), never a secret's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyConfigData {
    #[serde(default)]
    pub v: u32,
    /// The sides as read: `old:/etc/nginx`, `` `nginx -T` on old ``, `old:postgres://…`.
    pub old: String,
    pub new: String,
    /// The `[[databases]]` id, for a database's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The formats each side was read as.
    pub old_formats: Vec<String>,
    pub new_formats: Vec<String>,
    /// Keys, equal keys, differences, allowed differences, secret keys.
    pub comparison: rehost_config::Comparison,
    /// 0 equal after the allowed differences, 1 differences.
    pub exit_code: i32,
    /// What was not compared, in words.
    pub not_compared: Vec<String>,
}

/// One `[[keys]]` entry of a `verify-keys` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntryData {
    pub id: String,
    /// Its host and paths, as the plan declares them.
    pub host: String,
    pub paths: Vec<String>,
    /// Each key found at its paths, with where it is on `to` (`present`, `moved`, `missing`,
    /// `unidentified`).
    pub found: Vec<rehost_keys::Compared>,
    /// What is wrong on `to` with the keys found there (a private key readable by others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<rehost_keys::Problem>,
    /// What is about to go wrong on `to` with the keys found there: a certificate expired or
    /// expiring within 30 days of the step (shown, not failed on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<rehost_keys::Problem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncData {
    #[serde(default)]
    pub v: u32,
    pub data_set: String,
    /// `builtin` or `rsync`.
    pub method: String,
    /// The built-in transfer's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<SyncCounts>,
    /// Where rsync ran (`rsync on new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub bytes_copied: u64,
    /// Entries that could not be transferred (listed in the step's output).
    pub errors: u64,
}

/// A command's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandData {
    #[serde(default)]
    pub v: u32,
    /// `None` when the command was ended by a signal.
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceData {
    #[serde(default)]
    pub v: u32,
    /// The service's id in the plan.
    pub service: String,
    /// `stop`, `start` or `health`.
    pub action: String,
    pub host: String,
    /// The declared command's exit status (`stop`, `start`, and `health` with a health
    /// command: the last check's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `health`: how many checks were made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<u32>,
}

/// A `drain` step's record of the clients of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainData {
    #[serde(default)]
    pub v: u32,
    /// The service's id in the plan.
    pub service: String,
    pub host: String,
    pub ports: Vec<u16>,
    /// No established connection remained at the last listing.
    pub drained: bool,
    /// From the first listing to the last.
    pub waited_ms: u64,
    /// How many listings were made.
    pub polls: u32,
    /// Every distinct client seen, in the order first seen (at most 10,000).
    pub clients: Vec<DrainClient>,
    /// Distinct clients past that bound, counted only.
    #[serde(default)]
    pub untracked: u64,
    /// The step was asked to end the clients still connected at its timeout (`terminate`);
    /// what became of each is its `ended`. Absent (false) in results written before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminate: bool,
    /// The service's listening Unix sockets waited for too (absent: none, or written before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sockets: Vec<String>,
    /// Every distinct connection seen on those sockets, in the order first seen (at most
    /// 10,000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unix_clients: Vec<DrainUnixClient>,
}

/// A connection to a drained service's Unix socket: the client's process, the service's end,
/// when it was first seen and when it left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainUnixClient {
    /// The listening socket's path (escaped for display).
    pub socket: String,
    /// The service's end: its inode.
    pub inode: u64,
    /// The client's process, where the host let rehost see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_command: Option<String>,
    /// The process holding the service's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Milliseconds from the first listing (0: connected at the start).
    pub first_seen_ms: u64,
    /// Milliseconds from the first listing to the first one without it; absent: still
    /// connected at the last listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<u64>,
    /// With `terminate`: what became of it when rehost ended it at the timeout (as for a TCP
    /// client; the mechanism is always `pidfd_shutdown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DrainEnded>,
}

/// What rehost did to a client still connected at a `terminate` drain's timeout, as the
/// host's kernel listed it afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainEnded {
    /// Milliseconds from the first listing to the ending.
    pub at_ms: u64,
    /// `ended` (ended by rehost by `mechanism`, and the next listing no longer had it), `left`
    /// (it closed by itself before rehost could end it), `remained` (still listed: to be
    /// ended by hand; `why`), or `interrupted` (the run was interrupted while rehost was ending
    /// it, before a listing showed what became of it; `why`).
    pub result: String,
    /// `sock_destroy` or `pidfd_shutdown`, for an ended one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// An `address-moved` step's record: who answered at the address, by SSH host key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressMovedData {
    #[serde(default)]
    pub v: u32,
    /// `IP:PORT` asked.
    pub address: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// OpenSSH `SHA256:` fingerprints of the host keys offered at the address (`ssh-keyscan`).
    pub offered: Vec<String>,
    /// Those read on `to` and on `from` at the step's `host_keys`.
    pub to_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_keys: Vec<String>,
    /// Every key offered is `to`'s, at least one was, none is `from`'s, and the two hosts'
    /// keys differ.
    pub moved: bool,
}

/// A `scan-refs` step's record: what was looked for where, and the lines found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRefsData {
    #[serde(default)]
    pub v: u32,
    /// The addresses and names looked for, normalised.
    pub find: Vec<String>,
    /// The `[[clients]]` ids the step speaks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
    pub require_none: bool,
    /// One per `HOST:PATH`, in the plan's order.
    pub scans: Vec<RefsScanned>,
}

/// One `HOST:PATH` of a `scan-refs` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefsScanned {
    pub host: String,
    pub path: String,
    /// Regular files searched to their end, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Files skipped as binary, symlinks not followed.
    pub binary: u64,
    pub symlinks: u64,
    /// The lines found (at most 1,000 kept; `found_total` counts all).
    pub found: Vec<RefLine>,
    pub found_total: u64,
    /// The host stopped at its bound of lines: more may mention them.
    #[serde(default)]
    pub truncated: bool,
    /// What could not be read (not searched), or why the path could not be scanned at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A line that mentions something looked for. Its text is the host's: escaped where shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefLine {
    pub path: String,
    pub line: u64,
    /// Which of the step's `find` the line mentions.
    pub find: Vec<String>,
    pub text: String,
}

/// A `switch` step's record: what the hold reported about its switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchData {
    #[serde(default)]
    pub v: u32,
    /// The relay's listening address (`IP:PORT`).
    pub hold: String,
    /// The upstream before the switch.
    pub from: String,
    /// The upstream asked for.
    pub to: String,
    /// The upstream new connections went to when the step ended.
    pub now: String,
    /// `now` is `to`.
    pub switched: bool,
    /// The time box, in milliseconds.
    pub timeout_ms: u64,
    /// Accept was paused (false: already there, or the new upstream was down first).
    pub paused: bool,
    /// How long accept was paused, in milliseconds: no new client waited longer.
    pub paused_ms: u64,
    /// Clients waiting in the kernel's backlog when accept resumed.
    pub queued: u32,
    /// Relayed connections to the old upstream open when accept was paused.
    pub open_at_pause: u32,
    /// Of those, the ones that ended by themselves before the drain deadline.
    pub drained: u32,
    /// Those, named with when each left (at most 1,000 named; absent in journals written
    /// before it was recorded).
    #[serde(default)]
    pub left: Vec<SwitchLeft>,
    /// The drain deadline, milliseconds after the pause began.
    pub drain_deadline_ms: u64,
    /// The connections the hold shut down at the drain deadline (at most 1,000 named).
    pub ended: Vec<SwitchEnded>,
    /// How many it shut down in all.
    pub ended_count: u32,
}

/// A relayed connection a `switch` ended at its drain deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchEnded {
    /// The client's `ADDR:PORT`.
    pub client: String,
    /// The upstream it was relayed to.
    pub upstream: String,
    /// How long it had been open, in milliseconds.
    pub age_ms: u64,
}

/// A relayed connection to the old upstream, open when a `switch` paused, that ended by itself
/// before the drain deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchLeft {
    /// The client's `ADDR:PORT`.
    pub client: String,
    /// The upstream it was relayed to.
    pub upstream: String,
    /// When it ended, in milliseconds after the pause began.
    pub after_ms: u64,
}

/// A client of a drained service: when it was first seen and when it left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainClient {
    /// `ADDR:PORT` (`[ADDR]:PORT` for IPv6).
    pub peer: String,
    pub local_port: u16,
    /// The process holding the service's end, where the host let rehost see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Milliseconds from the first listing (0: connected at the start).
    pub first_seen_ms: u64,
    /// Milliseconds from the first listing to the first one without it; absent: still
    /// connected at the last listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<u64>,
    /// With `terminate`: what rehost did to it at the timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DrainEnded>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyDbData {
    #[serde(default)]
    pub v: u32,
    /// The database's id in the plan.
    pub database: String,
    pub source: String,
    pub destination: String,
    pub equal: bool,
    /// All findings, of which `report` keeps the first ones.
    pub findings_total: usize,
    /// `rehost_db`'s report (its schema: docs/db.md), findings cut to the first ones.
    pub report: serde_json::Value,
    /// The exercise of the copy (`exercise = true`): absent when the step has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise: Option<ExerciseData>,
}

/// A `verify-db` step's exercise of the copy: read, modify and add in transactions rolled
/// back, as the application's login, between two checksums of the whole database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExerciseData {
    /// What the exercise connected to, as the login it ran as (`new:postgres://app@…/shop`;
    /// never a password).
    pub target: String,
    /// The application's login (`exercise_user`); empty: the database's own `user`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub login: String,
    /// Why the exercise could not run or finish (the server's or the client's error); the
    /// figures below are then zero and `unchanged` false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tables: usize,
    pub operations: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The checksum of the database after the exercise equals the one before.
    pub unchanged: bool,
    /// What `unchanged` rests on: the check, in words (empty when none was made).
    pub check: String,
    /// BLAKE3 of the checksummed inventory before and after (empty when none was made).
    pub checksum_before: String,
    pub checksum_after: String,
    /// What the checksum covered.
    pub checked_tables: usize,
    pub checked_rows: u64,
    pub checked_sequences: usize,
    /// Each difference between the checksums: what the exercise left changed.
    pub left_behind: Vec<LeftBehind>,
    /// What the check does not cover.
    pub not_covered: Vec<String>,
    /// The operations that failed or were skipped (the first ones), with why.
    pub problems: Vec<ExerciseProblem>,
}

/// One difference between the checksums before and after an exercise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftBehind {
    /// `row-count`, `content`, `sequence`, `changed`, … (rehost_db's classes).
    pub class: String,
    /// `table`, `sequence`, …
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// An operation of the exercise that failed or was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExerciseProblem {
    pub table: String,
    /// `insert a new row`, `update column c`, `read through index i`.
    pub operation: String,
    /// `failed` or `skipped`.
    pub status: String,
    /// The server's error, or why it was skipped.
    pub detail: String,
}

/// A `dns-propagated` step's wait for a name's new value on every server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsPropagatedData {
    #[serde(default)]
    pub v: u32,
    /// The `[[names]]` id, the name asked for and the record type.
    pub id: String,
    pub name: String,
    pub record: String,
    /// The plan's `old` value, if it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The value every server must serve (normalized).
    pub new: String,
    /// 0 every server served it, 1 some served another value at the timeout, 2 some could
    /// not be asked at the timeout.
    pub exit_code: i32,
    /// How many rounds of questions were asked, and how long the step waited in all.
    pub rounds: u32,
    pub waited_ms: u64,
    pub servers: Vec<DnsServerData>,
}

/// A `dns-switch` step's update at the zone's primary. Never holds the key's secret: only the
/// key's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSwitchData {
    #[serde(default)]
    pub v: u32,
    /// The `[[names]]` id, the name and the record type.
    pub id: String,
    pub name: String,
    pub record: String,
    /// The zone updated, the primary asked and the TSIG key's name.
    pub zone: String,
    pub server: String,
    pub key: String,
    /// The values replaced and put in place (normalized), and the new records' TTL.
    pub old: Vec<String>,
    pub new: Vec<String>,
    pub ttl_s: u32,
    /// `switched` (the update was taken and the primary then served exactly `new`) or
    /// `already_new` (it served `new` before: nothing was sent).
    pub outcome: String,
    /// Whether the primary's answer to the update carried a valid signature of the key
    /// (`false` for `already_new`: nothing was sent).
    pub answer_signed: bool,
}

/// A `dns-ttl` step's check of a lowered TTL and its wait for the old one to expire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsTtlData {
    #[serde(default)]
    pub v: u32,
    /// The `[[names]]` id, the name asked for and the record type.
    pub id: String,
    pub name: String,
    pub record: String,
    /// The plan's `ttl` (what caches may hold from before) and `lowered_ttl`, in seconds.
    pub ttl_s: u64,
    pub lowered_ttl_s: u64,
    /// The step that lowered the TTL and when it finished (the journal's time), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowered_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowered_at: Option<String>,
    /// When the old TTL expired (`lowered_at` + `ttl_s`), if it did before the step ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// How long the step waited for it.
    pub waited_ms: u64,
    /// 0 lowered and expired; 1 a server serves a longer TTL, or the old TTL had not expired
    /// within the step's timeout, or no step lowered it; 2 a server did not answer.
    pub exit_code: i32,
    /// Each authoritative server's answer (`status`: `serves` when its TTL is at most the
    /// lowered one, `differs` when longer, `not_answered`).
    pub servers: Vec<DnsServerData>,
}

/// One server of a `dns-propagated` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsServerData {
    /// `IP:PORT`.
    pub server: String,
    /// `authoritative` or `resolver`.
    pub role: String,
    /// `serves` (the new value), `differs`, `not_answered`: the last round's.
    pub status: String,
    /// The last answer's values (normalized), or why there was none.
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last answer's TTL: how long a cache may still hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_ttl: Option<u32>,
    /// When it was first seen serving the new value (RFC 3339, the run's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_served: Option<String>,
}

/// A `compat` step's comparison of the old and the new service on the same requests.
/// Credentials are never kept: credential headers are `(credential, not shown)`, secret-like
/// query values `(not shown)`, and a command is named, not quoted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatData {
    #[serde(default)]
    pub v: u32,
    /// `probe` or `traffic`, and the file as the plan names it.
    pub source: String,
    pub file: String,
    pub old: String,
    pub new: String,
    /// 0 the same (after noise and allowed fields), 1 differences, 2 some requests could not
    /// be replayed.
    pub exit_code: i32,
    /// Exchanges or probe entries read, and those answered by both sides and compared.
    pub exchanges: u64,
    pub compared: u64,
    pub same: u64,
    pub differing: u64,
    /// Requests whose only differences were allowed ones.
    pub allowed: u64,
    pub refused_writes: u64,
    pub truncated: u64,
    pub failed: u64,
    pub bad: u64,
    /// Whether the old service was asked twice, so noise was measured.
    pub noise_measured: bool,
    pub endpoints: Vec<CompatEndpointData>,
    /// The first refused writes, failures and unreadable entries (all are counted above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<CompatListedData>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<CompatListedData>,
    /// What the comparison leaves out.
    pub not_compared: String,
}

/// One endpoint (method and path without the query, or `command NAME`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatEndpointData {
    pub endpoint: String,
    pub requests: u64,
    pub differing: u64,
    pub differences: Vec<CompatFieldData>,
    /// Fields in which the old service differed from itself, with how often.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise: Vec<CompatFieldData>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatFieldData {
    pub field: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<CompatExampleData>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatExampleData {
    /// The traffic file's line or the probe entry's number.
    pub line: u64,
    pub target: String,
    pub old: String,
    pub new: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatListedData {
    pub line: u64,
    pub method: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// The tagged form on disk: `{"kind":"verify-tree","v":1,…}`. Only ever a temporary while a
/// record is read or written, so the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Tagged<'a> {
    VerifyTree(std::borrow::Cow<'a, VerifyTreeData>),
    Sync(std::borrow::Cow<'a, SyncData>),
    Run(std::borrow::Cow<'a, CommandData>),
    Service(std::borrow::Cow<'a, ServiceData>),
    VerifyDb(std::borrow::Cow<'a, VerifyDbData>),
    VerifyFiles(std::borrow::Cow<'a, VerifyFilesData>),
    VerifyKeys(std::borrow::Cow<'a, VerifyKeysData>),
    Drain(std::borrow::Cow<'a, DrainData>),
    Switch(std::borrow::Cow<'a, SwitchData>),
    DnsPropagated(std::borrow::Cow<'a, DnsPropagatedData>),
    DnsSwitch(std::borrow::Cow<'a, DnsSwitchData>),
    DnsTtl(std::borrow::Cow<'a, DnsTtlData>),
    VerifyConfig(std::borrow::Cow<'a, VerifyConfigData>),
    Compat(std::borrow::Cow<'a, CompatData>),
    WatchOld(std::borrow::Cow<'a, WatchOldData>),
    RetireOld(std::borrow::Cow<'a, RetireOldData>),
    ScanRefs(std::borrow::Cow<'a, ScanRefsData>),
    AddressMoved(std::borrow::Cow<'a, AddressMovedData>),
}

impl Serialize for StepData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::borrow::Cow::Borrowed;
        match self {
            StepData::VerifyTree(d) => Tagged::VerifyTree(Borrowed(&**d)).serialize(s),
            StepData::Sync(d) => Tagged::Sync(Borrowed(d)).serialize(s),
            StepData::Run(d) => Tagged::Run(Borrowed(d)).serialize(s),
            StepData::Service(d) => Tagged::Service(Borrowed(d)).serialize(s),
            StepData::VerifyDb(d) => Tagged::VerifyDb(Borrowed(&**d)).serialize(s),
            StepData::VerifyFiles(d) => Tagged::VerifyFiles(Borrowed(&**d)).serialize(s),
            StepData::VerifyKeys(d) => Tagged::VerifyKeys(Borrowed(&**d)).serialize(s),
            StepData::Drain(d) => Tagged::Drain(Borrowed(d)).serialize(s),
            StepData::Switch(d) => Tagged::Switch(Borrowed(&**d)).serialize(s),
            StepData::DnsPropagated(d) => Tagged::DnsPropagated(Borrowed(&**d)).serialize(s),
            StepData::DnsSwitch(d) => Tagged::DnsSwitch(Borrowed(&**d)).serialize(s),
            StepData::DnsTtl(d) => Tagged::DnsTtl(Borrowed(&**d)).serialize(s),
            StepData::VerifyConfig(d) => Tagged::VerifyConfig(Borrowed(&**d)).serialize(s),
            StepData::Compat(d) => Tagged::Compat(Borrowed(&**d)).serialize(s),
            StepData::WatchOld(d) => Tagged::WatchOld(Borrowed(d)).serialize(s),
            StepData::RetireOld(d) => Tagged::RetireOld(Borrowed(&**d)).serialize(s),
            StepData::ScanRefs(d) => Tagged::ScanRefs(Borrowed(&**d)).serialize(s),
            StepData::AddressMoved(d) => Tagged::AddressMoved(Borrowed(&**d)).serialize(s),
            StepData::Legacy(v) | StepData::Newer { value: v, .. } => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StepData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let Some(kind) = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_owned)
        else {
            return Ok(StepData::Legacy(value));
        };
        let tagged: Tagged = match serde_json::from_value(value.clone()) {
            Ok(t) => t,
            // serde's own words for a tag no variant has: a kind of a newer rehost. Anything
            // else (a known kind with fields that do not read) is an error, not evidence.
            Err(e) if e.to_string().starts_with("unknown variant") => {
                return Ok(StepData::Newer { kind, value });
            }
            Err(e) => {
                return Err(serde::de::Error::custom(format!(
                    "the `{kind}` step result does not read: {e}"
                )));
            }
        };
        Ok(match tagged {
            Tagged::VerifyTree(d) => StepData::VerifyTree(Box::new(d.into_owned())),
            Tagged::Sync(d) => StepData::Sync(d.into_owned()),
            Tagged::Run(d) => StepData::Run(d.into_owned()),
            Tagged::Service(d) => StepData::Service(d.into_owned()),
            Tagged::VerifyDb(d) => StepData::VerifyDb(Box::new(d.into_owned())),
            Tagged::VerifyFiles(d) => StepData::VerifyFiles(Box::new(d.into_owned())),
            Tagged::VerifyKeys(d) => StepData::VerifyKeys(Box::new(d.into_owned())),
            Tagged::Drain(d) => StepData::Drain(d.into_owned()),
            Tagged::Switch(d) => StepData::Switch(Box::new(d.into_owned())),
            Tagged::DnsPropagated(d) => StepData::DnsPropagated(Box::new(d.into_owned())),
            Tagged::DnsSwitch(d) => StepData::DnsSwitch(Box::new(d.into_owned())),
            Tagged::DnsTtl(d) => StepData::DnsTtl(Box::new(d.into_owned())),
            Tagged::VerifyConfig(d) => StepData::VerifyConfig(Box::new(d.into_owned())),
            Tagged::Compat(d) => StepData::Compat(Box::new(d.into_owned())),
            Tagged::WatchOld(d) => StepData::WatchOld(d.into_owned()),
            Tagged::RetireOld(d) => StepData::RetireOld(Box::new(d.into_owned())),
            Tagged::ScanRefs(d) => StepData::ScanRefs(Box::new(d.into_owned())),
            Tagged::AddressMoved(d) => StepData::AddressMoved(Box::new(d.into_owned())),
        })
    }
}

impl StepData {
    /// The evidence files this result names (a verification's manifests).
    pub fn evidence(&self) -> &[EvidenceRef] {
        match self {
            StepData::VerifyTree(d) => &d.manifests,
            StepData::VerifyFiles(d) => &d.manifests,
            StepData::WatchOld(d) => std::slice::from_ref(&d.manifest),
            StepData::RetireOld(d) => d
                .read_only
                .as_ref()
                .map_or(&[], |r| std::slice::from_ref(&r.modes)),
            StepData::Sync(_)
            | StepData::VerifyKeys(_)
            | StepData::Run(_)
            | StepData::Service(_)
            | StepData::VerifyDb(_)
            | StepData::Drain(_)
            | StepData::Switch(_)
            | StepData::DnsPropagated(_)
            | StepData::DnsSwitch(_)
            | StepData::DnsTtl(_)
            | StepData::VerifyConfig(_)
            | StepData::Compat(_)
            | StepData::ScanRefs(_)
            | StepData::AddressMoved(_)
            | StepData::Legacy(_)
            | StepData::Newer { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_results_round_trip_with_kind_and_version() {
        let d = StepData::Run(CommandData {
            v: STEP_DATA_VERSION,
            exit_code: Some(3),
            timed_out: false,
        });
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"run","v":1,"exit_code":3,"timed_out":false}"#
        );
        assert_eq!(serde_json::from_str::<StepData>(&text).unwrap(), d);
    }

    #[test]
    fn results_without_a_kind_load_as_legacy_and_unknown_kinds_as_newer() {
        // What verify-tree recorded before results were typed.
        let old = r#"{"data_set":"files","manifests":{"source":{"file":"evidence/v-source.manifest","blake3":"ab"}}}"#;
        match serde_json::from_str::<StepData>(old).unwrap() {
            StepData::Legacy(v) => assert_eq!(v["data_set"], "files"),
            other => panic!("{other:?}"),
        }
        // A kind from a newer rehost.
        let newer = r#"{"kind":"dns","v":4}"#;
        match serde_json::from_str::<StepData>(newer).unwrap() {
            StepData::Newer { kind, value } => {
                assert_eq!(kind, "dns");
                assert_eq!(
                    serde_json::to_string(&StepData::Newer {
                        kind,
                        value: value.clone()
                    })
                    .unwrap(),
                    newer
                );
            }
            other => panic!("{other:?}"),
        }
        // A known kind whose fields do not read is an error, not a result of another kind.
        let broken = r#"{"kind":"run","v":1,"exit_code":"three"}"#;
        let e = serde_json::from_str::<StepData>(broken)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the `run` step result does not read"), "{e}");
        // A known kind without a version is version 0.
        let v0 = r#"{"kind":"run","exit_code":0}"#;
        match serde_json::from_str::<StepData>(v0).unwrap() {
            StepData::Run(r) => assert_eq!((r.v, r.exit_code), (0, Some(0))),
            other => panic!("{other:?}"),
        }
    }
}
