//! Signing the journal's head at the end of `run` and `report`, and what is said about it: the
//! head digest to record in the change ticket, and, without a signature, what the hash chain
//! proves (consistency, not authenticity). The signing itself is `rehost_journal::signing`.

use crate::cli::SignArgs;
use crate::term::escape;
use rehost_journal::signing::{HmacKey, Keys, Signed};
use std::path::Path;

/// What the chain proves without a signature: said wherever the chain is spoken of.
pub const UNSIGNED: &str = "the hash chain proves consistency, not authenticity: the records and the files they name agree with each other, but anyone who can write the state directory could rewrite a record and recompute the chain";

/// The directory that holds every environment's state directory of the plan: a key inside it
/// is refused.
pub fn state_base(state_dir: &Path) -> &Path {
    state_dir.parent().unwrap_or(state_dir)
}

/// The keys `args` names, checked before anything runs: each outside the state directory, an
/// HMAC key read and of the right size and mode.
pub fn keys(args: &SignArgs, state_dir: &Path) -> Result<Keys, String> {
    let base = state_base(state_dir);
    let keys = Keys {
        ssh: args.sign_key.clone(),
        hmac: args
            .hmac_key
            .as_deref()
            .map(|p| HmacKey::load(p, base))
            .transpose()
            .map_err(|e| e.to_string())?,
    };
    keys.check(base).map_err(|e| e.to_string())?;
    Ok(keys)
}

/// The command that checks the journal against `head` later, as the operator would type it.
pub fn verify_command(plan: &Path, env: Option<&str>, state: Option<&Path>, head: &str) -> String {
    let quote = rehost_host::ssh::sh_word;
    let mut cmd = format!("rehost status {}", quote(&plan.to_string_lossy()));
    if let Some(e) = env {
        cmd.push_str(&format!(" --env {}", quote(e)));
    }
    if let Some(s) = state {
        cmd.push_str(&format!(" --state {}", quote(&s.to_string_lossy())));
    }
    cmd.push_str(&format!(" --verify --head {head}"));
    cmd
}

/// How a signature is named in output: which keys, in which files.
pub fn describe(s: &Signed) -> String {
    use rehost_journal::signing::{MAC_FILE, SSH_SIG_FILE};
    let mut parts = Vec::new();
    if let Some(k) = &s.ssh_key {
        parts.push(format!(
            "SSH signature with {} in {SSH_SIG_FILE}",
            escape(k)
        ));
    }
    if let Some(k) = &s.hmac_key {
        parts.push(format!("HMAC with the key {k} in {MAC_FILE}"));
    }
    parts.join(", ")
}

/// Signs the head of the journal in `state_dir` with `keys` when there are any, and prints the
/// head (to record in the change ticket) with what vouches for it. `Ok(false)` when there is
/// no journal to speak of; `Err` when signing failed, with the message to print.
pub fn finish(
    state_dir: &Path,
    env: &str,
    keys: &Keys,
    verify: &dyn Fn(&str) -> String,
    json: bool,
) -> Result<bool, String> {
    let fail = |m: String| m;
    let sdir = match rehost_engine::open_state_dir(state_dir, false) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(false),
        Err(e) => return Err(fail(e.to_string())),
    };
    let signed = if keys.is_empty() {
        None
    } else {
        match rehost_journal::signing::sign(&sdir, env, keys) {
            Ok(s) => Some(s),
            Err(rehost_journal::signing::SignError::NoJournal { .. }) => return Ok(false),
            Err(e) => {
                return Err(fail(format!(
                    "{e}; the journal's head is not signed (sign it later with `rehost report` and the same key)"
                )));
            }
        }
    };
    let (head, records) = match &signed {
        Some(s) => (s.head.clone(), s.records),
        None => match rehost_journal::signing::head_of(&sdir) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(false),
            Err(e) => return Err(fail(e.to_string())),
        },
    };
    let check = verify(&head);
    if json {
        let out = serde_json::json!({
            "event": "journal_head",
            "head": head,
            "records": records,
            "signed": signed,
            "verify": check,
            "note": if signed.is_none() { Some(UNSIGNED) } else { None },
        });
        println!("{out}");
        return Ok(true);
    }
    println!(
        "journal head {head} ({records} records): record it in the change ticket; `{}` shows later whether the journal changed since",
        escape(&check)
    );
    match &signed {
        Some(s) => println!(
            "signed: {} (check it with `rehost status --verify --allowed-signers FILE` or `--hmac-key FILE`)",
            describe(s)
        ),
        None => println!(
            "not signed: {UNSIGNED}; keep the head above outside it, or sign with --sign-key or --hmac-key"
        ),
    }
    Ok(true)
}
