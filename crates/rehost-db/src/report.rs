//! The result of comparing two databases: typed findings, the exit code, and the human and
//! JSON renderers. Names and values come from the databases (untrusted): the human renderer
//! escapes them with `rehost_tree::escape::text`, the one escaper for text.

use crate::model::ObjectKind;
use rehost_tree::escape::text as escape;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

pub const EXIT_EQUAL: i32 = 0;
pub const EXIT_DIFFERENT: i32 = 1;
pub const EXIT_TROUBLE: i32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// On the old side, not on the new.
    Missing,
    /// On the new side, not on the old.
    Extra,
    /// On both, with a different definition (a column type, an index definition, a default
    /// collation that sorts differently).
    Changed,
    /// A table's row count differs.
    RowCount,
    /// A table's content checksum differs (rows that could not be located to keys: tables
    /// without a primary key).
    Content,
    /// A row on the old side whose key is not on the new.
    RowMissing,
    /// A row on the new side whose key is not on the old.
    RowExtra,
    /// A row whose key is on both sides, with different values.
    RowChanged,
    /// A sequence's value differs: left behind, its next value collides with existing keys.
    Sequence,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Missing => "missing",
            Class::Extra => "extra",
            Class::Changed => "changed",
            Class::RowCount => "row-count",
            Class::Content => "content",
            Class::RowMissing => "row-missing",
            Class::RowExtra => "row-extra",
            Class::RowChanged => "row-changed",
            Class::Sequence => "sequence",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    pub kind: ObjectKind,
    /// The object's qualified name (for rows: the table's).
    pub name: String,
    /// For rows: the key's column names and values (as text; `None` is NULL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<(String, Option<String>)>>,
    /// What the old side has, and the new (definitions, counts, values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

impl Finding {
    pub fn new(class: Class, kind: ObjectKind, name: impl Into<String>) -> Finding {
        Finding {
            class,
            kind,
            name: name.into(),
            key: None,
            old: None,
            new: None,
        }
    }
    pub fn values(mut self, old: Option<String>, new: Option<String>) -> Finding {
        self.old = old;
        self.new = new;
        self
    }
    /// `(aid)=(42)`, as PostgreSQL writes a key in its own messages.
    pub fn key_text(&self) -> Option<String> {
        let key = self.key.as_ref()?;
        let names: Vec<&str> = key.iter().map(|(n, _)| n.as_str()).collect();
        let values: Vec<&str> = key
            .iter()
            .map(|(_, v)| v.as_deref().unwrap_or("NULL"))
            .collect();
        Some(format!("({})=({})", names.join(", "), values.join(", ")))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `PostgreSQL`, `MariaDB`, `SQLite` (empty in reports written before there was a choice:
    /// PostgreSQL).
    #[serde(default)]
    pub engine: String,
    /// What was compared, as displayed (never with a password).
    pub old: String,
    pub new: String,
    pub old_version: String,
    pub new_version: String,
    pub tables: usize,
    /// Rows on the old side, in the tables whose content was compared.
    pub rows: u64,
    pub sequences: usize,
    pub objects: usize,
    pub findings: Vec<Finding>,
    /// Differences that are not data differences (a major-version upgrade's spellings).
    pub notes: Vec<String>,
    /// What was not compared, each a short phrase (`large objects (pg_largeobject)`, `rows of
    /// tables without a primary key (counted and summed, not located to rows): nokey`): the
    /// verdict holds for the rest only. Empty in reports written before rehost listed it.
    #[serde(default)]
    pub not_compared: Vec<String>,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if self.findings.is_empty() {
            EXIT_EQUAL
        } else {
            EXIT_DIFFERENT
        }
    }

    /// The verdict line: what was compared, with what differs, then what was not compared.
    pub fn summary(&self) -> String {
        let mut line = self.compared();
        if !self.not_compared.is_empty() {
            line.push_str("; not compared: ");
            line.push_str(&self.not_compared.join("; "));
        }
        line
    }

    fn compared(&self) -> String {
        if self.findings.is_empty() {
            format!(
                "equal: {} tables ({} rows), {} sequences, {} schema objects",
                self.tables, self.rows, self.sequences, self.objects
            )
        } else {
            let mut counts: std::collections::BTreeMap<Class, usize> = Default::default();
            for f in &self.findings {
                *counts.entry(f.class).or_default() += 1;
            }
            let parts: Vec<String> = counts
                .iter()
                .map(|(c, n)| format!("{n} {}", c.name()))
                .collect();
            format!(
                "different: {} (compared {} tables, {} rows, {} sequences, {} schema objects)",
                parts.join(", "),
                self.tables,
                self.rows,
                self.sequences,
                self.objects
            )
        }
    }

    pub fn render_human(&self, w: &mut dyn Write) -> io::Result<()> {
        let engine = engine_name(&self.engine);
        writeln!(
            w,
            "old: {} ({engine} {})",
            escape(&self.old),
            escape(&self.old_version)
        )?;
        writeln!(
            w,
            "new: {} ({engine} {})",
            escape(&self.new),
            escape(&self.new_version)
        )?;
        for f in &self.findings {
            let mut line = format!(
                "{:<12} {} {}",
                f.class.name(),
                f.kind.name(),
                escape(&f.name)
            );
            if let Some(k) = f.key_text() {
                line.push_str(&format!(" key {}", escape(&k)));
            }
            match (&f.old, &f.new) {
                (Some(o), Some(n)) => {
                    line.push_str(&format!(": old {} | new {}", escape(o), escape(n)))
                }
                (Some(o), None) => line.push_str(&format!(": {}", escape(o))),
                (None, Some(n)) => line.push_str(&format!(": {}", escape(n))),
                (None, None) => {}
            }
            writeln!(w, "{line}")?;
        }
        for n in &self.notes {
            writeln!(w, "note: {}", escape(n))?;
        }
        writeln!(w, "{}", escape(&self.summary()))
    }

    pub fn render_json(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut doc = serde_json::to_value(self).map_err(io::Error::other)?;
        doc["equal"] = self.findings.is_empty().into();
        doc["summary"] = self.summary().into();
        serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
        writeln!(w)
    }
}

/// The engine as reports name it; empty (reports of before the choice) is PostgreSQL.
pub(crate) fn engine_name(engine: &str) -> String {
    if engine.is_empty() || engine == "postgresql" {
        "PostgreSQL".into()
    } else {
        escape(engine)
    }
}
