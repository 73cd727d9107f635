//! The wake pipe (the "self-pipe trick"): how a signal handler wakes a
//! process that waits in poll(2).
//!
//! A loop that checks a "stop" flag and then blocks has a race: a signal
//! that arrives after the check, and before the call starts to block, is
//! not seen until the call returns for another reason. So the process
//! sleeps in `poll(2)` on what it waits for *and* on the read end of a
//! pipe; each handler writes one byte into the pipe, and a byte written
//! before `poll` started still makes it return. The server's parent waits
//! for clients this way, and so does TCPecho for its input and its echo.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::PollTimeout;
use nix::unistd;

/// Write end of the wake pipe (-1 when there is none, as in a child).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// The wake pipe: signal handlers write a byte, the main loop polls the
/// read end and drains it.
pub struct WakePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl WakePipe {
    /// Creates the pipe and makes it the target of every handler's wake-up.
    /// Both ends are non-blocking: a handler must never block on a full pipe
    /// (one unread byte is wake-up enough), and draining stops at "empty".
    pub fn new() -> Result<WakePipe> {
        let (read, write) = unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).context("pipe2")?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        Ok(WakePipe { read, write })
    }

    /// The end to give to poll(2).
    pub fn read_end(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The descriptor numbers of its two ends, for the log.
    pub fn fds(&self) -> (i32, i32) {
        (self.read.as_raw_fd(), self.write.as_raw_fd())
    }

    /// Empties the pipe after poll said it is readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 256];
        // A read that does not fill the buffer has emptied the pipe.
        while let Ok(n) = unistd::read(&self.read, &mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }
}

impl Drop for WakePipe {
    /// Handlers must stop writing to the pipe before its descriptors close
    /// (and their numbers are reused by something else).
    fn drop(&mut self) {
        WAKE_FD.store(-1, Ordering::SeqCst);
    }
}

/// Makes the main loop's poll(2) return. Called from handlers, and from
/// threads that finish (the threaded server's, TCPecho's reader).
pub fn wake_main_loop() {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: `fd` is the write end of the live WakePipe: WAKE_FD is set
        // when the pipe is created and reset to -1 before it is closed.
        let pipe = unsafe { BorrowedFd::borrow_raw(fd) };
        // EAGAIN (pipe full) is fine: unread bytes will wake the loop anyway.
        let _ = unistd::write(pipe, &[0u8]);
    }
}

/// A poll(2) timeout for what is left of `duration`, rounded up so that a
/// wait never ends a little early and spins.
pub fn timeout_for(duration: Duration) -> PollTimeout {
    let millis = duration.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
}
