//! The child's side of a fork (a per-connection child, or a prefork
//! worker): what changes in a process once it is a child of the server,
//! and how it leaves, with an exit status that tells its parent how the
//! service of its client ended.
//!
//! What a child changes, in this order (`fork.rs` says each in its own
//! line): its log lines say `[child PID]` (`log::become_child`); its
//! signals are its own ([`take_signals`]); it closes the parent's wake
//! pipe ([`close_wake_pipe`]); and it closes msock, on which the parent
//! goes on accepting. Then it serves its client, and leaves with
//! [`exit`]: its [`ExitStatus`] is its report, which the parent's reaper
//! reads back.

use std::fmt;

use nix::sys::signal::{SaFlags, SigHandler, Signal};

use crate::support::signals::{self, SigpipeMode};
use crate::support::sigterm_experiments;
use crate::support::wake::WakePipe;
use crate::{event, notice};

/// Sets the signal dispositions of a freshly forked child. It inherits
/// its parent's handlers: the SIGTERM/SIGINT handler suits it as it is
/// (a stop ends its service gracefully), but SIGCHLD and SIGUSR1 are the
/// parent's business, and SIGPIPE gets the mode `--sigpipe` asks for. A
/// child that cannot set them says so and exits with status 1.
pub fn take_signals(sigpipe: SigpipeMode) {
    let set = || {
        signals::install(Signal::SIGCHLD, SigHandler::SigDfl, SaFlags::empty())?;
        // SIGUSR1's default action would kill a child that gets it (from
        // `kill -USR1 -PGID`, say).
        signals::install(Signal::SIGUSR1, SigHandler::SigIgn, SaFlags::empty())?;
        signals::apply_sigpipe_mode(sigpipe)?;
        sigterm_experiments::unchain_in_child()
    };
    if let Err(err) = set() {
        notice!("{err:#}");
        exit(ExitStatus::Failed);
    }
}

/// Closes the parent's wake pipe, which a child does not wait on: its
/// handlers stop writing to it as it is dropped.
pub fn close_wake_pipe(wake: WakePipe) {
    let (read_fd, write_fd) = wake.fds();
    drop(wake);
    event!("closed the wake pipe (fds {read_fd} and {write_fd})");
}

/// Ends a child with `status`. With `_exit`, not `exit`: the child leaves
/// at once, without running the exit handlers or flushing the stdio
/// buffers it inherited from the parent (a C child would print twice
/// whatever the parent had left in a `printf` buffer before fork). It has
/// closed what it opened already. Leaving this way also spares the child
/// the pages that the exit handlers would have written to, and so copied.
pub fn exit(status: ExitStatus) -> ! {
    // SAFETY: _exit has no preconditions: it ends the process at once.
    unsafe { libc::_exit(status.into()) }
}

/// The status a child of the server exits with: its report to the parent,
/// whose reaper reads it back, counts it and says what it means (`exited
/// with status 4: connection reset`). A thread, and the server that serves
/// its clients itself, count their clients by the same statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the client closed, or a stop ended the service gracefully.
    Done,
    /// 1: reading or writing failed otherwise, or the child could not set
    /// itself up.
    Failed,
    /// 3: the client was gone when its echo was written (EPIPE).
    BrokenPipe,
    /// 4: the client reset the connection.
    Reset,
    /// 5: the child cut its client when a stop's grace period ran out.
    Cut,
    /// 6: `--idle-timeout` closed the connection.
    Idle,
    /// 70: the child panicked, a bug (the programs' own status for an
    /// internal error, `cli::EXIT_INTERNAL`).
    Internal,
    /// Any other status: not one of ours.
    Other(i32),
}

impl From<ExitStatus> for i32 {
    fn from(status: ExitStatus) -> i32 {
        match status {
            ExitStatus::Done => 0,
            ExitStatus::Failed => 1,
            ExitStatus::BrokenPipe => 3,
            ExitStatus::Reset => 4,
            ExitStatus::Cut => 5,
            ExitStatus::Idle => 6,
            ExitStatus::Internal => 70,
            ExitStatus::Other(code) => code,
        }
    }
}

impl From<i32> for ExitStatus {
    /// What the reaper makes of the status a child exited with.
    fn from(code: i32) -> ExitStatus {
        match code {
            0 => ExitStatus::Done,
            1 => ExitStatus::Failed,
            3 => ExitStatus::BrokenPipe,
            4 => ExitStatus::Reset,
            5 => ExitStatus::Cut,
            6 => ExitStatus::Idle,
            70 => ExitStatus::Internal,
            code => ExitStatus::Other(code),
        }
    }
}

impl fmt::Display for ExitStatus {
    /// A few words on what the status means, for the reaper's line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitStatus::Done => "done",
            ExitStatus::BrokenPipe => "broken pipe",
            ExitStatus::Reset => "connection reset",
            ExitStatus::Cut => "cut after the grace period",
            ExitStatus::Idle => "idle timeout",
            ExitStatus::Internal => "internal error",
            ExitStatus::Failed | ExitStatus::Other(_) => "failed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_read_back_is_the_status_that_was_left() {
        for code in [0, 1, 2, 3, 4, 5, 6, 7, 70, 255] {
            assert_eq!(i32::from(ExitStatus::from(code)), code);
        }
        assert_eq!(ExitStatus::from(4).to_string(), "connection reset");
        assert_eq!(ExitStatus::from(2).to_string(), "failed");
        assert_eq!(ExitStatus::from(70).to_string(), "internal error");
    }
}
