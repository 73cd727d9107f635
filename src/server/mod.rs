//! The server models, side by side, in one table ([`models::MODELS`]),
//! with the configuration they share and the options each one takes.
//!
//! | model | who serves a client | module |
//! |---|---|---|
//! | `iterative` | the server itself, one client at a time | [`iterative`] |
//! | `fork` | a child forked for it (the lab's server, the default) | [`fork`] |
//! | `prefork` | one of N children forked at start, each accepting | [`prefork`] |
//! | `thread` | a thread started for it | [`thread`] |
//! | `poll` | the server itself, all clients at once, with poll(2) | [`poll`](mod@poll) |
//!
//! They keep the same contract: the first log line says where they listen,
//! SIGTERM, SIGINT or SIGHUP stops them gracefully within `--grace`
//! seconds and prints `shutdown: accepted=A reaped=R sigpipe=S cut=C killed=K`,
//! SIGUSR1 prints a status line, and a client's service ends as one of
//! the [`Ending`](ending::Ending)s. What they share is written once:
//! accepting, the limit, the status line and the back-off in
//! [`acceptor`], the service of one client in a blocking model in
//! [`serve`], a parent's children in [`children`], the endings in
//! [`ending`], the counts in [`summary`].
//!
//! Options that only some models take are listed in
//! [`models::MODEL_OPTIONS`], and each model's entry says which of them it
//! takes: any other is a usage error that names the model, checked when
//! the command line is parsed.
//!
//! To add a model: write its module (`pub fn run(config: &Config) ->
//! Result<Summary>`, built from [`acceptor::Acceptor`] and the other
//! shared parts), declare it below with `pub mod`, and give it an entry in
//! [`models::MODELS`]. Nothing else changes: `--mode`, its help, the
//! options check, the benchmark and the tests all read the table.

pub mod acceptor;
pub mod capacity;
pub mod children;
pub mod ending;
pub mod fork;
pub mod iterative;
pub mod models;
pub mod poll;
pub mod prefork;
pub mod serve;
pub mod summary;
pub mod thread;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::Duration;

use anyhow::Result;

pub use self::summary::Summary;
use crate::demos::LibraryHandler;
use crate::event;
use crate::msock::Listen;
use crate::signals::SigpipeMode;

/// How much sooner than its parent a child gives up when a stop's grace
/// period runs out, at most (a fifth of the grace period if that is less):
/// time for it to say so, close, exit, and be reaped, on a busy machine too.
const CHILD_MARGIN: Duration = Duration::from_secs(1);

/// A way to serve clients: one entry of [`MODELS`](models::MODELS).
#[derive(Debug)]
pub struct Model {
    /// Its name, as `--mode` takes it.
    pub name: &'static str,
    /// Who serves a client, in a few words (for `--help`).
    pub about: &'static str,
    /// Runs the server until a stop, then shuts it down gracefully and
    /// returns (and logs) the summary.
    pub run: fn(&Config) -> Result<Summary>,
    /// Whether clients are served by child processes (which the reaper
    /// collects; the parent itself writes to no client).
    pub forks: bool,
    /// SIGPIPE unless `--sigpipe` says otherwise: the C default in the
    /// fork model; ignored where one process serves many clients and must
    /// survive a broken one.
    pub sigpipe: SigpipeMode,
    /// Which of [`MODEL_OPTIONS`](models::MODEL_OPTIONS) it takes.
    pub options: &'static [&'static str],
}

/// Everything the command line of `TCPechod` decides.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address, port and backlog of the master socket.
    pub listen: Listen,
    /// The server model.
    pub model: &'static Model,
    /// Children started in advance by the prefork model (None: its default).
    pub workers: Option<usize>,
    /// Install the SIGCHLD reaper (off with `--no-reaper`: zombies pile up).
    pub reaper: bool,
    /// Join finished threads as they end (off with `--no-join`: they pile
    /// up until the shutdown, as zombies do).
    pub join: bool,
    /// What a process that writes to clients does about SIGPIPE.
    pub sigpipe: SigpipeMode,
    /// Pause before echoing each chunk (`--delay`).
    pub delay: Duration,
    /// Bytes read and written at a time.
    pub buffer: usize,
    /// Move the bytes with splice(2) instead of copying them (`--splice`).
    pub splice: bool,
    /// Catch SIGTERM/SIGINT/SIGHUP for a graceful shutdown (off: the default kill).
    pub terminate_handler: bool,
    /// How long clients being served get to finish after a stop.
    pub grace: Duration,
    /// Close a connection that makes no progress (nothing received, or its
    /// echo not taken) for this long (`--idle-timeout`; None: never).
    pub idle_timeout: Option<Duration>,
    /// Most clients served at once; at the limit the server stops accepting.
    pub max_children: usize,
    /// Toggles that break the server on purpose, to show why a line exists.
    pub breakage: Breakage,
    /// `--library-handler`: how the server's SIGTERM handler treats the one
    /// a stand-in library installed before it (see [`crate::demos`]).
    pub library_handler: Option<LibraryHandler>,
}

impl Config {
    /// Checks what no single option can: a prefork server serves one
    /// client per worker, so `--workers` may not be more than `--max-children`.
    pub fn check(&self) -> Result<(), String> {
        match self.workers {
            Some(workers) if workers > self.max_children => Err(format!(
                "--workers {workers} is more than --max-children {}: prefork serves one client per worker",
                self.max_children
            )),
            _ => Ok(()),
        }
    }

    /// The grace period a child keeps to on its own: a little less than
    /// the parent's, which counts from the same stop, so that the child
    /// ends first (it gives up on a client that does not take its echo or
    /// does not close, says so, and exits with its status) and the
    /// parent's SIGKILL is left for children that could not end at all.
    pub fn child_grace(&self) -> Duration {
        self.grace.saturating_sub((self.grace / 5).min(CHILD_MARGIN))
    }

    /// The workers a prefork server starts: `--workers`, or one per CPU
    /// and no more than `--max-children` (a worker serves one client at a
    /// time).
    pub fn prefork_workers(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.workers.unwrap_or(cpus.min(self.max_children))
    }
}

/// The toggles that break the server on purpose (all off normally). Each
/// removes one line of the fork model, so that a student sees what it is for.
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

/// Runs the chosen model until a stop, then shuts it down gracefully and
/// returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    (config.model.run)(config)
}

/// Closes a socket (by dropping its owner) and logs which descriptor it was.
pub fn close(name: &str, sock: impl AsRawFd) {
    let fd = sock.as_raw_fd();
    drop(sock);
    event!("closed {name} (fd {fd})");
}

/// Closes a socket, unless a toggle that breaks the server on purpose
/// says to keep it: then its descriptor is kept open for ever, and the log
/// says so (even under `-q`, the descriptor is kept).
pub fn close_unless(leak: bool, name: &str, sock: impl AsRawFd + IntoRawFd) {
    if leak {
        let fd = sock.into_raw_fd();
        event!("NOT closing {name} (fd {fd}): --leak-{name}");
    } else {
        close(name, sock);
    }
}
