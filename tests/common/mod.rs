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

/// The names of every server model, from the server's own table: a new
/// model is tested by every test that loops over them.
pub fn modes() -> impl Iterator<Item = &'static str> {
    tcpechod::models::MODELS.iter().map(|model| model.name)
}

/// The server binary under test: the one cargo built for these tests, or,
/// for the benchmark's tests (another package of the workspace, which
/// shares this module), the one that `make` builds.
pub const SERVER: &str = match option_env!("CARGO_BIN_EXE_TCPechod") {
    Some(path) => path,
    None => concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/TCPechod"),
};
/// The client binary under test (the same way).
pub const CLIENT: &str = match option_env!("CARGO_BIN_EXE_TCPecho") {
    Some(path) => path,
    None => concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/TCPecho"),
};
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

    /// Whether every thread of the server and of its children sleeps
    /// (state S in /proc/PID/task/TID/stat, or a zombie): nobody is
    /// running, or about to run.
    pub fn all_asleep(&self) -> bool {
        let mut pids = vec![self.pid];
        pids.extend(self.children().iter().map(|p| p.pid));
        pids.iter().all(|pid| {
            let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
                return true; // gone meanwhile
            };
            tasks.filter_map(|t| t.ok()).all(|task| {
                let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                let state = stat.rfind(") ").and_then(|end| stat[end + 2..].chars().next());
                matches!(state, None | Some('S' | 'Z'))
            })
        })
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

pub use tcpechod::server::summary::Summary;

/// Reads `[parent N] shutdown: accepted=A reaped=R sigpipe=S cut=C killed=K`.
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
        cut: field("cut"),
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

/// The top of the repository: the folder of the crate under test, or the
/// one above it for the crates beside the lab's (bench/, teacher/).
pub fn repo_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.join("labs").is_dir() {
        true => manifest.to_path_buf(),
        false => manifest.parent().expect("a folder above the crate").to_path_buf(),
    }
}

/// A copy of the student's crate (labs/student, its sources only) at `to`,
/// and of the checker (labs/checker) beside it, at `to/../checker`, where
/// the student's Makefile builds it from.
pub fn copy_student_crate(to: &std::path::Path) {
    let checker = to.parent().expect("a folder above the student's crate").join("checker");
    for (from, to, files) in [
        ("labs/student", to, &["Cargo.toml", "Cargo.lock", "Makefile", "rustfmt.toml", "src/main.rs"][..]),
        ("labs/checker", checker.as_path(), &["Cargo.toml", "Cargo.lock", "rustfmt.toml", "src/main.rs"][..]),
    ] {
        let from = repo_root().join(from);
        fs::create_dir_all(to.join("src")).unwrap();
        for file in files {
            fs::copy(from.join(file), to.join(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
        }
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

/// A client that sends and never reads back, with a tiny receive buffer,
/// until the server can take nothing more from it. Returns then.
///
/// "Nothing more" is seen from the kernel's side, whatever the buffer
/// sizes of this machine: the server's end of the connection holds data
/// the server does not read (its Recv-Q, in /proc/net/tcp) and echo the
/// client does not take (its Send-Q), while every thread of every process
/// of the server sleeps, and none of that changes between two looks while
/// the client's sends keep failing with EAGAIN. A blocking server is then
/// stuck in write (its send buffer full, the client's window closed); the
/// poll server has stopped reading this client (its buffer for it full).
/// Neither can move again until the client reads.
pub fn non_reading_client(server: &Server) -> TcpStream {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;

    // CLOEXEC: a server that another test starts meanwhile must not inherit it.
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &2048).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, server.port)).unwrap();
    let sock = TcpStream::from(fd);
    sock.set_nonblocking(true).unwrap();
    let local = sock.local_addr().unwrap().port();
    let chunk = vec![b'g'; 64 * 1024];
    let mut writer = &sock;
    let mut last_look: Option<(u64, u64)> = None;
    wait_until("the server to stop taking data", || {
        let mut sent = false;
        loop {
            match writer.write(&chunk) {
                Ok(_) => sent = true,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                // The server closed the connection (--idle-timeout, say):
                // it takes nothing more indeed; the caller sees what it did.
                Err(_) => return Some(()),
            }
        }
        let side = tcp_table().into_iter().find(|e| e.local_port == server.port && e.remote_port == local);
        let look = side
            .filter(|e| !sent && e.rx_queue > 0 && e.tx_queue > 0 && server.all_asleep())
            .map(|e| (e.rx_queue, e.tx_queue));
        let stuck = look.is_some() && look == last_look;
        last_look = look;
        stuck.then_some(())
    });
    sock
}

/// A client socket that reads until the server closes its side, then
/// closes its own, in a thread of its own, as a well-behaved client does
/// (the server waits for that FIN when it stops). Returns what it read.
pub fn close_on_eof(mut sock: TcpStream) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut echo = Vec::new();
        let _ = sock.read_to_end(&mut echo);
        echo
    })
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

/// The byte at `offset` of the stream of client `seed`: what a
/// [`streaming_client`] sends, and so what it checks its echo against.
fn stream_byte(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(101)) % 251) as u8
}

/// How a [`streaming_client`] ended.
#[derive(Debug, Clone)]
pub struct StreamEnd {
    /// Its local port, by which the server's log names it.
    pub port: u16,
    pub sent: u64,
    pub received: u64,
    /// Every byte received was the byte sent at that place.
    pub intact: bool,
    /// How reading ended: None for a clean end of file (the server's FIN),
    /// or the error (a reset, say).
    pub read_error: Option<String>,
}

