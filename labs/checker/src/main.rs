//! The checker of your server: `make check` (in labs/student) checks
//! every exercise, `make check5` (6, 7) one, `make check1` the part that
//! is given. It is a crate of its own, beside yours, so that nothing in the
//! crate you edit changes what checks it; labs/student's `make` builds it
//! into `labs/student/check`. (Your teacher grades with their own copy.)
//!
//! ```text
//! check [--json] [--server PATH] [--noreaper PATH] [--source PATH] [1|5|6|7]...
//! ```
//!
//! It runs the server (`./TCPechod`; for exercise 5 also
//! `./TCPechod-noreaper`) on free ports of 127.0.0.1, as real clients would
//! use it, and looks at its processes and sockets themselves, in /proc: a
//! zombie is a process in state Z, a handler is a bit in the mask of caught
//! signals, a closed socket is a descriptor gone, a parent that spins is in
//! state R and burns CPU. A log line alone never passes a check. What no
//! run can show is read in the source (`src/main.rs`, the module
//! `source`): that the reaper collects the children with waitpid, in a
//! loop, and nothing else does; that every handler does only
//! async-signal-safe work; that the SIGTERM handler only notes the
//! request, and the loop does the rest.
//!
//! Each of exercises 5, 6 and 7 is worth one point when all its checks
//! pass: the last line says `SCORE k/3` (`NOTA k/3`). `--json` prints the
//! result as one JSON object instead of the text. It speaks Spanish when
//! LC_ALL, LC_MESSAGES or LANG says so, English otherwise.
//!
//! Exit status: 0 when every check asked for passed; 1 when one failed;
//! 2 for a usage error (an unknown option or exercise, a binary or the
//! source missing); 129, 130 or 143 when SIGHUP, SIGINT (Ctrl-C) or
//! SIGTERM stopped it, after it stopped every process it had started.
//!
//! Every process the server starts is the checker's to stop: each server
//! runs in a process group of its own, the checker is their subreaper
//! (orphans come back to it, not to init), and it kills and collects what
//! is left after each check, at its end, and when it is interrupted. A
//! server with more than [`MAX_PROCESSES`] processes at once is stopped
//! whole: RLIMIT_NPROC holds a fork bomb back (except for root), and a
//! watchdog counts.
//!
//! The server runs as the same user as the checker (unless the teacher's
//! grader, as root, says `--run-as`), so the checker guards itself from
//! it: it is not dumpable (no ptrace, no pidfd_getfd, no /proc/PID/fd of
//! it for that user), and it writes only in a private folder of its own
//! (mkdtemp, mode 0700), opening its files there with O_EXCL and
//! O_NOFOLLOW, and removing the folder at its end.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

mod source;

/// The longest a check waits for what it expects to see.
const WAIT: Duration = Duration::from_secs(10);
/// The most processes a server may have at once (itself, its children and
/// theirs, zombies included), well above what any exercise needs.
const MAX_PROCESSES: usize = 100;
/// Clock ticks per second of the CPU times in /proc/PID/stat (USER_HZ,
/// the same on every Linux architecture).
const TICKS_PER_SECOND: u64 = 100;

/// What `check --help` prints.
const USAGE: (&str, &str) = (
    "uso: check [--json] [--server RUTA] [--noreaper RUTA] [--source RUTA] [--run-as UID:GID] [1|5|6|7]...

Ejecuta tu servidor con las comprobaciones de la parte que se te da (1: los
ejercicios 1 a 4) y de los ejercicios 5, 6 y 7 (todas, si no nombras
ninguno), y puntúa los ejercicios 5, 6 y 7.
  --json             el resultado como un objeto JSON, en vez del texto
  --server RUTA      el servidor (./TCPechod)
  --noreaper RUTA    el servidor compilado sin el reaper (./TCPechod-noreaper)
  --source RUTA      el código del servidor, para los ejercicios 5 a 7 (src/main.rs)
  --run-as UID:GID   (para el profesorado, como root) ejecuta los servidores
                     con ese usuario y grupo
Estado de salida: 0 si pasó todo, 1 si algo falló, 2 si la orden está mal,
129/130/143 si lo paró SIGHUP/SIGINT/SIGTERM.",
    "usage: check [--json] [--server PATH] [--noreaper PATH] [--source PATH] [--run-as UID:GID] [1|5|6|7]...

Runs your server against the checks of the part you were given (1:
exercises 1 to 4) and of exercises 5, 6 and 7 (all, when none is named),
and scores exercises 5, 6 and 7.
  --json             the result as one JSON object, instead of the text
  --server PATH      the server (./TCPechod)
  --noreaper PATH    the server built without the reaper (./TCPechod-noreaper)
  --source PATH      the server's source, for exercises 5 to 7 (src/main.rs)
  --run-as UID:GID   (for teachers, as root) runs the servers as that user
                     and group
Exit status: 0 every check passed, 1 one failed, 2 a usage error,
129/130/143 stopped by SIGHUP/SIGINT/SIGTERM.",
);

fn main() {
    // First of all: a server runs as this user, and must not be able to
    // ptrace the checker, take its descriptors (pidfd_getfd) or open them
    // through /proc/PID/fd. The servers it starts are dumpable again:
    // execve resets the flag.
    let _ = nix::sys::prctl::set_dumpable(false);
    let spanish = spanish();
    let options = match Options::parse(std::env::args().skip(1), spanish).and_then(|o| o.missing_file()) {
        Ok(options) => options,
        Err((es, en)) => {
            let _ = writeln!(std::io::stderr(), "check: {}", if spanish { es } else { en });
            std::process::exit(2);
        }
    };
    keeper::start(spanish, options.run_as);
    let mut report = Report { spanish, json: options.json, exercises: Vec::new() };
    for exercise in &options.exercises {
        match exercise.as_str() {
            "1" => check_given(&mut report, &options),
            "5" => check_reaper(&mut report, &options),
            "6" => check_sigpipe(&mut report, &options),
            _ => check_sigterm(&mut report, &options),
        }
        if let Some(count) = keeper::over_limit() {
            report.bad(
                "process-limit",
                (
                    &format!(
                        "el servidor llegó a tener {count} procesos a la vez, más de los {MAX_PROCESSES} que permite el comprobador, que los ha parado todos"
                    ),
                    &format!(
                        "the server had {count} processes at once, more than the {MAX_PROCESSES} the checker allows: it stopped them all"
                    ),
                ),
                (
                    "un hijo por cliente conectado, que termina cuando su cliente se va",
                    "one child per connected client, which ends when its client leaves",
                ),
                (
                    "fork() en el bucle de main(): solo el padre crea hijos, uno por cliente aceptado",
                    "fork() in the loop of main(): only the parent forks, once per accepted client",
                ),
            );
        }
    }
    keeper::stop_all();
    let status = report.finish();
    std::process::exit(status);
}

/// The system's words for an I/O error, without Rust's "(os error N)".
fn reason(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// What the command line asked for.
struct Options {
    json: bool,
    server: String,
    noreaper: String,
    source: String,
    /// The user and group the servers run as, if not the checker's.
    run_as: Option<(u32, u32)>,
    /// "1", "5", "6", "7", in order, each once.
    exercises: Vec<String>,
}

impl Options {
    /// The options, or what is wrong with them (in Spanish and English).
    fn parse(args: impl Iterator<Item = String>, spanish: bool) -> Result<Options, (String, String)> {
        let mut options = Options {
            json: false,
            server: "./TCPechod".into(),
            noreaper: "./TCPechod-noreaper".into(),
            source: "src/main.rs".into(),
            run_as: None,
            exercises: Vec::new(),
        };
        let mut args = args;
        while let Some(arg) = args.next() {
            let mut path = |name: &str| {
                args.next().ok_or_else(|| {
                    (
                        format!("falta la ruta tras {name} (check --help)"),
                        format!("{name} needs a path (check --help)"),
                    )
                })
            };
            match arg.as_str() {
                "--json" => options.json = true,
                "--server" => options.server = path("--server")?,
                "--noreaper" => options.noreaper = path("--noreaper")?,
                "--source" => options.source = path("--source")?,
                "--run-as" => {
                    let ids = args.next().unwrap_or_default();
                    let parsed =
                        ids.split_once(':').and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
                    match parsed {
                        Some(ids) => options.run_as = Some(ids),
                        None => {
                            return Err((
                                format!("--run-as espera UID:GID, números, no «{ids}»"),
                                format!("--run-as takes UID:GID, numbers, not '{ids}'"),
                            ))
                        }
                    }
                }
                "-h" | "--help" => {
                    let _ = writeln!(std::io::stdout(), "{}", if spanish { USAGE.0 } else { USAGE.1 });
                    std::process::exit(0);
                }
                "1" | "5" | "6" | "7" => {
                    if !options.exercises.contains(&arg) {
                        options.exercises.push(arg);
                    }
                }
                other if other.starts_with('-') => {
                    return Err((
                        format!("no existe la opción «{other}» (check --help)"),
                        format!("unknown option '{other}' (check --help)"),
                    ))
                }
                other => {
                    return Err((
                        format!("no hay ejercicio «{other}»: usa 1, 5, 6 o 7"),
                        format!("no exercise '{other}': use 1, 5, 6 or 7"),
                    ))
                }
            }
        }
        if options.exercises.is_empty() {
            options.exercises = ["1", "5", "6", "7"].map(String::from).to_vec();
        }
        options.exercises.sort();
        Ok(options)
    }

    /// The options, unless a file the exercises asked for need is not there.
    fn missing_file(self) -> Result<Options, (String, String)> {
        let wants = |n: &str| self.exercises.iter().any(|e| e == n);
        let mut needed = vec![&self.server];
        if wants("5") {
            needed.push(&self.noreaper);
        }
        for binary in needed {
            if !std::path::Path::new(binary).is_file() {
                return Err((
                    format!("falta {binary}: compílalo antes con make"),
                    format!("{binary} is missing: build it first with make"),
                ));
            }
        }
        if ["5", "6", "7"].iter().any(|n| wants(n)) && !std::path::Path::new(&self.source).is_file() {
            let source = &self.source;
            return Err((
                format!("falta el código fuente, {source}"),
                format!("the source, {source}, is missing"),
            ));
        }
        Ok(self)
    }
}

/// Whether the user's locale is Spanish.
fn spanish() -> bool {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .is_some_and(|value| value.starts_with("es"))
}

/// One check's result, in the user's language.
struct CheckResult {
    name: &'static str,
    ok: bool,
    message: String,
    /// For a failed check: what was expected, and where to look.
    expected: Option<String>,
    see: Option<String>,
}

/// One exercise (or the given part, "1") and its checks.
struct Exercise {
    key: &'static str,
    title: String,
    checks: Vec<CheckResult>,
}

impl Exercise {
    fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }
}

