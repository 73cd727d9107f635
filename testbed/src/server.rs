//! A server started from outside, as the lab starts one: in a process
//! group of its own, its log (stderr) read line by line as it is written,
//! its port taken from its first line, `listening on ADDR:PORT`. Dropped,
//! it takes its whole group with it (the server and every child it left),
//! so that nothing outlives a test or a measurement, even one that fails.
//!
//! [`Server::launch`] starts any such server and says what went wrong as
//! an error (the benchmark's servers); [`Server::start`] and its relatives
//! start `TCPechod` for a test, which fails if it does not start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::commands::{run_client, signal};
use crate::log::{listening_port, parse_summary, Summary};
use crate::procfs::{children_of, fd_count, processes_in_group, threads_of, Proc};
use crate::tcp::{tcp_table, TCP_LISTEN};
use crate::wait::{poll_until, wait_until, TIMEOUT};
use crate::SERVER;

/// A running server, with its log.
pub struct Server {
    child: Option<Child>,
    /// Its process ID (also its process group).
    pub pid: i32,
    /// The port it listens on, read from its first log line.
    pub port: u16,
    lines: Option<Receiver<String>>,
    /// Every log line read so far.
    pub log: Vec<String>,
    /// The server died before its children (a test killed it).
    orphans_possible: bool,
}

