//! `verify-files`: single files carried by hand (a licence file, a keytab, a crontab) checked
//! equal on the old and the new host.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-files",
    keys: &[
        Key {
            name: "from",
            required: true,
            default: None,
            doc: "the `[[hosts]]` name that holds the originals (the old server)",
        },
        Key {
            name: "to",
            required: true,
            default: None,
            doc: "the `[[hosts]]` name that must hold the same files (the new server)",
        },
        Key {
            name: "paths",
            required: true,
            default: None,
            doc: "absolute paths, the same on both hosts (a local host's are under its `root`)",
        },
    ],
    doc: "compares each listed path on the `to` host with the same path on the `from` host: \
        type, size and BLAKE3 of the content, symlink target, mode, owner, group, extended \
        attributes and ACLs. Not compared, and said so in the report: the modification time (a \
        file carried by hand rarely keeps it), hard links, and the directories on the way. Each \
        path is reached from `/` through directory descriptors without following a symlink; a \
        symlink on the way is recorded as what it is, never followed. Fails the step on any \
        difference, on a path absent from the `from` host (nothing to compare it with), and on \
        anything that could not be read. Both manifests are kept in the state directory's \
        `evidence/`, per attempt, and the typed result in the journal. To count as the \
        verification of a `[[keys]]` entry, declare it (`verifies = [\"…\"]`): the lint checks \
        that the step lists every path of the key on the key's host.",
    example: "from = \"old\"\nto = \"new\"\npaths = [\"/etc/krb5.keytab\", \"/etc/cron.d/billing\"]\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::VerifyFiles { from, to, .. } => vec![Reference::Host(from), Reference::Host(to)],
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let from = r.required_str(t, "from");
    let to = r.required_str(t, "to");
    if t.get("paths").is_none() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!("{} needs `paths`: the files to compare", t.what),
        );
        return None;
    }
    let listed = r.str_list_spanned(t, "paths");
    if listed.is_empty() {
        r.err(
            "empty",
            t.span_of("paths"),
            format!("{} key `paths` is empty", t.what),
        )
        .help = Some("list the files to compare, e.g. paths = [\"/etc/krb5.keytab\"]".into());
        return None;
    }
    let mut paths: Vec<String> = Vec::with_capacity(listed.len());
    let mut ok = true;
    for p in listed {
        let below = p.value.strip_prefix('/');
        match below.map(|b| rehost_tree::only_path(b.as_bytes())) {
            Some(Ok(())) => {}
            _ => {
                ok = false;
                r.err(
                    "value",
                    p.span.clone(),
                    format!(
                        "{}: path `{}` is not an absolute path to a file",
                        t.what,
                        crate::escape_control(&p.value)
                    ),
                )
                .help = Some(
                    "write it from `/`, without `.`, `..`, `//` or a trailing `/`, e.g. \
                     \"/etc/krb5.keytab\""
                        .into(),
                );
                continue;
            }
        }
        if paths.contains(&p.value) {
            ok = false;
            r.err(
                "value",
                p.span.clone(),
                format!("{}: path `{}` is listed twice", t.what, p.value),
            );
            continue;
        }
        paths.push(p.value);
    }
    if !ok {
        return None;
    }
    Some(StepKind::VerifyFiles {
        from: from?,
        to: to?,
        paths,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::VerifyFiles { from, to, paths } = k else {
        unreachable!("the registry hands `verify-files` its own steps")
    };
    let mut parts = vec![Part::Text(format!(
        "verify {} file{} on ",
        paths.len(),
        if paths.len() == 1 { "" } else { "s" }
    ))];
    parts.push(Part::Id(to.clone()));
    parts.push(Part::Text(" against ".into()));
    parts.push(Part::Id(from.clone()));
    parts.push(Part::Text(format!(": {}", paths.join(", "))));
    Description(parts)
}
