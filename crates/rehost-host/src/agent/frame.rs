//! Length-prefixed frames: a JSON header, then (for the messages that carry file content) the
//! content as raw bytes.
//!
//! ```text
//! u32 BE n            header length in the low 31 bits; the top bit: content follows
//! [u32 BE len]        only with the top bit: the content's length
//! header              n & 0x7fff_ffff bytes of JSON
//! [content]           len raw bytes
//! ```
//!
//! A frame without content is the plain `length, JSON` frame of earlier protocol versions, so
//! the hello of either side still decodes and a version mismatch is refused as such. Both
//! lengths are checked against their limits before anything is allocated.

use rehost_tree::aligned::AlignedBuf;
use serde::{Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};

/// Larger headers are refused: a corrupt length must not make a side allocate gigabytes.
pub const MAX_FRAME: usize = 64 << 20;
/// The most content one frame may carry (the transfer sends at most 8 MiB at a time).
pub const MAX_DATA: usize = 64 << 20;
/// The top bit of the first length: a content length follows.
const HAS_DATA: u32 = 1 << 31;

/// A message that may carry content outside its JSON header.
pub trait Framed: Serialize + DeserializeOwned {
    /// The content sent after the header (empty for most messages).
    fn data(&self) -> &[u8];
    /// Where content received after the header goes; `None` for a message that carries none.
    fn data_mut(&mut self) -> Option<&mut rehost_tree::aligned::AlignedBuf>;
    /// The message's kind, for an error about it.
    fn kind(&self) -> String;
}

/// Writes one frame (`header`, then `data` raw) without flushing.
pub fn write_parts(w: &mut impl Write, header: &impl Serialize, data: &[u8]) -> io::Result<()> {
    let body = serde_json::to_vec(header).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {} bytes exceeds the limit of {MAX_FRAME}",
            body.len()
        )));
    }
    if data.len() > MAX_DATA {
        return Err(io::Error::other(format!(
            "content of {} bytes exceeds the limit of {MAX_DATA}",
            data.len()
        )));
    }
    if data.is_empty() {
        w.write_all(&(body.len() as u32).to_be_bytes())?;
    } else {
        w.write_all(&(body.len() as u32 | HAS_DATA).to_be_bytes())?;
        w.write_all(&(data.len() as u32).to_be_bytes())?;
    }
    w.write_all(&body)?;
    w.write_all(data)
}

/// Writes one frame and flushes, so the peer sees it at once.
pub fn write_frame<T: Framed>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    write_parts(w, msg, msg.data())?;
    w.flush()
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames. A frame that does not
/// decode, claims more than the limits, or carries content its message cannot hold is
/// `InvalidData`; a stream that ends inside a frame is `UnexpectedEof`.
pub fn read_frame<T: Framed>(r: &mut impl Read) -> io::Result<Option<T>> {
    match read_parts(r)? {
        None => Ok(None),
        Some((body, data)) => decode(&body, data).map(Some),
    }
}

/// Decodes a header read by [`read_parts`] and puts its content in place.
pub fn decode<T: Framed>(body: &[u8], data: AlignedBuf) -> io::Result<T> {
    let mut msg: T = serde_json::from_slice(body).map_err(invalid)?;
    if !data.is_empty() {
        let kind = msg.kind();
        match msg.data_mut() {
            Some(slot) => *slot = data,
            None => {
                return Err(invalid(format!(
                    "a frame carried {} bytes of content for a message that carries none ({kind})",
                    data.len()
                )));
            }
        }
    }
    Ok(msg)
}

/// Reads one frame's header and content without decoding them. `Ok(None)` is a clean end of
/// stream.
pub fn read_parts(r: &mut impl Read) -> io::Result<Option<(Vec<u8>, AlignedBuf)>> {
    let mut n = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut n[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(truncated("its length")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let n = u32::from_be_bytes(n);
    let len = (n & !HAS_DATA) as usize;
    if len > MAX_FRAME {
        return Err(invalid(format!(
            "frame of {len} bytes exceeds the limit of {MAX_FRAME}"
        )));
    }
    let data_len = if n & HAS_DATA != 0 {
        let mut d = [0u8; 4];
        exact(r, &mut d, "its content length")?;
        let d = u32::from_be_bytes(d) as usize;
        if d > MAX_DATA {
            return Err(invalid(format!(
                "frame content of {d} bytes exceeds the limit of {MAX_DATA}"
            )));
        }
        d
    } else {
        0
    };
    let mut body = vec![0u8; len];
    exact(r, &mut body, "its header")?;
    // Straight into a page-aligned buffer: from a pipe, a read into one 16 bytes off a page
    // (where malloc puts a large Vec) cost the kernel 2.0-2.2 s of system time per 4 GiB
    // against 0.55 s aligned (issue 27). Zeroing it first costs far less than that.
    let mut data = AlignedBuf::with_capacity(data_len);
    data.read_from(r, data_len)?;
    if data.len() != data_len {
        return Err(truncated("its content"));
    }
    Ok(Some((body, data)))
}

fn exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> io::Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => truncated(what),
        _ => e,
    })
}

fn truncated(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the stream ended in the middle of a frame, in {what}"),
    )
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
