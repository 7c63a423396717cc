//! Data tests of the M 2.319 rules that catch data loss (issue 10, item 6): each fires on the
//! plan that loses data, not on the plan that does not, and points at the offending key.

use crate::check;

const HEAD: &str = r#"
[migration]
title = "t"
window = { start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }
max_downtime = "15m"
[hosts.old]
local = true
[hosts.new]
local = true
root = "/n"
[environments.test]
old = { local = true, root = "/t/o" }
new = { local = true, root = "/t/n" }
[[data]]
id = "www"
from = "old:/srv/www"
to = "new:/srv/www"
[[services]]
id = "web"
host = "old"
"#;

const STOP: &str = "[[steps]]\nid = \"stop\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\nstops = [\"web\"]\n";
const START: &str = "[[steps]]\nid = \"start\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\nstarts = [\"web\"]\n";
const BULK: &str = "[[steps]]\nid = \"bulk\"\ndo = \"sync\"\ndata = \"www\"\nphase = \"bulk\"\n";
const FINAL: &str = "[[steps]]\nid = \"final\"\ndo = \"sync\"\ndata = \"www\"\n";
const VERIFY: &str = "[[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"www\"\n";

/// `text` with `from` replaced by `to`; `from` must be there, or the edit would silently test
/// the unedited plan.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in the plan:\n{text}");
    text.replace(from, to)
}

/// Each finding of `rule` as the plan text it points at.
fn fired(extra: &str, steps: &[&str], rule: &str) -> Vec<String> {
    let text = format!("{HEAD}{extra}{}", steps.concat());
    let c = check(&text);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c.findings
        .iter()
        .filter(|f| f.code == rule)
        .map(|f| text[f.span.clone().expect("span")].to_owned())
        .collect()
}

#[test]
fn copy_before_stop_fires_when_the_final_copy_or_verification_precedes_the_stop() {
    // The right order: bulk, stop, final, verify, start.
    assert!(fired("", &[BULK, STOP, FINAL, VERIFY, START], "copy-before-stop").is_empty());
    // The final sync before the stop; and its verification.
    assert_eq!(
        fired("", &[FINAL, VERIFY, STOP, START], "copy-before-stop"),
        ["\"www\"", "\"www\""]
    );
    // A phase = "final" sync placed before the stop, with another copy after it.
    let early_final =
        "[[steps]]\nid = \"early\"\ndo = \"sync\"\ndata = \"www\"\nphase = \"final\"\n";
    assert_eq!(
        fired(
            "",
            &[early_final, STOP, FINAL, VERIFY, START],
            "copy-before-stop"
        )
        .len(),
        1
    );
    // Never stopped at all: fires, unless the owners accept a loss.
    assert_eq!(fired("", &[BULK, VERIFY], "copy-before-stop").len(), 1);
    let text = replaced(
        &format!("{HEAD}{BULK}{VERIFY}"),
        "max_downtime = \"15m\"",
        "max_downtime = \"15m\"\nmax_data_loss = \"1h\"",
    );
    assert!(
        check(&text)
            .findings
            .iter()
            .all(|f| f.code != "copy-before-stop")
    );
    // No service writes on the source host: nothing to stop.
    let text = replaced(
        &format!("{HEAD}{BULK}{VERIFY}"),
        "[[services]]\nid = \"web\"\nhost = \"old\"\n",
        "",
    );
    assert!(
        check(&text)
            .findings
            .iter()
            .all(|f| f.code != "copy-before-stop")
    );
}

const KEY: &str = "[[keys]]\nid = \"tls\"\nhost = \"old\"\nkind = \"tls\"\npaths = [\"/etc/ssl/private/www.key\"]\n";
const ETC: &str = "[[data]]\nid = \"ssl\"\nfrom = \"old:/etc/ssl\"\nto = \"new:/etc/ssl\"\n";

