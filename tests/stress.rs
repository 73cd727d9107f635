//! The stress and fault suite (`make stress` runs it alone): floods,
//! limits, clients that misbehave, signals under load, resources running
//! out, restarts, hostile arguments and huge inputs. Every echo is checked
//! byte for byte, and nothing may be left behind: no zombie, no descriptor,
//! no process. Traffic goes to 127.0.0.1 only, and every loop is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use testbed::*;

/// How one exchange with the server ended.
#[derive(Debug, PartialEq, Eq)]
enum Exchange {
    /// Everything came back, byte for byte.
    Echoed,
    /// The echo came back different: what must never happen.
    Wrong,
    /// Could not connect (refused): allowed while the server is at its limit.
    Refused,
    /// The connection broke (reset, closed early).
    Broken,
}

/// Sends `payload`, half-closes, reads everything back (writing and reading
/// at the same time, whatever the size), and compares.
fn exchange(port: u16, payload: &[u8]) -> Exchange {
    let sock = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(sock) => sock,
        Err(err) if err.kind() == ErrorKind::ConnectionRefused => return Exchange::Refused,
        Err(_) => return Exchange::Broken,
    };
    match send_and_receive(&sock, payload) {
        Ok(echo) if echo == payload => Exchange::Echoed,
        Ok(echo) if payload.starts_with(&echo) => Exchange::Broken, // cut short, not wrong
        Ok(_) => Exchange::Wrong,
        Err(_) => Exchange::Broken,
    }
}

fn send_and_receive(sock: &TcpStream, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    sock.set_nonblocking(true)?;
    let mut sent = 0;
    let mut echo = Vec::with_capacity(payload.len());
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + TIMEOUT;
    let mut writer = sock;
    let mut reader = sock;
    let mut half_closed = payload.is_empty();
    if half_closed {
        sock.shutdown(Shutdown::Write)?;
    }
    loop {
        let mut events = PollFlags::POLLIN;
        if !half_closed {
            events |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(sock.as_fd(), events)];
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::from(ErrorKind::TimedOut));
        }
        poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX))?;
        if !half_closed {
            match writer.write(&payload[sent..]) {
                Ok(n) => sent += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
            if sent == payload.len() {
                sock.shutdown(Shutdown::Write)?;
                half_closed = true;
            }
        }
        match reader.read(&mut buf) {
            Ok(0) => return Ok(echo),
            Ok(n) => echo.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// Runs `connections` exchanges from `clients` threads at once, with
/// payloads of 1 B to `max_size`; returns how each ended, by kind.
fn flood(
    port: u16,
    clients: usize,
    connections: usize,
    max_size: u64,
    stop: Option<&AtomicBool>,
) -> Vec<Exchange> {
    flood_counting(port, clients, connections, max_size, stop, &AtomicUsize::new(0))
}

/// [`flood`], counting the exchanges echoed so far in `echoed`.
fn flood_counting(
    port: u16,
    clients: usize,
    connections: usize,
    max_size: u64,
    stop: Option<&AtomicBool>,
    echoed: &AtomicUsize,
) -> Vec<Exchange> {
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let (next, echoed) = (&next, echoed);
                scope.spawn(move || {
                    let mut results = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= connections || stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                            return results;
                        }
                        let mut rng = Rng(0x5EED_0000 + n as u64);
                        let size = 1 + rng.below(max_size) as usize;
                        let result = exchange(port, &rng.bytes(size));
                        if result == Exchange::Echoed {
                            echoed.fetch_add(1, Ordering::Relaxed);
                        }
                        results.push(result);
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    })
}

fn count(results: &[Exchange], kind: Exchange) -> usize {
    results.iter().filter(|r| **r == kind).count()
}

#[test]
fn a_flood_of_2000_connections_is_echoed_byte_for_byte_and_leaves_nothing_behind() {
    for mode in modes() {
        let mut server = Server::start(&["-q", "--mode", mode]);
        let fds_before = fd_count(server.pid);
        let results = flood(server.port, 64, 2000, 256 * 1024, None);
        assert_eq!(results.len(), 2000, "{mode}");
        assert_eq!(count(&results, Exchange::Wrong), 0, "{mode}: a wrong echo");
        assert_eq!(count(&results, Exchange::Broken), 0, "{mode}: a broken connection");
        assert_eq!(
            count(&results, Exchange::Echoed) + count(&results, Exchange::Refused),
            2000,
            "{mode}: only refusals are allowed besides echoes"
        );
        if mode == "fork" {
            server.wait_for_children(0, |_| true);
        }
        wait_until(&format!("{mode}: the descriptors to come back to {fds_before}"), || {
            (fd_count(server.pid) == fds_before).then_some(())
        });
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}");
        assert!(processes_in_group(server.pid).is_empty(), "{mode}");
    }
}

