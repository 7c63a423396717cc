//! The survey's pieces that need no server: the records' parsers, the reads under a root, and
//! a whole collection of a rooted host with a service of this test process and its client.

use super::root::Root;
use super::units::{UnitFile, Units, parse, split_exec};
use super::*;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn crontab_lines_read_as_cron_reads_them() {
    let jobs = system::crontab(
        "/etc/crontab",
        "SHELL=/bin/sh\nPATH = /usr/bin\n# m h dom mon dow user command\n17 *\t* * *\troot  cd / && run-parts --report /etc/cron.hourly\n@reboot www /usr/bin/warm --password=hunter2\n\n",
        None,
    );
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].schedule, "17 * * * *");
    assert_eq!(jobs[0].user, "root");
    assert_eq!(
        jobs[0].command,
        "cd / && run-parts --report /etc/cron.hourly"
    );
    assert_eq!(jobs[0].line, 4);
    assert_eq!(jobs[1].schedule, "@reboot");
    assert!(!jobs[1].command.contains("hunter2"), "{}", jobs[1].command);
    let user = system::crontab(
        "/var/spool/cron/crontabs/ann",
        "0 1 * * * /home/ann/b\n",
        Some("ann"),
    );
    assert_eq!(user[0].user, "ann");
    assert_eq!(user[0].command, "/home/ann/b");
}

#[test]
fn unit_files_read_as_systemd_splits_them() {
    assert_eq!(
        split_exec(r#"-/usr/sbin/nginx -g "daemon on; master_process on;" -c '/etc/a b'"#),
        [
            "/usr/sbin/nginx",
            "-g",
            "daemon on; master_process on;",
            "-c",
            "/etc/a b"
        ]
    );
    let mut f = UnitFile::default();
    parse(
        "[Service]\nExecStart=/bin/a \\\n  --long\nUser=www\nWorkingDirectory=-/srv/app\nStateDirectory=app app2\n[Timer]\nOnCalendar=daily\nUnit=x.service\n",
        &mut f,
    );
    assert_eq!(f.exec_start.as_deref(), Some("/bin/a --long"));
    assert_eq!(f.user.as_deref(), Some("www"));
    assert_eq!(f.working_directory.as_deref(), Some("/srv/app"));
    assert_eq!(f.state_directory, ["/var/lib/app", "/var/lib/app2"]);
    assert_eq!(f.schedule, ["OnCalendar=daily"]);
    assert_eq!(f.timer_unit.as_deref(), Some("x.service"));
    // A drop-in's empty ExecStart= resets it.
    parse("[Service]\nExecStart=\n", &mut f);
    assert_eq!(f.exec_start, None);
}

#[test]
fn a_process_is_tied_to_the_unit_whose_exec_start_runs_it_with_the_most_arguments() {
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let sh = sh.to_str().unwrap();
    let mut units = Units::default();
    for (name, exec) in [
        ("any.service", "/bin/sh"),
        ("app.service", "/bin/sh -c /srv/app/run"),
        ("other.service", "/bin/sh -c /srv/other/run"),
        ("bash.service", "/bin/bash -c /srv/app/run"),
    ] {
        units.files.insert(
            name.into(),
            UnitFile {
                name: name.into(),
                exec_start: Some(exec.into()),
                ..UnitFile::default()
            },
        );
    }
    let cmd = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let m = units.matching(sh, &cmd("/bin/sh -c /srv/app/run"));
    assert_eq!(m.map(|f| f.name.as_str()), Some("app.service"));
    let m = units.matching(sh, &cmd("sh -x"));
    assert_eq!(m.map(|f| f.name.as_str()), Some("any.service"));
    assert!(units.matching("/usr/bin/true", &cmd("true")).is_none());
    units.files.insert(
        "pg@.service".into(),
        UnitFile {
            name: "pg@.service".into(),
            exec_start: Some("/bin/sh -c %i".into()),
            ..UnitFile::default()
        },
    );
    assert_eq!(
        units.file_of("pg@15-main.service").unwrap().name,
        "pg@.service"
    );
    assert!(units.file_of("pg.service").is_none());
}

#[test]
fn a_cgroup_names_its_unit() {
    assert_eq!(
        procs::unit_of_cgroup("0::/system.slice/nginx.service\n").as_deref(),
        Some("nginx.service")
    );
    assert_eq!(
        procs::unit_of_cgroup(
            "12:pids:/\n1:name=systemd:/system.slice/postgresql@15-main.service\n"
        )
        .as_deref(),
        Some("postgresql@15-main.service")
    );
    assert_eq!(
        procs::unit_of_cgroup("0::/user.slice/session-3.scope\n"),
        None
    );
}

#[test]
fn dpkg_status_lists_only_what_is_installed() {
    let status = "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nDescription: x\n continued\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: b\nVersion: 3:2.1-1\nArchitecture: all\nStatus: install ok installed\n";
    let p = system::parse_dpkg_status(status.as_bytes());
    let got: Vec<(&str, &str, &str)> = p
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.arch.as_str()))
        .collect();
    assert_eq!(got, [("a", "1.0", "amd64"), ("b", "3:2.1-1", "all")]);
}

