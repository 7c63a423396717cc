//! What surrounds the services, each from its own record under the host's root: the OS
//! (`/etc/os-release`), cron (`/etc/crontab`, `/etc/cron.d`, the users' crontabs, the
//! `cron.{hourly,daily,weekly,monthly}` directories), packages (dpkg's status file, read
//! directly and as a stream), accounts and groups (`/etc/passwd`, `/etc/group`; never
//! `/etc/shadow`), mounts (`/etc/fstab`, and the kernel's `/proc/self/mountinfo`),
//! `/etc/crypttab`, kernel parameters (`/etc/sysctl.conf`, `/etc/sysctl.d`, and the running
//! value of each key in `/proc/sys`).

use super::root::Root;
use super::units::MAX_DIR;
use rehost_survey::{Account, CronJob, CryptEntry, Gap, Group, Mount, Package, Sysctl, System};
use std::io::{BufRead, Read};

/// The largest configuration file read whole (crontab, passwd, fstab, sysctl.conf).
pub(crate) const MAX_FILE: u64 = 4 << 20;
/// The largest dpkg status file read (it is read as a stream, not kept).
const MAX_STATUS: u64 = 512 << 20;

fn gap(gaps: &mut Vec<Gap>, what: &str, e: &std::io::Error) {
    gaps.push(Gap {
        what: what.into(),
        why: format!("not read: {e}"),
    });
}

/// A file that may be absent: its text, `None` when it is not there, a gap when it is there
/// but could not be read.
pub(crate) fn optional(root: &Root, path: &str, gaps: &mut Vec<Gap>) -> Option<String> {
    match root.text(path, MAX_FILE) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            gap(gaps, path, &e);
            None
        }
    }
}

/// The regular files (or links to them) of a directory that may be absent.
fn files_of(root: &Root, dir: &str, gaps: &mut Vec<Gap>) -> Vec<String> {
    match root.list(dir, MAX_DIR) {
        Ok(l) => {
            if l.truncated {
                gaps.push(Gap {
                    what: dir.into(),
                    why: format!("more than {MAX_DIR} entries: only the first read"),
                });
            }
            l.entries
                .into_iter()
                .filter(|(n, ft)| {
                    !n.starts_with('.')
                        && matches!(
                            ft,
                            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Symlink
                        )
                })
                .map(|(n, _)| format!("{dir}/{n}"))
                .collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            gap(gaps, dir, &e);
            Vec::new()
        }
    }
}

/// The OS, kernel and init system.
pub(crate) fn system(root: &Root, gaps: &mut Vec<Gap>) -> System {
    let mut s = System::default();
    let os = optional(root, "/etc/os-release", gaps)
        .or_else(|| optional(root, "/usr/lib/os-release", gaps));
    match os {
        Some(text) => {
            for l in text.lines() {
                let Some((k, v)) = l.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim() {
                    "ID" => s.os_id = v,
                    "VERSION_ID" => s.os_version = v,
                    "PRETTY_NAME" => s.os_pretty = v,
                    _ => {}
                }
            }
        }
        None => gaps.push(Gap {
            what: "/etc/os-release".into(),
            why: "not there: the OS is unknown".into(),
        }),
    }
    let kernel = |f: &str| {
        std::fs::read_to_string(f)
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    };
    s.hostname = kernel("/proc/sys/kernel/hostname");
    s.fqdn = optional(root, "/etc/hosts", gaps)
        .and_then(|hosts| fqdn(&s.hostname, &hosts))
        .or_else(|| s.hostname.contains('.').then(|| s.hostname.clone()));
    s.kernel = kernel("/proc/sys/kernel/osrelease");
    s.arch = std::env::consts::ARCH.to_owned();
    s.init = if std::path::Path::new("/run/systemd/system").is_dir() {
        "systemd".into()
    } else {
        let c = kernel("/proc/1/comm");
        if c.is_empty() { "unknown".into() } else { c }
    };
    s.package_manager = if root.exists("/var/lib/dpkg/status") {
        Some("dpkg".into())
    } else if root.exists("/var/lib/rpm") {
        Some("rpm".into())
    } else {
        None
    };
    s
}

