//! The services: the listening sockets grouped by the process that holds them and its unit,
//! each followed along its chain (see `chain.rs`), and the units timers start. Also the
//! records read through a command: the addresses (`ip -o addr show`), rpm's packages, the
//! firewall (`nft list ruleset`).

use super::chain;
use super::procs::{self, ProcInfo};
use super::root::Root;
use super::units::{UnitFile, Units, split_exec};
use crate::LocalHost;
use rehost_survey::{
    Address, ConfigFile, DatabaseRef, Firewall, Found, FoundBy, Gap, Listen, NameRef, Package,
    PackageRef, Process, Proto, Service, Socket, Timer, Unit,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;

/// Processes kept per service.
const MAX_PROCESSES: usize = 32;

/// What the service walk needs of the host.
pub(crate) struct Context<'a> {
    pub host: &'a LocalHost,
    pub root: &'a Root,
    pub units: &'a Units,
    pub accounts: &'a [rehost_survey::Account],
    pub hostname: &'a str,
    pub manager: Option<&'a str>,
    pub systemd: bool,
    pub cancel: &'a AtomicBool,
}

pub(crate) struct Followed {
    pub services: Vec<Service>,
    pub sockets: Vec<Socket>,
}

/// A service being assembled: its unit file (where one was tied to it) and main process.
struct Draft {
    service: Service,
    unit_file: Option<UnitFile>,
    main: Option<ProcInfo>,
}

/// Every listening socket, tied to the service of its process, and every service followed
/// along its chain; the units timers start are services too.
pub(crate) fn follow(
    cx: &Context,
    timers: &[Timer],
    gaps: &mut Vec<Gap>,
    progress: &mut dyn FnMut(u64, u64),
) -> Followed {
    let listeners = procs::listeners(gaps);
    let owners = procs::owners(listeners.iter().map(|l| l.inode));
    let unowned = listeners
        .iter()
        .filter(|l| !owners.contains_key(&l.inode))
        .count();
    if unowned > 0 {
        gaps.push(Gap {
            what: "/proc/*/fd".into(),
            why: format!(
                "{unowned} listening socket(s) held by no process this user may look into (another user's, or the kernel's): survey as root"
            ),
        });
    }
    let mut infos: HashMap<u32, ProcInfo> = HashMap::new();
    for pid in owners.values() {
        infos
            .entry(*pid)
            .or_insert_with(|| procs::process(*pid, cx.systemd, gaps));
    }
    // A process whose parent runs the same executable and holds sockets too (a worker) is
    // its parent's service.
    let leader = |pid: u32| -> u32 {
        let mut at = pid;
        for _ in 0..8 {
            let Some(p) = infos.get(&at) else { break };
            match infos.get(&p.ppid) {
                Some(parent) if parent.exe == p.exe => at = p.ppid,
                _ => break,
            }
        }
        at
    };
    let mut drafts: BTreeMap<String, Draft> = BTreeMap::new();
    let mut key_of_pid: HashMap<u32, String> = HashMap::new();
    let mut pids: Vec<u32> = infos.keys().copied().collect();
    pids.sort_unstable();
    for pid in pids {
        let lead = leader(pid);
        let p = infos[&lead].clone();
        let (unit_name, unit_file, found) = unit_of(cx, &p);
        let id = match &unit_name {
            Some(u) => u.clone(),
            None => {
                // A process gone before its status was read has no name left: its pid.
                let base = match p.comm.as_str() {
                    "" => format!("process:{lead}"),
                    comm => format!("process:{comm}"),
                };
                match key_of_pid.get(&lead) {
                    Some(k) => k.clone(),
                    None if drafts.contains_key(&base) => format!("{base}@{lead}"),
                    None => base,
                }
            }
        };
        key_of_pid.insert(pid, id.clone());
        let d = drafts.entry(id.clone()).or_insert_with(|| Draft {
            service: empty_service(&id),
            unit_file: unit_file.clone(),
            main: Some(p.clone()),
        });
        if d.service.unit.is_none()
            && let (Some(name), Some(found)) = (unit_name, found)
        {
            d.service.unit = Some(unit(cx, &name, unit_file.as_ref(), found));
        }
        let me = &infos[&pid];
        if d.service.processes.len() < MAX_PROCESSES
            && !d.service.processes.iter().any(|x| x.pid == pid)
        {
            d.service.processes.push(process(me, cx.accounts));
        }
    }
    let mut sockets = Vec::new();
    for l in &listeners {
        let pid = owners.get(&l.inode).copied();
        let service = pid.and_then(|p| key_of_pid.get(&p)).cloned();
        if let Some(d) = service.as_ref().and_then(|s| drafts.get_mut(s))
            && !d.service.listens.contains(&l.listen)
        {
            d.service.listens.push(l.listen.clone());
        }
        sockets.push(Socket {
            listen: l.listen.clone(),
            service,
            pid,
            found: l.found.clone(),
        });
    }
    // The units timers start, which may run nothing now.
    for t in timers {
        if drafts.contains_key(&t.unit) {
            continue;
        }
        let Some(f) = cx.units.file_of(&t.unit) else {
            gaps.push(Gap {
                what: t.file.clone(),
                why: format!("starts {}, whose unit file is not there", t.unit),
            });
            continue;
        };
        let found = Found::new(FoundBy::Init, format!("{} (Unit= of {})", f.name, t.file));
        let mut s = empty_service(&t.unit);
        s.unit = Some(unit(cx, &t.unit, Some(f), found));
        drafts.insert(
            t.unit.clone(),
            Draft {
                service: s,
                unit_file: Some(f.clone()),
                main: None,
            },
        );
    }
    // The packages of every executable at once: one `dpkg-query -S` reads dpkg's whole file
    // database, however many paths it is asked about.
    let exes: Vec<String> = drafts
        .values()
        .filter_map(|d| runs(cx, d).0)
        // A package owns a path; a bare name would be taken as a pattern by `dpkg-query -S`.
        .filter(|e| e.starts_with('/'))
        .collect();
    let packages = chain::packages_of(cx.host, &exes, cx.manager, cx.cancel, gaps);
    let total = drafts.len() as u64;
    let mut services = Vec::new();
    for (i, (_, mut d)) in drafts.into_iter().enumerate() {
        progress(i as u64, total);
        d.service.processes.sort_by_key(|p| p.pid);
        chain_of(cx, &mut d, &packages, gaps);
        services.push(d.service);
    }
    progress(total, total);
    Followed { services, sockets }
}

