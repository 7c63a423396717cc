//! Command-line arguments (clap derive). No logic here: `cmd` turns these into work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rehost",
    version,
    about = "Plan, rehearse, execute and prove the migration of a server (BSI IT-Grundschutz M 2.319)",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate a plan and lint it against M 2.319.
    Check(CheckArgs),
    /// Render the migration concept and checklist for sign-off.
    Concept(ConceptArgs),
    /// Execute the plan's checklist (or rehearse it with --env).
    Run(RunArgs),
    /// Show a run's state from its journal: each step, the downtime, the decisions.
    ///
    /// Each step's state (pending, done, failed, interrupted, waiting for confirmation, skipped,
    /// rolled back, superseded), its attempts, when it started, how long it took and who
    /// confirmed it; the decisions taken by flag; the downtime: each outage (a service stopped
    /// until it served again, rolled-back attempts included) and the total, the same figures
    /// `rehost run` and the report give. Only the journal is read: nothing on the hosts is
    /// checked. With --verify, the state directory is checked instead.
    Status(StatusArgs),
    /// Write the evidence of a run (HTML, JSON, Markdown) from its state directory.
    Report(ReportArgs),
    /// Verify data: prove a copy complete and correct.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Ask DNS servers directly what they serve for a name.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Write a manifest of a tree: every entry's metadata and digest, as evidence.
    Manifest(ManifestArgs),
    /// Find key material and prove it reached the new system (docs/keys.md).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Who is connected to a host's services: list established TCP connections, or wait until
    /// they are gone.
    #[command(subcommand)]
    Conns(ConnsCommand),
    /// Find the lines of files that mention an address or a name: the clients and
    /// configuration that will not follow the migration by themselves (docs/refs.md).
    #[command(subcommand)]
    Refs(RefsCommand),
    /// Relay TCP in front of a service, and switch it to another upstream without refusing a
    /// client (docs/hold.md): with --upstream, run the relay; with --switch, ask the one
    /// running on --listen to move.
    Hold(HoldArgs),
    /// Old clients served the same: replay recorded HTTP traffic against the old and the new
    /// service and compare the answers (docs/compat.md).
    #[command(subcommand)]
    Compat(CompatCommand),
    /// Survey a host: its services followed from socket to process, unit, package,
    /// configuration, data, keys and names, the clients seen connected, and around them cron,
    /// timers, units, packages, accounts, mounts, the firewall and kernel parameters
    /// (docs/survey.md).
    Survey(SurveyArgs),
    /// Many servers: one report for a fleet's runs (docs/report.md, "The fleet report").
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Run the demo: an embedded example migration between two local hosts.
    Demo(DemoArgs),
    /// Serve requests on stdin/stdout (started by rehost itself on remote hosts); with
    /// --print-path, show the agent rehost would upload to a host.
    #[command(hide = true)]
    Agent(AgentArgs),
    /// The small stateful service `rehost demo` migrates (started and stopped by its plan).
    #[command(hide = true)]
    DemoService(DemoServiceArgs),
}

#[derive(Args, Debug)]
pub struct DemoServiceArgs {
    #[command(subcommand)]
    pub action: DemoServiceAction,
}

#[derive(Subcommand, Debug)]
pub enum DemoServiceAction {
    /// Start the service detached; wait until it answers; write its pid file.
    Start(DemoServe),
    /// Serve in the foreground (what `start` runs).
    Serve(DemoServe),
    /// Stop the service the pid file names (only when it is this service), and wait for it.
    Stop {
        #[arg(long, value_name = "FILE")]
        pid_file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct DemoServe {
    /// A loopback address and port.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// The data directory: each write is a file under its `writes/`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The TLS key file it holds (it does not start without it).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub pid_file: PathBuf,
    /// It ends by itself after this long.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub exit_after: String,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Show the agent file rehost would upload (path, size, digests, what it needs from the
    /// host) and where it goes on the host, instead of serving.
    #[arg(long)]
    pub print_path: bool,
    /// With --print-path: the host's architecture, as `uname -m` names it (default: this
    /// machine's).
    #[arg(long, value_name = "ARCH", requires = "print_path")]
    pub arch: Option<String>,
}

impl Command {
    /// Whether the command only reads and reports (so it may end at a closed output pipe).
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            Command::Check(_)
                | Command::Concept(_)
                | Command::Status(_)
                | Command::Report(_)
                | Command::Fleet(_)
                | Command::Verify(_)
                | Command::Dns(_)
                | Command::Manifest(_)
                | Command::Keys(_)
                | Command::Conns(_)
                | Command::Refs(_)
                | Command::Survey(_)
        )
    }
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also run the pre-flight of `rehost run` and nothing else: open every host the steps
    /// use, check their paths, free space and tools (for the day before the window).
    #[arg(long)]
    pub hosts: bool,
    /// The environment whose hosts `--hosts` checks (default: production).
    #[arg(long, value_name = "NAME", requires = "hosts")]
    pub env: Option<String>,
    /// The ssh config file for ssh hosts whose plan entry names none (passed as `ssh -F`).
    #[arg(long, value_name = "FILE", requires = "hosts")]
    pub ssh_config: Option<PathBuf>,
}

