//! `compat-sql`: the queries the old clients sent, from the old database server's log,
//! replayed against the database's old and new side and compared row by row.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "compat-sql",
    keys: &[
        Key {
            name: "database",
            required: true,
            default: None,
            doc: "a PostgreSQL or MariaDB `[[databases]]` id: the old server is its `from` side, \
                  the new one its `to` side, each reached by its client (psql, mariadb) on its host",
        },
        Key {
            name: "log",
            required: true,
            default: None,
            doc: "the old server's log on this machine (PostgreSQL with `log_statement = 'all'`: \
                  stderr format, csvlog or jsonlog; MariaDB: the general query log), relative to \
                  the plan",
        },
        Key {
            name: "format",
            required: false,
            default: None,
            doc: "`stderr`, `csvlog`, `jsonlog` or `mariadb-general` (default: told from the \
                  log's first line)",
        },
        Key {
            name: "allow_writes",
            required: false,
            default: Some("false"),
            doc: "also run the statements that are not read-only, each in a transaction rolled \
                  back, once per side (for the rehearsal copy)",
        },
    ],
    doc: "replays each distinct read-only statement of the `log` (SELECT, WITH … SELECT, VALUES, \
        SHOW, TABLE; MariaDB also DESCRIBE, EXPLAIN, each in the database the log shows it ran in) \
        alone in a read-only transaction that is rolled back, on the database's \
        `from` side, its `to` side and the `from` side again, and compares the answers column by \
        column and row by row (docs/compat.md, SQL). A column in which the old server differs \
        from itself (`now()`, `random()`) is noise, counted and not failing the step. Fails the \
        step when an answer differs (naming the statement's log line, the first differing row \
        and column and both values; an error only the new server raises is its own class) or \
        when a statement could not be replayed or the log not read. Other statements are listed \
        and not run unless `allow_writes`. The journal keeps the counts, the differing \
        statements with their first difference, the noise and what was refused, as a `compat` \
        result.",
    example: "database = \"billing-db\"\nlog = \"old-postgresql.log\"\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::CompatSql { database, .. } => vec![Reference::Database(database)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let database = r.required_str(t, "database");
    let log = r.required_str(t, "log");
    let format = r.str(t, "format");
    if let Some(f) = &format
        && !["stderr", "csvlog", "jsonlog", "mariadb-general"].contains(&f.as_str())
    {
        r.err(
            "value",
            t.span_of("format"),
            format!(
                "{}: `format` = \"{}\" is not a log format rehost reads",
                t.what,
                crate::escape_control(f)
            ),
        )
        .help = Some(
            "write \"stderr\", \"csvlog\", \"jsonlog\" or \"mariadb-general\", or leave it out"
                .into(),
        );
        return None;
    }
    let allow_writes = r.bool(t, "allow_writes").unwrap_or(false);
    Some(StepKind::CompatSql {
        database: database?,
        log: log?,
        format,
        allow_writes,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::CompatSql {
        database,
        log,
        allow_writes,
        ..
    } = k
    else {
        unreachable!("the registry hands `compat-sql` its own steps")
    };
    let mut text = format!(
        "show the old clients' queries are answered the same: the read-only statements of {log} \
         replayed against both sides of database `{database}`, old asked twice for noise"
    );
    if *allow_writes {
        text.push_str(", statements that write run rolled back on both");
    }
    Description(vec![Part::Text(text)])
}