#[test]
fn at_max_children_8_never_more_than_8_serve_and_all_64_are_served() {
    for mode in ["fork", "thread"] {
        let server = Server::start(&["-q", "--mode", mode, "--max-children", "8", "--delay", "20"]);
        let pid = server.pid;
        let done = AtomicBool::new(false);
        let most = thread::scope(|scope| {
            let sampler = scope.spawn(|| {
                let mut most = 0;
                while !done.load(Ordering::Relaxed) {
                    // Children (zombies included: they count until reaped),
                    // or the sockets of the clients being served. (Not the
                    // threads: one that was joined may still show in /proc
                    // for a moment while the kernel finishes its exit.)
                    let serving = match mode {
                        "fork" => children_of(pid).len(),
                        _ => Proc::read(pid).map_or(1, |p| p.socket_inodes().len()) - 1,
                    };
                    most = most.max(serving);
                    thread::sleep(Duration::from_millis(1));
                }
                most
            });
            let results = flood(server.port, 64, 64, 2000, None);
            done.store(true, Ordering::Relaxed);
            assert_eq!(count(&results, Exchange::Echoed), 64, "{mode}: all 64 served");
            sampler.join().unwrap()
        });
        assert!((1..=8).contains(&most), "{mode}: at most 8 at once, saw {most}");
    }
}

/// A connection that sends nothing at all.
fn silent_client(server: &Server) -> TcpStream {
    server.connect()
}

#[test]
fn misbehaving_clients_do_not_hold_up_the_others() {
    // Prefork serves as many clients at once as it has workers: give it
    // more than the misbehaving clients can occupy.
    for (mode, extra) in [("fork", None), ("prefork", Some("8")), ("thread", None), ("poll", None)] {
        let mut args = vec!["--mode", mode, "--grace", "1"];
        if let Some(workers) = extra {
            args.extend_from_slice(&["--workers", workers]);
        }
        let mut server = Server::start(&args);
        let silent = silent_client(&server);
        let greedy = non_reading_client(&server);
        // Reset in the middle: data sent, then an abortive close (RST).
        let reset = server.connect();
        (&reset).write_all(b"half a message").unwrap();
        let abort = libc::linger { l_onoff: 1, l_linger: 0 };
        nix::sys::socket::setsockopt(&reset, nix::sys::socket::sockopt::Linger, &abort).unwrap();
        drop(reset);
        // Half-close, then wait without closing.
        let mut waiting = server.connect();
        waiting.write_all(b"then I wait\n").unwrap();
        waiting.shutdown(Shutdown::Write).unwrap();
        let mut echo = Vec::new();
        waiting.read_to_end(&mut echo).unwrap();
        assert_eq!(echo, b"then I wait\n", "{mode}");
        // One byte at a time, with pauses.
        let mut trickle = server.connect();
        for &byte in b"slowly" {
            trickle.write_all(&[byte]).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        trickle.shutdown(Shutdown::Write).unwrap();
        let mut echo = Vec::new();
        trickle.read_to_end(&mut echo).unwrap();
        assert_eq!(echo, b"slowly", "{mode}");
        // And a normal client is served meanwhile.
        assert_eq!(exchange(server.port, b"business as usual"), Exchange::Echoed, "{mode}");
        drop((silent, greedy, waiting));
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}: {:?}", server.log);
        // Six clients; the reset one may be gone before it is accepted.
        let summary = server.summary();
        assert!((5..=6).contains(&summary.accepted), "{mode}: {summary:?}");
        assert!(processes_in_group(server.pid).is_empty(), "{mode}");
    }
}

