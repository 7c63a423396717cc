//! `wait`: a duration, or until a time.

use super::{Description, Key, KindSpec, Part};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "wait",
    keys: &[
        Key {
            name: "duration",
            required: false,
            default: None,
            doc: "how long to pause (this or `until` is required)",
        },
        Key {
            name: "until",
            required: false,
            default: None,
            doc: "a time with an offset to pause until (this or `duration`)",
        },
    ],
    doc: "pauses.",
    example: "duration = \"5m\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |_| Vec::new(),
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
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

fn describe(k: &StepKind) -> Description {
    let StepKind::Wait { wait } = k else {
        unreachable!("the registry hands `wait` its own steps")
    };
    Description(vec![Part::Text(match wait {
        WaitFor::Duration(d) => format!("wait {}", format_duration(*d)),
        WaitFor::Until(t) => format!("wait until {t}"),
    })])
}
