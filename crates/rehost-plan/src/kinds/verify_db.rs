//! `verify-db`: a database's copy checked (schema, contents, sequences) against its source.

use super::{Description, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-db",
    keys: &["database"],
    idempotent: true,
    needs_host: false,
    read,
    implies: |k| match k {
        StepKind::VerifyDb { database } => Some((Effect::Verifies(database.clone()), "database")),
        _ => None,
    },
    references: |k| match k {
        StepKind::VerifyDb { database } => vec![Reference::Database(database)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let database = r.required_str(t, "database")?;
    Some(StepKind::VerifyDb { database })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::VerifyDb { database } = k else {
        unreachable!("the registry hands `verify-db` its own steps")
    };
    Description(vec![
        Part::Text("verify database ".into()),
        Part::Id(database.clone()),
    ])
}
