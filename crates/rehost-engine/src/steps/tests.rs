//! The engine's registry and the plan's agree: every kind a plan can hold has an executor, and
//! no executor waits for a kind the plan cannot hold.

use super::*;
use rehost_host::TrustedFrom;

#[test]
fn every_plan_kind_has_one_executor_and_every_executor_a_plan_kind() {
    let plan: Vec<&str> = rehost_plan::KINDS.iter().map(|k| k.name).collect();
    let engine = kinds();
    for k in &plan {
        assert_eq!(
            engine.iter().filter(|e| *e == k).count(),
            1,
            "step kind `{k}` is in rehost_plan::KINDS but has {} executor(s) in steps/mod.rs",
            engine.iter().filter(|e| *e == k).count()
        );
    }
    for e in &engine {
        assert!(
            plan.contains(e),
            "steps/mod.rs has an executor for `{e}`, which rehost_plan::KINDS does not have"
        );
    }
}

/// A kind the plan says undoes itself (its concept shows how) has the rollback that does it,
/// and no executor undoes steps the plan does not say it undoes.
#[test]
fn a_kind_has_a_builtin_rollback_exactly_where_the_plan_describes_one() {
    for spec in rehost_plan::KINDS {
        let exec = EXECUTORS
            .iter()
            .find(|e| e.kind == spec.name)
            .expect("every kind has an executor");
        assert_eq!(
            spec.builtin_rollback.is_some(),
            exec.rollback.is_some(),
            "`{}`: the plan's builtin_rollback and the executor's rollback disagree",
            spec.name
        );
    }
}

/// Issue 18: a verification said "trusted unchanged since the last verification" where no
/// verification had run: the built-in transfer's walk had read the digests it trusted. It
/// names the walk the journal records last for the data set.
#[test]
fn a_verification_names_the_walk_its_trusted_digests_rest_on() {
    use rehost_journal::StepResult;
    use rehost_journal::journal::Record;
    use rehost_journal::step_data::{StepData, SyncData, VerifyTreeData};
    let done = |id: &str, attempt: u32, data: StepData| Record::StepFinished {
        at: "2026-12-05T21:00:00Z".into(),
        id: id.into(),
        attempt,
        result: StepResult::Done,
        elapsed_ms: 1,
        detail: None,
        confirmed_by: None,
        exit_code: None,
        output: None,
        result_data: Some(data),
    };
    let sync = |method: &str| {
        StepData::Sync(SyncData {
            v: 1,
            data_set: "web".into(),
            method: method.into(),
            report: None,
            how: None,
        })
    };
    let verify = StepData::VerifyTree(Box::new(VerifyTreeData {
        v: 1,
        data_set: "web".into(),
        source: "old:/srv/web".into(),
        destination: "new:/srv/web".into(),
        exit_code: 0,
        totals: rehost_tree::Totals::default(),
        ignored: Vec::new(),
        excludes: Vec::new(),
        warnings: Vec::new(),
        findings: Vec::new(),
        findings_total: 0,
        manifests: Vec::new(),
        privileged: Vec::new(),
        privileged_total: 0,
        trusted_from: None,
        not_verified: Vec::new(),
    }));
    let basis = verify_tree::trust_basis;
    const HOSTS: TrustedFrom = TrustedFrom::HostCaches;
    const PAIR: TrustedFrom = TrustedFrom::PairCache;
    // Over ssh, the host's cache holds the digests of the built-in transfer's walk.
    let records = [done("final", 2, sync("builtin"))];
    assert_eq!(
        basis(&records, "web", HOSTS),
        "the walk of the built-in transfer in sync `final` (attempt 2), whose digests are not a verification's"
    );
    // Both ends local: the state directory's cache, which only a verification writes.
    assert!(basis(&records, "web", PAIR).starts_with("an earlier verification"));
    // rsync walks nothing of rehost's; another data set's steps are not this one's.
    assert!(
        basis(&[done("final", 1, sync("rsync"))], "web", HOSTS)
            .starts_with("each host's last walk")
    );
    assert!(basis(&records, "db", HOSTS).starts_with("each host's last walk"));
    // The last of them counts.
    let records = [
        done("final", 1, sync("builtin")),
        done("verify", 1, verify.clone()),
    ];
    assert_eq!(
        basis(&records, "web", HOSTS),
        "the verification `verify` (attempt 1)"
    );
    let records = [done("verify", 1, verify), done("final", 2, sync("builtin"))];
    assert!(basis(&records, "web", HOSTS).contains("sync `final` (attempt 2)"));
}
