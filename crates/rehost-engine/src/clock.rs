//! Time as the engine sees it: the wall clock for the journal and the window, a monotonic
//! clock for waits and durations, and sleeping. A run uses [`SystemClock`]; tests use
//! [`FakeClock`], whose sleeps advance it at once, so an hour's `wait` or a window that opens
//! tomorrow is tested in milliseconds.

use jiff::Timestamp;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    /// The time of day, for the journal and the window.
    fn now(&self) -> Timestamp;
    /// Time since an arbitrary origin that never goes back, for deadlines and durations.
    fn monotonic(&self) -> Duration;
    /// Waits `d` (a fake clock advances by it instead).
    fn sleep(&self, d: Duration);
}

/// The machine's clocks.
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock for tests: it stands still until slept on or advanced, and both of its readings
/// move together.
pub struct FakeClock {
    state: Mutex<(Timestamp, Duration)>,
}

impl FakeClock {
    pub fn new(now: Timestamp) -> FakeClock {
        FakeClock {
            state: Mutex::new((now, Duration::ZERO)),
        }
    }

    /// Moves both readings forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.checked_add(d).unwrap_or(s.0);
        s.1 += d;
    }

    /// How far the clock has moved since it was made.
    pub fn advanced(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
    fn monotonic(&self) -> Duration {
        self.advanced()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
        // Let other threads (a test setting the cancel flag) run.
        std::thread::yield_now();
    }
}
