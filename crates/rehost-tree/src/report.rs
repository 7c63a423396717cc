//! The result of a comparison: typed findings, totals, the exit code, and the human and JSON
//! renderers. Paths are raw bytes; the human renderer escapes them, the JSON renderer gives the
//! UTF-8 text and, for names that are not UTF-8, the exact bytes in hex.

#[cfg(test)]
mod tests;

use crate::escape::{display, hex};
use crate::manifest::display_path;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The classes of difference, in the order the summary lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// On A, not on B.
    Missing,
    /// On B, not on A.
    Extra,
    /// File, directory, symlink, fifo, socket or device on one side, another type on the other.
    Type,
    /// Size or BLAKE3 of a regular file.
    Content,
    /// Symlink target.
    Target,
    /// Permission bits (including setuid, setgid, sticky).
    Mode,
    /// Numeric uid.
    Owner,
    /// Numeric gid.
    Group,
    /// Modification time, to the nanosecond.
    Mtime,
    /// Extended attributes other than ACLs.
    Xattr,
    /// POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`).
    Acl,
    /// Major/minor of a block or character device.
    Device,
    /// Which paths share an inode.
    Hardlink,
    /// Could not be read or vanished on either side: not verified.
    Unverified,
    /// Changed while being read: not verified.
    Unstable,
}

pub const ALL_CLASSES: [Class; 15] = [
    Class::Missing,
    Class::Extra,
    Class::Type,
    Class::Content,
    Class::Target,
    Class::Mode,
    Class::Owner,
    Class::Group,
    Class::Mtime,
    Class::Xattr,
    Class::Acl,
    Class::Device,
    Class::Hardlink,
    Class::Unverified,
    Class::Unstable,
];

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Missing => "missing",
            Class::Extra => "extra",
            Class::Type => "type",
            Class::Content => "content",
            Class::Target => "target",
            Class::Mode => "mode",
            Class::Owner => "owner",
            Class::Group => "group",
            Class::Mtime => "mtime",
            Class::Xattr => "xattr",
            Class::Acl => "acl",
            Class::Device => "device",
            Class::Hardlink => "hardlink",
            Class::Unverified => "unverified",
            Class::Unstable => "unstable",
        }
    }

    /// Parses a class name as given to `--ignore`. Unverified and unstable entries cannot be
    /// ignored: they were not read.
    pub fn parse_ignorable(s: &str) -> Result<Class, crate::NotIgnorable> {
        let c = ALL_CLASSES
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ALL_CLASSES
                    .iter()
                    .filter(|c| c.ignorable())
                    .map(|c| c.name())
                    .collect();
                crate::NotIgnorable::new(format!(
                    "unknown class {s:?}; classes are {}",
                    names.join(", ")
                ))
            })?;
        if !c.ignorable() {
            return Err(crate::NotIgnorable::new(format!(
                "class {s:?} cannot be ignored: those entries were not verified"
            )));
        }
        Ok(c)
    }

    pub fn ignorable(self) -> bool {
        !matches!(self, Class::Unverified | Class::Unstable)
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One difference (or one entry that could not be verified).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    /// Relative to the roots, raw bytes; empty for the root.
    pub path: Box<[u8]>,
    /// What A has (or why it was not verified), for people.
    pub a: String,
    /// What B has.
    pub b: String,
}

/// An entry that carries privilege onto the host it is on: a setuid or setgid file, a file
/// with capabilities (`security.capability`), a block or character device. Whoever wrote the
/// source decided these (a compromised old server too: docs/security.md), so a verification
/// lists those of B, the copy, for a person to check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privileged {
    /// Relative to the root, raw bytes.
    pub path: Box<[u8]>,
    /// For people: `setuid file of uid 0, mode 4755`, `block device 8:0, mode 660, uid 0`.
    pub what: String,
}

