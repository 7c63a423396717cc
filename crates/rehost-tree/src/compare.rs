//! Comparison of two manifests: a pure function over data, the core of `verify tree`.
//!
//! Both entry lists are sorted by path, so this is one merge. Per entry present on both sides it
//! checks, in order: that both were read (else `unverified`/`unstable`, and nothing more is
//! claimed about the entry), the type, then per type the content (size first, then BLAKE3), the
//! symlink target, permission bits, uid, gid, mtime, xattrs and ACLs, device numbers, and the
//! hard-link partners (the other paths sharing its inode, among paths present on both sides).
//! Entries below a directory that could not be listed are not reported missing or extra: that
//! directory is reported unverified instead.

#[cfg(test)]
mod tests;

use crate::escape::{display, hex};
use crate::manifest::{Entry, Kind, LINK_NONE, Manifest, State, Xattr};
use crate::report::{Class, Finding, Report, Totals};
use std::collections::{BTreeSet, HashMap, HashSet};

#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// Classes not to compare (`--ignore`). Unverified and unstable cannot be turned off.
    pub ignore: BTreeSet<Class>,
}

pub fn compare(a: &Manifest, b: &Manifest, opts: &CompareOptions) -> Report {
    let mut c = Cmp {
        opts,
        findings: Vec::new(),
        a,
        b,
    };
    let unlisted_a = unlisted_dirs(a);
    let unlisted_b = unlisted_dirs(b);
    let groups_a = link_groups(a);
    let groups_b = link_groups(b);
    let mut equal = 0u64;
    let (mut i, mut j) = (0, 0);
    while i < a.entries.len() || j < b.entries.len() {
        let ord = match (a.entries.get(i), b.entries.get(j)) {
            (Some(x), Some(y)) => x.path.cmp(&y.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                let e = &a.entries[i];
                if !under(&unlisted_b, &e.path) {
                    c.add(Class::Missing, &e.path, describe(e), String::new());
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let e = &b.entries[j];
                if !under(&unlisted_a, &e.path) {
                    c.add(Class::Extra, &e.path, String::new(), describe(e));
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let before = c.findings.len();
                c.pair(&a.entries[i], &b.entries[j], &groups_a, &groups_b);
                if c.findings.len() == before {
                    equal += 1;
                }
                i += 1;
                j += 1;
            }
        }
    }
    let mut findings = c.findings;
    findings.sort_by(|x, y| x.path.cmp(&y.path).then(x.class.cmp(&y.class)));
    let mut totals = Totals {
        entries_a: a.entries.len() as u64,
        entries_b: b.entries.len() as u64,
        bytes_a: a.total_bytes(),
        bytes_b: b.total_bytes(),
        equal,
        rehashed: a.rehashed + b.rehashed,
        trusted: a.trusted + b.trusted,
        compared: a.compared + b.compared,
        ..Totals::default()
    };
    for f in &findings {
        *totals.by_class.entry(f.class).or_default() += 1;
    }
    let mut excludes = a.excludes.clone();
    for x in &b.excludes {
        if !excludes.contains(x) {
            excludes.push(x.clone());
        }
    }
    Report {
        findings,
        totals,
        ignored: opts
            .ignore
            .iter()
            .copied()
            .filter(|c| c.ignorable())
            .collect(),
        excludes,
        warnings: a.warnings.iter().chain(&b.warnings).cloned().collect(),
        privileged: b
            .entries
            .iter()
            .filter_map(|e| {
                crate::report::privilege(e).map(|what| crate::report::Privileged {
                    path: e.path.clone(),
                    what,
                })
            })
            .collect(),
    }
}

struct Cmp<'a> {
    opts: &'a CompareOptions,
    findings: Vec<Finding>,
    a: &'a Manifest,
    b: &'a Manifest,
}

fn describe(e: &Entry) -> String {
    match e.kind {
        Kind::File => format!("file, {} bytes", e.size),
        Kind::Symlink => format!("symlink to {}", display(e.target.as_deref().unwrap_or(b""))),
        k => k.name().to_string(),
    }
}

fn unlisted_dirs(m: &Manifest) -> HashSet<&[u8]> {
    m.entries
        .iter()
        .filter(|e| e.kind == Kind::Dir && e.state != State::Ok)
        .map(|e| &*e.path)
        .collect()
}

/// Is `path` strictly below one of these directories?
fn under(dirs: &HashSet<&[u8]>, path: &[u8]) -> bool {
    if dirs.is_empty() {
        return false;
    }
    if dirs.contains(&b""[..]) && !path.is_empty() {
        return true;
    }
    path.iter()
        .enumerate()
        .filter(|&(_, &c)| c == b'/')
        .any(|(k, _)| dirs.contains(&path[..k]))
}

fn link_groups(m: &Manifest) -> HashMap<u32, Vec<u32>> {
    let mut g: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, e) in m.entries.iter().enumerate() {
        if e.link != LINK_NONE {
            g.entry(e.link).or_default().push(i as u32);
        }
    }
    g
}

