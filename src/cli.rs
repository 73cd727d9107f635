//! What the programs do with their command line and their errors: a bad
//! argument or a failure is reported as one line on stderr, `PROGRAM: what
//! failed`, never as a panic or a backtrace, and the exit status says which
//! kind it was.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::panic::{self, PanicHookInfo, UnwindSafe};
use std::process::{self, ExitCode};

use clap::error::ErrorKind;
use clap::{ArgMatches, Parser};

use crate::server::child::{self, ExitStatus};
use crate::support::log::{self, reason};

/// Exit status of a usage error: a bad option, port, address or number.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of a failure at run time (bind, connect, I/O...).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of an internal error: a bug (EX_SOFTWARE of sysexits.h).
pub const EXIT_INTERNAL: u8 = 70;

/// Runs a program's `main` so that a panic, which would be a bug, ends
/// as one line (`PROGRAM: internal error: ...`) and exit status 70, never
/// as Rust's panic message and backtrace, whatever RUST_BACKTRACE says.
/// In a child of the server the line goes to the log and the child ends
/// with the failure status; in a thread of the threaded server only that
/// client's thread ends.
pub fn guarded(program: &'static str, main: impl FnOnce() -> ExitCode + UnwindSafe) -> ExitCode {
    panic::set_hook(Box::new(move |info| {
        if log::in_child() {
            crate::notice!("internal error: {}", panic_text(info));
            child::exit(ExitStatus::Internal);
        }
        log::say(&format!("{program}: internal error: {}\n", panic_text(info)));
    }));
    panic::catch_unwind(main).unwrap_or(ExitCode::from(EXIT_INTERNAL))
}

/// What a panic says, and where.
pub fn panic_text(info: &PanicHookInfo<'_>) -> String {
    let message = match info.payload().downcast_ref::<&str>() {
        Some(text) => (*text).to_string(),
        None => match info.payload().downcast_ref::<String>() {
            Some(text) => text.clone(),
            None => "panic".to_string(),
        },
    };
    match info.location() {
        Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
        None => message,
    }
}

/// Parses the command line; on a usage error prints one line and exits 2
/// (`--help` and `--version` print and exit 0 as usual, or, if standard
/// output is closed or cannot take them, say so in one line and exit 1).
pub fn parse_args<A: Parser>(program: &str) -> A {
    parse_args_and_matches(program).0
}

/// Like [`parse_args`], with clap's matches too, which say where each
/// value came from (the command line, or a default).
pub fn parse_args_and_matches<A: Parser>(program: &str) -> (A, ArgMatches) {
    let parsed =
        A::command().try_get_matches().and_then(|matches| Ok((A::from_arg_matches(&matches)?, matches)));
    match parsed {
        Ok(parsed) => parsed,
        Err(err) if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            print_help_or_version(program, &err)
        }
        Err(err) => {
            log::say(&format!("{program}: {} (see --help)\n", one_line(&err.to_string())));
            process::exit(EXIT_USAGE.into());
        }
    }
}

/// Prints what `--help` or `--version` asked for and exits 0; if standard
/// output is closed or the write fails (`>/dev/full`), says so in one line
/// and exits 1.
fn print_help_or_version(program: &str, asked: &clap::Error) -> ! {
    let what = if asked.kind() == ErrorKind::DisplayHelp { "the help" } else { "the version" };
    if closed_at_start(io::stdout()) {
        log::say(&format!("{program}: cannot write {what}: standard output is closed\n"));
        process::exit(EXIT_FAILURE.into());
    }
    // process::exit flushes nothing: flush here, and look at the result.
    if let Err(err) = asked.print().and_then(|()| io::stdout().flush()) {
        log::say(&format!("{program}: cannot write {what} to standard output: {}\n", reason(&err)));
        process::exit(EXIT_FAILURE.into());
    }
    process::exit(0);
}

/// Reports a usage error that clap cannot see (two options that do not go
/// together) as one line, and exits 2.
pub fn usage_error(program: &str, message: &str) -> ! {
    log::say(&format!("{program}: {message} (see --help)\n"));
    process::exit(EXIT_USAGE.into());
}

