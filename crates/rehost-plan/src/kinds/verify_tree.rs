//! `verify-tree`: a data set's copy checked complete and correct against its source.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-tree",
    keys: &[Key {
        name: "data",
        required: true,
        default: None,
        doc: "a `[[data]]` id",
    }],
    doc: "compares every entry of the destination with the source (type, BLAKE3 of the content, \
        symlink target, mode, owner, group, mtime, xattrs, ACLs, devices, hard links); fails the \
        step on any difference or anything unverified. Both manifests are kept in the state \
        directory's `evidence/`, per attempt, and the typed result (totals, the first 100 \
        findings, the manifests' digests) in the journal (docs/journal.md). A re-verification of \
        the same pair reads only what changed since (see docs/tree.md).",
    example: "data = \"billing-data\"\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |k| match k {
        StepKind::VerifyTree { data } => vec![(Effect::Verifies(data.clone()), "data")],
        _ => Vec::new(),
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
