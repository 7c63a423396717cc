//! The Ansible collection `rehost.migrate` (ansible/ansible_collections/rehost/migrate), built
//! with `ansible-galaxy collection build`, installed from its tarball, and driven by
//! `ansible-playbook`: three servers reached over real sshd on loopback, migrated in waves of
//! two by the role `rehost.migrate.migrate`, one of them failing mid-plan (its copy is changed
//! before the verification) and rolled back by its own plan.
//!
//! The sanity and lint checks of the collection (`ansible-test sanity`, `ansible-lint`) are
//! `scripts/ansible-checks`, run by `scripts/test`.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const HOSTS: [&str; 3] = ["web1", "web2", "web3"];
/// The host whose plan fails: its `after-copy` step changes the copy, `verify` finds it.
const FAILING: &str = "web2";

/// The collection's sources in the repository.
fn collection_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible/ansible_collections/rehost/migrate")
}

/// Each path's mode, owner, size, mtime (seconds, nanoseconds) and content.
type Snapshot = BTreeMap<String, (u32, u32, u64, i64, i64, Vec<u8>)>;

struct Fleet {
    d: TestDir,
    servers: Vec<Sshd>,
}

impl Fleet {
    /// Three servers, each with its app data on the old side and an empty new side; the
    /// collection built and installed; the inventory, plan template and playbooks written.
    fn new() -> Fleet {
        let mut fleet = Fleet::without_servers();
        fleet.servers = HOSTS.iter().map(|_| Sshd::start()).collect();
        let mut inventory = String::from("---\napp:\n  hosts:\n");
        for (i, name) in HOSTS.iter().enumerate() {
            let sshd = &fleet.servers[i];
            let old = fleet.d.join(&format!("hosts/{name}/old"));
            fleet.d.write(
                &format!("hosts/{name}/old/srv/data/a.txt"),
                format!("{name} data\n"),
            );
            fleet
                .d
                .write(&format!("hosts/{name}/old/srv/data/sub/b.txt"), "b\n");
            fleet
                .d
                .write(&format!("hosts/{name}/old/srv/app.state"), "running\n");
            std::fs::create_dir_all(fleet.d.join(&format!("hosts/{name}/new/srv"))).unwrap();
            // The plan names the server as an inventory does (root@127.0.0.1, its port); this
            // file gives ssh its key and known host.
            let config = fleet.d.write(
                &format!("ssh/{name}.config"),
                format!(
                    "Host 127.0.0.1\n  IdentityFile {dir}/client_ed25519\n  IdentitiesOnly yes\n  \
                     UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
                     BatchMode yes\n  LogLevel ERROR\n",
                    dir = sshd.dir().display()
                ),
            );
            inventory.push_str(&format!(
                "    {name}:\n      ansible_host: 127.0.0.1\n      ansible_port: {port}\n      \
                 ansible_user: root\n      old_ssh_config: {config}\n      old_root: {old}\n      \
                 new_root: {new}\n",
                port = sshd.port(),
                config = config.display(),
                old = old.display(),
                new = fleet.d.join(&format!("hosts/{name}/new")).display(),
            ));
            if *name == FAILING {
                inventory.push_str("      after_copy: echo changed >> srv/data/a.txt\n");
            }
        }
        fleet.d.write("inventory.yml", inventory);
        fleet
            .d
            .write("plan.toml.j2", include_str!("ansible/plan.toml.j2"));
        for max_fail in [49, 50] {
            fleet.d.write(
                &format!("site-{max_fail}.yml"),
                include_str!("ansible/site.yml")
                    .replace("MAX_FAIL", &max_fail.to_string())
                    .replace("REHOST", &bin().display().to_string()),
            );
        }
        fleet
    }

    /// A test directory with the collection built and installed in it, no server.
    fn without_servers() -> Fleet {
        for tool in ["ansible-playbook", "ansible-galaxy"] {
            rehost_test::require_tool(tool);
        }
        let fleet = Fleet {
            d: TestDir::new(),
            servers: Vec::new(),
        };
        fleet.install_collection();
        fleet
    }

