//! The test's own clients and servers, each behaving one way on purpose:
//! one that never reads, one that streams and checks every byte of its
//! echo, one that closes when the server does; a one-connection server;
//! and the data they send.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;

use crate::server::{connect, Server};
use crate::tcp::tcp_table;
use crate::wait::{wait_until, TIMEOUT};

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
    let sock = small_window_socket(server.port);
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

/// A socket connected to `port` of 127.0.0.1 with the smallest receive
/// buffer the kernel allows, set before the handshake so that the window
/// it offers is small from the start.
pub fn small_window_socket(port: u16) -> TcpStream {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;

    // CLOEXEC: a server that another test starts meanwhile must not inherit it.
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &2048).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    let sock = TcpStream::from(fd);
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
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

/// A small deterministic generator (xorshift): sizes, contents and
/// choices that differ from one use to the next and are the same from run
/// to run.
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number from 0 to n - 1.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` bytes of the sequence.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// One of `from`.
    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// True `in_ten` times out of ten.
    pub fn chance(&mut self, in_ten: u64) -> bool {
        self.below(10) < in_ten
    }
}

/// Random bytes from the kernel.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    bytes
}

/// A free port outside the range the kernel picks ephemeral ports from, so
/// that no client of another test running meanwhile takes it between this
/// look and the server's bind, as a port the kernel chose could be.
pub fn free_port() -> u16 {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(32768);
    let mut rng = Rng(u64::from(std::process::id()) << 16 | u64::from(low));
    wait_until("a free port below the ephemeral range", || {
        let port = 10_000 + rng.below(u64::from(low.saturating_sub(10_000)).max(1)) as u16;
        TcpListener::bind(("0.0.0.0", port)).ok().map(|_| port)
    })
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
    /// Bytes it sent.
    pub sent: u64,
    /// Bytes of echo it received.
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
    /// Its local port, by which the server's log names it.
    pub port: u16,
    /// Bytes of echo received so far.
    pub received: Arc<AtomicU64>,
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

/// Starts a [`StreamingClient`] of the server on `server_port`.
pub fn streaming_client(server_port: u16, seed: u64, limit: u64) -> StreamingClient {
    let sock = connect(("127.0.0.1", server_port));
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
                    let _ = reading.shutdown(Shutdown::Write);
                    break None;
                }
                Ok(n) => {
                    intact &=
                        buf[..n].iter().enumerate().all(|(i, &b)| b == stream_byte(seed, got + i as u64));
                    got += n as u64;
                    counter.store(got, Ordering::Relaxed);
                }
                Err(err) => {
                    let _ = reading.shutdown(Shutdown::Both);
                    break Some(err.to_string());
                }
            }
        };
        (got, intact, error)
    });
    StreamingClient { port, received, reader, writer }
}
