//! The confirmer at the operator's terminal: the engine asks through the `Confirmer` trait and
//! never prints; this asks on standard error and reads standard input.

use rehost_engine::Confirmer;
use rehost_plan::Step;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks on standard input: `yes` (or `y`) confirms as the user (the login, or `--confirm-as`),
/// the step's id confirms the point of no return, `no` or end of input declines, and anything
/// else — an empty line too — asks again. A signal (Ctrl-C, SIGTERM, SIGHUP) while it
/// waits is a refusal, never a confirmation: the read is polled against `cancel`, so a
/// later Enter cannot confirm a step the operator tried to stop.
pub struct StdinConfirmer<'a> {
    pub user: String,
    pub cancel: &'a AtomicBool,
}

impl Confirmer for StdinConfirmer<'_> {
    fn confirm(
        &mut self,
        step: &Step,
        _text: &str,
        point_of_no_return: bool,
    ) -> Result<String, String> {
        // Keys typed during a long step (an Enter pressed during the bulk copy) must not
        // answer this prompt: what is pending on the terminal is discarded first.
        // SAFETY: isatty and tcflush on standard input touch no memory.
        unsafe {
            if libc::isatty(0) == 1 {
                libc::tcflush(0, libc::TCIFLUSH);
            }
        }
        loop {
            if point_of_no_return {
                eprint!(
                    "Step `{}` is the point of no return: after it, nothing is rolled back. Type `{}` to confirm as {}, or `no` to stop: ",
                    step.id, step.id, self.user
                );
            } else {
                eprint!(
                    "Confirm step `{}` as {}? Answer yes or no: ",
                    step.id, self.user
                );
            }
            let line = match read_line_unless(self.cancel)? {
                None => {
                    return Err(
                        "no confirmation (end of input); answer at the prompt, or use --yes (recorded)"
                            .into(),
                    );
                }
                Some(l) => l,
            };
            let answer = line.trim();
            if matches!(answer, "no" | "n" | "No" | "NO") {
                return Err("the operator declined".into());
            }
            if point_of_no_return {
                if answer == step.id {
                    return Ok(self.user.clone());
                }
                eprintln!("that is not the step's id; type it exactly, or `no`");
            } else if matches!(answer, "yes" | "y" | "Yes" | "YES" | "Y") {
                return Ok(self.user.clone());
            } else {
                // Regression: any answer was taken as the confirmer's name (`y` was recorded
                // as a person called "y"). The name comes from --confirm-as or the login.
                eprintln!(
                    "answer yes or no (who confirms is {}: --confirm-as NAME to change it)",
                    self.user
                );
            }
        }
    }
}

/// One line from standard input (without its newline; `None` at end of input), read a byte at
/// a time so nothing after the line is consumed, and given up as soon as `cancel` is set.
fn read_line_unless(cancel: &AtomicBool) -> Result<Option<String>, String> {
    let mut line = Vec::new();
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err("interrupted at the prompt".into());
        }
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n == 0 {
            continue;
        }
        let mut b = 0u8;
        let r = if n > 0 {
            // SAFETY: reads at most one byte into `b`.
            unsafe { libc::read(0, (&raw mut b).cast(), 1) }
        } else {
            -1
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // No standard input at all (closed): end of input, as std treats it.
            if e.raw_os_error() == Some(libc::EBADF) {
                return Ok(None);
            }
            return Err(format!("failed to read confirmation: {e}"));
        }
        if r == 0 {
            return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        if b == b'\n' {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
        line.push(b);
    }
}