/// What the checker found, printed as it goes (text) or at the end (JSON).
struct Report {
    spanish: bool,
    json: bool,
    exercises: Vec<Exercise>,
}

impl Report {
    fn pick(&self, es: &str, en: &str) -> String {
        String::from(if self.spanish { es } else { en })
    }

    /// One line on stdout, in text mode (not a panic if nobody reads it).
    fn say(&self, line: &str) {
        if !self.json {
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    }

    fn section(&mut self, key: &'static str, es: &str, en: &str) {
        let title = self.pick(es, en);
        self.say("");
        self.say(&title);
        self.exercises.push(Exercise { key, title, checks: Vec::new() });
    }

    fn record(&mut self, check: CheckResult) {
        if let Some(exercise) = self.exercises.last_mut() {
            exercise.checks.push(check);
        }
    }

    fn good(&mut self, name: &'static str, es: &str, en: &str) {
        let message = self.pick(es, en);
        self.say(&self.pick(&format!("  [BIEN] {es}"), &format!("  [OK]   {en}")));
        self.record(CheckResult { name, ok: true, message, expected: None, see: None });
    }

    /// A failed check: what was seen, what was expected, where to look.
    fn bad(&mut self, name: &'static str, seen: (&str, &str), expected: (&str, &str), hint: (&str, &str)) {
        let (message, expected, see) =
            (self.pick(seen.0, seen.1), self.pick(expected.0, expected.1), self.pick(hint.0, hint.1));
        self.say(&self.pick(&format!("  [MAL]  {message}"), &format!("  [FAIL] {message}")));
        self.say(
            &self.pick(
                &format!("         se esperaba: {expected}"),
                &format!("         expected: {expected}"),
            ),
        );
        self.say(&self.pick(&format!("         mira: {see}"), &format!("         see: {see}")));
        self.record(CheckResult { name, ok: false, message, expected: Some(expected), see: Some(see) });
    }

    /// Prints the score (or the whole result as JSON) and returns the exit
    /// status: 0 if every check passed, 1 otherwise.
    fn finish(&self) -> i32 {
        let graded: Vec<&Exercise> = self.exercises.iter().filter(|e| e.key != "1").collect();
        let points = graded.iter().filter(|e| e.passed()).count();
        let all_passed = self.exercises.iter().all(Exercise::passed);
        if self.json {
            let _ = writeln!(std::io::stdout(), "{}", self.to_json(points, graded.len(), all_passed));
        } else if !graded.is_empty() {
            self.say("");
            self.say(&self.pick(
                &format!("NOTA {points}/{}", graded.len()),
                &format!("SCORE {points}/{}", graded.len()),
            ));
        }
        i32::from(!all_passed)
    }

    fn to_json(&self, points: usize, out_of: usize, passed: bool) -> String {
        let language = if self.spanish { "es" } else { "en" };
        let exercises: Vec<String> = self
            .exercises
            .iter()
            .map(|exercise| {
                let checks: Vec<String> = exercise
                    .checks
                    .iter()
                    .map(|c| {
                        let mut fields = vec![
                            format!("\"name\":{}", json_string(c.name)),
                            format!("\"ok\":{}", c.ok),
                            format!("\"message\":{}", json_string(&c.message)),
                        ];
                        if let (Some(expected), Some(see)) = (&c.expected, &c.see) {
                            fields.push(format!("\"expected\":{}", json_string(expected)));
                            fields.push(format!("\"see\":{}", json_string(see)));
                        }
                        format!("{{{}}}", fields.join(","))
                    })
                    .collect();
                format!(
                    "{}:{{\"title\":{},\"passed\":{},\"checks\":[{}]}}",
                    json_string(exercise.key),
                    json_string(&exercise.title),
                    exercise.passed(),
                    checks.join(",")
                )
            })
            .collect();
        format!(
            "{{\"language\":\"{language}\",\"passed\":{passed},\"score\":{points},\"out_of\":{out_of},\"exercises\":{{{}}}}}",
            exercises.join(",")
        )
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters
/// escaped (RFC 8259); the rest, UTF-8, as it is.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The processes the checker starts, and every process they start: none
/// outlives the check that needs it, nor the checker, whichever way it
/// ends.
mod keeper {
    use super::*;

    /// Process groups of the servers started (each server leads its own),
    /// and whether they still run: only a group with a process of ours in
    /// it is ever signalled, so a reused number is never hit.
    static SERVERS: Mutex<Vec<(i32, bool)>> = Mutex::new(Vec::new());
    /// Set once the checker is stopping: no server starts after that.
    static STOPPING: AtomicBool = AtomicBool::new(false);
    /// How many processes a server had when the watchdog stopped it.
    static OVER_LIMIT: AtomicUsize = AtomicUsize::new(0);
    /// The checker's own folder, or why it could not be made.
    static FOLDER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    /// The user and group the servers run as, if not the checker's.
    static RUN_AS: OnceLock<Option<(u32, u32)>> = OnceLock::new();

    /// Makes the checker's folder, becomes the subreaper of what it
    /// starts, and starts the two threads that stop everything: on
    /// SIGINT, SIGTERM or SIGHUP, and on a fork bomb.
    pub fn start(spanish: bool, run_as: Option<(u32, u32)>) {
        let _ = RUN_AS.set(run_as);
        // Under TMPDIR, which may be shared (/tmp): a name nobody can
        // guess, made here and nowhere else, that only this user can
        // enter. A server's symbolic link there cannot redirect a write.
        let template = std::env::temp_dir().join("tcpechod-check-XXXXXX");
        let made = nix::unistd::mkdtemp(&template).map_err(|errno| {
            format!("{}: {}", template.parent().unwrap_or(Path::new("/")).display(), errno.desc())
        });
        let _ = FOLDER.set(made);
        let _ = nix::sys::prctl::set_child_subreaper(true);
        // Blocked here, before any thread exists, so every thread inherits
        // the mask and only `sigwait` below takes them. (Each server
        // unblocks them before exec: see `Server::start`.)
        let mut stops = nix::sys::signal::SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            stops.add(sig);
        }
        if stops.thread_block().is_err() {
            return;
        }
        thread::spawn(move || {
            let Ok(sig) = stops.wait() else { return };
            // Nothing more on stdout: what the checks print now is moot.
            let _quiet = std::io::stdout().lock();
            stop_all();
            let _ = writeln!(
                std::io::stderr(),
                "{}",
                if spanish {
                    format!("check: interrumpido ({sig}); sus servidores están parados")
                } else {
                    format!("check: interrupted ({sig}); its servers are stopped")
                }
            );
            std::process::exit(128 + sig as i32);
        });
        thread::spawn(watchdog);
    }

    /// Spawns a server, unless the checker is stopping (then None);
    /// remembers its group.
    pub fn spawn(command: &mut Command) -> Option<std::io::Result<Child>> {
        let mut servers = SERVERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if STOPPING.load(Ordering::SeqCst) {
            return None;
        }
        let child = command.spawn();
        if let Ok(child) = &child {
            servers.push((child.id() as i32, true));
        }
        Some(child)
    }

    /// The server `pid` has been waited for: stop whatever it left.
    pub fn release(pid: i32) {
        for server in SERVERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter_mut() {
            if server.0 == pid {
                server.1 = false;
            }
        }
        sweep(false);
    }

    /// Stops and collects every process the checker started, for good,
    /// and removes the checker's folder.
    pub fn stop_all() {
        {
            // Under the lock: a spawn under way ends first, none starts after.
            let _servers = SERVERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            STOPPING.store(true, Ordering::SeqCst);
        }
        sweep(true);
        if let Some(Ok(folder)) = FOLDER.get() {
            let _ = fs::remove_dir_all(folder);
        }
    }

    /// The checker's folder for what it writes; or, if it could not be
    /// made, where and why not.
    pub fn folder() -> Result<&'static Path, &'static str> {
        match FOLDER.get() {
            Some(Ok(folder)) => Ok(folder),
            Some(Err(why)) => Err(why),
            None => Err("?"),
        }
    }

    /// The user and group the servers run as, if not the checker's.
    pub fn run_as() -> Option<(u32, u32)> {
        RUN_AS.get().copied().flatten()
    }

    /// The number of processes of a server the watchdog stopped, once.
    pub fn over_limit() -> Option<usize> {
        Some(OVER_LIMIT.swap(0, Ordering::SeqCst)).filter(|&count| count > 0)
    }

    /// Every process that descends from the checker (zombies too).
    fn family() -> Vec<Proc> {
        let me = std::process::id() as i32;
        let all = processes();
        let mut family: Vec<Proc> = Vec::new();
        let mut parents = vec![me];
        while let Some(parent) = parents.pop() {
            for p in all.iter().filter(|p| p.ppid == parent) {
                parents.push(p.pid);
                family.push(p.clone());
            }
        }
        family
    }

    /// Kills every process of the family (and, at once, the whole group
    /// of every server, which also catches a fork in flight) and collects
    /// the zombies that are the checker's children, until none is left.
    /// A running server's zombie is left to its `Child`, unless `all`.
    fn sweep(all: bool) {
        let me = std::process::id() as i32;
        let deadline = Instant::now() + WAIT;
        loop {
            let servers = SERVERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            let running = |pid: i32| servers.iter().any(|&(p, running)| p == pid && running);
            let family: Vec<Proc> = family()
                .into_iter()
                .filter(|p| all || !(p.state == 'Z' && p.ppid == me && running(p.pid)))
                .collect();
            if family.is_empty() || Instant::now() >= deadline {
                return;
            }
            for &(group, _) in &servers {
                if family.iter().any(|p| p.pgrp == group) {
                    let _ = kill(Pid::from_raw(-group), Signal::SIGKILL);
                }
            }
            for p in &family {
                if p.state != 'Z' {
                    let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                } else if p.ppid == me {
                    let flags = nix::sys::wait::WaitPidFlag::WNOHANG;
                    let _ = nix::sys::wait::waitpid(Pid::from_raw(p.pid), Some(flags));
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Counts the processes of the running server, and stops them all
    /// past [`MAX_PROCESSES`].
    fn watchdog() {
        loop {
            thread::sleep(Duration::from_millis(50));
            let any_running =
                SERVERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().any(|s| s.1);
            if !any_running {
                continue;
            }
            let count = family().len();
            if count > MAX_PROCESSES {
                OVER_LIMIT.store(count, Ordering::SeqCst);
                sweep(false);
            }
        }
    }

    /// Processes and threads of the servers' user now: RLIMIT_NPROC
    /// counts them all, whoever started them.
    pub fn user_tasks() -> usize {
        let real_uid = |status: &str| {
            let ids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            ids.split_whitespace().next().map(String::from)
        };
        let me = match run_as() {
            Some((uid, _)) => Some(uid.to_string()),
            None => fs::read_to_string("/proc/self/status").ok().and_then(|status| real_uid(&status)),
        };
        let Ok(dir) = fs::read_dir("/proc") else { return 0 };
        dir.filter_map(|entry| fs::read_to_string(entry.ok()?.path().join("status")).ok())
            .filter(|status| me.is_some() && real_uid(status) == me)
            .map(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(1)
            })
            .sum()
    }
}

/// A server started for one check, in a process group of its own, killed
/// whole (its children and theirs too) when dropped. Its log goes to a
/// file of the checker's folder, which has no name once it is open: once
/// the server has exited, every line it wrote is in there, and nothing is
/// left behind.
struct Server {
    child: Option<Child>,
    pid: i32,
    port: u16,
    log: File,
}

/// Why a server did not start: what the message that says so names.
enum NotStarted {
    /// The checker cannot keep the server's log: where, and why.
    Log(String),
    /// The binary could not be run, and why.
    Spawn(String),
    /// It exited before saying `listening on`: how, and its first line.
    Exited(std::process::ExitStatus, String),
    /// It did not say `listening on PORT` in time: its first line.
    Silent(String),
}

impl Server {
    fn start(binary: &str) -> Result<Server, NotStarted> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let folder = keeper::folder().map_err(|why| NotStarted::Log(why.to_string()))?;
        let path = folder.join(format!("server-{n}.log"));
        // A new file (O_EXCL), never one a link points to (O_NOFOLLOW),
        // for this user only; unnamed at once, the descriptors keep it.
        let log = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(|err| NotStarted::Log(format!("{}: {}", path.display(), reason(&err))))?;
        let _ = fs::remove_file(&path);
        let stderr = log.try_clone().map_err(|err| NotStarted::Log(reason(&err)))?;
        let mut command = Command::new(binary);
        command.arg("0").stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        command.process_group(0);
        if let Some((uid, gid)) = keeper::run_as() {
            command.uid(uid).gid(gid);
        }
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC);
        let (_, hard) = limit.map_err(|errno| NotStarted::Spawn(format!("getrlimit: {}", errno.desc())))?;
        let nproc = hard.min((keeper::user_tasks() + MAX_PROCESSES) as u64);
        // SAFETY: between fork and exec only async-signal-safe calls are
        // allowed; sigprocmask, sigaction, prctl and setrlimit are system
        // calls. The server starts as a shell would start it: no signal
        // blocked (the checker blocks some) nor ignored (a shell's `&` may
        // ignore SIGINT). If the checker is killed outright, the kernel
        // kills the server (set after std's setuid, which would clear
        // it); RLIMIT_NPROC makes a fork bomb's forks fail (root is
        // exempt: the watchdog is not).
        unsafe {
            command.pre_exec(move || {
                nix::sys::signal::SigSet::empty().thread_set_mask()?;
                for sig in [
                    Signal::SIGHUP,
                    Signal::SIGINT,
                    Signal::SIGQUIT,
                    Signal::SIGPIPE,
                    Signal::SIGTERM,
                    Signal::SIGCHLD,
                ] {
                    nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl)?;
                }
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NPROC, nproc, nproc)?;
                Ok(())
            });
        }
        let child = match keeper::spawn(&mut command) {
            Some(Ok(child)) => child,
            Some(Err(err)) => return Err(NotStarted::Spawn(reason(&err))),
            // The checker is stopping: nobody reads this any more.
            None => return Err(NotStarted::Spawn(String::new())),
        };
        let pid = child.id() as i32;
        let mut server = Server { child: Some(child), pid, port: 0, log };
        let deadline = Instant::now() + WAIT;
        // Its first line, unless it ends (or the wait does) first.
        let first = loop {
            if let Some(line) = server.line_with("listening on") {
                break line;
            }
            if let Some(status) = server.exited() {
                return Err(NotStarted::Exited(status, server.first_line()));
            }
            if Instant::now() >= deadline {
                return Err(NotStarted::Silent(server.first_line()));
            }
            thread::sleep(Duration::from_millis(10));
        };
        match first.rsplit(':').next().and_then(|port| port.trim().parse().ok()) {
            Some(port) => server.port = port,
            None => return Err(NotStarted::Silent(first)),
        }
        Ok(server)
    }

    /// The first line it wrote (at most 200 characters), if any.
    fn first_line(&self) -> String {
        self.log_from(0).lines().next().unwrap_or_default().chars().take(200).collect()
    }

    /// Everything the server has written so far, from byte `from` on.
    fn log_from(&self, from: u64) -> String {
        let mut log = &self.log;
        let mut written = String::new();
        if log.seek(SeekFrom::Start(from)).is_ok() {
            let _ = log.read_to_string(&mut written);
        }
        written
    }

    fn log_len(&self) -> u64 {
        self.log.metadata().map_or(0, |m| m.len())
    }

    fn line_with(&self, text: &str) -> Option<String> {
        self.log_from(0).lines().find(|l| l.contains(text)).map(String::from)
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A client, its every wait bounded by `deadline`.
    fn connect(&self, deadline: Instant) -> Option<TcpStream> {
        let sock = TcpStream::connect_timeout(&self.address(), left(deadline)?).ok()?;
        sock.set_read_timeout(Some(left(deadline)?)).ok()?;
        sock.set_write_timeout(Some(left(deadline)?)).ok()?;
        Some(sock)
    }

    /// One exchange: send `data`, half-close, read the echo to the end;
    /// all of it before `deadline`.
    fn exchange(&self, data: &[u8], deadline: Instant) -> Option<Vec<u8>> {
        let sock = self.connect(deadline)?;
        let writer = sock.try_clone().ok()?;
        let data = data.to_vec();
        let sender = thread::spawn(move || {
            send_all(&writer, &data, deadline) && writer.shutdown(Shutdown::Write).is_ok()
        });
        let echo = read_to_end(&sock, deadline);
        // The sender ends by the deadline too: its writes time out.
        let sent = sender.join().unwrap_or(false);
        echo.filter(|_| sent)
    }

    fn children(&self) -> Vec<Proc> {
        processes().into_iter().filter(|p| p.ppid == self.pid).collect()
    }

    /// Children still alive (not zombies).
    fn live_children(&self) -> Vec<Proc> {
        self.children().into_iter().filter(|c| c.state != 'Z').collect()
    }

    /// The server's exit status, once it has exited; None while it runs.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok()?
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole group at once: the server and its children.
        let _ = kill(Pid::from_raw(-self.pid), Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        // And whatever left the group or was orphaned.
        keeper::release(self.pid);
    }
}

/// The time left until `deadline` (at least a millisecond: a zero
/// timeout means none), or None once it has passed.
fn left(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    Some(left.max(Duration::from_millis(1)))
}

/// Writes all of `data` before `deadline`.
fn send_all(mut sock: &TcpStream, data: &[u8], deadline: Instant) -> bool {
    for chunk in data.chunks(64 * 1024) {
        let timeout = left(deadline);
        if timeout.is_none() || sock.set_write_timeout(timeout).is_err() || sock.write_all(chunk).is_err() {
            return false;
        }
    }
    true
}

/// Reads until the other end closes, before `deadline`.
fn read_to_end(mut sock: &TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        sock.set_read_timeout(Some(left(deadline)?)).ok()?;
        match sock.read(&mut buf) {
            Ok(0) => return Some(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Sends one byte and reads it back, before `deadline`.
fn echo_byte(mut sock: &TcpStream, byte: u8, deadline: Instant) -> bool {
    let mut back = [0u8; 1];
    let Some(timeout) = left(deadline) else { return false };
    sock.set_read_timeout(Some(timeout)).is_ok()
        && sock.write_all(&[byte]).is_ok()
        && sock.read_exact(&mut back).is_ok()
        && back[0] == byte
}

/// A process, as /proc/PID/stat and /proc/PID/status show it.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    state: char,
    /// CPU time used, user and system, in clock ticks.
    cpu: u64,
}

impl Proc {
    fn read(pid: i32) -> Option<Proc> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
        let number = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
        Some(Proc {
            pid,
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            pgrp: fields.get(2)?.parse().ok()?,
            cpu: number(11)? + number(12)?,
        })
    }

    /// Whether `sig` is in the mask named `field` of /proc/PID/status
    /// (SigCgt: signals caught by a handler; SigIgn: ignored; SigPnd:
    /// pending).
    fn has(&self, field: &str, sig: i32) -> bool {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0);
        mask & (1 << (sig - 1)) != 0
    }

    /// Where in the kernel it sleeps (/proc/PID/wchan), if the kernel says.
    fn wchan(&self) -> Option<String> {
        let wchan = fs::read_to_string(format!("/proc/{}/wchan", self.pid)).ok()?;
        Some(wchan.trim().to_string()).filter(|w| !w.is_empty() && w != "0")
    }

    /// Inodes of the sockets among its descriptors, with their numbers.
    fn sockets(&self) -> Vec<(i32, u64)> {
        let Ok(dir) = fs::read_dir(format!("/proc/{}/fd", self.pid)) else { return Vec::new() };
        dir.filter_map(|entry| {
            let entry = entry.ok()?;
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(entry.path()).ok()?;
            let inode = target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()?;
            Some((fd, inode))
        })
        .collect()
    }
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter_map(Proc::read).collect()
}

/// The inode of the socket listening on `port` (/proc/net/tcp and tcp6).
fn listening_inode(port: u16) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|file| {
        let text = fs::read_to_string(file).ok()?;
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok()).flatten()
        })
    })
}

