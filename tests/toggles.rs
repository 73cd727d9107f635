//! The toggles that break the server on purpose, each shown doing the harm
//! it is there to show, next to the correct server that does not (and
//! `--no-join`, the threaded server's `--no-reaper`); and the SIGUSR1
//! status line.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use testbed::*;

/// One echo exchange after which the client half-closes but keeps its
/// socket, so that the test can see what the server does with its side.
fn echo_then_half_close(server: &Server) -> TcpStream {
    let mut sock = server.connect();
    sock.write_all(b"ping\n").unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 5];
    sock.read_exact(&mut buf).unwrap();
    sock
}

/// Server-side sockets of `port` in `state`.
fn server_sockets_in(port: u16, state: u8) -> Vec<TcpEntry> {
    tcp_table().into_iter().filter(|e| e.local_port == port && e.state == state).collect()
}

#[test]
fn leak_asock_piles_up_descriptors_and_withholds_the_fin() {
    let mut server = Server::start(&["--leak-asock"]);
    let before = server.fd_count();
    let clients: Vec<TcpStream> = (0..5).map(|_| echo_then_half_close(&server)).collect();
    server.wait_for_lines(5, |l| l.contains("reaped child"));

    // Every child is gone, yet the parent holds all five connections: the
    // server side got each client's FIN and never closed (CLOSE_WAIT).
    assert_eq!(server.fd_count(), before + 5, "one leaked descriptor per connection");
    assert_eq!(server.lines_with("NOT closing asock").len(), 5);
    let held = Proc::read(server.pid).unwrap().socket_inodes();
    for client in &clients {
        let side = server_side_of(client, server.port).expect("server side of the connection");
        assert_eq!(side.state, TCP_CLOSE_WAIT, "{side:?}");
        assert!(held.contains(&side.inode), "held by the parent");
    }
}

#[test]
fn the_toggles_break_the_server_under_quiet_too() {
    // -q leaves the log lines out, not the breakage.
    let server = Server::start(&["-q", "--leak-asock"]);
    let before = server.fd_count();
    let clients: Vec<TcpStream> = (0..3).map(|_| echo_then_half_close(&server)).collect();
    wait_until("three leaked descriptors", || (server.fd_count() == before + 3).then_some(()));
    drop(clients);

    let mut server = Server::start(&["-q", "--leak-msock"]);
    // An echo: the child is past the point where it would close msock.
    let _client = server.served_client();
    let child = server.wait_for_children(1, |_| true).remove(0);
    let listening = wait_until("msock", || {
        tcp_table().into_iter().find(|e| e.state == TCP_LISTEN && e.local_port == server.port)
    });
    // The child keeps msock: it holds the listening socket, after fork and for good.
    server.wait_for_parent_exit_after(libc::SIGKILL);
    assert!(child.socket_inodes().contains(&listening.inode), "the child kept msock");
}

#[test]
fn without_the_leak_the_client_gets_its_fin() {
    let mut server = Server::start(&[]);
    let before = server.fd_count();
    let mut sock = echo_then_half_close(&server);
    let mut rest = Vec::new();
    sock.read_to_end(&mut rest).unwrap(); // returns: the server closed
    assert!(rest.is_empty());
    server.wait_for_line(|l| l.contains("reaped child"));
    assert_eq!(server.fd_count(), before);
    let side = server_side_of(&sock, server.port);
    assert!(side.as_ref().is_none_or(|e| e.state != TCP_CLOSE_WAIT), "{side:?}");
}

/// Connects a client that stays idle and waits for the child serving it.
fn idle_client(server: &Server) -> (TcpStream, Proc) {
    let sock = server.connect();
    let child = server.wait_for_children(1, |_| true).remove(0);
    (sock, child)
}

#[test]
fn leak_msock_leaves_the_port_listening_in_the_children() {
    let mut server = Server::start(&["--leak-msock"]);
    let (_client, child) = idle_client(&server);
    server.wait_for_line(|l| l.contains("NOT closing msock"));
    let status = server.wait_for_parent_exit_after(libc::SIGKILL);
    assert!(!status.success());

    let listening = server_sockets_in(server.port, TCP_LISTEN);
    assert_eq!(listening.len(), 1, "the port is still in LISTEN after the parent died");
    assert!(child.socket_inodes().contains(&listening[0].inode), "held by the orphaned child");
    let out = run_bounded(
        std::process::Command::new(SERVER).args(["--bind", "127.0.0.1", &server.port.to_string()]),
        b"",
    );
    assert_one_line_error(&out, 1, "TCPechod", &["already in use"]);
}

#[test]
fn without_the_leak_a_killed_server_frees_its_port() {
    let mut server = Server::start(&[]);
    let (_client, child) = idle_client(&server);
    // The child closes msock right after fork; on a busy machine it may not
    // have run yet. Wait until it holds no socket but its client's.
    wait_until("the child to close msock", || (child.socket_inodes().len() == 1).then_some(()));
    server.wait_for_parent_exit_after(libc::SIGKILL);
    assert!(server_sockets_in(server.port, TCP_LISTEN).is_empty(), "nobody listens any more");
    let again = Server::start_raw(&["--bind", "127.0.0.1", &server.port.to_string()]);
    assert_eq!(again.port, server.port);
}

