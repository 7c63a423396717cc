//! `sync` and `verify-tree` through fake hosts: where rsync runs and how it names each end, for
//! hosts that are this machine and hosts reached over ssh, the built-in transfer and the
//! verification through the hosts' tree requests. The engine asks each host what it needs
//! (`Host::remote_end`, `rsync_version`, `make_dir`, `manifest`); none of it branches on the
//! host being rehost's local one, so the fakes take the paths real hosts take.

use super::fake_host::Script;
use super::*;
use rehost_journal::StepResult;
use rehost_journal::step_data::StepData;
use rehost_tree::EXIT_DIFFERENT;

const RSYNC_ARGS: &str = "rsync -aHAX --numeric-ids --sparse --delete --modify-window=-1 --info=progress2 --no-inc-recursive --protect-args";

/// A plan with data set `web` (old:/srv/web → new:/srv/web) and these steps.
fn tree_plan(steps: &str) -> String {
    plan(&format!(
        "\n[[data]]\nid = \"web\"\nfrom = \"old:/srv/web\"\nto = \"new:/srv/web\"\n{steps}"
    ))
}

fn sync_step(method: &str) -> String {
    format!("\n[[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"web\"\nmethod = \"{method}\"\n")
}

const VERIFY: &str = "\n[[steps]]\nid = \"check\"\ndo = \"verify-tree\"\ndata = \"web\"\n";

/// rsync 3.2.7 on every host (which knows `--mkpath`).
fn with_rsync(s: Scenario) -> Scenario {
    s.script(
        "rsync --version",
        Script::Exit(0, vec!["rsync  version 3.2.7  protocol version 31".into()]),
    )
}

fn ssh(destination: &str) -> rehost_host::SshSpec {
    rehost_host::SshSpec {
        destination: destination.into(),
        port: Some(2222),
        identity_file: Some("/home/ops/.ssh/id_migrate".into()),
        ..Default::default()
    }
}

/// The source tree on old's disk: two files.
fn source_tree(s: &Scenario) {
    let web = s.disk("old").join("srv/web");
    std::fs::create_dir_all(web.join("img")).unwrap();
    std::fs::write(web.join("index.html"), "<h1>hello</h1>\n").unwrap();
    std::fs::write(web.join("img/logo.svg"), "<svg/>\n").unwrap();
}

