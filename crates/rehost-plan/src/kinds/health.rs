//! `health`: wait until a declared service is healthy: its `health` command succeeds, or its `ports` accept.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;

pub(super) static KIND: KindSpec = KindSpec {
    name: "health",
    keys: &[Key {
        name: "service",
        required: true,
        default: None,
        doc: "a `[[services]]` id with a `health` command or `ports`",
    }],
    doc: "polls until the service is healthy: its `health` command exits 0, or else each of its \
        `ports` accepts a TCP connection on the host (loopback), checked once a second with the \
        progress shown; fails at the step's `timeout` (default 60 s).",
    example: "service = \"billing-app\"\ntimeout = \"2m\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read: |r, t| {
        Some(StepKind::Health {
            service: r.required_str(t, "service")?,
        })
    },
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::Health { service } => vec![Reference::Service {
            id: service,
            needs: "health",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn describe(k: &StepKind) -> Description {
    let StepKind::Health { service } = k else {
        unreachable!("the registry hands `health` its own steps")
    };
    Description(vec![
        Part::Text("wait until service ".into()),
        Part::Id(service.clone()),
        Part::Text(" is healthy".into()),
    ])
}
