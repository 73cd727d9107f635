//! A parent's children (the fork and prefork models): which are alive,
//! what the reaper reported about the others, and the graceful shutdown
//! that stops them all.
//!
//! The parent must know its live children to signal them at shutdown. It
//! learns that one ended only from the reaper's records, and it removes the
//! child from its list only then; until it is reaped a child's PID cannot be
//! given to another process, so the parent never signals a stranger.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::acceptor::{Acceptor, Clients};
use super::ending::Ending;
use super::summary::{Status, Summary};
use super::Config;
use crate::reaper::{self, End, Reaped};
use crate::shared::{self, Counters};
use crate::{event, notice};

/// Live children and the counts for the shutdown summary.
#[derive(Debug, Default)]
pub struct Children {
    /// Each live child, with the client it serves (a prefork worker serves
    /// many). A plain list: with the few children alive at a time it fits
    /// in one page, which matters because every page the parent writes
    /// after a fork is copied.
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
        let shared = shared::counters();
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
        match end {
            End::Killed(libc::SIGPIPE) => self.summary.sigpipe += 1,
            End::Exited(status) if Ending::is_broken_pipe(status) => self.summary.sigpipe += 1,
            End::Exited(status) if Ending::is_cut(status) => self.summary.cut += 1, // it cut its client itself
            _ => {}
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

    /// The graceful end of a forking server, after msock stopped taking
    /// clients: close msock; SIGTERM to each child, up to `--grace` for them
    /// to finish, SIGKILL to those left; every one reaped (by the reaper,
    /// installed now if `--no-reaper` kept it out); the summary.
    pub fn shut_down(mut self, mut server: Acceptor, config: &Config) -> Result<Summary> {
        server.close_msock();
        if let Err(err) = self.stop_all(&server, config) {
            notice!("{err:#}");
        }
        server.finish(self.summary())
    }

    fn stop_all(&mut self, server: &Acceptor, config: &Config) -> Result<()> {
        if !config.reaper {
            event!("installing the reaper to collect the zombies");
            reaper::install()?;
            reaper::reap_now()?;
        }
        if self.signal_all(Signal::SIGTERM)? > 0 {
            self.wait_for_all(server, Some(Instant::now() + config.grace))?;
        }
        if !self.live.is_empty() {
            let left = self.live.len();
            notice!(
                "grace period of {} s over: {left} {} still alive, sending SIGKILL",
                config.grace.as_secs_f64(),
                if left == 1 { "child" } else { "children" }
            );
            self.summary.killed += self.signal_all(Signal::SIGKILL)?;
            self.wait_for_all(server, None)?;
        }
        Ok(())
    }

    /// Waits until every child is reaped, or until `deadline`.
    fn wait_for_all(&mut self, server: &Acceptor, deadline: Option<Instant>) -> Result<()> {
        loop {
            self.collect_reaped(drop)?;
            if self.live.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            server.sleep_until(deadline)?;
        }
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
            End::Exited(status) => write!(f, ": {}", Ending::meaning(status)),
            End::Killed(_) => Ok(()),
        }
    }
}
