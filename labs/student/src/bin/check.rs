//! The checker of your server: `make check` checks every exercise,
//! `make check5` (6, 7) one, `make check1` the part that is given.
//!
//! It runs `./TCPechod` and `./TCPechod-noreaper` on free ports of
//! 127.0.0.1, as real clients would use them, and looks at the processes
//! and sockets themselves, in /proc: a zombie is a process in state Z, a
//! handler is a bit in the mask of caught signals, a closed socket is a
//! descriptor gone. A log line alone never passes a check. It speaks
//! Spanish when LANG, LC_MESSAGES or LC_ALL says so, English otherwise,
//! and exits 0 when every check passed, 1 otherwise.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The longest a check waits for what it expects to see.
const WAIT: Duration = Duration::from_secs(10);

fn main() {
    let which: Vec<String> = std::env::args().skip(1).collect();
    let all = which.is_empty();
    let wanted = |n: &str| all || which.iter().any(|w| w == n);
    let mut report = Report { spanish: spanish(), failed: false };
    if let Some(bad) = which.iter().find(|w| !["1", "5", "6", "7"].contains(&w.as_str())) {
        report.say(
            &format!("no hay ejercicio «{bad}»: usa 1, 5, 6 o 7"),
            &format!("no exercise '{bad}': use 1, 5, 6 or 7"),
        );
        std::process::exit(2);
    }
    for binary in ["./TCPechod", "./TCPechod-noreaper"] {
        if !std::path::Path::new(binary).exists() {
            report.say(
                &format!("falta {binary}: compílalo antes con make"),
                &format!("{binary} is missing: build it first with make"),
            );
            std::process::exit(2);
        }
    }
    if wanted("1") {
        check_given(&mut report);
    }
    if wanted("5") {
        check_reaper(&mut report);
    }
    if wanted("6") {
        check_sigpipe(&mut report);
    }
    if wanted("7") {
        check_sigterm(&mut report);
    }
    std::process::exit(i32::from(report.failed));
}

/// Whether the user's locale is Spanish.
fn spanish() -> bool {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .is_some_and(|value| value.starts_with("es"))
}

/// What the checker prints, in the user's language.
struct Report {
    spanish: bool,
    failed: bool,
}

impl Report {
    /// One line on stdout (not a panic if nobody reads it any more).
    fn say(&self, es: &str, en: &str) {
        let _ = writeln!(std::io::stdout(), "{}", if self.spanish { es } else { en });
    }

    fn section(&self, es: &str, en: &str) {
        self.say("", "");
        self.say(es, en);
    }

    fn good(&self, es: &str, en: &str) {
        self.say(&format!("  [BIEN] {es}"), &format!("  [OK]   {en}"));
    }

    /// A failed check: what was seen, what was expected, where to look.
    fn bad(&mut self, seen: (&str, &str), expected: (&str, &str), hint: (&str, &str)) {
        self.failed = true;
        self.say(&format!("  [MAL]  {}", seen.0), &format!("  [FAIL] {}", seen.1));
        self.say(
            &format!("         se esperaba: {}", expected.0),
            &format!("         expected: {}", expected.1),
        );
        self.say(&format!("         mira: {}", hint.0), &format!("         see: {}", hint.1));
    }
}

/// A server started for one check, in a process group of its own, killed
/// whole (children included) when dropped. Its log goes to a file, which
/// has no name once the server has it open: once the server has exited,
/// every line it wrote is in there, and nothing is left behind.
struct Server {
    child: Option<Child>,
    pid: i32,
    port: u16,
    log: File,
}

