//! The framing of one direction's messages, without IO: bytes in as they arrive, in pieces of
//! any size; out come the bytes to forward (heads, chunk size lines and trailers with CRLF line
//! endings, everything else unchanged), the body after the chunked framing (kept up to the
//! recording cap), and where a head or a message ends.
//!
//! The rules are those of the blocking reader in `http.rs` (RFC 9112): a head ends at its
//! first empty line, leading empty lines are skipped, a line ends in LF with a CR before it
//! removed; a chunk size line is at most 1,024 bytes and a hexadecimal number of at most 16
//! digits; a chunk's data is followed by an empty line; trailers end at an empty line. Every
//! cap is checked before anything is kept: a head (and separately the trailers, and the empty
//! lines before a head) at most [`Limits::head`], a partial line no longer than its cap. A
//! resumed scan starts where the last one stopped, so a peer sending a byte at a time costs
//! linear time.

use crate::http::{Framing, HttpError, Limits};

/// The longest chunk size line (with its extensions and line end).
const CHUNK_LINE: usize = 1024;

/// The body bytes kept for the record, up to the cap: past it the message is still relayed
/// whole but the record says `truncated` and keeps no body.
#[derive(Debug, Default)]
pub(super) struct Capture {
    pub(super) buf: Vec<u8>,
    cap: u64,
    pub(super) truncated: bool,
}

impl Capture {
    pub(super) fn new(cap: u64) -> Capture {
        Capture {
            buf: Vec::new(),
            cap,
            truncated: false,
        }
    }

    pub(super) fn push(&mut self, d: &[u8]) {
        if self.truncated {
            return;
        }
        if self.buf.len() as u64 + d.len() as u64 > self.cap {
            self.truncated = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(d);
        }
    }
}

/// Where forwarded bytes go.
pub(super) trait Out {
    fn put(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Out for rehost_tree::aligned::AlignedBuf {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Where a direction is in its current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading a head (or the empty lines before one).
    Head,
    /// A body of this many bytes still to come.
    Length(u64),
    /// A chunk size line.
    ChunkSize,
    /// A chunk's data, this many bytes still to come.
    ChunkData(u64),
    /// The empty line after a chunk's data.
    ChunkEnd,
    /// Trailer lines; this many bytes of them so far.
    Trailers(usize),
    /// Everything until the connection closes.
    UntilClose,
    /// The message is complete.
    Done,
}

/// What one call of [`Framer::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing more in this input: give more bytes (those not consumed come again first).
    More,
    /// A head, with CRLF line endings: the caller forwards it (or refuses it) and sets the
    /// body's framing with [`Framer::body`].
    Head(Vec<u8>),
    /// The message ended.
    End,
}

/// One direction's parser.
#[derive(Debug)]
pub(super) struct Framer {
    pub(super) phase: Phase,
    /// Where the scan for a line end resumes in the next input, which begins with the bytes
    /// not consumed from this one.
    resume: usize,
    /// Bytes of empty lines skipped before the head now being read.
    blank: usize,
}

impl Framer {
    pub(super) fn new() -> Framer {
        Framer {
            phase: Phase::Head,
            resume: 0,
            blank: 0,
        }
    }

    /// Back to reading a head (the next message on the connection).
    pub(super) fn next_message(&mut self) {
        *self = Framer::new();
    }

    /// The body that follows the head just found.
    pub(super) fn body(&mut self, framing: Framing) {
        self.resume = 0;
        self.phase = match framing {
            Framing::None => Phase::Done,
            Framing::Length(0) => Phase::Done,
            Framing::Length(n) => Phase::Length(n),
            Framing::Chunked => Phase::ChunkSize,
            Framing::UntilClose => Phase::UntilClose,
        };
    }

    /// The connection closed: the end of a body delimited by it, else `false`.
    pub(super) fn closed(&mut self) -> bool {
        if self.phase == Phase::UntilClose {
            self.phase = Phase::Done;
            return true;
        }
        false
    }