impl Server {
    /// Starts `command` (stdin and stdout to /dev/null, stderr read here)
    /// in a process group of its own, and waits, for at most [`TIMEOUT`],
    /// for its first line, which must say `listening on ADDR:PORT`. If it
    /// does not start, nothing of it is left running.
    pub fn launch(command: &mut Command) -> Result<Server> {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
        let mut child = command.spawn().with_context(|| format!("cannot run {:?}", command.get_program()))?;
        let lines = read_lines(child.stderr.take());
        // From here on, a failure drops `server`, which kills its group.
        let mut server = Server::new(child, None);
        let first = match lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => bail!("it said nothing in {} s", TIMEOUT.as_secs()),
            Err(RecvTimeoutError::Disconnected) => bail!("it ended without a word"),
        };
        server.lines = Some(lines);
        server.log.push(first.clone());
        match listening_port(&first) {
            Some(port) => server.port = port,
            None => bail!("its first line is not `listening on ADDR:PORT`: {first:?}"),
        }
        Ok(server)
    }

    /// Starts `command` (a server that does not say where it listens, told
    /// its port) in a process group of its own, with no log, and waits,
    /// for at most [`TIMEOUT`], until `port` of 127.0.0.1 takes connections.
    pub fn launch_on(command: &mut Command, port: u16) -> Result<Server> {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        let child = command.spawn().with_context(|| format!("cannot run {:?}", command.get_program()))?;
        let mut server = Server::new(child, None);
        server.port = port;
        let listening = poll_until(TIMEOUT, || TcpStream::connect(("127.0.0.1", port)).ok());
        if listening.is_none() {
            bail!("nothing listens on port {port}");
        }
        Ok(server)
    }

    fn new(child: Child, lines: Option<Receiver<String>>) -> Server {
        let pid = child.id() as i32;
        Server { child: Some(child), pid, port: 0, lines, log: Vec::new(), orphans_possible: false }
    }

    /// Starts `TCPechod --bind 127.0.0.1 ARGS... 0` and waits for its
    /// `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        let mut full = vec!["--bind", "127.0.0.1"];
        full.extend_from_slice(args);
        full.push("0");
        Server::start_raw(&full)
    }

    /// Starts `PROGRAM PREFIX... --bind 127.0.0.1 ARGS... 0`, for a program
    /// that sets something up and then executes TCPechod in its place
    /// (prlimit, setpriv): the process keeps its PID.
    pub fn start_with(program: &str, prefix: &[&str], args: &[&str]) -> Server {
        let mut full: Vec<&str> = prefix.to_vec();
        full.extend_from_slice(&["--bind", "127.0.0.1"]);
        full.extend_from_slice(args);
        full.push("0");
        Server::spawn(Command::new(program).args(full))
    }

    /// Starts `TCPechod ARGS...` as given and waits for `listening on`.
    pub fn start_raw(args: &[&str]) -> Server {
        Server::spawn(Command::new(SERVER).args(args))
    }

    /// Starts `command`, which runs TCPechod in the process it starts, and
    /// checks its first line: `[parent PID] listening on ADDR:PORT`.
    pub fn spawn(command: &mut Command) -> Server {
        let server = Server::launch(command).unwrap_or_else(|err| panic!("{err:#}"));
        let first = &server.log[0];
        assert!(first.starts_with(&format!("[parent {}] listening on ", server.pid)), "{first}");
        server
    }

    /// Reads log lines until one satisfies `wanted`, and returns it.
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.log.iter().find(|l| wanted(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let line = self.next_line(deadline).unwrap_or_else(|err| panic!("{err:#}"));
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Reads log lines until `count` lines in all satisfy `wanted`.
    pub fn wait_for_lines(&mut self, count: usize, wanted: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while self.log.iter().filter(|l| wanted(l)).count() < count {
            self.next_line(deadline).unwrap_or_else(|err| panic!("{err:#}"));
        }
    }

    /// The next line of the log, waited for until `deadline`.
    fn next_line(&mut self, deadline: Instant) -> Result<String> {
        let lines = self.lines.as_ref().context("this server's log is not read")?;
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                self.log.push(line.clone());
                Ok(line)
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!("no such log line in time; log so far:\n{}", self.log.join("\n"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the server's log ended; log:\n{}", self.log.join("\n"))
            }
        }
    }

    /// Log lines so far that contain `text`.
    pub fn lines_with(&self, text: &str) -> Vec<&String> {
        self.log.iter().filter(|l| l.contains(text)).collect()
    }

    /// Sends `sig` to the server process (not to its children).
    pub fn signal(&self, sig: i32) {
        signal(self.pid, sig);
    }

    /// Sends `sig` and waits until the server and every process that shares
    /// its log (its children) have exited: their stderr pipe reaches end of
    /// file. Returns the server's exit status; the full log is in `self.log`.
    pub fn stop_with(&mut self, sig: i32) -> ExitStatus {
        self.signal(sig);
        self.wait_for_exit()
    }

    /// Sends `sig` and waits for the server process itself to exit (its
    /// children may live on); returns its status.
    pub fn wait_for_parent_exit_after(&mut self, sig: i32) -> ExitStatus {
        self.signal(sig);
        let child = self.child.as_mut().expect("server already waited for");
        let status = wait_until("the server to exit", || child.try_wait().expect("try_wait"));
        self.child = None;
        self.orphans_possible = true;
        status
    }

    /// Waits for the end of the log (every process of the server gone) and
    /// for the server's exit status.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        self.wait_for_exit_of_all();
        let mut child = self.child.take().expect("server already waited for");
        child.wait().expect("wait for server")
    }

    /// Waits until no process holds the server's log any more: the server
    /// and every child of it have exited.
    pub fn wait_for_exit_of_all(&mut self) {
        let lines = self.lines.as_ref().expect("this server's log is read");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("server did not exit in time; log:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// Sends `sig`, waits up to `grace` for the server process to exit,
    /// then kills whatever is left of its group. Never fails: for a caller
    /// that is done with the server whatever state it is in (the benchmark).
    pub fn end(mut self, sig: i32, grace: Duration) {
        self.signal(sig);
        let exited = match self.child.as_mut() {
            Some(child) => poll_until(grace, || child.try_wait().ok().flatten()).is_some(),
            None => false,
        };
        if exited {
            self.child = None;
        }
        self.orphans_possible = true;
    }

    /// The summary line of a graceful shutdown, parsed.
    pub fn summary(&self) -> Summary {
        self.log
            .iter()
            .find_map(|l| parse_summary(l))
            .unwrap_or_else(|| panic!("no summary in log:\n{}", self.log.join("\n")))
    }

    /// Its children, read from /proc.
    pub fn children(&self) -> Vec<Proc> {
        children_of(self.pid)
    }

    /// Waits until the server has exactly `count` children in /proc
    /// satisfying `which` (zombies, say); returns them.
    pub fn wait_for_children(&self, count: usize, which: impl Fn(&Proc) -> bool) -> Vec<Proc> {
        wait_until(&format!("{count} children of {}", self.pid), || {
            let found: Vec<Proc> = self.children().into_iter().filter(|p| which(p)).collect();
            (found.len() == count).then_some(found)
        })
    }

    /// Whether every thread of the server and of its children sleeps
    /// (state S in /proc/PID/task/TID/stat, or a zombie): nobody is
    /// running, or about to run.
    pub fn all_asleep(&self) -> bool {
        let mut pids = vec![self.pid];
        pids.extend(self.children().iter().map(|p| p.pid));
        pids.iter().flat_map(|&pid| threads_of(pid)).all(|task| matches!(task.state, 'S' | 'Z'))
    }

    /// Waits until `count` connections wait in msock's queue: the kernel
    /// completed their handshake, and nobody has accepted them yet (the
    /// rx_queue of the LISTEN socket in /proc/net/tcp).
    pub fn wait_for_queued(&self, count: u64) {
        wait_until(&format!("{count} connections queued"), || {
            tcp_table()
                .into_iter()
                .find(|e| e.state == TCP_LISTEN && e.local_port == self.port && e.rx_queue == count)
        });
    }

    /// Number of open descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid)
    }

    /// A client that sent one byte and got it back: the server is serving
    /// it (a child, a worker, a thread is busy with it), and it stays open.
    pub fn served_client(&self) -> TcpStream {
        let mut sock = self.connect();
        sock.write_all(b"x").expect("send");
        let mut byte = [0u8; 1];
        sock.read_exact(&mut byte).expect("echo");
        sock
    }

    /// Connects a plain test-side socket to the server.
    pub fn connect(&self) -> TcpStream {
        connect(("127.0.0.1", self.port))
    }

    /// Runs `TCPecho 127.0.0.1 PORT ARGS...` against this server.
    pub fn client(&self, args: &[&str], input: &[u8]) -> Output {
        let port = self.port.to_string();
        let mut full: Vec<&str> = args.to_vec();
        full.push("127.0.0.1");
        full.push(&port);
        run_client(&full, input)
    }

    /// Shows, with `first` served, that a second client waits in msock's
    /// queue, handshake done and not accepted, and is served once `first`
    /// goes: a server that serves one client at a time (the iterative
    /// model; prefork with one worker).
    pub fn serves_the_second_client_after(&mut self, first: TcpStream) {
        let mut second = self.connect();
        second.write_all(b"second\n").expect("send");
        self.wait_for_queued(1);
        drop(first);
        let mut buf = [0u8; 7];
        second.read_exact(&mut buf).expect("echo");
        assert_eq!(&buf, b"second\n");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole process group: the server and all its children, also
        // children orphaned by a test that killed the server itself.
        match self.child.take() {
            // Not reaped: the group's ID is still the server's own.
            Some(mut child) => {
                signal(-self.pid, libc::SIGKILL);
                let _ = child.wait();
            }
            // Reaped: children still in the group keep its ID from being
            // given to a new process; with none left, it may be another's.
            None if self.orphans_possible && !processes_in_group(self.pid).is_empty() => {
                signal(-self.pid, libc::SIGKILL);
            }
            None => {}
        }
    }
}

/// Reads `stderr` line by line in a thread of its own, into a channel
/// that closes when every process holding the pipe has let go of it.
fn read_lines(stderr: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    if let Some(stderr) = stderr {
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    lines
}

/// A test-side socket connected to `addr`, with read and write timeouts
/// of [`TIMEOUT`]: a test that waits on it is bounded.
pub fn connect(addr: impl ToSocketAddrs) -> TcpStream {
    let sock = TcpStream::connect(addr).expect("connect to server");
    sock.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    sock.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    sock
}
