//! The server models, side by side, and what they share: configuration,
//! start-up, the wait for the next client, the summary of the shutdown.
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
//! SIGTERM or SIGINT stops them gracefully within `--grace` seconds and
//! prints `shutdown: accepted=A reaped=R sigpipe=S killed=K`, SIGUSR1
//! prints a status line, `--max-children` bounds the clients served at
//! once.

pub mod children;
pub mod fork;
pub mod iterative;
pub mod poll;
pub mod prefork;
pub mod serve;
pub mod thread;

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::msock::{self, Listen};
use crate::signals::{self, SigpipeMode, WakePipe};
use crate::{event, notice, reaper};

/// How the server serves its clients (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One client at a time, in the server process (the previous lab's server).
    Iterative,
    /// A child process per client (the lab's server).
    Fork,
    /// N children started in advance, each accepting clients one after another.
    Prefork,
    /// A thread per client.
    Thread,
    /// One process, one thread, all clients at once with poll(2).
    Poll,
}

impl Mode {
    /// Whether clients are served by child processes (which the reaper collects).
    pub fn forks(self) -> bool {
        matches!(self, Mode::Fork | Mode::Prefork)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Mode::Iterative => "iterative",
            Mode::Fork => "fork",
            Mode::Prefork => "prefork",
            Mode::Thread => "thread",
            Mode::Poll => "poll",
        };
        f.write_str(name)
    }
}

/// Everything the command line of `TCPechod` decides.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address, port and backlog of the master socket.
    pub listen: Listen,
    /// The server model.
    pub mode: Mode,
    /// Children started in advance by the prefork model.
    pub workers: usize,
    /// Install the SIGCHLD reaper (off with `--no-reaper`: zombies pile up).
    /// In the threaded model: join finished threads as they end.
    pub reaper: bool,
    /// What a process that writes to clients does about SIGPIPE.
    pub sigpipe: SigpipeMode,
    /// Pause before echoing each chunk (`--delay`).
    pub delay: Duration,
    /// Bytes read and written at a time.
    pub buffer: usize,
    /// Move the bytes with splice(2) instead of copying them (`--splice`).
    pub splice: bool,
    /// Catch SIGTERM/SIGINT for a graceful shutdown (off: the default kill).
    pub terminate_handler: bool,
    /// How long clients being served get to finish after SIGTERM.
    pub grace: Duration,
    /// Close a connection that makes no progress (nothing received, or its
    /// echo not taken) for this long (`--idle-timeout`; None: never).
    pub idle_timeout: Option<Duration>,
    /// Most clients served at once; at the limit the server stops accepting.
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

/// Runs the chosen model until SIGTERM or SIGINT, then shuts it down
/// gracefully and returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    match config.mode {
        Mode::Iterative => iterative::run(config),
        Mode::Fork => fork::run(config),
        Mode::Prefork => prefork::run(config),
        Mode::Thread => thread::run(config),
        Mode::Poll => poll::run(config),
    }
}

/// What every model does first: the master socket, the wake pipe and the
/// signal handlers, then the first log line, which says the server is
/// ready.
pub fn start(config: &Config) -> Result<(TcpListener, WakePipe)> {
    let msock = msock::passive_tcp(&config.listen)?;
    let wake = WakePipe::new()?;
    if config.mode.forks() && config.reaper {
        reaper::install()?;
    }
    if config.terminate_handler {
        signals::install_terminate_handlers()?;
    }
    signals::install_status_handler()?;
    if !config.mode.forks() {
        // One process serves every client: it must survive a broken one.
        signals::apply_sigpipe_mode(config.sigpipe)?;
    }
    ensure_a_descriptor_is_left(&msock)?;
    notice!("listening on {}", msock.local_addr()?);
    if config.mode != Mode::Fork {
        event!("mode {}", config.mode);
    }
    Ok((msock, wake))
}

/// Refuses to start a server that could never accept a client: one whose
/// descriptor limit (`ulimit -n`, `prlimit --nofile`) is used up by what it
/// opened to start (stdin, stdout, stderr, msock, the wake pipe). It would
/// say "listening" and then fail every accept with EMFILE, for ever.
fn ensure_a_descriptor_is_left(msock: &TcpListener) -> Result<()> {
    match msock.try_clone() {
        Ok(probe) => {
            drop(probe);
            Ok(())
        }
        Err(err) if err.raw_os_error() == Some(libc::EMFILE) => {
            let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or("?".to_string(), |(soft, _)| soft.to_string());
            anyhow::bail!(
                "cannot serve: every descriptor the limit allows (ulimit -n: {limit}) is in use before the \
                 first client; raise the limit"
            )
        }
        Err(err) => Err(anyhow::Error::new(err).context("dup msock")),
    }
}

/// Exit statuses of a child (and outcomes of a client in the other
/// models), as the log reports them.
pub mod exit_status {
    /// The client closed (or SIGTERM stopped the reading) and every byte
    /// read was echoed.
    pub const DONE: i32 = 0;
    /// Any other failure.
    pub const FAILED: i32 = 1;
    /// A write failed with EPIPE: the client was gone (SIGPIPE ignored or counted).
    pub const BROKEN_PIPE: i32 = 3;
    /// The client reset the connection (ECONNRESET).
    pub const RESET: i32 = 4;
    /// Cut after the grace period: the client did not take its echo.
    pub const CUT: i32 = 5;
    /// Closed by `--idle-timeout`: the client sent nothing, or took nothing, for too long.
    pub const IDLE: i32 = 6;

