//! How the cost grows with the number of clients (`echobench scale`, run
//! by `make bench`): each server holds N clients connected at once, for N
//! from 10 to 10,000, and for each N the benchmark measures
//!
//! - how long opening the N connections takes (connect, then a first
//!   64-byte echo, so that the server really serves each: a fork, a
//!   thread, a descriptor in poll's set),
//! - the memory of all the server's processes together (PSS), and per
//!   client, and the page tables the kernel keeps for them,
//! - the latency of a 64-byte echo on every connection, one connection at
//!   a time, round after round: the cost of one event with N-1 clients
//!   idle (median and 99th percentile, in an HDR histogram),
//! - the connections refused, reset or failed.
//!
//! A server that fails at some N (a connection not served within the
//! wait, refused or reset) is not tried with more clients: the report
//! says where it stopped and why. Every echo is checked byte for byte.
//!
//! The benchmark closes its connections with a reset (SO_LINGER 0), so
//! that tens of thousands of them do not sit in TIME_WAIT on loopback and
//! slow down the next connect(2) calls.

use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::socket::{setsockopt, sockopt};

use super::chart;
use super::memory::pss_kib;
use super::rate::latency_histogram;
use super::servers::{Contender, Lineup, Server};
use super::Pattern;
use plotters::prelude::SeriesLabelPosition;
use tcpechod::support::log::say;
use testbed::children_of;

/// Bytes of each echo.
const ECHO: usize = 64;
/// How long a connection may take to connect, or an echo to come back,
/// before it counts as failed.
const WAIT: Duration = Duration::from_secs(5);
/// Threads opening the connections.
const OPENERS: usize = 4;

/// What to run.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// The servers.
    pub lineup: Lineup,
    /// A smoke run: few clients, few echoes, no socat.
    pub quick: bool,
}

impl ScaleOptions {
    /// The numbers of clients to hold at once.
    pub fn counts(&self) -> Vec<usize> {
        if self.quick {
            vec![10, 50]
        } else {
            vec![10, 100, 1_000, 5_000, 10_000]
        }
    }

    /// Echoes measured per N, at least: rounds over every connection
    /// until there are this many (and at least 3 rounds).
    fn samples(&self) -> usize {
        if self.quick {
            100
        } else {
            2_000
        }
    }
}

/// What one server showed with N clients.
#[derive(Debug, Clone, Default)]
pub struct Point {
    pub clients: usize,
    /// Connections opened and served (first echo back).
    pub opened: usize,
    /// How long opening them all took.
    pub open_ms: f64,
    /// PSS of all the server's processes, and their page tables, in KiB.
    pub pss_kib: u64,
    pub page_tables_kib: u64,
    pub processes: usize,
    /// Echoes measured, and their latency in microseconds.
    pub samples: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub refused: u64,
    pub reset: u64,
    /// Timed out, wrong echo, or any other error.
    pub failed: u64,
}

impl Point {
    /// Connections that did not do what they should.
    pub fn failures(&self) -> u64 {
        self.refused + self.reset + self.failed
    }

    /// PSS per client, in KiB: all the server's memory divided by its clients.
    pub fn per_client_kib(&self) -> f64 {
        self.pss_kib as f64 / self.clients.max(1) as f64
    }
}

/// One server's curve: a point per N, up to where it stopped.
#[derive(Debug, Clone)]
pub struct Curve {
    pub name: String,
    /// A reference (socat): its failures are reported, not fatal.
    pub reference: bool,
    /// A server that serves one client after another by design (see
    /// [`Contender::one_at_a_time`]): its failures are not fatal either.
    pub one_at_a_time: bool,
    pub points: Vec<Point>,
    /// Why no bigger N was tried, if it was not.
    pub stopped: Option<String>,
}

impl Curve {
    /// Its line in a chart: `y` of each point where the server did not fail.
    fn line(&self, y: fn(&Point) -> f64) -> chart::Line<'_> {
        let points = self.points.iter().filter(|p| p.failures() == 0).map(|p| (p.clients as f64, y(p)));
        chart::Line { name: &self.name, points: points.collect() }
    }
}

