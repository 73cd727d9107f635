//! echobench: measures an echo server from the outside, the way its
//! clients see it. Every byte sent is checked when it comes back. A tool
//! beside the lab (`make bench`), not part of what students read.
//!
//! - [`rate`]: many short connections (connect, send, read back, close);
//!   connections per second and their latency.
//! - [`stream`]: long transfers; megabytes per second.
//! - [`memory`]: the memory (PSS) of a server holding idle clients.
//! - [`suite`]: runs all of them against every server model, the C
//!   baseline and socat, and writes the report (`make bench`).
//! - [`scale`]: 10 to 10,000 clients at once, every model: how the cost
//!   grows (`make bench`).
//! - [`network`]: a loopback of the benchmark's own, when it can have one.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod chart;
pub mod memory;
pub mod network;
pub mod rate;
pub mod report;
pub mod scale;
pub mod servers;
pub mod stream;
pub mod suite;

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tcpechod::support::log::reason;

/// Writes `text` to standard output; if it cannot (a closed pipe), so be
/// it: the exit status says how the measurement went.
pub fn out(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// An error as the one line a user reads: each I/O error of its chain told
/// by its reason alone ("Connection refused", not "Connection refused
/// (os error 111)").
pub fn plain(err: anyhow::Error) -> anyhow::Error {
    let parts: Vec<String> = err
        .chain()
        .map(|cause| match cause.downcast_ref::<std::io::Error>() {
            Some(io) => reason(io),
            None => cause.to_string(),
        })
        .collect();
    anyhow!(parts.join(": "))
}

/// The address of the server under test.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {host}: it has no address"))
}

/// Pseudo-random bytes (xorshift64*), the same for the same seed however
/// they are asked for, so that a reader can check an echo piece by piece
/// and data from another connection never passes for ours.
#[derive(Debug, Clone)]
pub struct Pattern {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl Pattern {
    /// The pattern of `seed` (any value).
    pub fn new(seed: u64) -> Pattern {
        Pattern { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, word: [0; 8], used: 8 }
    }

    /// Fills `buf` with the next bytes of the pattern.
    pub fn fill(&mut self, mut buf: &mut [u8]) {
        // What is left of the current word, then whole words, then a part.
        let left = (8 - self.used).min(buf.len());
        buf[..left].copy_from_slice(&self.word[self.used..self.used + left]);
        self.used += left;
        buf = &mut buf[left..];
        let mut words = buf.chunks_exact_mut(8);
        for chunk in &mut words {
            chunk.copy_from_slice(&self.next_word());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            self.word = self.next_word();
            tail.copy_from_slice(&self.word[..tail.len()]);
            self.used = tail.len();
        }
    }

    fn next_word(&mut self) -> [u8; 8] {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }

    /// Whether `data` is what comes next in the pattern (and moves past it).
    pub fn matches(&mut self, data: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.resize(data.len(), 0);
        self.fill(scratch);
        scratch[..] == *data
    }
}

/// A progress line on stderr: rewritten in place on a terminal, printed
/// once a second otherwise (so that logs stay readable).
pub struct Progress {
    quiet: bool,
    terminal: bool,
    last: Instant,
}

impl Progress {
    /// A progress line; `quiet` shows none.
    pub fn new(quiet: bool) -> Progress {
        Progress { quiet, terminal: std::io::stderr().is_terminal(), last: Instant::now() }
    }

    /// Shows `text` if a second has passed since the last update.
    pub fn update(&mut self, text: impl FnOnce() -> String) {
        if self.quiet || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let line = match self.terminal {
            true => format!("{}\x1b[K\r", text()), // \x1b[K: clear the rest of the line
            false => format!("{}\n", text()),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    /// Clears the line on a terminal.
    pub fn finish(&self) {
        if !self.quiet && self.terminal {
            let _ = write!(std::io::stderr(), "\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_the_same_however_it_is_cut() {
        let mut whole = vec![0u8; 1000];
        Pattern::new(7).fill(&mut whole);
        let mut pieces = Pattern::new(7);
        let mut scratch = Vec::new();
        assert!(pieces.matches(&whole[..3], &mut scratch));
        assert!(pieces.matches(&whole[3..500], &mut scratch));
        assert!(pieces.matches(&whole[500..], &mut scratch));
        let mut other = vec![0u8; 1000];
        Pattern::new(8).fill(&mut other);
        assert_ne!(whole, other, "seeds give different data");
    }
}
