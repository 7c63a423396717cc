//! `start`: start a declared service with its `start` command.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;

pub(super) static KIND: KindSpec = KindSpec {
    name: "start",
    keys: &[Key {
        name: "service",
        required: true,
        default: None,
        doc: "a `[[services]]` id with a `start` command",
    }],
    doc: "runs the service's declared `start` command on the step's `host` (default: the service's \
        host; usually the new one); implies `starts`.",
    example: "service = \"billing-app\"\n",
    idempotent: false,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read: |r, t| {
        Some(StepKind::Start {
            service: r.required_str(t, "service")?,
        })
    },
    implies: |k| match k {
        StepKind::Start { service } => vec![(Effect::Starts(service.clone()), "service")],
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::Start { service } => vec![Reference::Service {
            id: service,
            needs: "start",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn describe(k: &StepKind) -> Description {
    let StepKind::Start { service } = k else {
        unreachable!("the registry hands `start` its own steps")
    };
    Description(vec![
        Part::Text("start service ".into()),
        Part::Id(service.clone()),
    ])
}