#[test]
fn key_rules_fire_on_a_key_never_carried_or_verified_by_what_does_not_hold_it() {
    let plan = [BULK, STOP, FINAL, VERIFY, START];
    // Never carried.
    assert_eq!(fired(KEY, &plan, "key-not-carried"), ["[[keys]]"]);
    // Carried by a run step that says so (transfers naming a key is valid), or by a sync of
    // a data set that holds its paths.
    let carry = "[[steps]]\nid = \"carry\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\ntransfers = [\"tls\"]\nverifies = [\"tls\"]\n";
    assert!(fired(KEY, &[carry], "key-not-carried").is_empty());
    let ssl = "[[steps]]\nid = \"ssl\"\ndo = \"sync\"\ndata = \"ssl\"\n";
    assert!(fired(&format!("{KEY}{ETC}"), &[ssl], "key-not-carried").is_empty());
    // A sync that claims the key without holding it.
    let claim = "[[steps]]\nid = \"claim\"\ndo = \"sync\"\ndata = \"www\"\ntransfers = [\"tls\"]\n";
    assert_eq!(
        fired(KEY, &[claim], "key-not-carried"),
        ["\"tls\"", "[[keys]]"]
    );

    // "Verified" by a verification of the web tree, which does not hold the key.
    let wrong =
        "[[steps]]\nid = \"v\"\ndo = \"verify-tree\"\ndata = \"www\"\nverifies = [\"tls\"]\n";
    assert_eq!(
        fired(KEY, &[wrong], "key-verification-misses-paths"),
        ["\"tls\""]
    );
    let right =
        "[[steps]]\nid = \"v\"\ndo = \"verify-tree\"\ndata = \"ssl\"\nverifies = [\"tls\"]\n";
    assert!(
        fired(
            &format!("{KEY}{ETC}"),
            &[right],
            "key-verification-misses-paths"
        )
        .is_empty()
    );
    assert!(fired(KEY, &[carry], "key-verification-misses-paths").is_empty());
}

#[test]
fn service_never_started_fires_on_a_stop_without_a_later_start() {
    assert_eq!(fired("", &[STOP], "service-never-started"), ["\"web\""]);
    assert!(fired("", &[STOP, START], "service-never-started").is_empty());
    // A start before the stop does not count.
    let start_early = replaced(START, "\"start\"", "\"early\"");
    assert_eq!(
        fired("", &[&start_early, STOP], "service-never-started").len(),
        1
    );
}

#[test]
fn transfers_may_name_keys_and_databases_and_errors_point_at_the_id() {
    let db = "[[databases]]\nid = \"pg\"\nengine = \"postgresql\"\nfrom = \"old\"\nto = \"new\"\n";
    let dump = "[[steps]]\nid = \"dump\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\ntransfers = [\"pg\", \"tls\"]\nverifies = [\"pg\"]\n";
    let text = format!("{HEAD}{db}{KEY}{dump}");
    let c = check(&text);
    assert!(c.errors.is_empty(), "{:?}", c.errors);

    let typo = "[[steps]]\nid = \"typo\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\ntransfers = [\"pgg\"]\n";
    let text = format!("{HEAD}{db}{typo}");
    let c = check(&text);
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert_eq!(&text[c.errors[0].span.clone().unwrap()], "\"pgg\"");
    assert!(
        c.errors[0]
            .message
            .contains("names data set, database or key `pgg`")
    );

    let bad = "[[steps]]\nid = \"v\"\ndo = \"verify-tree\"\ndata = \"wwx\"\n";
    let text = format!("{HEAD}{bad}");
    let c = check(&text);
    assert_eq!(&text[c.errors[0].span.clone().unwrap()], "\"wwx\"");
}

