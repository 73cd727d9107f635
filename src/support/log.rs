//! The server's log: one line per event on stderr, `[parent PID] ...`,
//! `[child PID] ...` or, in the threaded server, `[thread TID] ...` (the
//! kernel's thread ID, as `ps -L` shows it), so that `ps` and the log can
//! be read side by side. TCPecho logs its graceful end the same way, as
//! `[client PID] ...`.
//!
//! Every line is formatted into one buffer and handed to the kernel in a
//! single `write(2)`. Parent and children share the same stderr, and a write
//! of up to `PIPE_BUF` (4096) bytes to a pipe is atomic, so lines from
//! different processes never interleave mid-line. (`eprintln!` writes the
//! pieces of a line separately, which is fine for one process but not for a
//! forking server.)
//!
//! Logging must never cost a client its echo. So:
//! - a write never blocks: if stderr is a pipe or a terminal, the server
//!   opens it again for itself, non-blocking ([`init_parent`]); a line that
//!   does not fit (nobody reads the pipe, the terminal is stopped with
//!   Ctrl-S) is dropped, and counted;
//! - a write to a pipe whose reader is gone (`TCPechod 2>&1 | head`) fails
//!   quietly, even in a child that lets SIGPIPE kill it for the lab's sake;
//! - the lines dropped are counted for all processes together, in the page
//!   of memory the children share with the parent
//!   ([`crate::support::shared_counters`]), and the shutdown says how many.
//!
//! Nothing here may run inside a signal handler: it allocates. Handlers leave
//! their news in atomics and the main loop logs it.

use std::cell::Cell;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::socket::{send, MsgFlags};

use crate::support::shared_counters::{self, Counters};
use crate::support::signals;

static IS_CHILD: AtomicBool = AtomicBool::new(false);
static IS_CLIENT: AtomicBool = AtomicBool::new(false);
static PID: AtomicI32 = AtomicI32::new(0);
static QUIET: AtomicBool = AtomicBool::new(false);

/// What stderr is, which decides how a line is written to it.
static SINK: AtomicU8 = AtomicU8::new(OTHER);
const OTHER: u8 = 0;
const PIPE: u8 = 1;
const SOCKET: u8 = 2;

thread_local! {
    /// Set in the threads of the threaded server: their kernel thread ID.
    static THREAD_ID: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Starts the log of the parent process; with `quiet`, [`event!`](crate::event!) lines are
/// dropped and only [`notice!`](crate::notice!) lines (first line, errors, summary) remain.
/// Makes stderr safe to log to from a server (see the module doc).
pub fn init_parent(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    IS_CHILD.store(false, Ordering::Relaxed);
    PID.store(std::process::id() as i32, Ordering::Relaxed);
    prepare_stderr();
    shared_counters::map();
}

/// Looks at what stderr is. A pipe (or FIFO) or a terminal is opened again
/// through /proc/self/fd/2: that makes an open file description of our
/// own, which can be non-blocking without changing the one the shell and
/// other programs share, and it takes fd 2's place. A socket is written
/// with send(MSG_DONTWAIT | MSG_NOSIGNAL) instead. A regular file is left
/// as it is: writing to it does not wait for a reader, and reopening it
/// would lose the offset shared with whoever else writes to it.
fn prepare_stderr() {
    let stderr = std::io::stderr();
    let Ok(kind) = nix::sys::stat::fstat(stderr.as_fd()).map(|st| st.st_mode & libc::S_IFMT) else {
        return;
    };
    match kind {
        libc::S_IFSOCK => SINK.store(SOCKET, Ordering::Relaxed),
        libc::S_IFIFO | libc::S_IFCHR => {
            let reopened = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open("/proc/self/fd/2");
            // /dev/null is a character device too, and needs nothing.
            let is_terminal_or_pipe = |file: &std::fs::File| {
                file.metadata().is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_char_device())
            };
            if let Ok(file) = reopened.as_ref() {
                if is_terminal_or_pipe(file)
                    && nix::unistd::dup2_stderr(file.as_fd()).is_ok()
                    && kind == libc::S_IFIFO
                {
                    SINK.store(PIPE, Ordering::Relaxed);
                }
            }
        }
        _ => {}
    }
}

/// Log lines dropped so far, by this process and all its children,
/// because stderr was full, stalled or closed.
pub fn dropped() -> u64 {
    Counters::get(&shared_counters::counters().dropped_log_lines)
}

