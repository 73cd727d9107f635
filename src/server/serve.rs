//! Serving one client in a blocking model (a child, a prefork worker, a
//! thread, or the iterative server itself): the echo loop, and what its
//! end means, as a status and a log line.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{exit_status, Config};
use crate::echo::{self, EchoError, Pace, SplicePipe};
use crate::signals::{self, SigpipeMode};
use crate::{event, notice};

/// How a client was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The status a child would exit with (see [`exit_status`]).
    pub status: i32,
    /// Bytes echoed.
    pub echoed: u64,
}

/// What a blocking model echoes with: a buffer, or a pipe for splice(2).
/// Used for client after client by a worker, a thread or the iterative
/// server. The fork server makes one in the parent, before its loop: each
/// child writes into its own copy-on-write view of the buffer, so it copies
/// only the pages it uses, and nobody allocates (or zeroes) a buffer per
/// connection.
#[derive(Debug)]
pub struct Echoer {
    buf: Vec<u8>,
    /// With `--splice`: the pipe, made on first use (in the process that
    /// uses it: a pipe shared by several children would mix their data).
    pipe: Option<SplicePipe>,
    splice: bool,
}

impl Echoer {
    /// A buffer of `--buffer` bytes (none with `--splice`, unless splice
    /// turns out not to work).
    pub fn new(config: &Config) -> Echoer {
        let buf = if config.splice { Vec::new() } else { vec![0u8; config.buffer] };
        Echoer { buf, pipe: None, splice: config.splice }
    }

    /// Like [`Echoer::new`], with the splice pipe made at once: for a
    /// process that serves client after client itself (the iterative
    /// server), whose descriptors must be the same after each client.
    pub fn with_pipe(config: &Config) -> Echoer {
        let mut echoer = Echoer::new(config);
        echoer.make_pipe(config);
        echoer
    }

    fn make_pipe(&mut self, config: &Config) {
        if self.splice && self.pipe.is_none() {
            match SplicePipe::new() {
                Ok(pipe) => self.pipe = Some(pipe),
                Err(errno) => self.stop_splicing(&format!("cannot create a pipe ({errno})"), config),
            }
        }
    }

    fn echo(&mut self, asock: &TcpStream, config: &Config, pace: Pace) -> Result<u64, EchoError> {
        self.make_pipe(config);
        if let Some(pipe) = &self.pipe {
            match echo::splice(asock.as_fd(), pipe, config.buffer, pace) {
                Err(EchoError::SpliceUnsupported(errno)) => {
                    self.stop_splicing(&format!("splice(2) does not work here ({errno})"), config);
                }
                result => return result,
            }
        }
        echo::copy(asock.as_fd(), &mut self.buf, pace)
    }

    /// Falls back to the copy loop, and says why.
    fn stop_splicing(&mut self, why: &str, config: &Config) {
        notice!("--splice: {why}; using the copy loop");
        self.splice = false;
        self.pipe = None;
        self.buf = vec![0u8; config.buffer];
    }
}

/// Serves the one client of a process (a child, a worker, the iterative
/// server): like [`serve`], with SIGTERM told which socket to stop reading.
pub fn serve_alone(
    asock: &TcpStream,
    client: SocketAddr,
    config: &Config,
    echoer: &mut Echoer,
    grace: Option<Duration>,
) -> Outcome {
    signals::serving(asock);
    let outcome = serve(asock, client, config, echoer, grace);
    signals::not_serving();
    outcome
}