/// Issue 18: a TLS key under a data set's root that the data set's `exclude` leaves out was
/// counted as carried (and verified) by the sync of that data set, and the lint said nothing.
#[test]
fn key_not_carried_fires_on_a_key_the_data_set_excludes() {
    let etc_excluding = "[[data]]\nid = \"ssl\"\nfrom = \"old:/etc/ssl\"\nto = \"new:/etc/ssl\"\nexclude = [\"*.tmp\", \"private/\"]\n";
    let ssl = "[[steps]]\nid = \"ssl\"\ndo = \"sync\"\ndata = \"ssl\"\n";
    let text = format!("{HEAD}{KEY}{etc_excluding}{ssl}");
    let c = check(&text);
    let f: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code == "key-not-carried")
        .collect();
    assert_eq!(f.len(), 1, "{f:?}");
    // Points at the exclude that leaves the key out, and names it, the path and the sync.
    assert_eq!(&text[f[0].span.clone().unwrap()], "\"private/\"");
    assert!(
        f[0].message.contains("/etc/ssl/private/www.key")
            && f[0].message.contains("exclude `private/`")
            && f[0].message.contains("step `ssl`"),
        "{}",
        f[0].message
    );
    let line = crate::SourceMap::new(&text)
        .line_col(f[0].span.clone().unwrap().start)
        .0;
    assert_eq!(
        crate::SourceMap::new(&text).line_text(line),
        "exclude = [\"*.tmp\", \"private/\"]"
    );
    // Without the exclude, the same sync carries it.
    let etc = replaced(etc_excluding, ", \"private/\"", "");
    assert!(fired(&format!("{KEY}{etc}"), &[ssl], "key-not-carried").is_empty());
    // An exclude of the file's name, of a parent with `***`, anchored: the same.
    for x in ["www.key", "/private/***", "*.key", "private"] {
        let etc = replaced(etc_excluding, "private/\"]", &format!("{x}\"]"));
        assert_eq!(
            fired(&format!("{KEY}{etc}"), &[ssl], "key-not-carried").len(),
            1,
            "{x}"
        );
    }
    // An anchored pattern elsewhere does not leave it out.
    let etc = replaced(etc_excluding, "private/\"]", "/certs\"]");
    assert!(fired(&format!("{KEY}{etc}"), &[ssl], "key-not-carried").is_empty());

    // A sync that says it transfers the key, and a verification that says it verifies it:
    // each pointed at, with the exclude named.
    let claim = "[[steps]]\nid = \"ssl\"\ndo = \"sync\"\ndata = \"ssl\"\ntransfers = [\"tls\"]\n[[steps]]\nid = \"v\"\ndo = \"verify-tree\"\ndata = \"ssl\"\nverifies = [\"tls\"]\n";
    let found = fired(
        &format!("{KEY}{etc_excluding}"),
        &[claim],
        "key-not-carried",
    );
    assert_eq!(found, ["\"tls\"", "\"tls\"", "[[keys]]"]);
    // `key-verification-misses-paths` leaves the excluded case to this rule.
    assert!(
        fired(
            &format!("{KEY}{etc_excluding}"),
            &[claim],
            "key-verification-misses-paths"
        )
        .is_empty()
    );
    // Carried by a step of its own: the exclude is deliberate, no finding.
    let own = "[[steps]]\nid = \"carry\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\ntransfers = [\"tls\"]\n";
    assert!(
        fired(
            &format!("{KEY}{etc_excluding}"),
            &[ssl, own],
            "key-not-carried"
        )
        .is_empty()
    );
}

const PG: &str = "[[databases]]\nid = \"pg\"\nengine = \"postgresql\"\nfrom = \"old\"\nto = \"new\"\ndatabase = \"app\"\n";
const DUMP: &str = "[[steps]]\nid = \"dump\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"pg_dump -Fc app > /srv/dump/app.dump\"\n";
const VERIFY_DB: &str = "[[steps]]\nid = \"verify-pg\"\ndo = \"verify-db\"\ndatabase = \"pg\"\n";

#[test]
fn database_unverified_fires_on_a_database_no_verify_db_step_checks_after_its_copy() {
    // Never verified: at the declaration, naming the database and the fix.
    let text = format!("{HEAD}{PG}{STOP}{START}");
    let c = check(&text);
    let f: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code == "database-unverified")
        .collect();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(&text[f[0].span.clone().unwrap()][..13], "[[databases]]");
    assert!(f[0].message.contains("database `pg`"), "{}", f[0].message);
    assert!(
        f[0].help
            .as_deref()
            .unwrap()
            .contains("do = \"verify-db\", database = \"pg\""),
        "{:?}",
        f[0].help
    );
    // Copied and never verified: at the copy.
    assert_eq!(
        fired(PG, &[STOP, DUMP, START], "database-unverified"),
        ["[[steps]]"]
    );
    // Verified after the dump: nothing.
    assert!(fired(PG, &[STOP, DUMP, VERIFY_DB, START], "database-unverified").is_empty());
    // Verified only before the dump: at the dump.
    assert_eq!(
        fired(PG, &[STOP, VERIFY_DB, DUMP, START], "database-unverified").len(),
        1
    );
    // A run step that says it verifies a PostgreSQL database is not a verify-db step.
    let says = "[[steps]]\nid = \"says\"\ndo = \"run\"\nhost = \"new\"\nargv = [\"true\"]\nverifies = [\"pg\"]\n";
    assert_eq!(
        fired(PG, &[STOP, DUMP, says, START], "database-unverified").len(),
        1
    );
    // For an engine verify-db cannot compare, it is taken at its word.
    let redis = replaced(PG, "postgresql", "redis");
    assert!(fired(&redis, &[STOP, DUMP, says, START], "database-unverified").is_empty());
    assert_eq!(
        fired(&redis, &[STOP, START], "database-unverified").len(),
        1
    );
}

