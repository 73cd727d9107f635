//! The counts a server keeps, and the two lines that print them: the
//! status line that SIGUSR1 asks for, and the summary, the last line of a
//! graceful shutdown.

use std::fmt;

use super::child::ExitStatus;
use crate::notice;

/// The counts printed by the last line of a graceful shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub accepted: u64,
    /// Children reaped (in the threaded model: threads joined; in the
    /// iterative and poll models: connections finished).
    pub reaped: u64,
    /// Clients lost to a broken connection: a child killed by SIGPIPE, or
    /// a write that failed with EPIPE.
    pub sigpipe: u64,
    /// Connections the server ended itself when the grace period ran out
    /// (a child, a thread or the server's own loop: the echo not taken, or
    /// the client not closing).
    pub cut: u64,
    /// Children sent SIGKILL by their parent when the grace period ended:
    /// those that could not end on their own.
    pub killed: u64,
}

impl Summary {
    /// Counts a client whose service is over, by the exit status it ended
    /// with: a child's, as the reaper reads it, or the one a thread or the
    /// server's own loop would have left with ([`Ending::exit_status`](super::echo::Ending::exit_status)).
    pub fn served(&mut self, status: ExitStatus) {
        self.reaped += 1;
        match status {
            ExitStatus::BrokenPipe => self.sigpipe += 1,
            ExitStatus::Cut => self.cut += 1, // the server cut its client itself
            _ => {}
        }
    }

    /// Logs the summary (after how many log lines were dropped, if any were).
    pub fn log(&self) {
        let dropped = crate::support::log::dropped();
        if dropped > 0 {
            notice!("{dropped} log lines were dropped: stderr was full, stalled or closed");
        }
        notice!("{self}");
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown: accepted={} reaped={} sigpipe={} cut={} killed={}",
            self.accepted, self.reaped, self.sigpipe, self.cut, self.killed
        )
    }
}

/// The status line that `kill -USR1 PID` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Clients being served now: live children, threads, connections.
    pub serving: usize,
    /// Finished and not collected yet: zombie children, threads not joined.
    pub zombies: usize,
    /// The counts so far.
    pub counts: Summary,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.counts;
        write!(
            f,
            "status: children={} zombies={} accepted={} reaped={} sigpipe={}",
            self.serving, self.zombies, s.accepted, s.reaped, s.sigpipe
        )
    }
}
