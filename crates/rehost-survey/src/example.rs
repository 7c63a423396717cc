//! An example inventory of a typical small server (nginx with TLS in front of an application,
//! PostgreSQL, sshd, a cron job, a timer, a client holding a connection), for tests and the
//! docs; [`services`] makes one of any size for the dependency map.

use crate::model::*;

fn f(by: FoundBy, s: &str) -> Found {
    Found::new(by, s)
}

fn unit(name: &str, enabled: bool) -> Unit {
    Unit {
        name: name.into(),
        files: vec![format!("/lib/systemd/system/{name}")],
        exec_start: None,
        user: None,
        enabled,
        found: f(FoundBy::Kernel, "/proc/812/cgroup"),
    }
}

fn tcp(address: &str, port: u16) -> Listen {
    Listen {
        proto: Proto::Tcp,
        address: address.into(),
        port,
    }
}

/// The example server, surveyed as `host`.
pub fn inventory(host: &str) -> Inventory {
    let mut inv = Inventory::new(host, "2026-12-07T12:00:00Z");
    inv.system = System {
        hostname: "web01".into(),
        fqdn: Some("web01.example.org".into()),
        os_id: "debian".into(),
        os_version: "12".into(),
        os_pretty: "Debian GNU/Linux 12 (bookworm)".into(),
        kernel: "6.1.0-18-amd64".into(),
        arch: "x86_64".into(),
        init: "systemd".into(),
        package_manager: Some("dpkg".into()),
        addresses: vec![Address {
            interface: "eth0".into(),
            address: "192.0.2.10/24".into(),
        }],
    };
    inv.sampled = Sampling {
        seconds: 300,
        samples: 60,
    };
    let nginx = Service {
        id: "nginx.service".into(),
        kind: Some("nginx".into()),
        unit: Some(unit("nginx.service", true)),
        processes: vec![Process {
            pid: 812,
            exe: "/usr/sbin/nginx".into(),
            cmdline: vec!["nginx: master process /usr/sbin/nginx".into()],
            user: "root".into(),
        }],
        package: Some(PackageRef {
            name: "nginx".into(),
            version: "1.22.1-9".into(),
            found: f(FoundBy::Package, "dpkg-query -S /usr/sbin/nginx"),
        }),
        listens: vec![tcp("0.0.0.0", 443), tcp("0.0.0.0", 80)],
        config: vec![ConfigFile {
            path: "/etc/nginx/nginx.conf".into(),
            conffile: true,
            found: f(
                FoundBy::Package,
                "dpkg-query --showformat ${Conffiles} nginx",
            ),
        }],
        data: vec![DataSet {
            role: "nginx-root".into(),
            path: "/srv/www/app".into(),
            owner: Some("www-data".into()),
            bytes: Some(52_431),
            found: f(FoundBy::Server, "nginx -T /etc/nginx/sites-enabled/app:4"),
        }],
        databases: Vec::new(),
        keys: vec![
            KeyRef {
                path: "/etc/ssl/private/app.key".into(),
                kind: "private-key".into(),
                fingerprint: Some("SHA256:3q2+7w".into()),
                found: f(
                    FoundBy::Server,
                    "ssl_certificate_key at /etc/nginx/sites-enabled/app:9",
                ),
            },
            KeyRef {
                path: "/etc/ssl/certs/app.pem".into(),
                kind: "x509-certificate".into(),
                fingerprint: Some("SHA256:3q2+7w".into()),
                found: f(
                    FoundBy::Server,
                    "ssl_certificate at /etc/nginx/sites-enabled/app:8",
                ),
            },
        ],
        names: vec![
            NameRef {
                name: "app.example.org".into(),
                found: f(
                    FoundBy::Server,
                    "server_name at /etc/nginx/sites-enabled/app:3",
                ),
            },
            NameRef {
                name: "_".into(),
                found: f(
                    FoundBy::Server,
                    "server_name at /etc/nginx/sites-enabled/default:5",
                ),
            },
        ],
    };
    let pg = Service {
        id: "postgresql@15-main.service".into(),
        kind: Some("postgresql".into()),
        unit: Some(unit("postgresql@15-main.service", true)),
        processes: vec![Process {
            pid: 901,
            exe: "/usr/lib/postgresql/15/bin/postgres".into(),
            cmdline: vec!["/usr/lib/postgresql/15/bin/postgres".into()],
            user: "postgres".into(),
        }],
        package: Some(PackageRef {
            name: "postgresql-15".into(),
            version: "15.5-0+deb12u1".into(),
            found: f(
                FoundBy::Package,
                "dpkg-query -S /usr/lib/postgresql/15/bin/postgres",
            ),
        }),
        listens: vec![
            tcp("127.0.0.1", 5432),
            Listen {
                proto: Proto::Unix,
                address: "/run/postgresql/.s.PGSQL.5432".into(),
                port: 0,
            },
        ],
        config: vec![ConfigFile {
            path: "/etc/postgresql/15/main/postgresql.conf".into(),
            conffile: false,
            found: f(FoundBy::Server, "SHOW config_file on port 5432"),
        }],
        data: vec![DataSet {
            role: "postgresql-data-directory".into(),
            path: "/var/lib/postgresql/15/main".into(),
            owner: Some("postgres".into()),
            bytes: None,
            found: f(FoundBy::Server, "SHOW data_directory on port 5432"),
        }],
        databases: vec![DatabaseRef {
            engine: "postgresql".into(),
            version: Some("15.5".into()),
            port: 5432,
            names: vec!["app".into()],
            found: f(
                FoundBy::Server,
                "SELECT datname FROM pg_database on port 5432",
            ),
        }],
        keys: Vec::new(),
        names: Vec::new(),
    };
    let sshd = Service {
        id: "ssh.service".into(),
        kind: Some("sshd".into()),
        unit: Some(unit("ssh.service", true)),
        processes: Vec::new(),
        package: None,
        listens: vec![tcp("0.0.0.0", 22)],
        config: Vec::new(),
        data: Vec::new(),
        databases: Vec::new(),
        keys: vec![KeyRef {
            path: "/etc/ssh/ssh_host_ed25519_key".into(),
            kind: "ssh-host-key".into(),
            fingerprint: Some("SHA256:abc".into()),
            found: f(FoundBy::File, "HostKey at /etc/ssh/sshd_config:15"),
        }],
        names: Vec::new(),
    };
    inv.services = vec![nginx, pg, sshd];
    inv.sockets = inv
        .services
        .iter()
        .flat_map(|s| {
            s.listens.iter().map(|l| Socket {
                listen: l.clone(),
                service: Some(s.id.clone()),
                pid: s.processes.first().map(|p| p.pid),
                found: f(FoundBy::Kernel, "sock_diag"),
            })
        })
        .collect();
    inv.clients = vec![
        Client {
            port: 443,
            service: Some("nginx.service".into()),
            peer: "198.51.100.7".into(),
            connections: 2,
            seen_in: 60,
            persistent: true,
        },
        Client {
            port: 5432,
            service: Some("postgresql@15-main.service".into()),
            peer: "127.0.0.1".into(),
            connections: 4,
            seen_in: 60,
            persistent: true,
        },
    ];
    inv.cron = vec![CronJob {
        file: "/etc/cron.d/backup".into(),
        line: 3,
        user: "root".into(),
        schedule: "15 2 * * *".into(),
        command: "/usr/local/bin/backup".into(),
    }];
    inv.timers = vec![Timer {
        name: "certbot.timer".into(),
        unit: "certbot.service".into(),
        schedule: vec!["OnCalendar=*-*-* 00,12:00:00".into()],
        enabled: true,
        file: "/lib/systemd/system/certbot.timer".into(),
    }];
    inv.units = [
        "nginx.service",
        "postgresql@15-main.service",
        "ssh.service",
        "certbot.timer",
    ]
    .iter()
    .map(|n| UnitState {
        name: (*n).into(),
        enabled: true,
    })
    .collect();
    inv.packages = [
        ("nginx", "1.22.1-9"),
        ("postgresql-15", "15.5-0+deb12u1"),
        ("openssh-server", "1:9.2p1-2"),
        ("certbot", "2.1.0-4"),
    ]
    .iter()
    .map(|(n, v)| Package {
        name: (*n).into(),
        version: (*v).into(),
        arch: "amd64".into(),
    })
    .collect();
    inv.accounts = vec![
        Account {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/bash".into(),
        },
        Account {
            name: "postgres".into(),
            uid: 105,
            gid: 111,
            home: "/var/lib/postgresql".into(),
            shell: "/bin/bash".into(),
        },
    ];
    inv.groups = vec![Group {
        name: "ssl-cert".into(),
        gid: 110,
        members: vec!["postgres".into()],
    }];
    inv.mounts = vec![Mount {
        source: "UUID=0a1b".into(),
        target: "/srv".into(),
        fstype: "ext4".into(),
        options: "defaults".into(),
        in_fstab: true,
        mounted: true,
    }];
    inv.firewall = Some(Firewall {
        tool: "nft list ruleset".into(),
        rules: vec![
            "table inet filter".into(),
            "chain input { type filter hook input priority 0; policy drop; }".into(),
            "tcp dport { 22, 80, 443 } accept".into(),
        ],
    });
    inv.sysctl = vec![Sysctl {
        key: "net.ipv4.ip_forward".into(),
        value: "0".into(),
        set_in: Some("/etc/sysctl.d/10-net.conf:1".into()),
    }];
    inv.gaps = vec![Gap {
        what: "/proc/1234/exe".into(),
        why: "permission denied: survey as root".into(),
    }];
    inv
}

