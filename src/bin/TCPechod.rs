//! TCPechod: the concurrent echo server of the sockets lab.
//!
//! It listens on PORT and forks a child for every connection; the child
//! echoes what the client sends until the client closes. Run it in one
//! terminal and watch it from another:
//!
//! ```text
//! ./TCPechod 8000                 # the server
//! ./TCPecho 127.0.0.1 8000        # a client (as many as you like)
//! ps x                            # the parent, one child per client
//! ss -tanp | grep 8000            # LISTEN, ESTABLISHED, TIME_WAIT...
//! kill -TERM <parent PID>         # graceful shutdown, with a summary
//! ```
//!
//! Exit status: 0 after a graceful shutdown, 1 when the server cannot run
//! (port in use, permission denied..., or `--help`/`--version` that cannot
//! be written), 2 for a bad command line, 70 for an internal error (a bug).

// The lab's programs are called TCPechod and TCPecho, capitals included.
#![allow(non_snake_case)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use tcpechod::cli;
use tcpechod::models::{self, MODELS, MODEL_OPTIONS};
use tcpechod::server::config::{Breakage, Config};
use tcpechod::server::echo;
use tcpechod::server::msock::{self, BindAddress, Listen};
use tcpechod::support::signals::SigpipeMode;
use tcpechod::support::sigterm_experiments::{self, LibraryHandler};
use tcpechod::support::{log, port};

/// The most clients `--max-children` and `--workers` take: Linux's
/// largest kernel.pid_max. What this machine allows is said at start.
const MOST_CLIENTS: u64 = 4_194_304;

/// What `--help` ends with: the server's exit statuses, and its children's,
/// which the parent's `reaped` lines report.
const EXIT_STATUSES: &str = "\
Exit status of the server: 0 after a graceful shutdown; 1 when it cannot run (port in use, permission denied...); \
2 for a bad command line; 70 for an internal error (a bug).
Exit status of a child (the parent's `reaped` line says it in words): 0 the client closed, or a stop ended the echo \
gracefully; 1 reading or writing failed otherwise; 3 the client was gone when its echo was written (EPIPE); \
4 the client reset the connection; 5 on a stop, the client did not close within the grace period and the child \
closed anyway; 6 --idle-timeout closed the connection; 70 a bug.";

/// The concurrent echo server: a child process per connection (or another model, --mode).
#[derive(Parser, Debug)]
#[command(name = "TCPechod", version, after_long_help = EXIT_STATUSES)]
struct Args {
    /// Port number, or service name from /etc/services; 0 lets the kernel pick one.
    #[arg(default_value = "echo", value_parser = port::parse, allow_negative_numbers = true)]
    port: u16,

    /// How clients are served (each model takes the options that say so).
    #[arg(long, value_name = "MODEL", default_value = models::default().name, value_parser = models())]
    mode: String,

    /// Children started in advance (prefork) [default: number of CPUs].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = cli::whole_number(1, MOST_CLIENTS))]
    workers: Option<u64>,

    /// Local address to listen on; `::` listens on IPv6 and IPv4; an IPv6
    /// link-local address with its interface, as fe80::1%eth0.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = msock::parse_bind)]
    bind: BindAddress,

    /// Length of the queue of connections waiting for accept.
    #[arg(long, value_name = "N", default_value_t = 128, allow_negative_numbers = true,
          value_parser = cli::whole_number(1, 4096))]
    backlog: u64,

    /// Install no SIGCHLD handler: finished children stay zombies until
    /// shutdown (fork, prefork).
    #[arg(long)]
    no_reaper: bool,

    /// Do not join threads as they finish: they pile up until shutdown, as
    /// zombies do (thread).
    #[arg(long)]
    no_join: bool,

    /// What happens on a write to a broken connection [default: default in
    /// the fork model; ignore in the others, where a process serves many
    /// clients and must survive a broken one].
    #[arg(long, value_name = "MODE", value_enum)]
    sigpipe: Option<SigpipeMode>,

    /// Wait this many milliseconds before echoing each chunk (a slow service).
    #[arg(long, value_name = "MS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 60_000))]
    delay: u64,

    /// Bytes read and written at a time.
    #[arg(long, value_name = "BYTES", default_value_t = echo::DEFAULT_BUFFER as u64, allow_negative_numbers = true,
          value_parser = cli::whole_number(1, 16 << 20))]
    buffer: u64,

    /// Move the bytes with splice(2), socket to pipe to socket, without
    /// copying them into the process (falls back to copying where it
    /// cannot; not in poll).
    #[arg(long)]
    splice: bool,

    /// Install no SIGTERM/SIGINT/SIGHUP handler: those signals kill the
    /// server at once (but with --library-handler, SIGTERM runs the
    /// library's handler alone, and the server goes on).
    #[arg(long)]
    no_sigterm_handler: bool,

    /// Seconds children get to finish after SIGTERM before they are sent SIGKILL.
    #[arg(long, value_name = "SECS", default_value_t = 5, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 3600))]
    grace: u64,

    /// Close a connection after this many seconds without progress: nothing
    /// received, or its echo not taken (0: never; the lab needs idle
    /// clients). A client that sends a byte now and then is not idle: it
    /// keeps its place however slow it is (a known limit: no minimum rate).
    #[arg(long, value_name = "SECS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 86_400))]
    idle_timeout: u64,

    /// Most clients served at once; at the limit the server stops
    /// accepting (not iterative, which serves one).
    #[arg(long, value_name = "N", default_value_t = 512, allow_negative_numbers = true,
          value_parser = cli::whole_number(1, MOST_CLIENTS))]
    max_children: u64,

    /// Broken on purpose: the parent does not close the sockets it accepts (fork).
    #[arg(long, help_heading = "Toggles that break the server on purpose")]
    leak_asock: bool,

    /// Broken on purpose: children do not close the listening socket (fork).
    #[arg(long, help_heading = "Toggles that break the server on purpose")]
    leak_msock: bool,

    /// Broken on purpose: no SO_REUSEADDR, so a restart can fail while old
    /// connections are in TIME_WAIT.
    #[arg(long, help_heading = "Toggles that break the server on purpose")]
    no_reuseaddr: bool,

    /// Log only the first line, errors and the shutdown summary.
    #[arg(short, long)]
    quiet: bool,

    /// Register an exit handler (atexit) that logs one line: see when it
    /// runs, and when it does not.
    #[arg(long, help_heading = "Experiments of the talk on SIGTERM")]
    atexit: bool,

    /// A stand-in library installs a SIGTERM handler before the server's:
    /// the server's replaces it, or calls it after its own (chain), once.
    #[arg(long, value_name = "MODE", value_enum, help_heading = "Experiments of the talk on SIGTERM")]
    library_handler: Option<LibraryHandler>,
}

