//! The master socket (msock): the passive socket on which the server accepts
//! connections. This is Comer's `passiveTCP`: socket, SO_REUSEADDR, bind,
//! listen, written out call by call so that each step can be seen (and,
//! with strace, watched).
//!
//! `std::net::TcpListener::bind` would do all of this in one call, but it
//! hides the steps the lab is about and always sets SO_REUSEADDR. So the
//! socket is built here with nix and only then handed to a `TcpListener`,
//! whose `accept` returns the slave socket together with the client's
//! address.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    self, bind, listen, setsockopt, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

/// Where and how the master socket listens.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    /// Local address: `0.0.0.0` for every IPv4 address, `::` for IPv4 and IPv6.
    pub addr: IpAddr,
    /// Port; 0 lets the kernel choose a free (ephemeral) one.
    pub port: u16,
    /// Length of the queue of connections that completed the handshake but
    /// were not yet accepted.
    pub backlog: i32,
    /// Set SO_REUSEADDR (off only with the `--no-reuseaddr` toggle).
    pub reuse_addr: bool,
}

/// Creates the master socket, bound and listening.
///
/// The socket is non-blocking: the accept loop tries accept, and when
/// nobody is waiting (EAGAIN) it sleeps in poll(2) on msock and on the wake
/// pipe, so that a signal always wakes it (see `next_client`). Sockets
/// returned by accept(2) do not inherit O_NONBLOCK on Linux, so children
/// read and write in ordinary blocking mode. (The prefork model makes msock
/// blocking again: its workers sleep in accept itself.)
pub fn passive_tcp(listen_on: &Listen) -> Result<TcpListener> {
    let family = match listen_on.addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let msock = socket::socket(family, SockType::Stream, SockFlag::SOCK_NONBLOCK, None).context("socket")?;

    // Without SO_REUSEADDR a restarted server cannot bind its port while old
    // connections of the previous run sit in TIME_WAIT (Linux lets the new
    // socket in only if the old ones had the option too).
    if listen_on.reuse_addr {
        setsockopt(&msock, sockopt::ReuseAddr, &true).context("setsockopt SO_REUSEADDR")?;
    }
    if family == AddressFamily::Inet6 {
        // Dual stack: `::` also accepts IPv4 clients (seen as ::ffff:a.b.c.d).
        setsockopt(&msock, sockopt::Ipv6V6Only, &false).context("setsockopt IPV6_V6ONLY")?;
    }

    let addr = SocketAddr::new(listen_on.addr, listen_on.port);
    bind(msock.as_raw_fd(), &SockaddrStorage::from(addr))
        .map_err(|errno| bind_error(addr, errno, listen_on.reuse_addr))?;

    let backlog = Backlog::new(listen_on.backlog)
        .map_err(|_| anyhow!("listen: backlog {} is out of range", listen_on.backlog))?;
    listen(&msock, backlog).with_context(|| format!("listen on {addr}"))?;
    Ok(TcpListener::from(msock))
}

/// Says why bind failed in the words a student needs.
fn bind_error(addr: SocketAddr, errno: Errno, reuse_addr: bool) -> anyhow::Error {
    let port = addr.port();
    let why = match errno {
        Errno::EADDRINUSE if reuse_addr => {
            format!("port {port} is already in use (by another server, or by children of an old one)")
        }
        Errno::EADDRINUSE => format!(
            "port {port} is already in use: by a server, or, without SO_REUSEADDR (--no-reuseaddr), \
             by old connections still in TIME_WAIT"
        ),
        Errno::EACCES => "permission denied: ports below 1024 are reserved for root \
             (the lab uses 8000 plus the last three digits of your IP)"
            .to_string(),
        Errno::EADDRNOTAVAIL => format!("{} is not an address of this machine", addr.ip()),
        other => other.to_string(),
    };
    anyhow!("cannot bind {addr}: {why}")
}
