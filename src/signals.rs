//! Signal handlers of the server (except SIGCHLD, see [`crate::reaper`]):
//! SIGTERM/SIGINT for the graceful shutdown, SIGUSR1 for a status line,
//! the three SIGPIPE modes, and the wake pipe that lets a handler interrupt
//! the parent's wait.
//!
//! A handler may run between any two instructions of the main program, even
//! in the middle of `malloc` or while stderr is locked. So every handler here
//! does only async-signal-safe work (signal-safety(7)): it stores into
//! atomics and calls `write(2)`, `shutdown(2)` or `setsockopt(2)`. It also
//! saves and restores `errno`, which those calls may change under the feet
//! of the code it interrupted. Everything else (logging, bookkeeping) is
//! left to the main loop.
//!
//! Why the wake pipe (the "self-pipe trick")? A plain `accept` loop that
//! checks a "stop" flag has a race: if SIGTERM arrives after the check but
//! before `accept` blocks, the server sleeps in `accept` until the next
//! client. Here the parent sleeps in `poll(2)` on msock *and* on the read end
//! of a pipe; each handler writes one byte into the pipe, and a byte written
//! before `poll` started still makes it return.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{shutdown, Shutdown};
use nix::unistd;

/// What a process that writes to clients does about SIGPIPE (`--sigpipe`).
///
/// The kernel sends SIGPIPE to a process that writes to a connection that
/// can no longer carry data (the peer closed it and answered with RST). In C
/// the default action kills the process. Rust programs start with SIGPIPE
/// *ignored*: the runtime sets it to SIG_IGN before `main`, so that a write
/// returns the error EPIPE instead of killing the program silently. A child
/// therefore has to choose explicitly; [`child_signals`] applies the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigpipeMode {
    /// SIG_DFL, as in C: the process dies from SIGPIPE and the reaper reports it.
    Default,
    /// SIG_IGN: the write fails with EPIPE; the child logs it and exits 3.
    Ignore,
    /// A handler counts SIGPIPEs; the write fails with EPIPE and the child exits 3.
    Count,
}

/// The signal that asked this process to stop (0 while none did).
static TERMINATE_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Write end of the parent's wake pipe (-1 when there is none, as in a child).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The socket this process is serving, whose reading SIGTERM stops (-1: none).
static STOP_READING_FD: AtomicI32 = AtomicI32::new(-1);
/// Send timeout, in milliseconds, that SIGTERM puts on that socket (-1: none).
static STOP_SEND_TIMEOUT_MS: AtomicI64 = AtomicI64::new(-1);
/// Set by SIGUSR1 in the parent until the main loop prints a status line.
static STATUS_REQUESTED: AtomicBool = AtomicBool::new(false);
/// SIGPIPEs counted by the `count` handler in this process.
static SIGPIPE_COUNT: AtomicU64 = AtomicU64::new(0);

/// Installs `handler` for `sig` with sigaction(2). All handlers of this crate
/// go through here.
pub(crate) fn install(sig: Signal, handler: SigHandler, flags: SaFlags) -> Result<()> {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: sigaction is unsafe because the handler could do anything while
    // it interrupts the program. Every handler installed through this
    // function only touches atomics and makes async-signal-safe calls
    // (waitpid, write, shutdown, setsockopt), and restores errno; SIG_DFL
    // and SIG_IGN run no code of ours at all.
    unsafe { signal::sigaction(sig, &action) }.with_context(|| format!("sigaction {sig}"))?;
    Ok(())
}

/// The parent's wake pipe: signal handlers write a byte, the main loop polls
/// the read end and drains it.
pub struct WakePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl WakePipe {
    /// Creates the pipe and makes it the target of every handler's wake-up.
    /// Both ends are non-blocking: a handler must never block on a full pipe
    /// (one unread byte is wake-up enough), and draining stops at "empty".
    pub fn new() -> Result<WakePipe> {
        let (read, write) = unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).context("pipe2")?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        Ok(WakePipe { read, write })
    }

    /// The end to give to poll(2).
    pub fn read_end(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The descriptor numbers of its two ends, for the log.
    pub fn fds(&self) -> (i32, i32) {
        (self.read.as_raw_fd(), self.write.as_raw_fd())
    }

    /// Empties the pipe after poll said it is readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 256];
        // A read that does not fill the buffer has emptied the pipe.
        while let Ok(n) = unistd::read(&self.read, &mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }
}

impl Drop for WakePipe {
    /// Handlers must stop writing to the pipe before its descriptors close
    /// (and their numbers are reused by something else).
    fn drop(&mut self) {
        WAKE_FD.store(-1, Ordering::SeqCst);
    }
}

/// Makes the main loop's poll(2) return. Called from handlers, and from the
/// threads of the threaded server when they finish.
pub fn wake_main_loop() {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: `fd` is the write end of the live WakePipe: WAKE_FD is set
        // when the pipe is created and reset to -1 before it is closed.
        let pipe = unsafe { BorrowedFd::borrow_raw(fd) };
        // EAGAIN (pipe full) is fine: unread bytes will wake the loop anyway.
        let _ = unistd::write(pipe, &[0u8]);
    }
}

