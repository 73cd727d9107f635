//! TCPechod: un servidor de eco concurrente, que terminas tú. Un solo
//! fichero, con la misma estructura que el TCPechod.c de Comer: el socket
//! maestro, un bucle que acepta y crea un hijo por cliente, el eco y los
//! manejadores de señales. Tres ejercicios son tuyos, marcados con
//! `EJERCICIO` donde escribes:
//! - 5: el reaper, el manejador de SIGCHLD, y la línea que lo instala;
//! - 6: un manejador de SIGPIPE que cuenta las SIGPIPE de un hijo;
//! - 7: un manejador de SIGTERM, y el final del bucle: dejar de aceptar,
//!   cerrar msock (y anotarlo en el registro), salir con 0.
//!
//! TCPechod: a concurrent echo server, yours to finish. One file, the
//! shape of Comer's TCPechod.c: the master socket, an accept loop that
//! forks a child per client, the echo, and the signal handlers. Three
//! exercises are yours, each marked `EXERCISE` where you write:
//! - 5: the reaper, the SIGCHLD handler, and the line that installs it;
//! - 6: a SIGPIPE handler that counts the SIGPIPEs of a child;
//! - 7: a SIGTERM handler, and the end of the accept loop: stop accepting,
//!   close msock (saying so in the log), exit 0.
//!
//! ```text
//! make              ./TCPechod (with your reaper) and ./TCPechod-noreaper
//! ./TCPechod 8123   the server on port 8123
//! make check        checks every exercise (make check5 checks one)
//! ```

// The handlers below are unused until you install them: no warning for that.
#![allow(dead_code)]
// Every `unsafe` block says why it is sound, in a `// SAFETY:` comment
// above it: `make lint` (clippy) refuses one that does not.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{fork, getpid, ForkResult};

/// SIGPIPEs counted by this process (exercise 6).
static SIGPIPE_COUNT: AtomicU64 = AtomicU64::new(0);
/// Set when SIGTERM asked the server to stop (exercise 7).
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether this process is a child (for the log).
static IS_CHILD: AtomicBool = AtomicBool::new(false);

fn main() {
    let port = port_from_arguments();
    // The master socket, msock: socket, bind, listen (std sets SO_REUSEADDR).
    let msock =
        TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|err| fail(&format!("bind port {port}"), err));
    // Rust programs start with SIGPIPE ignored; C programs, with SIGPIPE's
    // default action, which kills. Do as C.
    set_handler(Signal::SIGPIPE, SigHandler::SigDfl, SaFlags::empty());
    #[cfg(feature = "reaper")]
    install_reaper();
    install_sigpipe_handler();
    install_sigterm_handler();
    log(&format!("listening on {}", msock.local_addr().map_or("?".into(), |a| a.to_string())));

    loop {
        // EJERCICIO 7 / EXERCISE 7: sal del bucle si llegó SIGTERM / leave the loop once SIGTERM came.

        // En C, una señal corta un accept bloqueado (falla con EINTR: la
        // lección de tcpserv04). En Rust no: TcpListener::accept reintenta
        // EINTR él solo, y ningún manejador puede sacar al padre de un
        // accept bloqueado. Por eso el bucle espera a un cliente en poll(2),
        // que cualquier manejador corta con EINTR, y llama a accept cuando
        // ya hay uno esperando.
        // In C a signal cuts a blocked accept short (it fails with EINTR:
        // the lesson of tcpserv04). Not in Rust: TcpListener::accept retries
        // EINTR itself, and no handler can get the parent out of a blocked
        // accept. So the loop waits for a client in poll(2), which any
        // handler cuts short with EINTR, and calls accept once one waits.
        match poll(&mut [PollFd::new(msock.as_fd(), PollFlags::POLLIN)], PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(errno) => fail("poll", std::io::Error::from(errno)),
        }
        let (asock, client) = msock.accept().unwrap_or_else(|err| fail("accept", err));
        // SAFETY: this process has one thread, so the child is a
        // consistent copy of it and may run ordinary code after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                IS_CHILD.store(true, Ordering::Relaxed);
                log(&format!("closed msock (fd {})", msock.as_raw_fd()));
                drop(msock);
                let echoed = echo(&asock);
                let count = SIGPIPE_COUNT.load(Ordering::Relaxed);
                log(&format!("finished: {echoed} bytes echoed; sigpipe count={count}"));
                drop(asock);
                // SAFETY: _exit ends the child at once, without the exit
                // handlers and buffers inherited from the parent.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => {
                log(&format!(
                    "accepted {client}, forked child {child}; closed asock (fd {})",
                    asock.as_raw_fd()
                ));
                drop(asock);
            }
            Err(errno) => log(&format!("fork: {errno}")),
        }
    }
    // EJERCICIO 7: el servidor para: cierra msock (y anótalo), sal con 0.
    // EXERCISE 7: the server stops: close msock (and log it), exit 0.
}

