//! `verify-config`: the effective configuration of the new system against the old one's,
//! normalised by format (docs/config.md).

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};
use toml::de::DeValue;

pub(super) static KIND: KindSpec = KindSpec {
    name: "verify-config",
    keys: &[
        Key {
            name: "old",
            required: false,
            default: None,
            doc: "the old side: `HOST:PATH` (a file, or a tree compared file by file) or `HOST:` with a command (its output on HOST); HOST a `[[hosts]]` name. With `new`; or `database` instead",
        },
        Key {
            name: "new",
            required: false,
            default: None,
            doc: "the new side, written as `old`",
        },
        Key {
            name: "database",
            required: false,
            default: None,
            doc: "a `[[databases]]` id (PostgreSQL) instead of `old` and `new`: the settings of its `from` and `to` servers (`pg_settings`), each difference with its `postgresql.conf` line",
        },
        Key {
            name: "command",
            required: false,
            default: None,
            doc: "the command whose output is the configuration, for `HOST:` sides (`nginx -T`, `sshd -T`)",
        },
        Key {
            name: "old_command",
            required: false,
            default: None,
            doc: "the command for the old side where it differs from the new one's",
        },
        Key {
            name: "new_command",
            required: false,
            default: None,
            doc: "the command for the new side where it differs from the old one's",
        },
        Key {
            name: "allow",
            required: false,
            default: Some("[]"),
            doc: "globs on key paths whose differences are expected (`*.server_name`): listed as allowed with both values, not failures",
        },
        Key {
            name: "rewrite",
            required: false,
            default: Some("[]"),
            doc: "`[{ from = \"old.example\", to = \"new.example\" }]`: text replaced in the old side's keys and values before comparing (host names, addresses, paths)",
        },
        Key {
            name: "format",
            required: false,
            default: None,
            doc: "how both sides are read instead of detecting it: `nginx`, `spaced` (`key value`), `equals` (`key=value`), `ini`, `json`, `toml`, `lines`",
        },
    ],
    doc: "reads the configuration on both sides — a command's output run on each side's host, a \
        file or a tree of files there, or a PostgreSQL database's settings on its `from` and `to` \
        servers — normalises it by format (`nginx -T` directives in their block context, \
        `key value`, `key=value`, INI, JSON and TOML trees, plain lines: comments, blank lines, \
        whitespace and the order of unordered keys dropped) and compares the effective values \
        key by key, each difference with the file and line on each side where known. Fails the \
        step on a difference that `allow` does not declare expected; allowed ones are recorded \
        with both values. Values of keys that look like secrets are compared but never \
        recorded or shown. Each side is bounded (16 MiB, `REHOST_MAX_CONFIG_BYTES`). See \
        docs/config.md.",
    example: "old = \"old:\"\nnew = \"new:\"\ncommand = \"nginx -T\"\nallow = [\"*.server_name\"]\nrewrite = [{ from = \"192.0.2.10\", to = \"203.0.113.20\" }]\n",
    idempotent: true,
    needs_host: false,
    verifies: true,
    builtin_rollback: None,
    read,
    implies: |k| match k {
        StepKind::VerifyConfig {
            database: Some(db), ..
        } => vec![(Effect::Verifies(db.clone()), "database")],
        _ => Vec::new(),
    },
    references: |k| match k {
        StepKind::VerifyConfig {
            old, new, database, ..
        } => old
            .iter()
            .chain(new.iter())
            .map(|s| Reference::Host(&s.host))
            .chain(database.iter().map(|d| Reference::Database(d)))
            .collect(),
        _ => Vec::new(),
    },
    describe,
};

fn side(r: &mut Reader, t: &Tbl, key: &str, command: Option<String>) -> Option<ConfigSide> {
    let s = r.str_spanned(t, key)?;
    let Some((host, path)) = s.value.split_once(':').filter(|(h, _)| !h.is_empty()) else {
        r.err(
            "value",
            s.span.clone(),
            format!(
                "{}: `{key}` is not HOST:PATH or HOST:",
                t.what
            ),
        )
        .help = Some("write a `[[hosts]]` name, a colon and an absolute path (\"old:/etc/nginx\"), or HOST: with `command`".into());
        return None;
    };
    let path = (!path.is_empty()).then(|| path.to_owned());
    match (&path, &command) {
        (Some(p), _) if !p.starts_with('/') => {
            r.err(
                "value",
                s.span.clone(),
                format!(
                    "{}: `{key}` path `{}` is not absolute",
                    t.what,
                    crate::escape_control(p)
                ),
            );
            return None;
        }
        (Some(_), Some(_)) => {
            r.err(
                "value",
                s.span.clone(),
                format!(
                    "{}: `{key}` names a path and the step a command for it",
                    t.what
                ),
            )
            .help = Some(format!(
                "write `{key} = \"{host}:\"` to compare the command's output, or drop the command to compare the files"
            ));
            return None;
        }
        (None, None) => {
            r.err(
                "missing-key",
                s.span.clone(),
                format!(
                    "{}: `{key}` is `{host}:` but no command says what to read there",
                    t.what
                ),
            )
            .help = Some(
                "add `command = \"nginx -T\"` (or `old_command`/`new_command`), or give a path"
                    .into(),
            );
            return None;
        }
        _ => {}
    }
    Some(ConfigSide {
        host: host.to_owned(),
        path,
        command,
    })
}