fn empty_service(id: &str) -> Service {
    Service {
        id: id.to_owned(),
        kind: None,
        unit: None,
        processes: Vec::new(),
        package: None,
        listens: Vec::new(),
        config: Vec::new(),
        data: Vec::new(),
        databases: Vec::new(),
        keys: Vec::new(),
        names: Vec::new(),
    }
}

fn process(p: &ProcInfo, accounts: &[rehost_survey::Account]) -> Process {
    Process {
        pid: p.pid,
        exe: p.exe.clone().unwrap_or_default(),
        cmdline: p.cmdline.clone(),
        user: procs::user_name(p.uid, accounts),
    }
}

/// The unit a process belongs to: its cgroup's where systemd runs, else the unit file whose
/// `ExecStart=` runs its executable with its arguments.
fn unit_of(cx: &Context, p: &ProcInfo) -> (Option<String>, Option<UnitFile>, Option<Found>) {
    if let Some(u) = &p.cgroup_unit {
        let found = Found::new(FoundBy::Kernel, format!("/proc/{}/cgroup", p.pid));
        return (Some(u.clone()), cx.units.file_of(u).cloned(), Some(found));
    }
    if cx.systemd {
        return (None, None, None);
    }
    let Some(exe) = &p.exe else {
        return (None, None, None);
    };
    match cx.units.matching(exe, &p.cmdline) {
        Some(f) => {
            let found = Found::new(
                FoundBy::Init,
                format!(
                    "{}: ExecStart= runs /proc/{pid}/exe with the arguments of /proc/{pid}/cmdline (systemd is not running)",
                    f.files.first().map(String::as_str).unwrap_or(&f.name),
                    pid = p.pid
                ),
            );
            (Some(f.name.clone()), Some(f.clone()), Some(found))
        }
        None => (None, None, None),
    }
}

