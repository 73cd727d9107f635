//! Signal handlers of the server (except SIGCHLD, see [`crate::reaper`]):
//! SIGTERM/SIGINT/SIGHUP for the graceful shutdown, SIGUSR1 for a status
//! line, the three SIGPIPE modes, and the wake pipe that lets a handler
//! interrupt the parent's wait.
//!
//! A handler may run between any two instructions of the main program, even
//! in the middle of `malloc` or while stderr is locked. So every handler here
//! does only async-signal-safe work (signal-safety(7)): it stores into
//! atomics and calls `write(2)` or `setsockopt(2)`. The handlers that make
//! such calls save and restore `errno`, which the calls may change under
//! the feet of the code they interrupted. Everything else (logging,
//! bookkeeping) is left to the main loop.
//!
//! Why the wake pipe (the "self-pipe trick")? A plain `accept` loop that
//! checks a "stop" flag has a race: if SIGTERM arrives after the check but
//! before `accept` blocks, the server sleeps in `accept` until the next
//! client. Here the parent sleeps in `poll(2)` on msock *and* on the read end
//! of a pipe; each handler writes one byte into the pipe, and a byte written
//! before `poll` started still makes it return.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::ppoll;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::time::TimeSpec;
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
/// When the request to stop came, in nanoseconds of CLOCK_MONOTONIC (the
/// clock of `Instant`), as the handler read it (0: no request yet).
static STOP_AT_NS: AtomicU64 = AtomicU64::new(0);

/// The signals that ask the server to stop gracefully.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// The receive timeout that a stop puts on the socket being served: any
/// nonzero value makes a blocked read give up (see `on_terminate`).
const STOP_READ_TIMEOUT: libc::timeval = libc::timeval { tv_sec: 0, tv_usec: 1000 };

