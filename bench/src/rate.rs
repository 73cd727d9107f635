//! Connection rate: `concurrency` workers, each opening one connection
//! after another for `duration`: connect, send `size` bytes, half-close,
//! read the echo to the end, check it, close. What a server pays per
//! connection (accept, fork or thread, close) dominates here.
//!
//! A refused connection ends the run at once: nothing listens at the
//! address (or nothing any more), and a refusal takes the kernel so little
//! time that the workers would otherwise make hundreds of thousands of them.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{Pattern, Progress};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct RateOptions {
    /// Workers connecting at the same time.
    pub concurrency: usize,
    /// Bytes sent (and expected back) per connection.
    pub size: usize,
    /// How long to keep connecting.
    pub duration: Duration,
}

/// What came out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateResult {
    /// Connections completed and checked.
    pub connections: u64,
    /// Connections per second.
    pub per_second: f64,
    /// Latency of a whole connection, connect to close, in microseconds.
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    /// Connections that failed (refused, reset, short echo...).
    pub errors: u64,
    /// Echoes that differed from what was sent.
    pub mismatches: u64,
    /// The run stopped early: a connection was refused (counted in
    /// `errors`), so nothing listened at the address by then.
    pub refused: bool,
}

#[derive(Default)]
struct Counters {
    done: AtomicU64,
    errors: AtomicU64,
    mismatches: AtomicU64,
    refused: AtomicBool,
}

/// Runs the connection-rate test against `addr`.
pub fn run(addr: SocketAddr, opts: RateOptions, progress: &mut Progress) -> RateResult {
    let counters = Counters::default();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let latencies: Vec<u32> = thread::scope(|scope| {
        let workers: Vec<_> = (0..opts.concurrency)
            .map(|worker| {
                let counters = &counters;
                scope.spawn(move || worker_loop(addr, worker as u64, opts.size, deadline, counters))
            })
            .collect();
        while Instant::now() < deadline && !counters.refused.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(100).min(deadline - Instant::now().min(deadline)));
            progress.update(|| {
                let done = counters.done.load(Ordering::Relaxed);
                format!(
                    "rate: {done} connections, {:.0}/s, {} errors, {} mismatches",
                    done as f64 / start.elapsed().as_secs_f64(),
                    counters.errors.load(Ordering::Relaxed),
                    counters.mismatches.load(Ordering::Relaxed)
                )
            });
        }
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    progress.finish();
    let elapsed = start.elapsed().as_secs_f64();
    let mut histogram = latency_histogram();
    for us in latencies {
        histogram.saturating_record(u64::from(us));
    }
    let connections = counters.done.load(Ordering::Relaxed);
    let us = |value: u64| value.min(u64::from(u32::MAX)) as u32;
    RateResult {
        connections,
        per_second: connections as f64 / elapsed,
        p50_us: us(histogram.value_at_quantile(0.50)),
        p99_us: us(histogram.value_at_quantile(0.99)),
        max_us: us(histogram.max()),
        errors: counters.errors.load(Ordering::Relaxed),
        mismatches: counters.mismatches.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
    }
}

/// One worker: connections until the deadline or the first refused one;
/// returns their latencies.
fn worker_loop(
    addr: SocketAddr,
    worker: u64,
    size: usize,
    deadline: Instant,
    counters: &Counters,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut payload = vec![0u8; size];
    let mut echo = Vec::with_capacity(size + 1);
    let mut n: u64 = 0;
    while Instant::now() < deadline && !counters.refused.load(Ordering::Relaxed) {
        Pattern::new(worker << 40 | n).fill(&mut payload);
        n += 1;
        let started = Instant::now();
        match one_connection(addr, &payload, &mut echo) {
            Ok(()) if echo == payload => {
                counters.done.fetch_add(1, Ordering::Relaxed);
                latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Ok(()) => {
                counters.mismatches.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if err.kind() == ErrorKind::ConnectionRefused {
                    counters.refused.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    latencies
}

/// Connect, send, half-close, read everything back, close.
fn one_connection(addr: SocketAddr, payload: &[u8], echo: &mut Vec<u8>) -> std::io::Result<()> {
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_nodelay(true)?;
    sock.write_all(payload)?;
    sock.shutdown(Shutdown::Write)?;
    echo.clear();
    // Read at most one byte more than sent: enough to see an echo too long.
    match (&mut sock).take(payload.len() as u64 + 1).read_to_end(echo) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::Interrupted => Ok(()),
        Err(err) => Err(err),
    }
}

/// A histogram of latencies in microseconds, from 1 µs to an hour, with
/// three significant figures.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}
