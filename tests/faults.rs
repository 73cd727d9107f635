//! What attacking the server found, each kept as an experiment that failed
//! before the fix: a log that cannot be written (closed, stalled, full),
//! processes and threads that run out, `--delay` against the grace
//! period, a reset the poll server did not notice, signals and addresses
//! the server did not expect, too few descriptors to serve.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use testbed::*;

/// A server whose stderr is a pipe that the test holds (or closes), in a
/// process group of its own, killed whole when dropped.
struct PipedServer {
    child: Option<Child>,
    pid: i32,
    port: u16,
    /// The reading end of the server's stderr (None once closed).
    log: Option<File>,
    /// The pipe's capacity, in bytes.
    capacity: usize,
}

impl PipedServer {
    /// Starts `TCPechod --bind 127.0.0.1 ARGS... 0` with its stderr into a
    /// pipe of the smallest capacity the kernel allows, and reads its first
    /// line.
    fn start(args: &[&str]) -> PipedServer {
        let (read_end, write_end): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let capacity = fcntl(&read_end, FcntlArg::F_SETPIPE_SZ(4096)).unwrap() as usize;
        let child = Command::new(SERVER)
            .args(["--bind", "127.0.0.1"])
            .args(args)
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(write_end))
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut log = File::from(read_end);
        let mut first = Vec::new();
        let mut byte = [0u8; 1];
        while log.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            first.push(byte[0]);
        }
        let first = String::from_utf8(first).unwrap();
        let port = listening_port(&first).expect("`listening on ADDR:PORT` first");
        PipedServer { child: Some(child), pid, port, log: Some(log), capacity }
    }

    /// One exchange: send a line, half-close, read the echo back.
    fn echo(&self, line: &[u8]) -> Vec<u8> {
        let mut sock = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        sock.write_all(line).unwrap();
        sock.shutdown(Shutdown::Write).unwrap();
        let mut echo = Vec::new();
        sock.read_to_end(&mut echo).unwrap();
        echo
    }

    /// Sends `sig` and waits (bounded) for the server to exit.
    fn stop(&mut self, sig: i32) -> ExitStatus {
        signal(self.pid, sig);
        let child = self.child.as_mut().unwrap();
        let status = wait_until("the server to exit", || child.try_wait().unwrap());
        self.child = None;
        wait_until("its children to exit", || processes_in_group(self.pid).is_empty().then_some(()));
        status
    }

    /// Everything in the log pipe now, without waiting for more.
    fn drain(&mut self) -> String {
        let log = self.log.as_mut().unwrap();
        let flags = OFlag::from_bits_truncate(fcntl(&*log, FcntlArg::F_GETFL).unwrap());
        fcntl(&*log, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match log.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("read the log: {err}"),
            }
        }
        fcntl(&*log, FcntlArg::F_SETFL(flags)).unwrap();
        String::from_utf8_lossy(&text).into_owned()
    }

    /// The rest of the log, up to its end (every process gone).
    fn rest_of_log(&mut self) -> String {
        let mut text = String::new();
        self.log.take().unwrap().read_to_string(&mut text).unwrap();
        text
    }
}

impl Drop for PipedServer {
    fn drop(&mut self) {
        // Once `stop` has reaped the server, the group's ID stays its own
        // only while a child of it is left in the group.
        match self.child.take() {
            Some(mut child) => {
                signal(-self.pid, libc::SIGKILL);
                let _ = child.wait();
            }
            None if !processes_in_group(self.pid).is_empty() => signal(-self.pid, libc::SIGKILL),
            None => {}
        }
    }
}

#[test]
fn a_closed_stderr_costs_no_client_its_echo() {
    // TCPechod 2>&1 | head -n 1: the log's reader is gone after one line.
    for mode in modes() {
        let mut server = PipedServer::start(&["--mode", mode]);
        drop(server.log.take());
        for i in 0..5 {
            let line = format!("client {i} of {mode}\n");
            assert_eq!(server.echo(line.as_bytes()), line.as_bytes(), "{mode}");
        }
        assert_eq!(server.stop(libc::SIGTERM).code(), Some(0), "{mode}");
    }
}

#[test]
fn a_stalled_stderr_blocks_neither_serving_nor_the_shutdown() {
    // TCPechod 2>&1 | sleep 120: nobody reads the log. Every client makes
    // the server log a line of 20 bytes at least, so these many clients
    // fill the pipe, whatever its size, and more.
    for mode in modes() {
        let mut server = PipedServer::start(&["--mode", mode]);
        for i in 0..server.capacity / 20 + 50 {
            let line = format!("client {i}\n");
            assert_eq!(server.echo(line.as_bytes()), line.as_bytes(), "{mode}: client {i}");
        }
        assert_eq!(server.stop(libc::SIGTERM).code(), Some(0), "{mode}");
        let log = server.rest_of_log();
        assert!(log.len() <= server.capacity, "{mode}: the pipe held what it could");
    }
}

