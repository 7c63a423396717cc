//! `dns-propagated`: waits until every server of a `[[names]]` entry serves its new value.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};
use std::time::Duration;

/// How often the servers are asked when the step says nothing.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

pub(super) static KIND: KindSpec = KindSpec {
    name: "dns-propagated",
    keys: &[
        Key {
            name: "name",
            required: true,
            default: None,
            doc: "the `[[names]]` id whose `new` value must be served; its `resolvers` and \
                  `authoritative` servers (`IP[:PORT]`) are asked",
        },
        Key {
            name: "interval",
            required: false,
            default: Some("\"10s\""),
            doc: "how long between two rounds of questions",
        },
    ],
    doc: "asks each of the name's `authoritative` servers (without recursion) and `resolvers` \
        (with it) directly, in parallel, every `interval`, until every one serves exactly the \
        name's `new` value (`A`, `AAAA` or `CNAME`); UDP, TCP when truncated, 3 s per question, \
        nothing cached. Shows which servers still lag; at the step's `timeout` (default 1h) it \
        fails naming each lagging server, its last answer and the TTL it may still hold it for. \
        A server that does not answer lags, never agrees. The journal keeps each server's last \
        answer and when it first served the new value; the report shows them (docs/dns.md).",
    example: "name = \"www\"\ninterval = \"10s\"\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    // It waits for a switch another step made; it switches nothing itself (so `ttl-too-late`,
    // which asks for a lowered TTL before each switch, has nothing to say about it).
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::DnsPropagated { name, .. } => vec![Reference::Name {
            id: name,
            needs: "new",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let name = r.required_str(t, "name");
    let interval = match t.get("interval") {
        Some(_) => r.duration(t, "interval")?,
        None => DEFAULT_INTERVAL,
    };
    if interval.is_zero() {
        r.err(
            "value",
            t.span_of("interval"),
            format!("{}: `interval` must be longer than 0s", t.what),
        );
        return None;
    }
    Some(StepKind::DnsPropagated {
        name: name?,
        interval,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::DnsPropagated { name, interval } = k else {
        unreachable!("the registry hands `dns-propagated` its own steps")
    };
    Description(vec![
        Part::Text("wait until every server serves the new value of name ".into()),
        Part::Id(name.clone()),
        Part::Text(format!(" (asked every {})", format_duration(*interval))),
    ])
}
