//! Processes as /proc shows them: the one reader of /proc/PID/stat, and
//! what is built on it (children, descendants, process groups, threads),
//! descriptors, signal handlers. A process that is gone reads as None or
//! as nothing: a process may end between two looks.

use std::fs;
use std::path::Path;

/// One process (or one thread) as /proc/PID/stat shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Its process (or thread) ID.
    pub pid: i32,
    /// R running, S asleep, D in an uninterruptible wait, T stopped, Z zombie...
    pub state: char,
    /// Its parent's process ID.
    pub ppid: i32,
    /// Its process group.
    pub pgrp: i32,
    /// CPU time in user mode, in clock ticks (USER_HZ).
    pub utime: u64,
    /// CPU time in the kernel, in clock ticks.
    pub stime: u64,
    /// When it started, in clock ticks after boot: it tells a process from
    /// a later one that got the same number.
    pub start_time: u64,
}

impl Proc {
    /// Reads /proc/PID/stat; None if the process is gone.
    pub fn read(pid: i32) -> Option<Proc> {
        parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Whether it has ended and waits for its parent to reap it (state Z).
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// CPU time used so far (user and kernel), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }

    /// Inodes of the sockets among its open descriptors.
    pub fn socket_inodes(&self) -> Vec<u64> {
        let Ok(dir) = fs::read_dir(format!("/proc/{}/fd", self.pid)) else {
            return Vec::new();
        };
        dir.filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_string_lossy().into_owned();
                target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
    }
}

/// Parses the text of a stat file: "pid (comm) S ppid pgrp ...".
fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    // comm may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    let number = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
    Some(Proc {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: number(1)? as i32,
        pgrp: number(2)? as i32,
        utime: number(11)?,
        stime: number(12)?,
        start_time: number(19)?,
    })
}

/// Every process in /proc.
pub fn all_processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).filter_map(Proc::read).collect()
}

/// The children of `pid`.
pub fn children_of(pid: i32) -> Vec<Proc> {
    all_processes().into_iter().filter(|p| p.ppid == pid).collect()
}

/// Every process that descends from `root` now (zombies too).
pub fn descendants(root: i32) -> Vec<Proc> {
    let all = all_processes();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            parents.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}

/// Processes still in process group `pgrp` (a server's, after it exited).
pub fn processes_in_group(pgrp: i32) -> Vec<Proc> {
    all_processes().into_iter().filter(|p| p.pgrp == pgrp).collect()
}

/// The threads of process `pid` (each with its own state), from
/// /proc/PID/task; empty if the process is gone.
pub fn threads_of(pid: i32) -> Vec<Proc> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid = task.file_name().to_str()?.parse().ok()?;
            parse_stat(tid, &fs::read_to_string(task.path().join("stat")).ok()?)
        })
        .collect()
}

/// Number of open descriptors of process `pid` (0 if it is gone).
pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Whether process `pid` has a handler for signal `sig` (its SigCgt mask
/// in /proc/PID/status).
pub fn catches(pid: i32, sig: i32) -> bool {
    status_field(pid, "SigCgt:")
        .and_then(|mask| u64::from_str_radix(&mask, 16).ok())
        .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
}

/// How many times the process `pid` (its main thread) gave up the CPU
/// to wait: each sleep in poll, read or nanosleep is one
/// (voluntary_ctxt_switches in /proc/PID/status).
pub fn voluntary_switches(pid: i32) -> Option<u64> {
    status_field(pid, "voluntary_ctxt_switches:")?.parse().ok()
}

/// The value of a line of /proc/PID/status, such as `SigCgt:`.
fn status_field(pid: i32, name: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(name)).map(|value| value.trim().to_string())
}

/// Processes that hold a file under `dir` open (the logs a script made).
pub fn holders_of(dir: &Path) -> Vec<i32> {
    all_processes()
        .into_iter()
        .filter(|p| {
            fs::read_dir(format!("/proc/{}/fd", p.pid)).is_ok_and(|fds| {
                fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok()).any(|target| target.starts_with(dir))
            })
        })
        .map(|p| p.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_read_past() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 0 0";
        let p = parse_stat(42, stat).unwrap();
        assert_eq!((p.state, p.ppid, p.pgrp, p.cpu_ticks(), p.start_time), ('S', 1, 42, 10, 12345));
    }

    #[test]
    fn this_process_is_read_and_is_not_a_zombie() {
        let me = Proc::read(std::process::id() as i32).unwrap();
        assert!(!me.is_zombie() && me.ppid > 0);
        assert!(!threads_of(me.pid).is_empty());
    }
}
