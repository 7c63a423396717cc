//! `dns-switch`: switches a `[[names]]` entry at its zone's primary server with one signed DNS
//! UPDATE (RFC 2136, TSIG), from exactly its `old` value to its `new` one.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "dns-switch",
    keys: &[
        Key {
            name: "name",
            required: true,
            default: None,
            doc: "the `[[names]]` id to switch; it must give `old` and `new`",
        },
        Key {
            name: "server",
            required: true,
            default: None,
            doc: "the zone's primary server, which takes updates: `IP`, `IP:PORT` or `[IPv6]:PORT`",
        },
        Key {
            name: "tsig_key",
            required: true,
            default: None,
            doc: "the absolute path, on the machine running rehost, of the TSIG key file \
                  (`tsig-keygen`, `keymgr -t` or `ALGORITHM:NAME:SECRET`); refused when every \
                  user may read it; its secret is never printed or journaled",
        },
        Key {
            name: "zone",
            required: false,
            default: None,
            doc: "the zone (default: the zone whose SOA the server gives for the name)",
        },
        Key {
            name: "ttl",
            required: false,
            default: None,
            doc: "the new records' TTL (default: the name's `lowered_ttl`, else its `ttl`, \
                  else 5m)",
        },
    ],
    doc: "asks the primary what it serves: already the new value is done without a change, \
        anything but the old value fails naming what it serves (someone changed it; nothing is \
        sent). Otherwise sends one DNS UPDATE, signed with the TSIG key, that replaces the \
        record set on the prerequisite that it is exactly the old value (a change made in \
        between is refused by the server, not overwritten), checks the signature of the \
        server's answer, and asks the primary again: only its answer, exactly the new value, \
        makes the step done. Other servers and caches are not asked: follow it with \
        `dns-propagated`. Implies `switches` for the name. docs/dns.md.",
    example: "name = \"www\"\nserver = \"192.0.2.53\"\ntsig_key = \"/etc/rehost/tsig.key\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: Some(
        "the reverse update: from the new value back to the old one, signed with the same \
         key, and the primary asked again (already old: nothing sent)",
    ),
    read,
    implies: |k| match k {
        StepKind::DnsSwitch { name, .. } => vec![(Effect::Switches(name.clone()), "name")],
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::DnsSwitch { name, .. } => vec![Reference::Name {
            id: name,
            needs: "switch",
        }],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let name = r.required_str(t, "name");
    let server = r.required_str(t, "server");
    let tsig_key = r.required_str(t, "tsig_key");
    let zone = r.str(t, "zone");
    let ttl = match t.get("ttl") {
        Some(_) => Some(r.duration(t, "ttl")?),
        None => None,
    };
    if let Some(k) = &tsig_key
        && !k.starts_with('/')
    {
        r.err(
            "value",
            t.span_of("tsig_key"),
            format!(
                "{}: `tsig_key` must be an absolute path on the machine running rehost",
                t.what
            ),
        );
        return None;
    }
    Some(StepKind::DnsSwitch {
        name: name?,
        server: server?,
        tsig_key: tsig_key?,
        zone,
        ttl,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::DnsSwitch { name, server, .. } = k else {
        unreachable!("the registry hands `dns-switch` its own steps")
    };
    Description(vec![
        Part::Text("switch name ".into()),
        Part::Id(name.clone()),
        Part::Text(format!(
            " from its old to its new value at the primary {server} (a signed DNS UPDATE)"
        )),
    ])
}
