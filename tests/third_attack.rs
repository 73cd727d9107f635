//! What the third attack on the server found, each kept as an experiment
//! that failed before the fix: bytes of one client handed to the next
//! through a reused splice pipe, the pipe that then hung the server, poll
//! losing its timers at the limit, zombies that fill the limit for good,
//! a prefork worker that took a client after SIGTERM, poll's drain and
//! its busy retries, the chained library handler, and what `--bind` lets
//! through.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;

use testbed::*;

/// The models that take `--splice`, from the server's own table.
fn splice_models() -> Vec<&'static str> {
    tcpechod::models::MODELS
        .iter()
        .filter(|model| model.options.contains(&"splice"))
        .map(|model| model.name)
        .collect()
}

/// Ends a connection with a reset: SO_LINGER with a zero timeout makes
/// close(2) send RST and throw away whatever is queued.
fn reset(sock: TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    nix::sys::socket::setsockopt(&sock.as_fd(), nix::sys::socket::sockopt::Linger, &linger).unwrap();
    drop(sock);
}

/// A client that sends its own bytes, half-closes, and reads everything
/// that comes back: exactly its own bytes must, nothing else.
fn check_own_echo(server: &Server, mode: &str, tag: usize) {
    let mine = format!("hello from client {tag}\n").repeat(3).into_bytes();
    let mut sock = server.connect();
    sock.write_all(&mine).unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    let mut echo = Vec::new();
    sock.read_to_end(&mut echo).unwrap();
    assert!(
        echo == mine,
        "{mode}: client {tag} got {:?} instead of its own {} bytes; log:\n{}",
        String::from_utf8_lossy(&echo[..echo.len().min(120)]),
        mine.len(),
        server.log.join("\n")
    );
}

#[test]
fn with_splice_every_client_gets_exactly_its_own_bytes() {
    for mode in splice_models() {
        // One worker: every client goes through the same process, as in
        // the iterative server. The idle timeout closes the clients that
        // never read.
        let mut args = vec!["--mode", mode, "--splice", "-q", "--idle-timeout", "1"];
        if mode == "prefork" {
            args.extend(["--workers", "1"]);
        }
        let mut server = Server::start(&args);
        for round in 0..3 {
            // A client that sends without reading until the server is
            // stuck writing its echo, then resets: the write fails with
            // bytes still in flight inside the server.
            reset(non_reading_client(&server));
            check_own_echo(&server, mode, round * 2);
            // A client that never reads and never closes: the idle timeout
            // cuts the server's write short.
            let silent = non_reading_client(&server);
            check_own_echo(&server, mode, round * 2 + 1);
            drop(silent);
        }
        // And the server still stops at SIGTERM: nothing is stuck in a pipe.
        let status = server.stop_with(libc::SIGTERM);
        assert_eq!(status.code(), Some(0), "{mode}: {:?}", server.log);
    }
}

#[test]
fn twenty_resets_in_a_row_leave_the_splicing_server_serving_and_stoppable() {
    for mode in ["iterative", "prefork"] {
        let mut args = vec!["--mode", mode, "--splice", "-q"];
        if mode == "prefork" {
            args.extend(["--workers", "1"]);
        }
        let mut server = Server::start(&args);
        for _ in 0..20 {
            reset(non_reading_client(&server));
        }
        check_own_echo(&server, mode, 20);
        let status = server.stop_with(libc::SIGTERM);
        assert_eq!(status.code(), Some(0), "{mode}: {:?}", server.log);
    }
}

