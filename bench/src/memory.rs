//! Memory: `connections` idle clients connect (each sends one byte and
//! waits for its echo, so that the server really serves it), and the
//! memory of the server's processes is summed: PSS, the proportional set
//! size of /proc/PID/smaps_rollup, where a page shared by N processes
//! counts 1/N in each. After fork, parent and children share most pages,
//! and PSS charges each its fair part.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tcpechod::support::log::reason;
use testbed::children_of;

/// What came out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryResult {
    /// Clients whose byte came back (the others wait unserved in the queue).
    pub served: usize,
    /// Processes of the server: the parent and its children.
    pub processes: usize,
    /// Total PSS of those processes, in KiB.
    pub total_pss_kib: u64,
    /// PSS of the parent process alone, in KiB.
    pub parent_pss_kib: u64,
}

/// Opens `connections` idle clients to `addr` and measures the server
/// process `server_pid` with its children while they are connected.
pub fn run(addr: SocketAddr, connections: usize, server_pid: i32) -> Result<MemoryResult> {
    // The process first: a wrong PID is told before any client connects.
    if let Err(err) = fs::read_to_string(format!("/proc/{server_pid}/smaps_rollup")) {
        match err.kind() {
            ErrorKind::NotFound => bail!("no process {server_pid}"),
            _ => bail!("cannot read the memory of process {server_pid}: {}", reason(&err)),
        }
    }
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut sock = match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(sock) => sock,
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => {
                bail!("no server listens on {addr} (connection refused)")
            }
            Err(err) => bail!("cannot connect to {addr}: {}", reason(&err)),
        };
        sock.write_all(b"x").with_context(|| format!("send to {addr}"))?;
        clients.push(sock);
    }
    // Those that a server serves at once answer at once; servers that serve
    // only a few clients at a time (iterative, prefork) leave the rest queued.
    let mut served = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    for sock in &mut clients {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        sock.set_read_timeout(Some(left)).context("timeout")?;
        let mut byte = [0u8; 1];
        if sock.read_exact(&mut byte).is_ok() {
            served += 1;
        }
    }
    let mut processes = vec![server_pid];
    processes.extend(children_of(server_pid).iter().map(|child| child.pid));
    let parent_pss_kib = pss_kib(server_pid).unwrap_or(0);
    let total_pss_kib = processes.iter().filter_map(|&pid| pss_kib(pid)).sum();
    drop(clients);
    Ok(MemoryResult { served, processes: processes.len(), total_pss_kib, parent_pss_kib })
}

/// The "Pss:" line of /proc/PID/smaps_rollup, in KiB.
pub fn pss_kib(pid: i32) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
