//! The whole benchmark (`make bench`): every server model of TCPechod, the
//! C baseline and socat, each started on a free port of 127.0.0.1 and put
//! through the same tests, several times; then the report.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::memory;
use super::rate::{self, RateOptions};
use super::report::{Measured, Parameters, Report};
use super::servers::{Contender, Lineup, Server};
use super::stream::{self, StreamOptions};
use super::Progress;
use tcpechod::models;
use tcpechod::support::log::say;

/// What to run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The servers.
    pub lineup: Lineup,
    /// A smoke run: one short run of each test.
    pub quick: bool,
}

impl SuiteOptions {
    fn parameters(&self) -> Parameters {
        if self.quick {
            Parameters {
                runs: 1,
                rate: RateOptions { concurrency: 4, size: 64, duration: Duration::from_secs(1) },
                one_stream: StreamOptions { streams: 1, bytes: 16 << 20 },
                four_streams: StreamOptions { streams: 4, bytes: 4 << 20 },
                idle_clients: 20,
            }
        } else {
            Parameters {
                runs: 3,
                rate: RateOptions { concurrency: 8, size: 64, duration: Duration::from_secs(3) },
                one_stream: StreamOptions { streams: 1, bytes: 1 << 30 },
                four_streams: StreamOptions { streams: 4, bytes: 256 << 20 },
                idle_clients: 100,
            }
        }
    }

    fn contenders(&self) -> Vec<Contender> {
        // Every server, and the lab's own model once more with --splice.
        let mut all = self.lineup.contenders(self.quick);
        let lab = models::default();
        let name = format!("{} --splice", lab.name);
        all.insert(1, Contender::ours(&self.lineup.server, &name, lab, &["--splice"]));
        all
    }
}

/// Runs every test against every server; fails if any echo was wrong.
///
/// The runs go round the servers (run 1 of each, then run 2 of each...),
/// so that a slow moment of the machine does not fall on one server only.
pub fn run(options: &SuiteOptions) -> Result<Report> {
    let parameters = options.parameters();
    let contenders = options.contenders();
    let started = Instant::now();
    let progress = &mut Progress::new(false);
    let mut rows: Vec<Measured> = contenders
        .iter()
        .map(|c| Measured { name: c.name.clone(), reference: c.reference, ..Measured::default() })
        .collect();
    for run in 1..=parameters.runs {
        for (contender, row) in contenders.iter().zip(&mut rows) {
            say(&format!("run {run}/{}: {}\n", parameters.runs, contender.name));
            let server =
                Server::start(contender, None).with_context(|| format!("start {}", contender.name))?;
            row.rate.push(rate::run(server.addr, parameters.rate, progress));
            row.one_stream.push(stream::run(server.addr, parameters.one_stream, progress));
            row.four_streams.push(stream::run(server.addr, parameters.four_streams, progress));
            server.stop();
        }
    }
    for (contender, row) in contenders.iter().zip(&mut rows) {
        say(&format!("memory: {}\n", contender.name));
        let server = Server::start(contender, None).with_context(|| format!("start {}", contender.name))?;
        row.memory = memory::run(server.addr, parameters.idle_clients, server.pid)
            .with_context(|| format!("memory of {}", contender.name))?;
        server.stop();
    }
    let report = Report { parameters, rows, seconds: started.elapsed().as_secs_f64() };
    let (errors, mismatches) = report.failures();
    if errors + mismatches > 0 {
        super::out(&report.table());
        bail!(
            "{errors} connections failed and {mismatches} echoes differed: {}",
            report.failures_by_server()
        );
    }
    let reference = report.failures_by_server();
    if !reference.is_empty() {
        say(&format!("echobench: failures of reference servers (reported, not counted): {reference}\n"));
    }
    Ok(report)
}
