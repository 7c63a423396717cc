//! Tree listing: every entry under a directory with its type, size, mode and mtime, without
//! following symbolic links. It is the metadata half of tree verification and runs on the host
//! that holds the tree (in-process for a local host, in the agent for an ssh host), so only the
//! listing crosses the network.
//!
//! Entries come depth first, children sorted by their name's bytes, so two listings of equal
//! trees are equal sequences. What cannot be read is an entry with an `error`, never left out.

use crate::bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// Devices, FIFOs, sockets.
    Other,
}

/// One entry of a tree listing. `path` is relative to the listed directory, with `/`
/// separators; the directory itself is not listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    pub path: Bytes,
    pub kind: EntryKind,
    /// Bytes for files, the target's length for symlinks, 0 otherwise.
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Bytes>,
    /// Why the entry (or, for a directory, its contents) could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Lists the tree under `root`, calling `on_entry` for each entry in order. Stops early (and
/// returns `Ok(false)`) when `cancel` is set. Fails only when `root` itself cannot be read.
pub fn list_tree(
    root: &Path,
    cancel: &AtomicBool,
    on_entry: &mut dyn FnMut(TreeEntry),
) -> std::io::Result<bool> {
    let meta = std::fs::symlink_metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    let mut rel = Vec::new();
    walk(root, &mut rel, cancel, on_entry, true)
}

fn walk(
    dir: &Path,
    rel: &mut Vec<u8>,
    cancel: &AtomicBool,
    on_entry: &mut dyn FnMut(TreeEntry),
    top: bool,
) -> std::io::Result<bool> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if top => return Err(e),
        Err(e) => {
            on_entry(error_entry(rel, format!("failed to read directory: {e}")));
            return Ok(true);
        }
    };
    let mut names = Vec::new();
    for e in rd {
        match e {
            Ok(e) => names.push(e.file_name()),
            Err(e) => on_entry(error_entry(rel, format!("failed to read directory: {e}"))),
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        let path = dir.join(&name);
        match std::fs::symlink_metadata(&path) {
            Err(e) => on_entry(error_entry(rel, format!("failed to stat: {e}"))),
            Ok(meta) => {
                let ft = meta.file_type();
                let kind = if ft.is_file() {
                    EntryKind::File
                } else if ft.is_dir() {
                    EntryKind::Dir
                } else if ft.is_symlink() {
                    EntryKind::Symlink
                } else {
                    EntryKind::Other
                };
                let mut entry = TreeEntry {
                    path: Bytes(rel.clone()),
                    kind,
                    size: if matches!(kind, EntryKind::File | EntryKind::Symlink) {
                        meta.len()
                    } else {
                        0
                    },
                    mode: meta.mode() & 0o7777,
                    mtime: meta.mtime(),
                    mtime_nsec: meta.mtime_nsec() as u32,
                    target: None,
                    error: None,
                };
                if kind == EntryKind::Symlink {
                    match std::fs::read_link(&path) {
                        Ok(t) => entry.target = Some(Bytes::from(t.as_path())),
                        Err(e) => entry.error = Some(format!("failed to read link: {e}")),
                    }
                }
                on_entry(entry);
                if kind == EntryKind::Dir && !walk(&path, rel, cancel, on_entry, false)? {
                    return Ok(false);
                }
            }
        }
        rel.truncate(len);
    }
    Ok(true)
}

fn error_entry(rel: &[u8], error: String) -> TreeEntry {
    TreeEntry {
        path: Bytes(rel.to_vec()),
        kind: EntryKind::Other,
        size: 0,
        mode: 0,
        mtime: 0,
        mtime_nsec: 0,
        target: None,
        error: Some(error),
    }
}
