//! `dns-ttl`: the lowered TTL is served, and the old one has expired since it was lowered.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "dns-ttl",
    keys: &[Key {
        name: "name",
        required: true,
        default: None,
        doc: "the `[[names]]` id; its `ttl`, `lowered_ttl` and `authoritative` servers are used",
    }],
    doc: "asks each of the name's `authoritative` servers directly (no recursion) and fails \
        when one serves a TTL above `lowered_ttl` or does not answer; then finds in the journal \
        when the step that lowered the TTL (`lowers_ttl = [\"…\"]`) finished, and waits, with \
        a countdown, until the old `ttl` has passed since then, so that no cache can still \
        hold the long-lived answer. Fails at once, saying how long is left, when that is \
        beyond the step's `timeout`, and when no step that lowers the TTL has finished. The \
        journal keeps each server's TTL, when the TTL was lowered and when the old one \
        expired; the report shows them (docs/dns.md).",
    example: "name = \"www\"\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    // It checks and waits; the step that lowers the TTL declares `lowers_ttl`.
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::DnsTtl { name } => vec![Reference::Name {
            id: name,
            needs: "lowered_ttl",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    Some(StepKind::DnsTtl {
        name: r.required_str(t, "name")?,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::DnsTtl { name } = k else {
        unreachable!("the registry hands `dns-ttl` its own steps")
    };
    Description(vec![
        Part::Text("check the lowered TTL of name ".into()),
        Part::Id(name.clone()),
        Part::Text(" and wait until the old TTL has expired".into()),
    ])
}
