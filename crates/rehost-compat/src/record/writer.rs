//! The traffic file's writer: a thread of its own, so that encoding and writing never hold up
//! the relay. The workers hand over each completed exchange as it was on the wire (the two
//! heads and the two bodies); the writer wakes every few milliseconds, encodes what waits
//! (the heads parsed again, base64, one JSON line each: `traffic::append_raw`, the format of
//! `traffic.rs` byte for byte) and
//! writes it with one `write` per batch.
//!
//! The queue is bounded by bytes ([`QUEUE_BYTES`]): an exchange that would take it over is not
//! queued but counted as dropped (the relay goes on; the end of the recording says how many),
//! rather than stalling the clients or growing without bound when the disk is slow. One
//! exchange is always taken when nothing waits (it is bounded by the recording cap already).

use crate::traffic;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The most bytes of exchanges waiting to be written.
pub(super) const QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// How often the writer looks at the queue.
const PERIOD: Duration = Duration::from_millis(5);

/// A completed exchange as relayed: the heads with CRLF line endings, the bodies after the
/// chunked framing (empty when `truncated`).
#[derive(Debug)]
pub(super) struct Rec {
    pub(super) req_head: Vec<u8>,
    pub(super) req_body: Vec<u8>,
    pub(super) resp_head: Vec<u8>,
    pub(super) resp_body: Vec<u8>,
    pub(super) truncated: bool,
}

impl Rec {
    fn size(&self) -> usize {
        self.req_head.len() + self.req_body.len() + self.resp_head.len() + self.resp_body.len()
    }
}

/// The exchanges waiting for the writer.
pub(super) struct Queue {
    recs: Mutex<Vec<Rec>>,
    bytes: AtomicUsize,
    limit: usize,
    pub(super) dropped: AtomicU64,
    /// Set once no worker will queue any more: the writer writes what waits and ends.
    pub(super) done: AtomicBool,
}

impl Queue {
    pub(super) fn new(limit: usize) -> Queue {
        Queue {
            recs: Mutex::new(Vec::new()),
            bytes: AtomicUsize::new(0),
            limit,
            dropped: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// Queues `r`, or counts it dropped when the queue is full.
    pub(super) fn push(&self, r: Rec) {
        let size = r.size();
        let held = self.bytes.load(Ordering::Relaxed);
        if held > 0 && held.saturating_add(size) > self.limit {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        lock(&self.recs).push(r);
    }

    fn take(&self) -> Vec<Rec> {
        let taken = std::mem::take(&mut *lock(&self.recs));
        let size: usize = taken.iter().map(Rec::size).sum();
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        taken
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the writer did.
#[derive(Debug, Default)]
pub(super) struct Written {
    pub(super) exchanges: u64,
    pub(super) truncated: u64,
    /// Exchanges not written because writing failed (the first failure ends the writing).
    pub(super) unwritten: u64,
    pub(super) error: Option<String>,
}

/// Writes what the queue holds until it is `done` and empty, then syncs the file.
pub(super) fn run(q: &Queue, file: std::fs::File) -> Written {
    let mut w = rehost_tree::aligned::BufWriter::with_capacity(1 << 20, file);
    let mut done = Written::default();
    let mut line = Vec::with_capacity(8192);
    loop {
        let finished = q.done.load(Ordering::SeqCst);
        let batch = q.take();
        let got = batch.len();
        for r in batch {
            if done.error.is_some() {
                done.unwritten += 1;
                continue;
            }
            line.clear();
            traffic::append_raw(
                &mut line,
                &r.req_head,
                &r.req_body,
                &r.resp_head,
                &r.resp_body,
                r.truncated,
            );
            if let Err(e) = w.write_all(&line) {
                done.error = Some(e.to_string());
                done.unwritten += 1;
                continue;
            }
            done.exchanges += 1;
            if r.truncated {
                done.truncated += 1;
            }
        }
        if done.error.is_none()
            && let Err(e) = w.flush()
        {
            done.error = Some(e.to_string());
        }
        if finished && got == 0 {
            break;
        }
        if got == 0 {
            std::thread::park_timeout(PERIOD);
        }
    }
    if done.error.is_none()
        && let Err(e) = w.into_inner().and_then(|f| f.sync_all())
    {
        done.error = Some(e.to_string());
    }
    done
}
