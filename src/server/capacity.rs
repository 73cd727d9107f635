//! How many clients this machine lets a server hold at once, and what to
//! say when that is fewer than `--max-children` asks for.
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

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

use super::Config;

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

/// What to say, in one line, when this machine's limits leave room for
/// fewer clients at once than `--max-children` asks for (or than the
/// prefork workers need). The server still starts: the clients beyond the
/// room wait in the queue of msock, or fail. Called before the server says
/// it listens, so that the files it reads are closed by then.
pub fn cap_notice(config: &Config) -> Option<String> {
    let (wanted, asked) = match config.model.name {
        "iterative" => return None, // one client at a time, by design
        "prefork" => {
            let workers = config.prefork_workers();
            match config.workers {
                Some(_) => (workers, format!("--workers {workers}")),
                None => (workers, format!("{workers} workers (one per CPU)")),
            }
        }
        _ => (config.max_children, format!("--max-children {}", config.max_children)),
    };
    let limits = [
        (!config.model.forks).then(descriptor_room).flatten(),
        (config.model.forks || config.model.name == "thread").then(task_room).flatten(),
        (config.model.forks || config.model.name == "thread").then(user_process_room).flatten(),
    ];
    let (room, why) = limits.into_iter().flatten().min_by_key(|(room, _)| *room)?;
    (room < wanted).then(|| {
        format!(
            "{asked} is more than this machine allows: {why} leaves room for about {room} clients at once"
        )
    })
}

/// Descriptors left under the soft limit, one per client.
fn descriptor_room() -> Option<(usize, String)> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let open = fs::read_dir("/proc/self/fd").ok()?.count();
    let room = usize::try_from(soft).unwrap_or(usize::MAX).saturating_sub(open);
    Some((room, format!("the descriptor limit (ulimit -n {soft})")))
}

/// Tasks (processes and threads) the kernel can still create: the lower
/// of kernel.pid_max and kernel.threads-max, less those running now (the
/// fourth field of /proc/loadavg counts them).
fn task_room() -> Option<(usize, String)> {
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
fn user_process_room() -> Option<(usize, String)> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    if soft == RLIM_INFINITY {
        return None;
    }
    Some((usize::try_from(soft).unwrap_or(usize::MAX), format!("the process limit (ulimit -u {soft})")))
}
