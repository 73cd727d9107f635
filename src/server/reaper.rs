//! The reaper: the SIGCHLD handler that collects finished children, the
//! records it leaves, and the parent's list of its children, which it
//! keeps by those records.
//!
//! A child that exits does not vanish: it stays in the process table as a
//! zombie (`<defunct>` in `ps x`) holding its exit status until its parent
//! collects it with wait(2). The kernel sends the parent SIGCHLD when a child
//! ends, and this handler answers by calling `waitpid(-1, WNOHANG)` in a loop
//! until no finished child is left. It must loop because signals are not
//! queued: if three children end while the handler is busy, it receives one
//! more SIGCHLD, not three. WNOHANG keeps it from blocking while other
//! children are still alive, and the loop ends when `waitpid` returns 0
//! (children alive, none finished) as well as -1 (no children). (Comer's C
//! reaper loops while `wait3` returns `>= 0`: question P15/Q15 of the
//! statement asks what that does.)
//!
//! The handler may not log (that allocates and locks stderr): it leaves
//! what it reaped in its records and wakes the main loop, which logs it.
//! The parent removes a child from its list of live children only then:
//! until it is reaped a child's PID cannot be given to another process, so
//! the parent never signals a stranger.

use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, kill, SaFlags, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

use super::accept::Clients;
use super::child::ExitStatus;
use super::summary::{Status, Summary};
use crate::support::shared_counters::{self, Counters};
use crate::support::signals;
use crate::support::wake::wake_main_loop;
use crate::{event, notice};

/// The SIGCHLD handler: collect every child that has ended, without
/// blocking, saving errno for the code it interrupted.
extern "C" fn reaper(_sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    // Only while a record fits: a child reaped and not recorded would be
    // lost to the parent, which would go on counting it as alive. When the
    // records are full the rest stay zombies, and the parent, once it has
    // taken the records, asks for another pass (see `collect`).
    while records::has_room() {
        let mut status = 0;
        // SAFETY: waitpid is async-signal-safe and `status` is a valid place
        // for it to write. (Called directly: nix's waitpid turns a death by a
        // signal it has no name for into an error, and would lose a child.)
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break; // 0: children alive, none finished; -1 (ECHILD): no children
        }
        records::push(pid, status);
    }
    wake_main_loop();
    Errno::set_raw(saved_errno);
}

/// Installs the reaper as the SIGCHLD handler. SA_NOCLDSTOP: a child stopped
/// with `kill -STOP` has not ended, so it should not wake the reaper.
pub fn install() -> Result<()> {
    let flags = SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP;
    signals::install(Signal::SIGCHLD, SigHandler::Handler(reaper), flags).map(drop)
}

/// Runs the reaper now, for children that ended before it was installed
/// (their SIGCHLD was discarded) or while its records were full.
pub fn reap_now() -> Result<()> {
    signal::raise(Signal::SIGCHLD).context("raise SIGCHLD")
}

/// Where the reaper leaves what it reaped for the main loop: a ring of
/// records in static memory, written only by the handler and read only by
/// the main loop. The handler may not allocate or take a lock (it could
/// have interrupted the main loop holding that very lock), so the ring is
/// a fixed array of atomics, and a record is one word: the PID in the high
/// 32 bits, the wait status in the low ones.
///
/// `written` and `taken` count the records ever written by the handler and
/// ever taken by the main loop; their difference is what is waiting. The
/// handler publishes a record by storing `written` with Release ordering
/// after the record itself; the main loop reads `written` with Acquire
/// before it reads the record: it never sees a count without its record.
mod records {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

    /// Records in the ring: as many as fit, with the counts, in one page of
    /// memory, so that reaping a child writes one page only (after each
    /// fork every page the parent writes must be copied: copy on write).
    const CAPACITY: usize = 500;

    #[repr(C, align(4096))]
    struct Ring {
        written: AtomicUsize,
        taken: AtomicUsize,
        was_full: AtomicBool,
        records: [AtomicU64; CAPACITY],
    }

    static RING: Ring = Ring {
        written: AtomicUsize::new(0),
        taken: AtomicUsize::new(0),
        was_full: AtomicBool::new(false),
        records: [const { AtomicU64::new(0) }; CAPACITY],
    };

