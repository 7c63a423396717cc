//! `verify-db`: a database's copy checked (schema, contents, sequences) against its source;
//! with `exercise = true`, then exercised (read, modify, add, rolled back) as the application's
//! login (`exercise_user`, `exercise_password_file`).

use super::{Description, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-db",
    keys: &[
        "database",
        "exercise",
        "exercise_user",
        "exercise_password_file",
    ],
    idempotent: true,
    needs_host: false,
    read,
    implies: |k| match k {
        StepKind::VerifyDb { database, .. } => {
            Some((Effect::Verifies(database.clone()), "database"))
        }
        _ => None,
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
