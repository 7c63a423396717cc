//! `compat`: old clients served the same — a probe file's requests and client commands, or a
//! traffic file's recorded requests, against the old and the new service, compared.

use super::{Description, Key, KindSpec, Part};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "compat",
    keys: &[
        Key {
            name: "probe",
            required: false,
            default: None,
            doc: "a probe file (TOML: `[[request]]` and `[[command]]` entries, docs/compat.md), \
                  relative to the plan; give `probe` or `traffic`",
        },
        Key {
            name: "traffic",
            required: false,
            default: None,
            doc: "a traffic file `rehost compat record` wrote, relative to the plan",
        },
        Key {
            name: "old",
            required: true,
            default: None,
            doc: "the old service, `http://HOST:PORT[/PREFIX]`",
        },
        Key {
            name: "new",
            required: true,
            default: None,
            doc: "the new service, `http://HOST:PORT[/PREFIX]`",
        },
        Key {
            name: "allow_writes",
            required: false,
            default: Some("false"),
            doc: "also send requests other than GET, HEAD and OPTIONS, once to each side (for \
                  the rehearsal copy)",
        },
        Key {
            name: "allow",
            required: false,
            default: Some("[]"),
            doc: "expected differences: field globs (`*`, `?`) such as `\"$.meta.version\"` or \
                  `\"header server\"`, listed as allowed and not failing the step",
        },
    ],
    doc: "sends each request of the `probe` file (and runs each of its client commands with \
        `{host}` and `{port}` of each side) or of the `traffic` file to `old`, to `new`, and \
        again to `old`, and compares status, headers and bodies (JSON by field path, text by \
        line, binary by digest; docs/compat.md). A field in which the old service differs from \
        itself is noise, counted and not failing the step. Fails the step when an answer \
        differs in a field that is neither noise nor allowed, or when a request could not be \
        replayed. Writes are refused (listed, not sent) unless `allow_writes`. The journal keeps \
        the counts per endpoint and field with examples, the noise, the refused writes and \
        what was not compared; credentials are never kept.",
    example: "probe = \"clients.toml\"\nold = \"http://10.0.0.5:8080\"\nnew = \"http://10.0.0.6:8080\"\nallow = [\"header server\"]\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |_| Vec::new(),
    describe,
};

fn url(r: &mut Reader, t: &Tbl, key: &str) -> Option<String> {
    let v = r.required_str(t, key)?;
    if !v.starts_with("http://") {
        r.err(
            "value",
            t.span_of(key),
            format!(
                "{}: `{key}` = \"{}\" is not an http:// URL",
                t.what,
                crate::escape_control(&v)
            ),
        )
        .help = Some("write it as http://HOST:PORT, e.g. \"http://10.0.0.5:8080\"".into());
        return None;
    }
    Some(v)
}

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let probe = r.str(t, "probe");
    let traffic = r.str(t, "traffic");
    let old = url(r, t, "old");
    let new = url(r, t, "new");
    let allow_writes = r.bool(t, "allow_writes").unwrap_or(false);
    let allow = r.str_list(t, "allow");
    if probe.is_some() == traffic.is_some() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!(
                "{} needs exactly one of `probe` (a probe file) and `traffic` (a recorded traffic file)",
                t.what
            ),
        );
        return None;
    }
    Some(StepKind::Compat {
        probe,
        traffic,
        old: old?,
        new: new?,
        allow_writes,
        allow,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::Compat {
        probe,
        traffic,
        old,
        new,
        allow_writes,
        allow,
    } = k
    else {
        unreachable!("the registry hands `compat` its own steps")
    };
    let what = match (probe, traffic) {
        (Some(p), _) => format!("the probe file {p}"),
        (_, Some(t)) => format!("the traffic recorded in {t}"),
        _ => String::new(),
    };
    let mut text = format!(
        "show old clients are served the same: {what} against {old} and {new}, old asked twice for noise"
    );
    if *allow_writes {
        text.push_str(", writes sent to both");
    }
    if !allow.is_empty() {
        text.push_str(&format!(", allowed to differ: {}", allow.join(", ")));
    }
    Description(vec![Part::Text(text)])
}
