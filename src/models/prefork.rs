//! The prefork (pre-started) server: N children, the workers, are forked
//! when the server starts, and each one accepts on the msock it inherited
//! and serves clients one after another. No fork per client: the cost of
//! creating a process is paid once. The parent only supervises: it
//! replaces a worker that dies, and stops them all at shutdown.
//!
//! Workers block in accept(2) on the same socket. Linux wakes one of them
//! per connection, not all (no "thundering herd"), which is why msock is
//! blocking here: O_NONBLOCK belongs to the socket, shared by every process
//! that holds it.
//!
//! The parent does not see the clients: the workers count them in the page
//! of memory they share with it ([`crate::support::shared_counters`]), as Stevens' preforked
//! servers do, for its status line and its summary.

use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};
use std::thread;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::socket::{shutdown, Shutdown};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

use crate::server::accept::{accept, close, Accepted, Acceptor, Clients};
use crate::server::child::{self, ExitStatus};
use crate::server::config::Config;
use crate::server::echo::Echoer;
use crate::server::reaper::{self, Children};
use crate::server::shutdown as server_shutdown;
use crate::server::summary::{Status, Summary};
use crate::support::shared_counters::{self, Counters};
use crate::support::trouble::{Trouble, BACK_OFF};
use crate::support::wake::timeout_for;
use crate::support::{log, signals};
use crate::{event, notice};

/// Runs the server until a stop, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    // Counted before the server says it listens: counting the CPUs opens
    // files (the cgroup's CPU limits), and the descriptors a server has
    // once it listens must be those it keeps.
    let workers = config.prefork_workers();
    let server = Acceptor::listen(config)?;
    if config.reaper {
        reaper::install()?; // SIGCHLD: a worker that dies is reaped, and replaced
    }
    let msock = server.msock().context("msock")?;
    msock.set_nonblocking(false).context("make msock blocking")?;
    let msock_fd = msock.as_raw_fd();
    let mut workers = Workers { children: Children::new(), missing: vec![None; workers] };
    let parent = getpid();
    let mut forking = Trouble::default();

    loop {
        while let Some(replacing) = workers.missing.pop() {
            // SAFETY: this process has one thread, so the child gets a
            // consistent copy of everything and may run ordinary Rust code
            // (see fork.rs).
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    // What changes in a child, as in fork.rs.
                    log::become_child();
                    child::take_signals(config.sigpipe);
                    let (msock, wake) = server.into_child();
                    child::close_wake_pipe(wake);
                    worker(msock, config, parent)
                }
                Ok(ForkResult::Parent { child }) => {
                    forking.worked("forking a worker");
                    workers.children.forked(child, None);
                    match replacing {
                        Some(dead) => event!("started worker {child} in place of {dead}"),
                        None => event!("started worker {child}"),
                    }
                }
                Err(errno) => {
                    // Out of processes or memory: serve with the workers
                    // there are, and try again after a pause.
                    let serving = workers.children.alive();
                    forking.failed(&format!("cannot fork a worker: {errno}; {serving} workers serve"));
                    workers.missing.push(replacing);
                    break;
                }
            }
        }
        match server.look_at_signals(&mut workers) {
            Ok(None) => {}
            Ok(Some(sig)) => {
                event!("{sig} received: stopping the workers");
                break;
            }
            Err(err) => {
                notice!("{err:#}");
                break;
            }
        }
        let timeout = if workers.missing.is_empty() { PollTimeout::NONE } else { timeout_for(BACK_OFF) };
        if let Err(err) = server.sleep(false, timeout) {
            notice!("{err:#}");
            break;
        }
    }

    // shutdown(2) acts on the socket itself, shared by every process that
    // holds it (close only drops our descriptor): the workers' accept fails
    // with EINVAL at once, and connections not yet accepted are reset.
    let _ = shutdown(msock_fd, Shutdown::Read);
    event!("shut msock down (fd {msock_fd}): the workers stop accepting");
    server_shutdown::graceful(server, workers.children, config)
}

/// The parent's workers: its children, and the workers it has to start
/// (None for the first ones, the PID of a dead worker for a replacement).
struct Workers {
    children: Children,
    missing: Vec<Option<Pid>>,
}

impl Clients for Workers {
    /// Collects the workers that died, and notes that each needs a replacement.
    fn collect(&mut self) -> Result<()> {
        let missing = &mut self.missing;
        self.children.collect_reaped(|dead| missing.push(Some(dead.pid)))
    }

    fn serving(&self) -> usize {
        self.children.serving()
    }

    fn status(&self) -> Status {
        self.children.status()
    }
}

/// A worker: accept, serve, again, until the parent shuts msock down.
fn worker(msock: TcpListener, config: &Config, parent: Pid) -> ! {
    // Workers hold msock: if the parent dies without stopping them (kill -9),
    // they must die too, or they would keep the port. The kernel sends
    // SIGKILL when the parent dies; if it died before this call, we go now.
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent {
        child::exit(ExitStatus::Failed);
    }
    if let Err(err) = signals::stop_accepting_on_terminate(msock.as_fd()) {
        notice!("{err:#}");
        child::exit(ExitStatus::Failed);
    }
    let counts = shared_counters::counters();
    // After a stop it ends on its own, before the parent's grace period is
    // over (see Config::child_grace).
    let mut echoer = Echoer::for_process(config, config.child_grace());
    let mut served = 0;
    let mut accepting = Trouble::default();
    while signals::terminate_requested().is_none() {
        match accept(&msock) {
            Accepted::Client(asock, client) => {
                accepting.worked("accept");
                event!("accepted {client} on fd {}", asock.as_raw_fd());
                Counters::add(&counts.accepted);
                served += 1;
                let ending = echoer.serve(&asock, client);
                close("asock", asock);
                // The parent never sees this client: the shared page counts it.
                match ending.exit_status() {
                    ExitStatus::BrokenPipe => Counters::add(&counts.sigpipe),
                    ExitStatus::Cut => Counters::add(&counts.cut),
                    _ => {}
                }
            }
            Accepted::Nobody => {}
            Accepted::OutOfResources(err) => {
                accepting.failed(&format!("accept: {err}"));
                thread::sleep(BACK_OFF);
            }
            // EINVAL: the parent shut msock down (the server is stopping),
            // or a SIGTERM to this worker put a stand-in in its place.
            Accepted::Failed(err) if err.raw_os_error() == Some(Errno::EINVAL as i32) => break,
            Accepted::Failed(err) => {
                notice!("accept: {err}");
                break;
            }
        }
    }
    event!("stopping after {served} clients");
    close("msock", msock);
    child::exit(ExitStatus::Done)
}
