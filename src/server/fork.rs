//! The fork-per-connection server: the heart of the lab, in one function.
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
//! descriptor of a socket is closed. (`--leak-msock` and `--leak-asock`
//! remove each line, to show it.)
//!
//! One connection is followed in five files: this loop;
//! [`accept`](super::accept) (msock, the signal handlers, the wait for a
//! client); [`child`] (what a child changes, and its exit
//! status); [`echo`](super::echo) (the echo loop, and how it ended);
//! [`reaper`] (the SIGCHLD handler, and the parent's list
//! of its children). After the loop, [`shutdown`].

use std::os::fd::AsRawFd;

use anyhow::Result;
use nix::unistd::{fork, ForkResult};

use super::accept::{close, close_unless, Acceptor};
use super::config::Config;
use super::echo::Echoer;
use super::reaper::{self, Children};
use super::summary::Summary;
use super::{child, shutdown};
use crate::event;
use crate::support::log;
use crate::support::trouble::Trouble;

/// Runs the server until a stop signal (SIGTERM, SIGINT, SIGHUP) or an
/// error, then shuts it down gracefully and returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let mut server = Acceptor::listen(config)?; // msock: socket, bind, listen; the stop handlers
    if config.reaper {
        reaper::install()?; // SIGCHLD: the reaper collects every child that ends
    }
    let mut children = Children::new();
    // Each child echoes through its own copy, and keeps to a grace period
    // a little shorter than its parent's (see Config::child_grace).
    let mut echoer = Echoer::for_process(config, config.child_grace());
    let mut forking = Trouble::default();

    // accept: the next client, once the children the reaper collected are
    // taken off the list (each frees a place under --max-children). There
    // is no `if (errno == EINTR) continue;` as in C: std's accept makes the
    // call again itself, so no handler could break it; the loop waits in
    // poll(2) on msock and the wake pipe instead, which every handler cuts
    // short (see accept.rs).
    while let Some((asock, client)) = server.next_client(&mut children) {
        // SAFETY: fork is unsafe because a child of a multithreaded process
        // may only call async-signal-safe functions until it execs (another
        // thread could have held a lock, the malloc lock say, at the moment
        // of the fork). This process has one thread, so the child gets a
        // consistent copy of everything and may run ordinary Rust code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // The child serves this client only. What changes in it first:
                log::become_child(); // its log lines say [child PID]
                child::take_signals(config.sigpipe); // SIGCHLD, SIGUSR1: the parent's; SIGPIPE: --sigpipe
                let (msock, wake) = server.into_child();
                child::close_wake_pipe(wake); // the parent waits on it, not the child
                close_unless(config.breakage.leak_msock, "msock", msock); // the parent accepts on it
                let ending = echoer.serve(&asock, client); // the echo, until the client closes
                close("asock", asock);
                child::exit(ending.exit_status()) // how it ended, for the parent's reaper
            }
            Ok(ForkResult::Parent { child }) => {
                // The parent closes asock, which the child holds now, and
                // goes back to accept.
                event!("accepted {client} on fd {}, forked child {child}", asock.as_raw_fd());
                children.forked(child, Some(client));
                close_unless(config.breakage.leak_asock, "asock", asock);
                forking.worked("fork");
            }
            Err(errno) => {
                // Out of processes (EAGAIN) or memory: this client is let
                // go (dropping asock closes it), and the server pauses.
                let what = format!("fork failed: {errno}; closed the connection from {client}");
                server.back_off(&mut forking, what);
            }
        }
    }
    // A stop signal (or an error): no more clients. Stop the children, reap them.
    shutdown::graceful(server, children, config)
}