/// The whole scaling run.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    pub counts: Vec<usize>,
    pub curves: Vec<Curve>,
    /// What capped the numbers of clients here, if anything did.
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// Runs every server through every N.
pub fn run(options: &ScaleOptions) -> Result<ScaleReport> {
    let started = Instant::now();
    let mut notes = Vec::new();
    // The benchmark holds a descriptor per client; the servers it starts
    // inherit the raised limit too (the C server and socat do not raise it).
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raise the descriptor limit")?;
    }
    let room = usize::try_from(hard).unwrap_or(usize::MAX).saturating_sub(64);
    let mut counts = options.counts();
    if counts.iter().any(|&n| n > room) {
        notes.push(format!(
            "The descriptor limit here (ulimit -Hn {hard}) leaves room for {room} clients: bigger N were left out."
        ));
        counts.retain(|&n| n <= room);
    }
    let mut curves = Vec::new();
    for contender in options.lineup.contenders(options.quick) {
        let mut curve = Curve {
            name: contender.name.clone(),
            reference: contender.reference,
            one_at_a_time: contender.one_at_a_time(),
            points: vec![],
            stopped: None,
        };
        for &n in &counts {
            say(&format!("scale: {} with {n} clients\n", contender.name));
            let point = measure(&contender, n, options.samples())
                .with_context(|| format!("{} with {n} clients", contender.name))?;
            let failures = point.failures();
            let stopped = (failures > 0).then(|| stop_reason(&point));
            curve.points.push(point);
            if let Some(reason) = stopped {
                curve.stopped = Some(reason);
                break;
            }
        }
        curves.push(curve);
    }
    Ok(ScaleReport { counts, curves, notes, seconds: started.elapsed().as_secs_f64() })
}

fn stop_reason(point: &Point) -> String {
    let mut what = vec![format!("{} of {} clients served", point.opened, point.clients)];
    for (count, name) in [
        (point.refused, "refused"),
        (point.reset, "reset"),
        (point.failed, "failed (no echo within the wait, or a wrong one)"),
    ] {
        if count > 0 {
            what.push(format!("{count} {name}"));
        }
    }
    format!("at {} clients: {}", point.clients, what.join("; "))
}

/// How a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Refused,
    Reset,
    Failed,
}

impl Failure {
    fn of(err: &std::io::Error) -> Failure {
        match err.kind() {
            ErrorKind::ConnectionRefused => Failure::Refused,
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => Failure::Reset,
            _ => Failure::Failed,
        }
    }
}

