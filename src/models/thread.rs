//! The threaded server: a thread per client. The main thread accepts (the
//! acceptor), each client gets a thread of its own, and every thread that
//! finishes is joined as the acceptor goes, as the reaper collects
//! children (`--no-join` leaves them unjoined until the shutdown, as
//! `--no-reaper` leaves zombies). Threads share the process: one memory,
//! one descriptor table, one set of signal handlers. There is no fork here
//! (forking a process with threads copies only the thread that called fork).
//!
//! A finished thread sends its result over a channel and writes to the
//! wake pipe, so that the acceptor, asleep in poll, joins it at once. At
//! shutdown the acceptor stops every thread's reading (a receive timeout on
//! its socket, and SIGTERM to the thread to make a blocked call see it),
//! waits up to the grace period, which the threads keep to themselves,
//! cuts whatever connection is still left (SHUT_RDWR makes a blocked call
//! fail), and joins every thread.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::thread::JoinHandleExt;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::server::accept::{close, Acceptor, Clients};
use crate::server::config::Config;
use crate::server::echo::{Echoer, Ending};
use crate::server::shutdown::{grace_over, Leftover};
use crate::server::summary::{Status, Summary};
use crate::support::log;
use crate::support::signals;
use crate::support::trouble::Trouble;
use crate::support::wake::wake_main_loop;
use crate::{event, notice};

/// Runs the server until a stop, then returns (and logs) the summary.
pub fn run(config: &Config) -> Result<Summary> {
    let mut server = Acceptor::listen(config)?;
    let config = Arc::new(config.clone());
    let mut threads = Threads::new(&config);
    let mut starting = Trouble::default();

    while let Some((asock, client)) = server.next_client(&mut threads) {
        match threads.start(asock, client, &config) {
            Ok(()) => starting.worked("starting a thread"),
            // Out of threads (EAGAIN) or memory: this client is let go
            // (its socket is closed), and the acceptor pauses.
            Err(err) => server.back_off(
                &mut starting,
                format!("cannot start a thread: {err}; closed the connection from {client}"),
            ),
        }
    }
    server.close_msock();
    if let Err(err) = threads.stop_all(&server, &config) {
        notice!("{err:#}");
    }
    server.finish(threads.summary)
}

/// A thread serving a client, as the acceptor knows it.
struct Client {
    handle: JoinHandle<()>,
    /// The socket, shared with the thread: the acceptor stops its reading
    /// at shutdown, and it is closed when both have let go of it.
    sock: Arc<TcpStream>,
    addr: SocketAddr,
    /// Finished, not joined yet (only with `--no-join`).
    finished: Option<Finished>,
}

/// What a finishing thread sends to the acceptor.
#[derive(Debug, Clone, Copy)]
struct Finished {
    id: u64,
    tid: i32,
    ending: Ending,
}

/// Sends a thread's [`Finished`] to the acceptor when dropped, that is,
/// when the thread ends, normally or not.
struct Report {
    id: u64,
    done: Sender<Finished>,
    ending: Option<Ending>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let failed = Ending::Failed { call: "the thread", errno: nix::errno::Errno::EIO };
        let ending = self.ending.unwrap_or(failed);
        let tid = nix::unistd::gettid().as_raw();
        let _ = self.done.send(Finished { id: self.id, tid, ending });
        wake_main_loop();
    }
}

/// The acceptor's table of threads.
struct Threads {
    live: HashMap<u64, Client>,
    next_id: u64,
    done_tx: Sender<Finished>,
    done_rx: Receiver<Finished>,
    /// Join each thread as soon as it finishes (off with `--no-join`).
    join_at_once: bool,
    /// Connections cut at shutdown: their thread's end counts as cut.
    cut: Vec<u64>,
    summary: Summary,
}

impl Threads {
    fn new(config: &Config) -> Threads {
        let (done_tx, done_rx) = mpsc::channel();
        Threads {
            live: HashMap::new(),
            next_id: 0,
            done_tx,
            done_rx,
            join_at_once: config.join,
            cut: Vec::new(),
            summary: Summary::default(),
        }
    }

