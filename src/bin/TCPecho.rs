//! TCPecho: the client of the echo server.
//!
//! It sends its standard input to the server and prints the echo on its
//! standard output, byte for byte; messages go to stderr.
//!
//! ```text
//! ./TCPecho 127.0.0.1 8000                      # type lines, see them echoed
//! ./TCPecho localhost 8000 < file > copy        # any file, any size
//! ./TCPecho --hold 30 127.0.0.1 8000 < /dev/null  # an idle connection for ss -tn
//! ```
//!
//! Exit status: 0 when everything sent came back, 1 when something failed
//! (name resolution, connection, a short echo...), 2 for a bad command line,
//! 70 for an internal error (a bug).

// The lab's programs are called TCPechod and TCPecho, capitals included.
#![allow(non_snake_case)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tcpechod::client::{self, Options};
use tcpechod::{cli, port};

/// The echo client: sends standard input, prints what comes back.
#[derive(Parser, Debug)]
#[command(name = "TCPecho", version)]
struct Args {
    /// Server name or address (IPv4 or IPv6).
    #[arg(default_value = "localhost", value_parser = cli::host)]
    host: String,

    /// Server port number, or service name from /etc/services.
    #[arg(default_value = "echo", value_parser = port::parse, allow_negative_numbers = true)]
    port: u16,

    /// Wait this many milliseconds between lines of input.
    #[arg(long, value_name = "MS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 60_000))]
    interval: u64,

    /// Only send: read nothing back, close when the input ends.
    #[arg(long)]
    no_read: bool,

    /// Keep the connection open this many seconds after the input ends.
    #[arg(long, value_name = "SECS", default_value_t = 0, allow_negative_numbers = true,
          value_parser = cli::whole_number(0, 86_400))]
    hold: u64,
}

fn main() -> ExitCode {
    cli::guarded("TCPecho", run)
}

fn run() -> ExitCode {
    let args: Args = cli::parse_args("TCPecho");
    let options = Options {
        host: args.host,
        port: args.port,
        interval: Duration::from_millis(args.interval),
        read_back: !args.no_read,
        hold: Duration::from_secs(args.hold),
    };
    cli::exit_code("TCPecho", client::run(&options))
}
