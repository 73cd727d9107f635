//! The server's log: one line per event on stderr, `[parent PID] ...`,
//! `[child PID] ...` or, in the threaded server, `[thread TID] ...` (the
//! kernel's thread ID, as `ps -L` shows it), so that `ps` and the log can
//! be read side by side.
//!
//! Every line is formatted into one buffer and handed to the kernel in a
//! single `write(2)`. Parent and children share the same stderr, and a write
//! of up to `PIPE_BUF` (4096) bytes to a pipe is atomic, so lines from
//! different processes never interleave mid-line. (`eprintln!` writes the
//! pieces of a line separately, which is fine for one process but not for a
//! forking server.)
//!
//! Nothing here may run inside a signal handler: it allocates. Handlers leave
//! their news in atomics and the main loop logs it.

use std::cell::Cell;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static IS_CHILD: AtomicBool = AtomicBool::new(false);
static PID: AtomicI32 = AtomicI32::new(0);
static QUIET: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set in the threads of the threaded server: their kernel thread ID.
    static THREAD_ID: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Starts the log of the parent process; with `quiet`, [`event!`](crate::event!) lines are
/// dropped and only [`notice!`](crate::notice!) lines (first line, errors, summary) remain.
pub fn init_parent(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    IS_CHILD.store(false, Ordering::Relaxed);
    PID.store(std::process::id() as i32, Ordering::Relaxed);
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

/// Writes one line; `always` lines ignore `-q`. Use the macros instead.
pub fn line(always: bool, args: fmt::Arguments) {
    if !always && quiet() {
        return;
    }
    let text = match THREAD_ID.with(Cell::get) {
        Some(tid) => format!("[thread {tid}] {args}\n"),
        None if IS_CHILD.load(Ordering::Relaxed) => format!("[child {}] {args}\n", std::process::id()),
        None => format!("[parent {}] {args}\n", PID.load(Ordering::Relaxed)),
    };
    // A log line that cannot be written (stderr closed) is not worth dying for.
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Logs an ordinary event (accepted, forked, closed, reaped...); silent with `-q`.
#[macro_export]
macro_rules! event {
    ($($arg:tt)*) => {
        // Checked here, not in `line`: with -q a child must not even run the
        // logging code (every page of code it runs is mapped anew after fork).
        if !$crate::log::quiet() {
            $crate::log::line(false, format_args!($($arg)*))
        }
    };
}

/// Logs a line that `-q` keeps: the first line, errors and the summary.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => { $crate::log::line(true, format_args!($($arg)*)) };
}
