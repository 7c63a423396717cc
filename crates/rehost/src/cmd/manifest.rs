//! `rehost manifest LOCATION -o FILE`: record a tree as evidence, before it is switched off.

use crate::cli::ManifestArgs;
use crate::exit;
use crate::tree_view::{Place, ProgressLine, place, walk_options};

pub fn run(args: &ManifestArgs) -> i32 {
    let go = || -> Result<(u64, u64, usize), String> {
        let opts = walk_options(&args.tree)?;
        crate::signals::install();
        let cancel = &crate::signals::CANCEL;
        let mut line = ProgressLine::new(1);
        let m = match place(&args.location, &args.tree)? {
            Place::Here(root) => {
                if !root.is_dir() {
                    return Err(format!("{} is not a directory", root.display()));
                }
                rehost_tree::manifest(&root, &opts, &mut |p| line.update(p), cancel)
                    .map_err(|e| e.to_string())
            }
            // Walked and hashed on the host that holds the tree; only the manifest travels.
            Place::Remote { host, path } => {
                let options = rehost_host::ManifestOptions {
                    excludes: args.tree.exclude.clone(),
                    threads: opts.threads,
                    ..Default::default()
                };
                let started = std::time::Instant::now();
                host.manifest(path.as_bytes(), &options, cancel, &mut |c| {
                    line.update(rehost_tree::Progress {
                        sides: [c, Default::default()],
                        elapsed: started.elapsed(),
                        copying: false,
                        to_copy: 0,
                    })
                })
                .map_err(|e| e.to_string())
            }
        };
        line.clear();
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        let m = m.map_err(|e| e.to_string())?;
        // Like every document rehost writes where the operator says: never through a link,
        // never into a directory another user could replace it in, 0600.
        crate::output::write_file_with(&args.output, 0o600, &mut |w| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, w);
            m.write_to(&mut w)?;
            std::io::Write::flush(&mut w)
        })?;
        let unread = m
            .entries
            .iter()
            .filter(|e| !matches!(e.state, rehost_tree::State::Ok))
            .count();
        Ok((m.entries.len() as u64, m.total_bytes(), unread))
    };
    match go() {
        Ok((entries, bytes, unread)) => {
            println!(
                "{}: {entries} entries, {} written to {}",
                args.location,
                rehost_tree::human_bytes(bytes),
                args.output.display()
            );
            if unread > 0 {
                crate::term::error(&format!(
                    "{unread} entries could not be read; the manifest records them as unverified"
                ));
                return exit::TROUBLE;
            }
            exit::OK
        }
        // Regression: an interrupted walk exited 2, not 130 as documented.
        Err(_) if crate::signals::cancelled() => {
            eprintln!(
                "rehost: interrupted; no manifest of {} was written",
                args.location
            );
            exit::INTERRUPTED
        }
        Err(e) => {
            crate::term::error(&format!(
                "failed to write a manifest of {}: {e}",
                args.location
            ));
            exit::TROUBLE
        }
    }
}
