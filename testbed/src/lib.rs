//! # The test bed: the lab's programs run and watched from outside
//!
//! What the integration tests (`tests/`, `teacher/tests/`) and the
//! benchmark (`bench/`) share. They run the real `TCPechod` and `TCPecho`
//! on loopback and look at them the way a student does in the lab: the
//! server's log, its processes and threads in /proc, its sockets in
//! /proc/net/tcp. Nothing in the lab's own source (`src/`) uses it.
//!
//! | module | what it is |
//! |---|---|
//! | [`server`] | a `TCPechod` (or any server that says `listening on ADDR:PORT` first) started in a process group of its own, its log read as it is written, the group killed when dropped |
//! | [`log`] | what the log lines say: the port, the summary, the bytes each client had echoed |
//! | [`clients`] | the test's own clients: served, silent, non-reading, streaming, closing on end of file |
//! | [`procfs`] | /proc: a process's stat (one parser), its children, its group, its descriptors, its threads, its signal handlers |
//! | [`tcp`] | /proc/net/tcp: every socket's state and queues, and the waits built on them |
//! | [`wait`] | waiting for a condition, never for a fixed time, and never for ever |
//! | [`commands`] | programs run to their end within a bound, killed when dropped, and the rules for what cannot run here |
//! | [`binaries`] | where the programs under test are, and the folders of the repository |
//!
//! Every wait is bounded ([`wait::TIMEOUT`]) and waits for a condition.
//! Every process started here is in a process group of its own or is
//! killed when its guard is dropped, so that no test leaves one behind,
//! even when it fails.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod binaries;
pub mod clients;
pub mod commands;
pub mod log;
pub mod procfs;
pub mod server;
pub mod tcp;
pub mod wait;

pub use binaries::*;
pub use clients::*;
pub use commands::*;
pub use log::*;
pub use procfs::*;
pub use server::*;
pub use tcp::*;
pub use wait::*;
