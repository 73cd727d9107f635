//! echobench: measures an echo server (TCPechod, or any other).
//!
//! ```text
//! ./echobench rate 127.0.0.1 8000          # short connections: conn/s and latency
//! ./echobench stream 127.0.0.1 8000        # long transfers: MB/s
//! ./echobench memory 127.0.0.1 8000 --pid SERVER_PID
//! ./echobench suite --server ./TCPechod    # everything, every server model (make bench)
//! ./echobench scale --server ./TCPechod    # 10 to 10,000 clients at once, every model (make bench)
//! ```
//!
//! Every echo is checked byte for byte. Exit status: 0; 1 when any
//! connection failed or any echo differed, when nothing listens at the
//! address (`rate` and `memory` stop at the first refused connection), when
//! there is no process PID, or when the help or the version cannot be
//! written; 2 for a bad command line.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{self, ExitCode};
use std::time::Duration;

use anyhow::bail;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use echobench::servers::Lineup;
use echobench::{self as bench, memory, network, rate, report, scale, stream, suite, Progress};
use tcpechod::cli;
use tcpechod::support::log::reason;
use tcpechod::support::{log, port};

/// Measures an echo server: connection rate, throughput, memory.
#[derive(Parser, Debug)]
#[command(name = "echobench", version)]
struct Args {
    #[command(subcommand)]
    test: Test,
}

#[derive(Subcommand, Debug)]
enum Test {
    /// Short connections: connect, send, read back, close; for a while.
    Rate {
        #[command(flatten)]
        target: Target,
        /// Clients connecting at the same time.
        #[arg(long, short = 'c', default_value_t = 8, value_parser = cli::whole_number(1, 1024))]
        concurrency: u64,
        /// Bytes per connection.
        #[arg(long, short = 'm', default_value_t = 64, value_parser = cli::whole_number(1, 1 << 24))]
        size: u64,
        /// Seconds to run.
        #[arg(long, short = 't', default_value_t = 5, value_parser = cli::whole_number(1, 3600))]
        duration: u64,
    },
    /// Long transfers: each stream sends and checks MEGABYTES.
    Stream {
        #[command(flatten)]
        target: Target,
        /// Streams at the same time.
        #[arg(long, short = 's', default_value_t = 1, value_parser = cli::whole_number(1, 256))]
        streams: u64,
        /// MiB per stream.
        #[arg(long, short = 'b', default_value_t = 256, value_parser = cli::whole_number(1, 1 << 20))]
        megabytes: u64,
    },
    /// Every test against every server model, the C baseline and socat (make bench).
    Suite {
        #[command(flatten)]
        run: Run,
    },
    /// 10 to 10,000 clients at once, against every server model, the C
    /// baseline and socat: time to connect, memory, echo latency (make bench).
    Scale {
        #[command(flatten)]
        run: Run,
    },
    /// Memory (PSS) of the server process PID and its children with idle clients.
    Memory {
        #[command(flatten)]
        target: Target,
        /// The server's process ID.
        #[arg(long, value_parser = cli::whole_number(1, i32::MAX as u64))]
        pid: u64,
        /// Idle clients.
        #[arg(long, short = 'n', default_value_t = 100, value_parser = cli::whole_number(1, 4096))]
        connections: u64,
    },
}

/// What the suite and the scaling run take.
#[derive(clap::Args, Debug)]
struct Run {
    #[command(flatten)]
    lineup: Lineup,
    /// A smoke run, as make test does: fewer, shorter measurements, no socat.
    #[arg(long)]
    quick: bool,
    /// Write the report (RESULTS.md or SCALING.md) and its charts into this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Server name or address.
    #[arg(value_parser = cli::host)]
    host: String,
    /// Server port.
    #[arg(value_parser = port::parse)]
    port: u16,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn main() -> ExitCode {
    cli::guarded("echobench", || {
        let args = parse_args();
        cli::exit_code("echobench", run(args.test).map_err(bench::plain))
    })
}

/// The command line, as `cli::parse_args` reads it, except that `--help`
/// and `--version` check their write: with standard output full or closed,
/// one line says so and the status is 1, not a silent 0.
fn parse_args() -> Args {
    let err = match Args::command().try_get_matches() {
        Ok(matches) => match Args::from_arg_matches(&matches) {
            Ok(args) => return args,
            Err(err) => err,
        },
        Err(err) => err,
    };
    if !matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return cli::parse_args("echobench"); // reports the usage error as one line, and exits 2
    }
    let what = if err.kind() == ErrorKind::DisplayHelp { "help" } else { "version" };
    // Plain text, without clap's colours: what a pipe or a file gets anyway.
    let text = err.render().to_string();
    let written = {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush())
    };
    if let Err(err) = written {
        log::say(&format!("echobench: cannot write the {what}: {}\n", reason(&err)));
        process::exit(cli::EXIT_FAILURE.into());
    }
    process::exit(0)
}