#[test]
fn a_ruleset_compares_without_its_counters_and_handles() {
    assert_eq!(
        services::strip_counters("\t\ttcp dport 22 counter packets 12 bytes 720 accept # handle 4")
            .as_deref(),
        Some("tcp dport 22 counter accept")
    );
    assert_eq!(services::strip_counters("   "), None);
}

#[test]
fn credentials_on_a_command_line_are_masked() {
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let m = procs::mask(&args(
        "app --password hunter2 --token=abc postgres://u:pw@h/db --port 5",
    ));
    let text = m.join(" ");
    for secret in ["hunter2", "abc", ":pw@"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(text.ends_with("--port 5"), "{text}");
}

#[test]
fn command_lines_name_configuration_and_data() {
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let (c, d) = chain::from_cmdline(&args(
        "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf",
    ));
    assert_eq!(c, ["/etc/postgresql/15/main/postgresql.conf"]);
    assert_eq!(
        d,
        [("-D".to_owned(), "/var/lib/postgresql/15/main".to_owned())]
    );
    let (c, _) = chain::from_cmdline(&[
        "nginx: master process /usr/sbin/nginx -c /etc/nginx/a.conf".to_owned(),
    ]);
    assert_eq!(c, ["/etc/nginx/a.conf"]);
    let (c, d) = chain::from_cmdline(&args(
        "/usr/sbin/mariadbd --defaults-file=/etc/my.cnf --datadir=/srv/db",
    ));
    assert_eq!(c, ["/etc/my.cnf"]);
    assert_eq!(d, [("datadir".to_owned(), "/srv/db".to_owned())]);
}

#[test]
fn unix_listeners_are_the_sockets_that_accept_and_have_a_path() {
    let table = "Num       RefCount Protocol Flags    Type St Inode Path\n0000: 00000002 00000000 00010000 0001 01 2301 /run/pg/.s.PGSQL.5432\n0000: 00000002 00000000 00000000 0001 03 2302 /run/pg/.s.PGSQL.5432\n0000: 00000002 00000000 00010000 0001 01 2303 @abstract\n";
    let l = procs::unix_listeners(table);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].listen.address, "/run/pg/.s.PGSQL.5432");
    assert_eq!(l[0].inode, 2301);
}

/// A hostile tree: links that point at the machine's own files, absolutely and by `..`.
#[test]
fn no_symlink_leads_a_read_out_of_the_root() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    write(root, "/etc/hostname", "inside\n");
    write(root, "/usr/lib/os-release", "ID=inside\n");
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("etc/abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/hostname", root.join("etc/up")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("etc/passwd")).unwrap();
    let r = Root::open(Some(root)).unwrap();
    // Followed as on the host: inside the root.
    assert_eq!(r.text("/etc/os-release", 100).unwrap(), "ID=inside\n");
    assert_eq!(r.text("/etc/abs", 100).unwrap(), "inside\n");
    assert_eq!(r.text("/etc/up", 100).unwrap(), "inside\n");
    assert_eq!(r.text("/../../etc/hostname", 100).unwrap(), "inside\n");
    // A link to /etc/passwd is the root's /etc/passwd: itself (a loop), never the machine's.
    let e = r.text("/etc/passwd", 1 << 20).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(rustix::io::Errno::LOOP.raw_os_error()),
        "{e}"
    );
    assert!(
        r.text("/etc/hostname", 3)
            .unwrap_err()
            .to_string()
            .contains("larger than 3")
    );
    let machine = root.join("srv/www").display().to_string();
    assert_eq!(r.host_path(&machine).as_deref(), Some("/srv/www"));
    assert_eq!(r.host_path("/usr/sbin/nginx"), None);
}

