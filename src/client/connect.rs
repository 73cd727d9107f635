//! The client side of a connection (Comer's `connectTCP`): resolve a host
//! name into its addresses, IPv6 and IPv4, and connect to the first one that
//! answers.

use std::net::{TcpStream, ToSocketAddrs};

use anyhow::{bail, Result};

use crate::support::log::reason;

/// Connects to `host` (a name or an address) on `port`, trying each of its
/// addresses in the order the resolver gives them.
pub fn connect_tcp(host: &str, port: u16) -> Result<TcpStream> {
    let addrs = match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect::<Vec<_>>(),
        Err(err) => bail!("cannot resolve {host}: {}", reason(&err)),
    };
    if addrs.is_empty() {
        bail!("cannot resolve {host}: it has no address");
    }
    let mut failures = Vec::new();
    for addr in &addrs {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(err) => failures.push(format!("{addr}: {}", reason(&err))),
        }
    }
    bail!("cannot connect to {}", failures.join("; "))
}
