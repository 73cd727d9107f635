//! What the integration tests share: starting the real `TCPechod` and
//! `TCPecho` binaries on loopback, reading the server's log as it is
//! written, and looking at its processes, descriptors and sockets in /proc.
//!
//! Every wait is bounded by [`TIMEOUT`] and waits for a condition, never for
//! a fixed time. Every server runs in a process group of its own, which
//! [`Server`]'s `Drop` kills whole, so no test leaves a process behind, even
//! when it fails.

#![allow(dead_code)] // each test file uses a different part of this module

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The server binary under test.
pub const SERVER: &str = env!("CARGO_BIN_EXE_TCPechod");
/// The client binary under test.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_TCPecho");
/// The longest any single wait of a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `TCPechod`, with its log.
pub struct Server {
    child: Option<Child>,
    /// Its process ID (also its process group).
    pub pid: i32,
    /// The port it listens on, read from its first log line.
    pub port: u16,
    lines: Receiver<String>,
    /// Every log line read so far.
    pub log: Vec<String>,
    /// The server died before its children (a test killed it).
    orphans_possible: bool,
}

impl Server {
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

    fn spawn(command: &mut Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn TCPechod");
        let stderr = child.stderr.take().expect("server stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(line) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let pid = child.id() as i32;
        let mut server =
            Server { child: Some(child), pid, port: 0, lines, log: Vec::new(), orphans_possible: false };
        let first = server.wait_for_line(|l| l.contains("listening on"));
        assert_eq!(server.log.len(), 1, "`listening on` must be the first line: {:?}", server.log);
        assert!(first.starts_with(&format!("[parent {pid}] listening on ")), "{first}");
        server.port = first.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in first line");
        server
    }

    /// Reads log lines until one satisfies `wanted`, and returns it.
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.log.iter().find(|l| wanted(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let line = self.next_line(deadline);
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Reads log lines until `count` lines in all satisfy `wanted`.
    pub fn wait_for_lines(&mut self, count: usize, wanted: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while self.log.iter().filter(|l| wanted(l)).count() < count {
            self.next_line(deadline);
        }
    }

    /// The next line of the log, waited for until `deadline`.
    fn next_line(&mut self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.log.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no such log line in time; log so far:\n{}", self.log.join("\n"))
            }
            Err(RecvTimeoutError::Disconnected) => panic!("server log ended; log:\n{}", self.log.join("\n")),
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
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("server did not exit in time; log:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// The summary line of a graceful shutdown, parsed.
    pub fn summary(&self) -> Summary {
        let line = self
            .log
            .iter()
            .find(|l| l.contains("shutdown: "))
            .unwrap_or_else(|| panic!("no summary in log:\n{}", self.log.join("\n")));
        parse_summary(line)
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

    /// Number of open descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid)).expect("read /proc/PID/fd").count()
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
        let sock = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to server");
        sock.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
        sock.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
        sock
    }

    /// Runs `TCPecho 127.0.0.1 PORT ARGS...` against this server.
    pub fn client(&self, args: &[&str], input: &[u8]) -> Output {
        let port = self.port.to_string();
        let mut full: Vec<&str> = args.to_vec();
        full.push("127.0.0.1");
        full.push(&port);
        run_client(&full, input)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole process group: the server and all its children, also
        // children orphaned by a test that killed the server itself.
        if self.child.is_some() || self.orphans_possible {
            signal(-self.pid, libc::SIGKILL);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

pub use tcpechod::server::Summary;

/// Reads `[parent N] shutdown: accepted=A reaped=R sigpipe=S killed=K`.
fn parse_summary(line: &str) -> Summary {
    let field = |name: &str| -> u64 {
        let start =
            line.find(&format!("{name}=")).unwrap_or_else(|| panic!("{name} in {line}")) + name.len() + 1;
        line[start..].split_whitespace().next().and_then(|v| v.parse().ok()).expect("number")
    };
    Summary {
        accepted: field("accepted"),
        reaped: field("reaped"),
        sigpipe: field("sigpipe"),
        killed: field("killed"),
    }
}

/// One process as /proc/PID/stat shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
}

impl Proc {
    /// Reads /proc/PID/stat; None if the process is gone.
    pub fn read(pid: i32) -> Option<Proc> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        let pgrp = fields.next()?.parse().ok()?;
        Some(Proc { pid, state, ppid, pgrp })
    }

    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
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

/// Every process in /proc.
pub fn all_processes() -> Vec<Proc> {
    fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(Proc::read)
        .collect()
}

/// The children of `pid`.
pub fn children_of(pid: i32) -> Vec<Proc> {
    all_processes().into_iter().filter(|p| p.ppid == pid).collect()
}

/// Processes still in process group `pgrp` (a server's, after it exited).
pub fn processes_in_group(pgrp: i32) -> Vec<Proc> {
    all_processes().into_iter().filter(|p| p.pgrp == pgrp).collect()
}

/// One line of /proc/net/tcp (IPv4 sockets).
#[derive(Debug, Clone)]
pub struct TcpEntry {
    pub local_port: u16,
    pub remote_port: u16,
    /// The kernel's TCP state: 0x01 ESTABLISHED, 0x06 TIME_WAIT, 0x08 CLOSE_WAIT, 0x0A LISTEN...
    pub state: u8,
    /// Bytes sent and not yet acknowledged by the peer.
    pub tx_queue: u64,
    /// Bytes received and not yet read by the application (for a LISTEN
    /// socket: connections waiting to be accepted).
    pub rx_queue: u64,
    pub inode: u64,
}

pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_LISTEN: u8 = 0x0A;

/// Every IPv4 TCP socket of this network namespace.
pub fn tcp_table() -> Vec<TcpEntry> {
    let text = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next().unwrap_or(""), 16).unwrap_or(0);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some(TcpEntry {
                local_port: port(f.get(1)?),
                remote_port: port(f.get(2)?),
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                tx_queue: u64::from_str_radix(tx, 16).ok()?,
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Retries `check` until it returns Some, for at most [`TIMEOUT`]. Used for
/// what can only be observed by looking again (/proc), with a short pause
/// between looks.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Sends a signal to a process (negative `pid`: a process group).
pub fn signal(pid: i32, sig: i32) {
    let sig = nix::sys::signal::Signal::try_from(sig).expect("a known signal");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
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

/// A test-side server on 127.0.0.1 that accepts one connection and runs
/// `serve` on it in a thread. Returns its port and a channel that receives
/// what `serve` returned (or disconnects if it failed or no client came).
pub fn one_shot_server<T: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (String, Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let port = listener.local_addr().expect("local address").port().to_string();
    listener.set_nonblocking(true).expect("non-blocking listener");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let sock = wait_until("a client", || listener.accept().ok().map(|(sock, _)| sock));
        sock.set_nonblocking(false).expect("blocking socket");
        sock.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
        let _ = tx.send(serve(sock));
    });
    (port, rx)
}

/// A process that is killed (and waited for) when the test lets go of it,
/// even when the test fails first.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small deterministic generator (xorshift): sizes, contents and
/// choices that differ from one use to the next and are the same from run
/// to run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// True `in_ten` times out of ten.
    pub fn chance(&mut self, in_ten: u64) -> bool {
        self.below(10) < in_ten
    }
}

/// Waits until the server has read what `sock` sent: the data left the
/// client (acknowledged) and sits in no receive queue.
pub fn wait_until_read(sock: &TcpStream, server_port: u16) {
    let local = sock.local_addr().unwrap().port();
    wait_until("the server to read the data", || {
        let table = tcp_table();
        let ours = table.iter().find(|e| e.local_port == local && e.remote_port == server_port)?;
        let theirs = table.iter().find(|e| e.local_port == server_port && e.remote_port == local)?;
        (ours.tx_queue == 0 && theirs.rx_queue == 0).then_some(())
    })
}

/// A client that sends and never reads back, with a tiny receive buffer:
/// the server can send it almost nothing, gets stuck writing its echo (or,
/// the poll server, stops reading when its buffer for this client is
/// full) and stops taking data. Returns once the client's sending stalled.
pub fn non_reading_client(port: u16) -> TcpStream {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::{AsFd, AsRawFd};

    // CLOEXEC: a server that another test starts meanwhile must not inherit it.
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &2048).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    let sock = TcpStream::from(fd);
    sock.set_nonblocking(true).unwrap();
    let chunk = vec![b'g'; 64 * 1024];
    let mut writer = &sock;
    wait_until("the server to stop taking data", || {
        loop {
            match writer.write(&chunk) {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("non-reading client: {err}"),
            }
        }
        // Stalled: the socket does not become writable again for a while.
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
        (poll(&mut fds, PollTimeout::from(300u16)).unwrap() == 0).then_some(())
    });
    sock
}

/// Random bytes from the kernel.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    bytes
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