/// A whole survey of a rooted host: its records read under the root, a service of this test
/// process with its client sampled, persistent.
#[test]
fn a_rooted_host_is_surveyed_from_its_own_records() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    write(
        root,
        "/etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n",
    );
    write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nwww:x:33:33::/var/www:/usr/sbin/nologin\n",
    );
    write(root, "/etc/group", "root:x:0:\nwww:x:33:ann,bob\n");
    write(root, "/etc/shadow", "root:$6$secret:1::::::\n");
    write(root, "/etc/crontab", "0 4 * * * root /usr/local/bin/dump\n");
    write(
        root,
        "/var/spool/cron/crontabs/ann",
        "*/5 * * * * /home/ann/poll\n",
    );
    write(root, "/etc/cron.daily/logrotate", "#!/bin/sh\n");
    write(
        root,
        "/etc/fstab",
        "UUID=1 / ext4 defaults 0 1\n/dev/sdb1 /srv\\040data xfs noatime 0 2\n",
    );
    write(
        root,
        "/etc/crypttab",
        "# name dev key\nsecret UUID=abc /etc/keys/secret.key luks\n",
    );
    write(
        root,
        "/etc/sysctl.d/90-net.conf",
        "net.ipv4.ip_forward = 1\n# comment\nnet.core.somaxconn=1024\n",
    );
    write(root, "/etc/sysctl.conf", "vm.swappiness=10\n");
    write(
        root,
        "/var/lib/dpkg/status",
        "Package: tar\nStatus: install ok installed\nVersion: 1.34\nArchitecture: amd64\n",
    );
    write(
        root,
        "/etc/systemd/system/dump.service",
        "[Service]\nExecStart=/usr/local/bin/dump\nWorkingDirectory=/srv/dump\n",
    );
    write(
        root,
        "/etc/systemd/system/dump.timer",
        "[Timer]\nOnCalendar=hourly\n",
    );
    std::fs::create_dir_all(root.join("etc/systemd/system/timers.target.wants")).unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/masked.service"))
        .unwrap();
    std::os::unix::fs::symlink(
        "../dump.timer",
        root.join("etc/systemd/system/timers.target.wants/dump.timer"),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_served, _) = listener.accept().unwrap();
    client.write_all(b"x").unwrap();

    let host = LocalHost::new("old", Some(root.to_owned()));
    let options = SurveyOptions {
        sample_seconds: 1,
        interval_ms: 250,
    };
    let mut stages = Vec::new();
    let inv = collect(&host, &options, &AtomicBool::new(false), &mut |p| {
        stages.push(p.stage)
    })
    .unwrap();
    assert!(
        stages.iter().any(|s| s == "sampling the clients"),
        "{stages:?}"
    );
    assert_eq!(
        (inv.system.os_id.as_str(), inv.system.os_version.as_str()),
        ("debian", "12")
    );
    assert_eq!(inv.system.package_manager.as_deref(), Some("dpkg"));
    assert_eq!(inv.packages.len(), 1);
    assert_eq!(
        inv.accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["root", "www"]
    );
    assert_eq!(inv.groups[1].members, ["ann", "bob"]);
    let json = serde_json::to_string(&inv).unwrap();
    assert!(!json.contains("$6$secret"), "the shadow file was read");
    let cron: Vec<(&str, &str, &str)> = inv
        .cron
        .iter()
        .map(|c| (c.file.as_str(), c.user.as_str(), c.schedule.as_str()))
        .collect();
    assert_eq!(
        cron,
        [
            ("/etc/crontab", "root", "0 4 * * *"),
            ("/var/spool/cron/crontabs/ann", "ann", "*/5 * * * *"),
            ("/etc/cron.daily/logrotate", "root", "@daily"),
        ]
    );
    assert_eq!(inv.timers.len(), 1);
    assert!(inv.timers[0].enabled);
    assert_eq!(inv.timers[0].unit, "dump.service");
    let dump = inv.service("dump.service").expect("the timer's service");
    assert_eq!(dump.data[0].role, "working-directory");
    assert_eq!(dump.data[0].path, "/srv/dump");
    assert!(
        inv.units
            .iter()
            .any(|u| u.name == "dump.timer" && u.enabled)
    );
    let fstab: Vec<&str> = inv
        .mounts
        .iter()
        .filter(|m| m.in_fstab)
        .map(|m| m.target.as_str())
        .collect();
    assert_eq!(fstab, ["/", "/srv data"]);
    assert_eq!(inv.crypttab[0].key_file, "/etc/keys/secret.key");
    assert_eq!(inv.crypttab[0].line, 2);
    let sysctl: Vec<(&str, Option<&str>)> = inv
        .sysctl
        .iter()
        .map(|s| (s.key.as_str(), s.set_in.as_deref()))
        .collect();
    assert_eq!(
        sysctl,
        [
            ("net.core.somaxconn", Some("/etc/sysctl.d/90-net.conf:3")),
            ("net.ipv4.ip_forward", Some("/etc/sysctl.d/90-net.conf:1")),
            ("vm.swappiness", Some("/etc/sysctl.conf:1")),
        ]
    );
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(inv.sysctl[1].value, forward.trim(), "the running value");

    // This process's listener: a service of its own, with the client that stayed.
    let socket = inv
        .sockets
        .iter()
        .find(|s| s.listen.port == port && s.listen.proto == rehost_survey::Proto::Tcp)
        .expect("the listener");
    assert_eq!(socket.pid, Some(std::process::id()));
    let id = socket.service.clone().expect("tied to this process");
    assert!(id.starts_with("process:"), "{id}");
    let svc = inv.service(&id).unwrap();
    assert!(svc.unit.is_none());
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(svc.processes[0].exe, me.to_string_lossy());
    let c = inv
        .clients
        .iter()
        .find(|c| c.port == port)
        .expect("the client");
    assert_eq!(c.service.as_deref(), Some(id.as_str()));
    assert!(c.persistent, "{c:?}");
    assert_eq!(c.seen_in, inv.sampled.samples);
    assert!(inv.sampled.samples >= 4, "{:?}", inv.sampled);
    // What the host sends reads back through the receiver's checks.
    let back = rehost_survey::check::from_json(&serde_json::to_vec(&inv).unwrap()).unwrap();
    assert_eq!(back, inv);
}

/// The FQDN is the canonical name of the /etc/hosts line that lists the host name, as
/// `hostname -f` reads it with files first; nothing else (no DNS, no guess from a domain).
#[test]
fn the_fqdn_is_the_canonical_name_of_the_hosts_line_of_the_host_name() {
    let hosts = "127.0.0.1\tlocalhost\n# 127.0.1.1 web01.wrong.example web01\n::1 localhost ip6-localhost\n127.0.1.1\tWeb01.Example.org web01 # the host\n10.0.0.2 web01.other.example web01\n";
    assert_eq!(
        system::fqdn("web01", hosts).as_deref(),
        Some("web01.example.org")
    );
    // Listed only as the canonical name's first label.
    assert_eq!(
        system::fqdn("web01", "192.0.2.1 web01.example.net\n").as_deref(),
        Some("web01.example.net")
    );
    // No line names it, or its canonical name has no dot: none.
    assert_eq!(system::fqdn("db01", hosts), None);
    assert_eq!(system::fqdn("web01", "127.0.1.1 web01 web\n"), None);
    assert_eq!(
        system::fqdn("web01", "notanaddress web01.example.org web01\n"),
        None
    );
    assert_eq!(system::fqdn("", hosts), None);
}
