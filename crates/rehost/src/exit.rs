//! Exit codes, in one place. They follow diff(1):
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | verified, or no findings, or the run finished |
//! | 1    | differences or findings; a report whose verdict is not clean |
//! | 2    | trouble: bad input, unreachable host, permission denied, a failed step |
//! | 130  | interrupted |

pub const OK: i32 = 0;
pub const FINDINGS: i32 = 1;
pub const TROUBLE: i32 = 2;
pub const INTERRUPTED: i32 = 130;