/// Reads until the server closes or resets the connection.
fn read_until_closed(mut sock: &TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[test]
fn the_poll_server_keeps_its_timers_at_the_limit() {
    // --delay: the echo of the one client allowed is due later; at the
    // limit the server must still wake up for it.
    let server = Server::start(&["--mode", "poll", "--max-children", "1", "--delay", "300", "-q"]);
    let out = server.client(&[], b"delayed\n");
    assert_eq!(out.stdout, b"delayed\n", "{}", stderr_text(&out));
    drop(server);

    // --idle-timeout: a silent client holds the one place until its
    // timeout frees it for the next client.
    let mut server = Server::start(&["--mode", "poll", "--max-children", "1", "--idle-timeout", "1"]);
    let silent = server.served_client();
    let out = server.client(&[], b"next\n");
    assert_eq!(out.stdout, b"next\n", "{}", stderr_text(&out));
    server.wait_for_line(|l| l.contains("idle for 1 s"));
    drop(silent);
}

#[test]
fn without_the_reaper_the_log_says_the_limit_is_full_for_good() {
    for (mode, toggle) in [("fork", "--no-reaper"), ("thread", "--no-join")] {
        let mut server = Server::start(&["--mode", mode, toggle, "--max-children", "3"]);
        for _ in 0..3 {
            let out = server.client(&[], b"one of three\n");
            assert!(out.status.success(), "{mode}: {}", stderr_text(&out));
        }
        // Nothing frees a place: a fourth client waits in the queue, and
        // the log says why.
        let mut fourth = server.connect();
        fourth.write_all(b"4\n").unwrap();
        server.wait_for_queued(1);
        let line = server.wait_for_line(|l| l.contains("max-children 3 reached"));
        assert!(line.contains(toggle) && line.contains("no more clients"), "{mode}: {line}");
    }
}

#[test]
fn the_bind_addresses_no_client_could_reach_are_refused_by_name() {
    let refused: [(&str, &str); 6] = [
        ("::ffff:224.0.0.1", "is a multicast address"),
        ("::ffff:255.255.255.255", "is the broadcast address"),
        ("127.255.255.255", "is the broadcast address of 127.0.0.0/8 (lo)"),
        ("fe80::1", "link-local address"),
        ("fe80::1%no-such-interface", "no interface named 'no-such-interface'"),
        ("127.0.0.1%lo", "only an IPv6 link-local address takes an interface"),
    ];
    for (addr, words) in refused {
        let out = run_bounded(std::process::Command::new(SERVER).args(["--bind", addr, "0"]), b"");
        assert_one_line_error(&out, 2, "TCPechod", &[words]);
    }
    // With its interface, a link-local address is understood, and reaches
    // bind (which fails here: loopback has no fe80::1).
    let out = run_bounded(std::process::Command::new(SERVER).args(["--bind", "fe80::1%lo", "0"]), b"");
    assert_one_line_error(&out, 1, "TCPechod", &["cannot bind [fe80::1%", "not an address of this machine"]);
}

#[test]
fn the_prefork_capacity_notice_names_the_workers_asked_for() {
    // Three processes for the user, eight workers asked: the notice names
    // --workers, the option given, not --max-children.
    let binary = BinaryForAnyone::new("prefork-notice");
    let limit = "--nproc=3:3";
    let mut server = if is_root() {
        Server::start_with(
            "setpriv",
            &["--reuid=60013", "--regid=60013", "--clear-groups", "prlimit", limit, &binary.path],
            &["--mode", "prefork", "--workers", "8"],
        )
    } else {
        Server::start_with("prlimit", &[limit, &binary.path], &["--mode", "prefork", "--workers", "8"])
    };
    let line = server.wait_for_line(|l| l.contains("is more than this machine allows"));
    assert!(line.contains("--workers 8 is more") && !line.contains("--max-children"), "{line}");
    assert!(line.contains("ulimit -u 3"), "{line}");
}

#[test]
fn poll_with_a_tiny_buffer_drains_every_client_within_the_grace_period() {
    use std::sync::atomic::Ordering;
    // A 7-byte buffer for the echo; after Ctrl-C, what the clients still
    // send must be drained faster than that, or every client counts as cut.
    let mut server = Server::start(&["--mode", "poll", "--buffer", "7"]);
    let streams: Vec<StreamingClient> = (0..40).map(|i| streaming_client(server.port, i, 1 << 30)).collect();
    wait_until("every client to get some echo", || {
        streams.iter().all(|s| s.received.load(Ordering::Relaxed) >= 1024).then_some(())
    });
    signal(-server.pid, libc::SIGINT);
    server.wait_for_exit_of_all();
    let echoed = echoed_by_client(&server.log);
    for end in streams.into_iter().map(StreamingClient::end) {
        assert!(end.intact && end.read_error.is_none(), "{end:?}");
        assert_eq!(Some(&end.received), echoed.get(&end.port), "{end:?}");
    }
    assert_eq!(server.wait_for_exit().code(), Some(0));
    assert_eq!(server.summary().killed, 0, "{:?}", server.log);
}

#[test]
fn a_chained_library_handler_runs_once_per_stop_in_every_model() {
    let library = "[library] SIGTERM handler: the library cleans up";
    for mode in modes() {
        let mut args = vec!["--mode", mode, "--library-handler", "chain"];
        if mode == "prefork" {
            args.extend(["--workers", "3"]);
        }
        let mut server = Server::start(&args);
        // Clients being served: children, threads, connections that the
        // server stops with SIGTERMs of its own.
        let held: Vec<TcpStream> =
            (0..if mode == "iterative" { 1 } else { 3 }).map(|_| server.served_client()).collect();
        let readers: Vec<_> = held.into_iter().map(close_on_eof).collect();
        assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0), "{mode}");
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(server.lines_with(library).len(), 1, "{mode}: {:?}", server.log);
    }
}

