//! `verify-keys`: `[[keys]]` entries proved present on the new host by their public
//! fingerprints, whatever their path or format there.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-keys",
    keys: &[
        Key {
            name: "keys",
            required: true,
            default: None,
            doc: "the `[[keys]]` ids to verify (each read at its `paths` on its `host`)",
        },
        Key {
            name: "to",
            required: true,
            default: None,
            doc: "the `[[hosts]]` name that must hold the keys (the new server)",
        },
        Key {
            name: "search",
            required: false,
            default: Some("[]"),
            doc: "absolute paths (files or directories) on `to` to look for the keys in; empty: the directories of the keys' paths",
        },
        Key {
            name: "password_file",
            required: false,
            default: None,
            doc: "an absolute path on the machine rehost runs on: a file (mode 0600, one password a line) whose passwords open encrypted PKCS#12 bundles and PKCS#8 keys on both hosts, as `keys scan --password-file` does; the passwords go to the hosts inside the scan requests and are never shown or kept",
        },
    ],
    doc: "scans each key's `paths` on its host for key material (OpenSSH private and public \
        keys, PEM and DER private keys in PKCS#1, PKCS#8 and SEC1, X.509 certificates; see \
        docs/keys.md) and the `search` paths on `to`, and matches them by the SHA-256 of \
        their public half, so a key stored in another format or at another path on `to` is \
        present (moved). Fails the step when a key is missing on `to`, when a private key \
        found for it there is readable by group or others, when a key's paths hold no key \
        material rehost reads (keytabs, LUKS key files: verify those with `verify-files`), \
        when an encrypted key cannot be identified (a `password_file` opens PKCS#12 bundles \
        and encrypted PKCS#8 keys), or when something could \
        not be read. Only public facts are recorded: kinds, algorithms, fingerprints, paths, \
        modes. Implies `verifies` for each key.",
    example: "keys = [\"billing-tls\"]\nto = \"new\"\nsearch = [\"/etc/ssl\"]\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |k| match k {
        StepKind::VerifyKeys { keys, .. } => keys
            .iter()
            .map(|id| (Effect::Verifies(id.clone()), "keys"))
            .collect(),
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::VerifyKeys { keys, to, .. } => std::iter::once(Reference::Host(to))
            .chain(keys.iter().map(|k| Reference::Key(k)))
            .collect(),
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let to = r.required_str(t, "to");
    if t.get("keys").is_none() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!("{} needs `keys`: the `[[keys]]` ids to verify", t.what),
        );
        return None;
    }
    let keys = r.str_list(t, "keys");
    if keys.is_empty() {
        r.err(
            "empty",
            t.span_of("keys"),
            format!("{} key `keys` is empty", t.what),
        )
        .help = Some("list the keys to verify, e.g. keys = [\"billing-tls\"]".into());
        return None;
    }
    let mut search = Vec::new();
    let mut ok = true;
    for p in r.str_list_spanned(t, "search") {
        let below = p.value.strip_prefix('/');
        if p.value != "/"
            && !matches!(
                below.map(|b| rehost_tree::only_path(b.as_bytes())),
                Some(Ok(()))
            )
        {
            ok = false;
            r.err(
                "value",
                p.span.clone(),
                format!(
                    "{}: search path `{}` is not an absolute path",
                    t.what,
                    crate::escape_control(&p.value)
                ),
            )
            .help = Some(
                "write it from `/`, without `.`, `..`, `//` or a trailing `/`, e.g. \"/etc/ssl\""
                    .into(),
            );
            continue;
        }
        search.push(p.value);
    }
    let password_file = r.str(t, "password_file");
    if let Some(f) = &password_file
        && !f.starts_with('/')
    {
        ok = false;
        r.err(
            "value",
            t.span_of("password_file"),
            format!(
                "{}: `password_file` must be an absolute path on this machine, not `{}`",
                t.what,
                crate::escape_control(f)
            ),
        );
    }
    if !ok {
        return None;
    }
    Some(StepKind::VerifyKeys {
        keys,
        to: to?,
        search,
        password_file,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::VerifyKeys {
        keys,
        to,
        search,
        password_file,
    } = k
    else {
        unreachable!("the registry hands `verify-keys` its own steps")
    };
    let mut parts = vec![Part::Text("verify key".into())];
    if keys.len() > 1 {
        parts.push(Part::Text("s".into()));
    }
    for (i, id) in keys.iter().enumerate() {
        parts.push(Part::Text(if i == 0 { " " } else { ", " }.into()));
        parts.push(Part::Id(id.clone()));
    }
    parts.push(Part::Text(" by fingerprint on ".into()));
    parts.push(Part::Id(to.clone()));
    if !search.is_empty() {
        parts.push(Part::Text(format!(" under {}", search.join(", "))));
    }
    if let Some(f) = password_file {
        parts.push(Part::Text(format!(
            ", what is encrypted opened with the passwords in {f}"
        )));
    }
    Description(parts)
}
