//! The survey's dependency map in the concept: the inventory a plan names in `[survey]
//! inventory` (read, bounded and checked by the binary), drawn by `rehost_survey::map::svg`,
//! the only place the SVG markup comes from, and named by its path and digest so that the
//! reader knows which inventory it is.

use serde::Serialize;

/// The map of one inventory, with where the inventory came from.
#[derive(Clone, Debug, Serialize)]
pub struct DependencyMap {
    /// The inventory file as the plan names it.
    pub path: String,
    /// BLAKE3 of the inventory file's bytes.
    pub digest: String,
    /// The surveyed host and when, as the inventory says.
    pub host: String,
    pub taken_at: String,
    pub services: usize,
    /// The SVG, drawn from the inventory here: private, so no other markup reaches a page
    /// through this block. Not in the JSON form (where it is, is).
    #[serde(skip)]
    svg: String,
}

impl DependencyMap {
    /// The map of `inv`, read from `path` (as the plan writes it) whose bytes hash to `digest`.
    pub fn of(inv: &rehost_survey::Inventory, path: &str, digest: &str) -> DependencyMap {
        DependencyMap {
            path: path.to_owned(),
            digest: digest.to_owned(),
            host: inv.host.clone(),
            taken_at: inv.taken_at.clone(),
            services: inv.services.len(),
            svg: rehost_survey::map::svg(inv),
        }
    }

    /// The SVG element, standalone and inline-safe (map.rs: no script, no style sheet, no
    /// external reference, every string XML-encoded after the one escaper).
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// What the map shows and which inventory it is; text for the document model (the
    /// renderer escapes it).
    pub fn caption(&self) -> String {
        format!(
            "Dependency map of {} surveyed at {} ({} services: services → data → keys → names → clients), drawn from the inventory `{}`, BLAKE3 `{}`.",
            rehost_plan::escape_control(&self.host),
            rehost_plan::escape_control(&self.taken_at),
            self.services,
            rehost_plan::escape_control(&self.path),
            self.digest
        )
    }
}
