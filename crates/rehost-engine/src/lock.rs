//! One run per plan and environment at a time: an exclusive lock on a file in the state
//! directory, released by the kernel when the process ends however it ends.

use crate::EngineError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire(dir: &Path, env: &str) -> Result<RunLock, EngineError> {
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| EngineError::State {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                return Err(EngineError::Locked {
                    env: env.to_owned(),
                    pid: s.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(EngineError::State { path, source }),
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(RunLock { _file: file })
    }
}
