//! TCPecho: the client of the echo server.
//!
//! It sends its standard input to the server and prints the echo on its
//! standard output, byte for byte; messages go to stderr. It checks the
//! echo: as many bytes as were sent, and the same ones (an FNV-1a hash of
//! everything sent against one of everything that came back, see the
//! `client` module). If the server closes the connection first, it
//! stops at once, even while its input is quiet, and says how much came
//! back.
//!
//! ```text
//! ./TCPecho 127.0.0.1 8000                      # type lines, see them echoed
//! ./TCPecho localhost 8000 < file > copy        # any file, any size
//! ./TCPecho --hold 30 127.0.0.1 8000 < /dev/null  # an idle connection for ss -tn
//! ```
//!
//! SIGTERM or SIGINT (Ctrl-C) ends it gracefully: it stops sending,
//! half-closes, waits up to `--grace` seconds for the echo still due,
//! closes, and says so on stderr. A second one ends it at once.
//!
//! Exit status: 0 when everything sent came back unchanged (after a
//! SIGTERM or SIGINT too, if it came back within `--grace`), 1 when
//! something failed (name resolution, connection, a short or changed echo,
//! the server closing first, standard output failing, `--help` that
//! cannot be written...), 2 for a bad command line (port 0 included) or a
//! standard descriptor it needs closed at start (`>&-`: input 0, output 1
//! unless `--no-read`, stderr 2, which gets no message), 3 when SIGTERM or
//! SIGINT ended it before it connected (during `--retry`) or before all
//! the echo came back, 128+N when a second signal N ended it at once (130
//! for SIGINT, 143 for SIGTERM), 70 for an internal error (a bug).

// The lab's programs are called TCPechod and TCPecho, capitals included.
#![allow(non_snake_case)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tcpechod::cli;
use tcpechod::client::{self, Ended, Options};
use tcpechod::support::{log, port};

/// Exit status when a stop signal ended the run before it connected or
/// before all the echo came back.
const EXIT_STOPPED_SHORT: u8 = 3;

/// The echo client: sends standard input, prints what comes back.
///
/// It checks the echo: as many bytes as were sent, and the same bytes (an
/// FNV-1a hash, 8 x 64 bits, of all it sent against one of all that came
/// back: one changed byte is always caught). If the server closes the connection
/// first, it stops at once, even while the input is quiet.
///
/// Exit status: 0 everything sent came back unchanged; 1 a failure (a
/// short or changed echo, the server closing first...); 2 a bad command
/// line, or standard input, output or error closed (`>&-`); 3 SIGTERM or
/// SIGINT ended it before it connected or before all the echo came back;
/// 130 or 143 a second SIGINT or SIGTERM ended it at once.
#[derive(Parser, Debug)]
#[command(name = "TCPecho", version)]
struct Args {
    /// Server name or address (IPv4 or IPv6).
    #[arg(default_value = "localhost", value_parser = cli::host)]
    host: String,

    /// Server port number (1 to 65535), or service name from /etc/services.
    #[arg(default_value = "echo", value_parser = port::parse_remote, allow_negative_numbers = true)]
    port: u16,

    /// Wait this many milliseconds between lines of input.
    #[arg(long, value_name = "MS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 60_000))]
    interval: u64,

    /// Only send: read nothing back, close when the input ends.
    #[arg(long)]
    no_read: bool,

    /// Keep the connection open this many seconds after the input ends
    /// (less if the server closes it first).
    #[arg(long, value_name = "SECS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 86_400))]
    hold: u64,

    /// After SIGTERM or SIGINT, wait this many seconds for the echo still due.
    #[arg(long, value_name = "SECS", default_value_t = 2, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 3600))]
    grace: u64,

    /// Send this file instead of standard input.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,

    /// If the connection fails, try again for up to this many seconds
    /// (a server that is still starting).
    #[arg(long, value_name = "SECS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 3600))]
    retry: u64,
}

fn main() -> ExitCode {
    cli::guarded("TCPecho", run)
}

fn run() -> ExitCode {
    let args: Args = cli::parse_args("TCPecho");
    // Checked before anything is opened (see cli::closed_at_start).
    if cli::closed_at_start(io::stderr()) {
        return ExitCode::from(cli::EXIT_USAGE); // and nowhere to say why
    }
    if args.input.is_none() && cli::closed_at_start(io::stdin()) {
        cli::usage_error(
            "TCPecho",
            "standard input is closed: there is nothing to send (or give --input FILE)",
        );
    }
    if !args.no_read && cli::closed_at_start(io::stdout()) {
        cli::usage_error(
            "TCPecho",
            "standard output is closed: the echo would go nowhere (or give --no-read)",
        );
    }
    let options = Options {
        host: args.host,
        port: args.port,
        interval: Duration::from_millis(args.interval),
        read_back: !args.no_read,
        hold: Duration::from_secs(args.hold),
        grace: Duration::from_secs(args.grace),
        input: args.input,
        retry: Duration::from_secs(args.retry),
    };
    log::init_client();
    match client::run(&options) {
        Ok(Ended::Stopped { complete: false }) => ExitCode::from(EXIT_STOPPED_SHORT),
        result => cli::exit_code("TCPecho", result.map(drop)),
    }
}
