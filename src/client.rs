//! TCPecho, the echo client: sends its standard input to the server and
//! writes what comes back to its standard output, byte for byte.
//!
//! The C client of the lab read a line of at most 128 bytes, sent it, and
//! read it back. Here two threads do the work, so that input of any length
//! and any content goes through without a deadlock: the main thread sends
//! while a reader thread copies the echo to stdout. (With one thread, a
//! large input would fill both directions of the connection: the client
//! blocked sending, the server blocked sending back what nobody reads.)
//! When the input ends, the client half-closes the connection (shutdown
//! SHUT_WR: "no more data from me"), waits for the echo still due, and
//! compares how many bytes came back with how many it sent.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::connect::{self, reason};
use crate::log::say;

/// Bytes moved per read of standard input or of the socket.
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
}

/// Connects, sends standard input, prints the echo; an error says what failed.
pub fn run(opts: &Options) -> Result<()> {
    let sock = connect::connect_tcp(&opts.host, opts.port)?;
    let server = sock.peer_addr().context("getpeername")?;

    if !opts.read_back {
        let sent = Progress::default();
        send_input(&sock, opts.interval, &sent).map_err(|err| err.explain(server, &sent))?;
        hold(&sock, server, opts.hold);
        return Ok(()); // dropping the socket closes it
    }

    let progress = Arc::new(Progress::default());
    let reader = sock.try_clone().context("dup socket")?;
    let echo_progress = Arc::clone(&progress);
    thread::spawn(move || copy_echo(reader, &echo_progress));

    let sending = send_input(&sock, opts.interval, &progress);
    if sending.is_ok() {
        hold(&sock, server, opts.hold);
        // Half-close: the server reads end of file, echoes what is left and closes.
        let _ = sock.shutdown(Shutdown::Write);
    }
    let transfer = progress.wait_for_echo();
    let (sent, received) = (transfer.sent, transfer.received);

    if let Some(ReaderEnd::Output(err)) = &transfer.reader_end {
        bail!("cannot write to standard output: {}", reason(err));
    }
    if let Err(err) = sending {
        // `transfer` holds the lock of `progress`, which explain takes
        // again: let go of it first, or this thread would wait for itself.
        drop(transfer);
        return Err(err.explain(server, &progress));
    }
    if received > sent {
        bail!("server {server} sent {received} bytes back, more than the {sent} it was sent");
    }
    match &transfer.reader_end {
        _ if received == sent => Ok(()),
        Some(ReaderEnd::Failed(err)) => {
            bail!("connection to {server} failed after {received} of {sent} bytes: {}", reason(err))
        }
        _ => bail!("server closed the connection after {received} of {sent} bytes"),
    }
}

/// How far the transfer got, shared by the sending and the reading thread.
#[derive(Default)]
struct Progress {
    transfer: Mutex<Transfer>,
    changed: Condvar,
}

#[derive(Default)]
struct Transfer {
    sent: u64,
    received: u64,
    reader_end: Option<ReaderEnd>,
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

    fn update(&self, change: impl FnOnce(&mut Transfer)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }

    /// Blocks until every byte sent has come back or the reader stopped.
    fn wait_for_echo(&self) -> MutexGuard<'_, Transfer> {
        let mut transfer = self.lock();
        while transfer.received < transfer.sent && transfer.reader_end.is_none() {
            transfer = self.changed.wait(transfer).unwrap_or_else(PoisonError::into_inner);
        }
        transfer
    }
}

/// Why sending stopped early.
enum SendError {
    Input(io::Error),
    Socket(io::Error),
}

impl SendError {
    fn explain(self, server: SocketAddr, progress: &Progress) -> anyhow::Error {
        let transfer = progress.lock();
        match self {
            SendError::Input(err) => anyhow::anyhow!("cannot read standard input: {}", reason(&err)),
            SendError::Socket(err) => anyhow::anyhow!(
                "cannot send to {server} after {} bytes: {} (the server closed the connection; {} bytes came back)",
                transfer.sent,
                reason(&err),
                transfer.received
            ),
        }
    }
}

/// Sends standard input to the server as it reads it. With an `interval`,
/// it sends line by line and pauses before each line but the first; a line
/// longer than the buffer goes out in pieces, so memory stays constant.
fn send_input(sock: &TcpStream, interval: Duration, progress: &Progress) -> Result<(), SendError> {
    let mut input = BufReader::with_capacity(CHUNK, io::stdin().lock());
    let mut sock = sock;
    let mut at_line_start = true;
    let mut first = true;
    loop {
        let buf = match input.fill_buf() {
            Ok([]) => return Ok(()), // end of input
            Ok(buf) => buf,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(SendError::Input(err)),
        };
        let len = match interval.is_zero() {
            true => buf.len(),
            false => buf.iter().position(|&b| b == b'\n').map_or(buf.len(), |i| i + 1),
        };
        if !interval.is_zero() && at_line_start && !first {
            thread::sleep(interval);
        }
        sock.write_all(&buf[..len]).map_err(SendError::Socket)?;
        at_line_start = buf[len - 1] == b'\n';
        first = false;
        input.consume(len);
        progress.update(|t| t.sent += len as u64);
    }
}

/// The reading thread: copies the echo from the socket to standard output.
fn copy_echo(mut sock: TcpStream, progress: &Progress) {
    let mut buf = vec![0u8; CHUNK];
    let mut out = io::stdout().lock();
    let end = loop {
        match sock.read(&mut buf) {
            Ok(0) => {
                // The server closed its side and will echo nothing more: stop
                // sending too (our FIN), so that a server waiting for it can
                // close. A send still going on then fails, and says so.
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
                progress.update(|t| t.received += n as u64);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => break ReaderEnd::Failed(err),
        }
    };
    progress.update(|t| t.reader_end = Some(end));
}

/// `--hold`: keeps the connection open for a while, to look at it with
/// `ss -tn` or `netstat -tn`.
fn hold(sock: &TcpStream, server: SocketAddr, hold: Duration) {
    if hold.is_zero() {
        return;
    }
    match sock.local_addr() {
        Ok(local) => say(&format!(
            "TCPecho: holding the connection {local} -> {server} open for {} s\n",
            hold.as_secs()
        )),
        Err(_) => {
            say(&format!("TCPecho: holding the connection to {server} open for {} s\n", hold.as_secs()))
        }
    }
    thread::sleep(hold);
}
