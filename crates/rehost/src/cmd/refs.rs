//! `rehost refs scan`: the lines of files that mention an address or a name, found where the
//! files are (the agent searches an ssh host), shown as `HOST:PATH:LINE: TEXT` (docs/refs.md).

use crate::cli::{KeysHostOptions, RefsScanArgs};
use crate::exit;
use crate::term::escape;
use rehost_host::RefsScan;
use rehost_refs::Needle;
use serde_json::json;
use std::io::Write;

/// Scans one location, on whichever host it names; returns the host's name as shown (empty
/// for this machine) and the scan.
fn scan_location(
    location: &str,
    o: &KeysHostOptions,
    needles: &[Needle],
) -> Result<(String, RefsScan), String> {
    let (name, host, path) = super::keys::open_location(location, o)?;
    let scan = rehost_host::scan_refs(&*host, &[&path], needles, &crate::signals::CANCEL)
        .map_err(|e| e.to_string())?;
    Ok((name, scan))
}

pub fn scan(args: &RefsScanArgs) -> i32 {
    let mut needles = Vec::new();
    for f in &args.find {
        match Needle::parse(f) {
            Ok(n) if !needles.contains(&n) => needles.push(n),
            Ok(_) => {}
            Err(e) => {
                crate::term::error(&format!("--find `{f}`: {e}"));
                return exit::TROUBLE;
            }
        }
    }
    if needles.len() > rehost_host::refs::MAX_NEEDLES {
        crate::term::error(&format!(
            "--find: at most {} addresses and names at once",
            rehost_host::refs::MAX_NEEDLES
        ));
        return exit::TROUBLE;
    }
    // The locations scanned side by side, as `keys scan` does (each its own walk and host
    // session): a slow host or a big tree no longer holds the others up; shown in the order
    // given.
    let results = super::side_by_side(&args.locations, |loc| {
        scan_location(loc, &args.hosts, &needles)
    });
    if crate::signals::cancelled() {
        return exit::INTERRUPTED;
    }
    let mut scans = Vec::new();
    for (loc, result) in args.locations.iter().zip(results) {
        match result {
            Ok((host, s)) => scans.push((loc.clone(), host, s)),
            Err(_) if crate::signals::cancelled() => return exit::INTERRUPTED,
            Err(e) => {
                crate::term::error(&format!("failed to scan {loc}: {e}"));
                return exit::TROUBLE;
            }
        }
    }
    let found: usize = scans.iter().map(|(_, _, s)| s.found.len()).sum();
    let incomplete = scans
        .iter()
        .any(|(_, _, s)| !s.errors.is_empty() || s.truncated);
    let code = if found > 0 {
        exit::FINDINGS
    } else if incomplete {
        exit::TROUBLE
    } else {
        exit::OK
    };
    let shown: Vec<String> = needles.iter().map(Needle::to_string).collect();
    // Through a buffer: stdout is line-buffered, a write per line otherwise (flushed on drop).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.json {
        let doc = json!({
            "find": shown,
            "scans": scans.iter().map(|(loc, host, s)| json!({
                "location": loc,
                "host": if host.is_empty() { None } else { Some(host) },
                "files": s.files,
                "bytes": s.bytes,
                "binary": s.binary,
                "symlinks": s.symlinks,
                "pseudo": s.pseudo,
                "truncated": s.truncated,
                "found": s.found.iter().map(|f| json!({
                    "path": f.path,
                    "line": f.line,
                    "find": f.needles.iter().map(|&i| &shown[i as usize]).collect::<Vec<_>>(),
                    "text": f.text,
                })).collect::<Vec<_>>(),
                "errors": s.errors,
            })).collect::<Vec<_>>(),
        });
        let _ = writeln!(out, "{doc}");
        return code;
    }
    for (_, host, s) in &scans {
        let prefix = if host.is_empty() {
            String::new()
        } else {
            format!("{}:", escape(host))
        };
        for f in &s.found {
            let _ = writeln!(
                out,
                "{prefix}{}:{}: {}",
                escape(&f.path),
                f.line,
                escape(&f.text)
            );
        }
    }
    drop(out);
    let mut err = std::io::stderr().lock();
    for (loc, _, s) in &scans {
        let files: std::collections::BTreeSet<&str> =
            s.found.iter().map(|f| f.path.as_str()).collect();
        let _ = writeln!(
            err,
            "{}: {} line(s) in {} file(s) mention {}; searched {} file(s) ({} bytes); {} binary \
             file(s) skipped, {} symlink(s) not followed{}",
            escape(loc),
            s.found.len(),
            files.len(),
            shown.join(", "),
            s.files,
            s.bytes,
            s.binary,
            s.symlinks,
            if s.truncated {
                format!(
                    "; stopped at {} lines: narrow the locations",
                    rehost_host::refs::MAX_FOUND
                )
            } else {
                String::new()
            }
        );
        for p in &s.pseudo {
            let _ = writeln!(
                err,
                "  not entered: {} (a pseudo file system of the kernel)",
                escape(p)
            );
        }
        for e in &s.errors {
            let _ = writeln!(err, "  not searched: {}", escape(e));
        }
    }
    code
}