    /// Takes what it can of `input`: returns how many bytes it consumed and what it found.
    /// Forwarded bytes are appended to `out`, body bytes kept in `cap`. Bytes not consumed
    /// must be given again, first, with more after them.
    pub(super) fn feed(
        &mut self,
        input: &[u8],
        out: &mut impl Out,
        cap: &mut Capture,
        limits: &Limits,
    ) -> Result<(usize, Found), HttpError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.phase {
                Phase::Done => return Ok((at, Found::More)),
                Phase::Head => {
                    // Only the head's first call may consume (empty lines before it); a head
                    // is taken whole.
                    if at > 0 {
                        return Ok((at, Found::More));
                    }
                    return self.head(input, limits);
                }
                _ if rest.is_empty() => return Ok((at, Found::More)),
                Phase::Length(n) | Phase::ChunkData(n) => {
                    let take = (rest.len() as u64).min(n) as usize;
                    out.put(&rest[..take]);
                    cap.push(&rest[..take]);
                    at += take;
                    let left = n - take as u64;
                    self.phase = match (self.phase, left) {
                        (Phase::Length(_), 0) => {
                            self.phase = Phase::Done;
                            return Ok((at, Found::End));
                        }
                        (Phase::Length(_), l) => Phase::Length(l),
                        (_, 0) => Phase::ChunkEnd,
                        (_, l) => Phase::ChunkData(l),
                    };
                }
                Phase::UntilClose => {
                    out.put(rest);
                    cap.push(rest);
                    return Ok((input.len(), Found::More));
                }
                Phase::ChunkSize => {
                    let Some(line) = self.line(rest, CHUNK_LINE, || {
                        HttpError::BadChunk("a chunk size line is longer than 1024 bytes".into())
                    })?
                    else {
                        return Ok((at, Found::More));
                    };
                    let raw = &rest[..line];
                    at += line;
                    let text = strip_line_end(raw);
                    out.put(text);
                    out.put(b"\r\n");
                    let size = chunk_size(text)?;
                    self.phase = if size == 0 {
                        Phase::Trailers(0)
                    } else {
                        Phase::ChunkData(size)
                    };
                }
                Phase::ChunkEnd => {
                    let n = match rest {
                        [b'\n', ..] => 1,
                        [b'\r', b'\n', ..] => 2,
                        [b'\r'] => return Ok((at, Found::More)),
                        _ => {
                            return Err(HttpError::BadChunk(
                                "a chunk's data is not followed by CRLF".into(),
                            ));
                        }
                    };
                    at += n;
                    out.put(b"\r\n");
                    self.phase = Phase::ChunkSize;
                }
                Phase::Trailers(seen) => {
                    let left = limits.head.saturating_sub(seen).max(1);
                    let Some(line) =
                        self.line(rest, left, || HttpError::HeadTooLong(limits.head))?
                    else {
                        return Ok((at, Found::More));
                    };
                    let raw = &rest[..line];
                    at += line;
                    let text = strip_line_end(raw);
                    out.put(text);
                    out.put(b"\r\n");
                    if text.is_empty() {
                        self.phase = Phase::Done;
                        return Ok((at, Found::End));
                    }
                    self.phase = Phase::Trailers(seen + text.len() + 2);
                }
            }
        }
    }

    /// The length of the first line of `rest` with its LF, or `None` when it has no LF yet
    /// (and is not over `max`).
    fn line(
        &mut self,
        rest: &[u8],
        max: usize,
        too_long: impl Fn() -> HttpError,
    ) -> Result<Option<usize>, HttpError> {
        let from = self.resume.min(rest.len());
        match memchr::memchr(b'\n', &rest[from..]) {
            Some(p) => {
                self.resume = 0;
                let n = from + p + 1;
                if n > max {
                    return Err(too_long());
                }
                Ok(Some(n))
            }
            None => {
                if rest.len() > max {
                    return Err(too_long());
                }
                self.resume = rest.len();
                Ok(None)
            }
        }
    }

    /// A head from the start of `input`, or the empty lines before one.
    fn head(&mut self, input: &[u8], limits: &Limits) -> Result<(usize, Found), HttpError> {
        // Empty lines before a head are skipped (RFC 9112 §2.2), under the head's cap.
        let mut start = 0;
        loop {
            match input[start..] {
                [b'\n', ..] => start += 1,
                [b'\r', b'\n', ..] => start += 2,
                _ => break,
            }
        }
        if start > 0 {
            self.blank += start;
            if self.blank > limits.head {
                return Err(HttpError::HeadTooLong(limits.head));
            }
            self.resume = 0;
            return Ok((start, Found::More));
        }
        // `resume` is the start of the first line not yet seen whole.
        let mut line = self.resume.min(input.len());
        loop {
            match memchr::memchr(b'\n', &input[line..]) {
                None => {
                    if input.len() > limits.head {
                        return Err(HttpError::HeadTooLong(limits.head));
                    }
                    self.resume = line;
                    return Ok((0, Found::More));
                }
                Some(p) => {
                    let end = line + p + 1;
                    if end > limits.head {
                        return Err(HttpError::HeadTooLong(limits.head));
                    }
                    if line > 0 && strip_line_end(&input[line..end]).is_empty() {
                        self.resume = 0;
                        return Ok((end, Found::Head(with_crlf(&input[..end]))));
                    }
                    line = end;
                }
            }
        }
    }
}

/// A line without its LF and a CR before it.
fn strip_line_end(raw: &[u8]) -> &[u8] {
    let l = raw.strip_suffix(b"\n").unwrap_or(raw);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// A head's lines each ending in CRLF (the bytes as they came when they already do).
fn with_crlf(head: &[u8]) -> Vec<u8> {
    let bare = memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r');
    if !bare {
        return head.to_vec();
    }
    let mut out = Vec::with_capacity(head.len() + 64);
    for l in head.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(strip_line_end(l));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A chunk size line's number (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let size_part = line.split(|b| *b == b';').next().unwrap_or(&[]);
    let t = String::from_utf8_lossy(size_part);
    let t = t.trim_matches(|c| c == ' ' || c == '\t');
    if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HttpError::BadChunk(format!(
            "chunk size {:?} is not a hexadecimal number",
            crate::clip(t, 40)
        )));
    }
    u64::from_str_radix(t, 16).map_err(|_| HttpError::BadChunk("chunk size out of range".into()))
}

#[cfg(test)]
mod tests;
