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
use std::os::fd::{AsRawFd, IntoRawFd};

use anyhow::Result;
use nix::unistd::{fork, ForkResult};

use super::children::Children;
use super::serve::{serve_alone, Echoer};
use super::{back_off, close, exit_status, next_client, start, Config, Summary, Trouble};
use crate::signals::{self, WakePipe};
use crate::{event, log, notice, reaper};

/// Runs the server until SIGTERM or SIGINT, then shuts it down gracefully
/// and returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let (msock, wake) = start(config)?;
    let mut children = Children::new(config.max_children);
    let mut echoer = Echoer::new(config); // each child uses its own copy
    let (mut accepting, mut forking) = (Trouble::default(), Trouble::default());

    let outcome = loop {
        let (asock, client) = match next_client(&msock, &wake, &mut children, &mut accepting) {
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
            Ok(ForkResult::Child) => child(msock, wake, asock, client, config, &mut echoer),
            Ok(ForkResult::Parent { child }) => {
                forking.over("fork");
                event!("accepted {client} on fd {}, forked child {child}", asock.as_raw_fd());
                children.forked(child, Some(client));
                if config.breakage.leak_asock {
                    event!("NOT closing asock (fd {}): --leak-asock", asock.into_raw_fd());
                } else {
                    close("asock", asock);
                }
            }
            Err(errno) => {
                // Out of processes (EAGAIN) or memory: this client is let go,
                // and the server waits a little for children to end.
                drop(asock);
                forking.failed(&format!("fork failed: {errno}; closed the connection from {client}"));
                if let Err(err) = back_off(&wake) {
                    break Err(err);
                }
            }
        }
    };

    // Even after an error, the children are stopped and reaped.
    let summary = shut_down(msock, &wake, &mut children, config)?;
    outcome.map(|()| summary)
}

/// The child's side of the fork: serve one client, then exit.
fn child(
    msock: TcpListener,
    wake: WakePipe,
    asock: TcpStream,
    client: SocketAddr,
    config: &Config,
    echoer: &mut Echoer,
) -> ! {
    log::become_child();
    if config.breakage.leak_msock {
        event!("NOT closing msock (fd {}): --leak-msock", msock.into_raw_fd());
    } else {
        close("msock", msock);
    }
    if let Err(err) = signals::child_signals(config.sigpipe) {
        notice!("{err:#}");
        exit_child(exit_status::FAILED);
    }
    close_wake_pipe(wake);

    // No grace period of its own: at the end of it, the parent sends SIGKILL.
    let outcome = serve_alone(&asock, client, config, echoer, None);
    close("asock", asock);
    exit_child(outcome.status)
}

/// Ends a child. With `_exit`, not `exit`: the child leaves at once,
/// without running the exit handlers or flushing the stdio buffers it
/// inherited from the parent (a C child would print twice whatever the
/// parent had left in a `printf` buffer before fork). It has closed what
/// it opened already. Leaving this way also spares the child the pages
/// that the exit handlers would have written to, and so copied.
pub fn exit_child(status: i32) -> ! {
    // SAFETY: _exit has no preconditions: it ends the process at once.
    unsafe { libc::_exit(status) }
}

/// A child does not need the parent's wake pipe: it closes both ends
/// (after [`signals::child_signals`], so that no handler writes to it).
pub fn close_wake_pipe(wake: WakePipe) {
    let (read_fd, write_fd) = wake.fds();
    drop(wake);
    event!("closed the wake pipe (fds {read_fd} and {write_fd})");
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
    summary.log();
    Ok(summary)
}
