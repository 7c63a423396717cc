//! Page-aligned buffers for bulk `read`/`pread`/`write`: the one type every path that moves
//! file content in large pieces reads into.
//!
//! Why: a large `Vec<u8>` from glibc's malloc starts 16 bytes past a page boundary (its chunk
//! header), and on CPUs with fast `rep movsb` (AMD Zen 3 here) the kernel's copy into a
//! buffer at such an offset is about 5x slower than into a page-aligned one: reading 3.2 GiB
//! from the page cache cost 1.27–1.48 s of kernel time at offsets 1–31 against 0.23–0.28 s at
//! offset 0 (issue 27; glibc bug 30994 describes the effect). An [`AlignedBuf`] starts on a
//! page boundary whatever its length.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error, realloc};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The alignment of every [`AlignedBuf`]: a page on x86-64 and most aarch64 kernels (a 16 KiB
/// or 64 KiB page kernel still gets a 4096-aligned buffer, which is what the copy routine's
/// fast path needs).
pub const PAGE: usize = 4096;

/// A byte buffer whose first byte is on a [`PAGE`] boundary: a `Vec<u8>` for bulk reads.
///
/// Fixed-size and zeroed ([`AlignedBuf::new`]) for the read loops that reuse one buffer, or
/// growable ([`AlignedBuf::with_capacity`], [`AlignedBuf::read_from`],
/// [`AlignedBuf::extend_from_slice`]) for content that is read once and handed on: a file
/// piece the agent sends, a frame's content read from a pipe. Growing keeps the alignment
/// (`realloc` with the same layout's alignment).
pub struct AlignedBuf {
    /// Dangling (and never read or freed) while `cap` is 0.
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes allocated: 0, or a multiple of [`PAGE`]; every byte below `cap` is initialised
    /// (zeroed on allocation or growth, or written since).
    cap: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads, like &[u8].
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes (at least one page is allocated, so a zero length is
    /// still a valid, aligned pointer).
    pub fn new(len: usize) -> AlignedBuf {
        let mut b = AlignedBuf::with_capacity(len.max(1));
        b.len = len;
        b
    }

    /// An empty buffer with room for `cap` bytes without growing (nothing is allocated for 0).
    pub fn with_capacity(cap: usize) -> AlignedBuf {
        let mut b = AlignedBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        };
        b.reserve(cap);
        b
    }

    /// Makes room for `additional` more bytes after `len`. The new bytes are zeroed, so every
    /// byte below the capacity is initialised and may be handed to `read` as a slice.
    pub fn reserve(&mut self, additional: usize) {
        let want = self
            .len
            .checked_add(additional)
            .expect("a buffer size below isize::MAX");
        if want <= self.cap {
            return;
        }
        let cap = want
            .max(self.cap.saturating_mul(2))
            .checked_next_multiple_of(PAGE)
            .expect("a buffer size below isize::MAX");
        let layout = Self::layout(cap);
        let ptr = if self.cap == 0 {
            // SAFETY: the layout's size is at least PAGE, not zero.
            unsafe { alloc_zeroed(layout) }
        } else {
            // SAFETY: `ptr` was allocated with `Self::layout(self.cap)` (same alignment);
            // `cap` is non-zero and below isize::MAX (the layout was built from it).
            let p = unsafe { realloc(self.ptr.as_ptr(), Self::layout(self.cap), cap) };
            if !p.is_null() {
                // SAFETY: `p` holds `cap` bytes; those past the old capacity are new.
                unsafe { p.add(self.cap).write_bytes(0, cap - self.cap) };
            }
            p
        };
        match NonNull::new(ptr) {
            Some(ptr) => {
                self.ptr = ptr;
                self.cap = cap;
            }
            None => handle_alloc_error(layout),
        }
    }

