//! systemd's records under the host's root: unit files (`ExecStart=`, `User=`,
//! `WorkingDirectory=`, `StateDirectory=`, a timer's schedule and `Unit=`) and the units enabled
//! at boot (`*.wants/` and `*.requires/` links). Where systemd does not run (a container, a test
//! host), a process is tied to the unit whose `ExecStart=` executable is the process's
//! executable and whose arguments its command line holds, in order: read from both records,
//! never from a name.

use super::root::Root;
use rehost_survey::{Gap, Timer, UnitState};
use rustix::fs::FileType;
use std::collections::{BTreeMap, BTreeSet};

/// Where unit files live, the first holding a name winning (systemd's order for the system
/// manager).
pub(crate) const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// Entries read of one directory; a directory with more is cut, with a gap.
pub(crate) const MAX_DIR: usize = 20_000;
/// The largest unit file read.
const MAX_UNIT: u64 = 256 << 10;

/// A unit file as far as the survey reads it.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitFile {
    pub name: String,
    /// The file and its drop-ins (`NAME.d/*.conf`), as the host names them.
    pub files: Vec<String>,
    /// Every `ExecStart=` (the last non-empty one counts for a plain service).
    pub exec_start: Option<String>,
    pub user: Option<String>,
    pub working_directory: Option<String>,
    pub state_directory: Vec<String>,
    /// A timer's `On*=` settings, `KEY=VALUE` each, and its `Unit=`.
    pub schedule: Vec<String>,
    pub timer_unit: Option<String>,
}

/// The unit files of the host, by name (services and timers only), and the units enabled.
#[derive(Debug, Default)]
pub(crate) struct Units {
    pub files: BTreeMap<String, UnitFile>,
    pub enabled: BTreeSet<String>,
}

