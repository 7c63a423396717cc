//! The agent protocol's messages. See `docs/agent.md` for the wire format.
//!
//! A capability is one [`Request`] variant and the [`Response`] variants it streams back; the
//! framing ([`ClientFrame`], [`AgentFrame`]) never changes when a capability is added. File
//! content ([`Blob`] fields) is not part of a frame's JSON: it follows the header as raw bytes
//! (`frame.rs`), one `Blob` at most per message.

use super::frame::Framed;
use crate::bytes::{Blob, Bytes};
use crate::command::{CommandSpec, OutputStream, RunOutcome};
use crate::listing::TreeEntry;
use serde::{Deserialize, Serialize};

/// Bumped whenever a frame or request changes incompatibly. Client and agent must agree.
/// 4: file content as raw bytes after the JSON header, not base64 inside it.
pub const PROTOCOL_VERSION: u32 = 4;

/// Work a host is asked to do. Executed by [`crate::execute`] on the host that holds the data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Run a command; streams `Output` lines and ends with one `Exit`.
    Run { command: CommandSpec },
    /// List a tree (path as written in the plan, resolved on the host); streams `Entries`.
    ListTree { path: Bytes },
    /// Walk and hash a tree into a `rehost_tree::Manifest`; streams `Progress` while walking,
    /// then the manifest in its binary encoding as `ManifestData` pieces and `ManifestCounts`.
    Manifest {
        path: Bytes,
        #[serde(default)]
        options: ManifestOptions,
    },
    /// Read pieces of files under `root` (the source side of a built-in transfer between
    /// hosts); streams one `FileData` or `FileError` per piece, in order.
    ReadFiles { root: Bytes, pieces: Vec<FilePiece> },
    /// Write a piece of a large file into the temporary file `tmp` beside `path` under
    /// `root` (created, mode 0600, by the piece at offset 0), ahead of the `Apply` whose `File`
    /// operation is `staged` with that name; answered with `Staged`.
    Stage {
        root: Bytes,
        path: Bytes,
        tmp: Bytes,
        offset: u64,
        #[serde(skip)]
        data: Blob,
    },
    /// Take the host's run lock (see `host_lock`) for as long as this session lasts (for a
    /// local host: as long as the host is open), recording `holder` (pid, user, start time)
    /// for a run that is refused; answered with `Locked`, or fails naming the holder.
    Lock { holder: String },
    /// Apply a built-in transfer's operations to the tree at `root` (created if missing);
    /// `data` holds the content of each unstaged `File` operation, in order; `sync` flushes
    /// the file system afterwards (the last batch). Streams `Progress`, answered with
    /// `Applied`.
    Apply {
        root: Bytes,
        ops: Vec<rehost_tree::transfer::Op>,
        #[serde(skip)]
        data: Blob,
        #[serde(default)]
        sync: bool,
    },
    /// What a pre-flight needs to know of paths on the host (resolved like a plan path):
    /// whether each exists and what it is, the free space of the file system it is (or would
    /// be) on, and with `measure` the bytes of the files below it. Answers the agent's own
    /// start too. Streams one `Probed` per path, in order.
    Probe {
        paths: Vec<Bytes>,
        #[serde(default)]
        measure: bool,
    },
    /// Whether something on the host accepts TCP connections on `port` (loopback, IPv4 then
    /// IPv6), within `timeout_ms`: a service's health by its ports. Answered with `Connected`.
    Connect { port: u16, timeout_ms: u64 },
    /// Key material under `paths` (files or directories, resolved like plan paths): streams
    /// `KeysFound` batches, then one `KeysScanned`. Only public facts are answered
    /// (`rehost_keys::Found`).
    ScanKeys {
        paths: Vec<Bytes>,
        /// The key of this comparison's key file digests (`rehost_keys::KeyFile`), shared by
        /// both sides' scans; a fresh one is drawn on the host when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest_key: Option<rehost_keys::DigestKey>,
        /// Passwords to open PKCS#12 bundles with (`keys scan --password-file`): never shown
        /// (`Debug` hides them), never kept.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        passwords: Vec<rehost_keys::Password>,
        /// Read every file: the host's key scan cache is neither used nor written
        /// (`--no-cache`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_cache: bool,
    },
    /// The established TCP connections (IPv4 and IPv6) whose local port is one of `ports`
    /// (all when empty), at most `limit`, with their processes where visible
    /// (`crate::conns`). Answered with one `Connections`.
    Connections {
        ports: Vec<u16>,
        limit: u64,
        /// Leave the owning processes out (`conns list --no-process`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_process: bool,
    },
    /// The lines of files under `paths` (files or directories, resolved like plan paths) that
    /// mention one of `needles` (`crate::refs`): streams `RefsFound` batches, then one
    /// `RefsScanned`.
    ScanRefs {
        paths: Vec<Bytes>,
        needles: Vec<rehost_refs::Needle>,
    },
    /// The connections accepted on the listening Unix sockets at `paths` (absolute, at most
    /// `crate::conns::unix::MAX_PATHS`), at most `limit`, with the processes at both ends
    /// where visible (`crate::conns::unix`). Answered with one `UnixConnections`.
    UnixConnections { paths: Vec<Bytes>, limit: u64 },
    /// End each of `targets` that is still an established connection to one of `ports` with
    /// exactly its inode, addresses and ports (`crate::conns::end`). Answered with one
    /// `ConnectionsEnded`.
    EndConnections {
        ports: Vec<u16>,
        targets: Vec<crate::conns::end::Target>,
    },
    /// End each of `targets` still accepted on one of the listening Unix sockets `paths` with
    /// exactly its inode (`crate::conns::unix_end`). Answered with one `UnixConnectionsEnded`.
    EndUnixConnections {
        paths: Vec<Bytes>,
        targets: Vec<crate::conns::unix_end::UnixTarget>,
    },
    /// What the host runs and what each service depends on (`crate::survey`): streams
    /// `SurveyProgress`, then the inventory's JSON in `SurveyData` pieces, then one
    /// `Surveyed` with its length.
    Survey {
        options: crate::survey::SurveyOptions,
    },
    /// Every write bit removed beneath `root` (resolved like a plan path), or (`Check`) the
    /// entries that still have one counted (`crate::retire`): `Apply` streams `ModesChanged`
    /// batches; both end with one `ReadOnlyDone`.
    ReadOnly {
        root: Bytes,
        action: crate::retire::ReadOnlyAction,
    },
    /// The modes of `changes` (at most `crate::retire::BATCH`) set back beneath `root`, each
    /// only where the entry is still the inode and mode rehost left; answered with one
    /// `ModesRestored`.
    RestoreModes {
        root: Bytes,
        changes: Vec<crate::retire::ModeChange>,
    },
    /// The listening TCP sockets (IPv4 and IPv6) on `ports`, from the host's kernel (netlink
    /// sock_diag, else `/proc/net/tcp*`): whether a service is stopped. Answered with one
    /// `Listening`.
    Listening { ports: Vec<u16> },
}

