//! The poll server: one process, one thread, every client at once. All
//! sockets are non-blocking, and the loop sleeps in poll(2) until one of
//! them can go on: a client connects (msock readable), a client sent data
//! (its socket readable), a client can take its echo (its socket
//! writable), or a signal arrived (the wake pipe). No call ever blocks, so
//! a client that does not read cannot hold up the others: its echo waits in
//! a buffer of its own, and when that buffer is full the server stops
//! reading from that client until it drains (no byte is ever dropped).
//!
//! This is the next lab's approach (select/poll), next to the lab's
//! processes and threads.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::server::accept::{close, Acceptor};
use crate::server::config::Config;
use crate::server::echo::Ending;
use crate::server::shutdown::{grace_over, Leftover};
use crate::server::summary::{Status, Summary};
use crate::support::signals;
use crate::support::wake::timeout_for;
use crate::{event, notice};

/// A client whose echo waiting to be written reaches this many buffers is
/// not read from until it takes some of it.
const PENDING_BUFFERS: usize = 4;

/// What a lingering close reads at a time (and throws away).
const DISCARD_BUFFER: usize = 64 * 1024;

/// Runs the server until a stop, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let mut server = Acceptor::listen(config)?;
    let mut clients = PollServer {
        config: config.clone(),
        clients: HashMap::new(),
        scratch: vec![0u8; config.buffer],
        discard: Vec::new(),
        summary: Summary::default(),
    };
    if let Err(err) = clients.run(&mut server) {
        notice!("{err:#}");
        signals::request_stop();
        clients.cut_all();
    }
    server.finish(clients.summary)
}

/// One client and its echo still to be written.
struct Client {
    sock: TcpStream,
    addr: SocketAddr,
    /// Bytes read and not yet written back, in order.
    pending: VecDeque<u8>,
    /// With `--delay`: when each chunk read may be written back, and how
    /// many bytes of `pending` it ends at, counted from the first byte read.
    due: VecDeque<(Instant, u64)>,
    /// Bytes read and written so far.
    read: u64,
    written: u64,
    /// No more reading for the echo: the client closed its side, or the
    /// server is stopping.
    read_done: bool,
    /// The client closed its side (its FIN came).
    client_closed: bool,
    /// After a stop: our FIN went out behind the last byte of echo, and
    /// what the client still sends is thrown away until its FIN (the
    /// lingering close of `server::echo::linger`). Bytes thrown away so far.
    lingering: Option<u64>,
    /// When a byte last moved either way (for `--idle-timeout`).
    last_progress: Instant,
    /// The last send found the socket's buffer full (EAGAIN): no send
    /// until poll says POLLOUT.
    send_blocked: bool,
}

impl Client {
    /// Bytes of `pending` that may be written now.
    fn writable(&self, now: Instant) -> usize {
        let released =
            self.due.iter().take_while(|(at, _)| *at <= now).last().map_or(self.written, |&(_, end)| end);
        (released - self.written) as usize
    }

    /// When the next chunk delayed by `--delay` may be written, if that is
    /// still to come. (A chunk already due waits for POLLOUT instead: a
    /// timeout in the past would make poll return at once, for ever, while
    /// the client does not read.)
    fn next_due(&self, now: Instant) -> Option<Instant> {
        self.due.iter().map(|&(at, _)| at).find(|&at| at > now)
    }
}

struct PollServer {
    config: Config,
    clients: HashMap<i32, Client>,
    /// One buffer to read into, for all clients in turn.
    scratch: Vec<u8>,
    /// Where what clients send after a stop is read and thrown away.
    discard: Vec<u8>,
    summary: Summary,
}

/// A broken connection's error, as getsockopt(SO_ERROR) tells it
/// (EPIPE if the socket has none to tell).
fn socket_error(sock: &TcpStream) -> std::io::Error {
    match sock.take_error() {
        Ok(Some(err)) => err,
        _ => std::io::Error::from_raw_os_error(libc::EPIPE),
    }
}

impl PollServer {
    fn run(&mut self, server: &mut Acceptor) -> Result<()> {
        let mut deadline: Option<Instant> = None;
        loop {
            if deadline.is_none() {
                if let Some(sig) = signals::terminate_requested() {
                    event!("{sig} received: no more connections");
                    server.close_msock();
                    self.discard = vec![0u8; DISCARD_BUFFER];
                    // Stop reading: echo what was read, then the lingering close.
                    for client in self.clients.values_mut() {
                        client.read_done = true;
                        event!("stopped reading from {} (fd {})", client.addr, client.sock.as_raw_fd());
                    }
                    let fds: Vec<i32> = self.clients.keys().copied().collect();
                    for fd in fds {
                        self.serve(fd, PollFlags::empty());
                    }
                    deadline = signals::stop_deadline(self.config.grace);
                }
            }
            if signals::status_requested() {
                let status = Status { serving: self.clients.len(), zombies: 0, counts: self.summary };
                notice!("{}", server.counted(status));
            }
            if let Some(deadline) = deadline {
                if self.clients.is_empty() {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    self.cut_all();
                    return Ok(());
                }
            }
            self.close_idle();
            self.poll_once(server, deadline)?;
        }
    }

