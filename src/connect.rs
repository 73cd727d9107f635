//! The client side of a connection (Comer's `connectTCP`): resolve a host
//! name into its addresses, IPv6 and IPv4, and connect to the first one that
//! answers.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};

use anyhow::{bail, Result};
use nix::errno::Errno;

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

/// The human part of an I/O error: "Connection refused", not
/// "Connection refused (os error 111)".
pub fn reason(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => {
            let text = err.to_string();
            let text = text.strip_prefix("failed to lookup address information: ").unwrap_or(&text);
            text.to_string()
        }
    }
}
