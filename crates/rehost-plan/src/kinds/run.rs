//! `run`: a command on a host, done when it ends with an expected status.

use super::{Description, Key, KindSpec, Part};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "run",
    keys: &[
        Key {
            name: "command",
            required: false,
            default: None,
            doc: "a shell string, run as `/bin/sh -c` (this or `argv` is required)",
        },
        Key {
            name: "argv",
            required: false,
            default: None,
            doc: "an argument vector, no shell (this or `command`)",
        },
        Key {
            name: "expect_status",
            required: false,
            default: Some("0"),
            doc: "the exit status, or list of them, that means success",
        },
    ],
    doc: "runs on `host`, output streamed to the terminal and kept in the state directory with its \
        digest.",
    example: "host = \"old\"\ncommand = \"systemctl stop billing\"\nexpect_status = [0, 5]\n",
    idempotent: false,
    needs_host: true,
    verifies: false,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |_| Vec::new(),
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
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

fn describe(k: &StepKind) -> Description {
    let StepKind::Run { command, .. } = k else {
        unreachable!("the registry hands `run` its own steps")
    };
    Description(vec![
        Part::Text("run ".into()),
        Part::Command(command.to_string()),
    ])
}
