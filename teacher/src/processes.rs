//! The commands grading runs (cargo, the checker), each bounded in time,
//! and every process they leave behind stopped.
//!
//! The grader is the subreaper of all it starts: a process whose parent
//! dies comes back to it, not to init. So after each command every
//! descendant can be found, walking /proc down from the grader, and
//! killed, however it hid (a session or a process group of its own, a
//! double fork).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use testbed::descendants;

/// The longest the stopping of what a command left may take.
const STOP_TIME: Duration = Duration::from_secs(10);

/// The process group of the command running now (0: none).
static RUNNING: AtomicI32 = AtomicI32::new(0);

/// How a bounded command ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited (or a signal killed it) within its time.
    Finished(ExitStatus),
    /// Its time ran out, and it was killed.
    TimedOut,
}

/// Makes this process the subreaper of its descendants.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Runs `command` in a process group of its own, for at most `limit`; its
/// group is killed when the time runs out, and every process it left is
/// stopped before this returns. A command may not outlive the grader: it
/// gets SIGKILL if the grader dies.
pub fn run(command: &mut Command, limit: Duration) -> io::Result<Ended> {
    command.process_group(0);
    // SAFETY: prctl is a system call, async-signal-safe, and touches
    // nothing of the parent's; it runs after std's setuid (if any), which
    // would clear it.
    unsafe {
        command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from));
    }
    let mut child = command.spawn()?;
    let group = child.id() as i32;
    RUNNING.store(group, Ordering::SeqCst);
    let deadline = Instant::now() + limit;
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ended::Finished(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = kill(Pid::from_raw(-group), Signal::SIGKILL);
                let _ = child.wait();
                break Ended::TimedOut;
            }
            // Collected by an interrupt's clean-up (see `stop_all`).
            Err(_) => break Ended::TimedOut,
        }
    };
    RUNNING.store(0, Ordering::SeqCst);
    stop_descendants();
    Ok(ended)
}

/// Stops the command running now and everything left: for an interrupt.
pub fn stop_all() {
    let group = RUNNING.swap(0, Ordering::SeqCst);
    if group > 0 {
        let _ = kill(Pid::from_raw(-group), Signal::SIGKILL);
    }
    stop_descendants();
}

/// Kills every descendant of this process and collects those that are
/// its children, until none is left (or STOP_TIME passes); returns how
/// many are left.
pub fn stop_descendants() -> usize {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + STOP_TIME;
    loop {
        let family = descendants(me);
        if family.is_empty() || Instant::now() >= deadline {
            return family.len();
        }
        for p in &family {
            if !p.is_zombie() {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            } else if p.ppid == me {
                let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
}
