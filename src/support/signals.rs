//! Signal handlers of the server (except SIGCHLD, see
//! [`crate::server::reaper`]): SIGTERM/SIGINT/SIGHUP for the graceful
//! shutdown, SIGUSR1 for a status line, and the three SIGPIPE modes.
//!
//! A handler may run between any two instructions of the main program, even
//! in the middle of `malloc` or while stderr is locked. So every handler here
//! does only async-signal-safe work (signal-safety(7)): it stores into
//! atomics and calls `write(2)` (through [`crate::support::wake`]),
//! `setsockopt(2)`, `dup2(2)` or `clock_gettime(2)`. The handlers that make
//! such calls save and restore `errno`, which the calls may change under
//! the feet of the code they interrupted. Everything else (logging,
//! bookkeeping) is left to the main loop, which the handler wakes.

use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::support::wake::wake_main_loop;

/// What a process that writes to clients does about SIGPIPE (`--sigpipe`).
///
/// The kernel sends SIGPIPE to a process that writes to a connection that
/// can no longer carry data (the peer closed it and answered with RST). In C
/// the default action kills the process. Rust programs start with SIGPIPE
/// *ignored*: the runtime sets it to SIG_IGN before `main`, so that a write
/// returns the error EPIPE instead of killing the program silently. A child
/// therefore has to choose explicitly ([`apply_sigpipe_mode`]).
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
/// The socket this process is serving, whose reading SIGTERM stops (-1: none).
static STOP_READING_FD: AtomicI32 = AtomicI32::new(-1);
/// A prefork worker's msock, which SIGTERM replaces with [`ACCEPT_PLACEHOLDER_FD`] (-1: none).
static ACCEPT_FD: AtomicI32 = AtomicI32::new(-1);
/// A socket that listens on nothing: accept(2) on it fails with EINVAL.
static ACCEPT_PLACEHOLDER_FD: AtomicI32 = AtomicI32::new(-1);
/// Send timeout, in milliseconds, that SIGTERM puts on that socket (-1: none).
static STOP_SEND_TIMEOUT_MS: AtomicI64 = AtomicI64::new(-1);
/// Set by SIGUSR1 in the parent until the main loop prints a status line.
static STATUS_REQUESTED: AtomicBool = AtomicBool::new(false);
/// SIGPIPEs counted by the `count` handler in this process.
static SIGPIPE_COUNT: AtomicU64 = AtomicU64::new(0);
/// Whether SIGPIPE is ignored in this process (Rust programs start so).
static SIGPIPE_IGNORED: AtomicBool = AtomicBool::new(true);
/// Whether SIGPIPE is counted by the `count` handler in this process.
static SIGPIPE_COUNTED: AtomicBool = AtomicBool::new(false);
/// When the request to stop came, in nanoseconds of CLOCK_MONOTONIC (the
/// clock of `Instant`), as the handler read it (0: no request yet).
static STOP_AT_NS: AtomicU64 = AtomicU64::new(0);

/// The signals that ask the server to stop gracefully.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// The receive timeout that a stop puts on the socket being served: any
/// nonzero value makes a blocked read give up (see `on_terminate`).
const STOP_READ_TIMEOUT_MS: i64 = 1;

/// Installs `handler` for `sig` with sigaction(2) and returns what was
/// there before. All handlers of this crate go through here.
pub(crate) fn install(sig: Signal, handler: SigHandler, flags: SaFlags) -> Result<SigHandler> {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: sigaction is unsafe because the handler could do anything while
    // it interrupts the program. Every handler installed through this
    // function only touches atomics and makes async-signal-safe calls
    // (waitpid, write, setsockopt, dup2, clock_gettime, _exit), and those
    // that make calls restore errno; SIG_DFL and SIG_IGN run no code of ours
    // at all. One handler also calls another: the chained handler of
    // `--library-handler chain` calls the one it replaced, the stand-in
    // library's, which is ours too and only calls write(2), errno restored.
    let old = unsafe { signal::sigaction(sig, &action) }.with_context(|| format!("sigaction {sig}"))?;
    Ok(old.handler())
}

/// Notes that `sig` asked this process to stop; true if it is the first
/// stop signal (callable from a handler: one atomic swap).
pub(crate) fn note_stop(sig: libc::c_int) -> bool {
    TERMINATE_SIGNAL.swap(sig, Ordering::SeqCst) == 0
}