    /// A few words on what a status means, for the log.
    pub fn meaning(code: i32) -> &'static str {
        match code {
            DONE => "done",
            BROKEN_PIPE => "broken pipe",
            RESET => "connection reset",
            CUT => "cut after the grace period",
            IDLE => "idle timeout",
            _ => "failed",
        }
    }
}

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
    /// Children sent SIGKILL, or connections cut, when the grace period ended.
    pub killed: u64,
}

impl Summary {
    /// Logs the summary, the last line of a graceful shutdown (after how
    /// many log lines were dropped, if any were).
    pub fn log(&self) {
        let dropped = crate::log::dropped();
        if dropped > 0 {
            notice!("{dropped} log lines were dropped: stderr was full, stalled or closed");
        }
        notice!("{self}");
    }

    /// Counts a client served in-process (iterative, thread, poll models).
    pub fn served(&mut self, status: i32) {
        self.reaped += 1;
        match status {
            exit_status::BROKEN_PIPE => self.sigpipe += 1,
            exit_status::CUT => self.killed += 1,
            _ => {}
        }
    }
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

/// What the accept loop asks of whoever keeps track of the clients being
/// served (the children of the fork model, the threads of the threaded
/// one, nothing in the iterative one).
pub trait Tracker {
    /// Takes note of those that finished since last time: reaped children,
    /// joined threads.
    fn collect(&mut self) -> Result<()>;
    /// Whether as many clients are being served as `--max-children` allows.
    fn at_limit(&mut self) -> bool;
    /// Logs the status line that SIGUSR1 asks for.
    fn log_status(&self);
}

/// Waits for the next client and accepts it, seeing on the way to what the
/// signal handlers left. Returns None when SIGTERM or SIGINT asked the
/// server to stop.
///
/// A client already waiting is accepted at once; only when nobody waits
/// does the loop sleep in poll(2), so a busy server makes no needless call.
pub fn next_client(
    msock: &TcpListener,
    wake: &WakePipe,
    tracker: &mut impl Tracker,
    trouble: &mut Trouble,
) -> Result<Option<(TcpStream, SocketAddr)>> {
    loop {
        tracker.collect()?;
        if let Some(sig) = signals::terminate_requested() {
            event!("{sig} received: no more connections");
            return Ok(None);
        }
        if signals::status_requested() {
            tracker.log_status();
        }
        if tracker.at_limit() {
            wait(wake, None, PollTimeout::NONE)?; // until a client is done, or a signal
            continue;
        }
        match accept(msock)? {
            Accepted::Client(sock, addr) => {
                trouble.over("accept");
                return Ok(Some((sock, addr)));
            }
            Accepted::Nobody => {
                wait(wake, Some(msock), PollTimeout::NONE)?;
            }
            Accepted::OutOfResources(err) => {
                trouble.failed(&format!("accept: {err}"));
                back_off(wake)?;
            }
        }
    }
}

/// What accept found.
pub enum Accepted {
    /// A client, with its address.
    Client(TcpStream, SocketAddr),
    /// Nobody waiting (or a client that gave up before we got to it).
    Nobody,
    /// Out of descriptors or memory: the client waits in the queue.
    OutOfResources(std::io::Error),
}

/// Takes the next connection from msock's queue (msock is non-blocking).
pub fn accept(msock: &TcpListener) -> Result<Accepted> {
    match msock.accept() {
        Ok((sock, addr)) => Ok(Accepted::Client(sock, addr)),
        Err(err) => match err.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EAGAIN | Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO) => Ok(Accepted::Nobody),
            Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                Ok(Accepted::OutOfResources(err))
            }
            _ => Err(anyhow::Error::new(err).context("accept")),
        },
    }
}

/// How long to pause after running out of descriptors, memory or
/// processes, before trying again.
pub const BACK_OFF: Duration = Duration::from_millis(100);

/// Pauses [`BACK_OFF`] after a failure for lack of resources (a signal
/// still wakes us), instead of spinning on the same failure while the
/// resources are still missing.
pub fn back_off(wake: &WakePipe) -> Result<()> {
    wait(wake, None, timeout_for(BACK_OFF))?;
    Ok(())
}

/// How often a failure that goes on is summed up in the log.
const TROUBLE_REPORT: Duration = Duration::from_secs(10);

/// A failure for lack of resources that may repeat ten times a second
/// while it lasts (accept with no descriptor left, fork with no process
/// left): the first one is logged, the next ones are counted and summed
/// up at most every 10 s, and the end of the trouble is logged with the
/// count. The log says what happens without drowning in it.
#[derive(Debug, Default)]
pub struct Trouble {
    since: Option<Instant>,
    reported: Option<Instant>,
    count: u64,
}

impl Trouble {
    /// Notes one more failure, described by `what` ("accept: Too many open files").
    pub fn failed(&mut self, what: &str) {
        let now = Instant::now();
        self.count += 1;
        match (self.since, self.reported) {
            (None, _) => {
                self.since = Some(now);
                self.reported = Some(now);
                notice!(
                    "{what}; pausing {} ms before each new try (repeats are counted, not logged)",
                    BACK_OFF.as_millis()
                );
            }
            (Some(since), Some(reported)) if now - reported >= TROUBLE_REPORT => {
                self.reported = Some(now);
                notice!("{what}: still failing, {} times in {} s", self.count, (now - since).as_secs());
            }
            _ => {}
        }
    }

    /// Notes that `what` ("accept") worked: logs the end of a trouble, if any.
    pub fn over(&mut self, what: &str) {
        if let Some(since) = self.since.take() {
            notice!(
                "{what} works again, after {} failures in {:.1} s",
                self.count,
                since.elapsed().as_secs_f64()
            );
            self.count = 0;
            self.reported = None;
        }
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
