//! `switch`: moves a running `rehost hold` relay to another upstream without refusing a client.

use super::{Description, Key, KindSpec, Part};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "switch",
    keys: &[
        Key {
            name: "hold",
            required: true,
            default: None,
            doc: "the address the `rehost hold` relay listens on, `IP:PORT` (`[IPv6]:PORT`), \
                  on the machine running rehost",
        },
        Key {
            name: "to",
            required: true,
            default: None,
            doc: "the new upstream, `HOST:PORT` or `IP:PORT` (resolved when the step runs)",
        },
        Key {
            name: "state_dir",
            required: false,
            default: None,
            doc: "the hold's `--state-dir`, where its control socket is (default: the hold's \
                  default, `$XDG_RUNTIME_DIR/rehost-hold`, else `/tmp/rehost-hold-UID`)",
        },
    ],
    doc: "asks the running hold (through its owner-only control socket) to switch: it first \
        connects to the new upstream once (down: nothing is paused, the step fails); then stops \
        accepting, so new clients wait in the kernel's backlog instead of being refused; waits \
        for the connections relayed to the old upstream to end up to three quarters of the \
        step's `timeout` (the time box, default 2 s) and ends (shuts down) those still open, \
        naming each; re-points to the new upstream if it accepts, else resumes towards the old \
        one and fails; and resumes accepting. Done once new connections go to the new \
        upstream. Records the upstreams, how long accept was paused (no new client waited \
        longer), how many clients waited, the connections drained and the ones ended; the \
        report shows them under Connections. docs/hold.md.",
    example: "hold = \"127.0.0.1:8080\"\nto = \"192.0.2.20:8080\"\ntimeout = \"2s\"\n",
    idempotent: true,
    needs_host: false,
    verifies: false,
    builtin_rollback: Some(
        "the hold switched back to the upstream it forwarded to before the step (from the \
         journal), the same way; rolled back only once a connection made through the hold \
         afterwards reaches that old upstream again (this machine's kernel lists the hold's \
         connection to it)",
    ),
    read,
    implies: |_| Vec::new(),
    references: |_| Vec::new(),
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let hold = r.required_str(t, "hold");
    let to = r.required_str(t, "to");
    let state_dir = r.str(t, "state_dir");
    if let Some(h) = &hold
        && h.parse::<std::net::SocketAddr>().is_err()
    {
        r.err(
            "value",
            t.span_of("hold"),
            format!(
                "{}: `hold` must be the relay's listening address as IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
                t.what
            ),
        );
        return None;
    }
    if let Some(to) = &to
        && to
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        r.err(
            "value",
            t.span_of("to"),
            format!(
                "{}: `to` must be the new upstream as HOST:PORT, e.g. 192.0.2.20:8080",
                t.what
            ),
        );
        return None;
    }
    if let Some(d) = &state_dir
        && !d.starts_with('/')
    {
        r.err(
            "value",
            t.span_of("state_dir"),
            format!("{}: `state_dir` must be an absolute path", t.what),
        );
        return None;
    }
    Some(StepKind::Switch {
        hold: hold?,
        to: to?,
        state_dir,
    })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::Switch { hold, to, .. } = k else {
        unreachable!("the registry hands `switch` its own steps")
    };
    Description(vec![Part::Text(format!(
        "switch the relay on {hold} to the upstream {to}: new clients wait, not refused; the old side drains"
    ))])
}
