//! The sockets as the kernel sees them, in /proc/net/tcp: states and
//! queues, whatever the buffer sizes of this machine. What a test waits
//! for on a connection it waits for here, on the kernel's side.

use std::fs;
use std::net::TcpStream;

use crate::wait::wait_until;

/// One line of /proc/net/tcp (IPv4 sockets).
#[derive(Debug, Clone)]
pub struct TcpEntry {
    /// The port of this end.
    pub local_port: u16,
    /// The port of the other end (0 for a LISTEN socket).
    pub remote_port: u16,
    /// The kernel's TCP state: [`TCP_ESTABLISHED`], [`TCP_LISTEN`]...
    pub state: u8,
    /// Bytes sent and not yet acknowledged by the peer.
    pub tx_queue: u64,
    /// Bytes received and not yet read by the application (for a LISTEN
    /// socket: connections waiting to be accepted).
    pub rx_queue: u64,
    /// The socket's inode, as /proc/PID/fd shows it (`socket:[INODE]`).
    pub inode: u64,
}

/// ESTABLISHED: a connection open both ways (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u8 = 0x01;
/// TIME_WAIT: the end that closed first, kept a while after the close.
pub const TCP_TIME_WAIT: u8 = 0x06;
/// CLOSE_WAIT: the other end closed (its FIN came), this end not yet.
pub const TCP_CLOSE_WAIT: u8 = 0x08;
/// LISTEN: a master socket.
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

/// The server's end of the connection `client` has to the server on
/// `server_port`, if it is still there.
pub fn server_side_of(client: &TcpStream, server_port: u16) -> Option<TcpEntry> {
    let client_port = client.local_addr().ok()?.port();
    tcp_table().into_iter().find(|e| e.local_port == server_port && e.remote_port == client_port)
}

/// The client's own end of its connection to `server_port`.
pub fn client_side_of(client: &TcpStream, server_port: u16) -> Option<TcpEntry> {
    let client_port = client.local_addr().ok()?.port();
    tcp_table().into_iter().find(|e| e.local_port == client_port && e.remote_port == server_port)
}

/// Waits until the server has read what `sock` sent: the data left the
/// client (acknowledged) and sits in no receive queue.
pub fn wait_until_read(sock: &TcpStream, server_port: u16) {
    wait_until("the server to read the data", || {
        let ours = client_side_of(sock, server_port)?;
        let theirs = server_side_of(sock, server_port)?;
        (ours.tx_queue == 0 && theirs.rx_queue == 0).then_some(())
    })
}
