//! The echo service on one slave socket (asock): read what the client
//! sent, write it back, until the client closes. This is what a child of
//! `TCPechod` runs (the C program's `TCPechod()` function), and what a
//! worker, a thread or the iterative server runs for each of its clients;
//! then it says how the service ended ([`Ending`]), in the log and, for a
//! child, in its exit status.
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
//! The bytes go through a buffer in the process or, with `--splice`,
//! through a pipe in the kernel ([`crate::support::splice`]): the loop is
//! the same.

use std::fmt;
use std::io::{ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::ppoll;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::time::TimeSpec;
use nix::unistd::{read, write};

use super::child::ExitStatus;
use super::config::Config;
use crate::support::signals::{self, STOP_SIGNALS};
use crate::support::splice::SplicePipe;
use crate::{event, notice};

/// The buffer size of the copy loop unless `--buffer` says otherwise: the
/// best of the sizes measured (bench/DEFAULTS.md).
pub const DEFAULT_BUFFER: usize = 64 * 1024;

/// The echo service of a process or a thread, for client after client:
/// the settings, the grace period of a stop, and what the bytes go
/// through (a buffer, or, with `--splice`, a pipe for each connection).
///
/// The fork server makes one in the parent, before its loop: each child
/// writes into its own copy-on-write view of the buffer, so it copies only
/// the pages it uses, and nobody allocates (or zeroes) a buffer per
/// connection. A prefork worker and the iterative server use theirs for
/// client after client; a thread of the threaded server makes its own.
///
/// The splice pipe is made afresh for every connection and closed after
/// it, never reused: when a write to a client fails (a reset, a timeout),
/// the bytes already moved into the pipe stay there, and a pipe kept for
/// the next client would hand it this client's bytes (and, full, could
/// block the next splice into it for ever).
#[derive(Debug)]
pub struct Echoer<'a> {
    config: &'a Config,
    /// The grace period of a stop, which the service keeps to on its own.
    grace: Duration,
    /// Whether this process's SIGTERM handler stops the reading itself
    /// (a process that serves its clients one at a time), or the acceptor
    /// does, thread by thread (the threaded server: one handler, many
    /// sockets).
    alone: bool,
    /// The copy loop's buffer (empty while splice does the work).
    buf: Vec<u8>,
    /// Whether to try splice(2): `--splice`, until it turns out not to work.
    splice: bool,
}

