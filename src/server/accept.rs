//! Accepting, written once for every model: the master socket and the
//! wake pipe, the first lines of the log, the wait for the next client
//! (with the limit, the status line and the stop signals looked at on the
//! way), what to do when accept fails, the closing of the sockets, and the
//! last line of the log.
//!
//! Where EINTR went. In C, a signal handler interrupts a blocked
//! `accept(2)`, which fails with EINTR, and the loop's `if (errno ==
//! EINTR) continue;` looks at what the handler left. Rust's
//! `TcpListener::accept` retries EINTR itself, so here a handler can never
//! break a blocked accept. And a flag checked before a blocking call has a
//! race anyway: a SIGTERM that comes after the check, and before the call
//! starts to block, is not noticed until the next client. So the loop
//! waits in poll(2), on msock *and* on the wake pipe
//! ([`crate::support::wake`]), into which every handler writes a byte: a
//! handler always cuts the wait short, even one that ran just before poll
//! started. Only then does it call accept, which finds a client waiting.

use std::fmt::Display;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::config::{Config, ServedBy};
use super::msock;
use super::summary::{Status, Summary};
use crate::support::trouble::{Trouble, BACK_OFF};
use crate::support::wake::{timeout_for, WakePipe};
use crate::support::{limits, signals, sigterm_experiments};
use crate::{event, notice};

/// What the acceptor asks of whoever keeps track of the clients being
/// served: the children of the fork and prefork models, the threads of
/// the threaded one.
pub trait Clients {
    /// Takes note of those that finished since last time: reaped
    /// children, joined threads.
    fn collect(&mut self) -> Result<()>;
    /// How many are being served now (for `--max-children`).
    fn serving(&self) -> usize;
    /// The status line that SIGUSR1 asks for.
    fn status(&self) -> Status;
}

/// The master socket, the wake pipe, and what accepting has run into.
pub struct Acceptor {
    msock: Option<TcpListener>,
    wake: WakePipe,
    limit: Limit,
    accepting: Trouble,
    /// Out of descriptors or memory: no accept until then.
    paused_until: Option<Instant>,
    /// Connections accepted (the `accepted=` of the summary).
    accepted: u64,
    /// The error that stopped the server, if one did: it stops as for
    /// SIGTERM, and the error is returned once the clients are let go.
    error: Option<anyhow::Error>,
}

impl Acceptor {
    /// What every model does first: the master socket, the wake pipe and
    /// the signal handlers, then the first log line, which says the server
    /// is ready (the tests and the benchmark wait for it).
    pub fn listen(config: &Config) -> Result<Acceptor> {
        let raised = limits::raise_descriptor_limit();
        let msock = msock::passive_tcp(&config.listen)?;
        let wake = WakePipe::new()?;
        if config.terminate_handler {
            let replaced = signals::install_terminate_handlers()?;
            sigterm_experiments::after_server_handlers(replaced, config.library_handler)?;
        }
        signals::install_status_handler()?;
        if !config.model.served_by.processes() {
            // One process serves every client: SIGPIPE applies to it.
            signals::apply_sigpipe_mode(config.sigpipe)?;
        }
        limits::ensure_a_descriptor_is_left(&msock)?;
        let capped = config.beyond_this_machine();
        notice!("listening on {}", msock.local_addr()?);
        // The lab's own way, a child for each client, goes without saying.
        if config.model.served_by != (ServedBy::Processes { in_advance: false }) {
            event!("mode {}", config.model.name);
        }
        if let Some((old, new)) = raised {
            event!("raised the descriptor limit (ulimit -n) from {old} to the hard limit, {new}");
        }
        if let Some(capped) = capped {
            notice!("{capped}");
        }
        let limit = Limit::new(config);
        Ok(Acceptor {
            msock: Some(msock),
            wake,
            limit,
            accepting: Trouble::default(),
            paused_until: None,
            accepted: 0,
            error: None,
        })
    }

    /// The master socket (while it is open).
    pub fn msock(&self) -> Option<&TcpListener> {
        self.msock.as_ref()
    }

    /// The read end of the wake pipe, for a model that polls it itself.
    pub fn wake(&self) -> &WakePipe {
        &self.wake
    }