/// Looks again and again (every 10 ms) until `check` finds what it wants,
/// for at most WAIT.
fn wait_for<T>(check: impl FnMut() -> Option<T>) -> Option<T> {
    wait_until(Instant::now() + WAIT, check)
}

/// Looks again and again (every 10 ms) until `check` finds what it wants,
/// or `deadline` passes; looks at least once.
fn wait_until<T>(deadline: Instant, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Numbers that differ from one run to the next.
fn random_numbers(count: usize) -> Vec<u64> {
    let mut state =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        })
        .collect()
}

fn random_bytes(len: usize) -> Vec<u8> {
    random_numbers(len).into_iter().map(|n| n as u8).collect()
}

/// The server did not start: what the checker saw, and why.
fn not_started(report: &mut Report, binary: &str, why: NotStarted) {
    let said = |first: &str, es: bool| match (first.is_empty(), es) {
        (true, _) => String::new(),
        (false, true) => format!("; dijo: {first}"),
        (false, false) => format!("; it said: {first}"),
    };
    let (seen_es, seen_en) = match &why {
        NotStarted::Log(place) => (
            format!("el comprobador no puede guardar lo que escribe {binary}: {place}"),
            format!("the checker cannot keep what {binary} writes: {place}"),
        ),
        NotStarted::Spawn(why) => {
            (format!("{binary} no se pudo ejecutar: {why}"), format!("{binary} could not be run: {why}"))
        }
        NotStarted::Exited(status, first) => (
            format!("{binary} terminó ({status}) sin decir «listening on PUERTO»{}", said(first, true)),
            format!("{binary} ended ({status}) without saying 'listening on PORT'{}", said(first, false)),
        ),
        NotStarted::Silent(first) => (
            format!("{binary} no dijo «listening on PUERTO» en {} s{}", WAIT.as_secs(), said(first, true)),
            format!("{binary} did not say 'listening on PORT' in {} s{}", WAIT.as_secs(), said(first, false)),
        ),
    };
    if let NotStarted::Log(_) = why {
        return report.bad(
            "server-starts",
            (&seen_es, &seen_en),
            (
                "una carpeta temporal en la que el comprobador pueda escribir (TMPDIR, o /tmp)",
                "a temporary folder the checker can write in (TMPDIR, or /tmp)",
            ),
            ("echo $TMPDIR; ls -ld ${TMPDIR:-/tmp}", "echo $TMPDIR; ls -ld ${TMPDIR:-/tmp}"),
        );
    }
    report.bad(
        "server-starts",
        (&seen_es, &seen_en),
        (
            "que arranque en el puerto 0 y lo diga en su primera línea",
            "it starts on port 0 and says so on its first line",
        ),
        (&format!("make; {binary} 0"), &format!("make; {binary} 0")),
    );
}