/// A byte range of a file, relative to a `ReadFiles` request's root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePiece {
    pub path: Bytes,
    pub offset: u64,
    pub len: u64,
    /// The inode the walk saw: a file replaced since is refused.
    #[serde(default)]
    pub ino: Option<u64>,
}

/// The serialisable part of `rehost_tree::WalkOptions`, plus the host-side cache. The default
/// matches `WalkOptions::default()` (extended attributes read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOptions {
    /// Exclude globs (entries matching any are left out with everything below them).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Reader threads; 0 for the default.
    #[serde(default)]
    pub threads: usize,
    /// Read extended attributes (and so POSIX ACLs).
    #[serde(default = "yes")]
    pub xattrs: bool,
    /// Trust digests from this host's previous manifest of the same tree for files whose
    /// device, inode, size, mtime and ctime are unchanged, and keep the new manifest for next
    /// time. The cache lives on the host that holds the tree
    /// (`${XDG_CACHE_HOME:-~/.cache}/rehost/manifests/*.rmc`, the binary cache format of
    /// `rehost_tree`, with its racy-ctime rule).
    #[serde(default)]
    pub incremental: bool,
    /// Only these entries, relative to the tree's root, with the directories leading to them
    /// (`rehost_tree::WalkOptions::only`): the single files `verify-files` compares. Never
    /// incremental: a partial manifest must not become the cache of the whole tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<Bytes>,
}

