//! Every server model keeps the fork server's contract: byte-exact echo,
//! many clients, a graceful SIGTERM, descriptors that do not leak, the
//! grace period, the SIGUSR1 status. Each test runs for each model; then
//! a few tests show what makes one model differ from the others.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

use testbed::*;

fn start(mode: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--mode", mode];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Every process of the server: the parent and its children.
fn server_processes(server: &Server) -> Vec<i32> {
    let mut all = vec![server.pid];
    all.extend(server.children().iter().map(|p| p.pid));
    all
}

#[test]
fn every_model_echoes_text_and_binary_exactly() {
    for mode in modes() {
        let mut server = start(mode, &["-q"]);
        let data = random_bytes(4 << 20);
        let out = server.client(&[], &data);
        assert!(out.status.success(), "{mode}: {}", stderr_text(&out));
        assert!(out.stdout == data, "{mode}: echo differs");
        let out = server.client(&["--interval", "1"], b"line one\nline two\n");
        assert_eq!(out.stdout, b"line one\nline two\n", "{mode}");
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}: {:?}", server.log);
        assert_eq!(server.summary().accepted, 2, "{mode}");
    }
}

#[test]
fn every_model_serves_many_clients() {
    for mode in modes() {
        let mut server = start(mode, &["-q"]);
        let port = server.port.to_string();
        let clients: Vec<_> = (0..20)
            .map(|i| {
                let port = port.clone();
                thread::spawn(move || {
                    let data = random_bytes(50_000 + i);
                    let out = run_client(&["127.0.0.1", &port], &data);
                    out.status.success() && out.stdout == data
                })
            })
            .collect();
        for (i, client) in clients.into_iter().enumerate() {
            assert!(client.join().unwrap(), "{mode}: client {i} not echoed correctly");
        }
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}");
        let summary = server.summary();
        assert_eq!(summary.accepted, 20, "{mode}: {summary:?}");
        if mode != "prefork" {
            // reaped: children, joined threads or finished connections.
            assert_eq!(summary.reaped, 20, "{mode}: {summary:?}");
        }
    }
}

#[test]
fn every_model_shuts_down_gracefully_and_frees_its_port() {
    for mode in modes() {
        let mut server = start(mode, &["--delay", "300"]);
        let mut sock = server.connect();
        sock.write_all(b"read before SIGTERM\n").unwrap();
        wait_until_read(&sock, server.port);
        server.signal(libc::SIGTERM);
        let mut echo = Vec::new();
        sock.read_to_end(&mut echo).unwrap();
        assert_eq!(echo, b"read before SIGTERM\n", "{mode}: the data read was echoed before the close");
        drop(sock); // our FIN, which the server waits for after its own
        assert_eq!(server.wait_for_exit().code(), Some(0), "{mode}: {:?}", server.log);
        let summary = server.summary();
        assert_eq!((summary.accepted, summary.cut, summary.killed), (1, 0, 0), "{mode}: {summary:?}");
        assert!(processes_in_group(server.pid).is_empty(), "{mode}: a process is left");
        let again = Server::start_raw(&["--mode", mode, "--bind", "127.0.0.1", &server.port.to_string()]);
        assert_eq!(again.port, server.port, "{mode}: port reusable at once");
    }
}

#[test]
fn every_model_cuts_a_client_that_does_not_read_after_the_grace_period() {
    for mode in modes() {
        let mut server = start(mode, &["--grace", "1"]);
        let greedy = non_reading_client(&server);
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}: {:?}", server.log);
        let summary = server.summary();
        // Cut by the process or thread that served it, when its grace
        // period ran out: nobody had to be killed.
        assert_eq!((summary.accepted, summary.cut, summary.killed), (1, 1, 0), "{mode}: {:?}", server.log);
        assert!(processes_in_group(server.pid).is_empty(), "{mode}: a process is left");
        drop(greedy);
    }
}

#[test]
fn no_model_leaks_descriptors() {
    for mode in modes() {
        let mut server = start(mode, &["-q"]);
        let echo_once = |server: &Server| {
            let mut sock = server.connect();
            sock.write_all(b"x").unwrap();
            sock.shutdown(Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            sock.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, b"x");
        };
        echo_once(&server);
        let settle = |server: &mut Server| {
            // Wait until every connection is over on the server's side too.
            wait_until("connections to close", || {
                tcp_table()
                    .iter()
                    .all(|e| e.local_port != server.port || e.state == TCP_LISTEN || e.state == TCP_TIME_WAIT)
                    .then_some(())
            });
        };
        settle(&mut server);
        let before: Vec<(i32, usize)> = server_processes(&server).iter().map(|&p| (p, fd_count(p))).collect();
        for _ in 0..100 {
            echo_once(&server);
        }
        settle(&mut server);
        if mode == "fork" {
            server.wait_for_children(0, |_| true);
        }
        for (pid, fds) in before {
            if pid == server.pid || mode == "prefork" {
                wait_until("descriptors back to where they were", || (fd_count(pid) == fds).then_some(()));
            }
        }
    }
}

#[test]
fn the_iterative_server_keeps_its_descriptors_with_splice() {
    // Its splice pipe lives as long as one connection: after any number
    // of clients it holds exactly the descriptors it started with.
    let server = start("iterative", &["--splice", "-q"]);
    let before = server.fd_count();
    for _ in 0..3 {
        let out = server.client(&[], b"through a pipe\n");
        assert_eq!(out.stdout, b"through a pipe\n");
    }
    // The client may be gone before the server closes its asock.
    wait_until("the descriptors to be what they were", || (server.fd_count() == before).then_some(()));
}

