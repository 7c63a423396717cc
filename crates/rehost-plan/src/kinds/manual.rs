//! `manual`: a person does something and confirms it at the prompt.

use super::{Description, Key, KindSpec, Part};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "manual",
    keys: &[Key {
        name: "text",
        required: true,
        default: None,
        doc: "the instructions, shown to the person at the keyboard",
    }],
    doc: "shows the instructions and asks a person to answer yes or no; who confirmed is recorded: \
        the login, or `--confirm-as NAME` (which only names who is at the keyboard: the prompts \
        still come). `--yes` is the one way to skip the prompts, recorded as a decision. Keys \
        typed before the prompt are discarded. The plan's `point_of_no_return` step (manual or \
        not) asks for its id to be typed instead of yes.",
    example: "text = \"Mail the users of billing that it is down from 22:00.\"\n",
    idempotent: false,
    needs_host: false,
    verifies: false,
    builtin_rollback: None,
    read,
    implies: |_| Vec::new(),
    references: |_| Vec::new(),
    describe,
};

fn read(r: &mut Reader, t: &Tbl) -> Option<StepKind> {
    let text = r.required_str(t, "text")?;
    Some(StepKind::Manual { text })
}

fn describe(k: &StepKind) -> Description {
    let StepKind::Manual { text } = k else {
        unreachable!("the registry hands `manual` its own steps")
    };
    Description(vec![Part::Text(format!("manual: {text}"))])
}
