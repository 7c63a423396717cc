//! `address-moved`: an address taken over by the new host answers as the new host, proven by
//! the SSH host key offered there (docs/dns.md).

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "address-moved",
    keys: &[
        Key {
            name: "address",
            required: true,
            default: None,
            doc: "the address that moved: `IP` (SSH on port 22) or `IP:PORT` / `[IPv6]:PORT`",
        },
        Key {
            name: "to",
            required: true,
            default: None,
            doc: "the `[[hosts]]` name that must answer at the address (the new server)",
        },
        Key {
            name: "from",
            required: false,
            default: None,
            doc: "the `[[hosts]]` name that answered there before (the old server): none of its host keys may be offered, and its keys must differ from `to`'s",
        },
        Key {
            name: "host_keys",
            required: false,
            default: Some("[\"/etc/ssh\"]"),
            doc: "absolute paths (files or directories) on `to` and `from` holding their SSH host keys",
        },
    ],
    doc: "asks the SSH server at `address` for its host keys (`ssh-keyscan`, from the machine \
        rehost runs on) and compares their SHA-256 fingerprints with the host keys read on `to` \
        (and `from`) at `host_keys`: the address has moved when at least one key is offered and \
        every key offered is one of `to`'s, and none of `from`'s. Proves who answers, not merely \
        that something answers. When `to` and `from` hold the same host key (carried over, as \
        clients' `known_hosts` want), the two cannot be told apart by it: the step fails saying \
        so rather than passing. Records the fingerprints offered and expected.",
    example: "address = \"192.0.2.10\"\nto = \"new\"\nfrom = \"old\"\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::AddressMoved { to, from, .. } => std::iter::once(Reference::Host(to.as_str()))
            .chain(from.as_deref().map(Reference::Host))
            .collect(),
        _ => Vec::new(),
    },
    describe,
};

/// `IP`, `IP:PORT` or `[IPv6]:PORT` as an address and port (22 by default).
fn parse_address(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 22));
    }
    s.parse().ok()
}

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let address = r.required_str(t, "address");
    let to = r.required_str(t, "to");
    let from = r.str(t, "from");
    if let Some(a) = &address
        && parse_address(a).is_none()
    {
        r.err(
            "value",
            t.span_of("address"),
            format!(
                "{}: address `{}` is not IP, IP:PORT or [IPv6]:PORT",
                t.what,
                crate::escape_control(a)
            ),
        )
        .help = Some("give the address itself, e.g. \"192.0.2.10\": a name would be resolved by a resolver, whose answer is not the address".into());
        return None;
    }
    let mut host_keys = Vec::new();
    for p in r.str_list_spanned(t, "host_keys") {
        let ok = p.value == "/"
            || p.value
                .strip_prefix('/')
                .is_some_and(|b| rehost_tree::only_path(b.as_bytes()).is_ok());
        if !ok {
            r.err(
                "value",
                p.span.clone(),
                format!(
                    "{}: host_keys path `{}` is not an absolute path",
                    t.what,
                    crate::escape_control(&p.value)
                ),
            );
            return None;
        }
        host_keys.push(p.value);
    }
    if host_keys.is_empty() {
        host_keys.push("/etc/ssh".into());
    }
    Some(StepKind::AddressMoved {
        address: address?,
        to: to?,
        from,
        host_keys,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::AddressMoved { address, to, .. } = k else {
        unreachable!("the registry hands `address-moved` its own steps")
    };
    Description(vec![
        Part::Text("prove that ".into()),
        Part::Id(address.clone()),
        Part::Text(" answers as host ".into()),
        Part::Id(to.clone()),
        Part::Text(" (its SSH host key)".into()),
    ])
}
