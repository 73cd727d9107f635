//! The reaper: the SIGCHLD handler that collects finished children.
//!
//! A child that exits does not vanish: it stays in the process table as a
//! zombie (`<defunct>` in `ps x`) holding its exit status until its parent
//! collects it with wait(2). The kernel sends the parent SIGCHLD when a child
//! ends, and this handler answers by calling `waitpid(-1, WNOHANG)` in a loop
//! until no finished child is left. It must loop because signals are not
//! queued: if three children end while the handler is busy, it receives one
//! more SIGCHLD, not three. WNOHANG keeps it from blocking while other
//! children are still alive (Comer's C reaper loops on `wait3` the same way).
//!
//! The handler may not log (that allocates and locks stderr): it leaves
//! what it reaped in a ring of records (`reaper/ring.rs`) and wakes the main loop,
//! which logs it.

mod ring;

use std::fmt;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, SaFlags, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

use crate::signals;

/// The SIGCHLD handler: collect every child that has ended, without
/// blocking, saving errno for the code it interrupted.
extern "C" fn reaper(_sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    while ring::has_room() {
        let mut status = 0;
        // SAFETY: waitpid is async-signal-safe and `status` is a valid place
        // for it to write. (Called directly: nix's waitpid turns a death by a
        // signal it has no name for into an error, and would lose a child.)
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break; // 0: children alive, none finished; -1 (ECHILD): no children
        }
        ring::push(pid, status);
    }
    signals::wake_main_loop();
    Errno::set_raw(saved_errno);
}

/// Installs the reaper as the SIGCHLD handler. SA_NOCLDSTOP: a child stopped
/// with `kill -STOP` has not ended, so it should not wake the reaper.
pub fn install() -> Result<()> {
    let flags = SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP;
    signals::install(Signal::SIGCHLD, SigHandler::Handler(reaper), flags).map(drop)
}

/// Runs the reaper now, for children that ended before it was installed
/// (their SIGCHLD was discarded) or while its ring was full.
pub fn reap_now() -> Result<()> {
    signal::raise(Signal::SIGCHLD).context("raise SIGCHLD")
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It called exit with this status.
    Exited(i32),
    /// A signal killed it.
    Killed(i32),
}

impl End {
    fn from_wait_status(status: i32) -> End {
        if libc::WIFSIGNALED(status) {
            End::Killed(libc::WTERMSIG(status))
        } else {
            End::Exited(libc::WEXITSTATUS(status))
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            End::Exited(code) => write!(f, "exited with status {code}"),
            End::Killed(sig) => match Signal::try_from(sig) {
                Ok(name) => write!(f, "killed by signal {sig} ({name})"),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

/// One child collected by the reaper.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// Its process ID (free for reuse now that it is reaped).
    pub pid: Pid,
    /// Its exit status or the signal that killed it.
    pub end: End,
}

/// Hands every child reaped since the last call to `each`, oldest first.
/// Called by the main loop only.
pub fn collect(mut each: impl FnMut(Reaped)) -> Result<()> {
    while let Some((pid, status)) = ring::pop() {
        each(Reaped { pid: Pid::from_raw(pid), end: End::from_wait_status(status) });
    }
    if ring::was_full() {
        reap_now()?;
    }
    Ok(())
}

/// While a `Hold` lives, SIGCHLD is blocked: the reaper cannot run, so the
/// parent's list of live children cannot go stale. Taken before signalling
/// children, so that a PID reaped (and reused by an unrelated process) in
/// between is never sent a signal. Dropping it lets pending SIGCHLDs in.
pub struct Hold(());

impl Hold {
    /// Blocks SIGCHLD until the returned value is dropped.
    pub fn new() -> Result<Hold> {
        SigSet::from(Signal::SIGCHLD).thread_block().context("block SIGCHLD")?;
        Ok(Hold(()))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = SigSet::from(Signal::SIGCHLD).thread_unblock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_are_decoded() {
        // The layout of a wait status on Linux: exit code in bits 8-15,
        // terminating signal in bits 0-6.
        assert_eq!(End::from_wait_status(3 << 8), End::Exited(3));
        assert_eq!(End::from_wait_status(libc::SIGPIPE), End::Killed(libc::SIGPIPE));
        assert_eq!(End::Exited(0).to_string(), "exited with status 0");
        assert_eq!(End::Killed(9).to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(End::Killed(40).to_string(), "killed by signal 40");
    }
}
