//! `retire-old`: the old service checked stopped and disabled, its data kept read-only for the
//! retention, with a rollback that gives both back.

use super::{Description, Key, KindSpec, Part, Reference};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "retire-old",
    keys: &[
        Key {
            name: "service",
            required: true,
            default: None,
            doc: "the old service, a `[[services]]` id with a `health` command or `ports`: \
                checked stopped on its host",
        },
        Key {
            name: "disabled_check",
            required: true,
            default: None,
            doc: "a command on the service's host that exits 0 when the service will not start \
                at the next boot (`! systemctl is-enabled --quiet billing.service`)",
        },
        Key {
            name: "disable",
            required: false,
            default: None,
            doc: "a command that disables the service first (`systemctl disable \
                billing.service`); must exit 0",
        },
        Key {
            name: "enable",
            required: false,
            default: None,
            doc: "the command that undoes `disable`, run by the step's rollback",
        },
        Key {
            name: "data",
            required: false,
            default: None,
            doc: "a `[[data]]` id whose `from` side (the old tree) is made read-only; needs \
                `retention`",
        },
        Key {
            name: "retention",
            required: false,
            default: None,
            doc: "how long the old data is kept read-only (`90d`): recorded with the date it \
                ends, shown in the report",
        },
    ],
    doc: "retires the old side once the new one serves, and checks each part rather than \
        assuming it: the service is **stopped** (its `health` command fails and none of its \
        `ports` accepts a connection on its host), **disabled** (runs `disable` if given, then \
        `disabled_check` must exit 0: it will not come back at the next boot), and with `data` \
        the old tree is **kept read-only**: every write bit beneath it removed on the host \
        (walked on descriptors, never following a symlink, not entering another file system), \
        each change kept in the state directory's `evidence/` (its digest in the journal), \
        then the tree walked again and the step fails if any entry still has a write bit. \
        What it does not stop is said with its result: root (or `CAP_DAC_OVERRIDE`) can still \
        write, an owner can give write bits back (`rehost status --recheck` with a \
        `watch-old` step sees changed content), and rehost does not end the retention itself. \
        Its rollback sets back each mode that is still as the step left it (an entry changed \
        since is left as found and named) and runs `enable`.",
    example: "service = \"billing-app\"\ndisable = \"systemctl disable billing.service\"\n\
        enable = \"systemctl enable billing.service\"\n\
        disabled_check = \"! systemctl is-enabled --quiet billing.service\"\n\
        data = \"billing-data\"\nretention = \"90d\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: Some(
        "sets back the modes it removed where the entry is still as it left them, and runs \
        `enable`",
    ),
    read,
    implies: |_| Vec::new(),
    references: |k| match k {
        StepKind::RetireOld { service, data, .. } => {
            let mut r = vec![Reference::Service {
                id: service,
                needs: "health",
            }];
            if let Some(d) = data {
                r.push(Reference::DataSet(d));
            }
            r
        }
        _ => Vec::new(),
    },
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let service = r.required_str(t, "service");
    let disabled_check = match r.command(t, "disabled_check") {
        Some(c) => Some(c),
        None => {
            if t.get("disabled_check").is_none() {
                r.err(
                    "missing-key",
                    t.span.clone(),
                    format!(
                        "{} needs `disabled_check`: a command that exits 0 when the service \
                         will not start at the next boot",
                        t.what
                    ),
                );
            }
            None
        }
    };
    let data = r.str(t, "data");
    let retention = r.duration(t, "retention");
    match (&data, retention) {
        (Some(_), None) if t.get("retention").is_none() => {
            r.err(
                "missing-key",
                t.span_of("data"),
                format!(
                    "{} keeps `data` read-only and needs `retention`: how long (`90d`)",
                    t.what
                ),
            );
            return None;
        }
        (None, Some(_)) => {
            r.err(
                "retention-without-data",
                t.span_of("retention"),
                format!("{} has `retention` but no `data` to keep read-only", t.what),
            );
            return None;
        }
        _ => {}
    }
    Some(StepKind::RetireOld {
        service: service?,
        disabled_check: disabled_check?,
        disable: r.command(t, "disable"),
        enable: r.command(t, "enable"),
        data,
        retention,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::RetireOld { service, data, .. } = k else {
        unreachable!("the registry hands `retire-old` its own steps")
    };
    let mut parts = vec![
        Part::Text("retire the old service ".into()),
        Part::Id(service.clone()),
        Part::Text(": checked stopped and disabled".into()),
    ];
    if let Some(d) = data {
        parts.push(Part::Text(", the old side of ".into()));
        parts.push(Part::Id(d.clone()));
        parts.push(Part::Text(" kept read-only".into()));
    }
    Description(parts)
}