/// A log line that says a connection was closed by --idle-timeout.
fn idle_line(line: &str) -> bool {
    line.contains("(--idle-timeout)") || line.contains("(idle for 1 s: closed)")
}

#[test]
fn idle_timeout_closes_silent_and_non_reading_clients() {
    for mode in modes() {
        let mut server = Server::start(&["--mode", mode, "--idle-timeout", "1"]);
        let mut silent = silent_client(&server);
        let mut rest = Vec::new();
        silent.read_to_end(&mut rest).unwrap(); // returns: the server closed it
        server.wait_for_lines(1, idle_line);
        let greedy = non_reading_client(&server);
        server.wait_for_lines(2, idle_line);
        drop(greedy);
        assert_eq!(exchange(server.port, b"still here"), Exchange::Echoed, "{mode}");
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}");
        let closed = server.log.iter().filter(|l| idle_line(l)).count();
        assert_eq!(closed, 2, "{mode}: {:?}", server.log);
    }
}

#[test]
fn signals_during_a_flood_never_crash_the_server_or_spoil_an_echo() {
    for mode in modes() {
        let mut server = Server::start(&["-q", "--mode", mode]);
        let pid = server.pid;
        let stop = AtomicBool::new(false);
        let sent = AtomicU64::new(0);
        let results = thread::scope(|scope| {
            // SIGUSR1 again and again while the flood runs.
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 2000 {
                    signal(pid, libc::SIGUSR1);
                    sent.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(1));
                }
            });
            let results = flood(server.port, 32, 600, 64 * 1024, None);
            stop.store(true, Ordering::Relaxed);
            results
        });
        assert_eq!(count(&results, Exchange::Echoed), 600, "{mode}: every echo exact under SIGUSR1");
        server.wait_for_line(|l| l.contains("status:"));
        // Then SIGTERM (or SIGINT) in the middle of another flood.
        let sig = if mode == "fork" || mode == "thread" { libc::SIGINT } else { libc::SIGTERM };
        let stop = AtomicBool::new(false);
        let echoed = AtomicUsize::new(0);
        let results = thread::scope(|scope| {
            let (port, stop, echoed) = (server.port, &stop, &echoed);
            let flooding =
                scope.spawn(move || flood_counting(port, 32, 100_000, 16 * 1024, Some(stop), echoed));
            wait_until("some connections echoed", || (echoed.load(Ordering::Relaxed) >= 50).then_some(()));
            signal(pid, sig);
            server.wait_for_exit_of_all();
            stop.store(true, Ordering::Relaxed);
            flooding.join().unwrap()
        });
        assert!(count(&results, Exchange::Echoed) >= 50, "{mode}");
        assert_eq!(count(&results, Exchange::Wrong), 0, "{mode}: a completed echo is never wrong");
        assert_eq!(server.wait_for_exit().code(), Some(0), "{mode}: {:?}", server.log);
        let summary = server.summary();
        if mode != "prefork" {
            assert_eq!(summary.accepted, summary.reaped, "{mode}: {summary:?}");
        }
        assert!(processes_in_group(server.pid).is_empty(), "{mode}");
    }
}

#[test]
fn a_storm_of_600_children_ending_at_once_leaves_no_zombie() {
    let mut server = Server::start(&["-q", "--max-children", "1000"]);
    let clients: Vec<TcpStream> = (0..600).map(|_| server.served_client()).collect();
    server.wait_for_children(600, |p| !p.is_zombie());
    drop(clients); // 600 children end at once: SIGCHLDs merge, the ring overflows
    server.wait_for_children(0, |_| true);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert_eq!(server.summary().reaped, 600);
}

#[test]
fn a_child_killed_with_sigkill_is_reaped_and_reported() {
    let mut server = Server::start(&[]);
    let mut sock = server.connect();
    let child = server.wait_for_children(1, |_| true).remove(0);
    signal(child.pid, libc::SIGKILL);
    let line = server.wait_for_line(|l| l.contains(&format!("reaped child {}", child.pid)));
    assert!(line.ends_with("killed by signal 9 (SIGKILL)"), "{line}");
    let mut rest = Vec::new();
    let _ = sock.read_to_end(&mut rest); // the kernel closed the child's socket
    assert_eq!(exchange(server.port, b"next"), Exchange::Echoed);
}

