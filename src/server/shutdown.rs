//! The graceful shutdown of a forking server (the fork and prefork
//! models), once a stop signal or an error ended its loop: no more
//! clients, SIGTERM to every child, up to `--grace` seconds for them to
//! finish, SIGKILL to those left, every one reaped, and the summary.
//!
//! A child ends on its own a little before the grace period is over (see
//! [`Config::child_grace`]): the parent's SIGKILL is for children that
//! could not end at all.

use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::Signal;

use super::accept::Acceptor;
use super::config::Config;
use super::reaper::{self, Children};
use super::summary::Summary;
use crate::{event, notice};

/// Stops a forking server: closes msock; SIGTERM to each child, up to
/// `--grace` for them to finish, SIGKILL to those left; every one reaped
/// (by the reaper, installed now if `--no-reaper` kept it out); then the
/// last line, the summary, and the server's result.
pub fn graceful(mut server: Acceptor, mut children: Children, config: &Config) -> Result<Summary> {
    server.close_msock();
    if let Err(err) = stop_all(&mut children, &server, config) {
        notice!("{err:#}");
    }
    server.finish(children.summary())
}

fn stop_all(children: &mut Children, server: &Acceptor, config: &Config) -> Result<()> {
    if !config.reaper {
        event!("installing the reaper to collect the zombies");
        reaper::install()?;
        reaper::reap_now()?;
    }
    if children.signal_all(Signal::SIGTERM)? > 0 {
        wait_for_all(children, server, Some(Instant::now() + config.grace))?;
    }
    if children.alive() > 0 {
        grace_over(config.grace, children.alive(), Leftover::Children);
        children.signal_all(Signal::SIGKILL)?;
        wait_for_all(children, server, None)?;
    }
    Ok(())
}

/// Waits until every child is reaped, or until `deadline`.
fn wait_for_all(children: &mut Children, server: &Acceptor, deadline: Option<Instant>) -> Result<()> {
    loop {
        children.collect_reaped(drop)?;
        if children.alive() == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        server.sleep_until(deadline)?;
    }
}

/// What is done to the clients still being served when a stop's grace
/// period is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// Children, which are sent SIGKILL.
    Children,
    /// Connections of threads or of the server's own loop, which are cut.
    Connections,
}

/// Says, in every model, that a stop's grace period is over with `left`
/// clients still being served, and what is done to them.
pub fn grace_over(grace: Duration, left: usize, leftover: Leftover) {
    let what = match leftover {
        Leftover::Children => {
            format!("{left} {} still alive, sending SIGKILL", if left == 1 { "child" } else { "children" })
        }
        Leftover::Connections => {
            format!("cutting {left} {}", if left == 1 { "connection" } else { "connections" })
        }
    };
    notice!("grace period of {} s over: {what}", grace.as_secs_f64());
}