    /// Whether one more record fits (handler only); when it does not, the
    /// main loop is told to ask for another pass.
    pub fn has_room() -> bool {
        let waiting = RING.written.load(Ordering::Relaxed) - RING.taken.load(Ordering::Acquire);
        if waiting == CAPACITY {
            RING.was_full.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Records a reaped child (handler only, after [`has_room`]).
    pub fn push(pid: libc::pid_t, status: libc::c_int) {
        let written = RING.written.load(Ordering::Relaxed);
        let record = (pid as u32 as u64) << 32 | status as u32 as u64;
        RING.records[written % CAPACITY].store(record, Ordering::Relaxed);
        RING.written.store(written + 1, Ordering::Release);
    }

    /// The oldest record not taken yet, as (PID, wait status) (main loop only).
    pub fn pop() -> Option<(libc::pid_t, libc::c_int)> {
        let taken = RING.taken.load(Ordering::Relaxed);
        if taken == RING.written.load(Ordering::Acquire) {
            return None;
        }
        let record = RING.records[taken % CAPACITY].load(Ordering::Relaxed);
        RING.taken.store(taken + 1, Ordering::Release);
        Some(((record >> 32) as libc::pid_t, record as u32 as libc::c_int))
    }

    /// Whether the ring was full since the last call: some children ended
    /// without being reaped, and their SIGCHLD is spent.
    pub fn was_full() -> bool {
        // Look before clearing: a write, even of the same value, would make the
        // page private again after every fork (copy on write).
        RING.was_full.load(Ordering::SeqCst) && RING.was_full.swap(false, Ordering::SeqCst)
    }
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It called exit with this status.
    Exited(ExitStatus),
    /// A signal killed it.
    Killed(i32),
}

impl End {
    fn from_wait_status(status: i32) -> End {
        if libc::WIFSIGNALED(status) {
            End::Killed(libc::WTERMSIG(status))
        } else {
            End::Exited(ExitStatus::from(libc::WEXITSTATUS(status)))
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            End::Exited(status) => write!(f, "exited with status {}", i32::from(status)),
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
    while let Some((pid, status)) = records::pop() {
        each(Reaped { pid: Pid::from_raw(pid), end: End::from_wait_status(status) });
    }
    if records::was_full() {
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

/// A parent's children (the fork and prefork models): which are alive,
/// and the counts of the others for the summary.
#[derive(Debug, Default)]
pub struct Children {
    /// Each live child, with the client it serves (a prefork worker serves
    /// many). A plain list, whose entries lie side by side: after a fork
    /// every page the parent writes is copied, and keeping this list
    /// writes few of them.
    live: Vec<(Pid, Option<SocketAddr>)>,
    summary: Summary,
}

impl Children {
    /// No child yet.
    pub fn new() -> Children {
        Children::default()
    }

    /// Records a child just forked to serve `client` (None: a prefork worker).
    pub fn forked(&mut self, pid: Pid, client: Option<SocketAddr>) {
        self.live.push((pid, client));
    }

    /// Children forked and not yet reaped (zombies included).
    pub fn alive(&self) -> usize {
        self.live.len()
    }

    /// The counts so far: the parent's, and those the prefork workers keep
    /// in the shared page (the parent never sees their clients).
    pub fn summary(&self) -> Summary {
        let shared = shared_counters::counters();
        Summary {
            accepted: self.summary.accepted + Counters::get(&shared.accepted),
            sigpipe: self.summary.sigpipe + Counters::get(&shared.sigpipe),
            cut: self.summary.cut + Counters::get(&shared.cut),
            ..self.summary
        }
    }

    /// Logs and forgets the children the reaper collected since last time,
    /// handing each to `each` too.
    pub fn collect_reaped(&mut self, mut each: impl FnMut(Reaped)) -> Result<()> {
        collect(|child| {
            self.reaped(child);
            each(child);
        })
    }

    fn reaped(&mut self, Reaped { pid, end }: Reaped) {
        let client = match self.live.iter().position(|&(child, _)| child == pid) {
            Some(index) => self.live.swap_remove(index).1,
            None => None,
        };
        match end {
            End::Exited(status) => self.summary.served(status),
            // Killed by SIGPIPE (--sigpipe default): its client was gone,
            // as for a child that exits with the broken-pipe status.
            End::Killed(libc::SIGPIPE) => self.summary.served(ExitStatus::BrokenPipe),
            End::Killed(_) => self.summary.reaped += 1,
        }
        event!("reaped child {pid}{}: {end}{}", ClientNote(client), EndNote(end));
    }

    /// Sends `sig` to every live child and returns how many were sent it;
    /// those sent SIGKILL are counted (the `killed=` of the summary).
    pub fn signal_all(&mut self, sig: Signal) -> Result<u64> {
        let _no_reaping_meanwhile = Hold::new()?;
        self.collect_reaped(drop)?;
        for &(pid, _) in &self.live {
            match kill(pid, sig) {
                Ok(()) => event!("sent {sig} to child {pid}"),
                Err(errno) => notice!("kill {pid} {sig}: {errno}"),
            }
        }
        let sent = self.live.len() as u64;
        if sig == Signal::SIGKILL {
            self.summary.killed += sent;
        }
        Ok(sent)
    }
}

impl Clients for Children {
    fn collect(&mut self) -> Result<()> {
        self.collect_reaped(drop)
    }

    fn serving(&self) -> usize {
        self.live.len()
    }

    fn status(&self) -> Status {
        let zombies = self.live.iter().filter(|&&(pid, _)| is_zombie(pid)).count();
        Status { serving: self.live.len() - zombies, zombies, counts: self.summary() }
    }
}

/// Whether `pid` has ended and waits to be reaped: state Z in /proc/PID/stat,
/// the `<defunct>` of `ps x`.
fn is_zombie(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (command) STATE ...": the command may itself hold ") ".
    stat.rfind(") ").is_some_and(|end| stat[end + 2..].starts_with('Z'))
}

/// " (client ADDR)" in a log line, when the child served one client.
struct ClientNote(Option<SocketAddr>);

impl fmt::Display for ClientNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(client) => write!(f, " (client {client})"),
            None => Ok(()),
        }
    }
}

/// ": what the exit status means" in a log line.
struct EndNote(End);

impl fmt::Display for EndNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            End::Exited(status) => write!(f, ": {status}"),
            End::Killed(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_are_decoded() {
        // The layout of a wait status on Linux: exit code in bits 8-15,
        // terminating signal in bits 0-6.
        assert_eq!(End::from_wait_status(3 << 8), End::Exited(ExitStatus::BrokenPipe));
        assert_eq!(End::from_wait_status(libc::SIGPIPE), End::Killed(libc::SIGPIPE));
        assert_eq!(End::Exited(ExitStatus::Done).to_string(), "exited with status 0");
        assert_eq!(End::Exited(ExitStatus::from(2)).to_string(), "exited with status 2");
        assert_eq!(End::Killed(9).to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(End::Killed(40).to_string(), "killed by signal 40");
    }
}
