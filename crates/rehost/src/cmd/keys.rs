//! `rehost keys scan` and `rehost keys compare`: key material found where it lives (the agent
//! scans an ssh host), shown by its public facts only, and matched between two systems by
//! fingerprint (docs/keys.md).

use crate::cli::{KeysCompareArgs, KeysHostOptions, KeysScanArgs, TreeOptions};
use crate::exit;
use crate::term::escape;
use crate::tree_view::{Place, place};
use rehost_keys::{Comparison, Found, Scan, Verdict};
use serde_json::json;
use std::io::Write;

/// The host a location names and the path on it, opened: this machine (name empty) for a
/// `PATH`, a plan host (a local one with a root searched inside its root, its paths shown as the
/// plan's) or an ssh host for `HOST:PATH` and `ssh://`. Shared by `keys scan` and `refs scan`.
pub(super) fn open_location(
    location: &str,
    o: &KeysHostOptions,
) -> Result<(String, Box<dyn rehost_host::Host>, String), String> {
    let t = TreeOptions {
        exclude: Vec::new(),
        threads: None,
        ssh_config: o.ssh_config.clone(),
        plan: o.plan.clone(),
        env: o.env.clone(),
    };
    crate::signals::install();
    if let Ok(rehost_host::Location::Remote { host, path, .. }) =
        rehost_host::Location::parse(location)
        && let Some(target) = crate::tree_view::plan_target(&host, &t)?
        && let rehost_host::HostSpec::Local { root: Some(root) } =
            rehost_engine::host_spec(target, o.ssh_config.as_deref())
    {
        let h = rehost_host::LocalHost::new(&host, Some(root));
        return Ok((host, Box::new(h), path));
    }
    Ok(match place(location, &t)? {
        Place::Here(p) => {
            let p = std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            (
                String::new(),
                Box::new(rehost_host::LocalHost::new("local", None)),
                p.to_string_lossy().into_owned(),
            )
        }
        Place::Remote { host, path } => (host.name().to_owned(), host, path),
    })
}

/// Scans one location, on whichever host it names.
/// Key files are digested under `digest_key`: one for all the locations of one command, so
/// that they match between its locations and nowhere else.
fn scan_location(
    location: &str,
    o: &KeysHostOptions,
    digest_key: &rehost_keys::DigestKey,
    passwords: &[rehost_keys::Password],
    cache: bool,
) -> Result<Scan, String> {
    let (_, host, path) = open_location(location, o)?;
    let mut scan = rehost_host::scan_keys_cached(
        &*host,
        &[&path],
        Some(digest_key),
        passwords,
        cache,
        &crate::signals::CANCEL,
    )
    .map_err(|e| e.to_string())?;
    if crate::signals::cancelled() {
        return Err("interrupted".into());
    }
    scan.base = path;
    Ok(scan)
}

/// The passwords of `--password-file` (none without one): `rehost_host::read_password_file`.
fn passwords(file: Option<&std::path::Path>) -> Result<Vec<rehost_keys::Password>, String> {
    file.map_or(Ok(Vec::new()), rehost_host::read_password_file)
}

fn owner(f: &Found) -> String {
    format!("{}:{} {:04o}", f.uid, f.gid, f.mode)
}

fn key_line(f: &Found) -> String {
    format!(
        "{}  {}  {}  {}  {}",
        escape(&f.path),
        f.key.kind.name(),
        escape(&f.key.algorithm_and_size()),
        escape(
            &f.key
                .fingerprint()
                .unwrap_or_else(|| "fingerprint unknown".into())
        ),
        owner(f)
    )
}

/// A fresh key for one command's key file digests.
fn digest_key() -> Result<rehost_keys::DigestKey, i32> {
    rehost_host::fresh_digest_key().map_err(|e| {
        crate::term::error(&format!(
            "failed to draw a key for key file digests from /dev/urandom: {e}"
        ));
        exit::TROUBLE
    })
}

