//! Tree verification for rehost: walk a tree and hash it into a [`Manifest`], compare two
//! manifests into a [`Report`] (a pure function), verify two trees at once with an incremental
//! cache, read and write manifest files, and copy a tree (the built-in transfer, or the rsync
//! command line for the `sync` step).
//!
//! Entry points for the CLI and the engine:
//! - [`manifest()`] — walk and hash one tree (`rehost manifest`);
//! - [`verify_trees`], [`verify_manifest_tree`] — `rehost verify tree A B` / `MANIFEST B`;
//! - [`compare()`] — two manifests, no IO;
//! - [`Report::render_human`], [`Report::render_json`], [`Report::exit_code`];
//! - [`Manifest::write_file`], [`Manifest::read_file`];
//! - [`transfer::transfer`], [`transfer::rsync_command`], [`transfer::rsync_available`].

pub mod aligned;
pub mod beneath;
mod cache;
mod compare;
mod error;
pub mod escape;
/// Exclude patterns (rsync's meaning): the `rehost-glob` crate, which the plan's lint shares.
pub use rehost_glob as glob;
pub mod manifest;
pub mod private;
mod report;
pub mod transfer;
mod verify;
mod walk;

pub use cache::BadEncoding;
pub use compare::{CompareOptions, compare};
pub use error::{BadManifest, NotBelowRoot, NotIgnorable, TreeError};
pub use glob::Glob;
pub use manifest::{Entry, Kind, LINK_NONE, Manifest, State, Time};
pub use report::{
    ALL_CLASSES, Class, EXIT_DIFFERENT, EXIT_EQUAL, EXIT_UNVERIFIED, Finding, PRIVILEGED_SHOWN,
    Privileged, Report, Totals, human_bytes, privilege,
};
pub use verify::{
    Verified, VerifyOptions, default_cache_dir, manifest_cached, user_cache_dir,
    verify_manifest_tree, verify_trees,
};
pub use walk::{
    Counts, DEFAULT_THREADS, Hook, HookPoint, Progress, WalkOptions, manifest, only_path,
    walk_many, walk_pair,
};
