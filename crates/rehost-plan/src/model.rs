//! The plan's data model. Every item remembers where it was written (`span`, bytes into the plan
//! text) so findings can name the plan line.

use serde::Serialize;
use std::ops::Range;
use std::time::Duration;

pub type Span = Range<usize>;

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub migration: Migration,
    pub hosts: Vec<HostDecl>,
    pub environments: Vec<Environment>,
    pub data: Vec<DataSet>,
    pub databases: Vec<Database>,
    pub services: Vec<Service>,
    pub keys: Vec<KeyDecl>,
    pub names: Vec<NameDecl>,
    pub clients: Vec<ClientDecl>,
    pub steps: Vec<Step>,
    /// `[survey]`: the differences `rehost survey --compare` expects between the old and the
    /// new host.
    pub survey: Option<SurveyExpect>,
}

impl Plan {
    pub fn host(&self, name: &str) -> Option<&HostDecl> {
        self.hosts.iter().find(|h| h.name == name)
    }
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
    pub fn database(&self, id: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.id == id)
    }

    /// The database `id` as it is in `env` (production's for `None`): the environment's
    /// `[environments.NAME.databases]` entry applied. A rehearsal connects to this one.
    pub fn database_in(&self, id: &str, env: Option<&str>) -> Option<Database> {
        let db = self.database(id)?;
        let ov = env
            .and_then(|e| self.environment(e))
            .and_then(|e| e.databases.iter().find(|o| o.id == id));
        Some(match ov {
            Some(ov) => db.in_environment(ov),
            None => db.clone(),
        })
    }
    pub fn data_set(&self, id: &str) -> Option<&DataSet> {
        self.data.iter().find(|d| d.id == id)
    }
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|d| d.id == id)
    }
    pub fn name_decl(&self, id: &str) -> Option<&NameDecl> {
        self.names.iter().find(|d| d.id == id)
    }
    /// The window a run's `needs_window` steps wait for: production's, or the environment's
    /// own (none: a rehearsal is not bound by the production window).
    pub fn window_for(&self, env: Option<&str>) -> Option<&Window> {
        match env {
            None => self.migration.window.as_ref(),
            Some(env) => self.environment(env)?.window.as_ref(),
        }
    }
    /// The hosts a run acts on: the production hosts, or an environment's replacements.
    /// Returns `None` for an unknown environment.
    /// The host `name` as declared for `env` (production's with `None`).
    pub fn host_decl(&self, env: Option<&str>, name: &str) -> Option<&HostDecl> {
        match env {
            None => self.hosts.iter().find(|h| h.name == name),
            Some(env) => self.environment(env)?.hosts.iter().find(|h| h.name == name),
        }
    }

    pub fn hosts_for(&self, env: Option<&str>) -> Option<Vec<(String, HostTarget)>> {
        match env {
            None => Some(
                self.hosts
                    .iter()
                    .map(|h| (h.name.clone(), h.target.clone()))
                    .collect(),
            ),
            Some(env) => {
                let env = self.environment(env)?;
                Some(
                    env.hosts
                        .iter()
                        .map(|h| (h.name.clone(), h.target.clone()))
                        .collect(),
                )
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Migration {
    pub title: String,
    pub purpose: Option<String>,
    pub initiated_by: Vec<String>,
    pub implemented_by: Vec<String>,
    pub window: Option<Window>,
    #[serde(with = "opt_duration")]
    pub max_downtime: Option<Duration>,
    /// Data loss the migration may accept (`0s` for none).
    #[serde(with = "opt_duration")]
    pub max_data_loss: Option<Duration>,
    pub point_of_no_return: Option<Spanned<String>>,
    pub on_failure: OnFailure,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Window {
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    /// The offset the window was written in, for display.
    pub start_text: String,
    pub end_text: String,
    pub span: Span,
}

impl Window {
    pub fn contains(&self, t: jiff::Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop and leave the run resumable.
    #[default]
    Stop,
    /// Before the point of no return, roll back the finished steps in reverse order.
    Rollback,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostTarget {
    Local {
        root: Option<String>,
    },
    Ssh {
        destination: String,
        port: Option<u16>,
        identity_file: Option<String>,
        proxy_jump: Option<String>,
        ssh_config: Option<String>,
        /// Paths on the host are taken under this directory (for rehearsals and tests that
        /// stand several hosts on one machine).
        root: Option<String>,
    },
}

impl HostTarget {
    pub fn describe(&self) -> String {
        match self {
            HostTarget::Local { root: None } => "this machine".into(),
            HostTarget::Local { root: Some(r) } => format!("this machine, under {r}"),
            HostTarget::Ssh {
                destination, port, ..
            } => match port {
                Some(p) => format!("ssh {destination} port {p}"),
                None => format!("ssh {destination}"),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct HostDecl {
    pub name: String,
    pub target: HostTarget,
    pub role: Option<String>,
    /// The address clients reach the host's services at (`address`: what a service's probe
    /// samples); `None`: 127.0.0.1 for a local host, `ssh -G`'s host name for an ssh host.
    pub address: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub name: String,
    pub hosts: Vec<HostDecl>,
    /// The rehearsal's own window (`window = { start, end }` in the environment). The
    /// migration's window is production's: a rehearsal without its own runs at any time.
    pub window: Option<Window>,
    /// Where the plan's databases are in this environment, where that differs from
    /// production (`[environments.NAME.databases]`): a rehearsal's own port, socket, name.
    pub databases: Vec<DatabaseOverride>,
    /// Load applied during a rehearsal (`[[environments.NAME.load]]`): started before one
    /// step, stopped after another.
    pub loads: Vec<Load>,
    /// Network endpoints a step names as production has them, and what the rehearsal uses
    /// instead (`endpoints = { "192.0.2.53" = "127.0.0.1:5300" }`): a DNS primary, a hold, an
    /// address. A step acting on an endpoint not listed here does not run in the rehearsal.
    pub endpoints: Vec<(String, String)>,
    pub span: Span,
}

/// A load applied during a rehearsal: started before the step `start_before` runs and
/// stopped (SIGTERM, then SIGKILL) after `stop_after` ends.
#[derive(Clone, Debug, Serialize)]
pub struct Load {
    pub id: String,
    pub start_before: String,
    pub stop_after: String,
    pub what: LoadKind,
    /// Where `start_before` and `stop_after` were written.
    #[serde(skip)]
    pub start_span: Span,
    #[serde(skip)]
    pub stop_span: Span,
    pub span: Span,
}

/// What a load does.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// A command (`pgbench`, `wrk`, a replay), run under `sh -c` on this machine or on
    /// `host`; its output kept as evidence.
    Command {
        command: String,
        host: Option<String>,
    },
    /// rehost's own write load (`writes = "postgresql"`): rows inserted on `database`'s old
    /// side, each acknowledged one looked for on its new side.
    Writes { engine: String, database: String },
    /// rehost's HTTP write load (`writes = "http"`): `PUT {path}/{id}` to `service`'s old
    /// host, each write a 2xx answer acknowledged looked for with `GET {path}/{id}` on its
    /// new host (200 found, 404 missing). `port`: given, else the service's probe port, else
    /// its one `ports` entry (validate.rs makes sure there is one).
    HttpWrites {
        service: String,
        port: Option<u16>,
        path: String,
    },
}

impl Load {
    /// What the load is, for people: the command redacted, or the write load's database.
    pub fn describe(&self) -> String {
        match &self.what {
            LoadKind::Command { command, host } => {
                let at = host
                    .as_deref()
                    .map_or("on this machine".to_owned(), |h| format!("on host `{h}`"));
                format!("`{}` {at}", crate::redact(command).replace('`', "'"))
            }
            LoadKind::Writes { database, .. } => format!(
                "rehost's PostgreSQL write load on database `{database}` (written on its old side, each acknowledged write looked for on its new side)"
            ),
            LoadKind::HttpWrites { service, path, .. } => format!(
                "rehost's HTTP write load on service `{service}` (`PUT {path}/ID` on its old host, each acknowledged write looked for with `GET` on its new host)"
            ),
        }
    }
}

/// A database's location in a rehearsal environment: each key set replaces production's.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DatabaseOverride {
    /// The `[[databases]]` id.
    pub id: String,
    pub database: Option<String>,
    pub from_database: Option<String>,
    pub to_database: Option<String>,
    pub port: Option<u16>,
    pub from_port: Option<u16>,
    pub to_port: Option<u16>,
    pub socket: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
    pub span: Span,
}

/// A `HOST:PATH` reference inside the plan (`host` must be a plan host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostPath {
    pub host: String,
    pub path: String,
}

impl std::fmt::Display for HostPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.path)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DataSet {
    pub id: String,
    pub from: HostPath,
    pub to: HostPath,
    pub exclude: Vec<String>,
    /// Where each of `exclude` was written.
    #[serde(skip)]
    pub exclude_spans: Vec<Span>,
    pub description: Option<String>,
    /// The step that makes the source tree (a dump, say): the pre-flight does not expect it
    /// to exist before that step ran.
    pub created_by: Option<String>,
    /// `backup = true`: a copy of the old side kept at `to`, a third location (neither the
    /// old server nor the replacement), as the backup before the point of no return; a `sync`
    /// of it before that point satisfies the lint.
    pub backup: bool,
    pub span: Span,
}

impl Plan {
    /// Where step `s` keeps a backup of the old side: its `backup = "WHERE"`, or the `to` of a
    /// `backup = true` data set it syncs.
    pub fn backup_of(&self, s: &Step) -> Option<String> {
        s.effects
            .iter()
            .find_map(|e| match e {
                Effect::BacksUp(at) => Some(at.clone()),
                _ => None,
            })
            .or_else(|| match &s.kind {
                StepKind::Sync { data, .. } => self
                    .data_set(data)
                    .filter(|d| d.backup)
                    .map(|d| d.to.to_string()),
                _ => None,
            })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Database {
    pub id: String,
    /// The `engine` key as written (shown in messages and the concept).
    pub engine: String,
    /// The engine `verify-db` compares, parsed once from `engine` when the plan is read
    /// ([`Engine::from_plan`]); `None` for an engine it cannot compare (`redis`).
    #[serde(skip)]
    pub kind: Option<Engine>,
    pub from: String,
    pub to: String,
    pub database: Option<String>,
    /// The database's name (for SQLite: the file's path) on the `from` or `to` host where the
    /// two differ; `database` otherwise.
    pub from_database: Option<String>,
    pub to_database: Option<String>,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    /// How the `verify-db` step connects, from each end's host: a TCP port on that host's
    /// loopback (`from_port`/`to_port` where the two differ) or a socket directory, the user,
    /// and a file on that host holding the password (never the password itself).
    pub port: Option<u16>,
    pub from_port: Option<u16>,
    pub to_port: Option<u16>,
    pub socket: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
    pub span: Span,
}

impl Database {
    /// This database with an environment's location applied. Setting `port` (or `database`)
    /// there replaces production's `from_port`/`to_port` (`from_database`/`to_database`) too:
    /// a rehearsal names its own location whole, never half of it from production.
    pub fn in_environment(&self, ov: &DatabaseOverride) -> Database {
        let mut db = self.clone();
        if ov.port.is_some() {
            db.port = ov.port;
            db.from_port = None;
            db.to_port = None;
        }
        if ov.database.is_some() {
            db.database = ov.database.clone();
            db.from_database = None;
            db.to_database = None;
        }
        let set = |slot: &mut Option<u16>, v: Option<u16>| {
            if v.is_some() {
                *slot = v;
            }
        };
        set(&mut db.from_port, ov.from_port);
        set(&mut db.to_port, ov.to_port);
        for (slot, v) in [
            (&mut db.from_database, &ov.from_database),
            (&mut db.to_database, &ov.to_database),
            (&mut db.socket, &ov.socket),
            (&mut db.user, &ov.user),
            (&mut db.password_file, &ov.password_file),
        ] {
            if v.is_some() {
                *slot = v.clone();
            }
        }
        db
    }

    /// The port each side's client connects to (`to`: the new side), the engine's default
    /// where none is set; `None` for SQLite. An engine `verify-db` cannot compare is taken as
    /// PostgreSQL, as before the engines were typed.
    pub fn effective_port(&self, to: bool) -> Option<u16> {
        let default = self.kind.unwrap_or(Engine::Postgres).default_port()?;
        Some(self.port_on(to).unwrap_or(default))
    }

    /// The port set for a side (`from_port`/`to_port`, else `port`), if any.
    pub fn port_on(&self, to: bool) -> Option<u16> {
        if to { self.to_port } else { self.from_port }.or(self.port)
    }

    /// The database's name on a side (for SQLite, the file's path on that host).
    pub fn name_on(&self, to: bool) -> Option<&str> {
        if to {
            &self.to_database
        } else {
            &self.from_database
        }
        .as_deref()
        .or(self.database.as_deref())
    }
}

/// A database engine `verify-db` compares. The plan's `engine` key is parsed into it once,
/// when the plan is read ([`Engine::from_plan`]); rehost-db parses a URL's scheme into the
/// same type. Nothing else compares engine names: match on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `postgresql` (`postgres`, `pg`); `postgres://`, `postgresql://`
    Postgres,
    /// `mariadb` (`mysql`); `mysql://`, `mariadb://` (MariaDB and MySQL)
    Mysql,
    /// `sqlite` (`sqlite3`); `sqlite:PATH`
    Sqlite,
}

impl Engine {
    /// The plan's `engine` key, in any case; `None` for an engine `verify-db` cannot compare.
    pub fn from_plan(engine: &str) -> Option<Engine> {
        match engine.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" => Some(Engine::Postgres),
            "mariadb" | "mysql" => Some(Engine::Mysql),
            "sqlite" | "sqlite3" => Some(Engine::Sqlite),
            _ => None,
        }
    }

    /// The engine's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MariaDB/MySQL",
            Engine::Sqlite => "SQLite",
        }
    }

    /// The TCP port a server of the engine listens on by default; `None` for SQLite.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Engine::Postgres => Some(5432),
            Engine::Mysql => Some(3306),
            Engine::Sqlite => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Service {
    pub id: String,
    pub host: String,
    pub ports: Vec<u16>,
    /// Listening Unix sockets (absolute paths on the host) its clients connect to, beside or
    /// instead of `ports` (a local PostgreSQL's `/run/postgresql/.s.PGSQL.5432`): a `drain`
    /// waits for their connections too.
    pub sockets: Vec<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub health: Option<String>,
    pub persistent_connections: bool,
    /// The host the service runs on after the migration (`new_host`): where its probe's new
    /// side is sampled. Needed with `probe`.
    pub new_host: Option<String>,
    /// How clients are imitated during a run (`probe = { ... }`): sampled on the old and the
    /// new host, every `interval`, by the engine's prober.
    pub probe: Option<Probe>,
    pub span: Span,
}

impl Service {
    /// The port an HTTP write load sends to: `given`, else the probe's port, else the one
    /// entry of `ports` (none when there are several and nothing says which).
    pub fn write_port(&self, given: Option<u16>) -> Option<u16> {
        given
            .or(match self.probe.as_ref().map(|p| &p.check) {
                Some(ProbeCheck::Tcp { port } | ProbeCheck::Http { port, .. }) => Some(*port),
                _ => None,
            })
            .or(match self.ports.as_slice() {
                [one] => Some(*one),
                _ => None,
            })
    }
}

/// A service's probe: what a client does to find out whether the service answers.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub check: ProbeCheck,
    /// Time between the starts of two samples of one side (default 200 ms).
    #[serde(with = "duration_ms")]
    pub interval: Duration,
    /// A sample that has not answered by then counts as unreachable (default 1 s).
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    pub span: Span,
}

/// What one sample does.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeCheck {
    /// A TCP connection is accepted on the port.
    Tcp { port: u16 },
    /// An HTTP/1.1 `GET` of `path` on the port answers `status` (and its body, read up to a
    /// cap, holds `body`).
    Http {
        port: u16,
        path: String,
        status: u16,
        body: Option<String>,
    },
    /// A command run on this machine (a client's view) with `{host}` replaced by the side's
    /// address exits 0.
    Command { command: String },
}

impl ProbeCheck {
    /// For people: "TCP port 80", "HTTP GET :8080/health", "command `...`".
    pub fn describe(&self) -> String {
        match self {
            ProbeCheck::Tcp { port } => format!("TCP connect to port {port}"),
            ProbeCheck::Http {
                port, path, status, ..
            } => format!("HTTP GET :{port}{path} answering {status}"),
            ProbeCheck::Command { command } => format!("command `{command}`"),
        }
    }
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyDecl {
    pub id: String,
    pub host: String,
    pub kind: String,
    pub paths: Vec<String>,
    pub description: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct NameDecl {
    pub id: String,
    pub name: String,
    pub record: String,
    pub old: Option<String>,
    pub new: Option<String>,
    #[serde(with = "opt_duration")]
    pub ttl: Option<Duration>,
    #[serde(with = "opt_duration")]
    pub lowered_ttl: Option<Duration>,
    pub resolvers: Vec<String>,
    /// The zone's authoritative servers, `IP[:PORT]`, asked without recursion by the DNS step
    /// kinds (none: only the resolvers are asked).
    pub authoritative: Vec<String>,
    /// How clients resolve the name: through DNS (the default), or from their own hosts files
    /// (`via = "hosts-file"`), which no DNS step reaches: each client's file is changed by hand.
    pub via: NameVia,
    /// The `[[clients]]` whose files hold the name (with `via = "hosts-file"`: the clients to
    /// change, one by one).
    pub clients: Vec<String>,
    pub span: Span,
}

/// How clients resolve a `[[names]]` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameVia {
    #[default]
    Dns,
    HostsFile,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClientDecl {
    pub id: String,
    pub hosts: Vec<String>,
    pub files: Vec<String>,
    pub count: Option<u64>,
    pub description: Option<String>,
    pub span: Span,
}

/// A command as the plan writes it: an argument vector (no shell) or a shell string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Argv(Vec<String>),
    Shell(String),
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Argv(a) => write!(f, "{}", a.join(" ")),
            Command::Shell(s) => f.write_str(s),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub id: String,
    /// Position in the checklist (0-based).
    pub index: usize,
    pub title: Option<String>,
    pub kind: StepKind,
    pub host: Option<String>,
    pub after: Vec<Spanned<String>>,
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    pub rollback: Option<Command>,
    pub idempotent: bool,
    pub needs_window: bool,
    pub on_failure: Option<OnFailure>,
    /// What the step accomplishes, for the lint: declared with `stops`, `drains`, … or implied
    /// by its kind.
    pub effects: Vec<Effect>,
    /// Where each of `effects` was written (the id in its list, or the `data` key of a kind
    /// that implies it), so findings and errors point at it rather than the step.
    pub effect_spans: Vec<Span>,
    pub span: Span,
    pub id_span: Span,
}

impl Step {
    /// Where an effect of this step was written (the step itself if it is not one of them).
    pub fn effect_span(&self, e: &Effect) -> Span {
        self.effects
            .iter()
            .position(|x| x == e)
            .and_then(|i| self.effect_spans.get(i).cloned())
            .unwrap_or_else(|| self.span.clone())
    }

    pub fn label(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
pub enum StepKind {
    /// Instructions a person carries out and confirms.
    Manual { text: String },
    /// A command on the step's host.
    Run {
        command: Command,
        expect_status: Vec<i32>,
    },
    /// A pause: a duration, or until a time.
    Wait { wait: WaitFor },
    /// Transfer a data set from its source to its destination.
    Sync {
        data: String,
        phase: SyncPhase,
        method: SyncMethod,
    },
    /// Verify a data set complete and correct on its destination.
    VerifyTree { data: String },
    /// Take the old side of a data set's manifest and keep it, to re-check at the end of the
    /// run that nothing wrote to the old server after its final state was taken.
    WatchOld { data: String },
    /// Retire the old side: the service checked stopped (its health fails, its ports closed)
    /// and disabled (`disabled_check` exits 0, after `disable`), and with `data` the old tree
    /// kept read-only for `retention`; rolled back by setting the modes back and `enable`.
    RetireOld {
        service: String,
        disabled_check: Command,
        #[serde(skip_serializing_if = "Option::is_none")]
        disable: Option<Command>,
        #[serde(skip_serializing_if = "Option::is_none")]
        enable: Option<Command>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
        retention: Option<Duration>,
    },
    /// Stop a declared service with its `stop` command (on the step's host, by default the
    /// service's).
    Stop { service: String },
    /// Start a declared service with its `start` command (on the step's host: the new one,
    /// usually).
    Start { service: String },
    /// Wait until a declared service is healthy: its `health` command succeeds, or else each
    /// of its `ports` accepts a connection on the host; fails at the step's timeout (60 s by
    /// default).
    Health { service: String },
    /// Verify a database's copy: schema, contents, sequences (`[[databases]]` id); with
    /// `exercise`, then show that the copy handles its data: read, modify, add, rolled back.
    VerifyDb {
        database: String,
        /// Left out of the step's digest when absent, so plans written before keep theirs.
        #[serde(skip_serializing_if = "Option::is_none")]
        exercise: Option<DbExercise>,
    },
    /// Verify single files carried by hand: each absolute path's type, content, symlink target,
    /// mode, owner, group, extended attributes and ACLs equal on `to` and on `from` (the
    /// modification time is not compared).
    VerifyFiles {
        from: String,
        to: String,
        paths: Vec<String>,
    },
    /// Verify `[[keys]]` entries by their public fingerprints: every key found at an entry's
    /// paths on its host is found on `to` under `search` (the directories of the entry's paths
    /// when empty), whatever its path or format there.
    VerifyKeys {
        keys: Vec<String>,
        to: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        search: Vec<String>,
        /// A file on this machine (0600) with the passwords that open encrypted PKCS#12
        /// bundles and PKCS#8 keys on both sides; its path only is kept, never its content.
        #[serde(skip_serializing_if = "Option::is_none")]
        password_file: Option<String>,
    },
    /// Wait until no established TCP connection to a declared service's `ports` remains on
    /// its host; fails at the step's timeout naming each client still connected, or with
    /// `terminate` ends them then (and fails naming those it could not end).
    Drain {
        service: String,
        /// Absent from the serialised step when false: a plan's step digests stay as they were.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        terminate: bool,
    },
    /// Prove that `address` answers with the SSH host keys of `to` (and none of `from`'s).
    AddressMoved {
        address: String,
        to: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        host_keys: Vec<String>,
    },
    /// Find the lines of files on plan hosts (`paths`, `HOST:PATH`) that mention the addresses
    /// and names in `find` and the `[[names]]` entries' names and old values.
    ScanRefs {
        paths: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        find: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        clients: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        require_none: bool,
    },
    /// Move a running `rehost hold` relay (listening on `hold`) to the upstream `to` without
    /// refusing a client: accept paused, the old side drained, re-pointed, resumed.
    Switch {
        hold: String,
        to: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        state_dir: Option<String>,
    },
    /// Wait until the `[[names]]` entry's resolvers and authoritative servers all serve its
    /// `new` value, polling every `interval`; fails at the step's timeout naming each server
    /// that still lags and the TTL it may still hold.
    DnsPropagated {
        name: String,
        #[serde(with = "duration")]
        interval: Duration,
    },
    /// Check that the `[[names]]` entry's authoritative servers serve a TTL of at most its
    /// `lowered_ttl`, and wait until its old `ttl` has passed since the step that lowered it
    /// (`lowers_ttl`) finished, so that no cache can still hold the long-lived answer.
    DnsTtl { name: String },
    /// Switch the `[[names]]` entry at its zone's primary `server`: one DNS UPDATE signed with
    /// the TSIG key in `tsig_key`, replacing exactly its `old` value with its `new` one.
    DnsSwitch {
        name: String,
        server: String,
        tsig_key: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
        #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
        ttl: Option<Duration>,
    },
    /// Compare the effective configuration of the new system with the old one's, normalised by
    /// format: a command's output, a file or a tree on each side's host, or the settings of a
    /// `[[databases]]` entry's two servers. A difference not declared expected (`allow`, or
    /// removed by a `rewrite`) fails the step.
    VerifyConfig {
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<ConfigSide>,
        #[serde(skip_serializing_if = "Option::is_none")]
        new: Option<ConfigSide>,
        #[serde(skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        allow: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        rewrite: Vec<ConfigRewrite>,
        #[serde(skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
    /// Old clients served the same: a probe file's requests and client commands, or a
    /// traffic file's recorded requests, sent to the `old` and `new` service URLs (and the old
    /// one again, to tell noise apart) and the answers compared (docs/compat.md). The file's
    /// path is as written; the binary makes a relative one relative to the plan.
    Compat {
        #[serde(skip_serializing_if = "Option::is_none")]
        probe: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        traffic: Option<String>,
        old: String,
        new: String,
        allow_writes: bool,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        allow: Vec<String>,
    },
    /// The old clients' queries from the old database server's log, replayed against the
    /// database's `from` and `to` sides and compared (docs/compat.md, SQL). The log's path is
    /// as written; the binary makes a relative one relative to the plan.
    CompatSql {
        database: String,
        log: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        format: Option<String>,
        allow_writes: bool,
    },
}

/// One side of a `verify-config` step: a plan host, and a file or tree there (`path`) or a
/// command whose output is the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigSide {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl std::fmt::Display for ConfigSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.path, &self.command) {
            (Some(p), _) => write!(f, "{}:{p}", self.host),
            (None, Some(c)) => write!(f, "`{}` on {}", crate::redact(c), self.host),
            (None, None) => write!(f, "{}:", self.host),
        }
    }
}

/// `[survey]`: what `rehost survey --compare OLD NEW` is told to expect, in the shape of a
/// `verify-config` step's: globs on the comparison's keys (`package linux-image-*`,
/// `sysctl kernel.hostname`) whose differences are expected, and text replaced in the old
/// host's names and values before comparing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SurveyExpect {
    pub allow: Vec<String>,
    pub rewrite: Vec<ConfigRewrite>,
    /// `inventory`: the inventory the plan was drafted from (`rehost survey --json`), relative
    /// to the plan's directory; `rehost concept` embeds its dependency map.
    pub inventory: Option<Spanned<String>>,
    pub span: Span,
}

/// A `verify-config` step's text replacement in the old side before comparing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigRewrite {
    pub from: String,
    pub to: String,
}

/// The formats `verify-config`'s `format` names (rehost-config's, which a test there checks).
pub const CONFIG_FORMATS: &[&str] = &["nginx", "spaced", "equals", "ini", "json", "toml", "lines"];

/// A `verify-db` step's exercise of the copy (`exercise = true`): as the application's login,
/// which is what must be able to read, modify and add, not the verifying one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DbExercise {
    /// `exercise_user`: the application's login; the database's `user` when absent.
    pub user: Option<String>,
    /// `exercise_password_file`: a file on the `to` host holding that login's password (never
    /// the password itself); none when absent (`~/.pgpass`, `~/.my.cnf` there, or trust).
    pub password_file: Option<String>,
}

impl StepKind {
    /// The kind's name as written in `do = "…"`, from its registry entry.
    pub fn name(&self) -> &'static str {
        crate::kinds::spec(self).name
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// The bulk copy, before the window, while the service still runs.
    Bulk,
    /// The final copy, inside the window, with the service stopped.
    Final,
}

/// How a `sync` step transfers: rsync where the host has it, else rehost's built-in transfer
/// (same metadata, skips files whose digest already matches).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMethod {
    #[default]
    Auto,
    Rsync,
    Builtin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    Duration(#[serde(with = "duration")] Duration),
    Until(jiff::Timestamp),
}

/// What a step accomplishes, in terms of the plan's declarations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", content = "id", rename_all = "snake_case")]
pub enum Effect {
    Stops(String),
    Starts(String),
    Drains(String),
    Transfers(String),
    Verifies(String),
    LowersTtl(String),
    /// Reconfigures clients that hold the address locally (a `[[clients]]` id).
    Reconfigures(String),
    Switches(String),
    /// Backs up the old side, keeping the copy where the string says (`backup = "WHERE"`:
    /// `HOST:PATH` or a description); what the lint asks for before the point of no return.
    BacksUp(String),
}

pub(crate) mod duration {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }
}

pub(crate) mod opt_duration {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

/// `1h 30m`, `45s`, `250ms`: the form durations are written in plans.
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".into();
    }
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if secs >= n {
            parts.push(format!("{}{unit}", secs / n));
            secs %= n;
        }
    }
    let ms = (total_ms % 1000) as u64;
    if secs > 0 || ms > 0 {
        if ms > 0 {
            parts.push(
                format!("{}.{:03}s", secs, ms)
                    .trim_end_matches('0')
                    .to_string(),
            );
        } else {
            parts.push(format!("{secs}s"));
        }
    }
    parts.join(" ")
}

/// Parses a duration as plans write it: `15m`, `1h 30m`, `90s`, `2d`, `250ms`, `1.5h`, or
/// ISO 8601 (`PT15M`). Days are 24 hours.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.starts_with(['P', 'p']) {
        let d: jiff::SignedDuration = s.parse().ok()?;
        return (!d.is_negative()).then(|| d.unsigned_abs());
    }
    let mut total = 0f64;
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = rest[num_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 604800.0,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_end..];
        any = true;
    }
    if !any || !total.is_finite() || total > 1e12 {
        return None;
    }
    Some(Duration::from_millis((total * 1000.0).round() as u64))
}
