//! Page-aligned buffers for bulk `read`/`pread`/`write`: the one type every path that moves
//! file content in large pieces reads into.
//!
//! Why: a large `Vec<u8>` from glibc's malloc starts 16 bytes past a page boundary (its chunk
//! header), and on CPUs with fast `rep movsb` (AMD Zen 3 here) the kernel's copy into a
//! buffer at such an offset is about 5x slower than into a page-aligned one: reading 3.2 GiB
//! from the page cache cost 1.27–1.48 s of kernel time at offsets 1–31 against 0.23–0.28 s at
//! offset 0 (issue 27; glibc bug 30994 describes the effect). An [`AlignedBuf`] starts on a
//! page boundary whatever its length.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The alignment of every [`AlignedBuf`]: a page on x86-64 and most aarch64 kernels (a 16 KiB
/// or 64 KiB page kernel still gets a 4096-aligned buffer, which is what the copy routine's
/// fast path needs).
pub const PAGE: usize = 4096;

/// A zeroed byte buffer whose first byte is on a [`PAGE`] boundary.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads, like &[u8].
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes (at least one page is allocated, so a zero length is
    /// still a valid, aligned pointer).
    pub fn new(len: usize) -> AlignedBuf {
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (at least PAGE).
        let ptr = unsafe { alloc_zeroed(layout) };
        match NonNull::new(ptr) {
            Some(ptr) => AlignedBuf { ptr, len },
            None => handle_alloc_error(layout),
        }
    }

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len.max(PAGE), PAGE).expect("a buffer size below isize::MAX")
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised (zeroed) bytes live at `ptr` for as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
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
}