    /// `ansible-galaxy collection build` of the repository's collection, and the tarball
    /// installed where the playbooks find it: what a user does.
    fn install_collection(&self) {
        let build = self.d.join("build");
        let o = self.ansible(
            "ansible-galaxy",
            &[
                "collection",
                "build",
                "--force",
                "--output-path",
                &build.display().to_string(),
                &collection_dir().display().to_string(),
            ],
        );
        assert_eq!(o.0, 0, "ansible-galaxy collection build failed:\n{}", o.1);
        let tarball = build.join("rehost-migrate-0.1.0.tar.gz");
        assert!(tarball.is_file(), "no {}:\n{}", tarball.display(), o.1);
        let o = self.ansible(
            "ansible-galaxy",
            &[
                "collection",
                "install",
                "--force",
                "-p",
                &self.d.join("collections").display().to_string(),
                &tarball.display().to_string(),
            ],
        );
        assert_eq!(o.0, 0, "ansible-galaxy collection install failed:\n{}", o.1);
    }

    /// Runs an Ansible command in the test directory with its own home, temporary files and
    /// collections; returns the exit code and stdout and stderr together.
    fn ansible(&self, program: &str, args: &[&str]) -> (i32, String) {
        let home = self.d.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let out = Command::new(program)
            .args(args)
            .current_dir(self.d.path())
            .env("HOME", &home)
            .env("ANSIBLE_CONFIG", self.d.join("no-ansible.cfg"))
            .env("ANSIBLE_COLLECTIONS_PATH", self.d.join("collections"))
            .env("ANSIBLE_LOCAL_TEMP", self.d.join("ansible-tmp"))
            .env("ANSIBLE_ASYNC_DIR", self.d.join("ansible-async"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
            // The new sides are this machine: their run locks in the test's own directory.
            .env("REHOST_LOCK_DIR", self.d.join("locks"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("failed to run {program}: {e}; run `bash .ci/install-deps` (ansible-core)")
            });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn playbook(&self, max_fail: u32, extra: &[&str]) -> (i32, String) {
        let site = format!("site-{max_fail}.yml");
        let mut args = vec!["-i", "inventory.yml", site.as_str()];
        args.extend_from_slice(extra);
        self.ansible("ansible-playbook", &args)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.d.join(rel)).unwrap_or_else(|_| String::from("(missing)"))
    }

    /// `rehost status --json` of a host's run.
    fn status(&self, host: &str) -> serde_json::Value {
        let plan = self.d.join(&format!("migrations/{host}/plan.toml"));
        let state = self.d.join(&format!("migrations/{host}/state"));
        let o = rehost(
            &self.d,
            &[
                "status",
                &plan.display().to_string(),
                "--state",
                &state.display().to_string(),
                "--json",
            ],
        );
        assert_eq!(o.code, 0, "{}", o.all());
        serde_json::from_str(&o.stdout).unwrap()
    }

    fn step_states(&self, host: &str) -> Vec<(String, String)> {
        self.status(host)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn journal(&self, host: &str) -> String {
        self.read(&format!("migrations/{host}/state/production/journal"))
    }

    /// Every file and directory under `hosts/` and `migrations/`: path, mode, owner, size,
    /// mtime and content. Two equal snapshots mean nothing was written, created, removed or
    /// touched.
    fn snapshot(&self) -> Snapshot {
        let mut all = BTreeMap::new();
        for top in ["hosts", "migrations"] {
            walk(self.d.path(), &self.d.join(top), &mut all);
        }
        all
    }

    fn assert_migrated(&self, host: &str) {
        assert_eq!(
            self.read(&format!("hosts/{host}/new/srv/data/a.txt")),
            format!("{host} data\n")
        );
        assert_eq!(
            self.read(&format!("hosts/{host}/new/srv/data/sub/b.txt")),
            "b\n"
        );
        assert_eq!(
            self.read(&format!("hosts/{host}/old/srv/app.state")),
            "stopped\n"
        );
        assert_eq!(
            self.read(&format!("hosts/{host}/new/srv/app.state")),
            "running\n"
        );
        let status = self.status(host);
        assert!(
            status["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "done"),
            "{host}: {status}"
        );
        assert_eq!(status["finished"]["ok"], true, "{host}: {status}");
        assert!(
            self.d
                .join(&format!("migrations/{host}/report/report.html"))
                .is_file()
        );
    }

    fn assert_untouched(&self, host: &str) {
        assert_eq!(
            self.read(&format!("hosts/{host}/old/srv/app.state")),
            "running\n"
        );
        assert!(!self.d.join(&format!("hosts/{host}/new/srv/data")).exists());
        assert!(
            !self
                .d
                .join(&format!("migrations/{host}/state/production"))
                .exists()
        );
    }

    /// The failing host: rolled back by its plan (the old app running again), its run failed
    /// at `verify` and its journal holding the rollback.
    fn assert_rolled_back(&self, host: &str, rollbacks: usize) {
        assert_eq!(
            self.read(&format!("hosts/{host}/old/srv/app.state")),
            "running\n",
            "{host}'s old app was not started again by the rollback"
        );
        let states = self.step_states(host);
        let state = |id: &str| {
            states
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, st)| st.as_str())
                .unwrap()
        };
        assert_eq!(state("verify"), "failed", "{states:?}");
        assert_eq!(state("stop-old"), "rolled_back", "{states:?}");
        assert_eq!(state("start-new"), "pending", "{states:?}");
        let journal = self.journal(host);
        assert_eq!(
            journal.matches("\"type\":\"rollback_started\"").count(),
            rollbacks,
            "{journal}"
        );
        assert!(
            journal.contains("\"type\":\"rolled_back\",") && journal.contains("\"ok\":true"),
            "{journal}"
        );
    }
}

fn walk(base: &Path, dir: &Path, all: &mut Snapshot) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        let m = std::fs::symlink_metadata(&path).unwrap();
        let content = if m.is_file() {
            std::fs::read(&path).unwrap()
        } else {
            Vec::new()
        };
        let rel = path.strip_prefix(base).unwrap().display().to_string();
        all.insert(
            rel,
            (
                m.mode(),
                m.uid(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                content,
            ),
        );
        if m.is_dir() {
            walk(base, &path, all);
        }
    }
}

/// The lines of every section of `output` that runs the task whose name starts with `task`,
/// one per wave.
fn task_lines<'a>(output: &'a str, task: &str) -> Vec<&'a str> {
    let header = format!("TASK [rehost.migrate.migrate : {task}");
    let mut lines = Vec::new();
    let mut inside = false;
    for line in output.lines() {
        if line.starts_with("TASK [") || line.starts_with("PLAY ") {
            inside = line.starts_with(&header);
            continue;
        }
        if inside {
            lines.push(line);
        }
    }
    lines
}