/// The echo (Comer's `TCPechod`): write back what is read, until the
/// client closes. Returns the bytes echoed.
fn echo(mut sock: &TcpStream) -> u64 {
    let mut buf = [0u8; 4096];
    let mut echoed = 0;
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) => return echoed,
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return echoed,
        };
        if sock.write_all(&buf[..n]).is_err() {
            return echoed; // EPIPE: the client is gone
        }
        echoed += n as u64;
    }
}

/// EJERCICIO 5: el reaper, el manejador de SIGCHLD. Recoge a todos los
/// hijos que hayan terminado, sin bloquear nunca, en un bucle: las señales
/// no se encolan, y una SIGCHLD puede valer por varios hijos. Llama a
/// `libc::waitpid(-1, &mut status, libc::WNOHANG)` mientras devuelva un PID
/// (ha recogido a un hijo) y para cuando devuelva 0 (hay hijos vivos pero
/// ninguno ha terminado) o -1 (ECHILD: no hay hijos). Deja errno como
/// estaba: guárdalo al entrar (`Errno::last_raw()`) y restáuralo al salir
/// (`Errno::set_raw`). No uses el `waitpid` de nix: convierte la muerte
/// por una señal que no sabe nombrar en un error, que acabaría un bucle
/// `while let Ok(..)` antes de tiempo y dejaría hijos sin recoger (lo
/// explica `src/server/reaper.rs`, el reaper de la práctica). `libc::waitpid`
/// es `unsafe`: llámalo dentro de `unsafe { ... }`, con un comentario
/// `// SAFETY:` que diga por qué es seguro. Lee `man 2 waitpid` (WNOHANG) y
/// `man 7 signal-safety`.
///
/// EXERCISE 5: the reaper, SIGCHLD's handler. Collect every child that has
/// ended, without ever blocking, in a loop: signals are not queued, so one
/// SIGCHLD may stand for several children. Call `libc::waitpid(-1, &mut
/// status, libc::WNOHANG)` while it returns a PID (it collected a child),
/// and stop when it returns 0 (children alive, none ended) or -1 (ECHILD:
/// no children). Leave errno as you found it: save it on entry
/// (`Errno::last_raw()`) and restore it on the way out (`Errno::set_raw`).
/// Do not use nix's `waitpid`: it turns a death by a signal it cannot name
/// into an error, which would end a `while let Ok(..)` loop early and leave
/// children unreaped (the lab's own reaper, `src/server/reaper.rs`, says so).
/// `libc::waitpid` is `unsafe`: call it inside `unsafe { ... }`, with a
/// `// SAFETY:` comment saying why it is sound. Read: `man 2 waitpid`
/// (WNOHANG), `man 7 signal-safety`.
#[cfg(feature = "reaper")]
extern "C" fn reaper(_sig: libc::c_int) {
    // EJERCICIO 5 / EXERCISE 5: escribe aquí el bucle / write the loop here.
}

/// EJERCICIO 5: instala `reaper` como manejador de SIGCHLD con
/// `set_handler` (más abajo), con SA_RESTART (la llamada que interrumpa
/// vuelve a empezar) y SA_NOCLDSTOP (un hijo parado, no terminado, no envía
/// SIGCHLD). La forma de la llamada, con otra señal y otra función:
/// `set_handler(Signal::SIGUSR1, SigHandler::Handler(f), SaFlags::SA_RESTART)`;
/// dos banderas se juntan con `|`.
///
/// EXERCISE 5: install `reaper` as the handler of SIGCHLD with
/// `set_handler` (below), with SA_RESTART (a call it interrupts starts
/// again) and SA_NOCLDSTOP (a child stopped, not ended, sends no SIGCHLD).
/// The shape of the call, with another signal and function:
/// `set_handler(Signal::SIGUSR1, SigHandler::Handler(f), SaFlags::SA_RESTART)`;
/// two flags are joined with `|`.
#[cfg(feature = "reaper")]
fn install_reaper() {
    // EJERCICIO 5 / EXERCISE 5: una línea / one line.
}