#[test]
fn out_of_descriptors_the_server_backs_off_and_recovers() {
    for mode in ["thread", "poll"] {
        // 10 descriptors: stdin, stdout, stderr, msock, the wake pipe, and
        // room for 4 clients.
        let mut server = Server::start_with("prlimit", &["--nofile=10:10", &SERVER, "--mode", mode], &[]);
        let held: Vec<TcpStream> = (0..4).map(|_| server.served_client()).collect();
        let mut waiting = server.connect();
        waiting.write_all(b"let me in\n").unwrap();
        server.wait_for_line(|l| l.contains("Too many open files"));
        // Pausing between tries, and saying so once: the tries go on (ten
        // a second) while the log waits for the end of the trouble.
        // Backing off, not spinning: over ten pauses (each a sleep, which
        // the kernel counts as a voluntary context switch), little CPU. A
        // server that spun would never pause, and this wait would fail.
        let ticks = || Proc::read(server.pid).expect("the server").cpu_ticks();
        let switches = || voluntary_switches(server.pid).expect("the server's status");
        let (ticks_before, switches_before) = (ticks(), switches());
        wait_until(&format!("{mode}: ten pauses of the server"), || {
            (switches() >= switches_before + 10).then_some(())
        });
        let used = ticks() - ticks_before;
        assert!(used < 20, "{mode}: {used} ticks of CPU over ten pauses: a busy loop");
        drop(held);
        let mut echo = [0u8; 10];
        waiting.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"let me in\n", "{mode}: served once descriptors were free");
        {
            let line = server.wait_for_line(|l| l.contains("accept works again"));
            assert!(line.contains("after ") && line.contains(" failures in "), "{line}");
            assert_eq!(server.lines_with("Too many open files").len(), 1, "{mode}: {:?}", server.log);
        }
    }
}

#[test]
fn when_fork_fails_the_client_is_let_go_and_the_server_goes_on() {
    let test = "when_fork_fails_the_client_is_let_go_and_the_server_goes_on";
    if !needs_root(test, "to run the server as another user with a process limit") {
        return;
    }
    // As a user of its own (the limit counts every process of the user:
    // no other test may run as this one), with at most 3 processes: the
    // server and two children. (The binary is copied where anyone may run it.)
    let binary = BinaryForAnyone::new("nproc");
    let mut server = Server::start_with(
        "setpriv",
        &["--reuid=60013", "--regid=60013", "--clear-groups", "prlimit", "--nproc=3:3", &binary.path],
        &[],
    );
    let held: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
    server.wait_for_children(2, |_| true);
    let mut third = server.connect();
    let mut rest = Vec::new();
    let _ = third.read_to_end(&mut rest); // let go: the connection is closed
    server.wait_for_line(|l| l.contains("fork failed") && l.contains("EAGAIN"));
    drop(held);
    server.wait_for_children(0, |_| true);
    assert_eq!(exchange(server.port, b"my turn"), Exchange::Echoed);
}

#[test]
fn after_kill_9_the_server_starts_again_at_once_on_the_same_port() {
    for mode in ["fork", "prefork"] {
        // (Four workers, so that the three clients are all being served.)
        let args: &[&str] =
            if mode == "prefork" { &["--mode", mode, "--workers", "4"] } else { &["--mode", mode] };
        let mut server = Server::start(args);
        let clients: Vec<TcpStream> = (0..3).map(|_| server.served_client()).collect();
        server.wait_for_parent_exit_after(libc::SIGKILL);
        if mode == "prefork" {
            // The workers die with their parent (PR_SET_PDEATHSIG).
            wait_until("the workers to die", || processes_in_group(server.pid).is_empty().then_some(()));
        }
        let again = Server::start_raw(&["--mode", mode, "--bind", "127.0.0.1", &server.port.to_string()]);
        assert_eq!(exchange(again.port, b"hello again"), Exchange::Echoed, "{mode}");
        drop(clients);
    }
}