/// The values of `--mode`: the models of the table, with their help.
fn models() -> PossibleValuesParser {
    PossibleValuesParser::new(MODELS.iter().map(|model| PossibleValue::new(model.name).help(model.about)))
}

fn main() -> ExitCode {
    cli::guarded("TCPechod", run)
}

fn run() -> ExitCode {
    let (args, matches): (Args, ArgMatches) = cli::parse_args_and_matches("TCPechod");
    let config = match config(&args, &matches) {
        Ok(config) => config,
        Err(message) => cli::usage_error("TCPechod", &message),
    };
    log::init_parent(args.quiet);
    let experiments = (|| {
        if args.atexit {
            sigterm_experiments::register_atexit()?;
        }
        if args.library_handler.is_some() {
            sigterm_experiments::install_library_handler()?;
        }
        anyhow::Ok(())
    })();
    let served = experiments.and_then(|()| (config.model.run)(&config).map(drop));
    cli::exit_code("TCPechod", served)
}

/// The configuration the command line asks for, once the options given
/// are checked against the model's (see `tcpechod::models`).
fn config(args: &Args, matches: &ArgMatches) -> Result<Config, String> {
    let model = models::model(&args.mode).ok_or_else(|| format!("no model '{}'", args.mode))?;
    let given = MODEL_OPTIONS
        .into_iter()
        .filter(|option| matches.value_source(&option.replace('-', "_")) == Some(ValueSource::CommandLine));
    models::check_options(model, given)?;
    let config = Config {
        listen: Listen {
            addr: args.bind.ip,
            scope_id: args.bind.scope_id,
            port: args.port,
            backlog: args.backlog as i32,
            reuse_addr: !args.no_reuseaddr,
        },
        model,
        workers: args.workers.map(|n| n as usize),
        reaper: !args.no_reaper,
        join: !args.no_join,
        sigpipe: args.sigpipe.unwrap_or(model.sigpipe),
        delay: Duration::from_millis(args.delay),
        buffer: args.buffer as usize,
        splice: args.splice,
        terminate_handler: !args.no_sigterm_handler,
        grace: Duration::from_secs(args.grace),
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        max_children: args.max_children as usize,
        breakage: Breakage { leak_asock: args.leak_asock, leak_msock: args.leak_msock },
        library_handler: args.library_handler,
    };
    config.check()?;
    Ok(config)
}
