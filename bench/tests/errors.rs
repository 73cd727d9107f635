//! What echobench says when it cannot measure: a bad command line, no
//! server at the address, a server that goes away, no such process, an
//! output it cannot write. Always one line on stderr, never a raw
//! "(os error N)", and a documented exit status; and a refused connection
//! ends a run at once instead of being retried for its whole duration.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use testbed::*;

const BENCH: &str = env!("CARGO_BIN_EXE_echobench");

/// A port of 127.0.0.1 where nothing listens, kept so while the socket
/// lives: bound and never listening, so that connecting to it is refused
/// and no other program can take the port meanwhile.
fn refused_port() -> (OwnedFd, String) {
    let sock = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    bind(sock.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    let port = getsockname::<SockaddrIn>(sock.as_raw_fd()).unwrap().port();
    (sock, port.to_string())
}

/// One error line, as `assert_one_line_error` wants it, and no errno
/// number in it.
fn assert_plain_error(out: &Output, code: i32, words: &[&str]) {
    assert_one_line_error(out, code, "echobench", words);
    assert!(!stderr_text(out).contains("os error"), "{}", stderr_text(out));
}

#[test]
fn echobench_rejects_bad_arguments() {
    let out = run_bounded(Command::new(BENCH).args(["rate", "127.0.0.1", "99999"]), b"");
    assert_plain_error(&out, 2, &["out of range"]);
    let out = run_bounded(Command::new(BENCH).args(["rate", "-c", "0", "127.0.0.1", "8000"]), b"");
    assert_plain_error(&out, 2, &["--concurrency", "from 1 to 1024"]);
    let out = run_bounded(Command::new(BENCH).args(["stream"]), b"");
    assert_plain_error(&out, 2, &["required"]);
}

/// Before, the workers connected again and again for the whole duration
/// (an hour here, which run_bounded does not wait for): the first refused
/// connection now ends the run.
#[test]
fn a_rate_run_with_no_server_stops_at_once_and_says_so() {
    let (_sock, port) = refused_port();
    let out = run_bounded(Command::new(BENCH).args(["rate", "-q", "-t", "3600", "127.0.0.1", &port]), b"");
    assert_plain_error(&out, 1, &[&format!("no server listens on 127.0.0.1:{port} (connection refused)")]);
    assert!(out.stdout.is_empty(), "no measurement line: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_rate_run_whose_server_goes_away_stops_and_says_so() {
    let mut server = Server::start(&[]);
    let port = server.port.to_string();
    let mut bench = KillOnDrop(
        Command::new(BENCH)
            .args(["rate", "-q", "-c", "2", "-t", "3600", "127.0.0.1", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // A connection served to its end, then nothing listens any more.
    server.wait_for_line(|line| line.contains("reaped child"));
    server.stop_with(libc::SIGKILL);
    let status = wait_until("echobench to stop", || bench.0.try_wait().unwrap());
    let (mut stdout, mut stderr) = (String::new(), String::new());
    bench.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    bench.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stdout.starts_with("rate: connections="), "what it measured: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("echobench: the server at 127.0.0.1:{port} stopped listening after "))
    );
    assert!(stderr.contains("connections (connection refused)") && !stderr.contains("os error"), "{stderr}");
}

#[test]
fn memory_names_the_process_or_the_address_that_is_missing() {
    let (_sock, port) = refused_port();
    // PIDs are below pid_max: pid_max itself is never a process.
    let pid_max = fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().to_string();
    let out = run_bounded(Command::new(BENCH).args(["memory", "--pid", &pid_max, "127.0.0.1", &port]), b"");
    assert_plain_error(&out, 1, &[&format!("no process {pid_max}")]);
    let me = std::process::id().to_string();
    let out = run_bounded(Command::new(BENCH).args(["memory", "--pid", &me, "127.0.0.1", &port]), b"");
    assert_plain_error(&out, 1, &[&format!("no server listens on 127.0.0.1:{port} (connection refused)")]);
}

/// `echobench ARGS >/dev/full`: what it prints, and how it ends.
fn with_full_stdout(args: &[&str]) -> Option<Output> {
    let full = File::options().write(true).open("/dev/full").ok()?;
    let mut child = KillOnDrop(
        Command::new(BENCH)
            .args(args)
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait_until("echobench to exit", || child.0.try_wait().unwrap());
    let mut stderr = Vec::new();
    child.0.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    Some(Output { status, stdout: Vec::new(), stderr })
}

#[test]
fn help_and_version_that_cannot_be_written_fail() {
    for (args, what) in
        [(&["--help"][..], "help"), (&["rate", "--help"], "help"), (&["--version"], "version")]
    {
        let Some(out) = with_full_stdout(args) else {
            eprintln!("skipped: no /dev/full here");
            return;
        };
        assert_plain_error(&out, 1, &[&format!("cannot write the {what}: No space left on device")]);
    }
    // Written, they succeed as before.
    let out = run_bounded(Command::new(BENCH).arg("--help"), b"");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage: echobench"));
}