fn state_text(e: &Entry) -> String {
    e.state.describe()
}

fn xattr_split(x: &Option<Box<[Xattr]>>) -> (Vec<&Xattr>, Vec<&Xattr>) {
    x.iter()
        .flat_map(|xs| xs.iter())
        .partition(|(k, _)| k.starts_with(b"system.posix_acl_"))
}

fn xattr_text(xs: &[&Xattr]) -> String {
    if xs.is_empty() {
        return "none".into();
    }
    xs.iter()
        .map(|(k, v)| {
            let v = if v.len() > 32 {
                format!("{} bytes", v.len())
            } else {
                display(v)
            };
            format!("{}={}", display(k), v)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cmp<'_> {
    fn add(&mut self, class: Class, path: &[u8], a: String, b: String) {
        if class.ignorable() && self.opts.ignore.contains(&class) {
            return;
        }
        self.findings.push(Finding {
            class,
            path: path.into(),
            a,
            b,
        });
    }

    fn pair(
        &mut self,
        x: &Entry,
        y: &Entry,
        ga: &HashMap<u32, Vec<u32>>,
        gb: &HashMap<u32, Vec<u32>>,
    ) {
        let p = &x.path;
        if x.state != State::Ok || y.state != State::Ok {
            let class = if x.state == State::Unstable || y.state == State::Unstable {
                Class::Unstable
            } else {
                Class::Unverified
            };
            self.add(class, p, state_text(x), state_text(y));
            return;
        }
        if x.kind != y.kind {
            self.add(Class::Type, p, x.kind.name().into(), y.kind.name().into());
            return;
        }
        match x.kind {
            Kind::File => {
                if x.size != y.size {
                    self.add(
                        Class::Content,
                        p,
                        format!("{} bytes", x.size),
                        format!("{} bytes", y.size),
                    );
                } else if x.digest != y.digest {
                    let short = |d: Option<[u8; 32]>| d.map(|d| hex(&d[..8])).unwrap_or_default();
                    self.add(
                        Class::Content,
                        p,
                        format!("blake3 {}…", short(x.digest)),
                        format!("blake3 {}…", short(y.digest)),
                    );
                }
            }
            Kind::Symlink if x.target != y.target => {
                self.add(Class::Target, p, describe(x), describe(y));
            }
            Kind::Block | Kind::Char if x.rdev != y.rdev => {
                let d = |r| format!("{}:{}", libc::major(r), libc::minor(r));
                self.add(Class::Device, p, d(x.rdev), d(y.rdev));
            }
            _ => {}
        }
        // Linux symlinks have no permission bits of their own.
        if x.kind != Kind::Symlink && x.mode != y.mode {
            self.add(
                Class::Mode,
                p,
                format!("{:04o}", x.mode),
                format!("{:04o}", y.mode),
            );
        }
        if x.uid != y.uid {
            self.add(Class::Owner, p, x.uid.to_string(), y.uid.to_string());
        }
        if x.gid != y.gid {
            self.add(Class::Group, p, x.gid.to_string(), y.gid.to_string());
        }
        if x.mtime != y.mtime {
            self.add(Class::Mtime, p, x.mtime.to_string(), y.mtime.to_string());
        }
        if x.xattrs != y.xattrs {
            let (acl_x, xa_x) = xattr_split(&x.xattrs);
            let (acl_y, xa_y) = xattr_split(&y.xattrs);
            if xa_x != xa_y {
                self.add(Class::Xattr, p, xattr_text(&xa_x), xattr_text(&xa_y));
            }
            if acl_x != acl_y {
                self.add(Class::Acl, p, xattr_text(&acl_x), xattr_text(&acl_y));
            }
        }
        if x.kind != Kind::Dir && (x.link != LINK_NONE || y.link != LINK_NONE) {
            let pa = self.partners(self.a, self.b, x, ga);
            let pb = self.partners(self.b, self.a, y, gb);
            if pa != pb {
                let t = |v: &Vec<&[u8]>| {
                    if v.is_empty() {
                        "not linked".to_string()
                    } else {
                        format!(
                            "linked with {}",
                            v.iter().map(|p| display(p)).collect::<Vec<_>>().join(", ")
                        )
                    }
                };
                self.add(Class::Hardlink, p, t(&pa), t(&pb));
            }
        }
    }

    /// The other paths sharing `e`'s inode in `m` that also exist in `other`, sorted.
    fn partners<'m>(
        &self,
        m: &'m Manifest,
        other: &Manifest,
        e: &Entry,
        groups: &HashMap<u32, Vec<u32>>,
    ) -> Vec<&'m [u8]> {
        if e.link == LINK_NONE {
            return Vec::new();
        }
        groups[&e.link]
            .iter()
            .map(|&k| &*m.entries[k as usize].path)
            .filter(|q| *q != &*e.path && other.find(q).is_some())
            .collect()
    }
}
