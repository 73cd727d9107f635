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
//! Workers count their clients themselves and report the counts through a
//! pipe when they exit; the parent adds them up in the summary. (A worker
//! killed by a signal reports nothing, and the log says so.)

use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::PollTimeout;
use nix::sys::socket::{shutdown, Shutdown};
use nix::unistd::{self, fork, ForkResult, Pid};

use super::children::Children;
use super::fork::{close_wake_pipe, exit_child};
use super::serve::{serve_alone, Echoer};
use super::{close, exit_status, start, wait, Config, Summary, Tracker};
use crate::signals::{self, WakePipe};
use crate::{event, log, notice, reaper};

/// Runs the server until SIGTERM or SIGINT, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let (msock, wake) = start(config)?;
    msock.set_nonblocking(false).context("make msock blocking")?;
    let reports = Reports::new()?;
    let mut workers = Children::new(config.workers);
    // Workers to start: None for the first ones, the PID of a dead worker
    // for a replacement.
    let mut missing: Vec<Option<Pid>> = vec![None; config.workers];

    let outcome = 'supervise: loop {
        while let Some(replacing) = missing.pop() {
            // SAFETY: this process has one thread, so the child gets a
            // consistent copy of everything and may run ordinary Rust code
            // (see fork.rs).
            match unsafe { fork() } {
                Ok(ForkResult::Child) => worker(msock, wake, reports, config),
                Ok(ForkResult::Parent { child }) => {
                    workers.forked(child, None);
                    match replacing {
                        Some(dead) => event!("started worker {child} in place of {dead}"),
                        None => event!("started worker {child}"),
                    }
                }
                Err(errno) => break 'supervise Err(anyhow::anyhow!("fork a worker: {errno}")),
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
            workers.log_status();
        }
        if missing.is_empty() {
            if let Err(err) = wait(&wake, None, PollTimeout::NONE) {
                break Err(err);
            }
        }
    };

    let summary = shut_down(msock, &wake, &reports, &mut workers, config)?;
    outcome.map(|()| summary)
}

/// A worker: accept, serve, again, until the parent shuts msock down.
fn worker(msock: TcpListener, wake: WakePipe, reports: Reports, config: &Config) -> ! {
    log::become_child();
    if let Err(err) = signals::child_signals(config.sigpipe) {
        notice!("{err:#}");
        exit_child(exit_status::FAILED);
    }
    close_wake_pipe(wake);
    let report = reports.writer();
    let mut echoer = Echoer::new(config);
    let mut counts = Counts::default();
    loop {
        match msock.accept() {
            Ok((asock, client)) => {
                event!("accepted {client} on fd {}", asock.as_raw_fd());
                counts.accepted += 1;
                let outcome = serve_alone(&asock, client, config, &mut echoer);
                close("asock", asock);
                if outcome.status == exit_status::BROKEN_PIPE {
                    counts.sigpipe += 1;
                }
            }
            Err(err) => match err.raw_os_error().map(Errno::from_raw) {
                // The parent shut msock down: the server is stopping.
                Some(Errno::EINVAL) => break,
                Some(Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO | Errno::EAGAIN) => {}
                Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                    notice!("accept: {err}; pausing 100 ms");
                    thread::sleep(Duration::from_millis(100));
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
    event!("stopping after {} clients", counts.accepted);
    close("msock", msock);
    report.send(counts);
    exit_child(exit_status::DONE)
}

/// The graceful end: wake the workers out of accept, close msock, stop
/// and reap every worker, add up their reports, log the summary.
fn shut_down(
    msock: TcpListener,
    wake: &WakePipe,
    reports: &Reports,
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
    let mut reported = 0;
    for counts in reports.receive() {
        workers.add_reported(counts.accepted, counts.sigpipe);
        reported += 1;
    }
    let silent = workers.summary().reaped.saturating_sub(reported);
    if silent > 0 {
        notice!("{silent} workers were killed before they could report: the counts below miss their clients");
    }
    let summary = workers.summary();
    notice!("{summary}");
    Ok(summary)
}

/// What a worker reports when it exits.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    accepted: u64,
    sigpipe: u64,
}

/// The pipe the workers report through: 16 bytes each, written at once
/// (a write of up to PIPE_BUF bytes to a pipe is never mixed with another).
struct Reports {
    read: OwnedFd,
    write: OwnedFd,
}

impl Reports {
    fn new() -> Result<Reports> {
        let (read, write) = unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).context("pipe2")?;
        Ok(Reports { read, write })
    }

    /// In a worker: keep the writing end only.
    fn writer(self) -> ReportWriter {
        ReportWriter(self.write)
    }

    /// In the parent, once the workers are gone: every report they sent.
    fn receive(&self) -> Vec<Counts> {
        let mut all = Vec::new();
        let mut record = [0u8; 16];
        while let Ok(16) = unistd::read(&self.read, &mut record) {
            let (accepted, sigpipe) = record.split_at(8);
            all.push(Counts {
                accepted: u64::from_le_bytes(accepted.try_into().unwrap_or_default()),
                sigpipe: u64::from_le_bytes(sigpipe.try_into().unwrap_or_default()),
            });
        }
        all
    }
}

/// A worker's end of the report pipe.
struct ReportWriter(OwnedFd);

impl ReportWriter {
    fn send(&self, counts: Counts) {
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&counts.accepted.to_le_bytes());
        record[8..].copy_from_slice(&counts.sigpipe.to_le_bytes());
        if let Err(errno) = unistd::write(&self.0, &record) {
            notice!("cannot report to the parent: {errno}");
        }
    }
}