/// Runs a server with connections that it closes first (at shutdown), so
/// that they end in TIME_WAIT on the server's port; returns the port.
fn port_with_time_wait() -> u16 {
    let mut server = Server::start(&[]);
    let clients: Vec<TcpStream> = (0..3).map(|_| server.connect()).collect();
    let client_ports: Vec<u16> = clients.iter().map(|c| c.local_addr().unwrap().port()).collect();
    // Each client reads up to the server's FIN, then closes: our FIN comes
    // second, and the server's side moves to TIME_WAIT.
    let closing: Vec<_> = clients.into_iter().map(close_on_eof).collect();
    server.wait_for_children(3, |_| true);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert_eq!(server.summary().killed, 0, "{:?}", server.log);
    for client in closing {
        assert!(client.join().unwrap().is_empty());
    }
    let port = server.port;
    wait_until("TIME_WAIT on the server port", || {
        let waiting = server_sockets_in(port, TCP_TIME_WAIT);
        client_ports.iter().all(|p| waiting.iter().any(|e| e.remote_port == *p)).then_some(())
    });
    port
}

#[test]
fn no_reuseaddr_cannot_restart_over_time_wait() {
    let port = port_with_time_wait().to_string();
    let out = run_bounded(
        std::process::Command::new(SERVER).args(["--no-reuseaddr", "--bind", "127.0.0.1", &port]),
        b"",
    );
    assert_one_line_error(&out, 1, "TCPechod", &[&format!("port {port} is already in use")]);

    // With SO_REUSEADDR (the default) the same restart succeeds at once.
    let again = Server::start_raw(&["--bind", "127.0.0.1", &port]);
    assert_eq!(again.port.to_string(), port);
}

#[test]
fn no_join_leaves_finished_threads_unjoined_until_the_stop() {
    // The threaded server's --no-reaper: a thread that finishes is not
    // joined, and keeps its client's socket (closed when it is joined).
    let mut server = Server::start(&["--mode", "thread", "--no-join"]);
    for _ in 0..3 {
        let mut sock = echo_then_half_close(&server);
        sock.read_to_end(&mut Vec::new()).unwrap(); // the thread's FIN: it is done
    }
    server.wait_for_lines(3, |l| l.contains("finished; not joined (--no-join)"));
    assert!(server.lines_with("joined thread").is_empty(), "{:?}", server.log);
    let sockets = Proc::read(server.pid).unwrap().socket_inodes().len();
    assert_eq!(sockets, 1 + 3, "msock, and the socket of each thread not joined");
    // In /proc they are gone: the kernel lets a thread go when it ends.
    // What waits for the join is in the process: its stack, its socket.
    wait_until("the finished threads to leave /proc", || (threads_of(server.pid).len() == 1).then_some(()));
    // The status line counts them as zombies, and none as reaped.
    server.signal(libc::SIGUSR1);
    let line = server.wait_for_line(|l| l.contains("status:"));
    assert!(line.ends_with("status: children=0 zombies=3 accepted=3 reaped=0 sigpipe=0"), "{line}");

    // At the stop, every one is joined, and counted.
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{:?}", server.log);
    let stop = server.log.iter().position(|l| l.contains("SIGTERM received")).expect("the stop in the log");
    let joined: Vec<usize> =
        (0..server.log.len()).filter(|&i| server.log[i].contains("joined thread")).collect();
    assert_eq!(joined.len(), 3, "{:?}", server.log);
    assert!(joined.iter().all(|&i| i > stop), "joined only after the stop: {:?}", server.log);
    assert_eq!(server.summary(), Summary { accepted: 3, reaped: 3, sigpipe: 0, cut: 0, killed: 0 });
}

#[test]
fn sigusr1_prints_a_status_line() {
    let mut server = Server::start(&["-q", "--no-reaper"]);
    for _ in 0..3 {
        let mut sock = echo_then_half_close(&server);
        sock.read_to_end(&mut Vec::new()).unwrap();
    }
    server.wait_for_children(3, Proc::is_zombie);
    let mut busy = server.connect();
    server.wait_for_children(1, |p| !p.is_zombie());

    server.signal(libc::SIGUSR1);
    let line = server.wait_for_line(|l| l.contains("status:"));
    assert!(
        line.ends_with("status: children=1 zombies=3 accepted=4 reaped=0 sigpipe=0"),
        "even with -q: {line}"
    );

    // Children ignore SIGUSR1: the one serving `busy` survives it.
    let serving = server.children().into_iter().find(|p| !p.is_zombie()).unwrap();
    signal(serving.pid, libc::SIGUSR1);
    busy.write_all(b"still there?\n").unwrap();
    let mut buf = [0u8; 13];
    busy.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still there?\n");
}