fn run(test: Test) -> anyhow::Result<()> {
    match test {
        Test::Rate { target, concurrency, size, duration } => {
            let addr = bench::resolve(&target.host, target.port)?;
            let opts = rate::RateOptions {
                concurrency: concurrency as usize,
                size: size as usize,
                duration: Duration::from_secs(duration),
            };
            let r = rate::run(addr, opts, &mut Progress::new(target.quiet));
            if r.refused && r.connections == 0 {
                bail!("no server listens on {addr} (connection refused)");
            }
            bench::out(&format!(
                "rate: connections={} per_second={:.0} p50_us={} p99_us={} max_us={} errors={} mismatches={}\n",
                r.connections, r.per_second, r.p50_us, r.p99_us, r.max_us, r.errors, r.mismatches
            ));
            if r.refused {
                bail!(
                    "the server at {addr} stopped listening after {} connections (connection refused)",
                    r.connections
                );
            }
            check(r.errors, r.mismatches)
        }
        Test::Stream { target, streams, megabytes } => {
            let addr = bench::resolve(&target.host, target.port)?;
            let opts = stream::StreamOptions { streams: streams as usize, bytes: megabytes << 20 };
            let r = stream::run(addr, opts, &mut Progress::new(target.quiet));
            bench::out(&format!(
                "stream: streams={streams} bytes={} mb_per_second={:.0} errors={} mismatches={}\n",
                r.bytes, r.mb_per_second, r.errors, r.mismatches
            ));
            check(r.errors, r.mismatches)
        }
        Test::Suite { run: Run { lineup, quick, out } } => {
            let setting = setting();
            let options = suite::SuiteOptions { lineup, quick };
            let report = suite::run(&options)?;
            bench::out(&report.table());
            if let Some(dir) = out {
                report.write(&dir, &setting)?;
                bench::out(&format!("written: {}\n", dir.join("RESULTS.md").display()));
            }
            Ok(())
        }
        Test::Scale { run: Run { lineup, quick, out } } => {
            let setting = setting();
            let options = scale::ScaleOptions { lineup, quick };
            let report = scale::run(&options)?;
            bench::out(&report.markdown(&setting));
            if let Some(dir) = &out {
                report.write(dir, &setting)?;
                bench::out(&format!("written: {}\n", dir.join("SCALING.md").display()));
            }
            let failures = report.unexpected_failures();
            if !failures.is_empty() {
                bail!("servers that should take the load failed: {}", failures.join("; "));
            }
            Ok(())
        }
        Test::Memory { target, pid, connections } => {
            let addr = bench::resolve(&target.host, target.port)?;
            let r = memory::run(addr, connections as usize, pid as i32)?;
            bench::out(&format!(
                "memory: connections={connections} served={} processes={} total_pss_kib={} parent_pss_kib={}\n",
                r.served, r.processes, r.total_pss_kib, r.parent_pss_kib
            ));
            Ok(())
        }
    }
}

/// The machine, and where the connections go (a loopback of our own when
/// we can have one): the first lines of a report. Called first, before any
/// thread or server is started, so that they all share that loopback.
fn setting() -> String {
    let network = network::own_loopback();
    format!("{}\n\nNetwork: {network}", report::machine())
}

fn check(errors: u64, mismatches: u64) -> anyhow::Result<()> {
    if mismatches > 0 {
        bail!("{mismatches} echoes differed from what was sent");
    }
    if errors > 0 {
        bail!("{errors} connections failed");
    }
    Ok(())
}
