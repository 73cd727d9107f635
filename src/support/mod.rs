//! What the servers and the client need that is not the lesson itself:
//! each module is called by name from the lesson's code ([`crate::server`])
//! and the other models ([`crate::models`]), and none of them reaches back
//! up into those.
//!
//! | module | what it is |
//! |---|---|
//! | [`signals`] | the stop handlers (SIGTERM, SIGINT, SIGHUP), SIGUSR1, the SIGPIPE modes |
//! | [`wake`] | the wake pipe that lets a handler cut a wait in poll(2) short |
//! | [`log`] | `[parent PID]` / `[child PID]` / `[thread TID]` log lines, which never block |
//! | [`limits`] | what this machine allows: descriptors, processes, threads |
//! | [`trouble`] | running out of resources: the pause before trying again, and a log that does not drown |
//! | [`shared_counters`] | the counters the children share with the parent |
//! | [`splice`] | the pipe that `--splice` moves the bytes through |
//! | [`sigterm_experiments`] | the talk on SIGTERM: an exit handler (`--atexit`), a library's handler replaced or chained |
//! | [`port`] | a port number or a service name from `/etc/services` |

pub mod limits;
pub mod log;
pub mod port;
pub mod shared_counters;
pub mod signals;
pub mod sigterm_experiments;
pub mod splice;
pub mod trouble;
pub mod wake;
