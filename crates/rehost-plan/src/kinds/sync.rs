//! `sync`: a data set copied from its source to its destination (bulk before the window, final
//! inside it).

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "sync",
    keys: &[
        Key {
            name: "data",
            required: true,
            default: None,
            doc: "a `[[data]]` id",
        },
        Key {
            name: "phase",
            required: false,
            default: Some("\"final\""),
            doc: "`\"bulk\"` (before the window) or `\"final\"` (inside it)",
        },
        Key {
            name: "method",
            required: false,
            default: Some("\"auto\""),
            doc: "`\"auto\"` (rsync where both ends' hosts have it, else the built-in transfer), \
                `\"rsync\"` or `\"builtin\"`",
        },
    ],
    doc: "makes the destination a copy of the source. Between a local and an ssh host rsync runs \
        here with the plan's ssh settings (`-e ssh -F … -p …`); between two ssh hosts it runs on \
        the source host, which reaches the destination with its own ssh setup, as the \
        administrator's rsync would: the source host must then resolve the destination's name as \
        the plan writes it (a `Host` alias from this machine's ssh config means nothing there), \
        know its host key, and log in to it with a key of its own (as root, to keep owners). \
        When that fails the step says so and what is missing; `method = \"builtin\"` needs none \
        of it, since the built-in transfer relays the data through rehost and needs no trust \
        between the servers. A missing parent of an ssh destination is created (`--mkpath` where \
        rsync is 3.2.3 or later on both ends, else `mkdir -p` on the destination host first). \
        `rsync -aHAX --numeric-ids --sparse --delete` (excluded entries left alone), run on the \
        source host, progress from rsync's own output. The built-in transfer works between any \
        two hosts (through the agents, content passing through rehost), carries the same \
        metadata, keeps holes, skips files whose digest already matches, checks every file it \
        writes against the digest read on the source, and syncs the destination's file system at \
        the end.",
    example: "data = \"billing-data\"\nphase = \"bulk\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read,
    implies: |k| match k {
        StepKind::Sync { data, .. } => vec![(Effect::Transfers(data.clone()), "data")],
        _ => Vec::new(),
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
