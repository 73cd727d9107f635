//! How many clients this machine lets a server hold at once: what is left
//! under each of its limits. (Which of them bind a model, and what to say
//! when they leave room for fewer clients than `--max-children` asks for,
//! the server's configuration decides: `Config::beyond_this_machine`.)
//!
//! A client costs the server a descriptor in the process that serves it
//! (all of them in one process, in the thread and poll models), and a
//! process or a thread of its own in the fork, prefork and thread models.
//! The soft descriptor limit (`ulimit -n`) is often 1,024, far below what
//! 10,000 clients need, while the hard limit, which a process may raise
//! its own soft limit to, is usually much higher: the server raises it at
//! start. Processes and threads are limited by the kernel (pid_max,
//! threads-max) and, for users other than root, by `ulimit -u`.

use std::fs;
use std::net::TcpListener;

use anyhow::Result;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// Raises the soft descriptor limit to the hard one. Returns the old and
/// the new soft limit if it changed.
pub fn raise_descriptor_limit() -> Option<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return None;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).ok()?;
    Some((soft, hard))
}

/// Descriptors left under the soft limit, one per client.
pub fn descriptor_room() -> Option<(usize, String)> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let open = fs::read_dir("/proc/self/fd").ok()?.count();
    let room = usize::try_from(soft).unwrap_or(usize::MAX).saturating_sub(open);
    Some((room, format!("the descriptor limit (ulimit -n {soft})")))
}

/// Tasks (processes and threads) the kernel can still create: the lower
/// of kernel.pid_max and kernel.threads-max, less those running now (the
/// fourth field of /proc/loadavg counts them).
pub fn task_room() -> Option<(usize, String)> {
    let read = |path: &str| fs::read_to_string(path).ok()?.trim().parse::<usize>().ok();
    let pid_max = read("/proc/sys/kernel/pid_max")?;
    let threads_max = read("/proc/sys/kernel/threads-max")?;
    let loadavg = fs::read_to_string("/proc/loadavg").ok()?;
    let running: usize = loadavg.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()?;
    let (max, name) = if pid_max <= threads_max {
        (pid_max, format!("kernel.pid_max ({pid_max})"))
    } else {
        (threads_max, format!("kernel.threads-max ({threads_max})"))
    };
    Some((max.saturating_sub(running), format!("{name}, with {running} tasks running,")))
}

/// For a user other than root, `ulimit -u`: processes and threads of the
/// user, those running now included (so the room is at most this).
pub fn user_process_room() -> Option<(usize, String)> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    if soft == RLIM_INFINITY {
        return None;
    }
    Some((usize::try_from(soft).unwrap_or(usize::MAX), format!("the process limit (ulimit -u {soft})")))
}

/// Refuses to start a server that could never accept a client: one whose
/// descriptor limit (`ulimit -n`, `prlimit --nofile`) is used up by what it
/// opened to start (stdin, stdout, stderr, msock, the wake pipe). It would
/// say "listening" and then fail every accept with EMFILE, for ever.
pub fn ensure_a_descriptor_is_left(msock: &TcpListener) -> Result<()> {
    match msock.try_clone() {
        Ok(probe) => {
            drop(probe);
            Ok(())
        }
        Err(err) if err.raw_os_error() == Some(libc::EMFILE) => {
            let limit =
                getrlimit(Resource::RLIMIT_NOFILE).map_or("?".to_string(), |(soft, _)| soft.to_string());
            anyhow::bail!(
                "cannot serve: every descriptor the limit allows (ulimit -n: {limit}) is in use before the \
                 first client; raise the limit"
            )
        }
        Err(err) => Err(anyhow::Error::new(err).context("dup msock")),
    }
}