    /// Starts a thread to serve `addr` on `asock`. If it cannot, the
    /// connection is closed and the error returned.
    fn start(&mut self, asock: TcpStream, addr: SocketAddr, config: &Arc<Config>) -> std::io::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let sock = Arc::new(asock);
        let (thread_sock, thread_config, done) =
            (Arc::clone(&sock), Arc::clone(config), self.done_tx.clone());
        // A small stack: an echo needs little, and mapping the 2 MiB default
        // for every client costs connection rate (bench/DEFAULTS.md).
        let handle =
            thread::Builder::new().name(format!("client-{id}")).stack_size(128 * 1024).spawn(move || {
                log::become_thread();
                // Reports to the acceptor when the thread ends, even by a panic:
                // otherwise it would wait for this thread for ever.
                let mut report = Report { id, done, ending: None };
                event!("serving {addr}");
                let ending = Echoer::for_thread(&thread_config).serve(&thread_sock, addr);
                // Our FIN goes out now; the descriptor closes when joined.
                let _ = thread_sock.shutdown(Shutdown::Both);
                report.ending = Some(ending);
            })?;
        event!("accepted {addr} on fd {}, started a thread for it", sock.as_raw_fd());
        self.live.insert(id, Client { handle, sock, addr, finished: None });
        Ok(())
    }

    /// Joins the thread of a finished client and closes its socket.
    fn join(&mut self, done: Finished) {
        let Some(client) = self.live.remove(&done.id) else {
            return;
        };
        if client.handle.join().is_err() {
            notice!("thread {} (client {}) panicked", done.tid, client.addr);
        }
        let status = match self.cut.contains(&done.id) {
            true => Ending::Cut.exit_status(),
            false => done.ending.exit_status(),
        };
        event!("joined thread {} (client {}): {status}", done.tid, client.addr);
        close("asock", client.sock);
        self.summary.served(status);
    }

    /// The shutdown: stop reading everywhere, wait up to the grace period,
    /// cut what is left, join every thread.
    fn stop_all(&mut self, server: &Acceptor, config: &Config) -> Result<()> {
        self.join_at_once = true;
        let unjoined: Vec<Finished> = self.live.values().filter_map(|c| c.finished).collect();
        for done in unjoined {
            self.join(done);
        }
        let deadline = signals::stop_deadline(config.grace).unwrap_or_else(|| Instant::now() + config.grace);
        for client in self.live.values() {
            if config.terminate_handler {
                let left = deadline.saturating_duration_since(Instant::now());
                stop_thread(&client.sock, client.handle.as_pthread_t(), left);
            } else {
                // No handler for the signal that would wake the thread: cut.
                let _ = client.sock.shutdown(Shutdown::Both);
            }
            event!("stopped reading from {} (fd {})", client.addr, client.sock.as_raw_fd());
        }
        while !self.live.is_empty() && Instant::now() < deadline {
            self.collect()?;
            if !self.live.is_empty() {
                server.sleep_until(Some(deadline))?;
            }
        }
        if !self.live.is_empty() {
            grace_over(config.grace, self.live.len(), Leftover::Connections);
            for (&id, client) in &self.live {
                let _ = client.sock.shutdown(Shutdown::Both);
                self.cut.push(id);
            }
            while !self.live.is_empty() {
                self.collect()?;
                if !self.live.is_empty() {
                    server.sleep_until(None)?;
                }
            }
        }
        Ok(())
    }
}

impl Clients for Threads {
    fn collect(&mut self) -> Result<()> {
        while let Ok(done) = self.done_rx.try_recv() {
            if self.join_at_once {
                self.join(done);
            } else if let Some(client) = self.live.get_mut(&done.id) {
                event!("thread {} (client {}) finished; not joined (--no-join)", done.tid, client.addr);
                client.finished = Some(done);
            }
        }
        Ok(())
    }

    fn serving(&self) -> usize {
        self.live.len()
    }

    fn status(&self) -> Status {
        let unjoined = self.live.values().filter(|c| c.finished.is_some()).count();
        Status { serving: self.live.len() - unjoined, zombies: unjoined, counts: self.summary }
    }
}

/// Stops a thread's reading of the socket it serves, from the acceptor:
/// the timeouts that the stop handler puts on a process's own socket (see
/// `signals::on_terminate`; the send timeout of what is left of the grace
/// period), then SIGTERM to that thread, so that a `read`, a `write` or a
/// pause it is blocked in starts again and sees them. Setting the
/// timeouts first leaves no gap for the thread to slip into a blocking
/// call unseen.
fn stop_thread(sock: &TcpStream, thread: libc::pthread_t, send_timeout: Duration) {
    signals::put_stop_timeouts(sock.as_raw_fd(), signals::timeout_ms(send_timeout));
    let _ = nix::sys::pthread::pthread_kill(thread, Signal::SIGTERM);
}
