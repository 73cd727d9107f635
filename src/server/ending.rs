//! How the service of one client ended, in every model: one type, with
//! the exit status a child leaves with (so that its parent can tell) and
//! the words the log uses for it.
//!
//! A child logs `finished: N bytes echoed (WHY)` and exits with
//! [`Ending::exit_status`]; its parent's reaper line repeats the meaning of
//! that status (`exited with status 4: connection reset`). A thread, the
//! iterative server and the poll server log the same words.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::{event, notice};

/// How the service of one client ended.
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

/// Exit statuses, for the reaper's line (what a child's status means).
const EXIT_DONE: i32 = 0;
const EXIT_FAILED: i32 = 1;
const EXIT_BROKEN_PIPE: i32 = 3;
const EXIT_RESET: i32 = 4;
const EXIT_CUT: i32 = 5;
const EXIT_IDLE: i32 = 6;
/// A child that panicked (a bug) leaves with the programs' own status for
/// an internal error.
const EXIT_INTERNAL: i32 = crate::cli::EXIT_INTERNAL as i32;

impl Ending {
    /// The status a child that served the client exits with.
    pub fn exit_status(&self) -> i32 {
        match self {
            Ending::ClientClosed | Ending::Stopped { .. } => EXIT_DONE,
            Ending::BrokenPipe { .. } => EXIT_BROKEN_PIPE,
            Ending::Reset => EXIT_RESET,
            Ending::Cut | Ending::Unclosed { .. } => EXIT_CUT,
            Ending::Idle(_) => EXIT_IDLE,
            Ending::Failed { .. } => EXIT_FAILED,
        }
    }

    /// A few words on what a child's exit status means, for the reaper's line.
    pub fn meaning(status: i32) -> &'static str {
        match status {
            EXIT_DONE => "done",
            EXIT_BROKEN_PIPE => "broken pipe",
            EXIT_RESET => "connection reset",
            EXIT_CUT => "cut after the grace period",
            EXIT_IDLE => "idle timeout",
            EXIT_INTERNAL => "internal error",
            _ => "failed",
        }
    }

    /// Whether the status of a child says it lost its client to a broken
    /// connection (the `sigpipe=` of the summary).
    pub fn is_broken_pipe(status: i32) -> bool {
        status == EXIT_BROKEN_PIPE
    }

    /// Whether the status of a child says it cut its client itself when the
    /// grace period ran out (the `cut=` of the summary).
    pub fn is_cut(status: i32) -> bool {
        status == EXIT_CUT
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
        let whom = ClientAfter(client);
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

/// " ADDR" after `finished` in a log line, when there is one to show.
struct ClientAfter(Option<SocketAddr>);

impl fmt::Display for ClientAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(client) => write!(f, " {client}"),
            None => Ok(()),
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
            assert_eq!(Ending::meaning(ending.exit_status()), meaning, "{ending:?}");
        }
        assert_eq!(Ending::meaning(70), "internal error");
    }
}