/// Echoes for one client; logs how it ended and returns it. `grace`: the
/// grace period of a stop, for a process or thread that keeps to it on
/// its own (None: a child, which its parent ends with SIGKILL).
pub fn serve(
    asock: &TcpStream,
    client: SocketAddr,
    config: &Config,
    echoer: &mut Echoer,
    grace: Option<Duration>,
) -> Outcome {
    if let Some(idle) = config.idle_timeout {
        // SO_RCVTIMEO and SO_SNDTIMEO: a read that waits, or a write that
        // cannot go on, for that long fails with EAGAIN.
        if let Err(err) =
            asock.set_read_timeout(Some(idle)).and_then(|()| asock.set_write_timeout(Some(idle)))
        {
            notice!("--idle-timeout: cannot set the timeouts of {client}: {err}");
        }
    }
    let pace = Pace { delay: config.delay, grace };
    let (status, echoed) = match echoer.echo(asock, config, pace) {
        Ok(echoed) => match signals::terminate_requested() {
            Some(sig) => (end_after_stop(asock, client, config, grace, sig, echoed), echoed),
            None => {
                event!("finished: {echoed} bytes echoed (client closed)");
                (exit_status::DONE, echoed)
            }
        },
        Err(EchoError::Cut { echoed }) => {
            notice!("grace period over: cut {client} with its last chunk read and not echoed, after {echoed} bytes");
            (exit_status::CUT, echoed)
        }
        Err(EchoError::Write { errno: Errno::EPIPE, echoed }) => {
            // Only reached when SIGPIPE did not kill us: mode ignore or count.
            if config.sigpipe == SigpipeMode::Count {
                notice!(
                    "SIGPIPE (count={}): write to {client} failed with EPIPE after {echoed} bytes echoed",
                    signals::sigpipe_count()
                );
            } else {
                notice!("write to {client} failed with EPIPE after {echoed} bytes echoed (SIGPIPE ignored)");
            }
            (exit_status::BROKEN_PIPE, echoed)
        }
        Err(
            EchoError::Read { errno: Errno::ECONNRESET, echoed }
            | EchoError::Write { errno: Errno::ECONNRESET, echoed },
        ) => {
            notice!("connection reset by {client} after {echoed} bytes echoed");
            (exit_status::RESET, echoed)
        }
        Err(EchoError::Write { errno: Errno::EAGAIN, echoed })
            if signals::terminate_requested().is_some() =>
        {
            notice!("{client} did not read its echo within the grace period: closing after {echoed} bytes");
            (exit_status::CUT, echoed)
        }
        Err(EchoError::Read { errno: Errno::EAGAIN, echoed }) => {
            let idle = config.idle_timeout.unwrap_or_default().as_secs();
            notice!("{client} sent nothing for {idle} s (--idle-timeout): closing after {echoed} bytes");
            (exit_status::IDLE, echoed)
        }
        Err(EchoError::Write { errno: Errno::EAGAIN, echoed }) => {
            let idle = config.idle_timeout.unwrap_or_default().as_secs();
            notice!(
                "{client} took none of its echo for {idle} s (--idle-timeout): closing after {echoed} bytes"
            );
            (exit_status::IDLE, echoed)
        }
        Err(EchoError::Read { errno, echoed }) => {
            notice!("read from {client} failed after {echoed} bytes echoed: {errno}");
            (exit_status::FAILED, echoed)
        }
        Err(EchoError::Write { errno, echoed }) => {
            notice!("write to {client} failed after {echoed} bytes echoed: {errno}");
            (exit_status::FAILED, echoed)
        }
        Err(EchoError::SpliceUnsupported(errno)) => {
            notice!("splice from {client} failed: {errno}");
            (exit_status::FAILED, 0)
        }
    };
    Outcome { status, echoed }
}

/// The end of a connection after a stop, once every byte read has been
/// echoed: the lingering close of [`echo::linger`], within what is left
/// of the grace period (for a child: until the client closes, or its
/// parent's SIGKILL). Logs how it went and returns the status.
fn end_after_stop(
    asock: &TcpStream,
    client: SocketAddr,
    config: &Config,
    grace: Option<Duration>,
    sig: nix::sys::signal::Signal,
    echoed: u64,
) -> i32 {
    let timeout = match grace.and_then(signals::stop_deadline) {
        Some(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
        None => config.idle_timeout,
    };
    match echo::linger(asock, timeout) {
        Ok(0) => {
            event!("finished: {echoed} bytes echoed (stopped reading on {sig})");
            exit_status::DONE
        }
        Ok(discarded) => {
            event!(
                "finished: {echoed} bytes echoed (stopped reading on {sig}; {discarded} bytes sent after it discarded)"
            );
            exit_status::DONE
        }
        Err(Errno::EAGAIN) => {
            let limit = if grace.is_some() { "within the grace period" } else { "(--idle-timeout)" };
            notice!("{client} did not close its side {limit}: closing after {echoed} bytes echoed");
            exit_status::CUT
        }
        Err(errno) => {
            notice!("ending the connection of {client} after {echoed} bytes echoed failed: {errno}");
            if errno == Errno::ECONNRESET {
                exit_status::RESET
            } else {
                exit_status::FAILED
            }
        }
    }
}