impl Request {
    /// What the request is doing, for messages such as "connection lost while …".
    pub fn describe(&self) -> String {
        match self {
            Request::Run { command } => format!("running `{}`", command.program.display()),
            Request::ListTree { path } => format!("listing tree {}", path.to_string_lossy()),
            Request::Manifest { path, .. } => {
                format!("walking and hashing tree {}", path.to_string_lossy())
            }
            Request::ReadFiles { root, pieces } => format!(
                "reading {} file piece(s) under {}",
                pieces.len(),
                root.to_string_lossy()
            ),
            Request::Stage { root, path, .. } => format!(
                "writing {} under {}",
                path.to_string_lossy(),
                root.to_string_lossy()
            ),
            Request::Lock { .. } => "taking the host's run lock".into(),
            Request::Apply { root, ops, .. } => format!(
                "applying {} transfer operation(s) to {}",
                ops.len(),
                root.to_string_lossy()
            ),
            Request::Probe { paths, .. } => format!("probing {} path(s)", paths.len()),
            Request::Connect { port, .. } => format!("connecting to port {port}"),
            Request::ScanKeys { paths, .. } => format!("scanning {} path(s) for keys", paths.len()),
            Request::Connections { ports, .. } => {
                format!("listing the connections to {} port(s)", ports.len())
            }
            Request::ScanRefs { paths, needles } => format!(
                "scanning {} path(s) for {} address(es) or name(s)",
                paths.len(),
                needles.len()
            ),
            Request::UnixConnections { paths, .. } => {
                format!("listing the connections to {} Unix socket(s)", paths.len())
            }
            Request::EndConnections { targets, .. } => {
                format!("ending {} connection(s)", targets.len())
            }
            Request::EndUnixConnections { targets, .. } => {
                format!("ending {} Unix-socket connection(s)", targets.len())
            }
            Request::Survey { .. } => "surveying the host".into(),
            Request::ReadOnly { root, action } => format!(
                "{} {}",
                match action {
                    crate::retire::ReadOnlyAction::Apply => "making read-only",
                    crate::retire::ReadOnlyAction::Check => "checking read-only",
                },
                root.to_string_lossy()
            ),
            Request::Listening { ports } => {
                format!("listing the listening sockets on {} port(s)", ports.len())
            }
            Request::RestoreModes { root, changes } => format!(
                "restoring {} mode(s) under {}",
                changes.len(),
                root.to_string_lossy()
            ),
        }
    }
}