/// The step's result, detail and typed data, from the journal.
fn finished(s: &Scenario, step: &str) -> (StepResult, String, Option<StepData>) {
    s.records("production")
        .into_iter()
        .rev()
        .find_map(|r| match r {
            Record::StepFinished {
                id,
                result,
                detail,
                result_data,
                ..
            } if id == step => Some((result, detail.unwrap_or_default(), result_data)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("step `{step}` finished"))
}

/// The calls in order, the two walks of a pair (which run at once) source first.
fn in_order(calls: &[String]) -> Vec<String> {
    let mut out = calls.to_vec();
    for i in 1..out.len() {
        if out[i - 1].contains(": manifest ")
            && out[i].contains(": manifest ")
            && out[i].starts_with("old:")
        {
            out.swap(i - 1, i);
        }
    }
    out
}

/// The run failed at step `step`.
fn failed_at(ran: &Ran, step: &str) {
    assert!(
        matches!(&ran.result, Err(EngineError::StepFailed { step: s, .. }) if s == step),
        "{:?}",
        ran.result
    );
}

fn how(data: &Option<StepData>) -> (String, Option<String>) {
    match data {
        Some(StepData::Sync(d)) => (d.method.clone(), d.how.clone()),
        other => panic!("a sync's data, not {other:?}"),
    }
}

/// Two ends on this machine: rsync runs on the source host, names both paths itself (no remote
/// shell), and the destination's directory is made through its host first.
#[test]
fn rsync_between_two_ends_on_this_machine_names_both_paths_itself() {
    let s = with_rsync(Scenario::new(&tree_plan(&sync_step("auto")))).with_disks();
    source_tree(&s);
    let ran = s.run(s.options());
    assert!(ran.result.is_ok(), "{:?}", ran.result);
    assert_eq!(
        ran.calls,
        [
            "old: rsync --version".to_owned(),
            "new: rsync --version".into(),
            "new: mkdir -p -- /srv/web".into(),
            format!("old: {RSYNC_ARGS} /srv/web/ /srv/web"),
        ]
    );
    let (result, detail, data) = finished(&s, "copy");
    assert_eq!(result, StepResult::Done);
    assert_eq!(
        detail,
        "old:/srv/web copied to new:/srv/web with rsync 3.2.7"
    );
    assert_eq!(how(&data), ("rsync".into(), Some("rsync 3.2.7".into())));
}

/// To an ssh host: rsync runs here and reaches the destination through the host's remote shell,
/// with this machine's ssh files; `--mkpath` since both rsyncs know it.
#[test]
fn rsync_to_an_ssh_host_runs_here_and_reaches_it_through_its_remote_shell() {
    let s = with_rsync(Scenario::new(&tree_plan(&sync_step("auto"))))
        .over_ssh("new", ssh("ops@new.example"))
        .with_disks();
    source_tree(&s);
    let ran = s.run(s.options());
    assert!(ran.result.is_ok(), "{:?}", ran.result);
    assert_eq!(
        ran.calls,
        [
            "old: rsync --version".to_owned(),
            "new: rsync --version".into(),
            format!(
                "old: {RSYNC_ARGS} -e ssh -o BatchMode=yes -p 2222 -i /home/ops/.ssh/id_migrate --mkpath /srv/web/ ops@new.example:/srv/web"
            ),
        ]
    );
    assert_eq!(
        how(&finished(&s, "copy").2).1.as_deref(),
        Some("rsync on old")
    );
}

/// From an ssh host: rsync runs on the destination, which is this machine, and reaches the
/// source through its remote shell; an rsync without `--mkpath` changes nothing here, the
/// destination's directory being made through its host.
#[test]
fn rsync_from_an_ssh_host_runs_on_the_destination() {
    let s = Scenario::new(&tree_plan(&sync_step("rsync")))
        .script(
            "rsync --version",
            Script::Exit(0, vec!["rsync  version 3.1.3  protocol version 31".into()]),
        )
        .over_ssh("old", ssh("ops@old.example"))
        .with_disks();
    source_tree(&s);
    let ran = s.run(s.options());
    assert!(ran.result.is_ok(), "{:?}", ran.result);
    // The pre-flight asks both hosts for rsync (method = "rsync"), then the step asks the host
    // it runs rsync on.
    assert_eq!(
        ran.calls,
        [
            "new: rsync --version".to_owned(),
            "old: rsync --version".into(),
            "new: rsync --version".into(),
            "new: mkdir -p -- /srv/web".into(),
            format!(
                "new: {RSYNC_ARGS} -e ssh -o BatchMode=yes -p 2222 -i /home/ops/.ssh/id_migrate ops@old.example:/srv/web/ /srv/web"
            ),
        ]
    );
    assert_eq!(
        how(&finished(&s, "copy").2).1.as_deref(),
        Some("rsync on new")
    );
}

/// Between two ssh hosts: rsync runs on the source host, which reaches the destination with its
/// own ssh setup (this machine's identity file is not passed); when that ssh fails, the step
/// says what the source host lacks and offers the built-in transfer.
#[test]
fn rsync_between_two_ssh_hosts_runs_on_the_source_with_its_own_ssh_setup() {
    let s = Scenario::new(&tree_plan(&sync_step("auto")))
        .script(
            "rsync --version",
            Script::Exit(0, vec!["rsync  version 3.1.3  protocol version 31".into()]),
        )
        .script(
            "rsync -aHAX",
            Script::Exit(
                255,
                vec!["ops@new.example: Permission denied (publickey).".into()],
            ),
        )
        .over_ssh("old", ssh("ops@old.example"))
        .over_ssh("new", ssh("ops@new.example"))
        .with_disks();
    source_tree(&s);
    let ran = s.run(s.options());
    failed_at(&ran, "copy");
    assert_eq!(
        ran.calls,
        [
            "old: rsync --version".to_owned(),
            "new: rsync --version".into(),
            // rsync 3.1.3 has no --mkpath: the destination is made through its host.
            "new: mkdir -p -- /srv/web".into(),
            format!(
                "old: {RSYNC_ARGS} -e ssh -o BatchMode=yes -p 2222 /srv/web/ ops@new.example:/srv/web"
            ),
        ]
    );
    let (result, detail, _) = finished(&s, "copy");
    assert_eq!(result, StepResult::Failed);
    assert!(
        detail.starts_with("rsync runs on host old and copies to host new over ssh from there"),
        "{detail}"
    );
    assert!(
        detail.contains("must resolve `ops@new.example` port 2222"),
        "{detail}"
    );
    assert!(
        detail.contains("write method = \"builtin\" in step `copy`"),
        "{detail}"
    );
}

/// No rsync on one end: the built-in transfer, through the hosts' tree requests (both walked,
/// the content read from the source and applied on the destination), copies the tree; a
/// verification through the same requests then finds it equal.
#[test]
fn without_rsync_the_builtin_transfer_copies_through_the_hosts_and_the_copy_verifies() {
    let s = Scenario::new(&tree_plan(&format!("{}{VERIFY}", sync_step("auto"))))
        .script("rsync --version", Script::Exit(127, Vec::new()))
        .with_disks();
    source_tree(&s);
    let ran = s.run(s.options());
    assert!(ran.result.is_ok(), "{:?}", ran.result);
    assert!(ran.events.iter().any(|e| matches!(
        e,
        Event::Progress { id, message } if id == "copy"
            && message == "host old has no rsync: built-in transfer old:/srv/web → new:/srv/web"
    )));
    assert_eq!(
        in_order(&ran.calls),
        [
            "old: rsync --version",
            "new: applying 0 transfer operation(s) to /srv/web",
            "old: manifest /srv/web (incremental)",
            "new: manifest /srv/web (incremental)",
            "old: reading 2 file piece(s) under /srv/web",
            "new: applying 5 transfer operation(s) to /srv/web",
            "old: manifest /srv/web (incremental)",
            "new: manifest /srv/web (incremental)",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(s.disk("new").join("srv/web/img/logo.svg")).unwrap(),
        "<svg/>\n"
    );
    let (result, detail, data) = finished(&s, "copy");
    assert_eq!(result, StepResult::Done, "{detail}");
    assert_eq!(how(&data), ("builtin".into(), None));
    let (result, detail, _) = finished(&s, "check");
    assert_eq!(result, StepResult::Done, "{detail}");
    assert!(
        detail.starts_with("new:/srv/web verified complete and correct: 4 entries equal"),
        "{detail}"
    );
}

/// A verification walks each side through its host and fails on a difference, keeping both
/// manifests as evidence and saying in the journal which cache its trusted digests came from.
#[test]
fn verify_tree_walks_each_side_on_its_host_and_fails_on_a_difference() {
    let s = Scenario::new(&tree_plan(VERIFY))
        .over_ssh("new", ssh("ops@new.example"))
        .with_disks();
    source_tree(&s);
    let copy = s.disk("new").join("srv/web");
    std::fs::create_dir_all(copy.join("img")).unwrap();
    std::fs::write(copy.join("index.html"), "<h1>hello</h1>\n").unwrap();
    let ran = s.run(s.options());
    failed_at(&ran, "check");
    assert_eq!(
        in_order(&ran.calls),
        [
            "old: manifest /srv/web (incremental)",
            "new: manifest /srv/web (incremental)",
        ]
    );
    let (result, detail, data) = finished(&s, "check");
    assert_eq!(result, StepResult::Failed);
    // (The directories' mtimes may differ too, by when the test made them.)
    assert!(
        detail.starts_with("new:/srv/web differs from old:/srv/web: ")
            && detail.contains("1 missing"),
        "{detail}"
    );
    let Some(StepData::VerifyTree(v)) = data else {
        panic!("a verification's data: {data:?}")
    };
    assert_eq!(v.exit_code, EXIT_DIFFERENT);
    let missing: Vec<&str> = v
        .findings
        .iter()
        .filter(|f| f.class == "missing")
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(missing, ["img/logo.svg"], "{:?}", v.findings);
    assert_eq!(v.manifests.len(), 2);
    for m in &v.manifests {
        let kept = s.dir.path().join("state/production").join(&m.file);
        assert_eq!(
            blake3::hash(&std::fs::read(&kept).unwrap())
                .to_hex()
                .as_str(),
            m.blake3
        );
    }
}

/// A side whose tree is missing fails the step naming that side.
#[test]
fn verify_tree_names_the_side_that_could_not_be_walked() {
    let s = Scenario::new(&tree_plan(VERIFY)).with_disks();
    source_tree(&s);
    std::fs::create_dir_all(s.disk("new").join("srv")).unwrap();
    std::fs::write(s.disk("new").join("srv/web"), "a file, not a tree").unwrap();
    // The pre-flight does not probe a verification's destination.
    let ran = s.run(s.options());
    failed_at(&ran, "check");
    let (result, detail, _) = finished(&s, "check");
    assert_eq!(result, StepResult::Failed);
    assert!(
        detail.starts_with("failed to walk new:/srv/web: "),
        "{detail}"
    );
}