/// Starts the log of TCPecho: its lines say `[client PID]`.
pub fn init_client() {
    IS_CLIENT.store(true, Ordering::Relaxed);
    PID.store(std::process::id() as i32, Ordering::Relaxed);
    prepare_stderr();
}

/// Called by a freshly forked child: its lines now say `[child PID]`. (The
/// child asks for its PID only when it has something to log: a child that
/// logs nothing should not pay for it.)
pub fn become_child() {
    IS_CHILD.store(true, Ordering::Relaxed);
}

/// Whether this process is a forked child of the server.
pub fn in_child() -> bool {
    IS_CHILD.load(Ordering::Relaxed)
}

/// Called by a thread that serves a client: its lines say `[thread TID]`.
pub fn become_thread() {
    THREAD_ID.with(|id| id.set(Some(nix::unistd::gettid().as_raw())));
}

/// Whether [`event!`](crate::event!) lines are being dropped (`-q`).
#[inline]
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// The longest line written: a pipe takes up to PIPE_BUF bytes in one
/// piece, never interleaved with another process's line.
const MAX_LINE: usize = 4096;

/// Writes one line; `always` lines ignore `-q`. Use the macros instead.
pub fn line(always: bool, args: fmt::Arguments) {
    if !always && quiet() {
        return;
    }
    let mut text = match THREAD_ID.with(Cell::get) {
        Some(tid) => format!("[thread {tid}] {args}\n"),
        None if IS_CHILD.load(Ordering::Relaxed) => format!("[child {}] {args}\n", std::process::id()),
        None if IS_CLIENT.load(Ordering::Relaxed) => {
            format!("[client {}] {args}\n", PID.load(Ordering::Relaxed))
        }
        None => format!("[parent {}] {args}\n", PID.load(Ordering::Relaxed)),
    };
    if text.len() > MAX_LINE {
        let mut end = MAX_LINE - 4;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...\n");
    }
    if !write_stderr(text.as_bytes()) {
        Counters::add(&shared_counters::counters().dropped_log_lines);
    }
}

/// One write of `line` to stderr, never blocking, never raising SIGPIPE;
/// false if the line was not written whole.
fn write_stderr(line: &[u8]) -> bool {
    let stderr = std::io::stderr();
    let fd: BorrowedFd<'_> = stderr.as_fd();
    let written = match SINK.load(Ordering::Relaxed) {
        SOCKET => send(fd.as_raw_fd(), line, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL),
        PIPE if !signals::sigpipe_ignored() => write_without_sigpipe(fd, line),
        _ => nix::unistd::write(fd, line),
    };
    written == Ok(line.len())
}

/// write(2) for a write that must fail quietly (a log line to a pipe
/// whose reader has gone) in a process where SIGPIPE would kill, or would
/// be counted as a client's fault: SIGPIPE is blocked during the call, and
/// the one the kernel raises with EPIPE is taken before it is unblocked.
fn write_without_sigpipe(fd: BorrowedFd<'_>, data: &[u8]) -> Result<usize, Errno> {
    let pipe = SigSet::from(Signal::SIGPIPE);
    let old = pipe.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    let result = nix::unistd::write(fd, data);
    if result == Err(Errno::EPIPE) {
        // A write to a pipe without readers always raises SIGPIPE with
        // EPIPE (pipe(7)), so one is pending here and sigwait returns at once.
        let _ = pipe.wait();
    }
    let _ = old.thread_set_mask();
    result
}

/// The human part of an I/O error, for a message: "Connection refused",
/// not "Connection refused (os error 111)".
pub fn reason(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => {
            let text = err.to_string();
            let text = text.strip_prefix("failed to lookup address information: ").unwrap_or(&text);
            text.to_string()
        }
    }
}

/// Writes a message of a program (not a server log line) to stderr. If it
/// cannot be written, so be it: the exit status says what happened, and
/// must not change because stderr was full or closed.
pub fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Logs an ordinary event (accepted, forked, closed, reaped...); silent with `-q`.
#[macro_export]
macro_rules! event {
    ($($arg:tt)*) => {
        // Checked here, not in `line`: with -q a child must not even run the
        // logging code (every page of code it runs is mapped anew after fork).
        if !$crate::support::log::quiet() {
            $crate::support::log::line(false, format_args!($($arg)*))
        }
    };
}

/// Logs a line that `-q` keeps: the first line, errors and the summary.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => { $crate::support::log::line(true, format_args!($($arg)*)) };
}
