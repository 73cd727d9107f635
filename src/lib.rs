//! # TCPechod in Rust: concurrent servers with the sockets API
//!
//! The library behind the programs of the lab: `TCPechod` (a concurrent
//! echo server that forks a child per connection, or serves its clients in
//! one of the other ways, `--mode`) and `TCPecho` (its client). Each module
//! is one idea of the lab, in the lab's words; read them in this order:
//!
//! | module | what it is |
//! |---|---|
//! | [`server::fork`] | **the lab's server, in one function**: accept, fork, the child closes msock and serves, the parent closes asock |
//! | [`reaper`] | the SIGCHLD handler that collects finished children (no zombies) |
//! | [`msock`] | the master socket: socket, SO_REUSEADDR, bind, listen (Comer's `passiveTCP`) |
//! | [`port`] | a port number or a service name from `/etc/services` |
//! | [`echo`] | the echo loop on a slave socket (asock), and the careful end after a stop |
//! | [`signals`] | SIGTERM/SIGINT/SIGHUP (graceful shutdown), SIGUSR1, the SIGPIPE modes, the wake pipe |
//! | [`child`] | what changes in a forked child: its log tag, its signals, `_exit` |
//! | [`server`] | what the models share: the configuration, and how to add a model |
//! | [`server::models`] | the table of the models, with the options each takes |
//! | [`server::acceptor`] | accepting, written once: the wait for a client, the limit, the status line, the back-off |
//! | [`server::serve`] | serving one client in a blocking model |
//! | [`server::ending`] | how a client's service ended: exit status and log wording, for every model |
//! | [`server::children`] | a parent's children, and the graceful shutdown that stops them |
//! | [`server::summary`] | the counts, the status line and the summary |
//! | [`server::iterative`], [`server::prefork`], [`server::thread`], [`server::poll`](mod@server::poll) | the other ways to serve clients (`--mode`) |
//! | [`log`] | `[parent PID]` / `[child PID]` / `[thread TID]` log lines, which never block |
//! | [`shared`] | the counters the children share with the parent |
//! | [`connect`] | the client side of a connection: resolve and connect (Comer's `connectTCP`) |
//! | [`client`] | `TCPecho`: send standard input, print the echo |
//! | [`demos`] | seed 004's experiments: an exit handler (`--atexit`), a library's SIGTERM handler replaced or chained |
//! | [`cli`] | what the programs do with bad arguments and errors: one line; exit 2 (usage), 1 (failure) or 70 (a bug) |
//!
//! The benchmark, `echobench`, is a crate of its own beside the lab (`bench/`).

pub mod child;
pub mod cli;
pub mod client;
pub mod connect;
pub mod demos;
pub mod echo;
pub mod log;
pub mod msock;
pub mod port;
pub mod reaper;
pub mod server;
pub mod shared;
pub mod signals;
