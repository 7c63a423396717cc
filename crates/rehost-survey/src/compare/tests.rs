use super::*;
use crate::example;

#[test]
fn the_same_server_lacks_nothing() {
    let a = example::inventory("old");
    let c = compare(&a, &example::inventory("new"), &Expect::default());
    assert!(c.is_complete(), "{:#?}", c.missing);
    assert_eq!(c.compared["packages"], 4);
    assert_eq!(c.compared["cron jobs"], 1);
    assert_eq!(c.compared["ports"], 5);
}

/// Each kind of shortfall, each reported once with both values; what the new host has beyond
/// the old one is not a finding.
#[test]
fn what_the_new_host_lacks_is_named_with_both_values() {
    let old = example::inventory("old");
    let mut new = example::inventory("new");
    new.cron.clear();
    new.packages.retain(|p| p.name != "certbot");
    new.packages[0].version = "1.22.1-8".into(); // nginx older
    new.packages[1].version = "15.6-0+deb12u1".into(); // postgresql newer: fine
    new.units[0].enabled = false;
    new.sockets.retain(|s| s.listen.port != 443);
    new.accounts[1].uid = 106;
    new.groups[0].members.clear();
    new.timers[0].schedule = vec!["OnCalendar=daily".into()];
    new.mounts.clear();
    new.sysctl[0].value = "1".into();
    new.firewall.as_mut().unwrap().rules.pop();
    new.packages.push(Package {
        name: "extra".into(),
        version: "1".into(),
        arch: "amd64".into(),
    });
    let c = compare(&old, &new, &Expect::default());
    let got: Vec<(String, Shortfall, String, Option<String>)> = c
        .missing
        .iter()
        .map(|f| (f.key.clone(), f.shortfall, f.old.clone(), f.new.clone()))
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        got,
        vec![
            (
                s("account postgres"),
                Shortfall::Differs,
                s("uid 105 gid 111"),
                Some(s("uid 106 gid 111"))
            ),
            (
                s("cron root 15 2 * * * /usr/local/bin/backup"),
                Shortfall::Missing,
                s("/etc/cron.d/backup:3"),
                None
            ),
            (
                s("firewall tcp dport { 22, 80, 443 } accept"),
                Shortfall::Missing,
                s("nft list ruleset"),
                None
            ),
            (
                s("group ssl-cert member postgres"),
                Shortfall::Missing,
                s("member of ssl-cert"),
                None
            ),
            (
                s("mount /srv"),
                Shortfall::Missing,
                s("ext4 UUID=0a1b"),
                None
            ),
            (s("package certbot"), Shortfall::Missing, s("2.1.0-4"), None),
            (
                s("package nginx"),
                Shortfall::Older,
                s("1.22.1-9"),
                Some(s("1.22.1-8"))
            ),
            (
                s("port tcp 0.0.0.0:443"),
                Shortfall::Missing,
                s("nginx.service"),
                None
            ),
            (
                s("sysctl net.ipv4.ip_forward"),
                Shortfall::Differs,
                s("0 (/etc/sysctl.d/10-net.conf:1)"),
                Some(s("1 (/etc/sysctl.d/10-net.conf:1)"))
            ),
            (
                s("timer certbot.timer"),
                Shortfall::Differs,
                s("OnCalendar=*-*-* 00,12:00:00 (/lib/systemd/system/certbot.timer)"),
                Some(s("OnCalendar=daily (/lib/systemd/system/certbot.timer)"))
            ),
            (
                s("unit nginx.service"),
                Shortfall::NotEnabled,
                s("enabled"),
                Some(s("not enabled"))
            ),
        ]
    );
    let text = render_human(&c, "old", "new");
    assert!(text.contains("  missing     cron root 15 2 * * * /usr/local/bin/backup  (old: /etc/cron.d/backup:3)\n"), "{text}");
    assert!(text.contains("old → new: 11 missing, 0 allowed;"), "{text}");
}

/// Expected differences are declared as for verify-config: rewrites first, then allow globs,
/// which list the difference apart rather than drop it.
#[test]
fn expected_differences_are_rewritten_or_allowed_and_still_listed() {
    let mut old = example::inventory("old");
    old.sockets[0].listen.address = "192.0.2.10".into();
    old.cron[0].command = "/usr/local/bin/backup --to web01".into();
    let mut new = example::inventory("new");
    new.sockets[0].listen.address = "203.0.113.20".into();
    new.cron[0].command = "/usr/local/bin/backup --to web02".into();
    new.sysctl[0].value = "1".into();
    let expect = Expect {
        allow: vec!["sysctl net.ipv4.*".into()],
        rewrite: vec![
            Rewrite {
                from: "192.0.2.10".into(),
                to: "203.0.113.20".into(),
            },
            Rewrite {
                from: "web01".into(),
                to: "web02".into(),
            },
        ],
    };
    let c = compare(&old, &new, &expect);
    assert!(c.is_complete(), "{:#?}", c.missing);
    assert_eq!(c.allowed.len(), 1);
    assert_eq!(
        c.allowed[0].allowed_by.as_deref(),
        Some("sysctl net.ipv4.*")
    );
    let text = render_human(&c, "old", "new");
    assert!(text.contains("allowed by sysctl net.ipv4.*"), "{text}");
    // Without the rewrite, the port on the old address is missing.
    let c = compare(&old, &new, &Expect::default());
    assert!(
        c.missing.iter().any(|f| f.key == "port tcp 192.0.2.10:443"),
        "{:#?}",
        c.missing
    );
}

/// A credential in a cron job is compared but never shown; hostile text is escaped.
#[test]
fn credentials_are_not_shown_and_text_is_escaped() {
    let mut old = example::inventory("old");
    old.cron[0].command = "mysqldump -u root -pHunter3x app > /backup/\u{1b}[2Japp.sql".into();
    let new = example::inventory("new");
    let c = compare(&old, &new, &Expect::default());
    let text = render_human(&c, "old", "new");
    let json = serde_json::to_string(&c).unwrap();
    assert!(
        !text.contains("Hunter3x") && !json.contains("Hunter3x"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn versions_order_as_dpkg_orders_them() {
    use std::cmp::Ordering::*;
    for (a, b, o) in [
        ("1.22.1-9", "1.22.1-8", Greater),
        ("1.22.1-9", "1.22.1-10", Less),
        ("1:9.2p1-2", "9.9", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0", "1.0a", Less),
        ("2.10", "2.9", Greater),
        ("15.5-0+deb12u1", "15.5-0+deb12u2", Less),
        ("1.0", "1.0", Equal),
        ("1.0-1", "1.0.0-1", Less),
    ] {
        assert_eq!(version_cmp(a, b), o, "{a} vs {b}");
    }
}
