//! TCPecho, the echo client: sends its standard input (or a file) to the
//! server and writes what comes back to its standard output, byte for byte.
//!
//! The C client of the lab read a line of at most 128 bytes, sent it, and
//! read it back. Here two threads do the work, so that input of any length
//! and any content goes through without a deadlock: the main thread sends
//! while a reader thread copies the echo to stdout. (With one thread, a
//! large input would fill both directions of the connection: the client
//! blocked sending, the server blocked sending back what nobody reads.)
//! When the input ends, the client half-closes the connection (shutdown
//! SHUT_WR: "no more data from me") and waits for the echo still due.
//!
//! What it checks: that as many bytes came back as were sent, and that
//! they are the same bytes. Keeping a copy of every byte not yet echoed
//! would take memory without bound (a server may read and never echo), so
//! each thread feeds its stream to a hash as it goes (FNV-1a, eight 64-bit
//! hashes side by side, see [`hash`]), and when all of the echo is back
//! the two must be equal. One changed byte always changes the hash;
//! several changes could cancel out only by a rare coincidence (it is a
//! checksum against mistakes, not against a server that means to fool
//! it). An echo cut short is reported by its count, without comparing its
//! bytes.
//!
//! If the server ends the echo first (it closes the connection), the
//! client stops at once, even while its input is quiet (a terminal nobody
//! types in), and says how much came back: the rest of the input is not
//! sent. (With `--no-read` nothing reads the connection, so the close is
//! noticed only when a send fails.)
//!
//! It ends gracefully on SIGTERM or SIGINT, as the server does: it stops
//! sending, half-closes, waits up to `--grace` for the echo still due,
//! closes the socket, and says what it sent, what came back and what it
//! closed. The main thread never blocks where a signal could not wake it:
//! it sleeps in poll(2) on the wake pipe (which the handler and the reader
//! thread write to) beside whatever it waits for (the input, room to send,
//! the end of an `--interval` or `--hold`). A stop signal before the
//! connection is made (during `--retry`) ends the run too: nothing was
//! sent, and the exit status says the run was cut short.

pub mod connect;
pub mod hash;

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SaFlags, SigHandler, Signal};
use nix::sys::socket::{send, MsgFlags};

use self::hash::Fnv1a;
use crate::notice;
use crate::support::log::{reason, say};
use crate::support::signals;
use crate::support::wake::{timeout_for, wake_main_loop, WakePipe};

/// Bytes moved per read of the input or of the socket.
const CHUNK: usize = 64 * 1024;

/// What the command line of `TCPecho` decides.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Pause between lines of input (`--interval`); zero sends as it reads.
    pub interval: Duration,
    /// Read the echo back (off with `--no-read`: send, then close).
    pub read_back: bool,
    /// Keep the connection open this long after the input ends (`--hold`).
    pub hold: Duration,
    /// After SIGTERM or SIGINT, how long to wait for the echo still due.
    pub grace: Duration,
    /// Read this file instead of standard input (`--input`).
    pub input: Option<std::path::PathBuf>,
    /// Try to connect again for this long when it fails (`--retry`: a
    /// server that is still starting, as in compose.yaml).
    pub retry: Duration,
}

/// How a run ended, when nothing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every byte sent came back, unchanged (or, with `--no-read`,
    /// everything was sent).
    Echoed,
    /// A stop signal ended the run; `complete`: the client had connected
    /// and the echo of everything sent came back within the grace period.
    Stopped { complete: bool },
}

/// Connects, sends the input, prints the echo; an error says what failed.
pub fn run(opts: &Options) -> Result<Ended> {
    let input = Input::open(opts.input.as_deref())?;
    let wake = WakePipe::new()?;
    install_stop_handlers()?;
    let Some(sock) = connect(opts, &wake)? else {
        notice!("stopped before the connection was made: nothing was sent");
        return Ok(Ended::Stopped { complete: false });
    };
    let server = sock.peer_addr().context("getpeername")?;
    let progress = Arc::new(Progress::default());
    let reader = match opts.read_back {
        true => Some(spawn_reader(sock.try_clone().context("dup socket")?, Arc::clone(&progress))?),
        false => None,
    };
    let client = Client { sock, server, wake, progress, opts, sent_hash: Cell::new(Fnv1a::START) };

    let sending = client.send(&input);
    if sending.is_ok() {
        client.hold();
    }
    // Half-close: the server reads end of file, echoes what is left and closes.
    let _ = client.sock.shutdown(Shutdown::Write);
    if let Some(sig) = signals::terminate_requested() {
        return client.stop(sig, input, reader);
    }
    if reader.is_some() {
        client.wait_for_echo(None);
    }
    if let Some(sig) = signals::terminate_requested() {
        return client.stop(sig, input, reader);
    }
    client.check(sending)
}

