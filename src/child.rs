//! What changes in a process once it is a forked child of the server (a
//! per-connection child, or a prefork worker): its log lines say
//! `[child PID]`, it sets its own signal dispositions, it closes the
//! parent's wake pipe, and it leaves with `_exit`.

use crate::signals::{self, SigpipeMode, WakePipe};
use crate::{demos, event, log, notice};

/// Makes a freshly forked process a child of the server: its log tag, its
/// signals (see [`signals::child_signals`]), and no wake pipe: the pipe is
/// the parent's, and its handlers stop writing to it here.
pub fn become_child(wake: WakePipe, sigpipe: SigpipeMode) {
    log::become_child();
    if let Err(err) = signals::child_signals(sigpipe).and_then(|()| demos::unchain_in_child()) {
        notice!("{err:#}");
        exit(1);
    }
    let (read_fd, write_fd) = wake.fds();
    drop(wake);
    event!("closed the wake pipe (fds {read_fd} and {write_fd})");
}

/// Ends a child. With `_exit`, not `exit`: the child leaves at once,
/// without running the exit handlers or flushing the stdio buffers it
/// inherited from the parent (a C child would print twice whatever the
/// parent had left in a `printf` buffer before fork). It has closed what
/// it opened already. Leaving this way also spares the child the pages
/// that the exit handlers would have written to, and so copied.
pub fn exit(status: i32) -> ! {
    // SAFETY: _exit has no preconditions: it ends the process at once.
    unsafe { libc::_exit(status) }
}