#[test]
fn database_copy_before_stop_fires_on_a_dump_before_the_writers_stop() {
    // The right order: stop, dump, verify, start.
    assert!(
        fired(
            PG,
            &[STOP, DUMP, VERIFY_DB, START],
            "database-copy-before-stop"
        )
        .is_empty()
    );
    // The dump (and its verification) before the stop: both, at the dump step and the
    // verification's database key.
    let text = format!("{HEAD}{PG}{DUMP}{VERIFY_DB}{STOP}{START}");
    let c = check(&text);
    let f: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code == "database-copy-before-stop")
        .collect();
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(&text[f[0].span.clone().unwrap()], "[[steps]]");
    assert!(
        f[0].message
            .contains("step `dump` is the last copy of database `pg`")
    );
    assert_eq!(&text[f[1].span.clone().unwrap()], "\"pg\"");
    // Every copy program of each engine, and a kind's own claim (`transfers`).
    for (engine, cmd) in [
        ("postgresql", "pg_dumpall -g > /srv/globals.sql"),
        (
            "postgresql",
            "/usr/lib/postgresql/17/bin/pg_basebackup -D /srv/base",
        ),
        (
            "mariadb",
            "mariadb-dump --single-transaction app > /srv/app.sql",
        ),
        ("mariadb", "mysqldump app > /srv/app.sql"),
        ("mariadb", "mariabackup --backup --target-dir=/srv/b"),
        ("sqlite", "sqlite3 /srv/app.db '.backup /srv/copy.db'"),
    ] {
        let db = replaced(PG, "postgresql", engine);
        let dump = replaced(DUMP, "pg_dump -Fc app > /srv/dump/app.dump", cmd);
        assert_eq!(
            fired(
                &db,
                &[&dump, STOP, VERIFY_DB, START],
                "database-copy-before-stop"
            )
            .len(),
            1,
            "{cmd}"
        );
    }
    let claims = "[[steps]]\nid = \"copy\"\ndo = \"manual\"\ntext = \"copy the database\"\ntransfers = [\"pg\"]\n";
    assert_eq!(
        fired(
            PG,
            &[claims, STOP, VERIFY_DB, START],
            "database-copy-before-stop"
        ),
        ["\"pg\""]
    );
    // A dump of another engine's database is not this one's copy.
    let other = replaced(DUMP, "pg_dump -Fc app", "mysqldump app");
    assert!(
        fired(
            PG,
            &[&other, STOP, VERIFY_DB, START],
            "database-copy-before-stop"
        )
        .is_empty()
    );
    // Never stopped: fires unless the owners accept a loss.
    assert_eq!(
        fired(PG, &[DUMP, VERIFY_DB], "database-copy-before-stop").len(),
        1
    );
    let text = replaced(
        &format!("{HEAD}{PG}{DUMP}{VERIFY_DB}"),
        "max_downtime = \"15m\"",
        "max_downtime = \"15m\"\nmax_data_loss = \"1h\"",
    );
    assert!(
        check(&text)
            .findings
            .iter()
            .all(|f| f.code != "database-copy-before-stop")
    );
}

const HOSTS_FILE_NAME: &str = r#"
[[names]]
id = "db"
name = "db.example.org"
old = "10.0.0.1"
new = "10.0.0.2"
via = "hosts-file"
clients = ["apps"]
[[clients]]
id = "apps"
hosts = ["app1", "app2"]
files = ["/etc/hosts"]
"#;