#[test]
fn every_model_answers_sigusr1() {
    for mode in modes() {
        let mut server = start(mode, &["-q"]);
        let out = server.client(&[], b"one\n");
        assert!(out.status.success());
        server.signal(libc::SIGUSR1);
        let line = server.wait_for_line(|l| l.contains("status:"));
        assert!(line.contains("accepted=1"), "{mode}: {line}");
    }
}

#[test]
fn the_iterative_server_serves_one_client_at_a_time() {
    let mut server = start("iterative", &[]);
    let mut first = server.connect();
    first.write_all(b"first\n").unwrap();
    let mut buf = [0u8; 6];
    first.read_exact(&mut buf).unwrap();
    // A second client: the kernel completes its handshake, but it waits in
    // msock's queue (rx_queue of the LISTEN socket) while the first is served.
    server.serves_the_second_client_after(first);
    // In the log, the second is accepted only after the first is finished.
    server.wait_for_lines(2, |l| l.contains("accepted"));
    let position = |text: &str| server.log.iter().position(|l| l.contains(text)).unwrap();
    let second_accepted = server.log.iter().rposition(|l| l.contains("accepted")).unwrap();
    assert!(position("finished") < second_accepted, "{:?}", server.log);
}

#[test]
fn a_prefork_worker_that_dies_is_replaced() {
    let mut server = start("prefork", &["--workers", "3"]);
    let workers = server.wait_for_children(3, |_| true);
    signal(workers[0].pid, libc::SIGKILL);
    let line = server.wait_for_line(|l| l.contains("in place of"));
    assert!(line.ends_with(&format!("in place of {}", workers[0].pid)), "{line}");
    server.wait_for_children(3, |p| p.pid != workers[0].pid);
    let out = server.client(&[], b"still served\n");
    assert_eq!(out.stdout, b"still served\n");
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert_eq!(server.summary().reaped, 4, "three workers and the dead one");
}

#[test]
fn prefork_workers_share_one_listening_socket() {
    let server = start("prefork", &["--workers", "2"]);
    let workers = server.wait_for_children(2, |_| true);
    let listening = tcp_table()
        .into_iter()
        .find(|e| e.state == TCP_LISTEN && e.local_port == server.port)
        .expect("msock");
    for worker in workers {
        assert!(worker.socket_inodes().contains(&listening.inode), "worker {} accepts on msock", worker.pid);
    }
}

#[test]
fn the_thread_server_serves_with_threads_not_processes() {
    let mut server = start("thread", &[]);
    let held: Vec<TcpStream> = (0..3).map(|_| server.served_client()).collect();
    let pid = server.pid;
    let tasks = || std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    assert_eq!(tasks(), 4, "the main thread and one thread per client");
    assert!(server.children().is_empty(), "no child process");
    drop(held);
    server.wait_for_lines(3, |l| l.contains("joined thread"));
    wait_until("the threads to be gone", || (tasks() == 1).then_some(()));
}

#[test]
fn the_poll_server_does_not_let_a_slow_reader_block_the_others() {
    let mut server = start("poll", &[]);
    let mut slow = non_reading_client(&server);
    // Another client is served at once, while the first one's echo waits.
    let out = server.client(&[], b"me too\n");
    assert_eq!(out.stdout, b"me too\n");
    // The slow reader finally reads: every byte it sent comes back.
    slow.set_nonblocking(false).unwrap();
    slow.shutdown(Shutdown::Write).unwrap();
    let mut echo = Vec::new();
    slow.read_to_end(&mut echo).unwrap();
    assert!(!echo.is_empty() && echo.iter().all(|&b| b == b'g'), "all of it, unchanged");
    server.wait_for_line(|l| l.contains(&format!("{} bytes echoed (client closed)", echo.len())));
    assert_eq!(server.children().len(), 0);
}

#[test]
fn every_model_takes_its_options_and_refuses_the_others_by_name() {
    use tcpechod::models::{MODELS, MODEL_OPTIONS};
    for model in &MODELS {
        for option in MODEL_OPTIONS {
            let flag = format!("--{option}");
            let mut args = vec!["--mode", model.name, flag.as_str()];
            if ["workers", "max-children"].contains(&option) {
                args.push("1");
            }
            if model.options.contains(&option) {
                // It starts (the first line) and stops gracefully.
                let mut server = Server::start(&args);
                assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{args:?}: {:?}", server.log);
            } else {
                args.push("0");
                let out = run_bounded(std::process::Command::new(SERVER).args(&args), b"");
                let words = format!("{flag} does not apply to --mode {}", model.name);
                assert_one_line_error(&out, 2, "TCPechod", &[&words]);
            }
        }
    }
}

#[test]
fn workers_applies_only_to_prefork() {
    let out = run_bounded(std::process::Command::new(SERVER).args(["--workers", "2", "0"]), b"");
    assert_one_line_error(
        &out,
        2,
        "TCPechod",
        &["--workers does not apply to --mode fork (only to prefork)"],
    );
    let out = run_bounded(std::process::Command::new(SERVER).args(["--mode", "threads", "0"]), b"");
    assert_one_line_error(&out, 2, "TCPechod", &["'threads' for '--mode <MODEL>'"]);
}
