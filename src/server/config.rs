//! Everything the command line of `TCPechod` decides ([`Config`]), and
//! the shape of a model's entry in the table of models ([`Model`], with
//! who serves its clients: [`ServedBy`]). The table itself is
//! [`crate::models`].

use std::time::Duration;

use anyhow::Result;

use super::msock::Listen;
use super::summary::Summary;
use crate::support::limits;
use crate::support::signals::SigpipeMode;
use crate::support::sigterm_experiments::LibraryHandler;

/// How much sooner than its parent a child gives up when a stop's grace
/// period runs out, at most (a fifth of the grace period if that is less):
/// time for it to say so, close, exit, and be reaped, on a busy machine too.
const CHILD_MARGIN: Duration = Duration::from_secs(1);

/// A way to serve clients: one entry of [`MODELS`](crate::models::MODELS).
#[derive(Debug)]
pub struct Model {
    /// Its name, as `--mode` takes it.
    pub name: &'static str,
    /// Who serves a client, in a few words (for `--help`).
    pub about: &'static str,
    /// Runs the server until a stop, then shuts it down gracefully and
    /// returns (and logs) the summary.
    pub run: fn(&Config) -> Result<Summary>,
    /// Who serves its clients: what the limits, the signals and the
    /// benchmark make of it.
    pub served_by: ServedBy,
    /// SIGPIPE unless `--sigpipe` says otherwise: the C default in the
    /// fork model; ignored where one process serves many clients and must
    /// survive a broken one.
    pub sigpipe: SigpipeMode,
    /// Which of [`MODEL_OPTIONS`](crate::models::MODEL_OPTIONS) it takes.
    pub options: &'static [&'static str],
}

/// Who serves the clients of a model. It says what a client costs (a
/// descriptor in the server, a process, a thread), so which limits of the
/// machine bind, and who collects the clients that are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    /// The server process itself: every client costs it a descriptor.
    /// `all_at_once`: every client at the same time (poll); otherwise one
    /// after another (iterative), the others waiting in msock's queue.
    Server { all_at_once: bool },
    /// Child processes, each serving one client at a time, which the
    /// reaper collects: a child forked for each client (fork), or children
    /// forked `in_advance` that each serve clients one after another
    /// (prefork). The parent writes to no client.
    Processes { in_advance: bool },
    /// Threads of the server, one for each client: each costs a thread,
    /// and a descriptor of the one process; joined as they finish.
    Threads,
}

impl ServedBy {
    /// Whether child processes serve the clients (the reaper collects them).
    pub fn processes(self) -> bool {
        matches!(self, ServedBy::Processes { .. })
    }

    /// Whether the server serves one client after another, by design: a
    /// limit of clients at once means nothing to it.
    pub fn one_at_a_time(self) -> bool {
        self == ServedBy::Server { all_at_once: false }
    }
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
    /// a stand-in library installed before it (see
    /// [`crate::support::sigterm_experiments`]).
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

    /// What to say, in one line, when this machine's limits leave room for
    /// fewer clients at once than `--max-children` asks for (or than the
    /// prefork workers need). The server still starts: the clients beyond
    /// the room wait in the queue of msock, or fail. Called before the
    /// server says it listens, so that the files it reads are closed by then.
    pub fn beyond_this_machine(&self) -> Option<String> {
        let served_by = self.model.served_by;
        let (wanted, asked) = match served_by {
            _ if served_by.one_at_a_time() => return None, // one client at a time, by design
            ServedBy::Processes { in_advance: true } => {
                let workers = self.prefork_workers();
                match self.workers {
                    Some(_) => (workers, format!("--workers {workers}")),
                    None => (workers, format!("{workers} workers (one per CPU)")),
                }
            }
            _ => (self.max_children, format!("--max-children {}", self.max_children)),
        };
        // Every client's descriptor in one process; a process or a thread for each client.
        let one_process = !served_by.processes();
        let a_task_each = !matches!(served_by, ServedBy::Server { .. });
        let rooms = [
            one_process.then(limits::descriptor_room).flatten(),
            a_task_each.then(limits::task_room).flatten(),
            a_task_each.then(limits::user_process_room).flatten(),
        ];
        let (room, why) = rooms.into_iter().flatten().min_by_key(|(room, _)| *room)?;
        (room < wanted).then(|| {
            format!(
                "{asked} is more than this machine allows: {why} leaves room for about {room} clients at once"
            )
        })
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
