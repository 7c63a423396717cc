//! `[survey]`: the differences `rehost survey --compare OLD NEW` expects, declared as a
//! `verify-config` step declares its own (`allow` globs, `rewrite` of the old side's text), and
//! the inventory the plan was drafted from (`inventory`, whose dependency map the concept
//! embeds).

use super::{Reader, Tbl};
use crate::kinds::verify_config::rewrites;
use crate::model::*;

impl Reader {
    pub(super) fn survey(&mut self, root: &Tbl) -> Option<SurveyExpect> {
        let t = self.table(root, "survey", "[survey]".into())?;
        self.check_keys(&t, &["allow", "rewrite", "inventory"]);
        let inventory = self.str_spanned(&t, "inventory");
        if let Some(i) = &inventory
            && i.value.trim().is_empty()
        {
            self.err("empty", i.span.clone(), "[survey] `inventory` is empty")
                .help = Some(
                "name the file `rehost survey HOST --json` wrote, relative to the plan: inventory = \"old.json\"".into(),
            );
        }
        let allow = self.str_list_spanned(&t, "allow");
        for a in &allow {
            if a.value.trim().is_empty() {
                self.err("empty", a.span.clone(), "[survey] `allow` holds an empty glob")
                    .help = Some(
                    "write the comparison's key with globs: \"package linux-image-*\", \"sysctl kernel.hostname\""
                        .into(),
                );
            }
        }
        let rewrite = rewrites(self, &t).unwrap_or_default();
        Some(SurveyExpect {
            allow: allow.into_iter().map(|a| a.value).collect(),
            rewrite,
            inventory: inventory.filter(|i| !i.value.trim().is_empty()),
            span: t.span.clone(),
        })
    }
}