/// Squeezes clap's error report onto one line: the error and its hints,
/// without the usage block that follows them.
fn one_line(report: &str) -> String {
    let parts: Vec<&str> = report
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(|line| line.trim())
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .collect();
    match parts.is_empty() {
        true => "invalid arguments".to_string(),
        false => parts.join("; "),
    }
}

/// A value parser for a whole number from `min` to `max`, whose error says
/// just that (for "-1", "soon" and "99999999999999999999" alike).
pub fn whole_number(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<i128>() {
        Ok(n) if (i128::from(min)..=i128::from(max)).contains(&n) => Ok(n as u64),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

/// A value parser for a host name or address: anything but empty.
pub fn host(text: &str) -> Result<String, String> {
    match text.is_empty() {
        true => Err("a host name cannot be empty".to_string()),
        false => Ok(text.to_string()),
    }
}

/// Turns the outcome of a program into its exit status, printing the error
/// (with its context, on one line) if there was one.
pub fn exit_code(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::say(&format!("{program}: {}\n", without_error_numbers(&format!("{err:#}"))));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Removes the " (os error N)" that Rust's I/O errors end with: the
/// number means nothing to whoever reads the line (the words before it
/// say the same). Errors are worded with [`reason`] where
/// they are made; this catches one that was not.
fn without_error_numbers(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..at]); // the mark, the number and ")" go
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + MARK.len()]); // not an error number: kept
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Whether one of the standard descriptors (0, 1, 2) was closed when the
/// program started (`TCPecho ... >&-`).
///
/// A closed one cannot be seen as closed from `main`: before `main`,
/// Rust's runtime opens /dev/null, for reading and writing, on any of the
/// three that is closed, so that the next file opened cannot take its
/// number (a socket on descriptor 1 would receive the program's output).
/// A shell opens /dev/null for reading only (`<`) or for writing only
/// (`>`), so a /dev/null open both ways on 0, 1 or 2 stands for a
/// descriptor that was closed. (So does the one that daemon(3) leaves,
/// and `<>/dev/null`: there too, the input is empty and the output is
/// thrown away.)
pub fn closed_at_start(fd: impl AsFd) -> bool {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use nix::sys::stat::{fstat, stat};

    let flags = match fcntl(&fd, FcntlArg::F_GETFL) {
        Ok(flags) => OFlag::from_bits_truncate(flags),
        Err(_) => return true, // closed indeed (a runtime that leaves it so)
    };
    if flags & OFlag::O_ACCMODE != OFlag::O_RDWR {
        return false;
    }
    match (fstat(&fd), stat("/dev/null")) {
        (Ok(ours), Ok(null)) => ours.st_mode & libc::S_IFMT == libc::S_IFCHR && ours.st_rdev == null.st_rdev,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_reports_become_one_line() {
        let report = "error: invalid value 'x' for '--sigpipe <MODE>'\n  [possible values: default, ignore, count]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(report),
            "invalid value 'x' for '--sigpipe <MODE>'; [possible values: default, ignore, count]"
        );
        let report = "error: unexpected argument '9000' found\n\nUsage: TCPechod [OPTIONS] [PORT]\n\nFor more information, try '--help'.\n";
        assert_eq!(one_line(report), "unexpected argument '9000' found");
    }

    #[test]
    fn error_numbers_are_removed() {
        let text = "cannot open /x: No such file or directory (os error 2)";
        assert_eq!(without_error_numbers(text), "cannot open /x: No such file or directory");
        let text = "a (os error 1): b (os error 22); c (os error x) (os error ";
        assert_eq!(without_error_numbers(text), "a: b; c (os error x) (os error ");
    }

    #[test]
    fn a_child_that_panics_exits_with_the_programs_status_for_a_bug() {
        assert_eq!(i32::from(ExitStatus::Internal), i32::from(EXIT_INTERNAL));
    }

    #[test]
    fn whole_numbers_are_checked_against_their_range() {
        let grace = whole_number(0, 3600);
        assert_eq!(grace("0"), Ok(0));
        assert_eq!(grace("3600"), Ok(3600));
        for bad in ["-1", "3601", "soon", "", "1.5", "99999999999999999999999999999999999999999"] {
            assert_eq!(grace(bad), Err("expected a whole number from 0 to 3600".to_string()), "{bad}");
        }
    }
}
