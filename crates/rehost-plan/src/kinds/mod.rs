//! Step kinds: the checklist's extension point.
//!
//! Each kind is one module here holding its [`KindSpec`]: its name as written in `do = "…"`,
//! the keys it takes beyond the common ones (each with its meaning and default), whether it is
//! idempotent unless the plan says otherwise, its reader, the effect it implies (for the M 2.319
//! lint), the plan items it refers to (checked by validation), its description for the concept,
//! and its documentation and example for the administrator. [`KINDS`] is the registry, one line
//! per kind. The engine has its executor (`rehost-engine/src/steps/`); a test there fails when
//! the two registries disagree. docs/plan.md's reference of the kinds is generated from the
//! specs by [`reference`]: a test here fails when it differs (`REHOST_BLESS=1 cargo test -p
//! rehost-plan kinds` rewrites it), and another when a documented default is not the reader's.

use crate::model::*;
use crate::read::{Reader, Tbl};
use crate::suggest::closest;

mod address_moved;
mod compat;
mod compat_sql;
mod dns_propagated;
mod dns_switch;
mod dns_ttl;
mod drain;
mod health;
mod manual;
mod retire_old;
mod run;
mod scan_refs;
mod start;
mod stop;
mod switch;
mod sync;
pub(crate) mod verify_config;
mod verify_db;
mod verify_files;
mod verify_keys;
mod verify_tree;
mod wait;
mod watch_old;

/// The registry: every step kind, one line each.
pub static KINDS: &[&KindSpec] = &[
    &manual::KIND,
    &run::KIND,
    &wait::KIND,
    &sync::KIND,
    &verify_tree::KIND,
    &watch_old::KIND,
    &retire_old::KIND,
    &stop::KIND,
    &start::KIND,
    &health::KIND,
    &verify_db::KIND,
    &verify_files::KIND,
    &verify_keys::KIND,
    &drain::KIND,
    &scan_refs::KIND,
    &address_moved::KIND,
    &switch::KIND,
    &dns_propagated::KIND,
    &dns_switch::KIND,
    &dns_ttl::KIND,
    &verify_config::KIND,
    &compat::KIND,
    &compat_sql::KIND,
];

/// Keys every step may have.
const COMMON_KEYS: &[&str] = &[
    "id",
    "title",
    "do",
    "host",
    "after",
    "timeout",
    "rollback",
    "idempotent",
    "needs_window",
    "on_failure",
    // Declared effects, for the M 2.319 lint.
    "stops",
    "starts",
    "drains",
    "transfers",
    "verifies",
    "lowers_ttl",
    "reconfigures",
    "switches",
    "backup",
];

