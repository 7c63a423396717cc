//! Byte strings that cross the agent protocol: file names and command output are bytes on
//! Unix, not necessarily UTF-8. They serialize as a JSON string when they are valid UTF-8 (the
//! common case, readable in a frame dump) and as `{"bytes":[…]}` otherwise, so nothing is lost
//! or replaced on the way.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    pub fn as_path(&self) -> &Path {
        Path::new(self.as_os_str())
    }

    /// A lossy text form for messages (invalid sequences become U+FFFD).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.escape_ascii().to_string())
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Self {
        Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Self {
        Bytes(b)
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<&Path> for Bytes {
    fn from(p: &Path) -> Self {
        Bytes(p.as_os_str().as_bytes().to_vec())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr<'a> {
    Text(std::borrow::Cow<'a, str>),
    Raw { bytes: Vec<u8> },
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => Repr::Text(text.into()).serialize(s),
            Err(_) => Repr::Raw {
                bytes: self.0.clone(),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Text(t) => Bytes(t.into_owned().into_bytes()),
            Repr::Raw { bytes } => Bytes(bytes),
        })
    }
}

/// File content crossing the agent protocol: never inside a frame's JSON, but as raw bytes
/// after its header (see `agent/frame.rs`). Page-aligned, because it is read into in bulk (from
/// a file by the source's agent, from a pipe by the receiving end), and a read into a buffer
/// off a page boundary costs the kernel several times more (issue 27: `rehost_tree::aligned`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub rehost_tree::aligned::AlignedBuf);

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob(bytes.into())
    }
}

impl From<&[u8]> for Blob {
    fn from(bytes: &[u8]) -> Self {
        Blob(bytes.into())
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}
