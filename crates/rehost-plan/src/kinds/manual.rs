//! `manual`: a person does something and confirms it at the prompt.

use super::{Description, KindSpec, Part};
use crate::model::*;
use crate::read::{Reader, Tbl};

pub(super) static KIND: KindSpec = KindSpec {
    name: "manual",
    keys: &["text"],
    idempotent: false,
    needs_host: false,
    read,
    implies: |_| None,
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