/// Exercises 1 to 4: the part of the server that is given.
fn check_given(report: &mut Report, options: &Options) {
    report.section(
        "1",
        "Ejercicios 1 a 4: el servidor que se te da",
        "Exercises 1 to 4: the server you were given",
    );
    let server = match Server::start(&options.server) {
        Ok(server) => server,
        Err(why) => return not_started(report, &options.server, why),
    };
    let data = random_bytes(1 << 20);
    let line = server.exchange(b"hello, server\n", Instant::now() + WAIT);
    match (line, server.exchange(&data, Instant::now() + WAIT)) {
        (Some(line), Some(big)) if line == b"hello, server\n" && big == data => report.good(
            "echo",
            "el eco vuelve byte a byte (una línea, 1 MiB aleatorio)",
            "the echo comes back byte for byte (a line, 1 MiB of random data)",
        ),
        _ => report.bad(
            "echo",
            ("el eco no volvió entero", "the echo did not come back whole"),
            ("cada byte enviado, de vuelta y en orden", "every byte sent, back and in order"),
            ("echo() en src/main.rs", "echo() in src/main.rs"),
        ),
    }
    // Two clients at once: the second is served while the first is connected.
    let deadline = Instant::now() + WAIT;
    let first = server.connect(deadline);
    let second = first.as_ref().and_then(|_| server.exchange(b"me too\n", deadline));
    match second {
        Some(echo) if echo == b"me too\n" => report.good(
            "two-clients",
            "dos clientes a la vez: el segundo recibe su eco con el primero conectado",
            "two clients at once: the second gets its echo while the first is connected",
        ),
        _ => report.bad(
            "two-clients",
            (
                "el segundo cliente no recibió su eco mientras el primero seguía conectado",
                "the second client got no echo while the first was connected",
            ),
            (
                "un hijo por cliente, y el padre de vuelta en accept",
                "a child per client, and the parent back in accept",
            ),
            ("el bucle de main() y fork()", "the loop of main() and fork()"),
        ),
    }
    // The child of the first client does not hold msock.
    let msock = listening_inode(server.port);
    let holding = wait_for(|| {
        let children = server.live_children();
        let holders = children
            .iter()
            .filter(|c| msock.is_some_and(|m| c.sockets().iter().any(|&(_, i)| i == m)))
            .count();
        (!children.is_empty() && holders == 0).then_some(())
    });
    match holding {
        Some(()) => report.good(
            "child-closes-msock",
            "el hijo cierra msock (no está entre sus descriptores)",
            "the child closes msock (it is not among its descriptors)",
        ),
        None => report.bad(
            "child-closes-msock",
            ("un hijo conserva msock (/proc/PID/fd)", "a child keeps msock (/proc/PID/fd)"),
            ("que el hijo lo cierre nada más nacer", "the child closes it as soon as it starts"),
            ("la rama del hijo, tras fork()", "the child's branch, after fork()"),
        ),
    }
    drop(first);
    // The parent closes every asock: in the end it holds msock only.
    let alone = wait_for(|| Proc::read(server.pid).filter(|p| p.sockets().len() == 1));
    match alone {
        Some(_) => report.good(
            "parent-closes-asock",
            "el padre cierra cada asock (solo le queda msock)",
            "the parent closes every asock (msock is all it keeps)",
        ),
        None => report.bad(
            "parent-closes-asock",
            (
                "el padre conserva sockets de clientes (/proc/PID/fd)",
                "the parent keeps clients' sockets (/proc/PID/fd)",
            ),
            ("que el padre cierre asock tras fork()", "the parent closes asock after fork()"),
            ("la rama del padre, tras fork()", "the parent's branch, after fork()"),
        ),
    }
}