fn unit(cx: &Context, name: &str, f: Option<&UnitFile>, found: Found) -> Unit {
    Unit {
        name: name.to_owned(),
        files: f.map(|f| f.files.clone()).unwrap_or_default(),
        exec_start: f
            .and_then(|f| f.exec_start.as_deref())
            .map(rehost_plan::redact),
        user: f.and_then(|f| f.user.clone()),
        enabled: cx.units.enabled.contains(name),
        found,
    }
}

/// What the service is, from its package or its executable's file name.
fn kind_of(package: Option<&str>, exe: &str) -> Option<String> {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    let pkg = package.unwrap_or_default();
    let k = if base == "nginx" || pkg.starts_with("nginx") {
        "nginx"
    } else if base == "postgres" || base == "postmaster" || pkg.starts_with("postgresql") {
        "postgresql"
    } else if matches!(base, "mariadbd" | "mysqld") || pkg.starts_with("mariadb-server") {
        "mariadb"
    } else if base == "sshd" || pkg == "openssh-server" {
        "sshd"
    } else if base == "knotd" || pkg == "knot" {
        "knot"
    } else if base == "named" || pkg == "bind9" {
        "bind"
    } else {
        return None;
    };
    Some(k.into())
}

/// Follows a service from its executable: package, configuration, data, keys, names.
/// What a service runs: its executable (as this machine names it), command line, main pid and
/// user; from its main process, else from its unit's `ExecStart=`.
type Runs = (Option<String>, Vec<String>, Option<u32>, String);

fn runs(cx: &Context, d: &Draft) -> Runs {
    match &d.main {
        Some(p) => (
            p.exe.clone(),
            p.cmdline.clone(),
            Some(p.pid),
            procs::user_name(p.uid, cx.accounts),
        ),
        None => {
            let words = d
                .unit_file
                .as_ref()
                .and_then(|f| f.exec_start.as_deref())
                .map(split_exec)
                .unwrap_or_default();
            let exe = words.first().map(|w| {
                std::fs::canonicalize(w)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| w.clone())
            });
            let user = d
                .unit_file
                .as_ref()
                .and_then(|f| f.user.clone())
                .unwrap_or_else(|| "root".into());
            (exe, words, None, user)
        }
    }
}

fn chain_of(
    cx: &Context,
    d: &mut Draft,
    packages: &HashMap<String, PackageRef>,
    gaps: &mut Vec<Gap>,
) {
    let (exe, cmdline, pid, user) = runs(cx, d);
    let s = &mut d.service;
    let Some(exe) = exe else { return };
    let host_path = |p: &str| cx.root.host_path(p).unwrap_or_else(|| p.to_owned());
    s.package = packages.get(&exe).cloned();
    s.kind = kind_of(s.package.as_ref().map(|p| p.name.as_str()), &exe);
    let cmd_found = |pid: Option<u32>| match pid {
        Some(p) => Found::new(FoundBy::Kernel, format!("/proc/{p}/cmdline")),
        None => Found::new(
            FoundBy::Init,
            format!("ExecStart= of {}", s_unit_file(&d.unit_file)),
        ),
    };
    let (config, data) = chain::from_cmdline(&cmdline);
    for c in &config {
        push_config(s, &host_path(c), false, cmd_found(pid));
    }
    if let Some(p) = &s.package {
        for c in chain::conffiles(cx.root, &p.name, gaps) {
            push_config(s, &c.path, true, c.found);
        }
    }
    let mut names: Vec<NameRef> = Vec::new();
    match s.kind.as_deref() {
        Some("nginx") => nginx(
            cx,
            s,
            &exe,
            config.first().map(String::as_str),
            &mut names,
            gaps,
        ),
        Some("postgresql") => postgres(cx, s, &exe, &user, pid, &mut names, gaps),
        Some("mariadb") => mariadb(cx, s, pid, gaps),
        _ => {}
    }
    for (flag, dir) in &data {
        if !s.data.iter().any(|x| x.path == host_path(dir)) {
            let role = match s.kind.as_deref() {
                Some("postgresql") => "postgresql-data-directory",
                Some("mariadb") => "mariadb-datadir",
                _ => "data-directory",
            };
            let mut found = cmd_found(pid);
            found.source = format!("{} ({flag})", found.source);
            s.data.push(chain::data_set(
                cx.root,
                role,
                &host_path(dir),
                found,
                cx.accounts,
            ));
        }
    }
    if let Some(f) = &d.unit_file {
        let at = Found::new(FoundBy::Init, s_unit_file(&d.unit_file));
        for (role, dir) in f
            .working_directory
            .iter()
            .map(|w| ("working-directory", w))
            .chain(f.state_directory.iter().map(|w| ("state-directory", w)))
        {
            if !s.data.iter().any(|x| &x.path == dir) {
                s.data
                    .push(chain::data_set(cx.root, role, dir, at.clone(), cx.accounts));
            }
        }
    }
    if s.listens.iter().any(|l| l.proto != Proto::Unix) && !cx.hostname.is_empty() {
        names.push(NameRef {
            name: cx.hostname.to_owned(),
            found: Found::new(FoundBy::Kernel, "/proc/sys/kernel/hostname"),
        });
    }
    names.sort();
    names.dedup_by(|a, b| a.name == b.name);
    s.names = names;
}

