//! The whole benchmark (`make bench`): every server model of TCPechod, the
//! C baseline and socat, each started on a free port of 127.0.0.1 and put
//! through the same tests, several times; then the report.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::memory;
use super::rate::{self, RateOptions};
use super::report::{Measured, Parameters, Report};
use super::stream::{self, StreamOptions};
use super::Progress;
use tcpechod::log::say;

/// What to run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The TCPechod binary.
    pub server: PathBuf,
    /// The C baseline built with `cc -O2`, if any.
    pub c_server: Option<PathBuf>,
    /// The C baseline built with `cc -O2 -static`, if any.
    pub c_static_server: Option<PathBuf>,
    /// A smoke run: one short run of each test.
    pub quick: bool,
}

/// One server under test and how to start it.
struct Contender {
    name: String,
    program: OsString,
    args: Vec<OsString>,
    /// Ours and the C server print their port; socat is given one.
    announces_port: bool,
    /// A reference only (socat): its failures are reported, not fatal.
    reference: bool,
}

impl SuiteOptions {
    fn parameters(&self) -> Parameters {
        if self.quick {
            Parameters {
                runs: 1,
                rate: RateOptions { concurrency: 4, size: 64, duration: Duration::from_secs(1) },
                one_stream: StreamOptions { streams: 1, bytes: 16 << 20 },
                four_streams: StreamOptions { streams: 4, bytes: 4 << 20 },
                idle_clients: 20,
            }
        } else {
            Parameters {
                runs: 3,
                rate: RateOptions { concurrency: 8, size: 64, duration: Duration::from_secs(3) },
                one_stream: StreamOptions { streams: 1, bytes: 1 << 30 },
                four_streams: StreamOptions { streams: 4, bytes: 256 << 20 },
                idle_clients: 100,
            }
        }
    }

    fn contenders(&self) -> Vec<Contender> {
        let ours = |name: &str, extra: &[&str]| {
            let mut args: Vec<OsString> = vec!["-q".into(), "--bind".into(), "127.0.0.1".into()];
            args.extend(extra.iter().map(OsString::from));
            args.push("0".into());
            Contender {
                name: name.into(),
                program: self.server.clone().into(),
                args,
                announces_port: true,
                reference: false,
            }
        };
        // Every model of the server's table, and the fork model once more
        // with --splice.
        let mut all: Vec<Contender> =
            tcpechod::server::models::MODELS.iter().map(|m| ours(m.name, &["--mode", m.name])).collect();
        all.insert(1, ours("fork --splice", &["--mode", "fork", "--splice"]));
        let c = |name: &str, path: &PathBuf| Contender {
            name: name.into(),
            program: path.clone().into(),
            args: vec!["0".into()],
            announces_port: true,
            reference: false,
        };
        if let Some(path) = &self.c_server {
            all.push(c("C fork (cc -O2)", path));
        }
        if let Some(path) = &self.c_static_server {
            all.push(c("C fork (cc -O2 -static)", path));
        }
        if !self.quick && on_path("socat") {
            all.push(Contender {
                name: "socat fork".into(),
                program: "socat".into(),
                args: vec![],
                announces_port: false,
                reference: true,
            });
        }
        all
    }
}

/// Runs every test against every server; fails if any echo was wrong.
///
/// The runs go round the servers (run 1 of each, then run 2 of each...),
/// so that a slow moment of the machine does not fall on one server only.
pub fn run(options: &SuiteOptions) -> Result<Report> {
    let parameters = options.parameters();
    let contenders = options.contenders();
    let started = Instant::now();
    let progress = &mut Progress::new(false);
    let mut rows: Vec<Measured> = contenders
        .iter()
        .map(|c| Measured { name: c.name.clone(), reference: c.reference, ..Measured::default() })
        .collect();
    for run in 1..=parameters.runs {
        for (contender, row) in contenders.iter().zip(&mut rows) {
            say(&format!("run {run}/{}: {}\n", parameters.runs, contender.name));
            let server = Server::start(contender).with_context(|| format!("start {}", contender.name))?;
            row.rate.push(rate::run(server.addr, parameters.rate, progress));
            row.one_stream.push(stream::run(server.addr, parameters.one_stream, progress));
            row.four_streams.push(stream::run(server.addr, parameters.four_streams, progress));
            server.stop();
        }
    }
    for (contender, row) in contenders.iter().zip(&mut rows) {
        say(&format!("memory: {}\n", contender.name));
        let server = Server::start(contender).with_context(|| format!("start {}", contender.name))?;
        row.memory = memory::run(server.addr, parameters.idle_clients, server.pid)
            .with_context(|| format!("memory of {}", contender.name))?;
        server.stop();
    }
    let report = Report { parameters, rows, seconds: started.elapsed().as_secs_f64() };
    let (errors, mismatches) = report.failures();
    if errors + mismatches > 0 {
        super::out(&report.table());
        bail!(
            "{errors} connections failed and {mismatches} echoes differed: {}",
            report.failures_by_server()
        );
    }
    let reference = report.failures_by_server();
    if !reference.is_empty() {
        say(&format!("echobench: failures of reference servers (reported, not counted): {reference}\n"));
    }
    Ok(report)
}

/// A server started for one round of tests, in its own process group.
/// It is stopped on every path: by [`Server::stop`], by `Drop` when a
/// measurement fails first, and by the kernel if echobench itself dies
/// (Ctrl-C, kill): the server is started with PR_SET_PDEATHSIG.
struct Server {
    child: Child,
    pid: i32,
    addr: SocketAddr,
    stopped: bool,
}

impl Server {
    fn start(contender: &Contender) -> Result<Server> {
        let mut command = Command::new(&contender.program);
        command.args(&contender.args).stdin(Stdio::null()).stdout(Stdio::null());
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
        let mut child = command.spawn().with_context(|| format!("start {:?}", contender.program))?;
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
    fn stop(mut self) {
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

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