/// Exercise 5: the reaper, a SIGCHLD handler, leaves no zombie and never
/// holds the parent back; without it, zombies.
fn check_reaper(report: &mut Report, options: &Options) {
    report.section("5", "Ejercicio 5: el reaper", "Exercise 5: the reaper");
    let server = match Server::start(&options.server) {
        Ok(server) => server,
        Err(why) => return not_started(report, &options.server, why),
    };
    let clients = 50;
    // One at a time, each with its own wait: none is left queued in msock
    // for the parent to accept later.
    let served = (0..clients)
        .take_while(|_| server.exchange(b"x", Instant::now() + WAIT).is_some_and(|echo| echo == b"x"))
        .count();
    let collected = (served == clients).then(|| wait_for(|| server.children().is_empty().then_some(())));
    match collected {
        None => report.bad(
            "no-zombies",
            (
                &format!("solo {served} de {clients} clientes, uno tras otro, recibieron su eco"),
                &format!("only {served} of {clients} clients, one after another, got their echo"),
            ),
            ("un hijo por cliente, y el padre de vuelta en poll", "a child per client, and the parent back in poll"),
            (
                "el bucle de main() y reaper() en src/main.rs: un padre que no sale del manejador no acepta a nadie",
                "the loop of main() and reaper() in src/main.rs: a parent that never leaves the handler accepts no one",
            ),
        ),
        Some(Some(())) => report.good(
            "no-zombies",
            &format!("tras {clients} clientes no queda ningún hijo: todos recogidos"),
            &format!("after {clients} clients no child is left: all collected"),
        ),
        Some(None) => {
            let zombies = server.children().iter().filter(|c| c.state == 'Z').count();
            report.bad(
                "no-zombies",
                (
                    &format!("tras {clients} clientes, {zombies} hijos siguen zombis (estado Z en /proc/PID/stat)"),
                    &format!("after {clients} clients, {zombies} children are still zombies (state Z in /proc/PID/stat)"),
                ),
                (
                    "ninguno: el manejador de SIGCHLD los recoge con waitpid(-1, WNOHANG), en un bucle",
                    "none: the SIGCHLD handler collects them with waitpid(-1, WNOHANG), in a loop",
                ),
                (
                    "reaper() e install_reaper() en src/main.rs; man 2 waitpid",
                    "reaper() and install_reaper() in src/main.rs; man 2 waitpid",
                ),
            );
        }
    }
    check_sigchld_caught(report, &server);
    check_reaper_source(report, &options.source);
    drop(server);
    // A server of its own: nothing left from the clients above.
    match Server::start(&options.server) {
        Ok(server) => check_parent_idle(report, &server),
        Err(why) => not_started(report, &options.server, why),
    }

    let without = match Server::start(&options.noreaper) {
        Ok(server) => server,
        Err(why) => return not_started(report, &options.noreaper, why),
    };
    for _ in 0..3 {
        let _ = without.exchange(b"x", Instant::now() + WAIT);
    }
    let zombies =
        wait_for(|| (without.children().iter().filter(|c| c.state == 'Z').count() == 3).then_some(()));
    match zombies {
        Some(()) => report.good(
            "noreaper-leaves-zombies",
            "sin el reaper (TCPechod-noreaper), 3 clientes dejan 3 zombis",
            "without the reaper (TCPechod-noreaper), 3 clients leave 3 zombies",
        ),
        None => report.bad(
            "noreaper-leaves-zombies",
            (
                "la versión sin reaper no deja los 3 zombis de 3 clientes",
                "the version without the reaper does not leave the 3 zombies of 3 clients",
            ),
            ("que solo la versión con reaper lo instale", "only the version with the reaper installs it"),
            (
                "la línea que instala el reaper va bajo #[cfg(feature = \"reaper\")]",
                "the line that installs the reaper goes under #[cfg(feature = \"reaper\")]",
            ),
        ),
    }
}

/// The children are collected by a handler the kernel runs on SIGCHLD:
/// not by the kernel itself (SIGCHLD ignored, or SA_NOCLDWAIT), nor by a
/// loop that looks.
fn check_sigchld_caught(report: &mut Report, server: &Server) {
    let Some(parent) = Proc::read(server.pid) else {
        return report.bad(
            "sigchld-handler",
            ("el servidor ya no está en marcha", "the server is no longer running"),
            ("que siga atendiendo clientes", "it goes on serving clients"),
            ("el bucle de main() en src/main.rs", "the loop of main() in src/main.rs"),
        );
    };
    if parent.has("SigCgt", libc::SIGCHLD) {
        return check_reaper_collects(report, server);
    }
    let see = (
        "reaper() e install_reaper() en src/main.rs; man 2 sigaction",
        "reaper() and install_reaper() in src/main.rs; man 2 sigaction",
    );
    if parent.has("SigIgn", libc::SIGCHLD) {
        report.bad(
            "sigchld-handler",
            (
                "el padre ignora SIGCHLD (SigIgn en /proc/PID/status): así el núcleo recoge a los hijos, y ningún manejador corre",
                "the parent ignores SIGCHLD (SigIgn in /proc/PID/status): the kernel then collects the children itself, and no handler runs",
            ),
            (
                "SIGCHLD capturada por tu reaper (SigCgt), que recoge a los hijos con waitpid",
                "SIGCHLD caught by your reaper (SigCgt), which collects the children with waitpid",
            ),
            (
                "install_reaper() en src/main.rs: SigHandler::Handler(reaper), no SigIgn",
                "install_reaper() in src/main.rs: SigHandler::Handler(reaper), not SigIgn",
            ),
        );
    } else {
        report.bad(
            "sigchld-handler",
            (
                "el padre no tiene manejador de SIGCHLD (no está en SigCgt de /proc/PID/status)",
                "the parent has no SIGCHLD handler (it is not in SigCgt of /proc/PID/status)",
            ),
            (
                "el ejercicio pide un manejador, el reaper, que el núcleo ejecuta cuando termina un hijo; no un bucle que mira de vez en cuando",
                "the exercise asks for a handler, the reaper, which the kernel runs when a child ends; not a loop that looks from time to time",
            ),
            see,
        );
    }
}

/// Who collects: a child that ends while its parent is stopped (SIGSTOP)
/// stays a zombie until the parent runs again and its reaper collects it;
/// the kernel, told not to leave zombies (SA_NOCLDWAIT), takes it at once.
fn check_reaper_collects(report: &mut Report, server: &Server) {
    let name = "sigchld-handler";
    let deadline = Instant::now() + WAIT;
    let sock = server.connect(deadline).filter(|sock| echo_byte(sock, b'a', deadline));
    let child = sock.as_ref().and_then(|_| {
        wait_until(deadline, || match server.live_children().as_slice() {
            [child] => Some(child.pid),
            _ => None,
        })
    });
    let Some(child) = child else {
        return report.bad(
            name,
            ("un cliente conectado no tiene su hijo", "a connected client has no child of its own"),
            ("un hijo por cliente, que devuelve el eco", "a child per client, which echoes"),
            ("el bucle de main()", "the loop of main()"),
        );
    };
    /// Sends SIGCONT when dropped: the parent never stays stopped.
    struct Stopped(i32);
    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
        }
    }
    let stopped = Stopped(server.pid);
    let _ = kill(Pid::from_raw(server.pid), Signal::SIGSTOP);
    let is_stopped = wait_until(deadline, || Proc::read(server.pid).filter(|p| matches!(p.state, 'T' | 't')));
    drop(sock);
    // The child ends (its client has closed): a zombie, or nothing at all.
    let ended = is_stopped.and_then(|_| {
        wait_until(deadline, || match Proc::read(child) {
            None => Some(false),
            Some(p) if p.state == 'Z' => Some(true),
            Some(_) => None,
        })
    });
    drop(stopped);
    let see = (
        "install_reaper() en src/main.rs: SA_RESTART | SA_NOCLDSTOP, sin SA_NOCLDWAIT; man 2 sigaction",
        "install_reaper() in src/main.rs: SA_RESTART | SA_NOCLDSTOP, without SA_NOCLDWAIT; man 2 sigaction",
    );
    match ended {
        Some(true) => {}
        Some(false) => {
            return report.bad(
                name,
                (
                    "un hijo que termina con el padre parado (SIGSTOP) desaparece sin quedar zombi: lo recoge el núcleo (SA_NOCLDWAIT, o SIGCHLD ignorada), no tu reaper",
                    "a child that ends while its parent is stopped (SIGSTOP) vanishes without becoming a zombie: the kernel collects it (SA_NOCLDWAIT, or SIGCHLD ignored), not your reaper",
                ),
                (
                    "que quede zombi hasta que el padre siga (SIGCONT) y su reaper lo recoja con waitpid",
                    "it stays a zombie until the parent goes on (SIGCONT) and its reaper collects it with waitpid",
                ),
                see,
            )
        }
        None => {
            return report.bad(
                name,
                (
                    "con el padre parado (SIGSTOP), el hijo de un cliente que cerró no terminó",
                    "with the parent stopped (SIGSTOP), the child of a client that closed did not end",
                ),
                ("que el hijo termine cuando su cliente cierra", "the child ends when its client closes"),
                ("echo() y la rama del hijo en src/main.rs", "echo() and the child's branch in src/main.rs"),
            )
        }
    }
    if wait_for(|| Proc::read(child).is_none().then_some(())).is_none() {
        return report.bad(
            name,
            (
                "el hijo que terminó con el padre parado sigue zombi cuando el padre sigue (SIGCONT): nadie lo recoge",
                "the child that ended while the parent was stopped is still a zombie once the parent goes on (SIGCONT): nobody collects it",
            ),
            (
                "que el reaper lo recoja en cuanto el padre vuelva a correr",
                "the reaper collects it as soon as the parent runs again",
            ),
            see,
        );
    }
    report.good(
        name,
        "el padre captura SIGCHLD con un manejador (SigCgt en /proc/PID/status), y es él quien recoge: un hijo que termina con el padre parado (SIGSTOP) queda zombi hasta que el padre sigue",
        "the parent catches SIGCHLD with a handler (SigCgt in /proc/PID/status), and that handler collects: a child that ends while the parent is stopped (SIGSTOP) stays a zombie until the parent goes on",
    );
}

/// Reports `name` failed because the parent used `ticks` of CPU in
/// `watched`, with nothing to do, seen running at `running.0` of
/// `running.1` looks: Comer's `>= 0` loop in the reaper.
fn report_spinning(
    report: &mut Report,
    name: &'static str,
    ticks: u64,
    watched: Duration,
    running: (usize, usize),
) {
    let cpu = format!("{:.1}", ticks as f64 / TICKS_PER_SECOND as f64);
    let seconds = format!("{:.1}", watched.as_secs_f64());
    let (running, looks) = running;
    report.bad(
        name,
        (
            &format!("con un cliente conectado y otro que ya se fue, el padre no para: {cpu} s de CPU en los {seconds} s que lo miró el comprobador, sin nada que hacer; en marcha (estado R) en {running} de {looks} miradas"),
            &format!("with one client connected and another gone, the parent never rests: {cpu} s of CPU in the {seconds} s the checker watched it, with nothing to do; running (state R) at {running} of {looks} looks"),
        ),
        (
            "el padre dormido en poll (estado S, sin gastar CPU) hasta el siguiente cliente",
            "the parent asleep in poll (state S, using no CPU) until the next client",
        ),
        (
            "el bucle de reaper(): con WNOHANG, waitpid devuelve 0 si hay hijos vivos pero ninguno ha terminado, y ahí debe acabar el bucle (el fallo del «>= 0» de Comer)",
            "the loop of reaper(): with WNOHANG, waitpid returns 0 when children live but none has ended, and the loop must end there (Comer's '>= 0' bug)",
        ),
    );
}

