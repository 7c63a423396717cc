//! The inventory: what a survey found on one host, as plain serde data. The JSON form
//! (`rehost survey --json`) is this model, `format` first; a field added later is optional so
//! that an older inventory still reads.
//!
//! The chain a migration depends on is kept as the survey followed it: a [`Service`] is what
//! owns listening sockets (or a unit that runs one), and carries its unit, package,
//! configuration, data, keys and names, each with the [`Found`] that led to it. Around the
//! services: cron jobs and timers, accounts, mounts, the firewall, kernel parameters, the OS
//! and its packages, which `survey --compare` compares between two hosts.

use serde::{Deserialize, Serialize};

/// The version of the inventory's JSON form.
pub const FORMAT: u32 = 1;

/// Where a fact was read on the host: a source (`/etc/nginx/sites-enabled/app:12`,
/// `/proc/812/cgroup`, `dpkg-query -S /usr/sbin/nginx`, `SHOW data_directory on port 5432`) and
/// what kind of record that is. Shown beside the fact in the summary and as the comment above
/// its line in the draft plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Found {
    /// What kind of record: a file, `/proc`, a command's output, a running server's answer.
    pub by: FoundBy,
    /// The record itself: a path (with `:LINE` where a line is meant) or the command run.
    pub source: String,
}

/// The kinds of record a fact is read from, most trustworthy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// The kernel's own tables: sock_diag, `/proc/PID/*`.
    Kernel,
    /// A running server's answer (`SHOW data_directory`, `nginx -T`).
    Server,
    /// The package manager's database (`dpkg-query`, `rpm -qf`).
    Package,
    /// The init system's records (unit files, `systemctl show`).
    Init,
    /// A configuration file read by the survey.
    File,
    /// A command's output not covered above (`nft list ruleset`, `hostname`).
    Command,
}

impl Found {
    /// A fact read from `source` by `by`.
    pub fn new(by: FoundBy, source: impl Into<String>) -> Self {
        Found {
            by,
            source: source.into(),
        }
    }
}

/// One host's survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// [`FORMAT`].
    pub format: u32,
    /// The host as the plan or command line named it (`old`, `ssh://root@db1`).
    pub host: String,
    /// When the survey started (RFC 3339, UTC).
    pub taken_at: String,
    /// How long the survey took, without the client sampling (milliseconds).
    pub took_ms: u64,
    /// The sampling of clients: how long, how many samples (zero when not asked for).
    pub sampled: Sampling,
    pub system: System,
    /// What serves: one entry per systemd unit that owns a listening socket or a timer's
    /// target, or per process outside any unit; sorted by id.
    pub services: Vec<Service>,
    /// Every listening socket, with the service that owns it (by [`Service::id`]) where known.
    pub sockets: Vec<Socket>,
    /// Clients seen connected to a listening socket during the sampling.
    pub clients: Vec<Client>,
    pub cron: Vec<CronJob>,
    pub timers: Vec<Timer>,
    /// Units enabled to start at boot (`*.wants/` links and their targets).
    pub units: Vec<UnitState>,
    pub packages: Vec<Package>,
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    pub mounts: Vec<Mount>,
    pub crypttab: Vec<CryptEntry>,
    /// The firewall's ruleset, when one could be read.
    pub firewall: Option<Firewall>,
    /// Kernel parameters (`/proc/sys`, the keys of `/etc/sysctl.conf` and `/etc/sysctl.d`).
    pub sysctl: Vec<Sysctl>,
    /// What the survey could not read or follow, each naming the record and why (permission
    /// denied, a tool missing, a bound reached). An empty list is not a claim that the host has
    /// nothing else: only the records above were looked at.
    pub gaps: Vec<Gap>,
}

/// The host itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct System {
    /// `hostname` (the kernel's node name).
    pub hostname: String,
    /// The fully qualified name from the host's own `/etc/hosts`: the canonical name of the
    /// line that lists `hostname` (what `hostname -f` answers with files first in nsswitch),
    /// else `hostname` where it has a dot; none otherwise (DNS is not asked, nothing guessed).
    pub fqdn: Option<String>,
    /// `/etc/os-release`: `ID`, `VERSION_ID`, `PRETTY_NAME`.
    pub os_id: String,
    pub os_version: String,
    pub os_pretty: String,
    /// `uname -r`, `uname -m`.
    pub kernel: String,
    pub arch: String,
    /// The init system: `systemd` when `/run/systemd/system` exists, else what PID 1 runs.
    pub init: String,
    /// The package manager whose database was read: `dpkg`, `rpm`, or none.
    pub package_manager: Option<String>,
    /// The host's addresses (interface, address/prefix).
    pub addresses: Vec<Address>,
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub interface: String,
    /// `192.0.2.10/24`, `2001:db8::10/64`.
    pub address: String,
}

