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
//! of memory they share with it ([`crate::shared`]), as Stevens' preforked
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

use super::acceptor::{accept, timeout_for, Accepted, Acceptor, Clients, Trouble, BACK_OFF};
use super::children::Children;
use super::ending::Ending;
use super::serve::{serve_alone, Echoer};
use super::{close, Config, Summary};
use crate::shared::{self, Counters};
use crate::{child, event, notice, signals};

/// Runs the server until a stop, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    // Counted before the server says it listens: counting the CPUs opens
    // files (the cgroup's CPU limits), and the descriptors a server has
    // once it listens must be those it keeps.
    let workers = config.prefork_workers();
    let server = Acceptor::listen(config)?;
    let msock = server.msock().context("msock")?;
    msock.set_nonblocking(false).context("make msock blocking")?;
    let msock_fd = msock.as_raw_fd();
    let mut children = Children::new();
    let parent = getpid();
    // Workers to start: None for the first ones, the PID of a dead worker
    // for a replacement.
    let mut missing: Vec<Option<Pid>> = vec![None; workers];
    let mut forking = Trouble::default();

    loop {
        while let Some(replacing) = missing.pop() {
            // SAFETY: this process has one thread, so the child gets a
            // consistent copy of everything and may run ordinary Rust code
            // (see fork.rs).
            match unsafe { fork() } {
                Ok(ForkResult::Child) => worker(server.into_child(config), config, parent),
                Ok(ForkResult::Parent { child }) => {
                    forking.over("forking a worker");
                    children.forked(child, None);
                    match replacing {
                        Some(dead) => event!("started worker {child} in place of {dead}"),
                        None => event!("started worker {child}"),
                    }
                }
                Err(errno) => {
                    // Out of processes or memory: serve with the workers
                    // there are, and try again after a pause.
                    let serving = children.alive();
                    forking.failed(&format!("cannot fork a worker: {errno}; {serving} workers serve"));
                    missing.push(replacing);
                    break;
                }
            }
        }
        if let Err(err) = children.collect_reaped(|dead| missing.push(Some(dead.pid))) {
            notice!("{err:#}");
            break;
        }
        if let Some(sig) = signals::terminate_requested() {
            event!("{sig} received: stopping the workers");
            break;
        }
        if signals::status_requested() {
            notice!("{}", server.counted(children.status()));
        }
        let timeout = if missing.is_empty() { PollTimeout::NONE } else { timeout_for(BACK_OFF) };
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
    children.shut_down(server, config)
}

/// A worker: accept, serve, again, until the parent shuts msock down.
fn worker(msock: TcpListener, config: &Config, parent: Pid) -> ! {
    // Workers hold msock: if the parent dies without stopping them (kill -9),
    // they must die too, or they would keep the port. The kernel sends
    // SIGKILL when the parent dies; if it died before this call, we go now.
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent {
        child::exit(1);
    }
    if let Err(err) = signals::stop_accepting_on_terminate(msock.as_fd()) {
        notice!("{err:#}");
        child::exit(1);
    }
    signals::time_out_sends_on_terminate(config.child_grace());
    let counts = shared::counters();
    let mut echoer = Echoer::new(config);
    let mut served = 0;
    let mut accepting = Trouble::default();
    while signals::terminate_requested().is_none() {
        match accept(&msock) {
            Accepted::Client(asock, client) => {
                accepting.over("accept");
                event!("accepted {client} on fd {}", asock.as_raw_fd());
                Counters::add(&counts.accepted);
                served += 1;
                // After a stop it ends on its own, before the parent's grace
                // period is over (see Config::child_grace).
                let outcome = serve_alone(&asock, client, config, &mut echoer, config.child_grace());
                close("asock", asock);
                match outcome.ending {
                    Ending::BrokenPipe { .. } => Counters::add(&counts.sigpipe),
                    Ending::Cut | Ending::Unclosed { .. } => Counters::add(&counts.cut),
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
    child::exit(0)
}
