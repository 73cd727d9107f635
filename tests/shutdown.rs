//! Graceful shutdown: SIGTERM or SIGINT stops the accept loop, children
//! finish what they read, stragglers are killed after the grace period,
//! every child is reaped, and the port can be bound again at once.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;

use testbed::*;

#[test]
fn sigterm_under_load_ends_cleanly_and_frees_the_port() {
    let mut server = Server::start(&["--delay", "20", "--grace", "20"]);
    let port = server.port.to_string();
    let input: Vec<u8> = (0..40).flat_map(|i| format!("line {i} of a slow client\n").into_bytes()).collect();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (port, input) = (port.clone(), input.clone());
            thread::spawn(move || (run_client(&["--interval", "25", "127.0.0.1", &port], &input), input))
        })
        .collect();
    server.wait_for_children(16, |p| !p.is_zombie());

    let status = server.stop_with(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log.join("\n"));
    let summary = server.summary();
    assert_eq!(summary.accepted, 16);
    assert_eq!(summary.reaped, summary.accepted, "every child reaped");
    assert_eq!(summary.killed, 0, "children finished within the grace period");
    assert_eq!(server.lines_with("sent SIGTERM to child").len(), 16);
    assert_eq!(server.lines_with("stopped reading on SIGTERM").len(), 16);
    assert!(processes_in_group(server.pid).is_empty(), "no process of the server is left");

    for client in clients {
        let (out, input) = client.join().unwrap();
        // Cut short by the shutdown, but what came back is exactly what was sent.
        assert!(input.starts_with(&out.stdout), "a client got data it did not send");
    }

    // The port, with connections of the old server in TIME_WAIT, is free again.
    let again = Server::start_raw(&["--bind", "127.0.0.1", &port]);
    assert_eq!(again.port, server.port);
}

#[test]
fn data_read_before_sigterm_is_echoed_before_the_close() {
    let mut server = Server::start(&["--delay", "300"]);
    let mut sock = server.connect();
    sock.write_all(b"hello, are you there?\n").unwrap();
    wait_until_read(&sock, server.port);
    server.signal(libc::SIGTERM);

    let mut echo = Vec::new();
    sock.read_to_end(&mut echo).unwrap(); // up to the server's FIN
    assert_eq!(echo, b"hello, are you there?\n");
    drop(sock); // our FIN: the child waits for it after sending its own
    assert_eq!(server.wait_for_exit().code(), Some(0));
    assert_eq!(server.summary().killed, 0);
    assert_eq!(server.lines_with("finished: 22 bytes echoed (stopped reading on SIGTERM)").len(), 1);
    let child_closed = server.lines_with("closed asock");
    assert!(
        child_closed.iter().any(|l| l.starts_with("[child ")),
        "the child logs its close: {:?}",
        server.log
    );
}

#[test]
fn sigint_is_a_graceful_shutdown_too() {
    let mut server = Server::start(&[]);
    // A client that never sends (its child waits in read), and closes when
    // the server does.
    let idle = close_on_eof(server.connect());
    server.wait_for_children(1, |_| true);
    assert_eq!(server.stop_with(libc::SIGINT).code(), Some(0));
    assert!(server.log.iter().any(|l| l.contains("SIGINT received")));
    assert_eq!(server.summary(), Summary { accepted: 1, reaped: 1, sigpipe: 0, cut: 0, killed: 0 });
    assert!(idle.join().unwrap().is_empty());
}

#[test]
fn a_child_that_cannot_finish_in_time_ends_itself_before_the_grace_period_is_over() {
    // The child reads, then sleeps 10 s before echoing: longer than the
    // grace. It gives up on its own, a little before the parent would
    // send SIGKILL, and says so.
    let mut server = Server::start(&["--delay", "10000", "--grace", "1"]);
    let mut sock = server.connect();
    sock.write_all(b"too slow\n").unwrap();
    wait_until_read(&sock, server.port);

    let status = server.stop_with(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        server.summary(),
        Summary { accepted: 1, reaped: 1, sigpipe: 0, cut: 1, killed: 0 },
        "{:?}",
        server.log
    );
    assert_eq!(server.lines_with("finished: 0 bytes echoed (cut after the grace period)").len(), 1);
    assert_eq!(server.lines_with("exited with status 5: cut after the grace period").len(), 1);
    assert!(server.lines_with("SIGKILL").is_empty(), "{:?}", server.log);
    let mut rest = Vec::new();
    let _ = sock.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing was echoed: the child gave up in its delay");
}

#[test]
fn a_child_that_cannot_end_at_all_is_killed_after_the_grace_period() {
    // A stopped child (SIGSTOP) cannot run its handler: only the parent's
    // SIGKILL, at the end of the grace period, ends it.
    let mut server = Server::start(&["--grace", "1"]);
    let sock = server.served_client();
    let child = server.wait_for_children(1, |_| true)[0].pid;
    signal(child, libc::SIGSTOP);
    wait_until("the child to be stopped", || Proc::read(child).filter(|p| p.state == 'T').map(drop));

    let status = server.stop_with(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        server.summary(),
        Summary { accepted: 1, reaped: 1, sigpipe: 0, cut: 0, killed: 1 },
        "{:?}",
        server.log
    );
    assert_eq!(server.lines_with("grace period of 1 s over: 1 child still alive").len(), 1);
    assert_eq!(server.lines_with("killed by signal 9 (SIGKILL)").len(), 1);
    drop(sock);
}

