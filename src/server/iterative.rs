//! The iterative (sequential) server of the previous lab: the server
//! process serves each client itself, from accept to close, and only then
//! accepts the next one. Whoever connects meanwhile waits in msock's queue:
//! one slow client holds up all the others (exercises 3 and 4).

use std::os::fd::AsRawFd;

use anyhow::Result;

use super::acceptor::{Acceptor, Clients};
use super::serve::{serve_alone, Echoer};
use super::summary::Status;
use super::{close, Config, Summary};
use crate::{event, signals};

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
    let mut echoer = Echoer::new(config);
    let mut server = Acceptor::listen(config)?;
    // Nobody kills this process when the grace period ends: SIGTERM puts a
    // send timeout on the client being served, so that a client that does
    // not read its echo cannot hold the server longer than that.
    signals::time_out_sends_on_terminate(config.grace);
    let mut served = Served(Summary::default());

    while let Some((asock, client)) = server.next_client(&mut served) {
        event!("accepted {client} on fd {}: serving it, and nobody else until it is done", asock.as_raw_fd());
        let outcome = serve_alone(&asock, client, config, &mut echoer, config.grace);
        close("asock", asock);
        served.0.served(&outcome.ending);
    }
    server.close_msock();
    server.finish(served.0)
}