fn s_unit_file(f: &Option<UnitFile>) -> String {
    f.as_ref()
        .and_then(|f| f.files.first().cloned())
        .unwrap_or_else(|| "its unit".into())
}

fn push_config(s: &mut Service, path: &str, conffile: bool, found: Found) {
    match s.config.iter_mut().find(|c| c.path == path) {
        Some(c) => c.conffile |= conffile,
        None => s.config.push(ConfigFile {
            path: path.to_owned(),
            conffile,
            found,
        }),
    }
}

fn nginx(
    cx: &Context,
    s: &mut Service,
    exe: &str,
    config: Option<&str>,
    names: &mut Vec<NameRef>,
    gaps: &mut Vec<Gap>,
) {
    let Some(n) = chain::nginx(cx.host, exe, config, cx.cancel, gaps) else {
        return;
    };
    let shown = match config {
        Some(c) => format!("{exe} -T -c {c}"),
        None => format!("{exe} -T"),
    };
    let host_path = |p: &str| cx.root.host_path(p);
    for f in &n.files {
        let path = host_path(f).unwrap_or_else(|| f.clone());
        push_config(s, &path, false, Found::new(FoundBy::Server, shown.clone()));
    }
    for (directive, value, at) in n.directives {
        let at_host = match at.rsplit_once(':') {
            Some((f, line)) => format!("{}:{line}", host_path(f).unwrap_or_else(|| f.to_owned())),
            None => at.clone(),
        };
        let found = Found::new(FoundBy::File, format!("{directive} at {at_host}"));
        match directive.as_str() {
            "root" | "alias" => {
                let path = value.trim_matches('"').to_owned();
                let Some(path) = host_path(&path) else {
                    gaps.push(Gap {
                        what: at_host,
                        why: format!("{directive} {path}: outside the host's root"),
                    });
                    continue;
                };
                if !s.data.iter().any(|d| d.path == path) {
                    s.data.push(chain::data_set(
                        cx.root,
                        &format!("nginx-{directive}"),
                        &path,
                        found,
                        cx.accounts,
                    ));
                }
            }
            "ssl_certificate" | "ssl_certificate_key" | "ssl_trusted_certificate" => {
                let path = value.trim_matches('"').to_owned();
                if path.starts_with("data:") || path.contains('$') {
                    continue;
                }
                let Some(path) = host_path(&path) else {
                    gaps.push(Gap {
                        what: at_host,
                        why: format!("{directive} {path}: outside the host's root"),
                    });
                    continue;
                };
                if s.keys.iter().any(|k| k.path == path) {
                    continue;
                }
                chain::keys_of(cx.host, &path, found, &mut s.keys, names, gaps);
            }
            "server_name" => {
                for name in value.split_whitespace() {
                    let name = name.trim_matches('"');
                    if name.is_empty() || name == "_" || name.starts_with('~') {
                        continue;
                    }
                    names.push(NameRef {
                        name: name.to_owned(),
                        found: found.clone(),
                    });
                }
            }
            _ => {}
        }
    }
}