#[derive(Default)]
struct Tally {
    refused: AtomicU64,
    reset: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    fn count(&self, failure: Failure) {
        let counter = match failure {
            Failure::Refused => &self.refused,
            Failure::Reset => &self.reset,
            Failure::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn total(&self) -> u64 {
        [&self.refused, &self.reset, &self.failed].iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// One echo of 64 bytes of the pattern of (`client`, `round`), checked.
fn echo(sock: &mut TcpStream, client: usize, round: u64, buf: &mut [u8; 2 * ECHO]) -> Result<(), Failure> {
    let (sent, back) = buf.split_at_mut(ECHO);
    Pattern::new((client as u64) << 20 | round).fill(sent);
    sock.write_all(sent).map_err(|e| Failure::of(&e))?;
    sock.read_exact(back).map_err(|e| Failure::of(&e))?;
    if sent == back {
        Ok(())
    } else {
        Err(Failure::Failed)
    }
}

/// Connects a client and has its first echo back.
fn open(addr: SocketAddr, client: usize) -> Result<TcpStream, Failure> {
    let mut sock = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| Failure::of(&e))?;
    sock.set_nodelay(true).map_err(|e| Failure::of(&e))?;
    sock.set_read_timeout(Some(WAIT)).map_err(|e| Failure::of(&e))?;
    sock.set_write_timeout(Some(WAIT)).map_err(|e| Failure::of(&e))?;
    echo(&mut sock, client, 0, &mut [0; 2 * ECHO])?;
    Ok(sock)
}

/// Starts the server, holds `n` clients, measures, lets them go.
fn measure(contender: &Contender, n: usize, samples: usize) -> Result<Point> {
    let server = Server::start(contender, Some(n))?;
    let tally = Tally::default();
    let give_up = AtomicBool::new(false);
    let opened: Mutex<Vec<(usize, TcpStream)>> = Mutex::new(Vec::with_capacity(n));
    let start = Instant::now();
    thread::scope(|scope| {
        for opener in 0..OPENERS {
            let (tally, give_up, opened, addr) = (&tally, &give_up, &opened, server.addr);
            scope.spawn(move || {
                for client in (opener..n).step_by(OPENERS) {
                    if give_up.load(Ordering::Relaxed) {
                        break;
                    }
                    match open(addr, client) {
                        Ok(sock) => opened.lock().unwrap_or_else(|e| e.into_inner()).push((client, sock)),
                        Err(failure) => {
                            tally.count(failure);
                            // One client not served: the server is full.
                            give_up.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let open_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut clients = opened.into_inner().unwrap_or_else(|e| e.into_inner());
    clients.sort_by_key(|(client, _)| *client);

    // Memory, while every client is connected.
    let mut processes = vec![server.pid];
    processes.extend(children_of(server.pid).iter().map(|child| child.pid));
    let pss_kib = processes.iter().filter_map(|&pid| pss_kib(pid)).sum();
    let page_tables_kib = processes.iter().filter_map(|&pid| page_tables_kib(pid)).sum();

    // Latency: one echo at a time, every client in turn, round after round.
    let mut histogram = latency_histogram();
    let mut buf = [0u8; 2 * ECHO];
    let rounds = if give_up.load(Ordering::Relaxed) { 0 } else { samples.div_ceil(n.max(1)).max(3) };
    for round in 1..=rounds as u64 {
        for (client, sock) in &mut clients {
            let started = Instant::now();
            match echo(sock, *client, round, &mut buf) {
                Ok(()) => histogram.saturating_record(started.elapsed().as_micros() as u64),
                Err(failure) => tally.count(failure),
            }
        }
        if tally.total() > 0 {
            break;
        }
    }

    // A reset, not a FIN: no TIME_WAIT left behind (see the module's comment).
    for (_, sock) in &clients {
        let _ = setsockopt(sock, sockopt::Linger, &libc::linger { l_onoff: 1, l_linger: 0 });
    }
    let opened = clients.len();
    drop(clients);
    server.stop();
    Ok(Point {
        clients: n,
        opened,
        open_ms,
        pss_kib,
        page_tables_kib,
        processes: processes.len(),
        samples: histogram.len(),
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        refused: tally.refused.into_inner(),
        reset: tally.reset.into_inner(),
        failed: tally.failed.into_inner(),
    })
}

/// The "VmPTE:" line of /proc/PID/status: its page tables, in KiB.
fn page_tables_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPTE:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl ScaleReport {
    /// A failure of one of ours or of the C baseline fails the benchmark
    /// only where the server was expected to take the load: every model
    /// but one that serves one client at a time by design (iterative).
    pub fn unexpected_failures(&self) -> Vec<String> {
        self.curves
            .iter()
            .filter(|c| !c.reference && !c.one_at_a_time)
            .filter_map(|c| c.stopped.as_ref().map(|why| format!("{} {why}", c.name)))
            .collect()
    }

    /// A table: a row per server, a column per N, `cell` of each point
    /// ("–" where the server was not measured at that N).
    fn table(&self, out: &mut String, title: &str, cell: impl Fn(&Point) -> String) {
        let _ = writeln!(out, "**{title}**\n");
        let _ = write!(out, "| server |");
        for n in &self.counts {
            let _ = write!(out, " {n} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &self.counts {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for curve in &self.curves {
            let _ = write!(out, "| {} |", curve.name);
            for n in &self.counts {
                let point = curve.points.iter().find(|p| p.clients == *n);
                let text = match point {
                    Some(p) if p.failures() > 0 => format!("✗ {}", cell(p)),
                    Some(p) => cell(p),
                    None => "–".to_string(),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        out.push('\n');
    }

    /// The report, bench/SCALING.md.
    pub fn markdown(&self, machine: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# How the cost grows with the number of clients\n");
        let _ = writeln!(out, "Written by `make bench` (`echobench scale`); do not edit by hand.\n");
        let _ = writeln!(out, "Machine: {machine}\n");
        let _ = writeln!(
            out,
            "Each server runs on 127.0.0.1, started afresh for each number of clients N, and holds N \
             clients connected at once (TCPechod with `--max-children N`, and `--workers N` in prefork). \
             Every echo is checked byte for byte. A cell marked ✗ is where the server failed; it was \
             not tried with more clients.\n"
        );
        let _ = writeln!(
            out,
            "- **open**: the time to open the N connections, {OPENERS} at a time: connect, and a first \
             {ECHO}-byte echo, so that the server really serves each (a fork, a thread, a descriptor in \
             poll's set).\n\
             - **PSS**: the memory of all the server's processes together with the N clients connected \
             (proportional set size, /proc/PID/smaps_rollup), divided by N; and the page tables the \
             kernel keeps for those processes (VmPTE), which PSS does not count.\n\
             - **latency**: one {ECHO}-byte echo on each connection in turn, one at a time, round after \
             round (at least 3 rounds and 2,000 echoes): the cost of one event while N-1 clients are idle. \
             Median and 99th percentile, from an HDR histogram.\n\
             - **failures**: connections refused, reset, or not served within {} s.\n",
            WAIT.as_secs()
        );
        for note in &self.notes {
            let _ = writeln!(out, "{note}\n");
        }
        self.table(&mut out, "Time to open N connections, ms", |p| format!("{:.0}", p.open_ms));
        self.table(&mut out, "Memory per client (PSS / N), KiB", |p| format!("{:.1}", p.per_client_kib()));
        self.table(&mut out, "Memory of the whole server (PSS), MiB; processes", |p| {
            format!("{:.1}; {}", p.pss_kib as f64 / 1024.0, p.processes)
        });
        self.table(&mut out, "Page tables of the server's processes (VmPTE), MiB", |p| {
            format!("{:.1}", p.page_tables_kib as f64 / 1024.0)
        });
        self.table(&mut out, "Echo latency, median / 99th percentile, µs", |p| match p.samples {
            0 => "–".to_string(),
            _ => format!("{} / {}", p.p50_us, p.p99_us),
        });
        self.table(&mut out, "Failures: refused / reset / failed", |p| {
            format!("{} / {} / {}", p.refused, p.reset, p.failed)
        });
        let _ = writeln!(out, "![Memory per client](scale-memory.svg)\n");
        let _ = writeln!(out, "![Echo latency, 99th percentile](scale-latency.svg)\n");
        let stops: Vec<String> = self
            .curves
            .iter()
            .filter_map(|c| c.stopped.as_ref().map(|why| format!("- **{}** stopped {why}.", c.name)))
            .collect();
        if !stops.is_empty() {
            let _ = writeln!(out, "Where a server stopped:\n\n{}\n", stops.join("\n"));
        }
        let _ = writeln!(out, "The whole run took {:.0} s.", self.seconds);
        out
    }

    /// The charts: memory per client, and the 99th percentile of the echo
    /// latency, against N (points where a server failed left out).
    pub fn charts(&self) -> Result<(String, String)> {
        let memory: Vec<chart::Line> = self.curves.iter().map(|c| c.line(Point::per_client_kib)).collect();
        let latency: Vec<chart::Line> = self.curves.iter().map(|c| c.line(|p| p.p99_us as f64)).collect();
        Ok((
            chart::lines(
                "Memory per client (PSS / N)",
                "clients connected at once (N)",
                "KiB per client",
                SeriesLabelPosition::LowerLeft,
                &memory,
            )?,
            chart::lines(
                "Echo latency, 99th percentile",
                "clients connected at once (N)",
                "µs",
                SeriesLabelPosition::UpperLeft,
                &latency,
            )?,
        ))
    }

    /// Writes SCALING.md, scale-memory.svg and scale-latency.svg into `dir`.
    pub fn write(&self, dir: &Path, machine: &str) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (memory, latency) = self.charts()?;
        for (name, text) in [
            ("SCALING.md", self.markdown(machine)),
            ("scale-memory.svg", memory),
            ("scale-latency.svg", latency),
        ] {
            let path = dir.join(name);
            fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }
}