/// An inventory of `n` services, each with a port, a data directory, a key, a name and a
/// client, some sharing a key or a name (to draw the dependency map at scale).
pub fn services(n: usize) -> Inventory {
    let mut inv = Inventory::new("old", "2026-12-07T12:00:00Z");
    inv.system.hostname = "big01".into();
    for i in 0..n {
        let id = format!("app{i:02}-with-a-longer-name.service");
        inv.services.push(Service {
            id: id.clone(),
            kind: None,
            unit: Some(unit(&id, true)),
            processes: Vec::new(),
            package: None,
            listens: vec![tcp("0.0.0.0", 8000 + i as u16)],
            config: Vec::new(),
            data: vec![DataSet {
                role: "working-directory".into(),
                path: format!("/srv/app{i:02}/data/with/a/long/path"),
                owner: None,
                bytes: None,
                found: f(FoundBy::Init, "WorkingDirectory="),
            }],
            databases: Vec::new(),
            keys: vec![KeyRef {
                path: format!("/etc/ssl/private/shared-{}.key", i / 3),
                kind: "private-key".into(),
                fingerprint: None,
                found: f(FoundBy::File, "config"),
            }],
            names: vec![NameRef {
                name: format!("app{}.example.org", i / 2),
                found: f(FoundBy::Server, "server_name"),
            }],
        });
        inv.clients.push(Client {
            port: 8000 + i as u16,
            service: Some(id),
            peer: format!("198.51.100.{}", i % 200),
            connections: 1,
            seen_in: 1,
            persistent: i % 5 == 0,
        });
    }
    inv
}