    /// One round: poll every socket once, then serve each that is ready.
    fn poll_once(&mut self, server: &mut Acceptor, deadline: Option<Instant>) -> Result<()> {
        let now = Instant::now();
        let accepting = server.accepting_now(self.clients.len());
        let order: Vec<i32> = self.clients.keys().copied().collect();
        let mut fds = Vec::with_capacity(order.len() + 2);
        fds.push(PollFd::new(server.wake().read_end(), PollFlags::POLLIN));
        if let Some(msock) = server.msock().filter(|_| accepting) {
            fds.push(PollFd::new(msock.as_fd(), PollFlags::POLLIN));
        }
        let first_client = fds.len();
        let limit = PENDING_BUFFERS * self.config.buffer;
        // The first of: the grace period's end, a client's idle timeout,
        // the end of a pause after running out of descriptors.
        let mut wake_at =
            [deadline, self.next_idle_deadline(), server.paused_until()].into_iter().flatten().min();
        for fd in &order {
            let client = &self.clients[fd];
            let mut events = PollFlags::empty();
            if (!client.read_done && client.pending.len() < limit) || client.lingering.is_some() {
                events |= PollFlags::POLLIN;
            }
            if client.writable(now) > 0 {
                events |= PollFlags::POLLOUT;
            }
            if let Some(due) = client.next_due(now) {
                wake_at = Some(wake_at.map_or(due, |at| at.min(due)));
            }
            fds.push(PollFd::new(client.sock.as_fd(), events));
        }
        let timeout = wake_at.map_or(PollTimeout::NONE, |at| timeout_for(at.saturating_duration_since(now)));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("poll"),
        }
        let ready: Vec<PollFlags> = fds.iter().map(|fd| fd.revents().unwrap_or(PollFlags::empty())).collect();
        drop(fds);

