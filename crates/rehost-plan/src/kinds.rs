//! Step kinds: the checklist's extension point.
//!
//! Each kind is one entry in [`KINDS`]: its name as written in `do = "…"`, the keys it takes
//! beyond the common ones, whether it is idempotent unless the plan says otherwise, and the
//! function that reads it. Adding a kind is one reader function and one line here (plus its
//! executor in the engine).

use crate::model::*;
use crate::read::{Reader, Tbl};
use crate::suggest::closest;

/// Keys every step may have.
const COMMON_KEYS: &[&str] = &[
    "id",
    "title",
    "do",
    "host",
    "after",
    "timeout",
    "rollback",
    "idempotent",
    "needs_window",
    "on_failure",
    // Declared effects, for the M 2.319 lint.
    "stops",
    "starts",
    "drains",
    "transfers",
    "verifies",
    "lowers_ttl",
    "reconfigures",
    "switches",
];

pub struct KindSpec {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    /// Whether running the step twice is harmless, unless the plan says otherwise.
    pub idempotent: bool,
    /// Whether it acts on a host (and so needs `host`).
    pub needs_host: bool,
    read: fn(&mut Reader, &Tbl) -> Option<StepKind>,
}

pub static KINDS: &[KindSpec] = &[
    KindSpec {
        name: "manual",
        keys: &["text"],
        idempotent: false,
        needs_host: false,
        read: read_manual,
    },
    KindSpec {
        name: "run",
        keys: &["command", "argv", "expect_status"],
        idempotent: false,
        needs_host: true,
        read: read_run,
    },
    KindSpec {
        name: "wait",
        keys: &["duration", "until"],
        idempotent: true,
        needs_host: false,
        read: read_wait,
    },
    KindSpec {
        name: "sync",
        keys: &["data", "phase", "method"],
        idempotent: true,
        needs_host: false,
        read: read_sync,
    },
    KindSpec {
        name: "verify-tree",
        keys: &["data"],
        idempotent: true,
        needs_host: false,
        read: read_verify_tree,
    },
    KindSpec {
        name: "stop",
        keys: &["service"],
        idempotent: true,
        needs_host: false,
        read: |r, t| {
            Some(StepKind::Stop {
                service: r.required_str(t, "service")?,
            })
        },
    },
    KindSpec {
        name: "start",
        keys: &["service"],
        idempotent: false,
        needs_host: false,
        read: |r, t| {
            Some(StepKind::Start {
                service: r.required_str(t, "service")?,
            })
        },
    },
    KindSpec {
        name: "health",
        keys: &["service"],
        idempotent: true,
        needs_host: false,
        read: |r, t| {
            Some(StepKind::Health {
                service: r.required_str(t, "service")?,
            })
        },
    },
    KindSpec {
        name: "verify-db",
        keys: &["database"],
        idempotent: true,
        needs_host: false,
        read: read_verify_db,
    },
];

fn read_manual(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let text = r.required_str(t, "text")?;
    Some(StepKind::Manual { text })
}

fn read_run(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let command = match (t.get("command"), t.get("argv")) {
        (Some(_), Some(_)) => {
            r.err(
                "value",
                t.span_of("argv"),
                format!("{} has both `command` and `argv`: give one", t.what),
            );
            return None;
        }
        (Some(_), None) => match r.command(t, "command")? {
            Command::Shell(s) => Command::Shell(s),
            Command::Argv(a) => Command::Argv(a),
        },
        (None, Some(_)) => match r.command(t, "argv")? {
            Command::Shell(s) => {
                r.err(
                    "type",
                    t.span_of("argv"),
                    format!("{} key `argv` must be an array of strings", t.what),
                )
                .help = Some(format!("write argv = [\"...\"] or command = {s:?}"));
                return None;
            }
            argv => argv,
        },
        (None, None) => {
            r.err(
                "missing-key",
                t.span.clone(),
                format!(
                    "{} needs `command` (a shell string) or `argv` (an array)",
                    t.what
                ),
            );
            return None;
        }
    };
    let expect_status = match t.get("expect_status") {
        None => vec![0],
        Some(v) => match v.get_ref() {
            toml::de::DeValue::Integer(_) => vec![r.int(t, "expect_status")? as i32],
            toml::de::DeValue::Array(a) => {
                let mut codes = Vec::new();
                for item in a.iter() {
                    // Regression: `[0x10]` was read as decimal digits and silently dropped.
                    match item
                        .get_ref()
                        .as_integer()
                        .map(|i| crate::read::integer(i).and_then(|n| i32::try_from(n).ok()))
                    {
                        Some(Some(n)) => codes.push(n),
                        Some(None) => {
                            r.err(
                                "value",
                                item.span(),
                                format!("{} key `expect_status`: integer out of range", t.what),
                            );
                        }
                        None => {
                            r.err(
                                "type",
                                item.span(),
                                format!(
                                    "{} key `expect_status` must list integers, not {}",
                                    t.what,
                                    crate::read::type_name(item.get_ref())
                                ),
                            );
                        }
                    }
                }
                codes
            }
            _ => {
                r.err(
                    "type",
                    v.span(),
                    format!(
                        "{} key `expect_status` must be an integer or an array of integers",
                        t.what
                    ),
                );
                return None;
            }
        },
    };
    Some(StepKind::Run {
        command,
        expect_status,
    })
}