/// How the clients were sampled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub seconds: u64,
    pub samples: u64,
}

/// A service: what owns listening sockets, or what a unit or timer runs, followed along the
/// chain socket → process → unit → package → configuration → data → keys → names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The unit's name (`nginx.service`), or `process:NAME` for a process outside any unit.
    pub id: String,
    /// What the service is, where recognised from its package or executable (`nginx`,
    /// `postgresql`, `mariadb`, `sshd`, `knot`); used to pick the step kinds of the draft.
    pub kind: Option<String>,
    pub unit: Option<Unit>,
    /// Its processes (the main one first), at most a bounded number.
    pub processes: Vec<Process>,
    /// The package that owns the main executable.
    pub package: Option<PackageRef>,
    /// Its listening sockets (as in [`Inventory::sockets`]).
    pub listens: Vec<Listen>,
    /// Configuration files: the unit's command line, the package's conffiles, the includes of
    /// the effective configuration.
    pub config: Vec<ConfigFile>,
    /// The data it serves.
    pub data: Vec<DataSet>,
    /// Databases it serves (PostgreSQL, MariaDB), where the running server answered.
    pub databases: Vec<DatabaseRef>,
    /// Key material its configuration references.
    pub keys: Vec<KeyRef>,
    /// The names it answers to.
    pub names: Vec<NameRef>,
}

/// A systemd unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    /// The unit file (`/lib/systemd/system/nginx.service`) and its drop-ins.
    pub files: Vec<String>,
    /// `ExecStart=`'s command line, as written.
    pub exec_start: Option<String>,
    /// `User=`, where set.
    pub user: Option<String>,
    /// Enabled at boot (a `*.wants/` link to it).
    pub enabled: bool,
    /// How the process was tied to this unit (`/proc/PID/cgroup`) or the unit found
    /// (the unit file, for a service no process runs now).
    pub found: Found,
}

/// A process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/exe`'s target.
    pub exe: String,
    /// `/proc/PID/cmdline`, arguments apart (bounded).
    pub cmdline: Vec<String>,
    /// The real user's name (or uid where it has none).
    pub user: String,
}

/// A package and version, where the package manager owns a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    pub name: String,
    pub version: String,
    pub found: Found,
}

/// The transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
}

/// A listening socket of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Listen {
    pub proto: Proto,
    /// The local address (`0.0.0.0`, `::`, `127.0.0.1`); the path for a Unix socket.
    pub address: String,
    /// The port (0 for a Unix socket).
    pub port: u16,
}

/// A listening socket as the kernel listed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Socket {
    pub listen: Listen,
    /// The owning service's [`Service::id`]; none when no process could be tied to it
    /// (another user's process while not root, a kernel socket).
    pub service: Option<String>,
    /// The owning process.
    pub pid: Option<u32>,
    pub found: Found,
}

/// A configuration file of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: String,
    /// Marked as a conffile by the package manager (so a changed one differs from the
    /// package's version).
    pub conffile: bool,
    pub found: Found,
}

/// Data a service serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSet {
    /// What the directory is: `postgresql-data-directory`, `mariadb-datadir`, `nginx-root`,
    /// `nginx-alias`, `working-directory`, `state-directory`.
    pub role: String,
    pub path: String,
    /// Its owner (user name or uid), where it could be read.
    pub owner: Option<String>,
    /// Bytes under it, where measured (a bounded walk; none when it was not measured).
    pub bytes: Option<u64>,
    pub found: Found,
}

/// A database server a service runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseRef {
    /// `postgresql`, `mariadb` (rehost's engine names).
    pub engine: String,
    /// The server's version string as it answered.
    pub version: Option<String>,
    pub port: u16,
    /// The databases it holds (templates and system schemas left out).
    pub names: Vec<String>,
    pub found: Found,
}

/// Key material a service's configuration references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRef {
    pub path: String,
    /// What it is (`x509-certificate`, `private-key`, `ssh-host-key`, …), as keys scan names it.
    pub kind: String,
    /// The public fingerprint keys scan gives (SPKI SHA-256 and the like); never a private byte.
    pub fingerprint: Option<String>,
    /// The directive that referenced it (`ssl_certificate_key at /etc/nginx/sites-enabled/app:9`).
    pub found: Found,
}

/// A name a service answers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NameRef {
    pub name: String,
    /// Where the name was found: the host name, a certificate's SAN, a `server_name`.
    pub found: Found,
}