#[test]
fn tcpecho_streams_a_gigabyte_in_constant_memory() {
    let server = Server::start(&["-q"]);
    let mut client = KillOnDrop(
        Command::new(CLIENT)
            .args(["127.0.0.1", &server.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = client.0.id() as i32;
    const GIB: u64 = 1 << 30;
    let mut stdin = client.0.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let mut rng = Rng(42);
        let chunk = rng.bytes(1 << 20);
        for _ in 0..GIB >> 20 {
            stdin.write_all(&chunk).unwrap();
        }
    });
    let mut stdout = client.0.stdout.take().unwrap();
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let expected = Rng(42).bytes(1 << 20);
    let mut buf = vec![0u8; 1 << 20];
    let mut got: u64 = 0;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        // The input repeats one MiB: compare piece by piece against it.
        let mut checked = 0;
        while checked < n {
            let offset = ((got + checked as u64) % expected.len() as u64) as usize;
            let len = (n - checked).min(expected.len() - offset);
            assert!(
                buf[checked..checked + len] == expected[offset..offset + len],
                "echo differs near byte {got}"
            );
            checked += len;
        }
        got += n as u64;
    }
    writer.join().unwrap();
    let status = client.0.wait().unwrap();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    assert!(status.success());
    assert_eq!(got, GIB, "every byte came back");
    let peak_mib = peak.load(Ordering::Relaxed) / 1024;
    assert!(peak_mib > 0 && peak_mib < 64, "peak RSS of TCPecho: {peak_mib} MiB");
}

/// Streaming clients, each sending as fast as it can while reading its
/// echo, and then a stop. Whoever the signal reaches first, every client
/// must get every byte its server says it echoed, in order, and then a
/// clean end of file, not a reset: a reset would have thrown away echo
/// still on its way.
fn stop_streaming_clients(mode: &str, clients: usize, stop: impl FnOnce(&mut Server)) {
    let workers = clients.to_string();
    let mut args = vec!["--mode", mode];
    if mode == "prefork" {
        args.extend_from_slice(&["--workers", &workers]);
    }
    let mut server = Server::start(&args);
    let streams: Vec<StreamingClient> =
        (0..clients).map(|i| streaming_client(server.port, i as u64, 1 << 30)).collect();
    wait_until("every client to get some echo", || {
        streams.iter().all(|s| s.received.load(Ordering::Relaxed) >= 64 * 1024).then_some(())
    });
    stop(&mut server);
    server.wait_for_exit_of_all();
    let ends: Vec<StreamEnd> = streams.into_iter().map(StreamingClient::end).collect();
    let echoed = echoed_by_client(&server.log);
    for end in &ends {
        assert!(end.intact, "{mode}: client {} got bytes it did not send", end.port);
        assert_eq!(end.read_error, None, "{mode}: client {}: {end:?}", end.port);
        assert_eq!(
            Some(&end.received),
            echoed.get(&end.port),
            "{mode}: client {} received {} of its {} bytes sent; log:\n{}",
            end.port,
            end.received,
            end.sent,
            server.log.join("\n")
        );
    }
    assert_eq!(server.wait_for_exit().code(), Some(0), "{mode}");
    assert_eq!(server.summary().killed, 0, "{mode}: {:?}", server.summary());
    assert!(processes_in_group(server.pid).is_empty(), "{mode}");
}

#[test]
fn ctrl_c_to_the_whole_group_loses_no_echo() {
    // Ctrl-C in a terminal sends SIGINT to every process of the foreground
    // group: the children get it straight from the terminal.
    for mode in modes() {
        let clients = if mode == "iterative" { 1 } else { 12 };
        stop_streaming_clients(mode, clients, |server| signal(-server.pid, libc::SIGINT));
    }
}

#[test]
fn sigterm_to_each_child_loses_no_echo() {
    stop_streaming_clients("fork", 12, |server| {
        let children = server.wait_for_children(12, |p| !p.is_zombie());
        for child in &children {
            signal(child.pid, libc::SIGTERM);
        }
        server.wait_for_lines(12, |l| l.contains("reaped child"));
        server.signal(libc::SIGTERM);
    });
}
