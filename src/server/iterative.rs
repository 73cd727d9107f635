//! The iterative (sequential) server of the previous lab: the server
//! process serves each client itself, from accept to close, and only then
//! accepts the next one. Whoever connects meanwhile waits in msock's queue:
//! one slow client holds up all the others (exercises 3 and 4).

use std::os::fd::AsRawFd;

use anyhow::Result;

use super::serve::{serve_alone, Echoer};
use super::{close, next_client, start, Config, Summary, Tracker, Trouble};
use crate::signals;
use crate::{event, notice};

/// What the iterative server keeps track of: only its counts.
struct Served(Summary);

impl Tracker for Served {
    fn collect(&mut self) -> Result<()> {
        Ok(())
    }

    fn at_limit(&mut self) -> bool {
        false // the one client being served has been finished already
    }

    fn log_status(&self) {
        let s = self.0;
        notice!(
            "status: children=0 zombies=0 accepted={} reaped={} sigpipe={}",
            s.accepted,
            s.reaped,
            s.sigpipe
        );
    }
}

/// Runs the server until SIGTERM or SIGINT, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    // The splice pipe, if any, is made before the server says it listens:
    // it is one of the descriptors the server starts with.
    let mut echoer = Echoer::with_pipe(config);
    let (msock, wake) = start(config)?;
    // Nobody kills this process when the grace period ends: SIGTERM puts a
    // send timeout on the client being served, so that a client that does
    // not read its echo cannot hold the server longer than that.
    signals::time_out_sends_on_terminate(config.grace);
    let mut served = Served(Summary::default());
    let mut accepting = Trouble::default();

    let outcome = loop {
        let (asock, client) = match next_client(&msock, &wake, &mut served, &mut accepting) {
            Ok(Some(connection)) => connection,
            Ok(None) => break Ok(()),
            Err(err) => break Err(err),
        };
        served.0.accepted += 1;
        event!("accepted {client} on fd {}: serving it, and nobody else until it is done", asock.as_raw_fd());
        let outcome = serve_alone(&asock, client, config, &mut echoer, Some(config.grace));
        close("asock", asock);
        served.0.served(outcome.status);
    };

    close("msock", msock);
    served.0.log();
    outcome.map(|()| served.0)
}