/// One item of a request's result stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// One line of a command's output, without its newline.
    Output { stream: OutputStream, line: Bytes },
    /// How a command ended.
    Exit { outcome: RunOutcome },
    /// A batch of tree entries, in listing order.
    Entries { entries: Vec<TreeEntry> },
    /// How far a long request has come (about every 200 ms).
    Progress { entries: u64, bytes: u64 },
    /// A piece of a manifest in its binary encoding (`Manifest::to_binary`); the pieces
    /// concatenated are the whole, whose own BLAKE3 checks it end to end.
    ManifestData {
        #[serde(skip)]
        data: Blob,
    },
    /// Sent after the text: files read in this walk, files whose digest was trusted from the
    /// host's previous manifest, and the walk's warnings (none of them part of the manifest
    /// format).
    ManifestCounts {
        rehashed: u64,
        trusted: u64,
        #[serde(default)]
        warnings: Vec<String>,
    },
    /// A piece of a file, as asked (shorter only at the end of the file).
    FileData {
        #[serde(skip)]
        data: Blob,
    },
    /// A piece that could not be read, and why.
    FileError { message: String },
    /// A `Stage` request done.
    Staged,
    /// A `Lock` request done: the host is this run's until the session ends.
    Locked,
    /// An `Apply` request done: what was created, updated and deleted, and what failed.
    Applied {
        report: rehost_tree::transfer::TransferReport,
    },
    /// One path of a `Probe`.
    Probed { probe: Probe },
    /// A `Connect`: whether the port accepted, or why not.
    Connected { error: Option<String> },
    /// Keys found by a `ScanKeys`, in batches.
    KeysFound { found: Vec<rehost_keys::Found> },
    /// The end of a `ScanKeys`: files examined, files read whole, paths that could not be,
    /// files not opened because the host's key scan cache knows them unchanged since a scan
    /// found nothing in them, and what the scan says of that cache (ignored, and why).
    KeysScanned {
        files: u64,
        read: u64,
        errors: Vec<String>,
        #[serde(default)]
        cached: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    /// A `Connections` listing.
    Connections { listing: crate::conns::Listing },
    /// Lines found by a `ScanRefs`, in batches.
    RefsFound { found: Vec<crate::refs::RefFound> },
    /// The end of a `ScanRefs`: its counts and what could not be read (no lines).
    RefsScanned { summary: crate::refs::RefsScan },
    /// A `UnixConnections` listing.
    UnixConnections {
        listing: crate::conns::unix::UnixListing,
    },
    /// What an `EndConnections` did, one attempt per target.
    ConnectionsEnded {
        attempts: Vec<crate::conns::end::Attempt>,
    },
    /// What an `EndUnixConnections` did, one attempt per target.
    UnixConnectionsEnded {
        attempts: Vec<crate::conns::unix_end::UnixAttempt>,
    },
    /// How far a `Survey` has come.
    SurveyProgress {
        progress: crate::survey::SurveyProgress,
    },
    /// A piece of the inventory's JSON (`rehost_survey::Inventory`); the pieces concatenated
    /// are the whole.
    SurveyData {
        #[serde(skip)]
        data: Blob,
    },
    /// The end of a `Survey`: the inventory's length in bytes.
    Surveyed { bytes: u64 },
    /// Write bits removed by a `ReadOnly`, in batches of at most `crate::retire::BATCH`.
    ModesChanged {
        changes: Vec<crate::retire::ModeChange>,
    },
    /// The end of a `ReadOnly`.
    ReadOnlyDone {
        summary: crate::retire::ReadOnlySummary,
    },
    /// What a `RestoreModes` did.
    ModesRestored {
        summary: crate::retire::RestoreSummary,
    },
    /// A `Listening`: each socket's address and port, and what could not be read.
    Listening {
        sockets: Vec<crate::retire::Listening>,
        gaps: Vec<String>,
    },
}

impl Response {
    fn blob(&self) -> Option<&Blob> {
        match self {
            Response::ManifestData { data }
            | Response::FileData { data }
            | Response::SurveyData { data } => Some(data),
            _ => None,
        }
    }

    fn blob_mut(&mut self) -> Option<&mut Blob> {
        match self {
            Response::ManifestData { data }
            | Response::FileData { data }
            | Response::SurveyData { data } => Some(data),
            _ => None,
        }
    }

    /// The variant's name, as it appears in the frame.
    fn kind(&self) -> String {
        kind_of(self)
    }
}

impl Request {
    /// The file content the request carries (sent after its frame's header).
    pub(crate) fn content(&self) -> &[u8] {
        self.blob().map_or(&[], |b| &b.0)
    }