impl<'a> Echoer<'a> {
    /// The service of a process that serves its clients itself, one at a
    /// time (a child, a prefork worker, the iterative server), keeping to
    /// `grace` after a stop (a child's a little shorter than its parent's:
    /// see [`Config::child_grace`]).
    pub fn for_process(config: &'a Config, grace: Duration) -> Echoer<'a> {
        Echoer::new(config, grace, true)
    }

    /// The service of a thread of the threaded server, which keeps to the
    /// whole grace period itself: nobody can kill a thread as a parent
    /// kills a child.
    pub fn for_thread(config: &'a Config) -> Echoer<'a> {
        Echoer::new(config, config.grace, false)
    }

    fn new(config: &'a Config, grace: Duration, alone: bool) -> Echoer<'a> {
        // A buffer of `--buffer` bytes; none with `--splice`, unless splice
        // turns out not to work.
        let buf = if config.splice { Vec::new() } else { vec![0u8; config.buffer] };
        Echoer { config, grace, alone, buf, splice: config.splice }
    }

    /// Echoes for one client until it closes, a stop or a failure; logs how
    /// it ended (`finished: N bytes echoed (WHY)`) and returns it.
    pub fn serve(&mut self, asock: &TcpStream, client: SocketAddr) -> Ending {
        if self.alone {
            signals::serving(asock, self.grace);
        }
        if let Some(idle) = self.config.idle_timeout {
            // SO_RCVTIMEO and SO_SNDTIMEO: a read that waits, or a write that
            // cannot go on, for that long fails with EAGAIN.
            if let Err(err) =
                asock.set_read_timeout(Some(idle)).and_then(|()| asock.set_write_timeout(Some(idle)))
            {
                notice!("--idle-timeout: cannot set the timeouts of {client}: {err}");
            }
        }
        let (ending, echoed) = match self.echo(asock.as_fd()) {
            Ok(echoed) => match signals::terminate_requested() {
                Some(sig) => (self.end_after_stop(asock, sig), echoed),
                None => (Ending::ClientClosed, echoed),
            },
            Err(ended_early) => ended_early,
        };
        ending.log(None, echoed);
        if self.alone {
            signals::not_serving();
        }
        ending
    }

    /// The echo loop through the pipe of `--splice`, where splice(2) works,
    /// or else through the buffer.
    fn echo(&mut self, sock: BorrowedFd<'_>) -> Result<u64, (Ending, u64)> {
        if self.splice {
            // The pipe of this connection only; closed when it goes out of scope.
            match SplicePipe::new() {
                Ok(pipe) => match echo_loop(sock, &mut Via::Pipe(&pipe, self.config.buffer), self) {
                    // The first splice from the socket failed: nothing was
                    // taken from it yet, and the copy loop can take over.
                    Err((
                        Ending::Failed { call: "read", errno: errno @ (Errno::EINVAL | Errno::ENOSYS) },
                        0,
                    )) => {
                        notice!("--splice: splice(2) does not work here ({errno}); using the copy loop");
                        self.splice = false;
                    }
                    result => return result,
                },
                // Out of descriptors, say: this client goes through the copy loop.
                Err(errno) => notice!("--splice: cannot create a pipe ({errno}); this client is copied"),
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            buf = vec![0u8; self.config.buffer];
        }
        let result = echo_loop(sock, &mut Via::Buffer(&mut buf), self);
        self.buf = buf;
        result
    }

    /// The end of a connection after a stop, once every byte read has been
    /// echoed: the lingering close of [`linger`], within what is left of
    /// the grace period; a client that has not closed by then is let go.
    fn end_after_stop(&self, asock: &TcpStream, sig: Signal) -> Ending {
        let deadline = signals::stop_deadline(self.grace).unwrap_or_else(|| Instant::now() + self.grace);
        match linger(asock, deadline) {
            Ok(discarded) => Ending::Stopped { sig, discarded },
            Err(Errno::EAGAIN) => Ending::Unclosed { sig },
            Err(Errno::ECONNRESET) => Ending::Reset,
            Err(errno) => Ending::Failed { call: "closing", errno },
        }
    }
}

/// What the echo goes through: a buffer in the process, or a pipe in the
/// kernel (`--splice`, at most a chunk of this many bytes at a time).
enum Via<'b> {
    Buffer(&'b mut [u8]),
    Pipe(&'b SplicePipe, usize),
}

impl Via<'_> {
    /// Takes what the client sent, as much as fits (0: it closed its side).
    fn take(&mut self, sock: BorrowedFd<'_>) -> Result<usize, Errno> {
        match self {
            Via::Buffer(buf) => read(sock, buf),
            Via::Pipe(pipe, chunk) => pipe.fill_from(sock, *chunk),
        }
    }

    /// Sends the `n` bytes just taken back to the client, all of them.
    fn give_back(&mut self, sock: BorrowedFd<'_>, n: usize) -> Result<(), Errno> {
        match self {
            Via::Buffer(buf) => write_all(sock, &buf[..n]),
            Via::Pipe(pipe, _) => pipe.drain_into(sock, n),
        }
    }
}

/// The echo loop: takes what the client sent, waits `--delay`, sends it
/// back, until end of file or a stop; returns the bytes echoed, or how
/// the service ended early with the bytes echoed before.
fn echo_loop(sock: BorrowedFd<'_>, via: &mut Via<'_>, echoer: &Echoer<'_>) -> Result<u64, (Ending, u64)> {
    let config = echoer.config;
    let mut echoed: u64 = 0;
    while !stopping() {
        let n = match via.take(sock) {
            Ok(0) => break, // end of file: the client closed its side
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if stopping() => break, // the stop's receive timeout
            Err(errno) => return Err((Ending::after_failed("read", errno, config), echoed)),
        };
        if !pause(config.delay, echoer.grace) {
            return Err((Ending::Cut, echoed));
        }
        via.give_back(sock, n).map_err(|errno| (Ending::after_failed("write", errno, config), echoed))?;
        echoed += n as u64;
    }
    Ok(echoed)
}

/// Whether the server asked this process to stop serving.
fn stopping() -> bool {
    signals::terminate_requested().is_some()
}

/// Waits `delay` before an echo (`--delay`: a slow service, to make
/// concurrency visible). A stop cuts the wait short when its `grace`
/// period ends; then it returns false: the echo it was delaying is not to
/// be sent.
///
/// A stop signal must not slip in between the check of the deadline and
/// the start of the sleep, or the sleep would last the whole delay: the
/// stop signals are blocked meanwhile, and ppoll(2) unblocks them only
/// while it sleeps, atomically (what pselect(2) was made for).
fn pause(delay: Duration, grace: Duration) -> bool {
    if delay.is_zero() {
        return true;
    }
    let end = Instant::now() + delay;
    let stops = SigSet::from_iter(STOP_SIGNALS);
    let Ok(old) = stops.thread_swap_mask(SigmaskHow::SIG_BLOCK) else {
        thread::sleep(delay);
        return true;
    };
    let finished = loop {
        let deadline = signals::stop_deadline(grace);
        let until = deadline.map_or(end, |deadline| deadline.min(end));
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break deadline.is_none_or(|deadline| end <= deadline);
        }
        // EINTR: a handler ran; the loop looks again.
        let _ = ppoll(&mut [], Some(TimeSpec::from_duration(left)), Some(old));
    };
    let _ = old.thread_set_mask();
    finished
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
        // have set one of its own meanwhile (see signals::put_stop_timeouts).
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
fn write_all(fd: impl AsFd, mut data: &[u8]) -> Result<(), Errno> {
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

/// How the service of one client ended, in every model: the words the
/// log uses for it, and the exit status a child leaves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client closed its side, and everything it sent was echoed.
    ClientClosed,
    /// A stop signal ended the service: everything read was echoed, then
    /// the lingering close; `discarded` bytes came after it.
    Stopped { sig: Signal, discarded: u64 },
    /// A write failed with EPIPE: the client was gone (SIGPIPE ignored, or
    /// counted by the handler: `count` is its count then).
    BrokenPipe { count: Option<u64> },
    /// The client reset the connection (ECONNRESET).
    Reset,
    /// Cut when the grace period of a stop ran out before the echo of what
    /// was read could be written (a delay, or a client that does not read).
    Cut,
    /// A stop signal ended the service, everything read was echoed, and
    /// the client did not close its side within the grace period: the
    /// connection was closed anyway.
    Unclosed { sig: Signal },
    /// Closed by `--idle-timeout`: nothing moved either way for this long.
    Idle(Duration),
    /// Reading or writing failed otherwise.
    Failed { call: &'static str, errno: Errno },
}

impl Ending {
    /// How the service ends when `call` ("read", "write") failed with
    /// `errno`.
    pub fn after_failed(call: &'static str, errno: Errno, config: &Config) -> Ending {
        match errno {
            // Only reached when SIGPIPE did not kill us: mode ignore or count.
            Errno::EPIPE => Ending::BrokenPipe { count: signals::sigpipe_count() },
            Errno::ECONNRESET => Ending::Reset,
            // A timeout: the stop's (the grace period ran out) or --idle-timeout's.
            Errno::EAGAIN if stopping() => Ending::Cut,
            Errno::EAGAIN => Ending::Idle(config.idle_timeout.unwrap_or_default()),
            errno => Ending::Failed { call, errno },
        }
    }

    /// The status a child that served the client exits with; the models
    /// without children count their clients by it too.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Ending::ClientClosed | Ending::Stopped { .. } => ExitStatus::Done,
            Ending::BrokenPipe { .. } => ExitStatus::BrokenPipe,
            Ending::Reset => ExitStatus::Reset,
            Ending::Cut | Ending::Unclosed { .. } => ExitStatus::Cut,
            Ending::Idle(_) => ExitStatus::Idle,
            Ending::Failed { .. } => ExitStatus::Failed,
        }
    }

    /// Whether the service went as it should: logged as an ordinary event
    /// (`-q` leaves it out), where anything else is logged always.
    pub fn is_normal(&self) -> bool {
        matches!(self, Ending::ClientClosed | Ending::Stopped { .. })
    }

    /// Logs `finished: N bytes echoed (WHY)`, with the client's address
    /// after `finished` when the line does not say it otherwise (the poll
    /// server serves every client in one process).
    pub fn log(&self, client: Option<SocketAddr>, echoed: u64) {
        let whom = client.map_or(String::new(), |client| format!(" {client}"));
        match self.is_normal() {
            true => event!("finished{whom}: {echoed} bytes echoed ({self})"),
            false => notice!("finished{whom}: {echoed} bytes echoed ({self})"),
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::ClientClosed => f.write_str("client closed"),
            Ending::Stopped { sig, discarded: 0 } => write!(f, "stopped reading on {sig}"),
            Ending::Stopped { sig, discarded } => {
                write!(f, "stopped reading on {sig}; {discarded} bytes sent after it discarded")
            }
            Ending::BrokenPipe { count: Some(count) } => {
                write!(f, "broken pipe: SIGPIPE caught (count={count}), the write got EPIPE")
            }
            Ending::BrokenPipe { count: None } => {
                f.write_str("broken pipe: SIGPIPE ignored, the write got EPIPE")
            }
            Ending::Reset => f.write_str("connection reset by the client"),
            Ending::Cut => f.write_str("cut after the grace period"),
            Ending::Unclosed { sig } => write!(
                f,
                "stopped reading on {sig}; the client did not close within the grace period: closed anyway"
            ),
            Ending::Idle(timeout) => write!(f, "idle for {} s (--idle-timeout)", timeout.as_secs()),
            Ending::Failed { call, errno } => write!(f, "{call} failed: {errno}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_has_a_status_that_means_it() {
        let endings = [
            (Ending::ClientClosed, "done"),
            (Ending::Stopped { sig: Signal::SIGTERM, discarded: 3 }, "done"),
            (Ending::BrokenPipe { count: Some(1) }, "broken pipe"),
            (Ending::Reset, "connection reset"),
            (Ending::Cut, "cut after the grace period"),
            (Ending::Unclosed { sig: Signal::SIGINT }, "cut after the grace period"),
            (Ending::Idle(Duration::from_secs(1)), "idle timeout"),
            (Ending::Failed { call: "read", errno: Errno::EIO }, "failed"),
        ];
        for (ending, meaning) in endings {
            let status = ending.exit_status();
            assert_eq!(ExitStatus::from(i32::from(status)), status, "{ending:?}");
            assert_eq!(status.to_string(), meaning, "{ending:?}");
        }
    }
}
