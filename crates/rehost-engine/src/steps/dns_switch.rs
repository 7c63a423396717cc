//! `dns-switch`: one TSIG-signed DNS UPDATE at the zone's primary that replaces exactly a
//! `[[names]]` entry's `old` value with its `new` one (rehost-dns `update`). Done only when the
//! primary, asked afterwards, serves exactly the new value, or served it already (nothing
//! sent). The journal keeps the zone, the server, the key's name (never its secret), both
//! values and whether the server's answer was signed (`StepData::DnsSwitch`).

use super::{Executor, Need};
use crate::EngineError;
use crate::exec::{Ctx, Outcome};
use rehost_dns::Kind;
use rehost_dns::update::{Change, Switched};
use rehost_journal::step_data::{DnsSwitchData, STEP_DATA_VERSION, StepData};
use rehost_plan::{Step, StepKind};
use std::time::Duration;

pub(super) static EXECUTOR: Executor = Executor {
    kind: "dns-switch",
    rollback: Some(rollback),
    execute,
    needs: |_, step| match &step.kind {
        StepKind::DnsSwitch { server, .. } => vec![Need::Endpoint {
            key: "server",
            value: server,
        }],
        _ => Vec::new(),
    },
};

/// How long each question and the update may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The new records' TTL when neither the step nor the name gives one.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

fn failed(detail: String) -> Outcome {
    Outcome::Failed {
        detail,
        exit_code: None,
        data: None,
    }
}

/// What a switch works with: the change, the primary, the key and the zone.
type Prepared = (
    Change,
    std::net::SocketAddr,
    rehost_dns::update::TsigKey,
    rehost_dns::Name,
);

fn prepare(ctx: &Ctx, step: &Step) -> Result<Prepared, String> {
    let StepKind::DnsSwitch {
        name: id,
        server,
        tsig_key,
        zone,
        ttl,
    } = &step.kind
    else {
        unreachable!("the registry hands `dns-switch` its own steps")
    };
    let decl = ctx
        .plan
        .name_decl(id)
        .ok_or_else(|| format!("the plan declares no name `{id}`"))?;
    let kind = Kind::parse(&decl.record)?;
    let name = rehost_dns::fqdn(&decl.name)?;
    let value = |v: &Option<String>, key: &str| -> Result<Vec<String>, String> {
        let v = v
            .as_deref()
            .ok_or_else(|| format!("name `{id}` has no `{key}` value"))?;
        Ok(vec![kind.normalize(v)?])
    };
    let ttl = ttl.or(decl.lowered_ttl).or(decl.ttl).unwrap_or(DEFAULT_TTL);
    let change = Change {
        name: name.clone(),
        kind,
        old: value(&decl.old, "old")?,
        new: value(&decl.new, "new")?,
        ttl: u32::try_from(ttl.as_secs()).map_err(|_| format!("a TTL of {ttl:?} is too long"))?,
    };
    let server = rehost_dns::parse_server(&ctx.endpoint("server", server)?)?;
    let key = rehost_dns::update::read_key_file(std::path::Path::new(tsig_key))?;
    let zone = match zone {
        Some(z) => rehost_dns::fqdn(z)?,
        None => rehost_dns::update::zone_of(server, &name, TIMEOUT)?,
    };
    Ok((change, server, key, zone))
}

/// The rollback: the reverse update (new back to old, with the same TTL and key), done only
/// when the primary serves exactly the old value afterwards; already old is done, nothing sent.
fn rollback(ctx: &mut Ctx, step: &Step) -> Result<String, String> {
    let (change, server, key, zone) = prepare(ctx, step)?;
    let back = Change {
        old: change.new.clone(),
        new: change.old.clone(),
        ..change
    };
    let what = format!("{} {}", back.name, back.kind.name());
    let done = match rehost_dns::update::switch(server, &zone, &back, &key, TIMEOUT)? {
        Switched::AlreadyNew => format!(
            "{what}: the primary {server} served the old value {} already; nothing was sent",
            back.new.join(", ")
        ),
        Switched::Switched { answer_signed } => format!(
            "{what}: switched back from {} to {} at the primary {server}, zone {zone}, with TSIG \
             key {}; its answer was {}; asked afterwards, it serves exactly the old value",
            back.old.join(", "),
            back.new.join(", "),
            key.name,
            if answer_signed {
                "signed with the key (checked)"
            } else {
                "not signed with the key (not trusted: the question afterwards decided)"
            },
        ),
    };
    let _ = ctx.output.write_all(format!("{done}\n").as_bytes());
    Ok(done)
}

fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    let StepKind::DnsSwitch { name: id, .. } = &step.kind else {
        unreachable!("the registry hands `dns-switch` its own steps")
    };
    let (change, server, key, zone) = match prepare(ctx, step) {
        Ok(p) => p,
        Err(e) => return Ok(failed(e)),
    };
    let outcome = match rehost_dns::update::switch(server, &zone, &change, &key, TIMEOUT) {
        Ok(o) => o,
        Err(e) => return Ok(failed(e)),
    };
    let (label, signed) = match outcome {
        Switched::Switched { answer_signed } => ("switched", answer_signed),
        Switched::AlreadyNew => ("already_new", false),
    };
    let what = format!("{} {}", change.name, change.kind.name());
    let detail = match outcome {
        Switched::AlreadyNew => format!(
            "{what}: the primary {server} served {} already; nothing was sent",
            change.new.join(", ")
        ),
        Switched::Switched { answer_signed } => format!(
            "{what}: switched from {} to {} (TTL {} s) at the primary {server}, zone {zone}, \
             with TSIG key {}; its answer was {}; asked afterwards, it serves exactly the new \
             value. Other servers and caches were not asked (a `dns-propagated` step does)",
            change.old.join(", "),
            change.new.join(", "),
            change.ttl,
            key.name,
            if answer_signed {
                "signed with the key (checked)"
            } else {
                "not signed with the key (not trusted: the question afterwards decided)"
            },
        ),
    };
    let _ = ctx.output.write_all(format!("{detail}\n").as_bytes());
    Ok(Outcome::Done {
        detail: Some(detail),
        exit_code: Some(0),
        confirmed_by: None,
        data: Some(StepData::DnsSwitch(Box::new(DnsSwitchData {
            v: STEP_DATA_VERSION,
            id: id.clone(),
            name: change.name.to_string(),
            record: change.kind.name().into(),
            zone: zone.to_string(),
            server: server.to_string(),
            key: key.name.to_string(),
            old: change.old.clone(),
            new: change.new.clone(),
            ttl_s: change.ttl,
            outcome: label.into(),
            answer_signed: signed,
        }))),
    })
}