/// The SIGTERM/SIGINT handler: note the request, then do what stopping
/// means for this process. A process that accepts (the parent) is woken
/// from its wait. A process that serves a client (a child, a worker, the
/// iterative server) stops reading: shutdown(SHUT_RD) makes a blocked
/// `read` return 0 at once, and every later `read` too once the data
/// already received has been read, so the echo loop ends as if the client
/// had closed, with everything read so far echoed. Where asked, a send
/// timeout keeps a client that does not read from holding the process
/// past the grace period.
extern "C" fn on_terminate(sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    TERMINATE_SIGNAL.store(sig, Ordering::SeqCst);
    wake_main_loop();
    stop_reading(STOP_READING_FD.load(Ordering::SeqCst));
    Errno::set_raw(saved_errno);
}

/// Shuts the reading side of `fd` and, if asked, puts the send timeout on it.
fn stop_reading(fd: i32) {
    if fd < 0 {
        return;
    }
    let _ = shutdown(fd, Shutdown::Read);
    let millis = STOP_SEND_TIMEOUT_MS.load(Ordering::SeqCst);
    if millis >= 0 {
        let timeout = libc::timeval { tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000 };
        // SAFETY: setsockopt is async-signal-safe; `timeout` is a valid
        // timeval that outlives the call, and its size is passed with it.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                std::ptr::from_ref(&timeout).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
    }
}

/// SIGUSR1 handler of the parent: ask the main loop for a status line.
extern "C" fn on_status(_sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    STATUS_REQUESTED.store(true, Ordering::SeqCst);
    wake_main_loop();
    Errno::set_raw(saved_errno);
}

/// SIGPIPE handler of `--sigpipe count`: count, and let the write fail with EPIPE.
extern "C" fn count_sigpipe(_sig: libc::c_int) {
    SIGPIPE_COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Installs the SIGTERM and SIGINT handler.
///
/// Only one handler per signal exists in a process: installing ours replaces
/// whatever was there before (a library's included), which is why a program
/// must own its signal handling in one place.
pub fn install_terminate_handlers() -> Result<()> {
    let handler = SigHandler::Handler(on_terminate);
    install(Signal::SIGTERM, handler, SaFlags::SA_RESTART)?;
    install(Signal::SIGINT, handler, SaFlags::SA_RESTART)
}

/// Installs the parent's SIGUSR1 handler: `kill -USR1 PID` prints a status line.
pub fn install_status_handler() -> Result<()> {
    install(Signal::SIGUSR1, SigHandler::Handler(on_status), SaFlags::SA_RESTART)
}

/// Applies the SIGPIPE mode to this process.
pub fn apply_sigpipe_mode(mode: SigpipeMode) -> Result<()> {
    let action = match mode {
        SigpipeMode::Default => SigHandler::SigDfl,
        SigpipeMode::Ignore => SigHandler::SigIgn,
        SigpipeMode::Count => SigHandler::Handler(count_sigpipe),
    };
    install(Signal::SIGPIPE, action, SaFlags::SA_RESTART)
}

/// Whether SIGUSR1 asked for a status line since the last call.
pub fn status_requested() -> bool {
    // Look before clearing: a write, even of the same value, would make the
    // page private again after every fork (copy on write).
    STATUS_REQUESTED.load(Ordering::SeqCst) && STATUS_REQUESTED.swap(false, Ordering::SeqCst)
}

/// The signal that asked this process to stop, if one did.
pub fn terminate_requested() -> Option<Signal> {
    match TERMINATE_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Signal::try_from(sig).ok(),
    }
}

/// Sets the signal dispositions of a freshly forked child (a per-connection
/// child or a prefork worker).
///
/// The child inherits the parent's handlers. The SIGTERM/SIGINT handler
/// suits it as it is (see `on_terminate`); SIGCHLD and SIGUSR1 are the
/// parent's business, and SIGPIPE gets the chosen mode. The caller then
/// closes the wake pipe, which the inherited handler stops writing to.
pub fn child_signals(sigpipe: SigpipeMode) -> Result<()> {
    install(Signal::SIGCHLD, SigHandler::SigDfl, SaFlags::empty())?;
    // SIGUSR1's default action would kill a child that gets it (from
    // `kill -USR1 -PGID`, say).
    install(Signal::SIGUSR1, SigHandler::SigIgn, SaFlags::empty())?;
    apply_sigpipe_mode(sigpipe)
}

/// Tells SIGTERM which socket this process is serving now.
pub fn serving(asock: &impl AsRawFd) {
    STOP_READING_FD.store(asock.as_raw_fd(), Ordering::SeqCst);
    // A SIGTERM that came before the socket was known: honour it now.
    if terminate_requested().is_some() {
        stop_reading(asock.as_raw_fd());
    }
}

/// Forgets the socket given to [`serving`]; call before closing it.
pub fn not_serving() {
    STOP_READING_FD.store(-1, Ordering::SeqCst);
}

/// Makes SIGTERM also put a send timeout of `grace` on the socket being
/// served, for a process that has nobody to kill it when the grace period
/// is over (the iterative server).
pub fn time_out_sends_on_terminate(grace: Duration) {
    let millis = grace.as_millis().clamp(1, i64::MAX as u128) as i64;
    STOP_SEND_TIMEOUT_MS.store(millis, Ordering::SeqCst);
}

/// SIGPIPEs counted in this process by `--sigpipe count`.
pub fn sigpipe_count() -> u64 {
    SIGPIPE_COUNT.load(Ordering::SeqCst)
}
