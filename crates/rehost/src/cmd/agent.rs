//! `rehost agent`: serves the agent protocol on stdin/stdout for a remote rehost
//! (`docs/agent.md`). Started by rehost itself over ssh; not meant to be run by hand.
//!
//! `rehost agent --print-path [--arch ARCH]` shows what would be uploaded to a host of that
//! architecture, for administrators who must approve what runs on the old server.

use crate::cli::AgentArgs;

pub fn run(args: &AgentArgs) -> i32 {
    if args.print_path {
        return print_path(args.arch.as_deref().unwrap_or(std::env::consts::ARCH));
    }
    match rehost_host::agent::serve(std::io::stdin(), std::io::stdout()) {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            eprintln!("rehost agent: failed to {e}");
            crate::exit::TROUBLE
        }
    }
}

fn print_path(arch: &str) -> i32 {
    let found = rehost_host::agent_source().and_then(|s| s.for_host("", arch, None));
    let agent = match found {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rehost: {e}");
            return crate::exit::TROUBLE;
        }
    };
    let mib = |n: u64| format!("{:.1} MiB", n as f64 / (1 << 20) as f64);
    let needs = match &agent.needs {
        Some(n) => match n.glibc {
            Some((a, b)) => format!("{}, glibc {a}.{b} or later", n.arch),
            None => format!("{}, no glibc (static)", n.arch),
        },
        None => "unknown (not an ELF executable)".into(),
    };
    println!("agent:    {}", agent.path.display());
    println!(
        "size:     {} {}, {} unpacked",
        mib(agent.size),
        if agent.compressed {
            "gzip'd (unpacked on the host with gzip -dc)"
        } else {
            "as it is"
        },
        mib(agent.unpacked_size)
    );
    println!("runs on:  {needs}");
    println!("blake3:   {}", agent.blake3);
    println!(
        "sha256:   {}  (checked on the host before every start)",
        agent.sha256
    );
    println!("on host:  {}", agent.remote_path());
    crate::exit::OK
}
