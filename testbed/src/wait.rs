//! Waiting for a condition: what can only be seen by looking again (/proc,
//! a socket's queues) is looked at again, with a short pause between
//! looks, until it holds or the bound passes. Never a fixed sleep.

use std::thread;
use std::time::{Duration, Instant};

/// The longest any single wait of a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The pause between two looks.
const BETWEEN_LOOKS: Duration = Duration::from_millis(5);

/// Retries `check` until it returns Some, for at most [`TIMEOUT`]; fails
/// the test, naming `what` it waited for, if it never does.
pub fn wait_until<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_until_within(what, TIMEOUT, check)
}

/// [`wait_until`] with a bound of its own, for what takes longer than a
/// test's usual wait (a build, a container).
pub fn wait_until_within<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    poll_until(limit, check).unwrap_or_else(|| panic!("timed out waiting for {what} ({limit:?})"))
}

/// Retries `check` until it returns Some, for at most `limit`: None if it
/// never did. For a caller that reports the failure itself (the benchmark).
pub fn poll_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(BETWEEN_LOOKS);
    }
}