/// `md` and `markdown` are one format, for the concept as for the report.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ConceptFormat {
    #[value(name = "md", alias = "markdown")]
    Md,
    Html,
}

#[derive(Args, Debug)]
pub struct ConceptArgs {
    pub plan: PathBuf,
    /// `md` (Markdown; `markdown` is the same) or `html`.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ConceptFormat,
    /// Write to this file instead of standard output (not through a symlink; refused in a
    /// directory another user could write).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The file's mode with -o, in octal.
    #[arg(long, value_name = "MODE", requires = "output", default_value = "0600", value_parser = crate::output::parse_mode)]
    pub mode: u32,
}

#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// Rehearse in this environment of the plan (its hosts replace the production hosts).
    #[arg(long)]
    pub env: Option<String>,
    /// The directory of this plan's runs, one directory per environment in it (default:
    /// `.rehost/<plan file stem>` next to the plan).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// The keys that sign the journal's head when `run` or `report` ends (docs/security.md):
/// without one, the journal's hash chain proves consistency, not authenticity.
#[derive(Args, Debug, Clone, Default)]
pub struct SignArgs {
    /// Sign the journal's head with this SSH key (`ssh-keygen -Y sign -n rehost`): a private
    /// key file, or a public key whose private half is in ssh-agent. Not inside the state
    /// directory.
    #[arg(long, value_name = "PATH", env = "REHOST_SIGN_KEY")]
    pub sign_key: Option<PathBuf>,
    /// Sign the journal's head with a BLAKE3 keyed hash (an HMAC) under the key in FILE: at
    /// least 32 random bytes, mode 0600, not inside the state directory.
    #[arg(long, value_name = "FILE", env = "REHOST_HMAC_KEY")]
    pub hmac_key: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum DnsCommand {
    /// Ask each given server, on its own and in parallel, for a name's records: the answer,
    /// its TTL, the zone's negative-caching TTL (SOA), whether it serves the expected values.
    ///
    /// Authoritative servers are asked without recursion, resolvers with it; over UDP, and
    /// over TCP when the answer is truncated; nothing is cached. A server that does not answer
    /// in time, refuses or answers with an error is reported as not answering, never as
    /// agreeing. Exit 0 when every server serves exactly the expected values (without
    /// --expect: every server gives the same answer), 1 when some do not, 2 when some could
    /// not be asked.
    Check(DnsCheckArgs),
    /// Switch a name at its zone's primary server: one DNS UPDATE (RFC 2136), signed with a
    /// TSIG key, that replaces exactly the --from values with the --to values.
    ///
    /// The server is asked first: already serving --to is success without a change; serving
    /// anything but --from is refused (someone changed it; nothing is sent). The update carries
    /// the prerequisite that the record set is exactly --from, so a change made in between is
    /// not overwritten either. After the server's NOERROR (its TSIG signature checked) it is
    /// asked again, and only its answer, exactly --to, counts as switched. Exit 0 switched or
    /// already switched, 2 not switched (the reason named).
    Switch(DnsSwitchArgs),
}

#[derive(Args, Debug)]
pub struct DnsSwitchArgs {
    /// The name to switch, e.g. www.example.org.
    pub name: String,
    /// The record type: A, AAAA or CNAME.
    #[arg(long = "type", value_name = "TYPE", default_value = "A")]
    pub rtype: String,
    /// A value it has now (repeat for several): the record set must be exactly these.
    #[arg(long, value_name = "VALUE", required = true)]
    pub from: Vec<String>,
    /// A value it gets (repeat for several).
    #[arg(long, value_name = "VALUE", required = true)]
    pub to: Vec<String>,
    /// The zone's primary server, which takes updates: `IP`, `IP:PORT` or `[IPv6]:PORT`.
    /// Without it, the primary the zone's SOA names (MNAME), found through --resolver (else
    /// the name servers of /etc/resolv.conf), at port 53.
    #[arg(long, value_name = "IP[:PORT]")]
    pub server: Option<String>,
    /// Without --server: the resolver to find the zone's primary through (repeat for several;
    /// default: the name servers of /etc/resolv.conf).
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Vec<String>,
    /// The zone (default: the zone whose SOA the server gives for the name).
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// The TSIG key file, as `tsig-keygen`, `keymgr -t` or `ALGORITHM:NAME:SECRET` write it;
    /// it must not be readable by every user. Its secret is never printed.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// The TTL of the new records, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "300")]
    pub ttl: u32,
    /// How long to wait for each of the server's answers, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "5")]
    pub timeout: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum CompatCommand {
    /// Send each recorded request to the old service, to the new one, and (GET, HEAD, OPTIONS)
    /// a second time to the old one; compare status, headers and bodies structurally.
    ///
    /// Bodies are compared as JSON trees where both are JSON (fields named like
    /// `$.items[3].price`), else as text lines, else by digest; gzip and deflate bodies decoded.
    /// A field in which the old service differs from itself (a timestamp, a random id) is noise
    /// for its endpoint: counted, not reported as a difference. Requests other than GET, HEAD
    /// and OPTIONS are listed and not sent unless --allow-writes. Exit 0 when every compared
    /// answer is the same, 1 when some differ, 2 when some request could not be replayed.
    Replay(CompatReplayArgs),
    /// Record real traffic: an HTTP/1.1 reverse proxy in front of the old service that
    /// appends each exchange to a traffic file (mode 0600: it holds the clients' credentials).
    ///
    /// Bytes pass through unchanged (chunked framing and compressed bodies as sent); a body
    /// over --max-record-body is proxied whole but recorded as truncated, which replay skips.
    /// Stops on SIGINT or SIGTERM after the exchanges in progress are written.
    Record(CompatRecordArgs),
    /// Run a probe file's requests and client commands against the old and the new service
    /// and compare the answers as `replay` does (docs/compat.md: the probe file).
    ///
    /// A command runs on this machine under `sh -c`, once with `{host}` and `{port}` of the
    /// old service, once with the new one's, and again with the old one's for noise; its exit
    /// status, output and error output are compared. Exit 0 same, 1 differences, 2 trouble.
    Probe(CompatProbeArgs),
    /// Replay the read-only statements of a PostgreSQL log against the old and the new
    /// database server and compare the answers row by row (docs/compat.md: SQL).
    ///
    /// The log is `log_statement = 'all'` (stderr format), csvlog or jsonlog. Each distinct
    /// SELECT, WITH … SELECT, VALUES, SHOW and TABLE statement runs alone in a read-only
    /// transaction that is rolled back, on the old server, the new one and the old one again;
    /// a column in which the old server differs from itself (now(), random()) is noise, not a
    /// difference. Other statements are listed and not run unless --allow-writes. Exit 0 when
    /// every compared statement was answered the same, 1 when some differ (an error only the
    /// new server raises among them), 2 when some could not be replayed.
    ReplaySql(CompatReplaySqlArgs),
}

#[derive(Args, Debug)]
pub struct CompatReplaySqlArgs {
    /// The server log (PostgreSQL: stderr with `log_statement = 'all'`, csvlog or jsonlog;
    /// MariaDB/MySQL: the general query log, `general_log = ON` to a file).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// The old server: postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB, or HOST:URL
    /// to run the client (psql, mariadb) on that host. The password comes from
    /// `?password_file=PATH` on the connecting host or the client's own ways (PGPASSWORD,
    /// ~/.pgpass, ~/.my.cnf).
    #[arg(long, value_name = "URL")]
    pub old: String,
    /// The new server, as --old.
    #[arg(long, value_name = "URL")]
    pub new: String,
    /// The log's format: stderr, csvlog, jsonlog or mariadb-general (default: told from its
    /// first line).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Also replay statements that are not read-only, each in a transaction that is rolled
    /// back, once per side: for the rehearsal copy.
    #[arg(long)]
    pub allow_writes: bool,
    /// Do not ask the old server twice: no noise is measured, every difference is reported.
    #[arg(long)]
    pub no_noise: bool,
    /// Statements replayed at once.
    #[arg(long, value_name = "N", default_value = "4")]
    pub concurrency: usize,
    /// Statements listed per class (differences, noise, refused …); the rest are counted.
    #[arg(long, value_name = "N", default_value = "20")]
    pub examples: usize,
    /// The most distinct statements replayed; the rest are counted as not replayed.
    #[arg(long, value_name = "N", default_value = "10000")]
    pub max_statements: usize,
    #[command(flatten)]
    pub hosts: KeysHostOptions,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompatProbeArgs {
    /// The probe file (TOML: `[[request]]` and `[[command]]` entries).
    pub file: PathBuf,
    /// The old service, `http://HOST:PORT[/PREFIX]`.
    #[arg(long, value_name = "URL")]
    pub old: String,
    /// The new service, `http://HOST:PORT[/PREFIX]`.
    #[arg(long, value_name = "URL")]
    pub new: String,
    /// Also send requests other than GET, HEAD and OPTIONS, once to each side.
    #[arg(long)]
    pub allow_writes: bool,
    /// Do not ask the old service twice: no noise is measured, every difference is reported.
    #[arg(long)]
    pub no_noise: bool,
    /// Seconds to wait to connect, and for each read and write.
    #[arg(long, value_name = "SECONDS", default_value = "30")]
    pub timeout: f64,
    /// An expected difference: a field glob (`*` any characters, `?` one), e.g.
    /// `$.meta.version` or `header x-powered-by`; listed as allowed, not counted. Repeatable.
    #[arg(long, value_name = "FIELD")]
    pub allow: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompatRecordArgs {
    /// Where clients connect, `IP:PORT` (port 0: a free port, printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// The old service, `HOST:PORT`.
    #[arg(long, value_name = "ADDR")]
    pub upstream: String,
    /// The traffic file to create (it must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The largest body recorded, in MiB; larger ones are proxied but not recorded.
    #[arg(long, value_name = "MIB", default_value = "64")]
    pub max_record_body: u64,
    /// Seconds to wait to connect upstream, and for a byte to move on a connection (idle or
    /// in an exchange); on a stop, how long the exchanges in progress may take.
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub timeout: f64,
    /// Relaying threads (0: one per CPU, at most 4).
    #[arg(long, value_name = "N", default_value = "0")]
    pub workers: usize,
}

#[derive(Args, Debug)]
pub struct CompatReplayArgs {
    /// The traffic file (`rehost compat record` writes it; format in docs/compat.md).
    #[arg(long, value_name = "FILE")]
    pub traffic: PathBuf,
    /// The old service, `http://HOST:PORT[/PREFIX]`.
    #[arg(long, value_name = "URL")]
    pub old: String,
    /// The new service, `http://HOST:PORT[/PREFIX]`.
    #[arg(long, value_name = "URL")]
    pub new: String,
    /// Also send recorded writes (POST, PUT, DELETE, ...) to both sides, once each: for the
    /// rehearsal copy, never for production data.
    #[arg(long)]
    pub allow_writes: bool,
    /// Requests in flight at once (each worker keeps one connection per side alive).
    #[arg(long, value_name = "N", default_value = "16")]
    pub concurrency: usize,
    /// Examples shown per differing field.
    #[arg(long, value_name = "N", default_value = "3")]
    pub examples: usize,
    /// Do not ask the old service twice: no noise is measured, every difference is reported.
    #[arg(long)]
    pub no_noise: bool,
    /// Seconds to wait to connect, and for each read and write.
    #[arg(long, value_name = "SECONDS", default_value = "30")]
    pub timeout: f64,
    /// The largest response body accepted, in MiB (a larger one is a failed request).
    #[arg(long, value_name = "MIB", default_value = "64")]
    pub max_body: u64,
    /// An expected difference: a field glob (`*` any characters, `?` one), e.g.
    /// `$.meta.version` or `header x-powered-by`; listed as allowed, not counted. Repeatable.
    #[arg(long, value_name = "FIELD")]
    pub allow: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DnsCheckArgs {
    /// The name to ask for, e.g. www.example.org.
    pub name: String,
    /// The record type: A, AAAA or CNAME.
    #[arg(long = "type", value_name = "TYPE", default_value = "A")]
    pub rtype: String,
    /// A value the name must have (repeat for several); the answer must be exactly these.
    #[arg(long, value_name = "ADDR")]
    pub expect: Vec<String>,
    /// A resolver to ask (recursion desired), as `IP`, `IP:PORT` or `[IPv6]:PORT`.
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Vec<String>,
    /// An authoritative server of the zone to ask (no recursion), as `IP`, `IP:PORT` or
    /// `[IPv6]:PORT`. Without any, the zone's servers are found through its NS records, asked
    /// of the --resolver servers (else of the name servers in /etc/resolv.conf), at port 53.
    #[arg(long, value_name = "IP[:PORT]")]
    pub authoritative: Vec<String>,
    /// How long to wait for each server's answer, in seconds (UDP, then TCP).
    #[arg(long, value_name = "SECONDS", default_value = "3")]
    pub timeout: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub plan: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    /// Who confirms manual steps (recorded in the journal).
    #[arg(long, value_name = "NAME")]
    pub confirm_as: Option<String>,
    /// Confirm every manual step without asking (recorded in the journal).
    #[arg(long)]
    pub yes: bool,
    /// Run in production although the plan has lint findings (recorded).
    #[arg(long)]
    pub accept_findings: bool,
    /// Continue although the plan changed since the run began (recorded).
    #[arg(long)]
    pub accept_plan_change: bool,
    /// Start steps that need the window outside it (recorded).
    #[arg(long)]
    pub ignore_window: bool,
    /// Run again a non-idempotent step that started but did not finish (recorded).
    #[arg(long, conflicts_with = "skip_interrupted")]
    pub retry_interrupted: bool,
    /// Treat a step that started but did not finish as done (recorded).
    #[arg(long)]
    pub skip_interrupted: bool,
    /// Stop once this step is done (recorded as a decision); the next `rehost run` resumes at
    /// the step after it. A step already done: nothing runs.
    #[arg(long, value_name = "STEP")]
    pub until: Option<String>,
    /// The ssh config file for ssh hosts whose plan entry names none (passed as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    #[command(flatten)]
    pub sign: SignArgs,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
// --env here chooses whose run is shown; it rehearses nothing.
#[command(mut_arg("env", |a| a.help(
    "Show the run of this environment of the plan (a rehearsal's name; default: production)"
)))]
pub struct StatusArgs {
    /// The plan file; when it is gone, the plan is read from its snapshot in the state
    /// directory.
    pub plan: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print the state (with --verify, the check's result) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Check the state directory instead of showing the state: the journal's hash chain, and
    /// every kept file (step outputs, evidence manifests, plan snapshots) against the digest
    /// the journal recorded for it. Exit 0 with the chain's head when everything matches, 1
    /// naming each mismatch. This proves that the files agree with each other, not who wrote
    /// them: whoever can write the state directory can rewrite the journal and its chain
    /// together. To prove nothing changed, give --head a head recorded elsewhere.
    #[arg(long)]
    pub verify: bool,
    /// With --verify: a head digest recorded earlier outside the state directory (a report
    /// prints it, so does `status --verify`); the journal must still hold that record, so
    /// nothing up to it was changed or removed.
    #[arg(long, value_name = "DIGEST", requires = "verify")]
    pub head: Option<String>,
    /// With --verify: check the SSH signature of the journal's head against this allowed
    /// signers file (ssh-keygen's format, `ssh-keygen -Y verify -f`). Exit 1 unless it holds and
    /// covers every record.
    #[arg(long, value_name = "FILE", requires = "verify")]
    pub allowed_signers: Option<PathBuf>,
    /// With --allowed-signers: the identity that must have signed (default: whichever the
    /// file names for the signature's key).
    #[arg(
        short = 'I',
        long,
        value_name = "IDENTITY",
        requires = "allowed_signers"
    )]
    pub signer_identity: Option<String>,
    /// With --verify: check the HMAC of the journal's head under the key in FILE. Exit 1
    /// unless it holds and covers every record.
    #[arg(long, value_name = "FILE", requires = "verify")]
    pub hmac_key: Option<PathBuf>,
    /// Re-check now the old side each finished `watch-old` step kept: walk it on its host
    /// again and compare it with the kept manifest; what changed since are lost writes. Each
    /// re-check is appended to the run's journal (the report shows it). Exit 0 when every old
    /// side is unchanged, 1 naming the changed paths, 2 when one could not be compared.
    #[arg(long, conflicts_with = "verify")]
    pub recheck: bool,
    /// With --recheck: the ssh config file for ssh hosts whose plan entry names none (passed
    /// as `ssh -F`).
    #[arg(long, value_name = "FILE", requires = "recheck")]
    pub ssh_config: Option<PathBuf>,
}

/// `md` and `markdown` are one format, for the report as for the concept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Json,
    #[value(name = "md", alias = "markdown")]
    Md,
    /// OSCAL assessment results (JSON): a result per run, the points of M 2.319 as
    /// observations, the Kompendium's requirements as the findings' targets.
    Oscal,
}

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// One page for many servers' runs: a matrix of servers × the points of M 2.319, each row
    /// linked to the server's own report (written beside it), downtime against each budget,
    /// the waves on a timeline. Reads the state directories and writes nothing into them (as
    /// `rehost report`, it makes one that others could read private: 0700, its files 0600).
    ///
    /// Exit codes: 0 every server's verdict is clean; 1 a server's is not, or a state
    /// directory could not be read (the page says which and why); 2 trouble (the output
    /// directory refused).
    Report(FleetReportArgs),
}

