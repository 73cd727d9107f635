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
//! The parent does not see the clients: the workers count them in a page of
//! memory shared by all of them (as Stevens' preforked servers do), which
//! the parent reads for its status line and its summary.

use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::sys::mman::{self, MapFlags, ProtFlags};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::socket::{shutdown, Shutdown};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

use super::children::Children;
use super::fork::{close_wake_pipe, exit_child};
use super::serve::{serve_alone, Echoer};
use super::{close, exit_status, start, timeout_for, wait, Config, Summary, Tracker, Trouble, BACK_OFF};
use crate::signals::{self, WakePipe};
use crate::{event, log, notice, reaper};

/// Runs the server until SIGTERM or SIGINT, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let (msock, wake) = start(config)?;
    msock.set_nonblocking(false).context("make msock blocking")?;
    let counts = SharedCounts::new()?;
    let mut workers = Children::new(config.workers);
    let parent = getpid();
    // Workers to start: None for the first ones, the PID of a dead worker
    // for a replacement.
    let mut missing: Vec<Option<Pid>> = vec![None; config.workers];

    let mut forking = Trouble::default();

    let outcome = loop {
        while let Some(replacing) = missing.pop() {
            // SAFETY: this process has one thread, so the child gets a
            // consistent copy of everything and may run ordinary Rust code
            // (see fork.rs).
            match unsafe { fork() } {
                Ok(ForkResult::Child) => worker(msock, wake, counts, config, parent),
                Ok(ForkResult::Parent { child }) => {
                    forking.over("forking a worker");
                    workers.forked(child, None);
                    match replacing {
                        Some(dead) => event!("started worker {child} in place of {dead}"),
                        None => event!("started worker {child}"),
                    }
                }
                Err(errno) => {
                    // Out of processes or memory: serve with the workers
                    // there are, and try again after a pause.
                    forking
                        .failed(&format!("cannot fork a worker: {errno}; {} workers serve", workers.alive()));
                    missing.push(replacing);
                    break;
                }
            }
        }
        if let Err(err) = workers.collect_reaped(|dead| missing.push(Some(dead.pid))) {
            break Err(err);
        }
        if let Some(sig) = signals::terminate_requested() {
            event!("{sig} received: stopping the workers");
            break Ok(());
        }
        if signals::status_requested() {
            workers.add_counted(counts.accepted(), counts.sigpipe());
            workers.log_status();
        }
        let timeout = if missing.is_empty() { PollTimeout::NONE } else { timeout_for(BACK_OFF) };
        if let Err(err) = wait(&wake, None, timeout) {
            break Err(err);
        }
    };

    let summary = shut_down(msock, &wake, counts, &mut workers, config)?;
    outcome.map(|()| summary)
}

/// A worker: accept, serve, again, until the parent shuts msock down.
fn worker(msock: TcpListener, wake: WakePipe, counts: &SharedCounts, config: &Config, parent: Pid) -> ! {
    log::become_child();
    if let Err(err) = signals::child_signals(config.sigpipe) {
        notice!("{err:#}");
        exit_child(exit_status::FAILED);
    }
    // Workers hold msock: if the parent dies without stopping them (kill -9),
    // they must die too, or they would keep the port. The kernel sends
    // SIGKILL when the parent dies; if it died before this call, we go now.
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent {
        exit_child(exit_status::FAILED);
    }
    close_wake_pipe(wake);
    let mut echoer = Echoer::new(config);
    let mut served = 0;
    let mut accepting = Trouble::default();
    loop {
        match msock.accept() {
            Ok((asock, client)) => {
                accepting.over("accept");
                event!("accepted {client} on fd {}", asock.as_raw_fd());
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                served += 1;
                let outcome = serve_alone(&asock, client, config, &mut echoer, None);
                close("asock", asock);
                if outcome.status == exit_status::BROKEN_PIPE {
                    counts.sigpipe.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(err) => match err.raw_os_error().map(Errno::from_raw) {
                // The parent shut msock down: the server is stopping.
                Some(Errno::EINVAL) => break,
                Some(Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO | Errno::EAGAIN) => {}
                Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                    accepting.failed(&format!("accept: {err}"));
                    thread::sleep(BACK_OFF);
                }
                _ => {
                    notice!("accept: {err}");
                    break;
                }
            },
        }
        if signals::terminate_requested().is_some() {
            break;
        }
    }
    event!("stopping after {served} clients");
    close("msock", msock);
    exit_child(exit_status::DONE)
}

/// The graceful end: wake the workers out of accept, close msock, stop
/// and reap every worker, add up their counts, log the summary.
fn shut_down(
    msock: TcpListener,
    wake: &WakePipe,
    counts: &SharedCounts,
    workers: &mut Children,
    config: &Config,
) -> Result<Summary> {
    // shutdown(2) acts on the socket itself, shared by every process that
    // holds it (close only drops our descriptor): the workers' accept fails
    // with EINVAL at once, and connections not yet accepted are reset.
    let _ = shutdown(msock.as_raw_fd(), Shutdown::Read);
    event!("shut msock down (fd {}): the workers stop accepting", msock.as_raw_fd());
    close("msock", msock);
    if !config.reaper {
        reaper::install()?;
        reaper::reap_now()?;
    }
    workers.stop_all(wake, config.grace)?;
    workers.add_counted(counts.accepted(), counts.sigpipe());
    let summary = workers.summary();
    summary.log();
    Ok(summary)
}

/// The workers' counts, in memory shared by the parent and every worker.
struct SharedCounts {
    accepted: AtomicU64,
    sigpipe: AtomicU64,
}

impl SharedCounts {
    /// Maps a shared page for the counts. Made before the workers are
    /// forked, so that they all inherit the same page: a write by one is
    /// seen by all, unlike the rest of their memory, which fork copies.
    fn new() -> Result<&'static SharedCounts> {
        let size = NonZeroUsize::new(std::mem::size_of::<SharedCounts>()).context("size")?;
        let flags = MapFlags::MAP_SHARED | MapFlags::MAP_ANONYMOUS;
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a new anonymous mapping at an address of the kernel's
        // choosing touches nothing that exists; it comes zero-filled.
        let page = unsafe { mman::mmap_anonymous(None, size, prot, flags) }.context("mmap")?;
        // SAFETY: the mapping is page-aligned, large enough and zero-filled,
        // and zero is a valid AtomicU64; it is never unmapped, so the
        // reference may live for ever. Atomics are lock-free here, so
        // processes that share the page may use them at the same time.
        Ok(unsafe { page.cast::<SharedCounts>().as_ref() })
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    fn sigpipe(&self) -> u64 {
        self.sigpipe.load(Ordering::Relaxed)
    }
}
