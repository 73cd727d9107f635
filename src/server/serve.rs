//! Serving one client in a blocking model (a child, a prefork worker, a
//! thread, or the iterative server itself): the echo loop, the careful
//! end after a stop, and how it all ended, as an [`Ending`] and a log line.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::ending::Ending;
use super::Config;
use crate::echo::{self, EchoError, Pace, SplicePipe};
use crate::notice;
use crate::signals::{self, SigpipeMode};

/// How a client was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// How the service ended.
    pub ending: Ending,
    /// Bytes echoed.
    pub echoed: u64,
}

/// What a blocking model echoes with: a buffer, or, with `--splice`, a
/// pipe for splice(2). Used for client after client by a worker, a thread
/// or the iterative server. The fork server makes one in the parent,
/// before its loop: each child writes into its own copy-on-write view of
/// the buffer, so it copies only the pages it uses, and nobody allocates
/// (or zeroes) a buffer per connection.
///
/// The splice pipe is made afresh for every connection and closed after
/// it, never reused: when a write to a client fails (a reset, a timeout),
/// the bytes already moved into the pipe stay there, and a pipe kept for
/// the next client would hand it this client's bytes (and, full, could
/// block the next splice into it for ever).
#[derive(Debug)]
pub struct Echoer {
    /// The copy loop's buffer (empty while splice does the work).
    buf: Vec<u8>,
    /// Whether to try splice(2): `--splice`, until it turns out not to work.
    splice: bool,
}

impl Echoer {
    /// A buffer of `--buffer` bytes (none with `--splice`, unless splice
    /// turns out not to work).
    pub fn new(config: &Config) -> Echoer {
        let buf = if config.splice { Vec::new() } else { vec![0u8; config.buffer] };
        Echoer { buf, splice: config.splice }
    }

    fn echo(&mut self, asock: &TcpStream, config: &Config, pace: Pace) -> Result<u64, EchoError> {
        if self.splice {
            // The pipe of this connection only; closed when it goes out of scope.
            match SplicePipe::new() {
                Ok(pipe) => match echo::splice(asock.as_fd(), &pipe, config.buffer, pace) {
                    Err(EchoError::SpliceUnsupported(errno)) => {
                        notice!("--splice: splice(2) does not work here ({errno}); using the copy loop");
                        self.splice = false;
                    }
                    result => return result,
                },
                // Out of descriptors, say: this client goes through the copy loop.
                Err(errno) => notice!("--splice: cannot create a pipe ({errno}); this client is copied"),
            }
        }
        if self.buf.is_empty() {
            self.buf = vec![0u8; config.buffer];
        }
        echo::copy(asock.as_fd(), &mut self.buf, pace)
    }
}

/// Serves the one client of a process (a child, a worker, the iterative
/// server): like [`serve`], with SIGTERM told which socket to stop reading.
pub fn serve_alone(
    asock: &TcpStream,
    client: SocketAddr,
    config: &Config,
    echoer: &mut Echoer,
    grace: Duration,
) -> Outcome {
    signals::serving(asock);
    let outcome = serve(asock, client, config, echoer, grace);
    signals::not_serving();
    outcome
}

/// Echoes for one client; logs how it ended and returns it. `grace`: the
/// grace period of a stop, which every process and thread keeps to on its
/// own (a child's a little shorter than its parent's: see
/// [`Config::child_grace`]).
pub fn serve(
    asock: &TcpStream,
    client: SocketAddr,
    config: &Config,
    echoer: &mut Echoer,
    grace: Duration,
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
    let (ending, echoed) = match echoer.echo(asock, config, pace) {
        Ok(echoed) => match signals::terminate_requested() {
            Some(sig) => (end_after_stop(asock, grace, sig), echoed),
            None => (Ending::ClientClosed, echoed),
        },
        Err(EchoError::Cut { echoed }) => (Ending::Cut, echoed),
        Err(EchoError::Read { errno, echoed }) => (failed("read", errno, config), echoed),
        Err(EchoError::Write { errno, echoed }) => (failed("write", errno, config), echoed),
        Err(EchoError::SpliceUnsupported(errno)) => (Ending::Failed { call: "splice", errno }, 0),
    };
    ending.log(None, echoed);
    Outcome { ending, echoed }
}

/// What a failed read or write means.
fn failed(call: &'static str, errno: Errno, config: &Config) -> Ending {
    match errno {
        // Only reached when SIGPIPE did not kill us: mode ignore or count.
        Errno::EPIPE => {
            Ending::BrokenPipe { count: (config.sigpipe == SigpipeMode::Count).then(signals::sigpipe_count) }
        }
        Errno::ECONNRESET => Ending::Reset,
        // A timeout: the stop's (the grace period ran out) or --idle-timeout's.
        Errno::EAGAIN if signals::terminate_requested().is_some() => Ending::Cut,
        Errno::EAGAIN => Ending::Idle(config.idle_timeout.unwrap_or_default()),
        errno => Ending::Failed { call, errno },
    }
}

/// The end of a connection after a stop, once every byte read has been
/// echoed: the lingering close of [`echo::linger`], within what is left of
/// the grace period; a client that has not closed by then is let go.
fn end_after_stop(asock: &TcpStream, grace: Duration, sig: nix::sys::signal::Signal) -> Ending {
    let deadline = signals::stop_deadline(grace).unwrap_or_else(|| Instant::now() + grace);
    match echo::linger(asock, deadline) {
        Ok(discarded) => Ending::Stopped { sig, discarded },
        Err(Errno::EAGAIN) => Ending::Unclosed { sig },
        Err(Errno::ECONNRESET) => Ending::Reset,
        Err(errno) => Ending::Failed { call: "closing", errno },
    }
}