    /// Waits for the next client and accepts it. None when the server must
    /// stop (a stop signal, or an error, kept for [`Acceptor::finish`]).
    ///
    /// On the way it looks at what the signal handlers left (see
    /// [`Acceptor::look_at_signals`]): the clients that finished (which is
    /// why it needs them: a finished one frees a place under
    /// `--max-children`), SIGUSR1, the stop. A client already waiting is
    /// accepted at once; only when nobody waits does the loop sleep in
    /// poll(2), so a busy server makes no needless call.
    pub fn next_client(&mut self, clients: &mut impl Clients) -> Option<(TcpStream, SocketAddr)> {
        loop {
            match self.look_at_signals(clients) {
                Ok(None) => {}
                Ok(Some(sig)) => {
                    event!("{sig} received: no more connections");
                    return None;
                }
                Err(err) => return self.fail(err),
            }
            let slept = match self.try_accept(clients.serving()) {
                Ok(Some(client)) => return Some(client),
                // Full, or out of resources: a client's end or the pause
                // wakes us; nobody waiting: a client or a signal does.
                Ok(None) if self.accepting_now(clients.serving()) => self.sleep(true, PollTimeout::NONE),
                Ok(None) => self.sleep_until(self.paused_until()),
                Err(err) => Err(err),
            };
            if let Err(err) = slept {
                return self.fail(err);
            }
        }
    }

    /// What the signal handlers left since the last look: the clients that
    /// finished are collected (SIGCHLD's reaped children, or the threads
    /// that said so), a status line is logged if SIGUSR1 asked for one, and
    /// the stop signal is returned, if one came.
    pub fn look_at_signals(&self, clients: &mut impl Clients) -> Result<Option<Signal>> {
        clients.collect()?;
        if let Some(sig) = signals::terminate_requested() {
            return Ok(Some(sig));
        }
        if signals::status_requested() {
            notice!("{}", self.counted(clients.status()));
        }
        Ok(None)
    }

    /// Accepts one client if one waits and the limit and resources allow
    /// (msock is non-blocking): for the poll server, which sleeps in its
    /// own poll.
    pub fn try_accept(&mut self, serving: usize) -> Result<Option<(TcpStream, SocketAddr)>> {
        if !self.accepting_now(serving) {
            return Ok(None);
        }
        let Some(msock) = &self.msock else { return Ok(None) };
        match accept(msock) {
            Accepted::Client(sock, addr) => {
                self.accepting.worked("accept");
                self.accepted += 1;
                Ok(Some((sock, addr)))
            }
            Accepted::Nobody => Ok(None),
            Accepted::OutOfResources(err) => {
                // The client waits in the queue meanwhile.
                self.accepting.failed(&format!("accept: {err}"));
                self.paused_until = Some(Instant::now() + BACK_OFF);
                Ok(None)
            }
            Accepted::Failed(err) => Err(anyhow::Error::new(err).context("accept")),
        }
    }

    /// Whether accept may be tried now: msock open, under the limit, and
    /// no pause after running out of resources.
    pub fn accepting_now(&mut self, serving: usize) -> bool {
        let paused = self.paused_until.is_some_and(|until| until > Instant::now());
        self.msock.is_some() && !paused && !self.limit.reached(serving)
    }

