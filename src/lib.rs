//! # TCPechod in Rust: concurrent servers with the sockets API
//!
//! The library behind the programs of the lab: `TCPechod` (a concurrent
//! echo server that forks a child per connection, or serves its clients in
//! one of the other ways, `--mode`) and `TCPecho` (its client). The folders
//! are the map: [`server`] is the lab's server and its parts, [`models`]
//! the other ways to serve clients, [`support`] what both need that is not
//! the lesson, [`client`] the client.
//!
//! Follow one connection, from accept to fork to the child's echo to its
//! exit to the parent's reaper, in five files, in this order:
//!
//! | module | what it is |
//! |---|---|
//! | [`server::fork`] | **the lab's server, in one function**: accept, fork, the child closes msock and serves, the parent closes asock |
//! | [`server::accept`] | msock and the signal handlers; the wait for a client in poll(2) (where EINTR went), the limit, accept |
//! | [`server::child`] | what changes in a forked child (its log tag, its signals, the wake pipe), `_exit` and its exit status |
//! | [`server::echo`] | the echo loop on the slave socket (asock), the lingering close after a stop, how the service ended |
//! | [`server::reaper`] | the SIGCHLD handler that collects finished children (no zombies), and the parent's list of them |
//!
//! Then the rest of the lab's server, the other models, and what they
//! call by name:
//!
//! | module | what it is |
//! |---|---|
//! | [`server::msock`] | the master socket: socket, SO_REUSEADDR, bind, listen (Comer's `passiveTCP`) |
//! | [`server::shutdown`] | the graceful end: SIGTERM to the children, the grace period, SIGKILL |
//! | [`server::summary`] | the counts, the status line (SIGUSR1) and the summary |
//! | [`server::config`] | what the command line decides; a model's entry, and who serves its clients |
//! | [`models`] | the table of the models, with the options each takes, and how to add one |
//! | [`models::iterative`], [`models::prefork`], [`models::thread`], [`models::poll`](mod@models::poll) | the other ways to serve clients (`--mode`) |
//! | [`support::signals`] | SIGTERM/SIGINT/SIGHUP (graceful shutdown), SIGUSR1, the SIGPIPE modes |
//! | [`support::wake`] | the wake pipe, with which a handler cuts a wait in poll(2) short |
//! | [`support::log`] | `[parent PID]` / `[child PID]` / `[thread TID]` log lines, which never block |
//! | [`support::limits`] | what this machine allows: descriptors, processes, threads |
//! | [`support::trouble`] | running out of resources: the back-off, and a log that does not drown |
//! | [`support::shared_counters`] | the counters the children share with the parent |
//! | [`support::splice`] | the pipe that `--splice` moves the bytes through |
//! | [`support::sigterm_experiments`] | the talk on SIGTERM: an exit handler (`--atexit`), a library's SIGTERM handler replaced or chained |
//! | [`support::port`] | a port number or a service name from `/etc/services` |
//! | [`client`] | `TCPecho`: send standard input, print the echo, check it |
//! | [`client::connect`] | resolve and connect (Comer's `connectTCP`) |
//! | [`client::hash`] | the checksum that compares the echo with what was sent |
//! | [`cli`] | what the programs do with bad arguments and errors: one line; exit 2 (usage), 1 (failure) or 70 (a bug) |
//!
//! The benchmark, `echobench`, is a crate of its own beside the lab (`bench/`).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cli;
pub mod client;
pub mod models;
pub mod server;
pub mod support;