#[derive(Args, Debug)]
pub struct FleetReportArgs {
    /// State directories (`.rehost/PLAN/ENV`, or copies of them), or directories holding
    /// them (looked for up to four levels down, symlinks not followed). Runs of one plan kept
    /// side by side (`production` and `test`) are one server.
    #[arg(required = true, value_name = "STATEDIR")]
    pub dirs: Vec<PathBuf>,
    /// Write the page and every server's report into this directory (created if missing);
    /// not through a symlink, refused when another user could write it.
    #[arg(short, long, value_name = "DIR", default_value = "fleet-report")]
    pub output: PathBuf,
    /// The files' mode, in octal.
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = crate::output::parse_mode)]
    pub mode: u32,
    /// Which files to write, comma-separated: html, json, md (or markdown), oscal.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "html,json,md"
    )]
    pub format: Vec<ReportFormat>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    pub plan: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    /// Write the report files into this directory (default: the run's state directory); not
    /// through a symlink, refused when another user could write it.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The files' mode with -o, in octal.
    #[arg(long, value_name = "MODE", requires = "output", default_value = "0600", value_parser = crate::output::parse_mode)]
    pub mode: u32,
    /// Which files to write, comma-separated: html, json, md (or markdown), oscal
    /// (`report.oscal.json`, OSCAL assessment results).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "html,json,md"
    )]
    pub format: Vec<ReportFormat>,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to lay out the demo hosts (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Compare tree B with tree A (or with a manifest of A saved earlier): every entry's type,
    /// content (BLAKE3), metadata, xattrs, ACLs and hard links.
    Tree(VerifyTreeArgs),
    /// Compare database NEW with OLD (schema, per-table counts and checksums computed inside
    /// the servers, sequences; differing rows named by key), or with --exercise show that a
    /// server can read, change and add to its data (rolled back, and checked unchanged).
    Db(VerifyDbArgs),
    /// Compare the effective configuration of NEW with OLD after normalising it: a command's
    /// output (`nginx -T`, `sshd -T`), files or trees (INI, key=value, JSON, TOML, …), or a
    /// PostgreSQL server's settings. Exit 0: equal after the declared differences; 1:
    /// differences; 2: a side could not be read.
    Config(VerifyConfigArgs),
}

