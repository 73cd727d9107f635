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
//! The plumbing is called by name: [`Acceptor`] (msock, the signals, the
//! wait for a client), [`serve_alone`] (the echo loop), [`Children`] (the
//! parent's list, and the shutdown), [`child`](mod@crate::child) (the child's
//! setup and `_exit`), [`reaper`](crate::reaper) (the SIGCHLD handler).

use std::os::fd::AsRawFd;

use anyhow::Result;
use nix::unistd::{fork, ForkResult};

use super::acceptor::{Acceptor, Trouble};
use super::children::Children;
use super::serve::{serve_alone, Echoer};
use super::{close, close_unless, Config, Summary};
use crate::{child, event, signals};

/// Runs the server until SIGTERM or SIGINT, then shuts it down gracefully
/// and returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let mut server = Acceptor::listen(config)?; // msock: socket, bind, listen; the handlers
    let mut children = Children::new();
    let mut echoer = Echoer::new(config); // each child echoes through its own copy
    let mut forking = Trouble::default();

    while let Some((asock, client)) = server.next_client(&mut children) {
        // SAFETY: fork is unsafe because a child of a multithreaded process
        // may only call async-signal-safe functions until it execs (another
        // thread could have held a lock, the malloc lock say, at the moment
        // of the fork). This process has one thread, so the child gets a
        // consistent copy of everything and may run ordinary Rust code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // The child serves this client only: it closes msock, on
                // which the parent goes on accepting, echoes, and exits.
                let msock = server.into_child(config);
                close_unless(config.breakage.leak_msock, "msock", msock);
                // After a stop it ends on its own, a little before the
                // parent's grace period is over (see Config::child_grace).
                let grace = config.child_grace();
                signals::time_out_sends_on_terminate(grace);
                let served = serve_alone(&asock, client, config, &mut echoer, grace);
                close("asock", asock);
                child::exit(served.ending.exit_status());
            }
            Ok(ForkResult::Parent { child }) => {
                // The parent closes asock, which the child holds now, and
                // goes back to accept.
                event!("accepted {client} on fd {}, forked child {child}", asock.as_raw_fd());
                children.forked(child, Some(client));
                close_unless(config.breakage.leak_asock, "asock", asock);
                forking.over("fork");
            }
            Err(errno) => {
                // Out of processes (EAGAIN) or memory: this client is let
                // go (dropping asock closes it), and the server pauses.
                let what = format!("fork failed: {errno}; closed the connection from {client}");
                server.back_off(&mut forking, what);
            }
        }
    }
    // SIGTERM (or an error): no more clients. Stop the children, reap them.
    children.shut_down(server, config)
}
