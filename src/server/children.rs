//! The parent's record of its children: which are alive, what the reaper
//! reported about the others, and how they are all stopped at shutdown.
//!
//! The parent must know its live children to signal them at shutdown. It
//! learns that one ended only from the reaper's records, and it removes the
//! child from its list only then; until it is reaped a child's PID cannot be
//! given to another process, so the parent never signals a stranger.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::poll::PollTimeout;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{exit_status, timeout_for, wait, Summary, Tracker};
use crate::reaper::{self, End, Reaped};
use crate::signals::WakePipe;
use crate::{event, notice};

/// Live children and the counts for the shutdown summary.
#[derive(Debug)]
pub struct Children {
    /// Each live child, with the client it serves (a prefork worker serves
    /// many). A plain list: with the few children alive at a time it fits
    /// in one page, which matters because every page the parent writes
    /// after a fork is copied.
    live: Vec<(Pid, Option<SocketAddr>)>,
    limit: usize,
    limit_logged: bool,
    summary: Summary,
    /// Clients accepted and lost to SIGPIPE, as counted by the children.
    counted: (u64, u64),
}

impl Children {
    /// An empty table for at most `limit` live children.
    pub fn new(limit: usize) -> Children {
        Children {
            live: Vec::new(),
            limit,
            limit_logged: false,
            summary: Summary::default(),
            counted: (0, 0),
        }
    }

    /// Counts a connection accepted by the parent.
    pub fn accepted(&mut self) {
        self.summary.accepted += 1;
    }

    /// Records a child just forked to serve `client` (None: a prefork worker).
    pub fn forked(&mut self, pid: Pid, client: Option<SocketAddr>) {
        self.live.push((pid, client));
    }

    /// Sets the counts that the children keep themselves (prefork
    /// workers), to be added to the parent's own.
    pub fn add_counted(&mut self, accepted: u64, sigpipe: u64) {
        self.counted = (accepted, sigpipe);
    }

    /// Children forked and not yet reaped (zombies included).
    pub fn alive(&self) -> usize {
        self.live.len()
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        let (accepted, sigpipe) = self.counted;
        Summary {
            accepted: self.summary.accepted + accepted,
            sigpipe: self.summary.sigpipe + sigpipe,
            ..self.summary
        }
    }

    /// Logs and forgets the children the reaper collected since last time,
    /// handing each to `each` too.
    pub fn collect_reaped(&mut self, mut each: impl FnMut(Reaped)) -> Result<()> {
        reaper::collect(|child| {
            self.reaped(child);
            each(child);
        })
    }

    fn reaped(&mut self, Reaped { pid, end }: Reaped) {
        let client = match self.live.iter().position(|&(child, _)| child == pid) {
            Some(index) => self.live.swap_remove(index).1,
            None => None,
        };
        self.summary.reaped += 1;
        if matches!(end, End::Killed(libc::SIGPIPE) | End::Exited(exit_status::BROKEN_PIPE)) {
            self.summary.sigpipe += 1;
        }
        if end == End::Exited(exit_status::CUT) {
            self.summary.killed += 1; // it cut its client itself
        }
        event!("reaped child {pid}{}: {end}{}", ClientNote(client), EndNote(end));
    }

    /// Sends `sig` to every live child and returns how many were sent it.
    fn signal_all(&mut self, sig: Signal) -> Result<u64> {
        let _no_reaping_meanwhile = reaper::Hold::new()?;
        self.collect_reaped(drop)?;
        for &(pid, _) in &self.live {
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
            self.collect_reaped(drop)?;
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

impl Tracker for Children {
    fn collect(&mut self) -> Result<()> {
        self.collect_reaped(drop)
    }

    /// Whether the parent must stop accepting. The first time the limit is
    /// reached it says so; later times are not logged, so that a flood at
    /// the limit does not flood the log too.
    fn at_limit(&mut self) -> bool {
        let full = self.live.len() >= self.limit;
        if full && !self.limit_logged {
            notice!("max-children {} reached: not accepting until a child exits (logged once)", self.limit);
            self.limit_logged = true;
        }
        full
    }

    fn log_status(&self) {
        let zombies = self.live.iter().filter(|&&(pid, _)| is_zombie(pid)).count();
        let s = self.summary();
        notice!(
            "status: children={} zombies={zombies} accepted={} reaped={} sigpipe={}",
            self.live.len() - zombies,
            s.accepted,
            s.reaped,
            s.sigpipe
        );
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
            End::Exited(code) => write!(f, ": {}", exit_status::meaning(code)),
            End::Killed(_) => Ok(()),
        }
    }
}