/// A client seen connected to a listening socket during the sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// The listening socket's port, and the service owning it where known.
    pub port: u16,
    pub service: Option<String>,
    /// The client's address (without its ephemeral port).
    pub peer: String,
    /// Connections from this peer seen at once, at most.
    pub connections: u32,
    /// In how many of the samples a connection from this peer was seen.
    pub seen_in: u64,
    /// A connection with the same four-tuple lived through every sample: it holds its
    /// connection and must be ended (M 2.319's persistent connections).
    pub persistent: bool,
}

/// A cron job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CronJob {
    /// `/etc/crontab`, `/etc/cron.d/*`, `/var/spool/cron/crontabs/USER`, or
    /// `/etc/cron.daily/NAME` (whose schedule is then `@daily`).
    pub file: String,
    pub line: u32,
    pub user: String,
    pub schedule: String,
    pub command: String,
}

/// A systemd timer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timer {
    pub name: String,
    /// The unit it starts (`Unit=`, else the timer's name with `.service`).
    pub unit: String,
    /// `OnCalendar=`, `OnBootSec=` … as written, `KEY=VALUE` each.
    pub schedule: Vec<String>,
    pub enabled: bool,
    pub file: String,
}

/// A unit and whether it is enabled at boot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnitState {
    pub name: String,
    pub enabled: bool,
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// A user account (`/etc/passwd`; no password field is read).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// A group (`/etc/group`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// A file system, as `/etc/fstab` declares it or the kernel has it mounted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: String,
    /// In `/etc/fstab` (so it comes back at boot).
    pub in_fstab: bool,
    /// Mounted now (`/proc/self/mountinfo`).
    pub mounted: bool,
}

/// An entry of `/etc/crypttab`: an encrypted volume, and where its key lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CryptEntry {
    pub name: String,
    pub device: String,
    /// The key file (`none` when a passphrase is asked at boot).
    pub key_file: String,
    pub options: String,
    pub line: u32,
}

/// The firewall's ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    /// `nft list ruleset`, `iptables-save`.
    pub tool: String,
    /// The ruleset's lines, counters and handles left out so that two hosts compare (bounded).
    pub rules: Vec<String>,
}

/// A kernel parameter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sysctl {
    /// `net.ipv4.ip_forward`.
    pub key: String,
    pub value: String,
    /// Set in `/etc/sysctl.conf` or `/etc/sysctl.d` (`FILE:LINE`), or only the running value.
    pub set_in: Option<String>,
}

/// What the survey could not read or follow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gap {
    /// The record (`/proc/812/exe`, `dpkg-query`, `nft list ruleset`).
    pub what: String,
    /// Why, and what to do (`permission denied: survey as root`).
    pub why: String,
}

/// Bounds on an inventory received from a host (a compromised agent's answer is data, and
/// bounded before it is kept).
pub mod limits {
    /// The largest inventory JSON accepted from a host.
    pub const MAX_JSON_BYTES: u64 = 64 << 20;
    /// The most services, sockets, clients, packages … of each list.
    pub const MAX_ITEMS: usize = 100_000;
    /// The longest string kept of any field.
    pub const MAX_STRING: usize = 4096;
}

impl Inventory {
    /// An empty inventory of `host`, to be filled by a collector.
    pub fn new(host: impl Into<String>, taken_at: impl Into<String>) -> Self {
        Inventory {
            format: FORMAT,
            host: host.into(),
            taken_at: taken_at.into(),
            took_ms: 0,
            sampled: Sampling::default(),
            system: System::default(),
            services: Vec::new(),
            sockets: Vec::new(),
            clients: Vec::new(),
            cron: Vec::new(),
            timers: Vec::new(),
            units: Vec::new(),
            packages: Vec::new(),
            accounts: Vec::new(),
            groups: Vec::new(),
            mounts: Vec::new(),
            crypttab: Vec::new(),
            firewall: None,
            sysctl: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// The service with this id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_reads_back_what_it_wrote() {
        let mut inv = Inventory::new("old", "2026-12-07T12:00:00Z");
        inv.cron.push(CronJob {
            file: "/etc/cron.d/backup".into(),
            line: 3,
            user: "root".into(),
            schedule: "15 2 * * *".into(),
            command: "/usr/local/bin/backup".into(),
        });
        inv.gaps.push(Gap {
            what: "nft list ruleset".into(),
            why: "nft is not installed".into(),
        });
        let json = serde_json::to_string(&inv).unwrap();
        assert!(json.starts_with("{\"format\":1,"), "{json}");
        let back: Inventory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, inv);
    }
}