/// The SIGTERM/SIGINT/SIGHUP handler: note the request, then do what
/// stopping means for this process. A process that accepts (the parent)
/// is woken from its wait. A process that serves a client (a child, a
/// worker, the iterative server) stops reading: the handler gives its
/// socket a receive timeout of a millisecond, so that a `read` blocked on
/// it, restarted after the handler (SA_RESTART), gives up with EAGAIN, and
/// so does every later `read` that finds nothing to take. The echo loop
/// then ends with everything read so far echoed. A send timeout of the
/// grace period keeps a client that does not read from holding the
/// process past it.
///
/// Why not `shutdown(SHUT_RD)`, which also wakes a blocked `read`? Linux
/// then answers with RST any data that arrives after our FIN (RFC 1122),
/// and an RST throws away the echo still waiting in our send queue: the
/// graceful end (see `echo::linger`) needs the reading side open.
///
/// Only the first stop signal does this: a second one (Ctrl-C reaches the
/// children from the terminal, and then the parent sends SIGTERM) must not
/// cut short the wait for the client's FIN that the first one started.
pub(crate) extern "C" fn on_terminate(sig: libc::c_int) {
    terminate(sig);
}

/// The work of [`on_terminate`]; returns whether this was the first stop
/// signal of the process (for the chained handler of
/// [`crate::support::sigterm_experiments`]).
pub(crate) fn terminate(sig: libc::c_int) -> bool {
    if !note_stop(sig) {
        return false;
    }
    let saved_errno = Errno::last_raw();
    STOP_AT_NS.store(monotonic_ns(), Ordering::SeqCst);
    wake_main_loop();
    stop_reading(STOP_READING_FD.load(Ordering::SeqCst));
    stop_accepting();
    Errno::set_raw(saved_errno);
    true
}

/// In a prefork worker, makes accept(2) on msock fail at once: the
/// descriptor of msock is made to point, in this process only, at a socket
/// that listens on nothing (dup2(2) is async-signal-safe). An accept that
/// starts after this fails with EINVAL; one already blocked is interrupted
/// by the signal, restarted by the kernel (SA_RESTART) on the same
/// descriptor number, and fails the same way. Other workers, which share
/// msock, are not affected, and the parent replaces this one.
fn stop_accepting() {
    let (msock, placeholder) =
        (ACCEPT_FD.load(Ordering::SeqCst), ACCEPT_PLACEHOLDER_FD.load(Ordering::SeqCst));
    if msock >= 0 && placeholder >= 0 {
        // SAFETY: dup2 is async-signal-safe; both are descriptors of this
        // process, registered by `stop_accepting_on_terminate`, which keeps
        // the placeholder open for the life of the process.
        unsafe { libc::dup2(placeholder, msock) };
    }
}

/// Makes the first stop signal end a prefork worker's accept on `msock`
/// (see `stop_accepting`): a worker asleep in accept(2) could otherwise
/// wake only for the next client, and take it just to close it.
pub fn stop_accepting_on_terminate(msock: BorrowedFd<'_>) -> Result<()> {
    let placeholder = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket (the stand-in for msock)")?;
    // Kept open until the process ends: the handler may use it any time.
    ACCEPT_PLACEHOLDER_FD.store(placeholder.into_raw_fd(), Ordering::SeqCst);
    ACCEPT_FD.store(msock.as_raw_fd(), Ordering::SeqCst);
    if terminate_requested().is_some() {
        stop_accepting();
    }
    Ok(())
}

/// Puts the stop's receive timeout, and its send timeout if one was given
/// to [`serving`], on `fd`.
fn stop_reading(fd: i32) {
    if fd >= 0 {
        put_stop_timeouts(fd, STOP_SEND_TIMEOUT_MS.load(Ordering::SeqCst));
    }
}

/// Puts on socket `fd` the timeouts of a stop: the receive timeout that
/// makes a blocked read give up, and, unless `send_ms` is negative, a send
/// timeout of `send_ms` milliseconds. Callable from a handler. (The
/// threaded server calls it from its acceptor, for each thread's socket.)
pub(crate) fn put_stop_timeouts(fd: i32, send_ms: i64) {
    set_timeout(fd, libc::SO_RCVTIMEO, STOP_READ_TIMEOUT_MS);
    if send_ms >= 0 {
        set_timeout(fd, libc::SO_SNDTIMEO, send_ms);
    }
}

