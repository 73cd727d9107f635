//! The echo service on one slave socket: read what the client sent, write it
//! back, until the client closes. This is what a child of `TCPechod` runs
//! (the C program's `TCPechod()` function), and what a worker, a thread or
//! the iterative server runs for each of its clients.
//!
//! Two things the C version got wrong are done right here:
//! - `write` may write fewer bytes than asked (a short write), so the loop
//!   writes again until everything that was read has gone out;
//! - a call interrupted by a signal handler fails with EINTR, which is not
//!   an error: the call is made again. (Our handlers are installed with
//!   SA_RESTART, so the kernel restarts `read` and `write` itself; the
//!   loops still take EINTR for what it is, as every careful C loop does.)
//!
//! The data are bytes, never text: any value, any length, no line limit.
//!
//! When the server stops (SIGTERM), the loop stops reading: it echoes the
//! chunk in hand and ends. The connection then needs a careful end of its
//! own, [`linger`], or the echo already written could be lost.
//!
//! [`copy`] moves the bytes through a buffer in the process. [`splice`]
//! (Linux, `--splice`) moves them from the socket into a pipe and from the
//! pipe back into the socket with splice(2): the kernel passes its own
//! buffers along and the bytes never enter the process.

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, SpliceFFlags};
use nix::unistd::{self, read, write};

use crate::signals;

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
    /// The grace period of a stop ended during `--delay`: the chunk read
    /// was not echoed.
    Cut { echoed: u64 },
}

/// How the loop paces its echo, and how long a stop gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Wait this long before echoing each chunk (`--delay`: a slow
    /// service, to make concurrency visible).
    pub delay: Duration,
    /// The grace period of a stop, which the loop keeps to on its own.
    pub grace: Duration,
}

impl Pace {
    /// Waits `delay`; false when a stop's grace period ran out first.
    fn pause(&self) -> bool {
        self.delay.is_zero() || signals::pause(self.delay, self.grace)
    }
}

/// Whether the server asked this process to stop serving.
fn stopping() -> bool {
    signals::terminate_requested().is_some()
}

/// Echoes everything read from `sock` back to it, through `buf`, until end
/// of file or a stop; returns the number of bytes echoed.
pub fn copy(sock: BorrowedFd<'_>, buf: &mut [u8], pace: Pace) -> Result<u64, EchoError> {
    let mut echoed: u64 = 0;
    while !stopping() {
        let n = match read(sock, buf) {
            Ok(0) => break, // end of file: the client closed its side
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if stopping() => break, // the stop's receive timeout
            Err(errno) => return Err(EchoError::Read { errno, echoed }),
        };
        if !pace.pause() {
            return Err(EchoError::Cut { echoed });
        }
        write_all(sock, &buf[..n]).map_err(|errno| EchoError::Write { errno, echoed })?;
        echoed += n as u64;
    }
    Ok(echoed)
}

/// The pipe that [`splice`] moves bytes through: one per connection. When
/// a write to the client fails, what was already moved into the pipe
/// stays there; it must go with the connection, never to the next client.
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
pub fn splice(sock: BorrowedFd<'_>, pipe: &SplicePipe, chunk: usize, pace: Pace) -> Result<u64, EchoError> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
    let mut echoed: u64 = 0;
    while !stopping() {
        let n = match fcntl::splice(sock, None, &pipe.write, None, chunk, flags) {
            Ok(0) => break,
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if stopping() => break,
            Err(errno @ (Errno::EINVAL | Errno::ENOSYS)) if echoed == 0 => {
                return Err(EchoError::SpliceUnsupported(errno));
            }
            Err(errno) => return Err(EchoError::Read { errno, echoed }),
        };
        if !pace.pause() {
            return Err(EchoError::Cut { echoed });
        }
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
    Ok(echoed)
}

/// The careful end of a connection that the server stops serving while
/// the client may still be sending (a "lingering close", as web servers
/// call it): shutdown(SHUT_WR) sends our FIN after the last byte of echo,
/// then whatever the client still sends is read and thrown away until its
/// own FIN (a read that returns 0). The caller then closes the socket.
/// Returns the bytes thrown away; Err(EAGAIN) if `deadline` passed first.
///
/// Closing at once would put the echo at risk: a socket closed with data
/// still unread, or one that receives data after it was closed, answers
/// with RST, and the RST makes the kernel throw away the echo not yet
/// delivered, which can be megabytes. A client that reads its echo and
/// closes when it sees our FIN ends this at once.
pub fn linger(sock: &TcpStream, deadline: Instant) -> Result<u64, Errno> {
    let errno = |err: std::io::Error| err.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
    sock.shutdown(Shutdown::Write).map_err(errno)?;
    let mut buf = [0u8; 16 * 1024];
    let mut discarded = 0;
    let mut reader = sock;
    loop {
        // The receive timeout is set again before every read: the stop may
        // have set one of its own meanwhile (see signals::stop_thread).
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Errno::EAGAIN);
        }
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(errno)?;
        match reader.read(&mut buf) {
            Ok(0) => return Ok(discarded),
            Ok(n) => discarded += n as u64,
            Err(err) if matches!(err.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
            Err(err) => return Err(errno(err)),
        }
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