/// The host's fully qualified name from its own `/etc/hosts`: the canonical (first) name of
/// the first line that lists `hostname` and whose canonical name has a dot, what `hostname -f`
/// answers where `/etc/hosts` comes first in nsswitch. DNS is not asked: what it says about a
/// name is the DNS server's record, not the host's. None when no line says it.
pub(crate) fn fqdn(hostname: &str, hosts: &str) -> Option<String> {
    if hostname.is_empty() {
        return None;
    }
    hosts.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or_default();
        let mut words = l.split_whitespace();
        words.next()?.parse::<std::net::IpAddr>().ok()?;
        let names: Vec<&str> = words.collect();
        let canonical = *names.first()?;
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(hostname))
            || canonical
                .split('.')
                .next()
                .is_some_and(|h| h.eq_ignore_ascii_case(hostname));
        (listed && canonical.contains('.') && !canonical.ends_with('.'))
            .then(|| canonical.to_ascii_lowercase())
    })
}

/// Cron jobs of every place cron reads them from.
pub(crate) fn cron(root: &Root, gaps: &mut Vec<Gap>) -> Vec<CronJob> {
    let mut out = Vec::new();
    let mut system_files = vec!["/etc/crontab".to_owned()];
    system_files.extend(files_of(root, "/etc/cron.d", gaps));
    for f in system_files {
        if let Some(text) = optional(root, &f, gaps) {
            out.extend(crontab(&f, &text, None));
        }
    }
    for dir in ["/var/spool/cron/crontabs", "/var/spool/cron"] {
        for f in files_of(root, dir, gaps) {
            let user = f.rsplit('/').next().unwrap_or_default().to_owned();
            if let Some(text) = optional(root, &f, gaps) {
                out.extend(crontab(&f, &text, Some(&user)));
            }
        }
    }
    for period in ["hourly", "daily", "weekly", "monthly"] {
        for f in files_of(root, &format!("/etc/cron.{period}"), gaps) {
            out.push(CronJob {
                file: f.clone(),
                line: 0,
                user: "root".into(),
                schedule: format!("@{period}"),
                command: f,
            });
        }
    }
    out
}

/// The jobs of one crontab: a system one (`user` none: the sixth field names it) or a user's.
pub(crate) fn crontab(file: &str, text: &str, user: Option<&str>) -> Vec<CronJob> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        // An environment setting (`MAILTO=root`, `PATH = /bin`).
        let first = l.split_whitespace().next().unwrap_or_default();
        if first.contains('=') || l.split_whitespace().nth(1) == Some("=") {
            continue;
        }
        let fields = if first.starts_with('@') { 1 } else { 5 };
        let mut rest = l;
        let mut sched = Vec::new();
        for _ in 0..fields {
            let t = rest.trim_start();
            let end = t.find(char::is_whitespace).unwrap_or(t.len());
            sched.push(&t[..end]);
            rest = &t[end..];
        }
        let rest = rest.trim_start();
        let (who, command) = match user {
            Some(u) => (u.to_owned(), rest.to_owned()),
            None => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (rest[..end].to_owned(), rest[end..].trim().to_owned())
            }
        };
        if command.is_empty() || sched.len() < fields {
            continue;
        }
        out.push(CronJob {
            file: file.to_owned(),
            line: i as u32 + 1,
            user: who,
            schedule: sched.join(" "),
            command: rehost_plan::redact(&command),
        });
    }
    out
}

/// The packages dpkg has installed, from its status file read as a stream.
pub(crate) fn dpkg_packages(root: &Root, gaps: &mut Vec<Gap>) -> Vec<Package> {
    let path = "/var/lib/dpkg/status";
    let file = match root.file(path, MAX_STATUS) {
        Ok((f, _)) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            gap(gaps, path, &e);
            return Vec::new();
        }
    };
    parse_dpkg_status(std::io::BufReader::new(file.take(MAX_STATUS)))
}

/// The installed packages of a dpkg status file (`Status: install ok installed`).
pub(crate) fn parse_dpkg_status(r: impl BufRead) -> Vec<Package> {
    let mut out = Vec::new();
    let (mut name, mut version, mut arch, mut installed) =
        (String::new(), String::new(), String::new(), false);
    let mut flush =
        |name: &mut String, version: &mut String, arch: &mut String, inst: &mut bool| {
            if *inst && !name.is_empty() {
                out.push(Package {
                    name: std::mem::take(name),
                    version: std::mem::take(version),
                    arch: std::mem::take(arch),
                });
            }
            name.clear();
            version.clear();
            arch.clear();
            *inst = false;
        };
    for line in r.lines() {
        let Ok(line) = line else { break };
        if line.is_empty() {
            flush(&mut name, &mut version, &mut arch, &mut installed);
            continue;
        }
        if let Some(v) = line.strip_prefix("Package:") {
            name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Architecture:") {
            arch = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Status:") {
            installed = v.trim().ends_with(" installed");
        }
    }
    flush(&mut name, &mut version, &mut arch, &mut installed);
    out.sort();
    out
}