/// The draft with each TODO decided as a person might (for tests): the window and budget, who
/// initiates and implements, the new host and the test hosts (ssh hosts at documentation
/// addresses, three machines apart from the old one), a TTL of one hour for each name, a dump
/// for each database copy.
pub fn decide_todos(draft: &str) -> String {
    let mut out = String::new();
    for line in draft.lines() {
        let Some(at) = line.find("\"TODO") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let key = line.split(" = ").next().unwrap_or("").trim();
        let value = match key {
            "initiated_by" => "\"IT security officer\"",
            "implemented_by" => "\"Administrator\"",
            "window" => {
                "{ start = \"2026-01-01T00:00:00+01:00\", end = \"2099-01-01T00:00:00+01:00\" }"
            }
            "max_downtime" => "\"15m\"",
            "ssh" => "\"root@192.0.2.20\"",
            "old" => {
                out.push_str("old = { ssh = \"root@192.0.2.30\" }\n");
                continue;
            }
            "new" => {
                out.push_str("new = { ssh = \"root@192.0.2.31\" }\n");
                continue;
            }
            "ttl" => "\"1h\"",
            "until" => "\"2026-01-01T00:00:00+01:00\"",
            "command" => "\"pg_dumpall -h 192.0.2.10 | psql\"",
            "stop" | "start" | "health" => "\"/usr/local/sbin/svc\"",
            other => panic!("a TODO the draft should not have: {other} in {line}"),
        };
        out.push_str(&line[..at]);
        out.push_str(value);
        out.push('\n');
    }
    out
}
