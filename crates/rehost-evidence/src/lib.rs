//! The evidence documents of a migration: the concept for sign-off (before) and the report of
//! a run (after), built as one document model ([`doc`]) and rendered as a self-contained HTML
//! page, Markdown for tickets and wikis, and JSON.
//!
//! Text from plans, hosts and files is escaped by the renderers; commands appear only through
//! `rehost_plan::redact`. The report reads a state directory without changing it and is
//! deterministic: the same state directory gives the same bytes.

pub mod concept;
pub mod doc;
pub mod fleet;
pub mod kompendium;
pub mod oscal;
pub mod rehearsed;
pub mod report;
pub mod survey_map;

pub use doc::{Block, Document, Level};