/// One step kind: everything the plan crate knows of it.
pub struct KindSpec {
    pub name: &'static str,
    /// The keys it takes beyond the common ones, with their documentation.
    pub keys: &'static [Key],
    /// What a step of this kind does, for the plan reference (docs/plan.md's table of kinds is
    /// generated from it by [`reference()`]): Markdown, one paragraph.
    pub doc: &'static str,
    /// The kind's own lines of a step that uses it (after `id` and `do`), for the reference. A
    /// test reads each against `EXAMPLE_DECLARATIONS` and checks every key's default.
    pub example: &'static str,
    /// Whether running the step twice is harmless, unless the plan says otherwise.
    pub idempotent: bool,
    /// Whether it acts on a host (and so needs `host`).
    pub needs_host: bool,
    /// Whether its result proves data complete and correct (a verification the report's
    /// verdict rests on and lists with what it did not compare).
    pub verifies: bool,
    /// What undoes a step of this kind when the plan gives it no `rollback` command (the
    /// engine's executor of the kind does it; `steps::tests` checks the two agree), for the
    /// concept; `None`: only a `rollback` command undoes it.
    pub builtin_rollback: Option<&'static str>,
    read: fn(&mut Reader, &Tbl) -> Option<StepKind>,
    /// The effects the kind has by its nature, for the M 2.319 lint (besides the declared
    /// ones), each with the key that names what it acts on (where a finding about it points).
    pub implies: fn(&StepKind) -> Vec<(Effect, &'static str)>,
    /// The plan items the step refers to; validation checks each is declared.
    pub references: fn(&StepKind) -> Vec<Reference<'_>>,
    /// What the step does, for the concept and the report.
    pub describe: fn(&StepKind) -> Description,
}

/// A key of a step kind, for the plan reference.
pub struct Key {
    pub name: &'static str,
    /// Whether a step of the kind must have it. (Keys of which one is needed, such as `run`'s
    /// `command` and `argv`, say so in their `doc`.)
    pub required: bool,
    /// The value an absent key stands for, as TOML; a test checks the reader agrees.
    pub default: Option<&'static str>,
    /// What it means and how it is written: Markdown, a phrase.
    pub doc: &'static str,
}

/// A plan item a step refers to by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference<'a> {
    /// A `[[hosts]]` name the kind's own keys give (besides the step's `host`).
    Host(&'a str),
    DataSet(&'a str),
    Database(&'a str),
    /// A `[[keys]]` id.
    Key(&'a str),
    /// A `[[names]]` id (the DNS kinds'), and what its entry must give for this kind: `new`
    /// (its value after the switch, and servers to ask) or `lowered_ttl` (with `ttl` and
    /// authoritative servers), or `switch` (`old` and `new`; the step names the server).
    Name {
        id: &'a str,
        needs: &'static str,
    },
    /// A declared service, and the key its declaration must have for this kind: `stop`,
    /// `start`, `health` (a health command or ports), or `ports`.
    Service {
        id: &'a str,
        needs: &'static str,
    },
}

/// What a step does, as parts a renderer turns into text (the concept's table, the report's
/// timeline): no markup, no escaping, no redaction here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description(pub Vec<Part>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Plain words.
    Text(String),
    /// An id from the plan (a data set, a service), shown as code.
    Id(String),
    /// A command line as written in the plan: a renderer redacts it before showing it.
    Command(String),
}

impl Description {
    /// The command the step runs, if it runs one of its own.
    pub fn command(&self) -> Option<&str> {
        self.0.iter().find_map(|p| match p {
            Part::Command(c) => Some(c.as_str()),
            _ => None,
        })
    }
}

/// The registry entry of a step's kind: an exhaustive match, so that a new `StepKind` variant
/// without its module is a compile error here (and one missing from [`KINDS`] a test failure).
pub fn spec(kind: &StepKind) -> &'static KindSpec {
    match kind {
        StepKind::Manual { .. } => &manual::KIND,
        StepKind::Run { .. } => &run::KIND,
        StepKind::Wait { .. } => &wait::KIND,
        StepKind::Sync { .. } => &sync::KIND,
        StepKind::VerifyTree { .. } => &verify_tree::KIND,
        StepKind::WatchOld { .. } => &watch_old::KIND,
        StepKind::RetireOld { .. } => &retire_old::KIND,
        StepKind::Stop { .. } => &stop::KIND,
        StepKind::Start { .. } => &start::KIND,
        StepKind::Health { .. } => &health::KIND,
        StepKind::VerifyDb { .. } => &verify_db::KIND,
        StepKind::VerifyFiles { .. } => &verify_files::KIND,
        StepKind::VerifyKeys { .. } => &verify_keys::KIND,
        StepKind::Drain { .. } => &drain::KIND,
        StepKind::ScanRefs { .. } => &scan_refs::KIND,
        StepKind::AddressMoved { .. } => &address_moved::KIND,
        StepKind::Switch { .. } => &switch::KIND,
        StepKind::DnsPropagated { .. } => &dns_propagated::KIND,
        StepKind::DnsTtl { .. } => &dns_ttl::KIND,
        StepKind::DnsSwitch { .. } => &dns_switch::KIND,
        StepKind::VerifyConfig { .. } => &verify_config::KIND,
        StepKind::Compat { .. } => &compat::KIND,
        StepKind::CompatSql { .. } => &compat_sql::KIND,
    }
}

/// What a step of this kind does (see [`Description`]).
pub fn describe(kind: &StepKind) -> Description {
    (spec(kind).describe)(kind)
}

/// The plan items a step of this kind refers to.
pub fn references(kind: &StepKind) -> Vec<Reference<'_>> {
    (spec(kind).references)(kind)
}

pub(crate) fn read_step(r: &mut Reader, t: &Tbl, index: usize) -> Option<Step> {
    let id = r.required_str(t, "id");
    let mut t = Tbl {
        t: t.t,
        span: t.span.clone(),
        what: match &id {
            Some(id) => format!("step `{id}`"),
            None => t.what.clone(),
        },
    };
    let kind_name = r.required_str(&t, "do")?;
    let Some(spec) = KINDS.iter().find(|k| k.name == kind_name) else {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        r.err(
            "unknown-kind",
            t.span_of("do"),
            format!("{}: unknown step kind `{kind_name}`", t.what),
        )
        .help = Some(match closest(&kind_name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known kinds: {}", names.join(", ")),
        });
        return None;
    };
    let allowed: Vec<&str> = COMMON_KEYS
        .iter()
        .copied()
        .chain(spec.keys.iter().map(|k| k.name))
        .collect();
    r.check_keys(&t, &allowed);
    t.what = format!("{} ({})", t.what, spec.name);
    let kind = (spec.read)(r, &t);
    let host = r.str(&t, "host");
    if spec.needs_host && host.is_none() && t.get("host").is_none() {
        r.err(
            "missing-key",
            t.span.clone(),
            format!("{} needs `host`: which plan host it runs on", t.what),
        );
    }
    let mut effects = Vec::new();
    let mut effect_spans = Vec::new();
    for (key, make) in [
        ("stops", Effect::Stops as fn(String) -> Effect),
        ("starts", Effect::Starts),
        ("drains", Effect::Drains),
        ("transfers", Effect::Transfers),
        ("verifies", Effect::Verifies),
        ("lowers_ttl", Effect::LowersTtl),
        ("reconfigures", Effect::Reconfigures),
        ("switches", Effect::Switches),
    ] {
        for id in r.str_list_spanned(&t, key) {
            effects.push(make(id.value));
            effect_spans.push(id.span);
        }
    }
    if let Some(at) = r.str_spanned(&t, "backup") {
        effects.push(Effect::BacksUp(at.value));
        effect_spans.push(at.span);
    }
    for (e, key) in kind.as_ref().map(spec.implies).unwrap_or_default() {
        effects.push(e);
        effect_spans.push(t.span_of(key));
    }
    let step = Step {
        id: id?,
        index,
        title: r.str(&t, "title"),
        host,
        after: r.str_list_spanned(&t, "after"),
        timeout: r.duration(&t, "timeout"),
        rollback: r.command(&t, "rollback"),
        idempotent: r.bool(&t, "idempotent").unwrap_or(spec.idempotent),
        needs_window: r.bool(&t, "needs_window").unwrap_or(false),
        on_failure: r.on_failure(&t),
        effects,
        effect_spans,
        id_span: t.span_of("id"),
        span: t.span.clone(),
        kind: kind?,
    };
    Some(step)
}

/// The effects a kind has by its nature, for the M 2.319 lint (besides the declared ones).
pub fn implied_effects(kind: &StepKind) -> Vec<Effect> {
    (spec(kind).implies)(kind)
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

/// The service a kind acts on, if it is one of the service kinds.
pub fn service_of(kind: &StepKind) -> Option<&str> {
    references(kind).into_iter().find_map(|r| match r {
        Reference::Service { id, .. } => Some(id),
        _ => None,
    })
}

/// The declarations every kind's [`KindSpec::example`] refers to (data set `billing-data`,
/// service `billing-app`, database `billing-db`, key `billing-tls`, name `www`, hosts `old` and `new`), shown before the
/// examples in the reference.
pub const EXAMPLE_DECLARATIONS: &str = r#"[[data]]
id = "billing-data"
from = "old:/srv/billing"
to = "new:/srv/billing"

[[services]]
id = "billing-app"
host = "new"
stop = "systemctl stop billing"
start = "systemctl start billing"
health = "curl -fsS http://localhost:8080/health"
ports = [8080]

[[databases]]
id = "billing-db"
engine = "postgresql"
from = "old"
to = "new"
database = "billing"

[[keys]]
id = "billing-tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/billing.key"]

[[names]]
id = "www"
name = "www.example.org"
type = "A"
old = "192.0.2.10"
new = "203.0.113.20"
ttl = "1h"
lowered_ttl = "5m"
authoritative = ["198.51.100.53", "198.51.100.54"]
resolvers = ["10.0.0.53"]
"#;

/// docs/plan.md's reference of the step kinds, as Markdown: a table with every kind, each of
/// its keys with its default, and what it does; then an example step of each kind. Generated
/// from [`KINDS`] so that it cannot drift from them: a test fails when docs/plan.md's generated
/// section differs (`REHOST_BLESS=1 cargo test -p rehost-plan kinds` rewrites it).
pub fn reference() -> String {
    let mut out = String::from("| `do` | keys | what it does |\n|---|---|---|\n");
    for k in KINDS {
        let keys: Vec<String> = k
            .keys
            .iter()
            .map(|key| {
                let mut s = format!("`{}`", key.name);
                match (key.required, key.default) {
                    (true, _) => s.push_str(" (required)"),
                    (false, Some(d)) => s.push_str(&format!(" (default `{d}`)")),
                    (false, None) => {}
                }
                format!("{s}: {}", key.doc)
            })
            .collect();
        let idempotent = if k.idempotent {
            "Idempotent unless the step says `idempotent = false`."
        } else {
            "Not idempotent unless the step says `idempotent = true`."
        };
        let host = if k.needs_host { " Needs `host`." } else { "" };
        let undo = match k.builtin_rollback {
            Some(r) => format!(" Rolled back without a `rollback` command by {r}."),
            None => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} {idempotent}{host}{undo} |\n",
            k.name,
            keys.join("; "),
            k.doc
        ));
    }
    out.push_str("\nA step of each kind, with the declarations they refer to:\n\n```toml\n");
    out.push_str(EXAMPLE_DECLARATIONS);
    for k in KINDS {
        out.push_str(&format!(
            "\n[[steps]]\nid = \"{}-example\"\ndo = \"{}\"\n{}",
            k.name, k.name, k.example
        ));
        if !k.example.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str("```\n");
    out
}

#[cfg(test)]
mod tests;