#[test]
fn a_prefork_worker_told_to_stop_leaves_at_once_and_is_replaced() {
    let mut server = Server::start(&["--mode", "prefork", "--workers", "1"]);
    let worker = server.wait_for_children(1, |_| true)[0].pid;
    // Asleep in accept: SIGTERM must end it now, not at the next client.
    signal(worker, libc::SIGTERM);
    server.wait_for_line(|l| l.contains(&format!("[child {worker}] stopping after 0 clients")));
    server.wait_for_line(|l| l.contains(&format!("in place of {worker}")));
    // Its replacement serves the next client in full.
    let out = server.client(&[], b"served in full\n");
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"served in full\n");
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
}

/// A client that sends without ever reading, with a small receive buffer,
/// until the server's end of the connection holds echo it cannot send
/// (its Send-Q) and data it no longer reads (its Recv-Q), as the kernel
/// shows them: the server's send to it would block.
fn stuck_non_reader(port: u16) -> TcpStream {
    let sock = small_window_socket(port);
    sock.set_nonblocking(true).unwrap();
    let chunk = vec![b'n'; 64 * 1024];
    let mut writer = &sock;
    wait_until("the server to be unable to send to a client that does not read", || {
        while writer.write(&chunk).is_ok() {}
        let side = server_side_of(&sock, port)?;
        (side.tx_queue > 0 && side.rx_queue > 0).then_some(())
    });
    sock
}

#[test]
fn the_poll_server_waits_for_pollout_instead_of_retrying_full_sockets() {
    use std::process::Command;
    if !have("strace") {
        return cannot_run_here(
            "the_poll_server_waits_for_pollout_instead_of_retrying_full_sockets",
            "strace is not installed (.ci/run installs it)",
        );
    }
    let dir = std::env::temp_dir().join(format!("tcpechod-pollout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace");
    // The server under strace, which records every send and its result
    // (`strace` is the process group's leader; the server its child).
    let mut strace = Server::launch(
        Command::new("strace").args(["-f", "-qq", "-e", "trace=sendto,write", "-o"]).arg(&trace).args([
            &*SERVER,
            "--mode",
            "poll",
            "--bind",
            "127.0.0.1",
            "0",
        ]),
    )
    .unwrap();
    let port = strace.port;

    let stuck: Vec<TcpStream> = (0..20).map(|_| stuck_non_reader(port)).collect();
    // One client that talks, 200 times: each exchange is a round of the
    // server's loop, which must not try the 20 full sockets again.
    let mut active = TcpStream::connect(("127.0.0.1", port)).unwrap();
    active.set_read_timeout(Some(TIMEOUT)).unwrap();
    for i in 0..200u32 {
        let line = format!("exchange {i}\n");
        active.write_all(line.as_bytes()).unwrap();
        let mut echo = vec![0u8; line.len()];
        active.read_exact(&mut echo).unwrap();
        assert_eq!(echo, line.as_bytes());
    }
    drop(active);
    drop(stuck);
    strace.wait_for_parent_exit_after(libc::SIGKILL);
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let failed = text.lines().filter(|l| l.contains("sendto(") && l.contains("EAGAIN")).count();
    assert!(text.contains("sendto("), "the trace shows the sends:\n{text}");
    // Each full socket is found full a few times while it fills; never
    // once per round.
    assert!(failed <= 20 * 5, "{failed} sends failed with EAGAIN for 200 rounds");
}

#[test]
fn idle_timeout_cuts_the_silent_and_keeps_the_slow_as_its_help_says() {
    // The promise of --idle-timeout: a connection on which nothing moves
    // for that long is closed; one that moves a byte now and then is not
    // idle, however slow (the help says so: no minimum rate). (Not the
    // iterative server: it serves the two one after the other.)
    let help = run_bounded(std::process::Command::new(SERVER).arg("--help"), b"");
    assert!(String::from_utf8_lossy(&help.stdout).contains("no minimum rate"));
    for mode in modes().filter(|&mode| mode != "iterative") {
        let mut server = Server::start(&["--mode", mode, "--idle-timeout", "3"]);
        let silent = server.connect();
        let mut slow = server.connect();
        for _ in 0..20 {
            slow.write_all(b".").unwrap();
            let mut byte = [0u8; 1];
            slow.read_exact(&mut byte).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server.wait_for_line(|l| l.contains("idle for 3 s"));
        read_until_closed(&silent);
        // The slow one is still served.
        slow.write_all(b"!").unwrap();
        let mut byte = [0u8; 1];
        slow.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"!", "{mode}");
    }
}
