//! Where the students' code runs when the grader is root, and what it
//! leaves behind.
//!
//! A submission's code runs twice: in rustc, at its build (`include_str!`
//! reads any file the compiler can), and as the servers the checker
//! starts. Both run as the unprivileged user (`--user`, `nobody`), never
//! as root nor as the teacher, and, where the kernel allows it (root with
//! CAP_SYS_ADMIN: not in a default Docker container), in namespaces of
//! their own: a network namespace with only a loopback (the checker only
//! uses 127.0.0.1; nothing reaches the network nor the machine's own
//! services), and a mount namespace where the teacher's tree, the
//! submissions and the logs are covered by an empty folder, and the Rust
//! toolchain is shown at a path that user can reach. The checker itself
//! runs there as root, and starts the servers as that user (`--run-as`):
//! a server cannot signal it, trace it or read its descriptors.
//!
//! Every command also gets limits: its address space (a compiler fed
//! `include_bytes!("/dev/zero")` fails instead of taking the machine), its
//! CPU time, the size of the files it writes, no core dumps.
//!
//! After each submission, what that user left is removed: its processes
//! that were not there before, and its new files in /tmp, /var/tmp and
//! /dev/shm.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid};
use tcpechod::support::log::reason;

/// The folders where any user may leave files.
pub const SHARED_FOLDERS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// What a command may take: address space and file size in bytes, CPU
/// time in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory: u64,
    pub cpu: u64,
    pub file: u64,
}

