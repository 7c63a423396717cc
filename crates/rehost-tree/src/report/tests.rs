use super::*;

fn report(classes: &[Class]) -> Report {
    let mut r = Report::default();
    for c in classes {
        r.findings.push(Finding {
            class: *c,
            path: b"p\x1b".to_vec().into(),
            a: "1".into(),
            b: "2".into(),
        });
        *r.totals.by_class.entry(*c).or_default() += 1;
    }
    r
}

#[test]
fn exit_codes_follow_diff() {
    assert_eq!(report(&[]).exit_code(), 0);
    assert_eq!(report(&[Class::Mode]).exit_code(), 1);
    assert_eq!(report(&[Class::Mode, Class::Unstable]).exit_code(), 2);
    assert_eq!(report(&[Class::Unverified]).exit_code(), 2);
}

#[test]
fn human_output_escapes_and_summarises() {
    let mut out = Vec::new();
    report(&[Class::Mode]).render_human(&mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("trees are different\n"), "{s}");
    assert!(s.contains("mode        p\\x1b  (A: 1, B: 2)"), "{s}");
    assert!(!s.contains('\x1b'));
}

#[test]
fn json_carries_totals_and_exit_code() {
    let mut out = Vec::new();
    report(&[Class::Acl]).render_json(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["totals"]["by_class"]["acl"], 1);
    assert_eq!(v["findings"][0]["class"], "acl");
    assert_eq!(v["findings"][0]["path"], "p\u{1b}");
}
