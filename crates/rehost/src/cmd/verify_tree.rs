//! `rehost verify tree A B`: prove B a complete and correct copy of A (a tree or a manifest).

use crate::cli::VerifyTreeArgs;
use crate::exit;
use crate::tree_view::{ProgressLine, local_path, walk_options};
use rehost_tree::{Class, Manifest, VerifyOptions};
use std::path::Path;

pub fn run(args: &VerifyTreeArgs) -> i32 {
    match verify(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "rehost: failed to verify {} against {}: {e}",
                args.b, args.a
            );
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
    let a = local_path(&args.a)?;
    let b = local_path(&args.b)?;
    let mut opts = VerifyOptions {
        walk: walk_options(&args.tree)?,
        full: args.full,
        ..Default::default()
    };
    for c in &args.ignore {
        opts.compare.ignore.insert(Class::parse_ignorable(c)?);
    }
    crate::signals::install();
    let cancel = &crate::signals::CANCEL;
    let manifest_a = is_manifest(&a);
    opts.cache = Some(rehost_tree::default_cache_dir(&a, &b));
    let mut line = ProgressLine::new(if manifest_a { 1 } else { 2 });
    let result = if manifest_a {
        let m = Manifest::read_file(&a).map_err(|e| e.to_string())?;
        rehost_tree::verify_manifest_tree(&m, &b, &opts, &mut |p| line.update(p), cancel)
    } else {
        for p in [&a, &b] {
            if !p.is_dir() {
                return Err(format!(
                    "{} is not a directory (nor a manifest)",
                    p.display()
                ));
            }
        }
        rehost_tree::verify_trees(&a, &b, &opts, &mut |p| line.update(p), cancel)
    };
    line.clear();
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("rehost: interrupted; nothing was verified");
        return Ok(exit::INTERRUPTED);
    }
    let verified = result.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        verified.report.render_json(&mut out)
    } else {
        verified.report.render_human(&mut out)
    };
    r.map_err(|e| format!("failed to write the report: {e}"))?;
    Ok(verified.report.exit_code())
}
