//! TCPechod: a concurrent echo server, yours to finish. One file, the
//! shape of Comer's TCPechod.c: the master socket, an accept loop that
//! forks a child per client, the echo, and the signal handlers.
//!
//! ```text
//! make              ./TCPechod (with your reaper) and ./TCPechod-noreaper
//! ./TCPechod 8123   the server on port 8123
//! make check        checks every exercise (make check5 checks one)
//! ```
//!
//! Three exercises are yours, each marked `EXERCISE` where you write:
//! - 5: the reaper, the SIGCHLD handler, and the line that installs it;
//! - 6: a SIGPIPE handler that counts the SIGPIPEs of a child;
//! - 7: a SIGTERM handler, and the end of the accept loop: stop accepting,
//!   close msock (saying so), exit 0.

// The handlers below are unused until you install them: no warning for that.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{fork, getpid, ForkResult};

/// SIGPIPEs counted by this process (exercise 6).
static SIGPIPE_COUNT: AtomicU64 = AtomicU64::new(0);
/// Set when SIGTERM asked the server to stop (exercise 7).
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether this process is a child (for the log).
static IS_CHILD: AtomicBool = AtomicBool::new(false);

fn main() {
    let port = port_from_arguments();
    // The master socket, msock: socket, bind, listen (std sets SO_REUSEADDR).
    let msock =
        TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|err| fail(&format!("bind port {port}"), err));
    // Rust programs start with SIGPIPE ignored; C programs, with SIGPIPE's
    // default action, which kills. Do as C.
    set_handler(Signal::SIGPIPE, SigHandler::SigDfl, SaFlags::empty());
    #[cfg(feature = "reaper")]
    install_reaper();
    install_sigpipe_handler();
    install_sigterm_handler();
    log(&format!("listening on {}", msock.local_addr().map_or("?".into(), |a| a.to_string())));

    loop {
        // EXERCISE 7: leave the loop once SIGTERM came.
        // Wait for a client in poll(2): any signal handler that runs cuts
        // the wait short (EINTR), and the loop looks again.
        match poll(&mut [PollFd::new(msock.as_fd(), PollFlags::POLLIN)], PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(errno) => fail("poll", std::io::Error::from(errno)),
        }
        let (asock, client) = match msock.accept() {
            Ok(connection) => connection,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => fail("accept", err),
        };
        // SAFETY: this process has one thread, so the child is a
        // consistent copy of it and may run ordinary code after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                IS_CHILD.store(true, Ordering::Relaxed);
                log(&format!("closed msock (fd {})", msock.as_raw_fd()));
                drop(msock);
                let echoed = echo(&asock);
                let count = SIGPIPE_COUNT.load(Ordering::Relaxed);
                log(&format!("finished: {echoed} bytes echoed; sigpipe count={count}"));
                drop(asock);
                // SAFETY: _exit ends the child at once, without the exit
                // handlers and buffers inherited from the parent.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => {
                log(&format!(
                    "accepted {client}, forked child {child}; closed asock (fd {})",
                    asock.as_raw_fd()
                ));
                drop(asock);
            }
            Err(errno) => log(&format!("fork: {errno}")),
        }
    }
    // EXERCISE 7: the server stops: close msock (and log it), exit 0.
}

/// The echo (Comer's `TCPechod`): write back what is read, until the
/// client closes. Returns the bytes echoed.
fn echo(mut sock: &TcpStream) -> u64 {
    let mut buf = [0u8; 4096];
    let mut echoed = 0;
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) => return echoed,
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return echoed,
        };
        if sock.write_all(&buf[..n]).is_err() {
            return echoed; // EPIPE: the client is gone
        }
        echoed += n as u64;
    }
}

/// EXERCISE 5: the reaper, SIGCHLD's handler. Collect every child that has
/// ended, without ever blocking, in a loop: signals are not queued, so one
/// SIGCHLD may stand for several children. Leave errno as you found it.
///
/// Read: `man 2 waitpid` (WNOHANG), `man 7 signal-safety`. In Rust:
/// `nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG))` returns
/// `Ok(WaitStatus::StillAlive)` when no child has ended yet, and
/// `Err(Errno::ECHILD)` when there is no child at all; `Errno::last_raw()`
/// and `Errno::set_raw()` save and restore errno.
#[cfg(feature = "reaper")]
extern "C" fn reaper(_sig: libc::c_int) {
    // EXERCISE 5: write the loop here.
}

/// EXERCISE 5: install `reaper` as the handler of SIGCHLD, with
/// `set_handler` below (SA_RESTART: a call it interrupts starts again;
/// SA_NOCLDSTOP: a child stopped, not ended, sends no SIGCHLD).
#[cfg(feature = "reaper")]
fn install_reaper() {
    // EXERCISE 5: one line.
}

/// EXERCISE 6: a SIGPIPE handler that counts: add one to `SIGPIPE_COUNT`.
/// With it, a write to a broken connection no longer kills the child: the
/// write fails with EPIPE, and the echo ends. Read: `man 7 pipe`, `man 2
/// write` (EPIPE).
extern "C" fn count_sigpipe(_sig: libc::c_int) {
    // EXERCISE 6: one line.
}

/// EXERCISE 6: install `count_sigpipe` as the handler of SIGPIPE (it
/// replaces the default action set in `main`).
fn install_sigpipe_handler() {
    // EXERCISE 6: one line.
}

/// EXERCISE 7: the SIGTERM handler: only note that the server must stop
/// (`STOP`); the loop does the rest.
extern "C" fn on_sigterm(_sig: libc::c_int) {
    // EXERCISE 7: one line.
}

/// EXERCISE 7: install `on_sigterm` as the handler of SIGTERM. The poll
/// that the handler interrupts fails with EINTR, and the loop gets to look
/// at `STOP`. (For the curious: a SIGTERM that comes after the loop looked
/// and before poll starts to wait is not seen until the next client. The
/// lab's server closes that gap: see its `src/server/acceptor.rs`.)
fn install_sigterm_handler() {
    // EXERCISE 7: one line.
}

/// Installs `handler` for `sig` with sigaction(2).
fn set_handler(sig: Signal, handler: SigHandler, flags: SaFlags) {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: every handler of this file only touches atomics and calls
    // async-signal-safe functions (waitpid), so it may interrupt anything.
    if let Err(errno) = unsafe { sigaction(sig, &action) } {
        fail(&format!("sigaction {sig}"), std::io::Error::from(errno));
    }
}

/// The port from the command line: `TCPechod PORT`.
fn port_from_arguments() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|port| port.parse()) {
        Some(Ok(port)) if args.len() == 2 => port,
        _ => {
            let _ = writeln!(std::io::stderr(), "usage: TCPechod PORT (a number from 0 to 65535)");
            exit(2);
        }
    }
}

/// One line on stderr, in one write: `[parent PID] ...` or `[child PID] ...`.
fn log(text: &str) {
    let who = if IS_CHILD.load(Ordering::Relaxed) { "child" } else { "parent" };
    let line = format!("[{who} {}] {text}\n", getpid());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Says what failed, in one line, and exits 1.
fn fail(what: &str, err: std::io::Error) -> ! {
    let _ = writeln!(std::io::stderr(), "TCPechod: {what}: {err}");
    exit(1);
}
