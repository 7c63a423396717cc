//! The agent protocol's messages. See `docs/agent.md` for the wire format.
//!
//! A capability is one [`Request`] variant and the [`Response`] variants it streams back; the
//! framing ([`ClientFrame`], [`AgentFrame`]) never changes when a capability is added.

use crate::bytes::{Blob, Bytes};
use crate::command::{CommandSpec, OutputStream, RunOutcome};
use crate::listing::TreeEntry;
use serde::{Deserialize, Serialize};

/// Bumped whenever a frame or request changes incompatibly. Client and agent must agree.
pub const PROTOCOL_VERSION: u32 = 3;

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
    ManifestData { data: Blob },
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
    FileData { data: Blob },
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