/// EJERCICIO 6: un manejador de SIGPIPE que cuenta: suma uno a
/// `SIGPIPE_COUNT`. Con él, escribir en una conexión rota ya no mata al
/// hijo: la escritura falla con EPIPE, y el eco termina. Lee `man 7 pipe` y
/// `man 2 write` (EPIPE).
///
/// EXERCISE 6: a SIGPIPE handler that counts: add one to `SIGPIPE_COUNT`.
/// With it, a write to a broken connection no longer kills the child: the
/// write fails with EPIPE, and the echo ends. Read: `man 7 pipe`, `man 2
/// write` (EPIPE).
extern "C" fn count_sigpipe(_sig: libc::c_int) {
    // EJERCICIO 6 / EXERCISE 6: una línea / one line.
}

/// EJERCICIO 6: instala `count_sigpipe` como manejador de SIGPIPE (en lugar
/// de la acción por omisión que pone `main`).
///
/// EXERCISE 6: install `count_sigpipe` as the handler of SIGPIPE (it
/// replaces the default action set in `main`).
fn install_sigpipe_handler() {
    // EJERCICIO 6 / EXERCISE 6: una línea / one line.
}

/// EJERCICIO 7: el manejador de SIGTERM solo pone `STOP` a verdadero; el
/// bucle hace el resto (ni escribir en el registro ni cerrar nada desde
/// aquí).
///
/// EXERCISE 7: the SIGTERM handler only sets `STOP` to true; the loop does
/// the rest (no logging, nothing closed from here).
extern "C" fn on_sigterm(_sig: libc::c_int) {
    // EJERCICIO 7 / EXERCISE 7: una línea / one line.
}

/// EJERCICIO 7: instala `on_sigterm` como manejador de SIGTERM. El poll que
/// interrumpe falla con EINTR, y el bucle llega a mirar `STOP`. (Para
/// curiosos: una SIGTERM que llega después de que el bucle mire `STOP` y
/// antes de que poll empiece a esperar no se atiende hasta el siguiente
/// cliente. El servidor de la práctica cierra ese hueco: mira su
/// `src/server/accept.rs`.)
///
/// EXERCISE 7: install `on_sigterm` as the handler of SIGTERM. The poll it
/// interrupts fails with EINTR, and the loop gets to look at `STOP`. (For
/// the curious: a SIGTERM that comes after the loop looked at `STOP` and
/// before poll starts to wait is not seen until the next client. The lab's
/// server closes that gap: see its `src/server/accept.rs`.)
fn install_sigterm_handler() {
    // EJERCICIO 7 / EXERCISE 7: una línea / one line.
}

/// Installs `handler` for `sig` with sigaction(2).
fn set_handler(sig: Signal, handler: SigHandler, flags: SaFlags) {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: a handler runs in the middle of whatever the process was
    // doing, so every handler installed with this function must only touch
    // atomics and call async-signal-safe functions (waitpid, write); then
    // it may interrupt anything. (SigDfl and SigIgn run no code of ours.)
    if let Err(errno) = unsafe { sigaction(sig, &action) } {
        fail(&format!("sigaction {sig}"), std::io::Error::from(errno));
    }
}

/// The port from the command line: `TCPechod PORT`.
fn port_from_arguments() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|port| port.parse()) {
        Some(Ok(port)) if args.len() == 2 => port,
        _ => {
            let _ = writeln!(std::io::stderr(), "usage: TCPechod PORT (a number from 0 to 65535)");
            exit(2);
        }
    }
}

/// One line on stderr, in one write: `[parent PID] ...` or `[child PID] ...`.
fn log(text: &str) {
    let who = if IS_CHILD.load(Ordering::Relaxed) { "child" } else { "parent" };
    let line = format!("[{who} {}] {text}\n", getpid());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Says what failed, in one line, and exits 1.
fn fail(what: &str, err: std::io::Error) -> ! {
    // The system's words for the error, without Rust's "(os error N)".
    let why = err.raw_os_error().map_or(err.to_string(), |code| Errno::from_raw(code).desc().into());
    let _ = writeln!(std::io::stderr(), "TCPechod: {what}: {why}");
    exit(1);
}
