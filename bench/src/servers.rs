//! The servers that the benchmark measures, and how each is started and
//! stopped: TCPechod in each of its models, the C baseline, socat.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use tcpechod::models::MODELS;
use tcpechod::server::config::{Model, ServedBy};

/// The servers a run measures: TCPechod in every model of its table, the
/// C baseline built with and without `-static` where given, and socat
/// where installed (not in a quick run).
#[derive(clap::Args, Debug, Clone)]
pub struct Lineup {
    /// The TCPechod binary to measure.
    #[arg(long, value_name = "PATH", default_value = "./TCPechod")]
    pub server: PathBuf,
    /// The C baseline, built with `cc -O2` (bench/c/forkechod.c).
    #[arg(long, value_name = "PATH")]
    pub c_server: Option<PathBuf>,
    /// The C baseline built with `cc -O2 -static`.
    #[arg(long, value_name = "PATH")]
    pub c_static_server: Option<PathBuf>,
}

impl Lineup {
    /// The servers, ours first.
    pub fn contenders(&self, quick: bool) -> Vec<Contender> {
        let mut all: Vec<Contender> =
            MODELS.iter().map(|model| Contender::ours(&self.server, model.name, model, &[])).collect();
        if let Some(path) = &self.c_server {
            all.push(Contender::c("C fork (cc -O2)", path));
        }
        if let Some(path) = &self.c_static_server {
            all.push(Contender::c("C fork (cc -O2 -static)", path));
        }
        if !quick && Contender::socat_installed() {
            all.push(Contender::socat());
        }
        all
    }
}

/// One server under test and how to start it.
#[derive(Debug, Clone)]
pub struct Contender {
    pub name: String,
    program: OsString,
    args: Vec<OsString>,
    /// TCPechod's model: who serves its clients says which of
    /// `--max-children` and `--workers` it takes.
    model: Option<&'static Model>,
    /// Ours and the C server print their port; socat is given one.
    announces_port: bool,
    /// A reference only (socat): its failures are reported, not fatal.
    pub reference: bool,
}

impl Contender {
    /// TCPechod (`server`) in `model`, with `extra` options, on 127.0.0.1.
    pub fn ours(server: &Path, name: &str, model: &'static Model, extra: &[&str]) -> Contender {
        let mut args: Vec<OsString> = vec!["-q".into(), "--bind".into(), "127.0.0.1".into()];
        args.extend(["--mode", model.name].iter().chain(extra).map(OsString::from));
        Contender {
            name: name.into(),
            program: server.into(),
            args,
            model: Some(model),
            announces_port: true,
            reference: false,
        }
    }

    /// The C baseline (bench/c/forkechod.c) built at `path`.
    pub fn c(name: &str, path: &Path) -> Contender {
        Contender {
            name: name.into(),
            program: path.into(),
            args: vec![],
            model: None,
            announces_port: true,
            reference: false,
        }
    }

    /// socat's fork mode, echoing through a pipe: a reference.
    pub fn socat() -> Contender {
        Contender {
            name: "socat fork".into(),
            program: "socat".into(),
            args: vec![],
            model: None,
            announces_port: false,
            reference: true,
        }
    }

    /// Whether socat is installed.
    pub fn socat_installed() -> bool {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("socat").is_file()))
    }

    /// Whether this server serves one client after another, by design
    /// (TCPechod's iterative model): many clients at once are not its job.
    pub fn one_at_a_time(&self) -> bool {
        self.model.is_some_and(|model| model.served_by.one_at_a_time())
    }

    /// The arguments for a run with `clients` clients at once, if said:
    /// TCPechod is told to take them all (`--max-children`, and as many
    /// workers started in advance); the port comes last.
    fn args_for(&self, clients: Option<usize>) -> Vec<OsString> {
        let mut args = self.args.clone();
        if let (Some(model), Some(clients)) = (self.model, clients) {
            let clients = clients.to_string();
            if !model.served_by.one_at_a_time() {
                args.extend(["--max-children".into(), clients.clone().into()]);
            }
            if model.served_by == (ServedBy::Processes { in_advance: true }) {
                args.extend(["--workers".into(), clients.into()]);
            }
        }
        if self.announces_port {
            args.push("0".into());
        }
        args
    }
}

/// A server started for one measurement, in its own process group (see
/// `testbed::Server`, which starts it, and kills the group when dropped).
/// It is stopped on every path: by [`Server::stop`], by `Drop` when a
/// measurement fails first, and by the kernel if echobench itself dies
/// (Ctrl-C, kill): the server is started with PR_SET_PDEATHSIG.
pub struct Server {
    running: testbed::Server,
    /// Its process ID (and process group).
    pub pid: i32,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `contender` (ready for `clients` clients at once, if said)
    /// and waits until it listens.
    pub fn start(contender: &Contender, clients: Option<usize>) -> Result<Server> {
        let mut command = Command::new(&contender.program);
        command.args(contender.args_for(clients));
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the child between fork and exec, where
        // only async-signal-safe calls are allowed: prctl, getppid and
        // _exit-free error returns are. It allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                // If echobench dies, whatever the cause, its server dies too;
                // if it died before this call, the server must not start.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let running = if contender.announces_port {
            testbed::Server::launch(&mut command)
        } else {
            // socat: a port free a moment ago (loopback, nobody else takes it).
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            // -t 30: after a client's half-close, socat waits only 0.5 s by
            // default for the rest of the echo, which cuts long streams.
            command.args([
                "-t".into(),
                "30".into(),
                format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
                "PIPE".into(),
            ]);
            testbed::Server::launch_on(&mut command, port)
        }
        .with_context(|| format!("{:?} did not start", contender.program))?;
        let (pid, addr) = (running.pid, SocketAddr::from(([127, 0, 0, 1], running.port)));
        Ok(Server { running, pid, addr })
    }

    /// SIGTERM, a moment to shut down, then SIGKILL to whatever is left.
    pub fn stop(self) {
        self.running.end(libc::SIGTERM, Duration::from_secs(10));
    }
}
