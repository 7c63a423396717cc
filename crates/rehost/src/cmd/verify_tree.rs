//! `rehost verify tree A B`: prove B a complete and correct copy of A (a tree or a manifest).

use crate::cli::VerifyTreeArgs;
use crate::exit;
use crate::tree_view::{Place, ProgressLine, place, walk_options};
use rehost_tree::Report;
use rehost_tree::{Class, Manifest, VerifyOptions};
use std::path::Path;
use std::sync::atomic::AtomicBool;

pub fn run(args: &VerifyTreeArgs) -> i32 {
    match verify(args) {
        Ok(code) => code,
        // Regression: a walk ended by Ctrl-C surfaced as an error and exited 2.
        Err(_) if crate::signals::cancelled() => {
            eprintln!("rehost: interrupted; nothing was verified");
            exit::INTERRUPTED
        }
        Err(e) => {
            crate::term::error(&format!(
                "failed to verify {} against {}: {e}",
                args.b, args.a
            ));
            exit::TROUBLE
        }
    }
}

/// Whether `path` is a manifest file rather than a tree.
fn is_manifest(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 18];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && &head == b"#rehost-manifest 1"
}

fn verify(args: &VerifyTreeArgs) -> Result<i32, String> {
    let mut opts = VerifyOptions {
        walk: walk_options(&args.tree)?,
        full: args.full,
        ..Default::default()
    };
    for c in &args.ignore {
        opts.compare
            .ignore
            .insert(Class::parse_ignorable(c).map_err(|e| e.to_string())?);
    }
    crate::signals::install();
    let cancel = &crate::signals::CANCEL;
    let (pa, pb) = (place(&args.a, &args.tree)?, place(&args.b, &args.tree)?);
    let result = match (&pa, &pb) {
        (Place::Here(a), Place::Here(b)) => local_pair(a, b, &mut opts, cancel)?,
        _ => remote_pair(&pa, &pb, &opts, &args.tree.exclude, cancel)?,
    };
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        crate::term::error("interrupted; nothing was verified");
        return Ok(exit::INTERRUPTED);
    }
    let report = result;
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        report.render_json(&mut out)
    } else {
        report.render_human(&mut out)
    };
    r.map_err(|e| format!("failed to write the report: {e}"))?;
    Ok(report.exit_code())
}

/// Both trees here: walked in one pool, with the incremental cache of this pair.
fn local_pair(
    a: &Path,
    b: &Path,
    opts: &mut VerifyOptions,
    cancel: &AtomicBool,
) -> Result<Report, String> {
    let manifest_a = is_manifest(a);
    opts.cache = Some(rehost_tree::default_cache_dir(a, b));
    let mut line = ProgressLine::new(if manifest_a { 1 } else { 2 });
    let result = if manifest_a {
        let m = Manifest::read_file(a).map_err(|e| e.to_string())?;
        rehost_tree::verify_manifest_tree(&m, b, opts, &mut |p| line.update(p), cancel)
    } else {
        for p in [a, b] {
            if !p.is_dir() {
                return Err(format!(
                    "{} is not a directory (nor a manifest)",
                    p.display()
                ));
            }
        }
        rehost_tree::verify_trees(a, b, opts, &mut |p| line.update(p), cancel)
    };
    line.clear();
    Ok(result.map_err(|e| e.to_string())?.report)
}

/// At least one tree on another host: each side is walked and hashed where it lives (by the
/// agent on a remote host), both at once; only the manifests travel.
fn remote_pair(
    pa: &Place,
    pb: &Place,
    opts: &VerifyOptions,
    excludes: &[String],
    cancel: &AtomicBool,
) -> Result<Report, String> {
    let here = rehost_host::LocalHost::new("this machine", None);
    let ((ha, a), (hb, b)) = (side(pa, &here), side(pb, &here));
    let mut options = rehost_host::ManifestOptions {
        excludes: excludes.to_vec(),
        threads: opts.walk.threads,
        incremental: !opts.full,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    // A saved manifest against a remote tree: only B is walked, on its host, with the
    // manifest's own excludes. (Regression: the manifest file was walked as a tree.)
    if let Place::Here(path) = pa
        && is_manifest(path)
    {
        let ma = Manifest::read_file(path).map_err(|e| e.to_string())?;
        for x in &ma.excludes {
            if !options.excludes.contains(x) {
                options.excludes.push(x.clone());
            }
        }
        let mut line = ProgressLine::new(1);
        let mb = hb.manifest(&b, &options, cancel, &mut |c| {
            line.update(rehost_tree::Progress {
                sides: [c, Default::default()],
                elapsed: started.elapsed(),
                copying: false,
                to_copy: 0,
            })
        });
        line.clear();
        let mb = mb.map_err(|e| e.to_string())?;
        return Ok(rehost_tree::compare(&ma, &mb, &opts.compare));
    }
    let mut line = ProgressLine::new(2);
    let (ma, mb) = rehost_host::manifest_pair((ha, &a), (hb, &b), &options, cancel, &mut |sides| {
        line.update(rehost_tree::Progress {
            sides,
            elapsed: started.elapsed(),
            copying: false,
            to_copy: 0,
        })
    });
    line.clear();
    let ma = ma.map_err(|e| e.to_string())?;
    let mb = mb.map_err(|e| e.to_string())?;
    Ok(rehost_tree::compare(&ma, &mb, &opts.compare))
}

fn side<'a>(
    p: &'a Place,
    here: &'a rehost_host::LocalHost,
) -> (&'a dyn rehost_host::Host, Vec<u8>) {
    match p {
        Place::Here(path) => (here, path.as_os_str().as_encoded_bytes().to_vec()),
        Place::Remote { host, path } => (host.as_ref(), path.as_bytes().to_vec()),
    }
}
