//! `verify-db`: a database's copy checked (schema, contents, sequences) against its source;
//! with `exercise = true`, then exercised (read, modify, add, rolled back) as the application's
//! login (`exercise_user`, `exercise_password_file`).

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-db",
    keys: &[
        Key {
            name: "database",
            required: true,
            default: None,
            doc: "a `[[databases]]` id",
        },
        Key {
            name: "exercise",
            required: false,
            default: Some("false"),
            doc: "then exercise the copy as the application's login",
        },
        Key {
            name: "exercise_user",
            required: false,
            default: None,
            doc: "the login to exercise as (default: the database's `user`); only with `exercise = \
                true`",
        },
        Key {
            name: "exercise_password_file",
            required: false,
            default: None,
            doc: "the file on the `to` host holding its password (default: the database's \
                `password_file`); only with `exercise = true`",
        },
    ],
    doc: "compares the `[[databases]]` entry's copy on its `to` host with the original on its \
        `from` host, the engine's client (psql, mariadb, sqlite3) run on each host (through the \
        agent over ssh): schema (tables, columns and types, constraints, indexes, views, \
        functions, triggers, extensions), per-table row counts and checksums computed inside the \
        servers, sequences; differing rows named by key. Fails the step on any difference; the \
        typed report is the step's result in the journal (see docs/db.md). With `exercise = \
        true` it then exercises the copy as the application's login: per table, read through \
        every index, update a row, add a row, each rolled back, between two checksums of the \
        whole database; the step fails on a failed operation (naming the table and operation) or \
        on anything the exercise left changed (naming the table or sequence), and the journal \
        and the report say what \"unchanged\" rests on. `exercise_user` and \
        `exercise_password_file` without `exercise = true` are errors.",
    example: "database = \"billing-db\"\nexercise = true\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |k| match k {
        StepKind::VerifyDb { database, .. } => {
            vec![(Effect::Verifies(database.clone()), "database")]
        }
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::VerifyDb { database, .. } => vec![Reference::Database(database)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let database = r.required_str(t, "database")?;
    let on = r.bool(t, "exercise").unwrap_or(false);
    let user = r.str(t, "exercise_user");
    let password_file = r.str(t, "exercise_password_file");
    if !on {
        for key in ["exercise_user", "exercise_password_file"] {
            if t.get(key).is_some() {
                r.err(
                    "value",
                    t.span_of(key),
                    format!("{} key `{key}` applies only with `exercise = true`", t.what),
                )
                .help = Some(format!("add `exercise = true`, or remove `{key}`"));
            }
        }
    }
    for (key, v) in [
        ("exercise_user", &user),
        ("exercise_password_file", &password_file),
    ] {
        if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
            r.err(
                "empty",
                t.span_of(key),
                format!("{} key `{key}` is empty", t.what),
            );
        }
    }
    let exercise = on.then_some(DbExercise {
        user,
        password_file,
    });
    Some(StepKind::VerifyDb { database, exercise })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::VerifyDb { database, exercise } = k else {
        unreachable!("the registry hands `verify-db` its own steps")
    };
    let mut parts = vec![
        Part::Text("verify database ".into()),
        Part::Id(database.clone()),
    ];
    if let Some(e) = exercise {
        parts.push(Part::Text(match &e.user {
            Some(u) => {
                format!(", then exercise it (read, modify, add; rolled back) as the login {u}")
            }
            None => ", then exercise it (read, modify, add; rolled back)".into(),
        }));
    }
    Description(parts)
}