#[derive(Args, Debug)]
pub struct VerifyConfigArgs {
    /// The original: `PATH` or `HOST:PATH` (a file, or a tree compared file by file), `HOST:`
    /// with --command (the command's output on HOST; `:` alone is this machine), or a database
    /// URL as `verify db` takes it (`[HOST:]postgres://…`: the server's settings).
    pub old: String,
    /// The replacement, in the same forms.
    pub new: String,
    /// A key path whose difference is expected (a glob: `*.server_name`); listed as allowed
    /// with both values, not counted. Repeatable.
    #[arg(long, value_name = "KEY")]
    pub allow: Vec<String>,
    /// Replace FROM by TO in OLD's keys and values before comparing (host names, addresses,
    /// paths). Repeatable.
    #[arg(long, value_name = "FROM=TO")]
    pub rewrite: Vec<String>,
    /// The command whose output is the configuration, for `HOST:` sides.
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// The command for OLD, when it differs from NEW's.
    #[arg(long, value_name = "CMD")]
    pub old_command: Option<String>,
    /// The command for NEW, when it differs from OLD's.
    #[arg(long, value_name = "CMD")]
    pub new_command: Option<String>,
    /// Read both sides in this format instead of detecting it: nginx, spaced (`key value`),
    /// equals (`key=value`), ini, json, toml, lines.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[command(flatten)]
    pub hosts: KeysHostOptions,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyDbArgs {
    /// The original: postgres://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB (MariaDB, MySQL;
    /// `?socket=PATH`) or sqlite:PATH, or HOST:URL to connect from that host (over ssh, for
    /// servers that listen only on their own loopback). The password comes from
    /// `?password_file=PATH` on the connecting host, or the client's own ways there
    /// (PGPASSWORD, ~/.pgpass; MYSQL_PWD, ~/.my.cnf).
    pub old: String,
    /// The copy (not with --exercise).
    #[arg(required_unless_present = "exercise")]
    pub new: Option<String>,
    /// Exercise OLD instead: per table, read through every index, update a row, insert a row,
    /// each rolled back (tables a rollback cannot undo, such as MyISAM, only read); the whole
    /// database is checksummed before and after, and a difference is a finding.
    #[arg(long, conflicts_with = "new")]
    pub exercise: bool,
    /// Only this table (`schema.table` or `table`); repeatable.
    #[arg(long, value_name = "TABLE")]
    pub table: Vec<String>,
    /// Queries in flight per database (default 4).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// The ssh config file for HOST:postgres://… (passed as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TreeOptions {
    /// Leave out entries matching this glob (and everything below them); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Reader threads (I/O parallelism; default 16, sized for a cold disk).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// The ssh config file for HOST:PATH and ssh:// locations (passed as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Take HOST in HOST:PATH as a host of this plan (reached as the plan says).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// With --plan: the plan's hosts in this rehearsal environment.
    #[arg(long, value_name = "NAME", requires = "plan")]
    pub env: Option<String>,
}

#[derive(Args, Debug)]
pub struct VerifyTreeArgs {
    /// The original: a tree, or a manifest written by `rehost manifest`.
    pub a: String,
    /// The copy.
    pub b: String,
    #[command(flatten)]
    pub tree: TreeOptions,
    /// Do not compare this class of difference (mode, owner, group, mtime, xattr, acl, …); repeatable.
    #[arg(long, value_name = "CLASS")]
    pub ignore: Vec<String>,
    /// Read every file, trusting nothing from the previous verification of this pair.
    #[arg(long)]
    pub full: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List the keys and certificates under each location: kind, algorithm and size, public
    /// fingerprint, owner and mode; a private key readable by group or others is a problem.
    /// Exit 0: scanned, no problem; 1: a problem; 2: something could not be read.
    Scan(KeysScanArgs),
    /// Check that every key found under OLD is under NEW, matched by its public fingerprint
    /// whatever its path or format: missing, moved, extra, problem. Exit 0: every key present;
    /// 1: a key missing or a problem on NEW; 2: not everything could be read or identified.
    Compare(KeysCompareArgs),
}

/// How HOST:PATH and ssh:// locations are reached.
#[derive(Args, Debug, Clone)]
pub struct KeysHostOptions {
    /// The ssh config file for HOST:PATH and ssh:// locations (passed as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Take HOST in HOST:PATH as a host of this plan (reached as the plan says).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// With --plan: the plan's hosts in this rehearsal environment.
    #[arg(long, value_name = "NAME", requires = "plan")]
    pub env: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RefsCommand {
    /// List every line under the locations that mentions one of the --find addresses or
    /// names: IPv4 and names not inside a longer number or name (10.0.0.1 is not found in
    /// 10.0.0.12), IPv6 in every spelling of the same address, names in any case. Binary
    /// files (a NUL byte) are skipped and counted; symlinks are not followed. Exit 0: nothing
    /// mentions them; 1: lines found; 2: a location or file could not be read.
    Scan(RefsScanArgs),
}

#[derive(Args, Debug)]
pub struct RefsScanArgs {
    /// Files or directories: `PATH`, `HOST:PATH` or `ssh://[USER@]HOST[:PORT]/PATH`.
    #[arg(required = true)]
    pub locations: Vec<String>,
    /// An address (IPv4, IPv6) or a name to look for; repeat for several.
    #[arg(long, value_name = "ADDR_OR_NAME", required = true)]
    pub find: Vec<String>,
    #[command(flatten)]
    pub hosts: KeysHostOptions,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KeysScanArgs {
    /// Files or directories: `PATH`, `HOST:PATH` or `ssh://[USER@]HOST[:PORT]/PATH`.
    #[arg(required = true)]
    pub locations: Vec<String>,
    #[command(flatten)]
    pub hosts: KeysHostOptions,
    /// Open PKCS#12 bundles with the passwords in FILE (one a line; the first that opens a
    /// bundle is used). FILE must be readable by its owner only; the passwords go to the host
    /// that holds the bundles and are never printed or kept.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Open and sniff every file: do not skip the files the host's key scan cache knows
    /// unchanged since a scan found nothing in them (or only certificates and public keys,
    /// whose public facts it kept), and do not write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print JSON instead of text (`--format json`).
    #[arg(long)]
    pub json: bool,
    /// How to print: `text`, `json`, or `csv` (the inventory of cryptographic material BSI's
    /// CON.1 asks for: one row per key with its location, path, kind, algorithm and size,
    /// fingerprint, where it is used, its expiry, owner and mode).
    #[arg(long, value_enum, default_value_t = KeysFormat::Text, conflicts_with = "json")]
    pub format: KeysFormat,
}

/// `keys scan --format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysFormat {
    Text,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct KeysCompareArgs {
    /// Where the keys are now (the old system).
    pub old: String,
    /// Where they must be (the new system).
    pub new: String,
    #[command(flatten)]
    pub hosts: KeysHostOptions,
    /// Open PKCS#12 bundles on both sides with the passwords in FILE (one a line), as
    /// `keys scan --password-file`.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Open and sniff every file on both sides, as `keys scan --no-cache`.
    #[arg(long)]
    pub no_cache: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// The tree.
    pub location: String,
    /// Where to write the manifest.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub tree: TreeOptions,
}

#[derive(Subcommand, Debug)]
pub enum ConnsCommand {
    /// List the established TCP connections (IPv4 and IPv6) to local ports of a host: each
    /// client's address and port, the local port, the owning process where visible, the send
    /// and receive queues. Read from the kernel (netlink sock_diag, else /proc/net/tcp*).
    List(ConnsListArgs),
    /// Wait until no established TCP connection to the ports remains; exits 1 at the timeout
    /// naming each client still connected (the ones to end by hand).
    Drain(ConnsDrainArgs),
    /// Sample the established TCP connections to ports once a second and report every distinct
    /// client seen: when first and last, and how many connections (who depends on this server;
    /// --toml prints them as the plan's `[[clients]]`).
    Watch(ConnsWatchArgs),
}

/// Which host a `conns` command looks at.
#[derive(Args, Debug)]
pub struct ConnsHost {
    /// The host: `[USER@]HOST` or `ssh://[USER@]HOST[:PORT]` (reached through the agent), a
    /// host of the plan given with --plan; default: this machine.
    pub host: Option<String>,
    /// The ssh config file for HOST (passed as `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Take HOST as a host of this plan (reached as the plan says).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// With --plan: the plan's hosts in this rehearsal environment.
    #[arg(long, value_name = "NAME", requires = "plan")]
    pub env: Option<String>,
}

/// `rehost survey [HOST]`.
#[derive(Args, Debug)]
pub struct SurveyArgs {
    #[command(flatten)]
    pub on: ConnsHost,
    /// Sample the clients connected to the listening TCP ports for this long, once a second
    /// (`5m`, `30s`; `0`: not at all). A connection alive in every sample is persistent.
    #[arg(long = "for", value_name = "DURATION", default_value = "5m")]
    pub sample_for: String,
    /// Print the inventory as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// The draft plan, the map and the comparison (survey-draft's part).
    #[command(flatten)]
    pub draft: SurveyDraftArgs,
}

/// What follows from a survey (docs/survey.md): the draft plan, the dependency map, the
/// comparison of two surveys.
#[derive(Args, Debug)]
pub struct SurveyDraftArgs {
    /// Write a draft plan of the surveyed host to FILE: every service, data set, database,
    /// key, name and client with where it was found, and the checklist in M 2.319's order;
    /// what a person decides is marked TODO, which `rehost check` lists.
    #[arg(short = 'o', long = "draft", value_name = "FILE")]
    pub draft: Option<PathBuf>,
    /// Draw the dependency map (services, data, keys, names, clients) as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Compare two surveys instead: what OLD has that NEW lacks. Each is an inventory JSON
    /// file (`rehost survey HOST --json > old.json`) or a host surveyed now (`[USER@]HOST`,
    /// `ssh://…`, a host of --plan, `local`). With --plan, its `[survey]` table declares the
    /// expected differences. Exit 0 when nothing is missing, 1 when something is.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with_all = ["draft", "map"])]
    pub compare: Option<Vec<String>>,
    /// With --compare: a key whose difference is expected (a glob: `package linux-image-*`);
    /// listed as allowed, not counted. Repeatable; adds to the plan's `[survey] allow`.
    #[arg(long, value_name = "KEY", requires = "compare")]
    pub allow: Vec<String>,
    /// With --compare: replace FROM by TO in the old host's names and values before comparing
    /// (its host name, its addresses). Repeatable; adds to the plan's `[survey] rewrite`.
    #[arg(long, value_name = "FROM=TO", requires = "compare")]
    pub rewrite: Vec<String>,
    /// Take the inventory from FILE (written by `rehost survey --json`) instead of surveying
    /// a host: to write the draft or the map of an earlier survey.
    #[arg(long, value_name = "FILE", conflicts_with = "compare")]
    pub inventory: Option<PathBuf>,
    /// With -o: also write the inventory (as --json prints it) to FILE, and name it in the
    /// draft's `[survey] inventory`, whose dependency map `rehost concept` embeds. With
    /// --inventory, the draft names that file instead.
    #[arg(
        long,
        value_name = "FILE",
        requires = "draft",
        conflicts_with = "inventory"
    )]
    pub inventory_out: Option<PathBuf>,
    /// The file mode of the draft and the map (octal; default 0600).
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = crate::output::parse_mode)]
    pub mode: u32,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["upstream", "switch"]))]