/// setsockopt(2) of a timeout of `millis` milliseconds, callable from a handler.
fn set_timeout(fd: i32, option: libc::c_int, millis: i64) {
    let timeout = libc::timeval { tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000 };
    // SAFETY: setsockopt is async-signal-safe; `timeout` is a valid timeval
    // that outlives the call, and its size is passed with it. On a
    // descriptor that is not a socket the call fails and changes nothing.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::from_ref(&timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// A timeout in whole milliseconds, at least one (zero would mean "no
/// timeout" to setsockopt).
pub(crate) fn timeout_ms(timeout: Duration) -> i64 {
    timeout.as_millis().clamp(1, i64::MAX as u128) as i64
}

/// SIGUSR1 handler of the parent: ask the main loop for a status line.
extern "C" fn on_status(_sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    STATUS_REQUESTED.store(true, Ordering::SeqCst);
    wake_main_loop();
    Errno::set_raw(saved_errno);
}

/// SIGPIPE handler of `--sigpipe count`: count, and let the write fail with
/// EPIPE. (It calls nothing, so errno cannot change.)
extern "C" fn count_sigpipe(_sig: libc::c_int) {
    SIGPIPE_COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Installs the SIGTERM, SIGINT and SIGHUP handler.
///
/// SIGHUP comes when the terminal the server runs in is closed: a graceful
/// stop is what a student expects then, not a silent death. But a server
/// started with `nohup`, which sets SIGHUP to be ignored, keeps ignoring it.
///
/// Only one handler per signal exists in a process: installing ours replaces
/// whatever was there before (a library's included), which is why a program
/// must own its signal handling in one place. Returns what SIGTERM had
/// before (see `--library-handler`, in
/// [`crate::support::sigterm_experiments`]).
pub fn install_terminate_handlers() -> Result<SigHandler> {
    let handler = SigHandler::Handler(on_terminate);
    let previous = install(Signal::SIGTERM, handler, SaFlags::SA_RESTART)?;
    install(Signal::SIGINT, handler, SaFlags::SA_RESTART)?;
    if matches!(install(Signal::SIGHUP, handler, SaFlags::SA_RESTART)?, SigHandler::SigIgn) {
        install(Signal::SIGHUP, SigHandler::SigIgn, SaFlags::empty())?;
    }
    Ok(previous)
}

/// Installs the parent's SIGUSR1 handler: `kill -USR1 PID` prints a status line.
pub fn install_status_handler() -> Result<()> {
    install(Signal::SIGUSR1, SigHandler::Handler(on_status), SaFlags::SA_RESTART).map(drop)
}

/// Applies the SIGPIPE mode to this process.
pub fn apply_sigpipe_mode(mode: SigpipeMode) -> Result<()> {
    let action = match mode {
        SigpipeMode::Default => SigHandler::SigDfl,
        SigpipeMode::Ignore => SigHandler::SigIgn,
        SigpipeMode::Count => SigHandler::Handler(count_sigpipe),
    };
    install(Signal::SIGPIPE, action, SaFlags::SA_RESTART)?;
    SIGPIPE_IGNORED.store(mode == SigpipeMode::Ignore, Ordering::SeqCst);
    SIGPIPE_COUNTED.store(mode == SigpipeMode::Count, Ordering::SeqCst);
    Ok(())
}

/// Whether a write that meets a closed pipe or connection gets EPIPE
/// quietly here, rather than a SIGPIPE that kills or is counted.
pub fn sigpipe_ignored() -> bool {
    SIGPIPE_IGNORED.load(Ordering::SeqCst)
}

/// The SIGPIPEs counted so far in this process, if it counts them
/// (`--sigpipe count`).
pub fn sigpipe_count() -> Option<u64> {
    SIGPIPE_COUNTED.load(Ordering::SeqCst).then(|| SIGPIPE_COUNT.load(Ordering::SeqCst))
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

/// Asks this process to stop, as a stop signal would: for a server that
/// stops because of an error, so that its threads see the stop as they
/// would see SIGTERM. (A stop already asked for is left as it is.)
pub fn request_stop() {
    if TERMINATE_SIGNAL.compare_exchange(0, libc::SIGTERM, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        STOP_AT_NS.store(monotonic_ns(), Ordering::SeqCst);
    }
}

/// When the grace period of a stop ends: `grace` after the stop signal
/// came to this process (the time its handler noted, not when the code
/// got to look: a child busy writing a large echo may look much later).
/// None while nobody asked to stop.
pub fn stop_deadline(grace: Duration) -> Option<Instant> {
    terminate_requested()?;
    let now = Instant::now();
    let since_stop = match STOP_AT_NS.load(Ordering::SeqCst) {
        0 => Duration::ZERO, // the flag is set, the time not yet: just now
        at => Duration::from_nanos(monotonic_ns().saturating_sub(at)),
    };
    Some(now.checked_sub(since_stop).unwrap_or(now) + grace)
}

/// CLOCK_MONOTONIC in nanoseconds, read in a way a handler may use
/// (clock_gettime is async-signal-safe).
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given, which is
    // valid; it is async-signal-safe (signal-safety(7)).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(now.tv_nsec as u64)
}

/// Tells SIGTERM which socket this process serves now (a process that
/// serves its clients itself, one at a time), and the send timeout to put
/// on it at a stop: `grace`, so that a client that does not read cannot
/// hold the process past the grace period (nobody kills the iterative
/// server, and a child ends on its own before its parent's SIGKILL).
pub fn serving(asock: &impl AsRawFd, grace: Duration) {
    STOP_SEND_TIMEOUT_MS.store(timeout_ms(grace), Ordering::SeqCst);
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
