//! The fork-per-connection server: the heart of the lab.
//!
//! ```text
//! msock = passiveTCP(port)            socket, SO_REUSEADDR, bind, listen
//! install the reaper                  SIGCHLD -> waitpid(-1, WNOHANG) loop
//! loop:
//!     asock = accept(msock)
//!     fork()
//!       child:  close(msock); echo on asock until EOF; exit
//!       parent: close(asock)
//! ```
//!
//! Each side closes the socket it does not use. If the child kept msock, the
//! port would stay in LISTEN after the parent died, held by children. If the
//! parent kept asock, its descriptors would run out, and the client would
//! never see the connection close: the kernel sends FIN only when the last
//! descriptor of a socket is closed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::process;
use std::time::Duration;

use anyhow::Result;
use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::unistd::{fork, ForkResult};

use super::children::Children;
use super::{close, exit_status, wait, Config, Summary};
use crate::echo::{self, EchoError};
use crate::signals::{self, SigpipeMode, WakePipe};
use crate::{event, notice};
use crate::{log, msock, reaper};

/// Runs the server until SIGTERM or SIGINT, then shuts it down gracefully
/// and returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let msock = msock::passive_tcp(&config.listen)?;
    let wake = WakePipe::new()?;
    if config.reaper {
        reaper::install()?;
    }
    if config.terminate_handler {
        signals::install_terminate_handlers()?;
    }
    signals::install_status_handler()?;
    let mut children = Children::new(config.max_children);
    // Only now, with every handler in place, is the server ready.
    notice!("listening on {}", msock.local_addr()?);

    let outcome = loop {
        let (asock, client) = match next_client(&msock, &wake, &mut children) {
            Ok(Some(connection)) => connection,
            Ok(None) => break Ok(()), // SIGTERM or SIGINT
            Err(err) => break Err(err),
        };
        children.accepted();

        // SAFETY: fork is unsafe because a child of a multithreaded process
        // may only call async-signal-safe functions until it execs (another
        // thread could have held a lock, the malloc lock say, at the moment
        // of the fork). This process has one thread, so the child gets a
        // consistent copy of everything and may run ordinary Rust code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => child(msock, wake, asock, client, config),
            Ok(ForkResult::Parent { child }) => {
                event!("accepted {client} on fd {}, forked child {child}", asock.as_raw_fd());
                children.forked(child, client);
                if config.breakage.leak_asock {
                    event!("NOT closing asock (fd {}): --leak-asock", asock.into_raw_fd());
                } else {
                    close("asock", asock);
                }
            }
            Err(errno) => notice!("fork failed: {errno}; closing the connection from {client}"),
        }
    };

    // Even after an error, the children are stopped and reaped.
    let summary = shut_down(msock, &wake, &mut children, config)?;
    outcome.map(|()| summary)
}

/// Waits for the next client and accepts it, logging on the way what the
/// reaper collected. Returns None when SIGTERM or SIGINT asked the server
/// to stop.
fn next_client(
    msock: &TcpListener,
    wake: &WakePipe,
    children: &mut Children,
) -> Result<Option<(TcpStream, SocketAddr)>> {
    loop {
        children.collect_reaped()?;
        if let Some(sig) = signals::terminate_requested() {
            event!("{sig} received: no more connections");
            return Ok(None);
        }
        if signals::status_requested() {
            children.log_status();
        }
        let accepting = !children.at_limit();
        if wait(wake, accepting.then_some(msock), PollTimeout::NONE)? {
            if let Some(connection) = accept(msock, wake)? {
                return Ok(Some(connection));
            }
        }
        // Otherwise a signal handler woke us: back to the top to see why.
    }
}

/// The graceful end: close msock, stop and reap every child, log the summary.
fn shut_down(
    msock: TcpListener,
    wake: &WakePipe,
    children: &mut Children,
    config: &Config,
) -> Result<Summary> {
    close("msock", msock);
    if !config.reaper {
        event!("installing the reaper to collect the zombies");
        reaper::install()?;
        reaper::reap_now()?;
    }
    children.stop_all(wake, config.grace)?;
    let summary = children.summary();
    notice!("{summary}");
    Ok(summary)
}

/// Takes the next connection from msock's queue, if it is still there.
fn accept(msock: &TcpListener, wake: &WakePipe) -> Result<Option<(TcpStream, SocketAddr)>> {
    match msock.accept() {
        Ok(connection) => Ok(Some(connection)),
        Err(err) => match err.raw_os_error().map(Errno::from_raw) {
            // Gone since poll saw it (EAGAIN: someone else took it; the
            // others: the client gave up): nothing to do.
            Some(Errno::EAGAIN | Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO) => Ok(None),
            // Out of descriptors or memory: the connection waits in the
            // queue. Pause a little (a signal still wakes us) instead of
            // spinning on the same error.
            Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                notice!("accept: {err}; pausing 100 ms");
                wait(wake, None, super::timeout_for(Duration::from_millis(100)))?;
                Ok(None)
            }
            _ => Err(anyhow::Error::new(err).context("accept")),
        },
    }
}

/// The child's side of the fork: serve one client, then exit.
fn child(msock: TcpListener, wake: WakePipe, asock: TcpStream, client: SocketAddr, config: &Config) -> ! {
    log::become_child();
    if config.breakage.leak_msock {
        event!("NOT closing msock (fd {}): --leak-msock", msock.into_raw_fd());
    } else {
        close("msock", msock);
    }
    if let Err(err) = signals::child_signals(&asock, config.sigpipe, config.terminate_handler) {
        notice!("{err:#}");
        process::exit(exit_status::FAILED);
    }
    // Only after the inherited handlers that write to it were replaced.
    let (read_fd, write_fd) = wake.fds();
    drop(wake);
    event!("closed the wake pipe (fds {read_fd} and {write_fd})");

    let status = serve(&asock, client, config);
    signals::child_socket_closing();
    close("asock", asock);
    process::exit(status)
}

/// Echoes for one client and turns the outcome into the child's exit status.
fn serve(asock: &TcpStream, client: SocketAddr, config: &Config) -> i32 {
    match echo::echo(asock.as_fd(), config.delay) {
        Ok(echoed) => {
            let how = match signals::terminate_requested() {
                Some(sig) => format!("stopped reading on {sig}"),
                None => "client closed".to_string(),
            };
            event!("finished: {echoed} bytes echoed ({how})");
            exit_status::DONE
        }
        Err(EchoError::Write { errno: Errno::EPIPE, echoed }) => {
            // Only reached when SIGPIPE did not kill us: mode ignore or count.
            if config.sigpipe == SigpipeMode::Count {
                notice!(
                    "SIGPIPE (count={}): write to {client} failed with EPIPE after {echoed} bytes echoed",
                    signals::sigpipe_count()
                );
            } else {
                notice!("write to {client} failed with EPIPE after {echoed} bytes echoed (SIGPIPE ignored)");
            }
            exit_status::BROKEN_PIPE
        }
        Err(
            EchoError::Read { errno: Errno::ECONNRESET, echoed }
            | EchoError::Write { errno: Errno::ECONNRESET, echoed },
        ) => {
            notice!("connection reset by {client} after {echoed} bytes echoed");
            exit_status::RESET
        }
        Err(EchoError::Read { errno, echoed }) => {
            notice!("read from {client} failed after {echoed} bytes echoed: {errno}");
            exit_status::FAILED
        }
        Err(EchoError::Write { errno, echoed }) => {
            notice!("write to {client} failed after {echoed} bytes echoed: {errno}");
            exit_status::FAILED
        }
    }
}