#[test]
fn a_hosts_file_name_asks_for_a_manual_step_per_client_and_no_dns_step() {
    // No step changes the clients' files: one finding, on the name, with the text of the
    // manual step for each client host; not also clients-not-reconfigured; no TTL finding for
    // a manual switch of it.
    let switch = "[[steps]]\nid = \"switch\"\ndo = \"manual\"\ntext = \"x\"\nswitches = [\"db\"]\n";
    let text = format!("{HEAD}{HOSTS_FILE_NAME}{switch}");
    let c = check(&text);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let f: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code == "hosts-file-not-changed")
        .collect();
    assert_eq!(f.len(), 1, "{:?}", c.findings);
    assert!(text[f[0].span.clone().unwrap()].starts_with("[[names]]"));
    let help = f[0].help.as_deref().unwrap();
    assert!(
        help.contains("reconfigures = [\"apps\"]")
            && help.contains(
                "on app1: in /etc/hosts, change db.example.org from 10.0.0.1 to 10.0.0.2"
            )
            && help.contains("on app2: in /etc/hosts")
            && help.contains("require_none = true"),
        "{help}"
    );
    assert!(
        !c.findings
            .iter()
            .any(|f| f.code == "clients-not-reconfigured" || f.code == "ttl-too-late"),
        "{:?}",
        c.findings
    );
    // The step that changes them: no finding.
    let step =
        "[[steps]]\nid = \"hosts\"\ndo = \"manual\"\ntext = \"edit\"\nreconfigures = [\"apps\"]\n";
    assert!(fired(HOSTS_FILE_NAME, &[step], "hosts-file-not-changed").is_empty());

    // A DNS step cannot reach it: an error naming what to do instead.
    let dns = "[[steps]]\nid = \"p\"\ndo = \"dns-propagated\"\nname = \"db\"\n";
    let c = check(&format!("{HEAD}{HOSTS_FILE_NAME}{step}{dns}"));
    assert!(
        c.errors.iter().any(
            |e| e.message.contains("clients resolve from their hosts files")
                && e.help.as_deref().is_some_and(|h| h.contains("scan-refs"))
        ),
        "{:?}",
        c.errors
    );
    // A scan-refs step may search for it.
    let scan = "[[steps]]\nid = \"s\"\ndo = \"scan-refs\"\npaths = [\"old:/etc\"]\nnames = [\"db\"]\nrequire_none = true\n";
    let c = check(&format!("{HEAD}{HOSTS_FILE_NAME}{step}{scan}"));
    assert!(c.errors.is_empty(), "{:?}", c.errors);

    // Without clients, old or new, or with an unknown way: errors.
    let bare = "[[names]]\nid = \"db\"\nname = \"db.example.org\"\nvia = \"hosts-file\"\n";
    let c = check(&format!("{HEAD}{bare}"));
    let msgs: Vec<&str> = c.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("names no clients")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("has no `old`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("has no `new`")), "{msgs:?}");
    let c = check(&format!(
        "{HEAD}[[names]]\nid = \"db\"\nname = \"db.example.org\"\nvia = \"ldap\"\nclients = [\"nope\"]\n"
    ));
    let msgs: Vec<&str> = c.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("via = `ldap`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("client `nope`")), "{msgs:?}");
}

/// `config-unverified` (issue 23: "configuration carried over"): a service started on the new
/// host, or naming its `new_host`, needs a step that verifies its configuration; one that is
/// only stopped (retired with the old server) does not.
#[test]
fn config_unverified_fires_on_a_service_that_moves_without_its_configuration_verified() {
    let rule = "config-unverified";
    // Started on the new host, nothing verifies it: at the declaration, with the fix.
    let text = format!("{HEAD}{STOP}{START}");
    let c = check(&text);
    let f: Vec<_> = c.findings.iter().filter(|f| f.code == rule).collect();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(&text[f[0].span.clone().unwrap()][..12], "[[services]]");
    assert!(f[0].message.contains("service `web`"), "{}", f[0].message);
    assert!(
        f[0].help
            .as_deref()
            .unwrap()
            .contains("verifies = [\"web\"]"),
        "{:?}",
        f[0].help
    );
    // A verify-config step that declares it: nothing.
    let cfg = "[[steps]]\nid = \"cfg\"\ndo = \"verify-config\"\nold = \"old:/etc/nginx\"\nnew = \"new:/etc/nginx\"\nverifies = [\"web\"]\n";
    assert!(fired("", &[STOP, START, cfg], rule).is_empty());
    // A manual review that declares it is taken at its word.
    let review = "[[steps]]\nid = \"review\"\ndo = \"manual\"\ntext = \"compare the vhosts\"\nverifies = [\"web\"]\n";
    assert!(fired("", &[STOP, START, review], rule).is_empty());
    // Only stopped, or started again on its own host: not moved, nothing to carry.
    assert!(fired("", &[STOP], rule).is_empty());
    let restart = replaced(START, "host = \"new\"", "host = \"old\"");
    assert!(fired("", &[STOP, &restart], rule).is_empty());
    // `new_host` alone says it moves.
    let moved = "[[services]]\nid = \"api\"\nhost = \"old\"\nnew_host = \"new\"\nports = [8080]\n";
    let c = check(&format!("{HEAD}{moved}{STOP}"));
    let f: Vec<_> = c.findings.iter().filter(|f| f.code == rule).collect();
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].message.contains("service `api`"), "{}", f[0].message);
}