/// `keys scan --json`: each location's scan and the exit code.
#[derive(serde::Serialize)]
struct ScanDoc<'a> {
    scans: Vec<ScanOut<'a>>,
    exit_code: i32,
}

/// One location's scan as `--json` shows it.
struct ScanOut<'a> {
    location: &'a str,
    scan: &'a Scan,
    private: rehost_keys::PrivateKeys<'a>,
}

impl serde::Serialize for ScanOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let scan = self.scan;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("location", self.location)?;
        m.serialize_entry("files", &scan.files)?;
        m.serialize_entry("read", &scan.read)?;
        m.serialize_entry("cached", &scan.cached)?;
        m.serialize_entry("notes", &scan.notes)?;
        let keys: Vec<KeyOut<'_>> = scan
            .found
            .iter()
            .map(|f| KeyOut {
                found: f,
                problems: f.problems(),
                warnings: f.warnings(),
                private_key: f.key.certificate.is_some().then(|| self.private.of(&f.key)),
            })
            .collect();
        m.serialize_entry("keys", &keys)?;
        m.serialize_entry("errors", &scan.errors)?;
        m.end()
    }
}

/// One finding as `--json` shows it: the finding's fields, what is wrong with it, and for a
/// certificate where its private key is on the host (`null` where it is not).
#[derive(serde::Serialize)]
struct KeyOut<'a> {
    #[serde(flatten)]
    found: &'a Found,
    problems: Vec<String>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<Option<&'a str>>,
}

pub fn scan(args: &KeysScanArgs) -> i32 {
    let key = match digest_key() {
        Ok(k) => k,
        Err(code) => return code,
    };
    let passwords = match passwords(args.password_file.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    };
    // The locations scanned side by side (each its own walk, host session and cache): a small
    // tree's start and end no longer leave cores idle while a big one waits its turn.
    let results = super::side_by_side(&args.locations, |loc| {
        scan_location(loc, &args.hosts, &key, &passwords, !args.no_cache)
    });
    let mut scans = Vec::new();
    for (loc, result) in args.locations.iter().zip(results) {
        match result {
            Ok(s) => scans.push((loc.clone(), s)),
            Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
            Err(e) => {
                crate::term::error(&format!("failed to scan {loc} for keys: {e}"));
                return exit::TROUBLE;
            }
        }
    }
    let problems = scans
        .iter()
        .flat_map(|(_, s)| s.found.iter())
        .any(|f| !f.problems().is_empty());
    let errors = scans.iter().any(|(_, s)| !s.errors.is_empty());
    let code = if problems {
        exit::FINDINGS
    } else if errors {
        exit::TROUBLE
    } else {
        exit::OK
    };
    // Through a buffer: stdout is line-buffered, a write per line otherwise (flushed on drop).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.format == crate::cli::KeysFormat::Csv {
        let _ = inventory_csv(&mut out, &scans);
        return code;
    }
    if args.json || args.format == crate::cli::KeysFormat::Json {
        // Serialized as it is written, not built as a `serde_json::Value` first (that tree of
        // maps was most of a cached scan's serial tail: 2,316 keys under /usr).
        let doc = ScanDoc {
            scans: scans
                .iter()
                .map(|(location, scan)| ScanOut {
                    location,
                    scan,
                    private: scan.private_keys(),
                })
                .collect(),
            exit_code: code,
        };
        let _ = serde_json::to_writer(&mut out, &doc);
        let _ = writeln!(out);
        return code;
    }
    for (loc, s) in &scans {
        let private = s.private_keys();
        let _ = writeln!(out, "{}:", escape(loc));
        for f in &s.found {
            let _ = writeln!(out, "  {}", key_line(f));
            if f.key.encrypted {
                let _ = writeln!(out, "    protected by a passphrase");
            }
            if let Some(why) = &f.key.unknown {
                let _ = writeln!(out, "    not identified: {}", escape(why));
            }
            if let Some(c) = &f.key.certificate {
                let _ = writeln!(
                    out,
                    "    subject {}, issuer {}, valid {} to {}; its private key: {}",
                    escape(&c.subject),
                    escape(&c.issuer),
                    c.not_before,
                    c.not_after,
                    private
                        .of(&f.key)
                        .map(escape)
                        .unwrap_or_else(|| "not found here".into())
                );
            }
            if let Some(l) = &f.key.luks {
                let _ = writeln!(
                    out,
                    "    LUKS{} UUID {}{}{}{}",
                    l.version,
                    escape(&l.uuid),
                    if l.label.is_empty() {
                        String::new()
                    } else {
                        format!(", label {}", escape(&l.label))
                    },
                    if l.tokens.is_empty() {
                        String::new()
                    } else {
                        format!(", tokens {}", escape(&l.tokens.join(" ")))
                    },
                    match l.checksum_ok {
                        Some(true) => ", header checksum matches",
                        _ => "",
                    }
                );
            }
            if let Some(c) = &f.key.crypttab {
                let _ = writeln!(
                    out,
                    "    line {}{}{}",
                    c.line,
                    if c.options.is_empty() {
                        String::new()
                    } else {
                        format!(", options {}", escape(&c.options))
                    },
                    match (c.key_file_found, &c.key_file_note) {
                        (Some(true), _) => ", its key file is on this host".to_owned(),
                        (_, Some(n)) => format!(", its key file: {}", escape(n)),
                        _ => String::new(),
                    }
                );
            }
            if let Some(r) = &f.key.reference {
                let _ = writeln!(
                    out,
                    "    line {}{}",
                    r.line,
                    match (r.found, &r.note) {
                        (_, Some(n)) => format!(", {}", escape(n)),
                        (Some(true), None) => ", found on this host".to_owned(),
                        _ => String::new(),
                    }
                );
            }
            if !f.used_by.is_empty() {
                let _ = writeln!(out, "    named by {}", escape(&f.used_by.join(", ")));
            }
            for p in f.problems() {
                let _ = writeln!(out, "    problem: {}", escape(&p));
            }
            for w in f.warnings() {
                let _ = writeln!(out, "    warning: {}", escape(&w));
            }
        }
        for e in &s.errors {
            let _ = writeln!(out, "  could not read: {}", escape(e));
        }
        for n in &s.notes {
            let _ = writeln!(out, "  note: {}", escape(n));
        }
        let _ = writeln!(
            out,
            "  {} key{} in {} file{} read of {} examined{}",
            s.found.len(),
            if s.found.len() == 1 { "" } else { "s" },
            s.read,
            if s.read == 1 { "" } else { "s" },
            s.files,
            cached_note(s)
        );
    }
    code
}

