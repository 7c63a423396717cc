//! Two scans → which keys of the old side are on the new side. Keys are matched by
//! [`Key::identity`] (their class and the fingerprint of their public half), never by path or
//! format: a PKCS#1 key stored as PKCS#8 elsewhere on the new side is present, and moved.

use crate::{Certificate, Found, Key, Kind, Scan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What became of a key of the old side (or where a key of the new side came from).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// On the new side at one of its old paths at least.
    Present,
    /// On the new side, at other paths only.
    Moved,
    /// Not on the new side.
    Missing,
    /// On the new side only.
    Extra,
    /// Its public half is unknown (an encrypted PKCS#8 key alone): it cannot be matched.
    Unidentified,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Present => "present",
            Verdict::Moved => "moved",
            Verdict::Missing => "missing",
            Verdict::Extra => "extra",
            Verdict::Unidentified => "unidentified",
        }
    }
}

/// One key, with where it is on each side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    pub verdict: Verdict,
    pub kind: Kind,
    /// Algorithm and size, e.g. `rsa 3072`.
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Paths on the old and the new side.
    pub old: Vec<String>,
    pub new: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// The configurations that name it on each side, as `PATH:LINE` (where it is used).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by_old: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by_new: Vec<String>,
}

/// Something wrong with a key where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `old` or `new`.
    pub side: String,
    pub path: String,
    pub what: String,
}

/// The comparison of two scans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub keys: Vec<Compared>,
    /// Problems of the new side fail the comparison; the old side's are shown, not counted.
    pub problems: Vec<Problem>,
    /// What is about to go wrong (a certificate expiring within 30 days), on either side:
    /// shown, not failed on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Problem>,
    /// What either side could not examine, prefixed with its side.
    pub errors: Vec<String>,
    /// 0: every key of the old side is on the new side; 1: one is missing or the new side has
    /// a problem; 2: not everything could be examined or matched.
    pub exit_code: i32,
}

impl Comparison {
    pub fn count(&self, v: Verdict) -> usize {
        self.keys.iter().filter(|k| k.verdict == v).count()
    }
}

/// Matches every key of `old` against `new`.
pub fn compare(old: &Scan, new: &Scan) -> Comparison {
    /// Keys by identity, with their paths; and the keys without one.
    type Grouped<'a> = (
        BTreeMap<String, (Key, Vec<String>, Vec<String>)>,
        Vec<&'a Found>,
    );
    fn group(s: &Scan) -> Grouped<'_> {
        let mut by: BTreeMap<String, (Key, Vec<String>, Vec<String>)> = BTreeMap::new();
        let mut alone: Vec<&Found> = Vec::new();
        for f in &s.found {
            match f.key.identity() {
                Some(id) => {
                    let e = by
                        .entry(id)
                        .or_insert_with(|| (f.key.clone(), Vec::new(), Vec::new()));
                    if !e.1.contains(&f.path) {
                        e.1.push(f.path.clone());
                    }
                    for u in &f.used_by {
                        if !e.2.contains(u) {
                            e.2.push(u.clone());
                        }
                    }
                }
                None => alone.push(f),
            }
        }
        (by, alone)
    }
    let (o, o_alone) = group(old);
    let (n, n_alone) = group(new);
    let entry = |verdict, k: &Key, old: Vec<String>, new: Vec<String>| Compared {
        verdict,
        kind: k.kind,
        algorithm: k.algorithm_and_size(),
        fingerprint: k.fingerprint(),
        old,
        new,
        certificate: k.certificate.clone(),
        used_by_old: Vec::new(),
        used_by_new: Vec::new(),
    };
    let mut keys = Vec::new();
    for (id, (k, paths, used)) in &o {
        match n.get(id) {
            Some((_, new_paths, new_used)) => {
                let v = if paths
                    .iter()
                    .any(|p| new_paths.iter().any(|q| old.relative(p) == new.relative(q)))
                {
                    Verdict::Present
                } else {
                    Verdict::Moved
                };
                keys.push(Compared {
                    used_by_old: used.clone(),
                    used_by_new: new_used.clone(),
                    ..entry(v, k, paths.clone(), new_paths.clone())
                });
            }
            None => keys.push(Compared {
                used_by_old: used.clone(),
                ..entry(Verdict::Missing, k, paths.clone(), Vec::new())
            }),
        }
    }
    for (id, (k, paths, used)) in &n {
        if !o.contains_key(id) {
            keys.push(Compared {
                used_by_new: used.clone(),
                ..entry(Verdict::Extra, k, Vec::new(), paths.clone())
            });
        }
    }
    for f in o_alone {
        keys.push(Compared {
            used_by_old: f.used_by.clone(),
            ..entry(
                Verdict::Unidentified,
                &f.key,
                vec![f.path.clone()],
                Vec::new(),
            )
        });
    }
    for f in n_alone {
        keys.push(Compared {
            used_by_new: f.used_by.clone(),
            ..entry(
                Verdict::Unidentified,
                &f.key,
                Vec::new(),
                vec![f.path.clone()],
            )
        });
    }
    keys.sort_by(|a, b| {
        (a.verdict, a.old.first().or(a.new.first()))
            .cmp(&(b.verdict, b.old.first().or(b.new.first())))
    });
    let mut problems = Vec::new();
    for (side, s) in [("old", old), ("new", new)] {
        for f in &s.found {
            for what in f.problems() {
                problems.push(Problem {
                    side: side.into(),
                    path: f.path.clone(),
                    what,
                });
            }
        }
    }
    let mut warnings = Vec::new();
    for (side, s) in [("old", old), ("new", new)] {
        for f in &s.found {
            for what in f.warnings() {
                warnings.push(Problem {
                    side: side.into(),
                    path: f.path.clone(),
                    what,
                });
            }
        }
    }
    let errors: Vec<String> = old
        .errors
        .iter()
        .map(|e| format!("old: {e}"))
        .chain(new.errors.iter().map(|e| format!("new: {e}")))
        .collect();
    let failed = keys.iter().any(|k| k.verdict == Verdict::Missing)
        || problems.iter().any(|p| p.side == "new");
    let unverified = !errors.is_empty()
        || keys
            .iter()
            .any(|k| k.verdict == Verdict::Unidentified && !k.old.is_empty());
    Comparison {
        keys,
        problems,
        warnings,
        errors,
        exit_code: if failed {
            1
        } else if unverified {
            2
        } else {
            0
        },
    }
}