#[test]
fn the_log_lines_dropped_are_counted() {
    let mut server = PipedServer::start(&["--mode", "fork"]);
    for i in 0..server.capacity / 20 + 50 {
        let line = format!("client {i}\n");
        assert_eq!(server.echo(line.as_bytes()), line.as_bytes());
    }
    // Wait for the last child to be reaped: its lines are all written (or
    // dropped) by then. Then empty the pipe, so that the last lines fit.
    wait_until("the children to be reaped", || children_of(server.pid).is_empty().then_some(()));
    server.drain();
    assert_eq!(server.stop(libc::SIGTERM).code(), Some(0));
    let end = server.rest_of_log();
    let dropped =
        end.lines().find(|l| l.contains("log lines were dropped")).unwrap_or_else(|| panic!("{end}"));
    let count: u64 = dropped.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap();
    assert!(count > 0, "{dropped}");
    assert!(end.lines().last().unwrap().contains("shutdown: accepted="), "{end}");
}

#[test]
fn an_unwritable_stderr_changes_no_exit_status() {
    // 2>/dev/full: every write to stderr fails (ENOSPC).
    let full = || Stdio::from(File::options().write(true).open("/dev/full").unwrap());
    let status = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).stdin(Stdio::null()).stderr(full()).output().unwrap();
        out.status.code()
    };
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().port().to_string();
    assert_eq!(status(&SERVER, &["--no-such-option"]), Some(2), "usage error");
    assert_eq!(status(&SERVER, &["--bind", "127.0.0.1", &busy]), Some(1), "port in use");
    assert_eq!(status(&CLIENT, &["--no-such-option"]), Some(2), "usage error");
    drop(holder);
    assert_eq!(status(&CLIENT, &["127.0.0.1", &busy]), Some(1), "connection refused");
}

#[test]
fn the_grace_period_cuts_a_delay_in_every_model() {
    // The echo is delayed a minute, the grace period is one second: the
    // server must be gone well within the test's wait (30 s), without the
    // echo, and count the client as cut.
    for mode in modes() {
        let mut server = Server::start(&["--mode", mode, "--delay", "60000", "--grace", "1"]);
        let mut sock = server.connect();
        sock.write_all(b"too slow\n").unwrap();
        wait_until_read(&sock, server.port);
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}: {:?}", server.log);
        let summary = server.summary();
        assert_eq!((summary.accepted, summary.cut, summary.killed), (1, 1, 0), "{mode}: {:?}", server.log);
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{mode}: the echo was cut, not sent");
    }
}

#[test]
fn the_poll_server_ends_a_client_that_resets_while_its_echo_waits() {
    // The client sends, half-closes, then resets, while its echo waits for
    // --delay: poll reports the broken socket, and must not report it
    // again and again (a spin at 100 % CPU) until the delay is over.
    let mut server = Server::start(&["--mode", "poll", "--delay", "60000"]);
    let sock = server.connect();
    (&sock).write_all(&[b'r'; 1000]).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    wait_until_read(&sock, server.port);
    let abort = libc::linger { l_onoff: 1, l_linger: 0 };
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Linger, &abort).unwrap();
    drop(sock);
    // (A reset after the client's FIN reads as EPIPE, before it as ECONNRESET.)
    let line = server.wait_for_line(|l| l.contains("finished 127.0.0.1:"));
    assert!(line.contains(": 0 bytes echoed (broken pipe"), "{line}");
    wait_until("the server to sleep", || server.all_asleep().then_some(()));
}

#[test]
fn sighup_stops_the_server_gracefully() {
    let mut server = Server::start(&[]);
    let client = close_on_eof(server.connect());
    server.wait_for_children(1, |_| true);
    assert_eq!(server.stop_with(libc::SIGHUP).code(), Some(0), "{:?}", server.log);
    assert!(server.lines_with("SIGHUP received").len() == 1, "{:?}", server.log);
    assert_eq!(server.summary(), Summary { accepted: 1, reaped: 1, sigpipe: 0, cut: 0, killed: 0 });
    assert!(client.join().unwrap().is_empty());
}

#[test]
fn a_server_started_with_nohup_ignores_sighup() {
    let mut server = Server::start_with("nohup", &[&SERVER], &[]);
    server.signal(libc::SIGHUP);
    // Still serving: SIGHUP stayed ignored, as nohup asked.
    let out = server.client(&[], b"still here\n");
    assert_eq!(out.stdout, b"still here\n", "{}", stderr_text(&out));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert!(server.lines_with("SIGHUP").is_empty(), "{:?}", server.log);
}

#[test]
fn too_few_descriptors_to_serve_anyone_is_refused_at_start() {
    // stdin, stdout, stderr, msock and the wake pipe take all six.
    let out =
        run_bounded(Command::new("prlimit").args(["--nofile=6:6", &SERVER, "--bind", "127.0.0.1", "0"]), b"");
    assert_one_line_error(&out, 1, "TCPechod", &["cannot serve", "ulimit -n: 6"]);
}

