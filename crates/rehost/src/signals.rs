//! SIGINT, SIGTERM and SIGHUP set a flag the engine polls, so a step is ended cleanly, recorded
//! as interrupted, and the run stays resumable. A second signal ends rehost at once (exit 130):
//! an operator who presses Ctrl-C twice means it.
//!
//! SIGHUP is what rehost gets when the administrator's terminal goes away (the ssh session to
//! the jump host dropped). It is handled like SIGTERM; in addition the standard streams that
//! were a terminal are pointed at /dev/null, so the writes that record the interruption do not
//! fail on a terminal that no longer exists.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// Bit `fd` is set when standard stream `fd` (0, 1, 2) was a terminal at `install`.
static TERMINALS: AtomicU8 = AtomicU8::new(0);

/// Whether a signal asked rehost to stop.
pub fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst)
}

extern "C" fn on_signal(sig: libc::c_int) {
    if CANCEL.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(crate::exit::INTERRUPTED) };
    }
    if sig == libc::SIGHUP {
        let ttys = TERMINALS.load(Ordering::SeqCst);
        // SAFETY: open, dup2 and close are async-signal-safe; the path is a C string literal.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..3 {
                    if ttys & (1 << fd) != 0 {
                        libc::dup2(null, fd);
                    }
                }
                if null > 2 {
                    libc::close(null);
                }
            }
        }
    }
}

pub fn install() {
    let mut ttys = 0u8;
    for fd in 0..3 {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(fd) } == 1 {
            ttys |= 1 << fd;
        }
    }
    TERMINALS.store(ttys, Ordering::SeqCst);
    // SAFETY: the handler only touches atomics and calls async-signal-safe functions. No
    // SA_RESTART: a blocking read is woken, and whoever reads checks the flag.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
