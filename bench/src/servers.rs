//! The servers that the benchmark measures, and how each is started and
//! stopped: TCPechod in each of its models, the C baseline, socat.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
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

/// A server started for one measurement, in its own process group.
/// It is stopped on every path: by [`Server::stop`], by `Drop` when a
/// measurement fails first, and by the kernel if echobench itself dies
/// (Ctrl-C, kill): the server is started with PR_SET_PDEATHSIG.
pub struct Server {
    child: Child,
    /// Its process ID (and process group).
    pub pid: i32,
    /// Where it listens.
    pub addr: SocketAddr,
    stopped: bool,
}

impl Server {
    /// Starts `contender` (ready for `clients` clients at once, if said)
    /// and waits until it listens.
    pub fn start(contender: &Contender, clients: Option<usize>) -> Result<Server> {
        let mut command = Command::new(&contender.program);
        command.args(contender.args_for(clients)).stdin(Stdio::null()).stdout(Stdio::null());
        command.stderr(if contender.announces_port { Stdio::piped() } else { Stdio::null() });
        let fixed_port = if contender.announces_port {
            None
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
            Some(port)
        };
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
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
        let mut child = command.spawn().with_context(|| format!("cannot run {:?}", contender.program))?;
        let pid = child.id() as i32;
        let port = match fixed_port {
            Some(port) => {
                wait_until_listening(port).inspect_err(|_| stop_group(&mut child, pid))?;
                port
            }
            None => announced_port(&mut child).inspect_err(|_| stop_group(&mut child, pid))?,
        };
        Ok(Server { child, pid, addr: SocketAddr::from(([127, 0, 0, 1], port)), stopped: false })
    }

    /// SIGTERM, a moment to shut down, then SIGKILL to whatever is left.
    pub fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        stop_group(&mut self.child, self.pid);
        self.stopped = true;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            stop_group(&mut self.child, self.pid);
        }
    }
}

/// SIGKILL to the whole group (children that outlived the server
/// included), then the server is reaped.
fn stop_group(child: &mut Child, pid: i32) {
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = child.wait();
}

/// Reads the port from the first line on the server's stderr
/// ("... listening on 127.0.0.1:PORT"), then keeps draining stderr.
fn announced_port(child: &mut Child) -> Result<u16> {
    let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {} // the rest of the log goes nowhere
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| anyhow!("the server did not start"))?;
    first
        .rsplit(':')
        .next()
        .and_then(|port| port.trim().parse().ok())
        .ok_or_else(|| anyhow!("no port in {first:?}"))
}

fn wait_until_listening(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on port {port}")
}