/// Connects, trying again every 200 ms for `--retry` seconds; None if a
/// stop signal came first.
fn connect(opts: &Options, wake: &WakePipe) -> Result<Option<TcpStream>> {
    let deadline = Instant::now() + opts.retry;
    loop {
        match connect::connect_tcp(&opts.host, opts.port) {
            Ok(sock) => return Ok(Some(sock)),
            Err(err) if Instant::now() >= deadline => return Err(err),
            Err(_) => {}
        }
        let mut fds = [PollFd::new(wake.read_end(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout_for(Duration::from_millis(200)));
        if signals::terminate_requested().is_some() {
            return Ok(None);
        }
    }
}

/// The input: standard input, or a file.
enum Input {
    Stdin(io::Stdin),
    File(File),
}

impl Input {
    /// Opens the input and makes sure it can be read, before anything is
    /// connected: a directory opens, but its first read fails.
    fn open(path: Option<&Path>) -> Result<Input> {
        let (input, name) = match path {
            None => (Input::Stdin(io::stdin()), "standard input".to_string()),
            Some(path) => match File::open(path) {
                Ok(file) => (Input::File(file), path.display().to_string()),
                Err(err) => bail!("cannot open {}: {}", path.display(), reason(&err)),
            },
        };
        let kind = nix::sys::stat::fstat(input.fd()).map(|st| st.st_mode & libc::S_IFMT);
        if kind == Ok(libc::S_IFDIR) {
            bail!("cannot read {name}: it is a directory");
        }
        Ok(input)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Input::Stdin(stdin) => stdin.as_fd(),
            Input::File(file) => file.as_fd(),
        }
    }

    /// Reads straight from the descriptor (std's stdin buffer would hide
    /// input from poll).
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        nix::unistd::read(self.fd(), buf).map_err(io::Error::from)
    }
}

/// The connection and what the main thread needs beside it.
struct Client<'a> {
    sock: TcpStream,
    server: SocketAddr,
    wake: WakePipe,
    progress: Arc<Progress>,
    opts: &'a Options,
    /// The hash of every byte sent so far (only this thread sends).
    sent_hash: Cell<Fnv1a>,
}