    /// The bytes allocated.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `bytes`.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        // SAFETY: `reserve` made room for `bytes.len()` bytes after `len`; a `&mut self`
        // cannot alias `bytes`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            )
        };
        self.len += bytes.len();
    }

    /// Reads from `r` until `n` more bytes are appended or it ends, straight into the
    /// buffer (no copy through another one); returns how many were appended. A read cut
    /// short by a signal is retried.
    pub fn read_from(&mut self, r: &mut impl std::io::Read, n: usize) -> std::io::Result<usize> {
        self.reserve(n);
        let start = self.len;
        let end = start + n;
        while self.len < end {
            // SAFETY: every byte below `cap` is initialised (see `cap`), and `end <= cap`.
            let spare = unsafe {
                std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), end - self.len)
            };
            match r.read(spare) {
                Ok(0) => break,
                Ok(k) => self.len += k.min(end - self.len),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.len - start)
    }

    /// Shortens it to `len` bytes (nothing when it is already shorter); keeps the capacity.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Empties it; keeps the capacity.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// A copy in a plain vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.deref().to_vec()
    }

    fn layout(cap: usize) -> Layout {
        Layout::from_size_align(cap, PAGE).expect("a buffer size below isize::MAX")
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: allocated (or last reallocated) with this very layout.
            unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) }
        }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len <= cap` initialised bytes live at `ptr` for as long as `self` (for a
        // zero capacity, `len` is 0 and a dangling pointer is valid for an empty slice).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Default for AlignedBuf {
    fn default() -> Self {
        AlignedBuf::with_capacity(0)
    }
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        AlignedBuf::from(&self[..])
    }
}

impl PartialEq for AlignedBuf {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for AlignedBuf {}

impl From<&[u8]> for AlignedBuf {
    fn from(bytes: &[u8]) -> Self {
        let mut b = AlignedBuf::with_capacity(bytes.len());
        b.extend_from_slice(bytes);
        b
    }
}

impl From<Vec<u8>> for AlignedBuf {
    fn from(bytes: Vec<u8>) -> Self {
        AlignedBuf::from(&bytes[..])
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

/// A buffered reader whose buffer is an [`AlignedBuf`]: `std::io::BufReader`'s own buffer is a
/// `Box<[u8]>` from malloc, 16 bytes past a page once it is large. Like it, a read asking for at
/// least the buffer's size while the buffer is empty goes straight to the inner reader, but only
/// into a page-aligned destination: the kernel is never handed a buffer off a page.
pub struct BufReader<R> {
    inner: R,
    buf: AlignedBuf,
    pos: usize,
    filled: usize,
}

impl<R: std::io::Read> BufReader<R> {
    /// A reader with a buffer of `cap` bytes (at least one page).
    pub fn with_capacity(cap: usize, inner: R) -> BufReader<R> {
        BufReader {
            inner,
            buf: AlignedBuf::new(cap.max(PAGE)),
            pos: 0,
            filled: 0,
        }
    }

    /// The reader it reads from.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The reader it reads from; bytes already buffered are not seen by reading it directly.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: std::io::Read> std::io::Read for BufReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.filled
            && out.len() >= self.buf.len()
            && (out.as_ptr() as usize).is_multiple_of(PAGE)
        {
            return self.inner.read(out);
        }
        let n = {
            let have = std::io::BufRead::fill_buf(self)?;
            let n = have.len().min(out.len());
            out[..n].copy_from_slice(&have[..n]);
            n
        };
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl<R: std::io::Read> std::io::BufRead for BufReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.filled {
            self.pos = 0;
            self.filled = 0;
            loop {
                match self.inner.read(&mut self.buf[..]) {
                    Ok(n) => {
                        self.filled = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

/// A buffered writer whose buffer is an [`AlignedBuf`] (see [`BufReader`]): what it writes
/// leaves from a page boundary in pieces of the buffer's size. Like `std::io::BufWriter`, a
/// write of at least the buffer's size goes straight through once the buffer is flushed; unlike
/// it, dropping it does not flush (a write error would be lost): call [`BufWriter::into_inner`]
/// or `flush`.
pub struct BufWriter<W: std::io::Write> {
    inner: W,
    buf: AlignedBuf,
    cap: usize,
}

impl<W: std::io::Write> BufWriter<W> {
    /// A writer with a buffer of `cap` bytes (at least one page).
    pub fn with_capacity(cap: usize, inner: W) -> BufWriter<W> {
        let cap = cap.max(PAGE);
        BufWriter {
            inner,
            buf: AlignedBuf::with_capacity(cap),
            cap,
        }
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        let mut done = 0;
        while done < self.buf.len() {
            match self.inner.write(&self.buf[done..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Keep what was not written, at the start (the buffer stays aligned).
                    let rest = self.buf[done..].to_vec();
                    self.buf.clear();
                    self.buf.extend_from_slice(&rest);
                    return Err(e);
                }
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes out what is buffered and hands back the writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.flush_buf()?;
        Ok(self.inner)
    }

    /// The writer it writes to.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The writer it writes to; bytes still buffered have not reached it.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: std::io::Write> std::io::Write for BufWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + bytes.len() > self.cap {
            self.flush_buf()?;
        }
        if bytes.len() >= self.cap {
            return self.inner.write(bytes);
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buf()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 27: the alignment is what makes the kernel's copy fast; it must not regress to
    /// malloc's 16-byte offset unnoticed.
    #[test]
    fn every_size_starts_on_a_page_and_is_zeroed_and_writable() {
        for len in [0, 1, 15, 4095, 4096, 4097, 256 << 10, (4 << 20) + 16] {
            // Allocations in between, so the allocator is not simply handing back one block.
            let _noise: Vec<u8> = vec![1; len % 777 + 1];
            let mut b = AlignedBuf::new(len);
            assert_eq!(b.as_ptr() as usize % PAGE, 0, "len {len}");
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 0));
            if len > 0 {
                b[len - 1] = 7;
                assert_eq!(b[len - 1], 7);
            }
        }
    }

    /// Growing keeps the alignment and the content; reading fills the buffer in place.
    #[test]
    fn growing_and_reading_keep_the_page_alignment_and_the_bytes() {
        let mut b = AlignedBuf::default();
        assert!(b.is_empty());
        let mut want = Vec::new();
        for i in 0..50u32 {
            let piece: Vec<u8> = (0..(i * 997 % 9000)).map(|x| (x ^ i) as u8).collect();
            b.extend_from_slice(&piece);
            want.extend_from_slice(&piece);
            // Nothing is allocated while it is empty (the pointer is dangling, never read).
            if !b.is_empty() {
                assert_eq!(b.as_ptr() as usize % PAGE, 0);
            }
            assert_eq!(&b[..], &want[..]);
        }
        let src: Vec<u8> = (0..(3 << 20) + 5).map(|x| (x * 7) as u8).collect();
        let mut r = AlignedBuf::with_capacity(0);
        // A reader that hands out small pieces: read_from keeps going until n or the end.
        struct Dribble<'a>(&'a [u8]);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(65_537);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        assert_eq!(r.read_from(&mut Dribble(&src), 1 << 20).unwrap(), 1 << 20);
        assert_eq!(
            r.read_from(&mut Dribble(&src[1 << 20..]), 8 << 20).unwrap(),
            src.len() - (1 << 20)
        );
        assert_eq!(r.as_ptr() as usize % PAGE, 0);
        assert_eq!(&r[..], &src[..]);
        r.truncate(10);
        assert_eq!(&r[..], &src[..10]);
        assert_eq!(r.clone(), AlignedBuf::from(&src[..10]));
    }

    /// The buffered reader and writer hand the kernel page-aligned buffers (issue 27): a
    /// reader and a writer that record the address of every slice they are given.
    #[test]
    fn buffered_reads_and_writes_go_through_page_aligned_buffers() {
        use std::io::{BufRead, Read, Write};
        struct Spy<'a> {
            src: &'a [u8],
            addrs: Vec<usize>,
            out: Vec<u8>,
        }
        impl Read for Spy<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.addrs.push(buf.as_ptr() as usize);
                let n = buf.len().min(self.src.len()).min(100_000);
                buf[..n].copy_from_slice(&self.src[..n]);
                self.src = &self.src[n..];
                Ok(n)
            }
        }
        impl Write for Spy<'_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.addrs.push(buf.as_ptr() as usize);
                let n = buf.len().min(70_000);
                self.out.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let src: Vec<u8> = (0..1_000_003u32).map(|x| ((x * 31) >> 3) as u8).collect();
        let _noise = vec![0u8; 300_000];
        let mut r = BufReader::with_capacity(
            256 << 10,
            Spy {
                src: &src,
                addrs: Vec::new(),
                out: Vec::new(),
            },
        );
        // Small reads and lines through the buffer.
        let mut got = Vec::new();
        let mut small = [0u8; 1000];
        let n = r.read(&mut small).unwrap();
        got.extend_from_slice(&small[..n]);
        r.read_until(7, &mut got).unwrap();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, src);
        let addrs = &r.get_ref().addrs;
        assert!(addrs.len() > 3);
        for a in addrs {
            // A large read straight into an unaligned Vec (read_to_end's) goes through the
            // buffer too.
            assert_eq!(a % PAGE, 0, "a read into {a:#x}");
        }

        let mut w = BufWriter::with_capacity(
            256 << 10,
            Spy {
                src: &[],
                addrs: Vec::new(),
                out: Vec::new(),
            },
        );
        for piece in src.chunks(999) {
            w.write_all(piece).unwrap();
        }
        let spy = w.into_inner().unwrap();
        assert_eq!(spy.out, src);
        // Each flush starts on the page; the writer's own short writes continue from there.
        assert_eq!(spy.addrs[0] % PAGE, 0);
        assert!(spy.addrs.len() > 3);
    }
}
