//! The lab's server and its parts, each in the file named for what the
//! lab calls it. One connection is followed in five of them, in this
//! order:
//!
//! | file | what it is |
//! |---|---|
//! | [`fork`] | **the loop**: accept, fork, the child's branch, the parent's branch |
//! | [`accept`] | msock and the handlers; the wait for a client in poll(2), the limit, accept |
//! | [`child`] | what a child changes (its log tag, its signals, the wake pipe), and its exit status |
//! | [`echo`] | the echo loop, the lingering close after a stop, and how the service ended |
//! | [`reaper`] | the SIGCHLD handler, its records, and the parent's list of children |
//!
//! Beside them: [`msock`] (Comer's `passiveTCP`, and `--bind`),
//! [`shutdown`] (stopping the children at the end), [`summary`] (the
//! status line and the last line), and [`config`] (what the command line
//! decides, and the shape of a model). The other ways to serve clients
//! are in [`crate::models`]; they are built from the same parts.

pub mod accept;
pub mod child;
pub mod config;
pub mod echo;
pub mod fork;
pub mod msock;
pub mod reaper;
pub mod shutdown;
pub mod summary;
