//! `rehost-gen DIR`: writes rehost's man pages and shell completions into DIR (see the crate's
//! library). `scripts/release` runs it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: rehost-gen DIR   (writes DIR/man/man1/*.1 and DIR/completions/*)");
        return ExitCode::from(2);
    };
    match rehost_gen::generate(std::path::Path::new(&dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "rehost-gen: cannot write into {}: {e}",
                std::path::Path::new(&dir).display()
            );
            ExitCode::from(2)
        }
    }
}
