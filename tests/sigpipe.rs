//! The SIGPIPE demonstration of the lab, in its three modes, 20 times each,
//! driven step by step by the test's own socket, so that no step waits on
//! a timing: the client sends "one", which the child reads and echoes;
//! the child is held (SIGSTOP) while the client sends "two", half-closes
//! and then closes with the echo of "one" unread, which answers with RST;
//! let go (SIGCONT), the child reads "two" and writes its echo into the
//! connection the RST broke: the write fails with EPIPE, and the kernel
//! sends the child SIGPIPE.
//!
//! The lab's recipe (labs/06-sigpipe.sh: `--delay 100`, `TCPecho
//! --interval 50 --no-read`) reaches the same state by timing, slowly
//! enough to follow at a terminal; tests/labs.rs runs it.

use std::io::Write;
use std::net::Shutdown;

use testbed::*;

const RUNS: usize = 20;

/// Runs the recipe once against a fresh server and returns its log.
fn recipe(mode: &str) -> Vec<String> {
    let mut server = Server::start(&["--sigpipe", mode]);
    let mut sock = server.connect();
    let client_port = sock.local_addr().unwrap().port();

    // "one" is read and echoed: its echo waits, unread, at the client.
    sock.write_all(b"one\n").unwrap();
    wait_until("the echo of one", || {
        client_side_of(&sock, server.port).filter(|ours| ours.rx_queue == 4).map(drop)
    });
    // The child is held: what the client does next waits for it.
    let child = server.wait_for_children(1, |_| true).remove(0);
    signal(child.pid, libc::SIGSTOP);
    wait_until("the child to stop", || Proc::read(child.pid).filter(|p| p.state == 'T'));
    // "two", then the client's FIN: the server's end is in CLOSE_WAIT,
    // "two" unread before the FIN.
    sock.write_all(b"two\n").unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    wait_until("the server's end to get the FIN", || {
        server_side_of(&sock, server.port).filter(|theirs| theirs.state == TCP_CLOSE_WAIT)
    });
    // Closed with data unread, the client's end answers with RST, which
    // ends the server's end (it leaves the table) with EPIPE pending.
    drop(sock);
    wait_until("the RST to reach the server's end", || {
        let table = tcp_table();
        (!table.iter().any(|e| e.local_port == server.port && e.remote_port == client_port)).then_some(())
    });
    // Let go, the child reads "two" and writes its echo.
    signal(child.pid, libc::SIGCONT);

    server.wait_for_line(|l| l.contains("reaped child"));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let summary = server.summary();
    assert_eq!((summary.accepted, summary.reaped, summary.sigpipe), (1, 1, 1), "{mode}: {:?}", server.log);
    std::mem::take(&mut server.log)
}

fn count(log: &[String], text: &str) -> usize {
    log.iter().filter(|l| l.contains(text)).count()
}

#[test]
fn count_mode_counts_the_sigpipe_and_the_child_exits_3() {
    for run in 0..RUNS {
        let log = recipe("count");
        assert_eq!(
            count(&log, "] finished: 4 bytes echoed (broken pipe: SIGPIPE caught (count=1)"),
            1,
            "run {run}: {log:?}"
        );
        assert_eq!(count(&log, "exited with status 3: broken pipe"), 1, "run {run}: {log:?}");
    }
}

#[test]
fn ignore_mode_turns_sigpipe_into_epipe_and_the_child_exits_3() {
    for run in 0..RUNS {
        let log = recipe("ignore");
        assert_eq!(
            count(&log, "] finished: 4 bytes echoed (broken pipe: SIGPIPE ignored, the write got EPIPE)"),
            1,
            "run {run}: {log:?}"
        );
        assert_eq!(count(&log, "exited with status 3: broken pipe"), 1, "run {run}: {log:?}");
        assert_eq!(count(&log, "SIGPIPE caught"), 0);
    }
}

#[test]
fn default_mode_lets_sigpipe_kill_the_child() {
    for run in 0..RUNS {
        let log = recipe("default");
        assert_eq!(count(&log, "killed by signal 13 (SIGPIPE)"), 1, "run {run}: {log:?}");
        // Killed in the middle of its write: the child logged nothing after it.
        assert_eq!(count(&log, "finished:"), 0, "run {run}: {log:?}");
    }
}
