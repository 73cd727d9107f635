//! Two experiments of the talk on SIGTERM that goes with the lab, runnable,
//! and kept out of the server's own code: only the options `--atexit` and
//! `--library-handler` reach them.
//!
//! - `--atexit`: an exit handler, registered with atexit(3), that logs one
//!   line. It runs when the process calls exit(3): after a graceful
//!   shutdown (main returns, and Rust calls exit). Not when a signal kills
//!   the process (SIGKILL, or SIGTERM without a handler: the kernel ends it,
//!   no code of ours runs), and not in the children, which leave with
//!   `_exit`: they inherited the parent's exit handlers, and running them
//!   would do the parent's cleaning once per child (flush a buffer twice,
//!   delete the parent's files...).
//! - `--library-handler replace|chain`: a stand-in for a library that
//!   installs its own SIGTERM handler before the server installs its own.
//!   One handler per signal: with `replace`, the server's replaces the
//!   library's, which never runs. With `chain`, the server keeps what
//!   sigaction(2) returned, the previous handler, and calls it from its
//!   own: both run, once, in the process the signal came to (the
//!   server's own SIGTERMs, to its threads and children, do not go
//!   through the library's).
//!
//!   With `--no-sigterm-handler`, the server installs no handler: the
//!   library's stays alone, and SIGTERM runs it and nothing else. The
//!   server goes on serving, as any program does whose library took
//!   SIGTERM without it knowing (SIGINT still kills it).

use std::sync::OnceLock;

use anyhow::Result;
use nix::sys::signal::{SaFlags, SigHandler, Signal};

use crate::notice;
use crate::support::signals;

/// What `--library-handler` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LibraryHandler {
    /// The server's handler replaces the library's (the library's never runs).
    Replace,
    /// The server's handler calls the library's after its own work.
    Chain,
}

/// Registers the exit handler of `--atexit`.
pub fn register_atexit() -> Result<()> {
    // SAFETY: atexit only records the function, which takes and returns
    // nothing; the handler runs at exit, in ordinary code (not a signal
    // handler), where it may log.
    let status = unsafe { libc::atexit(at_exit) };
    anyhow::ensure!(status == 0, "atexit: cannot register the exit handler");
    Ok(())
}

extern "C" fn at_exit() {
    notice!("atexit: the exit handler runs (a normal exit, through exit(3))");
}

/// The stand-in library installs its SIGTERM handler (before the server's).
pub fn install_library_handler() -> Result<()> {
    signals::install(Signal::SIGTERM, SigHandler::Handler(library_on_term), SaFlags::SA_RESTART).map(drop)
}

/// The library's handler: it only says that it ran (write(2) is
/// async-signal-safe, and it keeps errno).
extern "C" fn library_on_term(_sig: libc::c_int) {
    let saved_errno = nix::errno::Errno::last_raw();
    let _ = nix::unistd::write(std::io::stderr(), b"[library] SIGTERM handler: the library cleans up\n");
    nix::errno::Errno::set_raw(saved_errno);
}

/// The handler that was there before the server's: the library's.
static PREVIOUS: OnceLock<SigHandler> = OnceLock::new();

/// Called once the server installed its SIGTERM handler, with the handler
/// that it replaced: with `chain`, the server's handler is wrapped so that
/// it calls that one too.
pub fn after_server_handlers(previous: SigHandler, mode: Option<LibraryHandler>) -> Result<()> {
    match mode {
        Some(LibraryHandler::Chain) => {
            let _ = PREVIOUS.set(previous);
            signals::install(Signal::SIGTERM, SigHandler::Handler(chained), SaFlags::SA_RESTART).map(drop)
        }
        Some(LibraryHandler::Replace) | None => Ok(()),
    }
}

/// The server's handler, then the previous one, as sigaction returned it:
/// once, for the SIGTERM that came from outside. The later ones are the
/// server's own (the threaded server wakes each of its threads with
/// SIGTERM), and the library has had its turn.
extern "C" fn chained(sig: libc::c_int) {
    if signals::terminate(sig) {
        if let Some(SigHandler::Handler(previous)) = PREVIOUS.get() {
            previous(sig);
        }
    }
}

/// In a forked child, the server's handler alone: the SIGTERM a child
/// gets comes from its parent, as part of the server's own stop, and the
/// library, whose state is the parent's, has had its turn there.
pub fn unchain_in_child() -> Result<()> {
    match PREVIOUS.get() {
        Some(_) => {
            signals::install(Signal::SIGTERM, SigHandler::Handler(signals::on_terminate), SaFlags::SA_RESTART)
                .map(drop)
        }
        None => Ok(()),
    }
}