/// Installs `handler` for `sig` with sigaction(2) and returns what was
/// there before. All handlers of this crate go through here.
pub(crate) fn install(sig: Signal, handler: SigHandler, flags: SaFlags) -> Result<SigHandler> {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: sigaction is unsafe because the handler could do anything while
    // it interrupts the program. Every handler installed through this
    // function only touches atomics and makes async-signal-safe calls
    // (waitpid, write, setsockopt), and those that make calls restore errno;
    // SIG_DFL and SIG_IGN run no code of ours at all.
    let old = unsafe { signal::sigaction(sig, &action) }.with_context(|| format!("sigaction {sig}"))?;
    Ok(old.handler())
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

/// The SIGTERM/SIGINT/SIGHUP handler: note the request, then do what
/// stopping means for this process. A process that accepts (the parent)
/// is woken from its wait. A process that serves a client (a child, a
/// worker, the iterative server) stops reading: the handler gives its
/// socket a receive timeout of a millisecond, so that a `read` blocked on
/// it, restarted after the handler (SA_RESTART), gives up with EAGAIN, and
/// so does every later `read` that finds nothing to take. The echo loop
/// then ends with everything read so far echoed. Where asked, a send
/// timeout keeps a client that does not read from holding the process past
/// the grace period.
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
/// signal of the process (for the chained handler of `crate::demos`).
pub(crate) fn terminate(sig: libc::c_int) -> bool {
    if TERMINATE_SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
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

/// Puts the stop's receive timeout, and the send timeout if asked, on `fd`.
fn stop_reading(fd: i32) {
    if fd < 0 {
        return;
    }
    set_timeout(fd, libc::SO_RCVTIMEO, STOP_READ_TIMEOUT);
    let millis = STOP_SEND_TIMEOUT_MS.load(Ordering::SeqCst);
    if millis >= 0 {
        let timeout = libc::timeval { tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000 };
        set_timeout(fd, libc::SO_SNDTIMEO, timeout);
    }
}

/// setsockopt(2) of a timeout, callable from a handler.
fn set_timeout(fd: i32, option: libc::c_int, timeout: libc::timeval) {
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
/// before (see `--library-handler`, in [`crate::demos`]).
pub fn install_terminate_handlers() -> Result<SigHandler> {
    let handler = SigHandler::Handler(on_terminate);
    let previous = install(Signal::SIGTERM, handler, SaFlags::SA_RESTART)?;
    install(Signal::SIGINT, handler, SaFlags::SA_RESTART)?;
    if matches!(install(Signal::SIGHUP, handler, SaFlags::SA_RESTART)?, SigHandler::SigIgn) {
        install(Signal::SIGHUP, SigHandler::SigIgn, SaFlags::empty())?;
    }
    Ok(previous)
}

/// The SIGTERM/SIGINT handler of TCPecho. The first signal asks for a
/// graceful end: it is noted, and the main thread, asleep in poll(2) on
/// the wake pipe, is woken. A second one ends the client at once, as the
/// signal's default action would, after one line on stderr (write(2) and
/// _exit(2) are async-signal-safe; nothing else is called).
extern "C" fn on_client_stop(sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    if TERMINATE_SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
        let line = b"TCPecho: a second stop signal: ending at once\n";
        // SAFETY: write and _exit are async-signal-safe; `line` is a valid
        // buffer of the length given.
        unsafe {
            libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len());
            libc::_exit(128 + sig);
        }
    }
    wake_main_loop();
    Errno::set_raw(saved_errno);
}

/// Installs TCPecho's SIGTERM and SIGINT handler (see `on_client_stop`).
pub fn install_client_handlers() -> Result<()> {
    let handler = SigHandler::Handler(on_client_stop);
    install(Signal::SIGTERM, handler, SaFlags::SA_RESTART)?;
    install(Signal::SIGINT, handler, SaFlags::SA_RESTART).map(drop)
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
    Ok(())
}

/// Whether a write that meets a closed pipe or connection gets EPIPE
/// quietly here, rather than a SIGPIPE that kills or is counted.
pub fn sigpipe_ignored() -> bool {
    SIGPIPE_IGNORED.load(Ordering::SeqCst)
}

/// write(2) for a write that must fail quietly (a log line to a pipe
/// whose reader has gone) in a process where SIGPIPE would kill, or would
/// be counted as a client's fault: SIGPIPE is blocked during the call, and
/// the one the kernel raises with EPIPE is taken before it is unblocked.
pub fn write_without_sigpipe(fd: BorrowedFd<'_>, data: &[u8]) -> Result<usize, Errno> {
    let pipe = SigSet::from(Signal::SIGPIPE);
    let old = pipe.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    let result = unistd::write(fd, data);
    if result == Err(Errno::EPIPE) {
        // A write to a pipe without readers always raises SIGPIPE with
        // EPIPE (pipe(7)), so one is pending here and sigwait returns at once.
        let _ = pipe.wait();
    }
    let _ = old.thread_set_mask();
    result
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

/// Sleeps for `delay` (the `--delay` of a slow service). A stop cuts the
/// sleep short when its `grace` period ends; then it returns false: the
/// echo it was delaying is not to be sent.
///
/// A stop signal must not slip in between the check of the deadline and
/// the start of the sleep, or the sleep would last the whole delay: the
/// stop signals are blocked meanwhile, and ppoll(2) unblocks them only
/// while it sleeps, atomically (what pselect(2) was made for).
pub fn pause(delay: Duration, grace: Duration) -> bool {
    let end = Instant::now() + delay;
    let stops = SigSet::from_iter(STOP_SIGNALS);
    let Ok(old) = stops.thread_swap_mask(SigmaskHow::SIG_BLOCK) else {
        thread::sleep(delay);
        return true;
    };
    let finished = loop {
        let deadline = stop_deadline(grace);
        let until = deadline.map_or(end, |deadline| deadline.min(end));
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break deadline.is_none_or(|deadline| end <= deadline);
        }
        // EINTR: a handler ran; the loop looks again.
        let _ = ppoll(&mut [], Some(TimeSpec::from_duration(left)), Some(old));
    };
    let _ = old.thread_set_mask();
    finished
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

/// Stops a thread's reading of the socket it serves, from another thread
/// (the acceptor of the threaded server): the same timeouts as
/// `on_terminate`, then SIGTERM to that thread, so that a `read`, a
/// `write` or a pause it is blocked in starts again and sees them.
/// Setting the timeouts first leaves no gap for the thread to slip into a
/// blocking call unseen.
pub fn stop_thread(sock: &impl AsRawFd, thread: libc::pthread_t, send_timeout: Duration) {
    let fd = sock.as_raw_fd();
    set_timeout(fd, libc::SO_RCVTIMEO, STOP_READ_TIMEOUT);
    let millis = send_timeout.as_millis().clamp(1, i64::MAX as u128) as i64;
    set_timeout(
        fd,
        libc::SO_SNDTIMEO,
        libc::timeval { tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000 },
    );
    let _ = nix::sys::pthread::pthread_kill(thread, Signal::SIGTERM);
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