/// The columns of `keys scan --format csv`.
const CSV_COLUMNS: &[&str] = &[
    "location",
    "path",
    "kind",
    "algorithm",
    "fingerprint",
    "used_by",
    "not_after",
    "uid",
    "gid",
    "mode",
    "encrypted",
    "problems",
    "warnings",
];

/// The inventory (BSI CON.1): a header, then one row per key of each scan (RFC 4180: fields
/// with a comma, quote or line end quoted). Text from the host passes the one escaper first,
/// and a field that a spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) is
/// prefixed with `'`.
fn inventory_csv(out: &mut dyn Write, scans: &[(String, Scan)]) -> std::io::Result<()> {
    writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    for (loc, s) in scans {
        for f in &s.found {
            let k = &f.key;
            let row = [
                loc.clone(),
                f.path.clone(),
                k.kind.name().to_owned(),
                k.algorithm_and_size(),
                k.fingerprint().unwrap_or_default(),
                f.used_by.join(" "),
                k.certificate
                    .as_ref()
                    .map(|c| c.not_after.clone())
                    .unwrap_or_default(),
                f.uid.to_string(),
                f.gid.to_string(),
                format!("{:04o}", f.mode),
                k.encrypted.to_string(),
                f.problems().join("; "),
                f.warnings().join("; "),
            ];
            let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            writeln!(out, "{}", cells.join(","))?;
        }
    }
    Ok(())
}

