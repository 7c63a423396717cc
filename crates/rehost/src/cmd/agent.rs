//! `rehost agent`: serves the agent protocol on stdin/stdout for a remote rehost.

pub fn run() -> i32 {
    eprintln!("rehost agent: not yet available");
    crate::exit::TROUBLE
}