impl Server {
    fn start(binary: &str) -> Option<Server> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tcpechod-check-{}-{n}.log", std::process::id()));
        let log = File::options().read(true).write(true).create(true).truncate(true).open(&path).ok()?;
        let mut command = Command::new(binary);
        command.arg("0").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log.try_clone().ok()?);
        command.process_group(0);
        // SAFETY: between fork and exec only async-signal-safe calls are
        // allowed; prctl is one. If the checker dies (Ctrl-C), the kernel
        // kills the server; its children end as their clients, sockets of
        // the checker, close.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(Into::into)
            });
        }
        let child = command.spawn();
        let _ = fs::remove_file(&path);
        let child = child.ok()?;
        let pid = child.id() as i32;
        let mut server = Server { child: Some(child), pid, port: 0, log };
        let first = wait_for(|| server.line_with("listening on"))?;
        server.port = first.rsplit(':').next()?.trim().parse().ok()?;
        Some(server)
    }

    fn line_with(&self, text: &str) -> Option<String> {
        let mut log = &self.log;
        let mut written = String::new();
        log.seek(SeekFrom::Start(0)).ok()?;
        log.read_to_string(&mut written).ok()?;
        written.lines().find(|l| l.contains(text)).map(String::from)
    }

    fn connect(&self) -> Option<TcpStream> {
        let sock = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        sock.set_read_timeout(Some(WAIT)).ok()?;
        Some(sock)
    }

    /// One exchange: send `data`, half-close, read the echo to the end.
    fn exchange(&self, data: &[u8]) -> Option<Vec<u8>> {
        let sock = self.connect()?;
        let mut writer = sock.try_clone().ok()?;
        let data = data.to_vec();
        let sender =
            thread::spawn(move || writer.write_all(&data).and_then(|()| writer.shutdown(Shutdown::Write)));
        let mut echo = Vec::new();
        (&sock).read_to_end(&mut echo).ok()?;
        sender.join().ok()?.ok()?;
        Some(echo)
    }

    fn children(&self) -> Vec<Proc> {
        processes().into_iter().filter(|p| p.ppid == self.pid).collect()
    }

    /// The server's exit status, once it has exited; None while it runs.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok()?
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole group: the server and its children.
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(-self.pid), nix::sys::signal::Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// A process, as /proc/PID/stat and /proc/PID/status show it.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
}

impl Proc {
    fn read(pid: i32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Proc { pid, ppid, state })
    }

    /// Whether `sig` is in the mask named `field` of /proc/PID/status
    /// (SigCgt: signals caught by a handler; SigPnd: pending).
    fn has(&self, field: &str, sig: i32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0);
        mask & (1 << (sig - 1)) != 0
    }

    /// Inodes of the sockets among its descriptors, with their numbers.
    fn sockets(&self) -> Vec<(i32, u64)> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid)) else { return Vec::new() };
        dir.filter_map(|entry| {
            let entry = entry.ok()?;
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let inode = target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()?;
            Some((fd, inode))
        })
        .collect()
    }
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter_map(Proc::read).collect()
}

/// The inode of the socket listening on `port` (/proc/net/tcp and tcp6).
fn listening_inode(port: u16) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok()).flatten()
        })
    })
}

/// Looks again and again (every 10 ms) until `check` finds what it wants,
/// for at most WAIT.
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT;
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

/// Bytes that differ from one run to the next.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut state =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn not_started(report: &mut Report, binary: &str) {
    report.bad(
        (
            &format!("{binary} no arrancó o no dijo «listening on PUERTO»"),
            &format!("{binary} did not start, or did not say 'listening on PORT'"),
        ),
        (
            "que arranque en el puerto 0 y lo diga en su primera línea",
            "it starts on port 0 and says so on its first line",
        ),
        ("make; ./TCPechod 0", "make; ./TCPechod 0"),
    );
}

/// Exercises 1 to 4: the part of the server that is given.
fn check_given(report: &mut Report) {
    report
        .section("Ejercicios 1 a 4: el servidor que se te da", "Exercises 1 to 4: the server you were given");
    let Some(server) = Server::start("./TCPechod") else { return not_started(report, "./TCPechod") };
    let data = random_bytes(1 << 20);
    match (server.exchange(b"hello, server\n"), server.exchange(&data)) {
        (Some(line), Some(big)) if line == b"hello, server\n" && big == data => report.good(
            "el eco vuelve byte a byte (una línea, 1 MiB aleatorio)",
            "the echo comes back byte for byte (a line, 1 MiB of random data)",
        ),
        _ => report.bad(
            ("el eco no volvió entero", "the echo did not come back whole"),
            ("cada byte enviado, de vuelta y en orden", "every byte sent, back and in order"),
            ("echo() en src/main.rs", "echo() in src/main.rs"),
        ),
    }
    // Two clients at once: the second is served while the first is connected.
    let first = server.connect();
    let second = first.as_ref().and_then(|_| server.exchange(b"me too\n"));
    match second {
        Some(echo) if echo == b"me too\n" => report.good(
            "dos clientes a la vez: el segundo recibe su eco con el primero conectado",
            "two clients at once: the second gets its echo while the first is connected",
        ),
        _ => report.bad(
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
        let children = server.children();
        let holders = children
            .iter()
            .filter(|c| msock.is_some_and(|m| c.sockets().iter().any(|&(_, i)| i == m)))
            .count();
        (!children.is_empty() && holders == 0).then_some(())
    });
    match holding {
        Some(()) => report.good(
            "el hijo cierra msock (no está entre sus descriptores)",
            "the child closes msock (it is not among its descriptors)",
        ),
        None => report.bad(
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
            "el padre cierra cada asock (solo le queda msock)",
            "the parent closes every asock (msock is all it keeps)",
        ),
        None => report.bad(
            (
                "el padre conserva sockets de clientes (/proc/PID/fd)",
                "the parent keeps clients' sockets (/proc/PID/fd)",
            ),
            ("que el padre cierre asock tras fork()", "the parent closes asock after fork()"),
            ("la rama del padre, tras fork()", "the parent's branch, after fork()"),
        ),
    }
}