/// One CSV field: escaped for a terminal, kept from being a spreadsheet formula, quoted where
/// RFC 4180 wants it.
fn csv_cell(text: &str) -> String {
    let mut t = escape(text);
    if t.starts_with(['=', '+', '-', '@']) {
        t.insert(0, '\'');
    }
    if t.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t
    }
}

/// How many of the files examined the cache let the scan leave unopened, if any.
fn cached_note(s: &Scan) -> String {
    if s.cached == 0 {
        return String::new();
    }
    format!(
        "; {} of them not opened, unchanged since a scan found nothing in them or only certificates and public keys, which it kept (--no-cache opens every file)",
        s.cached
    )
}

pub fn compare(args: &KeysCompareArgs) -> i32 {
    let key = match digest_key() {
        Ok(k) => k,
        Err(code) => return code,
    };
    let passwords = match passwords(args.password_file.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            crate::term::error(&e);
            return exit::TROUBLE;
        }
    };
    let mut sides = Vec::new();
    for loc in [&args.old, &args.new] {
        match scan_location(loc, &args.hosts, &key, &passwords, !args.no_cache) {
            Ok(s) => {
                for n in &s.notes {
                    eprintln!("rehost: note: {}: {}", escape(loc), escape(n));
                }
                sides.push(s)
            }
            Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
            Err(e) => {
                crate::term::error(&format!("failed to scan {loc} for keys: {e}"));
                return exit::TROUBLE;
            }
        }
    }
    let c = rehost_keys::compare(&sides[0], &sides[1]);
    // Through a buffer: stdout is line-buffered, a write per line otherwise (flushed on drop).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.json {
        let mut v = serde_json::to_value(&c).unwrap_or_default();
        v["old"] = json!(args.old);
        v["new"] = json!(args.new);
        let _ = writeln!(out, "{v}");
        return c.exit_code;
    }
    let _ = render(&mut out, &c);
    c.exit_code
}

/// The comparison for a terminal (also a step's output).
pub fn render(out: &mut dyn Write, c: &Comparison) -> std::io::Result<()> {
    let paths = |p: &[String]| p.iter().map(|s| escape(s)).collect::<Vec<_>>().join(", ");
    for k in &c.keys {
        let what = escape(&format!(
            "{} {} {}",
            k.kind.name(),
            k.algorithm,
            k.fingerprint.as_deref().unwrap_or("fingerprint unknown")
        ));
        match k.verdict {
            Verdict::Present => writeln!(out, "present  {}  {what}", paths(&k.old))?,
            Verdict::Moved => writeln!(
                out,
                "moved    {} -> {}  {what}",
                paths(&k.old),
                paths(&k.new)
            )?,
            Verdict::Missing => writeln!(out, "missing  {}  {what}", paths(&k.old))?,
            Verdict::Extra => writeln!(out, "extra    {}  {what}", paths(&k.new))?,
            Verdict::Unidentified => writeln!(
                out,
                "unidentified  {}  {what}: its public half is unknown (encrypted, nothing of the same name beside it)",
                paths(if k.old.is_empty() { &k.new } else { &k.old })
            )?,
        }
    }
    for p in &c.problems {
        writeln!(
            out,
            "problem ({})  {}: {}",
            p.side,
            escape(&p.path),
            escape(&p.what)
        )?;
    }
    for w in &c.warnings {
        writeln!(
            out,
            "warning ({})  {}: {}",
            w.side,
            escape(&w.path),
            escape(&w.what)
        )?;
    }
    for e in &c.errors {
        writeln!(out, "could not read: {}", escape(e))?;
    }
    writeln!(
        out,
        "{} present, {} moved, {} missing, {} extra, {} unidentified, {} problem{} on the new side",
        c.count(Verdict::Present),
        c.count(Verdict::Moved),
        c.count(Verdict::Missing),
        c.count(Verdict::Extra),
        c.count(Verdict::Unidentified),
        c.problems.iter().filter(|p| p.side == "new").count(),
        if c.problems.iter().filter(|p| p.side == "new").count() == 1 {
            ""
        } else {
            "s"
        }
    )
}
