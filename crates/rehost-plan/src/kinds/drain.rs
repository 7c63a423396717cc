//! `drain`: wait until no client holds a connection to a declared service.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;

pub(super) static KIND: KindSpec = KindSpec {
    name: "drain",
    keys: &[
        Key {
            name: "service",
            required: true,
            default: None,
            doc: "a `[[services]]` id with `ports` or `sockets`",
        },
        Key {
            name: "terminate",
            required: false,
            default: Some("false"),
            doc: "at the timeout, end the connections still there (`SOCK_DESTROY`, else the \
                socket shut down from its process through `pidfd_getfd`) instead of failing; \
                fails only for those that could not be ended",
        },
    ],
    doc: "waits until no established TCP connection (IPv4 or IPv6) to the service's `ports` \
        and no connection to its listening Unix `sockets` remains on the step's `host` \
        (default: the service's host), read from the host's kernel once a second (netlink \
        sock_diag, else `/proc/net/tcp*` and `/proc/net/unix`), with the count and the clients \
        still connected shown as progress. Succeeds when they are gone; fails at the step's \
        `timeout` (default 5 min) naming each client still connected (address, port, process \
        where visible) as the ones to end by hand; with `terminate = true` it ends them at the \
        timeout instead and succeeds once the host's kernel no longer lists any of them, \
        failing naming each it could not end and why (a Unix-socket client is not ended: it is \
        named to be ended by hand). Records who was connected at the start, \
        who came later, who left when, who was ended by which mechanism, and who remained; \
        the report shows them. Implies `drains`.",
    example: "service = \"billing-app\"\nhost = \"old\"\ntimeout = \"10m\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read: |r, t| {
        Some(StepKind::Drain {
            service: r.required_str(t, "service")?,
            terminate: r.bool(t, "terminate").unwrap_or(false),
        })
    },
    implies: |k| match k {
        StepKind::Drain { service, .. } => vec![(Effect::Drains(service.clone()), "service")],
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::Drain { service, .. } => vec![Reference::Service {
            id: service,
            needs: "connections",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn describe(k: &StepKind) -> Description {
    let StepKind::Drain { service, terminate } = k else {
        unreachable!("the registry hands `drain` its own steps")
    };
    let mut parts = vec![
        Part::Text("wait until no client is connected to service ".into()),
        Part::Id(service.clone()),
    ];
    if *terminate {
        parts.push(Part::Text(
            ", ending those still connected at the timeout".into(),
        ));
    }
    Description(parts)
}
