//! The typed inventory of a database: what the comparison works on. Built by
//! [`crate::postgres`] from the server's catalogs and aggregates; plain data, serialisable as
//! evidence.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// `postgresql`.
    pub engine: String,
    /// The server's version, e.g. `15.14`.
    pub server_version: String,
    pub database: String,
    /// The database's encoding as the server spells it (`UTF8`).
    pub encoding: String,
    /// The database's default collation (`LC_COLLATE`) and character classification.
    pub collate: String,
    pub ctype: String,
    /// Tables by qualified name (`schema.table`, quoted where SQL needs it).
    pub tables: BTreeMap<String, Table>,
    /// Indexes, constraints, views, functions, triggers, extensions: by kind and name.
    pub objects: Vec<SchemaObject>,
    /// Sequences by qualified name.
    pub sequences: BTreeMap<String, Sequence>,
    /// What this side could not be asked (the grant tables, when the verifying user may not
    /// read them), in the words of the report's scope ([`crate::Report::not_compared`]).
    #[serde(default)]
    pub not_compared: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// Rows and the order-independent checksum of the whole table (`None` when content was
    /// not compared, e.g. a table left out with `--table`).
    pub content: Option<Content>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub rows: u64,
    /// The sum of every row's 64-bit digest, as the server's `numeric` prints it.
    pub checksum: String,
    /// The same per slice of the key space; empty for tables without a primary key.
    pub slices: Vec<SliceSum>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// As `format_type` writes it: `character varying(20)`, `numeric(12,2)`, `integer[]`.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// A collation other than the type's default, if the column has one.
    pub collation: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Database,
    Table,
    Column,
    Constraint,
    Index,
    View,
    MaterializedView,
    Function,
    Trigger,
    Extension,
    Sequence,
    /// Who owns a relation, schema or function.
    Owner,
    /// What a relation, schema or function grants beyond its owner's defaults, or revokes.
    Privileges,
    /// A role the database's objects name (owner, grantee, or member of one): its attributes
    /// and memberships, never its password.
    Role,
    /// A MariaDB/MySQL account (`user`@`host`) the database's grants, definers or roles name:
    /// its authentication plugin, default role, limits and TLS requirements, never its
    /// password or hash.
    Account,
    Row,
}

impl ObjectKind {
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Database => "database",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Extension => "extension",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Owner => "owner",
            ObjectKind::Privileges => "privileges",
            ObjectKind::Role => "role",
            ObjectKind::Account => "account",
            ObjectKind::Row => "row",
        }
    }
}

/// A schema object compared by its definition as the server prints it
/// (`pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_viewdef`, …).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaObject {
    pub kind: ObjectKind,
    /// Qualified name; constraints and triggers as `table.name`.
    pub name: String,
    pub definition: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// `None` when `nextval` was never called.
    pub last_value: Option<i64>,
    pub data_type: String,
    pub increment: i64,
}

/// A part of a table's key space, the same on both sides.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slice {
    /// The whole table.
    All,
    /// An integer primary key in `lo..hi` (`hi` excluded).
    KeyRange { lo: i64, hi: i64 },
    /// Rows whose key hashes (`hashtext` of the key's text) to `residue` modulo `modulus`.
    Hash { modulus: u32, residue: u32 },
}

impl std::fmt::Display for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slice::All => f.write_str("all rows"),
            Slice::KeyRange { lo, hi } => write!(f, "keys {lo}..{hi}"),
            Slice::Hash { modulus, residue } => write!(f, "key hash {residue} mod {modulus}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceSum {
    pub slice: Slice,
    pub rows: u64,
    pub checksum: String,
}

impl Inventory {
    pub fn object(&self, kind: ObjectKind, name: &str) -> Option<&SchemaObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
    }
}
