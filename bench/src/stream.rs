//! Stream throughput: `streams` connections at once, each sending
//! `bytes` of pseudo-random data while reading the echo back and checking
//! it. What a server pays per byte (copies, system calls, buffer size)
//! dominates here.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{Pattern, Progress};

/// Bytes per write and per read.
const CHUNK: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// Connections transferring at the same time.
    pub streams: usize,
    /// Bytes each one sends (and expects back).
    pub bytes: u64,
}

/// What came out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamResult {
    /// Bytes echoed and checked, all streams together.
    pub bytes: u64,
    /// Megabytes (10^6 bytes) per second, all streams together.
    pub mb_per_second: f64,
    /// Streams that failed (connection error, short echo).
    pub errors: u64,
    /// Streams whose echo differed from what was sent.
    pub mismatches: u64,
}

/// Runs the streams against `addr`.
pub fn run(addr: SocketAddr, opts: StreamOptions, progress: &mut Progress) -> StreamResult {
    let received = AtomicU64::new(0);
    let start = Instant::now();
    let outcomes: Vec<(Result<bool>, Instant)> = thread::scope(|scope| {
        let streams: Vec<_> = (0..opts.streams)
            .map(|n| {
                let received = &received;
                scope.spawn(move || (one_stream(addr, n as u64, opts.bytes, received), Instant::now()))
            })
            .collect();
        while streams.iter().any(|s| !s.is_finished()) {
            thread::sleep(Duration::from_millis(20));
            progress.update(|| {
                let bytes = received.load(Ordering::Relaxed);
                format!(
                    "stream: {:.0} MB echoed, {:.0} MB/s",
                    bytes as f64 / 1e6,
                    bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
                )
            });
        }
        let failed = || (Err(anyhow::anyhow!("stream thread panicked")), Instant::now());
        streams.into_iter().map(|s| s.join().unwrap_or_else(|_| failed())).collect()
    });
    progress.finish();
    // Timed to the end of the last stream, not to when we noticed it.
    let end = outcomes.iter().map(|(_, end)| *end).max().unwrap_or(start);
    let elapsed = (end - start).as_secs_f64().max(1e-9);
    let outcomes: Vec<Result<bool>> = outcomes.into_iter().map(|(outcome, _)| outcome).collect();
    let bytes = received.load(Ordering::Relaxed);
    StreamResult {
        bytes,
        mb_per_second: bytes as f64 / 1e6 / elapsed,
        errors: outcomes.iter().filter(|o| o.is_err()).count() as u64,
        mismatches: outcomes.iter().filter(|o| matches!(o, Ok(false))).count() as u64,
    }
}

/// One stream: a writer thread sends the pattern, this thread reads and
/// checks it. Ok(false): the echo differed.
fn one_stream(addr: SocketAddr, seed: u64, bytes: u64, received: &AtomicU64) -> Result<bool> {
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).context("connect")?;
    let mut writer = sock.try_clone().context("dup")?;
    let sender = thread::spawn(move || -> std::io::Result<()> {
        let mut pattern = Pattern::new(seed);
        let mut chunk = vec![0u8; CHUNK];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            pattern.fill(&mut chunk[..n]);
            writer.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut reader = sock;
    // A stream that makes no progress for 10 s has stalled: count it as failed.
    reader.set_read_timeout(Some(Duration::from_secs(10))).context("read timeout")?;
    let mut expected = Pattern::new(seed);
    let mut buf = vec![0u8; CHUNK];
    let mut scratch = Vec::with_capacity(CHUNK);
    let mut got: u64 = 0;
    let mut intact = true;
    loop {
        let n = reader.read(&mut buf).context("read")?;
        if n == 0 {
            break;
        }
        intact &= expected.matches(&buf[..n], &mut scratch);
        got += n as u64;
        received.fetch_add(n as u64, Ordering::Relaxed);
    }
    sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))?.context("write")?;
    anyhow::ensure!(got == bytes, "echo of {got} bytes instead of {bytes}");
    Ok(intact)
}