pub struct HoldArgs {
    /// The address to accept clients on, `IP:PORT` (without it, the socket systemd passes:
    /// LISTEN_FDS/LISTEN_PID); with --switch, the address of the hold to switch.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Run the relay, forwarding every client to this `HOST:PORT`.
    #[arg(long, value_name = "ADDR", conflicts_with = "switch")]
    pub upstream: Option<String>,
    /// Switch the running hold on --listen to this upstream `HOST:PORT`: accept pauses (new
    /// clients wait, not refused), the old side drains, new clients go to this one.
    #[arg(long, value_name = "ADDR", requires = "listen")]
    pub switch: Option<String>,
    /// With --switch: the time box, e.g. `2s`, `500ms`: connections to the old upstream still
    /// open at three quarters of it are ended.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        requires = "switch"
    )]
    pub timeout: String,
    /// The private directory of the control socket (default: $XDG_RUNTIME_DIR/rehost-hold,
    /// else /tmp/rehost-hold-UID); refused if another user owns it or may write to it.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// With --upstream: relay at most this many connections at once (more wait in the backlog).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        conflicts_with = "switch"
    )]
    pub max_connections: usize,
    /// With --upstream: relay on this many worker threads (default: one per CPU, at most 4).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true,
        conflicts_with = "switch"
    )]
    pub workers: usize,
    /// With --switch: print the switch's report as JSON.
    #[arg(long, requires = "switch")]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ConnsListArgs {
    #[command(flatten)]
    pub on: ConnsHost,
    /// Only connections to this local port; repeatable (default: every local port, unless
    /// --socket or --db is given).
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// The clients of the listening Unix socket at this absolute path on the host (both ends'
    /// processes where visible); repeatable.
    #[arg(long = "socket", value_name = "PATH")]
    pub sockets: Vec<PathBuf>,
    /// The database server's own view of its sessions (PostgreSQL's pg_stat_activity,
    /// MariaDB's processlist), joined to the TCP listing by client address and port: a
    /// `[[databases]]` id of --plan (its old side, from its host), or a postgres:// or
    /// mysql:// URL reached from HOST.
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// With --db ID: the database's new side (on its `to` host).
    #[arg(long, requires = "db")]
    pub new: bool,
    /// Leave out the owning processes (not looked up in /proc/*/fd): the kernel's table only,
    /// as `ss -tn` shows it.
    #[arg(long)]
    pub no_process: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ConnsWatchArgs {
    #[command(flatten)]
    pub on: ConnsHost,
    /// A local port whose clients to watch; repeatable, at least one.
    #[arg(long = "port", value_name = "PORT", required = true)]
    pub ports: Vec<u16>,
    /// How long to watch, e.g. `30s`, `1h`; until interrupted (Ctrl-C) without it.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, conflicts_with = "toml")]
    pub json: bool,
    /// Print the clients as the plan's `[[clients]]` entries, one per port.
    #[arg(long)]
    pub toml: bool,
}

#[derive(Args, Debug)]
pub struct ConnsDrainArgs {
    #[command(flatten)]
    pub on: ConnsHost,
    /// A local port whose connections must end; repeatable, at least one (or --socket).
    #[arg(
        long = "port",
        value_name = "PORT",
        required_unless_present = "sockets"
    )]
    pub ports: Vec<u16>,
    /// A listening Unix socket (absolute path) whose connections must end too; repeatable.
    #[arg(long = "socket", value_name = "PATH")]
    pub sockets: Vec<PathBuf>,
    /// How long to wait, e.g. `90s`, `10m`.
    #[arg(long, value_name = "DURATION")]
    pub timeout: String,
    /// At the timeout, end the connections still there (SOCK_DESTROY, else shut down from
    /// their process) and report each ended and each that could not be.
    #[arg(long)]
    pub terminate: bool,
    /// The result as one JSON document on stdout (who was connected, who left when, what
    /// was ended); the progress lines stay on stderr.
    #[arg(long)]
    pub json: bool,
}