/// What of `e` gives privilege on its host, if anything (see [`Privileged`]).
pub fn privilege(e: &crate::manifest::Entry) -> Option<String> {
    use crate::manifest::Kind;
    let owner = format!("mode {:o}, uid {}, gid {}", e.mode, e.uid, e.gid);
    match e.kind {
        Kind::File => {
            let mut what = Vec::new();
            if e.mode & 0o4000 != 0 {
                what.push("setuid");
            }
            if e.mode & 0o2000 != 0 {
                what.push("setgid");
            }
            let caps = e
                .xattrs
                .iter()
                .flatten()
                .any(|(name, _)| &**name == b"security.capability");
            if caps {
                what.push("capabilities");
            }
            (!what.is_empty()).then(|| format!("{} file, {owner}", what.join(" and ")))
        }
        Kind::Block | Kind::Char => Some(format!(
            "{} device {}:{}, {owner}",
            if e.kind == Kind::Block {
                "block"
            } else {
                "character"
            },
            libc::major(e.rdev),
            libc::minor(e.rdev)
        )),
        _ => None,
    }
}

/// Totals of one comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub entries_a: u64,
    pub entries_b: u64,
    pub bytes_a: u64,
    pub bytes_b: u64,
    /// Entries present on both sides with no finding.
    pub equal: u64,
    /// Files read (both sides together).
    pub rehashed: u64,
    /// Files whose digest was trusted from the last walk of the same tree (both sides): a
    /// verification's, or another walk's that used the same cache.
    pub trusted: u64,
    /// Of the files read, B's whose bytes were compared with A's file of the same path, read
    /// side by side (B hashed only from a piece that differed): [`crate::walk_pair`].
    #[serde(default)]
    pub compared: u64,
    /// Findings per class; classes with none are absent.
    pub by_class: BTreeMap<Class, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Sorted by path, then class.
    pub findings: Vec<Finding>,
    pub totals: Totals,
    /// Classes turned off by the caller.
    pub ignored: Vec<Class>,
    /// Exclude patterns the walks applied.
    pub excludes: Vec<String>,
    /// Trouble that did not affect the verdict (e.g. the cache could not be saved).
    pub warnings: Vec<String>,
    /// B's entries that carry privilege ([`Privileged`]), in path order. Not differences: the
    /// verdict does not change; a person decides whether they belong.
    #[serde(default)]
    pub privileged: Vec<Privileged>,
}

/// How many privileged entries the human report lists; `--json` has them all.
pub const PRIVILEGED_SHOWN: usize = 20;

/// Exit codes, as diff(1): see PRODUCT.md.
pub const EXIT_EQUAL: i32 = 0;
pub const EXIT_DIFFERENT: i32 = 1;
pub const EXIT_UNVERIFIED: i32 = 2;

impl Report {
    /// 0 all equal, 1 differences, 2 anything unverified or unstable (even with differences).
    pub fn exit_code(&self) -> i32 {
        if self.findings.iter().any(|f| !f.class.ignorable()) {
            EXIT_UNVERIFIED
        } else if self.findings.is_empty() {
            EXIT_EQUAL
        } else {
            EXIT_DIFFERENT
        }
    }

    pub fn count(&self, class: Class) -> u64 {
        self.totals.by_class.get(&class).copied().unwrap_or(0)
    }