/// What the main thread waits for in poll, beside the wake pipe.
enum Event<'a> {
    /// Only a signal, or the reader thread, or the timeout.
    Nothing,
    Readable(BorrowedFd<'a>),
    Writable(BorrowedFd<'a>),
}

impl Client<'_> {
    /// Sleeps in poll(2) until `event`, a byte on the wake pipe (a signal,
    /// or news from the reader thread), or `timeout`. True when `event` came.
    fn wait(&self, event: Event<'_>, timeout: PollTimeout) -> io::Result<bool> {
        let mut fds = vec![PollFd::new(self.wake.read_end(), PollFlags::POLLIN)];
        match event {
            Event::Nothing => {}
            Event::Readable(fd) => fds.push(PollFd::new(fd, PollFlags::POLLIN)),
            Event::Writable(fd) => fds.push(PollFd::new(fd, PollFlags::POLLOUT)),
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            self.wake.drain();
        }
        Ok(fds.get(1).and_then(|fd| fd.revents()).is_some_and(|r| !r.is_empty()))
    }

    /// `--hold`: keeps the connection open for a while, to look at it with
    /// `ss -tn` or `netstat -tn`.
    fn hold(&self) {
        if self.opts.hold.is_zero() {
            return;
        }
        let (server, secs) = (self.server, self.opts.hold.as_secs());
        match self.sock.local_addr() {
            Ok(local) => {
                say(&format!("TCPecho: holding the connection {local} -> {server} open for {secs} s\n"))
            }
            Err(_) => say(&format!("TCPecho: holding the connection to {server} open for {secs} s\n")),
        }
        self.sleep(self.opts.hold);
    }

    /// Sleeps `duration` (`--interval`, `--hold`), cut short by a stop
    /// signal or by the end of the echo: a connection the server closed
    /// is not worth holding, nor the next line worth waiting for.
    fn sleep(&self, duration: Duration) {
        let end = Instant::now() + duration;
        while signals::terminate_requested().is_none() && !self.echo_ended() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || self.wait(Event::Nothing, timeout_for(left)).is_err() {
                return;
            }
        }
    }

    /// Whether the reader thread has stopped: the server ended the echo
    /// (or the connection or standard output failed).
    fn echo_ended(&self) -> bool {
        self.progress.lock().reader_end.is_some()
    }

    /// Sends the input as it reads it, until it ends, a stop signal comes
    /// or the server ends the echo. With an `--interval`, it sends line by
    /// line and pauses before each line but the first; a line longer than
    /// the buffer goes out in pieces, so memory stays constant.
    fn send(&self, input: &Input) -> Result<(), SendError> {
        let mut buf = vec![0u8; CHUNK];
        let (mut at_line_start, mut first) = (true, true);
        loop {
            if signals::terminate_requested().is_some() {
                return Ok(());
            }
            // Once the echo has ended, the client waits for no more input
            // (from a terminal, it may never come), but it still takes
            // what is already there: the end of the input, if it came at
            // the same time as the server's close, is a normal end.
            let echo_ended = self.echo_ended();
            let timeout = if echo_ended { PollTimeout::ZERO } else { PollTimeout::NONE };
            let readable = self.wait(Event::Readable(input.fd()), timeout).map_err(SendError::Input)?;
            if !readable && echo_ended {
                return Err(SendError::EchoEnded);
            }
            if !readable {
                continue; // the wake pipe: a signal, or news from the reader
            }
            let n = match input.read(&mut buf) {
                Ok(0) => return Ok(()), // end of input
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(SendError::Input(err)),
            };
            let mut data = &buf[..n];
            while !data.is_empty() {
                let len = match self.opts.interval.is_zero() {
                    true => data.len(),
                    false => data.iter().position(|&b| b == b'\n').map_or(data.len(), |i| i + 1),
                };
                if !self.opts.interval.is_zero() && at_line_start && !first {
                    self.sleep(self.opts.interval);
                    if signals::terminate_requested().is_some() {
                        return Ok(()); // the rest of the input is not sent
                    }
                }
                self.send_all(&data[..len])?;
                at_line_start = data[len - 1] == b'\n';
                first = false;
                data = &data[len..];
            }
        }
    }

    /// Sends all of `data`, waiting for room in the socket's buffer in poll.
    /// A stop signal leaves the rest unsent.
    fn send_all(&self, mut data: &[u8]) -> Result<(), SendError> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        while !data.is_empty() && signals::terminate_requested().is_none() {
            match send(self.sock.as_raw_fd(), data, flags) {
                Ok(n) => {
                    let mut hash = self.sent_hash.get();
                    hash.add(&data[..n]);
                    self.sent_hash.set(hash);
                    self.progress.update(|t| t.sent += n as u64);
                    data = &data[n..];
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    self.wait(Event::Writable(self.sock.as_fd()), PollTimeout::NONE)
                        .map_err(SendError::Socket)?;
                }
                Err(errno) => return Err(SendError::Socket(errno.into())),
            }
        }
        Ok(())
    }

    /// Waits until every byte sent has come back, the reader stopped, or
    /// `deadline` passed (a stop signal cuts a wait without one short).
    fn wait_for_echo(&self, deadline: Option<Instant>) {
        loop {
            let done = {
                let t = self.progress.lock();
                t.received >= t.sent || t.reader_end.is_some()
            };
            let stopped = deadline.is_none() && signals::terminate_requested().is_some();
            if done || stopped {
                return;
            }
            let timeout = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => timeout_for(left),
                    _ => return,
                },
                None => PollTimeout::NONE,
            };
            if self.wait(Event::Nothing, timeout).is_err() {
                return;
            }
        }
    }

    /// The graceful end after a stop signal: the echo still due, within the
    /// grace period; then every resource closed, each said. An echo that
    /// came back whole but changed is an error, as without the signal.
    fn stop(
        self,
        sig: nix::sys::signal::Signal,
        input: Input,
        reader: Option<JoinHandle<()>>,
    ) -> Result<Ended> {
        notice!("{sig} received: no more input is sent");
        if reader.is_some() {
            self.wait_for_echo(Some(Instant::now() + self.opts.grace));
        }
        let (sent, received, received_hash) = {
            let t = self.progress.lock();
            (t.sent, t.received, t.received_hash)
        };
        let complete = !self.opts.read_back || received >= sent;
        let changed = self.opts.read_back && received == sent && received_hash != self.sent_hash.get();
        match (self.opts.read_back, complete) {
            (false, _) => notice!("sent {sent} bytes (not reading the echo: --no-read)"),
            (true, true) if changed => {
                notice!("sent {sent} bytes, and {received} came back, but not the bytes sent")
            }
            (true, true) => notice!("sent {sent} bytes, and all {received} came back"),
            (true, false) => notice!(
                "sent {sent} bytes; {received} came back, {} had not within the grace period of {} s",
                sent - received,
                self.opts.grace.as_secs_f64()
            ),
        }
        // Wakes the reader thread out of its read (end of file), then waits
        // for it: it may still be writing the echo to stdout, and if nobody
        // reads that, it could be stuck there for ever; so not for long.
        let _ = self.sock.shutdown(Shutdown::Both);
        if let Some(reader) = reader {
            let deadline = Instant::now() + self.opts.grace;
            while self.progress.lock().reader_end.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.wait(Event::Nothing, timeout_for(left)).is_err() {
                    break;
                }
            }
            match self.progress.lock().reader_end.is_some() {
                true => {
                    let _ = reader.join();
                    notice!("joined the reader thread");
                }
                false => notice!("the reader thread is stuck writing to standard output: not waited for"),
            }
        }
        let fd = self.sock.as_raw_fd();
        drop(self.sock);
        notice!("closed the socket (fd {fd})");
        if let Input::File(file) = input {
            let fd = file.as_raw_fd();
            drop(file);
            notice!("closed the input file (fd {fd})");
        }
        let (read_fd, write_fd) = self.wake.fds();
        drop(self.wake);
        notice!("closed the wake pipe (fds {read_fd} and {write_fd})");
        if changed {
            return Err(changed_echo(sent, received));
        }
        Ok(Ended::Stopped { complete })
    }

    /// After a run that no signal stopped: did every byte come back, as
    /// it was sent?
    fn check(self, sending: Result<(), SendError>) -> Result<Ended> {
        let transfer = self.progress.lock();
        let (sent, received) = (transfer.sent, transfer.received);
        if let Some(ReaderEnd::Output(err)) = &transfer.reader_end {
            bail!("cannot write to standard output: {}", reason(err));
        }
        // Before anything else: the echo that came back is wrong.
        let changed = transfer.received_hash != self.sent_hash.get();
        if self.opts.read_back && received == sent && changed {
            return Err(changed_echo(sent, received));
        }
        if let Err(err) = sending {
            // `transfer` holds the lock of `progress`, which explain takes
            // again: let go of it first, or this thread would wait for itself.
            drop(transfer);
            return Err(err.explain(self.server, &self.progress));
        }
        if !self.opts.read_back {
            return Ok(Ended::Echoed);
        }
        if received > sent {
            bail!("server {} sent {received} bytes back, more than the {sent} it was sent", self.server);
        }
        match &transfer.reader_end {
            _ if received == sent => Ok(Ended::Echoed),
            Some(ReaderEnd::Failed(err)) => {
                bail!(
                    "connection to {} failed after {received} of {sent} bytes: {}",
                    self.server,
                    reason(err)
                )
            }
            _ => bail!("server closed the connection after {received} of {sent} bytes"),
        }
    }
}

