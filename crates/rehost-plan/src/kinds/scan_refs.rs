//! `scan-refs`: the lines of files on the plan's hosts that mention the old address or name
//! (docs/refs.md): the clients that will not follow the switch by themselves.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "scan-refs",
    keys: &[
        Key {
            name: "paths",
            required: true,
            default: None,
            doc: "where to search: `HOST:PATH` (HOST a `[[hosts]]` name, PATH an absolute file or directory there)",
        },
        Key {
            name: "find",
            required: false,
            default: Some("[]"),
            doc: "addresses (IPv4, IPv6) and names to look for; with `names` or instead of it",
        },
        Key {
            name: "names",
            required: false,
            default: Some("[]"),
            doc: "`[[names]]` ids whose name and `old` value are looked for (only `old` for a name with `via = \"hosts-file\"`, whose name stays in the files)",
        },
        Key {
            name: "clients",
            required: false,
            default: Some("[]"),
            doc: "`[[clients]]` ids whose reconfiguration a clean scan shows: with `require_none`, the step implies `reconfigures` for each",
        },
        Key {
            name: "require_none",
            required: false,
            default: Some("false"),
            doc: "fail the step when a line still mentions what is looked for (after the clients were reconfigured); without it the lines found are the list of clients to reconfigure",
        },
    ],
    doc: "searches every regular file under `paths` on their hosts (in process here, by the \
        agent on an ssh host) for lines that mention the addresses and names looked for: IPv4 \
        and names not inside a longer number or name, IPv6 in every spelling of the same \
        address, names in any case (docs/refs.md). Binary files are skipped and symlinks not \
        followed (both counted). Records each line found (host, path, line number, the line's \
        text around the mention; at most 1,000 per path, more counted) and the report lists \
        them as the clients to reconfigure. Fails when a path could not be read (nothing \
        unreadable is counted as searched) and, with `require_none`, when a line was found.",
    example: "paths = [\"old:/etc\", \"old:/srv/app\"]\nfind = [\"192.0.2.10\"]\nnames = [\"www\"]\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read,
    implies: |k| match k {
        StepKind::ScanRefs {
            clients,
            require_none: true,
            ..
        } => clients
            .iter()
            .map(|c| (Effect::Reconfigures(c.clone()), "clients"))
            .collect(),
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::ScanRefs { paths, names, .. } => paths
            .iter()
            .filter_map(|p| p.split_once(':').map(|(h, _)| Reference::Host(h)))
            .chain(names.iter().map(|n| Reference::Name {
                id: n,
                needs: "old",
            }))
            .collect(),
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    if t.get("paths").is_none() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!("{} needs `paths`: where to search, as HOST:PATH", t.what),
        );
        return None;
    }
    let mut ok = true;
    let mut paths = Vec::new();
    for p in r.str_list_spanned(t, "paths") {
        let good = p.value.split_once(':').is_some_and(|(h, path)| {
            !h.is_empty()
                && (path == "/"
                    || path
                        .strip_prefix('/')
                        .is_some_and(|b| rehost_tree::only_path(b.as_bytes()).is_ok()))
        });
        if !good {
            ok = false;
            r.err(
                "value",
                p.span.clone(),
                format!(
                    "{}: `{}` is not HOST:PATH with an absolute PATH",
                    t.what,
                    crate::escape_control(&p.value)
                ),
            )
            .help = Some(
                "write a `[[hosts]]` name, a colon and a path from `/`, e.g. \"old:/etc\"".into(),
            );
            continue;
        }
        paths.push(p.value);
    }
    if ok && paths.is_empty() {
        r.err(
            "empty",
            t.span_of("paths"),
            format!("{} key `paths` is empty", t.what),
        );
        return None;
    }
    let mut find = Vec::new();
    for f in r.str_list_spanned(t, "find") {
        match rehost_refs::Needle::parse(&f.value) {
            Ok(_) => find.push(f.value),
            Err(e) => {
                ok = false;
                r.err(
                    "value",
                    f.span.clone(),
                    format!(
                        "{}: find `{}`: {e}",
                        t.what,
                        crate::escape_control(&f.value)
                    ),
                );
            }
        }
    }
    let names = r.str_list(t, "names");
    if ok && find.is_empty() && names.is_empty() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!(
                "{} needs `find` (addresses and names) or `names` ([[names]] ids)",
                t.what
            ),
        )
        .help = Some("e.g. find = [\"192.0.2.10\", \"billing.example.org\"]".into());
        return None;
    }
    let clients = r.str_list(t, "clients");
    let require_none = r.bool(t, "require_none").unwrap_or(false);
    if !ok {
        return None;
    }
    Some(StepKind::ScanRefs {
        paths,
        find,
        names,
        clients,
        require_none,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::ScanRefs {
        paths,
        find,
        names,
        require_none,
        ..
    } = k
    else {
        unreachable!("the registry hands `scan-refs` its own steps")
    };
    let mut parts = vec![Part::Text("find the lines that mention ".into())];
    let what: Vec<String> = find
        .iter()
        .cloned()
        .chain(names.iter().map(|n| format!("name {n}")))
        .collect();
    parts.push(Part::Text(what.join(", ")));
    parts.push(Part::Text(" under ".into()));
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            parts.push(Part::Text(", ".into()));
        }
        parts.push(Part::Id(p.clone()));
    }
    if *require_none {
        parts.push(Part::Text("; none may remain".into()));
    }
    Description(parts)
}
