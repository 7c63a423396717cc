//! `rehost agent`: serves the agent protocol on stdin/stdout for a remote rehost
//! (`docs/agent.md`). Started by rehost itself over ssh; not meant to be run by hand.

pub fn run() -> i32 {
    match rehost_host::agent::serve(std::io::stdin(), std::io::stdout()) {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            eprintln!("rehost agent: failed to {e}");
            crate::exit::TROUBLE
        }
    }
}