/// How far the transfer got, shared by the main and the reading thread.
#[derive(Default)]
struct Progress {
    transfer: Mutex<Transfer>,
}

#[derive(Default)]
struct Transfer {
    sent: u64,
    received: u64,
    /// The hash of every byte received so far.
    received_hash: Fnv1a,
    reader_end: Option<ReaderEnd>,
}

/// The error of an echo as long as the input but different from it.
fn changed_echo(sent: u64, received: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "the echo differs from what was sent ({sent} bytes sent, {received} came back): the server changed the bytes"
    )
}

/// Why the reading thread stopped.
enum ReaderEnd {
    /// The server closed the connection (end of file).
    Closed,
    /// Reading the socket failed (a reset, say).
    Failed(io::Error),
    /// Writing standard output failed.
    Output(io::Error),
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, Transfer> {
        // A poisoned lock only means the other thread panicked; the counts are still right.
        self.transfer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the counts, and wakes the main thread to look at them.
    fn update(&self, change: impl FnOnce(&mut Transfer)) {
        change(&mut self.lock());
        wake_main_loop();
    }
}

/// Why sending stopped early.
enum SendError {
    Input(io::Error),
    Socket(io::Error),
    /// The reader thread stopped while the input was quiet.
    EchoEnded,
}

impl SendError {
    fn explain(self, server: SocketAddr, progress: &Progress) -> anyhow::Error {
        let transfer = progress.lock();
        let (sent, received) = (transfer.sent, transfer.received);
        let closed_first = matches!(transfer.reader_end, Some(ReaderEnd::Closed));
        match self {
            SendError::Input(err) => anyhow::anyhow!("cannot read the input: {}", reason(&err)),
            SendError::Socket(_) | SendError::EchoEnded if closed_first => anyhow::anyhow!(
                "server {server} closed the connection after echoing {received} of the {sent} bytes sent; the rest of the input was not sent"
            ),
            SendError::EchoEnded => match &transfer.reader_end {
                Some(ReaderEnd::Failed(err)) => anyhow::anyhow!(
                    "connection to {server} failed after {received} of {sent} bytes: {}",
                    reason(err)
                ),
                _ => anyhow::anyhow!("the echo from {server} ended after {received} of {sent} bytes"),
            },
            SendError::Socket(err) => anyhow::anyhow!(
                "cannot send to {server} after {sent} bytes: {} (the server closed the connection; {received} bytes came back)",
                reason(&err)
            ),
        }
    }
}

/// The reading thread: copies the echo from the socket to standard output.
fn spawn_reader(mut sock: TcpStream, progress: Arc<Progress>) -> Result<JoinHandle<()>> {
    let reader = move || {
        let mut buf = vec![0u8; CHUNK];
        let mut hash = Fnv1a::START;
        let mut out = io::stdout().lock();
        let end = loop {
            match sock.read(&mut buf) {
                Ok(0) => {
                    // The server closed its side and will echo nothing more:
                    // stop sending too (our FIN), so that a server waiting for
                    // it can close. A send still going on then fails, and says so.
                    let _ = sock.shutdown(Shutdown::Write);
                    break ReaderEnd::Closed;
                }
                Ok(n) => {
                    if let Err(err) = out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                        // Nobody reads our output: stop the sender too, or it
                        // would block forever on an echo nobody drains.
                        let _ = sock.shutdown(Shutdown::Both);
                        break ReaderEnd::Output(err);
                    }
                    hash.add(&buf[..n]);
                    progress.update(|t| {
                        t.received += n as u64;
                        t.received_hash = hash;
                    });
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => break ReaderEnd::Failed(err),
            }
        };
        progress.update(|t| t.reader_end = Some(end));
    };
    thread::Builder::new().name("reader".into()).spawn(reader).context("start the reader thread")
}

/// TCPecho's SIGTERM/SIGINT handler. The first signal asks for a
/// graceful end: it is noted, and the main thread, asleep in poll(2) on
/// the wake pipe, is woken. A second one ends the client at once, as the
/// signal's default action would, after one line on stderr (write(2) and
/// _exit(2) are async-signal-safe; nothing else is called).
extern "C" fn on_stop(sig: libc::c_int) {
    let saved_errno = Errno::last_raw();
    if !signals::note_stop(sig) {
        let line = b"TCPecho: a second stop signal: ending at once\n";
        // SAFETY: write and _exit are async-signal-safe; `line` is a valid
        // buffer of the length given.
        unsafe {
            libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len());
            libc::_exit(128 + sig);
        }
    }
    wake_main_loop();
    Errno::set_raw(saved_errno);
}

/// Installs TCPecho's SIGTERM and SIGINT handler (see `on_stop`).
fn install_stop_handlers() -> Result<()> {
    let handler = SigHandler::Handler(on_stop);
    signals::install(Signal::SIGTERM, handler, SaFlags::SA_RESTART)?;
    signals::install(Signal::SIGINT, handler, SaFlags::SA_RESTART).map(drop)
}
