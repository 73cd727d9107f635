//! What every server model shares: its configuration, the summary it prints
//! when it shuts down, the exit statuses of its children, and the one place
//! where the parent sleeps (waiting for a client or a signal).
//!
//! The models themselves live beside this file; today there is one, the
//! fork-per-connection server of the lab ([`fork`]).

pub mod children;
pub mod fork;

use std::fmt;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::event;
use crate::msock::Listen;
use crate::signals::{SigpipeMode, WakePipe};

/// Everything the command line of `TCPechod` decides.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address, port and backlog of the master socket.
    pub listen: Listen,
    /// Install the SIGCHLD reaper (off with `--no-reaper`: zombies pile up).
    pub reaper: bool,
    /// What children do about SIGPIPE.
    pub sigpipe: SigpipeMode,
    /// Pause before echoing each chunk (`--delay`).
    pub delay: Duration,
    /// Catch SIGTERM/SIGINT for a graceful shutdown (off: the default kill).
    pub terminate_handler: bool,
    /// How long children get to finish after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// Most children alive at once; at the limit the parent stops accepting.
    pub max_children: usize,
    /// Toggles that break the server on purpose, to show why a line exists.
    pub breakage: Breakage,
}

/// The toggles that break the server on purpose (all off normally). Each
/// removes one line of the design, so that a student sees what it is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Breakage {
    /// `--leak-asock`: the parent keeps every accepted socket open. Its
    /// descriptors pile up, and a client never gets the FIN it waits for,
    /// because the parent still holds the connection.
    pub leak_asock: bool,
    /// `--leak-msock`: children keep the listening socket. Killed, the
    /// parent leaves its port in LISTEN, held by its children.
    pub leak_msock: bool,
}

/// Exit statuses of a child, as the parent's log reports them.
pub mod exit_status {
    /// The client closed (or SIGTERM stopped the reading) and every byte
    /// read was echoed.
    pub const DONE: i32 = 0;
    /// Any other failure of the child.
    pub const FAILED: i32 = 1;
    /// A write failed with EPIPE: the client was gone (SIGPIPE ignored or counted).
    pub const BROKEN_PIPE: i32 = 3;
    /// The client reset the connection (ECONNRESET).
    pub const RESET: i32 = 4;

    /// A few words on what a status means, for the log.
    pub fn meaning(code: i32) -> &'static str {
        match code {
            DONE => "done",
            BROKEN_PIPE => "broken pipe",
            RESET => "connection reset",
            _ => "failed",
        }
    }
}

/// The counts printed by the last line of a graceful shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub accepted: u64,
    /// Children reaped (all of them, after a graceful shutdown).
    pub reaped: u64,
    /// Children that met a broken connection: killed by SIGPIPE, or exited
    /// with [`exit_status::BROKEN_PIPE`].
    pub sigpipe: u64,
    /// Children still alive when the grace period ended, sent SIGKILL.
    pub killed: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown: accepted={} reaped={} sigpipe={} killed={}",
            self.accepted, self.reaped, self.sigpipe, self.killed
        )
    }
}

/// Sleeps until a signal handler writes to the wake pipe, a client waits on
/// `msock` (when given), or `timeout` passes. Returns true when msock is
/// ready for accept.
pub fn wait(wake: &WakePipe, msock: Option<&TcpListener>, timeout: PollTimeout) -> Result<bool> {
    let listening = msock.map(|msock| msock.as_fd());
    let mut fds = [
        PollFd::new(wake.read_end(), PollFlags::POLLIN),
        PollFd::new(listening.unwrap_or(wake.read_end()), PollFlags::POLLIN),
    ];
    let watched = if listening.is_some() { 2 } else { 1 };
    match poll(&mut fds[..watched], timeout) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok(false), // a handler ran; the caller looks at what it left
        Err(errno) => return Err(errno).context("poll"),
    }
    // Any event counts: on msock an error or hang-up must reach accept, which
    // reports it, or poll would return at once forever.
    let ready = |fd: &PollFd| fd.revents().is_some_and(|events| !events.is_empty());
    if ready(&fds[0]) {
        wake.drain();
    }
    Ok(watched == 2 && ready(&fds[1]))
}

/// Closes a socket (by dropping its owner) and logs which descriptor it was.
pub fn close(name: &str, sock: impl AsRawFd) {
    let fd = sock.as_raw_fd();
    drop(sock);
    event!("closed {name} (fd {fd})");
}

/// A poll(2) timeout for what is left of `duration`, rounded up so that a
/// wait never ends a little early and spins.
pub fn timeout_for(duration: Duration) -> PollTimeout {
    let millis = duration.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
}