/// A client that sends a stream of bytes as fast as the server takes them
/// (up to `limit`), while a second thread reads the echo and checks it
/// byte for byte. When the server ends the echo (end of file), it stops
/// sending too, as TCPecho does. `received` counts the bytes of echo so
/// far, for the test to watch.
pub struct StreamingClient {
    pub port: u16,
    pub received: std::sync::Arc<std::sync::atomic::AtomicU64>,
    reader: thread::JoinHandle<(u64, bool, Option<String>)>,
    writer: thread::JoinHandle<u64>,
}

impl StreamingClient {
    /// Waits for both threads: the server must have ended the connection.
    pub fn end(self) -> StreamEnd {
        let (received, intact, read_error) = self.reader.join().expect("reader thread");
        let sent = self.writer.join().expect("writer thread");
        StreamEnd { port: self.port, sent, received, intact, read_error }
    }
}

pub fn streaming_client(server_port: u16, seed: u64, limit: u64) -> StreamingClient {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let sock = TcpStream::connect(("127.0.0.1", server_port)).expect("connect");
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut writing = sock.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut sent: u64 = 0;
        while sent < limit {
            for (i, byte) in chunk.iter_mut().enumerate() {
                *byte = stream_byte(seed, sent + i as u64);
            }
            match writing.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(_) => break, // the server ended the connection
            }
        }
        sent
    });
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let mut reading = sock;
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got: u64 = 0;
        let mut intact = true;
        let error = loop {
            match reading.read(&mut buf) {
                Ok(0) => {
                    let _ = reading.shutdown(std::net::Shutdown::Write);
                    break None;
                }
                Ok(n) => {
                    intact &=
                        buf[..n].iter().enumerate().all(|(i, &b)| b == stream_byte(seed, got + i as u64));
                    got += n as u64;
                    counter.store(got, Ordering::Relaxed);
                }
                Err(err) => {
                    let _ = reading.shutdown(std::net::Shutdown::Both);
                    break Some(err.to_string());
                }
            }
        };
        (got, intact, error)
    });
    StreamingClient { port, received, reader, writer }
}

/// The bytes the server says it echoed to each client, by the client's
/// port, read from its log: the `finished: N bytes echoed` line of the
/// child, worker, thread or process that served it, matched to the
/// `accepted ADDR` (or `serving ADDR`) line before it.
pub fn echoed_by_client(log: &[String]) -> std::collections::HashMap<u16, u64> {
    use std::collections::HashMap;
    let port_of =
        |addr: &str| addr.rsplit(':').next().and_then(|p| p.trim_end_matches(',').parse::<u16>().ok());
    let number_before = |text: &str, word: &str| -> Option<u64> {
        let before = &text[..text.find(word)?];
        before.split_whitespace().last()?.parse().ok()
    };
    let mut serving: HashMap<String, u16> = HashMap::new();
    let mut echoed = HashMap::new();
    for line in log {
        let Some(end) = line.find("] ") else { continue };
        let (tag, text) = (&line[..=end], &line[end + 2..]);
        let words: Vec<&str> = text.split_whitespace().collect();
        if let Some(rest) = text.strip_prefix("accepted ").or_else(|| text.strip_prefix("serving ")) {
            let Some(port) = rest.split_whitespace().next().and_then(port_of) else { continue };
            match words.iter().position(|w| *w == "child") {
                Some(i) if words.get(i - 1) == Some(&"forked") => {
                    serving.insert(format!("[child {}]", words[i + 1]), port);
                }
                _ => {
                    serving.insert(tag.to_string(), port);
                }
            }
        } else if let Some(rest) = text.strip_prefix("finished ") {
            // The poll server: "finished ADDR: N bytes echoed (...)".
            let (addr, rest) = rest.split_once(": ").unwrap_or(("", ""));
            if let (Some(port), Some(n)) = (port_of(addr), number_before(rest, " bytes echoed")) {
                echoed.insert(port, n);
            }
        } else if let Some(rest) = text.strip_prefix("finished: ") {
            if let (Some(&port), Some(n)) = (serving.get(tag), number_before(rest, " bytes echoed")) {
                echoed.insert(port, n);
            }
        }
    }
    echoed
}

/// The server binary where any user may run it (a fresh folder under the
/// temporary directory, removed with the value), for tests that run the
/// server as an unprivileged user (setpriv, unshare --setuid).
///
/// A hard link when the file system allows: a copy is written through a
/// descriptor, and a process forked meanwhile by another test thread
/// inherits it until it execs, so that executing the copy at once can
/// fail with "Text file busy" (ETXTBSY). A link has no such descriptor.
/// The copy, where linking is refused, is retried for that reason.
pub struct BinaryForAnyone {
    dir: std::path::PathBuf,
    pub path: String,
}

impl BinaryForAnyone {
    pub fn new(tag: &str) -> BinaryForAnyone {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tcpechod-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("TCPechod");
        if fs::hard_link(SERVER, &path).is_err() {
            fs::copy(SERVER, &path).unwrap();
            // Wait until no process holds a descriptor that writes to it.
            wait_until("the copy to be executable", || {
                Command::new(&path)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .ok()
                    .filter(|s| s.success())
            });
        }
        BinaryForAnyone { dir, path: path.to_string_lossy().into_owned() }
    }
}

impl Drop for BinaryForAnyone {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