/// The user the students' code runs as, and the namespaces it runs in.
#[derive(Debug, Clone)]
pub struct Jail {
    pub uid: u32,
    pub gid: u32,
    /// Whether namespaces can be made here (else why not).
    pub namespaces: Result<(), String>,
    /// The toolchain, bound at a folder the user can reach: (from, to).
    toolchain: Option<(CString, CString)>,
    /// Folders covered by an empty, read-only tmpfs.
    hidden: Vec<CString>,
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

impl Jail {
    /// The jail for `uid`:`gid`; whether namespaces can be made is tried
    /// here, once.
    pub fn new(uid: u32, gid: u32) -> Jail {
        let mut jail = Jail { uid, gid, namespaces: Ok(()), toolchain: None, hidden: Vec::new() };
        let mut probe = Command::new("true");
        probe.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        jail.enter(&mut probe, None, false);
        jail.namespaces = match probe.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("true: {status}")),
            Err(err) => Err(reason(&err)),
        };
        jail
    }

    /// Shows `from` (a toolchain) at `to` (an empty folder) in the
    /// namespaces.
    pub fn bind_toolchain(&mut self, from: &Path, to: &Path) {
        self.toolchain = Some((c_path(from), c_path(to)));
    }

    /// Covers `folder` with an empty folder in the namespaces.
    pub fn hide(&mut self, folder: &Path) {
        self.hidden.push(c_path(folder));
    }

    /// Sets `command` to run in the namespaces (if they can be made), with
    /// `limits` (if any), as the jail's user if `as_user` (as root if
    /// not: the checker, which starts the servers as the user itself).
    pub fn confine(&self, command: &mut Command, limits: Limits, as_user: bool) {
        self.enter(command, Some(limits), as_user);
    }

    fn enter(&self, command: &mut Command, limits: Option<Limits>, as_user: bool) {
        let namespaces = self.namespaces.is_ok();
        let (toolchain, hidden) = (self.toolchain.clone(), self.hidden.clone());
        let (uid, gid) = (Uid::from_raw(self.uid), Gid::from_raw(self.gid));
        // SAFETY: between fork and exec only async-signal-safe calls are
        // allowed, and nothing may allocate: unshare, mount, socket,
        // ioctl, close, setrlimit, setgroups, setresgid and setresuid are
        // system calls, on paths made (as CStrings) before the fork. The
        // user is dropped last, as std would (root is needed for the
        // rest); std then runs the closures added after this one
        // (`processes::run`'s parent-death signal, which a change of user
        // clears) and exec.
        unsafe {
            command.pre_exec(move || {
                if namespaces {
                    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)?;
                    // Nothing mounted here shows outside.
                    mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )?;
                    loopback_up()?;
                    if let Some((from, to)) = &toolchain {
                        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                        mount(Some(from.as_c_str()), to.as_c_str(), None::<&str>, flags, None::<&str>)?;
                    }
                    for folder in &hidden {
                        let flags =
                            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                        mount(
                            Some("tmpfs"),
                            folder.as_c_str(),
                            Some("tmpfs"),
                            flags,
                            Some("size=4k,mode=0755"),
                        )?;
                    }
                }
                if let Some(limits) = limits {
                    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
                    setrlimit(Resource::RLIMIT_AS, limits.memory, limits.memory)?;
                    setrlimit(Resource::RLIMIT_CPU, limits.cpu, limits.cpu)?;
                    setrlimit(Resource::RLIMIT_FSIZE, limits.file, limits.file)?;
                }
                if as_user {
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setresgid(gid, gid, gid)?;
                    nix::unistd::setresuid(uid, uid, uid)?;
                }
                Ok(())
            });
        }
    }

    /// Runs `program args` as the jail's user, outside the namespaces:
    /// whether it succeeds (`test -r FILE`: whether the user can read it).
    pub fn user_can(&self, program: &Path, args: &[&std::ffi::OsStr]) -> bool {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        command.uid(self.uid).gid(self.gid).current_dir("/");
        command.status().is_ok_and(|status| status.success())
    }

    /// What the user has now: its processes and its files in the shared
    /// folders.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            processes: self.processes().into_iter().collect(),
            files: self.files().into_iter().collect(),
        }
    }

    /// Kills the user's processes that `before` did not have, and removes
    /// its files that `before` did not have: how many of each.
    pub fn clean(&self, before: &Snapshot) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = HashSet::new();
        loop {
            let new: Vec<(i32, u64)> =
                self.processes().into_iter().filter(|p| !before.processes.contains(p)).collect();
            if new.is_empty() || Instant::now() >= deadline {
                break;
            }
            for (pid, start) in new {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                killed.insert((pid, start));
            }
            thread::sleep(Duration::from_millis(5));
        }
        let mut removed = 0;
        for (path, _) in self.files().into_iter().filter(|f| !before.files.contains(f)) {
            // Neither follows a link: a link is removed, not its target.
            let gone = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(err) => Err(err),
            };
            removed += usize::from(gone.is_ok());
        }
        (killed.len(), removed)
    }

    /// The user's processes now: (pid, start time).
    fn processes(&self) -> Vec<(i32, u64)> {
        let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
        dir.filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let uid: u32 = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let start = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().nth(19)?.parse().ok()?;
            (uid == self.uid).then_some((pid, start))
        })
        .collect()
    }

    /// The user's entries in the shared folders now: (path, inode).
    fn files(&self) -> Vec<(PathBuf, u64)> {
        SHARED_FOLDERS
            .iter()
            .filter_map(|folder| fs::read_dir(folder).ok())
            .flatten()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let meta = entry.metadata().ok()?;
                (meta.uid() == self.uid).then(|| (entry.path(), meta.ino()))
            })
            .collect()
    }
}

/// A user's processes and files at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    processes: HashSet<(i32, u64)>,
    files: HashSet<(PathBuf, u64)>,
}

/// Sets `limits` on `command`, for a grader that is not root (no user to
/// change to, no namespaces).
pub fn limit(command: &mut Command, limits: Limits) {
    // SAFETY: setrlimit is a system call, async-signal-safe; it only
    // lowers this process's limits.
    unsafe {
        command.pre_exec(move || {
            setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
            setrlimit(Resource::RLIMIT_AS, limits.memory, limits.memory)?;
            setrlimit(Resource::RLIMIT_CPU, limits.cpu, limits.cpu)?;
            setrlimit(Resource::RLIMIT_FSIZE, limits.file, limits.file)?;
            Ok(())
        });
    }
}

/// Brings the loopback of this (new) network namespace up: 127.0.0.1
/// answers once it is.
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket, ioctl and close are system calls (async-signal-safe);
    // the request is a zeroed ifreq on the stack, its name a NUL-ended
    // "lo", read by the kernel only during the call.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        request.ifr_name[0] = b'l' as libc::c_char;
        request.ifr_name[1] = b'o' as libc::c_char;
        request.ifr_ifru.ifru_flags =
            (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
        let result = libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &request);
        let error = io::Error::last_os_error();
        libc::close(sock);
        if result < 0 {
            return Err(error);
        }
    }
    Ok(())
}