/// Exercise 5: no zombies with the reaper; zombies without it.
fn check_reaper(report: &mut Report) {
    report.section("Ejercicio 5: el reaper", "Exercise 5: the reaper");
    let Some(server) = Server::start("./TCPechod") else { return not_started(report, "./TCPechod") };
    let clients = 50;
    for _ in 0..clients {
        if server.exchange(b"x").is_none() {
            break;
        }
    }
    match wait_for(|| server.children().is_empty().then_some(())) {
        Some(()) => report.good(
            &format!("tras {clients} clientes no queda ningún hijo: el reaper los recogió"),
            &format!("after {clients} clients no child is left: the reaper collected them"),
        ),
        None => {
            let zombies = server.children().iter().filter(|c| c.state == 'Z').count();
            report.bad(
                (&format!("tras {clients} clientes, {zombies} hijos siguen zombis (estado Z en /proc/PID/stat)"), &format!("after {clients} clients, {zombies} children are still zombies (state Z in /proc/PID/stat)")),
                ("ninguno: el manejador de SIGCHLD los recoge con waitpid(-1, WNOHANG), en un bucle", "none: the SIGCHLD handler collects them with waitpid(-1, WNOHANG), in a loop"),
                ("reaper() e install_reaper() en src/main.rs; man 2 waitpid", "reaper() and install_reaper() in src/main.rs; man 2 waitpid"),
            );
        }
    }
    let Some(without) = Server::start("./TCPechod-noreaper") else {
        return not_started(report, "./TCPechod-noreaper");
    };
    for _ in 0..3 {
        let _ = without.exchange(b"x");
    }
    let zombies =
        wait_for(|| (without.children().iter().filter(|c| c.state == 'Z').count() == 3).then_some(()));
    match zombies {
        Some(()) => report.good(
            "sin el reaper (TCPechod-noreaper), 3 clientes dejan 3 zombis",
            "without the reaper (TCPechod-noreaper), 3 clients leave 3 zombies",
        ),
        None => report.bad(
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

/// Exercise 6: a child survives SIGPIPE, and counts each one.
fn check_sigpipe(report: &mut Report) {
    report.section("Ejercicio 6: SIGPIPE", "Exercise 6: SIGPIPE");
    let Some(server) = Server::start("./TCPechod") else { return not_started(report, "./TCPechod") };
    let Some(mut sock) = server.connect() else { return not_started(report, "./TCPechod") };
    let mut one = [0u8; 1];
    let child = (|| {
        sock.write_all(b"a").ok()?;
        sock.read_exact(&mut one).ok()?;
        wait_for(|| server.children().into_iter().find(|c| c.state != 'Z'))
    })();
    let Some(child) = child else {
        return report.bad(
            ("ningún hijo atendió al cliente", "no child served the client"),
            ("un hijo que devuelve el eco", "a child that echoes"),
            ("el bucle de main()", "the loop of main()"),
        );
    };
    if !child.has("SigCgt", libc::SIGPIPE) {
        return report.bad(
            (
                "el hijo no tiene manejador de SIGPIPE (SigCgt en /proc/PID/status)",
                "the child has no SIGPIPE handler (SigCgt in /proc/PID/status)",
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
    // A number of SIGPIPEs no log line can know in advance.
    let sent = 2 + random_bytes(1)[0] as u64 % 4;
    for _ in 0..sent {
        let pid = nix::unistd::Pid::from_raw(child.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGPIPE);
        // Signals of one kind do not queue: wait until this one is handled.
        let _ = wait_for(|| {
            Proc::read(child.pid)
                .filter(|p| !p.has("SigPnd", libc::SIGPIPE) && !p.has("ShdPnd", libc::SIGPIPE))
        });
    }
    let alive = sock.write_all(b"b").is_ok() && sock.read_exact(&mut one).is_ok() && one == *b"b";
    if !alive {
        return report.bad(
            (
                &format!("tras {sent} SIGPIPE (kill -PIPE) el hijo ya no atiende a su cliente"),
                &format!("after {sent} SIGPIPEs (kill -PIPE) the child no longer serves its client"),
            ),
            ("que el manejador las cuente y el hijo siga", "the handler counts them and the child goes on"),
            ("count_sigpipe() en src/main.rs", "count_sigpipe() in src/main.rs"),
        );
    }
    let _ = sock.shutdown(Shutdown::Write);
    let _ = sock.read_to_end(&mut Vec::new());
    let tag = format!("[child {}] finished:", child.pid);
    match wait_for(|| server.line_with(&tag)) {
        Some(line) if line.ends_with(&format!("sigpipe count={sent}")) => report.good(
            &format!("el hijo sobrevive a {sent} SIGPIPE y dice «sigpipe count={sent}»"),
            &format!("the child survives {sent} SIGPIPEs and says 'sigpipe count={sent}'"),
        ),
        line => {
            let line = line.unwrap_or_default();
            report.bad(
                (
                    &format!("enviadas {sent} SIGPIPE, el hijo dice: {line}"),
                    &format!("{sent} SIGPIPEs sent, the child says: {line}"),
                ),
                (
                    &format!("«sigpipe count={sent}» en su última línea"),
                    &format!("'sigpipe count={sent}' on its last line"),
                ),
                (
                    "count_sigpipe() debe sumar uno a SIGPIPE_COUNT",
                    "count_sigpipe() must add one to SIGPIPE_COUNT",
                ),
            )
        }
    }
}

/// Exercise 7: SIGTERM stops the accept loop, msock is closed and said,
/// the server exits 0, and the children serve on.
fn check_sigterm(report: &mut Report) {
    report.section("Ejercicio 7: cierre ordenado con SIGTERM", "Exercise 7: graceful shutdown with SIGTERM");
    let Some(mut server) = Server::start("./TCPechod") else { return not_started(report, "./TCPechod") };
    let Some(mut sock) = server.connect() else { return not_started(report, "./TCPechod") };
    let mut one = [0u8; 1];
    let served = sock.write_all(b"a").is_ok() && sock.read_exact(&mut one).is_ok();
    let msock_fd = Proc::read(server.pid).and_then(|p| {
        let inode = listening_inode(server.port)?;
        p.sockets().into_iter().find(|&(_, i)| i == inode).map(|(fd, _)| fd)
    });
    // The parent waits in poll (asleep), the client's child is serving.
    let _ = wait_for(|| Proc::read(server.pid).filter(|p| p.state == 'S'));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(server.pid), nix::sys::signal::Signal::SIGTERM);
    let status = wait_for(|| server.exited());
    match status {
        None => report.bad(
            (
                "el servidor sigue en marcha 10 s después de SIGTERM",
                "the server still runs 10 s after SIGTERM",
            ),
            ("que deje de aceptar y termine", "it stops accepting and exits"),
            (
                "on_sigterm() y el bucle de main(): el poll que corta la señal falla con EINTR, y el bucle debe mirar STOP",
                "on_sigterm() and the loop of main(): the poll the signal cuts short fails with EINTR, and the loop must look at STOP",
            ),
        ),
        Some(status) if status.code() == Some(0) => report.good(
            "SIGTERM termina el bucle de accept, y el servidor sale con estado 0",
            "SIGTERM ends the accept loop, and the server exits with status 0",
        ),
        Some(status) => report.bad(
            (&format!("el servidor terminó así: {status}"), &format!("the server ended this way: {status}")),
            ("estado de salida 0, tras un cierre ordenado", "exit status 0, after a graceful shutdown"),
            (
                "install_sigterm_handler() en src/main.rs (sin manejador, SIGTERM mata)",
                "install_sigterm_handler() in src/main.rs (without a handler, SIGTERM kills)",
            ),
        ),
    }
    let said =
        msock_fd.and_then(|fd| server.line_with(&format!("[parent {}] closed msock (fd {fd})", server.pid)));
    match said {
        Some(_) => report.good(
            "el padre dice que cierra msock, con su descriptor",
            "the parent says it closes msock, with its descriptor",
        ),
        None => report.bad(
            ("el padre no dice «closed msock (fd N)»", "the parent does not say 'closed msock (fd N)'"),
            ("una línea por recurso que cierra", "a line for every resource it closes"),
            ("el final de main() en src/main.rs", "the end of main() in src/main.rs"),
        ),
    }
    let free = TcpListener::bind(("0.0.0.0", server.port)).is_ok();
    let still = served && sock.write_all(b"b").is_ok() && sock.read_exact(&mut one).is_ok() && one == *b"b";
    match (free, still) {
        (true, true) => report.good(
            "el puerto queda libre, y el hijo sigue atendiendo a su cliente",
            "the port is free again, and the child goes on serving its client",
        ),
        _ => report.bad(
            (
                "el puerto sigue ocupado, o el cliente ya no tiene eco",
                "the port is still taken, or the client gets no echo",
            ),
            ("nadie con msock abierto, y el hijo intacto", "nobody holding msock, and the child untouched"),
            ("qué cierra cada proceso", "what each process closes"),
        ),
    }
}
