//! `sync`: a data set copied from its source to its destination (bulk before the window, final
//! inside it).

use super::{Description, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "sync",
    keys: &["data", "phase", "method"],
    idempotent: true,
    needs_host: false,
    read,
    implies: |k| match k {
        StepKind::Sync { data, .. } => Some((Effect::Transfers(data.clone()), "data")),
        _ => None,
    },
    references: |k| match k {
        StepKind::Sync { data, .. } => vec![Reference::DataSet(data)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let data = r.required_str(t, "data")?;
    let phase = match r.str(t, "phase").as_deref() {
        None | Some("final") => SyncPhase::Final,
        Some("bulk") => SyncPhase::Bulk,
        Some(other) => {
            r.err(
                "value",
                t.span_of("phase"),
                format!("{}: phase `{other}` is not known", t.what),
            )
            .help = Some("write \"bulk\" (before the window) or \"final\" (inside it)".into());
            return None;
        }
    };
    let method = match r.str(t, "method").as_deref() {
        None | Some("auto") => SyncMethod::Auto,
        Some("rsync") => SyncMethod::Rsync,
        Some("builtin") => SyncMethod::Builtin,
        Some(other) => {
            r.err(
                "value",
                t.span_of("method"),
                format!("{}: method `{other}` is not known", t.what),
            )
            .help = Some(
                "write \"auto\" (rsync where the host has it), \"rsync\" or \"builtin\"".into(),
            );
            return None;
        }
    };
    Some(StepKind::Sync {
        data,
        phase,
        method,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::Sync { data, phase, .. } = k else {
        unreachable!("the registry hands `sync` its own steps")
    };
    Description(vec![
        Part::Text("sync ".into()),
        Part::Id(data.clone()),
        Part::Text(format!(" ({phase:?})").to_lowercase()),
    ])
}
