//! One run per plan and environment at a time: an exclusive lock on a file in the state
//! directory, released by the kernel when the process ends however it ends.

use crate::JournalError;
use rehost_tree::private::PrivateDir;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};

pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire(dir: &PrivateDir, env: &str) -> Result<RunLock, JournalError> {
        let path = dir.path().join("lock");
        let mut file = dir
            .open_file("lock", false, true)
            .map_err(JournalError::from_private)?
            .expect("created");
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                return Err(JournalError::Locked {
                    env: env.to_owned(),
                    pid: s.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(JournalError::State { path, source }),
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(RunLock { _file: file })
    }
}
