//! `watch-old`: the old side of a data set, its manifest kept, re-checked at the end of the run.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "watch-old",
    keys: &[Key {
        name: "data",
        required: true,
        default: None,
        doc: "a `[[data]]` id; its `from` side (the old host's tree) is watched",
    }],
    doc: "takes the manifest of the data set's source (the old host's tree, walked and hashed \
        there, with the data set's excludes) after the final sync and verification, and keeps \
        it in the state directory's `evidence/` (its digest in the journal). At the end of the \
        run, after the last step, the old side is walked again and compared with the kept \
        manifest: a file written, created, deleted or with changed metadata is a lost write \
        (it reached the old server after its final state was taken), recorded as an \
        `old_side_rechecked` record (docs/journal.md) and named in the run's summary and the \
        report. Excluded paths are not watched, nor anything written after the re-check. A \
        rollback after the watch makes it void (the old side is the service again): place it \
        after the step that stops the old service, so that a resumed run takes it again. \
        `rehost status --recheck` re-checks later (docs/journal.md). The step itself fails \
        only when the walk fails; it verifies nothing about the copy.",
    example: "data = \"billing-data\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::WatchOld { data } => vec![Reference::DataSet(data)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let data = r.required_str(t, "data")?;
    Some(StepKind::WatchOld { data })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::WatchOld { data } = k else {
        unreachable!("the registry hands `watch-old` its own steps")
    };
    Description(vec![
        Part::Text("watch the old side of ".into()),
        Part::Id(data.clone()),
    ])
}