#[test]
fn a_fleet_migrates_in_waves_and_the_failing_host_is_rolled_back_by_its_plan() {
    let fleet = Fleet::new();

    // Check mode before anything ran: every step of every host would run, nothing is written
    // (not even the migrations directory).
    let (code, out) = fleet.playbook(49, &["--check", "--diff"]);
    assert_eq!(code, 0, "{out}");
    let run = task_lines(&out, "Run the plan").join("\n");
    for host in HOSTS {
        assert!(
            run.contains(&format!("changed: [{host} -> localhost]")),
            "{host}:\n{out}"
        );
    }
    assert!(run.contains("+stop-old: done"), "{out}");
    assert!(!fleet.d.join("migrations").exists(), "{out}");
    for host in HOSTS {
        fleet.assert_untouched(host);
    }

    // max_fail_percentage 49: in the first wave (web1, web2) one host of two fails, 50 %,
    // more than 49 %: the play stops before the second wave.
    let (code, out) = fleet.playbook(49, &[]);
    assert_eq!(code, 2, "{out}");
    // The pre-flight ran on the whole wave before the first step anywhere.
    let preflight_at = out
        .find("TASK [rehost.migrate.migrate : Check, lint and pre-flight the plan]")
        .expect(&out);
    let run_at = out
        .find("TASK [rehost.migrate.migrate : Run the plan")
        .expect(&out);
    assert!(preflight_at < run_at, "{out}");
    let preflight = task_lines(&out, "Check, lint and pre-flight the plan").join("\n");
    for host in ["web1", "web2"] {
        assert!(
            preflight.contains(&format!("ok: [{host} -> localhost]")),
            "{out}"
        );
    }
    let run = task_lines(&out, "Run the plan").join("\n");
    assert!(run.contains("changed: [web1 -> localhost]"), "{out}");
    // The failing host is named, with the step that failed and what its plan rolled back.
    let fatal = run
        .lines()
        .find(|l| l.starts_with("fatal: [web2 -> localhost]: FAILED!"))
        .unwrap_or_else(|| panic!("web2 not named as failed:\n{out}"));
    assert!(fatal.contains("step `verify` failed"), "{fatal}");
    assert!(
        fatal.contains("rolled back by the plan: stop-old"),
        "{fatal}"
    );
    assert!(fatal.contains("\"source\": \"rollback\""), "{fatal}");
    let failed = task_lines(&out, "Fail the host whose plan failed").join("\n");
    assert!(failed.contains("fatal: [web2]: FAILED!"), "{out}");
    assert!(
        failed.contains("rolled back by the plan: stop-old"),
        "{out}"
    );
    assert!(out.contains("NO MORE HOSTS LEFT"), "{out}");
    assert!(
        !out.contains("web3"),
        "web3 ran despite max_fail_percentage 49:\n{out}"
    );
    fleet.assert_migrated("web1");
    fleet.assert_rolled_back("web2", 1);
    fleet.assert_untouched("web3");

    // Check mode now: web1 has nothing to do, web2 and web3 would run; every state directory,
    // plan, report and server tree stays byte for byte as it was.
    let before = fleet.snapshot();
    let (code, out) = fleet.playbook(49, &["--check", "--diff"]);
    assert_eq!(code, 0, "{out}");
    let run = task_lines(&out, "Run the plan").join("\n");
    assert!(run.contains("ok: [web1 -> localhost]"), "{out}");
    assert!(run.contains("changed: [web2 -> localhost]"), "{out}");
    assert!(run.contains("changed: [web3 -> localhost]"), "{out}");
    let after = fleet.snapshot();
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "check mode changed {changed:?}:\n{out}");

    // max_fail_percentage 50: the same failure (50 %, not more) lets the second wave run.
    // web1 is finished: its run starts no step and is not `changed`.
    let (code, out) = fleet.playbook(50, &[]);
    assert_eq!(code, 2, "{out}");
    let run = task_lines(&out, "Run the plan").join("\n");
    assert!(run.contains("ok: [web1 -> localhost]"), "{out}");
    assert!(run.contains("fatal: [web2 -> localhost]: FAILED!"), "{out}");
    assert!(run.contains("changed: [web3 -> localhost]"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("web2") && l.contains("failed=1")),
        "{out}"
    );
    fleet.assert_migrated("web1");
    fleet.assert_migrated("web3");
    fleet.assert_rolled_back("web2", 2);

    // The fleet's page reads the three state directories the role left (docs/report.md):
    // web2's run is the one whose verdict fails the fleet's.
    let o = rehost(
        &fleet.d,
        &[
            "fleet",
            "report",
            "migrations",
            "-o",
            "fleet",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    let page: serde_json::Value = serde_json::from_str(&fleet.read("fleet/fleet.json")).unwrap();
    let servers = page["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{page}");
    let verdict = |host: &str| {
        servers
            .iter()
            .find(|s| {
                s["state_dir"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("/{host}/"))
            })
            .unwrap_or_else(|| panic!("{host} not in the fleet page: {page}"))["verdict"]
            .clone()
    };
    assert_eq!(verdict("web1"), verdict("web3"), "{page}");
    assert_ne!(verdict("web1"), verdict("web2"), "{page}");
}

/// The modules on this machine's trees, keys, SQLite files and plans, through one playbook
/// whose assertions read their results (tests/it/ansible/modules.yml): differences, key
/// verdicts, rows and plan errors as `findings`, `changed` exactly when a step ran. `survey`
/// surveys this machine, reads a stand-in rehost's inventory (the fields the module sums) and
/// fails on a host that cannot be reached.
#[test]
fn the_modules_return_rehosts_results_as_data() {
    rehost_test::require_tool("sqlite3");
    let fleet = Fleet::without_servers();
    let d = &fleet.d;
    // Copies made with `cp -a` (every mtime kept), then one file's content changed in one of
    // them with its mtime put back: the only difference is that content.
    d.write("trees/a/x", "x\n");
    d.write("trees/a/sub/y", "y\n");
    for t in ["same", "changed"] {
        let st = Command::new("cp")
            .arg("-a")
            .arg(d.join("trees/a"))
            .arg(d.join(&format!("trees/{t}")))
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::write(d.join("trees/changed/x"), "X\n").unwrap();
    let st = Command::new("touch")
        .arg("-r")
        .arg(d.join("trees/a/x"))
        .arg(d.join("trees/changed/x"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(d.join("keys")).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(d.join("keys/id"))
        .status()
        .expect("ssh-keygen: run `bash .ci/install-deps`");
    assert!(st.success());
    for (db, v) in [("old.db", "a"), ("new.db", "b")] {
        let st = Command::new("sqlite3")
            .arg(d.join(db))
            .arg(format!(
                "create table t(id integer primary key, v text); insert into t values (1, '{v}');"
            ))
            .status()
            .unwrap();
        assert!(st.success());
    }
    d.write(
        "broken.toml",
        "[migration]\ntitle = \"broken\"\n\n[[steps]]\nid = \"x\"\ndo = \"run\"\n",
    );
    d.write("hosts/old/srv/data/a", "a\n");
    std::fs::create_dir_all(d.join("hosts/new/srv")).unwrap();
    d.write(
        "plan.toml",
        format!(
            "[migration]\ntitle = \"t\"\ninitiated_by = [\"IT security officer\"]\n\
             implemented_by = \"Administrator\"\n\
             window = {{ start = \"2020-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }}\n\
             max_downtime = \"15m\"\n\n\
             [hosts.old]\nlocal = true\nroot = \"{root}/hosts/old\"\n\n\
             [hosts.new]\nlocal = true\nroot = \"{root}/hosts/new\"\n\n\
             [environments.test]\nold = {{ local = true, root = \"{root}/test-old\" }}\n\
             new = {{ local = true, root = \"{root}/test-new\" }}\n\n\
             [[data]]\nid = \"files\"\nfrom = \"old:/srv/data\"\nto = \"new:/srv/data\"\n\n\
             [[steps]]\nid = \"stop\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"true\"\n\n\
             [[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"files\"\n\n\
             [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n",
            root = d.path().display()
        ),
    );
    // The same plan whose window opens in 2090: beyond any wait.
    let later = std::fs::read_to_string(d.join("plan.toml"))
        .unwrap()
        .replace(
            "start = \"2020-01-01T00:00:00Z\"",
            "start = \"2090-01-01T00:00:00Z\"",
        );
    assert!(later.contains("2090"));
    d.write("later/plan.toml", later);
    let inventory = r#"{"format":1,"host":"old01","taken_at":"2026-12-07T12:00:00Z","took_ms":3,"sampled":{"seconds":0,"samples":0},"system":{},"services":[{"id":"nginx.service"}],"sockets":[],"clients":[],"gaps":[{"what":"/etc/shadow","why":"permission denied"}]}"#;
    let fake = d.write(
        "fake-rehost",
        format!("#!/bin/sh\n[ \"$1\" = survey ] || exit 2\nprintf '%s\\n' '{inventory}'\n"),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Run once before Ansible does: another test thread that forked while the file was open
    // for writing holds it (ETXTBSY) until its child execs.
    let started = std::time::Instant::now();
    loop {
        match Command::new(&fake).arg("survey").output() {
            Ok(o) if o.status.success() => break,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "{e}"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => panic!("the stand-in rehost did not run: {other:?}"),
        }
    }
    d.write("modules.yml", include_str!("ansible/modules.yml"));
    let extra = format!("dir={} rehost={}", d.path().display(), bin().display());
    let (code, out) = fleet.ansible("ansible-playbook", &["modules.yml", "-e", &extra]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("localhost") && l.contains("failed=0")),
        "{out}"
    );
    // The key's private bytes are nowhere in what Ansible printed.
    let key = std::fs::read_to_string(d.join("keys/id")).unwrap();
    let body: String = key.lines().nth(1).unwrap().to_owned();
    assert!(!out.contains(&body), "{out}");
}

/// The pre-flight covers the whole wave before any step runs: in a wave of two, one host's
/// data set is missing on its old side; neither host runs a step (no state directory, the
/// other host's old side untouched), and both fail naming the host and the problem.
#[test]
fn a_failed_pre_flight_stops_the_whole_wave_before_any_step() {
    let fleet = Fleet::without_servers();
    let d = &fleet.d;
    let mut inventory = String::from("---\napp:\n  hosts:\n");
    for name in ["db1", "db2"] {
        if name == "db1" {
            d.write(&format!("hosts/{name}/old/srv/data/a"), "a\n");
        }
        d.write(&format!("hosts/{name}/old/srv/app.state"), "running\n");
        std::fs::create_dir_all(d.join(&format!("hosts/{name}/new/srv"))).unwrap();
        inventory.push_str(&format!(
            "    {name}:\n      root: {}\n",
            d.join(&format!("hosts/{name}")).display()
        ));
    }
    d.write("inventory.yml", inventory);
    d.write(
        "plan.toml.j2",
        "[migration]\ntitle = \"{{ inventory_hostname }}\"\n\
         initiated_by = [\"IT security officer\"]\nimplemented_by = \"Administrator\"\n\
         window = { start = \"2020-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }\n\
         max_downtime = \"15m\"\n\n\
         [hosts.old]\nlocal = true\nroot = \"{{ root }}/old\"\n\n\
         [hosts.new]\nlocal = true\nroot = \"{{ root }}/new\"\n\n\
         [environments.test]\nold = { local = true, root = \"{{ root }}/test-old\" }\n\
         new = { local = true, root = \"{{ root }}/test-new\" }\n\n\
         [[data]]\nid = \"files\"\nfrom = \"old:/srv/data\"\nto = \"new:/srv/data\"\n\n\
         [[steps]]\nid = \"stop-old\"\ndo = \"run\"\nhost = \"old\"\n\
         command = \"echo stopped > srv/app.state\"\n\n\
         [[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"files\"\n\n\
         [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n",
    );
    d.write(
        "site-50.yml",
        include_str!("ansible/site.yml")
            .replace("MAX_FAIL", "50")
            .replace("REHOST", &bin().display().to_string()),
    );
    let (code, out) = fleet.playbook(50, &[]);
    assert_eq!(code, 2, "{out}");
    let gate = task_lines(&out, "Stop the wave unless the pre-flight passed").join("\n");
    for host in ["db1", "db2"] {
        let fatal = gate
            .lines()
            .find(|l| l.starts_with(&format!("fatal: [{host}]: FAILED!")))
            .unwrap_or_else(|| panic!("{host} not failed by the wave's pre-flight:\n{out}"));
        assert!(
            fatal.contains("the pre-flight failed on db2; no step runs on any host"),
            "{fatal}"
        );
        assert!(fatal.contains("/srv/data"), "{fatal}");
    }
    assert!(task_lines(&out, "Run the plan").is_empty(), "{out}");
    for host in ["db1", "db2"] {
        assert_eq!(
            fleet.read(&format!("hosts/{host}/old/srv/app.state")),
            "running\n"
        );
        assert!(
            !d.join(&format!("migrations/{host}/state/production"))
                .exists()
        );
    }
}
