//! placeholder

pub mod sshd;