#[test]
fn the_server_raises_its_descriptor_limit_and_says_when_limits_cap_its_clients() {
    // A soft limit of 64 under a hard one of 512: the server raises it, and
    // says that 1,000 clients at once will not fit in 512 descriptors.
    let mut server = Server::start_with(
        "prlimit",
        &["--nofile=64:512", &SERVER, "--mode", "poll"],
        &["--max-children", "1000"],
    );
    server.wait_for_line(|l| {
        l.contains("raised the descriptor limit (ulimit -n) from 64 to the hard limit, 512")
    });
    let capped = server.wait_for_line(|l| l.contains("--max-children 1000 is more than this machine allows"));
    assert!(capped.contains("the descriptor limit (ulimit -n 512) leaves room for about"), "{capped}");
    let limits = fs::read_to_string(format!("/proc/{}/limits", server.pid)).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    assert_eq!(open_files.split_whitespace().nth(3), Some("512"), "the soft limit is raised: {open_files}");
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));

    // More children than the kernel has process IDs for: said, in one line.
    let mut server = Server::start(&["-q", "--max-children", "4194304"]);
    let capped =
        server.wait_for_line(|l| l.contains("--max-children 4194304 is more than this machine allows"));
    assert!(capped.contains("kernel."), "names the kernel's limit: {capped}");
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));

    // Within the limits, nothing is said.
    let mut server = Server::start(&["--max-children", "8"]);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert!(server.lines_with("more than this machine allows").is_empty(), "{:?}", server.log);
}

#[test]
fn prefork_serves_at_most_max_children_clients_at_once() {
    let out = run_bounded(
        Command::new(SERVER).args(["--mode", "prefork", "--workers", "8", "--max-children", "2", "0"]),
        b"",
    );
    assert_one_line_error(&out, 2, "TCPechod", &["--workers 8 is more than --max-children 2"]);

    // --max-children alone caps the workers.
    let mut server = Server::start(&["--mode", "prefork", "--max-children", "1"]);
    server.wait_for_line(|l| l.contains("started worker"));
    assert_eq!(server.children().len(), 1);
    let first = server.served_client();
    server.serves_the_second_client_after(first);
    assert_eq!(server.lines_with("started worker").len(), 1, "{:?}", server.log);
}

/// Starts the server as user `uid` (one no other test uses: the process
/// limit counts every process and thread of the user) with at most
/// `nproc` processes and threads. That takes root: without it, `test`
/// fails under CI and is skipped elsewhere (None).
fn start_limited(test: &str, uid: u32, nproc: u32, args: &[&str]) -> Option<(Server, BinaryForAnyone)> {
    if !needs_root(test, "to run the server as another user with a process limit") {
        return None;
    }
    let binary = BinaryForAnyone::new(&format!("uid{uid}"));
    let (reuid, regid, limit) =
        (format!("--reuid={uid}"), format!("--regid={uid}"), format!("--nproc={nproc}:{nproc}"));
    let server = Server::start_with(
        "setpriv",
        &[&reuid, &regid, "--clear-groups", "prlimit", &limit, &binary.path],
        args,
    );
    Some((server, binary))
}

#[test]
fn the_threaded_server_backs_off_when_it_cannot_start_a_thread() {
    // Four tasks for the user: the acceptor and three threads.
    let test = "the_threaded_server_backs_off_when_it_cannot_start_a_thread";
    let Some((mut server, _binary)) = start_limited(test, 60_011, 4, &["--mode", "thread"]) else { return };
    let held: Vec<TcpStream> = (0..3).map(|_| server.served_client()).collect();
    let mut fourth = server.connect();
    let mut rest = Vec::new();
    let _ = fourth.read_to_end(&mut rest); // let go: its connection is closed
    server.wait_for_line(|l| l.contains("cannot start a thread"));
    drop(held);
    server.wait_for_lines(3, |l| l.contains("joined thread"));
    let out = server.client(&[], b"my turn\n");
    assert_eq!(out.stdout, b"my turn\n", "{}", stderr_text(&out));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{:?}", server.log);
}

#[test]
fn prefork_serves_with_the_workers_it_has_when_it_cannot_fork_more() {
    // Two processes for the user: the parent and one worker of two.
    let test = "prefork_serves_with_the_workers_it_has_when_it_cannot_fork_more";
    let Some((mut server, _binary)) =
        start_limited(test, 60_012, 2, &["--mode", "prefork", "--workers", "2"])
    else {
        return;
    };
    server.wait_for_line(|l| l.contains("cannot fork a worker"));
    let out = server.client(&[], b"one worker is enough\n");
    assert_eq!(out.stdout, b"one worker is enough\n", "{}", stderr_text(&out));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{:?}", server.log);
}