impl Units {
    /// Reads every `*.service` and `*.timer` of [`UNIT_DIRS`] under the root, and the
    /// `*.wants/`/`*.requires/` links of `/etc/systemd/system`.
    pub(crate) fn read(root: &Root, gaps: &mut Vec<Gap>) -> Units {
        let mut u = Units::default();
        for dir in UNIT_DIRS {
            let listing = match root.list(dir, MAX_DIR) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
                    continue;
                }
                Err(e) => {
                    gaps.push(Gap {
                        what: (*dir).into(),
                        why: format!("not listed: {e}"),
                    });
                    continue;
                }
            };
            if listing.truncated {
                gaps.push(Gap {
                    what: (*dir).into(),
                    why: format!("more than {MAX_DIR} entries: only the first read"),
                });
            }
            for (name, ft) in &listing.entries {
                let unit = name.ends_with(".service") || name.ends_with(".timer");
                if unit
                    && (*ft == FileType::RegularFile || *ft == FileType::Symlink)
                    && !u.files.contains_key(name)
                {
                    let path = format!("{dir}/{name}");
                    match root.text(&path, MAX_UNIT) {
                        Ok(text) => {
                            let mut f = UnitFile {
                                name: name.clone(),
                                files: vec![path.clone()],
                                ..UnitFile::default()
                            };
                            parse(&text, &mut f);
                            u.files.insert(name.clone(), f);
                        }
                        // A link to /dev/null: the unit is masked.
                        Err(_) if *ft == FileType::Symlink => {}
                        Err(e) => gaps.push(Gap {
                            what: path,
                            why: format!("not read: {e}"),
                        }),
                    }
                }
                if *ft == FileType::Directory
                    && (name.ends_with(".wants") || name.ends_with(".requires"))
                    && *dir == "/etc/systemd/system"
                {
                    let at = format!("{dir}/{name}");
                    match root.list(&at, MAX_DIR) {
                        Ok(l) => u.enabled.extend(l.entries.into_iter().map(|(n, _)| n)),
                        Err(e) => gaps.push(Gap {
                            what: at,
                            why: format!("not listed, the units it enables are unknown: {e}"),
                        }),
                    }
                }
            }
        }
        // Drop-ins of the units read.
        for dir in UNIT_DIRS {
            for f in u.files.values_mut() {
                let d = format!("{dir}/{}.d", f.name);
                let Ok(l) = root.list(&d, 256) else { continue };
                for (name, _) in l.entries.iter().filter(|(n, _)| n.ends_with(".conf")) {
                    let path = format!("{d}/{name}");
                    if let Ok(text) = root.text(&path, MAX_UNIT) {
                        parse(&text, f);
                        f.files.push(path);
                    }
                }
            }
        }
        u
    }

    /// The unit file of `name`, or of its template (`postgresql@15-main.service` →
    /// `postgresql@.service`).
    pub(crate) fn file_of(&self, name: &str) -> Option<&UnitFile> {
        self.files.get(name).or_else(|| {
            let (head, rest) = name.split_once('@')?;
            let suffix = rest.rsplit_once('.').map(|(_, s)| s)?;
            self.files.get(&format!("{head}@.{suffix}"))
        })
    }

    /// The timers, with their target and whether they are enabled.
    pub(crate) fn timers(&self) -> Vec<Timer> {
        self.files
            .values()
            .filter(|f| f.name.ends_with(".timer") && !f.name.contains('@'))
            .map(|f| Timer {
                name: f.name.clone(),
                unit: f
                    .timer_unit
                    .clone()
                    .unwrap_or_else(|| format!("{}.service", f.name.trim_end_matches(".timer"))),
                schedule: f.schedule.clone(),
                enabled: self.enabled.contains(&f.name),
                file: f.files.first().cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The units enabled at boot.
    pub(crate) fn states(&self) -> Vec<UnitState> {
        self.enabled
            .iter()
            .map(|n| UnitState {
                name: n.clone(),
                enabled: true,
            })
            .collect()
    }

    /// The service unit whose `ExecStart=` runs `exe` with arguments `cmdline` holds (in
    /// order), the one matching the most arguments; `exe` as this machine names it, the
    /// executable of `ExecStart=` compared after its symlinks are resolved.
    pub(crate) fn matching(&self, exe: &str, cmdline: &[String]) -> Option<&UnitFile> {
        let joined = cmdline.join(" ");
        let mut best: Option<(usize, &UnitFile)> = None;
        // A template's `ExecStart=` has specifiers (`%i`) no command line shows.
        for f in self
            .files
            .values()
            .filter(|f| f.name.ends_with(".service") && !f.name.contains('@'))
        {
            let Some(exec) = &f.exec_start else { continue };
            let words = split_exec(exec);
            let Some((program, args)) = words.split_first() else {
                continue;
            };
            if !same_executable(program, exe) {
                continue;
            }
            // Each argument found in the command line after the one before it.
            let mut at = 0;
            let all = args.iter().all(|a| match joined[at..].find(a.as_str()) {
                Some(i) => {
                    at += i + a.len();
                    true
                }
                None => false,
            });
            if all && best.is_none_or(|(n, _)| args.len() > n) {
                best = Some((args.len(), f));
            }
        }
        best.map(|(_, f)| f)
    }
}

/// Whether `program` (as `ExecStart=` writes it) is the executable `exe`.
fn same_executable(program: &str, exe: &str) -> bool {
    if program == exe {
        return true;
    }
    if !program.starts_with('/') {
        return exe.rsplit('/').next() == Some(program);
    }
    std::fs::canonicalize(program)
        .map(|p| p.to_string_lossy() == exe)
        .unwrap_or(false)
}

/// `ExecStart=`'s words as systemd splits them: quotes grouping, the prefixes `-@:+!` of the
/// executable dropped.
pub(crate) fn split_exec(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (_, c) => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(cur);
    }
    if let Some(first) = words.first_mut() {
        *first = first
            .trim_start_matches(['-', '@', ':', '+', '!'])
            .to_owned();
    }
    words
}

/// The settings of a unit file (or drop-in) the survey uses, in its sections.
pub(crate) fn parse(text: &str, f: &mut UnitFile) {
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        // A line ending in a backslash continues on the next.
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        let line = if pending.is_empty() {
            raw.to_owned()
        } else {
            std::mem::take(&mut pending) + raw.trim_start()
        };
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match (section.as_str(), k) {
            ("Service", "ExecStart") if v.is_empty() => f.exec_start = None,
            ("Service", "ExecStart") => f.exec_start = Some(v.to_owned()),
            ("Service", "User") => f.user = Some(v.to_owned()).filter(|v| !v.is_empty()),
            ("Service", "WorkingDirectory") => {
                f.working_directory =
                    Some(v.trim_start_matches('-').to_owned()).filter(|v| v.starts_with('/'))
            }
            ("Service", "StateDirectory") => f
                .state_directory
                .extend(v.split_whitespace().map(|d| format!("/var/lib/{d}"))),
            ("Timer", "Unit") => f.timer_unit = Some(v.to_owned()),
            ("Timer", k) if k.starts_with("On") => f.schedule.push(format!("{k}={v}")),
            _ => {}
        }
    }
}
