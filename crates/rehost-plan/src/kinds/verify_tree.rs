//! `verify-tree`: a data set's copy checked complete and correct against its source.

use super::{Description, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-tree",
    keys: &["data"],
    idempotent: true,
    needs_host: false,
    read,
    implies: |k| match k {
        StepKind::VerifyTree { data } => Some((Effect::Verifies(data.clone()), "data")),
        _ => None,
    },
    references: |k| match k {
        StepKind::VerifyTree { data } => vec![Reference::DataSet(data)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let data = r.required_str(t, "data")?;
    Some(StepKind::VerifyTree { data })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::VerifyTree { data } = k else {
        unreachable!("the registry hands `verify-tree` its own steps")
    };
    Description(vec![
        Part::Text("verify tree ".into()),
        Part::Id(data.clone()),
    ])
}