fn first_port(s: &Service) -> Option<u16> {
    s.listens
        .iter()
        .find(|l| l.proto == Proto::Tcp)
        .map(|l| l.port)
}

fn postgres(
    cx: &Context,
    s: &mut Service,
    exe: &str,
    user: &str,
    pid: Option<u32>,
    names: &mut Vec<NameRef>,
    gaps: &mut Vec<Gap>,
) {
    let Some(port) = first_port(s) else {
        return;
    };
    let socket = format!(".s.PGSQL.{port}");
    let socket_dir = s
        .listens
        .iter()
        .find(|l: &&Listen| l.proto == Proto::Unix && l.address.ends_with(&socket))
        .and_then(|l| l.address.rsplit_once('/').map(|(d, _)| d.to_owned()));
    match chain::postgres(cx.host, exe, port, socket_dir.as_deref(), user, cx.cancel) {
        Ok(a) => {
            let asked =
                |what: &str| Found::new(FoundBy::Server, format!("SHOW {what} on port {port}"));
            let dir = cx
                .root
                .host_path(&a.data_directory)
                .unwrap_or(a.data_directory.clone());
            s.data.push(chain::data_set(
                cx.root,
                "postgresql-data-directory",
                &dir,
                asked("data_directory"),
                cx.accounts,
            ));
            for (what, path) in [("config_file", &a.config_file), ("hba_file", &a.hba_file)] {
                let p = cx.root.host_path(path).unwrap_or(path.clone());
                push_config(s, &p, false, asked(what));
            }
            for (setting, file) in &a.ssl_files {
                let Some(path) = cx.root.host_path(file) else {
                    gaps.push(Gap {
                        what: format!("PostgreSQL on port {port}"),
                        why: format!("{setting} {file}: outside the host's root"),
                    });
                    continue;
                };
                let found = Found::new(FoundBy::Server, format!("SHOW {setting} on port {port}"));
                chain::keys_of(cx.host, &path, found, &mut s.keys, names, gaps);
            }
            s.databases.push(DatabaseRef {
                engine: "postgresql".into(),
                version: Some(a.version),
                port,
                names: a.databases,
                found: asked("server_version"),
            });
        }
        Err(e) => {
            gaps.push(Gap {
                what: format!("PostgreSQL on port {port}"),
                why: format!(
                    "not asked ({e}): its data directory is taken from its working directory; survey as root, or let {user} connect"
                ),
            });
            if let Some(pid) = pid
                && let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd"))
            {
                let cwd = cwd.to_string_lossy();
                let dir = cx.root.host_path(&cwd).unwrap_or(cwd.into_owned());
                s.data.push(chain::data_set(
                    cx.root,
                    "postgresql-data-directory",
                    &dir,
                    Found::new(FoundBy::Kernel, format!("/proc/{pid}/cwd")),
                    cx.accounts,
                ));
            }
        }
    }
}

