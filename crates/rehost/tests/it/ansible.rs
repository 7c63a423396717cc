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

struct Fleet {
    d: TestDir,
    servers: Vec<Sshd>,
}

impl Fleet {
    /// Three servers, each with its app data on the old side and an empty new side; the
    /// collection built and installed; the inventory, plan template and playbooks written.
    fn new() -> Fleet {
        for tool in ["ansible-playbook", "ansible-galaxy"] {
            rehost_test::require_tool(tool);
        }
        let servers: Vec<Sshd> = HOSTS.iter().map(|_| Sshd::start()).collect();
        let d = TestDir::new();
        let fleet = Fleet { d, servers };
        fleet.install_collection();
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
    fn snapshot(&self) -> BTreeMap<String, (u32, u32, u64, i64, i64, Vec<u8>)> {
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

fn walk(base: &Path, dir: &Path, all: &mut BTreeMap<String, (u32, u32, u64, i64, i64, Vec<u8>)>) {
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
}