#[test]
fn without_the_handler_sigterm_kills_only_the_parent() {
    let mut server = Server::start(&["--no-sigterm-handler"]);
    let mut sock = server.connect();
    sock.write_all(b"before\n").unwrap();
    let mut buf = [0u8; 7];
    sock.read_exact(&mut buf).unwrap();
    let child = server.wait_for_children(1, |_| true).remove(0);

    let status = server.wait_for_parent_exit_after(libc::SIGTERM);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM));
    // The orphaned child lives on and still echoes; no summary was printed.
    sock.write_all(b"after!\n").unwrap();
    sock.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after!\n");
    assert!(Proc::read(child.pid).is_some_and(|p| p.ppid != server.pid));
    sock.shutdown(Shutdown::Write).unwrap();
    assert_eq!(sock.read(&mut buf).unwrap(), 0);
    server.wait_for_exit_of_all();
    assert!(server.lines_with("shutdown:").is_empty());
}

#[test]
fn the_exit_handler_runs_after_a_graceful_shutdown_only() {
    // --atexit: one line from an exit handler, registered with atexit(3).
    let line = "atexit: the exit handler runs";
    let mut server = Server::start(&["--atexit"]);
    let out = server.client(&[], b"served by a child\n"); // children leave with _exit
    assert!(out.status.success());
    server.wait_for_line(|l| l.contains("reaped child"));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let ran: Vec<&String> = server.lines_with(line);
    assert_eq!(ran.len(), 1, "once, in the parent: {:?}", server.log);
    assert!(ran[0].starts_with(&format!("[parent {}]", server.pid)), "{ran:?}");
    assert!(server.log.last().unwrap().contains(line), "after the summary: {:?}", server.log);

    for (args, sig) in
        [(&["--atexit"][..], libc::SIGKILL), (&["--atexit", "--no-sigterm-handler"][..], libc::SIGTERM)]
    {
        let mut server = Server::start(args);
        let status = server.stop_with(sig);
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(sig));
        assert!(server.lines_with(line).is_empty(), "{args:?}, {sig}: {:?}", server.log);
    }
}

#[test]
fn the_last_handler_installed_wins_unless_it_chains() {
    let library = "[library] SIGTERM handler: the library cleans up";
    // replace: the server's handler replaced the library's, which never runs.
    let mut server = Server::start(&["--library-handler", "replace"]);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert!(server.lines_with(library).is_empty(), "{:?}", server.log);
    assert_eq!(server.lines_with("shutdown: ").len(), 1);
    // chain: the server's handler calls the one it replaced.
    let mut server = Server::start(&["--library-handler", "chain"]);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert_eq!(server.lines_with(library).len(), 1, "{:?}", server.log);
    assert_eq!(server.lines_with("shutdown: ").len(), 1);
    // Without a handler of the server's, the library's alone runs, and the
    // server does not stop: SIGKILL ends this one.
    let mut server = Server::start(&["--library-handler", "chain", "--no-sigterm-handler"]);
    server.signal(libc::SIGTERM);
    server.wait_for_line(|l| l.contains(library));
    let out = server.client(&[], b"still serving\n");
    assert_eq!(out.stdout, b"still serving\n");
    let status = server.stop_with(libc::SIGKILL);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
}

/// A client that never stops sending and never closes: a thread writes
/// 64 KiB at a time until the connection fails; another reads the echo
/// until the server's FIN (or a reset). Returns its local port, and the
/// reader's count of bytes of echo when it ends.
fn endless_sender(port: u16) -> (u16, thread::JoinHandle<u64>) {
    use std::net::TcpStream;
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    let local = sock.local_addr().unwrap().port();
    let mut writer = sock.try_clone().unwrap();
    thread::spawn(move || {
        let chunk = vec![b's'; 64 * 1024];
        while writer.write_all(&chunk).is_ok() {}
    });
    let mut reader = sock;
    let counter = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        got
    });
    (local, counter)
}

/// Twelve clients that never stop sending, then `stop`: each child stops
/// echoing, sends its FIN, waits for the client's, and gives up on its own
/// before the parent's grace period is over: every child says what it
/// echoed, exactly what its client got, and none is killed.
fn stop_endless_senders(stop: impl FnOnce(&mut Server)) {
    let mut server = Server::start(&[]);
    let clients: Vec<(u16, thread::JoinHandle<u64>)> = (0..12).map(|_| endless_sender(server.port)).collect();
    server.wait_for_lines(12, |l| l.contains("forked child"));
    server.wait_for_children(12, |p| !p.is_zombie());
    stop(&mut server);
    assert_eq!(server.wait_for_exit().code(), Some(0), "{:?}", server.log);
    let echoed = echoed_by_client(&server.log);
    for (port, counter) in clients {
        let received = counter.join().unwrap();
        assert_eq!(echoed.get(&port), Some(&received), "client {port}; log:\n{}", server.log.join("\n"));
    }
    let summary = server.summary();
    assert_eq!((summary.accepted, summary.cut, summary.killed), (12, 12, 0), "{:?}", server.log);
    assert_eq!(server.lines_with("the client did not close within the grace period").len(), 12);
    assert!(server.lines_with("SIGKILL").is_empty(), "{:?}", server.log);
}

#[test]
fn ctrl_c_with_clients_that_never_stop_ends_every_child_on_its_own() {
    stop_endless_senders(|server| signal(-server.pid, libc::SIGINT));
}

#[test]
fn sigterm_to_each_child_with_clients_that_never_stop_ends_them_on_their_own() {
    stop_endless_senders(|server| {
        for child in server.children() {
            signal(child.pid, libc::SIGTERM);
        }
        server.wait_for_lines(12, |l| l.contains("reaped child"));
        server.signal(libc::SIGTERM);
    });
}
