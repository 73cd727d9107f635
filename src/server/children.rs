//! The parent's record of its children: which are alive, what the reaper
//! reported about the others, and how they are all stopped at shutdown.
//!
//! The parent must know its live children to signal them at shutdown. It
//! learns that one ended only from the reaper's records, and it removes the
//! child from its list only then; until it is reaped a child's PID cannot be
//! given to another process, so the parent never signals a stranger.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::poll::PollTimeout;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{exit_status, timeout_for, wait, Summary};
use crate::reaper::{self, End, Reaped};
use crate::signals::WakePipe;
use crate::{event, notice};

/// Live children and the counts for the shutdown summary.
#[derive(Debug)]
pub struct Children {
    live: BTreeMap<Pid, SocketAddr>,
    limit: usize,
    limit_logged: bool,
    summary: Summary,
}

impl Children {
    /// An empty table for at most `limit` live children.
    pub fn new(limit: usize) -> Children {
        Children { live: BTreeMap::new(), limit, limit_logged: false, summary: Summary::default() }
    }

    /// Counts a connection accepted by the parent.
    pub fn accepted(&mut self) {
        self.summary.accepted += 1;
    }

    /// Records a child just forked to serve `client`.
    pub fn forked(&mut self, pid: Pid, client: SocketAddr) {
        self.live.insert(pid, client);
    }

    /// Children forked and not yet reaped (zombies included).
    pub fn alive(&self) -> usize {
        self.live.len()
    }

    /// Whether the parent must stop accepting. The first time the limit is
    /// reached it says so; later times are not logged, so that a flood at
    /// the limit does not flood the log too.
    pub fn at_limit(&mut self) -> bool {
        let full = self.live.len() >= self.limit;
        if full && !self.limit_logged {
            notice!("max-children {} reached: not accepting until a child exits (logged once)", self.limit);
            self.limit_logged = true;
        }
        full
    }

    /// Logs the status line that SIGUSR1 asks for.
    pub fn log_status(&self) {
        let zombies = self.live.keys().filter(|&&pid| is_zombie(pid)).count();
        let s = self.summary;
        notice!(
            "status: children={} zombies={zombies} accepted={} reaped={} sigpipe={}",
            self.live.len() - zombies,
            s.accepted,
            s.reaped,
            s.sigpipe
        );
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Logs and forgets the children the reaper collected since last time.
    pub fn collect_reaped(&mut self) -> Result<()> {
        reaper::collect(|reaped| self.reaped(reaped))
    }

    fn reaped(&mut self, Reaped { pid, end }: Reaped) {
        let client = match self.live.remove(&pid) {
            Some(client) => format!(" (client {client})"),
            None => String::new(),
        };
        self.summary.reaped += 1;
        let why = match end {
            End::Exited(code) => format!(": {}", exit_status::meaning(code)),
            End::Killed(_) => String::new(),
        };
        if matches!(end, End::Killed(libc::SIGPIPE) | End::Exited(exit_status::BROKEN_PIPE)) {
            self.summary.sigpipe += 1;
        }
        event!("reaped child {pid}{client}: {end}{why}");
    }

    /// Sends `sig` to every live child and returns how many were sent it.
    fn signal_all(&mut self, sig: Signal) -> Result<u64> {
        let _no_reaping_meanwhile = reaper::Hold::new()?;
        self.collect_reaped()?;
        for &pid in self.live.keys() {
            match kill(pid, sig) {
                Ok(()) => event!("sent {sig} to child {pid}"),
                Err(errno) => notice!("kill {pid} {sig}: {errno}"),
            }
        }
        Ok(self.live.len() as u64)
    }

    /// The children's part of a graceful shutdown: SIGTERM to each, up to
    /// `grace` for them to finish, SIGKILL to those left, and every one
    /// reaped. The reaper must be installed.
    pub fn stop_all(&mut self, wake: &WakePipe, grace: Duration) -> Result<()> {
        if self.signal_all(Signal::SIGTERM)? > 0 {
            self.wait_for_all(wake, Some(Instant::now() + grace))?;
        }
        if !self.live.is_empty() {
            notice!(
                "grace period of {} s over: {} children still alive, sending SIGKILL",
                grace.as_secs_f64(),
                self.live.len()
            );
            self.summary.killed += self.signal_all(Signal::SIGKILL)?;
            self.wait_for_all(wake, None)?;
        }
        Ok(())
    }

    /// Waits until every child is reaped, or until `deadline`.
    fn wait_for_all(&mut self, wake: &WakePipe, deadline: Option<Instant>) -> Result<()> {
        loop {
            self.collect_reaped()?;
            if self.live.is_empty() {
                return Ok(());
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => timeout_for(left),
                    _ => return Ok(()),
                },
            };
            wait(wake, None, timeout)?;
        }
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
