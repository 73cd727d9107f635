//! The echo service on one slave socket: read what the client sent, write it
//! back, until the client closes. This is what a child of `TCPechod` runs
//! (the C program's `TCPechod()` function), and what a worker, a thread or
//! the iterative server runs for each of its clients.
//!
//! Two things the C version got wrong are done right here:
//! - `write` may write fewer bytes than asked (a short write), so the loop
//!   writes again until everything that was read has gone out;
//! - a signal handler (SIGTERM, SIGPIPE in `count` mode) can interrupt a
//!   blocked `read` or `write`, which then fails with EINTR: that is not an
//!   error, the call is simply made again.
//!
//! The data are bytes, never text: any value, any length, no line limit.
//!
//! [`copy`] moves the bytes through a buffer in the process. [`splice`]
//! (Linux, `--splice`) moves them from the socket into a pipe and from the
//! pipe back into the socket with splice(2): the kernel passes its own
//! buffers along and the bytes never enter the process.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, SpliceFFlags};
use nix::unistd::{self, read, write};

/// The buffer size of the copy loop unless `--buffer` says otherwise.
/// Measured with `echobench stream` (1 stream / 4 streams, MB/s): 8 KiB
/// about 1000 / 1290, 64 KiB about 1080 / 1420, 256 KiB about 1080 / 1320.
pub const DEFAULT_BUFFER: usize = 64 * 1024;

/// Why an echo loop stopped before the client closed its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoError {
    /// Reading failed (ECONNRESET when the client reset the connection).
    Read { errno: Errno, echoed: u64 },
    /// Writing failed (EPIPE after the client closed and reset, ECONNRESET...).
    Write { errno: Errno, echoed: u64 },
    /// splice(2) does not work on this socket (only before any byte moved).
    SpliceUnsupported(Errno),
}

/// Echoes everything read from `sock` back to it, through `buf`, until end
/// of file; returns the number of bytes echoed. With `delay`, waits that
/// long before echoing each chunk (a slow service, to make concurrency
/// visible).
pub fn copy(sock: BorrowedFd<'_>, buf: &mut [u8], delay: Duration) -> Result<u64, EchoError> {
    let mut echoed: u64 = 0;
    loop {
        let n = match read(sock, buf) {
            Ok(0) => return Ok(echoed), // end of file: the client closed its side
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(EchoError::Read { errno, echoed }),
        };
        pause(delay);
        write_all(sock, &buf[..n]).map_err(|errno| EchoError::Write { errno, echoed })?;
        echoed += n as u64;
    }
}

/// The pipe that [`splice`] moves bytes through.
#[derive(Debug)]
pub struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SplicePipe {
    /// A new pipe.
    pub fn new() -> Result<SplicePipe, Errno> {
        let (read, write) = unistd::pipe2(OFlag::O_CLOEXEC)?;
        Ok(SplicePipe { read, write })
    }
}

/// Like [`copy`], with splice(2): socket to pipe, pipe to socket, at most
/// `chunk` bytes at a time.
pub fn splice(
    sock: BorrowedFd<'_>,
    pipe: &SplicePipe,
    chunk: usize,
    delay: Duration,
) -> Result<u64, EchoError> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
    let mut echoed: u64 = 0;
    loop {
        let n = match fcntl::splice(sock, None, &pipe.write, None, chunk, flags) {
            Ok(0) => return Ok(echoed),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno @ (Errno::EINVAL | Errno::ENOSYS)) if echoed == 0 => {
                return Err(EchoError::SpliceUnsupported(errno));
            }
            Err(errno) => return Err(EchoError::Read { errno, echoed }),
        };
        pause(delay);
        let mut left = n;
        while left > 0 {
            match fcntl::splice(&pipe.read, None, sock, None, left, flags) {
                Ok(moved) => left -= moved,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(EchoError::Write { errno, echoed }),
            }
        }
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

fn pause(delay: Duration) {
    if !delay.is_zero() {
        thread::sleep(delay);
    }
}
