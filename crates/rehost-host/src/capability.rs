//! The one function that does work on a host: [`execute`]. A local host calls it in-process;
//! the agent calls it on the remote host for each request it receives. Adding a capability is a
//! [`Request`] variant, its [`Response`] variants and one arm here.

use crate::agent::{Request, Response};
use crate::listing::{TreeEntry, list_tree};
use crate::{Host, HostError, LocalHost};
use std::sync::atomic::AtomicBool;

/// Tree entries per `Entries` response: large enough to amortise framing, small enough to
/// stream.
const ENTRIES_PER_BATCH: usize = 1024;

/// Executes `req` on `host`, passing each result item to `emit` as it is produced.
pub fn execute(
    host: &LocalHost,
    req: &Request,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Response),
) -> Result<(), HostError> {
    match req {
        Request::Run { command } => {
            let outcome = host.run(command, cancel, &mut |stream, line| {
                emit(Response::Output {
                    stream,
                    line: line.into(),
                })
            })?;
            emit(Response::Exit { outcome });
            Ok(())
        }
        Request::ListTree { path } => {
            let dir = host.resolve_bytes(path.as_bytes());
            let mut batch: Vec<TreeEntry> = Vec::new();
            list_tree(&dir, cancel, &mut |e| {
                batch.push(e);
                if batch.len() >= ENTRIES_PER_BATCH {
                    emit(Response::Entries {
                        entries: std::mem::take(&mut batch),
                    });
                }
            })
            .map_err(|source| HostError::Read {
                host: host.name().to_owned(),
                path: dir.clone(),
                source,
            })?;
            if !batch.is_empty() {
                emit(Response::Entries { entries: batch });
            }
            Ok(())
        }
    }
}
