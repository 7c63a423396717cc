//! The links of a service's chain after its unit, each from the record that holds it: the
//! package owning the executable (`dpkg-query -S`, else `rpm -qf`; its version from
//! `dpkg-query -W`), its configuration (the command line's `-c FILE`/`--config`/
//! `config_file=`, the package's conffiles in `/var/lib/dpkg/info/PKG.conffiles`, every file of
//! nginx's effective configuration from `nginx -T` of that binary with that configuration),
//! its data (PostgreSQL's `data_directory` asked of the running server, MariaDB's `datadir`,
//! nginx's `root` and `alias`, the unit's working and state directories), the keys its
//! configuration names (read under the root and identified by `rehost_keys`: public facts
//! only), and the names it answers to (certificates' SANs, `server_name`).

use super::root::Root;
use crate::{CommandSpec, Host, LocalHost, OutputStream, Program};
use rehost_survey::{ConfigFile, DataSet, Found, FoundBy, Gap, KeyRef, NameRef, PackageRef};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Lines kept of one command's output.
const MAX_LINES: usize = 200_000;
/// Bytes of one command's output kept.
const MAX_OUTPUT: usize = 32 << 20;

/// What a command printed: its exit code (`None`: it did not run) and its lines.
pub(crate) struct Ran {
    pub code: Option<i32>,
    pub out: Vec<String>,
    pub err: String,
}