fn mariadb(cx: &Context, s: &mut Service, pid: Option<u32>, gaps: &mut Vec<Gap>) {
    let port = first_port(s).unwrap_or(3306);
    let socket = s
        .listens
        .iter()
        .find(|l| l.proto == Proto::Unix)
        .map(|l| l.address.clone());
    match chain::mariadb(cx.host, socket.as_deref(), port, cx.cancel) {
        Ok((dir, version, names)) => {
            let found = Found::new(FoundBy::Server, format!("SELECT @@datadir on port {port}"));
            let dir = cx.root.host_path(&dir).unwrap_or(dir);
            s.data.push(chain::data_set(
                cx.root,
                "mariadb-datadir",
                &dir,
                found.clone(),
                cx.accounts,
            ));
            s.databases.push(DatabaseRef {
                engine: "mariadb".into(),
                version: Some(version),
                port,
                names,
                found,
            });
        }
        Err(e) => gaps.push(Gap {
            what: format!(
                "MariaDB on port {port}{}",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
            why: format!("not asked ({e}): its data directory is unknown; survey as root"),
        }),
    }
}

/// The host's addresses from `ip -o addr show`.
pub(crate) fn addresses(
    host: &LocalHost,
    cancel: &AtomicBool,
    gaps: &mut Vec<Gap>,
) -> Vec<Address> {
    match chain::run(host, &["ip", "-o", "addr", "show"], &[], cancel) {
        Ok(r) if r.code == Some(0) => r
            .out
            .iter()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4 && (f[2] == "inet" || f[2] == "inet6")).then(|| Address {
                    interface: f[1].to_owned(),
                    address: f[3].to_owned(),
                })
            })
            .collect(),
        Ok(r) => {
            gaps.push(Gap {
                what: "ip -o addr show".into(),
                why: format!("failed: {}", r.err),
            });
            Vec::new()
        }
        Err(e) => {
            gaps.push(Gap {
                what: "ip -o addr show".into(),
                why: format!("did not run ({e}): the addresses are unknown; install iproute2"),
            });
            Vec::new()
        }
    }
}

/// rpm's installed packages.
pub(crate) fn rpm_packages(
    host: &LocalHost,
    cancel: &AtomicBool,
    gaps: &mut Vec<Gap>,
) -> Vec<Package> {
    let argv = [
        "rpm",
        "-qa",
        "--qf",
        "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n",
    ];
    match chain::run(host, &argv, &[], cancel) {
        Ok(r) if r.code == Some(0) => {
            let mut out: Vec<Package> = r
                .out
                .iter()
                .filter_map(|l| {
                    let mut f = l.split('\t');
                    Some(Package {
                        name: f.next()?.to_owned(),
                        version: f.next()?.to_owned(),
                        arch: f.next().unwrap_or_default().to_owned(),
                    })
                })
                .collect();
            out.sort();
            out
        }
        Ok(r) => {
            gaps.push(Gap {
                what: "rpm -qa".into(),
                why: format!("failed: {}", r.err),
            });
            Vec::new()
        }
        Err(e) => {
            gaps.push(Gap {
                what: "rpm -qa".into(),
                why: format!("did not run: {e}"),
            });
            Vec::new()
        }
    }
}

/// The nftables ruleset with counters and handles left out, so that two hosts compare.
pub(crate) fn firewall(
    host: &LocalHost,
    cancel: &AtomicBool,
    gaps: &mut Vec<Gap>,
) -> Option<Firewall> {
    match chain::run(host, &["nft", "list", "ruleset"], &[], cancel) {
        Ok(r) if r.code == Some(0) => Some(Firewall {
            tool: "nft list ruleset".into(),
            rules: r.out.iter().filter_map(|l| strip_counters(l)).collect(),
        }),
        Ok(r) => {
            gaps.push(Gap {
                what: "nft list ruleset".into(),
                why: format!(
                    "failed ({}): the firewall is unknown; survey as root",
                    r.err
                ),
            });
            None
        }
        Err(_) => {
            gaps.push(Gap {
                what: "nft list ruleset".into(),
                why: "nft is not installed: the firewall was not read (iptables rules are not looked at)".into(),
            });
            None
        }
    }
}

/// A ruleset line without its counters' values and handle; `None` for an empty line.
pub(crate) fn strip_counters(line: &str) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    let mut it = line.split_whitespace().peekable();
    while let Some(w) = it.next() {
        match w {
            "packets" | "bytes" if it.peek().is_some_and(|n| n.parse::<u64>().is_ok()) => {
                it.next();
            }
            "#" if it.peek() == Some(&"handle") => {
                it.next();
                it.next();
            }
            _ => words.push(w),
        }
    }
    (!words.is_empty()).then(|| words.join(" "))
}