#[test]
fn no_backup_before_point_of_no_return_fires_until_a_step_up_to_it_says_where_the_backup_is() {
    let steps = |backup_on: &str| {
        let line = |id: &str| {
            if id == backup_on {
                "backup = \"vault:/srv/backups/www\"\n"
            } else {
                ""
            }
        };
        format!(
            "{}[[steps]]\nid = \"dump\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\n{}{STOP}{FINAL}{VERIFY}{START}[[steps]]\nid = \"late\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"true\"]\nidempotent = true\n{}",
            BULK,
            line("dump"),
            line("late")
        )
    };
    let text = |backup_on: &str| {
        replaced(
            &format!("{HEAD}{}", steps(backup_on)),
            "max_downtime = \"15m\"",
            "max_downtime = \"15m\"\npoint_of_no_return = \"start\"",
        )
    };
    let fired = |t: &str| -> Vec<String> {
        let c = check(t);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        c.findings
            .iter()
            .filter(|f| f.code == "no-backup-before-point-of-no-return")
            .map(|f| t[f.span.clone().expect("span")].to_owned())
            .collect()
    };
    // No backup: the finding points at `point_of_no_return`.
    assert_eq!(fired(&text("")), ["\"start\""]);
    // A backup after the point of no return is too late.
    assert_eq!(fired(&text("late")), ["\"start\""]);
    // One before it, saying where the copy is.
    assert!(fired(&text("dump")).is_empty());
    // Without a point of no return there is nothing to ask.
    assert!(fired(&format!("{HEAD}{}", steps(""))).is_empty());
    // The third-host form: a data set marked `backup = true`, synced before the point of no
    // return (after it, too late); the concept says where it is kept.
    let vault = "[hosts.vault]\nlocal = true\nroot = \"vault\"\n\n[[data]]\nid = \"www-backup\"\nfrom = \"old:/srv/www\"\nto = \"vault:/backups/www\"\nbackup = true\n\n";
    let sync = "[[steps]]\nid = \"to-vault\"\ndo = \"sync\"\ndata = \"www-backup\"\n";
    let with = |at: &str| {
        let t = text("");
        let t = t
            .replacen("[[steps]]", &format!("{vault}[[steps]]"), 1)
            .replacen(
                "new = { local = true, root = \"/t/n\" }",
                "new = { local = true, root = \"/t/n\" }\nvault = { local = true, root = \"/t/v\" }",
                1,
            );
        match at {
            "before" => t.replacen(
                "[[steps]]\nid = \"dump\"",
                &format!("{sync}[[steps]]\nid = \"dump\""),
                1,
            ),
            _ => format!("{t}{sync}"),
        }
    };
    assert!(fired(&with("before")).is_empty());
    assert_eq!(fired(&with("after")), ["\"start\""]);
    let plan = check(&with("before")).plan.unwrap();
    let step = plan.steps.iter().find(|s| s.id == "to-vault").unwrap();
    assert_eq!(plan.backup_of(step).as_deref(), Some("vault:/backups/www"));
    // Without `backup = true` the same sync is not a backup.
    assert_eq!(
        fired(&with("before").replace("backup = true\n", "")),
        ["\"start\""]
    );
}