    /// Summary, then one line per finding: `class  path  (A: ..., B: ...)`.
    pub fn render_human(&self, w: &mut dyn Write) -> io::Result<()> {
        let t = &self.totals;
        let verdict = match self.exit_code() {
            EXIT_EQUAL => "equal",
            EXIT_DIFFERENT => "different",
            _ => "NOT VERIFIED",
        };
        writeln!(w, "trees are {verdict}")?;
        writeln!(
            w,
            "  entries   A {:>10}  B {:>10}",
            t.entries_a, t.entries_b
        )?;
        writeln!(
            w,
            "  bytes     A {:>10}  B {:>10}",
            human_bytes(t.bytes_a),
            human_bytes(t.bytes_b)
        )?;
        writeln!(w, "  equal       {:>10}", t.equal)?;
        for (c, n) in &t.by_class {
            writeln!(w, "  {:<10}  {:>10}", c.name(), n)?;
        }
        writeln!(
            w,
            "  files read {}, trusted unchanged from the last walk of the same tree {}",
            t.rehashed, t.trusted
        )?;
        if t.compared > 0 {
            writeln!(
                w,
                "  of them B's files compared byte for byte with A's, read side by side {}",
                t.compared
            )?;
        }
        if !self.ignored.is_empty() {
            let names: Vec<_> = self.ignored.iter().map(|c| c.name()).collect();
            writeln!(w, "  not compared (--ignore): {}", names.join(", "))?;
        }
        if !self.excludes.is_empty() {
            let x: Vec<_> = self
                .excludes
                .iter()
                .map(|x| display(x.as_bytes()))
                .collect();
            writeln!(w, "  excluded: {}", x.join(" "))?;
        }
        for x in &self.warnings {
            writeln!(w, "  warning: {x}")?;
        }
        if !self.privileged.is_empty() {
            writeln!(
                w,
                "  privileged entries in B: {} (setuid, setgid, capabilities, devices: the source decided them; check they belong)",
                self.privileged.len()
            )?;
            for x in self.privileged.iter().take(PRIVILEGED_SHOWN) {
                writeln!(w, "    {}  ({})", display_path(&x.path), x.what)?;
            }
            if self.privileged.len() > PRIVILEGED_SHOWN {
                writeln!(
                    w,
                    "    … and {} more (--json lists them all)",
                    self.privileged.len() - PRIVILEGED_SHOWN
                )?;
            }
        }
        for f in &self.findings {
            write!(w, "{:<10}  {}", f.class.name(), display_path(&f.path))?;
            match (f.a.is_empty(), f.b.is_empty()) {
                (true, true) => writeln!(w)?,
                (false, true) => writeln!(w, "  (A: {})", f.a)?,
                (true, false) => writeln!(w, "  (B: {})", f.b)?,
                (false, false) => writeln!(w, "  (A: {}, B: {})", f.a, f.b)?,
            }
        }
        Ok(())
    }

    /// One JSON document: `{"exit_code", "totals", "ignored", "excludes", "warnings",
    /// "privileged": [{"path", "path_hex"?, "what"}], "findings": [{"class", "path", "path_hex"?,
    /// "a", "b"}]}`. `path` is the UTF-8 name (lossy for other names, which
    /// then also carry `path_hex`, the exact bytes).
    pub fn render_json(&self, w: &mut dyn Write) -> io::Result<()> {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| {
                let mut o = serde_json::Map::new();
                o.insert("class".into(), f.class.name().into());
                json_path(&mut o, &f.path);
                o.insert("a".into(), f.a.clone().into());
                o.insert("b".into(), f.b.clone().into());
                o.into()
            })
            .collect();
        let privileged: Vec<serde_json::Value> = self
            .privileged
            .iter()
            .map(|x| {
                let mut o = serde_json::Map::new();
                json_path(&mut o, &x.path);
                o.insert("what".into(), x.what.clone().into());
                o.into()
            })
            .collect();
        let doc = serde_json::json!({
            "exit_code": self.exit_code(),
            "totals": self.totals,
            "ignored": self.ignored,
            "excludes": self.excludes,
            "warnings": self.warnings,
            "privileged": privileged,
            "findings": findings,
        });
        serde_json::to_writer_pretty(&mut *w, &doc)?;
        writeln!(w)
    }
}

/// `path` (the UTF-8 name, lossy for other names) and, for a name that is not UTF-8, `path_hex`
/// with the exact bytes.
fn json_path(o: &mut serde_json::Map<String, serde_json::Value>, path: &[u8]) {
    o.insert(
        "path".into(),
        String::from_utf8_lossy(path).into_owned().into(),
    );
    if std::str::from_utf8(path).is_err() {
        o.insert("path_hex".into(), hex(path).into());
    }
}

pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