fn read_wait(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    match (t.get("duration"), t.get("until")) {
        (Some(_), None) => Some(StepKind::Wait {
            wait: WaitFor::Duration(r.duration(t, "duration")?),
        }),
        (None, Some(_)) => Some(StepKind::Wait {
            wait: WaitFor::Until(r.timestamp(t, "until")?.0),
        }),
        _ => {
            r.err(
                "missing-key",
                t.span.clone(),
                format!("{} needs either `duration` or `until`", t.what),
            );
            None
        }
    }
}

fn read_sync(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let data = r.required_str(t, "data")?;
    let phase = match r.str(t, "phase").as_deref() {
        None | Some("final") => SyncPhase::Final,
        Some("bulk") => SyncPhase::Bulk,
        Some(other) => {
            r.err(
                "value",
                t.span_of("phase"),
                format!("{}: phase `{other}` is not known", t.what),
            )
            .help = Some("write \"bulk\" (before the window) or \"final\" (inside it)".into());
            return None;
        }
    };
    let method = match r.str(t, "method").as_deref() {
        None | Some("auto") => SyncMethod::Auto,
        Some("rsync") => SyncMethod::Rsync,
        Some("builtin") => SyncMethod::Builtin,
        Some(other) => {
            r.err(
                "value",
                t.span_of("method"),
                format!("{}: method `{other}` is not known", t.what),
            )
            .help = Some(
                "write \"auto\" (rsync where the host has it), \"rsync\" or \"builtin\"".into(),
            );
            return None;
        }
    };
    Some(StepKind::Sync {
        data,
        phase,
        method,
    })
}

fn read_verify_tree(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let data = r.required_str(t, "data")?;
    Some(StepKind::VerifyTree { data })
}

fn read_verify_db(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let database = r.required_str(t, "database")?;
    Some(StepKind::VerifyDb { database })
}

pub(crate) fn read_step(r: &mut Reader, t: &Tbl, index: usize) -> Option<Step> {
    let id = r.required_str(t, "id");
    let mut t = Tbl {
        t: t.t,
        span: t.span.clone(),
        what: match &id {
            Some(id) => format!("step `{id}`"),
            None => t.what.clone(),
        },
    };
    let kind_name = r.required_str(&t, "do")?;
    let Some(spec) = KINDS.iter().find(|k| k.name == kind_name) else {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        r.err(
            "unknown-kind",
            t.span_of("do"),
            format!("{}: unknown step kind `{kind_name}`", t.what),
        )
        .help = Some(match closest(&kind_name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known kinds: {}", names.join(", ")),
        });
        return None;
    };
    let allowed: Vec<&str> = COMMON_KEYS.iter().chain(spec.keys).copied().collect();
    r.check_keys(&t, &allowed);
    t.what = format!("{} ({})", t.what, spec.name);
    let kind = (spec.read)(r, &t);
    let host = r.str(&t, "host");
    if spec.needs_host && host.is_none() && t.get("host").is_none() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!("{} needs `host`: which plan host it runs on", t.what),
        );
    }
    let mut effects = Vec::new();
    let mut effect_spans = Vec::new();
    for (key, make) in [
        ("stops", Effect::Stops as fn(String) -> Effect),
        ("starts", Effect::Starts),
        ("drains", Effect::Drains),
        ("transfers", Effect::Transfers),
        ("verifies", Effect::Verifies),
        ("lowers_ttl", Effect::LowersTtl),
        ("reconfigures", Effect::Reconfigures),
        ("switches", Effect::Switches),
    ] {
        for id in r.str_list_spanned(&t, key) {
            effects.push(make(id.value));
            effect_spans.push(id.span);
        }
    }
    let implied = match &kind {
        Some(k) => implied_effect(k),
        None => None,
    };
    if let Some(e) = implied {
        let key = match &kind {
            Some(StepKind::VerifyDb { .. }) => "database",
            _ if matches!(e, Effect::Stops(_) | Effect::Starts(_)) => "service",
            _ => "data",
        };
        effects.push(e);
        effect_spans.push(t.span_of(key));
    }
    let step = Step {
        id: id?,
        index,
        title: r.str(&t, "title"),
        host,
        after: r.str_list_spanned(&t, "after"),
        timeout: r.duration(&t, "timeout"),
        rollback: r.command(&t, "rollback"),
        idempotent: r.bool(&t, "idempotent").unwrap_or(spec.idempotent),
        needs_window: r.bool(&t, "needs_window").unwrap_or(false),
        on_failure: r.on_failure(&t),
        effects,
        effect_spans,
        id_span: t.span_of("id"),
        span: t.span.clone(),
        kind: kind?,
    };
    Some(step)
}

/// The effect a kind has by its nature, for the M 2.319 lint (besides the declared ones).
pub fn implied_effect(kind: &StepKind) -> Option<Effect> {
    match kind {
        StepKind::Sync { data, .. } => Some(Effect::Transfers(data.clone())),
        StepKind::VerifyTree { data } => Some(Effect::Verifies(data.clone())),
        StepKind::VerifyDb { database } => Some(Effect::Verifies(database.clone())),
        StepKind::Stop { service } => Some(Effect::Stops(service.clone())),
        StepKind::Start { service } => Some(Effect::Starts(service.clone())),
        _ => None,
    }
}

/// The service a kind acts on, if it is one of the service kinds.
pub fn service_of(kind: &StepKind) -> Option<&str> {
    match kind {
        StepKind::Stop { service } | StepKind::Start { service } | StepKind::Health { service } => {
            Some(service)
        }
        _ => None,
    }
}