    /// When the pause after running out of resources ends, if one is on.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until.filter(|&until| until > Instant::now())
    }

    /// Sleeps until a signal handler writes to the wake pipe, a client
    /// waits on msock (with `for_client`), or `timeout` passes.
    pub fn sleep(&self, for_client: bool, timeout: PollTimeout) -> Result<()> {
        let listening = self.msock.as_ref().filter(|_| for_client).map(|msock| msock.as_fd());
        let mut fds = [
            PollFd::new(self.wake.read_end(), PollFlags::POLLIN),
            PollFd::new(listening.unwrap_or(self.wake.read_end()), PollFlags::POLLIN),
        ];
        let watched = if listening.is_some() { 2 } else { 1 };
        match poll(&mut fds[..watched], timeout) {
            // EINTR: a handler ran (poll is never restarted after one, even
            // with SA_RESTART); the caller looks at what it left.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("poll"),
        }
        if fds[0].revents().is_some_and(|events| !events.is_empty()) {
            self.wake.drain();
        }
        Ok(())
    }

    /// Sleeps until a signal handler writes to the wake pipe, or until `deadline`.
    pub fn sleep_until(&self, deadline: Option<Instant>) -> Result<()> {
        let timeout =
            deadline.map_or(PollTimeout::NONE, |d| timeout_for(d.saturating_duration_since(Instant::now())));
        self.sleep(false, timeout)
    }

    /// After a failure for lack of resources (fork, a thread): logs it
    /// (see [`Trouble`]) and pauses [`BACK_OFF`], a signal still waking us.
    pub fn back_off(&mut self, trouble: &mut Trouble, what: impl Display) {
        trouble.failed(&what.to_string());
        if let Err(err) = self.sleep(false, timeout_for(BACK_OFF)) {
            self.fail::<()>(err);
        }
    }

    /// Closes msock: no more clients (the first step of every shutdown).
    pub fn close_msock(&mut self) {
        if let Some(msock) = self.msock.take() {
            close("msock", msock);
        }
    }

    /// What a freshly forked child takes from the acceptor: msock, which it
    /// must close (or, broken on purpose, keep), and the wake pipe, which
    /// it closes (see [`super::child`]).
    pub fn into_child(mut self) -> (TcpListener, WakePipe) {
        let msock = self.msock.take().expect("msock is open while the server accepts");
        (msock, self.wake)
    }

    /// A status line, with the connections accepted here added in.
    pub fn counted(&self, mut status: Status) -> Status {
        status.counts.accepted += self.accepted;
        status
    }

    /// The last line of a graceful shutdown, with the connections accepted
    /// here added in; then the server's result: the summary, or the error
    /// that stopped it.
    pub fn finish(self, mut summary: Summary) -> Result<Summary> {
        summary.accepted += self.accepted;
        summary.log();
        match self.error {
            Some(err) => Err(err),
            None => Ok(summary),
        }
    }

    /// An error stops the server as a stop signal would: it is kept, and
    /// the threads see a stop.
    fn fail<T>(&mut self, err: anyhow::Error) -> Option<T> {
        notice!("{err:#}: stopping");
        signals::request_stop();
        self.error.get_or_insert(err);
        None
    }
}

/// What accept found.
pub enum Accepted {
    /// A client, with its address.
    Client(TcpStream, SocketAddr),
    /// Nobody waiting, or a client that gave up before we got to it
    /// (ECONNABORTED): try again later.
    Nobody,
    /// Out of descriptors or memory: the client waits in the queue.
    OutOfResources(std::io::Error),
    /// Anything else (EINVAL: msock was shut down).
    Failed(std::io::Error),
}

/// Takes the next connection from msock's queue, and sorts its errors
/// into those to try again after, those to pause after, and the others
/// (Stevens' `Accept` wrapper does the same). No EINTR among them: std's
/// accept makes the call again itself.
pub fn accept(msock: &TcpListener) -> Accepted {
    match msock.accept() {
        Ok((sock, addr)) => Accepted::Client(sock, addr),
        Err(err) => match err.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EAGAIN | Errno::ECONNABORTED | Errno::EPROTO) => Accepted::Nobody,
            Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                Accepted::OutOfResources(err)
            }
            _ => Accepted::Failed(err),
        },
    }
}

/// `--max-children`: at most this many clients served at once. At the
/// limit the server stops accepting (and does not fork); the first time,
/// it says so, and not again, so that a flood at the limit does not
/// flood the log too.
#[derive(Debug)]
pub struct Limit {
    max: usize,
    logged: bool,
    /// Why a finished client never frees its place, when nothing collects
    /// them (`--no-reaper`, `--no-join`).
    never_freed: Option<&'static str>,
}

impl Limit {
    fn new(config: &Config) -> Limit {
        // A child counts until it is reaped, a thread until it is joined.
        let never_freed = if config.model.served_by.processes() && !config.reaper {
            Some(
                "without the reaper (--no-reaper) a child that finishes stays a zombie and still counts, \
                 and nothing reaps it before the server stops",
            )
        } else if !config.join {
            Some(
                "with --no-join a thread that finishes is not joined and still counts, and nothing joins \
                 it before the server stops",
            )
        } else {
            None
        };
        Limit { max: config.max_children, logged: false, never_freed }
    }

    /// Whether `serving` clients are as many as allowed.
    pub fn reached(&mut self, serving: usize) -> bool {
        let full = serving >= self.max;
        if full && !self.logged {
            match self.never_freed {
                None => {
                    notice!(
                        "max-children {} reached: not accepting until a client is done (logged once)",
                        self.max
                    )
                }
                Some(why) => notice!(
                    "max-children {} reached: {why}; this server will accept no more clients",
                    self.max
                ),
            }
            self.logged = true;
        }
        full
    }
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