pub(crate) fn rewrites(r: &mut Reader, t: &Tbl) -> Option<Vec<ConfigRewrite>> {
    let Some(v) = t.get("rewrite") else {
        return Some(Vec::new());
    };
    let bad = |r: &mut Reader, span| {
        r.err(
            "type",
            span,
            format!(
                "{} key `rewrite` must be an array of {{ from, to }} tables",
                t.what
            ),
        )
        .help = Some("rewrite = [{ from = \"old.example\", to = \"new.example\" }]".into());
    };
    let DeValue::Array(a) = v.get_ref() else {
        bad(r, v.span());
        return None;
    };
    let mut out = Vec::new();
    for item in a.iter() {
        let DeValue::Table(it) = item.get_ref() else {
            bad(r, item.span());
            return None;
        };
        let tbl = Tbl {
            t: it,
            span: item.span(),
            what: format!("{}'s rewrite", t.what),
        };
        r.check_keys(&tbl, &["from", "to"]);
        let from = r.required_str(&tbl, "from")?;
        let to = r.str(&tbl, "to")?;
        out.push(ConfigRewrite { from, to });
    }
    Some(out)
}

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let command = r.str(t, "command");
    let old_command = r.str(t, "old_command").or_else(|| command.clone());
    let new_command = r.str(t, "new_command").or_else(|| command.clone());
    let database = r.str(t, "database");
    let allow = r.str_list(t, "allow");
    let rewrite = rewrites(r, t)?;
    let format = r.str_spanned(t, "format");
    if let Some(f) = &format
        && !CONFIG_FORMATS.contains(&f.value.as_str())
    {
        r.err(
            "value",
            f.span.clone(),
            format!(
                "{}: `format` `{}` is not one rehost reads",
                t.what,
                crate::escape_control(&f.value)
            ),
        )
        .help = Some(format!("one of {}", CONFIG_FORMATS.join(", ")));
        return None;
    }
    let format = format.map(|f| f.value);
    if let Some(db) = database {
        for k in [
            "old",
            "new",
            "command",
            "old_command",
            "new_command",
            "format",
        ] {
            if t.get(k).is_some() {
                r.err(
                    "value",
                    t.span_of(k),
                    format!(
                        "{}: `{k}` with `database`: the database's servers are the sides",
                        t.what
                    ),
                );
                return None;
            }
        }
        return Some(StepKind::VerifyConfig {
            old: None,
            new: None,
            database: Some(db),
            allow,
            rewrite,
            format: None,
        });
    }
    if t.get("old").is_none() || t.get("new").is_none() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!("{} needs `old` and `new`, or `database`", t.what),
        )
        .help =
            Some("old = \"old:/etc/app\" and new = \"new:/etc/app\"; or database = \"ID\"".into());
        return None;
    }
    let old = side(r, t, "old", old_command);
    let new = side(r, t, "new", new_command);
    Some(StepKind::VerifyConfig {
        old: Some(old?),
        new: Some(new?),
        database: None,
        allow,
        rewrite,
        format,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::VerifyConfig {
        old,
        new,
        database,
        allow,
        ..
    } = k
    else {
        unreachable!("the registry hands `verify-config` its own steps")
    };
    let mut parts = vec![Part::Text("verify the configuration".into())];
    match (old, new, database) {
        (_, _, Some(db)) => {
            parts.push(Part::Text(" of database ".into()));
            parts.push(Part::Id(db.clone()));
            parts.push(Part::Text(" (server settings)".into()));
        }
        (Some(o), Some(n), None) => {
            for (word, s) in [(" of ", o), (" against ", n)] {
                parts.push(Part::Text(word.into()));
                match (&s.path, &s.command) {
                    (Some(p), _) => parts.push(Part::Text(format!("{}:{p}", s.host))),
                    (None, Some(c)) => {
                        parts.push(Part::Command(c.clone()));
                        parts.push(Part::Text(" on ".into()));
                        parts.push(Part::Id(s.host.clone()));
                    }
                    (None, None) => parts.push(Part::Id(s.host.clone())),
                }
            }
        }
        _ => {}
    }
    if !allow.is_empty() {
        parts.push(Part::Text(format!(
            ", expecting differences in {}",
            allow.join(", ")
        )));
    }
    Description(parts)
}