        if !ready[0].is_empty() {
            server.wake().drain();
        }
        if first_client == 2 && !ready[1].is_empty() {
            self.accept_all(server)?;
        }
        for (fd, events) in order.into_iter().zip(&ready[first_client..]) {
            // Beside the clients poll named: those with echo that came due
            // (--delay) and whose socket was not full when last tried. A
            // full one waits for POLLOUT: trying it every round would be
            // a failed send per round.
            let due = |c: &Client| !c.send_blocked && c.writable(Instant::now()) > 0;
            if !events.is_empty() || self.clients.get(&fd).is_some_and(due) {
                self.serve(fd, *events);
            }
        }
        Ok(())
    }

    /// Accepts every client waiting, up to the limit.
    fn accept_all(&mut self, server: &mut Acceptor) -> Result<()> {
        while let Some((sock, addr)) = server.try_accept(self.clients.len())? {
            if let Err(err) = sock.set_nonblocking(true) {
                notice!("cannot make the socket of {addr} non-blocking: {err}; closing it");
                continue;
            }
            let fd = sock.as_raw_fd();
            event!("accepted {addr} on fd {fd} ({} clients now)", self.clients.len() + 1);
            let client = Client {
                sock,
                addr,
                pending: VecDeque::new(),
                due: VecDeque::new(),
                read: 0,
                written: 0,
                read_done: false,
                client_closed: false,
                lingering: None,
                last_progress: Instant::now(),
                send_blocked: false,
            };
            self.clients.insert(fd, client);
        }
        Ok(())
    }

    /// When the first client to reach `--idle-timeout` will reach it.
    fn next_idle_deadline(&self) -> Option<Instant> {
        let timeout = self.config.idle_timeout?;
        self.clients.values().map(|c| c.last_progress + timeout).min()
    }

    /// Closes the clients that made no progress for `--idle-timeout`.
    fn close_idle(&mut self) {
        let Some(timeout) = self.config.idle_timeout else {
            return;
        };
        let now = Instant::now();
        let idle: Vec<i32> = self
            .clients
            .iter()
            .filter(|(_, c)| now >= c.last_progress + timeout)
            .map(|(&fd, _)| fd)
            .collect();
        for fd in idle {
            self.finish(fd, Ending::Idle(timeout));
        }
    }

    /// Reads from and writes to one client as far as it goes without blocking.
    fn serve(&mut self, fd: i32, events: PollFlags) {
        let delay = self.config.delay;
        let limit = PENDING_BUFFERS * self.config.buffer;
        let Some(client) = self.clients.get_mut(&fd) else {
            return;
        };
        if events.contains(PollFlags::POLLERR) {
            // The connection broke (a reset, say): nothing more can be
            // read or written. Left alone, poll would report it again at
            // once, for ever, and the loop would spin.
            let err = socket_error(&client.sock);
            return self.finish_after(fd, &err);
        }
        if let Some(discarded) = client.lingering.as_mut() {
            // Everything there is, at once, whatever --buffer says: these
            // bytes are thrown away, and the grace period is running.
            loop {
                match client.sock.read(&mut self.discard) {
                    Ok(0) => {
                        let ending = Ending::Stopped { sig: stop_signal(), discarded: *discarded };
                        return self.finish(fd, ending);
                    }
                    Ok(n) => *discarded += n as u64,
                    Err(err) if retry(&err) => return,
                    Err(err) => return self.finish_after(fd, &err),
                }
            }
        }
        if events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP)
            && !client.read_done
            && client.pending.len() < limit
        {
            match client.sock.read(&mut self.scratch) {
                Ok(0) => {
                    client.read_done = true;
                    client.client_closed = true;
                }
                Ok(n) => {
                    client.pending.extend(&self.scratch[..n]);
                    client.read += n as u64;
                    client.last_progress = Instant::now();
                    client.due.push_back((client.last_progress + delay, client.read));
                }
                Err(err) if retry(&err) => {}
                Err(err) => return self.finish_after(fd, &err),
            }
        }
        let now = Instant::now();
        let Some(client) = self.clients.get_mut(&fd) else {
            return;
        };
        if events.contains(PollFlags::POLLOUT) {
            client.send_blocked = false;
        }
        while client.writable(now) > 0 && !client.send_blocked {
            let n = client.writable(now);
            let (front, _) = client.pending.as_slices();
            match client.sock.write(&front[..n.min(front.len())]) {
                Ok(written) => {
                    client.pending.drain(..written);
                    client.written += written as u64;
                    client.last_progress = Instant::now();
                    while client.due.front().is_some_and(|&(_, end)| end <= client.written) {
                        client.due.pop_front();
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => client.send_blocked = true,
                Err(err) if retry(&err) => {}
                Err(err) => return self.finish_after(fd, &err),
            }
        }
        let Some(client) = self.clients.get_mut(&fd) else {
            return;
        };
        if !(client.read_done && client.pending.is_empty()) {
            if events.contains(PollFlags::POLLHUP) && client.read_done && client.writable(Instant::now()) == 0
            {
                // Both ways closed, and echo still due later (--delay):
                // it can never be written.
                let err = socket_error(&client.sock);
                self.finish_after(fd, &err);
            }
            return;
        }
        if client.client_closed {
            return self.finish(fd, Ending::ClientClosed);
        }
        // Stopped reading for a stop: the lingering close.
        match client.sock.shutdown(Shutdown::Write) {
            Ok(()) => client.lingering = Some(0),
            Err(err) => self.finish_after(fd, &err),
        }
    }

    /// Closes a client's connection after a read or write failed with `err`.
    fn finish_after(&mut self, fd: i32, err: &std::io::Error) {
        let errno = err.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        self.finish(fd, Ending::after_failed("read or write", errno, &self.config));
    }

    /// Closes a client's connection, logs and counts how it ended.
    fn finish(&mut self, fd: i32, ending: Ending) {
        let Some(client) = self.clients.remove(&fd) else {
            return;
        };
        ending.log(Some(client.addr), client.written);
        close("asock", client.sock);
        self.summary.served(ending.exit_status());
    }

    /// The grace period is over: close what is left.
    fn cut_all(&mut self) {
        if self.clients.is_empty() {
            return;
        }
        grace_over(self.config.grace, self.clients.len(), Leftover::Connections);
        let fds: Vec<i32> = self.clients.keys().copied().collect();
        for fd in fds {
            self.finish(fd, Ending::Cut);
        }
    }
}

/// The signal that stopped the server (SIGTERM if an error did).
fn stop_signal() -> nix::sys::signal::Signal {
    signals::terminate_requested().unwrap_or(nix::sys::signal::Signal::SIGTERM)
}

/// Errors after which the call is simply made again later.
fn retry(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}
