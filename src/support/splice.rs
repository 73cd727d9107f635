//! The pipe that `--splice` moves the echo through: splice(2) takes the
//! bytes from the socket into the pipe and from the pipe back into the
//! socket, so that the kernel passes its own buffers along and the bytes
//! never enter the process. (Linux only; the echo loop, in
//! [`crate::server::echo`], is the same with a buffer or with this pipe.)

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, SpliceFFlags};
use nix::unistd;

/// How splice(2) moves the pages: move them rather than copy where it can,
/// and more is coming.
const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_MORE);

/// A pipe for one connection. When a write to the client fails, what was
/// already moved into the pipe stays there: the pipe must go with the
/// connection, never to the next client (who would get those bytes, or a
/// full pipe that blocks the next splice into it for ever).
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

    /// Moves what `sock` received, up to `chunk` bytes, into the pipe;
    /// returns how many (0: the client closed its side).
    pub fn fill_from(&self, sock: BorrowedFd<'_>, chunk: usize) -> Result<usize, Errno> {
        fcntl::splice(sock, None, self.write.as_fd(), None, chunk, FLAGS)
    }

    /// Moves `n` bytes from the pipe into `sock`, however many calls it takes.
    pub fn drain_into(&self, sock: BorrowedFd<'_>, n: usize) -> Result<(), Errno> {
        let mut left = n;
        while left > 0 {
            match fcntl::splice(self.read.as_fd(), None, sock, None, left, FLAGS) {
                Ok(moved) => left -= moved,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno),
            }
        }
        Ok(())
    }
}
