//! The iterative (sequential) server of the previous lab: the server
//! process serves each client itself, from accept to close, and only then
//! accepts the next one. Whoever connects meanwhile waits in msock's queue:
//! one slow client holds up all the others (exercises 3 and 4).

use std::os::fd::AsRawFd;

use anyhow::Result;

use crate::event;
use crate::server::accept::{close, Acceptor, Clients};
use crate::server::config::Config;
use crate::server::echo::Echoer;
use crate::server::summary::{Status, Summary};

/// What the iterative server keeps track of: only its counts (between two
/// clients, it serves nobody).
struct Served(Summary);

impl Clients for Served {
    fn collect(&mut self) -> Result<()> {
        Ok(())
    }

    fn serving(&self) -> usize {
        0
    }

    fn status(&self) -> Status {
        Status { serving: 0, zombies: 0, counts: self.0 }
    }
}

/// Runs the server until a stop, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    // Nobody kills this process when the grace period ends: it keeps to
    // the whole of it itself (a stop puts a send timeout of that long on
    // the client being served, so that one that does not read its echo
    // cannot hold the server longer).
    let mut echoer = Echoer::for_process(config, config.grace);
    let mut server = Acceptor::listen(config)?;
    let mut served = Served(Summary::default());

    while let Some((asock, client)) = server.next_client(&mut served) {
        event!("accepted {client} on fd {}: serving it, and nobody else until it is done", asock.as_raw_fd());
        let ending = echoer.serve(&asock, client);
        close("asock", asock);
        served.0.served(ending.exit_status());
    }
    server.close_msock();
    server.finish(served.0)
}