/// One client stays connected while another comes and goes: the reaper
/// runs with a child still alive. It must return at once: the parent then
/// sleeps (state S, no CPU used) and serves the next client.
fn check_parent_idle(report: &mut Report, server: &Server) {
    let name = "parent-idle-while-a-child-lives";
    let deadline = Instant::now() + WAIT;
    let held = server.connect(deadline).filter(|sock| echo_byte(sock, b'a', deadline));
    let gone = held.as_ref().and_then(|_| server.exchange(b"b", deadline)).is_some_and(|echo| echo == b"b");
    // The second client's child has ended (collected, or a zombie): the
    // parent has had its SIGCHLD.
    let settled =
        gone && wait_until(deadline, || (server.live_children().len() == 1).then_some(())).is_some();
    if !settled {
        // A parent that spins in its handler serves nobody: say that, and
        // where, rather than what it fails to do.
        let before = Proc::read(server.pid);
        let watched = Instant::now();
        let mut running = 0;
        for _ in 0..4 {
            thread::sleep(Duration::from_millis(100));
            running += usize::from(Proc::read(server.pid).is_some_and(|p| p.state == 'R'));
        }
        let used = match (before, Proc::read(server.pid)) {
            (Some(before), Some(after)) => after.cpu.saturating_sub(before.cpu),
            _ => 0,
        };
        // More than half the time on the CPU, with nothing to do.
        if used * 1000 > TICKS_PER_SECOND * watched.elapsed().as_millis() as u64 / 2 {
            return report_spinning(report, name, used, watched.elapsed(), (running, 4));
        }
        return report.bad(
            name,
            (
                "con un cliente conectado, otro cliente no recibió su eco, o su hijo no terminó",
                "with one client connected, another client got no echo, or its child did not end",
            ),
            (
                "un hijo por cliente, que termina cuando su cliente cierra",
                "a child per client, which ends when its client closes",
            ),
            ("el bucle de main() y echo() en src/main.rs", "the loop of main() and echo() in src/main.rs"),
        );
    }
    // Asleep at four looks 100 ms apart, with no CPU used in between. A
    // parent that spins uses CPU, and is mostly seen running (state R);
    // not always: waitpid sleeps for an instant even with WNOHANG.
    let watched = Instant::now();
    let first = Proc::read(server.pid);
    let (mut looks, mut running) = (0, 0);
    let idle = loop {
        let mut window = Vec::new();
        for i in 0..4 {
            if i > 0 {
                thread::sleep(Duration::from_millis(100));
            }
            let p = Proc::read(server.pid);
            looks += 1;
            running += usize::from(p.as_ref().is_some_and(|p| p.state == 'R'));
            window.extend(p);
        }
        if window.len() == 4 && window.iter().all(|p| p.state == 'S') && window[0].cpu == window[3].cpu {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
    };
    if !idle {
        let used = match (&first, Proc::read(server.pid)) {
            (Some(first), Some(last)) => last.cpu.saturating_sub(first.cpu),
            _ => 0,
        };
        return report_spinning(report, name, used, watched.elapsed(), (running, looks));
    }
    let served =
        server.exchange(b"new client\n", Instant::now() + WAIT).is_some_and(|echo| echo == b"new client\n");
    if served {
        return report.good(
            name,
            "con un cliente conectado y otro que ya se fue, el padre duerme (estado S, sin gastar CPU) y atiende a un cliente nuevo",
            "with one client connected and another gone, the parent sleeps (state S, using no CPU) and serves a new client",
        );
    }
    let (where_es, where_en) = match Proc::read(server.pid).and_then(|p| p.wchan()) {
        Some(wchan) if wchan == "do_wait" => (
            format!("; el padre duerme en {wchan}, en waitpid"),
            format!("; the parent sleeps in {wchan}, in waitpid"),
        ),
        Some(wchan) => (format!("; el padre duerme en {wchan}"), format!("; the parent sleeps in {wchan}")),
        None => (String::new(), String::new()),
    };
    let seconds = WAIT.as_secs();
    report.bad(
        name,
        (
            &format!("con un cliente conectado y otro que ya se fue, un cliente nuevo no recibe eco en {seconds} s{where_es}"),
            &format!("with one client connected and another gone, a new client gets no echo in {seconds} s{where_en}"),
        ),
        (
            "que el reaper vuelva enseguida y el padre atienda al cliente nuevo",
            "the reaper returns at once and the parent serves the new client",
        ),
        (
            "reaper() en src/main.rs: sin WNOHANG, waitpid bloquea al padre, dentro del manejador, hasta que termine otro hijo; man 2 waitpid",
            "reaper() in src/main.rs: without WNOHANG, waitpid blocks the parent, inside the handler, until another child ends; man 2 waitpid",
        ),
    );
}

/// Exercise 6: each child survives SIGPIPE, and counts each one: two
/// children, each sent a different number of them, no count known in
/// advance.
fn check_sigpipe(report: &mut Report, options: &Options) {
    report.section("6", "Ejercicio 6: SIGPIPE", "Exercise 6: SIGPIPE");
    check_sigpipe_run(report, options);
    check_sigpipe_handler_source(report, &options.source);
}

/// Exercise 6, run: the handler is there, the children survive, and each
/// says how many SIGPIPEs it counted.
fn check_sigpipe_run(report: &mut Report, options: &Options) {
    let server = match Server::start(&options.server) {
        Ok(server) => server,
        Err(why) => return not_started(report, &options.server, why),
    };
    let deadline = Instant::now() + WAIT;
    let socks: Vec<TcpStream> = (0..2)
        .filter_map(|_| server.connect(deadline).filter(|sock| echo_byte(sock, b'a', deadline)))
        .collect();
    let children = wait_for(|| Some(server.live_children()).filter(|c| c.len() == 2));
    let (Some(children), 2) = (children, socks.len()) else {
        return report.bad(
            "sigpipe-handler",
            (
                "dos clientes no tienen cada uno su hijo que devuelve el eco",
                "two clients do not each have a child that echoes",
            ),
            ("un hijo por cliente, que devuelve el eco", "a child per client, which echoes"),
            ("el bucle de main()", "the loop of main()"),
        );
    };
    if let Some(child) = children.iter().find(|c| !c.has("SigCgt", libc::SIGPIPE)) {
        return report.bad(
            "sigpipe-handler",
            (
                &format!("el hijo {} no tiene manejador de SIGPIPE (SigCgt en /proc/PID/status)", child.pid),
                &format!("the child {} has no SIGPIPE handler (SigCgt in /proc/PID/status)", child.pid),
            ),
            (
                "un manejador instalado con sigaction, que el hijo hereda del padre",
                "a handler installed with sigaction, which the child inherits from the parent",
            ),
            (
                "count_sigpipe() e install_sigpipe_handler() en src/main.rs",
                "count_sigpipe() and install_sigpipe_handler() in src/main.rs",
            ),
        );
    }
    report.good(
        "sigpipe-handler",
        "cada hijo captura SIGPIPE con un manejador (SigCgt en /proc/PID/status)",
        "each child catches SIGPIPE with a handler (SigCgt in /proc/PID/status)",
    );
    // Two different numbers of SIGPIPEs, from 2 to 9, that no fixed text
    // can match both.
    let random = random_numbers(2);
    let first = 2 + random[0] % 8;
    let second = 2 + (first - 2 + 1 + random[1] % 7) % 8;
    let sent = [first, second];
    let deadline = Instant::now() + WAIT;
    for (child, &count) in children.iter().zip(&sent) {
        for _ in 0..count {
            let _ = kill(Pid::from_raw(child.pid), Signal::SIGPIPE);
            // Signals of one kind do not queue: wait until this one is
            // taken (no longer pending) before the next.
            let taken = wait_until(deadline, || {
                Proc::read(child.pid)
                    .filter(|p| !p.has("SigPnd", libc::SIGPIPE) && !p.has("ShdPnd", libc::SIGPIPE))
            });
            if taken.is_none() {
                return report.bad(
                    "child-survives-sigpipe",
                    (
                        &format!("el hijo {} no recoge las SIGPIPE que se le envían: siguen pendientes (SigPnd en /proc/PID/status)", child.pid),
                        &format!("the child {} does not take the SIGPIPEs sent to it: they stay pending (SigPnd in /proc/PID/status)", child.pid),
                    ),
                    ("que el manejador las reciba y las cuente", "the handler gets them and counts them"),
                    (
                        "install_sigpipe_handler() en src/main.rs: SIGPIPE no debe quedar bloqueada",
                        "install_sigpipe_handler() in src/main.rs: SIGPIPE must not stay blocked",
                    ),
                );
            }
        }
    }
    let deadline = Instant::now() + WAIT;
    if !socks.iter().all(|sock| echo_byte(sock, b'b', deadline)) {
        return report.bad(
            "child-survives-sigpipe",
            (
                &format!("tras {first} y {second} SIGPIPE (kill -PIPE) los hijos ya no atienden a sus clientes"),
                &format!("after {first} and {second} SIGPIPEs (kill -PIPE) the children no longer serve their clients"),
            ),
            ("que el manejador las cuente y el hijo siga", "the handler counts them and the child goes on"),
            ("count_sigpipe() en src/main.rs", "count_sigpipe() in src/main.rs"),
        );
    }
    report.good(
        "child-survives-sigpipe",
        &format!("los dos hijos sobreviven a {first} y {second} SIGPIPE y siguen con el eco"),
        &format!("both children survive {first} and {second} SIGPIPEs and go on echoing"),
    );
    for sock in &socks {
        let _ = sock.shutdown(Shutdown::Write);
        let _ = read_to_end(sock, deadline);
    }
    let mut wrong = Vec::new();
    let deadline = Instant::now() + WAIT;
    for (child, &count) in children.iter().zip(&sent) {
        let tag = format!("[child {}] finished:", child.pid);
        let line = wait_until(deadline, || server.line_with(&tag)).unwrap_or_default();
        if !line.ends_with(&format!("sigpipe count={count}")) {
            wrong.push((child.pid, count, line));
        }
    }
    if wrong.is_empty() {
        return report.good(
            "sigpipe-count",
            &format!("cada hijo dice cuántas contó: «sigpipe count={first}» y «sigpipe count={second}»"),
            &format!(
                "each child says how many it counted: 'sigpipe count={first}' and 'sigpipe count={second}'"
            ),
        );
    }
    let said = |es: bool| {
        wrong
            .iter()
            .map(|(pid, count, line)| {
                let line = if line.is_empty() {
                    if es {
                        "(nada)"
                    } else {
                        "(nothing)"
                    }
                } else {
                    line
                };
                if es {
                    format!("enviadas {count} SIGPIPE al hijo {pid}, dice: {line}")
                } else {
                    format!("{count} SIGPIPEs sent to the child {pid}, it says: {line}")
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    report.bad(
        "sigpipe-count",
        (&said(true), &said(false)),
        (
            "«sigpipe count=N» en la última línea de cada hijo, con las N que recibió",
            "'sigpipe count=N' on each child's last line, with the N it got",
        ),
        (
            "count_sigpipe() debe sumar uno a SIGPIPE_COUNT por señal: el número sale del contador",
            "count_sigpipe() must add one to SIGPIPE_COUNT per signal: the number comes from the counter",
        ),
    );
}

/// Exercise 7: SIGTERM stops the accept loop, msock is closed and said
/// after SIGTERM, the server exits 0, the handler only takes note, and the
/// children serve on.
fn check_sigterm(report: &mut Report, options: &Options) {
    report.section(
        "7",
        "Ejercicio 7: cierre ordenado con SIGTERM",
        "Exercise 7: graceful shutdown with SIGTERM",
    );
    let mut server = match Server::start(&options.server) {
        Ok(server) => server,
        Err(why) => return not_started(report, &options.server, why),
    };
    let deadline = Instant::now() + WAIT;
    let sock = server.connect(deadline);
    let served = sock.as_ref().is_some_and(|sock| echo_byte(sock, b'a', deadline));
    let msock_fd = Proc::read(server.pid).and_then(|p| {
        let inode = listening_inode(server.port)?;
        p.sockets().into_iter().find(|&(_, i)| i == inode).map(|(fd, _)| fd)
    });
    // The parent waits in poll (asleep), the client's child is serving.
    let _ = wait_for(|| Proc::read(server.pid).filter(|p| p.state == 'S'));
    let before = server.log_len();
    let _ = kill(Pid::from_raw(server.pid), Signal::SIGTERM);
    let status = wait_for(|| server.exited());
    match status {
        None => report.bad(
            "sigterm-exit-0",
            ("el servidor sigue en marcha 10 s después de SIGTERM", "the server still runs 10 s after SIGTERM"),
            ("que deje de aceptar y termine", "it stops accepting and exits"),
            (
                "on_sigterm() y el bucle de main(): el poll que corta la señal falla con EINTR, y el bucle debe mirar STOP",
                "on_sigterm() and the loop of main(): the poll the signal cuts short fails with EINTR, and the loop must look at STOP",
            ),
        ),
        Some(status) if status.code() == Some(0) => report.good(
            "sigterm-exit-0",
            "SIGTERM termina el bucle de accept, y el servidor sale con estado 0",
            "SIGTERM ends the accept loop, and the server exits with status 0",
        ),
        Some(status) => report.bad(
            "sigterm-exit-0",
            (&format!("el servidor terminó así: {status}"), &format!("the server ended this way: {status}")),
            ("estado de salida 0, tras un cierre ordenado", "exit status 0, after a graceful shutdown"),
            (
                "install_sigterm_handler() en src/main.rs (sin manejador, SIGTERM mata)",
                "install_sigterm_handler() in src/main.rs (without a handler, SIGTERM kills)",
            ),
        ),
    }
    let closed = msock_fd.map(|fd| format!("[parent {}] closed msock (fd {fd})", server.pid));
    let after = closed.as_ref().is_some_and(|line| server.log_from(before).contains(line.as_str()));
    let earlier = closed.as_ref().is_some_and(|line| server.log_from(0).contains(line.as_str()));
    match (after, earlier) {
        (true, _) => report.good(
            "closed-msock-after-sigterm",
            "tras SIGTERM, el padre dice que cierra msock, con su descriptor",
            "after SIGTERM, the parent says it closes msock, with its descriptor",
        ),
        (false, true) => report.bad(
            "closed-msock-after-sigterm",
            (
                "el padre dice «closed msock» antes de recibir SIGTERM, y nada después",
                "the parent says 'closed msock' before it gets SIGTERM, and nothing after",
            ),
            (
                "la línea cuando de verdad lo cierra: tras SIGTERM, al salir del bucle",
                "the line when it really closes it: after SIGTERM, once out of the loop",
            ),
            ("el final de main() en src/main.rs", "the end of main() in src/main.rs"),
        ),
        (false, false) => report.bad(
            "closed-msock-after-sigterm",
            (
                "tras SIGTERM, el padre no dice «closed msock (fd N)» con el descriptor de msock",
                "after SIGTERM, the parent does not say 'closed msock (fd N)' with msock's descriptor",
            ),
            ("una línea por recurso que cierra", "a line for every resource it closes"),
            ("el final de main() en src/main.rs", "the end of main() in src/main.rs"),
        ),
    }
    check_sigterm_handler_source(report, &options.source);
    let free = TcpListener::bind(("0.0.0.0", server.port)).is_ok();
    let deadline = Instant::now() + WAIT;
    let still = served && sock.as_ref().is_some_and(|sock| echo_byte(sock, b'b', deadline));
    match (free, still) {
        (true, true) => report.good(
            "port-free-child-serves",
            "el puerto queda libre, y el hijo sigue atendiendo a su cliente",
            "the port is free again, and the child goes on serving its client",
        ),
        _ => report.bad(
            "port-free-child-serves",
            (
                "el puerto sigue ocupado, o el cliente ya no tiene eco",
                "the port is still taken, or the client gets no echo",
            ),
            ("nadie con msock abierto, y el hijo intacto", "nobody holding msock, and the child untouched"),
            ("qué cierra cada proceso", "what each process closes"),
        ),
    }
}

/// The student's source, read once for a look; empty if it cannot be read.
fn read_source(path: &str) -> source::Source {
    source::Source::new(&fs::read_to_string(path).unwrap_or_default())
}

/// "_exit (line 172), format! (line 190, in log()) and stderr (line 171)"
fn calls_list(calls: &[source::Call], handler: &str, es: bool) -> String {
    let items: Vec<String> = calls
        .iter()
        .map(|c| {
            let name = match (&c.name, es) {
                (Some(name), _) => name.clone(),
                (None, true) => "una función a través de un puntero".into(),
                (None, false) => "a function through a pointer".into(),
            };
            match (es, c.via == handler) {
                (true, true) => format!("{name} (línea {})", c.line),
                (true, false) => format!("{name} (línea {}, en {}())", c.line, c.via),
                (false, true) => format!("{name} (line {})", c.line),
                (false, false) => format!("{name} (line {}, in {}())", c.line, c.via),
            }
        })
        .collect();
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {} {last}", rest.join(", "), if es { "y" } else { "and" }),
        None => String::new(),
    }
}

/// Why the gravest of `calls` has no place in a handler.
fn calls_why(calls: &[source::Call]) -> (&'static str, &'static str) {
    match calls.iter().map(|c| c.kind).min().unwrap_or(source::Kind::Unsafe) {
        source::Kind::Ends => (
            "termina el proceso desde dentro del manejador, sin volver al bucle",
            "it ends the process from inside the handler, never back in the loop",
        ),
        source::Kind::Closes => (
            "cierra desde el manejador lo que main debe cerrar tras el bucle",
            "it closes from the handler what main must close after the loop",
        ),
        source::Kind::Unsafe if calls.iter().any(|c| c.name.is_none()) => (
            "un manejador solo puede hacer llamadas que se puedan comprobar seguras para señales, y lo que se llama a través de un puntero no se puede comprobar",
            "a handler may only make calls that can be checked to be async-signal-safe, and what is called through a pointer cannot be checked",
        ),
        source::Kind::Unsafe => (
            "no es segura para señales: puede reservar memoria o tomar un cerrojo que tenía el código interrumpido",
            "it is not async-signal-safe: it may allocate, or take a lock the interrupted code held",
        ),
    }
}

/// A handler that makes calls it should not: what it calls, and why not.
fn bad_calls(
    report: &mut Report,
    name: &'static str,
    path: &str,
    handler: &str,
    calls: &[source::Call],
    expected: (&str, &str),
) {
    let (why_es, why_en) = calls_why(calls);
    report.bad(
        name,
        (
            &format!("{handler}() ({path}) llama a {}: {why_es}", calls_list(calls, handler, true)),
            &format!("{handler}() ({path}) calls {}: {why_en}", calls_list(calls, handler, false)),
        ),
        expected,
        (
            &format!("{handler}() en src/main.rs; man 7 signal-safety (println!, format! y exit no están entre las funciones seguras)"),
            &format!("{handler}() in src/main.rs; man 7 signal-safety (println!, format! and exit are not among the safe functions)"),
        ),
    );
}

/// The function `source` installs for a signal, from `(signal, the
/// skeleton's name for the handler, the function that installs it)`; if
/// none is found, `name` is reported failed, saying where to install it,
/// and so it is if the handler is still empty, saying what it must do
/// (`does`, in Spanish and English).
fn handler_or_report(
    report: &mut Report,
    name: &'static str,
    path: &str,
    source: &source::Source,
    (signal, handler, install): (&str, &str, &str),
    (does_es, does_en): (&str, &str),
) -> Option<String> {
    let found = source.handler_for(signal, handler);
    if let Some(found) = found.as_ref().filter(|found| source.is_empty(found)) {
        report.bad(
            name,
            (&format!("{found}() está vacío todavía"), &format!("{found}() is still empty")),
            (
                &format!("que {found}() solo haga una cosa: {does_es}"),
                &format!("{found}() does one thing only: {does_en}"),
            ),
            (&format!("{found}() en {path}"), &format!("{found}() in {path}")),
        );
        return None;
    }
    if found.is_none() {
        report.bad(
            name,
            (
                &format!("no encuentro en {path} la función que instalas para {signal}"),
                &format!("cannot find in {path} the function you install for {signal}"),
            ),
            (
                &format!("set_handler(Signal::{signal}, SigHandler::Handler({handler}), ...) en {install}()"),
                &format!("set_handler(Signal::{signal}, SigHandler::Handler({handler}), ...) in {install}()"),
            ),
            (&format!("{install}() en src/main.rs"), &format!("{install}() in src/main.rs")),
        );
    }
    found
}

/// What no run can show of exercise 5: that the reaper, and nothing else,
/// collects the children, with waitpid in a loop (one SIGCHLD may stand
/// for several children); that the kernel is not told to do it
/// (SA_NOCLDWAIT, SIGCHLD ignored); that the reaper does only
/// async-signal-safe work.
fn check_reaper_source(report: &mut Report, path: &str) {
    let name = "reaper-collects-in-a-loop";
    let source = read_source(path);
    let see_install = (
        "install_reaper() en src/main.rs; man 2 sigaction",
        "install_reaper() in src/main.rs; man 2 sigaction",
    );
    if let Some(line) = source.line_of("SA_NOCLDWAIT") {
        return report.bad(
            name,
            (
                &format!("{path} usa SA_NOCLDWAIT (línea {line}): con ella el núcleo recoge a los hijos por su cuenta, y tu reaper no tiene a quién recoger"),
                &format!("{path} uses SA_NOCLDWAIT (line {line}): with it the kernel collects the children itself, and your reaper has nobody to collect"),
            ),
            (
                "SA_RESTART | SA_NOCLDSTOP, y que el reaper recoja a cada hijo con waitpid",
                "SA_RESTART | SA_NOCLDSTOP, and the reaper collecting each child with waitpid",
            ),
            see_install,
        );
    }
    if let Some(line) = source.ignored("SIGCHLD") {
        return report.bad(
            name,
            (
                &format!("{path} ignora SIGCHLD (línea {line}): así el núcleo recoge a los hijos, y ningún manejador corre"),
                &format!("{path} ignores SIGCHLD (line {line}): the kernel then collects the children itself, and no handler runs"),
            ),
            (
                "SIGCHLD capturada por tu reaper, que recoge a los hijos con waitpid",
                "SIGCHLD caught by your reaper, which collects the children with waitpid",
            ),
            see_install,
        );
    }
    let Some(handler) = handler_or_report(
        report,
        name,
        path,
        &source,
        ("SIGCHLD", "reaper", "install_reaper"),
        (
            "recoger con waitpid a los hijos que han terminado",
            "collect with waitpid the children that have ended",
        ),
    ) else {
        return;
    };
    let reading = source.read(&handler);
    if !reading.calls.is_empty() {
        return bad_calls(
            report,
            name,
            path,
            &handler,
            &reading.calls,
            (
                "que el reaper solo recoja a los hijos (waitpid con WNOHANG, en un bucle) y deje errno como estaba",
                "the reaper only collects the children (waitpid with WNOHANG, in a loop) and leaves errno as it was",
            ),
        );
    }
    let see = (
        &format!("{handler}() en src/main.rs; man 2 waitpid (WNOHANG)") as &str,
        &format!("{handler}() in src/main.rs; man 2 waitpid (WNOHANG)") as &str,
    );
    if reading.waits.is_empty() {
        return report.bad(
            name,
            (
                &format!("{handler}() ({path}) no llama a waitpid: el manejador de SIGCHLD es quien recoge a los hijos, no el bucle de main()"),
                &format!("{handler}() ({path}) never calls waitpid: the SIGCHLD handler is the one that collects the children, not the loop of main()"),
            ),
            (
                "waitpid(-1, &mut status, WNOHANG) en un bucle, dentro del reaper",
                "waitpid(-1, &mut status, WNOHANG) in a loop, inside the reaper",
            ),
            see,
        );
    }
    if let (false, Some(wait)) = (reading.waits.iter().any(|w| w.in_loop), reading.waits.first()) {
        let (call, line) = (&wait.name, wait.line);
        return report.bad(
            name,
            (
                &format!("{handler}() ({path}) llama a {call} (línea {line}) una sola vez, fuera de un bucle: las señales no se encolan, y una SIGCHLD puede valer por varios hijos"),
                &format!("{handler}() ({path}) calls {call} (line {line}) once, outside a loop: signals are not queued, and one SIGCHLD may stand for several children"),
            ),
            (
                "un bucle que llame a waitpid con WNOHANG mientras devuelva un PID",
                "a loop that calls waitpid with WNOHANG while it returns a PID",
            ),
            see,
        );
    }
    if let Some((call, line, around)) = source.waits_outside(&reading).first() {
        return report.bad(
            name,
            (
                &format!("{call} (línea {line}, en {around}()) recoge hijos fuera del reaper: recogerlos desde el bucle no cuenta"),
                &format!("{call} (line {line}, in {around}()) collects children outside the reaper: collecting them from the loop does not count"),
            ),
            (
                &format!("que solo el manejador de SIGCHLD, {handler}(), llame a waitpid"),
                &format!("only the SIGCHLD handler, {handler}(), calls waitpid"),
            ),
            ("el bucle de main() y reaper() en src/main.rs", "the loop of main() and reaper() in src/main.rs"),
        );
    }
    report.good(
        name,
        &format!("{handler}() recoge a los hijos con waitpid, en un bucle, y nada más los recoge (leído en {path})"),
        &format!("{handler}() collects the children with waitpid, in a loop, and nothing else does (read in {path})"),
    );
}

/// What no run can show of exercise 6: that the SIGPIPE handler only
/// counts, doing only async-signal-safe work.
fn check_sigpipe_handler_source(report: &mut Report, path: &str) {
    let name = "sigpipe-handler-only-counts";
    let source = read_source(path);
    let Some(handler) = handler_or_report(
        report,
        name,
        path,
        &source,
        ("SIGPIPE", "count_sigpipe", "install_sigpipe_handler"),
        ("sumar uno a SIGPIPE_COUNT", "add one to SIGPIPE_COUNT"),
    ) else {
        return;
    };
    let reading = source.read(&handler);
    if !reading.calls.is_empty() {
        return bad_calls(
            report,
            name,
            path,
            &handler,
            &reading.calls,
            (
                "que el manejador solo sume uno al contador (SIGPIPE_COUNT.fetch_add(1, ...))",
                "the handler only adds one to the counter (SIGPIPE_COUNT.fetch_add(1, ...))",
            ),
        );
    }
    report.good(
        name,
        &format!("{handler}() solo cuenta (leído en {path})"),
        &format!("{handler}() only counts (read in {path})"),
    );
}

/// What no run can tell apart: whether the end comes from the loop or
/// from inside the handler. So the SIGTERM handler's source is read: it
/// may only take note (atomics, errno, write(2)). And so is every other
/// function the kernel may run as a handler (each `extern "C" fn`, each
/// function installed), but the reaper and the SIGPIPE handler, read by
/// exercises 5 and 6: a handler installed by number (`signal(15, ...)`)
/// names no signal.
fn check_sigterm_handler_source(report: &mut Report, path: &str) {
    let name = "sigterm-handler-only-notes";
    let source = read_source(path);
    let Some(sigterm) = handler_or_report(
        report,
        name,
        path,
        &source,
        ("SIGTERM", "on_sigterm", "install_sigterm_handler"),
        ("poner STOP a verdadero", "set STOP to true"),
    ) else {
        return;
    };
    let others = [source.handler_for("SIGCHLD", "reaper"), source.handler_for("SIGPIPE", "count_sigpipe")];
    let mut handlers = vec![sigterm.clone()];
    handlers.extend(
        source
            .handlers()
            .into_iter()
            .filter(|h| *h != sigterm && !others.iter().any(|o| o.as_ref() == Some(h))),
    );
    for handler in &handlers {
        let reading = source.read(handler);
        if !reading.calls.is_empty() {
            return bad_calls(
                report,
                name,
                path,
                handler,
                &reading.calls,
                (
                    "que el manejador solo anote la petición (STOP.store(true, ...)) y vuelva: el bucle ve STOP y sale, main cierra msock, lo dice y termina con 0",
                    "the handler only takes note (STOP.store(true, ...)) and returns: the loop sees STOP and leaves, main closes msock, says so and exits 0",
                ),
            );
        }
    }
    report.good(
        name,
        &format!("{sigterm}() solo anota la petición; el bucle hace el resto (leído en {path})"),
        &format!("{sigterm}() only takes note; the loop does the rest (read in {path})"),
    );
}