    fn blob(&self) -> Option<&Blob> {
        match self {
            Request::Stage { data, .. } | Request::Apply { data, .. } => Some(data),
            _ => None,
        }
    }

    fn blob_mut(&mut self) -> Option<&mut Blob> {
        match self {
            Request::Stage { data, .. } | Request::Apply { data, .. } => Some(data),
            _ => None,
        }
    }
}

/// The `kind` tag of a response, for messages refusing it.
pub(crate) fn kind_name(r: &Response) -> String {
    kind_of(r)
}

/// The `kind` tag of a request or response (serialised without its content).
fn kind_of(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.get("kind")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// What a `Probe` found at one path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The path as resolved on the host.
    pub path: Bytes,
    /// `file`, `dir`, `symlink` or `other`; `None` when nothing is there.
    pub kind: Option<crate::listing::EntryKind>,
    /// Why the path (or its file system) could not be examined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Free bytes (for an unprivileged user: `f_bavail`) and size of the file system that holds
    /// the path, or its nearest existing ancestor.
    pub fs_free: Option<u64>,
    pub fs_size: Option<u64>,
    /// With `measure`: the bytes of the regular files below the path (its own size for a file).
    pub bytes: Option<u64>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            excludes: Vec::new(),
            threads: 0,
            xattrs: true,
            incremental: false,
            only: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// Frames the client (rehost) sends to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame of a session. `host` is the host's name in the plan (the agent's messages
    /// use it); `root` makes the agent act like a local host with that root.
    Hello {
        protocol: u32,
        version: String,
        #[serde(default)]
        host: Option<String>,
        #[serde(default)]
        root: Option<Bytes>,
    },
    /// Start a request. One request at a time per session; the client waits for its `End`.
    Request { id: u64, request: Request },
    /// Stop the request in flight (ending its process group); its `End` still follows.
    Cancel { id: u64 },
}

/// [`ClientFrame::Request`] borrowing its request, so that sending one does not copy the
/// content it carries. Serialises exactly as the owned frame.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrameRef<'a> {
    Request { id: u64, request: &'a Request },
}

impl Framed for ClientFrame {
    fn data(&self) -> &[u8] {
        match self {
            ClientFrame::Request { request, .. } => request.content(),
            _ => &[],
        }
    }

    fn data_mut(&mut self) -> Option<&mut rehost_tree::aligned::AlignedBuf> {
        match self {
            ClientFrame::Request { request, .. } => request.blob_mut().map(|b| &mut b.0),
            _ => None,
        }
    }

    fn kind(&self) -> String {
        match self {
            ClientFrame::Request { request, .. } => kind_of(request),
            ClientFrame::Hello { .. } => "hello".into(),
            ClientFrame::Cancel { .. } => "cancel".into(),
        }
    }
}

impl Framed for AgentFrame {
    fn data(&self) -> &[u8] {
        match self {
            AgentFrame::Response { response, .. } => response.blob().map_or(&[], |b| &b.0),
            _ => &[],
        }
    }

    fn data_mut(&mut self) -> Option<&mut rehost_tree::aligned::AlignedBuf> {
        match self {
            AgentFrame::Response { response, .. } => response.blob_mut().map(|b| &mut b.0),
            _ => None,
        }
    }

    fn kind(&self) -> String {
        match self {
            AgentFrame::Response { response, .. } => response.kind(),
            AgentFrame::Hello { .. } => "hello".into(),
            AgentFrame::End { .. } => "end".into(),
        }
    }
}

/// Frames the agent sends back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentFrame {
    /// Reply to `Hello`. When `protocol` differs from the client's, the agent exits after it.
    Hello {
        protocol: u32,
        version: String,
        arch: String,
    },
    /// One item of request `id`'s result stream.
    Response { id: u64, response: Response },
    /// Request `id` is finished; `error` says why it failed, if it did.
    End {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}
