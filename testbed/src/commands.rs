//! Programs that tests run: to their end within a bound, or in the
//! background behind a guard that kills them; what they printed; and the
//! rule for an experiment that cannot run here.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::binaries::CLIENT;
use crate::wait::{wait_until_within, TIMEOUT};

/// Sends a signal to a process (negative `pid`: a process group).
pub fn signal(pid: i32, sig: i32) {
    let sig = nix::sys::signal::Signal::try_from(sig).expect("a known signal");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// Whether the tests run as root (what some experiments need).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `program` is installed here.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Says that `test` cannot run here, and why. Under CI (the variable CI
/// is set, as `.ci/run` sets it) every experiment must run, and this
/// fails the test; elsewhere the test is skipped, with the reason printed.
pub fn cannot_run_here(test: &str, why: &str) {
    assert!(std::env::var_os("CI").is_none(), "{test} must run in CI, and cannot: {why}");
    eprintln!("{test}: skipped: {why}");
}

/// Whether `test`, which needs root (to run the server as another user,
/// to read /proc/PID/stack...), may go on: true as root; otherwise
/// [`cannot_run_here`] (a failure under CI, a skip elsewhere) and false.
pub fn needs_root(test: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    cannot_run_here(test, &format!("it needs root, {why}"));
    false
}

/// Runs TCPecho with `args`, feeding it `input`; bounded by [`TIMEOUT`].
pub fn run_client(args: &[&str], input: &[u8]) -> Output {
    run_bounded(Command::new(CLIENT).args(args), input)
}

/// Runs a command to completion with `input` on stdin, collecting stdout
/// and stderr; kills it and fails the test if it takes longer than TIMEOUT.
pub fn run_bounded(command: &mut Command, input: &[u8]) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input); // fails if the program stopped reading
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(TIMEOUT) {
        Ok(output) => output.expect("wait for command"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("command {command:?} did not finish in time");
        }
    };
    let _ = feeder.join();
    output
}

/// A process that is killed (and waited for) when the test lets go of it,
/// even when the test fails first.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Starts `command` with stdin, stdout and stderr piped.
    pub fn spawn(command: &mut Command) -> KillOnDrop {
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {command:?}: {err}"));
        KillOnDrop(child)
    }

    /// Waits for its end, for at most `limit` (the test fails after it),
    /// and returns its status and what it printed that was not taken yet.
    /// Its output is read meanwhile, so that a full pipe cannot stop it.
    pub fn finish_within(&mut self, limit: Duration) -> Output {
        let what = format!("process {} to exit", self.0.id());
        self.finish_as(&what, limit)
    }

    fn finish_as(&mut self, what: &str, limit: Duration) -> Output {
        let (stdout, stderr) = (read_all(self.0.stdout.take()), read_all(self.0.stderr.take()));
        let child = &mut self.0;
        let status = wait_until_within(what, limit, || child.try_wait().expect("try_wait"));
        Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
    }

    /// [`KillOnDrop::finish_within`] [`TIMEOUT`].
    pub fn finish(&mut self) -> Output {
        self.finish_within(TIMEOUT)
    }

    /// Waits for its end (bounded by [`TIMEOUT`]); returns its exit code
    /// and what it wrote on stderr.
    pub fn end(&mut self) -> (Option<i32>, String) {
        let output = self.finish();
        (output.status.code(), stderr_text(&output))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` to its end in a process group of its own, with no
/// input, reading its output as it comes, for at most `limit`: past it,
/// the test fails. Whatever the command left running in its group is
/// killed when it ends. For what takes longer than [`run_bounded`]
/// allows (a build, a container) or starts processes of its own (make, a
/// script).
pub fn run_within(command: &mut Command, limit: Duration) -> Output {
    run_within_pid(command, limit).0
}

/// [`run_within`], and the PID the command had (for a program that names
/// what it makes after its PID).
pub fn run_within_pid(command: &mut Command, limit: Duration) -> (Output, i32) {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn().unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (stdout, stderr) = (read_all(child.stdout.take()), read_all(child.stderr.take()));
    let mut group = ProcessGroup(Some(child));
    // WNOWAIT: the command is seen to end without being reaped, so that
    // its group is still its own when `finish` kills what is left of it.
    let (tx, ended) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT));
    });
    let in_time = matches!(ended.recv_timeout(limit), Ok(Ok(_)));
    let status = group.finish().expect("the command's exit status");
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        in_time,
        "{command:?} did not end within {limit:?}; it printed:\n{}{}",
        stdout_text(&output),
        stderr_text(&output)
    );
    (output, pid.as_raw())
}

/// Reads a pipe to its end in a thread of its own.
fn read_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// A command started in a process group of its own (`process_group(0)`).
/// Whatever is left of the group is killed before the command is reaped,
/// also when the test fails first: a process group's ID is its leader's
/// PID, which the kernel gives to a new process once the leader is reaped
/// and its group empty, so that a kill by that ID afterwards could hit
/// another test's processes.
pub struct ProcessGroup(Option<Child>);

impl ProcessGroup {
    /// Starts `command` as the leader of a process group of its own.
    pub fn spawn(command: &mut Command) -> ProcessGroup {
        let child =
            command.process_group(0).spawn().unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
        ProcessGroup(Some(child))
    }

    /// The leader, for its pipes and its PID. (Wait for it with
    /// [`ProcessGroup::try_wait`], never with the `Child`'s own waits.)
    pub fn leader(&mut self) -> &mut Child {
        self.0.as_mut().expect("a group not finished yet")
    }

    /// The leader's PID, which is also the group's ID.
    pub fn pid(&self) -> i32 {
        self.0.as_ref().map_or(0, |child| child.id() as i32)
    }

    /// If the leader has ended: kills what is left of its group, reaps the
    /// leader and returns its status. None while it runs (and once finished).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let pid = nix::unistd::Pid::from_raw(self.pid());
        // WNOWAIT: seen, not reaped, so that the group's ID is still its own.
        let seen = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT);
        match (&self.0, seen) {
            (None, _) | (_, Ok(WaitStatus::StillAlive)) => None,
            _ => self.finish(),
        }
    }

    /// Kills what is left of the group, and reaps the leader: its status.
    pub fn finish(&mut self) -> Option<ExitStatus> {
        let mut child = self.0.take()?;
        signal(-(child.id() as i32), libc::SIGKILL);
        child.wait().ok()
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.finish();
    }
}

/// stdout of an output, as text.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of an output, as text.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that a run ended with `code` and exactly one line on stderr that
/// starts with `PROGRAM: ` and contains every one of `words`, and no
/// panic or backtrace.
pub fn assert_one_line_error(output: &Output, code: i32, program: &str, words: &[&str]) {
    let err = stderr_text(output);
    assert_eq!(output.status.code(), Some(code), "exit status; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line on stderr, got: {err:?}");
    assert!(err.starts_with(&format!("{program}: ")), "{err:?}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err:?}");
    for word in words {
        assert!(err.contains(word), "{err:?} should mention {word:?}");
    }
    assert!(output.status.signal().is_none());
}
