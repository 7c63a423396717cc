//! `stop`: stop a declared service with its `stop` command.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;

pub(super) static KIND: KindSpec = KindSpec {
    name: "stop",
    keys: &[Key {
        name: "service",
        required: true,
        default: None,
        doc: "a `[[services]]` id with a `stop` command",
    }],
    doc: "runs the service's declared `stop` command on the step's `host` (default: the service's \
        host); implies `stops`.",
    example: "service = \"billing-app\"\nhost = \"old\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read: |r, t| {
        Some(StepKind::Stop {
            service: r.required_str(t, "service")?,
        })
    },
    implies: |k| match k {
        StepKind::Stop { service } => vec![(Effect::Stops(service.clone()), "service")],
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::Stop { service } => vec![Reference::Service {
            id: service,
            needs: "stop",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn describe(k: &StepKind) -> Description {
    let StepKind::Stop { service } = k else {
        unreachable!("the registry hands `stop` its own steps")
    };
    Description(vec![
        Part::Text("stop service ".into()),
        Part::Id(service.clone()),
    ])
}
