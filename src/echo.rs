//! The echo service on one slave socket: read what the client sent, write it
//! back, until the client closes. This is what a child of `TCPechod` runs
//! (the C program's `TCPechod()` function).
//!
//! Two things the C version got wrong are done right here:
//! - `write` may write fewer bytes than asked (a short write), so the loop
//!   writes again until everything that was read has gone out;
//! - a signal handler (SIGTERM, SIGPIPE in `count` mode) can interrupt a
//!   blocked `read` or `write`, which then fails with EINTR: that is not an
//!   error, the call is simply made again.
//!
//! The data are bytes, never text: any value, any length, no line limit.

use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::{read, write};

/// Bytes read per `read(2)`. Allocated by the child, after fork.
pub const BUFFER_SIZE: usize = 64 * 1024;

/// Why an echo loop stopped before the client closed its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoError {
    /// `read` failed (ECONNRESET when the client reset the connection).
    Read { errno: Errno, echoed: u64 },
    /// `write` failed (EPIPE after the client closed and reset, ECONNRESET...).
    Write { errno: Errno, echoed: u64 },
}

/// Echoes everything read from `sock` back to it until end of file, then
/// returns the number of bytes echoed. With `delay`, waits that long before
/// echoing each chunk (a slow service, to make concurrency visible).
pub fn echo(sock: BorrowedFd<'_>, delay: Duration) -> Result<u64, EchoError> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut echoed: u64 = 0;
    loop {
        let n = match read(sock, &mut buf) {
            Ok(0) => return Ok(echoed), // end of file: the client closed its side
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(EchoError::Read { errno, echoed }),
        };
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        write_all(sock, &buf[..n]).map_err(|errno| EchoError::Write { errno, echoed })?;
        echoed += n as u64;
    }
}

/// Writes all of `data`, however many `write` calls it takes.
pub fn write_all(fd: impl AsFd, mut data: &[u8]) -> Result<(), Errno> {
    let fd = fd.as_fd();
    while !data.is_empty() {
        match write(fd, data) {
            Ok(written) => data = &data[written..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}