/// Runs `argv` on the host with a timeout, its output bounded; `Err` when it could not start.
pub(crate) fn run(
    host: &LocalHost,
    argv: &[&str],
    env: &[(&str, &str)],
    cancel: &AtomicBool,
) -> Result<Ran, String> {
    let mut spec = CommandSpec::new(Program::Argv(
        argv.iter().map(|s| (*s).to_owned()).collect(),
    ));
    spec.timeout = Some(Duration::from_secs(30));
    spec.env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (mut out, mut err, mut bytes) = (Vec::new(), String::new(), 0usize);
    let outcome = host
        .run(&spec, cancel, &mut |stream, line| match stream {
            OutputStream::Stdout => {
                if out.len() < MAX_LINES && bytes < MAX_OUTPUT {
                    bytes += line.len();
                    out.push(String::from_utf8_lossy(line).into_owned());
                }
            }
            OutputStream::Stderr => {
                if err.len() < 2000 {
                    err.push_str(&String::from_utf8_lossy(line));
                    err.push(' ');
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let code = if outcome.timed_out {
        None
    } else {
        outcome.exit.code
    };
    Ok(Ran {
        code,
        out,
        err: err.trim().to_owned(),
    })
}

/// The package that owns each of `exes` (as this machine names them), with its version: one
/// `dpkg-query -S` for all of them (each also tried with and without `/usr`, for merged /usr)
/// and one `dpkg-query -W` for their versions; on rpm hosts `rpm -qf` each.
pub(crate) fn packages_of(
    host: &LocalHost,
    exes: &[String],
    manager: Option<&str>,
    cancel: &AtomicBool,
    gaps: &mut Vec<Gap>,
) -> HashMap<String, PackageRef> {
    let mut out = HashMap::new();
    let mut exes = exes.to_vec();
    exes.sort();
    exes.dedup();
    if exes.is_empty() {
        return out;
    }
    if manager == Some("rpm") {
        for exe in &exes {
            let argv = [
                "rpm",
                "-qf",
                "--qf",
                "%{NAME}\t%{VERSION}-%{RELEASE}\n",
                exe,
            ];
            match run(host, &argv, &[], cancel) {
                Ok(r) if r.code == Some(0) => {
                    if let Some((name, version)) = r.out.first().and_then(|l| l.split_once('\t')) {
                        out.insert(
                            exe.clone(),
                            PackageRef {
                                name: name.to_owned(),
                                version: version.to_owned(),
                                found: Found::new(FoundBy::Package, format!("rpm -qf {exe}")),
                            },
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    gaps.push(Gap {
                        what: "rpm -qf".into(),
                        why: format!("did not run ({e}): the packages of the services are unknown"),
                    });
                    return out;
                }
            }
        }
        return out;
    }
    // Merged /usr: dpkg may list /usr/sbin/x as /sbin/x or the other way round.
    let alternate = |exe: &str| match exe.strip_prefix("/usr") {
        Some(rest) => rest.to_owned(),
        None => format!("/usr{exe}"),
    };
    let mut argv: Vec<&str> = vec!["dpkg-query", "-S"];
    let alts: Vec<String> = exes.iter().map(|e| alternate(e)).collect();
    for (e, a) in exes.iter().zip(&alts) {
        argv.push(e);
        argv.push(a);
    }
    let r = match run(host, &argv, &[], cancel) {
        Ok(r) => r,
        Err(e) => {
            gaps.push(Gap {
                what: "dpkg-query -S".into(),
                why: format!(
                    "did not run ({e}): the packages of the services are unknown; install dpkg or survey a Debian host"
                ),
            });
            return out;
        }
    };
    // `nginx-core: /usr/sbin/nginx`, `a, b: /path`; a diversion's lines are passed over.
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for line in r.out.iter().filter(|l| !l.starts_with("diversion")) {
        if let Some((pkgs, path)) = line.split_once(": ")
            && let Some(first) = pkgs.split(", ").next()
        {
            owner.entry(path.trim()).or_insert(first.trim());
        }
    }
    let mut names: Vec<&str> = owner.values().copied().collect();
    names.sort();
    names.dedup();
    let mut versions: HashMap<String, String> = HashMap::new();
    if !names.is_empty() {
        let mut argv = vec!["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"];
        argv.extend(names.iter().copied());
        if let Ok(r) = run(host, &argv, &[], cancel) {
            for l in &r.out {
                if let Some((p, v)) = l.split_once('\t') {
                    versions.insert(p.to_owned(), v.to_owned());
                }
            }
        }
    }
    for (exe, alt) in exes.iter().zip(&alts) {
        let Some((path, name)) = [exe, alt]
            .into_iter()
            .find_map(|p| owner.get(p.as_str()).map(|n| (p, *n)))
        else {
            continue;
        };
        let bare = name.split(':').next().unwrap_or(name);
        let version = versions
            .get(name)
            .or_else(|| versions.get(bare))
            .cloned()
            .unwrap_or_default();
        out.insert(
            exe.clone(),
            PackageRef {
                name: name.to_owned(),
                version,
                found: Found::new(FoundBy::Package, format!("dpkg-query -S {path}")),
            },
        );
    }
    out
}

/// The conffiles dpkg records for `package` (`/var/lib/dpkg/info/PKG[:ARCH].conffiles`).
pub(crate) fn conffiles(root: &Root, package: &str, gaps: &mut Vec<Gap>) -> Vec<ConfigFile> {
    let base = package.split(':').next().unwrap_or(package);
    for name in [
        format!("/var/lib/dpkg/info/{base}.conffiles"),
        format!("/var/lib/dpkg/info/{base}:{}.conffiles", dpkg_arch()),
    ] {
        match root.text(&name, super::system::MAX_FILE) {
            Ok(text) => {
                return text
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|p| p.starts_with('/'))
                    .map(|p| ConfigFile {
                        path: p.to_owned(),
                        conffile: true,
                        found: Found::new(FoundBy::Package, name.clone()),
                    })
                    .collect();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                gaps.push(Gap {
                    what: name,
                    why: format!("not read: {e}"),
                });
                return Vec::new();
            }
        }
    }
    Vec::new()
}

fn dpkg_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        other => other,
    }
}

/// The configuration files and data directories a command line names: `-c FILE`,
/// `--config FILE`, `--config=FILE`, `--defaults-file=FILE`, `-c config_file=FILE`, `-D DIR`,
/// `--datadir=DIR`. Paths as this machine names them.
pub(crate) fn from_cmdline(cmdline: &[String]) -> (Vec<String>, Vec<(String, String)>) {
    // nginx writes its command line into one argument (`nginx: master process …`).
    let words: Vec<&str> = cmdline.iter().flat_map(|a| a.split_whitespace()).collect();
    let (mut config, mut data) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let next = words.get(i + 1).copied().filter(|n| n.starts_with('/'));
        let eq = |p: &str| w.strip_prefix(p).filter(|v| v.starts_with('/'));
        if let Some(v) = ["--config=", "--config-file=", "--defaults-file=", "--conf="]
            .iter()
            .find_map(|p| eq(p))
        {
            config.push(v.to_owned());
        } else if let Some(v) = ["--datadir=", "--data-dir="].iter().find_map(|p| eq(p)) {
            data.push(("datadir".to_owned(), v.to_owned()));
        } else if matches!(w, "-c" | "--config" | "--config-file" | "-f") {
            if let Some(n) = next {
                config.push(n.to_owned());
                i += 1;
            } else if let Some(v) = words
                .get(i + 1)
                .and_then(|n| n.strip_prefix("config_file="))
            {
                config.push(v.to_owned());
                i += 1;
            }
        } else if w == "-D"
            && let Some(n) = next
        {
            data.push(("-D".to_owned(), n.to_owned()));
            i += 1;
        }
        i += 1;
    }
    (config, data)
}

/// What nginx's effective configuration says, from `nginx -T` of the running binary with the
/// configuration it was started with.
#[derive(Default)]
pub(crate) struct Nginx {
    pub files: Vec<String>,
    /// (directive, value, `FILE:LINE`) of `root`, `alias`, `ssl_certificate`,
    /// `ssl_certificate_key`, `ssl_trusted_certificate`, `server_name`.
    pub directives: Vec<(String, String, String)>,
}

pub(crate) fn nginx(
    host: &LocalHost,
    exe: &str,
    config: Option<&str>,
    cancel: &AtomicBool,
    gaps: &mut Vec<Gap>,
) -> Option<Nginx> {
    let mut argv = vec![exe, "-T", "-q"];
    if let Some(c) = config {
        argv.extend(["-c", c]);
    }
    let shown = argv.join(" ");
    let r = match run(host, &argv, &[], cancel) {
        Ok(r) if r.code == Some(0) => r,
        Ok(r) => {
            gaps.push(Gap {
                what: shown,
                why: format!(
                    "failed ({}): nginx's effective configuration, its data, keys and names are unknown; survey as root",
                    r.err
                ),
            });
            return None;
        }
        Err(e) => {
            gaps.push(Gap {
                what: shown,
                why: format!("did not run: {e}"),
            });
            return None;
        }
    };
    let dump = r.out.join("\n");
    let mut n = Nginx::default();
    for l in &r.out {
        if let Some(p) = l
            .strip_prefix("# configuration file ")
            .and_then(|r| r.strip_suffix(':'))
        {
            n.files.push(p.to_owned());
        }
    }
    match rehost_config::parse(Some(rehost_config::Format::Nginx), &shown, &dump) {
        Ok((_, entries)) => {
            for e in entries {
                let directive = e.key.rsplit('.').next().unwrap_or_default();
                if matches!(
                    directive,
                    "root"
                        | "alias"
                        | "ssl_certificate"
                        | "ssl_certificate_key"
                        | "ssl_trusted_certificate"
                        | "server_name"
                ) {
                    n.directives.push((
                        directive.to_owned(),
                        e.value,
                        e.source.unwrap_or_default(),
                    ));
                }
            }
        }
        Err(e) => gaps.push(Gap {
            what: shown,
            why: format!("its output does not read as nginx's configuration: {e}"),
        }),
    }
    Some(n)
}

/// The server's answer to a few questions: where its data lives, its version, its
/// configuration files and databases.
pub(crate) struct PgAnswer {
    pub data_directory: String,
    pub version: String,
    pub config_file: String,
    pub hba_file: String,
    /// `ssl_cert_file` and `ssl_key_file` (relative to the data directory when not absolute),
    /// when `ssl` is on.
    pub ssl_files: Vec<(&'static str, String)>,
    pub databases: Vec<String>,
}

/// Asks the PostgreSQL server on `port` (through its Unix socket directory `socket_dir` when it
/// has one, else loopback) as the user it runs as, with the psql beside its executable or on
/// the PATH.
pub(crate) fn postgres(
    host: &LocalHost,
    exe: &str,
    port: u16,
    socket_dir: Option<&str>,
    os_user: &str,
    cancel: &AtomicBool,
) -> Result<PgAnswer, String> {
    let beside = exe.rsplit_once('/').map(|(d, _)| format!("{d}/psql"));
    let psql = beside
        .filter(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| "psql".into());
    let port = port.to_string();
    let hostarg = socket_dir.unwrap_or("127.0.0.1");
    let mut argv: Vec<&str> = Vec::new();
    let as_user = rustix::process::geteuid().is_root() && os_user != "root";
    if as_user {
        argv.extend(["runuser", "-u", os_user, "--"]);
    }
    let role = if os_user.parse::<u32>().is_ok() {
        "postgres"
    } else {
        os_user
    };
    argv.extend([
        psql.as_str(),
        "-X",
        "-A",
        "-t",
        "-q",
        "-h",
        hostarg,
        "-p",
        &port,
        "-U",
        role,
        "-d",
        "postgres",
        "-c",
        "SHOW data_directory",
        "-c",
        "SHOW server_version",
        "-c",
        "SHOW config_file",
        "-c",
        "SHOW hba_file",
        "-c",
        "SHOW ssl",
        "-c",
        "SHOW ssl_cert_file",
        "-c",
        "SHOW ssl_key_file",
        "-c",
        "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1",
    ]);
    let r = run(
        host,
        &argv,
        &[("PGCONNECT_TIMEOUT", "5"), ("PGPASSWORD", "")],
        cancel,
    )?;
    if r.code != Some(0) || r.out.len() < 7 {
        return Err(format!("psql failed: {}", r.err));
    }
    let in_data = |f: &str| {
        if f.starts_with('/') {
            f.to_owned()
        } else {
            format!("{}/{f}", r.out[0])
        }
    };
    let ssl_files = if r.out[4] == "on" {
        vec![
            ("ssl_cert_file", in_data(&r.out[5])),
            ("ssl_key_file", in_data(&r.out[6])),
        ]
    } else {
        Vec::new()
    };
    Ok(PgAnswer {
        data_directory: r.out[0].clone(),
        version: r.out[1].clone(),
        config_file: r.out[2].clone(),
        hba_file: r.out[3].clone(),
        ssl_files,
        databases: r.out[7..]
            .iter()
            .filter(|d| !d.is_empty() && *d != "postgres")
            .cloned()
            .collect(),
    })
}

/// Asks the MariaDB (or MySQL) server on `port` as root through its socket: `@@datadir`,
/// `@@version`, and its databases (the system schemas left out).
pub(crate) fn mariadb(
    host: &LocalHost,
    socket: Option<&str>,
    port: u16,
    cancel: &AtomicBool,
) -> Result<(String, String, Vec<String>), String> {
    let port = port.to_string();
    let mut argv = vec!["mariadb", "-N", "-B", "--connect-timeout=5"];
    let sock;
    match socket {
        Some(s) => {
            sock = format!("--socket={s}");
            argv.push(&sock);
        }
        None => argv.extend(["-h", "127.0.0.1", "-P", &port]),
    }
    argv.extend([
        "-e",
        "SELECT @@datadir, @@version; SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1",
    ]);
    let r = run(host, &argv, &[], cancel)?;
    if r.code != Some(0) || r.out.is_empty() {
        return Err(format!("mariadb failed: {}", r.err));
    }
    let (dir, version) = r.out[0].split_once('\t').unwrap_or((&r.out[0], ""));
    Ok((
        dir.trim_end_matches('/').to_owned(),
        version.to_owned(),
        r.out[1..].to_vec(),
    ))
}

/// A data set at `path` (as the host names it), with its owner where the root has it.
pub(crate) fn data_set(
    root: &Root,
    role: &str,
    path: &str,
    found: Found,
    accounts: &[rehost_survey::Account],
) -> DataSet {
    let owner = root
        .owner(path)
        .ok()
        .map(|uid| super::procs::user_name(Some(uid), accounts));
    DataSet {
        role: role.into(),
        path: path.into(),
        owner,
        bytes: None,
        found,
    }
}

/// The keys of the file a directive names (`directive at FILE:LINE`), read under the root
/// (no symlink crossed) and identified by their public facts; certificate SANs become names.
pub(crate) fn keys_of(
    host: &LocalHost,
    path: &str,
    found: Found,
    keys: &mut Vec<KeyRef>,
    names: &mut Vec<NameRef>,
    gaps: &mut Vec<Gap>,
) {
    match crate::keys::read_key_file(host, path) {
        Ok((_, bytes)) => {
            let (parsed, _) = rehost_keys::parse(&bytes);
            if parsed.is_empty() {
                gaps.push(Gap {
                    what: path.into(),
                    why: format!("{}: holds no key or certificate rehost reads", found.source),
                });
            }
            for k in &parsed {
                let kind = serde_json::to_value(k.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "key".into());
                keys.push(KeyRef {
                    path: path.into(),
                    kind,
                    fingerprint: k.fingerprint(),
                    found: found.clone(),
                });
            }
            for n in rehost_keys::certificate_names(&bytes) {
                names.push(NameRef {
                    name: n,
                    found: Found::new(FoundBy::File, format!("subjectAltName of {path}")),
                });
            }
            // `bytes` is dropped here: nothing of it is kept but public facts.
        }
        Err(e) => gaps.push(Gap {
            what: path.into(),
            why: format!("{}: not read: {e}", found.source),
        }),
    }
}
