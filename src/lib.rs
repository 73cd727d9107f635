//! # TCPechod in Rust: concurrent servers with the sockets API
//!
//! The library behind the programs of the lab: `TCPechod` (a concurrent
//! echo server that forks a child per connection, or serves its clients in
//! one of the other ways, `--mode`), `TCPecho` (its client) and `echobench`
//! (which measures them). Each module is one idea of the lab, in the lab's
//! words; read them in this order:
//!
//! | module | what it is |
//! |---|---|
//! | [`port`] | a port number or a service name from `/etc/services` |
//! | [`msock`] | the master socket: socket, SO_REUSEADDR, bind, listen (Comer's `passiveTCP`) |
//! | [`server::fork`] | the accept loop: accept, fork, the child closes msock, the parent closes asock |
//! | [`echo`] | the echo loop a child runs on its slave socket (asock) |
//! | [`reaper`] | the SIGCHLD handler that collects finished children (no zombies) |
//! | [`signals`] | SIGTERM/SIGINT (graceful shutdown), SIGUSR1, the SIGPIPE modes, the wake pipe |
//! | [`server::children`] | the parent's list of live children, and how it stops them |
//! | [`server::serve`] | serving one client, and what the end of its echo means |
//! | [`server`] | what the models share: configuration, start-up, the wait for a client, the summary |
//! | [`server::iterative`], [`server::prefork`], [`server::thread`], [`server::poll`](mod@server::poll) | the other ways to serve clients (`--mode`) |
//! | [`log`] | `[parent PID]` / `[child PID]` / `[thread TID]` log lines |
//! | [`connect`] | the client side of a connection: resolve and connect (Comer's `connectTCP`) |
//! | [`client`] | `TCPecho`: send standard input, print the echo |
//! | [`bench`](mod@bench) | `echobench`: connection rate, throughput and memory of a server |
//! | [`cli`] | what the programs do with bad arguments and errors: one line, exit 1 or 2 |

pub mod bench;
pub mod cli;
pub mod client;
pub mod connect;
pub mod echo;
pub mod log;
pub mod msock;
pub mod port;
pub mod reaper;
pub mod server;
pub mod signals;
