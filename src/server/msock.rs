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

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6, TcpListener};
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
    /// The interface of an IPv6 link-local address (`fe80::1%eth0`), by
    /// its index; 0 for every other address.
    pub scope_id: u32,
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
/// pipe, so that a signal always wakes it (see [`super::accept`]). Sockets
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

    let addr = match listen_on.addr {
        IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, listen_on.port, 0, listen_on.scope_id)),
        ip => SocketAddr::new(ip, listen_on.port),
    };
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
             (the lab uses 8000 plus the last number of your IPv4 address: labs/port.sh)"
            .to_string(),
        Errno::EADDRNOTAVAIL => format!("{} is not an address of this machine", addr.ip()),
        Errno::EINVAL => format!("the kernel refuses to bind {} (EINVAL)", addr.ip()),
        other => other.desc().to_string(),
    };
    anyhow!("cannot bind {addr}: {why}")
}

/// The address a `--bind` names: an IPv4 or IPv6 address, an IPv6
/// link-local one with its interface (`fe80::1%eth0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddress {
    pub ip: IpAddr,
    /// The interface's index for a link-local address (0: none).
    pub scope_id: u32,
}

/// Reads a `--bind` address, and refuses those no client could ever
/// connect to: TCP connects one host to one host, so a group (multicast)
/// or broadcast address, which the kernel may let a socket bind, would
/// leave every client with "Network is unreachable". An IPv4 address
/// written as IPv6 (`::ffff:224.0.0.1`) is judged as the IPv4 one. A
/// link-local IPv6 address exists once per interface: it needs one.
pub fn parse_bind(text: &str) -> Result<BindAddress, String> {
    const TRY: &str = "(try 0.0.0.0, 127.0.0.1 or ::)";
    let (ip_text, interface) = match text.split_once('%') {
        Some((ip, interface)) => (ip, Some(interface)),
        None => (text, None),
    };
    let ip: IpAddr = ip_text.parse().map_err(|_| format!("not an IPv4 or IPv6 address {TRY}"))?;
    let as_v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    let refused = match as_v4 {
        Some(v4) if v4.is_multicast() => Some("a multicast address".to_string()),
        Some(v4) if v4.is_broadcast() => Some("the broadcast address".to_string()),
        Some(v4) => local_broadcast(v4).map(|net| format!("the broadcast address of {net}")),
        None if ip.is_multicast() => Some("a multicast address".to_string()),
        None => None,
    };
    if let Some(what) = refused {
        return Err(format!("{ip} is {what}: a TCP server cannot listen on it {TRY}"));
    }
    let link_local = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
    let scope_id = match (interface, link_local) {
        (None, false) => 0,
        (None, true) => {
            return Err(format!(
                "{ip} is a link-local address, which every interface has: name one, as in {ip}%eth0 \
                 (ip -6 addr lists them)"
            ))
        }
        (Some(_), false) => {
            return Err(format!("only an IPv6 link-local address takes an interface (%): {text}"))
        }
        (Some(name), true) => nix::net::if_::if_nametoindex(name)
            .map_err(|_| format!("{text}: no interface named '{name}' here"))?,
    };
    Ok(BindAddress { ip, scope_id })
}

/// The network whose broadcast address `addr` is, among this machine's
/// IPv4 networks (`127.255.255.255` for `127.0.0.0/8`), as `NET/BITS (IFACE)`.
fn local_broadcast(addr: Ipv4Addr) -> Option<String> {
    let interfaces = nix::ifaddrs::getifaddrs().ok()?;
    interfaces.into_iter().find_map(|interface| {
        let ip = interface.address?.as_sockaddr_in()?.ip();
        let mask = interface.netmask?.as_sockaddr_in()?.ip();
        let bits = u32::from(mask).count_ones();
        // /31 and /32 networks have no broadcast address (RFC 3021).
        let broadcast = Ipv4Addr::from(u32::from(ip) | !u32::from(mask));
        (bits < 31 && broadcast == addr).then(|| {
            let net = Ipv4Addr::from(u32::from(ip) & u32::from(mask));
            format!("{net}/{bits} ({})", interface.interface_name)
        })
    })
}