/// Accounts of `/etc/passwd` (no password field is kept; `/etc/shadow` is never read).
pub(crate) fn accounts(root: &Root, gaps: &mut Vec<Gap>) -> Vec<Account> {
    let Some(text) = optional(root, "/etc/passwd", gaps) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| Account {
                name: f[0].to_owned(),
                uid: f[2].parse().unwrap_or(u32::MAX),
                gid: f[3].parse().unwrap_or(u32::MAX),
                home: f[5].to_owned(),
                shell: f[6].to_owned(),
            })
        })
        .collect()
}

/// Groups of `/etc/group`.
pub(crate) fn groups(root: &Root, gaps: &mut Vec<Gap>) -> Vec<Group> {
    let Some(text) = optional(root, "/etc/group", gaps) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| Group {
                name: f[0].to_owned(),
                gid: f[2].parse().unwrap_or(u32::MAX),
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// `/etc/fstab`'s file systems and the kernel's mounts, one entry per target.
pub(crate) fn mounts(root: &Root, gaps: &mut Vec<Gap>) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    if let Some(text) = optional(root, "/etc/fstab", gaps) {
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 3 || f[0].starts_with('#') {
                continue;
            }
            out.push(Mount {
                source: f[0].to_owned(),
                target: unescape(f[1]),
                fstype: f[2].to_owned(),
                options: f.get(3).copied().unwrap_or("defaults").to_owned(),
                in_fstab: true,
                mounted: false,
            });
        }
    }
    match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => {
            for l in text.lines() {
                // ID PARENT MAJ:MIN ROOT TARGET OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
                let Some((head, tail)) = l.split_once(" - ") else {
                    continue;
                };
                let h: Vec<&str> = head.split(' ').collect();
                let t: Vec<&str> = tail.split(' ').collect();
                if h.len() < 6 || t.len() < 2 {
                    continue;
                }
                let target = unescape(h[4]);
                match out.iter_mut().find(|m| m.target == target) {
                    Some(m) => m.mounted = true,
                    None => out.push(Mount {
                        source: unescape(t[1]),
                        target,
                        fstype: t[0].to_owned(),
                        options: h[5].to_owned(),
                        in_fstab: false,
                        mounted: true,
                    }),
                }
            }
        }
        Err(e) => gap(gaps, "/proc/self/mountinfo", &e),
    }
    out
}

/// `\040` and the like, as fstab and mountinfo write spaces in paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/etc/crypttab`'s entries (the key file by its path only; never read here).
pub(crate) fn crypttab(root: &Root, gaps: &mut Vec<Gap>) -> Vec<CryptEntry> {
    let Some(text) = optional(root, "/etc/crypttab", gaps) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 2 || f[0].starts_with('#') {
                return None;
            }
            Some(CryptEntry {
                name: f[0].to_owned(),
                device: f[1].to_owned(),
                key_file: f.get(2).copied().unwrap_or("none").to_owned(),
                options: f.get(3).copied().unwrap_or_default().to_owned(),
                line: i as u32 + 1,
            })
        })
        .collect()
}

/// The keys set in `/etc/sysctl.conf` and `/etc/sysctl.d/*.conf` (the later file winning),
/// each with its running value from `/proc/sys`.
pub(crate) fn sysctl(root: &Root, gaps: &mut Vec<Gap>) -> Vec<Sysctl> {
    let mut files = files_of(root, "/etc/sysctl.d", gaps);
    files.retain(|f| f.ends_with(".conf"));
    files.push("/etc/sysctl.conf".into());
    let mut set: std::collections::BTreeMap<String, (String, String)> = Default::default();
    for f in files {
        let Some(text) = optional(root, &f, gaps) else {
            continue;
        };
        for (i, l) in text.lines().enumerate() {
            let l = l.trim().trim_start_matches('-');
            if l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            let key = k.trim().replace('/', ".");
            if key.is_empty() || key.contains('*') {
                continue;
            }
            set.insert(key, (v.trim().to_owned(), format!("{f}:{}", i + 1)));
        }
    }
    set.into_iter()
        .map(|(key, (written, at))| {
            let proc = format!("/proc/sys/{}", key.replace('.', "/"));
            let value = std::fs::read_to_string(&proc)
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| format!("{written} (as written; {proc} not read)"));
            Sysctl {
                key,
                value,
                set_in: Some(at),
            }
        })
        .collect()
}
